//! Export (metrics CSV, config JSON, the CLI command). Import of a `metrics.jsonl` written by
//! `optiscope run` is core's [`optiscope_core::metrics::read_run_metrics`].

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

/// Says in the status line what an export did.
pub fn report(io: &mut crate::lab::LabIo<'_>, r: Result<String, String>) {
    *io.message = Some(match r {
        Ok(m) => (m, false),
        Err(e) => (e, true),
    });
}

/// Offers `contents` as a file: a download in the browser, a file in the working directory natively.
/// Returns what happened, for the status line.
pub fn save_text(file_name: &str, contents: &str) -> Result<String, String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::page::download(file_name, contents)?;
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
        let loaded = optiscope_core::metrics::read_run_metrics("m.jsonl", &jsonl).unwrap();
        assert_eq!(loaded.runs.len(), cfg.runs.len());
        assert_eq!(loaded.runs["adam"].path.len(), 6);
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
