//! Typed launchers of the WGSL kernels: each records dispatches into a command encoder. Their CPU
//! twins live in `optiscope-core`; the conformance tests compare the two.

use bytemuck::{Pod, Zeroable};
use optiscope_core::optim::elementwise::{
    AdamScalars, AmuseAuxScalars, ScheduleFreeScalars, SgdScalars,
};
use optiscope_core::optim::orthogonalize::Orthogonalizer;
use optiscope_core::tensor::Op;

use crate::context::{GpuBuffer, GpuContext, GpuError};
use crate::shaders;

/// `ElemParams` of `optim_elementwise.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct ElemParams {
    /// Elements.
    pub n: u32,
    /// Flag bits (see the shader).
    pub flags: u32,
    _pad0: [u32; 2],
    /// Learning rate (or the kernel's main coefficient).
    pub lr: f32,
    /// Momentum / β.
    pub momentum: f32,
    /// 1 − dampening.
    pub one_minus_dampening: f32,
    /// Weight decay.
    pub weight_decay: f32,
    /// 1 − β1.
    pub one_minus_beta1: f32,
    /// β2.
    pub beta2: f32,
    /// 1 − β2.
    pub one_minus_beta2: f32,
    /// ε.
    pub eps: f32,
    /// Adam step size.
    pub step_size: f32,
    /// √(1 − β2ᵗ).
    pub bc2_sqrt: f32,
    /// Averaging weight c.
    pub ckp1: f32,
    /// Schedule-Free y coefficient.
    pub y_step: f32,
    /// 1 − β2ᵗ.
    pub bias_correction2: f32,
    /// Interpolation weight / decay factor.
    pub w: f32,
    _pad1: [f32; 2],
}

const NESTEROV: u32 = 1;
const MAXIMIZE: u32 = 2;
const FIRST_STEP: u32 = 4;
const DECOUPLED: u32 = 8;
const AMSGRAD: u32 = 16;
const EXPLICIT_X: u32 = 32;

fn flag(on: bool, bit: u32) -> u32 {
    if on {
        bit
    } else {
        0
    }
}

impl ElemParams {
    fn new(n: usize) -> Self {
        Self {
            n: n as u32,
            ..Self::default()
        }
    }

    /// The uniform of an SGD step.
    pub fn sgd(n: usize, s: &SgdScalars) -> Self {
        Self {
            flags: flag(s.nesterov, NESTEROV)
                | flag(s.maximize, MAXIMIZE)
                | flag(s.first_step, FIRST_STEP),
            lr: s.lr,
            momentum: s.momentum,
            one_minus_dampening: s.one_minus_dampening,
            weight_decay: s.weight_decay,
            ..Self::new(n)
        }
    }

    /// The uniform of an Adam/AdamW step.
    pub fn adam(n: usize, s: &AdamScalars) -> Self {
        Self {
            flags: flag(s.maximize, MAXIMIZE)
                | flag(s.decoupled, DECOUPLED)
                | flag(s.amsgrad, AMSGRAD),
            lr: s.lr,
            weight_decay: s.weight_decay,
            one_minus_beta1: s.one_minus_beta1,
            beta2: s.beta2,
            one_minus_beta2: s.one_minus_beta2,
            eps: s.eps,
            step_size: s.step_size,
            bc2_sqrt: s.bc2_sqrt,
            ..Self::new(n)
        }
    }

    /// The uniform of a Schedule-Free step.
    pub fn schedulefree(n: usize, s: &ScheduleFreeScalars) -> Self {
        Self {
            lr: s.lr,
            ckp1: s.ckp1,
            y_step: s.y_step,
            weight_decay: s.weight_decay,
            beta2: s.beta2,
            one_minus_beta2: s.one_minus_beta2,
            eps: s.eps,
            bias_correction2: s.bias_correction2,
            ..Self::new(n)
        }
    }

    /// The uniform of AMUSE's fallback step.
    pub fn amuse_aux(n: usize, s: &AmuseAuxScalars) -> Self {
        Self {
            lr: s.lr,
            beta2: s.beta2,
            one_minus_beta2: s.one_minus_beta2,
            eps: s.eps,
            weight_decay: s.weight_decay,
            bias_correction2: s.bias_correction2,
            ..Self::new(n)
        }
    }

    /// A uniform with just `n`, `lr` and `w` (lerp, decay_sub, copy, AMUSE decay at y).
    pub fn lr_w(n: usize, lr: f32, w: f32) -> Self {
        Self {
            lr,
            w,
            ..Self::new(n)
        }
    }

    /// Muon's momentum.
    pub fn muon_momentum(n: usize, beta: f64, nesterov: bool) -> Self {
        Self {
            flags: flag(nesterov, NESTEROV),
            momentum: beta as f32,
            one_minus_beta1: (1.0 - beta) as f32,
            ..Self::new(n)
        }
    }

    /// AMUSE's end of step.
    pub fn amuse_tail(n: usize, c: f32, one_minus_beta: f32, explicit_x: bool) -> Self {
        Self {
            flags: flag(explicit_x, EXPLICIT_X),
            ckp1: c,
            w: one_minus_beta,
            ..Self::new(n)
        }
    }
}

/// Records `entry` of `optim_elementwise.wgsl` over `n` elements. `bufs` are bindings 1.. in order
/// (p, g, s1, s2, s3); bindings the entry does not use must be left out.
pub fn elementwise(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    entry: &'static str,
    params: &ElemParams,
    bufs: &[(u32, &GpuBuffer)],
) -> Result<(), GpuError> {
    let groups = ctx.groups_1d(entry, params.n as usize, 256)?;
    let bindings: Vec<(u32, &wgpu::Buffer)> = bufs.iter().map(|(b, g)| (*b, &g.buffer)).collect();
    ctx.dispatch(
        enc,
        shaders::OPTIM_ELEMENTWISE,
        entry,
        bytemuck::bytes_of(params),
        &bindings,
        groups,
    );
    Ok(())
}

/// `MatmulParams` of `matmul.wgsl`.
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
    /// 64×64 tiles in workgroup memory, 4×4 outputs per thread.
    Tiled,
    /// One output per thread, no shared memory (the benchmark baseline).
    Naive,
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
    let (entry, tile) = match kernel {
        MatmulKernel::Tiled => ("matmul_tiled", 64),
        MatmulKernel::Naive => ("matmul_naive", 16),
    };
    let gx = ctx.groups_1d(entry, n, tile)?[0];
    let gy = ctx.groups_1d(entry, m, tile)?[0];
    ctx.dispatch(
        enc,
        shaders::MATMUL,
        entry,
        bytemuck::bytes_of(&params),
        &[(1, &a.buffer), (2, &b.buffer), (3, &c.buffer)],
        [gx, gy, 1],
    );
    Ok(())
}

/// `ReduceParams` of `reduce.wgsl`.
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
            shaders::REDUCE,
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
            shaders::REDUCE,
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
            shaders::REDUCE,
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
            shaders::REDUCE,
            "scale_by_result",
            bytemuck::bytes_of(&p),
            &[(3, &self.result.buffer), (4, &x.buffer)],
            groups,
        );
        Ok(())
    }
}

/// `NsParams` of `newton_schulz.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
struct NsParams {
    n: u32,
    steps: u32,
    _pad: [u32; 2],
    coefficients: [[f32; 4]; 8],
}

/// Records the orthogonalization of the row-major `rows × cols` matrix `u` by Newton–Schulz or
/// Polar Express, entirely on the GPU (no read-back between iterations). A tall matrix is not
/// transposed: its Gram matrix is formed as `XᵀX` and the update applied from the right, which is
/// the same iteration. Returns the result buffer.
pub fn newton_schulz(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    scratch: &ReduceScratch,
    u: &GpuBuffer,
    (rows, cols): (usize, usize),
    orth: &Orthogonalizer,
) -> Result<GpuBuffer, GpuError> {
    let tall = rows > cols;
    let small = rows.min(cols);
    let mut x = ctx.zeros(u.len);
    enc.copy_buffer_to_buffer(&u.buffer, 0, &x.buffer, 0, (u.len * 4) as u64);
    let (mul, add) = orth.normalization_terms();
    scratch.inverse_norm(ctx, enc, &x, mul as f32, add as f32);
    scratch.scale_by_result(ctx, enc, &x)?;
    let gram = ctx.zeros(small * small);
    let b_mat = ctx.zeros(small * small);
    let mut next = ctx.zeros(u.len);
    let tiled = MatmulKernel::Tiled;
    for it in 0..orth.steps() {
        let [a, b, c] = orth.coefficients(it);
        if tall {
            // A = XᵀX (cols × cols); X ← aX + X·B
            gemm(
                ctx,
                enc,
                tiled,
                (small, rows, small),
                1.0,
                &x,
                Op::T,
                &x,
                Op::N,
                0.0,
                &gram,
            )?;
        } else {
            // A = XXᵀ (rows × rows); X ← aX + B·X
            gemm(
                ctx,
                enc,
                tiled,
                (small, cols, small),
                1.0,
                &x,
                Op::N,
                &x,
                Op::T,
                0.0,
                &gram,
            )?;
        }
        enc.copy_buffer_to_buffer(
            &gram.buffer,
            0,
            &b_mat.buffer,
            0,
            (small * small * 4) as u64,
        );
        gemm(
            ctx,
            enc,
            tiled,
            (small, small, small),
            c,
            &gram,
            Op::N,
            &gram,
            Op::N,
            b,
            &b_mat,
        )?;
        enc.copy_buffer_to_buffer(&x.buffer, 0, &next.buffer, 0, (u.len * 4) as u64);
        if tall {
            gemm(
                ctx,
                enc,
                tiled,
                (rows, small, small),
                1.0,
                &x,
                Op::N,
                &b_mat,
                Op::N,
                a,
                &next,
            )?;
        } else {
            gemm(
                ctx,
                enc,
                tiled,
                (small, small, cols),
                1.0,
                &b_mat,
                Op::N,
                &x,
                Op::N,
                a,
                &next,
            )?;
        }
        std::mem::swap(&mut x, &mut next);
    }
    Ok(x)
}

/// Records Newton–Schulz / Polar Express on `diag(u)` (the scalar map on every entry).
pub fn newton_schulz_diagonal(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    scratch: &ReduceScratch,
    u: &GpuBuffer,
    orth: &Orthogonalizer,
) -> Result<GpuBuffer, GpuError> {
    let (mul, add) = orth.normalization_terms();
    scratch.inverse_norm(ctx, enc, u, mul as f32, add as f32);
    let mut coefficients = [[0.0f32; 4]; 8];
    for (i, c) in coefficients.iter_mut().enumerate() {
        let [a, b, cc] = orth.coefficients(i);
        *c = [a, b, cc, 0.0];
    }
    let steps = orth.steps();
    if steps > 8 && !matches!(orth, Orthogonalizer::NewtonSchulz { .. }) {
        return Err(GpuError::Unsupported(format!(
            "{steps} Polar Express iterations on the GPU (at most 8 coefficient sets)"
        )));
    }
    let params = NsParams {
        n: u.len as u32,
        steps: steps as u32,
        _pad: [0; 2],
        coefficients,
    };
    let out = ctx.zeros(u.len);
    let groups = ctx.groups_1d("ns_diagonal", u.len, 256)?;
    let bufs = [
        (1, &u.buffer),
        (2, &scratch.result.buffer),
        (3, &out.buffer),
    ];
    ctx.dispatch(
        enc,
        shaders::NEWTON_SCHULZ,
        "ns_diagonal",
        bytemuck::bytes_of(&params),
        &bufs,
        groups,
    );
    Ok(out)
}

/// `RngParams` of `rng.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
struct RngParams {
    key: [u32; 2],
    stream: [u32; 2],
    n: u32,
    offset: u32,
    scale: f32,
    _pad: u32,
}

fn rng_params(seed: u64, stream: u64, offset: u32, n: usize, scale: f32) -> RngParams {
    RngParams {
        key: [seed as u32, (seed >> 32) as u32],
        stream: [stream as u32, (stream >> 32) as u32],
        n: n as u32,
        offset,
        scale,
        _pad: 0,
    }
}

/// Words `offset .. offset + n` of Philox stream `stream` under `seed`, on the GPU (the twin of
/// `optiscope_core::rng::Philox::u32_at`). Returns a buffer of `n` u32 (as raw bits).
pub fn rng_u32(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    seed: u64,
    stream: u64,
    offset: u32,
    n: usize,
) -> Result<wgpu::Buffer, GpuError> {
    let out = ctx.zeros(n).buffer;
    let groups = ctx.groups_1d("fill_u32", n, 256)?;
    ctx.dispatch(
        enc,
        shaders::RNG,
        "fill_u32",
        bytemuck::bytes_of(&rng_params(seed, stream, offset, n, 1.0)),
        &[(1, &out)],
        groups,
    );
    Ok(out)
}

/// `scale ×` normals `offset .. offset + n` of stream `stream` (twin of `Philox::normal_at`).
#[allow(clippy::too_many_arguments)]
pub fn rng_normal(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    seed: u64,
    stream: u64,
    offset: u32,
    n: usize,
    scale: f32,
) -> Result<GpuBuffer, GpuError> {
    let out = ctx.zeros(n);
    let groups = ctx.groups_1d("fill_normal", n, 256)?;
    ctx.dispatch(
        enc,
        shaders::RNG,
        "fill_normal",
        bytemuck::bytes_of(&rng_params(seed, stream, offset, n, scale)),
        &[(2, &out.buffer)],
        groups,
    );
    Ok(out)
}

/// This module's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    use crate::layout::uniform_layout;
    vec![
        uniform_layout!(ElemParams in shaders::OPTIM_ELEMENTWISE, "ElemParams" {
            n, flags, lr, momentum, one_minus_dampening, weight_decay, one_minus_beta1, beta2,
            one_minus_beta2, eps, step_size, bc2_sqrt, ckp1, y_step, bias_correction2, w,
        }),
        uniform_layout!(MatmulParams in shaders::MATMUL, "MatmulParams" {
            m, n, k, flags, alpha, beta,
        }),
        uniform_layout!(ReduceParams in shaders::REDUCE, "ReduceParams" {
            n, num_partials, norm_mul, norm_add,
        }),
        uniform_layout!(NsParams in shaders::NEWTON_SCHULZ, "NsParams" { n, steps, coefficients }),
        uniform_layout!(RngParams in shaders::RNG, "RngParams" {
            key as ["key_lo", "key_hi"], stream as ["stream_lo", "stream_hi"], n, offset, scale,
        }),
    ]
}
