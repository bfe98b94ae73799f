//! Where DPO's pairs come from (spec B1, B2): offline (pairs from π_ref once), on-policy for T
//! rounds (pairs from the current policy, the reference fixed; optionally refit on everything so
//! far), and the two-round hybrid (a G-optimal design over every candidate pair — plain, w = 1/4:
//! there is no pilot estimate for the preferential weights — then
//! on-policy). Labels are Bradley–Terry with the reward `r = β(θ* − θ_ref)ᵀφ`, so that the
//! KL-regularised target is exactly π* = π_{θ*}. Every draw comes from the counter-based
//! generator, addressed by (seed, round, index).

use serde::{Deserialize, Serialize};

use super::bandit::{sigmoid, Bandit};
use super::design::g_optimal;
use super::dpo::{fit_logistic, fit_newton, Pairs};
use super::first_order::{fit_first_order, AlignError, DeviceBandit, FirstOrderFit};
use crate::device::Device;
use crate::linalg::solve_psd;
use crate::rng::{stream, Philox, StreamKind};

/// A candidate pair of the hybrid's design: a context and two arms `(x, a, b)`.
pub type Candidate = (usize, usize, usize);

/// How the preference labels are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Labels {
    /// Bradley–Terry with the reward `r = β(θ* − θ_ref)ᵀφ`, whose KL-regularised optimum is π*
    /// exactly (DPO's population minimiser is θ*).
    #[default]
    BradleyTerry,
    /// The γ-model of spec B3: `P(a ≻ b) = σ(γ(log π*(a|x) − log π*(b|x)))`. DPO's population
    /// minimiser is then `θ_ref + γθ*/β` — sharper than π* for β < γ with a flat reference.
    Gamma {
        /// γ (> 0).
        gamma: f64,
    },
}

/// What a round's fit minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// DPO's loss on the round's pairs (or on every pair so far, `cumulative`).
    #[default]
    Dpo,
    /// On-policy reward distillation (spec B2 item 3, our reconstruction): a Bradley–Terry reward
    /// model `r̂ = w_rᵀφ` fitted (ridge) on every pair labelled so far, then the policy that
    /// minimises `mean (β(log π_θ/π_ref)(a) − β(log π_θ/π_ref)(b) − (r̂(a) − r̂(b)))²` over the
    /// round's pairs — least squares on `w = β(θ − θ_ref)` against `w_r` on the round's `z`, with
    /// the config's ridge on `w` (a small pull towards π_ref in directions the round's pairs do
    /// not see).
    RewardDistillation,
}

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
    /// `‖θ − θ*‖`.
    pub theta_err: f64,
    /// Pointwise coverage `C_∞` of the round's sampling distribution.
    pub c_inf: f64,
    /// Feature-space coverage `C_feat` of the round's sampling distribution (spec B0).
    pub c_feat: f64,
}

/// Where a round's pairs came from, for its coverage.
enum Source<'a> {
    Policy(&'a [f64]),
    Design(&'a [Candidate], &'a [f64]),
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
    /// How the labels are drawn.
    pub labels: Labels,
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
    /// The weights `u` of the labels' reward: `P(a ≻ b) = σ(uᵀ(φ(x, a) − φ(x, b)))`.
    pub fn label_weights(&self) -> Vec<f64> {
        match self.labels {
            Labels::BradleyTerry => self
                .theta_star
                .iter()
                .zip(self.theta_ref)
                .map(|(s, r)| self.beta * (s - r))
                .collect(),
            Labels::Gamma { gamma } => self.theta_star.iter().map(|s| gamma * s).collect(),
        }
    }

    fn reward_gap(&self, x: usize, a: usize, b: usize) -> f64 {
        let (fa, fb) = (self.bandit.feature(x, a), self.bandit.feature(x, b));
        let (star, reference) = (self.theta_star, self.theta_ref);
        (0..self.bandit.d)
            .map(|j| {
                let u = match self.labels {
                    Labels::BradleyTerry => self.beta * (star[j] - reference[j]),
                    Labels::Gamma { gamma } => gamma * star[j],
                };
                u * (fa[j] - fb[j])
            })
            .sum()
    }

    fn label(&self, draws: &mut Draws, data: &mut Pairs, (x, a, b): (usize, usize, usize)) {
        let won = draws.uniform() < sigmoid(self.reward_gap(x, a, b));
        data.push(self.bandit, x, a, b, won);
    }

    /// `n` pairs `(x, a, b)`, x uniform, `a, b ~ p(·|x)`, labelled.
    fn policy_pairs(&self, draws: &mut Draws, p: &[f64], n: usize, data: &mut Pairs) {
        for _ in 0..n {
            let x =
                ((draws.uniform() * self.bandit.n_ctx as f64) as usize).min(self.bandit.n_ctx - 1);
            let a = self.bandit.draw(p, x, draws.uniform());
            let b = self.bandit.draw(p, x, draws.uniform());
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

    /// The round's fit: DPO on `batch` (or on `all`), or reward distillation (reward model on
    /// `all`, least squares on `batch`).
    fn fit_round(
        &self,
        solver: &mut dyn Solver,
        objective: Objective,
        (batch, all): (&Pairs, &Pairs),
        cumulative: bool,
        warm: Option<&[f64]>,
    ) -> Result<Vec<f64>, AlignError> {
        match objective {
            Objective::Dpo => solver.dpo(self, if cumulative { all } else { batch }, warm),
            Objective::RewardDistillation => {
                let d = self.bandit.d;
                let wr = fit_logistic(all, None, self.ridge, 50);
                let n = batch.len().max(1) as f64;
                let mut gram = vec![0.0; d * d];
                for i in 0..d {
                    gram[i * d + i] = self.ridge;
                }
                let mut rhs = vec![0.0; d];
                for z in batch.z.chunks_exact(d) {
                    let t: f64 = z.iter().zip(&wr).map(|(a, b)| a * b).sum();
                    for r in 0..d {
                        rhs[r] += z[r] * t / n;
                        for q in 0..d {
                            gram[r * d + q] += z[r] * z[q] / n;
                        }
                    }
                }
                let w = solve_psd(&gram, &rhs, d).unwrap_or(wr);
                Ok(self
                    .theta_ref
                    .iter()
                    .zip(&w)
                    .map(|(r, w)| r + w / self.beta)
                    .collect())
            }
        }
    }

    /// `C_∞` and `C_feat` of a round's sampling distribution.
    fn coverage(&self, source: &Source) -> (f64, f64) {
        let b = self.bandit;
        let target = b.policy(self.theta_star);
        let r: Vec<f64> = b.logits(&self.label_weights());
        let mut info = vec![0.0; b.d * b.d];
        let mut add = |(x, a, c): (usize, usize, usize), weight: f64| {
            let s = sigmoid(r[x * b.k + a] - r[x * b.k + c]);
            b.add_pair_information(&mut info, (x, a, c), weight * s * (1.0 - s));
        };
        let marginal = match source {
            Source::Policy(p) => {
                for x in 0..b.n_ctx {
                    for a in 0..b.k {
                        for c in 0..b.k {
                            let w = p[x * b.k + a] * p[x * b.k + c] / b.n_ctx as f64;
                            if a != c && w > 0.0 {
                                add((x, a, c), w);
                            }
                        }
                    }
                }
                p.to_vec()
            }
            Source::Design(cand, lambda) => {
                let mut m = vec![0.0; b.n_ctx * b.k];
                let mut per_ctx = vec![0.0; b.n_ctx];
                for (&(x, a, c), &l) in cand.iter().zip(lambda.iter()) {
                    add((x, a, c), l);
                    m[x * b.k + a] += l / 2.0;
                    m[x * b.k + c] += l / 2.0;
                    per_ctx[x] += l;
                }
                for x in 0..b.n_ctx {
                    for a in 0..b.k {
                        if per_ctx[x] > 0.0 {
                            m[x * b.k + a] /= per_ctx[x];
                        }
                    }
                }
                m
            }
        };
        (
            b.coverage_inf(&target, &marginal),
            b.coverage_feat(&target, &info),
        )
    }

    fn record(&self, round: usize, samples: usize, theta: Vec<f64>, source: &Source) -> Round {
        let target = self.bandit.policy(self.theta_star);
        let p = self.bandit.policy(&theta);
        let (c_inf, c_feat) = self.coverage(source);
        let theta_err = theta
            .iter()
            .zip(self.theta_star)
            .map(|(t, s)| (t - s).powi(2))
            .sum::<f64>()
            .sqrt();
        Round {
            round,
            samples,
            kl: self.bandit.kl(&target, &p),
            entropy: self.bandit.entropy(&p),
            theta,
            theta_err,
            c_inf,
            c_feat,
        }
    }

    /// Runs `sampler` with `n_total` labelled pairs and DPO fits; returns every round's fit.
    pub fn run(&self, sampler: Sampler, n_total: usize, seed: u64) -> Vec<Round> {
        self.run_with(sampler, Objective::Dpo, n_total, seed)
    }

    /// Runs `sampler` with `n_total` labelled pairs, each round fitted by `objective` on the host
    /// (Newton, f64); returns every round's fit.
    pub fn run_with(
        &self,
        sampler: Sampler,
        objective: Objective,
        n_total: usize,
        seed: u64,
    ) -> Vec<Round> {
        match self.run_solver(&mut Host, sampler, objective, n_total, seed) {
            Ok(rounds) => rounds,
            Err(e) => unreachable!("the host solver does not fail: {e}"),
        }
    }

    /// Runs `sampler` with DPO fitted by `fit` on `dev`: the sampling policies and every fit's
    /// steps run there (the draws and the labels stay on the host, from the same counter-based
    /// generator, so the CPU device and a GPU see the same stream while their policies agree).
    pub fn run_on<D: Device + 'static>(
        &self,
        dev: &mut D,
        fit: &FirstOrderFit,
        sampler: Sampler,
        n_total: usize,
        seed: u64,
    ) -> Result<Vec<Round>, AlignError> {
        let bandit = DeviceBandit::new(dev, self.bandit);
        let mut solver = OnDevice { dev, bandit, fit };
        self.run_solver(&mut solver, sampler, Objective::Dpo, n_total, seed)
    }

    fn run_solver(
        &self,
        solver: &mut dyn Solver,
        sampler: Sampler,
        objective: Objective,
        n_total: usize,
        seed: u64,
    ) -> Result<Vec<Round>, AlignError> {
        let mut run = SamplerRun::new(self, sampler, objective, n_total, seed);
        while !run.finished() {
            run.step_with(self, solver)?;
        }
        Ok(run.rounds)
    }

    /// The hybrid's candidates (every unordered arm pair of every context) and its G-optimal
    /// design over them.
    fn design(&self) -> (Vec<Candidate>, Vec<f64>) {
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
        let design = g_optimal(&z, b.d, None, 300);
        (cand, design.lambda)
    }
}

/// One sampler run advanced a round at a time: what [`Problem::run`] loops over, and what the
/// explorer's Alignment lab steps. It holds no reference to its [`Problem`]: every step is given
/// the same one.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerRun {
    sampler: Sampler,
    objective: Objective,
    n_total: usize,
    seed: u64,
    theta: Vec<f64>,
    all: Pairs,
    rounds: Vec<Round>,
    design: Option<(Vec<Candidate>, Vec<f64>)>,
}

impl SamplerRun {
    /// The run at round 0 (θ = θ_ref, no pairs).
    pub fn new(
        p: &Problem,
        sampler: Sampler,
        objective: Objective,
        n_total: usize,
        seed: u64,
    ) -> Self {
        Self {
            sampler,
            objective,
            n_total,
            seed,
            theta: p.theta_ref.to_vec(),
            all: Pairs::new(p.bandit.d),
            rounds: vec![],
            design: None,
        }
    }

    /// The rounds it has in all: 1 offline, T on-policy, 2 hybrid.
    pub fn total_rounds(&self) -> usize {
        match self.sampler {
            Sampler::Offline => 1,
            Sampler::OnPolicy { rounds, .. } => rounds,
            Sampler::Hybrid => 2,
        }
    }

    /// Whether every round is done.
    pub fn finished(&self) -> bool {
        self.rounds.len() >= self.total_rounds()
    }

    /// The rounds so far.
    pub fn rounds(&self) -> &[Round] {
        &self.rounds
    }

    /// The current θ (θ_ref before the first round).
    pub fn theta(&self) -> &[f64] {
        &self.theta
    }

    /// The hybrid's design once its first round ran: the candidate pairs `(x, a, b)` and their
    /// weights.
    pub fn design(&self) -> Option<(&[Candidate], &[f64])> {
        self.design
            .as_ref()
            .map(|(c, l)| (c.as_slice(), l.as_slice()))
    }

    /// The next round on the host (Newton, f64); None when finished.
    pub fn step(&mut self, p: &Problem) -> Option<&Round> {
        if self.finished() {
            return None;
        }
        match self.step_with(p, &mut Host) {
            Ok(()) => self.rounds.last(),
            Err(e) => unreachable!("the host solver does not fail: {e}"),
        }
    }

    /// The next round with the DPO fits of `fit` on `dev` (reward distillation stays on the
    /// host); nothing when finished.
    pub fn step_on<D: Device + 'static>(
        &mut self,
        p: &Problem,
        dev: &mut D,
        fit: &FirstOrderFit,
    ) -> Result<(), AlignError> {
        if self.finished() {
            return Ok(());
        }
        if self.objective == Objective::RewardDistillation {
            return self.step_with(p, &mut Host);
        }
        let bandit = DeviceBandit::new(dev, p.bandit);
        self.step_with(p, &mut OnDevice { dev, bandit, fit })
    }

    fn draws(&self, round: u32) -> Draws {
        Draws {
            rng: Philox::new(self.seed),
            round,
            next: 0,
        }
    }

    /// `n` pairs from the current policy with `draws`, added to every pair so far, a fit (on
    /// those pairs, or on everything with `cumulative`) warm-started at θ, recorded as
    /// `(round, samples)`.
    fn on_policy_round(
        &mut self,
        p: &Problem,
        solver: &mut dyn Solver,
        mut draws: Draws,
        n: usize,
        cumulative: bool,
        (round, samples): (usize, usize),
    ) -> Result<Round, AlignError> {
        let mut batch = Pairs::new(p.bandit.d);
        let sampled = solver.policy(p, &self.theta)?;
        p.policy_pairs(&mut draws, &sampled, n, &mut batch);
        self.all.extend_scaled(&batch, 1.0);
        self.theta = p.fit_round(
            solver,
            self.objective,
            (&batch, &self.all),
            cumulative,
            Some(&self.theta),
        )?;
        Ok(p.record(
            round,
            samples,
            self.theta.clone(),
            &Source::Policy(&sampled),
        ))
    }

    fn step_with(&mut self, p: &Problem, solver: &mut dyn Solver) -> Result<(), AlignError> {
        let d = p.bandit.d;
        let t = self.rounds.len();
        let round = match self.sampler {
            Sampler::Offline => {
                let mut data = Pairs::new(d);
                let p_ref = solver.policy(p, p.theta_ref)?;
                p.policy_pairs(&mut self.draws(0), &p_ref, self.n_total, &mut data);
                self.theta = p.fit_round(solver, self.objective, (&data, &data), false, None)?;
                self.all = data;
                p.record(1, self.n_total, self.theta.clone(), &Source::Policy(&p_ref))
            }
            Sampler::OnPolicy { rounds, cumulative } => {
                let per = self.n_total / rounds.max(1);
                let draws = self.draws(t as u32);
                self.on_policy_round(p, solver, draws, per, cumulative, (t + 1, per * (t + 1)))?
            }
            Sampler::Hybrid if t == 0 => {
                let (cand, lambda) = p.design();
                let half = self.n_total / 2;
                let mut data = Pairs::new(d);
                let mut dr = self.draws(0);
                let cdf: Vec<f64> = lambda
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
                    p.label(&mut dr, &mut data, cand[i]);
                }
                self.theta = p.fit_round(solver, self.objective, (&data, &data), true, None)?;
                self.all = data;
                let r = p.record(1, half, self.theta.clone(), &Source::Design(&cand, &lambda));
                self.design = Some((cand, lambda));
                r
            }
            Sampler::Hybrid => {
                let n = self.n_total - self.n_total / 2;
                let draws = self.draws(1);
                self.on_policy_round(p, solver, draws, n, true, (2, self.n_total))?
            }
        };
        self.rounds.push(round);
        Ok(())
    }
}

/// Where a run's sampling policies and DPO fits are computed.
trait Solver {
    /// `π_θ(·|x)` of every context.
    fn policy(&mut self, p: &Problem, theta: &[f64]) -> Result<Vec<f64>, AlignError>;
    /// The DPO fit of `data` from `warm`.
    fn dpo(
        &mut self,
        p: &Problem,
        data: &Pairs,
        warm: Option<&[f64]>,
    ) -> Result<Vec<f64>, AlignError>;
}

/// f64 on the host, Newton.
struct Host;

impl Solver for Host {
    fn policy(&mut self, p: &Problem, theta: &[f64]) -> Result<Vec<f64>, AlignError> {
        Ok(p.bandit.policy(theta))
    }

    fn dpo(
        &mut self,
        p: &Problem,
        data: &Pairs,
        warm: Option<&[f64]>,
    ) -> Result<Vec<f64>, AlignError> {
        Ok(p.fit(data, warm))
    }
}

/// A device's kernels and a first-order optimizer.
struct OnDevice<'a, D: Device> {
    dev: &'a mut D,
    bandit: DeviceBandit<D>,
    fit: &'a FirstOrderFit,
}

impl<D: Device + 'static> Solver for OnDevice<'_, D> {
    fn policy(&mut self, _: &Problem, theta: &[f64]) -> Result<Vec<f64>, AlignError> {
        let lp = self.bandit.log_policy(self.dev, theta)?;
        Ok(lp.into_iter().map(f64::exp).collect())
    }

    fn dpo(
        &mut self,
        p: &Problem,
        data: &Pairs,
        warm: Option<&[f64]>,
    ) -> Result<Vec<f64>, AlignError> {
        fit_first_order(
            self.dev,
            &self.bandit,
            data,
            p.theta_ref,
            p.beta,
            self.fit,
            warm,
        )
    }
}
