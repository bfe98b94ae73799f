//! SGD with PyTorch semantics (spec §0.1).

use serde::{Deserialize, Serialize};

use super::{
    check_lr, check_nonneg, resolve_groups, ConfigError, Executor, OptimError, Param, ParamGroup,
};
use crate::device::optim::elementwise::SgdScalars;
use crate::device::OptimOps;

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

pub(crate) struct Sgd<D: OptimOps> {
    cfg: SgdConfig,
    per_param: Vec<(f64, f64)>,
    buffers: Vec<D::Buf>,
    steps: u64,
    lr_scale: f64,
}

impl<D: OptimOps> Sgd<D> {
    pub(crate) fn new(dev: &mut D, cfg: &SgdConfig, params: &[Param]) -> Result<Self, ConfigError> {
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
                dev.zeros(if cfg.momentum != 0.0 {
                    p.value.len()
                } else {
                    0
                })
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

impl<D: OptimOps> Executor<D> for Sgd<D> {
    fn step(
        &mut self,
        dev: &mut D,
        params: &mut [D::Buf],
        grads: &[&D::Buf],
    ) -> Result<(), OptimError> {
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
            dev.sgd(p, g, &mut self.buffers[i], &s);
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

    fn visit_state(&mut self, v: &mut dyn super::StateVisitor<D>) {
        v.count("steps", &mut self.steps);
        for (i, b) in self.buffers.iter_mut().enumerate() {
            v.buf(&format!("{i}.momentum_buffer"), b);
        }
    }
}

super::registry::optimizer_method!(
    SgdConfig,
    "sgd",
    "SGD with momentum/dampening/Nesterov, L2 decay (torch.optim.SGD)",
    |cfg, dev, params| Sgd::new(dev, cfg, params)?
);
