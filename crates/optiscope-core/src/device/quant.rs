//! The quantization family: the per-weight quantization kernel (forward value, gain and the
//! derivatives with respect to the grid's parameters) and ProxQuant's prox onto the grid. The CPU
//! twins are [`kernel`] (with the categorical quantizers of [`categorical`]); the WGSL twin is
//! `shaders/quant.wgsl`, launched from `optiscope-gpu/src/ops/quant.rs`. The quantizers' host
//! logic (their parameters, optimizers and schedules) lives in `crate::quant`.

pub mod categorical;
pub mod kernel;
pub mod prox;

use self::kernel::{ProxScalars, QuantSpec};
use super::{Cpu, Storage};

/// The integer range `[−Q_N, Q_P]` of a signed b-bit grid (`restricted`: `Q_N = Q_P`).
pub fn signed_range(bits: u32, restricted: bool) -> (i32, i32) {
    let qp = (1i32 << (bits - 1)) - 1;
    (if restricted { qp } else { qp + 1 }, qp)
}

/// Level of grid index `k` in a b-bit grid: the smallest j such that k is on the j-bit sub-grid
/// (`k ≡ 0 mod 2^{b−j}`). DropBits drops the points of the highest levels first (spec A0).
pub fn bit_level(k: i32, bits: u32) -> u32 {
    (1..=bits)
        .find(|&j| k.rem_euclid(1 << (bits - j)) == 0)
        .unwrap_or(bits)
}

/// What the quantization kernel writes for a tensor of n weights.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantOut<B> {
    /// Forward values x̂ (n).
    pub xhat: B,
    /// `∂x̂/∂w` per weight (n).
    pub gain: B,
    /// `∂x̂/∂(α, σ, K_1..K_4)`, row-major `n × DPARAMS`.
    pub dparams: B,
}

/// Quantization kernels.
pub trait QuantOps: Storage {
    /// The quantization kernel ([`kernel::quantize`]) on `w`. `noise` holds the Gumbel values
    /// RQ needs (`spec.noise_per_weight()` per weight).
    fn quantize(
        &mut self,
        w: &Self::Buf,
        spec: &QuantSpec,
        noise: Option<&Self::Buf>,
    ) -> QuantOut<Self::Buf>;
    /// ProxQuant's prox ([`kernel::prox_grid`]) in place; `v` is Adam's second moment for the
    /// revised variant's per-coordinate strength.
    fn prox_grid(&mut self, w: &mut Self::Buf, v: Option<&Self::Buf>, s: &ProxScalars);
}

impl QuantOps for Cpu {
    fn quantize(
        &mut self,
        w: &Vec<f32>,
        spec: &QuantSpec,
        noise: Option<&Vec<f32>>,
    ) -> QuantOut<Vec<f32>> {
        kernel::quantize(w, spec, noise.map_or(&[][..], |v| v.as_slice()))
    }

    fn prox_grid(&mut self, w: &mut Vec<f32>, v: Option<&Vec<f32>>, s: &ProxScalars) {
        kernel::prox_grid(w, v.map(|v| v.as_slice()), s);
    }
}
