//! An alignment experiment: one bandit, a reference and a target, and several sampler runs —
//! what `optiscope align` runs and writes (`config.json`, one metrics line per run per round,
//! `summary.json`).

use serde::{Deserialize, Serialize};

use super::bandit::{Bandit, FeatureKind};
use super::sampler::{Problem, Round, Sampler};
use crate::config::ConfigError;
use crate::rng::Philox;

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
}

/// An alignment experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlignConfig {
    /// Contexts.
    pub n_ctx: usize,
    /// Arms per context.
    pub k: usize,
    /// The features.
    pub features: FeatureKind,
    /// θ_ref (length d).
    pub theta_ref: Vec<f64>,
    /// θ*, the KL-regularised target (labels are Bradley–Terry with `r = β(θ* − θ_ref)ᵀφ`).
    pub theta_star: Vec<f64>,
    /// DPO's β (> 0).
    pub beta: f64,
    /// Ridge of the Newton fit on `w = β(θ − θ_ref)`.
    #[serde(default = "default_ridge")]
    pub ridge: f64,
    /// Seed of every draw (the same for every run, so that runs are paired).
    #[serde(default)]
    pub seed: u64,
    /// The runs.
    pub runs: Vec<AlignRun>,
}

fn default_ridge() -> f64 {
    1e-4
}

/// The largest budget of one run.
pub const MAX_PAIRS: usize = 10_000_000;

impl AlignConfig {
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
        }
        Ok(bandit)
    }

    /// Runs every run in order, calling `each` with its index and rounds as it finishes.
    pub fn run(
        &self,
        mut each: impl FnMut(usize, &[Round]),
    ) -> Result<Vec<Vec<Round>>, ConfigError> {
        let bandit = self.build()?;
        let problem = Problem {
            bandit: &bandit,
            theta_ref: &self.theta_ref,
            theta_star: &self.theta_star,
            beta: self.beta,
            ridge: self.ridge,
        };
        let mut out = Vec::with_capacity(self.runs.len());
        for (i, r) in self.runs.iter().enumerate() {
            let rounds = problem.run(r.sampler, r.n_total, self.seed);
            each(i, &rounds);
            out.push(rounds);
        }
        Ok(out)
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
        summary: "spec B2b: 50 contexts, 20 arms, Gaussian features in R^5: C_inf ~ 1e5 yet offline DPO converges (feature-space coverage is what matters)",
    },
];

/// The preset called `name`.
pub fn align_preset(name: &str) -> Option<AlignConfig> {
    match name {
        "coverage" => {
            let mut runs = vec![];
            for n_total in [20_000, 80_000] {
                for (label, sampler) in [
                    ("offline", Sampler::Offline),
                    (
                        "on-policy-T2",
                        Sampler::OnPolicy {
                            rounds: 2,
                            cumulative: false,
                        },
                    ),
                    (
                        "on-policy-T4",
                        Sampler::OnPolicy {
                            rounds: 4,
                            cumulative: false,
                        },
                    ),
                    ("hybrid", Sampler::Hybrid),
                ] {
                    runs.push(AlignRun {
                        label: label.into(),
                        sampler,
                        n_total,
                    });
                }
            }
            Some(AlignConfig {
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
                runs,
            })
        }
        "rich-features" => {
            // u: a random unit vector (drawn once here and stored in the config).
            let rng = Philox::new(2);
            let u: Vec<f64> = (0..5).map(|i| f64::from(rng.normal_at(1, i))).collect();
            let norm = u.iter().map(|v| v * v).sum::<f64>().sqrt();
            let u: Vec<f64> = u.iter().map(|v| v / norm).collect();
            Some(AlignConfig {
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
                runs: vec![
                    AlignRun {
                        label: "offline".into(),
                        sampler: Sampler::Offline,
                        n_total: 4000,
                    },
                    AlignRun {
                        label: "on-policy-T4".into(),
                        sampler: Sampler::OnPolicy {
                            rounds: 4,
                            cumulative: false,
                        },
                        n_total: 4000,
                    },
                ],
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_builds_and_bad_configs_name_the_field() {
        for p in ALIGN_PRESETS {
            align_preset(p.name).unwrap().build().unwrap();
        }
        let mut c = align_preset("coverage").unwrap();
        c.beta = 0.0;
        assert!(c.build().unwrap_err().to_string().contains("beta"));
        let mut c = align_preset("coverage").unwrap();
        c.theta_star.pop();
        assert!(c.build().unwrap_err().to_string().contains("theta_star"));
        let mut c = align_preset("coverage").unwrap();
        c.runs[1].n_total = 1;
        let e = c.build().unwrap_err().to_string();
        assert!(
            e.contains("runs[1].n_total") && e.contains("one pair per round"),
            "{e}"
        );
        let mut c = align_preset("coverage").unwrap();
        c.runs[1].label = "offline".into();
        assert!(c.build().unwrap_err().to_string().contains("unique"));
    }
}
