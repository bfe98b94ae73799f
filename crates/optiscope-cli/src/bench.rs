//! `optiscope bench`: GPU kernels against the CPU executor, measured in the same run.
//!
//! Every figure is a rate over a timed region that starts after a warm-up (pipeline creation,
//! first dispatch) and ends only when the GPU has finished (`device.poll(wait)`):
//! * matrix product: GFLOP/s = 2·n³ / seconds per product;
//! * Newton–Schulz (5 quintic steps, n×n): milliseconds per orthogonalization, and the same
//!   GFLOP/s convention over its 15 products (5 × (2n³ + 2n³ + 2n³));
//! * AdamW update: parameters/s, and GB/s = 28 bytes per parameter (read p, g, m, v; write p, m, v);
//! * MLP training on the digits (`optiscope train`'s trainer, forward + backward + quantizer +
//!   AdamW, one read-back of the loss per step): training samples/s, epoch-end evaluations
//!   excluded.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use optiscope_core::device::optim::elementwise::{adam_step, AdamScalars};
use optiscope_core::device::optim::orthogonalize::{Orthogonalizer, MUON_NS_COEFFICIENTS};
use optiscope_core::device::{Cpu, Device};
use optiscope_core::quant::{QuantConfig, QuantMethod};
use optiscope_core::rng::Philox;
use optiscope_core::tensor::{gemm, Op};
use optiscope_core::train::{TrainConfig, Trainer};
use optiscope_gpu::ops::dense::{self, MatmulKernel, ReduceScratch};
use optiscope_gpu::ops::optim::{self, ElemParams};
use optiscope_gpu::{AdapterPolicy, GpuContext, GpuDevice};
use serde::Serialize;

/// Arguments of `optiscope bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Matrix sizes n of the n×n×n products and n×n Newton–Schulz.
    #[arg(long, value_delimiter = ',', default_value = "128,256,512,1024")]
    sizes: Vec<usize>,
    /// Parameter counts of the AdamW update.
    #[arg(long, value_delimiter = ',', default_value = "1048576,4194304")]
    params: Vec<usize>,
    /// Seconds to spend on each measurement (after warm-up); more repeats give steadier figures.
    #[arg(long, default_value_t = 0.5)]
    seconds: f64,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// What to measure: `kernels` (GPU kernels and MLP training against the CPU executor; needs
    /// an adapter) or `zo` (MeZO-BCD against MeZO on MLP 64-1024-1024-10, CPU and, if present,
    /// GPU; peak memory of a MeZO step against an AdamW step).
    #[arg(long, value_parser = ["kernels", "zo"], default_value = "kernels")]
    suite: String,
    /// zo: the target training loss (mean over the last 23 minibatches).
    #[arg(long, default_value_t = 1.0)]
    zo_target: f64,
    /// zo: the most steps per run.
    #[arg(long, default_value_t = 3000)]
    zo_steps: u64,
    /// zo: the steps of the GPU runs (their time per step; the trajectory is the CPU's, to the
    /// conformance tolerance, so steps to target are measured on the CPU).
    #[arg(long, default_value_t = 200)]
    zo_gpu_steps: u64,
    /// zo: the learning rate of both methods (ε = 1e-3).
    #[arg(long, default_value_t = 5e-4)]
    zo_lr: f64,
}

#[derive(Serialize)]
struct Report {
    adapter: String,
    adapter_is_software: bool,
    cpu: String,
    cpu_threads: usize,
    matmul: Vec<MatmulRow>,
    newton_schulz: Vec<NsRow>,
    adamw: Vec<AdamRow>,
    training: Vec<TrainRow>,
}

#[derive(Serialize)]
struct TrainRow {
    model: String,
    quant: String,
    batch: usize,
    cpu_samples_per_s: f64,
    gpu_samples_per_s: f64,
    gpu_speedup: f64,
}

#[derive(Serialize)]
struct MatmulRow {
    n: usize,
    gpu_vec4_gflops: f64,
    gpu_tiled_gflops: f64,
    gpu_naive_gflops: f64,
    cpu_gflops: f64,
    tiled_over_naive: f64,
    tiled_over_cpu: f64,
    vec4_over_naive: f64,
    vec4_over_cpu: f64,
}

#[derive(Serialize)]
struct NsRow {
    n: usize,
    gpu_ms: f64,
    cpu_ms: f64,
    gpu_gflops: f64,
    cpu_gflops: f64,
    gpu_speedup: f64,
}

#[derive(Serialize)]
struct AdamRow {
    params: usize,
    gpu_params_per_s: f64,
    cpu_params_per_s: f64,
    gpu_gb_per_s: f64,
    cpu_gb_per_s: f64,
    gpu_speedup: f64,
}

/// Seconds per call of `run` (which performs one unit of work and waits for it): one warm-up
/// call, then as many calls as fit in `budget` seconds (at least 2).
fn time_per_call(budget: f64, mut run: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    run()?;
    let t0 = Instant::now();
    run()?;
    let once = t0.elapsed().as_secs_f64().max(1e-9);
    let reps = ((budget / once) as usize).clamp(1, 1000);
    let t0 = Instant::now();
    for _ in 0..reps {
        run()?;
    }
    Ok((once + t0.elapsed().as_secs_f64()) / (reps + 1) as f64)
}

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut v = vec![0.0; n];
    Philox::new(seed).fill_normal(0, 1.0, &mut v);
    v
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn matmul_rows(ctx: &Arc<GpuContext>, args: &BenchArgs) -> anyhow::Result<Vec<MatmulRow>> {
    let mut rows = vec![];
    for &n in &args.sizes {
        let (a, b) = (random(n * n, 1), random(n * n, 2));
        let flops = 2.0 * (n as f64).powi(3);
        let mut c = vec![0.0f32; n * n];
        let cpu = time_per_call(args.seconds, || {
            gemm(n, n, n, 1.0, &a, Op::N, &b, Op::N, 0.0, &mut c);
            Ok(())
        })?;
        let (ga, gb, gc) = (ctx.buffer_from(&a), ctx.buffer_from(&b), ctx.zeros(n * n));
        let gpu = |kernel| {
            time_per_call(args.seconds, || {
                let mut enc = ctx.encoder();
                dense::gemm(
                    ctx,
                    &mut enc,
                    kernel,
                    (n, n, n),
                    1.0,
                    &ga,
                    Op::N,
                    &gb,
                    Op::N,
                    0.0,
                    &gc,
                )?;
                ctx.submit(enc);
                ctx.wait_idle()?;
                Ok(())
            })
        };
        let vec4 = gpu(MatmulKernel::Vec4)?;
        let tiled = gpu(MatmulKernel::Tiled)?;
        let naive = gpu(MatmulKernel::Naive)?;
        rows.push(MatmulRow {
            n,
            gpu_vec4_gflops: flops / vec4 / 1e9,
            vec4_over_naive: naive / vec4,
            vec4_over_cpu: cpu / vec4,
            gpu_tiled_gflops: flops / tiled / 1e9,
            gpu_naive_gflops: flops / naive / 1e9,
            cpu_gflops: flops / cpu / 1e9,
            tiled_over_naive: naive / tiled,
            tiled_over_cpu: cpu / tiled,
        });
    }
    Ok(rows)
}

fn ns_rows(ctx: &Arc<GpuContext>, args: &BenchArgs) -> anyhow::Result<Vec<NsRow>> {
    let orth = Orthogonalizer::NewtonSchulz {
        coefficients: MUON_NS_COEFFICIENTS.map(|c| c as f32),
        steps: 5,
        eps: 1e-7,
    };
    let scratch = ReduceScratch::new(ctx);
    let mut rows = vec![];
    for &n in &args.sizes {
        let g = random(n * n, 3);
        let flops = 5.0 * 3.0 * 2.0 * (n as f64).powi(3);
        let cpu = time_per_call(args.seconds, || {
            orth.apply(&g, n, n)?;
            Ok(())
        })?;
        let u = ctx.buffer_from(&g);
        let gpu = time_per_call(args.seconds, || {
            let mut enc = ctx.encoder();
            optim::newton_schulz(ctx, &mut enc, &scratch, &u, (n, n), &orth)?;
            ctx.submit(enc);
            ctx.wait_idle()?;
            Ok(())
        })?;
        rows.push(NsRow {
            n,
            gpu_ms: gpu * 1e3,
            cpu_ms: cpu * 1e3,
            gpu_gflops: flops / gpu / 1e9,
            cpu_gflops: flops / cpu / 1e9,
            gpu_speedup: cpu / gpu,
        });
    }
    Ok(rows)
}

fn adam_rows(ctx: &Arc<GpuContext>, args: &BenchArgs) -> anyhow::Result<Vec<AdamRow>> {
    let s = AdamScalars {
        lr: 1e-3,
        one_minus_beta1: 0.1,
        beta2: 0.999,
        one_minus_beta2: 0.001,
        eps: 1e-8,
        weight_decay: 0.01,
        decoupled: true,
        maximize: false,
        amsgrad: false,
        step_size: 1e-2,
        bc2_sqrt: 0.0316,
    };
    let mut rows = vec![];
    for &n in &args.params {
        let g = random(n, 4);
        let (mut p, mut m, mut v, mut vmax) =
            (random(n, 5), vec![0.0f32; n], vec![0.0f32; n], vec![]);
        let cpu = time_per_call(args.seconds, || {
            adam_step(&mut p, &g, &mut m, &mut v, &mut vmax, &s);
            Ok(())
        })?;
        let (gp, gg, gm, gv, gvmax) = (
            ctx.buffer_from(&p),
            ctx.buffer_from(&g),
            ctx.zeros(n),
            ctx.zeros(n),
            ctx.zeros(1),
        );
        let params = ElemParams::adam(n, &s);
        let gpu = time_per_call(args.seconds, || {
            let mut enc = ctx.encoder();
            optim::elementwise(
                ctx,
                &mut enc,
                "adam_step",
                &params,
                &[(1, &gp), (2, &gg), (3, &gm), (4, &gv), (5, &gvmax)],
            )?;
            ctx.submit(enc);
            ctx.wait_idle()?;
            Ok(())
        })?;
        let bytes = 28.0 * n as f64;
        rows.push(AdamRow {
            params: n,
            gpu_params_per_s: n as f64 / gpu,
            cpu_params_per_s: n as f64 / cpu,
            gpu_gb_per_s: bytes / gpu / 1e9,
            cpu_gb_per_s: bytes / cpu / 1e9,
            gpu_speedup: cpu / gpu,
        });
    }
    Ok(rows)
}

/// Training samples per second of `cfg` on `dev`, over about `budget` seconds after 3 warm-up
/// steps; steps that end an epoch (and so evaluate) are not counted.
fn train_rate<D: Device + 'static>(dev: D, cfg: &TrainConfig, budget: f64) -> anyhow::Result<f64> {
    let (train, test) = cfg.data.load(cfg.test_fraction, cfg.split_seed);
    let mut t =
        Trainer::new(cfg.clone(), &train, &test, dev).map_err(|e| anyhow::anyhow!("{e}"))?;
    for _ in 0..3 {
        t.step().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let (mut secs, mut samples) = (0.0, 0usize);
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < budget || samples == 0 {
        let s0 = Instant::now();
        let done = t.step().map_err(|e| anyhow::anyhow!("{e}"))?;
        if done.is_none() {
            secs += s0.elapsed().as_secs_f64();
            samples += cfg.batch_size;
        }
    }
    Ok(samples as f64 / secs)
}

fn train_rows(ctx: &Arc<GpuContext>, args: &BenchArgs) -> anyhow::Result<Vec<TrainRow>> {
    let mut rows = vec![];
    for (hidden, batch, quant) in [
        (vec![128], 64, QuantConfig::default()),
        (vec![128], 64, QuantConfig::new(QuantMethod::Cpq, 2)),
        (vec![1024, 1024], 512, QuantConfig::new(QuantMethod::Cpq, 2)),
    ] {
        let cfg = TrainConfig {
            hidden: hidden.clone(),
            batch_size: batch,
            quant,
            epochs: 1_000_000,
            ..TrainConfig::default()
        };
        let cpu = train_rate(Cpu, &cfg, args.seconds * 4.0)?;
        let gpu = train_rate(GpuDevice::new(ctx.clone()), &cfg, args.seconds * 4.0)?;
        let widths: Vec<String> = std::iter::once(64)
            .chain(hidden)
            .chain(std::iter::once(10))
            .map(|w| w.to_string())
            .collect();
        rows.push(TrainRow {
            model: format!("MLP {}", widths.join("-")),
            quant: cfg.quant.label(),
            batch,
            cpu_samples_per_s: cpu,
            gpu_samples_per_s: gpu,
            gpu_speedup: gpu / cpu,
        });
    }
    Ok(rows)
}

/// The largest matrix size n of `--sizes` (an n×n f32 matrix is 256 MiB at 8192).
const MAX_SIZE: usize = 8192;
/// The most parameters of `--params`.
const MAX_PARAMS: usize = 1 << 28;

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.suite == "zo" {
        return zo(&args);
    }
    if let Some(n) = args.sizes.iter().find(|&&n| !(1..=MAX_SIZE).contains(&n)) {
        return Err(crate::input::bad(format!(
            "--sizes {n}: each size must be in 1..={MAX_SIZE}"
        )));
    }
    if let Some(n) = args
        .params
        .iter()
        .find(|&&n| !(1..=MAX_PARAMS).contains(&n))
    {
        return Err(crate::input::bad(format!(
            "--params {n}: each count must be in 1..={MAX_PARAMS}"
        )));
    }
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; build with --release for meaningful figures");
    }
    let ctx = crate::backend::request_gpu(AdapterPolicy::AllowSoftware)
        .map_err(|e| anyhow::anyhow!("bench needs a GPU adapter: {e}"))?;
    eprintln!(
        "benchmarking on {} against the CPU executor ({})",
        ctx.describe(),
        cpu_name()
    );
    let report = Report {
        adapter: ctx.describe(),
        adapter_is_software: ctx.is_software(),
        cpu: cpu_name(),
        cpu_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        matmul: matmul_rows(&ctx, &args)?,
        newton_schulz: ns_rows(&ctx, &args)?,
        adamw: adam_rows(&ctx, &args)?,
        training: train_rows(&ctx, &args)?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "GPU: {}{}",
        report.adapter,
        if report.adapter_is_software {
            "  [software rasterizer]"
        } else {
            ""
        }
    );
    println!("CPU: {} ({} threads)\n", report.cpu, report.cpu_threads);
    println!("matrix product n×n×n, GFLOP/s (2n³/t)");
    println!(
        "{:>6}  {:>10}  {:>10}  {:>10}  {:>10}  {:>11}  {:>12}  {:>10}",
        "n", "GPU vec4", "GPU tiled", "GPU naive", "CPU", "vec4/naive", "tiled/naive", "vec4/CPU"
    );
    for r in &report.matmul {
        println!(
            "{:>6}  {:>10.2}  {:>10.2}  {:>10.2}  {:>10.2}  {:>11.3}  {:>12.3}  {:>10.4}",
            r.n,
            r.gpu_vec4_gflops,
            r.gpu_tiled_gflops,
            r.gpu_naive_gflops,
            r.cpu_gflops,
            r.vec4_over_naive,
            r.tiled_over_naive,
            r.vec4_over_cpu
        );
    }
    println!("\nNewton–Schulz, 5 quintic steps on n×n");
    println!(
        "{:>6}  {:>10}  {:>10}  {:>12}  {:>12}  {:>8}",
        "n", "GPU ms", "CPU ms", "GPU GFLOP/s", "CPU GFLOP/s", "GPU/CPU"
    );
    for r in &report.newton_schulz {
        println!(
            "{:>6}  {:>10.2}  {:>10.2}  {:>12.2}  {:>12.2}  {:>8.4}",
            r.n, r.gpu_ms, r.cpu_ms, r.gpu_gflops, r.cpu_gflops, r.gpu_speedup
        );
    }
    println!("\nAdamW update (28 bytes per parameter)");
    println!(
        "{:>10}  {:>12}  {:>12}  {:>10}  {:>10}  {:>8}",
        "params", "GPU param/s", "CPU param/s", "GPU GB/s", "CPU GB/s", "GPU/CPU"
    );
    for r in &report.adamw {
        println!(
            "{:>10}  {:>12.3e}  {:>12.3e}  {:>10.2}  {:>10.2}  {:>8.2}",
            r.params,
            r.gpu_params_per_s,
            r.cpu_params_per_s,
            r.gpu_gb_per_s,
            r.cpu_gb_per_s,
            r.gpu_speedup
        );
    }
    println!(
        "\nMLP training on the digits, AdamW, samples/s (forward, backward, quantizer, update)"
    );
    println!(
        "{:>22}  {:>16}  {:>6}  {:>12}  {:>12}  {:>8}",
        "model", "quantizer", "batch", "GPU sample/s", "CPU sample/s", "GPU/CPU"
    );
    for r in &report.training {
        println!(
            "{:>22}  {:>16}  {:>6}  {:>12.0}  {:>12.0}  {:>8.3}",
            r.model, r.quant, r.batch, r.gpu_samples_per_s, r.cpu_samples_per_s, r.gpu_speedup
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--suite zo`.
fn zo(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if !(args.zo_target.is_finite() && args.zo_target > 0.0) {
        return Err(crate::input::bad(format!(
            "--zo-target {}: must be a finite number > 0",
            args.zo_target
        )));
    }
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; build with --release for meaningful figures");
    }
    if !(args.zo_lr.is_finite() && args.zo_lr > 0.0) {
        return Err(crate::input::bad(format!(
            "--zo-lr {}: must be a finite number > 0",
            args.zo_lr
        )));
    }
    let report =
        crate::bench_zo::bench_zo(args.zo_target, args.zo_steps, args.zo_gpu_steps, args.zo_lr)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", crate::bench_zo::table(&report, &cpu_name()));
    Ok(ExitCode::SUCCESS)
}
