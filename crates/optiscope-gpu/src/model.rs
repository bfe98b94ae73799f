//! Core's [`ModelDevice`] on the GPU: the kernels of model training (an MLP whose weights pass
//! through a quantizer) as WGSL twins of the CPU implementation in
//! `optiscope_core::train::device` — `shaders/mlp.wgsl` around the tiled matmul, and
//! `shaders/quant.wgsl` for the per-weight quantization kernel (`quant::kernel::quantize_one`,
//! computed in f32 with the same log-space formulas), its reductions and ProxQuant's prox.
//!
//! Like every kernel of [`GpuDevice`], these are recorded into the pending command encoder; a
//! launch that cannot be recorded (too large a dispatch, an unsupported spec) is kept in the
//! device's error and returned by the next read-back.

use bytemuck::{Pod, Zeroable};
use optiscope_core::quant::categorical::MAX_BITS;
use optiscope_core::quant::kernel::{KernelMode, ProxScalars, QuantSpec, DPARAMS};
use optiscope_core::tensor::Op;
use optiscope_core::train::ModelDevice;
use wgpu::util::DeviceExt;

use crate::context::{GpuBuffer, GpuError};
use crate::device::GpuDevice;
use crate::kernels::{self, MatmulKernel};
use crate::shaders::{self, Shader};

/// `MlpParams` of `mlp.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
struct MlpParams {
    rows: u32,
    cols: u32,
    flags: u32,
    _pad: u32,
}

const RELU: u32 = 1;

impl MlpParams {
    fn new(rows: usize, cols: usize) -> Self {
        Self {
            rows: rows as u32,
            cols: cols as u32,
            ..Self::default()
        }
    }
}

/// `QuantParams` of `quant.wgsl` (64 bytes; `keep` at offset 48 keeps the vec4 aligned).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
struct QuantParams {
    n: u32,
    bits: u32,
    flags: u32,
    p: u32,
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
    fn record(&mut self, result: Result<(), GpuError>) {
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }

    /// Records `entry` of `shader` over `threads` invocations in workgroups of `group`.
    fn launch(
        &mut self,
        shader: Shader,
        entry: &'static str,
        uniform: &[u8],
        bufs: &[(u32, &wgpu::Buffer)],
        threads: usize,
        group: u32,
    ) {
        let ctx = self.ctx.clone();
        match ctx.groups_1d(entry, threads, group) {
            Ok(groups) => ctx.dispatch(self.enc(), shader, entry, uniform, bufs, groups),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    /// Records `C ← op(A)·op(B)` (C m×n) with the tiled matmul.
    #[allow(clippy::too_many_arguments)]
    fn matmul(
        &mut self,
        mkn: (usize, usize, usize),
        a: &GpuBuffer,
        op_a: Op,
        b: &GpuBuffer,
        op_b: Op,
        c: &GpuBuffer,
    ) {
        let ctx = self.ctx.clone();
        let tiled = MatmulKernel::Tiled;
        let r = kernels::gemm(&ctx, self.enc(), tiled, mkn, 1.0, a, op_a, b, op_b, 0.0, c);
        self.record(r);
    }

    fn mlp(
        &mut self,
        entry: &'static str,
        p: MlpParams,
        bufs: &[(u32, &wgpu::Buffer)],
        threads: usize,
    ) {
        self.launch(
            shaders::MLP,
            entry,
            bytemuck::bytes_of(&p),
            bufs,
            threads,
            256,
        );
    }

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

impl ModelDevice for GpuDevice {
    fn gather_rows(&mut self, src: &GpuBuffer, dim: usize, rows: &[u32]) -> GpuBuffer {
        let out = self.ctx.zeros(rows.len() * dim);
        if out.len == 0 {
            return out;
        }
        // A fresh buffer holds its contents from creation on: no need to submit pending work.
        let index = self
            .ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("rows"),
                contents: bytemuck::cast_slice(rows),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let p = MlpParams::new(rows.len(), dim);
        let bufs = [(1, &src.buffer), (3, &out.buffer), (5, &index)];
        self.mlp("gather_rows", p, &bufs, out.len);
        out
    }

    fn linear(
        &mut self,
        x: &GpuBuffer,
        w: &GpuBuffer,
        b: &GpuBuffer,
        n: usize,
        fi: usize,
        fo: usize,
        relu: bool,
    ) -> GpuBuffer {
        let y = self.ctx.zeros(n * fo);
        if y.len == 0 {
            return y;
        }
        self.matmul((n, fi, fo), x, Op::N, w, Op::T, &y);
        let p = MlpParams {
            flags: if relu { RELU } else { 0 },
            ..MlpParams::new(n, fo)
        };
        self.mlp("bias_act", p, &[(2, &b.buffer), (3, &y.buffer)], y.len);
        y
    }

    fn softmax_xent(
        &mut self,
        logits: &GpuBuffer,
        labels: &GpuBuffer,
        n: usize,
        c: usize,
    ) -> (GpuBuffer, GpuBuffer) {
        let d = self.ctx.zeros(n * c);
        let stats = self.ctx.zeros(2);
        if d.len == 0 {
            return (d, stats);
        }
        let bufs = [
            (1, &logits.buffer),
            (2, &labels.buffer),
            (3, &d.buffer),
            (4, &stats.buffer),
        ];
        // One workgroup: the rows are strided over its 256 threads.
        self.mlp("softmax_xent", MlpParams::new(n, c), &bufs, 1);
        (d, stats)
    }

    fn linear_grads(
        &mut self,
        x: &GpuBuffer,
        delta: &GpuBuffer,
        n: usize,
        fi: usize,
        fo: usize,
    ) -> (GpuBuffer, GpuBuffer) {
        let gw = self.ctx.zeros(fo * fi);
        let gb = self.ctx.zeros(fo);
        if gw.len > 0 {
            self.matmul((fo, n, fi), delta, Op::T, x, Op::N, &gw);
        }
        if fo > 0 {
            let bufs = [(1, &delta.buffer), (3, &gb.buffer)];
            let p = MlpParams::new(n, fo);
            self.launch(
                shaders::MLP,
                "col_sums",
                bytemuck::bytes_of(&p),
                &bufs,
                fo,
                64,
            );
        }
        (gw, gb)
    }

    fn linear_backprop(
        &mut self,
        delta: &GpuBuffer,
        w: &GpuBuffer,
        act: &GpuBuffer,
        n: usize,
        fi: usize,
        fo: usize,
    ) -> GpuBuffer {
        let dx = self.ctx.zeros(n * fi);
        if dx.len == 0 {
            return dx;
        }
        self.matmul((n, fo, fi), delta, Op::N, w, Op::N, &dx);
        let bufs = [(2, &act.buffer), (3, &dx.buffer)];
        self.mlp("relu_mask", MlpParams::new(n, fi), &bufs, dx.len);
        dx
    }

    fn quantize(
        &mut self,
        w: &GpuBuffer,
        spec: &QuantSpec,
        noise: Option<&GpuBuffer>,
    ) -> (GpuBuffer, GpuBuffer, GpuBuffer) {
        let n = w.len;
        let (xhat, gain, dparams) = (
            self.ctx.zeros(n),
            self.ctx.zeros(n),
            self.ctx.zeros(n * DPARAMS),
        );
        if n == 0 {
            return (xhat, gain, dparams);
        }
        let categorical = matches!(spec.mode, KernelMode::Relaxed | KernelMode::MultiClass);
        let max_bits = if categorical { MAX_BITS } else { 24 };
        if spec.bits == 0 || spec.bits > max_bits {
            self.error.get_or_insert(GpuError::Unsupported(format!(
                "{:?} quantization with {} bits (the GPU kernel takes 1..={max_bits})",
                spec.mode, spec.bits
            )));
            return (xhat, gain, dparams);
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
                    return (xhat, gain, dparams);
                }
            }
        }
        self.quant(entry, QuantParams::spec(n, spec), &bufs, n, 64);
        (xhat, gain, dparams)
    }

    fn mul(&mut self, a: &GpuBuffer, b: &GpuBuffer) -> GpuBuffer {
        let out = self.ctx.zeros(a.len);
        if a.len > 0 {
            let bufs = [(1, &a.buffer), (2, &b.buffer), (3, &out.buffer)];
            self.quant("mul", QuantParams::new(a.len), &bufs, a.len, 256);
        }
        out
    }

    fn weighted_col_sums(&mut self, g: &GpuBuffer, d: &GpuBuffer, n: usize, p: usize) -> GpuBuffer {
        let out = self.ctx.zeros(p);
        if p > 0 {
            let params = QuantParams {
                p: p as u32,
                ..QuantParams::new(n)
            };
            let bufs = [(1, &g.buffer), (2, &d.buffer), (3, &out.buffer)];
            // One workgroup of 256 per column.
            self.quant("weighted_col_sums", params, &bufs, p * 256, 256);
        }
        out
    }

    fn sums_of_squares(&mut self, bufs: &[&GpuBuffer]) -> GpuBuffer {
        // Σ x² of each buffer is weighted_col_sums(x, x, n, 1); the one-value results are copied
        // side by side so that the caller reads them back at once.
        let out = self.ctx.zeros(bufs.len());
        for (i, b) in bufs.iter().enumerate() {
            let sum = self.weighted_col_sums(b, b, b.len, 1);
            self.enc()
                .copy_buffer_to_buffer(&sum.buffer, 0, &out.buffer, (i * 4) as u64, 4);
        }
        out
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
        uniform_layout!(MlpParams in shaders::MLP, "MlpParams" { rows, cols, flags }),
        uniform_layout!(QuantParams in shaders::QUANT, "QuantParams" {
            n, bits, flags, p, alpha, sigma, tau, threshold, bias_correction2, eps, kmin, kmax,
            keep, beta, zero_point,
        }),
    ]
}
