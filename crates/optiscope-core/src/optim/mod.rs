//! Optimizers: one serde config per method (tagged by `"name"`, PyTorch-style field names, the
//! reference implementation's defaults) and its CPU executor.
//!
//! An optimizer works on named parameter tensors ([`Param`]) and receives one gradient per
//! parameter each step. Per-group settings follow PyTorch's parameter groups: a config's
//! `param_groups` list overrides `lr` and `weight_decay` (and, for the matrix methods, whether a
//! parameter is orthogonalized) for the parameters it names.

mod adablock;
mod adam;
mod amuse;
mod mezo;
mod muon;
mod proxgen;
mod registry;
mod schedulefree;
mod sgd;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::config::ConfigError;
use crate::device::{Cpu, DeviceError, OptimOps};
use crate::linalg::SvdError;
use crate::tensor::Tensor;
pub use crate::tensor::{Param, ParamRole};

pub use adablock::AdaBlockConfig;
pub use adam::{AdamConfig, AdamWConfig, EpsMode};
pub use amuse::{amuse_beta, AmuseAuxConfig, AmuseConfig};
pub use mezo::{
    block_at, layer_blocks, mezo_update, spsa_estimate, step_key, BlockSchedule,
    CounterPerturbation, MezoBcdConfig, MezoConfig, Perturbation, ZoPlan, ZoStep,
};
pub use muon::{AdjustLrFn, AuxAdamConfig, MuonConfig, OrthogonalizerKind, Route, SpecGdConfig};
pub use proxgen::{AdamSubgradientConfig, ProxGenConfig, ProxSgdConfig};
pub use registry::{MethodInfo, OptimizerMethod};
pub use schedulefree::{AdamWScheduleFreeConfig, SfAdamVariant, SgdScheduleFreeConfig};
pub use sgd::SgdConfig;

/// A per-group override of hyperparameters, PyTorch's parameter groups by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ParamGroup {
    /// Names of the parameters this group applies to.
    pub params: Vec<String>,
    /// Learning rate for these parameters (for matrix methods: of whichever part handles them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Weight decay for these parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// Matrix methods only: force orthogonalized updates on (`true`) or the auxiliary AdamW (`false`),
    /// like the reference's `use_muon` group flag. It overrides the parameter's role; `true` on a
    /// tensor of rank < 2 orthogonalizes it as the diagonal matrix `diag(v)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_muon: Option<bool>,
}

registry::optimizer_registry! {
    /// SGD with momentum, dampening, Nesterov and L2 weight decay (`torch.optim.SGD`).
    "sgd" => Sgd(SgdConfig),
    /// Adam with L2 weight decay folded into the gradient (`torch.optim.Adam`).
    "adam" => Adam(AdamConfig),
    /// AdamW with decoupled weight decay (`torch.optim.AdamW`).
    "adamw" => Adamw(AdamWConfig),
    /// Muon: momentum orthogonalized by Newton–Schulz (KellerJordan/Muon).
    "muon" => Muon(MuonConfig),
    /// SpecGD: exact spectral gradient descent, `W ← W − η U Vᵀ` (arXiv 2602.06385).
    "specgd" => Specgd(SpecGdConfig),
    /// Schedule-Free SGD (facebookresearch/schedule_free `SGDScheduleFree`).
    "sgd_schedulefree" => SgdSchedulefree(SgdScheduleFreeConfig),
    /// Schedule-Free AdamW (facebookresearch/schedule_free `AdamWScheduleFree`).
    "adamw_schedulefree" => AdamwSchedulefree(AdamWScheduleFreeConfig),
    /// AMUSE: Muon with Schedule-Free averaging and a growing interpolation β (kjeiun/amuse).
    "amuse" => Amuse(AmuseConfig),
    /// ProxGen: Adam with the closed-form prox of an l1/l0/l1/2/l2/3 penalty in Adam's metric (abcdxyzpqrst/proxgen).
    "proxgen" => Proxgen(ProxGenConfig),
    /// Proximal SGD: ProxGen with the identity preconditioner.
    "prox_sgd" => ProxSgd(ProxSgdConfig),
    /// ProxGen's subgradient baseline: AdamW on f + λR with R's subgradient.
    "adamw_subgradient" => AdamwSubgradient(AdamSubgradientConfig),
    /// AdaBlockW: Adam with a full second-moment matrix per block of output units (Yun et al. 2022).
    "adablock" => Adablock(AdaBlockConfig),
    /// MeZO: zeroth-order SGD from two forward passes (princeton-nlp/MeZO).
    "mezo" => Mezo(MezoConfig),
    /// MeZO-BCD: MeZO on one block of parameters per step (arXiv 2501.19099).
    "mezo_bcd" => MezoBcd(MezoBcdConfig),
}

/// Setting one field of an optimizer's config by name ([`OptimizerConfig::set_field`]) failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FieldError {
    /// The optimizer has no such field.
    #[error("the optimizer {optimizer} has no `{field}` ({})", who_has_it(have))]
    Missing {
        /// The optimizer's name.
        optimizer: &'static str,
        /// The field asked for.
        field: String,
        /// The optimizers that have it.
        have: Vec<&'static str>,
    },
    /// The value does not fit the field (the deserializer's message).
    #[error("{0}")]
    Invalid(String),
}

/// `"adablock has it"`, `"proxgen and prox_sgd have it"`, `"sgd, adam and adamw have it"`.
pub fn who_has_it(have: &[&str]) -> String {
    match have {
        [] => "no optimizer has it".into(),
        [one] => format!("{one} has it"),
        [rest @ .., last] => format!("{} and {last} have it", rest.join(", ")),
    }
}

impl OptimizerConfig {
    /// Whether the method is zeroth-order (MeZO, MeZO-BCD): it trains from forward passes.
    pub fn is_zeroth_order(&self) -> bool {
        matches!(self, Self::Mezo(_) | Self::MezoBcd(_))
    }

    /// [`Self::validate`], then refuses a zeroth-order method for a model trained from exact
    /// gradients: the error names `field` and says `allowed`.
    pub fn validate_first_order(&self, field: &str, allowed: &str) -> Result<(), ConfigError> {
        self.validate()?;
        if self.is_zeroth_order() {
            return Err(ConfigError::invalid(field, self.name(), allowed));
        }
        Ok(())
    }

    /// The optimizers whose config has the top-level field `field`, in registry order.
    pub fn methods_with_field(field: &str) -> Vec<&'static str> {
        METHODS
            .iter()
            .filter(|m| {
                Self::default_for(m.name)
                    .and_then(|c| serde_json::to_value(c).ok())
                    .is_some_and(|v| v.get(field).is_some())
            })
            .map(|m| m.name)
            .collect()
    }

    /// Sets the top-level field `field` (one only some optimizers have, such as `penalty` or
    /// `groups`) to `value`, through the config's JSON form so that every method is served by its
    /// own serde definition. The config is unchanged on error.
    pub fn set_field(&mut self, field: &str, value: serde_json::Value) -> Result<(), FieldError> {
        let mut json =
            serde_json::to_value(&*self).map_err(|e| FieldError::Invalid(e.to_string()))?;
        match json.get_mut(field) {
            Some(slot) => *slot = value,
            None => {
                return Err(FieldError::Missing {
                    optimizer: self.name(),
                    field: field.to_string(),
                    have: Self::methods_with_field(field),
                })
            }
        }
        *self = serde_json::from_value(json).map_err(|e| FieldError::Invalid(e.to_string()))?;
        Ok(())
    }

    /// Validates the config and builds its executor on `dev` for `params` (their names, shapes and
    /// roles; the values are not read).
    pub fn build_on<D: OptimOps + 'static>(
        &self,
        dev: &mut D,
        params: &[Param],
    ) -> Result<Box<dyn Executor<D>>, ConfigError> {
        self.validate()?;
        let mut names = std::collections::HashSet::new();
        for p in params {
            p.check_role()?;
            if !names.insert(p.name.as_str()) {
                return Err(ConfigError::invalid(
                    "params",
                    &p.name,
                    "parameter names must be unique",
                ));
            }
        }
        self.build_method(dev, params)
    }

    /// Validates the config and builds its CPU executor for `params`.
    pub fn build(&self, params: &[Param]) -> Result<Box<dyn Optimizer>, ConfigError> {
        Ok(Box::new(CpuOptimizer {
            exec: self.build_on(&mut Cpu, params)?,
        }))
    }
}

/// An optimizer's executor on a device ([`OptimOps`]): the method's logic, written once for every device.
/// Parameters and gradients are device buffers, one per parameter in the order given to
/// [`OptimizerConfig::build_on`]; their lengths are the caller's to check ([`check_grads`]).
pub trait Executor<D: OptimOps>: Send {
    /// One update of `params` with `grads` evaluated at the current `params` (for Schedule-Free
    /// and AMUSE, the train-mode point `y`).
    fn step(
        &mut self,
        dev: &mut D,
        params: &mut [D::Buf],
        grads: &[&D::Buf],
    ) -> Result<(), OptimError>;

    /// Copies of the evaluation point: Schedule-Free's and AMUSE's averaged `x`; the parameters
    /// themselves for every other method.
    fn eval_params(&self, dev: &mut D, params: &[D::Buf]) -> Vec<D::Buf> {
        params.iter().map(|p| dev.duplicate(p)).collect()
    }

    /// Switches between train mode (`params` hold the gradient point) and eval mode (`params` hold
    /// the evaluation point). A no-op for methods without modes; idempotent.
    fn set_train_mode(&mut self, _dev: &mut D, _params: &mut [D::Buf], _train: bool) {}

    /// Whether the executor is in train mode (always true for methods without modes).
    fn is_train_mode(&self) -> bool {
        true
    }

    /// Multiplies every learning rate by `scale` from the next step on.
    fn set_lr_scale(&mut self, scale: f64);

    /// Number of steps taken.
    fn steps_taken(&self) -> u64;

    /// Zeroth-order methods (MeZO): the perturbations their gradient source must evaluate.
    /// `None` (every other method): the source backpropagates and [`Executor::step`] is called.
    fn zeroth_order(&self) -> Option<ZoPlan> {
        None
    }

    /// A zeroth-order method's update from the step's projected gradient.
    fn step_projected(
        &mut self,
        _dev: &mut D,
        _params: &mut [D::Buf],
        _zo: &ZoStep,
    ) -> Result<(), OptimError> {
        Err(OptimError::NotZerothOrder)
    }

    /// Adam's second moment `v` of parameter `index` with the step count `t` of its bias
    /// correction (`v̂ = v / (1 − β2ᵗ)`): what revised ProxQuant (ProxGen) divides by. `None` for
    /// methods that keep none.
    fn second_moment(&self, _index: usize) -> Option<SecondMoment<'_, D>> {
        None
    }

    /// Shows every piece of mutable state (moments, averages, counters) to `v` by a stable name,
    /// so checkpoints can save it and restore it bit for bit. Per-parameter names start with the
    /// parameter's index: `0.exp_avg`, `0.exp_avg_sq`, …
    fn visit_state(&mut self, v: &mut dyn StateVisitor<D>);
}

/// An optimizer's second moment of one parameter ([`Executor::second_moment`]).
pub struct SecondMoment<'a, D: OptimOps> {
    /// The running average of squared gradients, not bias-corrected.
    pub v: &'a D::Buf,
    /// The steps it has averaged (its bias correction is `1 − β2^step`).
    pub step: u64,
}

/// Walks an executor's state ([`Executor::visit_state`]): a saver reads each item, a loader
/// overwrites it.
pub trait StateVisitor<D: OptimOps> {
    /// A tensor that always exists.
    fn buf(&mut self, name: &str, buf: &mut D::Buf);
    /// A tensor created lazily on the first step.
    fn opt_buf(&mut self, name: &str, buf: &mut Option<D::Buf>);
    /// A real number.
    fn scalar(&mut self, name: &str, value: &mut f64);
    /// A counter.
    fn count(&mut self, name: &str, value: &mut u64);
    /// A flag.
    fn flag(&mut self, name: &str, value: &mut bool);
}

/// The CPU executor behind the host-side [`Optimizer`] interface.
struct CpuOptimizer {
    exec: Box<dyn Executor<Cpu>>,
}

impl CpuOptimizer {
    /// Runs `f` on the parameters' data moved out of their tensors (no copies), then moves it back.
    fn with_buffers<T>(params: &mut [Param], f: impl FnOnce(&mut [Vec<f32>]) -> T) -> T {
        let mut bufs: Vec<Vec<f32>> = params
            .iter_mut()
            .map(|p| std::mem::take(p.value.data_vec_mut()))
            .collect();
        let out = f(&mut bufs);
        for (p, b) in params.iter_mut().zip(bufs) {
            *p.value.data_vec_mut() = b;
        }
        out
    }
}

impl Optimizer for CpuOptimizer {
    fn step(&mut self, params: &mut [Param], grads: &[Tensor]) -> Result<(), OptimError> {
        check_grads(params, grads)?;
        let grads: Vec<&Vec<f32>> = grads.iter().map(Tensor::data_vec).collect();
        let exec = &mut self.exec;
        Self::with_buffers(params, |bufs| exec.step(&mut Cpu, bufs, &grads))
    }

    fn eval_params(&self, params: &[Param]) -> Vec<Tensor> {
        let bufs: Vec<Vec<f32>> = params.iter().map(|p| p.value.data().to_vec()).collect();
        let eval = self.exec.eval_params(&mut Cpu, &bufs);
        params
            .iter()
            .zip(eval)
            .map(|(p, data)| Tensor::sized(p.value.shape().to_vec(), data))
            .collect()
    }

    fn set_train_mode(&mut self, params: &mut [Param], train: bool) {
        let exec = &mut self.exec;
        Self::with_buffers(params, |bufs| exec.set_train_mode(&mut Cpu, bufs, train));
    }

    fn is_train_mode(&self) -> bool {
        self.exec.is_train_mode()
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.exec.set_lr_scale(scale);
    }

    fn steps_taken(&self) -> u64 {
        self.exec.steps_taken()
    }

    fn zeroth_order(&self) -> Option<ZoPlan> {
        self.exec.zeroth_order()
    }

    fn step_projected(&mut self, params: &mut [Param], zo: &ZoStep) -> Result<(), OptimError> {
        let exec = &mut self.exec;
        Self::with_buffers(params, |bufs| exec.step_projected(&mut Cpu, bufs, zo))
    }
}

/// An optimizer on host parameters: what experiments, `optiscope replay` and the explorer use.
/// [`OptimizerConfig::build`] gives the CPU executor; `optiscope-gpu` provides a GPU one.
pub trait Optimizer: Send {
    /// One update of `params` with `grads` (one per parameter, same order and lengths). The
    /// gradients must have been evaluated at the current `params` (for Schedule-Free and AMUSE,
    /// the train-mode point `y`).
    fn step(&mut self, params: &mut [Param], grads: &[Tensor]) -> Result<(), OptimError>;

    /// The point at which the model is evaluated: Schedule-Free's and AMUSE's averaged `x`; the
    /// parameters themselves for every other method.
    fn eval_params(&self, params: &[Param]) -> Vec<Tensor> {
        params.iter().map(|p| p.value.clone()).collect()
    }

    /// Switches between train mode (`params` hold the gradient point) and eval mode (`params` hold
    /// the evaluation point). A no-op for methods without modes; idempotent.
    fn set_train_mode(&mut self, _params: &mut [Param], _train: bool) {}

    /// Whether the optimizer is in train mode (always true for methods without modes).
    fn is_train_mode(&self) -> bool {
        true
    }

    /// Multiplies every learning rate by `scale` from the next step on (an external schedule,
    /// e.g. a linear warmup of a run). Default 1.
    fn set_lr_scale(&mut self, scale: f64);

    /// Number of steps taken.
    fn steps_taken(&self) -> u64;

    /// Zeroth-order methods (MeZO): what to perturb ([`Executor::zeroth_order`]); `None` for
    /// gradient methods. [`zeroth_order_step`] runs a whole step with it.
    fn zeroth_order(&self) -> Option<ZoPlan> {
        None
    }

    /// A zeroth-order method's update from the projected gradient ([`Executor::step_projected`]).
    fn step_projected(&mut self, _params: &mut [Param], _zo: &ZoStep) -> Result<(), OptimError> {
        Err(OptimError::NotZerothOrder)
    }
}

/// One step of a zeroth-order optimizer on host parameters (what experiments on a landscape
/// do): the two-point estimate of `loss` at the perturbations of step `step` of a run seeded
/// `seed`, computed on the host, then the optimizer's update. Returns the step with its projected
/// gradient. Errors with [`OptimError::NotZerothOrder`] for gradient methods.
pub fn zeroth_order_step(
    opt: &mut dyn Optimizer,
    params: &mut [Param],
    seed: u64,
    step: u64,
    mut loss: impl FnMut(&[Tensor]) -> f64,
) -> Result<ZoStep, OptimError> {
    let plan = opt.zeroth_order().ok_or(OptimError::NotZerothOrder)?;
    let mut zo = plan.at(seed, step);
    let mut z = CounterPerturbation { key: zo.key };
    let shapes: Vec<Vec<usize>> = params.iter().map(|p| p.value.shape().to_vec()).collect();
    let (_, _, g) = CpuOptimizer::with_buffers(params, |bufs| {
        spsa_estimate(&mut Cpu, bufs, &zo.active, plan.eps, &mut z, |_, bufs| {
            let values: Vec<Tensor> = bufs
                .iter()
                .zip(&shapes)
                .map(|(b, s)| Tensor::sized(s.clone(), b.clone()))
                .collect();
            Ok::<f64, OptimError>(loss(&values))
        })
    })?;
    zo.projected_grad = g;
    opt.step_projected(params, &zo)?;
    Ok(zo)
}

/// A step could not be taken.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OptimError {
    /// The number of gradients differs from the number of parameters.
    #[error("got {got} gradients for {expected} parameters")]
    GradCount {
        /// Parameters.
        expected: usize,
        /// Gradients.
        got: usize,
    },
    /// A gradient's length differs from its parameter's.
    #[error(
        "gradient for {name:?} has {got} values, the parameter has {expected} (shape {shape:?})"
    )]
    GradLength {
        /// Parameter name.
        name: String,
        /// Parameter length.
        expected: usize,
        /// Gradient length.
        got: usize,
        /// Parameter shape.
        shape: Vec<usize>,
    },
    /// `step` was called in eval mode (Schedule-Free, AMUSE).
    #[error("{method}: step() called in eval mode; switch to train mode first (the reference raises here too)")]
    EvalMode {
        /// The method.
        method: &'static str,
    },
    /// An SVD did not converge.
    #[error(transparent)]
    Svd(#[from] SvdError),
    /// The device executing the step failed (e.g. a lost GPU or a failed read-back).
    #[error("device: {0}")]
    Device(String),
    /// A zeroth-order method (MeZO) was handed gradients.
    #[error("a zeroth-order optimizer (mezo, mezo_bcd) steps from the projected gradient of two forward passes, not from gradients: run it in a trainer or an experiment")]
    ZerothOrder,
    /// A gradient method was asked for a zeroth-order step.
    #[error(
        "this optimizer steps from gradients; only mezo and mezo_bcd take a projected gradient"
    )]
    NotZerothOrder,
    /// A step's input is NaN or infinite.
    #[error("{0} is not finite")]
    NonFinite(String),
}

impl From<DeviceError> for OptimError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::Svd(e) => OptimError::Svd(e),
            other => OptimError::Device(other.to_string()),
        }
    }
}

/// Checks that there is one gradient per parameter, each of its parameter's length.
pub fn check_grads(params: &[Param], grads: &[Tensor]) -> Result<(), OptimError> {
    if params.len() != grads.len() {
        return Err(OptimError::GradCount {
            expected: params.len(),
            got: grads.len(),
        });
    }
    for (p, g) in params.iter().zip(grads) {
        if p.value.len() != g.len() {
            return Err(OptimError::GradLength {
                name: p.name.clone(),
                expected: p.value.len(),
                got: g.len(),
                shape: p.value.shape().to_vec(),
            });
        }
    }
    Ok(())
}

// ---- validation helpers ---------------------------------------------------------------------

pub(crate) fn check_lr(field: &str, lr: f64) -> Result<(), ConfigError> {
    if lr.is_finite() && lr > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            lr,
            "must be a finite number > 0",
        ))
    }
}

pub(crate) fn check_nonneg(field: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            v,
            "must be a finite number >= 0",
        ))
    }
}

/// `v ∈ [0, 1)`: betas, momenta.
pub(crate) fn check_unit(field: &str, v: f64) -> Result<(), ConfigError> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, v, "must be in [0, 1)"))
    }
}

pub(crate) fn check_betas(field: &str, betas: [f64; 2]) -> Result<(), ConfigError> {
    check_unit(&format!("{field}[0]"), betas[0])?;
    check_unit(&format!("{field}[1]"), betas[1])
}

/// Per-parameter settings after applying `param_groups`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Resolved {
    pub lr: Option<f64>,
    pub weight_decay: Option<f64>,
    pub use_muon: Option<bool>,
}

/// Applies `groups` to `params`: one [`Resolved`] per parameter (later groups win), with every
/// override validated.
pub(crate) fn resolve_groups(
    groups: &[ParamGroup],
    params: &[Param],
) -> Result<Vec<Resolved>, ConfigError> {
    let mut out = vec![
        Resolved {
            lr: None,
            weight_decay: None,
            use_muon: None
        };
        params.len()
    ];
    for (gi, g) in groups.iter().enumerate() {
        if let Some(lr) = g.lr {
            check_lr(&format!("param_groups[{gi}].lr"), lr)?;
        }
        if let Some(wd) = g.weight_decay {
            check_nonneg(&format!("param_groups[{gi}].weight_decay"), wd)?;
        }
        for name in &g.params {
            let Some(i) = params.iter().position(|p| &p.name == name) else {
                let known = params
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ConfigError::UnknownParam {
                    name: name.clone(),
                    known,
                });
            };
            out[i].lr = g.lr.or(out[i].lr);
            out[i].weight_decay = g.weight_decay.or(out[i].weight_decay);
            out[i].use_muon = g.use_muon.or(out[i].use_muon);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_method_lists_valid_names() {
        let err =
            serde_json::from_str::<OptimizerConfig>(r#"{"name": "adan", "lr": 0.1}"#).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("unknown variant `adan`")
                && msg.contains("`muon`")
                && msg.contains("`amuse`"),
            "{msg}"
        );
    }

    #[test]
    fn mistyped_field_is_named() {
        let err = serde_json::from_str::<OptimizerConfig>(
            r#"{"name": "muon", "aux_adam": {"betas": [0.9, "x"]}}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("aux_adam.betas[1]: invalid type: string \"x\", expected f64"),
            "{err}"
        );
    }

    #[test]
    fn unknown_field_is_rejected_with_the_valid_ones() {
        let err = serde_json::from_str::<OptimizerConfig>(r#"{"name": "adamw", "lrr": 0.1}"#)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("unknown field `lrr`") && msg.contains("`lr`"),
            "{msg}"
        );
    }

    #[test]
    fn defaults_are_the_references() {
        let OptimizerConfig::Adamw(c) = serde_json::from_str(r#"{"name": "adamw"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (c.lr, c.betas, c.eps, c.weight_decay),
            (1e-3, [0.9, 0.999], 1e-8, 1e-2)
        );
        let OptimizerConfig::Muon(m) = serde_json::from_str(r#"{"name": "muon"}"#).unwrap() else {
            panic!()
        };
        assert_eq!(
            (m.lr, m.momentum, m.nesterov, m.ns_steps),
            (0.02, 0.95, true, 5)
        );
        let OptimizerConfig::AdamwSchedulefree(s) =
            serde_json::from_str(r#"{"name": "adamw_schedulefree"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (s.lr, s.betas, s.warmup_steps, s.weight_lr_power),
            (0.0025, [0.9, 0.999], 0, 2.0)
        );
    }

    #[test]
    fn bad_values_name_field_value_and_rule() {
        let bad = |json: &str| {
            let c: OptimizerConfig = serde_json::from_str(json).unwrap();
            c.validate().unwrap_err().to_string()
        };
        assert_eq!(
            bad(r#"{"name": "sgd", "lr": -0.1}"#),
            "lr = -0.1: must be a finite number > 0"
        );
        assert_eq!(
            bad(r#"{"name": "adam", "betas": [0.9, 1.0]}"#),
            "betas[1] = 1: must be in [0, 1)"
        );
        assert_eq!(
            bad(r#"{"name": "sgd", "lr": 0.1, "nesterov": true}"#),
            "nesterov = true: requires momentum > 0 and dampening = 0 (as torch.optim.SGD)"
        );
        assert!(bad(r#"{"name": "amuse"}"#).starts_with("warmup_steps = 0: must be >= 1"));
    }

    #[test]
    fn param_groups_must_name_existing_params() {
        let c: OptimizerConfig = serde_json::from_str(
            r#"{"name": "sgd", "lr": 0.1, "param_groups": [{"params": ["w", "nope"], "lr": 0.5}]}"#,
        )
        .unwrap();
        let params = [Param::new("w", Tensor::zeros(&[2]))];
        let err = c.build(&params).err().unwrap();
        assert_eq!(
            err.to_string(),
            "param_groups names parameter \"nope\", which does not exist (parameters: w)"
        );
    }
}
