//! The activation family on the GPU: `ActOps` for [`GpuDevice`], launching `shaders/act.wgsl`.
//! The CPU twins are `optiscope_core::device::act`; `tests/act.rs` compares them.

use bytemuck::{Pod, Zeroable};
use optiscope_core::device::{ActOps, Activation, Mat, XentOut};

use crate::context::GpuBuffer;
use crate::device::GpuDevice;
use crate::shaders;

/// `ActParams` of `act.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
struct ActParams {
    rows: u32,
    cols: u32,
    flags: u32,
    _pad: u32,
}

const RELU: u32 = 1;

impl ActParams {
    fn new(rows: usize, cols: usize) -> Self {
        Self {
            rows: rows as u32,
            cols: cols as u32,
            ..Self::default()
        }
    }
}

impl GpuDevice {
    fn act(
        &mut self,
        entry: &'static str,
        p: ActParams,
        bufs: &[(u32, &wgpu::Buffer)],
        threads: usize,
    ) {
        self.launch(
            shaders::ACT,
            entry,
            bytemuck::bytes_of(&p),
            bufs,
            threads,
            256,
        );
    }
}

impl ActOps for GpuDevice {
    fn softmax_rows(&mut self, logits: Mat<'_, GpuBuffer>) -> GpuBuffer {
        optiscope_core::device::dense::as_stored(&logits, "softmax_rows");
        let (n, c) = (logits.rows, logits.cols);
        let out = self.ctx.zeros(n * c);
        if out.len == 0 {
            return out;
        }
        let bufs = [(1, &logits.buf.buffer), (3, &out.buffer)];
        self.act("softmax_rows", ActParams::new(n, c), &bufs, n);
        out
    }

    fn bias_act(
        &mut self,
        y: &mut GpuBuffer,
        b: &GpuBuffer,
        rows: usize,
        cols: usize,
        act: Activation,
    ) {
        if rows * cols == 0 {
            return;
        }
        let p = ActParams {
            flags: if act == Activation::Relu { RELU } else { 0 },
            ..ActParams::new(rows, cols)
        };
        self.act(
            "bias_act",
            p,
            &[(2, &b.buffer), (3, &y.buffer)],
            rows * cols,
        );
    }

    fn relu_backward(&mut self, dy: &mut GpuBuffer, out: &GpuBuffer) {
        if dy.len == 0 {
            return;
        }
        let bufs = [(2, &out.buffer), (3, &dy.buffer)];
        self.act("relu_mask", ActParams::new(dy.len, 1), &bufs, dy.len);
    }

    fn softmax_xent(
        &mut self,
        logits: Mat<'_, GpuBuffer>,
        labels: &GpuBuffer,
    ) -> XentOut<GpuBuffer> {
        optiscope_core::device::dense::as_stored(&logits, "softmax_xent");
        let (n, c) = (logits.rows, logits.cols);
        let d = self.ctx.zeros(n * c);
        let stats = self.ctx.zeros(2);
        if d.len == 0 {
            return XentOut { d_logits: d, stats };
        }
        let bufs = [
            (1, &logits.buf.buffer),
            (2, &labels.buffer),
            (3, &d.buffer),
            (4, &stats.buffer),
        ];
        // One workgroup: the rows are strided over its 256 threads.
        self.act("softmax_xent", ActParams::new(n, c), &bufs, 1);
        XentOut { d_logits: d, stats }
    }
}

/// This module's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    use crate::layout::uniform_layout;
    vec![uniform_layout!(ActParams in shaders::ACT, "ActParams" { rows, cols, flags })]
}
