//! DPO on the linear-softmax bandit (spec B1). Per labelled pair `(x, y_w ≻ y_l)`:
//! `h = β[(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))]`,
//! `ℓ = −log σ(h)`, `∇_θ ℓ = −β σ(−h)(∇log π_θ(y_w|x) − ∇log π_θ(y_l|x))`. For a linear softmax
//! the normalisers cancel, `h = wᵀz` with `w = β(θ − θ_ref)` and `z = φ(x, y_w) − φ(x, y_l)`:
//! DPO is logistic regression on feature differences, convex, fitted here by Newton/IRLS.

use super::bandit::{log_sigmoid, sigmoid, Bandit};
use crate::linalg::solve_psd;

/// One labelled pair's margin, loss and gradient, from the log-probabilities themselves (not the
/// cancelled form), as the spec defines them.
#[derive(Debug, Clone, PartialEq)]
pub struct PairLoss {
    /// The margin h.
    pub h: f64,
    /// `−log σ(h)`.
    pub loss: f64,
    /// `∇_θ ℓ`.
    pub grad: Vec<f64>,
}

/// [`PairLoss`] of `(x, yw ≻ yl)` at θ against `theta_ref` with temperature β.
pub fn pair_loss(
    bandit: &Bandit,
    theta: &[f64],
    theta_ref: &[f64],
    beta: f64,
    (x, yw, yl): (usize, usize, usize),
) -> PairLoss {
    let k = bandit.k;
    let lp = bandit.log_policy(theta);
    let lr = bandit.log_policy(theta_ref);
    let at = |l: &[f64], a: usize| l[x * k + a];
    let h = beta * ((at(&lp, yw) - at(&lr, yw)) - (at(&lp, yl) - at(&lr, yl)));
    // ∇ log π(a|x) = φ(x, a) − E_{b~π}φ(x, b); the expectations cancel in the difference.
    let p = bandit.policy(theta);
    let mean: Vec<f64> = (0..bandit.d)
        .map(|j| (0..k).map(|b| p[x * k + b] * bandit.feature(x, b)[j]).sum())
        .collect();
    let (fw, fl) = (bandit.feature(x, yw), bandit.feature(x, yl));
    let scale = -beta * sigmoid(-h);
    let grad = (0..bandit.d)
        .map(|j| scale * ((fw[j] - mean[j]) - (fl[j] - mean[j])))
        .collect();
    PairLoss {
        h,
        loss: -log_sigmoid(h),
        grad,
    }
}

/// Labelled pairs as logistic-regression data: rows `z_i = φ(x_i, a_i) − φ(x_i, b_i)`, the
/// probability `q_i` that `a_i` won (1 or 0 for an observed label, anything in [0, 1] for a soft
/// label from a reward model) and a weight `c_i` (1 unless the pairs of several tasks are mixed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pairs {
    /// Feature dimension.
    pub d: usize,
    /// `[n][d]` row-major.
    pub z: Vec<f64>,
    /// `P(a_i ≻ b_i)` as labelled.
    pub q: Vec<f64>,
    /// Weight of every pair in the fit's weighted mean.
    pub c: Vec<f64>,
    /// Per pair the rows `x·K + a` and `x·K + b` of its arms in the bandit's `[n_ctx·K]` tables
    /// (what the device kernels gather).
    pub rows: Vec<[u32; 2]>,
}

impl Pairs {
    /// Empty data of dimension `d`.
    pub fn new(d: usize) -> Self {
        Self {
            d,
            ..Self::default()
        }
    }

    /// Adds the pair `(x, a, b)` with `a_won`.
    pub fn push(&mut self, bandit: &Bandit, x: usize, a: usize, b: usize, a_won: bool) {
        self.push_soft(bandit, (x, a, b), if a_won { 1.0 } else { 0.0 }, 1.0);
    }

    /// Adds the pair `(x, a, b)` with the label `P(a ≻ b) = q` and weight `c`.
    pub fn push_soft(&mut self, bandit: &Bandit, (x, a, b): (usize, usize, usize), q: f64, c: f64) {
        let (fa, fb) = (bandit.feature(x, a), bandit.feature(x, b));
        self.z.extend(fa.iter().zip(fb).map(|(u, v)| u - v));
        self.q.push(q);
        self.c.push(c);
        let row = |arm: usize| (x * bandit.k + arm) as u32;
        self.rows.push([row(a), row(b)]);
    }

    /// Appends every pair of `other` with its weights multiplied by `scale`.
    pub fn extend_scaled(&mut self, other: &Pairs, scale: f64) {
        self.z.extend(&other.z);
        self.q.extend(&other.q);
        self.c.extend(other.c.iter().map(|c| c * scale));
        self.rows.extend(&other.rows);
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// The weighted mean logistic loss `Σ c_i CE(q_i, σ(wᵀz_i)) / Σ c_i + (ridge/2)‖w‖²`, its
    /// gradient and (when `hessian`) its Hessian, row-major.
    pub fn logistic(&self, w: &[f64], ridge: f64, hessian: bool) -> (f64, Vec<f64>, Vec<f64>) {
        let d = self.d;
        let total: f64 = self.c.iter().sum();
        let norm = if total > 0.0 { 1.0 / total } else { 0.0 };
        let mut loss = 0.5 * ridge * w.iter().map(|v| v * v).sum::<f64>();
        let mut g: Vec<f64> = w.iter().map(|v| ridge * v).collect();
        let mut h = vec![0.0; if hessian { d * d } else { 0 }];
        if hessian {
            for i in 0..d {
                h[i * d + i] = ridge;
            }
        }
        for ((z, &q), &c) in self.z.chunks_exact(d).zip(&self.q).zip(&self.c) {
            let m: f64 = z.iter().zip(w).map(|(a, b)| a * b).sum();
            let s = sigmoid(m);
            let c = c * norm;
            loss -= c * (q * log_sigmoid(m) + (1.0 - q) * log_sigmoid(-m));
            for r in 0..d {
                g[r] += c * (s - q) * z[r];
            }
            if hessian {
                let cw = c * s * (1.0 - s);
                for r in 0..d {
                    if z[r] != 0.0 {
                        for k in 0..d {
                            h[r * d + k] += cw * z[r] * z[k];
                        }
                    }
                }
            }
        }
        (loss, g, h)
    }
}

/// Minimises [`Pairs::logistic`] over `w` by Newton/IRLS from `w0` (zeros when None), until a
/// step is below 1e-10 or after `iters` steps. A singular Hessian (one-hot features leave the
/// per-context constant free) takes the pseudo-inverse's least-norm step.
pub fn fit_logistic(data: &Pairs, w0: Option<&[f64]>, ridge: f64, iters: usize) -> Vec<f64> {
    let mut w: Vec<f64> = w0.map_or_else(|| vec![0.0; data.d], <[f64]>::to_vec);
    for _ in 0..iters {
        let (_, g, hess) = data.logistic(&w, ridge, true);
        let Some(step) = solve_psd(&hess, &g, data.d) else {
            break;
        };
        let norm: f64 = step.iter().map(|v| v * v).sum::<f64>().sqrt();
        w.iter_mut().zip(&step).for_each(|(w, s)| *w -= s);
        if norm < 1e-10 {
            break;
        }
    }
    w
}

/// The DPO fit of `data` by Newton/IRLS on `w = β(θ − θ_ref)`: minimises the weighted mean of
/// `CE(q_i, σ(wᵀz_i)) + (ridge/2)‖w‖²` from `w0` ([`fit_logistic`]); returns θ = θ_ref + w/β.
pub fn fit_newton(
    data: &Pairs,
    beta: f64,
    theta_ref: &[f64],
    w0: Option<&[f64]>,
    ridge: f64,
    iters: usize,
) -> Vec<f64> {
    let w = fit_logistic(data, w0, ridge, iters);
    theta_ref
        .iter()
        .zip(&w)
        .map(|(r, w)| r + w / beta)
        .collect()
}

/// The exact population DPO loss and gradient at θ: pairs `(a, b) ~ μ(·|x) μ(·|x)` over uniform
/// contexts, labelled `a ≻ b` with probability `pref(x, a, b)` — `E[−p log σ(h_ab) − (1−p)
/// log σ(−h_ab)]`, `∇_θ = E[β(σ(h_ab) − p) z_ab]`.
pub fn population_loss(
    bandit: &Bandit,
    theta: &[f64],
    theta_ref: &[f64],
    beta: f64,
    mu: &[f64],
    pref: &dyn Fn(usize, usize, usize) -> f64,
) -> (f64, Vec<f64>) {
    let (k, d) = (bandit.k, bandit.d);
    let w: Vec<f64> = theta
        .iter()
        .zip(theta_ref)
        .map(|(t, r)| beta * (t - r))
        .collect();
    let (mut loss, mut grad) = (0.0, vec![0.0; d]);
    for x in 0..bandit.n_ctx {
        for a in 0..k {
            for b in 0..k {
                let weight = mu[x * k + a] * mu[x * k + b] / bandit.n_ctx as f64;
                if a == b || weight == 0.0 {
                    continue;
                }
                let (fa, fb) = (bandit.feature(x, a), bandit.feature(x, b));
                let h: f64 = (0..d).map(|j| w[j] * (fa[j] - fb[j])).sum();
                let p = pref(x, a, b);
                loss -= weight * (p * log_sigmoid(h) + (1.0 - p) * log_sigmoid(-h));
                let c = weight * beta * (sigmoid(h) - p);
                for j in 0..d {
                    grad[j] += c * (fa[j] - fb[j]);
                }
            }
        }
    }
    (loss, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::bandit::FeatureKind;

    fn vector_bandit() -> Bandit {
        // spec B1: one context, K = 4, d = 3.
        let phi = vec![vec![
            vec![1.0, 0.0, 0.5],
            vec![0.0, 1.0, -0.5],
            vec![1.0, 1.0, 0.0],
            vec![-1.0, 0.5, 1.0],
        ]];
        Bandit::new(1, 4, &FeatureKind::Given { features: phi }).unwrap()
    }

    #[test]
    fn the_spec_vector() {
        let b = vector_bandit();
        let l = pair_loss(&b, &[0.2, -0.1, 0.3], &[0.0; 3], 0.5, (0, 2, 3));
        assert!((l.h - 0.025).abs() < 1e-12, "{}", l.h);
        assert!((l.loss - 0.6807253035255248).abs() < 1e-12, "{}", l.loss);
        let want = [
            -0.49375032550048964,
            -0.12343758137512241,
            0.24687516275024482,
        ];
        for (g, w) in l.grad.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{:?}", l.grad);
        }
    }

    #[test]
    fn gradient_matches_finite_differences_and_h_ignores_a_shift_of_a_context() {
        let b = vector_bandit();
        let (theta, reference) = ([0.7, -0.4, 0.2], [0.1, 0.3, -0.2]);
        let l = pair_loss(&b, &theta, &reference, 0.8, (0, 1, 3));
        for j in 0..3 {
            let e = 1e-6;
            let mut tp = theta;
            tp[j] += e;
            let mut tm = theta;
            tm[j] -= e;
            let fd = (pair_loss(&b, &tp, &reference, 0.8, (0, 1, 3)).loss
                - pair_loss(&b, &tm, &reference, 0.8, (0, 1, 3)).loss)
                / (2.0 * e);
            assert!((fd - l.grad[j]).abs() < 1e-8, "{j}: {fd} vs {}", l.grad[j]);
        }
        // Adding a constant vector to every feature row of the context leaves h unchanged.
        let shifted: Vec<Vec<f64>> = (0..4)
            .map(|a| {
                b.feature(0, a)
                    .iter()
                    .zip([3.0, -1.0, 2.0])
                    .map(|(f, c)| f + c)
                    .collect()
            })
            .collect();
        let s = Bandit::new(
            1,
            4,
            &FeatureKind::Given {
                features: vec![shifted],
            },
        )
        .unwrap();
        let ls = pair_loss(&s, &theta, &reference, 0.8, (0, 1, 3));
        assert!((ls.h - l.h).abs() < 1e-12);
    }

    #[test]
    fn the_population_minimiser_is_the_target() {
        // Labels from B0's model with the same β: p_ab = σ(r_a − r_b), r = β(θ* − θ_ref)ᵀφ. Under
        // a full-support sampler the population DPO minimiser is θ* (the gradient vanishes there
        // and the objective is convex); gradient descent on the exact population reaches it to
        // 1e-6.
        let b = Bandit::new(
            6,
            5,
            &FeatureKind::Gaussian {
                d: 3,
                scale: 1.0,
                seed: 4,
            },
        )
        .unwrap();
        let (star, reference, beta) = ([0.8, -0.5, 0.3], [-0.2, 0.1, 0.4], 0.7);
        let r = b.logits(
            &star
                .iter()
                .zip(&reference)
                .map(|(s, r)| beta * (s - r))
                .collect::<Vec<_>>(),
        );
        let pref = |x: usize, a: usize, c: usize| sigmoid(r[x * b.k + a] - r[x * b.k + c]);
        let mu = b.policy(&[0.3, 0.0, -0.6]);
        let (_, g) = population_loss(&b, &star, &reference, beta, &mu, &pref);
        assert!(g.iter().all(|v| v.abs() < 1e-12), "{g:?}");
        // Plain gradient descent from θ_ref reaches it.
        let mut theta = reference.to_vec();
        for _ in 0..20_000 {
            let (_, g) = population_loss(&b, &theta, &reference, beta, &mu, &pref);
            theta.iter_mut().zip(&g).for_each(|(t, g)| *t -= 2.0 * g);
        }
        for (t, s) in theta.iter().zip(star) {
            assert!((t - s).abs() < 1e-6, "{theta:?}");
        }
    }

    #[test]
    fn population_dpo_sharpens_the_target_when_beta_is_below_gamma() {
        // Spec B3 toy: K = 6, one context, tabular logits, θ* = (1, .5, 0, −.5, −1, −1.5), γ = 1,
        // uniform reference, all ordered pairs with exact γ-model preferences. The population DPO
        // minimiser is softmax(θ*·γ/β): its gradient vanishes there (the objective is convex);
        // at β = 0.1 it is (0.9933, 0.0067, 0, …) with H = 0.0407 and KL(π*‖π) = 4.647 (spec).
        let b = Bandit::new(1, 6, &FeatureKind::OneHot).unwrap();
        let star = [1.0, 0.5, 0.0, -0.5, -1.0, -1.5];
        let lp_star = b.log_policy(&star);
        let gamma = 1.0;
        let pref = |_: usize, a: usize, c: usize| sigmoid(gamma * (lp_star[a] - lp_star[c]));
        let uniform = vec![1.0 / 6.0; 6];
        for (beta, h, kl) in [
            (1.0, 1.4952429004191183, 0.0),
            (0.1, 0.04067902397810956, 4.647117366976574),
        ] {
            let theta: Vec<f64> = star.iter().map(|s| s * gamma / beta).collect();
            let (_, g) = population_loss(&b, &theta, &[0.0; 6], beta, &uniform, &pref);
            assert!(g.iter().all(|v| v.abs() < 1e-12), "β={beta}: {g:?}");
            let p = b.policy(&theta);
            assert!(
                (b.entropy(&p) - h).abs() < 1e-9,
                "β={beta}: H {}",
                b.entropy(&p)
            );
            assert!((b.kl(&b.policy(&star), &p) - kl).abs() < 1e-9, "β={beta}");
        }
    }

    #[test]
    fn newton_fits_the_target_from_many_labelled_pairs() {
        // 1.2 M pairs (100 000 per ordered pair) labelled in the exact proportions σ(r_a − r_b):
        // the fit's θ is within 1e-4 of θ* (the population minimiser) after centring.
        let b = Bandit::new(1, 4, &FeatureKind::OneHot).unwrap();
        let star = [1.0, 0.0, -0.5, 0.3];
        let beta = 0.5;
        let mut data = Pairs::new(4);
        let r: Vec<f64> = star.iter().map(|s| beta * s).collect();
        for a in 0..4 {
            for c in 0..4 {
                if a != c {
                    let p = sigmoid(r[a] - r[c]);
                    let wins = (p * 100_000.0).round() as usize;
                    for i in 0..100_000 {
                        data.push(&b, 0, a, c, i < wins);
                    }
                }
            }
        }
        let theta = fit_newton(&data, beta, &[0.0; 4], None, 0.0, 50);
        // One-hot logits are identified up to a constant: compare centred.
        let centre = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            v.iter().map(|x| x - m).collect::<Vec<_>>()
        };
        for (t, s) in centre(&theta).iter().zip(centre(&star)) {
            assert!((t - s).abs() < 1e-4, "{theta:?}");
        }
    }
}
