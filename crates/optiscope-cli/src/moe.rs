//! `optiscope moe`: MoE → dense conversion (spec C2) on the `tiny` mixture. Every scorer's
//! selection is converted with the chosen grouping and scaling and distilled; the chosen
//! scorer's teacher, concatenation and distilled FFN are written as safetensors in the Hugging
//! Face Qwen-MoE / Mixtral naming, and `summary.json` holds every scorer's errors.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use optiscope_core::device::Cpu;
use optiscope_core::sparsify::convert::{Grouping, Scaling, Scoring};
use optiscope_core::sparsify::moe_experiment::{
    dense_tensors, teacher_tensors, MoeConfig, MoeError, MoeReport, CLUSTERS,
};
use optiscope_core::train::checkpoint::Checkpoint;
use optiscope_gpu::GpuDevice;

use crate::backend::{Backend, Executor};
use crate::input::{bad, read_json};
use crate::output::{MetricsFile, OutputArgs};

/// Arguments of `optiscope moe` (the help text is on `Command::Moe`).
#[derive(Args, Debug)]
pub struct MoeArgs {
    /// The mixture: tiny (spec C2: d = 16, 8 SwiGLU experts of width 8, top-2, six clusters;
    /// experts 0/1 and 2/3 near-duplicates).
    #[arg(long, value_parser = ["tiny"], default_value = "tiny")]
    preset: String,
    /// A full config (JSON, e.g. the config.json of an earlier run); the flags override it.
    #[arg(long, value_name = "CONFIG.json")]
    config: Option<PathBuf>,
    /// The scorer whose conversion is exported (every scorer is run and reported)
    /// [default: diversity].
    #[arg(long, value_name = "NAME", value_parser = Scoring::ALL.map(Scoring::name))]
    scoring: Option<String>,
    /// How unselected experts are folded into the selected ones [default: none].
    #[arg(long, value_name = "NAME", value_parser = Grouping::ALL.map(Grouping::name))]
    grouping: Option<String>,
    /// The scale of each selected block: its gate mass, or its mean gate when routed
    /// [default: gate-mass].
    #[arg(long, value_name = "NAME", value_parser = Scaling::ALL.map(Scaling::name))]
    scaling: Option<String>,
    /// Experts kept [default: 4].
    #[arg(long, value_name = "N")]
    k: Option<usize>,
    /// Distillation steps [default: 400].
    #[arg(long, value_name = "N")]
    steps: Option<usize>,
    /// Seed of the mixture, the tokens, the random scorer and the distillation batches
    /// [default: 0].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    #[command(flatten)]
    output: OutputArgs,
    /// Where the mixture's forward and the distillation run: a real GPU if there is one (auto),
    /// the CPU, or any GPU including software ones (gpu). Scoring and the errors are f64 on the
    /// host.
    #[arg(long, value_enum, default_value = "auto")]
    backend: Backend,
}

/// The resolved config.
fn resolve(args: &MoeArgs) -> anyhow::Result<MoeConfig> {
    let mut cfg: MoeConfig = match &args.config {
        Some(p) => read_json(p)?,
        None => MoeConfig::default(),
    };
    let name = |v: &Option<String>| v.as_deref().map(str::to_owned);
    if let Some(s) = name(&args.scoring) {
        cfg.scoring = Scoring::from_name(&s).ok_or_else(|| bad(format!("--scoring {s}")))?;
    }
    if let Some(s) = name(&args.grouping) {
        cfg.grouping = Grouping::from_name(&s).ok_or_else(|| bad(format!("--grouping {s}")))?;
    }
    if let Some(s) = name(&args.scaling) {
        cfg.scaling = Scaling::from_name(&s).ok_or_else(|| bad(format!("--scaling {s}")))?;
    }
    if let Some(k) = args.k {
        cfg.k = k;
    }
    if let Some(s) = args.steps {
        cfg.distill.steps = s;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    cfg.validate().map_err(|e| bad(e.to_string()))?;
    Ok(cfg)
}

/// `optiscope moe`.
pub fn moe(args: MoeArgs) -> anyhow::Result<ExitCode> {
    let cfg = resolve(&args)?;
    let executor = Executor::select(args.backend)?;
    let dir = args.output.dir(&format!("moe-{}", args.preset))?;
    let config_path = dir.join("config.json");
    fs::write(&config_path, serde_json::to_string_pretty(&cfg)? + "\n")
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let mut metrics = MetricsFile::create(&dir, false)?;
    let total = (Scoring::ALL.len() * cfg.distill.steps) as u64;
    let bar = args
        .output
        .progress(total, "steps", &format!("moe-{}", args.preset));
    let mut each = |scoring: Scoring, step: usize, loss: f64| {
        let line = serde_json::json!({
            "scoring": scoring.name(),
            "step": step,
            "distill_loss": loss,
        });
        metrics.write(&line);
        bar.inc(1);
    };
    let report = match &executor {
        Executor::Cpu => cfg.run(&mut Cpu, &mut each),
        Executor::Gpu(ctx) => cfg.run(&mut GpuDevice::new(ctx.clone()), &mut each),
    };
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(MoeError::Config(e)) => return Err(bad(e.to_string())),
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    metrics.finish()?;
    let config_json = serde_json::to_string(&cfg)?;
    let files = [
        (
            "teacher.safetensors",
            "teacher",
            teacher_tensors(&report.tiny.moe),
        ),
        (
            "dense.safetensors",
            "dense",
            dense_tensors(&report.conversion.dense),
        ),
        (
            "dense-distilled.safetensors",
            "dense-distilled",
            dense_tensors(&report.distilled),
        ),
    ];
    for (file, kind, tensors) in files {
        write_tensors(&dir.join(file), kind, &config_json, tensors)?;
    }
    let summary_path = dir.join("summary.json");
    fs::write(
        &summary_path,
        serde_json::to_string_pretty(&summary(&cfg, &report))? + "\n",
    )
    .with_context(|| format!("cannot write {}", summary_path.display()))?;
    print_table(&cfg, &report)?;
    println!(
        "\nwrote {} (config.json, metrics.jsonl, teacher.safetensors, dense.safetensors, \
         dense-distilled.safetensors, summary.json)",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// One safetensors file, with the kind and the config in its metadata.
fn write_tensors(
    path: &Path,
    kind: &str,
    config: &str,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
) -> anyhow::Result<()> {
    let mut ck = Checkpoint::default();
    for (name, shape, data) in tensors {
        ck.put(name, shape, data);
    }
    ck.meta.insert("kind".into(), kind.into());
    ck.meta.insert("config".into(), config.into());
    let bytes = ck.to_bytes().map_err(|e| anyhow::anyhow!(e))?;
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// `summary.json`: the exported conversion (`selected` in concatenation order, `scales` in the
/// same order, its errors), every scorer's (`errors`), and the routing heat map.
fn summary(cfg: &MoeConfig, r: &MoeReport) -> serde_json::Value {
    let chosen = r.scorers.iter().find(|s| s.scoring == cfg.scoring);
    let errors: BTreeMap<&str, _> = r
        .scorers
        .iter()
        .map(|s| {
            (
                s.scoring.name(),
                serde_json::json!({
                    "selected": s.selected,
                    "scales": s.scales,
                    "pre_distillation": s.pre_distillation,
                    "pre_distillation_by_scaling": s.pre_distillation_by_scaling,
                    "post_distillation": s.post_distillation,
                }),
            )
        })
        .collect();
    let e = r.tiny.moe.n_experts();
    let heat: Vec<&[f64]> = r.routing.chunks(CLUSTERS).take(e).collect();
    serde_json::json!({
        "preset": "tiny",
        "scoring": cfg.scoring.name(),
        "grouping": cfg.grouping.name(),
        "scaling": cfg.scaling.name(),
        "k": cfg.k,
        "seed": cfg.seed,
        "selected": r.conversion.selected,
        "scales": r.conversion.scales,
        "groups": r.conversion.groups.iter().map(|g| g.iter().map(|&(e, _)| e).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "pre_distillation": chosen.map(|s| s.pre_distillation),
        "post_distillation": chosen.map(|s| s.post_distillation),
        "errors": errors,
        "routing": {"rows": "experts", "columns": "clusters", "mean_gate": heat},
    })
}

fn print_table(cfg: &MoeConfig, r: &MoeReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| scoring | selected | pre-distillation ({}) | pre ({}) | post-distillation |",
        cfg.scaling.name(),
        match cfg.scaling {
            Scaling::GateMass => Scaling::CondGate.name(),
            Scaling::CondGate => Scaling::GateMass.name(),
        }
    )?;
    writeln!(out, "|---|---|---:|---:|---:|")?;
    for s in &r.scorers {
        let other = s
            .pre_distillation_by_scaling
            .iter()
            .find(|(k, _)| k.as_str() != cfg.scaling.name())
            .map_or(f64::NAN, |(_, v)| *v);
        let mark = if s.scoring == cfg.scoring { " *" } else { "" };
        writeln!(
            out,
            "| {}{mark} | {:?} | {:.3} | {:.3} | {:.3} |",
            s.scoring.name(),
            s.selected,
            s.pre_distillation,
            other,
            s.post_distillation
        )?;
    }
    Ok(())
}
