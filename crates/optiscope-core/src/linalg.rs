//! Dense linear algebra through `nalgebra`, in f64: singular values, the polar factor `U Vᵀ`, and
//! orthonormal bases. Inputs and outputs are row-major f32 slices like [`crate::tensor::Tensor`].

use nalgebra::DMatrix;
use thiserror::Error;

/// A decomposition could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SvdError {
    /// The matrix holds NaN or infinite values (nalgebra panics on them, so they are refused
    /// first).
    #[error("the SVD of a {rows}x{cols} matrix cannot be taken: it holds NaN or infinite values")]
    NonFinite {
        /// Rows of the matrix.
        rows: usize,
        /// Columns of the matrix.
        cols: usize,
    },
    /// The iteration did not converge.
    #[error("the SVD of a {rows}x{cols} matrix did not converge")]
    NoConvergence {
        /// Rows of the matrix.
        rows: usize,
        /// Columns of the matrix.
        cols: usize,
    },
}

fn to_dmatrix(x: &[f32], rows: usize, cols: usize) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |r, c| f64::from(x[r * cols + c]))
}

fn svd(
    x: &[f32],
    rows: usize,
    cols: usize,
    vectors: bool,
) -> Result<nalgebra::SVD<f64, nalgebra::Dyn, nalgebra::Dyn>, SvdError> {
    assert_eq!(
        x.len(),
        rows * cols,
        "svd: slice length does not match {rows}x{cols}"
    );
    // f32 values are finite in f64 exactly when they are finite in f32.
    if x.iter().any(|v| !v.is_finite()) {
        return Err(SvdError::NonFinite { rows, cols });
    }
    nalgebra::SVD::try_new(
        to_dmatrix(x, rows, cols),
        vectors,
        vectors,
        f64::EPSILON,
        10_000,
    )
    .ok_or(SvdError::NoConvergence { rows, cols })
}

/// Singular values of a row-major `rows × cols` matrix, largest first.
pub fn singular_values(x: &[f32], rows: usize, cols: usize) -> Result<Vec<f64>, SvdError> {
    Ok(svd(x, rows, cols, false)?
        .singular_values
        .iter()
        .copied()
        .collect())
}

/// The orthogonal polar factor `U Vᵀ` of the reduced SVD, defined on the range only: directions
/// with `σ ≤ rank_tol · σ_max` are dropped, so `polar(0) = 0` (SpecGD, spec §2.1).
pub fn polar_factor(
    x: &[f32],
    rows: usize,
    cols: usize,
    rank_tol: f64,
) -> Result<Vec<f32>, SvdError> {
    let d = svd(x, rows, cols, true)?;
    let (Some(u), Some(v_t)) = (d.u.as_ref(), d.v_t.as_ref()) else {
        return Err(SvdError::NoConvergence { rows, cols });
    };
    let s_max = d.singular_values.iter().copied().fold(0.0, f64::max);
    let mut out = vec![0.0f32; rows * cols];
    if s_max <= 0.0 {
        return Ok(out);
    }
    for (i, &s) in d.singular_values.iter().enumerate() {
        if s <= rank_tol * s_max {
            continue;
        }
        for r in 0..rows {
            let ur = u[(r, i)];
            for c in 0..cols {
                out[r * cols + c] += (ur * v_t[(i, c)]) as f32;
            }
        }
    }
    Ok(out)
}

/// An `n × n` orthogonal matrix (row-major) from the QR decomposition of a given square matrix,
/// with the signs fixed so that `R` has a non-negative diagonal (the Haar-distributed convention
/// when the input is Gaussian).
pub fn orthogonal_from(x: &[f32], n: usize) -> Vec<f32> {
    let qr = to_dmatrix(x, n, n).qr();
    let (q, r) = (qr.q(), qr.r());
    let mut out = vec![0.0f32; n * n];
    for c in 0..n {
        let sign = if r[(c, c)] < 0.0 { -1.0 } else { 1.0 };
        for row in 0..n {
            out[row * n + c] = (sign * q[(row, c)]) as f32;
        }
    }
    out
}

/// The eigendecomposition of the symmetric positive semi-definite row-major `n × n` matrix `a`
/// restricted to its range: `(eigenvalues, eigenvectors as columns of an n × r matrix)` for the r
/// eigenvalues above `1e-12 ·` the largest (the pseudo-inverse's support). None for non-finite
/// input.
fn psd_range(a: &[f64], n: usize) -> Option<(Vec<f64>, DMatrix<f64>)> {
    if a.len() != n * n || a.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let m = DMatrix::from_row_slice(n, n, a);
    let eig = nalgebra::SymmetricEigen::new(m);
    let top = eig.eigenvalues.iter().copied().fold(0.0f64, f64::max);
    let keep: Vec<usize> = (0..n)
        .filter(|&i| eig.eigenvalues[i] > 1e-12 * top && eig.eigenvalues[i] > 0.0)
        .collect();
    let vals = keep.iter().map(|&i| eig.eigenvalues[i]).collect();
    let vecs = DMatrix::from_fn(n, keep.len(), |r, c| eig.eigenvectors[(r, keep[c])]);
    Some((vals, vecs))
}

/// The least-norm solution `A⁺ b` of `A x = b` for a symmetric positive semi-definite `A`
/// (row-major `n × n`): exact for an invertible `A`, the pseudo-inverse's answer for a singular
/// one (a Newton step that leaves a null direction alone). None for non-finite input.
pub fn solve_psd(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let (vals, vecs) = psd_range(a, n)?;
    let mut x = vec![0.0; n];
    for (c, lam) in vals.iter().enumerate() {
        let coef: f64 = (0..n).map(|r| vecs[(r, c)] * b[r]).sum::<f64>() / lam;
        for r in 0..n {
            x[r] += coef * vecs[(r, c)];
        }
    }
    Some(x)
}

/// The largest eigenvalue of `A^{+1/2} S A^{+1/2}` for symmetric positive semi-definite
/// row-major `n × n` matrices `A` and `S` (`A^{+1/2}` on the range of `A`): how much larger `S`
/// is than `A` in the worst direction `A` sees. Infinite when `S` has mass outside `A`'s range
/// (more than 1e-9 of its trace), 0 when both are zero; None for non-finite input.
pub fn max_relative_eigenvalue(a: &[f64], s: &[f64], n: usize) -> Option<f64> {
    let (vals, vecs) = psd_range(a, n)?;
    let r = vals.len();
    let sm = DMatrix::from_row_slice(n, n, s);
    let inside = (vecs.transpose() * &sm * &vecs).trace();
    if sm.trace() - inside > 1e-9 * sm.trace().abs().max(1e-300) {
        return Some(f64::INFINITY);
    }
    if r == 0 {
        return Some(0.0);
    }
    let b = DMatrix::from_fn(n, r, |i, c| vecs[(i, c)] / vals[c].sqrt());
    let m = b.transpose() * sm * &b;
    let m = (&m + m.transpose()) * 0.5;
    let eig = m.symmetric_eigen();
    Some(eig.eigenvalues.iter().copied().fold(0.0, f64::max))
}

/// The pseudo-inverse of a symmetric positive semi-definite row-major `n × n` matrix, with its
/// rank. None for non-finite input.
pub fn pinv_psd(a: &[f64], n: usize) -> Option<(Vec<f64>, usize)> {
    let (vals, vecs) = psd_range(a, n)?;
    let mut out = vec![0.0; n * n];
    for (c, lam) in vals.iter().enumerate() {
        for r in 0..n {
            for q in 0..n {
                out[r * n + q] += vecs[(r, c)] * vecs[(q, c)] / lam;
            }
        }
    }
    Some((out, vals.len()))
}

/// `log det A` of a symmetric positive definite row-major `n × n` matrix by Cholesky; None when
/// it is not positive definite or holds a non-finite value. (The D-optimal expert selection's
/// objective.)
pub fn log_det_pd(a: &[f64], n: usize) -> Option<f64> {
    if a.len() != n * n || a.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let chol = DMatrix::from_row_slice(n, n, a).cholesky()?;
    Some(2.0 * (0..n).map(|i| chol.l_dirty()[(i, i)].ln()).sum::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_det_by_cholesky() {
        // det [[4, 2], [2, 3]] = 8.
        let got = log_det_pd(&[4.0, 2.0, 2.0, 3.0], 2);
        assert!(got.is_some_and(|v| (v - 8f64.ln()).abs() < 1e-14));
        assert_eq!(log_det_pd(&[1.0, 2.0, 2.0, 1.0], 2), None, "indefinite");
        assert_eq!(log_det_pd(&[f64::NAN], 1), None);
        assert_eq!(log_det_pd(&[1.0, 0.0], 2), None, "wrong size");
    }

    #[test]
    fn pseudo_inverse_of_a_singular_psd_matrix() {
        // A = v vᵀ + u uᵀ in R³ (rank 2): A A⁺ A = A, and solve_psd gives the least-norm solution
        // (orthogonal to the null direction u × v).
        let (u, v) = ([1.0, 0.0, 1.0], [0.0, 2.0, -1.0]);
        let mut a = vec![0.0; 9];
        for r in 0..3 {
            for c in 0..3 {
                a[r * 3 + c] = u[r] * u[c] + v[r] * v[c];
            }
        }
        let (p, rank) = pinv_psd(&a, 3).unwrap();
        assert_eq!(rank, 2);
        let mul = |x: &[f64], y: &[f64]| {
            let mut o = vec![0.0; 9];
            for r in 0..3 {
                for c in 0..3 {
                    o[r * 3 + c] = (0..3).map(|k| x[r * 3 + k] * y[k * 3 + c]).sum();
                }
            }
            o
        };
        let back = mul(&mul(&a, &p), &a);
        assert!(back.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-12));
        let b = [1.0, 4.0, -1.0]; // A·(1, 1, 0): in the range
        let x = solve_psd(&a, &b, 3).unwrap();
        let ax: Vec<f64> = (0..3)
            .map(|r| (0..3).map(|c| a[r * 3 + c] * x[c]).sum())
            .collect();
        assert!(
            ax.iter().zip(b).all(|(p, q)| (p - q).abs() < 1e-12),
            "{ax:?}"
        );
        let null = [-2.0, 1.0, 2.0]; // u × v
        assert!(x.iter().zip(null).map(|(p, q)| p * q).sum::<f64>().abs() < 1e-12);
        assert!(solve_psd(&[f64::NAN; 9], &b, 3).is_none());
    }

    #[test]
    fn polar_of_spec_matrix_matches_vector() {
        // spec §1.1: exact polar U Vᵀ of G = [[1,2,3],[-1,0.5,0.25]] (numpy float64).
        let g = [1.0, 2.0, 3.0, -1.0, 0.5, 0.25];
        let want = [
            0.3054499733,
            0.5197460395,
            0.7978498407,
            -0.9222580783,
            0.369975132,
            0.1120644403,
        ];
        let got = polar_factor(&g, 2, 3, 1e-12).unwrap();
        for (a, b) in got.iter().zip(want) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{a} vs {b}");
        }
        let s = singular_values(&g, 2, 3).unwrap();
        assert!((s[0] - 3.747556687).abs() < 1e-6 && (s[1] - 1.126196641).abs() < 1e-6);
    }

    /// nalgebra panics ("Singular value was NaN") on such input; it is an error instead.
    #[test]
    fn non_finite_input_is_an_error_not_a_panic() {
        for bad in [f32::NAN, f32::INFINITY] {
            let err = polar_factor(&[1.0, bad, 0.0, 1.0], 2, 2, 1e-6).unwrap_err();
            assert_eq!(err, SvdError::NonFinite { rows: 2, cols: 2 });
            assert!(err.to_string().contains("NaN or infinite"));
            assert!(singular_values(&[bad; 4], 2, 2).is_err());
        }
    }

    #[test]
    fn polar_of_zero_is_zero_and_of_diagonal_is_sign() {
        assert_eq!(polar_factor(&[0.0; 6], 2, 3, 1e-12).unwrap(), vec![0.0; 6]);
        let p = polar_factor(&[3.0, 0.0, 0.0, -0.5], 2, 2, 1e-12).unwrap();
        let want = [1.0, 0.0, 0.0, -1.0];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn orthogonal_from_gives_orthonormal_columns() {
        let x: Vec<f32> = (0..16).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
        let q = orthogonal_from(&x, 4);
        for a in 0..4 {
            for b in 0..4 {
                let dot: f32 = (0..4).map(|r| q[r * 4 + a] * q[r * 4 + b]).sum();
                assert!((dot - if a == b { 1.0 } else { 0.0 }).abs() < 1e-5);
            }
        }
    }
}
