//! Alignment as distribution learning (spec B3) on the tabular one-context bandit. Preferences
//! follow the γ-model `P(a ≻ b) = σ(γ(log π*(a) − log π*(b)))` and the reference is uniform, so
//! DPO with temperature β is logistic regression of `β(θ_a − θ_b)` on the labels:
//!
//! * **population DPO** (every ordered pair with its exact preference probability): its minimiser
//!   is `softmax(θ*·γ/β)` — π* at β = γ, sharper below, deterministic as β ↓ (the degeneracy);
//! * **PMLE** (= DPO at β = γ) on a finite labelled sample, by full-batch gradient descent: an arm
//!   that never wins is pushed to probability 0, its logit diverging with the steps;
//! * **preference distillation**: a ridge Bradley–Terry reward model `r̂` on the sample, then the
//!   policy fitted to its soft labels `σ(r̂_a − r̂_b)` on every ordered pair (minimiser
//!   `softmax(r̂/γ)`);
//! * **reverse KL**: `KL(π ‖ π̂)` with `π̂ = softmax(r̂/γ)`, minimised on-policy with the exact-sum
//!   gradient `E_{a~π}[(log π(a) − log π̂(a)) ∇log π(a)]`.
//!
//! The last two are different objectives fitted by different algorithms with the same minimiser;
//! both stay bounded where PMLE does not.

use serde::{Deserialize, Serialize};

use super::bandit::{sigmoid, softmax_in_place, Bandit, FeatureKind};
use super::dpo::{fit_logistic, Pairs};
use super::experiment::{Record, RunResult};
use crate::config::ConfigError;
use crate::rng::{stream, Philox, StreamKind};

/// Observed pairs given explicitly: `winners[i] ≻ losers[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenPairs {
    /// The arm that won each pair.
    pub winners: Vec<usize>,
    /// The arm that lost it.
    pub losers: Vec<usize>,
}

/// The B3 experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DegeneracyConfig {
    /// θ* (the target's logits; K = its length).
    pub theta_star: Vec<f64>,
    /// γ of the preference model (> 0).
    pub gamma: f64,
    /// β of every population DPO run (each > 0).
    pub betas: Vec<f64>,
    /// Pairs of the finite sample when drawn (ignored when `pairs` is given).
    pub n_pairs: usize,
    /// The finite sample itself; None draws `n_pairs` ordered pairs uniformly, labels them by the
    /// γ-model and redraws (up to 1000 times) until some arm never wins and every arm appears.
    #[serde(default)]
    pub pairs: Option<GivenPairs>,
    /// The gradient-descent steps at which PMLE is recorded (increasing).
    pub steps: Vec<usize>,
    /// PMLE's learning rate.
    pub lr: f64,
    /// λ of the reward model: it minimises `mean −log σ(r̂_w − r̂_l) + λ/(2n)‖r̂‖²`.
    pub reward_ridge: f64,
    /// Seed of the drawn sample.
    #[serde(default)]
    pub seed: u64,
}

/// The longest PMLE run (steps).
pub const MAX_STEPS: usize = 10_000_000;

impl DegeneracyConfig {
    /// The spec's toy: K = 6, θ* = (1, .5, 0, −.5, −1, −1.5), γ = 1, 12 drawn pairs.
    pub fn spec() -> Self {
        Self {
            theta_star: vec![1.0, 0.5, 0.0, -0.5, -1.0, -1.5],
            gamma: 1.0,
            betas: vec![1.0, 0.5, 0.2, 0.1, 0.05],
            n_pairs: 12,
            pairs: None,
            steps: vec![100, 1000, 10_000, 100_000],
            lr: 0.5,
            reward_ridge: 0.5,
            seed: 0,
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let k = self.theta_star.len();
        if k < 2 || self.theta_star.iter().any(|v| !v.is_finite()) {
            return Err(ConfigError::invalid(
                "theta_star",
                format!("{k} values"),
                "needs at least 2 finite logits",
            ));
        }
        positive("gamma", self.gamma)?;
        positive("lr", self.lr)?;
        if !(self.reward_ridge.is_finite() && self.reward_ridge >= 0.0) {
            return Err(ConfigError::invalid(
                "reward_ridge",
                self.reward_ridge,
                "must be a finite number >= 0",
            ));
        }
        for (i, b) in self.betas.iter().enumerate() {
            positive(&format!("betas[{i}]"), *b)?;
        }
        if self.steps.is_empty()
            || self.steps.windows(2).any(|w| w[0] >= w[1])
            || self.steps[0] == 0
            || self.steps[self.steps.len() - 1] > MAX_STEPS
        {
            return Err(ConfigError::invalid(
                "steps",
                format!("{:?}", self.steps),
                format!("needs increasing step counts in 1..={MAX_STEPS}"),
            ));
        }
        match &self.pairs {
            Some(p) => {
                if p.winners.len() != p.losers.len() || p.winners.is_empty() {
                    return Err(ConfigError::invalid(
                        "pairs",
                        format!("{} winners, {} losers", p.winners.len(), p.losers.len()),
                        "needs as many winners as losers, at least one",
                    ));
                }
                for (i, (w, l)) in p.winners.iter().zip(&p.losers).enumerate() {
                    if *w >= k || *l >= k || w == l {
                        return Err(ConfigError::invalid(
                            format!("pairs[{i}]"),
                            format!("{w} ≻ {l}"),
                            format!("needs two different arms below K = {k}"),
                        ));
                    }
                }
            }
            None => {
                if !(1..=100_000).contains(&self.n_pairs) {
                    return Err(ConfigError::invalid(
                        "n_pairs",
                        self.n_pairs,
                        "must be in 1..=100000",
                    ));
                }
            }
        }
        Ok(())
    }

    fn bandit(&self) -> Bandit {
        Bandit::new(1, self.theta_star.len(), &FeatureKind::OneHot)
            .unwrap_or_else(|_| unreachable!("validate checks K >= 2"))
    }

    /// `P(a ≻ b)` under the γ-model.
    fn preference(&self, lp_star: &[f64], a: usize, b: usize) -> f64 {
        sigmoid(self.gamma * (lp_star[a] - lp_star[b]))
    }

    /// The finite sample: given, or drawn as the doc of `pairs` says.
    pub fn sample(&self) -> Result<GivenPairs, ConfigError> {
        if let Some(p) = &self.pairs {
            return Ok(p.clone());
        }
        let k = self.theta_star.len();
        let lp = self.bandit().log_policy(&self.theta_star);
        let rng = Philox::new(self.seed);
        let s = stream(StreamKind::Align, 1000);
        let mut next = 0u64;
        let mut u = || {
            next += 1;
            f64::from(rng.u32_at(s, next - 1)) / 4_294_967_296.0
        };
        for _ in 0..1000 {
            let (mut winners, mut losers) = (vec![], vec![]);
            for _ in 0..self.n_pairs {
                let i = ((u() * k as f64) as usize).min(k - 1);
                let j = (i + 1 + ((u() * (k - 1) as f64) as usize).min(k - 2)) % k;
                let (w, l) = if u() < self.preference(&lp, i, j) {
                    (i, j)
                } else {
                    (j, i)
                };
                winners.push(w);
                losers.push(l);
            }
            let wins = |a: usize| winners.iter().filter(|&&w| w == a).count();
            let appears = |a: usize| wins(a) + losers.iter().filter(|&&l| l == a).count();
            if (0..k).any(|a| wins(a) == 0) && (0..k).all(|a| appears(a) > 0) {
                return Ok(GivenPairs { winners, losers });
            }
        }
        Err(ConfigError::invalid(
            "n_pairs",
            self.n_pairs,
            "1000 draws gave no sample where some arm never wins and every arm appears",
        ))
    }

    /// Runs: `dpo-population-beta=…` per β, then `pmle`, `distillation`, `reverse-kl`.
    pub fn run(&self, mut each: impl FnMut(&RunResult)) -> Result<Vec<RunResult>, ConfigError> {
        self.validate()?;
        let b = self.bandit();
        let k = b.k;
        let target = b.policy(&self.theta_star);
        let lp_star = b.log_policy(&self.theta_star);
        let metrics = |theta: &[f64]| {
            let p = b.policy(theta);
            [
                ("kl", b.kl(&target, &p)),
                ("entropy", b.entropy(&p)),
                ("logit_range", logit_range(theta)),
            ]
        };
        let mut out = vec![];
        let mut emit = |r: RunResult, out: &mut Vec<RunResult>| {
            each(&r);
            out.push(r);
        };
        // Population DPO: w = β·θ fitted to the exact preferences of every ordered pair.
        let mut population = Pairs::new(k);
        for a in 0..k {
            for c in 0..k {
                if a != c {
                    population.push_soft(&b, (0, a, c), self.preference(&lp_star, a, c), 1.0);
                }
            }
        }
        for &beta in &self.betas {
            let w = fit_logistic(&population, None, 0.0, 100);
            let theta: Vec<f64> = w.iter().map(|w| w / beta).collect();
            let predicted: Vec<f64> = self
                .theta_star
                .iter()
                .map(|t| t * self.gamma / beta)
                .collect();
            let mut values = metrics(&theta).to_vec();
            let kl_predicted = b.kl(&b.policy(&predicted), &b.policy(&theta));
            values.push(("kl_to_predicted", kl_predicted));
            emit(
                RunResult {
                    label: format!("dpo-population-beta={beta}"),
                    n_total: None,
                    records: vec![Record::new(1, &values)],
                    extra: vec![
                        ("beta".into(), beta),
                        ("entropy_target".into(), b.entropy(&target)),
                    ],
                },
                &mut out,
            );
        }
        let sample = self.sample()?;
        let n = sample.winners.len();
        // PMLE (DPO at β = γ): gradient descent on the logits.
        let mut theta = vec![0.0; k];
        let mut records = vec![];
        let mut done = 0;
        for (round, &until) in self.steps.iter().enumerate() {
            for _ in done..until {
                let lp = b.log_policy(&theta);
                let mut g = vec![0.0; k];
                for (&w, &l) in sample.winners.iter().zip(&sample.losers) {
                    let h = self.gamma * (lp[w] - lp[l]);
                    let dh = -sigmoid(-h) * self.gamma / n as f64;
                    g[w] += dh;
                    g[l] -= dh;
                }
                theta
                    .iter_mut()
                    .zip(&g)
                    .for_each(|(t, g)| *t -= self.lr * g);
            }
            done = until;
            let mut values = vec![("steps", until as f64)];
            values.extend(metrics(&theta));
            records.push(Record::new(round + 1, &values));
        }
        let wins_zero = (0..k).filter(|a| !sample.winners.contains(a)).count();
        emit(
            RunResult {
                label: "pmle".into(),
                n_total: Some(n),
                records,
                extra: vec![("never_winning_arms".into(), wins_zero as f64)],
            },
            &mut out,
        );
        // The reward model: ridge BT on the observed pairs.
        let r_hat = self.reward_model(&b, &sample);
        // Preference distillation: soft labels σ(r̂_a − r̂_b) on every ordered pair, w = γθ.
        let mut soft = Pairs::new(k);
        for a in 0..k {
            for c in 0..k {
                if a != c {
                    soft.push_soft(&b, (0, a, c), sigmoid(r_hat[a] - r_hat[c]), 1.0);
                }
            }
        }
        let w = fit_logistic(&soft, None, 0.0, 100);
        let distilled: Vec<f64> = w.iter().map(|w| w / self.gamma).collect();
        emit(
            RunResult {
                label: "distillation".into(),
                n_total: Some(n),
                records: vec![Record::new(1, &metrics(&distilled))],
                extra: vec![],
            },
            &mut out,
        );
        let rkl = reverse_kl(&b, &r_hat, self.gamma);
        emit(
            RunResult {
                label: "reverse-kl".into(),
                n_total: Some(n),
                records: vec![Record::new(1, &metrics(&rkl))],
                extra: vec![],
            },
            &mut out,
        );
        Ok(out)
    }

    /// The ridge Bradley–Terry reward model of the sample (Newton to convergence).
    pub fn reward_model(&self, b: &Bandit, sample: &GivenPairs) -> Vec<f64> {
        let mut data = Pairs::new(b.k);
        for (&w, &l) in sample.winners.iter().zip(&sample.losers) {
            data.push(b, 0, w, l, true);
        }
        let n = sample.winners.len() as f64;
        fit_logistic(&data, None, self.reward_ridge / n, 100)
    }
}

fn positive(field: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            v,
            "must be a finite number > 0",
        ))
    }
}

/// `max θ − min θ`.
pub fn logit_range(theta: &[f64]) -> f64 {
    let max = theta.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = theta.iter().copied().fold(f64::INFINITY, f64::min);
    max - min
}

/// The minimiser of `KL(π_θ ‖ softmax(r̂/γ))` over tabular logits, by gradient descent with the
/// exact-sum on-policy gradient `E_{a~π}[(log π(a) − log π̂(a))(e_a − π)]`, from θ = 0 until the
/// gradient's norm is below 1e-13 (at most 10⁶ steps).
pub fn reverse_kl(b: &Bandit, r_hat: &[f64], gamma: f64) -> Vec<f64> {
    let k = b.k;
    let mut target: Vec<f64> = r_hat.iter().map(|r| r / gamma).collect();
    softmax_in_place(&mut target);
    let log_target: Vec<f64> = target.iter().map(|p| p.ln()).collect();
    let mut theta = vec![0.0; k];
    for _ in 0..1_000_000 {
        let p = b.policy(&theta);
        let lp = b.log_policy(&theta);
        let adv: Vec<f64> = (0..k).map(|a| lp[a] - log_target[a]).collect();
        let mean: f64 = (0..k).map(|a| p[a] * adv[a]).sum();
        let g: Vec<f64> = (0..k).map(|a| p[a] * (adv[a] - mean)).collect();
        let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm < 1e-13 {
            break;
        }
        // The Hessian's largest eigenvalue is at most 1 near the optimum: a unit step is stable.
        theta.iter_mut().zip(&g).for_each(|(t, g)| *t -= g);
    }
    theta
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's 12 pairs (numpy default_rng(3), `align_vectors.py`): arms 4 and 5 never win.
    fn spec_pairs() -> GivenPairs {
        GivenPairs {
            winners: vec![2, 0, 3, 2, 1, 2, 0, 3, 0, 2, 1, 2],
            losers: vec![4, 3, 1, 1, 5, 4, 5, 4, 3, 0, 0, 5],
        }
    }

    #[test]
    fn the_spec_finite_sample_vectors() {
        let cfg = DegeneracyConfig {
            pairs: Some(spec_pairs()),
            betas: vec![],
            ..DegeneracyConfig::spec()
        };
        let runs = cfg.run(|_| {}).unwrap();
        let pmle = &runs[0];
        // Spec: logit range 4.5687, 8.9440, 13.526, 18.129 and KL 0.8498, 2.6146, 4.7385, 6.8957
        // after 10², 10³, 10⁴, 10⁵ steps (the same gradient descent, so to 1e-9).
        let want = [
            (4.568697288267964, 0.8497559187772333),
            (8.944021528747854, 2.614605439357432),
            (13.526229846041282, 4.73850064026873),
            (18.12853947756345, 6.8957215896607575),
        ];
        for (r, (range, kl)) in pmle.records.iter().zip(want) {
            assert!(
                (r.get("logit_range").unwrap() - range).abs() < 1e-9,
                "{r:?}"
            );
            assert!((r.get("kl").unwrap() - kl).abs() < 1e-9, "{r:?}");
        }
        // Spec: distillation KL 0.33197 with its reward model from 5000 gradient steps; ours is
        // the exact ridge minimiser (Newton), so to 1e-4.
        let (d, rk) = (&runs[1], &runs[2]);
        assert!(
            (d.last("kl").unwrap() - 0.33197079876315944).abs() < 1e-4,
            "{d:?}"
        );
        assert!((d.last("logit_range").unwrap() - 2.4688665064844244).abs() < 1e-3);
        // Different objectives, different algorithms, the same minimiser: equal to 1e-6.
        assert!((d.last("kl").unwrap() - rk.last("kl").unwrap()).abs() < 1e-6);
        assert!((d.last("logit_range").unwrap() - rk.last("logit_range").unwrap()).abs() < 1e-6);
    }

    #[test]
    fn population_dpo_is_the_predicted_sharpening_and_degenerates_as_beta_falls() {
        let cfg = DegeneracyConfig {
            betas: vec![2.0, 1.0, 0.5, 0.2, 0.1, 0.05],
            ..DegeneracyConfig::spec()
        };
        let runs = cfg.run(|_| {}).unwrap();
        let h_star = 1.4952429004191183;
        let mut last_kl = -1.0;
        for r in &runs[..6] {
            let beta = r.last("beta").unwrap();
            assert!(r.last("kl_to_predicted").unwrap() < 1e-12, "{r:?}");
            let (h, kl) = (r.last("entropy").unwrap(), r.last("kl").unwrap());
            if beta < 1.0 {
                assert!(h < h_star, "β={beta}: H {h}");
                assert!(kl > last_kl, "β={beta}: KL {kl} after {last_kl}");
            }
            if beta == 1.0 {
                assert!(kl < 1e-12, "β = γ recovers π*: {kl}");
            }
            if beta == 0.1 {
                // Spec: H = 0.0407, KL(π*‖π) = 4.647.
                assert!(
                    (h - 0.04067902397810956).abs() < 1e-9 && (kl - 4.647117366976574).abs() < 1e-9
                );
            }
            last_kl = kl;
        }
    }

    #[test]
    fn drawn_samples_have_a_never_winning_arm_and_bad_configs_are_refused() {
        for seed in 0..20 {
            let cfg = DegeneracyConfig {
                seed,
                ..DegeneracyConfig::spec()
            };
            let s = cfg.sample().unwrap();
            assert_eq!(s.winners.len(), 12);
            assert!((0..6).any(|a| !s.winners.contains(&a)), "seed {seed}");
        }
        let mut c = DegeneracyConfig::spec();
        c.steps = vec![100, 10];
        assert!(c.validate().unwrap_err().to_string().contains("steps"));
        let mut c = DegeneracyConfig::spec();
        c.pairs = Some(GivenPairs {
            winners: vec![1],
            losers: vec![1],
        });
        assert!(c.validate().unwrap_err().to_string().contains("pairs[0]"));
        let mut c = DegeneracyConfig::spec();
        c.gamma = -1.0;
        assert!(c.validate().unwrap_err().to_string().contains("gamma"));
    }
}
