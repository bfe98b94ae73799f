//! [`GpuDevice`]: core's device on wgpu buffers — its `Storage` here, each kernel family in
//! [`crate::ops`] (`ops/<family>.rs` beside `core/src/device/<family>.rs` and
//! `shaders/<family>*.wgsl`) — so every optimizer, model and the trainer run on the GPU unchanged.
//! Kernels are recorded into one command encoder and submitted together; an upload or a read-back
//! submits what is pending first, so work always runs in program order.

use std::sync::Arc;

use optiscope_core::device::{DeviceError, Storage};

use crate::context::{GpuBuffer, GpuContext, GpuError};
use crate::ops::dense::ReduceScratch;
use crate::shaders::Shader;

/// The GPU as a core device (every kernel family).
pub struct GpuDevice {
    pub(crate) ctx: Arc<GpuContext>,
    pending: Option<wgpu::CommandEncoder>,
    pub(crate) scratch: ReduceScratch,
    /// Bound where a kernel declares a buffer it will not touch with the given flags.
    pub(crate) placeholder: GpuBuffer,
    /// The first failure of a recorded kernel (kernels return nothing through the trait; the
    /// executor's caller checks [`GpuDevice::take_error`] after each step, and `Storage::download`
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

    /// Keeps the first failure of a recorded kernel for the next read-back.
    pub(crate) fn record(&mut self, result: Result<(), GpuError>) {
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }

    /// The one launch helper of the device's families: records `entry` of `shader` over `threads`
    /// invocations in workgroups of `group`, with `uniform` at binding 0 and `bufs` after it. A
    /// dispatch past the device's limits is kept in the error, not panicked on.
    pub(crate) fn launch(
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

    /// [`Self::launch`] for a shader that reads a flat index over a 2-D grid of workgroups of 256
    /// (`GpuContext::groups_flat`): any thread count up to 65535² · 256.
    pub(crate) fn launch_flat(
        &mut self,
        shader: Shader,
        entry: &'static str,
        uniform: &[u8],
        bufs: &[(u32, &wgpu::Buffer)],
        threads: usize,
    ) {
        let ctx = self.ctx.clone();
        match ctx.groups_flat(entry, threads, 256) {
            Ok(groups) => ctx.dispatch(self.enc(), shader, entry, uniform, bufs, groups),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }
}

/// A GPU failure as core's [`DeviceError`].
pub(crate) fn backend(e: GpuError) -> DeviceError {
    DeviceError::Backend(e.to_string())
}

impl Storage for GpuDevice {
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

    fn download(&mut self, buf: &GpuBuffer) -> Result<Vec<f32>, DeviceError> {
        // A kernel that could not be recorded surfaces at the next read-back (the model trainer
        // reads its statistics every step), not as silently wrong numbers.
        if let Some(e) = self.error.take() {
            return Err(backend(e));
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.read_blocking(buf).map_err(backend)
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = buf;
            Err(DeviceError::Backend(
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
}
