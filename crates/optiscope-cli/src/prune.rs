//! `optiscope prune`: TEDDY's edge sparsification of graph networks (spec C1). `prune scores
//! EDGES.csv` prints every edge's TEDDY score in input order; `prune --preset sbm` trains the
//! GCN on the degree-corrected SBM, dense and at each fraction of edges removed by each method,
//! and writes `config.json`, `metrics.jsonl` (one line per run per epoch), `summary.json` (one
//! row per run) and `table.csv`.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use optiscope_core::device::Cpu;
use optiscope_core::sparsify::experiment::{EdgeMethod, PruneConfig, PruneError, PruneRow};
use optiscope_core::sparsify::teddy::edge_scores;
use optiscope_core::sparsify::Graph;
use optiscope_gpu::GpuDevice;

use crate::backend::{Backend, Executor};
use crate::input::{bad, read_json, read_text};
use crate::output::{MetricsFile, OutputArgs};

/// Arguments of `optiscope prune` (the help text is on `Command::Prune`).
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PruneArgs {
    #[command(subcommand)]
    command: Option<PruneCommand>,
    /// The experiment: sbm (spec C1: a degree-corrected SBM, n = 300, 3 communities; a 2-layer
    /// GCN, hidden 16, Adam lr 0.01, L2 5e-4, 200 epochs).
    #[arg(long, value_parser = ["sbm"])]
    preset: Option<String>,
    /// A full experiment config (JSON, e.g. the config.json of an earlier run; `-` reads standard
    /// input, what the explorer's "copy CLI command" uses); the flags override it.
    #[arg(long, value_name = "CONFIG.json")]
    config: Option<PathBuf>,
    /// Only this edge-pruning method [default: teddy, random and reverse; ugs only when asked for].
    #[arg(long, value_enum)]
    method: Option<MethodChoice>,
    /// Only this fraction of the edges removed [default: 0.3, 0.5 and 0.7].
    #[arg(long, value_name = "F")]
    edges: Option<f64>,
    /// The fraction of the weights removed by the ℓ0 projection after every step [default: 0].
    #[arg(long, value_name = "F")]
    weights: Option<f64>,
    /// λ of the logit distillation from the model trained on the whole graph [default: 0; the
    /// spec uses 10].
    #[arg(long, value_name = "LAMBDA")]
    distill: Option<f64>,
    /// Seed of the graph, the random pruning order and the initialisation.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    output: OutputArgs,
    /// Where the GCN trains: a real GPU if there is one (auto), the CPU, or any GPU including
    /// software ones (gpu).
    #[arg(long, value_enum, default_value = "auto")]
    backend: Backend,
}

/// `--method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MethodChoice {
    /// The lowest TEDDY scores first.
    Teddy,
    /// Uniformly at random.
    Random,
    /// The highest TEDDY scores first.
    Reverse,
    /// UGS: learned edge masks, 5 % of the remaining edges pruned per round (200 epochs each),
    /// the weights rewound.
    Ugs,
}

#[derive(Subcommand, Debug)]
enum PruneCommand {
    /// Print the TEDDY score of every edge of an edge list as CSV `src,dst,score`.
    ///
    /// The input: the header `src,dst`, then one edge `u,v` per line (undirected; node ids are
    /// integers from 0; self-loops, duplicate edges in either orientation, negative or
    /// non-integer ids are errors that name the line). The output: the header `src,dst,score`,
    /// then one line per input edge in input order. `score(u, v) = g_u · g_v` with
    /// `g_i = (Σ_{k∈N(i)} d_k^{−1/2}) / d_i²`; TEDDY prunes the lowest scores first.
    #[command(verbatim_doc_comment)]
    Scores {
        /// The edge list (`-` reads standard input).
        #[arg(value_name = "EDGES.csv")]
        edges: PathBuf,
        /// The number of nodes (ids must be below it) [default: the largest id + 1].
        #[arg(long, value_name = "N")]
        nodes: Option<usize>,
    },
}

/// `optiscope prune`.
pub fn prune(args: PruneArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        None if args.preset.is_some() || args.config.is_some() => train(args),
        None => Err(bad(
            "give `optiscope prune scores EDGES.csv`, `optiscope prune --preset sbm` or `optiscope prune --config CONFIG.json`",
        )),
        Some(PruneCommand::Scores { edges, nodes }) => {
            let name = edges.display().to_string();
            let text = read_text(&edges)?;
            let graph = Graph::parse_csv(&text, nodes).map_err(|e| bad(format!("{name}: {e}")))?;
            let scores = edge_scores(&graph);
            let mut out = BufWriter::new(std::io::stdout().lock());
            writeln!(out, "src,dst,score")?;
            for (&(u, v), s) in graph.edges.iter().zip(&scores) {
                writeln!(out, "{u},{v},{s}")?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `optiscope prune --preset sbm`.
fn train(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let mut cfg: PruneConfig = match &args.config {
        Some(p) => read_json(p)?,
        None => PruneConfig::default(),
    };
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    if let Some(m) = args.method {
        cfg.methods = vec![match m {
            MethodChoice::Teddy => EdgeMethod::Teddy,
            MethodChoice::Random => EdgeMethod::Random,
            MethodChoice::Reverse => EdgeMethod::Reverse,
            MethodChoice::Ugs => EdgeMethod::Ugs,
        }];
    }
    if let Some(f) = args.edges {
        if !(0.0..=1.0).contains(&f) {
            return Err(bad(format!(
                "--edges {f}: the fraction of edges removed must be in [0, 1]"
            )));
        }
        cfg.fractions = vec![f];
    }
    if let Some(w) = args.weights {
        if !(0.0..1.0).contains(&w) {
            return Err(bad(format!(
                "--weights {w}: the fraction of weights removed must be in [0, 1)"
            )));
        }
        cfg.train.weight_sparsity = w;
    }
    if let Some(l) = args.distill {
        cfg.train.distill = l;
    }
    cfg.validate().map_err(|e| bad(e.to_string()))?;
    let executor = Executor::select(args.backend)?;
    let dir = args.output.dir("prune-sbm")?;
    let config_path = dir.join("config.json");
    fs::write(&config_path, serde_json::to_string_pretty(&cfg)? + "\n")
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let mut metrics = MetricsFile::create(&dir, false)?;
    let runs = 1 + cfg.methods.len() * cfg.fractions.len();
    let bar = args.output.progress(runs as u64, "runs", "prune-sbm");
    let mut each = |row: &PruneRow, losses: &[f64]| {
        for (epoch, loss) in losses.iter().enumerate() {
            let line = serde_json::json!({
                "method": row.method,
                "edges_removed": row.edges_removed,
                "epoch": epoch + 1,
                "train_loss": loss,
            });
            metrics.write(&line);
        }
        bar.inc(1);
    };
    let rows = match &executor {
        Executor::Cpu => cfg.run(&mut Cpu, &mut each),
        Executor::Gpu(ctx) => cfg.run(&mut GpuDevice::new(ctx.clone()), &mut each),
    };
    bar.finish_and_clear();
    let rows = match rows {
        Ok(r) => r,
        Err(PruneError::Config(e)) => return Err(bad(e.to_string())),
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    let metrics_path = metrics.finish()?;
    let summary_path = dir.join("summary.json");
    fs::write(&summary_path, serde_json::to_string_pretty(&rows)? + "\n")
        .with_context(|| format!("cannot write {}", summary_path.display()))?;
    let table_path = dir.join("table.csv");
    let mut table =
        String::from("method,edges_removed,edges,isolated,test_accuracy,weight_zeros\n");
    for r in &rows {
        table.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.method, r.edges_removed, r.edges, r.isolated, r.test_accuracy, r.weight_zeros
        ));
    }
    fs::write(&table_path, &table)
        .with_context(|| format!("cannot write {}", table_path.display()))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| method | edges removed | edges | isolated nodes | test accuracy |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|")?;
    for r in &rows {
        writeln!(
            out,
            "| {} | {:.0} % | {} | {} | {:.3} |",
            r.method,
            100.0 * r.edges_removed,
            r.edges,
            r.isolated,
            r.test_accuracy
        )?;
    }
    writeln!(
        out,
        "\nwrote {}, {}, {} and {}",
        config_path.display(),
        metrics_path.display(),
        summary_path.display(),
        table_path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
