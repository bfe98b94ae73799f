//! The alignment family (`core/src/device/align.rs` ↔ `shaders/align.wgsl` ↔
//! `gpu/src/ops/align.rs`): the bandit's log-policies (a workgroup per context, K above and below
//! its 64 threads) and DPO's per-pair terms against the CPU twins, then a whole first-order DPO
//! fit and an on-policy run on the GPU against the same on the CPU device.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{close_elementwise, down, gpu, gpu_device, random};
use optiscope_core::align::bandit::{Bandit, FeatureKind};
use optiscope_core::align::first_order::{fit_first_order, DeviceBandit, FirstOrderFit};
use optiscope_core::align::sampler::{Labels, Problem, Sampler};
use optiscope_core::device::{AlignOps, Cpu};

/// Log-policies: elementwise 1e-5 (the row's sum of exponentials is reduced in another order).
/// Pair terms: elementwise 1e-5 for the coefficients and the losses, the second half exactly the
/// negated first.
#[test]
fn log_policy_and_pair_terms_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    for (n_ctx, k, d) in [(37, 5, 4), (9, 70, 6), (1, 128, 3)] {
        let phi = random(31, n_ctx * k * d, 1.0);
        let theta = random(32, d, 1.5);
        let theta_ref = random(33, d, 0.5);
        let want = Cpu.bandit_log_policy(&phi, &theta, n_ctx, k);
        let want_ref = Cpu.bandit_log_policy(&phi, &theta_ref, n_ctx, k);
        let (gphi, gt, gr) = (dev.upload(&phi), dev.upload(&theta), dev.upload(&theta_ref));
        let lp = dev.bandit_log_policy(&gphi, &gt, n_ctx, k);
        let lr = dev.bandit_log_policy(&gphi, &gr, n_ctx, k);
        let got = down(&mut dev, &lp);
        let worst = close_elementwise("log_policy", &got, &want, 1e-5);
        eprintln!("log_policy {n_ctx}×{k}×{d}: worst {worst:.1e}");
        let n = 300;
        let mut rows = vec![0.0f32; 2 * n];
        for i in 0..n {
            let x = (i * 7) % n_ctx;
            let (a, b) = ((i * 3) % k, (i * 5 + 1) % k);
            rows[i] = (x * k + a) as f32;
            rows[n + i] = (x * k + b) as f32;
        }
        let q: Vec<f32> = (0..n)
            .map(|i| if i % 3 == 0 { 0.3 } else { (i % 2) as f32 })
            .collect();
        let c: Vec<f32> = (0..n)
            .map(|i| 1.0 / n as f32 * (1.0 + (i % 4) as f32))
            .collect();
        let t = Cpu.dpo_pair_terms(&want, &want_ref, &rows, &q, &c, 0.7);
        let (gq, gc, grows) = (dev.upload(&q), dev.upload(&c), dev.upload(&rows));
        let gt = dev.dpo_pair_terms(&lp, &lr, &grows, &gq, &gc, 0.7);
        let coef = down(&mut dev, &gt.coef);
        close_elementwise("coef", &coef, &t.coef, 1e-5);
        close_elementwise("loss", &down(&mut dev, &gt.loss), &t.loss, 1e-5);
        assert!((0..n).all(|i| coef[n + i] == -coef[i]));
    }
    assert!(dev.take_error().is_none());
}

fn bandit() -> Bandit {
    Bandit::new(
        12,
        8,
        &FeatureKind::Gaussian {
            d: 5,
            scale: 1.0,
            seed: 2,
        },
    )
    .unwrap()
}

/// A whole Adam DPO fit (200 steps) and a two-round on-policy run (2 × 2000 pairs, 100 steps per
/// fit): θ within 1e-3 of the CPU device's, the run's final KL(π*‖π̂) within 5 % — the draws use
/// the device's policy, and a policy off by 1e-6 may move a draw across a CDF boundary.
#[test]
fn first_order_fit_and_on_policy_run_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let b = bandit();
    let theta_ref = [0.2, -0.1, 0.0, 0.3, -0.2];
    let theta_star = [1.0, -0.6, 0.5, -0.3, 0.8];
    let problem = Problem {
        bandit: &b,
        theta_ref: &theta_ref,
        theta_star: &theta_star,
        beta: 0.5,
        ridge: 0.0,
        labels: Labels::BradleyTerry,
    };
    let fit = FirstOrderFit {
        steps: 100,
        ..FirstOrderFit::adam()
    };
    let on = Sampler::OnPolicy {
        rounds: 2,
        cumulative: false,
    };
    let cpu = problem.run_on(&mut Cpu, &fit, on, 4000, 3).unwrap();
    let mut dev = gpu_device(&ctx);
    let gpu_rounds = problem.run_on(&mut dev, &fit, on, 4000, 3).unwrap();
    let (kc, kg) = (cpu[1].kl, gpu_rounds[1].kl);
    eprintln!("on-policy T=2 KL: CPU {kc:.5}, GPU {kg:.5}");
    assert!((kc - kg).abs() <= 0.05 * kc, "{kc} vs {kg}");
    // The first round's fit sees identical pairs (both sample from π_ref): θ to 1e-3.
    for (a, c) in cpu[0].theta.iter().zip(&gpu_rounds[0].theta) {
        assert!(
            (a - c).abs() < 1e-3,
            "{:?} vs {:?}",
            cpu[0].theta,
            gpu_rounds[0].theta
        );
    }
    // And one fit directly, 200 steps from θ_ref on the first round's kind of data.
    let mut data = optiscope_core::align::dpo::Pairs::new(5);
    for i in 0..500 {
        data.push(&b, i % 12, i % 8, (i * 3 + 1) % 8, i % 3 != 0);
    }
    let f200 = FirstOrderFit {
        steps: 200,
        ..FirstOrderFit::adam()
    };
    let mut cpu_dev = Cpu;
    let db = DeviceBandit::new(&mut cpu_dev, &b);
    let want = fit_first_order(&mut cpu_dev, &db, &data, &theta_ref, 0.5, &f200, None).unwrap();
    let gdb = DeviceBandit::new(&mut dev, &b);
    let got = fit_first_order(&mut dev, &gdb, &data, &theta_ref, 0.5, &f200, None).unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-3, "{got:?} vs {want:?}");
    }
    assert!(dev.take_error().is_none());
}

/// Spec B1's vector through the WGSL kernels: ℓ = 0.6807253 and the pair coefficient
/// −σ(−h)β = −0.4937503 (the gradient's weight on φ(y_w) − φ(y_l)), to 1e-6.
#[test]
fn the_spec_dpo_vector_on_the_gpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let phi = [1.0, 0.0, 0.5, 0.0, 1.0, -0.5, 1.0, 1.0, 0.0, -1.0, 0.5, 1.0];
    let gphi = dev.upload(&phi);
    let (t, r) = (dev.upload(&[0.2, -0.1, 0.3]), dev.upload(&[0.0; 3]));
    let lp = dev.bandit_log_policy(&gphi, &t, 1, 4);
    let lr = dev.bandit_log_policy(&gphi, &r, 1, 4);
    let (rows, one) = (dev.upload(&[2.0, 3.0]), dev.upload(&[1.0]));
    let terms = dev.dpo_pair_terms(&lp, &lr, &rows, &one, &one, 0.5);
    let loss = down(&mut dev, &terms.loss);
    let coef = down(&mut dev, &terms.coef);
    assert!((loss[0] - 0.680_725_3).abs() < 1e-6, "{loss:?}");
    // ∇θ = coef·(φ(2) − φ(3)) = coef·(2, 0.5, −1) = (−0.4937503, −0.1234376, 0.2468752).
    assert!((coef[0] * 2.0 + 0.493_750_3).abs() < 1e-6, "{coef:?}");
    assert_eq!(coef[1], -coef[0]);
    assert!(dev.take_error().is_none());
}
