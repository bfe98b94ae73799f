//! The whole trainer on the GPU against the CPU (every family at once, through the same host code),
//! and the GPU side of the resume claim.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use common::{gpu, gpu_device, rel_err};
use optiscope_core::device::Cpu;
use optiscope_core::optim::OptimizerConfig;
use optiscope_core::quant::{LearnBitsConfig, QuantConfig, QuantMethod};
use optiscope_core::rng::{stream, Philox, StreamKind};
use optiscope_core::train::{Checkpoint, TrainConfig, Trainer};
use optiscope_gpu::{GpuContext, GpuDevice};

/// `Trainer<Cpu>` and `Trainer<GpuDevice>` of the same run (same initialization, minibatches and
/// quantizer noise) on the digits with one hidden layer of 32 and the default AdamW (lr 1e-2).
fn trainers(ctx: &Arc<GpuContext>, quant: QuantConfig) -> (Trainer<Cpu>, Trainer<GpuDevice>) {
    let cfg = TrainConfig {
        epochs: 1,
        quant,
        hidden: vec![32],
        ..TrainConfig::default()
    };
    let (train, test) = cfg.data.load(cfg.test_fraction, cfg.split_seed);
    let cpu = Trainer::new(cfg.clone(), &train, &test, Cpu).unwrap();
    let gpu = Trainer::new(cfg, &train, &test, gpu_device(ctx)).unwrap();
    (cpu, gpu)
}

/// End to end in full precision and with RQ at 2 bits: after 5 steps every layer's weights agree
/// to 1e-4 of their largest entry (tensor-relative; f32 matmuls and log-masses summed in another
/// order), and so does the running training loss.
#[test]
fn trainer_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    for method in [QuantMethod::None, QuantMethod::Rq] {
        let (mut cpu, mut gpu) = trainers(&ctx, QuantConfig::new(method, 2));
        for _ in 0..5 {
            cpu.step().unwrap();
            gpu.step().unwrap();
        }
        let mut worst = 0.0f64;
        for l in 0..cpu.layers() {
            let (c, g) = (cpu.layer_view(l).unwrap(), gpu.layer_view(l).unwrap());
            worst = worst.max(rel_err(&g.weights, &c.weights));
        }
        let (cl, gl) = (cpu.running().0, gpu.running().0);
        let lerr = (gl - cl).abs() / cl.abs();
        eprintln!("trainer {method:?}, 5 steps: weights {worst:.2e}, running loss {lerr:.2e}");
        assert!(worst < 1e-4, "{method:?}: weights differ by {worst:.2e}");
        assert!(
            lerr < 1e-4,
            "{method:?}: running loss differs by {lerr:.2e}"
        );
    }
}

/// MeZO and MeZO-BCD end to end (forward passes only): the same perturbations (keyed by step),
/// so after 10 steps the weights agree to 1e-4 (tensor-relative) and the running loss to 1e-4.
#[test]
fn zeroth_order_trainer_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    for json in [
        r#"{"name":"mezo","lr":0.01,"eps":0.001,"weight_decay":0.1}"#,
        r#"{"name":"mezo_bcd","lr":0.01,"schedule":"permutation"}"#,
    ] {
        let cfg = TrainConfig {
            epochs: 1,
            hidden: vec![32],
            optimizer: serde_json::from_str(json).unwrap(),
            ..TrainConfig::default()
        };
        let (train, test) = cfg.data.load(cfg.test_fraction, cfg.split_seed);
        let mut cpu = Trainer::new(cfg.clone(), &train, &test, Cpu).unwrap();
        let mut gpu = Trainer::new(cfg, &train, &test, gpu_device(&ctx)).unwrap();
        let before = cpu.layer_view(0).unwrap().weights;
        for _ in 0..10 {
            cpu.step().unwrap();
            gpu.step().unwrap();
        }
        let mut worst = 0.0f64;
        for l in 0..cpu.layers() {
            let (c, g) = (cpu.layer_view(l).unwrap(), gpu.layer_view(l).unwrap());
            worst = worst.max(rel_err(&g.weights, &c.weights));
        }
        let moved = rel_err(&cpu.layer_view(0).unwrap().weights, &before);
        let (cl, gl) = (cpu.running().0, gpu.running().0);
        let lerr = (gl - cl).abs() / cl.abs();
        eprintln!("{json}, 10 steps: weights {worst:.2e} (moved {moved:.2e}), loss {lerr:.2e}");
        assert!(
            moved > 1e-3,
            "{json}: the weights moved by {moved:.2e} only"
        );
        assert!(worst < 1e-4, "{json}: weights differ by {worst:.2e}");
        assert!(lerr < 1e-4, "{json}: running loss differs by {lerr:.2e}");
    }
}

/// End to end with CPQ at 2 bits, which cannot be compared weight for weight after 5 steps: its
/// quantized weights are exact multiples α·k, the digits' pixels are multiples of 1/16 and the
/// biases start at 0, so some pre-activations `Σ_j x_j·α·k_j` are exactly 0 by cancellation (27
/// of the 1438 training rows for hidden unit 7; 15 of the 32 units on the first minibatch).
/// Their f32 value is a rounding residue whose sign depends on the summation order, which
/// differs between `matrixmultiply` and the tiled WGSL matmul, so the ReLU mask of that row can
/// differ, and with it the gradient of that unit's weights. AdamW's first step is
/// `lr·g/(|g| + ε)`, so such a weight may move by up to 2·lr (0.02) differently; later steps
/// quantize the diverged weights differently and the divergence spreads through those units
/// (about 250 of 2048 layer-0 weights after 5 steps on lavapipe).
///
/// So after ONE step: every weight of the output layer agrees to 1e-4 (tensor-relative); a
/// layer-0 weight either agrees to 1e-4 or lies in the row of a hidden unit with an exactly
/// cancelling pre-activation on a row of the first minibatch, and then differs by at most 2·lr.
/// After 5 steps the running loss still agrees to 1e-3. (No argmax flip of the quantizer occurs
/// here: the GPU's x̂ equals the CPU's after the first step.)
#[test]
fn trainer_matches_cpu_with_cpq() {
    let Some(ctx) = gpu() else { return };
    let lr = 1e-2f32;
    let (mut cpu, mut gpu) = trainers(&ctx, QuantConfig::new(QuantMethod::Cpq, 2));
    // Hidden units with an exactly cancelling pre-activation on a row of the first minibatch
    // (biases are 0). The rows: the epoch-0 shuffle of `Trainer::start_epoch` (Fisher–Yates on
    // Philox stream (Shuffle, 0)), mirrored here; if that changes, this set is wrong and the
    // assertion below names the unit.
    let cfg = cpu.config().clone();
    let (train, _) = cfg.data.load(cfg.test_fraction, cfg.split_seed);
    let rng = Philox::new(cpu.config().seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    for i in (1..train.len()).rev() {
        let j = (u64::from(rng.u32_at(stream(StreamKind::Shuffle, 0), i as u64)) % (i as u64 + 1))
            as usize;
        order.swap(i, j);
    }
    let batch = &order[..cpu.config().batch_size];
    let start = cpu.layer_view(0).unwrap();
    let (fi, alpha) = (train.dim, start.stats.alpha as f32);
    let ambiguous: Vec<bool> = (0..start.weights.len() / fi)
        .map(|u| {
            let k: Vec<i64> = (0..fi)
                .map(|j| (start.xhat[u * fi + j] / alpha).round() as i64)
                .collect();
            batch.iter().any(|&r| {
                let terms =
                    (0..fi).map(|j| (train.features[r * fi + j] * 16.0).round() as i64 * k[j]);
                terms.clone().sum::<i64>() == 0 && terms.clone().any(|t| t != 0)
            })
        })
        .collect();
    cpu.step().unwrap();
    gpu.step().unwrap();
    let (c, g) = (cpu.layer_view(1).unwrap(), gpu.layer_view(1).unwrap());
    let err = rel_err(&g.weights, &c.weights);
    assert!(err < 1e-4, "output layer after 1 step: {err:.2e}");
    let (c, g) = (cpu.layer_view(0).unwrap(), gpu.layer_view(0).unwrap());
    assert_eq!(c.xhat, g.xhat, "x̂ of the hidden layer after 1 step");
    let scale = c.weights.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let mut diverged = 0;
    for (i, (a, b)) in g.weights.iter().zip(&c.weights).enumerate() {
        let d = (a - b).abs();
        if d > 1e-4 * scale {
            diverged += 1;
            assert!(
                ambiguous[i / fi] && d <= 2.0 * lr * 1.001,
                "hidden weight {i} (unit {}): GPU {a} vs CPU {b}",
                i / fi
            );
        }
    }
    let units = ambiguous.iter().filter(|&&a| a).count();
    for _ in 1..5 {
        cpu.step().unwrap();
        gpu.step().unwrap();
    }
    let (cl, gl) = (cpu.running().0, gpu.running().0);
    let lerr = (gl - cl).abs() / cl.abs();
    eprintln!(
        "trainer Cpq: output layer {err:.2e} after 1 step; {diverged} of {} hidden weights \
         diverged (≤ 2·lr, in the rows of {units} units with exactly cancelling pre-activations); \
         running loss after 5 steps {lerr:.2e}",
        c.weights.len()
    );
    assert!(lerr < 1e-3, "running loss differs by {lerr:.2e}");
}

/// The GPU side of the resume claim: quantizers (full precision, LSQ, RQ, CPQ with learned
/// bits, revised ProxQuant) × optimizer families (SGD with momentum, AdamW, Muon, AMUSE), each
/// saved after 7 minibatches of its first epoch, restored into a fresh GPU trainer and run to 3
/// minibatches into the second epoch: the same weights and state as the uninterrupted GPU run,
/// bit for bit (one hidden layer of 16 on the digits). The CPU runs the whole table in core's
/// `resume_is_bit_for_bit_for_every_quantizer_and_optimizer_family`.
#[test]
fn gpu_trainer_resumes_bit_for_bit() {
    let Some(ctx) = gpu() else { return };
    let quants = [
        QuantConfig::new(QuantMethod::None, 3),
        QuantConfig::new(QuantMethod::Lsq, 3),
        QuantConfig::new(QuantMethod::Rq, 2),
        QuantConfig {
            learn_bits: Some(LearnBitsConfig::default()),
            ..QuantConfig::new(QuantMethod::Cpq, 3)
        },
        QuantConfig {
            reg_rate: 2e-3,
            ..QuantConfig::new(QuantMethod::Proxquant, 2)
        },
    ];
    let optimizers = [
        r#"{"name": "sgd", "lr": 0.05, "momentum": 0.9}"#,
        r#"{"name": "adamw", "lr": 0.01}"#,
        r#"{"name": "muon", "lr": 0.02}"#,
        r#"{"name": "amuse", "lr": 0.02, "warmup_steps": 5}"#,
    ];
    for opt in optimizers {
        let optimizer: OptimizerConfig = serde_json::from_str(opt).unwrap();
        for quant in &quants {
            let mut quant = quant.clone();
            if quant.method == QuantMethod::Proxquant {
                quant.revised = optimizer.name() == "adamw";
            }
            let label = format!("{} × {}", optimizer.name(), quant.method.name());
            let cfg = TrainConfig {
                epochs: 2,
                hidden: vec![16],
                quant,
                optimizer: optimizer.clone(),
                ..TrainConfig::default()
            };
            let (train, test) = cfg.data.load(cfg.test_fraction, cfg.split_seed);
            let new = || Trainer::new(cfg.clone(), &train, &test, gpu_device(&ctx)).unwrap();
            let mut full = new();
            let total = full.batches_per_epoch() + 3;
            for _ in 0..total {
                full.step().unwrap();
            }
            let mut a = new();
            for _ in 0..7 {
                a.step().unwrap();
            }
            let bytes = a.save().unwrap().to_bytes().unwrap();
            let mut b = new();
            b.restore(Checkpoint::from_bytes(&bytes).unwrap()).unwrap();
            for _ in 7..total {
                b.step().unwrap();
            }
            let (fa, fb) = (full.save().unwrap(), b.save().unwrap());
            assert_eq!(fa.tensors, fb.tensors, "{label}");
            assert_eq!(fa.meta, fb.meta, "{label}");
        }
    }
}

/// End to end with revised ProxQuant at 2 bits: the prox runs on the GPU with the GPU optimizer's
/// second moment. λ_t = reg_rate·epoch is 0 in the first epoch, so the run goes one epoch (23
/// steps, with its evaluation) plus 3 steps of the second, with reg_rate 2e-3, where the prox puts
/// a part of the weights exactly on the grid (a third of layer 0, a sixth of layer 1) — so a wrong threshold on
/// either side would show. The training forward uses the latent weights (no exact-multiple
/// cancellations as with CPQ), so weights agree to 1e-4 tensor-relative, and the numbers of
/// weights exactly on a grid point to 1 %.
#[test]
fn trainer_matches_cpu_with_proxquant() {
    let Some(ctx) = gpu() else { return };
    let quant = QuantConfig {
        reg_rate: 2e-3,
        ..QuantConfig::new(QuantMethod::Proxquant, 2)
    };
    let cfg = TrainConfig {
        epochs: 2,
        quant,
        hidden: vec![32],
        ..TrainConfig::default()
    };
    let (train, test) = cfg.data.load(cfg.test_fraction, cfg.split_seed);
    let mut cpu = Trainer::new(cfg.clone(), &train, &test, Cpu).unwrap();
    let mut gpu = Trainer::new(cfg, &train, &test, gpu_device(&ctx)).unwrap();
    for _ in 0..cpu.batches_per_epoch() + 3 {
        cpu.step().unwrap();
        gpu.step().unwrap();
    }
    for l in 0..cpu.layers() {
        let (c, g) = (cpu.layer_view(l).unwrap(), gpu.layer_view(l).unwrap());
        let err = rel_err(&g.weights, &c.weights);
        let on_grid = |v: &optiscope_core::train::LayerView| {
            v.weights
                .iter()
                .zip(&v.xhat)
                .filter(|(w, q)| w == q)
                .count()
        };
        let (nc, ng) = (on_grid(&c), on_grid(&g));
        eprintln!(
            "proxquant layer {l}: weights {err:.2e}, on the grid: CPU {nc}, GPU {ng} of {}",
            c.weights.len()
        );
        assert!(err < 1e-4, "layer {l}: weights differ by {err:.2e}");
        assert!(
            nc > c.weights.len() / 20 && nc < c.weights.len(),
            "the prox should have put some, not all, weights on the grid: {nc}"
        );
        assert!(
            nc.abs_diff(ng) <= c.weights.len() / 100,
            "CPU {nc} vs GPU {ng} on the grid"
        );
    }
}
