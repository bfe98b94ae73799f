//! An alignment experiment — what `optiscope align` runs and writes (`config.json`, one metrics
//! line per run per record, `summary.json`). Five kinds, tagged by `"experiment"`:
//!
//! * `samplers` (the default when the tag is absent; spec B1/B2): one bandit, a reference and a
//!   target, and several sampler runs (offline, on-policy, hybrid) fitted by DPO or on-policy
//!   reward distillation;
//! * `degeneracy` (B3): population DPO at several β against PMLE, preference distillation and
//!   reverse KL on a finite sample with a never-winning arm;
//! * `grpo` (B4): GRPO on a bandit with Bernoulli rewards at several KL weights;
//! * `thinksafe` (B5): refusal steering, self-generated accepted samples and SFT against a teacher;
//! * `multitask` (B6): forward-KL distillation from a teacher, then DPO over weighted task sets.
//!
//! Every kind reports the same shape: per run a label (and for sampler runs `n_total`) and its
//! records, each a round with named values.

use serde::{Deserialize, Serialize};

use super::bandit::{Bandit, FeatureKind};
use super::distribution::DegeneracyConfig;
use super::first_order::{AlignError, Fit};
use super::grpo::GrpoConfig;
use super::multitask::MultitaskConfig;
use super::sampler::{Labels, Objective, Problem, Round, Sampler};
use super::thinksafe::ThinkSafeConfig;
use crate::config::ConfigError;
use crate::device::{Cpu, Device};
use crate::rng::Philox;

/// One recorded point of a run: a 1-based round and named values.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based.
    pub round: usize,
    /// Its values, in the order they are written.
    pub values: Vec<(String, f64)>,
}

impl Record {
    /// A record of `round` with `values`.
    pub fn new(round: usize, values: &[(&str, f64)]) -> Self {
        Self {
            round,
            values: values.iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
        }
    }

    /// The value called `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// What one run of an experiment produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Its label.
    pub label: String,
    /// Its budget of labelled pairs (sampler runs).
    pub n_total: Option<usize>,
    /// One record per round (per checkpoint).
    pub records: Vec<Record>,
    /// Values of the whole run for the summary (beside the last record's).
    pub extra: Vec<(String, f64)>,
}

impl RunResult {
    /// One line of `metrics.jsonl`: `run`, `n_total` (sampler runs), `round` and the record's
    /// values (null for a non-finite one: an infinite coverage, a diverged KL).
    pub fn metrics_line(&self, record: &Record) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("run".into(), self.label.clone().into());
        if let Some(n) = self.n_total {
            m.insert("n_total".into(), n.into());
        }
        m.insert("round".into(), record.round.into());
        for (k, v) in &record.values {
            m.insert(k.clone(), json_number(*v));
        }
        m
    }

    /// Its row of `summary.json`: `label`, `n_total` (sampler runs), `rounds`, the last record's
    /// values and the run's own.
    pub fn summary_row(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("label".into(), self.label.clone().into());
        if let Some(n) = self.n_total {
            m.insert("n_total".into(), n.into());
        }
        m.insert("rounds".into(), self.records.len().into());
        for (k, v) in self
            .records
            .last()
            .map(|r| r.values.as_slice())
            .unwrap_or(&[])
        {
            m.insert(k.clone(), json_number(*v));
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), json_number(*v));
        }
        m
    }

    /// The last record's value `name`, else the run's extra value `name`.
    pub fn last(&self, name: &str) -> Option<f64> {
        self.records
            .last()
            .and_then(|r| r.get(name))
            .or_else(|| self.extra.iter().find(|(k, _)| k == name).map(|(_, v)| *v))
    }
}

/// A JSON number, or null for a non-finite value.
fn json_number(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// An alignment experiment of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum AlignConfig {
    /// Samplers fitted by DPO / reward distillation (B1, B2).
    Samplers(SamplerConfig),
    /// DPO's degeneracy against the distribution-learning objectives (B3).
    Degeneracy(DegeneracyConfig),
    /// GRPO at several KL weights (B4).
    Grpo(GrpoConfig),
    /// The ThinkSafe analogue (B5).
    ThinkSafe(ThinkSafeConfig),
    /// Multi-task preference optimisation (B6).
    Multitask(MultitaskConfig),
}

/// The names of the kinds, as `"experiment"` spells them.
pub const EXPERIMENTS: &[&str] = &["samplers", "degeneracy", "grpo", "thinksafe", "multitask"];

impl Serialize for AlignConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let value = match self {
            Self::Samplers(c) => serde_json::to_value(c),
            Self::Degeneracy(c) => serde_json::to_value(c),
            Self::Grpo(c) => serde_json::to_value(c),
            Self::ThinkSafe(c) => serde_json::to_value(c),
            Self::Multitask(c) => serde_json::to_value(c),
        }
        .map_err(S::Error::custom)?;
        let mut map = serde_json::Map::new();
        map.insert("experiment".into(), self.kind().into());
        if let serde_json::Value::Object(fields) = value {
            map.extend(fields);
        }
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for AlignConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut obj = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let kind = match obj.remove("experiment") {
            None => "samplers".to_string(),
            Some(serde_json::Value::String(k)) if EXPERIMENTS.contains(&k.as_str()) => k,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "experiment: {} is not one of {}",
                    crate::tagged::kind(&other),
                    EXPERIMENTS.join(", ")
                )))
            }
        };
        let rest = serde_json::Value::Object(obj);
        match kind.as_str() {
            "samplers" => crate::tagged::from_value(rest).map(Self::Samplers),
            "degeneracy" => crate::tagged::from_value(rest).map(Self::Degeneracy),
            "grpo" => crate::tagged::from_value(rest).map(Self::Grpo),
            "thinksafe" => crate::tagged::from_value(rest).map(Self::ThinkSafe),
            _ => crate::tagged::from_value(rest).map(Self::Multitask),
        }
        .map_err(D::Error::custom)
    }
}

impl AlignConfig {
    /// Its `"experiment"` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Samplers(_) => "samplers",
            Self::Degeneracy(_) => "degeneracy",
            Self::Grpo(_) => "grpo",
            Self::ThinkSafe(_) => "thinksafe",
            Self::Multitask(_) => "multitask",
        }
    }

    /// The seed of every draw.
    pub fn seed_mut(&mut self) -> &mut u64 {
        match self {
            Self::Samplers(c) => &mut c.seed,
            Self::Degeneracy(c) => &mut c.seed,
            Self::Grpo(c) => &mut c.seed,
            Self::ThinkSafe(c) => &mut c.seed,
            Self::Multitask(c) => &mut c.seed,
        }
    }

    /// Checks every field.
    pub fn build(&self) -> Result<(), ConfigError> {
        match self {
            Self::Samplers(c) => c.build().map(drop),
            Self::Degeneracy(c) => c.validate(),
            Self::Grpo(c) => c.build().map(drop),
            Self::ThinkSafe(c) => c.validate(),
            Self::Multitask(c) => c.build().map(drop),
        }
    }

    /// How many runs it has.
    pub fn runs(&self) -> usize {
        match self {
            Self::Samplers(c) => c.runs.len(),
            Self::Degeneracy(c) => c.betas.len() + 3,
            Self::Grpo(c) => c.kl_coefs.len(),
            Self::ThinkSafe(_) => super::thinksafe::RUNS.len(),
            Self::Multitask(c) => c.weights.len(),
        }
    }

    /// Runs it on the CPU, calling `each` with every run as it finishes.
    pub fn run(&self, each: impl FnMut(&RunResult)) -> Result<Vec<RunResult>, AlignError> {
        self.run_on(&mut Cpu, each)
    }

    /// Run `i` alone ([`AlignConfig::runs`] of them), on the CPU: what the explorer steps for
    /// the kinds without rounds to step. The same result as the `i`-th of [`AlignConfig::run`].
    pub fn run_one(&self, i: usize) -> Result<RunResult, AlignError> {
        let pick = |mut all: Vec<RunResult>| {
            if i < all.len() {
                Ok(all.swap_remove(i))
            } else {
                Err(AlignError::Config(ConfigError::invalid(
                    "run",
                    i,
                    format!("the experiment has {} runs", all.len()),
                )))
            }
        };
        match self {
            Self::Samplers(c) => {
                if i >= c.runs.len() {
                    return pick(vec![]).map_err(|_| {
                        AlignError::Config(ConfigError::invalid(
                            "run",
                            i,
                            format!("the experiment has {} runs", c.runs.len()),
                        ))
                    });
                }
                let mut one = c.clone();
                one.runs = vec![c.runs[i].clone()];
                Ok(one.run_all(&mut Cpu, |_| {})?.remove(0))
            }
            Self::Grpo(c) if i < c.kl_coefs.len() => Ok(c.run_index(i)?),
            Self::ThinkSafe(c) if i < super::thinksafe::RUNS.len() => Ok(c.run_index(i)?),
            // B3 and B6 share work between their runs and take milliseconds: run them whole.
            _ => pick(self.run(|_| {})?),
        }
    }

    /// Whether it can use a device's kernels: a sampler experiment with a first-order fit (the
    /// other kinds and the Newton fit are f64 on the host).
    pub fn uses_device(&self) -> bool {
        matches!(self, Self::Samplers(c) if matches!(c.fit, Fit::FirstOrder(_)))
    }

    /// Runs it with the device work on `dev` ([`AlignConfig::uses_device`]), calling `each`
    /// with every run as it finishes.
    pub fn run_on<D: Device + 'static>(
        &self,
        dev: &mut D,
        each: impl FnMut(&RunResult),
    ) -> Result<Vec<RunResult>, AlignError> {
        Ok(match self {
            Self::Samplers(c) => c.run_all(dev, each)?,
            Self::Degeneracy(c) => c.run(each)?,
            Self::Grpo(c) => c.run(each)?,
            Self::ThinkSafe(c) => c.run(each)?,
            Self::Multitask(c) => c.run(each)?,
        })
    }
}

/// One run: a sampler with its budget of labelled pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlignRun {
    /// Its name (unique together with `n_total`).
    pub label: String,
    /// Where its pairs come from.
    pub sampler: Sampler,
    /// Labelled pairs in all.
    pub n_total: usize,
    /// What each round's fit minimises (default DPO).
    #[serde(default)]
    pub objective: Objective,
}

impl AlignRun {
    /// Its rounds as `optiscope align` reports them (and the explorer shows them).
    pub fn result(&self, rounds: &[Round]) -> RunResult {
        RunResult {
            label: self.label.clone(),
            n_total: Some(self.n_total),
            records: rounds
                .iter()
                .map(|r| {
                    Record::new(
                        r.round,
                        &[
                            ("samples", r.samples as f64),
                            ("kl", r.kl),
                            ("entropy", r.entropy),
                            ("theta_err", r.theta_err),
                            ("c_inf", r.c_inf),
                            ("c_feat", r.c_feat),
                        ],
                    )
                })
                .collect(),
            extra: vec![],
        }
    }
}

/// Sampler runs on one bandit (spec B1, B2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// Contexts.
    pub n_ctx: usize,
    /// Arms per context.
    pub k: usize,
    /// The features.
    pub features: FeatureKind,
    /// θ_ref (length d).
    pub theta_ref: Vec<f64>,
    /// θ*, the target π* = π_{θ*} (by default labels are Bradley–Terry with
    /// `r = β(θ* − θ_ref)ᵀφ`, whose KL-regularised optimum is π*).
    pub theta_star: Vec<f64>,
    /// DPO's β (> 0).
    pub beta: f64,
    /// Ridge of the Newton fit on `w = β(θ − θ_ref)`.
    #[serde(default = "default_ridge")]
    pub ridge: f64,
    /// Seed of every draw (the same for every run, so that runs are paired).
    #[serde(default)]
    pub seed: u64,
    /// How the labels are drawn (default Bradley–Terry; `gamma`: the γ-model of spec B3).
    #[serde(default)]
    pub labels: Labels,
    /// How each round's DPO fit is solved (default Newton on the host; `first_order` runs on
    /// the chosen device, the GPU with `--backend gpu`). Reward-distillation runs are fitted on
    /// the host whatever this says.
    #[serde(default)]
    pub fit: Fit,
    /// The runs.
    pub runs: Vec<AlignRun>,
}

fn default_ridge() -> f64 {
    1e-4
}

/// The largest budget of one run.
pub const MAX_PAIRS: usize = 10_000_000;

/// The most values a run's labelled pairs may hold (`n_total · d` f64 feature differences).
pub const MAX_PAIR_VALUES: usize = 1 << 26;

/// The most work of a round's coverage (`n_ctx · K² · d`) and of the hybrid's design over every
/// arm pair (`n_ctx · K(K−1)/2 · d` values).
pub const MAX_PAIR_TABLE: usize = 1 << 27;

impl SamplerConfig {
    /// The bandit, after checking every field.
    pub fn build(&self) -> Result<Bandit, ConfigError> {
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return Err(ConfigError::invalid(
                "beta",
                self.beta,
                "must be a finite number > 0",
            ));
        }
        if !(self.ridge.is_finite() && self.ridge >= 0.0) {
            return Err(ConfigError::invalid(
                "ridge",
                self.ridge,
                "must be a finite number >= 0",
            ));
        }
        let bandit = Bandit::new(self.n_ctx, self.k, &self.features)?;
        for (field, v) in [
            ("theta_ref", &self.theta_ref),
            ("theta_star", &self.theta_star),
        ] {
            if v.len() != bandit.d || v.iter().any(|x| !x.is_finite()) {
                return Err(ConfigError::invalid(
                    field,
                    format!("{} values", v.len()),
                    format!(
                        "needs d = {} finite numbers (the features' dimension)",
                        bandit.d
                    ),
                ));
            }
        }
        if let Fit::FirstOrder(f) = &self.fit {
            f.validate("fit")?;
            // The kernels address the [n_ctx·K] tables by f32 indices, exact below 2^24.
            if bandit.n_ctx * bandit.k > 1 << 24 {
                return Err(ConfigError::invalid(
                    "fit",
                    "first_order",
                    format!(
                        "needs n_ctx × k ≤ {} (the device kernels' row indices); use newton",
                        1 << 24
                    ),
                ));
            }
        }
        let table = bandit
            .n_ctx
            .checked_mul(bandit.k * bandit.k)
            .and_then(|v| v.checked_mul(bandit.d));
        if table.is_none_or(|t| t > MAX_PAIR_TABLE) {
            return Err(ConfigError::invalid(
                "k",
                bandit.k,
                format!(
                    "n_ctx × k² × d (every arm pair's features, for the coverage and the hybrid's \
                     design) must be at most {MAX_PAIR_TABLE}"
                ),
            ));
        }
        if let Labels::Gamma { gamma } = self.labels {
            if !(gamma.is_finite() && gamma > 0.0) {
                return Err(ConfigError::invalid(
                    "labels.gamma",
                    gamma,
                    "must be a finite number > 0",
                ));
            }
        }
        if self.runs.is_empty() {
            return Err(ConfigError::invalid("runs", "[]", "needs at least one run"));
        }
        for (i, r) in self.runs.iter().enumerate() {
            let field = |f: &str| format!("runs[{i}].{f}");
            if self.runs[..i]
                .iter()
                .any(|o| o.label == r.label && o.n_total == r.n_total)
            {
                return Err(ConfigError::invalid(
                    field("label"),
                    &r.label,
                    "label and n_total together must be unique",
                ));
            }
            let least = match r.sampler {
                Sampler::Offline => 1,
                Sampler::OnPolicy { rounds, .. } => {
                    if rounds == 0 {
                        return Err(ConfigError::invalid(
                            field("sampler.rounds"),
                            0,
                            "must be at least 1",
                        ));
                    }
                    rounds
                }
                Sampler::Hybrid => 2,
            };
            if !(least..=MAX_PAIRS).contains(&r.n_total) {
                return Err(ConfigError::invalid(
                    field("n_total"),
                    r.n_total,
                    format!("must be in {least}..={MAX_PAIRS} (at least one pair per round)"),
                ));
            }
            if r.n_total.saturating_mul(bandit.d) > MAX_PAIR_VALUES {
                return Err(ConfigError::invalid(
                    field("n_total"),
                    r.n_total,
                    format!("n_total × d must be at most {MAX_PAIR_VALUES} (the pairs' features)"),
                ));
            }
        }
        Ok(bandit)
    }

    /// Runs every run in order on `dev` (which only a first-order fit uses), calling `each`
    /// with its index and rounds as it finishes.
    pub fn run_on<D: Device + 'static>(
        &self,
        dev: &mut D,
        mut each: impl FnMut(usize, &[Round]),
    ) -> Result<Vec<Vec<Round>>, AlignError> {
        let bandit = self.build()?;
        let problem = Problem {
            bandit: &bandit,
            theta_ref: &self.theta_ref,
            theta_star: &self.theta_star,
            beta: self.beta,
            ridge: self.ridge,
            labels: self.labels,
        };
        let mut out = Vec::with_capacity(self.runs.len());
        for (i, r) in self.runs.iter().enumerate() {
            let rounds = match (&self.fit, r.objective) {
                (Fit::FirstOrder(f), Objective::Dpo) => {
                    problem.run_on(dev, f, r.sampler, r.n_total, self.seed)?
                }
                // Reward distillation (a Newton reward model and least squares) is host-only.
                _ => problem.run_with(r.sampler, r.objective, r.n_total, self.seed),
            };
            each(i, &rounds);
            out.push(rounds);
        }
        Ok(out)
    }

    fn run_all<D: Device + 'static>(
        &self,
        dev: &mut D,
        mut each: impl FnMut(&RunResult),
    ) -> Result<Vec<RunResult>, AlignError> {
        let mut results = vec![];
        self.run_on(dev, |i, rounds| {
            let result = self.runs[i].result(rounds);
            each(&result);
            results.push(result);
        })?;
        Ok(results)
    }
}

/// A preset's name and what it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlignPresetInfo {
    /// The name.
    pub name: &'static str,
    /// What it shows.
    pub summary: &'static str,
}

/// The presets of `optiscope align`.
pub const ALIGN_PRESETS: &[AlignPresetInfo] = &[
    AlignPresetInfo {
        name: "coverage",
        summary: "spec B2a: tabular K = 10, π_ref blind to π*'s arms (C_inf = 574): offline, on-policy T = 2, 4 and the two-round hybrid at 20 000 and 80 000 pairs",
    },
    AlignPresetInfo {
        name: "rich-features",
        summary: "spec B2b: 50 contexts, 20 arms, Gaussian features in R^5: C_inf ~ 1e5 yet offline DPO converges (feature-space coverage is what matters); on-policy DPO and on-policy reward distillation beside it",
    },
    AlignPresetInfo {
        name: "degeneracy",
        summary: "spec B3: population DPO at β = 1 … 0.05 sharpens π* (γ = 1) towards one arm; on 12 pairs with never-winning arms PMLE's logits diverge while preference distillation and reverse KL stay bounded and agree",
    },
    AlignPresetInfo {
        name: "grpo",
        summary: "spec B4: GRPO (group advantages, clipped ratio, k3 KL) on a 6-arm Bernoulli bandit at KL weights 0.2 … 0: mode-seeking, π(best) → 1 as the weight → 0",
    },
    AlignPresetInfo {
        name: "thinksafe",
        summary: "spec B5: harmful and benign contexts, refusal by rejection, prompt tilt (ω = 8) or activation steering, SFT on self-generated accepted samples with forward KL on benign contexts, against a teacher's samples",
    },
    AlignPresetInfo {
        name: "multitask",
        summary: "spec B6: forward-KL distillation from a teacher seeing other features, then DPO over two conflicting preference sets; each task's KL as the weights move",
    },
];

fn run(label: &str, sampler: Sampler, n_total: usize) -> AlignRun {
    AlignRun {
        label: label.into(),
        sampler,
        n_total,
        objective: Objective::Dpo,
    }
}

const ON_POLICY_T4: Sampler = Sampler::OnPolicy {
    rounds: 4,
    cumulative: false,
};

/// The preset called `name`.
pub fn align_preset(name: &str) -> Option<AlignConfig> {
    match name {
        "coverage" => {
            let mut runs = vec![];
            for n_total in [20_000, 80_000] {
                runs.push(run("offline", Sampler::Offline, n_total));
                runs.push(run(
                    "on-policy-T2",
                    Sampler::OnPolicy {
                        rounds: 2,
                        cumulative: false,
                    },
                    n_total,
                ));
                runs.push(run("on-policy-T4", ON_POLICY_T4, n_total));
                runs.push(run("hybrid", Sampler::Hybrid, n_total));
            }
            Some(AlignConfig::Samplers(SamplerConfig {
                n_ctx: 1,
                k: 10,
                features: FeatureKind::OneHot,
                theta_ref: vec![-3.0, -3.0, -3.0, -3.0, -3.0, 3.0, 3.0, 3.0, 3.0, 3.0],
                theta_star: vec![
                    0.505, 0.816, 1.644, 1.097, 1.460, -1.0, -1.0, -1.0, -1.0, -1.0,
                ],
                beta: 0.1,
                ridge: 1e-4,
                seed: 0,
                labels: Labels::BradleyTerry,
                fit: Fit::Newton,
                runs,
            }))
        }
        "rich-features" => {
            // u: a random unit vector (drawn once here and stored in the config).
            let rng = Philox::new(2);
            let u: Vec<f64> = (0..5).map(|i| f64::from(rng.normal_at(1, i))).collect();
            let norm = u.iter().map(|v| v * v).sum::<f64>().sqrt();
            let u: Vec<f64> = u.iter().map(|v| v / norm).collect();
            let mut distill = run("on-policy-T4-reward-distillation", ON_POLICY_T4, 4000);
            distill.objective = Objective::RewardDistillation;
            Some(AlignConfig::Samplers(SamplerConfig {
                n_ctx: 50,
                k: 20,
                features: FeatureKind::Gaussian {
                    d: 5,
                    scale: 1.0,
                    seed: 0,
                },
                theta_ref: u.iter().map(|v| -2.0 * v).collect(),
                theta_star: u.iter().map(|v| 2.0 * v).collect(),
                beta: 1.0,
                ridge: 1e-4,
                seed: 0,
                labels: Labels::BradleyTerry,
                fit: Fit::Newton,
                runs: vec![
                    run("offline", Sampler::Offline, 4000),
                    run("on-policy-T4", ON_POLICY_T4, 4000),
                    distill,
                ],
            }))
        }
        "degeneracy" => Some(AlignConfig::Degeneracy(DegeneracyConfig::spec())),
        "grpo" => Some(AlignConfig::Grpo(GrpoConfig::preset())),
        "thinksafe" => Some(AlignConfig::ThinkSafe(ThinkSafeConfig::preset())),
        "multitask" => Some(AlignConfig::Multitask(MultitaskConfig::preset())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coverage() -> SamplerConfig {
        match align_preset("coverage") {
            Some(AlignConfig::Samplers(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_preset_builds_and_bad_configs_name_the_field() {
        for p in ALIGN_PRESETS {
            align_preset(p.name).unwrap().build().unwrap();
        }
        let mut c = coverage();
        c.beta = 0.0;
        assert!(c.build().unwrap_err().to_string().contains("beta"));
        let mut c = coverage();
        c.theta_star.pop();
        assert!(c.build().unwrap_err().to_string().contains("theta_star"));
        let mut c = coverage();
        c.runs[1].n_total = 1;
        let e = c.build().unwrap_err().to_string();
        assert!(
            e.contains("runs[1].n_total") && e.contains("one pair per round"),
            "{e}"
        );
        let mut c = coverage();
        c.runs[1].label = "offline".into();
        assert!(c.build().unwrap_err().to_string().contains("unique"));
    }

    #[test]
    fn configs_round_trip_through_json_with_their_tag_and_untagged_ones_are_samplers() {
        for p in ALIGN_PRESETS {
            let c = align_preset(p.name).unwrap();
            let json = serde_json::to_string(&c).unwrap();
            assert!(
                json.starts_with(&format!("{{\"experiment\":\"{}\"", c.kind())),
                "{json}"
            );
            let back: AlignConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back, c, "{}", p.name);
        }
        let untagged = serde_json::to_string(&coverage()).unwrap();
        let back: AlignConfig = serde_json::from_str(&untagged).unwrap();
        assert_eq!(back, AlignConfig::Samplers(coverage()));
        let e = serde_json::from_str::<AlignConfig>(r#"{"experiment": "ppo"}"#).unwrap_err();
        assert!(e.to_string().contains("not one of samplers"), "{e}");
        let e = serde_json::from_str::<AlignConfig>(
            &untagged.replace(r#""beta":0.1"#, r#""beta":"big""#),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("beta: invalid type"), "{e}");
    }

    #[test]
    fn one_run_alone_is_that_run_of_the_whole() {
        for name in [
            "rich-features",
            "degeneracy",
            "grpo",
            "thinksafe",
            "multitask",
        ] {
            let c = align_preset(name).unwrap();
            let all = c.run(|_| {}).unwrap();
            assert_eq!(all.len(), c.runs(), "{name}");
            for (i, r) in all.iter().enumerate() {
                assert_eq!(&c.run_one(i).unwrap(), r, "{name} run {i}");
            }
            assert!(c.run_one(all.len()).is_err());
        }
    }

    #[test]
    fn gamma_labels_make_dpo_fit_the_sharpened_target() {
        // Spec B3 in the sampler setting: γ-model labels (γ = 1) on the K = 6 toy, a flat
        // reference, β = 0.25, 400 000 offline pairs: DPO fits θ_ref + γθ*/β (to 0.1 after
        // centring; one-hot logits are defined up to a constant), below H(π*) in entropy.
        let star = vec![1.0, 0.5, 0.0, -0.5, -1.0, -1.5];
        let c = SamplerConfig {
            n_ctx: 1,
            k: 6,
            features: FeatureKind::OneHot,
            theta_ref: vec![0.0; 6],
            theta_star: star.clone(),
            beta: 0.25,
            ridge: 0.0,
            seed: 1,
            labels: Labels::Gamma { gamma: 1.0 },
            fit: Fit::Newton,
            runs: vec![run("offline", Sampler::Offline, 400_000)],
        };
        let rounds = c.run_on(&mut Cpu, |_, _| {}).unwrap().remove(0);
        let theta = &rounds[0].theta;
        let centre = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            v.iter().map(|x| x - m).collect::<Vec<_>>()
        };
        let want: Vec<f64> = star.iter().map(|s| s / 0.25).collect();
        for (t, w) in centre(theta).iter().zip(centre(&want)) {
            assert!((t - w).abs() < 0.1, "{theta:?}");
        }
        assert!(
            rounds[0].entropy < 1.4952429004191183 - 0.5,
            "{}",
            rounds[0].entropy
        );
        let mut bad = c.clone();
        bad.labels = Labels::Gamma { gamma: 0.0 };
        assert!(bad
            .build()
            .unwrap_err()
            .to_string()
            .contains("labels.gamma"));
    }
}
