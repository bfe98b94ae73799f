//! Export (metrics CSV, config JSON, the CLI command) and import (a `metrics.jsonl` written by
//! `optiscope run`).

use std::collections::BTreeMap;

use optiscope_core::experiment::{Experiment, ExperimentConfig};
use optiscope_core::problems::Observation;
use optiscope_core::train::TrainConfig;

/// The metrics of every run as CSV: `run,step,loss,x,y` for 2-D problems, `run,step,loss,sigma_1..`
/// for factorizations.
pub fn metrics_csv(exp: &Experiment) -> String {
    let width = exp
        .runs()
        .iter()
        .flat_map(|r| r.history())
        .map(|r| match &r.observation {
            Observation::Point(_) => 2,
            Observation::SingularValues(s) => s.len(),
        })
        .max()
        .unwrap_or(0);
    let two_d = exp.problem().landscape().is_some();
    let mut out = String::from("run,step,loss");
    if two_d {
        out.push_str(",x,y");
    } else {
        (1..=width).for_each(|i| out.push_str(&format!(",sigma_{i}")));
    }
    out.push('\n');
    for run in exp.runs() {
        for r in run.history() {
            out.push_str(&format!(
                "{},{},{}",
                csv_field(&run.config.label),
                r.step,
                r.loss
            ));
            let values: Vec<f64> = match &r.observation {
                Observation::Point(p) => p.to_vec(),
                Observation::SingularValues(s) => s.clone(),
            };
            values.iter().for_each(|v| out.push_str(&format!(",{v}")));
            out.push('\n');
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The experiment config, pretty JSON: `optiscope run CONFIG.json` runs it.
pub fn config_json(cfg: &ExperimentConfig) -> String {
    serde_json::to_string_pretty(cfg).unwrap_or_default() + "\n"
}

/// A shell command that reruns `cfg` with the CLI on the CPU executor (the explorer's executor),
/// so it reproduces the explorer's losses exactly.
pub fn cli_command(cfg: &ExperimentConfig, name: &str) -> String {
    let json = serde_json::to_string(cfg)
        .unwrap_or_default()
        .replace('\'', "'\\''");
    format!("printf '%s' '{json}' | optiscope run - --backend cpu --out runs/{name}")
}

/// A shell command that trains `cfg` to the end with `optiscope train` on the CPU (the explorer's
/// executor), the config passed whole on standard input.
pub fn train_cli_command(cfg: &TrainConfig) -> String {
    let json = serde_json::to_string(cfg)
        .unwrap_or_default()
        .replace('\'', "'\\''");
    format!(
        "printf '%s' '{json}' | optiscope train --config - --backend cpu --out runs/quantization"
    )
}

/// One run's records read from a `metrics.jsonl`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedRun {
    /// (step, loss).
    pub loss: Vec<[f64; 2]>,
    /// The 2-D path, if recorded.
    pub path: Vec<[f64; 2]>,
    /// Singular values per recorded step, if recorded.
    pub singular_values: Vec<(u64, Vec<f64>)>,
}

/// A `metrics.jsonl` opened in the explorer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedMetrics {
    /// The file name.
    pub name: String,
    /// Runs by label, in first-seen order kept by the map's sorted keys.
    pub runs: BTreeMap<String, LoadedRun>,
    /// Records whose `point` or `singular_values` held something other than numbers (a NaN is
    /// written as `null`): their loss is shown, that part of them is skipped and counted here.
    pub skipped: usize,
}

/// Parses a `metrics.jsonl`; errors name the line.
pub fn parse_metrics(name: &str, text: &str) -> Result<LoadedMetrics, String> {
    let mut out = LoadedMetrics {
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

/// Offers `contents` as a file: a download in the browser, a file in the working directory natively.
/// Returns what happened, for the status line.
pub fn save_text(file_name: &str, contents: &str) -> Result<String, String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::web::download(file_name, contents)?;
        Ok(format!("downloaded {file_name}"))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::fs::write(file_name, contents)
            .map_err(|e| format!("cannot write {file_name}: {e}"))?;
        Ok(format!("wrote {file_name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use optiscope_core::experiment::presets::preset;

    #[test]
    fn csv_has_a_row_per_record_and_reads_back_as_metrics() {
        let mut cfg = preset("rosenbrock").unwrap();
        cfg.steps = 5;
        let mut exp = Experiment::new(cfg.clone()).unwrap();
        exp.step(5);
        let csv = metrics_csv(&exp);
        let lines: Vec<_> = csv.lines().collect();
        assert_eq!(lines[0], "run,step,loss,x,y");
        assert_eq!(lines.len(), 1 + 6 * cfg.runs.len());
        let jsonl: String = exp
            .runs()
            .iter()
            .flat_map(|r| {
                r.history().iter().map(|h| {
                    let Observation::Point(p) = h.observation else {
                        unreachable!()
                    };
                    format!(
                        "{{\"run\":\"{}\",\"step\":{},\"loss\":{},\"point\":[{},{}]}}\n",
                        r.config.label, h.step, h.loss, p[0], p[1]
                    )
                })
            })
            .collect();
        let loaded = parse_metrics("m.jsonl", &jsonl).unwrap();
        assert_eq!(loaded.runs.len(), cfg.runs.len());
        assert_eq!(loaded.runs["adam"].path.len(), 6);
    }

    /// A record whose point or singular values are not numbers keeps its loss and is counted.
    #[test]
    fn unreadable_values_are_counted_not_dropped_silently() {
        let text = "{\"run\":\"a\",\"step\":0,\"loss\":1,\"point\":[0,1]}\n\
                    {\"run\":\"a\",\"step\":1,\"loss\":2,\"point\":[null,1]}\n\
                    {\"run\":\"b\",\"step\":0,\"loss\":3,\"singular_values\":[1,null,2]}\n";
        let m = parse_metrics("m.jsonl", text).unwrap();
        assert_eq!(m.skipped, 2);
        assert_eq!(m.runs["a"].loss, vec![[0.0, 1.0], [1.0, 2.0]]);
        assert_eq!(m.runs["a"].path, vec![[0.0, 1.0]]);
        assert!(m.runs["b"].singular_values.is_empty());
    }

    #[test]
    fn bad_metrics_name_the_line() {
        let err = parse_metrics(
            "m.jsonl",
            "{\"run\":\"a\",\"step\":0,\"loss\":1}\n{\"step\":1}",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "m.jsonl line 2: no \"run\" field (is this a metrics.jsonl of optiscope run?)"
        );
    }

    #[test]
    fn train_cli_command_passes_the_whole_config() {
        let cfg = crate::state::default_quant_train();
        let cmd = train_cli_command(&cfg);
        let json = cmd
            .strip_prefix("printf '%s' '")
            .and_then(|c| {
                c.strip_suffix(
                    "' | optiscope train --config - --backend cpu --out runs/quantization",
                )
            })
            .unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(json).unwrap(), cfg);
    }

    #[test]
    fn cli_command_quotes_the_config() {
        let mut cfg = preset("saddle").unwrap();
        cfg.runs[0].label = "it's".into();
        let cmd = cli_command(&cfg, "saddle");
        assert!(
            cmd.starts_with("printf '%s' '{")
                && cmd.contains("it'\\''s")
                && cmd.ends_with("| optiscope run - --backend cpu --out runs/saddle")
        );
    }
}
