//! A small dense f32 tensor (shape + row-major data) and the few operations the methods need.
//!
//! Matrix products go through the `matrixmultiply` crate (about 130–160 GFLOP/s on the 2-core test
//! machines); singular value decompositions through `nalgebra` (in f64, see [`crate::linalg`]).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::ConfigError;

/// A shape and the data that fills it do not agree, or the shape is impossibly large.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShapeError {
    /// The data's length is not the shape's element count.
    #[error("shape {shape:?} needs {expected} values, got {got}")]
    Length {
        /// The shape asked for.
        shape: Vec<usize>,
        /// The number of elements the shape implies.
        expected: usize,
        /// The number of values given.
        got: usize,
    },
    /// The product of the dimensions does not fit in `usize`.
    #[error(
        "shape {shape:?}: the product of its dimensions overflows (more than {} elements)",
        usize::MAX
    )]
    Overflow {
        /// The shape asked for.
        shape: Vec<usize>,
    },
}

/// The number of elements of `shape`, or `None` when the product overflows `usize`.
pub fn checked_len(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// A dense, row-major f32 tensor of any rank (rank 0 is a scalar with one element).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor of `shape` filled with `data` (row-major); fails if the lengths disagree.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, ShapeError> {
        let Some(expected) = checked_len(&shape) else {
            return Err(ShapeError::Overflow { shape });
        };
        if expected != data.len() {
            return Err(ShapeError::Length {
                shape,
                expected,
                got: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    /// A tensor from data the caller has sized for `shape` (an internal invariant, checked).
    pub(crate) fn sized(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "internal: data sized for its shape"
        );
        Self { shape, data }
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    /// A 1-D tensor holding `data`.
    pub fn vector(data: Vec<f32>) -> Self {
        Self {
            shape: vec![data.len()],
            data,
        }
    }

    /// A `rows × cols` matrix from row-major `data`.
    pub fn matrix(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self, ShapeError> {
        Self::new(vec![rows, cols], data)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, row-major, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The element vector itself (for executors that take `&Vec<f32>` buffers).
    pub fn data_vec(&self) -> &Vec<f32> {
        &self.data
    }

    /// The element vector, mutable; its length must not change.
    pub(crate) fn data_vec_mut(&mut self) -> &mut Vec<f32> {
        &mut self.data
    }

    /// Consumes the tensor and returns its elements.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// How matrix-aware optimizers see this tensor: a stack of matrices ([`matrix_stack_dims`]);
    /// `None` for rank < 2.
    pub fn matrix_stack_dims(&self) -> Option<MatrixStack> {
        matrix_stack_dims(&self.shape)
    }

    /// Frobenius norm, accumulated in f64.
    pub fn frobenius_norm(&self) -> f64 {
        frobenius_norm(&self.data)
    }

    /// True when every element is finite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|x| x.is_finite())
    }
}

/// A tensor seen as `batch` row-major `rows × cols` matrices stored one after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatrixStack {
    /// Number of matrices.
    pub batch: usize,
    /// Rows of each matrix.
    pub rows: usize,
    /// Columns of each matrix.
    pub cols: usize,
}

impl MatrixStack {
    /// Elements of one matrix.
    pub fn matrix_len(&self) -> usize {
        self.rows * self.cols
    }
}

/// How matrix-aware optimizers (Muon, SpecGD, AMUSE) read a tensor of rank ≥ 2 (optimizers.md §1.1,
/// §1.2, §8):
///
/// - rank 2 `[m, n]`: one `m × n` matrix;
/// - rank 4 `[out, in, kh, kw]` (a conv filter): one matrix `[out, in·kh·kw]`, the flattening of
///   KellerJordan/Muon (#60/#63), whose shape also sets the shape factor;
/// - rank 3 `[b, m, n]` and rank ≥ 5 `[..., m, n]`: a stack of `m × n` matrices over the leading
///   dims (MoE experts, batched heads), each orthogonalized on its own (batched Newton–Schulz, as the
///   reference's `@` broadcasts over leading dims), with the shape factor of `m × n`.
///
/// `None` for rank < 2.
pub fn matrix_stack_dims(shape: &[usize]) -> Option<MatrixStack> {
    // The products overflow only where another dimension is 0 (an empty tensor): no matrix then.
    let (batch, rows, cols) = match shape {
        [] | [_] => return None,
        [m, n] => (1, *m, *n),
        [o, rest @ ..] if shape.len() == 4 => (1, *o, checked_len(rest)?),
        [lead @ .., m, n] => (checked_len(lead)?, *m, *n),
    };
    Some(MatrixStack { batch, rows, cols })
}

/// Frobenius (Euclidean) norm of a slice, accumulated in f64 so long vectors stay accurate.
pub fn frobenius_norm(x: &[f32]) -> f64 {
    x.iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

/// Transpose of a row-major `rows × cols` matrix.
pub fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(
        x.len(),
        rows * cols,
        "transpose: slice length does not match {rows}x{cols}"
    );
    let mut out = vec![0.0; x.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = x[r * cols + c];
        }
    }
    out
}

/// Whether an operand of [`gemm`] is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Use the matrix as stored.
    N,
    /// Use its transpose.
    T,
}

/// `C ← alpha · op(A) · op(B) + beta · C` for row-major matrices, with `op(A)` of size `m × k`,
/// `op(B)` of size `k × n` and `C` of size `m × n`. Runs on `matrixmultiply::sgemm`.
///
/// Panics if a slice is shorter than its dimensions require (a programming error, never input).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    beta: f32,
    c: &mut [f32],
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "gemm: operand too small"
    );
    // Row-major strides of op(A) (m×k) and op(B) (k×n): a transposed operand swaps them.
    let a = match op_a {
        Op::N => Strided::new(a, k, 1),
        Op::T => Strided::new(a, 1, m),
    };
    let b = match op_b {
        Op::N => Strided::new(b, n, 1),
        Op::T => Strided::new(b, 1, k),
    };
    gemm_strided(m, k, n, alpha, a, b, beta, c, n);
}

/// A matrix read through strides: element `(i, j)` is `data[i·row + j·col]` (a head of a fused
/// qkv buffer, a transpose, a column block).
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a> {
    /// The values.
    pub data: &'a [f32],
    /// Step between rows.
    pub row: usize,
    /// Step between columns.
    pub col: usize,
}

impl<'a> Strided<'a> {
    /// `data` read with these strides.
    pub fn new(data: &'a [f32], row: usize, col: usize) -> Self {
        Self { data, row, col }
    }

    /// Whether every element of a `rows × cols` matrix lies inside `data`.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.row + (cols - 1) * self.col < self.data.len()
    }
}

/// `C ← alpha · A · B + beta · C` with `A` (`m × k`) and `B` (`k × n`) read through strides and
/// `C` row-major with row stride `c_row ≥ n` (so no two elements of C share memory). The one
/// call into `matrixmultiply::sgemm`.
///
/// Panics if an operand does not hold its matrix (a programming error, never input).
#[allow(clippy::too_many_arguments)]
pub fn gemm_strided(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Strided<'_>,
    b: Strided<'_>,
    beta: f32,
    c: &mut [f32],
    c_row: usize,
) {
    assert!(
        a.fits(m, k)
            && b.fits(k, n)
            && c_row >= n
            && (m == 0 || n == 0 || (m - 1) * c_row + n <= c.len()),
        "gemm: operand too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // No products: C ← beta·C (0 overwrites, as BLAS does).
        for i in 0..m {
            let row = &mut c[i * c_row..i * c_row + n];
            if beta == 0.0 {
                row.fill(0.0);
            } else {
                row.iter_mut().for_each(|v| *v *= beta);
            }
        }
        return;
    }
    // SAFETY: the assertion above guarantees that every index the strides reach lies inside
    // `a` (m×k through its strides), `b` (k×n) and `c` (m rows of n at stride c_row ≥ n, so no
    // two elements alias), and `c` is borrowed mutably and exclusively.
    #[allow(unsafe_code)]
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.row as isize,
            a.col as isize,
            b.data.as_ptr(),
            b.row as isize,
            b.col as isize,
            beta,
            c.as_mut_ptr(),
            c_row as isize,
            1,
        );
    }
}

/// `op(A) · op(B)` as a new `m × n` row-major matrix.
pub fn matmul(m: usize, k: usize, n: usize, a: &[f32], op_a: Op, b: &[f32], op_b: Op) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    gemm(m, k, n, 1.0, a, op_a, b, op_b, 0.0, &mut c);
    c
}

/// How matrix-aware optimizers (Muon, SpecGD, AMUSE) see a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ParamRole {
    /// Decide from the shape: rank ≥ 2 is a matrix (flattened to `[rows, rest]`), else a vector.
    #[default]
    Auto,
    /// A weight matrix: orthogonalized by the matrix methods.
    Matrix,
    /// A gain, bias or embedding-like tensor: handled by the auxiliary AdamW of matrix methods.
    Vector,
    /// A vector standing for the diagonal matrix `diag(v)`: orthogonalized as that matrix (the 2-D
    /// landscapes use this, spec §4.4, so Muon acts on them as on a 2×2 diagonal weight).
    Diagonal,
}

/// A named parameter tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Unique name (used by `param_groups`, metrics and traces).
    pub name: String,
    /// Current value.
    pub value: Tensor,
    /// How matrix-aware optimizers treat it.
    pub role: ParamRole,
}

impl Param {
    /// A parameter whose role follows from its shape.
    pub fn new(name: impl Into<String>, value: Tensor) -> Self {
        Self {
            name: name.into(),
            value,
            role: ParamRole::Auto,
        }
    }

    /// Checks that the role fits the shape: `Matrix` needs rank ≥ 2.
    pub fn check_role(&self) -> Result<(), ConfigError> {
        if self.role == ParamRole::Matrix && self.value.ndim() < 2 {
            return Err(ConfigError::invalid(
                format!("params.{}.role", self.name),
                "matrix",
                format!(
                    "needs a tensor of rank >= 2, this one has shape {:?} (\"diagonal\" orthogonalizes diag(v); or reshape it to [n, 1])",
                    self.value.shape()
                ),
            ));
        }
        Ok(())
    }

    /// The role with `Auto` resolved from the shape.
    pub fn resolved_role(&self) -> ParamRole {
        match self.role {
            ParamRole::Auto if self.value.ndim() >= 2 => ParamRole::Matrix,
            ParamRole::Auto => ParamRole::Vector,
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn gemm_matches_naive_product_for_every_transpose_combination() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        let want = naive(m, k, n, &a, &b);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        for (aa, oa) in [(&a, Op::N), (&at, Op::T)] {
            for (bb, ob) in [(&b, Op::N), (&bt, Op::T)] {
                let got = matmul(m, k, n, aa, oa, bb, ob);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "{oa:?}{ob:?}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn shape_mismatch_is_an_error_naming_both_counts() {
        let err = Tensor::new(vec![2, 3], vec![0.0; 5]).unwrap_err();
        assert_eq!(err.to_string(), "shape [2, 3] needs 6 values, got 5");
    }

    /// 2³² · 2³² wraps to 0 in release (and panics in debug) with a plain product.
    #[test]
    fn a_shape_whose_product_overflows_is_an_error() {
        let shape = vec![1 << 32, 1 << 32];
        assert_eq!(checked_len(&shape), None);
        let err = Tensor::new(shape, vec![]).unwrap_err();
        assert!(
            matches!(err, ShapeError::Overflow { .. }) && err.to_string().contains("overflows"),
            "{err}"
        );
        assert_eq!(checked_len(&[3, 0, 5]), Some(0));
    }

    #[test]
    fn conv_filters_flatten_and_other_ranks_stack() {
        let dims = |shape: &[usize]| {
            Tensor::zeros(shape)
                .matrix_stack_dims()
                .map(|d| (d.batch, d.rows, d.cols))
        };
        assert_eq!(dims(&[8, 3, 3, 3]), Some((1, 8, 27)));
        assert_eq!(dims(&[5, 3]), Some((1, 5, 3)));
        assert_eq!(dims(&[4, 2, 3]), Some((4, 2, 3)));
        assert_eq!(dims(&[2, 3, 4, 5, 6]), Some((24, 5, 6)));
        assert_eq!(dims(&[4]), None);
        assert_eq!(dims(&[]), None);
    }
}
