//! AMUSE — Anytime MUon with Stable gradient Evaluation (Kim, Shin, Yun, Baek, Song, Yun 2026,
//! arXiv 2605.22432; official code `kjeiun/amuse` `src/optim/AMUSE.py`; spec §4).

use serde::{Deserialize, Serialize};

use super::elementwise::{lerp, lerp_towards};
use super::muon::{
    make_orthogonalizer, muon_momentum, validate_orthogonalizer, AdjustLrFn, OrthogonalizerKind,
    Route,
};
use super::orthogonalize::{Orthogonalizer, MUON_NS_COEFFICIENTS};
use super::{
    check_grads, check_lr, check_nonneg, check_unit, resolve_groups, ConfigError, OptimError,
    Optimizer, Param, ParamGroup,
};
use crate::tensor::Tensor;

/// The fallback (non-matrix) group of AMUSE: Schedule-Free AdamW without a first moment.
/// Defaults from the official code: lr 3e-4, beta2 0.999, eps 1e-10, weight_decay 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmuseAuxConfig {
    /// Learning rate.
    pub lr: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Weight decay, applied at z (`u ← u + λz`).
    pub weight_decay: f64,
}

impl Default for AmuseAuxConfig {
    fn default() -> Self {
        Self {
            lr: 3e-4,
            beta2: 0.999,
            eps: 1e-10,
            weight_decay: 0.0,
        }
    }
}

/// AMUSE: Schedule-Free averaging around Muon with an interpolation β that grows after warmup,
/// so gradients are first taken near the fast Muon iterate z and later near the average x:
///
/// ```text
/// y_t = (1 − β_t) z_t + β_t x_t;  M ← lerp(M, ∇L(y_t), 1 − μ);  z ← z(1 − γλ) − γ·s·NS5(lerp(g, M, μ))
/// x ← lerp(x, z, c_{t+1});  β_t = β1 (t ≤ T0),  1 − S_t^ρ (1 − β1) after,
/// S_t = c_t (1 − c_{T0}) / (c_{T0} (1 − c_t))
/// ```
/// with γ the linearly warmed-up lr and c the Schedule-Free weights (spec §3.2, §4.1–4.2).
/// Defaults follow the official code: lr 0.02, momentum 0.95, beta1 0.9, rho 1, r 0,
/// weight_lr_power 2, shape factor 0.2·sqrt(max dim); `warmup_steps` has no default there and must
/// be set (≥ 1). Unlike the official code, a missing lr is not silently 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmuseConfig {
    /// Learning rate η of the Muon group.
    pub lr: f64,
    /// Muon momentum μ (Nesterov is always on, as in the official code).
    pub momentum: f64,
    /// Decoupled weight decay λ of the Muon group, applied to z.
    pub weight_decay: f64,
    /// β1: the interpolation during warmup.
    pub beta1: f64,
    /// ρ: how fast β grows after warmup (0 keeps β = β1, i.e. Schedule-Free Muon).
    pub rho: f64,
    /// T0: linear lr warmup steps; β starts growing after it (required, ≥ 1).
    pub warmup_steps: u64,
    /// Polynomial weighting exponent r of the average.
    pub r: f64,
    /// Exponent p of the lr-weighting of the average.
    pub weight_lr_power: f64,
    /// Weight decay evaluated at y (applied to z and y alike).
    pub weight_decay_at_y: f64,
    /// Shape factor (official: Moonlight's 0.2·sqrt(max(rows, cols))).
    pub adjust_lr_fn: AdjustLrFn,
    /// Orthogonalization method.
    pub orthogonalizer: OrthogonalizerKind,
    /// Newton–Schulz iterations.
    pub ns_steps: usize,
    /// Newton–Schulz coefficients.
    pub ns_coefficients: [f64; 3],
    /// ε added to the Frobenius norm in Newton–Schulz.
    pub eps: f64,
    /// For the SVD orthogonalizer: relative rank threshold.
    pub rank_tol: f64,
    /// Store x explicitly instead of recovering it from (y, z, β). The official code recovers x
    /// with the *new* β_t although y was built with β_{t−1}, so x drifts toward z by
    /// (β_t − β_{t−1})/β_t·(z − x) each step after warmup (spec §4.2 pitfall); `false` reproduces
    /// that, `true` costs one more buffer and keeps x exact.
    pub explicit_x: bool,
    /// The fallback group for non-matrix parameters.
    pub aux: AmuseAuxConfig,
    /// Per-parameter overrides (`use_muon` forces the route).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub param_groups: Vec<ParamGroup>,
}

impl Default for AmuseConfig {
    fn default() -> Self {
        Self {
            lr: 0.02,
            momentum: 0.95,
            weight_decay: 0.0,
            beta1: 0.9,
            rho: 1.0,
            warmup_steps: 0,
            r: 0.0,
            weight_lr_power: 2.0,
            weight_decay_at_y: 0.0,
            adjust_lr_fn: AdjustLrFn::MatchRmsAdamw,
            orthogonalizer: OrthogonalizerKind::NewtonSchulz,
            ns_steps: 5,
            ns_coefficients: MUON_NS_COEFFICIENTS,
            eps: 1e-7,
            rank_tol: 1e-6,
            explicit_x: false,
            aux: AmuseAuxConfig::default(),
            param_groups: vec![],
        }
    }
}

impl AmuseConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.warmup_steps == 0 {
            return Err(ConfigError::invalid(
                "warmup_steps",
                0,
                "must be >= 1 (AMUSE has no default warmup; the official code requires warmup_steps > 0)",
            ));
        }
        check_lr("lr", self.lr)?;
        check_unit("momentum", self.momentum)?;
        check_nonneg("weight_decay", self.weight_decay)?;
        if !(self.beta1 > 0.0 && self.beta1 < 1.0) {
            return Err(ConfigError::invalid(
                "beta1",
                self.beta1,
                "must be in (0, 1)",
            ));
        }
        check_nonneg("rho", self.rho)?;
        check_nonneg("r", self.r)?;
        check_nonneg("weight_lr_power", self.weight_lr_power)?;
        check_nonneg("weight_decay_at_y", self.weight_decay_at_y)?;
        validate_orthogonalizer(self.ns_steps, self.eps, self.rank_tol, self.ns_coefficients)?;
        check_lr("aux.lr", self.aux.lr)?;
        check_unit("aux.beta2", self.aux.beta2)?;
        check_nonneg("aux.eps", self.aux.eps)?;
        check_nonneg("aux.weight_decay", self.aux.weight_decay)
    }
}

/// β_t of AMUSE's odds-ratio rule (spec §4.1). `c_warmup` is c_{T0}, captured at t = T0.
pub fn amuse_beta(
    t: u64,
    warmup_steps: u64,
    c: f64,
    c_warmup: Option<f64>,
    beta1: f64,
    rho: f64,
) -> f64 {
    if t <= warmup_steps {
        return beta1;
    }
    let cw = c_warmup.unwrap_or(1.0 / warmup_steps as f64);
    let odds = (c * (1.0 - cw)) / (cw * (1.0 - c));
    1.0 - odds.powf(rho) * (1.0 - beta1)
}

struct AmuseParam {
    route: Route,
    lr: f64,
    weight_decay: f64,
    /// Steps taken by this parameter's group.
    k: u64,
    /// Σ w of the Schedule-Free average.
    weight_sum: f64,
    c_warmup: Option<f64>,
    beta: f64,
    z: Option<Vec<f32>>,
    x: Option<Vec<f32>>,
    /// Momentum buffer (Muon route) or second moment (fallback).
    buf: Vec<f32>,
}

pub(crate) struct Amuse {
    cfg: AmuseConfig,
    orth: Orthogonalizer,
    params: Vec<AmuseParam>,
    train_mode: bool,
    steps: u64,
    lr_scale: f64,
}

impl Amuse {
    pub(crate) fn new(cfg: &AmuseConfig, params: &[Param]) -> Result<Self, ConfigError> {
        let resolved = resolve_groups(&cfg.param_groups, params)?;
        let states = params
            .iter()
            .zip(&resolved)
            .map(|(p, r)| {
                let route = Route::resolve(p, r);
                let (lr, wd) = if route == Route::Aux {
                    (cfg.aux.lr, cfg.aux.weight_decay)
                } else {
                    (cfg.lr, cfg.weight_decay)
                };
                AmuseParam {
                    route,
                    lr: r.lr.unwrap_or(lr),
                    weight_decay: r.weight_decay.unwrap_or(wd),
                    k: 0,
                    weight_sum: 0.0,
                    c_warmup: None,
                    beta: cfg.beta1,
                    z: None,
                    x: None,
                    buf: vec![0.0; p.value.len()],
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
            params: states,
            train_mode: true,
            steps: 0,
            lr_scale: 1.0,
        })
    }

    fn step_param(&self, st: &mut AmuseParam, y: &mut [f32], g: &[f32]) -> Result<(), OptimError> {
        let cfg = &self.cfg;
        st.k += 1;
        let t = st.k;
        // The official code weights by the current γ (not a running max as SF does).
        let lr = st.lr * self.lr_scale * (t as f64 / cfg.warmup_steps as f64).min(1.0);
        let weight = (t as f64).powf(cfg.r) * lr.powf(cfg.weight_lr_power);
        st.weight_sum += weight;
        let c = if st.weight_sum > 0.0 {
            weight / st.weight_sum
        } else {
            1.0
        };
        if t == cfg.warmup_steps {
            st.c_warmup = Some(c);
        }
        let beta = amuse_beta(t, cfg.warmup_steps, c, st.c_warmup, cfg.beta1, cfg.rho);
        st.beta = beta;

        let z = st.z.get_or_insert_with(|| y.to_vec());
        if cfg.explicit_x && st.x.is_none() {
            st.x = Some(y.to_vec());
        }
        let wd_y = cfg.weight_decay_at_y;
        if wd_y != 0.0 {
            let zf = (lr * wd_y) as f32;
            let yf = (1.0 - lr * wd_y * (1.0 - beta)) as f32;
            for (zi, yi) in z.iter_mut().zip(y.iter_mut()) {
                *zi -= zf * *yi;
                *yi *= yf;
            }
        }
        // y → x: recovered with the new β (official), or the stored x (explicit_x).
        match &st.x {
            Some(x) => y.copy_from_slice(x),
            None => lerp_towards(y, z, (1.0 - 1.0 / beta) as f32),
        }
        if st.route == Route::Aux {
            let a = &cfg.aux;
            let bc2 = 1.0 - a.beta2.powf(t as f64);
            let (b2, one_minus_b2, eps, wd, lrf, bc2) = (
                a.beta2 as f32,
                (1.0 - a.beta2) as f32,
                a.eps as f32,
                st.weight_decay as f32,
                lr as f32,
                bc2 as f32,
            );
            for ((zi, vi), &gi) in z.iter_mut().zip(st.buf.iter_mut()).zip(g) {
                *vi = b2 * *vi + one_minus_b2 * gi * gi;
                let u = gi / ((*vi / bc2).sqrt() + eps) + wd * *zi;
                *zi -= lrf * u;
            }
        } else {
            let u = muon_momentum(&mut st.buf, g, cfg.momentum, true);
            let o = st.route.orthogonalized(&u, &self.orth, cfg.adjust_lr_fn)?;
            let decay = (1.0 - lr * st.weight_decay) as f32;
            let lrf = lr as f32;
            for (zi, oi) in z.iter_mut().zip(&o) {
                *zi = *zi * decay - lrf * oi;
            }
        }
        let (cf, bf) = (c as f32, (1.0 - beta) as f32);
        for (i, (yi, zi)) in y.iter_mut().zip(z.iter()).enumerate() {
            let x_next = lerp(*yi, *zi, cf);
            if let Some(x) = &mut st.x {
                x[i] = x_next;
            }
            *yi = lerp(x_next, *zi, bf);
        }
        Ok(())
    }
}

impl Optimizer for Amuse {
    fn step(&mut self, params: &mut [Param], grads: &[Tensor]) -> Result<(), OptimError> {
        if !self.train_mode {
            return Err(OptimError::EvalMode { method: "amuse" });
        }
        check_grads(params, grads)?;
        let mut states = std::mem::take(&mut self.params);
        let result = params
            .iter_mut()
            .zip(grads)
            .zip(&mut states)
            .try_for_each(|((p, g), st)| self.step_param(st, p.value.data_mut(), g.data()));
        self.params = states;
        result?;
        self.steps += 1;
        Ok(())
    }

    fn eval_params(&self, params: &[Param]) -> Vec<Tensor> {
        params
            .iter()
            .zip(&self.params)
            .map(|(p, st)| {
                let mut x = p.value.clone();
                match (self.train_mode, &st.x, &st.z) {
                    (true, Some(xs), _) => x.data_mut().copy_from_slice(xs),
                    (true, None, Some(z)) => {
                        lerp_towards(x.data_mut(), z, (1.0 - 1.0 / st.beta) as f32)
                    }
                    _ => {}
                }
                x
            })
            .collect()
    }

    fn set_train_mode(&mut self, params: &mut [Param], train: bool) {
        if train == self.train_mode {
            return;
        }
        for (p, st) in params.iter_mut().zip(&self.params) {
            let Some(z) = &st.z else { continue };
            let data = p.value.data_mut();
            match (&st.x, train) {
                (Some(x), false) => data.copy_from_slice(x),
                (Some(x), true) => {
                    data.copy_from_slice(x);
                    lerp_towards(data, z, (1.0 - st.beta) as f32);
                }
                (None, false) => lerp_towards(data, z, (1.0 - 1.0 / st.beta) as f32),
                (None, true) => lerp_towards(data, z, (1.0 - st.beta) as f32),
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
