//! Experiments: a problem plus several runs from the same initialization, stepped together.
//!
//! The trainer calls [`Experiment::step`] until [`Experiment::is_done`]; the explorer calls it with
//! a per-frame budget. Both read the same [`Record`]s: loss and view data per run, measured at
//! the evaluation point (Schedule-Free's and AMUSE's averaged x).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::optim::{zeroth_order_step, ConfigError, Optimizer, OptimizerConfig, Param};
use crate::problems::{Observation, Problem, ProblemConfig};

/// One run: an optimizer with a label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Unique label (metrics and legends use it).
    pub label: String,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// A linear warmup of the learning rate over this many steps (`lr · min(1, t/warmup)`),
    /// applied on top of the optimizer (0 = none). Schedule-Free and AMUSE have their own.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lr_warmup_steps: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn default_steps() -> u64 {
    1000
}

fn default_record_every() -> u64 {
    1
}

/// A whole experiment: what `optiscope run` reads and writes as `config.json`, and what the
/// explorer keeps in its link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// The problem.
    pub problem: ProblemConfig,
    /// The runs, all from the same initial parameters.
    pub runs: Vec<RunConfig>,
    /// Number of optimizer steps.
    #[serde(default = "default_steps")]
    pub steps: u64,
    /// Seed of initialization and gradient noise.
    #[serde(default)]
    pub seed: u64,
    /// Record loss and view data every this many steps (and at the last step).
    #[serde(default = "default_record_every")]
    pub record_every: u64,
}

/// What an experiment measured for one run at one step, at the evaluation point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Steps taken (0 = the initial point).
    pub step: u64,
    /// Loss.
    pub loss: f64,
    /// View data.
    pub observation: Observation,
}

/// Where and how a run diverged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// The step whose result was not finite.
    pub step: u64,
    /// The loss there (NaN or ±inf).
    pub loss: f64,
}

/// Where and why a run's optimizer failed (e.g. SpecGD's SVD on infinite gradients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The step that could not be taken.
    pub step: u64,
    /// The optimizer's error.
    pub error: String,
}

/// An experiment cannot be built.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ExperimentError {
    /// The problem config is unusable.
    #[error("problem.{0}")]
    Problem(ConfigError),
    /// A run's optimizer config is unusable.
    #[error("runs[{index}] ({label}).optimizer.{source}")]
    Optimizer {
        /// Index of the run.
        index: usize,
        /// Its label.
        label: String,
        /// What is wrong.
        source: ConfigError,
    },
    /// Something else in the experiment config.
    #[error(transparent)]
    Invalid(ConfigError),
}

/// The most records a run keeps (`steps / record_every`), checked before stepping.
pub const MAX_RECORDS: u64 = 10_000_000;

/// Builds a run's optimizer from its config and the initial parameters.
pub type OptimizerFactory<'a> =
    dyn Fn(&OptimizerConfig, &[Param]) -> Result<Box<dyn Optimizer>, ConfigError> + 'a;

/// One run being stepped.
pub struct Run {
    /// The run's config.
    pub config: RunConfig,
    params: Vec<Param>,
    optimizer: Box<dyn Optimizer>,
    history: Vec<Record>,
    diverged: Option<Divergence>,
    failed: Option<Failure>,
}

impl Run {
    /// Everything recorded so far, oldest first.
    pub fn history(&self) -> &[Record] {
        &self.history
    }

    /// Where the run diverged, if it did.
    pub fn diverged(&self) -> Option<Divergence> {
        self.diverged
    }

    /// Where and why its optimizer failed, if it did.
    pub fn failed(&self) -> Option<&Failure> {
        self.failed.as_ref()
    }

    /// Whether the run has stopped early (diverged or failed): it takes no more steps.
    pub fn stopped(&self) -> bool {
        self.diverged.is_some() || self.failed.is_some()
    }

    /// The current parameters (in train mode: the gradient point).
    pub fn params(&self) -> &[Param] {
        &self.params
    }
}

/// What one call of [`Experiment::step`] produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepReport {
    /// New records, as (run index, record).
    pub records: Vec<(usize, Record)>,
    /// Runs that diverged during this call, as (run index, divergence).
    pub diverged: Vec<(usize, Divergence)>,
    /// Runs whose optimizer failed during this call, as (run index, failure).
    pub failed: Vec<(usize, Failure)>,
}

/// A problem and its runs.
pub struct Experiment {
    config: ExperimentConfig,
    problem: Box<dyn Problem>,
    runs: Vec<Run>,
    step: u64,
}

impl Experiment {
    /// Validates `config`, builds the problem and every run's optimizer (the CPU executor), and
    /// records step 0.
    pub fn new(config: ExperimentConfig) -> Result<Self, ExperimentError> {
        Self::with_executor(config, &|cfg, params| cfg.build(params))
    }

    /// [`Self::new`] with the optimizers built by `build` (e.g. the GPU executor of
    /// `optiscope-gpu`).
    pub fn with_executor(
        config: ExperimentConfig,
        build: &OptimizerFactory<'_>,
    ) -> Result<Self, ExperimentError> {
        if config.runs.is_empty() {
            return Err(ExperimentError::Invalid(ConfigError::invalid(
                "runs",
                "[]",
                "needs at least one run",
            )));
        }
        if config.record_every == 0 {
            return Err(ExperimentError::Invalid(ConfigError::invalid(
                "record_every",
                0,
                "must be >= 1",
            )));
        }
        // Every run keeps its records in memory (the views draw them): bound their number.
        if config.steps / config.record_every > MAX_RECORDS {
            return Err(ExperimentError::Invalid(ConfigError::invalid(
                "steps",
                config.steps,
                format!(
                    "at most {MAX_RECORDS} records per run: steps / record_every must be <= \
                     {MAX_RECORDS} (record_every is {})",
                    config.record_every
                ),
            )));
        }
        for (i, r) in config.runs.iter().enumerate() {
            if config.runs[..i].iter().any(|o| o.label == r.label) {
                return Err(ExperimentError::Invalid(ConfigError::invalid(
                    format!("runs[{i}].label"),
                    &r.label,
                    "labels must be unique",
                )));
            }
        }
        let problem = config
            .problem
            .build(config.seed)
            .map_err(ExperimentError::Problem)?;
        let init = problem.init_params();
        let mut runs = Vec::with_capacity(config.runs.len());
        for (index, rc) in config.runs.iter().enumerate() {
            let optimizer =
                build(&rc.optimizer, &init).map_err(|source| ExperimentError::Optimizer {
                    index,
                    label: rc.label.clone(),
                    source,
                })?;
            let params = init.clone();
            let values: Vec<_> = params.iter().map(|p| p.value.clone()).collect();
            let record = Record {
                step: 0,
                loss: problem.loss(&values),
                observation: problem.observe(&values),
            };
            runs.push(Run {
                config: rc.clone(),
                params,
                optimizer,
                history: vec![record],
                diverged: None,
                failed: None,
            });
        }
        Ok(Self {
            config,
            problem,
            runs,
            step: 0,
        })
    }

    /// Advances every run that has not stopped by up to `n` steps (never past `config.steps`).
    /// A run whose loss becomes NaN or infinite, or whose optimizer fails, stops there (its
    /// records so far stay); the others go on.
    pub fn step(&mut self, n: u64) -> StepReport {
        let mut report = StepReport::default();
        let n = n.min(self.config.steps.saturating_sub(self.step));
        for _ in 0..n {
            let t = self.step + 1;
            let record_now = t % self.config.record_every == 0 || t == self.config.steps;
            for (i, run) in self.runs.iter_mut().enumerate() {
                if run.stopped() {
                    continue;
                }
                let warmup = run.config.lr_warmup_steps;
                if warmup > 0 {
                    run.optimizer
                        .set_lr_scale((t as f64 / warmup as f64).min(1.0));
                }
                let stepped = if run.optimizer.zeroth_order().is_some() {
                    // MeZO: two losses at the step's perturbations, no gradient.
                    let problem = self.problem.as_ref();
                    zeroth_order_step(
                        run.optimizer.as_mut(),
                        &mut run.params,
                        self.config.seed,
                        self.step,
                        |values| problem.loss(values),
                    )
                    .map(|_| ())
                } else {
                    let values: Vec<_> = run.params.iter().map(|p| p.value.clone()).collect();
                    let grads = self.problem.gradient(&values, self.step);
                    run.optimizer.step(&mut run.params, &grads)
                };
                if let Err(e) = stepped {
                    let f = Failure {
                        step: t,
                        error: e.to_string(),
                    };
                    run.failed = Some(f.clone());
                    report.failed.push((i, f));
                    continue;
                }
                let eval = run.optimizer.eval_params(&run.params);
                let loss = self.problem.loss(&eval);
                if !loss.is_finite() || eval.iter().any(|p| !p.all_finite()) {
                    let d = Divergence { step: t, loss };
                    run.diverged = Some(d);
                    report.diverged.push((i, d));
                    continue;
                }
                if record_now {
                    let record = Record {
                        step: t,
                        loss,
                        observation: self.problem.observe(&eval),
                    };
                    run.history.push(record.clone());
                    report.records.push((i, record));
                }
            }
            self.step = t;
        }
        report
    }

    /// Steps taken.
    pub fn current_step(&self) -> u64 {
        self.step
    }

    /// Whether every step of the config has been taken.
    pub fn is_done(&self) -> bool {
        self.step >= self.config.steps
    }

    /// The config.
    pub fn config(&self) -> &ExperimentConfig {
        &self.config
    }

    /// The problem.
    pub fn problem(&self) -> &dyn Problem {
        self.problem.as_ref()
    }

    /// The runs.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// One summary line per run.
    pub fn summary(&self) -> Vec<RunSummary> {
        let targets = self.problem.spectrum_targets();
        self.runs
            .iter()
            .map(|r| RunSummary::of(r, targets))
            .collect()
    }
}

/// What a run achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's label.
    pub label: String,
    /// The optimizer's name.
    pub optimizer: String,
    /// Steps recorded last.
    pub last_step: u64,
    /// Loss at the last record.
    pub final_loss: f64,
    /// Mean loss over the last 10 % of the records (a noise-robust end value).
    pub tail_mean_loss: f64,
    /// The smallest recorded loss.
    pub min_loss: f64,
    /// The last point of a 2-D problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_point: Option<[f64; 2]>,
    /// Factorizations: for each target singular value (largest first), the first recorded step
    /// at which σᵢ(BA) ≥ 0.9 · targetᵢ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hitting_steps: Option<Vec<Option<u64>>>,
    /// Where the run diverged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diverged: Option<Divergence>,
    /// Where and why its optimizer failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Failure>,
}

impl RunSummary {
    fn of(run: &Run, targets: Option<&[f64]>) -> Self {
        let h = &run.history;
        let last = h
            .last()
            .unwrap_or_else(|| unreachable!("step 0 is recorded when the run is built"));
        let tail = &h[h.len() - (h.len() / 10).max(1)..];
        let hitting_steps = targets.map(|t| {
            (0..t.len())
                .map(|i| {
                    h.iter()
                        .find(|r| matches!(&r.observation, Observation::SingularValues(s) if s.get(i).is_some_and(|&v| v >= 0.9 * t[i])))
                        .map(|r| r.step)
                })
                .collect()
        });
        Self {
            label: run.config.label.clone(),
            optimizer: run.config.optimizer.name().into(),
            last_step: last.step,
            final_loss: last.loss,
            tail_mean_loss: tail.iter().map(|r| r.loss).sum::<f64>() / tail.len() as f64,
            min_loss: h.iter().map(|r| r.loss).fold(f64::INFINITY, f64::min),
            final_point: match last.observation {
                Observation::Point(p) => Some(p),
                _ => None,
            },
            hitting_steps,
            diverged: run.diverged,
            failed: run.failed.clone(),
        }
    }

    /// "largest-first", "smallest-first" or "mixed", from the hitting steps (unreached modes last).
    pub fn hitting_order(&self) -> Option<&'static str> {
        let h = self.hitting_steps.as_ref()?;
        let key: Vec<u64> = h.iter().map(|s| s.unwrap_or(u64::MAX)).collect();
        if key.windows(2).all(|w| w[0] < w[1]) {
            Some("largest-first")
        } else if key.windows(2).all(|w| w[0] > w[1]) {
            Some("smallest-first")
        } else {
            Some("mixed")
        }
    }
}

pub mod presets;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimError;
    use crate::tensor::Tensor;

    /// An optimizer that fails at its `fail_at`-th step (1-based) and is plain SGD before.
    struct FailsAt {
        inner: Box<dyn Optimizer>,
        fail_at: u64,
    }

    impl Optimizer for FailsAt {
        fn step(&mut self, params: &mut [Param], grads: &[Tensor]) -> Result<(), OptimError> {
            if self.inner.steps_taken() + 1 == self.fail_at {
                return Err(OptimError::Device("the device was lost".into()));
            }
            self.inner.step(params, grads)
        }
        fn set_lr_scale(&mut self, scale: f64) {
            self.inner.set_lr_scale(scale);
        }
        fn steps_taken(&self) -> u64 {
            self.inner.steps_taken()
        }
    }

    /// One run's optimizer error stops that run with its records and a `failed` summary; the
    /// others go on to the end (before, the error stopped every run).
    #[test]
    fn a_failing_run_stops_alone() {
        let mut cfg = presets::preset("saddle").unwrap_or_else(|| unreachable!());
        cfg.steps = 30;
        let bad = cfg.runs[1].label.clone();
        let mut e = Experiment::with_executor(cfg.clone(), &|c, p| {
            let inner = c.build(p)?;
            Ok(if c == &cfg.runs[1].optimizer {
                Box::new(FailsAt { inner, fail_at: 8 })
            } else {
                inner
            })
        })
        .unwrap();
        let mut failed = vec![];
        while !e.is_done() {
            failed.extend(e.step(7).failed);
        }
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, 1);
        assert_eq!(failed[0].1.step, 8);
        let summary = e.summary();
        for (i, (run, s)) in e.runs().iter().zip(&summary).enumerate() {
            if i == 1 {
                assert_eq!(s.label, bad);
                assert_eq!(run.history().last().map(|r| r.step), Some(7));
                assert!(s.failed.as_ref().is_some_and(|f| f.error.contains("lost")));
            } else {
                assert_eq!(
                    run.history().last().map(|r| r.step),
                    Some(30),
                    "{}",
                    s.label
                );
                assert!(s.failed.is_none() && s.diverged.is_none());
            }
        }
    }
}
