//! The quantization family on the GPU: `QuantOps` for [`GpuDevice`], launching
//! `shaders/quant.wgsl` (the per-weight kernel in f32 with the CPU's log-space formulas, and
//! ProxQuant's prox). The CPU twins are `optiscope_core::device::quant::kernel`; `tests/quant.rs`
//! compares them. A spec the shader does not take (too many bits, missing noise) is kept in the
//! device's error and returned by the next read-back.

use bytemuck::{Pod, Zeroable};
use optiscope_core::device::quant::categorical::MAX_BITS;
use optiscope_core::device::quant::kernel::{KernelMode, ProxScalars, QuantSpec, DPARAMS};
use optiscope_core::device::{QuantOps, QuantOut};

use crate::context::{GpuBuffer, GpuError};
use crate::device::GpuDevice;
use crate::shaders;

/// `QuantParams` of `quant.wgsl` (64 bytes; `keep` at offset 48 keeps the vec4 aligned).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
struct QuantParams {
    n: u32,
    bits: u32,
    flags: u32,
    _pad0: u32,
    alpha: f32,
    sigma: f32,
    tau: f32,
    threshold: f32,
    bias_correction2: f32,
    eps: f32,
    // prox_grid's index range (small integers, exact in f32) and offset β.
    kmin: f32,
    kmax: f32,
    keep: [f32; 4],
    beta: f32,
    zero_point: f32,
    _pad: [f32; 2],
}

const EXTEND_EDGES: u32 = 1;
const RESTRICTED: u32 = 2;
const HAS_V: u32 = 4;

impl QuantParams {
    fn new(n: usize) -> Self {
        Self {
            n: n as u32,
            ..Self::default()
        }
    }

    fn spec(n: usize, s: &QuantSpec) -> Self {
        Self {
            bits: s.bits,
            flags: if s.extend_edges { EXTEND_EDGES } else { 0 }
                | if s.restricted { RESTRICTED } else { 0 },
            alpha: s.alpha,
            sigma: s.sigma,
            tau: s.tau,
            keep: s.keep,
            zero_point: s.zero_point as f32,
            ..Self::new(n)
        }
    }
}

impl GpuDevice {
    fn quant(
        &mut self,
        entry: &'static str,
        p: QuantParams,
        bufs: &[(u32, &wgpu::Buffer)],
        threads: usize,
        group: u32,
    ) {
        self.launch(
            shaders::QUANT,
            entry,
            bytemuck::bytes_of(&p),
            bufs,
            threads,
            group,
        );
    }
}

impl QuantOps for GpuDevice {
    fn quantize(
        &mut self,
        w: &GpuBuffer,
        spec: &QuantSpec,
        noise: Option<&GpuBuffer>,
    ) -> QuantOut<GpuBuffer> {
        let n = w.len;
        let (xhat, gain, dparams) = (
            self.ctx.zeros(n),
            self.ctx.zeros(n),
            self.ctx.zeros(n * DPARAMS),
        );
        if n == 0 {
            return QuantOut {
                xhat,
                gain,
                dparams,
            };
        }
        let categorical = matches!(spec.mode, KernelMode::Relaxed | KernelMode::MultiClass);
        let max_bits = if categorical { MAX_BITS } else { 24 };
        if spec.bits == 0 || spec.bits > max_bits {
            self.error.get_or_insert(GpuError::Unsupported(format!(
                "{:?} quantization with {} bits (the GPU kernel takes 1..={max_bits})",
                spec.mode, spec.bits
            )));
            return QuantOut {
                xhat,
                gain,
                dparams,
            };
        }
        let entry = match spec.mode {
            KernelMode::Identity => "quantize_identity",
            KernelMode::Nearest => "quantize_nearest",
            KernelMode::Asymmetric => "quantize_asymmetric",
            KernelMode::Relaxed => "quantize_relaxed",
            KernelMode::MultiClass => "quantize_multiclass",
        };
        let mut bufs = vec![
            (1, &w.buffer),
            (3, &xhat.buffer),
            (4, &gain.buffer),
            (5, &dparams.buffer),
        ];
        if spec.mode == KernelMode::Relaxed {
            let needed = n * spec.noise_per_weight();
            match noise {
                Some(g) if g.len >= needed => bufs.push((2, &g.buffer)),
                _ => {
                    self.error.get_or_insert(GpuError::Unsupported(format!(
                        "relaxed quantization of {n} weights needs {needed} Gumbel values, got {}",
                        noise.map_or(0, |g| g.len)
                    )));
                    return QuantOut {
                        xhat,
                        gain,
                        dparams,
                    };
                }
            }
        }
        self.quant(entry, QuantParams::spec(n, spec), &bufs, n, 64);
        QuantOut {
            xhat,
            gain,
            dparams,
        }
    }

    fn prox_grid(&mut self, w: &mut GpuBuffer, v: Option<&GpuBuffer>, s: &ProxScalars) {
        if w.len == 0 {
            return;
        }
        let params = QuantParams {
            flags: if v.is_some() { HAS_V } else { 0 },
            alpha: s.alpha,
            beta: s.beta,
            kmin: s.kmin as f32,
            kmax: s.kmax as f32,
            threshold: s.threshold,
            bias_correction2: s.bias_correction2,
            eps: s.eps,
            ..QuantParams::new(w.len)
        };
        let v = v.map_or_else(|| self.placeholder.clone(), GpuBuffer::clone);
        let bufs = [(1, &v.buffer), (3, &w.buffer)];
        self.quant("prox_grid", params, &bufs, w.len, 256);
    }
}

/// This module's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    use crate::layout::uniform_layout;
    vec![
        uniform_layout!(QuantParams in shaders::QUANT, "QuantParams" {
            n, bits, flags, alpha, sigma, tau, threshold, bias_correction2, eps, kmin, kmax,
            keep, beta, zero_point,
        }),
    ]
}
