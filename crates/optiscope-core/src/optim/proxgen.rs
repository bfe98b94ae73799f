//! ProxGen (Yun, Lozano, Yang, NeurIPS 2021; spec optimizers.md §5): proximal gradient steps in a
//! preconditioner's metric for `f(θ) + λ R(θ)` with the ℓ1, ℓ0, ℓ1/2 or ℓ2/3 penalty.
//!
//! * `proxgen`: the official Adam instance (abcdxyzpqrst/proxgen `opt.py`, `AdamL0/L1/L12/L23`):
//!   decoupled decay first, the bias-corrected Adam step to `z`, then the closed-form prox of
//!   `λR` with the per-coordinate threshold `λ'_i = η λ / denom_i` (η, not η/(1−β1ᵗ), as the code).
//! * `prox_sgd`: the plain member of the family (C = I): heavy-ball momentum, `λ' = η λ`.
//!
//! The prox acts on weight tensors only (role `matrix`, i.e. rank ≥ 2 unless said otherwise);
//! vectors (biases, gains) take the plain step.

use serde::{Deserialize, Serialize};

use super::{check_betas, check_lr, check_nonneg, ConfigError, Executor, OptimError, Param};
use crate::device::optim::elementwise::{ProxGenScalars, ProxSgdScalars};
use crate::device::optim::prox::Regularizer;
use crate::device::OptimOps;
use crate::tensor::ParamRole;

/// The ProxGen Adam instance. Defaults are the official code's (weight decay 1e-2, penalty 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxGenConfig {
    /// Learning rate η.
    pub lr: f64,
    /// (β1, β2) of Adam's moments.
    pub betas: [f64; 2],
    /// ε added to Adam's denominator (after bias-correcting v).
    pub eps: f64,
    /// Decoupled weight decay λ_wd (`θ ← θ(1 − ηλ_wd)` first).
    pub weight_decay: f64,
    /// The penalty R: `l1`, `l0`, `l1/2` or `l2/3`.
    pub regularizer: Regularizer,
    /// Its strength λ (0: plain AdamW).
    pub penalty: f64,
}

impl Default for ProxGenConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 1e-2,
            regularizer: Regularizer::L1,
            penalty: 0.0,
        }
    }
}

impl ProxGenConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_lr("lr", self.lr)?;
        check_betas("betas", self.betas)?;
        check_lr("eps", self.eps)?;
        check_nonneg("weight_decay", self.weight_decay)?;
        check_nonneg("penalty", self.penalty)
    }
}

/// The subgradient baseline of ProxGen's paper: AdamW on `f + λR` with R's subgradient added to
/// the gradient (on weight tensors), no prox — it rarely reaches an exact zero, so its sparsity is
/// measured after magnitude pruning (`optiscope eval --prune`). The fields are ProxGen's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AdamSubgradientConfig(pub ProxGenConfig);

impl AdamSubgradientConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.0.validate()
    }
}

/// Proximal SGD: ProxGen with the identity preconditioner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxSgdConfig {
    /// Learning rate η.
    pub lr: f64,
    /// Heavy-ball momentum μ (`m ← μ m + g`).
    pub momentum: f64,
    /// Decoupled weight decay (`θ ← θ(1 − ηλ_wd)` first).
    pub weight_decay: f64,
    /// The penalty R: `l1`, `l0`, `l1/2` or `l2/3`.
    pub regularizer: Regularizer,
    /// Its strength λ.
    pub penalty: f64,
}

impl Default for ProxSgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            weight_decay: 0.0,
            regularizer: Regularizer::L1,
            penalty: 0.0,
        }
    }
}

impl ProxSgdConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_lr("lr", self.lr)?;
        check_nonneg("momentum", self.momentum)?;
        check_nonneg("weight_decay", self.weight_decay)?;
        check_nonneg("penalty", self.penalty)
    }
}

/// Whether the prox acts on `p`: weight tensors only.
fn regularized(p: &Param) -> bool {
    p.resolved_role() == ParamRole::Matrix
}

struct ProxParam<D: OptimOps> {
    /// Adam's first moment (ProxGen) or the momentum buffer (prox SGD).
    m: D::Buf,
    /// Adam's second moment (empty for prox SGD).
    v: D::Buf,
    /// Whether the prox acts on it.
    regularized: bool,
}

/// The executor of both members of the family.
pub(crate) struct ProxGen<D: OptimOps> {
    /// Adam (`Some(config)`) or the identity preconditioner (`None`, with `sgd`).
    adam: Option<ProxGenConfig>,
    /// Adam's subgradient baseline instead of the prox.
    subgradient: bool,
    sgd: Option<ProxSgdConfig>,
    params: Vec<ProxParam<D>>,
    steps: u64,
    lr_scale: f64,
}

impl<D: OptimOps> ProxGen<D> {
    fn new(
        dev: &mut D,
        adam: Option<ProxGenConfig>,
        sgd: Option<ProxSgdConfig>,
        params: &[Param],
    ) -> Self {
        let with_v = adam.is_some();
        let params = params
            .iter()
            .map(|p| ProxParam {
                m: dev.zeros(p.value.len()),
                v: dev.zeros(if with_v { p.value.len() } else { 0 }),
                regularized: regularized(p),
            })
            .collect();
        Self {
            adam,
            subgradient: false,
            sgd,
            params,
            steps: 0,
            lr_scale: 1.0,
        }
    }
}

impl<D: OptimOps> Executor<D> for ProxGen<D> {
    fn step(
        &mut self,
        dev: &mut D,
        params: &mut [D::Buf],
        grads: &[&D::Buf],
    ) -> Result<(), OptimError> {
        self.steps += 1;
        let t = self.steps as i32;
        for ((p, g), st) in params.iter_mut().zip(grads).zip(&mut self.params) {
            if let Some(c) = &self.adam {
                let lr = c.lr * self.lr_scale;
                let s = ProxGenScalars {
                    lr: lr as f32,
                    one_minus_beta1: (1.0 - c.betas[0]) as f32,
                    beta2: c.betas[1] as f32,
                    one_minus_beta2: (1.0 - c.betas[1]) as f32,
                    eps: c.eps as f32,
                    weight_decay: c.weight_decay as f32,
                    step_size: (lr / (1.0 - c.betas[0].powi(t))) as f32,
                    bc2_sqrt: (1.0 - c.betas[1].powi(t)).sqrt() as f32,
                    lr_penalty: (lr * c.penalty) as f32,
                    penalty: c.penalty as f32,
                    regularizer: st.regularized.then_some(c.regularizer),
                    subgradient: self.subgradient,
                };
                dev.proxgen(p, g, &mut st.m, &mut st.v, &s);
            } else if let Some(c) = &self.sgd {
                let lr = c.lr * self.lr_scale;
                let s = ProxSgdScalars {
                    lr: lr as f32,
                    momentum: c.momentum as f32,
                    weight_decay: c.weight_decay as f32,
                    lr_penalty: (lr * c.penalty) as f32,
                    regularizer: st.regularized.then_some(c.regularizer),
                };
                dev.prox_sgd(p, g, &mut st.m, &s);
            }
        }
        Ok(())
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.lr_scale = scale;
    }

    fn steps_taken(&self) -> u64 {
        self.steps
    }

    fn second_moment(&self, index: usize) -> Option<super::SecondMoment<'_, D>> {
        self.adam.as_ref()?;
        let st = self.params.get(index)?;
        Some(super::SecondMoment {
            v: &st.v,
            step: self.steps,
        })
    }

    fn visit_state(&mut self, v: &mut dyn super::StateVisitor<D>) {
        v.count("steps", &mut self.steps);
        let adam = self.adam.is_some();
        for (i, st) in self.params.iter_mut().enumerate() {
            if adam {
                v.buf(&format!("{i}.exp_avg"), &mut st.m);
                v.buf(&format!("{i}.exp_avg_sq"), &mut st.v);
            } else {
                v.buf(&format!("{i}.momentum_buffer"), &mut st.m);
            }
        }
    }
}

super::registry::optimizer_method!(
    ProxGenConfig,
    "proxgen",
    "ProxGen: Adam with the closed-form l1/l0/l1/2/l2/3 prox in Adam's metric (Yun et al. 2021)",
    |cfg, dev, params| ProxGen::new(dev, Some(cfg.clone()), None, params)
);

super::registry::optimizer_method!(
    ProxSgdConfig,
    "prox_sgd",
    "proximal SGD: momentum, then the closed-form l1/l0/l1/2/l2/3 prox (ProxGen with C = I)",
    |cfg, dev, params| ProxGen::new(dev, None, Some(cfg.clone()), params)
);

impl super::OptimizerMethod for AdamSubgradientConfig {
    const NAME: &'static str = "adamw_subgradient";
    const SUMMARY: &'static str =
        "ProxGen's subgradient baseline: AdamW on f + λR with R's subgradient, no prox";

    fn validate(&self) -> Result<(), ConfigError> {
        AdamSubgradientConfig::validate(self)
    }

    fn lr(&self) -> f64 {
        self.0.lr
    }

    fn build_on<D: OptimOps + 'static>(
        &self,
        dev: &mut D,
        params: &[Param],
    ) -> Result<Box<dyn Executor<D>>, ConfigError> {
        let mut exec = ProxGen::new(dev, Some(self.0.clone()), None, params);
        exec.subgradient = true;
        Ok(Box::new(exec))
    }
}
