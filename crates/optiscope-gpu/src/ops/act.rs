//! The activation family on the GPU: `ActOps` for [`GpuDevice`], launching `shaders/act.wgsl`.
//! The CPU twins are `optiscope_core::device::act`; `tests/act.rs` compares them.

use bytemuck::{Pod, Zeroable};
use optiscope_core::device::{ActOps, Activation, Mat, Storage, XentOut};

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
    fn softmax_backward(&mut self, p: Mat<'_, GpuBuffer>, dp: &GpuBuffer) -> GpuBuffer {
        optiscope_core::device::dense::as_stored(&p, "softmax_backward");
        let (n, c) = (p.rows, p.cols);
        let out = self.ctx.zeros(n * c);
        if out.len == 0 {
            return out;
        }
        let bufs = [(1, &p.buf.buffer), (2, &dp.buffer), (3, &out.buffer)];
        self.act("softmax_backward", ActParams::new(n, c), &bufs, n);
        out
    }

    fn topk_softmax(&mut self, logits: Mat<'_, GpuBuffer>, k: usize) -> GpuBuffer {
        optiscope_core::device::dense::as_stored(&logits, "topk_softmax");
        let (n, c) = (logits.rows, logits.cols);
        assert!(
            (1..=c).contains(&k),
            "topk_softmax: k = {k} with {c} columns"
        );
        let out = self.ctx.zeros(n * c);
        if out.len == 0 {
            return out;
        }
        let p = ActParams {
            flags: k as u32,
            ..ActParams::new(n, c)
        };
        let bufs = [(1, &logits.buf.buffer), (3, &out.buffer)];
        self.act("topk_softmax", p, &bufs, n);
        out
    }

    fn swiglu(&mut self, a: &GpuBuffer, b: &GpuBuffer) -> GpuBuffer {
        assert_eq!(a.len, b.len, "swiglu of unequal lengths");
        let out = self.ctx.zeros(a.len);
        if out.len == 0 {
            return out;
        }
        let bufs = [(1, &a.buffer), (2, &b.buffer), (3, &out.buffer)];
        self.act("swiglu", ActParams::new(a.len, 1), &bufs, a.len);
        out
    }

    fn swiglu_backward(
        &mut self,
        dh: &GpuBuffer,
        a: &GpuBuffer,
        b: &GpuBuffer,
    ) -> (GpuBuffer, GpuBuffer) {
        assert!(
            dh.len == a.len && a.len == b.len,
            "swiglu_backward of unequal lengths"
        );
        // The kernel turns its copy of dh into ∂a in place.
        let da = self.duplicate(dh);
        let db = self.ctx.zeros(a.len);
        if a.len == 0 {
            return (da, db);
        }
        let bufs = [
            (1, &a.buffer),
            (2, &b.buffer),
            (3, &da.buffer),
            (4, &db.buffer),
        ];
        self.act("swiglu_backward", ActParams::new(a.len, 1), &bufs, a.len);
        (da, db)
    }

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
        // A thread per row, then one workgroup adds the rows' losses and hits.
        let per_row = self.ctx.zeros(2 * n);
        let bufs = [
            (1, &logits.buf.buffer),
            (2, &labels.buffer),
            (3, &d.buffer),
            (4, &per_row.buffer),
        ];
        self.act("softmax_xent", ActParams::new(n, c), &bufs, n);
        let bufs = [(1, &per_row.buffer), (4, &stats.buffer)];
        self.act("softmax_xent_sum", ActParams::new(n, c), &bufs, 1);
        XentOut { d_logits: d, stats }
    }
}

/// This module's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    use crate::layout::uniform_layout;
    vec![uniform_layout!(ActParams in shaders::ACT, "ActParams" { rows, cols, flags })]
}
