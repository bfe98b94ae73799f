//! Adam and AdamW with PyTorch semantics (spec §0.2).

use serde::{Deserialize, Serialize};

use super::{
    check_betas, check_lr, check_nonneg, resolve_groups, ConfigError, Executor, OptimError, Param,
    ParamGroup,
};
use crate::device::optim::elementwise::AdamScalars;
use crate::device::OptimOps;

/// Where ε enters the Adam denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EpsMode {
    /// PyTorch: `η/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)` — ε added after bias-correcting v.
    #[default]
    AfterBiasCorrection,
    /// Kingma & Ba's algorithm as written: `η√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε)`.
    BeforeBiasCorrection,
}

macro_rules! adam_config {
    ($(#[$doc:meta])* $name:ident, $wd:expr, $decoupled:expr, $wd_doc:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// Learning rate η.
            pub lr: f64,
            /// (β1, β2): decay rates of the first and second moments.
            pub betas: [f64; 2],
            /// ε added to the denominator.
            pub eps: f64,
            #[doc = $wd_doc]
            pub weight_decay: f64,
            /// Use the running maximum of the second moment (AMSGrad).
            pub amsgrad: bool,
            /// Maximize the objective.
            pub maximize: bool,
            /// Where ε enters the denominator (PyTorch's form by default).
            pub eps_mode: EpsMode,
            /// Per-parameter overrides.
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub param_groups: Vec<ParamGroup>,
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    lr: 1e-3,
                    betas: [0.9, 0.999],
                    eps: 1e-8,
                    weight_decay: $wd,
                    amsgrad: false,
                    maximize: false,
                    eps_mode: EpsMode::AfterBiasCorrection,
                    param_groups: vec![],
                }
            }
        }

        impl $name {
            pub(crate) fn settings(&self) -> AdamSettings {
                AdamSettings {
                    lr: self.lr,
                    betas: self.betas,
                    eps: self.eps,
                    weight_decay: self.weight_decay,
                    decoupled: $decoupled,
                    amsgrad: self.amsgrad,
                    maximize: self.maximize,
                    eps_mode: self.eps_mode,
                }
            }

            pub(crate) fn validate(&self) -> Result<(), ConfigError> {
                check_lr("lr", self.lr)?;
                check_betas("betas", self.betas)?;
                check_nonneg("eps", self.eps)?;
                check_nonneg("weight_decay", self.weight_decay)
            }
        }
    };
}

adam_config!(
    /// `torch.optim.Adam` (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015):
    /// weight decay is an L2 term added to the gradient. Defaults: lr 1e-3, betas (0.9, 0.999),
    /// eps 1e-8, weight_decay 0.
    AdamConfig,
    0.0,
    false,
    "L2 penalty λ, added to the gradient."
);

adam_config!(
    /// `torch.optim.AdamW` (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019):
    /// `θ ← θ(1 − ηλ)` before the moment update. Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
    /// weight_decay 0.01.
    AdamWConfig,
    1e-2,
    true,
    "Decoupled weight decay λ: `θ ← θ(1 − ηλ)` before the update."
);

/// The settings both configs reduce to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AdamSettings {
    pub lr: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    pub amsgrad: bool,
    pub maximize: bool,
    pub eps_mode: EpsMode,
}

impl AdamSettings {
    /// The scalars of step `t` (1-based) with learning rate `lr` and decay `weight_decay`, computed
    /// in f64 and rounded once.
    pub(crate) fn scalars(&self, t: u64, lr: f64, weight_decay: f64) -> AdamScalars {
        let t = t as i32;
        let bc1 = 1.0 - self.betas[0].powi(t);
        let bc2 = 1.0 - self.betas[1].powi(t);
        let (step_size, bc2_sqrt) = match self.eps_mode {
            EpsMode::AfterBiasCorrection => (lr / bc1, bc2.sqrt()),
            EpsMode::BeforeBiasCorrection => (lr * bc2.sqrt() / bc1, 1.0),
        };
        AdamScalars {
            lr: lr as f32,
            one_minus_beta1: (1.0 - self.betas[0]) as f32,
            beta2: self.betas[1] as f32,
            one_minus_beta2: (1.0 - self.betas[1]) as f32,
            eps: self.eps as f32,
            weight_decay: weight_decay as f32,
            decoupled: self.decoupled,
            maximize: self.maximize,
            amsgrad: self.amsgrad,
            step_size: step_size as f32,
            bc2_sqrt: bc2_sqrt as f32,
        }
    }
}

/// Moments of one parameter; also used by the auxiliary AdamW of the matrix methods.
pub(crate) struct AdamState<D: OptimOps> {
    m: D::Buf,
    v: D::Buf,
    v_max: D::Buf,
    t: u64,
}

impl<D: OptimOps> AdamState<D> {
    /// Shows the moments and step counter to a state visitor, names prefixed by `prefix`.
    pub(crate) fn visit(&mut self, prefix: &str, v: &mut dyn super::StateVisitor<D>) {
        v.count(&format!("{prefix}step"), &mut self.t);
        v.buf(&format!("{prefix}exp_avg"), &mut self.m);
        v.buf(&format!("{prefix}exp_avg_sq"), &mut self.v);
        v.buf(&format!("{prefix}max_exp_avg_sq"), &mut self.v_max);
    }

    pub(crate) fn new(dev: &mut D, len: usize, amsgrad: bool) -> Self {
        Self {
            m: dev.zeros(len),
            v: dev.zeros(len),
            v_max: dev.zeros(if amsgrad { len } else { 0 }),
            t: 0,
        }
    }

    /// One step with learning rate `lr` and decay `weight_decay` (already resolved per parameter).
    pub(crate) fn update(
        &mut self,
        dev: &mut D,
        p: &mut D::Buf,
        g: &D::Buf,
        s: &AdamSettings,
        lr: f64,
        weight_decay: f64,
    ) {
        self.t += 1;
        let scalars = s.scalars(self.t, lr, weight_decay);
        dev.adam(p, g, &mut self.m, &mut self.v, &mut self.v_max, &scalars);
    }
}

pub(crate) struct Adam<D: OptimOps> {
    settings: AdamSettings,
    per_param: Vec<(f64, f64)>,
    states: Vec<AdamState<D>>,
    steps: u64,
    lr_scale: f64,
}

impl<D: OptimOps> Adam<D> {
    pub(crate) fn new(
        dev: &mut D,
        settings: AdamSettings,
        groups: &[ParamGroup],
        params: &[Param],
    ) -> Result<Self, ConfigError> {
        let per_param = resolve_groups(groups, params)?
            .into_iter()
            .map(|r| {
                (
                    r.lr.unwrap_or(settings.lr),
                    r.weight_decay.unwrap_or(settings.weight_decay),
                )
            })
            .collect();
        let states = params
            .iter()
            .map(|p| AdamState::new(dev, p.value.len(), settings.amsgrad))
            .collect();
        Ok(Self {
            settings,
            per_param,
            states,
            steps: 0,
            lr_scale: 1.0,
        })
    }
}

impl<D: OptimOps> Executor<D> for Adam<D> {
    fn step(
        &mut self,
        dev: &mut D,
        params: &mut [D::Buf],
        grads: &[&D::Buf],
    ) -> Result<(), OptimError> {
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let (lr, wd) = self.per_param[i];
            self.states[i].update(dev, p, g, &self.settings, lr * self.lr_scale, wd);
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

    fn second_moment(&self, index: usize) -> Option<super::SecondMoment<'_, D>> {
        let st = self.states.get(index)?;
        Some(super::SecondMoment {
            v: &st.v,
            step: st.t,
        })
    }

    fn visit_state(&mut self, v: &mut dyn super::StateVisitor<D>) {
        v.count("steps", &mut self.steps);
        for (i, st) in self.states.iter_mut().enumerate() {
            st.visit(&format!("{i}."), v);
        }
    }
}

super::registry::optimizer_method!(
    AdamConfig,
    "adam",
    "Adam, L2 decay in the gradient (Kingma & Ba 2015; torch.optim.Adam)",
    |cfg, dev, params| Adam::new(dev, cfg.settings(), &cfg.param_groups, params)?
);

super::registry::optimizer_method!(
    AdamWConfig,
    "adamw",
    "AdamW, decoupled decay (Loshchilov & Hutter 2019; torch.optim.AdamW)",
    |cfg, dev, params| Adam::new(dev, cfg.settings(), &cfg.param_groups, params)?
);
