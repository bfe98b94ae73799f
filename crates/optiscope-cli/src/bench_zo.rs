//! `optiscope bench --suite zo`: MeZO-BCD against MeZO on the largest model the trainer has
//! (the MLP 64-1024-1024-10 on the digits), on the CPU executor and, when an adapter is present,
//! the GPU one, all in one run; and the peak memory of a MeZO step against an AdamW backprop step.
//!
//! * ms per step: the mean over steady-state steps (after 3 warm-up steps; steps that end an
//!   epoch, and so evaluate the test set, are excluded);
//! * steps to target: the first step at which the mean training loss of the last 23 minibatches
//!   (one epoch of the digits at batch 64) falls below `--zo-target`, or "—" within `--zo-steps`;
//! * peak memory: bytes allocated on the host during one step above what was live before it
//!   (`peak_alloc` wraps the system allocator; the CPU executor keeps everything on the host, so
//!   this is the step's whole working set: gradients, moments and activations for AdamW,
//!   activations of one forward pass for MeZO), and the optimizer's persistent state.

use std::time::Instant;

use optiscope_core::device::{Cpu, Device};
use optiscope_core::train::{TrainConfig, Trainer};
use optiscope_gpu::{AdapterPolicy, GpuDevice};
use serde::Serialize;

/// Runs `f` and returns its result with the peak of live host bytes during it above the live
/// bytes before it (the binary's global allocator is `peak_alloc::PeakAlloc`).
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = crate::ALLOC.current_usage();
    crate::ALLOC.reset_peak_usage();
    let out = f();
    (out, crate::ALLOC.peak_usage().saturating_sub(before))
}

#[derive(Serialize)]
pub struct ZoRow {
    backend: String,
    optimizer: String,
    ms_per_step: f64,
    steps_to_target: Option<u64>,
    final_loss: f64,
}

#[derive(Serialize)]
pub struct MemRow {
    optimizer: String,
    step_peak_bytes: usize,
    state_bytes: usize,
}

#[derive(Serialize)]
pub struct ZoReport {
    model: String,
    target: f64,
    max_steps: u64,
    gpu_steps: u64,
    adapter: Option<String>,
    runs: Vec<ZoRow>,
    memory: Vec<MemRow>,
}

fn config(optimizer: &str) -> TrainConfig {
    TrainConfig {
        hidden: vec![1024, 1024],
        epochs: 1_000_000,
        optimizer: serde_json::from_str(optimizer).unwrap_or_else(|e| panic!("{optimizer}: {e}")),
        ..TrainConfig::default()
    }
}

const WINDOW: usize = 23;

fn zo_run<D: Device + 'static>(
    dev: D,
    backend: &str,
    optimizer: &str,
    target: f64,
    max_steps: u64,
) -> anyhow::Result<ZoRow> {
    let cfg = config(optimizer);
    let (train, test) = cfg.data.load(cfg.test_fraction, cfg.split_seed);
    let mut t =
        Trainer::new(cfg.clone(), &train, &test, dev).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut secs, mut timed) = (0.0f64, 0u64);
    let mut losses: Vec<f64> = vec![];
    let mut reached = None;
    for step in 1..=max_steps {
        let s0 = Instant::now();
        let done = t.step().map_err(|e| anyhow::anyhow!("{e}"))?;
        let dt = s0.elapsed().as_secs_f64();
        if done.is_none() && step > 3 {
            secs += dt;
            timed += 1;
        }
        losses.push(t.last_loss());
        if losses.len() >= WINDOW {
            let w = &losses[losses.len() - WINDOW..];
            if w.iter().sum::<f64>() / WINDOW as f64 <= target {
                reached = Some(step);
                break;
            }
        }
    }
    let tail = &losses[losses.len().saturating_sub(WINDOW)..];
    Ok(ZoRow {
        backend: backend.into(),
        optimizer: optimizer.into(),
        ms_per_step: 1000.0 * secs / timed.max(1) as f64,
        steps_to_target: reached,
        final_loss: tail.iter().sum::<f64>() / tail.len().max(1) as f64,
    })
}

fn memory_row(optimizer: &str) -> anyhow::Result<MemRow> {
    let cfg = config(optimizer);
    let (train, test) = cfg.data.load(cfg.test_fraction, cfg.split_seed);
    let mut t =
        Trainer::new(cfg.clone(), &train, &test, Cpu).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Two steps first: state created lazily is then in place.
    for _ in 0..2 {
        t.step().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let (r, peak) = peak_during(|| t.step());
    r.map_err(|e| anyhow::anyhow!("{e}"))?;
    let ck = t.save().map_err(|e| anyhow::anyhow!("{e}"))?;
    let state_bytes = ck
        .tensors
        .iter()
        .filter(|(name, _)| name.starts_with("optim."))
        .map(|(_, (_, data))| 4 * data.len())
        .sum();
    Ok(MemRow {
        optimizer: cfg.optimizer.name().to_string(),
        step_peak_bytes: peak,
        state_bytes,
    })
}

/// Runs the suite.
pub fn bench_zo(target: f64, max_steps: u64, gpu_steps: u64, lr: f64) -> anyhow::Result<ZoReport> {
    let mezo = &format!(r#"{{"name":"mezo","lr":{lr},"eps":1e-3}}"#);
    let bcd = &format!(r#"{{"name":"mezo_bcd","lr":{lr},"eps":1e-3}}"#);
    let mut runs = vec![];
    for opt in [mezo, bcd] {
        eprintln!("cpu: {opt}");
        runs.push(zo_run(Cpu, "cpu", opt, target, max_steps)?);
    }
    let adapter = match crate::backend::request_gpu(AdapterPolicy::AllowSoftware) {
        Ok(ctx) => {
            for opt in [mezo, bcd] {
                runs.push(zo_run(
                    GpuDevice::new(ctx.clone()),
                    "gpu",
                    opt,
                    target,
                    gpu_steps,
                )?);
            }
            Some(ctx.describe())
        }
        Err(e) => {
            eprintln!("no GPU adapter ({e}): the CPU executor only");
            None
        }
    };
    let memory = vec![
        memory_row(mezo)?,
        memory_row(bcd)?,
        memory_row(r#"{"name":"adamw","lr":1e-3}"#)?,
    ];
    Ok(ZoReport {
        model: "MLP 64-1024-1024-10, batch 64".into(),
        target,
        max_steps,
        gpu_steps,
        adapter,
        runs,
        memory,
    })
}

/// The report as Markdown tables.
pub fn table(r: &ZoReport, cpu: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}; CPU: {cpu}; GPU: {}",
        r.model,
        r.adapter.as_deref().unwrap_or("none")
    );
    let _ = writeln!(
        out,
        "\n| backend | optimizer | ms per step | steps to loss {} (CPU ≤ {}, GPU ≤ {}) | mean loss of the last 23 steps |",
        r.target, r.max_steps, r.gpu_steps
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|");
    for row in &r.runs {
        let steps = row
            .steps_to_target
            .map_or_else(|| "—".to_string(), |s| s.to_string());
        let _ = writeln!(
            out,
            "| {} | `{}` | {:.2} | {} | {:.3} |",
            row.backend, row.optimizer, row.ms_per_step, steps, row.final_loss
        );
    }
    for backend in ["cpu", "gpu"] {
        let ms = |name: &str| {
            r.runs
                .iter()
                .find(|x| x.backend == backend && x.optimizer.contains(name))
                .map(|x| x.ms_per_step)
        };
        if let (Some(a), Some(b)) = (ms("\"mezo\""), ms("mezo_bcd")) {
            let _ = writeln!(
                out,
                "\n{backend}: MeZO-BCD is {:.2}× MeZO's speed per step",
                a / b
            );
        }
    }
    let _ = writeln!(
        out,
        "\n| optimizer (CPU executor) | peak bytes during one step | optimizer state bytes |"
    );
    let _ = writeln!(out, "|---|---:|---:|");
    for m in &r.memory {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            m.optimizer, m.step_peak_bytes, m.state_bytes
        );
    }
    out
}
