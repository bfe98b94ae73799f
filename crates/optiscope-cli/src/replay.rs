//! `optiscope replay`: optimizer conformance on recorded gradients.
//!
//! Input: `{"optimizer": {config}, "params": {"NAME": {"shape": [..], "data": [..], "role"?}},
//! "grads": [{"NAME": [..flat..]}, ...]}`. Output on stdout: `{"steps": [{"params": {..},
//! "eval_params": {..}}, ...]}`, one entry per gradient set.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use optiscope_core::optim::{OptimizerConfig, Param, ParamRole};
use optiscope_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Executor};
use crate::input::{bad, read_json};

/// Arguments of `optiscope replay` (the help text is on `Command::Replay`).
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The trace file.
    trace: PathBuf,
    /// Where the optimizer runs: auto (a real GPU if present, else the CPU), cpu, or gpu (any
    /// adapter, software ones included; fails without one).
    #[arg(long, value_enum, default_value = "auto", env = "OPTISCOPE_BACKEND")]
    backend: Backend,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Trace {
    optimizer: OptimizerConfig,
    params: BTreeMap<String, TraceParam>,
    grads: Vec<BTreeMap<String, Vec<f64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceParam {
    shape: Vec<usize>,
    data: Vec<f64>,
    #[serde(default)]
    role: ParamRole,
}

#[derive(Serialize)]
struct ReplayOut {
    steps: Vec<StepOut>,
}

/// Values are written as f32 (the shortest decimal that reads back as the same f32).
#[derive(Serialize)]
struct StepOut {
    params: BTreeMap<String, Vec<f32>>,
    eval_params: BTreeMap<String, Vec<f32>>,
}

/// f64 input values as f32, refusing anything that is not finite in f32.
fn to_f32(what: &str, values: &[f64]) -> anyhow::Result<Vec<f32>> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let f = v as f32;
            if f.is_finite() {
                Ok(f)
            } else {
                Err(bad(format!(
                    "{what}[{i}] = {v}: not a finite f32 (|value| must be below 3.4e38)"
                )))
            }
        })
        .collect()
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let trace: Trace = read_json(&args.trace)?;
    trace
        .optimizer
        .validate()
        .map_err(|e| bad(format!("optimizer.{e}")))?;
    if trace.params.is_empty() {
        return Err(bad("params: the trace has no parameters"));
    }
    let mut params = Vec::with_capacity(trace.params.len());
    for (name, p) in &trace.params {
        let data = to_f32(&format!("params.{name}.data"), &p.data)?;
        let value =
            Tensor::new(p.shape.clone(), data).map_err(|e| bad(format!("params.{name}: {e}")))?;
        params.push(Param {
            name: name.clone(),
            value,
            role: p.role,
        });
    }
    let known = params
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let executor = Executor::select(args.backend)?;
    let mut optimizer = executor
        .build(&trace.optimizer, &params)
        .map_err(|e| bad(format!("optimizer.{e}")))?;
    let mut steps = Vec::with_capacity(trace.grads.len());
    for (t, g) in trace.grads.iter().enumerate() {
        if let Some(extra) = g.keys().find(|k| !trace.params.contains_key(*k)) {
            return Err(bad(format!(
                "grads[{t}].{extra}: no parameter named {extra:?} (parameters: {known})"
            )));
        }
        let mut grads = Vec::with_capacity(params.len());
        for p in &params {
            let values = g
                .get(&p.name)
                .ok_or_else(|| bad(format!("grads[{t}]: missing the gradient of {:?}", p.name)))?;
            if values.len() != p.value.len() {
                return Err(bad(format!(
                    "grads[{t}].{}: {} values, but the parameter has shape {:?} ({} values)",
                    p.name,
                    values.len(),
                    p.value.shape(),
                    p.value.len()
                )));
            }
            let data = to_f32(&format!("grads[{t}].{}", p.name), values)?;
            grads.push(Tensor::new(p.value.shape().to_vec(), data)?);
        }
        optimizer
            .step(&mut params, &grads)
            .with_context(|| format!("step {}", t + 1))?;
        let eval = optimizer.eval_params(&params);
        steps.push(StepOut {
            params: params
                .iter()
                .map(|p| (p.name.clone(), p.value.data().to_vec()))
                .collect(),
            eval_params: params
                .iter()
                .zip(eval)
                .map(|(p, e)| (p.name.clone(), e.into_data()))
                .collect(),
        });
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &ReplayOut { steps })?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}
