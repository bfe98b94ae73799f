//! ProxQuant (Bai, Wang & Liberty, ICLR 2019) and its revision in ProxGen (Yun, Lozano & Yang,
//! NeurIPS 2021): the proximal map of the W-shaped regulariser `R(θ) = dist(θ, grid)`.
//!
//! `prox_{τR}(z)` soft-thresholds the distance to the nearest grid point: a coordinate within τ
//! of its point lands on it, any other moves τ towards it. The original applies the Euclidean
//! threshold `τ = ηλ` after an Adam step; the revision takes the prox in the preconditioner's
//! metric, `τ_i = ηλ / c_i` with `c_i = √v̂_i + ε` (optimizers.md §5.4).
//!
//! Ties: a coordinate exactly between two grid points goes to the upper one, so on the binary grid
//! {−1, +1} `θ = 0` moves to `+τ` (sign(0) = +1, as in optimizers.md; the official code leaves 0).

/// A uniform grid `g_k = α·k + β`, `k ∈ [kmin, kmax]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// Step α.
    pub alpha: f64,
    /// Offset β.
    pub beta: f64,
    /// Lowest index.
    pub kmin: i32,
    /// Highest index.
    pub kmax: i32,
}

impl Grid {
    /// The binary grid {−1, +1} (α = 2, β = 1, k ∈ {−1, 0}).
    pub const BINARY: Self = Self {
        alpha: 2.0,
        beta: 1.0,
        kmin: -1,
        kmax: 0,
    };

    /// The signed b-bit grid with step α.
    pub fn signed(bits: u32, alpha: f64) -> Self {
        let (qn, qp) = super::signed_range(bits, false);
        Self {
            alpha,
            beta: 0.0,
            kmin: -qn,
            kmax: qp,
        }
    }

    /// The grid point nearest to `z` (ties to the upper point).
    pub fn nearest(&self, z: f64) -> f64 {
        let k = ((z - self.beta) / self.alpha + 0.5).floor();
        self.alpha * k.clamp(f64::from(self.kmin), f64::from(self.kmax)) + self.beta
    }
}

/// `prox_{τR}(z)` for `R = dist(·, grid)`.
pub fn prox(z: f64, tau: f64, grid: &Grid) -> f64 {
    let g = grid.nearest(z);
    let d = z - g;
    if d.abs() <= tau {
        g
    } else {
        z - tau * d.signum()
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // tests index parallel arrays of expected values
mod tests {
    use super::*;

    const THETA: [f64; 7] = [-1.6, -1.05, -0.4, -0.02, 0.3, 0.97, 1.2];

    /// Spec A4 vectors: the binary prox with ηλ = 0.1, and the revised (preconditioned) one.
    #[test]
    fn binary_prox_vectors() {
        let want = [-1.5, -1.0, -0.5, -0.12, 0.4, 1.0, 1.1];
        for (z, w) in THETA.iter().zip(want) {
            assert!((prox(*z, 0.1, &Grid::BINARY) - w).abs() < 1e-12, "{z}");
        }
        let c = [0.5, 2.0, 1.0, 1.0, 4.0, 0.25, 1.0];
        let want = [-1.4, -1.0, -0.5, -0.12, 0.325, 1.0, 1.1];
        for i in 0..7 {
            let tau = 0.1 * 1.0 / c[i];
            assert!(
                (prox(THETA[i], tau, &Grid::BINARY) - want[i]).abs() < 1e-12,
                "{i}"
            );
        }
    }

    /// optimizers.md §5.4 vector (τ = 0.4) including the tie at 0 → +τ.
    #[test]
    fn revised_prox_vector_and_tie() {
        let z = [-3.0, -1.2, -0.7, -0.2, 0.0, 0.15, 0.5, 0.9, 1.3, 2.5];
        let want = [-2.6, -1.0, -1.0, -0.6, 0.4, 0.55, 0.9, 1.0, 1.0, 2.1];
        for (a, w) in z.iter().zip(want) {
            assert!((prox(*a, 0.4, &Grid::BINARY) - w).abs() < 1e-12, "{a}");
        }
    }

    /// A grid point is a fixed point of the prox; the prox never moves a coordinate away from its
    /// nearest point nor past it.
    #[test]
    fn fixed_points_and_monotone_pull() {
        let grid = Grid::signed(3, 0.25);
        for k in -4..=3 {
            let g = 0.25 * f64::from(k);
            assert_eq!(prox(g, 0.05, &grid), g);
        }
        for i in 0..500 {
            let z = -1.5 + 0.006 * f64::from(i);
            let g = grid.nearest(z);
            let p = prox(z, 0.03, &grid);
            assert!((p - g).abs() <= (z - g).abs() + 1e-15);
            assert!(
                (p - g) * (z - g) >= 0.0,
                "crossed the grid point at z = {z}"
            );
        }
    }
}
