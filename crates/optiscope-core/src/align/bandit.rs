//! The linear-softmax contextual bandit (spec B0): contexts `x ∈ 0..n_ctx` (uniform), arms
//! `a ∈ 0..K`, features `φ(x, a) ∈ R^d`, policies `π_θ(a|x) = softmax_a(θᵀφ(x, a))`.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::rng::Philox;

/// How the features are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeatureKind {
    /// Tabular: `φ(x, a)` is the one-hot vector of the pair `(x, a)` (d = n_ctx · K).
    OneHot,
    /// `φ(x, a) ~ N(0, scale² I_d)`, drawn from the counter-based generator with `seed`.
    Gaussian {
        /// Feature dimension.
        d: usize,
        /// Standard deviation of every entry.
        scale: f64,
        /// Seed of the draw.
        seed: u64,
    },
    /// Given: `features[x][a]` is `φ(x, a)` (every row of the same length).
    Given {
        /// `[n_ctx][K][d]`.
        features: Vec<Vec<Vec<f64>>>,
    },
}

/// A contextual bandit with linear-softmax policies.
#[derive(Debug, Clone, PartialEq)]
pub struct Bandit {
    /// Contexts.
    pub n_ctx: usize,
    /// Arms per context.
    pub k: usize,
    /// Feature dimension.
    pub d: usize,
    /// `φ`, row-major `[n_ctx][K][d]`.
    pub phi: Vec<f64>,
}

/// The largest `n_ctx · K · d` a bandit may hold (64 Mi features, 512 MiB of f64).
pub const MAX_FEATURES: usize = 1 << 26;

impl Bandit {
    /// The bandit with `n_ctx` contexts, `k` arms and features of `kind`.
    pub fn new(n_ctx: usize, k: usize, kind: &FeatureKind) -> Result<Self, ConfigError> {
        if n_ctx == 0 {
            return Err(ConfigError::invalid("n_ctx", 0, "must be at least 1"));
        }
        if k < 2 {
            return Err(ConfigError::invalid("k", k, "needs at least 2 arms"));
        }
        let d = match kind {
            // Saturating: a product past usize is refused below with the others.
            FeatureKind::OneHot => n_ctx.saturating_mul(k),
            FeatureKind::Gaussian { d, .. } => *d,
            FeatureKind::Given { features } => {
                features.first().and_then(|c| c.first()).map_or(0, Vec::len)
            }
        };
        if d == 0 {
            return Err(ConfigError::invalid(
                "features",
                "d = 0",
                "need at least one feature",
            ));
        }
        let total = n_ctx
            .checked_mul(k)
            .and_then(|v| v.checked_mul(d))
            .filter(|&t| t <= MAX_FEATURES)
            .ok_or_else(|| {
                ConfigError::invalid(
                    "features",
                    format!("{n_ctx} × {k} × {d}"),
                    format!("at most {MAX_FEATURES} feature values"),
                )
            })?;
        let phi = match kind {
            FeatureKind::OneHot => {
                let mut phi = vec![0.0; total];
                for x in 0..n_ctx {
                    for a in 0..k {
                        phi[(x * k + a) * d + x * k + a] = 1.0;
                    }
                }
                phi
            }
            FeatureKind::Gaussian { scale, seed, .. } => {
                if !(scale.is_finite() && *scale > 0.0) {
                    return Err(ConfigError::invalid(
                        "features.scale",
                        scale,
                        "must be a finite number > 0",
                    ));
                }
                let rng = Philox::new(*seed);
                (0..total as u64)
                    .map(|i| scale * f64::from(rng.normal_at(0, i)))
                    .collect()
            }
            FeatureKind::Given { features } => {
                if features.len() != n_ctx {
                    return Err(ConfigError::invalid(
                        "features.features",
                        format!("{} contexts", features.len()),
                        format!("needs n_ctx = {n_ctx} contexts of {k} arms of {d} features"),
                    ));
                }
                let mut phi = Vec::with_capacity(total);
                for (x, arms) in features.iter().enumerate() {
                    if arms.len() != k {
                        return Err(ConfigError::invalid(
                            format!("features.features[{x}]"),
                            format!("{} arms", arms.len()),
                            format!("needs k = {k} arms"),
                        ));
                    }
                    for (a, row) in arms.iter().enumerate() {
                        if row.len() != d || row.iter().any(|v| !v.is_finite()) {
                            return Err(ConfigError::invalid(
                                format!("features.features[{x}][{a}]"),
                                format!("{} values", row.len()),
                                format!("needs {d} finite numbers (the first row's length)"),
                            ));
                        }
                        phi.extend(row);
                    }
                }
                phi
            }
        };
        Ok(Self { n_ctx, k, d, phi })
    }

    /// `φ(x, a)`.
    pub fn feature(&self, x: usize, a: usize) -> &[f64] {
        let at = (x * self.k + a) * self.d;
        &self.phi[at..at + self.d]
    }

    /// The logits `θᵀφ(x, a)`, `[n_ctx][K]` row-major.
    pub fn logits(&self, theta: &[f64]) -> Vec<f64> {
        self.phi
            .chunks_exact(self.d)
            .map(|f| f.iter().zip(theta).map(|(a, b)| a * b).sum())
            .collect()
    }

    /// The policy `π_θ(·|x)` of every context, `[n_ctx][K]` row-major.
    pub fn policy(&self, theta: &[f64]) -> Vec<f64> {
        let mut p = self.logits(theta);
        for row in p.chunks_exact_mut(self.k) {
            softmax_in_place(row);
        }
        p
    }

    /// `log π_θ(·|x)` of every context (stable: the max is subtracted before the sum).
    pub fn log_policy(&self, theta: &[f64]) -> Vec<f64> {
        let mut l = self.logits(theta);
        for row in l.chunks_exact_mut(self.k) {
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            row.iter_mut().for_each(|v| *v -= lse);
        }
        l
    }

    /// `E_x KL(p(·|x) ‖ q(·|x))` over uniform contexts (0·log 0 = 0).
    pub fn kl(&self, p: &[f64], q: &[f64]) -> f64 {
        let total: f64 = p
            .iter()
            .zip(q)
            .filter(|(pi, _)| **pi > 0.0)
            .map(|(pi, qi)| pi * (pi.ln() - qi.ln()))
            .sum();
        total / self.n_ctx as f64
    }

    /// Mean entropy `E_x H(p(·|x))`.
    pub fn entropy(&self, p: &[f64]) -> f64 {
        let total: f64 = p.iter().filter(|v| **v > 0.0).map(|v| -v * v.ln()).sum();
        total / self.n_ctx as f64
    }

    /// Pointwise coverage of a sampler μ for the target π*: `C_∞ = max_{x,a} π*(a|x)/μ(a|x)`.
    pub fn coverage_inf(&self, target: &[f64], mu: &[f64]) -> f64 {
        target
            .iter()
            .zip(mu)
            .map(|(t, m)| t / m)
            .fold(0.0, f64::max)
    }

    /// Adds `weight · z zᵀ` with `z = φ(x, a) − φ(x, b)` to the row-major `d × d` matrix `info`
    /// (a term of the pair information `I_μ = E[σ'(Δr) z zᵀ]`).
    pub fn add_pair_information(
        &self,
        info: &mut [f64],
        (x, a, b): (usize, usize, usize),
        weight: f64,
    ) {
        let d = self.d;
        let (fa, fb) = (self.feature(x, a), self.feature(x, b));
        for r in 0..d {
            let zr = fa[r] - fb[r];
            if zr != 0.0 {
                for q in 0..d {
                    info[r * d + q] += weight * zr * (fa[q] - fb[q]);
                }
            }
        }
    }

    /// `Σ_{π*} = E_x Cov_{a~π*}(φ(x, a))`, row-major `d × d`.
    pub fn feature_covariance(&self, target: &[f64]) -> Vec<f64> {
        let (k, d) = (self.k, self.d);
        let mut cov = vec![0.0; d * d];
        for x in 0..self.n_ctx {
            let p = &target[x * k..(x + 1) * k];
            let mean: Vec<f64> = (0..d)
                .map(|j| (0..k).map(|a| p[a] * self.feature(x, a)[j]).sum())
                .collect();
            for (a, pa) in p.iter().enumerate() {
                let f = self.feature(x, a);
                for r in 0..d {
                    for q in 0..d {
                        cov[r * d + q] +=
                            pa * (f[r] - mean[r]) * (f[q] - mean[q]) / self.n_ctx as f64;
                    }
                }
            }
        }
        cov
    }

    /// Feature-space coverage (spec B0, our definition):
    /// `C_feat = λ_max(I_μ^{-1/2} Σ_{π*} I_μ^{-1/2})` for the pair information `info` of a
    /// sampler ([`Bandit::add_pair_information`]); a pseudo-inverse on `I_μ`'s range, and
    /// infinite when `Σ_{π*}` has mass where `I_μ` has none.
    pub fn coverage_feat(&self, target: &[f64], info: &[f64]) -> f64 {
        let cov = self.feature_covariance(target);
        crate::linalg::max_relative_eigenvalue(info, &cov, self.d).unwrap_or(f64::NAN)
    }

    /// Draws one arm of context `x` from the policy rows `p` with the uniform `u ∈ [0, 1)`.
    pub fn draw(&self, p: &[f64], x: usize, u: f64) -> usize {
        let row = &p[x * self.k..(x + 1) * self.k];
        let mut acc = 0.0;
        for (a, v) in row.iter().enumerate() {
            acc += v;
            if u < acc {
                return a;
            }
        }
        self.k - 1
    }
}

/// The logistic function.
pub fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

/// `log σ(u)`, stable for large |u|.
pub fn log_sigmoid(u: f64) -> f64 {
    -(-u).max(0.0) - (-(-u).abs()).exp().ln_1p()
}

/// A row softmax in place (the max subtracted first).
pub fn softmax_in_place(row: &mut [f64]) {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_policies_are_the_softmax_of_their_logits_and_metrics_behave() {
        let b = Bandit::new(2, 3, &FeatureKind::OneHot).unwrap();
        assert_eq!(b.d, 6);
        let theta = [1.0, 0.0, -1.0, 0.0, 0.0, 0.0];
        let p = b.policy(&theta);
        let e = [1.0f64.exp(), 1.0, (-1.0f64).exp()];
        let s: f64 = e.iter().sum();
        for a in 0..3 {
            assert!((p[a] - e[a] / s).abs() < 1e-15);
            assert!((p[3 + a] - 1.0 / 3.0).abs() < 1e-15);
        }
        let lp = b.log_policy(&theta);
        assert!(p.iter().zip(&lp).all(|(p, l)| (p.ln() - l).abs() < 1e-14));
        assert!(b.kl(&p, &p).abs() < 1e-15);
        assert!(b.kl(&p, &b.policy(&[0.0; 6])) > 0.0);
        assert!((b.entropy(&b.policy(&[0.0; 6])) - 3.0f64.ln()).abs() < 1e-15);
        assert!((b.coverage_inf(&p, &b.policy(&[0.0; 6])) - 3.0 * e[0] / s).abs() < 1e-12);
    }

    #[test]
    fn bad_shapes_are_refused_naming_the_field() {
        let given = FeatureKind::Given {
            features: vec![vec![vec![1.0, 0.0], vec![0.0]]],
        };
        let err = Bandit::new(1, 2, &given).unwrap_err().to_string();
        assert!(err.contains("features.features[0][1]"), "{err}");
        let err = Bandit::new(1, 1, &FeatureKind::OneHot)
            .unwrap_err()
            .to_string();
        assert!(err.contains("k = 1"), "{err}");
        assert!(log_sigmoid(-800.0).is_finite() && (log_sigmoid(800.0)).abs() < 1e-300);
    }
}
