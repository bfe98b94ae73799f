//! SGD with PyTorch semantics (spec §0.1).

use serde::{Deserialize, Serialize};

use super::elementwise::{sgd_step, SgdScalars};
use super::{
    check_grads, check_lr, check_nonneg, resolve_groups, ConfigError, OptimError, Optimizer, Param,
    ParamGroup,
};
use crate::tensor::Tensor;

/// `torch.optim.SGD`: momentum μ (buffer set to the raw gradient on the first step), dampening τ,
/// Nesterov, L2 weight decay added to the gradient. Defaults are PyTorch's (lr 1e-3 since 2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// Learning rate η.
    pub lr: f64,
    /// Momentum μ.
    pub momentum: f64,
    /// Dampening τ (not applied on the first step).
    pub dampening: f64,
    /// L2 penalty λ, added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum (requires μ > 0, τ = 0).
    pub nesterov: bool,
    /// Maximize the objective.
    pub maximize: bool,
    /// Per-parameter overrides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub param_groups: Vec<ParamGroup>,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
            param_groups: vec![],
        }
    }
}

impl SgdConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_lr("lr", self.lr)?;
        check_nonneg("momentum", self.momentum)?;
        check_nonneg("dampening", self.dampening)?;
        check_nonneg("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(ConfigError::invalid(
                "nesterov",
                true,
                "requires momentum > 0 and dampening = 0 (as torch.optim.SGD)",
            ));
        }
        Ok(())
    }
}

pub(crate) struct Sgd {
    cfg: SgdConfig,
    per_param: Vec<(f64, f64)>,
    buffers: Vec<Vec<f32>>,
    steps: u64,
    lr_scale: f64,
}

impl Sgd {
    pub(crate) fn new(cfg: &SgdConfig, params: &[Param]) -> Result<Self, ConfigError> {
        let per_param = resolve_groups(&cfg.param_groups, params)?
            .into_iter()
            .map(|r| {
                (
                    r.lr.unwrap_or(cfg.lr),
                    r.weight_decay.unwrap_or(cfg.weight_decay),
                )
            })
            .collect();
        let buffers = params
            .iter()
            .map(|p| {
                if cfg.momentum != 0.0 {
                    vec![0.0; p.value.len()]
                } else {
                    vec![]
                }
            })
            .collect();
        Ok(Self {
            cfg: cfg.clone(),
            per_param,
            buffers,
            steps: 0,
            lr_scale: 1.0,
        })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [Param], grads: &[Tensor]) -> Result<(), OptimError> {
        check_grads(params, grads)?;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let (lr, wd) = self.per_param[i];
            let s = SgdScalars {
                lr: (lr * self.lr_scale) as f32,
                momentum: self.cfg.momentum as f32,
                one_minus_dampening: (1.0 - self.cfg.dampening) as f32,
                weight_decay: wd as f32,
                nesterov: self.cfg.nesterov,
                maximize: self.cfg.maximize,
                first_step: self.steps == 0,
            };
            sgd_step(p.value.data_mut(), g.data(), &mut self.buffers[i], &s);
        }
        self.steps += 1;
        Ok(())
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.lr_scale = scale;
    }

    fn steps_taken(&self) -> u64 {
        self.steps
    }
}
