//! Schedule-Free SGD and AdamW (Defazio, Yang, Mehta, Mishchenko, Khaled, Cutkosky, "The Road Less
//! Scheduled", arXiv 2405.15682; reference `facebookresearch/schedule_free`; spec §3), in the
//! memory-efficient form of the reference classes: the parameters hold `y` in train mode and `x`
//! in eval mode, and the optimizer keeps `z` (and `v`).

use serde::{Deserialize, Serialize};

use super::elementwise::{
    adamw_schedulefree_step, lerp_towards, sgd_schedulefree_step, ScheduleFreeScalars,
};
use super::{
    check_grads, check_lr, check_nonneg, check_unit, resolve_groups, ConfigError, OptimError,
    Optimizer, Param, ParamGroup,
};
use crate::tensor::Tensor;

/// Schedule-Free SGD (`schedulefree.SGDScheduleFree`). Defaults: lr 1.0, momentum (β) 0.9,
/// weight_decay 0, warmup_steps 0, r 0, weight_lr_power 2.
///
/// ```text
/// γ_k = lr · min(1, (k+1)/warmup);  w_k = (k+1)^r · max_{j≤k} γ_j^p;  c = w_k / Σ w
/// g ← ∇f(y) + λy;  y ← lerp(y, z, c);  y ← y + γ(β(1−c) − 1)g;  z ← z − γg
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdScheduleFreeConfig {
    /// Learning rate.
    pub lr: f64,
    /// Interpolation β between the average x and the base iterate z (1 = primal averaging).
    pub momentum: f64,
    /// L2 weight decay, evaluated at y.
    pub weight_decay: f64,
    /// Linear learning-rate warmup steps (built in).
    pub warmup_steps: u64,
    /// Polynomial weighting exponent r of the average.
    pub r: f64,
    /// Exponent p of the lr-weighting of the average (`γmax^p`).
    pub weight_lr_power: f64,
    /// Per-parameter overrides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub param_groups: Vec<ParamGroup>,
}

impl Default for SgdScheduleFreeConfig {
    fn default() -> Self {
        Self {
            lr: 1.0,
            momentum: 0.9,
            weight_decay: 0.0,
            warmup_steps: 0,
            r: 0.0,
            weight_lr_power: 2.0,
            param_groups: vec![],
        }
    }
}

/// Which `AdamWScheduleFree` release to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SfAdamVariant {
    /// v1.3 and later: bias-corrected denominator `√(v/(1−β2^{k+1})) + ε`.
    #[default]
    Current,
    /// `AdamWScheduleFreePaper` (pre-1.3): `γ_k = lr·sched·√(1−β2^{k+1})` and denominator `√v + ε`.
    Paper,
}

/// Schedule-Free AdamW (`schedulefree.AdamWScheduleFree`, v1.3). Defaults: lr 0.0025,
/// betas (0.9, 0.999), eps 1e-8, weight_decay 0, warmup_steps 0, r 0, weight_lr_power 2.
/// `betas[0]` is the interpolation β; there is no first moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWScheduleFreeConfig {
    /// Learning rate.
    pub lr: f64,
    /// (β, β2): interpolation and second-moment decay.
    pub betas: [f64; 2],
    /// ε.
    pub eps: f64,
    /// Weight decay, evaluated at y and applied through z.
    pub weight_decay: f64,
    /// Linear learning-rate warmup steps (built in).
    pub warmup_steps: u64,
    /// Polynomial weighting exponent r.
    pub r: f64,
    /// Exponent p of the lr-weighting of the average.
    pub weight_lr_power: f64,
    /// Which release's formulas to follow.
    pub variant: SfAdamVariant,
    /// Per-parameter overrides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub param_groups: Vec<ParamGroup>,
}

impl Default for AdamWScheduleFreeConfig {
    fn default() -> Self {
        Self {
            lr: 0.0025,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.0,
            warmup_steps: 0,
            r: 0.0,
            weight_lr_power: 2.0,
            variant: SfAdamVariant::Current,
            param_groups: vec![],
        }
    }
}

/// A finite β > 0 (the eval switch divides by it). Spec §3.5 recommends β ≥ 0.5 for accuracy.
fn check_sf_beta(field: &str, beta: f64) -> Result<(), ConfigError> {
    if beta > 0.0 && beta <= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            beta,
            "must be in (0, 1] (x is recovered as (y − (1−β)z)/β)",
        ))
    }
}

fn check_weighting(r: f64, weight_lr_power: f64) -> Result<(), ConfigError> {
    check_nonneg("r", r)?;
    check_nonneg("weight_lr_power", weight_lr_power)
}

impl SgdScheduleFreeConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_lr("lr", self.lr)?;
        check_sf_beta("momentum", self.momentum)?;
        check_nonneg("weight_decay", self.weight_decay)?;
        check_weighting(self.r, self.weight_lr_power)
    }
}

impl AdamWScheduleFreeConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_lr("lr", self.lr)?;
        check_sf_beta("betas[0]", self.betas[0])?;
        check_unit("betas[1]", self.betas[1])?;
        check_nonneg("eps", self.eps)?;
        check_nonneg("weight_decay", self.weight_decay)?;
        check_weighting(self.r, self.weight_lr_power)
    }
}

/// The averaging weights of Schedule-Free (spec §3.2): one instance per parameter group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AveragingWeights {
    /// Steps taken (k).
    pub k: u64,
    /// max_j γ_j so far (−1 before the first step).
    pub lr_max: f64,
    /// Σ w.
    pub weight_sum: f64,
}

impl AveragingWeights {
    pub(crate) fn new() -> Self {
        Self {
            k: 0,
            lr_max: -1.0,
            weight_sum: 0.0,
        }
    }

    /// Advances one step with the warmed-up lr `lr_k`; returns `c_{k+1}`.
    pub(crate) fn advance(&mut self, lr_k: f64, r: f64, weight_lr_power: f64) -> f64 {
        self.lr_max = self.lr_max.max(lr_k);
        let weight = ((self.k + 1) as f64).powf(r) * self.lr_max.powf(weight_lr_power);
        self.weight_sum += weight;
        self.k += 1;
        if self.weight_sum != 0.0 {
            weight / self.weight_sum
        } else {
            0.0
        }
    }
}

/// `min(1, (k+1)/warmup)`: the built-in linear warmup at step k (0-based).
pub(crate) fn warmup_factor(k: u64, warmup_steps: u64) -> f64 {
    if k < warmup_steps {
        (k + 1) as f64 / warmup_steps as f64
    } else {
        1.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Sgd,
    AdamW {
        beta2: f64,
        eps: f64,
        variant: SfAdamVariant,
    },
}

struct SfParam {
    lr: f64,
    weight_decay: f64,
    weights: AveragingWeights,
    z: Option<Vec<f32>>,
    v: Vec<f32>,
}

pub(crate) struct ScheduleFree {
    kind: Kind,
    beta: f64,
    warmup_steps: u64,
    r: f64,
    weight_lr_power: f64,
    params: Vec<SfParam>,
    train_mode: bool,
    steps: u64,
    lr_scale: f64,
}

impl ScheduleFree {
    #[allow(clippy::too_many_arguments)]
    fn new(
        kind: Kind,
        beta: f64,
        lr: f64,
        weight_decay: f64,
        warmup_steps: u64,
        r: f64,
        p: f64,
        groups: &[ParamGroup],
        params: &[Param],
    ) -> Result<Self, ConfigError> {
        let resolved = resolve_groups(groups, params)?;
        let states = params
            .iter()
            .zip(resolved)
            .map(|(p, r)| SfParam {
                lr: r.lr.unwrap_or(lr),
                weight_decay: r.weight_decay.unwrap_or(weight_decay),
                weights: AveragingWeights::new(),
                z: None,
                v: if matches!(kind, Kind::AdamW { .. }) {
                    vec![0.0; p.value.len()]
                } else {
                    vec![]
                },
            })
            .collect();
        Ok(Self {
            kind,
            beta,
            warmup_steps,
            r,
            weight_lr_power: p,
            params: states,
            train_mode: true,
            steps: 0,
            lr_scale: 1.0,
        })
    }

    pub(crate) fn new_sgd(
        c: &SgdScheduleFreeConfig,
        params: &[Param],
    ) -> Result<Self, ConfigError> {
        Self::new(
            Kind::Sgd,
            c.momentum,
            c.lr,
            c.weight_decay,
            c.warmup_steps,
            c.r,
            c.weight_lr_power,
            &c.param_groups,
            params,
        )
    }

    pub(crate) fn new_adamw(
        c: &AdamWScheduleFreeConfig,
        params: &[Param],
    ) -> Result<Self, ConfigError> {
        let kind = Kind::AdamW {
            beta2: c.betas[1],
            eps: c.eps,
            variant: c.variant,
        };
        Self::new(
            kind,
            c.betas[0],
            c.lr,
            c.weight_decay,
            c.warmup_steps,
            c.r,
            c.weight_lr_power,
            &c.param_groups,
            params,
        )
    }

    fn method(&self) -> &'static str {
        match self.kind {
            Kind::Sgd => "sgd_schedulefree",
            Kind::AdamW { .. } => "adamw_schedulefree",
        }
    }
}

impl Optimizer for ScheduleFree {
    fn step(&mut self, params: &mut [Param], grads: &[Tensor]) -> Result<(), OptimError> {
        if !self.train_mode {
            return Err(OptimError::EvalMode {
                method: self.method(),
            });
        }
        check_grads(params, grads)?;
        for ((p, g), st) in params.iter_mut().zip(grads).zip(&mut self.params) {
            let k = st.weights.k;
            let mut lr_k = st.lr * self.lr_scale * warmup_factor(k, self.warmup_steps);
            let mut bias_correction2 = 1.0;
            if let Kind::AdamW { beta2, variant, .. } = self.kind {
                let bc2 = 1.0 - beta2.powf((k + 1) as f64);
                match variant {
                    SfAdamVariant::Current => bias_correction2 = bc2,
                    SfAdamVariant::Paper => lr_k *= bc2.sqrt(),
                }
            }
            let ckp1 = st.weights.advance(lr_k, self.r, self.weight_lr_power);
            let (beta2, eps) = match self.kind {
                Kind::AdamW { beta2, eps, .. } => (beta2, eps),
                Kind::Sgd => (0.0, 0.0),
            };
            let s = ScheduleFreeScalars {
                lr: lr_k as f32,
                ckp1: ckp1 as f32,
                y_step: (lr_k * (self.beta * (1.0 - ckp1) - 1.0)) as f32,
                weight_decay: st.weight_decay as f32,
                beta2: beta2 as f32,
                one_minus_beta2: (1.0 - beta2) as f32,
                eps: eps as f32,
                bias_correction2: bias_correction2 as f32,
            };
            let y = p.value.data_mut();
            let z = st.z.get_or_insert_with(|| y.to_vec());
            match self.kind {
                Kind::Sgd => sgd_schedulefree_step(y, z, g.data(), &s),
                Kind::AdamW { .. } => adamw_schedulefree_step(y, z, &mut st.v, g.data(), &s),
            }
        }
        self.steps += 1;
        Ok(())
    }

    fn eval_params(&self, params: &[Param]) -> Vec<Tensor> {
        params
            .iter()
            .zip(&self.params)
            .map(|(p, st)| {
                let mut x = p.value.clone();
                if let (true, Some(z)) = (self.train_mode, &st.z) {
                    lerp_towards(x.data_mut(), z, (1.0 - 1.0 / self.beta) as f32);
                }
                x
            })
            .collect()
    }

    fn set_train_mode(&mut self, params: &mut [Param], train: bool) {
        if train == self.train_mode {
            return;
        }
        let w = if train {
            1.0 - self.beta
        } else {
            1.0 - 1.0 / self.beta
        };
        for (p, st) in params.iter_mut().zip(&self.params) {
            if let Some(z) = &st.z {
                lerp_towards(p.value.data_mut(), z, w as f32);
            }
        }
        self.train_mode = train;
    }

    fn is_train_mode(&self) -> bool {
        self.train_mode
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.lr_scale = scale;
    }

    fn steps_taken(&self) -> u64 {
        self.steps
    }
}
