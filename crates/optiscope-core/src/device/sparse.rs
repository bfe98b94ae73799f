//! The sparse family: a CSR matrix times a dense one (the GCN's `Â·X` and, with the stored
//! transpose, `Âᵀ·δ`). CPU twin below; WGSL in `shaders/sparse.wgsl`; GPU launches in
//! `optiscope-gpu/src/ops/sparse.rs`.

use super::dense::{as_stored, Mat};
use super::{Cpu, Storage};

/// A CSR matrix on a device: `indptr` (`rows + 1`) and `indices` (`nnz`) as f32 — exact below
/// 2²⁴, which [`Csr::upload`] checks — and `values` (`nnz`).
#[derive(Debug)]
pub struct Csr<B> {
    /// Row pointers.
    pub indptr: B,
    /// Column of every stored entry.
    pub indices: B,
    /// Value of every stored entry.
    pub values: B,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
}

/// The most rows, columns or stored entries a [`Csr`] may have (f32 indices are exact below).
pub const MAX_CSR: usize = 1 << 24;

impl<B> Csr<B> {
    /// Uploads a host CSR matrix; None when it is past [`MAX_CSR`] or malformed (row pointers
    /// not increasing from 0 to nnz, a column out of range, lengths that disagree).
    pub fn upload<D: Storage<Buf = B>>(
        dev: &mut D,
        rows: usize,
        cols: usize,
        indptr: &[u32],
        indices: &[u32],
        values: &[f32],
    ) -> Option<Self> {
        let nnz = indices.len();
        let ok = rows <= MAX_CSR
            && cols <= MAX_CSR
            && nnz <= MAX_CSR
            && values.len() == nnz
            && indptr.len() == rows + 1
            && indptr.first() == Some(&0)
            && indptr.last().map(|&l| l as usize) == Some(nnz)
            && indptr.windows(2).all(|w| w[0] <= w[1])
            && indices.iter().all(|&c| (c as usize) < cols);
        if !ok {
            return None;
        }
        let f = |v: &[u32]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        Some(Self {
            indptr: dev.upload(&f(indptr)),
            indices: dev.upload(&f(indices)),
            values: dev.upload(values),
            rows,
            cols,
        })
    }
}

/// Sparse-dense products.
pub trait SparseOps: Storage {
    /// `a · x` for the CSR `a` (`rows × cols`) and `x` read as stored (`cols × k`): a new
    /// row-major `rows × k` buffer. Each output entry sums its row's entries in stored order.
    fn spmm(&mut self, a: &Csr<Self::Buf>, x: Mat<'_, Self::Buf>) -> Self::Buf;
}

impl SparseOps for Cpu {
    fn spmm(&mut self, a: &Csr<Vec<f32>>, x: Mat<'_, Vec<f32>>) -> Vec<f32> {
        as_stored(&x, "spmm");
        assert_eq!(
            x.rows, a.cols,
            "spmm: {}×{} · {}×{}",
            a.rows, a.cols, x.rows, x.cols
        );
        let k = x.cols;
        let mut out = vec![0.0f32; a.rows * k];
        for r in 0..a.rows {
            let (lo, hi) = (a.indptr[r] as usize, a.indptr[r + 1] as usize);
            let row = &mut out[r * k..(r + 1) * k];
            for e in lo..hi {
                let (c, v) = (a.indices[e] as usize, a.values[e]);
                for (o, xv) in row.iter_mut().zip(&x.buf[c * k..(c + 1) * k]) {
                    *o += v * xv;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spmm_matches_the_dense_product_and_refuses_bad_csr() {
        // [[1, 0, 2], [0, 0, 0], [0, 3, 0.5]] · x
        let a = Csr::upload(
            &mut Cpu,
            3,
            3,
            &[0, 2, 2, 4],
            &[0, 2, 1, 2],
            &[1.0, 2.0, 3.0, 0.5],
        )
        .unwrap();
        let x = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = Cpu.spmm(&a, Mat::new(&x, 3, 2));
        assert_eq!(y, vec![11.0, 14.0, 0.0, 0.0, 11.5, 15.0]);
        assert!(Csr::upload(&mut Cpu, 3, 3, &[0, 2, 1, 4], &[0, 2, 1, 2], &[1.0; 4]).is_none());
        assert!(Csr::upload(&mut Cpu, 3, 3, &[0, 2, 2, 4], &[0, 3, 1, 2], &[1.0; 4]).is_none());
    }
}
