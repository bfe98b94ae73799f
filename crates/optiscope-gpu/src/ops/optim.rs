//! The optimizer-update family on the GPU: `OptimOps` for [`GpuDevice`], with the launchers of
//! `shaders/optim.wgsl` (one fused kernel per update rule) and of Newton–Schulz / Polar Express
//! (the dense family's matmul and reductions, plus `shaders/optim_newton_schulz.wgsl` for a
//! diagonal). The CPU twins are `optiscope_core::device::optim`; `tests/optim.rs` compares them.

use bytemuck::{Pod, Zeroable};
use optiscope_core::device::optim::adablock::{AdaBlockScalars, BlockLayout, JACOBI_SWEEPS};
use optiscope_core::device::optim::elementwise::{
    AdamScalars, AmuseAuxScalars, ProxGenScalars, ProxSgdScalars, ScheduleFreeScalars, SgdScalars,
};
use optiscope_core::device::optim::orthogonalize::{OrthoTarget, Orthogonalizer};
use optiscope_core::device::optim::prox::Regularizer;
use optiscope_core::device::{Counter, DeviceError, OptimOps};
use optiscope_core::tensor::Op;

use super::dense::{gemm, MatmulKernel, ReduceScratch};
use crate::context::{GpuBuffer, GpuContext, GpuError};
use crate::device::{backend, GpuDevice};
use crate::shaders;

/// `ElemParams` of `optim.wgsl`.
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
    /// ProxGen's penalty λ (the subgradient baseline).
    pub penalty: f32,
    _pad1: f32,
}

const NESTEROV: u32 = 1;
const MAXIMIZE: u32 = 2;
const FIRST_STEP: u32 = 4;
const DECOUPLED: u32 = 8;
const AMSGRAD: u32 = 16;
const EXPLICIT_X: u32 = 32;
const PROX: u32 = 64;
const SUBGRADIENT: u32 = 128;

/// The flag bits of a prox: bit 6 on, the regularizer in bits 8-9.
fn prox_flags(reg: Option<Regularizer>) -> u32 {
    reg.map_or(0, |r| PROX | ((r as u32) << 8))
}

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

    /// The uniform of a ProxGen step.
    pub fn proxgen(n: usize, s: &ProxGenScalars) -> Self {
        Self {
            flags: prox_flags(s.regularizer) | flag(s.subgradient, SUBGRADIENT),
            lr: s.lr,
            weight_decay: s.weight_decay,
            one_minus_beta1: s.one_minus_beta1,
            beta2: s.beta2,
            one_minus_beta2: s.one_minus_beta2,
            eps: s.eps,
            step_size: s.step_size,
            bc2_sqrt: s.bc2_sqrt,
            w: s.lr_penalty,
            penalty: s.penalty,
            ..Self::new(n)
        }
    }

    /// The uniform of a proximal SGD step.
    pub fn prox_sgd(n: usize, s: &ProxSgdScalars) -> Self {
        Self {
            flags: prox_flags(s.regularizer),
            lr: s.lr,
            momentum: s.momentum,
            weight_decay: s.weight_decay,
            w: s.lr_penalty,
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

/// Records `entry` of `optim.wgsl` over `n` elements. `bufs` are bindings 1.. in order
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
        shaders::OPTIM,
        entry,
        bytemuck::bytes_of(params),
        &bindings,
        groups,
    );
    Ok(())
}

/// `BlockParams` of `optim_adablock.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct BlockParams {
    blocks: u32,
    groups: u32,
    out_units: u32,
    in_units: u32,
    flags: u32,
    sweeps: u32,
    _pad0: [u32; 2],
    lr: f32,
    weight_decay: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    step_size: f32,
    jitter: f32,
    delta: f32,
    clip_lo: f32,
    clip_hi: f32,
    _pad1: [f32; 2],
}

impl BlockParams {
    /// The uniform of an AdaBlock step on a parameter laid out by `layout`.
    pub fn new(layout: &BlockLayout, s: &AdaBlockScalars) -> Self {
        let (clip_lo, clip_hi) = s.clip.unwrap_or((0.0, 0.0));
        Self {
            blocks: layout.blocks() as u32,
            groups: layout.groups as u32,
            out_units: layout.out as u32,
            in_units: layout.inp as u32,
            flags: u32::from(s.clip.is_some()),
            sweeps: JACOBI_SWEEPS as u32,
            lr: s.lr,
            weight_decay: s.weight_decay,
            one_minus_beta1: s.one_minus_beta1,
            beta2: s.beta2,
            one_minus_beta2: s.one_minus_beta2,
            step_size: s.step_size,
            jitter: s.jitter,
            delta: s.delta,
            clip_lo,
            clip_hi,
            ..Self::default()
        }
    }
}

/// Records one AdaBlock step: `adablock_diag` (a thread per coordinate) for `g = 1`, else
/// `adablock_block` (a workgroup per block, on a 2-D grid when there are more blocks than one
/// dimension allows). Bindings: p, g, m, v.
pub fn adablock(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    params: &BlockParams,
    bufs: [&GpuBuffer; 4],
) -> Result<(), GpuError> {
    let bindings: Vec<(u32, &wgpu::Buffer)> = (1..).zip(bufs.iter().map(|b| &b.buffer)).collect();
    let (entry, groups) = if params.groups == 1 {
        let entry = "adablock_diag";
        (entry, ctx.groups_1d(entry, params.blocks as usize, 256)?)
    } else {
        let entry = "adablock_block";
        let allowed = ctx.device.limits().max_compute_workgroups_per_dimension;
        let x = params.blocks.min(allowed);
        let y = params.blocks.div_ceil(x.max(1));
        if y > allowed {
            return Err(GpuError::TooLarge {
                what: entry,
                needed: u64::from(params.blocks),
                allowed,
            });
        }
        (entry, [x, y, 1])
    };
    ctx.dispatch(
        enc,
        shaders::OPTIM_ADABLOCK,
        entry,
        bytemuck::bytes_of(params),
        &bindings,
        groups,
    );
    Ok(())
}

/// `NsParams` of `optim_newton_schulz.wgsl`.
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
    let tiled = MatmulKernel::Auto;
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
        shaders::OPTIM_NEWTON_SCHULZ,
        "ns_diagonal",
        bytemuck::bytes_of(&params),
        &bufs,
        groups,
    );
    Ok(out)
}

impl GpuDevice {
    fn elementwise(&mut self, entry: &'static str, params: ElemParams, bufs: &[(u32, &GpuBuffer)]) {
        if params.n == 0 {
            return;
        }
        let ctx = self.ctx.clone();
        let result = elementwise(&ctx, self.enc(), entry, &params, bufs);
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }

    /// The exact polar factor by SVD has no GPU kernel: read `u` back, factor it on the CPU,
    /// upload the result (native only).
    fn orthogonalize_on_host(
        &mut self,
        u: &GpuBuffer,
        target: OrthoTarget,
        orth: &Orthogonalizer,
    ) -> Result<GpuBuffer, DeviceError> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let host = self.read_blocking(u).map_err(backend)?;
            let out = optiscope_core::device::Cpu.orthogonalize(&host, target, orth)?;
            Ok(self.upload(&out))
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (u, target, orth);
            Err(DeviceError::Backend("the SVD orthogonalizer (SpecGD) needs a blocking read-back, which the browser does not allow".into()))
        }
    }
}

impl OptimOps for GpuDevice {
    fn axpy_normal(&mut self, p: &mut GpuBuffer, at: Counter, decay: f32, scale: f32) {
        if p.len == 0 {
            return;
        }
        // The shader's normal index is 32-bit.
        let result = match u32::try_from(at.offset) {
            Ok(offset) if at.offset + p.len as u64 <= u64::from(u32::MAX) => {
                let ctx = self.ctx.clone();
                super::random::axpy_normal(&ctx, self.enc(), p, at, offset, decay, scale)
            }
            _ => Err(GpuError::Unsupported(format!(
                "MeZO's normals {}..{} are past the shader's 32-bit index",
                at.offset,
                at.offset + p.len as u64
            ))),
        };
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }

    fn adablock(
        &mut self,
        p: &mut GpuBuffer,
        g: &GpuBuffer,
        m: &mut GpuBuffer,
        v: &mut GpuBuffer,
        layout: &BlockLayout,
        s: &AdaBlockScalars,
    ) {
        if p.len == 0 {
            return;
        }
        let params = BlockParams::new(layout, s);
        let ctx = self.ctx.clone();
        let result = adablock(&ctx, self.enc(), &params, [p, g, m, v]);
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }

    fn proxgen(
        &mut self,
        p: &mut GpuBuffer,
        g: &GpuBuffer,
        m: &mut GpuBuffer,
        v: &mut GpuBuffer,
        s: &ProxGenScalars,
    ) {
        let params = ElemParams::proxgen(p.len, s);
        self.elementwise("proxgen_step", params, &[(1, p), (2, g), (3, m), (4, v)]);
    }

    fn prox_sgd(
        &mut self,
        p: &mut GpuBuffer,
        g: &GpuBuffer,
        m: &mut GpuBuffer,
        s: &ProxSgdScalars,
    ) {
        let params = ElemParams::prox_sgd(p.len, s);
        self.elementwise("prox_sgd_step", params, &[(1, p), (2, g), (3, m)]);
    }

    fn sgd(
        &mut self,
        p: &mut GpuBuffer,
        g: &GpuBuffer,
        momentum_buf: &mut GpuBuffer,
        s: &SgdScalars,
    ) {
        // Without momentum the buffer has no elements (one unused word on the GPU) and is not read.
        self.elementwise(
            "sgd_step",
            ElemParams::sgd(p.len, s),
            &[(1, p), (2, g), (3, momentum_buf)],
        );
    }

    fn adam(
        &mut self,
        p: &mut GpuBuffer,
        g: &GpuBuffer,
        m: &mut GpuBuffer,
        v: &mut GpuBuffer,
        v_max: &mut GpuBuffer,
        s: &AdamScalars,
    ) {
        // Without amsgrad v_max has no elements (one unused word on the GPU) and is not read.
        self.elementwise(
            "adam_step",
            ElemParams::adam(p.len, s),
            &[(1, p), (2, g), (3, m), (4, v), (5, v_max)],
        );
    }

    fn sgd_schedulefree(
        &mut self,
        y: &mut GpuBuffer,
        z: &mut GpuBuffer,
        g: &GpuBuffer,
        s: &ScheduleFreeScalars,
    ) {
        self.elementwise(
            "sgd_schedulefree_step",
            ElemParams::schedulefree(y.len, s),
            &[(1, y), (2, g), (3, z)],
        );
    }

    fn adamw_schedulefree(
        &mut self,
        y: &mut GpuBuffer,
        z: &mut GpuBuffer,
        v: &mut GpuBuffer,
        g: &GpuBuffer,
        s: &ScheduleFreeScalars,
    ) {
        self.elementwise(
            "adamw_schedulefree_step",
            ElemParams::schedulefree(y.len, s),
            &[(1, y), (2, g), (3, z), (4, v)],
        );
    }

    fn lerp_towards(&mut self, p: &mut GpuBuffer, z: &GpuBuffer, w: f32) {
        self.elementwise(
            "lerp_towards",
            ElemParams::lr_w(p.len, 0.0, w),
            &[(1, p), (3, z)],
        );
    }

    fn muon_momentum(
        &mut self,
        buf: &mut GpuBuffer,
        g: &GpuBuffer,
        beta: f64,
        nesterov: bool,
    ) -> GpuBuffer {
        let u = self.ctx.zeros(g.len);
        self.elementwise(
            "muon_momentum",
            ElemParams::muon_momentum(g.len, beta, nesterov),
            &[(1, &u), (2, g), (3, buf)],
        );
        u
    }

    fn orthogonalize(
        &mut self,
        u: &GpuBuffer,
        target: OrthoTarget,
        orth: &Orthogonalizer,
    ) -> Result<GpuBuffer, DeviceError> {
        if matches!(orth, Orthogonalizer::Svd { .. }) {
            return self.orthogonalize_on_host(u, target, orth);
        }
        let ctx = self.ctx.clone();
        let scratch = self.scratch.clone();
        match target {
            OrthoTarget::Stack(stack) if stack.batch == 1 => newton_schulz(
                &ctx,
                self.enc(),
                &scratch,
                u,
                (stack.rows, stack.cols),
                orth,
            )
            .map_err(backend),
            OrthoTarget::Stack(stack) => {
                // A stack [b, m, n]: each matrix is copied out, orthogonalized and copied back into
                // its place, all in one command encoder (no read-backs). One Newton–Schulz launch
                // sequence per matrix; stacks are rare enough here that a batched kernel waits for a
                // benchmark that asks for it.
                let matrix_len = stack.matrix_len();
                let bytes = (matrix_len * 4) as u64;
                let out = ctx.zeros(u.len);
                let slice = ctx.zeros(matrix_len);
                for i in 0..stack.batch {
                    let offset = (i * matrix_len * 4) as u64;
                    let enc = self.enc();
                    enc.copy_buffer_to_buffer(&u.buffer, offset, &slice.buffer, 0, bytes);
                    let o =
                        newton_schulz(&ctx, enc, &scratch, &slice, (stack.rows, stack.cols), orth)
                            .map_err(backend)?;
                    enc.copy_buffer_to_buffer(&o.buffer, 0, &out.buffer, offset, bytes);
                }
                Ok(out)
            }
            OrthoTarget::Diagonal => {
                newton_schulz_diagonal(&ctx, self.enc(), &scratch, u, orth).map_err(backend)
            }
        }
    }

    fn decay_sub(&mut self, p: &mut GpuBuffer, o: &GpuBuffer, decay: f32, lr: f32) {
        self.elementwise(
            "decay_sub",
            ElemParams::lr_w(p.len, lr, decay),
            &[(1, p), (2, o)],
        );
    }

    fn amuse_decay_at_y(
        &mut self,
        z: &mut GpuBuffer,
        y: &mut GpuBuffer,
        z_coef: f32,
        y_factor: f32,
    ) {
        self.elementwise(
            "amuse_decay_at_y",
            ElemParams::lr_w(y.len, z_coef, y_factor),
            &[(1, y), (3, z)],
        );
    }

    fn amuse_aux(
        &mut self,
        z: &mut GpuBuffer,
        v: &mut GpuBuffer,
        g: &GpuBuffer,
        s: &AmuseAuxScalars,
    ) {
        self.elementwise(
            "amuse_aux_step",
            ElemParams::amuse_aux(z.len, s),
            &[(1, z), (2, g), (4, v)],
        );
    }

    fn amuse_tail(
        &mut self,
        y: &mut GpuBuffer,
        z: &GpuBuffer,
        x: Option<&mut GpuBuffer>,
        c: f32,
        one_minus_beta: f32,
    ) {
        let params = ElemParams::amuse_tail(y.len, c, one_minus_beta, x.is_some());
        let x = x.map_or_else(|| self.placeholder.clone(), |x| x.clone());
        self.elementwise("amuse_tail", params, &[(1, y), (3, z), (5, &x)]);
    }
}

/// This module's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    use crate::layout::uniform_layout;
    vec![
        uniform_layout!(ElemParams in shaders::OPTIM, "ElemParams" {
            n, flags, lr, momentum, one_minus_dampening, weight_decay, one_minus_beta1, beta2,
            one_minus_beta2, eps, step_size, bc2_sqrt, ckp1, y_step, bias_correction2, w, penalty,
        }),
        uniform_layout!(NsParams in shaders::OPTIM_NEWTON_SCHULZ, "NsParams" { n, steps, coefficients }),
        uniform_layout!(BlockParams in shaders::OPTIM_ADABLOCK, "BlockParams" {
            blocks, groups, out_units, in_units, flags, sweeps, lr, weight_decay, one_minus_beta1,
            beta2, one_minus_beta2, step_size, jitter, delta, clip_lo, clip_hi,
        }),
    ]
}
