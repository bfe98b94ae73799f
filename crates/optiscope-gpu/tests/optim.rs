//! The optimizer-update family (`core/src/device/optim.rs` ↔ `shaders/optim*.wgsl` ↔
//! `gpu/src/ops/optim.rs`): every optimizer's GPU executor and the orthogonalizers against the CPU,
//! with declared tolerances. Runs on any adapter, including lavapipe (`WGPU_BACKEND=vulkan`); sizes
//! stay ≤ 128 per dimension.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use common::{gpu, random, read, rel_err};
use optiscope_core::device::optim::orthogonalize::{Orthogonalizer, MUON_NS_COEFFICIENTS};
use optiscope_core::optim::{Optimizer, OptimizerConfig, Param, ParamRole};
use optiscope_core::Tensor;
use optiscope_gpu::ops::dense::ReduceScratch;
use optiscope_gpu::ops::optim;
use optiscope_gpu::{GpuContext, GpuOptimizer};

/// Runs `config` for 3 steps on the CPU and the GPU from the same parameters and gradients and
/// returns the worst relative error of params and eval params.
fn optimizer_error(ctx: &Arc<GpuContext>, json: &str, params: &[Param]) -> f64 {
    let cfg: OptimizerConfig = serde_json::from_str(json).unwrap();
    let mut cpu_params = params.to_vec();
    let mut gpu_params = params.to_vec();
    let mut cpu = cfg.build(&cpu_params).unwrap();
    let mut gpu = GpuOptimizer::new(ctx.clone(), &cfg, &gpu_params).unwrap();
    let mut worst = 0.0f64;
    for step in 0..3u64 {
        let grads: Vec<Tensor> = params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Tensor::new(
                    p.value.shape().to_vec(),
                    random(100 + step * 10 + i as u64, p.value.len(), 0.5),
                )
                .unwrap()
            })
            .collect();
        cpu.step(&mut cpu_params, &grads).unwrap();
        gpu.step(&mut gpu_params, &grads).unwrap();
        let (ce, ge) = (cpu.eval_params(&cpu_params), gpu.eval_params(&gpu_params));
        for i in 0..params.len() {
            worst = worst.max(rel_err(
                gpu_params[i].value.data(),
                cpu_params[i].value.data(),
            ));
            worst = worst.max(rel_err(ge[i].data(), ce[i].data()));
        }
    }
    worst
}

/// Parameters start small (0.01·N(0, 1)) so that after a few steps they are dominated by the
/// updates, which f32 then resolves finely: a kernel that is off by 1e-4 in its update fails the
/// 1e-5 tolerance instead of hiding under the rounding of large parameters.
fn param(name: &str, shape: &[usize], seed: u64, role: ParamRole) -> Param {
    let n = shape.iter().product();
    Param {
        name: name.into(),
        value: Tensor::new(shape.to_vec(), random(seed, n, 0.01)).unwrap(),
        role,
    }
}

/// Elementwise optimizers: 3 steps on 64×48 parameters (and a 48-vector), relative 1e-5.
#[test]
fn elementwise_optimizers_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let params = [
        param("w", &[64, 48], 1, ParamRole::Auto),
        param("b", &[48], 2, ParamRole::Auto),
    ];
    for json in [
        r#"{"name":"sgd","lr":0.1}"#,
        r#"{"name":"sgd","lr":0.1,"momentum":0.9,"nesterov":true,"weight_decay":0.01}"#,
        r#"{"name":"sgd","lr":0.1,"momentum":0.9,"dampening":0.3,"maximize":true}"#,
        r#"{"name":"adam","lr":0.01,"weight_decay":0.1,"amsgrad":true}"#,
        r#"{"name":"adamw","lr":0.01,"betas":[0.8,0.99],"eps_mode":"before_bias_correction"}"#,
        r#"{"name":"sgd_schedulefree","lr":0.1,"momentum":0.9,"weight_decay":0.01,"warmup_steps":2}"#,
        r#"{"name":"adamw_schedulefree","lr":0.01,"weight_decay":0.01,"warmup_steps":2}"#,
        r#"{"name":"adamw_schedulefree","lr":0.01,"warmup_steps":2,"variant":"paper"}"#,
        r#"{"name":"proxgen","lr":0.01,"regularizer":"l1","penalty":0.5}"#,
        r#"{"name":"proxgen","lr":0.01,"regularizer":"l0","penalty":0.5}"#,
        r#"{"name":"proxgen","lr":0.01,"regularizer":"l1/2","penalty":0.5}"#,
        r#"{"name":"proxgen","lr":0.01,"regularizer":"l2/3","penalty":0.5}"#,
        r#"{"name":"prox_sgd","lr":0.01,"momentum":0.9,"regularizer":"l2/3","penalty":0.5}"#,
        r#"{"name":"adamw_subgradient","lr":0.01,"regularizer":"l1","penalty":0.5}"#,
        r#"{"name":"adamw_subgradient","lr":0.01,"regularizer":"l1/2","penalty":0.5}"#,
        r#"{"name":"adamw_subgradient","lr":0.01,"regularizer":"l2/3","penalty":0.5}"#,
    ] {
        let err = optimizer_error(&ctx, json, &params);
        assert!(err < 1e-5, "{json}: relative error {err:.2e}");
    }
}

/// Muon, SpecGD and AMUSE (orthogonalization on the GPU, or for SpecGD's SVD on the host):
/// 3 steps on 64×48, 48×64, a stack of three 12×20 matrices (orthogonalized one by one), a
/// conv filter [16, 2, 3, 3] (flattened to 16×18), a diagonal and a vector, relative 1e-4.
#[test]
fn matrix_optimizers_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let params = [
        param("tall", &[64, 48], 3, ParamRole::Auto),
        param("wide", &[48, 64], 4, ParamRole::Auto),
        param("stack", &[3, 12, 20], 7, ParamRole::Auto),
        param("conv", &[16, 2, 3, 3], 8, ParamRole::Auto),
        param("diag", &[2], 5, ParamRole::Diagonal),
        param("bias", &[48], 6, ParamRole::Auto),
    ];
    for json in [
        r#"{"name":"muon","lr":0.02,"weight_decay":0.1}"#,
        r#"{"name":"muon","lr":0.02,"nesterov":false,"adjust_lr_fn":"match_rms_adamw","orthogonalizer":"polar_express"}"#,
        r#"{"name":"specgd","lr":0.01}"#,
        r#"{"name":"amuse","lr":0.02,"warmup_steps":2,"beta1":0.6,"rho":0.8,"weight_decay":0.1,"aux":{"lr":0.01,"weight_decay":0.1}}"#,
        r#"{"name":"amuse","lr":0.02,"warmup_steps":1,"explicit_x":true,"weight_decay_at_y":0.05}"#,
    ] {
        let err = optimizer_error(&ctx, json, &params);
        assert!(err < 1e-4, "{json}: relative error {err:.2e}");
    }
}

/// AdaBlock (the batched Jacobi eigendecompositions, a workgroup per block, and the diagonal
/// kernel): 3 steps against the CPU twin, relative 1e-4 (the replay tolerance against float64;
/// lavapipe measured 3e-6 at g = 5, 6e-6 at g = 8, 1.7e-5 at g = 30, 4.4e-5 at g = 32: f32
/// rounding of m along the near-null eigen-directions, whose steps are the largest), on block
/// sizes 2 to 32, odd ones (the
/// round-robin's padding index), a rank-3 tensor read as `[2, 24]`, a one-row weight and vectors,
/// with weight decay and with clipping that bites (gamma 1).
#[test]
fn adablock_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mixed = [
        param("w", &[64, 48], 11, ParamRole::Auto),
        param("w2", &[40, 6], 12, ParamRole::Auto),
        param("odd", &[7, 5], 13, ParamRole::Auto),
        param("cube", &[2, 6, 4], 14, ParamRole::Auto),
        param("row", &[1, 5], 15, ParamRole::Auto),
        param("b", &[48], 16, ParamRole::Auto),
    ];
    let wide = [
        param("w", &[30, 10], 17, ParamRole::Auto),
        param("b", &[10], 18, ParamRole::Auto),
    ];
    let full = [param("w", &[32, 4], 19, ParamRole::Auto)];
    for (json, params) in [
        (r#"{"name":"adablock","lr":0.01,"groups":8}"#, &mixed[..]),
        (
            r#"{"name":"adablock","lr":0.01,"groups":8,"weight_decay":0.1,"clipping":true,"gamma":1}"#,
            &mixed[..],
        ),
        (r#"{"name":"adablock","lr":0.01,"groups":1}"#, &mixed[..]),
        (r#"{"name":"adablock","lr":0.01,"groups":5}"#, &wide[..]),
        (r#"{"name":"adablock","lr":0.01,"groups":15}"#, &wide[..]),
        (r#"{"name":"adablock","lr":0.01,"groups":30}"#, &wide[..]),
        (r#"{"name":"adablock","lr":0.01,"groups":32}"#, &full[..]),
    ] {
        let err = optimizer_error(&ctx, json, params);
        eprintln!("{json}: relative error {err:.2e}");
        assert!(err < 1e-4, "{json}: relative error {err:.2e}");
    }
}

/// Newton–Schulz composed on the GPU (no read-back between iterations) against the CPU, 1e-4.
#[test]
fn newton_schulz_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let scratch = ReduceScratch::new(&ctx);
    let ns = Orthogonalizer::NewtonSchulz {
        coefficients: MUON_NS_COEFFICIENTS.map(|c| c as f32),
        steps: 5,
        eps: 1e-7,
    };
    for (rows, cols) in [(48, 64), (64, 48), (100, 3), (128, 128)] {
        for orth in [ns.clone(), Orthogonalizer::PolarExpress { steps: 5 }] {
            let g = random(rows as u64 * 1000 + cols as u64, rows * cols, 1.0);
            let want = orth.apply(&g, rows, cols).unwrap();
            let u = ctx.buffer_from(&g);
            let mut enc = ctx.encoder();
            let out =
                optim::newton_schulz(&ctx, &mut enc, &scratch, &u, (rows, cols), &orth).unwrap();
            ctx.submit(enc);
            let err = rel_err(&read(&ctx, &out), &want);
            assert!(err < 1e-4, "{rows}x{cols} {orth:?}: {err:.2e}");
        }
    }
    let v = random(9, 7, 1.0);
    let u = ctx.buffer_from(&v);
    let mut enc = ctx.encoder();
    let out = optim::newton_schulz_diagonal(&ctx, &mut enc, &scratch, &u, &ns).unwrap();
    ctx.submit(enc);
    assert!(rel_err(&read(&ctx, &out), &ns.apply_diagonal(&v)) < 1e-5);
}

/// The four closed-form proxes in f32 on the GPU against the CPU's f64 twin, through a proximal
/// SGD step that reduces to the prox (p = 0, g = −z, η = 1, μ = 0: `prox(z; λ)`), for λ' from
/// 1e-4 to 2 and z over ±4: elementwise 2e-6·max(1, |x|), coordinates within 1e-3 of the
/// threshold left out (the non-convex proxes jump there, and f32 may fall on either side).
#[test]
fn prox_closed_forms_match_cpu() {
    use optiscope_core::device::optim::elementwise::ProxSgdScalars;
    use optiscope_core::device::optim::prox::Regularizer;
    use optiscope_core::device::{Cpu, OptimOps, Storage};
    let Some(ctx) = gpu() else { return };
    let mut dev = common::gpu_device(&ctx);
    let z: Vec<f32> = (0..4096)
        .map(|i| -4.0 + 8.0 * (i as f32 + 0.37) / 4096.0)
        .collect();
    let neg: Vec<f32> = z.iter().map(|v| -v).collect();
    let mut worst = 0.0f64;
    let mut zeros = 0usize;
    for reg in Regularizer::ALL {
        for lam in [1e-4f32, 0.01, 0.4, 2.0] {
            let s = ProxSgdScalars {
                lr: 1.0,
                momentum: 0.0,
                weight_decay: 0.0,
                lr_penalty: lam,
                regularizer: Some(reg),
            };
            let (mut p, mut m) = (vec![0.0f32; z.len()], vec![0.0f32; z.len()]);
            Cpu.prox_sgd(&mut p, &neg, &mut m, &s);
            let (mut gp, gg, mut gm) = (
                dev.upload(&vec![0.0; z.len()]),
                dev.upload(&neg),
                dev.upload(&vec![0.0; z.len()]),
            );
            dev.prox_sgd(&mut gp, &gg, &mut gm, &s);
            let got = Storage::download(&mut dev, &gp).unwrap();
            let thr = reg.threshold(f64::from(lam));
            for (i, (&g, &w)) in got.iter().zip(&p).enumerate() {
                if (f64::from(z[i]).abs() - thr).abs() < 1e-3 * thr.max(1.0) {
                    continue;
                }
                let err = (f64::from(g) - f64::from(w)).abs() / f64::from(w).abs().max(1.0);
                assert!(
                    err <= 2e-6,
                    "{} λ'={lam} z={}: GPU {g} vs CPU {w}",
                    reg.name(),
                    z[i]
                );
                worst = worst.max(err);
                zeros += usize::from(w == 0.0 && g == 0.0);
            }
        }
    }
    assert!(
        zeros > 1000,
        "the thresholds zeroed only {zeros} coordinates"
    );
    assert!(dev.take_error().is_none());
    eprintln!("prox closed forms: worst error {worst:.2e}");
}
