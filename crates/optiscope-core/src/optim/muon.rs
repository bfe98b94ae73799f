//! Muon (spec §1) and SpecGD (spec §2): orthogonalized updates for weight matrices, with an
//! auxiliary AdamW for everything that is not a matrix.

use serde::{Deserialize, Serialize};

use super::adam::{AdamSettings, AdamState, EpsMode};
use crate::device::optim::orthogonalize::{OrthoTarget, Orthogonalizer, MUON_NS_COEFFICIENTS};
use crate::device::OptimOps;
use crate::tensor::MatrixStack;

use super::{
    check_betas, check_lr, check_nonneg, check_unit, resolve_groups, ConfigError, Executor,
    OptimError, Param, ParamGroup, ParamRole, Resolved,
};

/// How the orthogonalized update is scaled by the matrix shape (names follow `torch.optim.Muon`'s
/// `adjust_lr_fn`). Shapes are those of one matrix of [`crate::tensor::matrix_stack_dims`]: a conv
/// filter's flattened `[out, in·kh·kw]`, each `m × n` of a stack `[b, m, n]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdjustLrFn {
    /// Keller Jordan's `sqrt(max(1, rows/cols))` (KellerJordan/Muon, with the flattened shape of #60/#63).
    #[default]
    Original,
    /// Moonlight's `0.2·sqrt(max(rows, cols))`: update RMS ≈ 0.2, like AdamW (MoonshotAI/Moonlight).
    MatchRmsAdamw,
    /// No shape factor (the plain polar step of SpecGD, spec §2).
    None,
}

impl AdjustLrFn {
    /// The factor for a `rows × cols` matrix.
    pub fn scale(self, rows: usize, cols: usize) -> f64 {
        let (r, c) = (rows as f64, cols as f64);
        match self {
            Self::Original => (r / c).max(1.0).sqrt(),
            Self::MatchRmsAdamw => 0.2 * r.max(c).sqrt(),
            Self::None => 1.0,
        }
    }
}

/// Which orthogonalization a matrix method uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OrthogonalizerKind {
    /// Newton–Schulz quintic with `ns_coefficients` and `ns_steps` (Muon's reference).
    #[default]
    NewtonSchulz,
    /// Polar Express per-step coefficients (modded-nanogpt, 2026), `ns_steps` iterations.
    PolarExpress,
    /// Exact polar factor by SVD, dropping `σ ≤ rank_tol·σ_max`.
    Svd,
}

/// The AdamW that matrix methods apply to non-matrix parameters (`MuonWithAuxAdam`'s Adam groups:
/// lr 3e-4, betas (0.9, 0.95), eps 1e-10, weight_decay 0; bias-corrected, ε after the square root).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuxAdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// (β1, β2).
    pub betas: [f64; 2],
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AuxAdamConfig {
    fn default() -> Self {
        Self {
            lr: 3e-4,
            betas: [0.9, 0.95],
            eps: 1e-10,
            weight_decay: 0.0,
        }
    }
}

impl AuxAdamConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_lr("aux_adam.lr", self.lr)?;
        check_betas("aux_adam.betas", self.betas)?;
        check_nonneg("aux_adam.eps", self.eps)?;
        check_nonneg("aux_adam.weight_decay", self.weight_decay)
    }

    fn settings(&self) -> AdamSettings {
        AdamSettings {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            weight_decay: self.weight_decay,
            decoupled: true,
            amsgrad: false,
            maximize: false,
            eps_mode: EpsMode::AfterBiasCorrection,
        }
    }
}

/// Muon — MomentUm Orthogonalized by Newton–Schulz (Keller Jordan et al. 2024; reference
/// `KellerJordan/Muon` `muon.py`, `SingleDeviceMuonWithAuxAdam`; spec §1.2):
///
/// ```text
/// M ← lerp(M, g, 1 − β);  U ← lerp(g, M, β) if nesterov else M
/// θ ← θ(1 − ηλ);  θ ← θ − η · s(shape) · NS5(U)
/// ```
/// Matrices (rank ≥ 2: 2-D weights, conv filters flattened to `[out, in·kh·kw]`, stacks `[b, m, n]`
/// matrix by matrix, see [`crate::tensor::matrix_stack_dims`]) are orthogonalized; every other
/// parameter goes to `aux_adam`. The momentum buffer uses Keller's EMA form, as `torch.optim.Muon`'s
/// code does (its docstring writes `B = μB + g`); Moonlight's `B = μB + g` differs by the factor
/// `1 − β`, which the normalization inside Newton–Schulz removes.
/// Defaults: lr 0.02, momentum 0.95, nesterov, ns_steps 5, weight_decay 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MuonConfig {
    /// Learning rate η.
    pub lr: f64,
    /// Momentum β.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Newton–Schulz iterations.
    pub ns_steps: usize,
    /// Newton–Schulz coefficients (a, b, c).
    pub ns_coefficients: [f64; 3],
    /// ε added to the Frobenius norm before normalizing.
    pub eps: f64,
    /// Decoupled weight decay λ (multiplies by `1 − ηλ` with the unscaled η).
    pub weight_decay: f64,
    /// Shape factor of the update.
    pub adjust_lr_fn: AdjustLrFn,
    /// Orthogonalization method.
    pub orthogonalizer: OrthogonalizerKind,
    /// For `orthogonalizer = "svd"`: singular directions with `σ ≤ rank_tol·σ_max` are dropped.
    pub rank_tol: f64,
    /// The AdamW for non-matrix parameters.
    pub aux_adam: AuxAdamConfig,
    /// Per-parameter overrides (`use_muon` forces the route).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub param_groups: Vec<ParamGroup>,
}

impl Default for MuonConfig {
    fn default() -> Self {
        Self {
            lr: 0.02,
            momentum: 0.95,
            nesterov: true,
            ns_steps: 5,
            ns_coefficients: MUON_NS_COEFFICIENTS,
            eps: 1e-7,
            weight_decay: 0.0,
            adjust_lr_fn: AdjustLrFn::Original,
            orthogonalizer: OrthogonalizerKind::NewtonSchulz,
            rank_tol: 1e-6,
            aux_adam: AuxAdamConfig::default(),
            param_groups: vec![],
        }
    }
}

/// Checks the orthogonalizer fields shared by Muon and AMUSE.
pub(crate) fn validate_orthogonalizer(
    ns_steps: usize,
    eps: f64,
    rank_tol: f64,
    coefficients: [f64; 3],
) -> Result<(), ConfigError> {
    if !(1..=100).contains(&ns_steps) {
        return Err(ConfigError::invalid(
            "ns_steps",
            ns_steps,
            "must be in 1..=100",
        ));
    }
    check_nonneg("eps", eps)?;
    if !(0.0..1.0).contains(&rank_tol) {
        return Err(ConfigError::invalid(
            "rank_tol",
            rank_tol,
            "must be in [0, 1)",
        ));
    }
    if coefficients.iter().any(|c| !c.is_finite()) {
        return Err(ConfigError::invalid(
            "ns_coefficients",
            format!("{coefficients:?}"),
            "must be finite",
        ));
    }
    Ok(())
}

pub(crate) fn make_orthogonalizer(
    kind: OrthogonalizerKind,
    ns_steps: usize,
    coefficients: [f64; 3],
    eps: f64,
    rank_tol: f64,
) -> Orthogonalizer {
    match kind {
        OrthogonalizerKind::NewtonSchulz => Orthogonalizer::NewtonSchulz {
            coefficients: coefficients.map(|c| c as f32),
            steps: ns_steps,
            eps: eps as f32,
        },
        OrthogonalizerKind::PolarExpress => Orthogonalizer::PolarExpress { steps: ns_steps },
        OrthogonalizerKind::Svd => Orthogonalizer::Svd { rank_tol },
    }
}

impl MuonConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_lr("lr", self.lr)?;
        check_unit("momentum", self.momentum)?;
        check_nonneg("weight_decay", self.weight_decay)?;
        validate_orthogonalizer(self.ns_steps, self.eps, self.rank_tol, self.ns_coefficients)?;
        self.aux_adam.validate()
    }
}

/// SpecGD — exact spectral gradient descent (Kang, Yun, Shin, Cho, Yun, "Uniform Spectral Growth and
/// Convergence of Muon in LoRA-Style Matrix Factorization", arXiv 2602.06385; spec §2):
/// `W ← W(1 − ηλ) − η · U Vᵀ` with `∇W = U S Vᵀ` the reduced SVD, directions with
/// `σ ≤ rank_tol·σ_max` dropped so `polar(0) = 0`. No momentum, no shape factor by default.
/// Non-matrix parameters go to `aux_adam`. There is no reference code; lr defaults to Muon's 0.02.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpecGdConfig {
    /// Learning rate η.
    pub lr: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
    /// Relative singular-value threshold of the polar factor.
    pub rank_tol: f64,
    /// Shape factor of the update (none by default: the plain steepest-descent step under ‖·‖₂).
    pub adjust_lr_fn: AdjustLrFn,
    /// The AdamW for non-matrix parameters.
    pub aux_adam: AuxAdamConfig,
    /// Per-parameter overrides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub param_groups: Vec<ParamGroup>,
}

impl Default for SpecGdConfig {
    fn default() -> Self {
        Self {
            lr: 0.02,
            weight_decay: 0.0,
            rank_tol: 1e-6,
            adjust_lr_fn: AdjustLrFn::None,
            aux_adam: AuxAdamConfig::default(),
            param_groups: vec![],
        }
    }
}

impl SpecGdConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.as_muon().validate()
    }

    /// SpecGD is Muon with no momentum and the SVD polar factor.
    pub(crate) fn as_muon(&self) -> MuonConfig {
        MuonConfig {
            lr: self.lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: self.weight_decay,
            adjust_lr_fn: self.adjust_lr_fn,
            orthogonalizer: OrthogonalizerKind::Svd,
            rank_tol: self.rank_tol,
            aux_adam: self.aux_adam.clone(),
            param_groups: self.param_groups.clone(),
            ..MuonConfig::default()
        }
    }
}

/// How a matrix method routes one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Orthogonalize each of `batch` row-major `rows × cols` matrices (see
    /// [`crate::tensor::matrix_stack_dims`]).
    Matrix(MatrixStack),
    /// Orthogonalize `diag(v)`.
    Diagonal,
    /// Auxiliary Adam.
    Aux,
}

impl Route {
    pub(crate) fn resolve(p: &Param, r: &Resolved) -> Self {
        let role = match r.use_muon {
            Some(false) => ParamRole::Vector,
            Some(true) if p.value.ndim() < 2 => ParamRole::Diagonal,
            Some(true) => ParamRole::Matrix,
            None => p.resolved_role(),
        };
        match (role, p.value.matrix_stack_dims()) {
            (ParamRole::Matrix, Some(stack)) if !p.value.is_empty() => Self::Matrix(stack),
            (ParamRole::Diagonal, _) => Self::Diagonal,
            _ => Self::Aux,
        }
    }

    /// What the device orthogonalizes for this route (`None` for the auxiliary Adam).
    pub(crate) fn target(self) -> Option<OrthoTarget> {
        match self {
            Self::Matrix(stack) => Some(OrthoTarget::Stack(stack)),
            Self::Diagonal => Some(OrthoTarget::Diagonal),
            Self::Aux => None,
        }
    }

    /// The shape factor of the update for this route (`diag(v)` counts as an n×n matrix).
    pub(crate) fn scale(self, adjust: AdjustLrFn, len: usize) -> f64 {
        match self {
            Self::Matrix(stack) => adjust.scale(stack.rows, stack.cols),
            Self::Diagonal => adjust.scale(len, len),
            Self::Aux => 1.0,
        }
    }
}

struct MuonParam<D: OptimOps> {
    route: Route,
    len: usize,
    lr: f64,
    weight_decay: f64,
    buf: D::Buf,
    adam: Option<AdamState<D>>,
}

pub(crate) struct Muon<D: OptimOps> {
    cfg: MuonConfig,
    orth: Orthogonalizer,
    aux: AdamSettings,
    params: Vec<MuonParam<D>>,
    steps: u64,
    lr_scale: f64,
}

impl<D: OptimOps> Muon<D> {
    pub(crate) fn new(
        dev: &mut D,
        cfg: &MuonConfig,
        params: &[Param],
    ) -> Result<Self, ConfigError> {
        let resolved = resolve_groups(&cfg.param_groups, params)?;
        let states = params
            .iter()
            .zip(&resolved)
            .map(|(p, r)| {
                let route = Route::resolve(p, r);
                let len = p.value.len();
                if route == Route::Aux {
                    MuonParam {
                        route,
                        len,
                        lr: r.lr.unwrap_or(cfg.aux_adam.lr),
                        weight_decay: r.weight_decay.unwrap_or(cfg.aux_adam.weight_decay),
                        buf: dev.zeros(0),
                        adam: Some(AdamState::new(dev, len, false)),
                    }
                } else {
                    MuonParam {
                        route,
                        len,
                        lr: r.lr.unwrap_or(cfg.lr),
                        weight_decay: r.weight_decay.unwrap_or(cfg.weight_decay),
                        buf: dev.zeros(len),
                        adam: None,
                    }
                }
            })
            .collect();
        let orth = make_orthogonalizer(
            cfg.orthogonalizer,
            cfg.ns_steps,
            cfg.ns_coefficients,
            cfg.eps,
            cfg.rank_tol,
        );
        Ok(Self {
            cfg: cfg.clone(),
            orth,
            aux: cfg.aux_adam.settings(),
            params: states,
            steps: 0,
            lr_scale: 1.0,
        })
    }
}

impl<D: OptimOps> Executor<D> for Muon<D> {
    fn step(
        &mut self,
        dev: &mut D,
        params: &mut [D::Buf],
        grads: &[&D::Buf],
    ) -> Result<(), OptimError> {
        for ((p, g), st) in params.iter_mut().zip(grads).zip(&mut self.params) {
            let lr = st.lr * self.lr_scale;
            if let Some(adam) = &mut st.adam {
                adam.update(dev, p, g, &self.aux, lr, st.weight_decay);
                continue;
            }
            // Invariant: only the auxiliary route has an Adam state (built in `new`).
            let Some(target) = st.route.target() else {
                unreachable!("a parameter without auxiliary Adam has a matrix or diagonal route")
            };
            let u = dev.muon_momentum(&mut st.buf, g, self.cfg.momentum, self.cfg.nesterov);
            let o = dev.orthogonalize(&u, target, &self.orth)?;
            let scale = st.route.scale(self.cfg.adjust_lr_fn, st.len);
            dev.decay_sub(
                p,
                &o,
                (1.0 - lr * st.weight_decay) as f32,
                (lr * scale) as f32,
            );
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
        for (i, p) in self.params.iter_mut().enumerate() {
            v.buf(&format!("{i}.momentum_buffer"), &mut p.buf);
            if let Some(a) = &mut p.adam {
                a.visit(&format!("{i}.aux."), v);
            }
        }
    }
}

super::registry::optimizer_method!(
    MuonConfig,
    "muon",
    "Muon: Newton-Schulz orthogonalized momentum (KellerJordan/Muon)",
    |cfg, dev, params| Muon::new(dev, cfg, params)?
);

super::registry::optimizer_method!(
    SpecGdConfig,
    "specgd",
    "SpecGD: exact polar factor U V^T by SVD (arXiv 2602.06385)",
    |cfg, dev, params| Muon::new(dev, &cfg.as_muon(), params)?
);
