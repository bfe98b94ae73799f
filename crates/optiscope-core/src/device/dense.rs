//! The dense-algebra family: matrix products, row gathers, column and weighted sums, and the
//! composite layer operations built from them. CPU twins below (`matrixmultiply` through
//! [`crate::tensor::gemm`]); WGSL in `shaders/dense.wgsl` (matmul), `shaders/dense_reduce.wgsl`
//! (norms) and `shaders/dense_rows.wgsl` (row gathers, column sums, products); GPU launches in
//! `optiscope-gpu/src/ops/dense.rs`.

use super::act::{ActOps, Activation};
use super::{Cpu, Storage};
use crate::tensor::{gemm, Op};

/// A row-major `rows × cols` matrix on a device, read as itself or as its transpose.
#[derive(Debug)]
pub struct Mat<'a, B> {
    /// The buffer (`rows · cols` values, row-major).
    pub buf: &'a B,
    /// Stored rows.
    pub rows: usize,
    /// Stored columns.
    pub cols: usize,
    /// Whether a product reads the transpose.
    pub op: Op,
}

impl<B> Clone for Mat<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B> Copy for Mat<'_, B> {}

impl<'a, B> Mat<'a, B> {
    /// `buf` as a row-major `rows × cols` matrix.
    pub fn new(buf: &'a B, rows: usize, cols: usize) -> Self {
        Self {
            buf,
            rows,
            cols,
            op: Op::N,
        }
    }

    /// The same matrix read transposed.
    pub fn t(self) -> Self {
        let op = match self.op {
            Op::N => Op::T,
            Op::T => Op::N,
        };
        Self { op, ..self }
    }

    /// Rows and columns as a product reads them (after the transpose, if any).
    pub fn shape(&self) -> (usize, usize) {
        match self.op {
            Op::N => (self.rows, self.cols),
            Op::T => (self.cols, self.rows),
        }
    }
}

/// The gradients of a linear layer `y = x·wᵀ + b`.
#[derive(Debug, Clone)]
pub struct LinearGrads<B> {
    /// `∂L/∂w = δᵀ·x` (`out × in`).
    pub weight: B,
    /// `∂L/∂b`: the column sums of δ (`out`).
    pub bias: B,
}

/// Dense algebra: primitives every device implements, and layer composites with defaults.
pub trait DenseOps: Storage {
    /// `a·b` (each read through its [`Op`]), a new row-major buffer of `a`'s rows × `b`'s columns.
    fn matmul(&mut self, a: Mat<'_, Self::Buf>, b: Mat<'_, Self::Buf>) -> Self::Buf;
    /// Rows `rows` of `src` (read as stored, like every row-wise primitive), in that order; every
    /// index must be below `src.rows`.
    fn gather_rows(&mut self, src: Mat<'_, Self::Buf>, rows: &[u32]) -> Self::Buf;
    /// The column sums of `m` (one value per column).
    fn col_sums(&mut self, m: Mat<'_, Self::Buf>) -> Self::Buf;
    /// `a ⊙ b`.
    fn mul(&mut self, a: &Self::Buf, b: &Self::Buf) -> Self::Buf;
    /// `gᵀ·d`: `Σ_i g_i · d[i, j]` for each column j of `d` (accumulated in f64 on the CPU).
    fn weighted_col_sums(&mut self, g: &Self::Buf, d: Mat<'_, Self::Buf>) -> Self::Buf;
    /// `Σ x²` of each buffer, one value per buffer in one buffer (accumulated in f64 on the CPU):
    /// NaN or infinite exactly when a buffer holds a NaN or an infinity, or squares past f32's
    /// range. The trainer checks its gradients with one read-back before any state changes.
    fn sums_of_squares(&mut self, bufs: &[&Self::Buf]) -> Self::Buf;

    /// A linear layer `act(x·wᵀ + b)` (x: `n × in`, w: `out × in`, b: `out`). Default: a
    /// [`matmul`](Self::matmul) and a [`bias_act`](ActOps::bias_act).
    fn linear(
        &mut self,
        x: Mat<'_, Self::Buf>,
        w: Mat<'_, Self::Buf>,
        b: &Self::Buf,
        act: Activation,
    ) -> Self::Buf
    where
        Self: ActOps + Sized,
    {
        let (n, out) = (x.shape().0, w.shape().0);
        let mut y = self.matmul(x, w.t());
        self.bias_act(&mut y, b, n, out, act);
        y
    }

    /// The weight and bias gradients of a linear layer from its input `x` (`n × in`) and the
    /// gradient δ at its output (`n × out`). Default: `δᵀ·x` and the column sums of δ.
    fn linear_grads(
        &mut self,
        x: Mat<'_, Self::Buf>,
        delta: Mat<'_, Self::Buf>,
    ) -> LinearGrads<Self::Buf> {
        LinearGrads {
            weight: self.matmul(delta.t(), x),
            bias: self.col_sums(delta),
        }
    }

    /// The gradient at a linear layer's input, `δ·w` (before the previous activation's backward).
    fn linear_input_grad(&mut self, delta: Mat<'_, Self::Buf>, w: Mat<'_, Self::Buf>) -> Self::Buf {
        self.matmul(delta, w)
    }
}

/// Row-wise primitives read a matrix as stored: a transposed view is a caller's mistake, refused
/// here (by every device's implementation) rather than read wrongly.
pub fn as_stored<B>(m: &Mat<'_, B>, what: &str) {
    assert!(
        m.op == Op::N,
        "{what} reads a {}×{} matrix as stored; it got a transposed view",
        m.rows,
        m.cols
    );
}

/// The inner dimension of a product, checked.
fn inner(a: (usize, usize), b: (usize, usize)) -> usize {
    assert_eq!(a.1, b.0, "matmul of {a:?} by {b:?}");
    a.1
}

impl DenseOps for Cpu {
    fn matmul(&mut self, a: Mat<'_, Vec<f32>>, b: Mat<'_, Vec<f32>>) -> Vec<f32> {
        let (m, n) = (a.shape().0, b.shape().1);
        let k = inner(a.shape(), b.shape());
        let mut c = vec![0.0; m * n];
        gemm(m, k, n, 1.0, a.buf, a.op, b.buf, b.op, 0.0, &mut c);
        c
    }

    fn gather_rows(&mut self, src: Mat<'_, Vec<f32>>, rows: &[u32]) -> Vec<f32> {
        as_stored(&src, "gather_rows");
        if let Some(r) = rows.iter().find(|&&r| r as usize >= src.rows) {
            panic!("gather_rows: row {r} of a matrix with {} rows", src.rows);
        }
        let dim = src.cols;
        rows.iter()
            .flat_map(|&r| {
                src.buf[r as usize * dim..(r as usize + 1) * dim]
                    .iter()
                    .copied()
            })
            .collect()
    }

    fn col_sums(&mut self, m: Mat<'_, Vec<f32>>) -> Vec<f32> {
        as_stored(&m, "col_sums");
        let mut out = vec![0.0f32; m.cols];
        if m.cols > 0 {
            for row in m.buf.chunks(m.cols).take(m.rows) {
                out.iter_mut().zip(row).for_each(|(a, b)| *a += b);
            }
        }
        out
    }

    fn mul(&mut self, a: &Vec<f32>, b: &Vec<f32>) -> Vec<f32> {
        a.iter().zip(b).map(|(x, y)| x * y).collect()
    }

    fn weighted_col_sums(&mut self, g: &Vec<f32>, d: Mat<'_, Vec<f32>>) -> Vec<f32> {
        as_stored(&d, "weighted_col_sums");
        let p = d.cols;
        let mut out = vec![0.0f64; p];
        if p > 0 {
            for (gi, row) in g.iter().zip(d.buf.chunks(p)).take(d.rows) {
                for (o, v) in out.iter_mut().zip(row) {
                    *o += f64::from(*gi) * f64::from(*v);
                }
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }

    fn sums_of_squares(&mut self, bufs: &[&Vec<f32>]) -> Vec<f32> {
        bufs.iter()
            .map(|b| b.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() as f32)
            .collect()
    }

    /// Fused on the CPU: the bias is written first and the product accumulated onto it in one
    /// `gemm` (so blocks of the inner dimension add to the bias as they come), then the activation.
    fn linear(
        &mut self,
        x: Mat<'_, Vec<f32>>,
        w: Mat<'_, Vec<f32>>,
        b: &Vec<f32>,
        act: Activation,
    ) -> Vec<f32> {
        let (n, fi) = x.shape();
        let w = w.t();
        let fo = w.shape().1;
        inner(x.shape(), w.shape());
        let mut y = vec![0.0; n * fo];
        if fo > 0 {
            for row in y.chunks_mut(fo) {
                row.copy_from_slice(b);
            }
        }
        gemm(n, fi, fo, 1.0, x.buf, x.op, w.buf, w.op, 1.0, &mut y);
        act.apply(&mut y);
        y
    }
}
