//! The dense family on the GPU: `DenseOps` for [`GpuDevice`], with the launchers of
//! `shaders/dense.wgsl` (tiled and naive matmul), `shaders/dense_reduce.wgsl` (two-pass sums and
//! norms) and `shaders/dense_rows.wgsl` (row gathers, column sums, products). The layer composites
//! (`linear`, `linear_grads`, `linear_input_grad`) run core's defaults: a matmul plus the act
//! family's bias kernel, which is what the fused MLP kernels did. The CPU twins are
//! `optiscope_core::device::dense`; `tests/dense.rs` compares them.

use bytemuck::{Pod, Zeroable};
use optiscope_core::device::dense::as_stored;
use optiscope_core::device::{DenseOps, Mat};
use optiscope_core::tensor::Op;
use wgpu::util::DeviceExt;

use crate::context::{GpuBuffer, GpuContext, GpuError};
use crate::device::GpuDevice;
use crate::shaders;

/// `MatmulParams` of `dense.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
    alpha: f32,
    beta: f32,
    _pad: [u32; 2],
}

/// Which matrix-product kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulKernel {
    /// [`MatmulKernel::Vec4`] where it applies and, on a hardware GPU, the product has enough
    /// 128×128 tiles to fill it ([`AUTO_MIN_WIDE_TILES`]), else [`MatmulKernel::Tiled`]. What
    /// the executor uses.
    Auto,
    /// 128×128 tiles, 8×8 outputs per thread, vec4 loads; only for operands whose contiguous
    /// dimension is a multiple of 4 ([`vec4_applies`]), else it runs [`MatmulKernel::Tiled`].
    Vec4,
    /// 64×64 tiles in workgroup memory, 4×4 outputs per thread, scalar loads; any shape.
    Tiled,
    /// One output per thread, no shared memory (the benchmark baseline).
    Naive,
}

/// Below this many 128×128 output tiles `Auto` takes the 64×64 kernel on a hardware GPU: four
/// times the workgroups keeps more of a large GPU's cores busy on a small product (a 768×384
/// product has 18 wide tiles, 72 narrow ones). A software adapter has a few CPU cores to fill
/// and takes the wide kernel whenever it applies (on lavapipe it is 2.6–4.5× the 64×64 kernel
/// from n = 128 to 512, `optiscope bench`).
pub const AUTO_MIN_WIDE_TILES: usize = 64;

/// Whether `matmul_vec4` can read the operands as vec4s: the dimension each stores
/// contiguously — A: k (m when transposed), B: n (k when transposed) — is a multiple of 4.
pub fn vec4_applies((m, k, n): (usize, usize, usize), op_a: Op, op_b: Op) -> bool {
    let a = if op_a == Op::T { m } else { k };
    let b = if op_b == Op::T { k } else { n };
    a % 4 == 0 && b % 4 == 0
}

/// The kernel `kernel` runs as for this product (`Auto` and an inapplicable `Vec4` resolved);
/// `software`: the adapter is a software rasterizer.
pub fn resolve(
    kernel: MatmulKernel,
    dims: (usize, usize, usize),
    op_a: Op,
    op_b: Op,
    software: bool,
) -> MatmulKernel {
    let (m, _, n) = dims;
    let wide = vec4_applies(dims, op_a, op_b);
    let min_tiles = if software { 1 } else { AUTO_MIN_WIDE_TILES };
    match kernel {
        MatmulKernel::Auto if wide && m.div_ceil(128) * n.div_ceil(128) >= min_tiles => {
            MatmulKernel::Vec4
        }
        MatmulKernel::Auto => MatmulKernel::Tiled,
        MatmulKernel::Vec4 if !wide => MatmulKernel::Tiled,
        k => k,
    }
}

/// Records `C ← α op(A) op(B) + β C` (row-major; op(A) m×k, op(B) k×n), the twin of
/// `optiscope_core::tensor::gemm`.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    kernel: MatmulKernel,
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    a: &GpuBuffer,
    op_a: Op,
    b: &GpuBuffer,
    op_b: Op,
    beta: f32,
    c: &GpuBuffer,
) -> Result<(), GpuError> {
    let flags = u32::from(op_a == Op::T) | (u32::from(op_b == Op::T) << 1);
    let params = MatmulParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        flags,
        alpha,
        beta,
        _pad: [0; 2],
    };
    let kernel = resolve(kernel, (m, k, n), op_a, op_b, ctx.is_software());
    let (entry, tile, a_at, b_at) = match kernel {
        MatmulKernel::Vec4 => ("matmul_vec4", 128, 5, 6),
        MatmulKernel::Naive => ("matmul_naive", 16, 1, 2),
        _ => ("matmul_tiled", 64, 1, 2),
    };
    let gx = ctx.groups_1d(entry, n, tile)?[0];
    let gy = ctx.groups_1d(entry, m, tile)?[0];
    ctx.dispatch(
        enc,
        shaders::DENSE,
        entry,
        bytemuck::bytes_of(&params),
        &[(a_at, &a.buffer), (b_at, &b.buffer), (3, &c.buffer)],
        [gx, gy, 1],
    );
    Ok(())
}

/// `ReduceParams` of `dense_reduce.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
struct ReduceParams {
    n: u32,
    num_partials: u32,
    norm_mul: f32,
    norm_add: f32,
}

/// Scratch buffers of the two-pass reductions.
#[derive(Debug, Clone)]
pub struct ReduceScratch {
    partials: GpuBuffer,
    /// `result[0]` after a reduction.
    pub result: GpuBuffer,
}

const MAX_PARTIALS: usize = 256;

impl ReduceScratch {
    /// Scratch for reductions on `ctx`.
    pub fn new(ctx: &GpuContext) -> Self {
        Self {
            partials: ctx.zeros(MAX_PARTIALS),
            result: ctx.zeros(1),
        }
    }

    fn first_pass(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        entry: &'static str,
        input: &GpuBuffer,
        p: &ReduceParams,
    ) {
        let bufs = [(1, &input.buffer), (2, &self.partials.buffer)];
        ctx.dispatch(
            enc,
            shaders::DENSE_REDUCE,
            entry,
            bytemuck::bytes_of(p),
            &bufs,
            [p.num_partials, 1, 1],
        );
    }

    fn params(input: &GpuBuffer, norm_mul: f32, norm_add: f32) -> ReduceParams {
        let num_partials = input.len.div_ceil(256).clamp(1, MAX_PARTIALS) as u32;
        ReduceParams {
            n: input.len as u32,
            num_partials,
            norm_mul,
            norm_add,
        }
    }

    /// Records `result[0] = Σ input` (or `Σ input²` with `squares`).
    pub fn sum(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        input: &GpuBuffer,
        squares: bool,
    ) {
        let p = Self::params(input, 1.0, 0.0);
        self.first_pass(
            ctx,
            enc,
            if squares {
                "partial_sum_squares"
            } else {
                "partial_sum"
            },
            input,
            &p,
        );
        ctx.dispatch(
            enc,
            shaders::DENSE_REDUCE,
            "finish_sum",
            bytemuck::bytes_of(&p),
            &[(2, &self.partials.buffer), (3, &self.result.buffer)],
            [1, 1, 1],
        );
    }

    /// Records `result[0] = 1 / (‖input‖_F · mul + add)`.
    pub fn inverse_norm(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        input: &GpuBuffer,
        mul: f32,
        add: f32,
    ) {
        let p = Self::params(input, mul, add);
        self.first_pass(ctx, enc, "partial_sum_squares", input, &p);
        let bufs = [(2, &self.partials.buffer), (3, &self.result.buffer)];
        ctx.dispatch(
            enc,
            shaders::DENSE_REDUCE,
            "finish_inverse_norm",
            bytemuck::bytes_of(&p),
            &bufs,
            [1, 1, 1],
        );
    }

    /// Records `x ← x · result[0]`.
    pub fn scale_by_result(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        x: &GpuBuffer,
    ) -> Result<(), GpuError> {
        let p = Self::params(x, 1.0, 0.0);
        let groups = ctx.groups_1d("scale_by_result", x.len, 256)?;
        ctx.dispatch(
            enc,
            shaders::DENSE_REDUCE,
            "scale_by_result",
            bytemuck::bytes_of(&p),
            &[(3, &self.result.buffer), (4, &x.buffer)],
            groups,
        );
        Ok(())
    }
}

/// `RowsParams` of `dense_rows.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
struct RowsParams {
    rows: u32,
    cols: u32,
    _pad: [u32; 2],
}

impl RowsParams {
    fn new(rows: usize, cols: usize) -> Self {
        Self {
            rows: rows as u32,
            cols: cols as u32,
            ..Self::default()
        }
    }
}

impl GpuDevice {
    /// Records `C ← op(A)·op(B)` (C m×n) with the tiled matmul.
    fn matmul_into(
        &mut self,
        mkn: (usize, usize, usize),
        a: Mat<'_, GpuBuffer>,
        b: Mat<'_, GpuBuffer>,
        c: &GpuBuffer,
    ) {
        let ctx = self.ctx.clone();
        let tiled = MatmulKernel::Auto;
        let r = gemm(
            &ctx,
            self.enc(),
            tiled,
            mkn,
            1.0,
            a.buf,
            a.op,
            b.buf,
            b.op,
            0.0,
            c,
        );
        self.record(r);
    }

    fn rows(
        &mut self,
        entry: &'static str,
        p: RowsParams,
        bufs: &[(u32, &wgpu::Buffer)],
        threads: usize,
        group: u32,
    ) {
        self.launch(
            shaders::DENSE_ROWS,
            entry,
            bytemuck::bytes_of(&p),
            bufs,
            threads,
            group,
        );
    }
}

impl DenseOps for GpuDevice {
    fn matmul(&mut self, a: Mat<'_, GpuBuffer>, b: Mat<'_, GpuBuffer>) -> GpuBuffer {
        let ((m, k), (k2, n)) = (a.shape(), b.shape());
        assert_eq!(k, k2, "matmul of {:?} by {:?}", a.shape(), b.shape());
        let c = self.ctx.zeros(m * n);
        if c.len > 0 {
            self.matmul_into((m, k, n), a, b, &c);
        }
        c
    }

    fn gather_rows(&mut self, src: Mat<'_, GpuBuffer>, rows: &[u32]) -> GpuBuffer {
        as_stored(&src, "gather_rows");
        if let Some(r) = rows.iter().find(|&&r| r as usize >= src.rows) {
            self.error.get_or_insert(GpuError::Unsupported(format!(
                "gather_rows: row {r} of a matrix with {} rows",
                src.rows
            )));
            return self.ctx.zeros(rows.len() * src.cols);
        }
        let dim = src.cols;
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
        let p = RowsParams::new(rows.len(), dim);
        let bufs = [(1, &src.buf.buffer), (3, &out.buffer), (5, &index)];
        self.rows("gather_rows", p, &bufs, out.len, 256);
        out
    }

    fn col_sums(&mut self, m: Mat<'_, GpuBuffer>) -> GpuBuffer {
        as_stored(&m, "col_sums");
        let out = self.ctx.zeros(m.cols);
        if m.cols > 0 {
            let bufs = [(1, &m.buf.buffer), (3, &out.buffer)];
            self.rows(
                "col_sums",
                RowsParams::new(m.rows, m.cols),
                &bufs,
                m.cols,
                64,
            );
        }
        out
    }

    fn mul(&mut self, a: &GpuBuffer, b: &GpuBuffer) -> GpuBuffer {
        let out = self.ctx.zeros(a.len);
        if a.len > 0 {
            let bufs = [(1, &a.buffer), (2, &b.buffer), (3, &out.buffer)];
            self.rows("mul", RowsParams::new(a.len, 1), &bufs, a.len, 256);
        }
        out
    }

    fn weighted_col_sums(&mut self, g: &GpuBuffer, d: Mat<'_, GpuBuffer>) -> GpuBuffer {
        as_stored(&d, "weighted_col_sums");
        let p = d.cols;
        let out = self.ctx.zeros(p);
        if p > 0 {
            let bufs = [(1, &g.buffer), (2, &d.buf.buffer), (3, &out.buffer)];
            // One workgroup of 256 per column.
            let params = RowsParams::new(d.rows, p);
            self.rows("weighted_col_sums", params, &bufs, p * 256, 256);
        }
        out
    }

    fn sums_of_squares(&mut self, bufs: &[&GpuBuffer]) -> GpuBuffer {
        // Σ x² of each buffer is weighted_col_sums(x, x, n, 1); the one-value results are copied
        // side by side so that the caller reads them back at once.
        let out = self.ctx.zeros(bufs.len());
        for (i, b) in bufs.iter().enumerate() {
            let sum = self.weighted_col_sums(b, Mat::new(*b, b.len, 1));
            self.enc()
                .copy_buffer_to_buffer(&sum.buffer, 0, &out.buffer, (i * 4) as u64, 4);
        }
        out
    }
}

/// This module's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    use crate::layout::uniform_layout;
    vec![
        uniform_layout!(MatmulParams in shaders::DENSE, "MatmulParams" {
            m, n, k, flags, alpha, beta,
        }),
        uniform_layout!(ReduceParams in shaders::DENSE_REDUCE, "ReduceParams" {
            n, num_partials, norm_mul, norm_add,
        }),
        uniform_layout!(RowsParams in shaders::DENSE_ROWS, "RowsParams" { rows, cols }),
    ]
}
