//! Elementwise update rules in f32, one function per method. These are the CPU twins of the WGSL
//! elementwise kernels: every per-step scalar (bias corrections, Schedule-Free weights, and
//! differences like `1 − β2` that lose digits when formed from an f32 β2) is computed on the host
//! in f64 and passed in as f32, exactly as the shaders receive it.

/// `a + w (b − a)`.
#[inline]
pub fn lerp(a: f32, b: f32, w: f32) -> f32 {
    a + w * (b - a)
}

/// Scalars of one SGD step (`torch.optim.SGD`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdScalars {
    /// Learning rate.
    pub lr: f32,
    /// Momentum μ.
    pub momentum: f32,
    /// `1 − τ` (τ: dampening).
    pub one_minus_dampening: f32,
    /// L2 weight decay λ (added to the gradient).
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// First step: the momentum buffer is set to the gradient without dampening.
    pub first_step: bool,
}

/// One SGD step on `p` with gradient `g` and momentum buffer `buf` (unused when μ = 0).
pub fn sgd_step(p: &mut [f32], g: &[f32], buf: &mut [f32], s: &SgdScalars) {
    for i in 0..p.len() {
        let mut d = if s.maximize { -g[i] } else { g[i] };
        if s.weight_decay != 0.0 {
            d += s.weight_decay * p[i];
        }
        if s.momentum != 0.0 {
            let b = if s.first_step {
                d
            } else {
                s.momentum * buf[i] + s.one_minus_dampening * d
            };
            buf[i] = b;
            d = if s.nesterov { d + s.momentum * b } else { b };
        }
        p[i] -= s.lr * d;
    }
}

/// Scalars of one Adam/AdamW step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamScalars {
    /// Learning rate η (used for decoupled decay).
    pub lr: f32,
    /// `1 − β1`.
    pub one_minus_beta1: f32,
    /// β2.
    pub beta2: f32,
    /// `1 − β2`.
    pub one_minus_beta2: f32,
    /// ε.
    pub eps: f32,
    /// Weight decay λ.
    pub weight_decay: f32,
    /// AdamW (`p ← p(1 − ηλ)` first) rather than Adam (`g ← g + λp`).
    pub decoupled: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// Use the running maximum of v.
    pub amsgrad: bool,
    /// Multiplier of `m / denom`: `η / (1 − β1ᵗ)` (torch form) or `η √(1 − β2ᵗ) / (1 − β1ᵗ)` (original).
    pub step_size: f32,
    /// `√(1 − β2ᵗ)` in the torch form (ε added after bias-correcting v); 1 in the original form.
    pub bc2_sqrt: f32,
}

/// One Adam/AdamW step. `v_max` is only touched when `amsgrad` is set.
pub fn adam_step(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    v_max: &mut [f32],
    s: &AdamScalars,
) {
    for i in 0..p.len() {
        let mut gi = if s.maximize { -g[i] } else { g[i] };
        if s.decoupled {
            p[i] *= 1.0 - s.lr * s.weight_decay;
        } else if s.weight_decay != 0.0 {
            gi += s.weight_decay * p[i];
        }
        m[i] = lerp(m[i], gi, s.one_minus_beta1);
        v[i] = s.beta2 * v[i] + s.one_minus_beta2 * gi * gi;
        let vv = if s.amsgrad {
            v_max[i] = v_max[i].max(v[i]);
            v_max[i]
        } else {
            v[i]
        };
        let denom = vv.sqrt() / s.bc2_sqrt + s.eps;
        p[i] -= s.step_size * m[i] / denom;
    }
}

/// Scalars of one ProxGen step (spec §5.2, the official Adam instance).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProxGenScalars {
    /// Learning rate η (for the decoupled decay).
    pub lr: f32,
    /// `1 − β1`.
    pub one_minus_beta1: f32,
    /// β2.
    pub beta2: f32,
    /// `1 − β2`.
    pub one_minus_beta2: f32,
    /// ε.
    pub eps: f32,
    /// Decoupled weight decay λ_wd (`p ← p(1 − η λ_wd)` first).
    pub weight_decay: f32,
    /// `η / (1 − β1ᵗ)`.
    pub step_size: f32,
    /// `√(1 − β2ᵗ)`.
    pub bc2_sqrt: f32,
    /// `η · λ`: the prox threshold before the preconditioner divides it (`λ' = ηλ / denom`).
    pub lr_penalty: f32,
    /// The penalty, or None for the plain Adam step (vectors).
    pub regularizer: Option<super::prox::Regularizer>,
    /// λ itself (the subgradient baseline's factor of `∂R`).
    pub penalty: f32,
    /// The subgradient baseline instead of the prox: Adam on `f + λR`, the gradient
    /// `g + λ·∂R(p)`, no prox.
    pub subgradient: bool,
}

/// One ProxGen step: decoupled decay, Adam's moments, `z = p − η/(1−β1ᵗ) · m / denom` with
/// `denom = √v / √(1−β2ᵗ) + ε`, then `p = prox(z; ηλ / denom)` per coordinate (or, for the
/// subgradient baseline, the same Adam step from `g + λ∂R(p)` and no prox).
pub fn proxgen_step(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &ProxGenScalars) {
    for i in 0..p.len() {
        let gi = match s.regularizer {
            Some(reg) if s.subgradient => {
                g[i] + s.penalty * reg.subgradient(f64::from(p[i])) as f32
            }
            _ => g[i],
        };
        p[i] *= 1.0 - s.lr * s.weight_decay;
        m[i] = lerp(m[i], gi, s.one_minus_beta1);
        v[i] = s.beta2 * v[i] + s.one_minus_beta2 * gi * gi;
        let denom = v[i].sqrt() / s.bc2_sqrt + s.eps;
        let z = p[i] - s.step_size * m[i] / denom;
        p[i] = match s.regularizer {
            Some(reg) if !s.subgradient => super::prox::prox_f32(reg, z, s.lr_penalty / denom),
            _ => z,
        };
    }
}

/// Scalars of one proximal SGD step (ProxGen with C = I).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProxSgdScalars {
    /// Learning rate η.
    pub lr: f32,
    /// Heavy-ball momentum μ (`m ← μ m + g`; 0: plain proximal gradient).
    pub momentum: f32,
    /// Decoupled weight decay (`p ← p(1 − η λ_wd)` first).
    pub weight_decay: f32,
    /// `η · λ`, the prox threshold.
    pub lr_penalty: f32,
    /// The penalty, or None for the plain step (vectors).
    pub regularizer: Option<super::prox::Regularizer>,
}

/// One proximal SGD step: decoupled decay, `m ← μ m + g`, `z = p − η m`, `p = prox(z; ηλ)`.
pub fn prox_sgd_step(p: &mut [f32], g: &[f32], m: &mut [f32], s: &ProxSgdScalars) {
    for i in 0..p.len() {
        p[i] *= 1.0 - s.lr * s.weight_decay;
        m[i] = s.momentum * m[i] + g[i];
        let z = p[i] - s.lr * m[i];
        p[i] = match s.regularizer {
            Some(reg) => super::prox::prox_f32(reg, z, s.lr_penalty),
            None => z,
        };
    }
}

/// Scalars of one Schedule-Free step in the memory-efficient form (spec §3.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleFreeScalars {
    /// γ_k: the warmed-up learning rate of this step.
    pub lr: f32,
    /// c_{k+1}: the averaging weight.
    pub ckp1: f32,
    /// `γ (β(1 − c) − 1)`: the coefficient of the normalized gradient in the y update
    /// (β: `momentum` of SF-SGD, `betas[0]` of SF-AdamW).
    pub y_step: f32,
    /// Weight decay λ, evaluated at y.
    pub weight_decay: f32,
    /// SF-AdamW: β2.
    pub beta2: f32,
    /// SF-AdamW: `1 − β2`.
    pub one_minus_beta2: f32,
    /// SF-AdamW: ε.
    pub eps: f32,
    /// SF-AdamW: `1 − β2^{k+1}` (current form) or 1 (paper form: no bias correction in the denominator).
    pub bias_correction2: f32,
}

/// The shared tail of a Schedule-Free step, given the normalized gradient `d` at y:
/// `y ← lerp(y, z, c); y ← y + γ(β(1 − c) − 1) d; z ← z − γ d`.
#[inline]
fn schedulefree_tail(y: &mut f32, z: &mut f32, d: f32, s: &ScheduleFreeScalars) {
    *y = lerp(*y, *z, s.ckp1);
    *y += s.y_step * d;
    *z -= s.lr * d;
}

/// One Schedule-Free SGD step on `y` (the parameters in train mode) and `z`.
pub fn sgd_schedulefree_step(y: &mut [f32], z: &mut [f32], g: &[f32], s: &ScheduleFreeScalars) {
    for i in 0..y.len() {
        let d = g[i] + s.weight_decay * y[i];
        schedulefree_tail(&mut y[i], &mut z[i], d, s);
    }
}

/// One Schedule-Free AdamW step on `y`, `z` and the second moment `v`.
pub fn adamw_schedulefree_step(
    y: &mut [f32],
    z: &mut [f32],
    v: &mut [f32],
    g: &[f32],
    s: &ScheduleFreeScalars,
) {
    for i in 0..y.len() {
        v[i] = s.beta2 * v[i] + s.one_minus_beta2 * g[i] * g[i];
        let denom = (v[i] / s.bias_correction2).sqrt() + s.eps;
        let d = g[i] / denom + s.weight_decay * y[i];
        schedulefree_tail(&mut y[i], &mut z[i], d, s);
    }
}

/// Schedule-Free mode switch: `p ← lerp(p, z, w)` with `w = 1 − 1/β` (to eval) or `1 − β` (to train).
pub fn lerp_towards(p: &mut [f32], z: &[f32], w: f32) {
    for (pi, zi) in p.iter_mut().zip(z) {
        *pi = lerp(*pi, *zi, w);
    }
}

/// Muon's momentum: `M ← lerp(M, g, 1 − β)`; `u ← lerp(g, M, β)` (Nesterov) or `M`.
pub fn muon_momentum(
    u: &mut [f32],
    m: &mut [f32],
    g: &[f32],
    one_minus_beta: f32,
    beta: f32,
    nesterov: bool,
) {
    for i in 0..g.len() {
        m[i] = lerp(m[i], g[i], one_minus_beta);
        u[i] = if nesterov {
            lerp(g[i], m[i], beta)
        } else {
            m[i]
        };
    }
}

/// `p ← p · decay − lr · o`: decoupled decay and an orthogonalized step.
pub fn decay_sub(p: &mut [f32], o: &[f32], decay: f32, lr: f32) {
    for (pi, oi) in p.iter_mut().zip(o) {
        *pi = *pi * decay - lr * oi;
    }
}

/// AMUSE's decay at y: `z ← z − z_coef · y`, `y ← y · y_factor` (keeps x unchanged).
pub fn amuse_decay_at_y(z: &mut [f32], y: &mut [f32], z_coef: f32, y_factor: f32) {
    for (zi, yi) in z.iter_mut().zip(y.iter_mut()) {
        *zi -= z_coef * *yi;
        *yi *= y_factor;
    }
}

/// Scalars of AMUSE's fallback (non-matrix) group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmuseAuxScalars {
    /// γ: the warmed-up learning rate.
    pub lr: f32,
    /// β2.
    pub beta2: f32,
    /// `1 − β2`.
    pub one_minus_beta2: f32,
    /// ε.
    pub eps: f32,
    /// Weight decay λ, applied at z.
    pub weight_decay: f32,
    /// `1 − β2ᵗ`.
    pub bias_correction2: f32,
}

/// AMUSE's fallback group on z: `v ← β2 v + (1−β2) g²`, `u = g/(√(v/bc2) + ε) + λz`, `z ← z − γu`.
pub fn amuse_aux_step(z: &mut [f32], v: &mut [f32], g: &[f32], s: &AmuseAuxScalars) {
    for i in 0..z.len() {
        v[i] = s.beta2 * v[i] + s.one_minus_beta2 * g[i] * g[i];
        let u = g[i] / ((v[i] / s.bias_correction2).sqrt() + s.eps) + s.weight_decay * z[i];
        z[i] -= s.lr * u;
    }
}

/// AMUSE's end of step: `x' = lerp(y, z, c)` (kept in `x` when x is stored), `y ← lerp(x', z, 1 − β)`.
pub fn amuse_tail(
    y: &mut [f32],
    z: &[f32],
    mut x: Option<&mut [f32]>,
    c: f32,
    one_minus_beta: f32,
) {
    for i in 0..y.len() {
        let x_next = lerp(y[i], z[i], c);
        if let Some(x) = x.as_deref_mut() {
            x[i] = x_next;
        }
        y[i] = lerp(x_next, z[i], one_minus_beta);
    }
}

/// In place `p ← decay·p + scale·z`, `z_i` the standard normal `at.offset + i` of the counter's
/// stream ([`crate::rng::Philox::normal_at`]), generated a block of four at a time and never
/// stored: MeZO's perturbation (`decay = 1`, `scale = ±ε`) and update (`decay = 1 − ηλ`,
/// `scale = −η ĝ`).
pub fn axpy_normal(p: &mut [f32], at: crate::device::random::Counter, decay: f32, scale: f32) {
    let rng = crate::rng::Philox::new(at.seed);
    let (first, rest) = if at.offset % 4 == 0 {
        (0, &mut p[..])
    } else {
        // Values before the first whole block one by one.
        let head = ((4 - at.offset % 4) as usize).min(p.len());
        for (i, v) in p[..head].iter_mut().enumerate() {
            *v = decay * *v + scale * rng.normal_at(at.stream, at.offset + i as u64);
        }
        (head, &mut p[head..])
    };
    let base = (at.offset + first as u64) / 4;
    for (q, chunk) in rest.chunks_mut(4).enumerate() {
        let w = rng.block(at.stream, base + q as u64);
        let (a, b) = crate::rng::box_muller(w[0], w[1]);
        let (c, d) = crate::rng::box_muller(w[2], w[3]);
        for (v, z) in chunk.iter_mut().zip([a, b, c, d]) {
            *v = decay * *v + scale * z;
        }
    }
}
