//! Schedule-Free SGD and AdamW (Defazio, Yang, Mehta, Mishchenko, Khaled, Cutkosky, "The Road Less
//! Scheduled", arXiv 2405.15682; reference `facebookresearch/schedule_free`; spec §3), in the
//! memory-efficient form of the reference classes: the parameters hold `y` in train mode and `x`
//! in eval mode, and the optimizer keeps `z` (and `v`).

use serde::{Deserialize, Serialize};

use super::{
    check_lr, check_nonneg, check_unit, resolve_groups, ConfigError, Executor, OptimError, Param,
    ParamGroup,
};
use crate::device::optim::elementwise::ScheduleFreeScalars;
use crate::device::OptimOps;

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

struct SfParam<D: OptimOps> {
    lr: f64,
    weight_decay: f64,
    weights: AveragingWeights,
    z: Option<D::Buf>,
    v: D::Buf,
}

pub(crate) struct ScheduleFree<D: OptimOps> {
    kind: Kind,
    beta: f64,
    warmup_steps: u64,
    r: f64,
    weight_lr_power: f64,
    params: Vec<SfParam<D>>,
    train_mode: bool,
    steps: u64,
    lr_scale: f64,
}

/// What both Schedule-Free variants are built from.
struct SfSpec<'a> {
    kind: Kind,
    beta: f64,
    lr: f64,
    weight_decay: f64,
    warmup_steps: u64,
    r: f64,
    weight_lr_power: f64,
    groups: &'a [ParamGroup],
}

impl<D: OptimOps> ScheduleFree<D> {
    fn new(dev: &mut D, spec: SfSpec<'_>, params: &[Param]) -> Result<Self, ConfigError> {
        let resolved = resolve_groups(spec.groups, params)?;
        let states = params
            .iter()
            .zip(resolved)
            .map(|(p, r)| SfParam {
                lr: r.lr.unwrap_or(spec.lr),
                weight_decay: r.weight_decay.unwrap_or(spec.weight_decay),
                weights: AveragingWeights::new(),
                z: None,
                v: dev.zeros(if matches!(spec.kind, Kind::AdamW { .. }) {
                    p.value.len()
                } else {
                    0
                }),
            })
            .collect();
        Ok(Self {
            kind: spec.kind,
            beta: spec.beta,
            warmup_steps: spec.warmup_steps,
            r: spec.r,
            weight_lr_power: spec.weight_lr_power,
            params: states,
            train_mode: true,
            steps: 0,
            lr_scale: 1.0,
        })
    }

    pub(crate) fn new_sgd(
        dev: &mut D,
        c: &SgdScheduleFreeConfig,
        params: &[Param],
    ) -> Result<Self, ConfigError> {
        let spec = SfSpec {
            kind: Kind::Sgd,
            beta: c.momentum,
            lr: c.lr,
            weight_decay: c.weight_decay,
            warmup_steps: c.warmup_steps,
            r: c.r,
            weight_lr_power: c.weight_lr_power,
            groups: &c.param_groups,
        };
        Self::new(dev, spec, params)
    }

    pub(crate) fn new_adamw(
        dev: &mut D,
        c: &AdamWScheduleFreeConfig,
        params: &[Param],
    ) -> Result<Self, ConfigError> {
        let spec = SfSpec {
            kind: Kind::AdamW {
                beta2: c.betas[1],
                eps: c.eps,
                variant: c.variant,
            },
            beta: c.betas[0],
            lr: c.lr,
            weight_decay: c.weight_decay,
            warmup_steps: c.warmup_steps,
            r: c.r,
            weight_lr_power: c.weight_lr_power,
            groups: &c.param_groups,
        };
        Self::new(dev, spec, params)
    }

    fn method(&self) -> &'static str {
        match self.kind {
            Kind::Sgd => "sgd_schedulefree",
            Kind::AdamW { .. } => "adamw_schedulefree",
        }
    }
}

impl<D: OptimOps> Executor<D> for ScheduleFree<D> {
    fn step(
        &mut self,
        dev: &mut D,
        params: &mut [D::Buf],
        grads: &[&D::Buf],
    ) -> Result<(), OptimError> {
        if !self.train_mode {
            return Err(OptimError::EvalMode {
                method: self.method(),
            });
        }
        for ((y, g), st) in params.iter_mut().zip(grads).zip(&mut self.params) {
            let k = st.weights.k;
            let mut lr_k = st.lr * self.lr_scale * warmup_factor(k, self.warmup_steps);
            let (mut beta2, mut eps, mut bias_correction2) = (0.0, 0.0, 1.0);
            if let Kind::AdamW {
                beta2: b2,
                eps: e,
                variant,
            } = self.kind
            {
                (beta2, eps) = (b2, e);
                let bc2 = 1.0 - b2.powf((k + 1) as f64);
                match variant {
                    SfAdamVariant::Current => bias_correction2 = bc2,
                    SfAdamVariant::Paper => lr_k *= bc2.sqrt(),
                }
            }
            let ckp1 = st.weights.advance(lr_k, self.r, self.weight_lr_power);
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
            if st.z.is_none() {
                st.z = Some(dev.duplicate(y));
            }
            let Some(z) = st.z.as_mut() else {
                unreachable!("z was just set")
            };
            match self.kind {
                Kind::Sgd => dev.sgd_schedulefree(y, z, g, &s),
                Kind::AdamW { .. } => dev.adamw_schedulefree(y, z, &mut st.v, g, &s),
            }
        }
        self.steps += 1;
        Ok(())
    }

    fn eval_params(&self, dev: &mut D, params: &[D::Buf]) -> Vec<D::Buf> {
        params
            .iter()
            .zip(&self.params)
            .map(|(p, st)| {
                let mut x = dev.duplicate(p);
                if let (true, Some(z)) = (self.train_mode, &st.z) {
                    dev.lerp_towards(&mut x, z, (1.0 - 1.0 / self.beta) as f32);
                }
                x
            })
            .collect()
    }

    fn set_train_mode(&mut self, dev: &mut D, params: &mut [D::Buf], train: bool) {
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
                dev.lerp_towards(p, z, w as f32);
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

    fn visit_state(&mut self, v: &mut dyn super::StateVisitor<D>) {
        v.count("steps", &mut self.steps);
        v.flag("train_mode", &mut self.train_mode);
        for (i, p) in self.params.iter_mut().enumerate() {
            v.count(&format!("{i}.k"), &mut p.weights.k);
            v.scalar(&format!("{i}.lr_max"), &mut p.weights.lr_max);
            v.scalar(&format!("{i}.weight_sum"), &mut p.weights.weight_sum);
            v.opt_buf(&format!("{i}.z"), &mut p.z);
            v.buf(&format!("{i}.exp_avg_sq"), &mut p.v);
        }
    }
}

super::registry::optimizer_method!(
    SgdScheduleFreeConfig,
    "sgd_schedulefree",
    "Schedule-Free SGD (Defazio et al. 2024; facebookresearch/schedule_free)",
    |cfg, dev, params| ScheduleFree::new_sgd(dev, cfg, params)?
);

super::registry::optimizer_method!(
    AdamWScheduleFreeConfig,
    "adamw_schedulefree",
    "Schedule-Free AdamW v1.3 (facebookresearch/schedule_free)",
    |cfg, dev, params| ScheduleFree::new_adamw(dev, cfg, params)?
);
