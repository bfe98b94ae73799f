//! AdaBlock (Yun, Lozano, Yang, AISTATS 2022; spec optimizers.md §6): Adam whose second moment
//! is a full `g × g` matrix per block of `g` coordinates, the update `(V_b^{1/2} + δI)^{−1} m_b`
//! computed through each block's eigendecomposition. `adablock` is the official AdaBlockW:
//!
//! ```text
//! θ ← θ(1 − ηλ);  m ← β1 m + (1 − β1) g;  V_b ← β2 V_b + (1 − β2) g_b g_bᵀ
//! Q diag(s) Qᵀ = V_b + jitter·I;  θ_b ← θ_b − Q diag(η√(1−β2ᵗ)/(1−β1ᵗ) / (√s + δ)) Qᵀ m_b
//! ```
//!
//! * Blocks: a weight `W[out, in]` (role `matrix`; a tensor of higher rank is read as
//!   `[shape[0], rest]`, as the other matrix methods read it) is cut into `g` consecutive output
//!   units sharing one input unit (`W.T.reshape(-1, g)`); `g = min(groups, out)` must divide `out`,
//!   or building the optimizer fails naming the parameter. The official code's k×k filter blocks
//!   for convolutions are not implemented (optiscope has no convolutions).
//! * Vectors (biases, gains, role `vector`/`diagonal`): diagonal Adam in the original form,
//!   `η√(1−β2ᵗ)/(1−β1ᵗ) · m/(√v + eps)`.
//! * Spectrum clipping (§6.3, `clipping: true`): every eigen-step is clamped into
//!   `[η*(1 − 1/(γt + 1)), η*(1 + 1/(γt))]` with `η* = final_lr · η/η_base` (η_base the config's
//!   `lr`, so a schedule scales the band as in AdaBound); vectors' per-coordinate steps are clamped
//!   into the same band, as the official randomized variant does.

use serde::{Deserialize, Serialize};

use super::{check_betas, check_lr, check_nonneg, ConfigError, Executor, OptimError, Param};
use crate::device::optim::adablock::{AdaBlockScalars, BlockLayout, MAX_GROUPS};
use crate::device::OptimOps;
use crate::tensor::ParamRole;

/// AdaBlockW. Defaults are the official code's (and `final_lr`, `gamma` its randomized variant's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaBlockConfig {
    /// Learning rate η.
    pub lr: f64,
    /// (β1, β2) of the moments.
    pub betas: [f64; 2],
    /// δ added to the square roots of the blocks' eigenvalues.
    pub delta: f64,
    /// ε of the diagonal Adam that vectors get.
    pub eps: f64,
    /// Decoupled weight decay λ (`θ ← θ(1 − ηλ)` first).
    pub weight_decay: f64,
    /// Block size g (1..=32; 1 is diagonal): consecutive output units sharing an input unit.
    pub groups: usize,
    /// Added to every block's diagonal before the eigendecomposition (keeps `V_b` invertible).
    pub jitter: f64,
    /// Spectrum clipping (§6.3): the eigen-steps' band shrinks to the SGD rate `final_lr`.
    pub clipping: bool,
    /// The SGD learning rate the band shrinks to.
    pub final_lr: f64,
    /// How fast the band shrinks (it bites after about `1/gamma` steps).
    pub gamma: f64,
}

impl Default for AdaBlockConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: [0.9, 0.999],
            delta: 1e-4,
            eps: 1e-4,
            weight_decay: 0.0,
            groups: 10,
            jitter: 1e-6,
            clipping: false,
            final_lr: 0.5,
            gamma: 1e-3,
        }
    }
}

impl AdaBlockConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_lr("lr", self.lr)?;
        check_betas("betas", self.betas)?;
        check_nonneg("delta", self.delta)?;
        check_lr("eps", self.eps)?;
        check_nonneg("weight_decay", self.weight_decay)?;
        check_nonneg("jitter", self.jitter)?;
        if !(1..=MAX_GROUPS).contains(&self.groups) {
            return Err(ConfigError::invalid(
                "groups",
                self.groups,
                format!("must be in 1..={MAX_GROUPS} (g × g blocks; 1 is diagonal Adam)"),
            ));
        }
        if self.delta == 0.0 && self.jitter == 0.0 {
            return Err(ConfigError::invalid(
                "delta",
                0,
                "must be > 0 when jitter is 0 (the step along a direction without gradient would be infinite)",
            ));
        }
        check_lr("final_lr", self.final_lr)?;
        check_lr("gamma", self.gamma)
    }

    /// The block layout of `p`: `g` consecutive output units per block for weights, one
    /// coordinate per block for vectors.
    pub fn layout(&self, p: &Param) -> Result<BlockLayout, ConfigError> {
        let shape = p.value.shape();
        if p.resolved_role() != ParamRole::Matrix || p.value.is_empty() {
            return Ok(BlockLayout::diagonal(p.value.len()));
        }
        let out = shape[0];
        let groups = self.groups.min(out);
        if groups == 1 {
            return Ok(BlockLayout::diagonal(p.value.len()));
        }
        if out % groups != 0 {
            return Err(ConfigError::invalid(
                "groups",
                self.groups,
                format!(
                    "must divide the output size {out} of parameter {:?} (shape {shape:?}): a block is \
                     `groups` consecutive output units sharing one input unit; use a divisor of {out} \
                     or at least {out}",
                    p.name
                ),
            ));
        }
        Ok(BlockLayout {
            out,
            inp: p.value.len() / out,
            groups,
        })
    }
}

struct BlockParam<D: OptimOps> {
    m: D::Buf,
    /// Every block's `g × g` second moment, row-major, block after block (`v` of a vector).
    v: D::Buf,
    layout: BlockLayout,
    /// A weight (jitter and δ) rather than a vector (no jitter, eps).
    matrix: bool,
}

pub(crate) struct AdaBlock<D: OptimOps> {
    cfg: AdaBlockConfig,
    params: Vec<BlockParam<D>>,
    steps: u64,
    lr_scale: f64,
}

impl<D: OptimOps> AdaBlock<D> {
    fn new(dev: &mut D, cfg: &AdaBlockConfig, params: &[Param]) -> Result<Self, ConfigError> {
        let params = params
            .iter()
            .map(|p| {
                let layout = cfg.layout(p)?;
                Ok(BlockParam {
                    m: dev.zeros(p.value.len()),
                    v: dev.zeros(layout.state_len()),
                    matrix: p.resolved_role() == ParamRole::Matrix,
                    layout,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Self {
            cfg: cfg.clone(),
            params,
            steps: 0,
            lr_scale: 1.0,
        })
    }

    /// The clipping band at step `t`, or None without clipping.
    fn band(&self, t: f64) -> Option<(f32, f32)> {
        let c = &self.cfg;
        c.clipping.then(|| {
            let target = c.final_lr * self.lr_scale;
            (
                (target * (1.0 - 1.0 / (c.gamma * t + 1.0))) as f32,
                (target * (1.0 + 1.0 / (c.gamma * t))) as f32,
            )
        })
    }
}

impl<D: OptimOps> Executor<D> for AdaBlock<D> {
    fn step(
        &mut self,
        dev: &mut D,
        params: &mut [D::Buf],
        grads: &[&D::Buf],
    ) -> Result<(), OptimError> {
        self.steps += 1;
        let t = self.steps as i32;
        let c = &self.cfg;
        let lr = c.lr * self.lr_scale;
        let step_size = lr * (1.0 - c.betas[1].powi(t)).sqrt() / (1.0 - c.betas[0].powi(t));
        let clip = self.band(self.steps as f64);
        for ((p, g), st) in params.iter_mut().zip(grads).zip(&mut self.params) {
            let s = AdaBlockScalars {
                lr: lr as f32,
                weight_decay: c.weight_decay as f32,
                one_minus_beta1: (1.0 - c.betas[0]) as f32,
                beta2: c.betas[1] as f32,
                one_minus_beta2: (1.0 - c.betas[1]) as f32,
                step_size: step_size as f32,
                jitter: if st.matrix { c.jitter as f32 } else { 0.0 },
                delta: if st.matrix { c.delta } else { c.eps } as f32,
                clip,
            };
            dev.adablock(p, g, &mut st.m, &mut st.v, &st.layout, &s);
        }
        Ok(())
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.lr_scale = scale;
    }

    fn steps_taken(&self) -> u64 {
        self.steps
    }

    fn visit_state(&mut self, v: &mut dyn super::StateVisitor<D>) {
        v.count("steps", &mut self.steps);
        for (i, st) in self.params.iter_mut().enumerate() {
            v.buf(&format!("{i}.exp_avg"), &mut st.m);
            v.buf(&format!("{i}.exp_avg_sq"), &mut st.v);
        }
    }
}

super::registry::optimizer_method!(
    AdaBlockConfig,
    "adablock",
    "AdaBlockW: Adam with a full g×g second moment per block of output units, eigendecomposed (Yun et al. 2022)",
    |cfg, dev, params| AdaBlock::new(dev, cfg, params)?
);
