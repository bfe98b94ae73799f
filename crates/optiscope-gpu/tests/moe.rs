//! The mixture-of-experts layer (`core/src/sparsify/moe.rs`) on the GPU against the CPU twin:
//! the router's top-k gates, the experts' SwiGLU, the gated concatenation, the backward to every
//! weight, and a few distillation steps of the dense conversion.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{down, gpu, gpu_device, rel_err};
use optiscope_core::device::Cpu;
use optiscope_core::sparsify::convert::Calibration;
use optiscope_core::sparsify::convert::{convert, DistillConfig, Distiller, Grouping, Scaling};
use optiscope_core::sparsify::moe::DeviceMoe;
use optiscope_core::sparsify::moe_experiment::{TinyConfig, Tokens};

/// The tiny preset's mixture on 100 tokens: output tensor-relative 1e-6, gates' support equal,
/// and every expert gradient (stacked W_g, W_u, W_d) tensor-relative 1e-5; the router's 5e-5
/// (its gradient `g ⊙ (∂g − Σ g ∂g)` cancels, and the two devices sum in different orders).
#[test]
fn moe_forward_backward_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let tiny = TinyConfig::default().build(3).unwrap();
    let (x, _) = tiny.sample(Tokens::Test, 100);
    let x: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let dy = common::random(81, 100 * 16, 1.0);
    let cm = DeviceMoe::upload(&mut Cpu, &tiny.moe);
    let ca = cm.forward(&mut Cpu, &x, 100);
    let cg = cm.backward(&mut Cpu, &x, &ca, &dy);
    let gm = DeviceMoe::upload(&mut dev, &tiny.moe);
    let (gx, gdy) = (dev.upload(&x), dev.upload(&dy));
    let ga = gm.forward(&mut dev, &gx, 100);
    let gg = gm.backward(&mut dev, &gx, &ga, &gdy);
    let support = |v: &[f32]| v.iter().map(|g| *g > 0.0).collect::<Vec<_>>();
    assert_eq!(support(&down(&mut dev, &ga.gates)), support(&ca.gates));
    let y = down(&mut dev, &ga.ffn.y);
    assert!(
        rel_err(&y, &ca.ffn.y) < 1e-6,
        "output {}",
        rel_err(&y, &ca.ffn.y)
    );
    for (what, g, c, tol) in [
        ("router", &gg.router, &cg.router, 5e-5),
        ("gate_proj", &gg.ffn.gate, &cg.ffn.gate, 1e-5),
        ("up_proj", &gg.ffn.up, &cg.ffn.up, 1e-5),
        ("down_proj", &gg.ffn.down, &cg.ffn.down, 1e-5),
    ] {
        let got = down(&mut dev, g);
        let e = rel_err(&got, c);
        assert!(e < tol, "{what}: relative error {e:e}");
    }
    assert!(dev.take_error().is_none());
}

/// Ten distillation steps of the diversity-free conversion of experts {0, 2, 4, 6}: the losses
/// and final weights on the GPU equal the CPU's to 1e-4 (f32 Adam on both).
#[test]
fn distillation_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let tiny = TinyConfig::default().build(1).unwrap();
    let (xc, _) = tiny.sample(Tokens::Calibration, 256);
    let cal = Calibration::new(&tiny.moe, &xc);
    let conv = convert(
        &tiny.moe,
        &cal,
        &[0, 2, 4, 6],
        Grouping::None,
        Scaling::GateMass,
    );
    let (xd, _) = tiny.sample(Tokens::Distill, 512);
    let xd: Vec<f32> = xd.iter().map(|&v| v as f32).collect();
    let cfg = DistillConfig {
        steps: 10,
        batch: 64,
        ..DistillConfig::default()
    };
    let cm = DeviceMoe::upload(&mut Cpu, &tiny.moe);
    let cy = cm.forward(&mut Cpu, &xd, 512).ffn.y;
    let mut ck = Distiller::new(&mut Cpu, &conv.dense, xd.clone(), cy, 512, &cfg, 5).unwrap();
    let gm = DeviceMoe::upload(&mut dev, &tiny.moe);
    let gx = dev.upload(&xd);
    let gy = gm.forward(&mut dev, &gx, 512).ffn.y;
    let mut gk = Distiller::new(&mut dev, &conv.dense, gx, gy, 512, &cfg, 5).unwrap();
    for step in 0..10 {
        let (a, b) = (ck.step(&mut Cpu).unwrap(), gk.step(&mut dev).unwrap());
        assert!(
            (a - b).abs() <= 1e-4 * a.abs(),
            "step {step}: CPU {a} vs GPU {b}"
        );
    }
    let (cw, gw) = (ck.weights(&mut Cpu).unwrap(), gk.weights(&mut dev).unwrap());
    for (a, b) in [(&cw.gate, &gw.gate), (&cw.up, &gw.up), (&cw.down, &gw.down)] {
        let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        let den: f64 = a.iter().map(|x| x * x).sum();
        assert!((num / den).sqrt() < 1e-4);
    }
}
