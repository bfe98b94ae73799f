//! The sparse family on the GPU: `SparseOps` for [`GpuDevice`], launching `shaders/sparse.wgsl`.
//! The CPU twin is `optiscope_core::device::sparse`; `tests/sparse.rs` compares them.

use bytemuck::{Pod, Zeroable};
use optiscope_core::device::{Csr, Mat, SparseOps};

use crate::context::GpuBuffer;
use crate::device::GpuDevice;
use crate::shaders;

/// `SparseParams` of `sparse.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
struct SparseParams {
    rows: u32,
    k: u32,
    _pad0: u32,
    _pad1: u32,
}

impl SparseOps for GpuDevice {
    fn spmm(&mut self, a: &Csr<GpuBuffer>, x: Mat<'_, GpuBuffer>) -> GpuBuffer {
        optiscope_core::device::dense::as_stored(&x, "spmm");
        assert_eq!(
            x.rows, a.cols,
            "spmm: {}×{} · {}×{}",
            a.rows, a.cols, x.rows, x.cols
        );
        let out = self.ctx.zeros(a.rows * x.cols);
        if out.len == 0 {
            return out;
        }
        let p = SparseParams {
            rows: a.rows as u32,
            k: x.cols as u32,
            ..SparseParams::default()
        };
        // An empty matrix has empty index buffers; they are still bound (length-0 buffers are
        // given one element by the context).
        self.launch(
            shaders::SPARSE,
            "spmm",
            bytemuck::bytes_of(&p),
            &[
                (1, &a.indptr.buffer),
                (2, &a.indices.buffer),
                (3, &a.values.buffer),
                (4, &x.buf.buffer),
                (5, &out.buffer),
            ],
            out.len,
            256,
        );
        out
    }

    fn sddmm(
        &mut self,
        pattern: &Csr<GpuBuffer>,
        a: Mat<'_, GpuBuffer>,
        b: Mat<'_, GpuBuffer>,
    ) -> GpuBuffer {
        optiscope_core::device::sparse::check_sddmm(pattern, &a, &b);
        let out = self.ctx.zeros(pattern.nnz);
        if out.len == 0 {
            return out;
        }
        let p = SparseParams {
            rows: pattern.rows as u32,
            k: a.cols as u32,
            ..SparseParams::default()
        };
        self.launch(
            shaders::SPARSE,
            "sddmm",
            bytemuck::bytes_of(&p),
            &[
                (1, &pattern.indptr.buffer),
                (2, &pattern.indices.buffer),
                (4, &b.buf.buffer),
                (5, &out.buffer),
                (6, &a.buf.buffer),
            ],
            pattern.rows,
            256,
        );
        out
    }
}

/// This module's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    use crate::layout::uniform_layout;
    vec![uniform_layout!(SparseParams in shaders::SPARSE, "SparseParams" { rows, k })]
}
