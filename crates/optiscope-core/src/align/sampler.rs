//! Where DPO's pairs come from (spec B1, B2): offline (pairs from π_ref once), on-policy for T
//! rounds (pairs from the current policy, the reference fixed; optionally refit on everything so
//! far), and the two-round hybrid (a preferential G-optimal design over every candidate pair, then
//! on-policy). Labels are Bradley–Terry with the reward `r = β(θ* − θ_ref)ᵀφ`, so that the
//! KL-regularised target is exactly π* = π_{θ*}. Every draw comes from the counter-based
//! generator, addressed by (seed, round, index).

use serde::{Deserialize, Serialize};

use super::bandit::{sigmoid, Bandit};
use super::design::g_optimal;
use super::dpo::{fit_newton, Pairs};
use crate::rng::{stream, Philox, StreamKind};

/// A sampler of preference pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sampler {
    /// All `n_total` pairs from π_ref, labelled once.
    Offline,
    /// `rounds` rounds of `n_total / rounds` pairs from the current policy.
    OnPolicy {
        /// T.
        rounds: usize,
        /// Refit on every pair so far (else on the round's batch, warm-started).
        #[serde(default)]
        cumulative: bool,
    },
    /// `n_total / 2` pairs from the G-optimal design, then `n_total / 2` on-policy; the final fit
    /// on both.
    Hybrid,
}

/// One round's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    /// 1-based round.
    pub round: usize,
    /// Pairs labelled so far.
    pub samples: usize,
    /// `KL(π*‖π̂)` after the round's fit.
    pub kl: f64,
    /// The fitted policy's mean entropy.
    pub entropy: f64,
    /// The fitted θ.
    pub theta: Vec<f64>,
}

/// The data and the fit of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem<'a> {
    /// The bandit.
    pub bandit: &'a Bandit,
    /// θ_ref.
    pub theta_ref: &'a [f64],
    /// θ*.
    pub theta_star: &'a [f64],
    /// β.
    pub beta: f64,
    /// Ridge on `w = β(θ − θ_ref)` of the Newton fit.
    pub ridge: f64,
}

struct Draws {
    rng: Philox,
    round: u32,
    next: u64,
}

impl Draws {
    fn uniform(&mut self) -> f64 {
        let i = self.next;
        self.next += 1;
        f64::from(self.rng.u32_at(stream(StreamKind::Align, self.round), i)) / 4_294_967_296.0
    }
}

impl Problem<'_> {
    fn reward_gap(&self, x: usize, a: usize, b: usize) -> f64 {
        let (fa, fb) = (self.bandit.feature(x, a), self.bandit.feature(x, b));
        (0..self.bandit.d)
            .map(|j| self.beta * (self.theta_star[j] - self.theta_ref[j]) * (fa[j] - fb[j]))
            .sum()
    }

    fn label(&self, draws: &mut Draws, data: &mut Pairs, (x, a, b): (usize, usize, usize)) {
        let won = draws.uniform() < sigmoid(self.reward_gap(x, a, b));
        data.push(self.bandit, x, a, b, won);
    }

    /// `n` pairs `(x, a, b)`, x uniform, `a, b ~ π_θ(·|x)`, labelled.
    fn policy_pairs(&self, draws: &mut Draws, theta: &[f64], n: usize, data: &mut Pairs) {
        let p = self.bandit.policy(theta);
        for _ in 0..n {
            let x =
                ((draws.uniform() * self.bandit.n_ctx as f64) as usize).min(self.bandit.n_ctx - 1);
            let a = self.bandit.draw(&p, x, draws.uniform());
            let b = self.bandit.draw(&p, x, draws.uniform());
            self.label(draws, data, (x, a, b));
        }
    }

    fn fit(&self, data: &Pairs, warm: Option<&[f64]>) -> Vec<f64> {
        let w0: Option<Vec<f64>> = warm.map(|t| {
            t.iter()
                .zip(self.theta_ref)
                .map(|(t, r)| self.beta * (t - r))
                .collect()
        });
        fit_newton(
            data,
            self.beta,
            self.theta_ref,
            w0.as_deref(),
            self.ridge,
            50,
        )
    }

    fn record(&self, round: usize, samples: usize, theta: Vec<f64>) -> Round {
        let target = self.bandit.policy(self.theta_star);
        let p = self.bandit.policy(&theta);
        Round {
            round,
            samples,
            kl: self.bandit.kl(&target, &p),
            entropy: self.bandit.entropy(&p),
            theta,
        }
    }

    /// Runs `sampler` with `n_total` labelled pairs; returns every round's fit.
    pub fn run(&self, sampler: Sampler, n_total: usize, seed: u64) -> Vec<Round> {
        let d = self.bandit.d;
        let draws = |round: u32| Draws {
            rng: Philox::new(seed),
            round,
            next: 0,
        };
        match sampler {
            Sampler::Offline => {
                let mut data = Pairs::new(d);
                self.policy_pairs(&mut draws(0), self.theta_ref, n_total, &mut data);
                vec![self.record(1, n_total, self.fit(&data, None))]
            }
            Sampler::OnPolicy { rounds, cumulative } => {
                let per = n_total / rounds.max(1);
                let (mut theta, mut all, mut out) =
                    (self.theta_ref.to_vec(), Pairs::new(d), vec![]);
                for t in 0..rounds {
                    let mut batch = Pairs::new(d);
                    self.policy_pairs(&mut draws(t as u32), &theta, per, &mut batch);
                    theta = if cumulative {
                        all.z.extend(&batch.z);
                        all.y.extend(&batch.y);
                        self.fit(&all, Some(&theta))
                    } else {
                        self.fit(&batch, Some(&theta))
                    };
                    out.push(self.record(t + 1, per * (t + 1), theta.clone()));
                }
                out
            }
            Sampler::Hybrid => {
                let b = self.bandit;
                let mut cand = vec![];
                let mut z = vec![];
                for x in 0..b.n_ctx {
                    for a in 0..b.k {
                        for c in a + 1..b.k {
                            cand.push((x, a, c));
                            z.extend(
                                b.feature(x, a)
                                    .iter()
                                    .zip(b.feature(x, c))
                                    .map(|(u, v)| u - v),
                            );
                        }
                    }
                }
                let design = g_optimal(&z, d, None, 300);
                let half = n_total / 2;
                let mut data = Pairs::new(d);
                let mut dr = draws(0);
                let cdf: Vec<f64> = design
                    .lambda
                    .iter()
                    .scan(0.0, |acc, l| {
                        *acc += l;
                        Some(*acc)
                    })
                    .collect();
                let total = cdf.last().copied().unwrap_or(1.0);
                for _ in 0..half {
                    let u = dr.uniform() * total;
                    let i = cdf.partition_point(|c| *c <= u).min(cand.len() - 1);
                    self.label(&mut dr, &mut data, cand[i]);
                }
                let theta1 = self.fit(&data, None);
                let first = self.record(1, half, theta1.clone());
                self.policy_pairs(&mut draws(1), &theta1, n_total - half, &mut data);
                let theta2 = self.fit(&data, Some(&theta1));
                vec![first, self.record(2, n_total, theta2)]
            }
        }
    }
}
