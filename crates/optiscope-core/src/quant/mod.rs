//! Quantization that learns its grid (spec part A).
//!
//! * this module: the shared grid and bit levels (A0) and the baselines (A5): uniform
//!   symmetric/asymmetric quantization, the clipped straight-through estimator, and LSQ's step-size
//!   gradient (Esser et al., "Learned Step Size Quantization", ICLR 2020);
//! * [`dropbits`]: DropBits and the hard-concrete gates of learned bit-widths (A2);
//! * ProxQuant and revised ProxQuant (A4): the prox onto the grid is a kernel,
//!   [`crate::device::quant::prox`], applied by the trainer after each step;
//! * [`config`]: [`QuantConfig`], the serde config of a model's weight quantizer;
//!
//! The per-weight kernel every executor runs and the categorical quantizers (RQ's masses and
//! Gumbel sample, the multi-class STE of SRQ/CPQ) are the quantization kernel family,
//! [`crate::device::quant`] (`kernel`, `categorical`), the CPU twins of `shaders/quant.wgsl`.
//!
//! Rounding is half-to-even everywhere (as `torch.round` and WGSL's `round`).

pub mod config;
pub mod dropbits;

pub use config::{LearnBitsConfig, QuantConfig, QuantMethod};

pub use crate::device::quant::{bit_level, signed_range};

/// A quantized tensor: grid indices, values, and the clipped-STE mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// Assigned grid index k per element.
    pub q: Vec<i32>,
    /// Dequantized values x̂.
    pub xhat: Vec<f32>,
    /// 1 inside the clipping range (the straight-through gradient passes), 0 outside.
    pub ste_mask: Vec<f32>,
}

/// Symmetric signed quantization with step `s`: `q = clip(round(x/s), −Q_N, Q_P)`, `x̂ = s·q`.
pub fn quantize_symmetric(x: &[f32], s: f32, bits: u32, restricted: bool) -> Quantized {
    let (qn, qp) = signed_range(bits, restricted);
    let mut out = Quantized {
        q: Vec::with_capacity(x.len()),
        xhat: Vec::with_capacity(x.len()),
        ste_mask: Vec::with_capacity(x.len()),
    };
    for &v in x {
        let r = (v / s).round_ties_even();
        let q = r.clamp(-(qn as f32), qp as f32) as i32;
        out.q.push(q);
        out.xhat.push(s * q as f32);
        let inside = v / s > -(qn as f32) && v / s < qp as f32;
        out.ste_mask.push(if inside { 1.0 } else { 0.0 });
    }
    out
}

/// Step and zero point of asymmetric b-bit quantization of `[x_min, x_max]`.
pub fn asymmetric_params(x_min: f32, x_max: f32, bits: u32) -> (f32, i32) {
    let levels = ((1u32 << bits) - 1) as f32;
    let s = (x_max - x_min) / levels;
    let z = (-x_min / s).round_ties_even().clamp(0.0, levels) as i32;
    (s, z)
}

/// Asymmetric unsigned quantization: `q = clip(round(x/s) + z, 0, 2^b − 1)`, `x̂ = s(q − z)`.
pub fn quantize_asymmetric(x: &[f32], s: f32, z: i32, bits: u32) -> Quantized {
    let top = ((1u32 << bits) - 1) as f32;
    let mut out = Quantized {
        q: vec![],
        xhat: vec![],
        ste_mask: vec![],
    };
    for &v in x {
        let u = (v / s).round_ties_even() + z as f32;
        let q = u.clamp(0.0, top) as i32;
        out.q.push(q);
        out.xhat.push(s * (q - z) as f32);
        out.ste_mask
            .push(if (0.0..=top).contains(&u) { 1.0 } else { 0.0 });
    }
    out
}

/// LSQ's `∂x̂/∂s` per element, with `v = x/s`: `round(v) − v` inside the range, `−Q_N` below,
/// `Q_P` above.
pub fn lsq_scale_grad(x: &[f32], s: f32, bits: u32, restricted: bool) -> Vec<f32> {
    let (qn, qp) = signed_range(bits, restricted);
    x.iter()
        .map(|&xi| {
            let v = xi / s;
            if v <= -(qn as f32) {
                -(qn as f32)
            } else if v >= qp as f32 {
                qp as f32
            } else {
                v.round_ties_even() - v
            }
        })
        .collect()
}

/// LSQ's gradient scale `1/sqrt(N·Q_P)`.
pub fn lsq_grad_scale(n: usize, bits: u32) -> f32 {
    let (_, qp) = signed_range(bits, false);
    1.0 / ((n as f32) * qp as f32).sqrt()
}

/// LSQ's initial step `2·mean|x| / sqrt(Q_P)`.
pub fn lsq_init(x: &[f32], bits: u32) -> f32 {
    let (_, qp) = signed_range(bits, false);
    let mean_abs = x.iter().map(|v| f64::from(v.abs())).sum::<f64>() / x.len().max(1) as f64;
    (2.0 * mean_abs / f64::from(qp).sqrt()) as f32
}

/// Fraction of weights within `tau·s` of their grid point (`near_frac(0.1)` of spec A0).
pub fn near_frac(x: &[f32], xhat: &[f32], s: f32, tau: f32) -> f64 {
    let near = x
        .iter()
        .zip(xhat)
        .filter(|(a, b)| (*a - *b).abs() <= tau * s)
        .count();
    near as f64 / x.len().max(1) as f64
}

/// Mean squared quantization error.
pub fn mse(x: &[f32], xhat: &[f32]) -> f64 {
    x.iter()
        .zip(xhat)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum::<f64>()
        / x.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::quant::kernel::{quantize, KernelMode, QuantSpec, DPARAMS};

    /// The device's kernel in its Nearest mode is this module's LSQ baseline, bit for bit.
    #[test]
    fn nearest_mode_is_the_lsq_baseline() {
        let x = [
            -1.30f32, -0.62, -0.25, -0.05, 0.0, 0.07, 0.26, 0.49, 0.51, 1.20,
        ];
        let out = quantize(&x, &QuantSpec::new(KernelMode::Nearest, 3, 0.25), &[]);
        let base = super::quantize_symmetric(&x, 0.25, 3, false);
        assert_eq!(out.xhat, base.xhat);
        assert_eq!(out.gain, base.ste_mask);
        let ds: Vec<f32> = out.dparams.chunks(DPARAMS).map(|d| d[0]).collect();
        assert_eq!(ds, super::lsq_scale_grad(&x, 0.25, 3, false));
    }

    /// The asymmetric mode on the spec A5 vector (b = 3, [−0.62, 1.20]: s = 0.26, z = 2).
    #[test]
    fn asymmetric_mode_is_the_baseline() {
        let x = [
            -1.30f32, -0.62, -0.25, -0.05, 0.0, 0.07, 0.26, 0.49, 0.51, 1.20,
        ];
        let (s, z) = super::asymmetric_params(-0.62, 1.20, 3);
        let spec = QuantSpec {
            zero_point: z,
            ..QuantSpec::new(KernelMode::Asymmetric, 3, s)
        };
        let out = quantize(&x, &spec, &[]);
        let base = super::quantize_asymmetric(&x, s, z, 3);
        assert_eq!(out.xhat, base.xhat);
        assert_eq!(out.gain, base.ste_mask);
        let q: Vec<i32> = out
            .xhat
            .iter()
            .map(|v| (v / s).round() as i32 + z)
            .collect();
        assert_eq!(q, [0, 0, 1, 2, 2, 2, 3, 4, 4, 7]);
    }

    const X: [f32; 10] = [
        -1.30, -0.62, -0.25, -0.05, 0.0, 0.07, 0.26, 0.49, 0.51, 1.20,
    ];

    /// Spec A5 vectors (b = 3, s = 0.25).
    #[test]
    fn symmetric_ste_and_lsq_vectors() {
        let q = quantize_symmetric(&X, 0.25, 3, false);
        assert_eq!(q.q, [-4, -2, -1, 0, 0, 0, 1, 2, 2, 3]);
        assert_eq!(
            q.xhat,
            [-1.0, -0.5, -0.25, 0.0, 0.0, 0.0, 0.25, 0.5, 0.5, 0.75]
        );
        assert_eq!(
            q.ste_mask,
            [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
        );
        let g = lsq_scale_grad(&X, 0.25, 3, false);
        let want = [-4.0, 0.48, 0.0, 0.2, 0.0, -0.28, -0.04, 0.04, -0.04, 3.0];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{g:?}");
        }
        assert!((lsq_grad_scale(10, 3) - 0.182_574_2).abs() < 1e-6);
        assert!((lsq_init(&X, 3) - 0.548_482_8).abs() < 1e-6);
    }

    #[test]
    fn asymmetric_vector() {
        let (s, z) = asymmetric_params(-0.62, 1.20, 3);
        assert!((s - 0.26).abs() < 1e-6);
        assert_eq!(z, 2);
        assert_eq!(
            quantize_asymmetric(&X, s, z, 3).q,
            [0, 0, 1, 2, 2, 2, 3, 4, 4, 7]
        );
    }

    #[test]
    fn rounding_is_half_to_even() {
        let q = quantize_symmetric(&[2.5, -0.5, 1.5, 0.5], 1.0, 4, false);
        assert_eq!(q.q, [2, 0, 2, 0]);
        assert!(q.xhat[1] == 0.0);
    }

    #[test]
    fn bit_levels_of_a_3_bit_grid() {
        let levels: Vec<u32> = (-4..=3).map(|k| bit_level(k, 3)).collect();
        assert_eq!(levels, [1, 3, 2, 3, 1, 3, 2, 3]);
    }

    /// Known behaviour (spec A5): MSE of U(−a, a) data inside the range is s²/12 (±2 %, 10⁵ samples);
    /// uniform data has near_frac(0.1) ≈ 0.2.
    #[test]
    fn uniform_data_statistics() {
        let rng = crate::rng::Philox::new(5);
        // a = 1.75 is a cell boundary (cells are centred on multiples of s = 0.5), so every cell is whole.
        let x: Vec<f32> = (0..100_000)
            .map(|i| 1.75 * (2.0 * rng.uniform_at(1, i) - 1.0))
            .collect();
        let s = 0.5;
        let q = quantize_symmetric(&x, s, 4, false);
        let m = mse(&x, &q.xhat);
        assert!((m / (f64::from(s * s) / 12.0) - 1.0).abs() < 0.02, "{m}");
        let nf = near_frac(&x, &q.xhat, s, 0.1);
        assert!((nf - 0.2).abs() < 0.01, "{nf}");
    }
}
