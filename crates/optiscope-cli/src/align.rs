//! `optiscope align`: an alignment experiment (preference learning on a contextual bandit) to the
//! end, with a progress bar, `config.json`, `metrics.jsonl` (one line per run per round) and
//! `summary.json` (per run: `label`, `n_total` where the run has a budget of pairs, `rounds`, the
//! last record's values — for sampler runs `kl` = KL(π*‖π̂) at the end — and the run's own).

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::builder::PossibleValuesParser;
use clap::Args;
use optiscope_core::align::experiment::{align_preset, AlignConfig, RunResult, ALIGN_PRESETS};

use crate::backend::{Backend, Executor};
use crate::input::{bad, read_json};
use crate::output::{MetricsFile, OutputArgs};
use optiscope_core::align::first_order::{AlignError, FirstOrderFit, Fit};
use optiscope_core::device::Cpu;
use optiscope_gpu::GpuDevice;

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
    #[command(flatten)]
    output: OutputArgs,
    /// Where a first-order fit runs (the bandit's kernels and the optimizer): a real GPU if there
    /// is one (auto), the CPU, or any GPU including software ones (gpu). The Newton fit and the
    /// other experiments are f64 on the host whatever this says; gpu refuses them.
    #[arg(long, value_enum, default_value = "auto")]
    backend: Backend,
    /// How a sampler experiment's DPO fits are solved: newton (f64 on the host) or adam (Adam at
    /// lr 0.05 for 400 cosine-decayed steps, f32 on the --backend device) [default: the config's].
    #[arg(long, value_enum)]
    fit: Option<FitChoice>,
}

/// `--fit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FitChoice {
    /// Newton/IRLS in f64 on the host.
    Newton,
    /// Adam on the device.
    Adam,
}

/// The columns printed for each kind of experiment.
fn columns(cfg: &AlignConfig) -> &'static [&'static str] {
    match cfg {
        AlignConfig::Samplers(_) => &["kl", "entropy", "c_feat"],
        AlignConfig::Degeneracy(_) => &["kl", "entropy", "logit_range"],
        AlignConfig::Grpo(_) => &["pi_best", "reward", "kl_ref", "entropy"],
        AlignConfig::ThinkSafe(_) => &[
            "safety",
            "kl_benign",
            "kl_harmful",
            "refusal_benign",
            "generations_per_accepted",
        ],
        AlignConfig::Multitask(_) => &[],
    }
}

/// `optiscope align`.
pub fn align(args: AlignArgs) -> anyhow::Result<ExitCode> {
    let (mut cfg, name): (AlignConfig, String) = match (&args.preset, &args.config) {
        (Some(p), _) => (
            align_preset(p).ok_or_else(|| bad(format!("unknown preset {p:?}")))?,
            format!("align-{p}"),
        ),
        (None, Some(path)) => (read_json(path)?, "align".to_string()),
        (None, None) => return Err(bad("give a CONFIG.json or --preset NAME")),
    };
    if let Some(s) = args.seed {
        *cfg.seed_mut() = s;
    }
    if let Some(fit) = args.fit {
        let AlignConfig::Samplers(c) = &mut cfg else {
            return Err(bad(format!(
                "--fit: the {} experiment has no DPO fit to choose (only sampler experiments: \
                 coverage, rich-features)",
                cfg.kind()
            )));
        };
        c.fit = match fit {
            FitChoice::Newton => Fit::Newton,
            FitChoice::Adam => Fit::FirstOrder(FirstOrderFit::adam()),
        };
    }
    cfg.build().map_err(|e| bad(e.to_string()))?;
    if args.backend == Backend::Gpu && !cfg.uses_device() {
        return Err(bad(format!(
            "--backend gpu: this {} experiment runs in f64 on the host; only a sampler \
             experiment with a first-order fit uses the GPU (add --fit adam), or use --backend cpu",
            cfg.kind()
        )));
    }
    let executor = if cfg.uses_device() {
        Executor::select(args.backend)?
    } else {
        Executor::Cpu
    };
    let dir = args.output.dir(&name)?;
    let config_path = dir.join("config.json");
    fs::write(&config_path, serde_json::to_string_pretty(&cfg)? + "\n")
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let mut metrics = MetricsFile::create(&dir, true)?;
    let bar = args.output.progress(cfg.runs() as u64, "runs", &name);
    let mut write = |run: &RunResult| {
        for r in &run.records {
            metrics.write(&run.metrics_line(r));
        }
        bar.inc(1);
    };
    let results = match &executor {
        Executor::Cpu => cfg.run_on(&mut Cpu, &mut write),
        Executor::Gpu(ctx) => cfg.run_on(&mut GpuDevice::new(ctx.clone()), &mut write),
    };
    let results = match results {
        Ok(r) => r,
        Err(AlignError::Config(e)) => return Err(bad(e.to_string())),
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    bar.finish_and_clear();
    let metrics_path = metrics.finish()?;
    let summary: Vec<_> = results.iter().map(RunResult::summary_row).collect();
    let summary_path = dir.join("summary.json");
    fs::write(
        &summary_path,
        serde_json::to_string_pretty(&summary)? + "\n",
    )
    .with_context(|| format!("cannot write {}", summary_path.display()))?;
    let mut out = std::io::stdout().lock();
    let cols: Vec<String> = match &cfg {
        AlignConfig::Multitask(c) => std::iter::once("kl_teacher".to_string())
            .chain(c.tasks.iter().map(|t| format!("kl_{t}")))
            .collect(),
        _ => columns(&cfg).iter().map(|c| (*c).to_string()).collect(),
    };
    let width = results
        .iter()
        .map(|r| r.label.len())
        .max()
        .unwrap_or(3)
        .max(3);
    write!(out, "{:<width$} {:>8} {:>6}", "run", "n_total", "rounds")?;
    for c in &cols {
        write!(out, " {:>13}", c)?;
    }
    writeln!(out)?;
    for r in &results {
        let n = r.n_total.map_or_else(|| "-".to_string(), |n| n.to_string());
        write!(out, "{:<width$} {:>8} {:>6}", r.label, n, r.records.len())?;
        for c in &cols {
            match r.last(c) {
                Some(v) => write!(out, " {:>13.4e}", v)?,
                None => write!(out, " {:>13}", "-")?,
            }
        }
        writeln!(out)?;
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
