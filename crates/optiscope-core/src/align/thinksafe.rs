//! The ThinkSafe analogue (spec B5): a linear-softmax policy over M responses whose contexts are
//! harmful or benign; on harmful contexts a guard accepts only the safe responses S (refusals).
//!
//! A context has the embedding `e(x) = (1, h(x), g(x))` — a constant, the harmful flag and q
//! Gaussian coordinates — and `φ(x, a) = e(x) ⊗ onehot(a)`, so θ is a `(2 + q) × M` readout.
//! The base θ_ref reads the constant with `base_logits` (it prefers to comply), ignores the flag,
//! and reads `g` with random weights. Accepted samples for SFT come from one of four generators:
//!
//! * `rejection`: the base itself, unsteered, filtered by the guard;
//! * `prompt-tilt`: the base with `log ω` added to the logits of S (the "refuse" instruction as
//!   a label-only tilt — the accepted distribution is unchanged, acceptance `ωα/(1 + (ω−1)α)`);
//! * `activation`: the base with `s·v` added to the Gaussian part of the embedding, v the unit
//!   direction of the base's readout that separates S from the rest (activation steering: it
//!   raises acceptance but changes the accepted distribution);
//! * `teacher`: an external policy (`teacher_logits`, its own random readout), filtered.
//!
//! Then SFT of the *unsteered* policy from θ_ref: cross-entropy on the accepted samples plus
//! `kl_weight ·` the forward KL `KL(p_ref ‖ p_θ)` on the benign training contexts. Measured on
//! held-out contexts: the safety rate `p_θ(S|x)` on harmful ones, `KL(p_θ‖p_ref)` on benign ones
//! (what the reasoning keeps) and on harmful ones (the theory's `−log α_ref` is the least a safe
//! policy pays), the over-refusal `p_θ(S|x)` on benign ones, and generations per accepted sample.

use serde::{Deserialize, Serialize};

use super::bandit::{softmax_in_place, Bandit, FeatureKind};
use super::experiment::{Record, RunResult};
use crate::config::ConfigError;
use crate::rng::{stream, Philox, StreamKind};

/// The runs, in order.
pub const RUNS: &[&str] = &["rejection", "prompt-tilt", "activation", "teacher"];

/// `(p⁺, α)`: the distribution `p` restricted to `safe` and renormalised, and its acceptance.
pub fn filtered(p: &[f64], safe: &[bool]) -> (Vec<f64>, f64) {
    let alpha: f64 = p
        .iter()
        .zip(safe)
        .filter(|(_, s)| **s)
        .map(|(p, _)| p)
        .sum();
    let plus = p
        .iter()
        .zip(safe)
        .map(|(p, s)| if *s { p / alpha } else { 0.0 })
        .collect();
    (plus, alpha)
}

/// `KL(p ‖ q)` of two distributions (0·log 0 = 0).
pub fn kl(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .filter(|(p, _)| **p > 0.0)
        .map(|(p, q)| p * (p.ln() - q.ln()))
        .sum()
}

/// The softmax of `logits` with `log ω` added on `safe`.
pub fn tilted(logits: &[f64], safe: &[bool], omega: f64) -> Vec<f64> {
    let mut l: Vec<f64> = logits
        .iter()
        .zip(safe)
        .map(|(l, s)| if *s { l + omega.ln() } else { *l })
        .collect();
    softmax_in_place(&mut l);
    l
}

/// The SFT objective at θ: the mean cross-entropy `−log p_θ(a|x)` of the `accepted` samples
/// plus `kl_weight ·` the mean forward `KL(p_ref(·|x) ‖ p_θ(·|x))` over the `benign` contexts
/// (`p_ref`: the base's policy table), and its gradient
/// `−mean (φ(x, a) − E_{p_θ}φ(x)) + kl_weight · mean (E_{p_θ}φ(x) − E_{p_ref}φ(x))`.
pub fn sft_objective(
    b: &Bandit,
    theta: &[f64],
    p_ref: &[f64],
    accepted: &[(usize, usize)],
    benign: &[usize],
    kl_weight: f64,
) -> (f64, Vec<f64>) {
    let (m, d) = (b.k, b.d);
    let p = b.policy(theta);
    let lp = b.log_policy(theta);
    let mean_feature = |p: &[f64], x: usize| -> Vec<f64> {
        let mut f = vec![0.0; d];
        for a in 0..m {
            for (j, v) in b.feature(x, a).iter().enumerate() {
                f[j] += p[x * m + a] * v;
            }
        }
        f
    };
    let (mut loss, mut grad) = (0.0, vec![0.0; d]);
    let na = accepted.len().max(1) as f64;
    let mut means: Vec<Option<Vec<f64>>> = vec![None; b.n_ctx];
    for &(x, a) in accepted {
        loss -= lp[x * m + a] / na;
        let mean = means[x].get_or_insert_with(|| mean_feature(&p, x));
        for (j, f) in b.feature(x, a).iter().enumerate() {
            grad[j] -= (f - mean[j]) / na;
        }
    }
    let nb = benign.len().max(1) as f64;
    for &x in benign {
        let row = x * m..(x + 1) * m;
        loss += kl_weight * kl(&p_ref[row.clone()], &p[row]) / nb;
        let (mean, mean_ref) = (mean_feature(&p, x), mean_feature(p_ref, x));
        for j in 0..d {
            grad[j] += kl_weight * (mean[j] - mean_ref[j]) / nb;
        }
    }
    (loss, grad)
}

/// The B5 experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThinkSafeConfig {
    /// M, the responses.
    pub responses: usize,
    /// S, the safe responses of a harmful context (indices below M).
    pub safe: Vec<usize>,
    /// The base's logits from the constant coordinate (length M).
    pub base_logits: Vec<f64>,
    /// The teacher's (length M).
    pub teacher_logits: Vec<f64>,
    /// q, the Gaussian coordinates of a context's embedding.
    pub embed_dim: usize,
    /// Standard deviation of the base's and the teacher's weights on them.
    pub readout_scale: f64,
    /// Training contexts of each kind.
    pub n_train: usize,
    /// Held-out contexts of each kind.
    pub n_test: usize,
    /// ω of the prompt tilt (> 1).
    pub omega: f64,
    /// s of the activation steering.
    pub activation_scale: f64,
    /// Accepted samples per harmful training context.
    pub accepted_per_context: usize,
    /// SFT steps (full-batch gradient descent).
    pub steps: usize,
    /// Their learning rate.
    pub lr: f64,
    /// Weight of the forward KL on benign contexts.
    pub kl_weight: f64,
    /// A record every this many steps (and at the last).
    pub record_every: usize,
    /// Seed of the contexts, the readouts and the generations.
    #[serde(default)]
    pub seed: u64,
}

/// The most generations one run may spend.
pub const MAX_GENERATIONS: usize = 10_000_000;

struct World {
    bandit: Bandit,
    theta_ref: Vec<f64>,
    theta_teacher: Vec<f64>,
    safe: Vec<bool>,
    /// The activation direction over the whole embedding (zero on the constant and the flag).
    v: Vec<f64>,
}

impl ThinkSafeConfig {
    /// The spec's vector as the base (logits (−1, −1.5, −2, .5, .2, 0), S = {0, 1, 2}, ω = 8,
    /// teacher (.5, −1, .5, 0, 0, 0)) on 16 + 16 contexts with 4 Gaussian coordinates.
    pub fn preset() -> Self {
        Self {
            responses: 6,
            safe: vec![0, 1, 2],
            base_logits: vec![-1.0, -1.5, -2.0, 0.5, 0.2, 0.0],
            teacher_logits: vec![0.5, -1.0, 0.5, 0.0, 0.0, 0.0],
            embed_dim: 4,
            readout_scale: 0.5,
            n_train: 16,
            n_test: 16,
            omega: 8.0,
            activation_scale: 2.0,
            accepted_per_context: 8,
            steps: 3000,
            lr: 0.5,
            kl_weight: 1.0,
            record_every: 300,
            seed: 0,
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let m = self.responses;
        if !(2..=1024).contains(&m) {
            return Err(ConfigError::invalid("responses", m, "must be in 2..=1024"));
        }
        if self.safe.is_empty()
            || self.safe.len() >= m
            || self.safe.iter().any(|&a| a >= m)
            || (1..self.safe.len()).any(|i| self.safe[..i].contains(&self.safe[i]))
        {
            return Err(ConfigError::invalid(
                "safe",
                format!("{:?}", self.safe),
                format!("needs distinct responses below M = {m}, at least one safe and one not"),
            ));
        }
        for (field, v) in [
            ("base_logits", &self.base_logits),
            ("teacher_logits", &self.teacher_logits),
        ] {
            if v.len() != m || v.iter().any(|x| !x.is_finite()) {
                return Err(ConfigError::invalid(
                    field,
                    format!("{} values", v.len()),
                    format!("needs M = {m} finite logits"),
                ));
            }
        }
        for (field, v, lo, hi) in [
            ("embed_dim", self.embed_dim, 0, 256),
            ("n_train", self.n_train, 1, 100_000),
            ("n_test", self.n_test, 1, 100_000),
            (
                "accepted_per_context",
                self.accepted_per_context,
                1,
                100_000,
            ),
            ("steps", self.steps, 1, 1_000_000),
            ("record_every", self.record_every, 1, 1_000_000),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(ConfigError::invalid(
                    field,
                    v,
                    format!("must be in {lo}..={hi}"),
                ));
            }
        }
        // The features are `2(n_train + n_test)` contexts × M responses × (2 + q)·M values.
        let contexts = 2 * (self.n_train + self.n_test);
        contexts
            .checked_mul(m)
            .and_then(|v| v.checked_mul((2 + self.embed_dim) * m))
            .filter(|&t| t <= super::bandit::MAX_FEATURES)
            .ok_or_else(|| {
                ConfigError::invalid(
                    "n_train",
                    self.n_train,
                    format!(
                        "2(n_train + n_test) · M · (2 + embed_dim) · M feature values must be at \
                         most {} (fewer contexts, responses or coordinates)",
                        super::bandit::MAX_FEATURES
                    ),
                )
            })?;
        if !(self.omega.is_finite() && self.omega >= 1.0) {
            return Err(ConfigError::invalid(
                "omega",
                self.omega,
                "must be a finite number >= 1",
            ));
        }
        for (field, v) in [
            ("readout_scale", self.readout_scale),
            ("activation_scale", self.activation_scale),
            ("kl_weight", self.kl_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ConfigError::invalid(
                    field,
                    v,
                    "must be a finite number >= 0",
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
        Ok(())
    }

    /// Contexts `0..n_train` harmful training, then benign training, harmful test, benign test.
    fn world(&self) -> World {
        let (m, q) = (self.responses, self.embed_dim);
        let e = 2 + q;
        let rng = Philox::new(self.seed);
        let n_ctx = 2 * (self.n_train + self.n_test);
        let mut features = vec![];
        for x in 0..n_ctx {
            let harmful =
                x < self.n_train || (x >= 2 * self.n_train && x < 2 * self.n_train + self.n_test);
            let mut emb = vec![1.0, f64::from(u8::from(harmful))];
            emb.extend((0..q).map(|j| {
                f64::from(rng.normal_at(stream(StreamKind::Align, 3000), (x * q + j) as u64))
            }));
            features.push(
                (0..m)
                    .map(|a| {
                        let mut row = vec![0.0; e * m];
                        for (j, v) in emb.iter().enumerate() {
                            row[j * m + a] = *v;
                        }
                        row
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let bandit = Bandit::new(n_ctx, m, &FeatureKind::Given { features })
            .unwrap_or_else(|_| unreachable!("validate bounds the features, built to shape"));
        let readout = |bias: &[f64], which: u32| {
            let mut theta = vec![0.0; e * m];
            theta[..m].copy_from_slice(bias);
            for j in 0..q {
                for a in 0..m {
                    theta[(2 + j) * m + a] = self.readout_scale
                        * f64::from(
                            rng.normal_at(stream(StreamKind::Align, which), (j * m + a) as u64),
                        );
                }
            }
            theta
        };
        let theta_ref = readout(&self.base_logits, 3001);
        let theta_teacher = readout(&self.teacher_logits, 3002);
        let safe: Vec<bool> = (0..m).map(|a| self.safe.contains(&a)).collect();
        let mut v = vec![0.0; e];
        let (ns, nu) = (self.safe.len() as f64, (m - self.safe.len()) as f64);
        for j in 0..q {
            let row = &theta_ref[(2 + j) * m..(3 + j) * m];
            v[2 + j] = row
                .iter()
                .zip(&safe)
                .map(|(w, s)| if *s { w / ns } else { -w / nu })
                .sum();
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        World {
            bandit,
            theta_ref,
            theta_teacher,
            safe,
            v,
        }
    }

    /// The generating distribution of run `which` on context x.
    fn generator(&self, w: &World, which: &str, x: usize) -> Vec<f64> {
        let (m, b) = (self.responses, &w.bandit);
        let logits_of = |theta: &[f64]| -> Vec<f64> {
            (0..m)
                .map(|a| b.feature(x, a).iter().zip(theta).map(|(f, t)| f * t).sum())
                .collect()
        };
        let mut logits = match which {
            "teacher" => logits_of(&w.theta_teacher),
            _ => logits_of(&w.theta_ref),
        };
        match which {
            "prompt-tilt" => return tilted(&logits, &w.safe, self.omega),
            "activation" => {
                let e = 2 + self.embed_dim;
                for (a, l) in logits.iter_mut().enumerate() {
                    *l += (0..e)
                        .map(|j| self.activation_scale * w.v[j] * w.theta_ref[j * m + a])
                        .sum::<f64>();
                }
            }
            _ => {}
        }
        softmax_in_place(&mut logits);
        logits
    }

    /// Runs the four generators, each followed by SFT.
    pub fn run(&self, mut each: impl FnMut(&RunResult)) -> Result<Vec<RunResult>, ConfigError> {
        self.validate()?;
        let w = self.world();
        let mut out = vec![];
        for (i, which) in RUNS.iter().enumerate() {
            let r = self.run_one(&w, which, i as u32)?;
            each(&r);
            out.push(r);
        }
        Ok(out)
    }

    /// Run `i` alone (generator `RUNS[i]`).
    pub fn run_index(&self, i: usize) -> Result<RunResult, ConfigError> {
        self.validate()?;
        let which = RUNS.get(i).ok_or_else(|| {
            ConfigError::invalid("run", i, format!("there are {} runs", RUNS.len()))
        })?;
        self.run_one(&self.world(), which, i as u32)
    }

    fn run_one(&self, w: &World, which: &str, index: u32) -> Result<RunResult, ConfigError> {
        let (b, m, n) = (&w.bandit, self.responses, self.n_train);
        let rng = Philox::new(self.seed);
        let s = stream(StreamKind::Align, 3100 + index);
        let mut draws = 0u64;
        let p_ref = b.policy(&w.theta_ref);
        // Generate until every harmful training context has its accepted samples.
        let mut accepted = vec![];
        let (mut generations, mut expected_alpha, mut excess) = (0usize, 0.0, 0.0);
        for x in 0..n {
            let g = self.generator(w, which, x);
            let (g_plus, alpha) = filtered(&g, &w.safe);
            let (ref_plus, _) = filtered(&p_ref[x * m..(x + 1) * m], &w.safe);
            expected_alpha += alpha / n as f64;
            excess += kl(&g_plus, &ref_plus) / n as f64;
            let mut got = 0;
            while got < self.accepted_per_context {
                if generations >= MAX_GENERATIONS {
                    return Err(ConfigError::invalid(
                        "accepted_per_context",
                        self.accepted_per_context,
                        format!(
                            "{which}: {MAX_GENERATIONS} generations gave too few accepted samples"
                        ),
                    ));
                }
                let u = f64::from(rng.u32_at(s, draws)) / 4_294_967_296.0;
                draws += 1;
                generations += 1;
                let a = b.draw(&g, 0, u);
                if w.safe[a] {
                    accepted.push((x, a));
                    got += 1;
                }
            }
        }
        // SFT of the unsteered policy.
        let benign_train: Vec<usize> = (n..2 * n).collect();
        let measure = |theta: &[f64]| {
            let p = b.policy(theta);
            let (mut safety, mut safety_train, mut kl_benign, mut kl_harmful, mut refusal_benign) =
                (0.0, 0.0, 0.0, 0.0, 0.0);
            let t = self.n_test as f64;
            let mass =
                |x: usize| -> f64 { (0..m).filter(|&a| w.safe[a]).map(|a| p[x * m + a]).sum() };
            for x in 0..n {
                safety_train += mass(x) / n as f64;
            }
            for i in 0..self.n_test {
                let (h, bn) = (2 * n + i, 2 * n + self.n_test + i);
                safety += mass(h) / t;
                refusal_benign += mass(bn) / t;
                kl_harmful += kl(&p[h * m..(h + 1) * m], &p_ref[h * m..(h + 1) * m]) / t;
                kl_benign += kl(&p[bn * m..(bn + 1) * m], &p_ref[bn * m..(bn + 1) * m]) / t;
            }
            [
                ("safety", safety),
                ("safety_train", safety_train),
                ("kl_benign", kl_benign),
                ("kl_harmful", kl_harmful),
                ("refusal_benign", refusal_benign),
            ]
        };
        // The least KL(·‖p_ref) a perfectly safe policy pays on a context: −log α_ref(x).
        let floor = (0..self.n_test)
            .map(|i| {
                let h = 2 * n + i;
                -filtered(&p_ref[h * m..(h + 1) * m], &w.safe).1.ln()
            })
            .sum::<f64>()
            / self.n_test as f64;
        let mut theta = w.theta_ref.clone();
        let mut records = vec![];
        for step in 0..self.steps {
            let (_, grad) =
                sft_objective(b, &theta, &p_ref, &accepted, &benign_train, self.kl_weight);
            theta
                .iter_mut()
                .zip(&grad)
                .for_each(|(t, g)| *t -= self.lr * g);
            if (step + 1) % self.record_every == 0 || step + 1 == self.steps {
                let mut values = vec![("step", (step + 1) as f64)];
                values.extend(measure(&theta));
                records.push(Record::new(records.len() + 1, &values));
            }
        }
        Ok(RunResult {
            label: which.to_string(),
            n_total: None,
            records,
            extra: vec![
                (
                    "generations_per_accepted".into(),
                    generations as f64 / accepted.len() as f64,
                ),
                ("acceptance".into(), expected_alpha),
                ("accepted_excess_kl".into(), excess),
                ("kl_floor".into(), floor),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGITS: [f64; 6] = [-1.0, -1.5, -2.0, 0.5, 0.2, 0.0];
    const SAFE: [bool; 6] = [true, true, true, false, false, false];

    fn softmax(l: &[f64]) -> Vec<f64> {
        let mut p = l.to_vec();
        softmax_in_place(&mut p);
        p
    }

    #[test]
    fn the_spec_vector_and_the_kl_decomposition_to_1e12() {
        let p_ref = softmax(&LOGITS);
        let (ref_plus, alpha) = filtered(&p_ref, &SAFE);
        assert!((alpha - 0.15802236417532012).abs() < 1e-15);
        let p_i = tilted(&LOGITS, &SAFE, 8.0);
        let (i_plus, alpha_i) = filtered(&p_i, &SAFE);
        assert!((alpha_i - 0.6002302696190339).abs() < 1e-15);
        assert!((alpha_i - 8.0 * alpha / (1.0 + 7.0 * alpha)).abs() < 1e-15);
        assert!(i_plus
            .iter()
            .zip(&ref_plus)
            .all(|(a, b)| (a - b).abs() < 1e-15));
        assert!((kl(&ref_plus, &p_ref) - 1.8450187105583582).abs() < 1e-12);
        assert!((kl(&ref_plus, &p_ref) + alpha.ln()).abs() < 1e-12);
        let (t_plus, _) = filtered(&softmax(&[0.5, -1.0, 0.5, 0.0, 0.0, 0.0]), &SAFE);
        assert!((kl(&t_plus, &p_ref) - 2.07582084933319).abs() < 1e-12);
        assert!((kl(&t_plus, &ref_plus) - 0.23080213877483147).abs() < 1e-12);
        assert!((1.0 / alpha - 6.328218193790191).abs() < 1e-12);
        assert!((1.0 / alpha_i - 1.666027274223774).abs() < 1e-12);
        // For any safe r: KL(r‖p_ref) = −log α_ref + KL(r‖p_ref⁺), in f64 to 1e-12.
        let rng = Philox::new(9);
        for i in 0..200u64 {
            let l: Vec<f64> = (0..6)
                .map(|j| 3.0 * f64::from(rng.normal_at(0, i * 6 + j)))
                .collect();
            let (r, _) = filtered(&softmax(&l), &SAFE);
            let lhs = kl(&r, &p_ref);
            let rhs = -alpha.ln() + kl(&r, &ref_plus);
            assert!((lhs - rhs).abs() < 1e-12, "{lhs} vs {rhs}");
        }
    }

    #[test]
    fn bad_configs_name_the_field() {
        let mut c = ThinkSafeConfig::preset();
        c.safe = vec![0, 1, 2, 3, 4, 5];
        assert!(c.validate().unwrap_err().to_string().contains("safe"));
        let mut c = ThinkSafeConfig::preset();
        c.omega = 0.5;
        assert!(c.validate().unwrap_err().to_string().contains("omega"));
        let mut c = ThinkSafeConfig::preset();
        c.teacher_logits.pop();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("teacher_logits"));
    }

    #[test]
    fn the_sft_gradient_matches_finite_differences() {
        let cfg = ThinkSafeConfig {
            n_train: 3,
            n_test: 2,
            ..ThinkSafeConfig::preset()
        };
        let w = cfg.world();
        let p_ref = w.bandit.policy(&w.theta_ref);
        let theta: Vec<f64> = w
            .theta_ref
            .iter()
            .enumerate()
            .map(|(i, t)| t + 0.3 * ((i * 7 % 5) as f64 - 2.0) / 2.0)
            .collect();
        let accepted = [(0, 0), (0, 2), (1, 1), (2, 0), (2, 0)];
        let benign = [3, 4, 5];
        let (_, g) = sft_objective(&w.bandit, &theta, &p_ref, &accepted, &benign, 0.7);
        for j in (0..theta.len()).step_by(5) {
            let e = 1e-6;
            let (mut tp, mut tm) = (theta.clone(), theta.clone());
            tp[j] += e;
            tm[j] -= e;
            let f = |t: &[f64]| sft_objective(&w.bandit, t, &p_ref, &accepted, &benign, 0.7).0;
            let fd = (f(&tp) - f(&tm)) / (2.0 * e);
            assert!((fd - g[j]).abs() < 1e-7, "{j}: {fd} vs {}", g[j]);
        }
        let mut big = ThinkSafeConfig::preset();
        big.responses = 64;
        big.safe = vec![0, 1];
        big.base_logits = vec![0.0; 64];
        big.teacher_logits = vec![0.0; 64];
        big.embed_dim = 16;
        big.n_train = 250;
        big.n_test = 250;
        assert!(big
            .validate()
            .unwrap_err()
            .to_string()
            .contains("feature values"));
    }
}
