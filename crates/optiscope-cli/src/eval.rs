//! `optiscope eval DIR [--prune FRACTION]`: a training run's checkpoint evaluated on its test set,
//! optionally after global magnitude pruning of its weight matrices (what a method that reaches no
//! exact zeros — the subgradient baseline — is compared at, against ProxGen's sparsity).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use optiscope_core::device::Cpu;
use optiscope_core::train::{Checkpoint, Trainer};
use serde::Serialize;

use crate::input::bad;

/// Arguments of `optiscope eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A training run's folder (its checkpoint.safetensors, which holds the config).
    dir: PathBuf,
    /// First zero this fraction (0..=1) of the weight-matrix entries with the smallest |w|, over
    /// every weight matrix together (biases are kept); entries already zero count towards it.
    #[arg(long, value_name = "FRACTION")]
    prune: Option<f64>,
    /// A GPT run: the text whose loss is measured [default: the validation part of the run's
    /// text].
    #[arg(long, value_name = "FILE")]
    text: Option<PathBuf>,
}

#[derive(Serialize)]
struct EvalLine {
    epoch: u64,
    test_loss: f64,
    test_accuracy: f64,
    /// Share of exact zeros over the weight matrices.
    sparsity: f64,
    weights: usize,
}

/// The weight matrices of a checkpoint: its rank-2 `model.*` tensors.
fn weight_names(ck: &Checkpoint) -> Vec<String> {
    ck.tensors
        .iter()
        .filter(|(name, (shape, _))| name.starts_with("model.") && shape.len() == 2)
        .map(|(name, _)| name.clone())
        .collect()
}

/// Zeroes the `fraction` of all entries of the tensors `names` with the smallest magnitudes.
fn prune(ck: &mut Checkpoint, names: &[String], fraction: f64) {
    let mut all: Vec<(f32, usize, usize)> = vec![];
    for (t, name) in names.iter().enumerate() {
        let data = &ck.tensors[name].1;
        all.extend(data.iter().enumerate().map(|(i, v)| (v.abs(), t, i)));
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let k = (fraction * all.len() as f64).round() as usize;
    for &(_, t, i) in &all[..k.min(all.len())] {
        if let Some((_, data)) = ck.tensors.get_mut(&names[t]) {
            data[i] = 0.0;
        }
    }
}

/// `optiscope eval`.
pub fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    if args.dir.join("model.safetensors").exists() || args.dir.is_file() {
        if args.prune.is_some() {
            return Err(bad("--prune applies to MLP runs"));
        }
        return crate::gpt::eval(&args.dir, args.text.as_deref());
    }
    if args.text.is_some() {
        return Err(bad(format!(
            "--text applies to GPT runs; {} holds no model.safetensors",
            args.dir.display()
        )));
    }
    if let Some(f) = args.prune {
        if !(0.0..=1.0).contains(&f) {
            return Err(bad(format!("--prune {f}: must be a fraction in [0, 1]")));
        }
    }
    let (cfg, mut ck) = crate::train::read_checkpoint(&args.dir, "eval")?;
    let names = weight_names(&ck);
    if let Some(f) = args.prune {
        prune(&mut ck, &names, f);
    }
    let (zeros, weights) = names.iter().fold((0usize, 0usize), |(z, n), name| {
        let d = &ck.tensors[name].1;
        (z + d.iter().filter(|v| **v == 0.0).count(), n + d.len())
    });
    let (train, test) = cfg.data.load(cfg.test_fraction, cfg.split_seed);
    let mut t = Trainer::new(cfg, &train, &test, Cpu).map_err(|e| anyhow::anyhow!("{e}"))?;
    t.restore(ck)
        .map_err(|e| bad(format!("{}: {e}", args.dir.display())))?;
    let (test_loss, test_accuracy) = t.evaluate_test().map_err(|e| anyhow::anyhow!("{e}"))?;
    let line = EvalLine {
        epoch: t.epoch(),
        test_loss,
        test_accuracy,
        sparsity: zeros as f64 / weights.max(1) as f64,
        weights,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(ExitCode::SUCCESS)
}
