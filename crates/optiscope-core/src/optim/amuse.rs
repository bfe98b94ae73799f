//! AMUSE — Anytime MUon with Stable gradient Evaluation (Kim, Shin, Yun, Baek, Song, Yun 2026,
//! arXiv 2605.22432; official code `kjeiun/amuse` `src/optim/AMUSE.py`; spec §4).

use serde::{Deserialize, Serialize};

use super::muon::{
    make_orthogonalizer, validate_orthogonalizer, AdjustLrFn, OrthogonalizerKind, Route,
};
use super::{
    check_lr, check_nonneg, check_unit, resolve_groups, ConfigError, Executor, OptimError, Param,
    ParamGroup,
};
use crate::device::optim::elementwise::AmuseAuxScalars;
use crate::device::optim::orthogonalize::{Orthogonalizer, MUON_NS_COEFFICIENTS};
use crate::device::OptimOps;

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

struct AmuseParam<D: OptimOps> {
    route: Route,
    len: usize,
    lr: f64,
    weight_decay: f64,
    /// Steps taken by this parameter's group.
    k: u64,
    /// Σ w of the Schedule-Free average.
    weight_sum: f64,
    c_warmup: Option<f64>,
    beta: f64,
    z: Option<D::Buf>,
    x: Option<D::Buf>,
    /// Momentum buffer (Muon route) or second moment (fallback).
    buf: D::Buf,
}

pub(crate) struct Amuse<D: OptimOps> {
    cfg: AmuseConfig,
    orth: Orthogonalizer,
    params: Vec<AmuseParam<D>>,
    train_mode: bool,
    steps: u64,
    lr_scale: f64,
}

impl<D: OptimOps> Amuse<D> {
    pub(crate) fn new(
        dev: &mut D,
        cfg: &AmuseConfig,
        params: &[Param],
    ) -> Result<Self, ConfigError> {
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
                    len: p.value.len(),
                    lr: r.lr.unwrap_or(lr),
                    weight_decay: r.weight_decay.unwrap_or(wd),
                    k: 0,
                    weight_sum: 0.0,
                    c_warmup: None,
                    beta: cfg.beta1,
                    z: None,
                    x: None,
                    buf: dev.zeros(p.value.len()),
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

    fn step_param(
        &self,
        dev: &mut D,
        st: &mut AmuseParam<D>,
        y: &mut D::Buf,
        g: &D::Buf,
    ) -> Result<(), OptimError> {
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

        if st.z.is_none() {
            st.z = Some(dev.duplicate(y));
        }
        if cfg.explicit_x && st.x.is_none() {
            st.x = Some(dev.duplicate(y));
        }
        let Some(z) = st.z.as_mut() else {
            unreachable!("z was just set")
        };
        let wd_y = cfg.weight_decay_at_y;
        if wd_y != 0.0 {
            dev.amuse_decay_at_y(
                z,
                y,
                (lr * wd_y) as f32,
                (1.0 - lr * wd_y * (1.0 - beta)) as f32,
            );
        }
        // y → x: recovered with the new β (official), or the stored x (explicit_x).
        match &st.x {
            Some(x) => dev.copy_into(y, x),
            None => dev.lerp_towards(y, z, (1.0 - 1.0 / beta) as f32),
        }
        if let Some(target) = st.route.target() {
            let u = dev.muon_momentum(&mut st.buf, g, cfg.momentum, true);
            let o = dev.orthogonalize(&u, target, &self.orth)?;
            let scale = st.route.scale(cfg.adjust_lr_fn, st.len);
            dev.decay_sub(
                z,
                &o,
                (1.0 - lr * st.weight_decay) as f32,
                (lr * scale) as f32,
            );
        } else {
            let a = &cfg.aux;
            let s = AmuseAuxScalars {
                lr: lr as f32,
                beta2: a.beta2 as f32,
                one_minus_beta2: (1.0 - a.beta2) as f32,
                eps: a.eps as f32,
                weight_decay: st.weight_decay as f32,
                bias_correction2: (1.0 - a.beta2.powf(t as f64)) as f32,
            };
            dev.amuse_aux(z, &mut st.buf, g, &s);
        }
        dev.amuse_tail(y, z, st.x.as_mut(), c as f32, (1.0 - beta) as f32);
        Ok(())
    }
}

impl<D: OptimOps> Executor<D> for Amuse<D> {
    fn step(
        &mut self,
        dev: &mut D,
        params: &mut [D::Buf],
        grads: &[&D::Buf],
    ) -> Result<(), OptimError> {
        if !self.train_mode {
            return Err(OptimError::EvalMode { method: "amuse" });
        }
        let mut states = std::mem::take(&mut self.params);
        let result = params
            .iter_mut()
            .zip(grads)
            .zip(&mut states)
            .try_for_each(|((p, g), st)| self.step_param(dev, st, p, g));
        self.params = states;
        result?;
        self.steps += 1;
        Ok(())
    }

    fn eval_params(&self, dev: &mut D, params: &[D::Buf]) -> Vec<D::Buf> {
        params
            .iter()
            .zip(&self.params)
            .map(|(p, st)| match (self.train_mode, &st.x, &st.z) {
                (true, Some(xs), _) => dev.duplicate(xs),
                (true, None, Some(z)) => {
                    let mut x = dev.duplicate(p);
                    dev.lerp_towards(&mut x, z, (1.0 - 1.0 / st.beta) as f32);
                    x
                }
                _ => dev.duplicate(p),
            })
            .collect()
    }

    fn set_train_mode(&mut self, dev: &mut D, params: &mut [D::Buf], train: bool) {
        if train == self.train_mode {
            return;
        }
        for (p, st) in params.iter_mut().zip(&self.params) {
            let Some(z) = &st.z else { continue };
            match (&st.x, train) {
                (Some(x), false) => dev.copy_into(p, x),
                (Some(x), true) => {
                    dev.copy_into(p, x);
                    dev.lerp_towards(p, z, (1.0 - st.beta) as f32);
                }
                (None, false) => dev.lerp_towards(p, z, (1.0 - 1.0 / st.beta) as f32),
                (None, true) => dev.lerp_towards(p, z, (1.0 - st.beta) as f32),
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
            v.count(&format!("{i}.k"), &mut p.k);
            v.scalar(&format!("{i}.weight_sum"), &mut p.weight_sum);
            // c_{T0} exists only after warmup: a flag and a value (0 while unset).
            let mut set = p.c_warmup.is_some();
            let mut c = p.c_warmup.unwrap_or(0.0);
            v.flag(&format!("{i}.c_warmup_set"), &mut set);
            v.scalar(&format!("{i}.c_warmup"), &mut c);
            p.c_warmup = set.then_some(c);
            v.scalar(&format!("{i}.beta"), &mut p.beta);
            v.opt_buf(&format!("{i}.z"), &mut p.z);
            v.opt_buf(&format!("{i}.x"), &mut p.x);
            v.buf(&format!("{i}.buf"), &mut p.buf);
        }
    }
}

super::registry::optimizer_method!(
    AmuseConfig,
    "amuse",
    "AMUSE: Muon + Schedule-Free with growing beta (arXiv 2605.22432; kjeiun/amuse)",
    |cfg, dev, params| Amuse::new(dev, cfg, params)?
);
