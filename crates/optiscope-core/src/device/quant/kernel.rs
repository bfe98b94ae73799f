//! The per-weight quantization kernel: what every executor runs on a weight tensor each step.
//! The CPU version below is the reference (computed in f64, stored in f32); `shaders/quant.wgsl`
//! is its f32 twin and the GPU conformance test compares them.
//!
//! For each weight `w_i` the kernel writes the forward value `x̂_i`, the gain `∂x̂_i/∂w_i` that the
//! backward pass multiplies the incoming gradient by, and [`DPARAMS`] partial derivatives
//! `∂x̂_i/∂(α, σ, K_1, …, K_4)`; the gradients of the layer's quantizer parameters are the
//! gradient-weighted column sums of the latter.

use super::categorical::{multiclass_ste, relaxed, NoisyGrid, MAX_BITS, MAX_POINTS};
use super::signed_range;

/// Columns of the per-weight parameter derivatives: α (or LSQ's step), σ, K_1..K_4.
pub const DPARAMS: usize = 2 + MAX_BITS as usize;

/// What the kernel computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum KernelMode {
    /// `x̂ = w`, gain 1 (full precision, and ProxQuant's training forward).
    Identity = 0,
    /// Uniform rounding `α·clip(round(w/α), −Q_N, Q_P)`, clipped-STE gain, LSQ's `∂x̂/∂α`.
    Nearest = 1,
    /// RQ's training sample (needs Gumbel noise, `2^b` values per weight).
    Relaxed = 2,
    /// The multi-class STE of SRQ/CPQ (with level keep weights).
    MultiClass = 3,
    /// Asymmetric unsigned rounding `α·(clip(round(w/α) + z, 0, 2^b − 1) − z)` with zero point z
    /// (spec A5; for activations after ReLU), clipped-STE gain, LSQ-style `∂x̂/∂α`.
    Asymmetric = 4,
}

/// Host-side scalars of one kernel launch (the GPU twin receives them as a uniform).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantSpec {
    /// What to compute.
    pub mode: KernelMode,
    /// Bits b.
    pub bits: u32,
    /// Grid step α (the uniform step s for `Nearest`).
    pub alpha: f32,
    /// Logistic noise scale σ (categorical modes).
    pub sigma: f32,
    /// Gumbel-softmax temperature (Relaxed).
    pub tau: f32,
    /// Extend the outermost cells to ±∞ (categorical modes).
    pub extend_edges: bool,
    /// Restricted symmetric range (Nearest).
    pub restricted: bool,
    /// Keep weights `K_1..K_4` of the bit levels (MultiClass; `K_1 = 1`).
    pub keep: [f32; MAX_BITS as usize],
    /// Zero point z (Asymmetric).
    pub zero_point: i32,
}

impl QuantSpec {
    /// A spec of `mode` with neutral settings.
    pub fn new(mode: KernelMode, bits: u32, alpha: f32) -> Self {
        Self {
            mode,
            bits,
            alpha,
            sigma: alpha / 3.0,
            tau: 1.0,
            extend_edges: true,
            restricted: false,
            keep: [1.0; MAX_BITS as usize],
            zero_point: 0,
        }
    }

    fn grid(&self) -> NoisyGrid {
        NoisyGrid {
            bits: self.bits,
            alpha: f64::from(self.alpha),
            sigma: f64::from(self.sigma),
            extend_edges: self.extend_edges,
        }
    }

    /// Gumbel values per weight the mode needs (`2^b` for Relaxed, else 0).
    pub fn noise_per_weight(&self) -> usize {
        if self.mode == KernelMode::Relaxed {
            1 << self.bits
        } else {
            0
        }
    }
}

/// Output of the kernel on a tensor (x̂, the gain, the parameter derivatives).
pub type KernelOut = super::QuantOut<Vec<f32>>;

/// One weight.
pub fn quantize_one(w: f32, spec: &QuantSpec, noise: &[f32]) -> (f32, f32, [f32; DPARAMS]) {
    let mut d = [0.0f32; DPARAMS];
    match spec.mode {
        KernelMode::Identity => (w, 1.0, d),
        KernelMode::Nearest => {
            let (qn, qp) = signed_range(spec.bits, spec.restricted);
            let (qn, qp) = (f64::from(qn), f64::from(qp));
            let s = f64::from(spec.alpha);
            let v = f64::from(w) / s;
            let q = v.round_ties_even().clamp(-qn, qp);
            let inside = v > -qn && v < qp;
            d[0] = if v <= -qn {
                -qn
            } else if v >= qp {
                qp
            } else {
                q - v
            } as f32;
            ((s * q) as f32, if inside { 1.0 } else { 0.0 }, d)
        }
        KernelMode::Asymmetric => {
            let top = f64::from((1u32 << spec.bits) - 1);
            let z = f64::from(spec.zero_point);
            let s = f64::from(spec.alpha);
            let v = f64::from(w) / s;
            let u = v.round_ties_even() + z;
            let q = u.clamp(0.0, top);
            let inside = (0.0..=top).contains(&u);
            // x̂ = s(q − z): inside, ∂/∂s = round(v) − v (through round by the STE); outside,
            // the clipped value's q − z.
            d[0] = if inside { u - z - v } else { q - z } as f32;
            ((s * (q - z)) as f32, if inside { 1.0 } else { 0.0 }, d)
        }
        KernelMode::Relaxed => {
            let g: Vec<f64> = noise.iter().map(|&v| f64::from(v)).collect();
            let o = relaxed(f64::from(w), &spec.grid(), f64::from(spec.tau), &g);
            d[0] = o.dalpha as f32;
            d[1] = o.dsigma as f32;
            (o.xhat as f32, o.dx as f32, d)
        }
        KernelMode::MultiClass => {
            let keep = spec.keep.map(f64::from);
            let o = multiclass_ste(f64::from(w), &spec.grid(), &keep);
            d[0] = o.dalpha as f32;
            d[1] = o.dsigma as f32;
            for j in 0..MAX_BITS as usize {
                d[2 + j] = o.dkeep[j] as f32;
            }
            (o.xhat as f32, o.dx as f32, d)
        }
    }
}

/// The kernel on a tensor; `noise` holds `spec.noise_per_weight()` Gumbel values per weight.
pub fn quantize(w: &[f32], spec: &QuantSpec, noise: &[f32]) -> KernelOut {
    let per = spec.noise_per_weight();
    assert!(
        per <= MAX_POINTS && noise.len() >= per * w.len(),
        "noise buffer too short"
    );
    let mut out = KernelOut {
        xhat: Vec::with_capacity(w.len()),
        gain: Vec::with_capacity(w.len()),
        dparams: Vec::with_capacity(w.len() * DPARAMS),
    };
    for (i, &wi) in w.iter().enumerate() {
        let (x, g, d) = quantize_one(wi, spec, &noise[i * per..(i + 1) * per]);
        out.xhat.push(x);
        out.gain.push(g);
        out.dparams.extend_from_slice(&d);
    }
    out
}

/// ProxQuant's prox on a tensor, in place: `w ← prox_{τ_i R}(w)` toward the grid of `s`, with
/// `τ_i = threshold / (√(v_i / bias_correction2) + eps)` when the optimizer's second moment `v` is
/// given (revised ProxQuant) and `τ_i = threshold` otherwise.
pub fn prox_grid(w: &mut [f32], v: Option<&[f32]>, s: &ProxScalars) {
    let grid = s.grid();
    for (i, wi) in w.iter_mut().enumerate() {
        let tau = match v {
            Some(v) => {
                f64::from(s.threshold)
                    / ((f64::from(v[i]) / f64::from(s.bias_correction2)).sqrt() + f64::from(s.eps))
            }
            None => f64::from(s.threshold),
        };
        *wi = super::prox::prox(f64::from(*wi), tau, &grid) as f32;
    }
}

/// Scalars of [`prox_grid`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProxScalars {
    /// Grid step α.
    pub alpha: f32,
    /// Grid offset β (0 for the signed b-bit grids; 1 for the binary grid {−1, +1}).
    pub beta: f32,
    /// Lowest grid index.
    pub kmin: i32,
    /// Highest grid index.
    pub kmax: i32,
    /// `η·λ_t`.
    pub threshold: f32,
    /// `1 − β2^t` of the optimizer's second moment.
    pub bias_correction2: f32,
    /// The optimizer's ε.
    pub eps: f32,
}

impl ProxScalars {
    /// The signed b-bit grid of step α, threshold `threshold`, no preconditioner yet.
    pub fn signed(bits: u32, alpha: f32, threshold: f32) -> Self {
        let g = super::prox::Grid::signed(bits, f64::from(alpha));
        Self {
            alpha,
            beta: 0.0,
            kmin: g.kmin,
            kmax: g.kmax,
            threshold,
            bias_correction2: 1.0,
            eps: 0.0,
        }
    }

    /// The binary grid {−1, +1}.
    pub fn binary(threshold: f32) -> Self {
        Self {
            alpha: 2.0,
            beta: 1.0,
            kmin: -1,
            kmax: 0,
            ..Self::signed(2, 1.0, threshold)
        }
    }

    /// The grid as [`super::prox::Grid`].
    pub fn grid(&self) -> super::prox::Grid {
        super::prox::Grid {
            alpha: f64::from(self.alpha),
            beta: f64::from(self.beta),
            kmin: self.kmin,
            kmax: self.kmax,
        }
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // tests index parallel arrays of expected values
mod tests {
    use super::*;

    #[test]
    fn prox_grid_uses_the_preconditioner() {
        let mut w = [0.3f32, 0.3];
        let v = [0.0f32, 15.0]; // c = [1e-3+0, ~3.873]
        let s = ProxScalars {
            eps: 1.0,
            ..ProxScalars::signed(2, 0.5, 0.1)
        };
        prox_grid(&mut w, Some(&v), &s);
        // c_0 = 1 → τ = 0.1 → 0.3 + 0.1 (towards 0.5); c_1 = √15 + 1 → τ ≈ 0.0205.
        assert!(
            (w[0] - 0.4).abs() < 1e-6 && (w[1] - (0.3 + 0.1 / (15f32.sqrt() + 1.0))).abs() < 1e-6
        );
    }
}
