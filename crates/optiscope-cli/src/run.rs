//! `optiscope run`: an experiment to the end, with a progress bar, `config.json`, `metrics.jsonl`,
//! `summary.json` and a summary table.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::builder::PossibleValuesParser;
use clap::Args;
use optiscope_core::experiment::presets::{preset, PRESETS};
use optiscope_core::experiment::{Experiment, ExperimentConfig, Record, RunSummary};
use optiscope_core::metrics::RunRecordLine;

use crate::backend::{Backend, Executor};
use crate::input::{bad, read_json};
use crate::output::OutputArgs;

/// Arguments of `optiscope run` (the help text is on `Command::Run`).
#[derive(Args, Debug)]
pub struct RunArgs {
    /// An experiment config (JSON), e.g. the config.json of an earlier run; `-` reads it from
    /// standard input (what the explorer's "copy CLI command" uses).
    #[arg(
        required_unless_present = "preset",
        conflicts_with = "preset",
        value_name = "CONFIG.json"
    )]
    config: Option<PathBuf>,
    /// A named experiment (`optiscope list` describes them).
    #[arg(long, value_parser = PossibleValuesParser::new(PRESETS.iter().map(|p| p.name)))]
    preset: Option<String>,
    /// Number of steps (overrides the config's).
    #[arg(long)]
    steps: Option<u64>,
    /// Seed of initialization and gradient noise (overrides the config's).
    #[arg(long)]
    seed: Option<u64>,
    /// Record every this many steps (overrides the config's).
    #[arg(long)]
    record_every: Option<u64>,
    #[command(flatten)]
    output: OutputArgs,
    /// Where the optimizers run: auto (a real GPU if present, else the CPU), cpu, or gpu (any
    /// adapter, software ones included; fails without one).
    #[arg(long, value_enum, default_value = "auto", env = "OPTISCOPE_BACKEND")]
    backend: Backend,
}

/// The config and a name for the default output folder.
fn resolve_config(args: &RunArgs) -> anyhow::Result<(ExperimentConfig, String)> {
    let (mut cfg, name) = match (&args.preset, &args.config) {
        (Some(p), _) => (
            preset(p).ok_or_else(|| bad(format!("unknown preset {p:?}")))?,
            p.clone(),
        ),
        (None, Some(path)) => {
            let cfg: ExperimentConfig = read_json(path)?;
            let stem = if path.as_os_str() == "-" {
                "stdin"
            } else {
                path.file_stem().and_then(|s| s.to_str()).unwrap_or("run")
            };
            let name = match (
                stem,
                path.parent()
                    .and_then(|p| p.file_name())
                    .and_then(|s| s.to_str()),
            ) {
                ("config", Some(parent)) => parent.to_string(),
                _ => stem.to_string(),
            };
            (cfg, name)
        }
        (None, None) => return Err(bad("give a CONFIG.json or --preset NAME")),
    };
    if let Some(s) = args.steps {
        cfg.steps = s;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    if let Some(r) = args.record_every {
        cfg.record_every = r;
    }
    Ok((cfg, name))
}

fn write_records(
    out: &mut impl Write,
    exp: &Experiment,
    records: &[(usize, Record)],
) -> anyhow::Result<()> {
    for (i, r) in records {
        let line = RunRecordLine {
            run: &exp.runs()[*i].config.label,
            step: r.step,
            loss: r.loss,
            observation: &r.observation,
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (cfg, name) = resolve_config(&args)?;
    let executor = Executor::select(args.backend)?;
    let mut exp = Experiment::with_executor(cfg.clone(), &|c, p| executor.build(c, p))
        .map_err(|e| bad(e.to_string()))?;
    let dir = args.output.dir(&name)?;
    let config_path = dir.join("config.json");
    fs::write(&config_path, serde_json::to_string_pretty(&cfg)? + "\n")
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let metrics_path = dir.join("metrics.jsonl");
    let mut metrics = BufWriter::new(
        File::create(&metrics_path)
            .with_context(|| format!("cannot create {}", metrics_path.display()))?,
    );
    let initial: Vec<(usize, Record)> = exp
        .runs()
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.history()[0].clone()))
        .collect();
    write_records(&mut metrics, &exp, &initial)?;

    let bar = args.output.progress(cfg.steps, "steps", &name);
    let chunk = (cfg.steps / 500).max(1);
    let mut stopped = vec![];
    while !exp.is_done() {
        let report = exp.step(chunk);
        write_records(&mut metrics, &exp, &report.records)?;
        let stops = report
            .diverged
            .iter()
            .map(|(i, d)| (*i, "diverged", d.step, format!("loss = {}", d.loss)))
            .chain(
                report
                    .failed
                    .iter()
                    .map(|(i, f)| (*i, "failed", f.step, f.error.clone())),
            );
        for (i, what, step, why) in stops {
            let label = &exp.runs()[i].config.label;
            let last = exp.runs()[i].history().last().map_or(0, |r| r.step);
            bar.suspend(|| {
                eprintln!(
                    "run {label:?} {what} at step {step}: {why}; it stops there, its records up to step {last} stay in {}",
                    metrics_path.display()
                )
            });
            stopped.push(format!("{label} ({what})"));
        }
        metrics
            .flush()
            .with_context(|| format!("cannot write {}", metrics_path.display()))?;
        bar.set_position(exp.current_step());
    }
    bar.finish_and_clear();
    let summary = exp.summary();
    let summary_path = dir.join("summary.json");
    fs::write(
        &summary_path,
        serde_json::to_string_pretty(&summary)? + "\n",
    )
    .with_context(|| format!("cannot write {}", summary_path.display()))?;
    let mut out = std::io::stdout().lock();
    print_summary(&mut out, &exp, &summary)?;
    writeln!(
        out,
        "\nwrote {}, {} and {}",
        config_path.display(),
        metrics_path.display(),
        summary_path.display()
    )?;
    if !stopped.is_empty() {
        anyhow::bail!(
            "{} run(s) stopped early: {}",
            stopped.len(),
            stopped.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn fmt_loss(v: f64) -> String {
    if v == 0.0 || (1e-3..1e4).contains(&v.abs()) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

fn print_summary(
    out: &mut impl Write,
    exp: &Experiment,
    summary: &[RunSummary],
) -> std::io::Result<()> {
    let cfg = exp.config();
    writeln!(
        out,
        "{} — {} steps, seed {}",
        cfg.problem.name(),
        exp.current_step(),
        cfg.seed
    )?;
    let targets = exp.problem().spectrum_targets();
    let extra_header = match targets {
        Some(t) => format!("steps to 90% of sigma* = {t:?} (order)"),
        None => "final point".to_string(),
    };
    let rows: Vec<[String; 6]> = summary
        .iter()
        .map(|s| {
            let extra = match (&s.hitting_steps, s.final_point) {
                (Some(h), _) => {
                    let hs: Vec<String> = h
                        .iter()
                        .map(|x| x.map_or("-".into(), |v| v.to_string()))
                        .collect();
                    format!("{} ({})", hs.join(", "), s.hitting_order().unwrap_or("-"))
                }
                (None, Some([x, y])) => format!("({x:.4}, {y:.4})"),
                _ => String::new(),
            };
            let fin = match (s.diverged, &s.failed) {
                (Some(d), _) => format!("diverged@{}", d.step),
                (None, Some(f)) => format!("failed@{}", f.step),
                (None, None) => fmt_loss(s.final_loss),
            };
            [
                s.label.clone(),
                s.optimizer.clone(),
                fin,
                fmt_loss(s.tail_mean_loss),
                fmt_loss(s.min_loss),
                extra,
            ]
        })
        .collect();
    let header = [
        "run",
        "optimizer",
        "final loss",
        "last-10% mean",
        "min loss",
        extra_header.as_str(),
    ]
    .map(String::from);
    let widths: Vec<usize> = (0..6)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &[String; 6]| {
        r.iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(&header))?;
    writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    )?;
    for r in &rows {
        writeln!(out, "{}", line(r))?;
    }
    if let Some(best) = summary
        .iter()
        .filter(|s| s.diverged.is_none() && s.failed.is_none())
        .min_by(|a, b| a.tail_mean_loss.total_cmp(&b.tail_mean_loss))
    {
        writeln!(
            out,
            "\nlowest loss over the last 10% of steps: {} ({})",
            best.label,
            fmt_loss(best.tail_mean_loss)
        )?;
    }
    if targets.is_some() {
        let orders: Vec<String> = summary
            .iter()
            .map(|s| format!("{} {}", s.label, s.hitting_order().unwrap_or("-")))
            .collect();
        writeln!(
            out,
            "order in which the target singular values are reached: {}",
            orders.join(", ")
        )?;
    }
    Ok(())
}
