//! [`GpuDevice`]: core's `optim::Device` on wgpu buffers, so every optimizer's executor runs on
//! the GPU unchanged. Kernels are recorded into one command encoder and submitted together; an
//! upload or a read-back submits what is pending first, so work always runs in program order.

use std::sync::Arc;

use optiscope_core::optim::elementwise::{
    AdamScalars, AmuseAuxScalars, ScheduleFreeScalars, SgdScalars,
};
use optiscope_core::optim::orthogonalize::{OrthoTarget, Orthogonalizer};
use optiscope_core::optim::{Device, OptimError};

use crate::context::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::{self, ElemParams, ReduceScratch};

/// The GPU as an optimizer [`Device`].
pub struct GpuDevice {
    pub(crate) ctx: Arc<GpuContext>,
    pending: Option<wgpu::CommandEncoder>,
    scratch: ReduceScratch,
    /// Bound where a kernel declares a buffer it will not touch with the given flags.
    pub(crate) placeholder: GpuBuffer,
    /// The first failure of a recorded kernel (kernels return nothing through the trait; the
    /// executor's caller checks [`GpuDevice::take_error`] after each step, and `Device::download`
    /// returns it).
    pub(crate) error: Option<GpuError>,
}

impl GpuDevice {
    /// A device on `ctx`.
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        let scratch = ReduceScratch::new(&ctx);
        let placeholder = ctx.zeros(1);
        Self {
            ctx,
            pending: None,
            scratch,
            placeholder,
            error: None,
        }
    }

    /// The context.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    pub(crate) fn enc(&mut self) -> &mut wgpu::CommandEncoder {
        let ctx = &self.ctx;
        self.pending.get_or_insert_with(|| ctx.encoder())
    }

    /// Submits every recorded kernel.
    pub fn flush(&mut self) {
        if let Some(enc) = self.pending.take() {
            self.ctx.submit(enc);
        }
    }

    /// A buffer holding `data` (pending work is submitted first).
    pub fn upload(&mut self, data: &[f32]) -> GpuBuffer {
        self.flush();
        self.ctx.buffer_from(data)
    }

    /// Overwrites `buf` with `data` after all recorded work.
    pub fn write(&mut self, buf: &GpuBuffer, data: &[f32]) {
        self.flush();
        self.ctx.write(buf, data);
    }

    /// Reads `buf` after all recorded work (asynchronous; see `GpuContext::read`).
    pub async fn read(&mut self, buf: &GpuBuffer) -> Result<Vec<f32>, GpuError> {
        self.flush();
        self.ctx.read(buf).await
    }

    /// [`Self::read`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking(&mut self, buf: &GpuBuffer) -> Result<Vec<f32>, GpuError> {
        self.flush();
        self.ctx.read_blocking(buf)
    }

    /// The first error recorded since the last call, if any.
    pub fn take_error(&mut self) -> Option<GpuError> {
        self.error.take()
    }

    fn elementwise(&mut self, entry: &'static str, params: ElemParams, bufs: &[(u32, &GpuBuffer)]) {
        if params.n == 0 {
            return;
        }
        let ctx = self.ctx.clone();
        let result = kernels::elementwise(&ctx, self.enc(), entry, &params, bufs);
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
    ) -> Result<GpuBuffer, OptimError> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let host = self
                .read_blocking(u)
                .map_err(|e| OptimError::Device(e.to_string()))?;
            let out = optiscope_core::optim::Cpu.orthogonalize(&host, target, orth)?;
            Ok(self.upload(&out))
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (u, target, orth);
            Err(OptimError::Device("the SVD orthogonalizer (SpecGD) needs a blocking read-back, which the browser does not allow".into()))
        }
    }
}

fn device_error(e: GpuError) -> OptimError {
    OptimError::Device(e.to_string())
}

impl Device for GpuDevice {
    type Buf = GpuBuffer;

    fn zeros(&mut self, len: usize) -> GpuBuffer {
        self.ctx.zeros(len)
    }

    fn duplicate(&mut self, src: &GpuBuffer) -> GpuBuffer {
        let dst = self.ctx.zeros(src.len);
        if src.len > 0 {
            self.enc()
                .copy_buffer_to_buffer(&src.buffer, 0, &dst.buffer, 0, (src.len * 4) as u64);
        }
        dst
    }

    fn upload(&mut self, data: &[f32]) -> GpuBuffer {
        GpuDevice::upload(self, data)
    }

    fn download(&mut self, buf: &GpuBuffer) -> Result<Vec<f32>, OptimError> {
        // A kernel that could not be recorded surfaces at the next read-back (the model trainer
        // reads its statistics every step), not as silently wrong numbers.
        if let Some(e) = self.error.take() {
            return Err(device_error(e));
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.read_blocking(buf)
                .map_err(|e| OptimError::Device(e.to_string()))
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = buf;
            Err(OptimError::Device(
                "a blocking read-back is not available on the web; use GpuDevice::read".into(),
            ))
        }
    }

    fn copy_into(&mut self, dst: &mut GpuBuffer, src: &GpuBuffer) {
        if src.len > 0 {
            self.enc()
                .copy_buffer_to_buffer(&src.buffer, 0, &dst.buffer, 0, (src.len * 4) as u64);
        }
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
    ) -> Result<GpuBuffer, OptimError> {
        if matches!(orth, Orthogonalizer::Svd { .. }) {
            return self.orthogonalize_on_host(u, target, orth);
        }
        let ctx = self.ctx.clone();
        let scratch = self.scratch.clone();
        match target {
            OrthoTarget::Stack(stack) if stack.batch == 1 => kernels::newton_schulz(
                &ctx,
                self.enc(),
                &scratch,
                u,
                (stack.rows, stack.cols),
                orth,
            )
            .map_err(device_error),
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
                    let o = kernels::newton_schulz(
                        &ctx,
                        enc,
                        &scratch,
                        &slice,
                        (stack.rows, stack.cols),
                        orth,
                    )
                    .map_err(device_error)?;
                    enc.copy_buffer_to_buffer(&o.buffer, 0, &out.buffer, offset, bytes);
                }
                Ok(out)
            }
            OrthoTarget::Diagonal => {
                kernels::newton_schulz_diagonal(&ctx, self.enc(), &scratch, u, orth)
                    .map_err(device_error)
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
