//! The (preferential) G-optimal design of the hybrid sampler (spec B2 item 2; the hybrid calls it
//! with w = 1/4, plain G-optimal, having no pilot estimate): weights λ over
//! candidate pair differences `z` minimising `max_z w_z zᵀV(λ)⁻¹z` with `V(λ) = Σ_z λ_z w_z z zᵀ`
//! (equivalently D-optimal, Kiefer–Wolfowitz: the optimum's max leverage is d = rank V), by
//! Frank–Wolfe / Fedorov–Wynn: move towards the candidate of largest leverage g with the step
//! `γ = (g/d − 1)/(g − 1)`, stop when `g ≤ d(1 + 1e-3)`. A pseudo-inverse serves designs whose
//! features have a null direction (one-hot arms: differences sum to zero).

use crate::linalg::pinv_psd;

/// A design and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    /// Weight of every candidate (they sum to 1).
    pub lambda: Vec<f64>,
    /// The largest weighted leverage `w_z zᵀV⁺z` at the end.
    pub max_leverage: f64,
    /// `d = rank V`.
    pub rank: usize,
    /// Frank–Wolfe steps taken.
    pub iterations: usize,
}

/// The G-optimal design over the rows of `z` (`[n][d]` row-major) with Fisher weights `w`
/// (None: all 1/4, i.e. plain G-optimal), at most `max_iters` steps.
pub fn g_optimal(z: &[f64], d: usize, w: Option<&[f64]>, max_iters: usize) -> Design {
    let n = z.len() / d;
    let weight = |i: usize| w.map_or(0.25, |w| w[i]);
    let mut lambda = vec![1.0 / n as f64; n];
    let leverages = |lambda: &[f64]| {
        let mut v = vec![0.0; d * d];
        for (i, zi) in z.chunks_exact(d).enumerate() {
            let c = lambda[i] * weight(i);
            for r in 0..d {
                for q in 0..d {
                    v[r * d + q] += c * zi[r] * zi[q];
                }
            }
        }
        let (vinv, rank) = pinv_psd(&v, d).unwrap_or((vec![0.0; d * d], 0));
        let lev: Vec<f64> = z
            .chunks_exact(d)
            .enumerate()
            .map(|(i, zi)| {
                let mut s = 0.0;
                for r in 0..d {
                    for q in 0..d {
                        s += zi[r] * vinv[r * d + q] * zi[q];
                    }
                }
                weight(i) * s
            })
            .collect();
        (lev, rank)
    };
    let mut iterations = 0;
    loop {
        let (lev, rank) = leverages(&lambda);
        let (best, g) =
            lev.iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |m, (i, v)| if v > m.1 { (i, v) } else { m },
                );
        let r = rank.max(1) as f64;
        if g <= r * (1.0 + 1e-3) || iterations >= max_iters {
            return Design {
                lambda,
                max_leverage: g,
                rank,
                iterations,
            };
        }
        let gamma = if g > 1.0 {
            (g / r - 1.0) / (g - 1.0)
        } else {
            0.0
        };
        lambda.iter_mut().for_each(|l| *l *= 1.0 - gamma);
        lambda[best] += gamma;
        iterations += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_vector_and_the_kiefer_wolfowitz_bound() {
        // Z = {(1,0), (0,1), (1,1)} with equal weights: λ = (1/3, 1/3, 1/3), max leverage 2 = d.
        let z = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let design = g_optimal(&z, 2, Some(&[1.0; 3]), 5000);
        for l in &design.lambda {
            assert!((l - 1.0 / 3.0).abs() < 1e-3, "{:?}", design.lambda);
        }
        assert!(design.max_leverage <= 2.0 * (1.0 + 1e-3), "{design:?}");
        assert_eq!(design.rank, 2);
    }

    #[test]
    fn one_hot_differences_have_a_null_direction_and_still_converge() {
        // K = 4 one-hot arms, all 6 unordered differences: rank 3; the bound is d = 3.
        let mut z = vec![];
        for a in 0..4 {
            for b in a + 1..4 {
                let mut v = [0.0; 4];
                v[a] = 1.0;
                v[b] = -1.0;
                z.extend(v);
            }
        }
        let design = g_optimal(&z, 4, None, 10_000);
        assert_eq!(design.rank, 3);
        assert!(design.max_leverage <= 3.0 * (1.0 + 1e-3), "{design:?}");
        assert!((design.lambda.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
