//! `optiscope`: run optimization experiments, train models, replay optimizer traces, list the
//! methods.
//!
//! Exit codes: 0 success; 1 a run failed (e.g. diverged) or an I/O error; 2 bad input (a config,
//! a trace or an argument), reported as one line naming the field, the value and what is allowed.

mod align;
mod backend;
mod bench;
mod bench_zo;
mod eval;
mod gpt;
mod input;
mod list;
mod moe;
mod output;
mod prune;
mod replay;
mod run;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use input::BadInput;

/// optiscope: watch and run the newest training methods.
#[derive(Parser, Debug)]
#[command(name = "optiscope", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an experiment (a preset or a config file) to the end and write its metrics.
    ///
    /// Writes into the output folder:
    ///   config.json    the fully resolved config: `optiscope run DIR/config.json` repeats the run
    ///   metrics.jsonl  one JSON object per run per recorded step: run, step, loss, and the view data
    ///                  ("point": [x, y] for 2-D problems, "singular_values": [...] for factorizations)
    ///   summary.json   the summary table printed at the end, as JSON
    /// Losses are measured at the evaluation point (Schedule-Free/AMUSE: the averaged x).
    /// A run whose loss becomes NaN or infinite stops there (the others go on); what it recorded
    /// stays in metrics.jsonl and the command exits with status 1.
    #[command(verbatim_doc_comment)]
    Run(run::RunArgs),
    /// Replay recorded gradients through an optimizer and print the parameters after each step.
    ///
    /// Output on stdout, one entry per gradient set:
    ///   {"steps": [{"params": {"w": [...]}, "eval_params": {"w": [...]}}, ...]}
    /// params: the parameters after the step (where the next gradient would be taken);
    /// eval_params: the evaluation point (Schedule-Free/AMUSE's averaged x; else = params).
    ///
    /// TRACE.json: {"optimizer": {"name": "adamw", "lr": 0.01, ...},
    ///              "params": {"w": {"shape": [2, 3], "data": [6 numbers, row-major]}},
    ///              "grads": [{"w": [6 numbers]}, ...]}
    /// Each parameter may also set "role": "auto" | "matrix" | "vector" | "diagonal" (how Muon,
    /// SpecGD and AMUSE treat it; auto: rank >= 2 is a matrix).
    #[command(verbatim_doc_comment)]
    Replay(replay::ReplayArgs),
    /// List the optimizers with their parameters and defaults, and the presets.
    List(list::ListArgs),
    /// Benchmark the GPU kernels against the CPU executor (matrix product, Newton–Schulz, AdamW),
    /// or (`--suite zo`) MeZO-BCD against MeZO.
    ///
    /// Build with --release. Every figure is measured in the same run as its CPU or naive-kernel
    /// baseline, after a warm-up, with the GPU's completion inside the timed region; the adapter,
    /// its driver and the CPU are printed beside the table.
    #[command(verbatim_doc_comment)]
    Bench(bench::BenchArgs),
    /// Train a model on real data: `optiscope train --data digits --quant cpq --bits 2 --out DIR`.
    ///
    /// Writes into the output folder:
    ///   config.json             the fully resolved config (`--config DIR/config.json` repeats it)
    ///   metrics.jsonl           one JSON object per epoch: epoch, train_loss, train_accuracy,
    ///                           test_loss, test_accuracy (weights hard-quantized), samples_per_s,
    ///                           seconds, and per weight layer its bits, alpha (grid step),
    ///                           near_frac (share of weights within 0.1 step of a grid point), mse
    ///   checkpoint.safetensors  weights ("model.w0", ...), quantizer parameters ("quant.*"),
    ///                           optimizer state ("optim.*", "qoptim.*") and, in the metadata, the
    ///                           config and position; readable with Python's safetensors
    /// A checkpoint is written every --checkpoint-every epochs, at the end, and on Ctrl-C;
    /// `--resume DIR` continues bit for bit. Weights are quantized per layer; biases stay in full
    /// precision. The train/test split is fixed (seed 0, 20 % test).
    ///
    /// --model gpt trains nanoGPT's character-level GPT on a text:
    ///   `optiscope train --model gpt --preset baby --out runs/baby`
    /// (presets: baby — nanoGPT's CPU run, 4 layers, 4 heads, C = 128, context 64, batch 12, 2000
    /// steps, AdamW 1e-3 with 100 warm-up steps and cosine decay; shakespeare-char — 6/6/384,
    /// context 256, batch 64, 5000 steps). Without --preset: baby's sizes, a constant rate.
    /// Matrix optimizers (muon, amuse, specgd) orthogonalize the blocks' weight matrices; the
    /// embeddings, gains and biases go to their auxiliary AdamW. It writes:
    ///   config.json             the resolved config (`--config DIR/config.json` repeats it)
    ///   metrics.jsonl           per step {step, train_loss, lr, tokens_per_s}; per evaluation
    ///                           {step, val_loss}; every --spectra-every steps {step,
    ///                           singular_values: {name: [...]}}
    ///   model.safetensors       the weights under nanoGPT's state_dict names (lm_head.weight a
    ///                           copy of transformer.wte.weight) with metadata vocab, n_layer,
    ///                           n_head, n_embd, block_size: GPT(...).load_state_dict(load_file())
    ///   checkpoint.safetensors  everything --resume needs
    /// Both are written at every evaluation, at the end and on Ctrl-C.
    #[command(verbatim_doc_comment)]
    Train(Box<train::TrainArgs>),
    /// Generate text from a GPT run: `optiscope sample --checkpoint runs/baby --tokens 500`.
    ///
    /// Prints the prompt and its continuation, drawn character by character from the softmax of
    /// the last position's logits divided by --temperature, among the --top-k most likely.
    #[command(verbatim_doc_comment)]
    Sample(gpt::SampleArgs),
    /// Evaluate a training run's checkpoint on its test set, optionally after magnitude pruning.
    ///
    /// A GPT run (a folder with model.safetensors, or the file): prints {"loss", "windows",
    /// "tokens"}, the mean next-character loss over consecutive windows of block_size + 1
    /// characters of --text FILE (default: the validation part of the run's text).
    /// An MLP run: prints one JSON line {"epoch", "test_loss", "test_accuracy", "sparsity", "weights"}
    /// (sparsity: the share of exact zeros over the weight matrices, biases excluded).
    /// `--prune F` first zeroes the fraction F of weight entries with the smallest |w| over all
    /// weight matrices together: how a method without exact zeros (adamw_subgradient) is compared
    /// with ProxGen at the same sparsity. The checkpoint file is not changed.
    #[command(verbatim_doc_comment)]
    Eval(eval::EvalArgs),
    /// Preference learning on a contextual bandit: `optiscope align --preset coverage`.
    ///
    /// Presets (a CONFIG.json of any kind works too, tagged by "experiment"):
    ///   coverage       DPO by Newton on pairs from offline / on-policy (T rounds) / two-round
    ///                  hybrid (G-optimal design, then on-policy) samplers, π_ref blind to π*
    ///   rich-features  the same with Gaussian features, and on-policy reward distillation
    ///   degeneracy     population DPO at several β; PMLE, preference distillation, reverse KL
    ///   grpo           GRPO (group advantages, clipped ratio, k3 KL) at several KL weights
    ///   thinksafe      refusal steering, guard-filtered self-generation and SFT vs a teacher
    ///   multitask      forward-KL distillation from a teacher, then DPO over weighted tasks
    /// Writes into the output folder:
    ///   config.json    the resolved config (`optiscope align DIR/config.json` repeats it)
    ///   metrics.jsonl  one line per run per round: run, [n_total,] round and the round's values
    ///                  (sampler runs: samples, kl, entropy, c_inf, c_feat)
    ///   summary.json   per run: label, [n_total,] rounds, the last round's values (kl =
    ///                  KL(π*‖π̂) at the end for sampler runs) and the run's own
    #[command(verbatim_doc_comment)]
    Align(align::AlignArgs),
    /// Edge sparsification of graph networks (TEDDY): `optiscope prune --preset sbm`.
    ///
    /// `optiscope prune scores EDGES.csv` prints every edge's TEDDY score (CSV src,dst,score).
    /// `optiscope prune --preset sbm [--method teddy|random|reverse|ugs] [--edges F] [--weights F]
    /// [--distill λ]`
    /// trains a 2-layer GCN on spec C1's degree-corrected SBM, on the whole graph and with the
    /// fraction F of its edges removed by each method (default 0.3, 0.5, 0.7; methods teddy,
    /// random and reverse, one-shot; ugs learns edge masks over rounds and is run when asked), the weights
    /// optionally projected onto the ℓ0 ball (--weights: the fraction removed) after every step
    /// and distilled from the whole graph's model (--distill: λ of the KL to its outputs).
    /// `--config CONFIG.json` (or `-` for standard input) runs a whole experiment config, such as
    /// the config.json of an earlier run or the explorer's copied command; flags override it.
    /// Writes into the output folder:
    ///   config.json    the resolved experiment
    ///   metrics.jsonl  one line per run per epoch: method, edges_removed, epoch, train_loss
    ///   summary.json   per run: method, edges_removed, edges, isolated, test_accuracy,
    ///                  weight_zeros, final_loss
    ///   table.csv      the same rows as CSV
    #[command(verbatim_doc_comment)]
    Prune(prune::PruneArgs),
    /// MoE → dense conversion: `optiscope moe [--scoring diversity] [--grouping none]
    /// [--scaling gate-mass] [--k 4] --out DIR`.
    ///
    /// On spec C2's tiny mixture (d = 16, 8 SwiGLU experts of width 8, top-2 routing, experts
    /// 0/1 and 2/3 near-duplicates), each of the seven scorers (frequency, gate-mass,
    /// activation-norm, reap, weight-norm, random, diversity) selects k experts on 2048
    /// calibration tokens; they are grouped (none, router, signature, weights, uniform), scaled
    /// (gate-mass, cond-gate), concatenated into one dense SwiGLU FFN of width k·8 — exactly
    /// FFN(x) = Σ_j c_j E_j(x) — and distilled from the mixture (MSE, Adam, 400 steps of 256
    /// tokens). Errors are ‖y − ŷ‖²/‖y‖² on 2048 held-out tokens.
    /// Writes into the output folder:
    ///   config.json                  the resolved config (`--config DIR/config.json` repeats it)
    ///   metrics.jsonl                one line per scorer per step: scoring, step, distill_loss
    ///   teacher.safetensors          mlp.gate.weight [E, d], mlp.experts.{e}.gate_proj.weight
    ///                                [h, d], ….up_proj.weight [h, d], ….down_proj.weight [d, h]
    ///   dense.safetensors            the chosen scorer's concatenation: mlp.gate_proj.weight
    ///                                [k·h, d], mlp.up_proj.weight [k·h, d], mlp.down_proj.weight
    ///                                [d, k·h] (scales folded into the down-projection columns)
    ///   dense-distilled.safetensors  the same after distillation
    ///   summary.json                 selected (concatenation order), scales (same order), groups,
    ///                                its errors, "errors" per scorer (selected, scales,
    ///                                pre_distillation, pre_distillation_by_scaling,
    ///                                post_distillation) and the routing heat map
    #[command(verbatim_doc_comment)]
    Moe(moe::MoeArgs),
}

/// Counts live host bytes for `optiscope bench --suite zo`'s memory figures (a relaxed atomic
/// addition per allocation).
#[global_allocator]
static ALLOC: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Replay(a) => replay::replay(a),
        Command::List(a) => list::list(a),
        Command::Bench(a) => bench::bench(a),
        Command::Train(a) => train::train(*a),
        Command::Eval(a) => eval::eval(a),
        Command::Sample(a) => gpt::sample(a),
        Command::Align(a) => align::align(a),
        Command::Prune(a) => prune::prune(a),
        Command::Moe(a) => moe::moe(a),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS, // e.g. `optiscope list | head`
        Err(err) => {
            eprintln!("error: {err:#}");
            if err.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Whether the error is a write to a closed pipe (the reader went away; nothing to report).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        let io = e.downcast_ref::<std::io::Error>().map(std::io::Error::kind);
        let json = e
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io.or(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}
