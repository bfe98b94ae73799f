//! MeZO and MeZO-BCD (spec optimizers.md §7): zeroth-order training from two forward passes.
//!
//! One step at `θ` with the perturbation `z ~ N(0, I)` of the step (regenerated from the
//! counter-based generator each time it is needed, never stored):
//!
//! ```text
//! θ += εz;  L+ = f(θ);  θ −= 2εz;  L− = f(θ);  θ += εz            (restore)
//! ĝ = (L+ − L−) / (2ε)                                            (the projected gradient)
//! θ ← θ(1 − ηλ) − η ĝ z    for weights;   θ ← θ − η ĝ z   for vectors
//! ```
//!
//! (princeton-nlp/MeZO `large_models/trainer.py`: decay only for parameters whose name has no
//! `bias`/`layer_norm`; here, for the project's convention, the parameters of role `matrix`.)
//! MeZO-BCD perturbs and updates one block per step (`blocks` = layers by default: each weight
//! matrix with the vectors that follow it), chosen by `schedule`.
//!
//! The two forward passes belong to the trainer's gradient source (`train::gradient::Spsa`,
//! or the experiment runner on a landscape), which asks the executor for its [`ZoPlan`] and
//! hands back the projected gradient ([`ZoStep`]); the executor only applies the update.
//! [`spsa_estimate`] and [`mezo_update`] are the two halves, written once over the device and a
//! [`Perturbation`] (the counter-based one in training; given vectors in the spec's tests).

use serde::{Deserialize, Serialize};

use super::{check_lr, check_nonneg, ConfigError, Executor, OptimError, Param};
use crate::device::{Counter, OptimOps, Storage};
use crate::rng::{stream, Philox, StreamKind};
use crate::tensor::ParamRole;

/// MeZO (the reference's defaults: ε = 1e-3, no weight decay; the learning rate of its
/// Hugging Face trainer, 5e-5, is far too small for the digits and is not copied: 1e-3 here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MezoConfig {
    /// Learning rate η.
    pub lr: f64,
    /// Perturbation scale ε (`zo_eps`).
    pub eps: f64,
    /// Weight decay λ (weights only).
    pub weight_decay: f64,
}

impl Default for MezoConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            eps: 1e-3,
            weight_decay: 0.0,
        }
    }
}

impl MezoConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_lr("lr", self.lr)?;
        check_lr("eps", self.eps)?;
        check_nonneg("weight_decay", self.weight_decay)
    }
}

/// Which block MeZO-BCD perturbs at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockSchedule {
    /// 0, 1, …, B−1, 0, 1, …
    #[default]
    Cyclic,
    /// B−1, …, 0, B−1, …
    Reverse,
    /// Uniform with replacement, from the counter-based generator.
    Random,
    /// A fresh random permutation of the blocks every sweep.
    Permutation,
}

/// MeZO-BCD: MeZO on one block of parameters per step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MezoBcdConfig {
    /// Learning rate η.
    pub lr: f64,
    /// Perturbation scale ε.
    pub eps: f64,
    /// Weight decay λ (weights only).
    pub weight_decay: f64,
    /// The block order.
    pub schedule: BlockSchedule,
    /// The blocks as lists of parameter names, every parameter in exactly one; empty: the layers
    /// (each weight matrix with the vectors after it; parameters before the first matrix form a
    /// block of their own) — a reconstruction, as the paper's exact default was not available.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Vec<String>>,
}

impl Default for MezoBcdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            eps: 1e-3,
            weight_decay: 0.0,
            schedule: BlockSchedule::Cyclic,
            blocks: vec![],
        }
    }
}

impl MezoBcdConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_lr("lr", self.lr)?;
        check_lr("eps", self.eps)?;
        check_nonneg("weight_decay", self.weight_decay)
    }

    /// The blocks of `params` as parameter indices.
    pub fn block_indices(&self, params: &[Param]) -> Result<Vec<Vec<usize>>, ConfigError> {
        if self.blocks.is_empty() {
            return Ok(layer_blocks(params));
        }
        let mut seen = vec![false; params.len()];
        let mut out = Vec::with_capacity(self.blocks.len());
        for (b, names) in self.blocks.iter().enumerate() {
            let mut block = Vec::with_capacity(names.len());
            for name in names {
                let i = params.iter().position(|p| &p.name == name).ok_or_else(|| {
                    ConfigError::UnknownParam {
                        name: name.clone(),
                        known: params
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                })?;
                if std::mem::replace(&mut seen[i], true) {
                    return Err(ConfigError::invalid(
                        format!("blocks[{b}]"),
                        name,
                        "a parameter can be in one block only",
                    ));
                }
                block.push(i);
            }
            if block.is_empty() {
                return Err(ConfigError::invalid(
                    format!("blocks[{b}]"),
                    "[]",
                    "a block needs at least one parameter",
                ));
            }
            out.push(block);
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(ConfigError::invalid(
                "blocks",
                &params[i].name,
                "every parameter must be in a block (else it would never train)",
            ));
        }
        Ok(out)
    }
}

/// The default blocks: each weight matrix with the vectors after it (an MLP's `[w0, b0]`,
/// `[w1, b1]`, …); parameters before the first matrix form a block of their own.
pub fn layer_blocks(params: &[Param]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = vec![];
    for (i, p) in params.iter().enumerate() {
        if p.resolved_role() == ParamRole::Matrix || out.is_empty() {
            out.push(vec![i]);
        } else if let Some(last) = out.last_mut() {
            last.push(i);
        }
    }
    out
}

/// The block of step `step` (0-based) among `n` blocks.
pub fn block_at(schedule: BlockSchedule, n: usize, step: u64, seed: u64) -> usize {
    let n64 = n as u64;
    match schedule {
        BlockSchedule::Cyclic => (step % n64) as usize,
        BlockSchedule::Reverse => (n64 - 1 - step % n64) as usize,
        BlockSchedule::Random => {
            let w = Philox::new(seed).u32_at(stream(StreamKind::Mezo, 1), step);
            ((u64::from(w) * n64) >> 32) as usize
        }
        BlockSchedule::Permutation => {
            // Fisher–Yates over the sweep's own words.
            let (sweep, pos) = (step / n64, (step % n64) as usize);
            let rng = Philox::new(seed);
            let s = stream(StreamKind::Mezo, 2);
            let mut perm: Vec<usize> = (0..n).collect();
            for k in (1..n).rev() {
                let w = rng.u32_at(s, sweep * n64 + k as u64);
                let j = ((u64::from(w) * (k as u64 + 1)) >> 32) as usize;
                perm.swap(k, j);
            }
            perm[pos]
        }
    }
}

/// What a zeroth-order executor asks of its gradient source.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoPlan {
    /// Perturbation scale ε.
    pub eps: f64,
    /// The blocks (parameter indices); MeZO has one holding every parameter.
    pub blocks: Vec<Vec<usize>>,
    /// The block order (MeZO: always block 0).
    pub schedule: BlockSchedule,
}

impl ZoPlan {
    /// The perturbation of step `step` (0-based) of a run seeded `seed`: its key and the
    /// parameters it touches.
    pub fn at(&self, seed: u64, step: u64) -> ZoStep {
        let block = if self.blocks.len() <= 1 {
            0
        } else {
            block_at(self.schedule, self.blocks.len(), step, seed)
        };
        ZoStep {
            key: step_key(seed, step),
            active: self.blocks.get(block).cloned().unwrap_or_default(),
            block,
            projected_grad: f64::NAN,
        }
    }
}

/// One zeroth-order step: which perturbation, where, and (once estimated) the projected gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoStep {
    /// Philox key of the step's perturbation (MeZO's per-step seed).
    pub key: u64,
    /// The perturbed (and updated) parameters.
    pub active: Vec<usize>,
    /// Their block.
    pub block: usize,
    /// `ĝ = (L+ − L−)/(2ε)`; NaN until [`spsa_estimate`] sets it.
    pub projected_grad: f64,
}

/// The Philox key of step `step`'s perturbation in a run seeded `seed` (a 64-bit mix, so that
/// steps draw independent streams).
pub fn step_key(seed: u64, step: u64) -> u64 {
    let mut x = seed ^ (step.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Where a step's `z` comes from.
pub trait Perturbation<D: Storage> {
    /// `p ← decay·p + scale·z` for parameter `index`.
    fn axpy(&mut self, dev: &mut D, p: &mut D::Buf, index: usize, decay: f32, scale: f32);
}

/// The counter-based perturbation: `z` of parameter `i` is stream `(Mezo, 16 + i)` under the
/// step's key, regenerated by the device on every pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterPerturbation {
    /// The step's key ([`ZoStep::key`]).
    pub key: u64,
}

impl CounterPerturbation {
    /// Where parameter `index`'s normals start.
    pub fn counter(&self, index: usize) -> Counter {
        Counter {
            seed: self.key,
            stream: stream(StreamKind::Mezo, 16 + index as u32),
            offset: 0,
        }
    }
}

impl<D: OptimOps> Perturbation<D> for CounterPerturbation {
    fn axpy(&mut self, dev: &mut D, p: &mut D::Buf, index: usize, decay: f32, scale: f32) {
        dev.axpy_normal(p, self.counter(index), decay, scale);
    }
}

/// MeZO's two-point estimate: perturbs the `active` parameters by `+ε z`, evaluates `loss`,
/// by `−2ε z`, evaluates again, restores with `+ε z`, and returns `(L+, L−, ĝ)`. The restore
/// is not exact in f32 (the spec measured 4.8e-7 on N(0, 1) weights); the tests bound it.
pub fn spsa_estimate<D: Storage, E>(
    dev: &mut D,
    params: &mut [D::Buf],
    active: &[usize],
    eps: f64,
    z: &mut dyn Perturbation<D>,
    mut loss: impl FnMut(&mut D, &mut [D::Buf]) -> Result<f64, E>,
) -> Result<(f64, f64, f64), E> {
    let mut shift = |dev: &mut D, params: &mut [D::Buf], scale: f64| {
        for &i in active {
            z.axpy(dev, &mut params[i], i, 1.0, scale as f32);
        }
    };
    shift(dev, params, eps);
    let plus = loss(dev, params);
    shift(dev, params, -2.0 * eps);
    let minus = loss(dev, params);
    shift(dev, params, eps);
    let (plus, minus) = (plus?, minus?);
    Ok((plus, minus, (plus - minus) / (2.0 * eps)))
}

/// MeZO's update of the `active` parameters: `θ ← θ(1 − ηλ_i) − η ĝ z` (`decays[i]` says
/// whether parameter i decays).
pub fn mezo_update<D: Storage>(
    dev: &mut D,
    params: &mut [D::Buf],
    active: &[usize],
    decays: &[bool],
    (lr, weight_decay, projected_grad): (f64, f64, f64),
    z: &mut dyn Perturbation<D>,
) {
    for &i in active {
        let decay = if decays[i] {
            1.0 - lr * weight_decay
        } else {
            1.0
        };
        z.axpy(
            dev,
            &mut params[i],
            i,
            decay as f32,
            (-lr * projected_grad) as f32,
        );
    }
}

/// The executor of MeZO and MeZO-BCD.
pub(crate) struct Mezo {
    lr: f64,
    weight_decay: f64,
    plan: ZoPlan,
    /// Whether each parameter decays (role `matrix`).
    decays: Vec<bool>,
    steps: u64,
    lr_scale: f64,
}

impl Mezo {
    fn new(lr: f64, weight_decay: f64, plan: ZoPlan, params: &[Param]) -> Self {
        Self {
            lr,
            weight_decay,
            plan,
            decays: params
                .iter()
                .map(|p| p.resolved_role() == ParamRole::Matrix)
                .collect(),
            steps: 0,
            lr_scale: 1.0,
        }
    }
}

impl<D: OptimOps> Executor<D> for Mezo {
    fn step(
        &mut self,
        _dev: &mut D,
        _params: &mut [D::Buf],
        _grads: &[&D::Buf],
    ) -> Result<(), OptimError> {
        Err(OptimError::ZerothOrder)
    }

    fn zeroth_order(&self) -> Option<ZoPlan> {
        Some(self.plan.clone())
    }

    fn step_projected(
        &mut self,
        dev: &mut D,
        params: &mut [D::Buf],
        zo: &ZoStep,
    ) -> Result<(), OptimError> {
        if !zo.projected_grad.is_finite() {
            return Err(OptimError::NonFinite(format!(
                "projected gradient {}",
                zo.projected_grad
            )));
        }
        self.steps += 1;
        let hyper = (
            self.lr * self.lr_scale,
            self.weight_decay,
            zo.projected_grad,
        );
        let mut z = CounterPerturbation { key: zo.key };
        mezo_update(dev, params, &zo.active, &self.decays, hyper, &mut z);
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
    }
}

super::registry::optimizer_method!(
    MezoConfig,
    "mezo",
    "MeZO: zeroth-order SGD from two forward passes at θ ± εz, z regenerated from a per-step seed (Malladi et al. 2023)",
    |cfg, _dev, params| Mezo::new(
        cfg.lr,
        cfg.weight_decay,
        ZoPlan {
            eps: cfg.eps,
            blocks: vec![(0..params.len()).collect()],
            schedule: BlockSchedule::Cyclic,
        },
        params
    )
);

super::registry::optimizer_method!(
    MezoBcdConfig,
    "mezo_bcd",
    "MeZO-BCD: MeZO on one block (a layer) per step, cyclic/reverse/random/permutation (Park et al. 2025)",
    |cfg, _dev, params| Mezo::new(
        cfg.lr,
        cfg.weight_decay,
        ZoPlan {
            eps: cfg.eps,
            blocks: cfg.block_indices(params)?,
            schedule: cfg.schedule,
        },
        params
    )
);
