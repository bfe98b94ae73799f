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
    /// Stored entries.
    pub nnz: usize,
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
            nnz,
        })
    }
}

/// Sparse-dense products.
pub trait SparseOps: Storage {
    /// `a · x` for the CSR `a` (`rows × cols`) and `x` read as stored (`cols × k`): a new
    /// row-major `rows × k` buffer. Each output entry sums its row's entries in stored order.
    fn spmm(&mut self, a: &Csr<Self::Buf>, x: Mat<'_, Self::Buf>) -> Self::Buf;
    /// The sampled dense-dense product on `pattern`'s stored entries (its values are not read):
    /// for the stored entry `e` at `(r, c)`, `out[e] = Σ_t a[r, t] · b[c, t]` (summed over t in
    /// order), with `a` (`rows × k`) and `b` (`cols × k`) read as stored. It is the gradient of a
    /// loss through `pattern · x` with respect to the matrix's entries: `a = ∂L/∂(pattern · x)`,
    /// `b = x`.
    fn sddmm(
        &mut self,
        pattern: &Csr<Self::Buf>,
        a: Mat<'_, Self::Buf>,
        b: Mat<'_, Self::Buf>,
    ) -> Self::Buf;
}

/// The shapes of an SDDMM, checked.
pub fn check_sddmm<B>(pattern: &Csr<B>, a: &Mat<'_, B>, b: &Mat<'_, B>) {
    as_stored(a, "sddmm");
    as_stored(b, "sddmm");
    assert!(
        a.rows == pattern.rows && b.rows == pattern.cols && a.cols == b.cols,
        "sddmm on a {}×{} pattern of {}×{} and {}×{}",
        pattern.rows,
        pattern.cols,
        a.rows,
        a.cols,
        b.rows,
        b.cols
    );
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

    fn sddmm(
        &mut self,
        pattern: &Csr<Vec<f32>>,
        a: Mat<'_, Vec<f32>>,
        b: Mat<'_, Vec<f32>>,
    ) -> Vec<f32> {
        check_sddmm(pattern, &a, &b);
        let k = a.cols;
        let mut out = vec![0.0f32; pattern.nnz];
        for r in 0..pattern.rows {
            let (lo, hi) = (pattern.indptr[r] as usize, pattern.indptr[r + 1] as usize);
            let ar = &a.buf[r * k..(r + 1) * k];
            for (e, o) in out.iter_mut().enumerate().take(hi).skip(lo) {
                let c = pattern.indices[e] as usize;
                let mut s = 0.0f32;
                for (x, y) in ar.iter().zip(&b.buf[c * k..(c + 1) * k]) {
                    s += x * y;
                }
                *o = s;
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

    /// The SDDMM is the gradient of `Σ g ⊙ (A x)` in A's stored entries: `g_r · x_c` each.
    #[test]
    fn sddmm_is_the_entrywise_gradient_of_a_product() {
        let a = Csr::upload(&mut Cpu, 3, 3, &[0, 2, 2, 4], &[0, 2, 1, 2], &[9.0; 4]).unwrap();
        let g = vec![1.0, -1.0, 0.0, 0.0, 2.0, 0.5];
        let x = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let got = Cpu.sddmm(&a, Mat::new(&g, 3, 2), Mat::new(&x, 3, 2));
        // Entries (0,0), (0,2), (2,1), (2,2).
        assert_eq!(got, vec![-1.0, -1.0, 8.0, 13.0]);
    }
}
