//! The alignment family on the GPU: `AlignOps` for [`GpuDevice`], launching `shaders/align.wgsl`.
//! The CPU twins are `optiscope_core::device::align`; `tests/align.rs` compares them.

use bytemuck::{Pod, Zeroable};
use optiscope_core::device::{AlignOps, PairTerms};

use crate::context::GpuBuffer;
use crate::device::GpuDevice;
use crate::shaders;

/// `AlignParams` of `align.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
struct AlignParams {
    n: u32,
    k: u32,
    d: u32,
    beta: f32,
}

impl AlignOps for GpuDevice {
    fn bandit_log_policy(
        &mut self,
        phi: &GpuBuffer,
        theta: &GpuBuffer,
        n_ctx: usize,
        k: usize,
    ) -> GpuBuffer {
        let out = self.ctx.zeros(n_ctx * k);
        if out.len == 0 || theta.len == 0 {
            return out;
        }
        let p = AlignParams {
            n: n_ctx as u32,
            k: k as u32,
            d: theta.len as u32,
            beta: 0.0,
        };
        // One workgroup of 64 threads per context.
        self.launch(
            shaders::ALIGN,
            "log_policy",
            bytemuck::bytes_of(&p),
            &[(1, &phi.buffer), (2, &theta.buffer), (5, &out.buffer)],
            n_ctx * 64,
            64,
        );
        out
    }

    fn dpo_pair_terms(
        &mut self,
        logp: &GpuBuffer,
        logp_ref: &GpuBuffer,
        rows: &GpuBuffer,
        q: &GpuBuffer,
        c: &GpuBuffer,
        beta: f32,
    ) -> PairTerms<GpuBuffer> {
        let n = q.len;
        let coef = self.ctx.zeros(2 * n);
        let loss = self.ctx.zeros(n);
        if n == 0 {
            return PairTerms { coef, loss };
        }
        // The shader reads q and c from one binding: [q; c].
        let mut labels = self.ctx.zeros(2 * n);
        self.copy_range(&mut labels, 0, q);
        self.copy_range(&mut labels, n, c);
        let p = AlignParams {
            n: n as u32,
            k: 0,
            d: 0,
            beta,
        };
        self.launch(
            shaders::ALIGN,
            "dpo_pairs",
            bytemuck::bytes_of(&p),
            &[
                (1, &logp.buffer),
                (2, &logp_ref.buffer),
                (3, &rows.buffer),
                (4, &labels.buffer),
                (5, &coef.buffer),
                (6, &loss.buffer),
            ],
            n,
            256,
        );
        PairTerms { coef, loss }
    }
}

impl GpuDevice {
    /// Copies all of `src` into `dst` from element `at` on.
    fn copy_range(&mut self, dst: &mut GpuBuffer, at: usize, src: &GpuBuffer) {
        if src.len > 0 {
            self.enc().copy_buffer_to_buffer(
                &src.buffer,
                0,
                &dst.buffer,
                (at * 4) as u64,
                (src.len * 4) as u64,
            );
        }
    }
}

/// This module's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    use crate::layout::uniform_layout;
    vec![uniform_layout!(AlignParams in shaders::ALIGN, "AlignParams" { n, k, d, beta })]
}
