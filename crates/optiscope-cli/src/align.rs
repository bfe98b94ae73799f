//! `optiscope align`: an alignment experiment (preference learning on a contextual bandit) to the
//! end, with a progress bar, `config.json`, `metrics.jsonl` (one line per run per round) and
//! `summary.json` (per run: `label`, `n_total`, `kl` = KL(π*‖π̂) at the end, `entropy`, `rounds`).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::builder::PossibleValuesParser;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use optiscope_core::align::experiment::{align_preset, AlignConfig, ALIGN_PRESETS};
use serde::Serialize;

use crate::backend::Backend;
use crate::input::{bad, read_json};

/// Arguments of `optiscope align` (the help text is on `Command::Align`).
#[derive(Args, Debug)]
pub struct AlignArgs {
    /// An alignment config (JSON), e.g. the config.json of an earlier run; `-` reads standard input.
    #[arg(
        required_unless_present = "preset",
        conflicts_with = "preset",
        value_name = "CONFIG.json"
    )]
    config: Option<PathBuf>,
    /// A named experiment.
    #[arg(long, value_parser = PossibleValuesParser::new(ALIGN_PRESETS.iter().map(|p| p.name)))]
    preset: Option<String>,
    /// Seed of every draw (overrides the config's).
    #[arg(long)]
    seed: Option<u64>,
    /// Output folder [default: runs/align-NAME, or -2, -3, ... if that exists].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace the results of an earlier run in --out instead of refusing.
    #[arg(long)]
    force: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Where it runs: auto and cpu are the CPU (the lab has no GPU path yet); gpu is refused.
    #[arg(long, value_enum, default_value = "auto")]
    backend: Backend,
}

#[derive(Serialize)]
struct RoundLine<'a> {
    run: &'a str,
    n_total: usize,
    round: usize,
    samples: usize,
    kl: f64,
    entropy: f64,
}

#[derive(Serialize)]
struct SummaryRow<'a> {
    label: &'a str,
    n_total: usize,
    kl: f64,
    entropy: f64,
    rounds: usize,
}

/// `optiscope align`.
pub fn align(args: AlignArgs) -> anyhow::Result<ExitCode> {
    if args.backend == Backend::Gpu {
        return Err(bad(
            "--backend gpu: the alignment lab runs on the CPU for now (its WGSL kernels are not \
             written yet); use --backend cpu",
        ));
    }
    let (mut cfg, name): (AlignConfig, String) = match (&args.preset, &args.config) {
        (Some(p), _) => (
            align_preset(p).ok_or_else(|| bad(format!("unknown preset {p:?}")))?,
            format!("align-{p}"),
        ),
        (None, Some(path)) => (read_json(path)?, "align".to_string()),
        (None, None) => return Err(bad("give a CONFIG.json or --preset NAME")),
    };
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    cfg.build().map_err(|e| bad(e.to_string()))?;
    let dir = crate::run::output_dir(args.out.as_deref(), args.force, &name)?;
    let config_path = dir.join("config.json");
    fs::write(&config_path, serde_json::to_string_pretty(&cfg)? + "\n")
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let metrics_path = dir.join("metrics.jsonl");
    let mut metrics = BufWriter::new(
        File::create(&metrics_path)
            .with_context(|| format!("cannot create {}", metrics_path.display()))?,
    );
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(cfg.runs.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} runs  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(name);
    let mut io_error = None;
    let results = cfg
        .run(|i, rounds| {
            let run = &cfg.runs[i];
            for r in rounds {
                let line = RoundLine {
                    run: &run.label,
                    n_total: run.n_total,
                    round: r.round,
                    samples: r.samples,
                    kl: r.kl,
                    entropy: r.entropy,
                };
                let written = serde_json::to_writer(&mut metrics, &line)
                    .map_err(anyhow::Error::from)
                    .and_then(|()| metrics.write_all(b"\n").map_err(anyhow::Error::from))
                    .and_then(|()| metrics.flush().map_err(anyhow::Error::from));
                if let Err(e) = written {
                    io_error.get_or_insert(e);
                }
            }
            bar.inc(1);
        })
        .map_err(|e| bad(e.to_string()))?;
    bar.finish_and_clear();
    if let Some(e) = io_error {
        return Err(e.context(format!("cannot write {}", metrics_path.display())));
    }
    let summary: Vec<SummaryRow> = cfg
        .runs
        .iter()
        .zip(&results)
        .filter_map(|(run, rounds)| {
            rounds.last().map(|last| SummaryRow {
                label: &run.label,
                n_total: run.n_total,
                kl: last.kl,
                entropy: last.entropy,
                rounds: rounds.len(),
            })
        })
        .collect();
    let summary_path = dir.join("summary.json");
    fs::write(
        &summary_path,
        serde_json::to_string_pretty(&summary)? + "\n",
    )
    .with_context(|| format!("cannot write {}", summary_path.display()))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<16} {:>9} {:>7} {:>12} {:>9}",
        "run", "n_total", "rounds", "KL(π*‖π̂)", "entropy"
    )?;
    for s in &summary {
        writeln!(
            out,
            "{:<16} {:>9} {:>7} {:>12.4e} {:>9.4}",
            s.label, s.n_total, s.rounds, s.kl, s.entropy
        )?;
    }
    writeln!(
        out,
        "\nwrote {}, {} and {}",
        config_path.display(),
        metrics_path.display(),
        summary_path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
