//! The activation family (`core/src/device/act.rs` ↔ `shaders/act.wgsl` ↔ `gpu/src/ops/act.rs`):
//! bias plus activation, ReLU's backward and the softmax cross-entropy against the CPU twins.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{down, gpu, gpu_device, random, rel_err};
use optiscope_core::device::{ActOps, Activation, Cpu, Mat, XentOut};

/// `bias_act` (identity and ReLU) and `relu_backward` exactly (one addition and a comparison per
/// element, the same in f32 everywhere), on a shape that is not a multiple of the workgroup.
#[test]
fn bias_act_and_relu_backward_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let (rows, cols) = (37, 50);
    let y = random(21, rows * cols, 1.0);
    let b = random(22, cols, 0.5);
    for act in [Activation::Identity, Activation::Relu] {
        let mut want = y.clone();
        Cpu.bias_act(&mut want, &b, rows, cols, act);
        let mut got = dev.upload(&y);
        let gb = dev.upload(&b);
        dev.bias_act(&mut got, &gb, rows, cols, act);
        assert_eq!(down(&mut dev, &got), want, "bias_act {act:?}");
    }
    let out: Vec<f32> = random(23, rows * cols, 1.0)
        .iter()
        .map(|v| v.max(0.0))
        .collect();
    let mut want = y.clone();
    Cpu.relu_backward(&mut want, &out);
    let mut got = dev.upload(&y);
    let gout = dev.upload(&out);
    dev.relu_backward(&mut got, &gout);
    let got = down(&mut dev, &got);
    assert_eq!(got, want, "relu_backward");
    assert!(out.iter().zip(&got).all(|(o, g)| *o > 0.0 || *g == 0.0));
    assert!(dev.take_error().is_none());
}

/// Softmax cross-entropy over 10 classes, with tied maxima (the lower class is the prediction):
/// ∂/∂logits tensor-relative 1e-5, the loss sum relative 1e-5, the number correct exactly; also
/// one row (one thread busy) and a batch larger than the workgroup (rows strided).
#[test]
fn softmax_xent_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let (n, c) = (37, 10);
    let mut logits = random(14, n * c, 2.0);
    let mut labels: Vec<f32> = (0..n).map(|i| ((i * 7 + 3) % c) as f32).collect();
    logits[..c].fill(0.5); // all tied: predicts class 0
    labels[0] = 0.0;
    logits[c..2 * c].fill(-1.0); // classes 3 and 5 tied at the top: predicts 3
    logits[c + 3] = 4.0;
    logits[c + 5] = 4.0;
    labels[1] = 5.0;
    logits[2 * c..3 * c].fill(-1.0);
    logits[2 * c + 3] = 4.0;
    logits[2 * c + 5] = 4.0;
    labels[2] = 3.0;
    let want = Cpu.softmax_xent(Mat::new(&logits, n, c), &labels);
    let (gl, gy) = (ctx.buffer_from(&logits), ctx.buffer_from(&labels));
    let XentOut { d_logits, stats } = dev.softmax_xent(Mat::new(&gl, n, c), &gy);
    let (got_d, got_s) = (down(&mut dev, &d_logits), down(&mut dev, &stats));
    let err = rel_err(&got_d, &want.d_logits);
    assert!(err < 1e-5, "softmax_xent dlogits: {err:.2e}");
    let want_s = &want.stats;
    let loss_err = f64::from((got_s[0] - want_s[0]).abs() / want_s[0].abs());
    assert!(loss_err < 1e-5, "loss sum {} vs {}", got_s[0], want_s[0]);
    assert_eq!(got_s[1], want_s[1], "number correct");
    for rows in [1, 300] {
        let lg = random(15 + rows as u64, rows * c, 3.0);
        let lb: Vec<f32> = (0..rows).map(|i| ((i * 3) % c) as f32).collect();
        let want = Cpu.softmax_xent(Mat::new(&lg, rows, c), &lb);
        let (gl, gy) = (ctx.buffer_from(&lg), ctx.buffer_from(&lb));
        let got = dev.softmax_xent(Mat::new(&gl, rows, c), &gy);
        let (d, s) = (down(&mut dev, &got.d_logits), down(&mut dev, &got.stats));
        assert!(rel_err(&d, &want.d_logits) < 1e-5, "softmax_xent n={rows}");
        assert!(
            (s[0] - want.stats[0]).abs() <= 1e-5 * want.stats[0].abs(),
            "loss n={rows}: {} vs {}",
            s[0],
            want.stats[0]
        );
        assert_eq!(s[1], want.stats[1], "correct n={rows}");
    }
    assert!(dev.take_error().is_none());
}

/// The row softmax (the GCN's distillation target and student): elementwise 1e-6 against the CPU
/// twin, rows summing to 1, on more rows than a workgroup and with a row of huge logits.
#[test]
fn softmax_rows_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let (n, c) = (300, 7);
    let mut logits = random(61, n * c, 3.0);
    logits[..c].iter_mut().for_each(|v| *v += 500.0);
    let want = Cpu.softmax_rows(Mat::new(&logits, n, c));
    let g = dev.upload(&logits);
    let got = dev.softmax_rows(Mat::new(&g, n, c));
    let got = down(&mut dev, &got);
    common::close_elementwise("softmax_rows", &got, &want, 1e-6);
    assert!(got
        .chunks(c)
        .all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-5));
    assert!(dev.take_error().is_none());
}

/// The row softmax's backward against the CPU twin (elementwise 1e-6), on probabilities of a
/// 300 × 7 batch (rows past one workgroup).
#[test]
fn softmax_backward_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let (n, c) = (300, 7);
    let p = Cpu.softmax_rows(Mat::new(&random(71, n * c, 2.0), n, c));
    let dp = random(72, n * c, 1.0);
    let want = Cpu.softmax_backward(Mat::new(&p, n, c), &dp);
    let (gp, gdp) = (dev.upload(&p), dev.upload(&dp));
    let got = dev.softmax_backward(Mat::new(&gp, n, c), &gdp);
    let got = down(&mut dev, &got);
    common::close_elementwise("softmax_backward", &got, &want, 1e-6);
    // Each row's gradient sums to zero (a softmax is invariant to a constant shift).
    assert!(got.chunks(c).all(|r| r.iter().sum::<f32>().abs() < 1e-6));
    assert!(dev.take_error().is_none());
}

/// A top-2 and a top-3 router over 8 experts: the same experts selected as the CPU twin (ties in
/// the first rows go to the lower index), gates elementwise 1e-6, each row summing to 1.
#[test]
fn topk_softmax_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let (n, c) = (300, 8);
    let mut logits = random(73, n * c, 2.0);
    logits[..c].fill(0.25); // all tied: experts 0 and 1 (and 2)
    logits[c + 6] = 30.0; // experts 4 and 6 tied at the top of row 1
    logits[c + 4] = 30.0;
    let g = dev.upload(&logits);
    for k in [2, 3] {
        let want = Cpu.topk_softmax(Mat::new(&logits, n, c), k);
        let got = dev.topk_softmax(Mat::new(&g, n, c), k);
        let got = down(&mut dev, &got);
        let support = |v: &[f32]| v.iter().map(|x| *x > 0.0).collect::<Vec<_>>();
        assert_eq!(support(&got), support(&want), "top-{k} selection");
        common::close_elementwise("topk_softmax", &got, &want, 1e-6);
        assert!(got
            .chunks(c)
            .all(|r| r.iter().filter(|x| **x > 0.0).count() == k));
        assert!(got
            .chunks(c)
            .all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-5));
        assert!(
            got[..k].iter().all(|x| *x > 0.0),
            "ties go to the lower index"
        );
        assert!(got[c + 4] > 0.0 && got[c + 6] > 0.0);
    }
    assert!(dev.take_error().is_none());
}

/// SwiGLU's gating and its backward against the CPU twins (elementwise 1e-6), with large
/// negative pre-activations where `e^{−z}` overflows and the gate is exactly 0.
#[test]
fn swiglu_and_backward_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let len = 1000;
    let mut a = random(74, len, 3.0);
    a[0] = -200.0;
    a[1] = 90.0;
    let b = random(75, len, 1.0);
    let dh = random(76, len, 1.0);
    let want = Cpu.swiglu(&a, &b);
    let (want_da, want_db) = Cpu.swiglu_backward(&dh, &a, &b);
    let (ga, gb, gdh) = (dev.upload(&a), dev.upload(&b), dev.upload(&dh));
    let got = dev.swiglu(&ga, &gb);
    let (da, db) = dev.swiglu_backward(&gdh, &ga, &gb);
    let got = down(&mut dev, &got);
    common::close_elementwise("swiglu", &got, &want, 1e-6);
    common::close_elementwise("swiglu ∂a", &down(&mut dev, &da), &want_da, 1e-6);
    common::close_elementwise("swiglu ∂b", &down(&mut dev, &db), &want_db, 1e-6);
    assert_eq!(got[0], 0.0);
    assert!(dev.take_error().is_none());
}
