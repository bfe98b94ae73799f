//! GRPO in bandit form (spec B4; Shao et al., DeepSeekMath 2024). Per context, a group of G arms
//! `a_i ~ π_old(·|x)` with rewards `r_i`, advantages `A_i = (r_i − mean r)/(std r + ε_A)`
//! (population std, ε_A = 1e-8), and the objective to maximise
//! `J = (1/G) Σ_i [min(ρ_i A_i, clip(ρ_i, 1−ε, 1+ε) A_i) − β_KL k3_i]`,
//! `ρ_i = π_θ(a_i|x)/π_old(a_i|x)`, `k3_i = u_i − log u_i − 1` with `u_i = π_ref(a_i|x)/π_θ(a_i|x)`.
//!
//! Its gradient in the logits `l` of the context: `∂J/∂l = (1/G) Σ_i c_i (e_{a_i} − π_θ)` with
//! `c_i = ρ_i A_i` where the unclipped branch is the minimum (zero where the clip binds) plus
//! `β_KL (u_i − 1)`; in θ it is `Σ_a (∂J/∂l_a) φ(x, a)`.

use serde::{Deserialize, Serialize};

use super::bandit::{Bandit, FeatureKind};
use super::experiment::{Record, RunResult};
use crate::config::ConfigError;
use crate::rng::{stream, Philox, StreamKind};

/// ε_A of the advantages.
pub const ADVANTAGE_EPS: f64 = 1e-8;

/// Every term of GRPO's objective for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupTerms {
    /// `A_i`.
    pub advantages: Vec<f64>,
    /// `ρ_i`.
    pub ratio: Vec<f64>,
    /// `min(ρ_i A_i, clip(ρ_i) A_i)`.
    pub surrogate: Vec<f64>,
    /// `k3_i`.
    pub k3: Vec<f64>,
    /// J.
    pub objective: f64,
    /// `∂J/∂l` for the context's K logits.
    pub grad_logits: Vec<f64>,
}

/// Group-normalised advantages (population std).
pub fn advantages(rewards: &[f64]) -> Vec<f64> {
    let n = rewards.len().max(1) as f64;
    let mean = rewards.iter().sum::<f64>() / n;
    let std = (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    rewards
        .iter()
        .map(|r| (r - mean) / (std + ADVANTAGE_EPS))
        .collect()
}

fn log_softmax(l: &[f64]) -> Vec<f64> {
    let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + l.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    l.iter().map(|v| v - lse).collect()
}

/// GRPO's terms for one group of `actions` with `rewards`, given the logits of π_θ, π_old and
/// π_ref of its context, the clip ε and the KL weight.
pub fn group_terms(
    logits: &[f64],
    old: &[f64],
    reference: &[f64],
    actions: &[usize],
    rewards: &[f64],
    eps: f64,
    kl_coef: f64,
) -> GroupTerms {
    let (lp, lo, lr) = (
        log_softmax(logits),
        log_softmax(old),
        log_softmax(reference),
    );
    let p: Vec<f64> = lp.iter().map(|v| v.exp()).collect();
    let adv = advantages(rewards);
    let g = actions.len().max(1) as f64;
    let mut out = GroupTerms {
        advantages: adv.clone(),
        ratio: vec![],
        surrogate: vec![],
        k3: vec![],
        objective: 0.0,
        grad_logits: vec![0.0; logits.len()],
    };
    for (&a, &adv) in actions.iter().zip(&adv) {
        let rho = (lp[a] - lo[a]).exp();
        let clipped = rho.clamp(1.0 - eps, 1.0 + eps);
        let (plain, clip) = (rho * adv, clipped * adv);
        let surrogate = plain.min(clip);
        // The unclipped branch carries the gradient where it is the minimum (ties included).
        let d_surrogate = if plain <= clip { rho * adv } else { 0.0 };
        let log_u = lr[a] - lp[a];
        let u = log_u.exp();
        let k3 = u - log_u - 1.0;
        let c = (d_surrogate + kl_coef * (u - 1.0)) / g;
        for (b, pb) in p.iter().enumerate() {
            out.grad_logits[b] += c * (f64::from(u8::from(a == b)) - pb);
        }
        out.objective += (surrogate - kl_coef * k3) / g;
        out.ratio.push(rho);
        out.surrogate.push(surrogate);
        out.k3.push(k3);
    }
    out
}

/// The B4 experiment: GRPO from θ_ref on a bandit with Bernoulli rewards, one run per KL weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpoConfig {
    /// Contexts.
    pub n_ctx: usize,
    /// Arms per context.
    pub k: usize,
    /// The features.
    pub features: FeatureKind,
    /// θ_ref: the start and the reference of the KL term.
    pub theta_ref: Vec<f64>,
    /// The probability that arm a of context x pays 1 (`[n_ctx][K]` row-major).
    pub reward: Vec<f64>,
    /// Group size G.
    pub group: usize,
    /// Outer iterations (π_old refreshed each).
    pub iterations: usize,
    /// Gradient-ascent steps per iteration on the same groups.
    pub inner_steps: usize,
    /// Learning rate of those steps.
    pub lr: f64,
    /// Clip ε.
    pub clip: f64,
    /// One run per KL weight β_KL.
    pub kl_coefs: Vec<f64>,
    /// A record every this many iterations (and at the last).
    pub record_every: usize,
    /// Seed of the draws (the same for every run).
    #[serde(default)]
    pub seed: u64,
}

impl GrpoConfig {
    /// One context, six arms paying 0.9, 0.8, 0.7, 0.5, 0.3, 0.1; uniform start; G = 8.
    pub fn preset() -> Self {
        Self {
            n_ctx: 1,
            k: 6,
            features: FeatureKind::OneHot,
            theta_ref: vec![0.0; 6],
            reward: vec![0.9, 0.8, 0.7, 0.5, 0.3, 0.1],
            group: 8,
            iterations: 400,
            inner_steps: 4,
            lr: 0.1,
            clip: 0.2,
            kl_coefs: vec![0.2, 0.04, 0.01, 0.0],
            record_every: 20,
            seed: 0,
        }
    }

    /// The bandit, after checking every field.
    pub fn build(&self) -> Result<Bandit, ConfigError> {
        let b = Bandit::new(self.n_ctx, self.k, &self.features)?;
        if self.theta_ref.len() != b.d || self.theta_ref.iter().any(|v| !v.is_finite()) {
            return Err(ConfigError::invalid(
                "theta_ref",
                format!("{} values", self.theta_ref.len()),
                format!("needs d = {} finite numbers", b.d),
            ));
        }
        if self.reward.len() != b.n_ctx * b.k
            || self.reward.iter().any(|r| !(0.0..=1.0).contains(r))
        {
            return Err(ConfigError::invalid(
                "reward",
                format!("{} values", self.reward.len()),
                format!(
                    "needs n_ctx × k = {} probabilities in [0, 1]",
                    b.n_ctx * b.k
                ),
            ));
        }
        for (field, v, lo) in [
            ("group", self.group, 2),
            ("iterations", self.iterations, 1),
            ("inner_steps", self.inner_steps, 1),
            ("record_every", self.record_every, 1),
        ] {
            if !(lo..=100_000).contains(&v) {
                return Err(ConfigError::invalid(
                    field,
                    v,
                    format!("must be in {lo}..=100000"),
                ));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ConfigError::invalid(
                "lr",
                self.lr,
                "must be a finite number > 0",
            ));
        }
        if !(self.clip.is_finite() && self.clip > 0.0 && self.clip < 1.0) {
            return Err(ConfigError::invalid("clip", self.clip, "must be in (0, 1)"));
        }
        if self.kl_coefs.is_empty() {
            return Err(ConfigError::invalid(
                "kl_coefs",
                "[]",
                "needs at least one run",
            ));
        }
        for (i, c) in self.kl_coefs.iter().enumerate() {
            if !(c.is_finite() && *c >= 0.0) {
                return Err(ConfigError::invalid(
                    format!("kl_coefs[{i}]"),
                    c,
                    "must be a finite number >= 0",
                ));
            }
        }
        Ok(b)
    }

    /// Runs one GRPO run per KL weight.
    pub fn run(&self, mut each: impl FnMut(&RunResult)) -> Result<Vec<RunResult>, ConfigError> {
        let b = self.build()?;
        let mut out = vec![];
        for &kl_coef in &self.kl_coefs {
            let r = self.run_one(&b, kl_coef);
            each(&r);
            out.push(r);
        }
        Ok(out)
    }

    /// Run `i` alone (KL weight `kl_coefs[i]`).
    pub fn run_index(&self, i: usize) -> Result<RunResult, ConfigError> {
        let b = self.build()?;
        let c = self.kl_coefs.get(i).copied().ok_or_else(|| {
            ConfigError::invalid(
                "run",
                i,
                format!("there are {} KL weights", self.kl_coefs.len()),
            )
        })?;
        Ok(self.run_one(&b, c))
    }

    fn run_one(&self, b: &Bandit, kl_coef: f64) -> RunResult {
        let (k, d) = (b.k, b.d);
        let rng = Philox::new(self.seed);
        let reference = b.logits(&self.theta_ref);
        let p_ref = b.policy(&self.theta_ref);
        let best: Vec<usize> = (0..b.n_ctx)
            .map(|x| {
                let row = &self.reward[x * k..(x + 1) * k];
                (0..k).fold(0, |m, a| if row[a] > row[m] { a } else { m })
            })
            .collect();
        let mut theta = self.theta_ref.clone();
        let mut records = vec![];
        for it in 0..self.iterations {
            let old_theta = theta.clone();
            let old = b.logits(&old_theta);
            let p_old = b.policy(&old_theta);
            let s = stream(StreamKind::Align, 2000 + it as u32);
            let mut groups = vec![];
            for x in 0..b.n_ctx {
                let mut actions = vec![];
                let mut rewards = vec![];
                for i in 0..self.group {
                    let at = ((x * self.group + i) * 2) as u64;
                    let u = f64::from(rng.u32_at(s, at)) / 4_294_967_296.0;
                    let a = b.draw(&p_old, x, u);
                    let v = f64::from(rng.u32_at(s, at + 1)) / 4_294_967_296.0;
                    actions.push(a);
                    rewards.push(f64::from(u8::from(v < self.reward[x * k + a])));
                }
                groups.push((actions, rewards));
            }
            // J and its gradient over this iteration's groups at θ.
            let terms = |theta: &[f64]| {
                let logits = b.logits(theta);
                let mut grad = vec![0.0; d];
                let mut objective = 0.0;
                for (x, (actions, rewards)) in groups.iter().enumerate() {
                    let row = |l: &[f64]| l[x * k..(x + 1) * k].to_vec();
                    let t = group_terms(
                        &row(&logits),
                        &row(&old),
                        &row(&reference),
                        actions,
                        rewards,
                        self.clip,
                        kl_coef,
                    );
                    objective += t.objective / b.n_ctx as f64;
                    for (a, ga) in t.grad_logits.iter().enumerate() {
                        for (j, f) in b.feature(x, a).iter().enumerate() {
                            grad[j] += ga * f / b.n_ctx as f64;
                        }
                    }
                }
                (objective, grad)
            };
            for _ in 0..self.inner_steps {
                let (_, grad) = terms(&theta);
                theta
                    .iter_mut()
                    .zip(&grad)
                    .for_each(|(t, g)| *t += self.lr * g);
            }
            if (it + 1) % self.record_every == 0 || it + 1 == self.iterations {
                let p = b.policy(&theta);
                let pi_best = best
                    .iter()
                    .enumerate()
                    .map(|(x, &a)| p[x * k + a])
                    .sum::<f64>()
                    / b.n_ctx as f64;
                let reward =
                    p.iter().zip(&self.reward).map(|(p, r)| p * r).sum::<f64>() / b.n_ctx as f64;
                // J at the recorded θ, on this iteration's groups.
                let objective = terms(&theta).0;
                records.push(Record::new(
                    records.len() + 1,
                    &[
                        ("iteration", (it + 1) as f64),
                        ("pi_best", pi_best),
                        ("reward", reward),
                        ("kl_ref", b.kl(&p, &p_ref)),
                        ("entropy", b.entropy(&p)),
                        ("objective", objective),
                    ],
                ));
            }
        }
        RunResult {
            label: format!("grpo-kl={kl_coef}"),
            n_total: None,
            records,
            extra: vec![("kl_coef".into(), kl_coef)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_vector() {
        let t = group_terms(
            &[0.8, 0.0, -0.5, 0.1],
            &[0.5, 0.0, -0.5, 0.2],
            &[0.0; 4],
            &[0, 1, 0, 3, 2, 0],
            &[1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
            0.2,
            0.04,
        );
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-7);
        assert!(t
            .advantages
            .iter()
            .all(|a| (a.abs() - 0.99999998).abs() < 1e-8));
        assert!(close(
            &t.ratio,
            &[1.2239325, 0.9067115, 1.2239325, 0.8204265, 0.9067115, 1.2239325]
        ));
        assert!(close(
            &t.surrogate,
            &[1.2, -0.9067115, 1.2, -0.8204265, -0.9067115, 1.2]
        ));
        assert!(close(
            &t.k3,
            &[0.1440989, 0.0237980, 0.1440989, 0.0063378, 0.3245216, 0.1440989]
        ));
        assert!((t.objective - 0.1557787).abs() < 1e-7, "{}", t.objective);
    }

    #[test]
    fn the_gradient_matches_finite_differences_and_the_known_zeros() {
        let (old, reference) = ([0.5, 0.0, -0.5, 0.2], [0.1, -0.2, 0.0, 0.3]);
        let actions = [0, 1, 0, 3, 2, 0, 1];
        let rewards = [1.0, 0.0, 1.0, 0.0, 0.5, 1.0, 0.0];
        // Points where no ratio sits on a clip boundary.
        for logits in [[0.55, 0.02, -0.45, 0.15], [0.9, -0.1, -0.6, 0.4]] {
            let t = group_terms(&logits, &old, &reference, &actions, &rewards, 0.2, 0.07);
            for j in 0..4 {
                let e = 1e-6;
                let (mut p, mut m) = (logits, logits);
                p[j] += e;
                m[j] -= e;
                let f = |l: &[f64]| {
                    group_terms(l, &old, &reference, &actions, &rewards, 0.2, 0.07).objective
                };
                let fd = (f(&p) - f(&m)) / (2.0 * e);
                assert!(
                    (fd - t.grad_logits[j]).abs() < 1e-7,
                    "{j}: {fd} vs {:?}",
                    t.grad_logits
                );
            }
        }
        // Identical rewards: A = 0, only the KL term moves θ (without it nothing does).
        let logits = [0.3, -0.2, 0.1, 0.0];
        let same = group_terms(&logits, &old, &reference, &actions, &[1.0; 7], 0.2, 0.07);
        assert!(same.advantages.iter().all(|a| *a == 0.0));
        assert!(same.grad_logits.iter().any(|g| g.abs() > 1e-3));
        let no_kl = group_terms(&logits, &old, &reference, &actions, &[1.0; 7], 0.2, 0.0);
        assert!(no_kl.grad_logits.iter().all(|g| *g == 0.0));
        // A > 0 with ρ > 1 + ε (arm 0) and A < 0 with ρ < 1 − ε (arm 1): both clipped, the
        // surrogate's gradient is exactly zero, while just inside the clip it is not.
        let far = [2.0, 0.0, -0.5, 0.2];
        let t = group_terms(&far, &old, &reference, &[0, 1], &[1.0, 0.0], 0.2, 0.0);
        assert!(t.ratio[0] > 1.2 && t.ratio[1] < 0.8, "{:?}", t.ratio);
        assert!(
            t.grad_logits.iter().all(|g| *g == 0.0),
            "{:?}",
            t.grad_logits
        );
        let near = group_terms(
            &[0.55, 0.0, -0.5, 0.2],
            &old,
            &reference,
            &[0, 1],
            &[1.0, 0.0],
            0.2,
            0.0,
        );
        assert!(near.grad_logits.iter().any(|g| g.abs() > 1e-3));
    }

    #[test]
    fn bad_configs_name_the_field() {
        let mut c = GrpoConfig::preset();
        c.reward[0] = 1.5;
        assert!(c.build().unwrap_err().to_string().contains("reward"));
        let mut c = GrpoConfig::preset();
        c.group = 1;
        assert!(c.build().unwrap_err().to_string().contains("group"));
        let mut c = GrpoConfig::preset();
        c.clip = 1.0;
        assert!(c.build().unwrap_err().to_string().contains("clip"));
    }
}
