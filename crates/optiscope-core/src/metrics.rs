//! The files optiscope writes and reads back, defined once: the CLI writes these lines, the
//! explorer reads them, and other tools read them as JSON.
//!
//! - `optiscope run`: `metrics.jsonl`, one [`RunRecordLine`] per run per recorded step, and
//!   `summary.json`, a list of [`crate::experiment::RunSummary`];
//! - `optiscope train`: `metrics.jsonl`, one [`EpochLine`] per finished epoch;
//! - `optiscope train --model gpt`: `metrics.jsonl`, one [`LmStepLine`] per step, an
//!   [`LmEvalLine`] per evaluation and an [`LmSpectraLine`] every `spectra_every` steps.
//!
//! Non-finite numbers are written as `null` (JSON has no NaN); readers must expect it. The record
//! types themselves ([`Observation`], [`EpochMetrics`], [`LayerStats`]) are defined here, in the
//! base layer, and used by the problems, the trainer and the experiments above it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a view draws for one run at one step, measured at the evaluation point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observation {
    /// The current point of a 2-D problem.
    Point([f64; 2]),
    /// Singular values of the product of a factorization, largest first.
    SingularValues(Vec<f64>),
}

/// One finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: u64,
    /// Mean minibatch loss over the epoch (training forward).
    pub train_loss: f64,
    /// Accuracy of the training forward over the epoch.
    pub train_accuracy: f64,
    /// Test loss with hard-quantized weights.
    pub test_loss: f64,
    /// Test accuracy with hard-quantized weights.
    pub test_accuracy: f64,
    /// Per weight layer: bits, step, near-grid fraction, quantization MSE.
    pub layers: Vec<LayerStats>,
}

/// Quantization statistics of one weight matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// Effective bit-width (learned with `learn_bits`).
    pub bits: u32,
    /// Grid step α.
    pub alpha: f64,
    /// Fraction of weights within 0.1·α of their grid point.
    pub near_frac: f64,
    /// Mean squared quantization error.
    pub mse: f64,
    /// Share of the layer's (latent) weights that are exactly zero (ProxGen's sparsity; 0 in
    /// files written before it was recorded).
    #[serde(default)]
    pub sparsity: f64,
}

/// One line of a run's `metrics.jsonl`:
/// `{"run": "muon", "step": 10, "loss": 0.12, "point": [x, y]}` (2-D problems) or
/// `"singular_values": [...]` (factorizations).
#[derive(Debug, Clone, Serialize)]
pub struct RunRecordLine<'a> {
    /// The run's label.
    pub run: &'a str,
    /// Steps taken (0 = the initial point).
    pub step: u64,
    /// Loss at the evaluation point.
    pub loss: f64,
    /// What the views draw: `point` or `singular_values`.
    #[serde(flatten)]
    pub observation: &'a Observation,
}

/// One line of a training run's `metrics.jsonl`: the epoch's metrics (`epoch`, `train_loss`,
/// `train_accuracy`, `test_loss`, `test_accuracy`, `layers`) and its timings.
#[derive(Debug, Clone, Serialize)]
pub struct EpochLine<'a> {
    /// The epoch's metrics.
    #[serde(flatten)]
    pub metrics: &'a EpochMetrics,
    /// Training samples per second of this epoch (minibatch steps only, evaluation excluded).
    pub samples_per_s: f64,
    /// Wall-clock seconds of the epoch, evaluation included.
    pub seconds: f64,
}

/// One language-model training step: `{"step", "train_loss", "lr", "tokens_per_s"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmStepLine {
    /// The step (1-based).
    pub step: u64,
    /// The mean cross-entropy of the batch this step used (nats per character).
    pub train_loss: f64,
    /// Its learning rate (the schedule applied).
    pub lr: f64,
    /// Training tokens per second over the read-back interval this step belongs to.
    pub tokens_per_s: f64,
}

/// One evaluation: `{"step", "val_loss"}` (after `step` steps; 0 is the initial model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmEvalLine {
    /// Steps taken.
    pub step: u64,
    /// The mean cross-entropy over the fixed validation windows, at the evaluation point.
    pub val_loss: f64,
}

/// Singular values of weight matrices: `{"step", "singular_values": {"name": [...]}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmSpectraLine {
    /// Steps taken.
    pub step: u64,
    /// Per matrix (parameter name), its singular values, largest first.
    pub singular_values: BTreeMap<String, Vec<f64>>,
}

/// One run's records read back from a run's `metrics.jsonl`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordedRun {
    /// (step, loss).
    pub loss: Vec<[f64; 2]>,
    /// The 2-D path, if recorded.
    pub path: Vec<[f64; 2]>,
    /// Singular values per recorded step, if recorded.
    pub singular_values: Vec<(u64, Vec<f64>)>,
}

/// A run's `metrics.jsonl`, read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunMetrics {
    /// The file's name (for messages).
    pub name: String,
    /// Runs by label.
    pub runs: BTreeMap<String, RecordedRun>,
    /// Records whose `point` or `singular_values` held something other than numbers (a NaN is
    /// written as `null`): their loss is kept, that part of them is skipped and counted here.
    pub skipped: usize,
}

/// Reads a run's `metrics.jsonl` (`name` is only for messages); errors name the line.
pub fn read_run_metrics(name: &str, text: &str) -> Result<RunMetrics, String> {
    let mut out = RunMetrics {
        name: name.into(),
        runs: BTreeMap::new(),
        skipped: 0,
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{name} line {}: {e}", i + 1))?;
        let field = |k: &str| {
            v.get(k).ok_or_else(|| {
                format!(
                    "{name} line {}: no \"{k}\" field (is this a metrics.jsonl of optiscope run?)",
                    i + 1
                )
            })
        };
        let run = field("run")?
            .as_str()
            .ok_or_else(|| format!("{name} line {}: \"run\" is not a string", i + 1))?
            .to_string();
        let step = field("step")?
            .as_u64()
            .ok_or_else(|| format!("{name} line {}: \"step\" is not an integer", i + 1))?;
        let loss = field("loss")?
            .as_f64()
            .ok_or_else(|| format!("{name} line {}: \"loss\" is not a number", i + 1))?;
        let entry = out.runs.entry(run).or_default();
        entry.loss.push([step as f64, loss]);
        // `Some(None)`: the field is there but is not an array of numbers.
        let numbers = |k: &str| {
            v.get(k).map(|a| {
                a.as_array().and_then(|a| {
                    a.iter()
                        .map(serde_json::Value::as_f64)
                        .collect::<Option<Vec<_>>>()
                })
            })
        };
        let mut skipped = false;
        match numbers("point") {
            Some(Some(p)) if p.len() == 2 => entry.path.push([p[0], p[1]]),
            Some(_) => skipped = true,
            None => {}
        }
        match numbers("singular_values") {
            Some(Some(s)) => entry.singular_values.push((step, s)),
            Some(None) => skipped = true,
            None => {}
        }
        out.skipped += usize::from(skipped);
    }
    if out.runs.is_empty() {
        return Err(format!("{name}: no records"));
    }
    Ok(out)
}

/// The epoch of a training run's `metrics.jsonl` line, if the line is such a record.
pub fn epoch_of_line(line: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get("epoch")?
        .as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the writer writes, the reader reads back.
    #[test]
    fn run_lines_round_trip() {
        let obs = [
            Observation::Point([0.5, -1.25]),
            Observation::SingularValues(vec![3.0, 1.0]),
        ];
        let text: String = obs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let line = RunRecordLine {
                    run: if i == 0 { "a" } else { "b" },
                    step: 7,
                    loss: 0.25,
                    observation: o,
                };
                serde_json::to_string(&line).unwrap_or_default() + "\n"
            })
            .collect();
        assert_eq!(
            text.lines().next(),
            Some(r#"{"run":"a","step":7,"loss":0.25,"point":[0.5,-1.25]}"#)
        );
        let m = read_run_metrics("m.jsonl", &text).unwrap_or_default();
        assert_eq!(m.runs["a"].path, vec![[0.5, -1.25]]);
        assert_eq!(m.runs["b"].singular_values, vec![(7, vec![3.0, 1.0])]);
        assert_eq!(m.runs["b"].loss, vec![[7.0, 0.25]]);
    }

    /// A record whose point or singular values are not numbers keeps its loss and is counted.
    #[test]
    fn unreadable_values_are_counted_not_dropped_silently() {
        let text = "{\"run\":\"a\",\"step\":0,\"loss\":1,\"point\":[0,1]}\n\
                    {\"run\":\"a\",\"step\":1,\"loss\":2,\"point\":[null,1]}\n\
                    {\"run\":\"b\",\"step\":0,\"loss\":3,\"singular_values\":[1,null,2]}\n";
        let m = read_run_metrics("m.jsonl", text).unwrap_or_default();
        assert_eq!(m.skipped, 2);
        assert_eq!(m.runs["a"].loss, vec![[0.0, 1.0], [1.0, 2.0]]);
        assert_eq!(m.runs["a"].path, vec![[0.0, 1.0]]);
        assert!(m.runs["b"].singular_values.is_empty());
    }

    #[test]
    fn bad_metrics_name_the_line() {
        let err = read_run_metrics(
            "m.jsonl",
            "{\"run\":\"a\",\"step\":0,\"loss\":1}\n{\"step\":1}",
        )
        .err();
        assert_eq!(
            err.as_deref(),
            Some("m.jsonl line 2: no \"run\" field (is this a metrics.jsonl of optiscope run?)")
        );
        assert_eq!(epoch_of_line(r#"{"epoch":3,"train_loss":1}"#), Some(3));
        assert_eq!(epoch_of_line("not json"), None);
    }
}
