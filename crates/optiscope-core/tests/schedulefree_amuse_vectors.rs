//! Spec §3 (schedulefree.out.txt) and §4.2 (amuse.out.txt) vectors, numpy float64, in f32;
//! plus the efficient-form ≡ reference-form and mode round-trip properties.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use optiscope_core::optim::{amuse_beta, Param};
use optiscope_core::Tensor;

const H: [f64; 3] = [1.0, 10.0, 0.1];
const W0: [f64; 3] = [1.0, -1.0, 2.0];

fn grad_h(p: &[Param]) -> Vec<Tensor> {
    let d = p[0].value.data();
    vec![Tensor::vector(
        (0..3).map(|i| (H[i] * f64::from(d[i])) as f32).collect(),
    )]
}

/// Steps `opt` on f = ½Σhᵢwᵢ² with gradients at the train point; returns (x, y) after each step.
fn run_quadratic(json: &str, steps: usize) -> Vec<(Vec<f32>, Vec<f32>)> {
    let mut params = vec![param("w", &[3], &W0)];
    let mut opt = config(json).build(&params).unwrap();
    (0..steps)
        .map(|_| {
            let g = grad_h(&params);
            opt.step(&mut params, &g).unwrap();
            (
                opt.eval_params(&params)[0].data().to_vec(),
                params[0].value.data().to_vec(),
            )
        })
        .collect()
}

#[test]
fn sf_sgd_three_steps() {
    let got = run_quadratic(
        r#"{"name":"sgd_schedulefree","lr":0.05,"momentum":0.9,"weight_decay":0.01,"warmup_steps":2}"#,
        3,
    );
    let want = [
        ([0.97475, -0.74975, 1.9945], [0.97475, -0.74975, 1.9945]),
        (
            [0.9353701, -0.4495501, 1.9857242],
            [0.9343856025, -0.4420451025, 1.985504805],
        ),
        (
            [0.9100227898, -0.3178640783, 1.979895655],
            [0.906854376, -0.3014033256, 1.979167087],
        ),
    ];
    for (t, ((x, y), (wx, wy))) in got.iter().zip(want).enumerate() {
        assert_close(&format!("x{}", t + 1), x, &wx, 2e-6, 1e-7);
        assert_close(&format!("y{}", t + 1), y, &wy, 2e-6, 1e-7);
    }
}

#[test]
fn sf_adamw_current_and_paper() {
    let base = r#""lr":0.01,"betas":[0.9,0.999],"eps":1e-8,"weight_decay":0.01,"warmup_steps":2"#;
    let got = run_quadratic(&format!(r#"{{"name":"adamw_schedulefree",{base}}}"#), 3);
    assert_close(
        "x1",
        &got[0].0,
        &[0.9949500001, -0.99495, 1.9949],
        2e-6,
        1e-7,
    );
    assert_close(
        "x2",
        &got[1].0,
        &[0.9868906707, -0.9868906706, 1.986750623],
        2e-6,
        1e-7,
    );
    assert_close(
        "y2",
        &got[1].1,
        &[0.9866891875, -0.9866891874, 1.986546889],
        2e-6,
        1e-7,
    );
    assert_close(
        "x3",
        &got[2].0,
        &[0.9815390947, -0.9815390946, 1.981328612],
        2e-6,
        1e-7,
    );
    assert_close(
        "y3",
        &got[2].1,
        &[0.9808701477, -0.9808701476, 1.98065086],
        2e-6,
        1e-7,
    );
    let paper = run_quadratic(
        &format!(r#"{{"name":"adamw_schedulefree",{base},"variant":"paper"}}"#),
        3,
    );
    assert_close(
        "paper x1",
        &paper[0].0,
        &[0.9949984204, -0.994998419, 1.994996846],
        2e-6,
        1e-7,
    );
    assert_close(
        "paper x2",
        &paper[1].0,
        &[0.9861283739, -0.9861283707, 1.986111665],
        2e-6,
        1e-7,
    );
    assert_close(
        "paper y3",
        &paper[2].1,
        &[0.9793495149, -0.9793495106, 1.979304526],
        2e-6,
        1e-7,
    );
    assert_close(
        "paper x3",
        &paper[2].0,
        &[0.9798227031, -0.9798226988, 1.979779688],
        2e-6,
        1e-7,
    );
}

/// The memory-efficient form (what we run) equals the reference x/y/z form (written here in f64
/// from spec §3.1–3.3) over 200 steps with warmup and weight decay.
#[test]
fn sf_efficient_form_equals_reference_form() {
    let (lr, beta, wd, warmup) = (0.05, 0.9, 0.01, 10u64);
    let json = format!(
        r#"{{"name":"sgd_schedulefree","lr":{lr},"momentum":{beta},"weight_decay":{wd},"warmup_steps":{warmup}}}"#
    );
    let mut params = vec![param("w", &[3], &W0)];
    let mut opt = config(&json).build(&params).unwrap();
    let (mut x, mut y, mut z) = (W0, W0, W0);
    let (mut lr_max, mut wsum) = (-1.0f64, 0.0f64);
    for k in 0..200u64 {
        let g_ref: Vec<f64> = (0..3).map(|i| H[i] * y[i] + wd * y[i]).collect();
        let lr_k = lr
            * if k < warmup {
                (k + 1) as f64 / warmup as f64
            } else {
                1.0
            };
        lr_max = lr_max.max(lr_k);
        let w = lr_max * lr_max;
        wsum += w;
        let c = w / wsum;
        for i in 0..3 {
            z[i] -= lr_k * g_ref[i];
            x[i] = (1.0 - c) * x[i] + c * z[i];
            y[i] = beta * x[i] + (1.0 - beta) * z[i];
        }
        let g = grad_h(&params);
        opt.step(&mut params, &g).unwrap();
        assert_close(&format!("y at {k}"), params[0].value.data(), &y, 1e-5, 1e-6);
        assert_close(
            &format!("x at {k}"),
            opt.eval_params(&params)[0].data(),
            &x,
            1e-5,
            1e-6,
        );
    }
}

/// eval() then train() returns the same point, stepping in eval mode is refused, and eval mode
/// holds x (spec §3.5).
#[test]
fn sf_and_amuse_mode_round_trip() {
    for json in [
        r#"{"name":"adamw_schedulefree","lr":0.01,"warmup_steps":2}"#,
        r#"{"name":"sgd_schedulefree","lr":0.05}"#,
        r#"{"name":"amuse","lr":0.02,"warmup_steps":2,"beta1":0.6,"rho":0.8}"#,
        r#"{"name":"amuse","lr":0.02,"warmup_steps":2,"explicit_x":true}"#,
    ] {
        let mut params = vec![param("w", &[3], &W0)];
        let mut opt = config(json).build(&params).unwrap();
        for _ in 0..5 {
            let g = grad_h(&params);
            opt.step(&mut params, &g).unwrap();
        }
        let y = params[0].value.data().to_vec();
        let x = opt.eval_params(&params)[0].data().to_vec();
        assert_ne!(x, y, "{json}: after 5 steps x and y differ");
        opt.set_train_mode(&mut params, false);
        assert!(!opt.is_train_mode());
        assert_close(
            "eval holds x",
            params[0].value.data(),
            &x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            1e-6,
            1e-7,
        );
        let g = grad_h(&params);
        let err = opt.step(&mut params, &g).unwrap_err().to_string();
        assert!(err.contains("eval mode"), "{err}");
        opt.set_train_mode(&mut params, false); // idempotent
        opt.set_train_mode(&mut params, true);
        assert_close(
            "train restores y",
            params[0].value.data(),
            &y.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            1e-6,
            1e-7,
        );
        opt.set_train_mode(&mut params, false);
        opt.set_train_mode(&mut params, true);
        opt.set_train_mode(&mut params, false);
        assert_close(
            "eval again is x",
            params[0].value.data(),
            &x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            1e-6,
            1e-7,
        );
    }
}

/// Spec §4.1 [vec]: β_t and c_t for β1 = 0.6, ρ = 0.8, T0 = 4, constant lr after warmup.
#[test]
fn amuse_beta_table() {
    let c = [
        1.0, 0.8, 0.642857, 0.533333, 0.347826, 0.258065, 0.205128, 0.170213, 0.145455, 0.126984,
    ];
    let beta = [
        0.6, 0.6, 0.6, 0.6, 0.782597, 0.845561, 0.878368, 0.898775, 0.912811, 0.923114,
    ];
    // c_t from the lr²-weighted average with linear warmup over 4 steps.
    let mut wsum = 0.0;
    let mut c_warm = None;
    for t in 1..=10u64 {
        let lr = (t as f64 / 4.0).min(1.0);
        wsum += lr * lr;
        let ct = lr * lr / wsum;
        assert!((ct - c[t as usize - 1]).abs() < 1e-6, "c_{t} = {ct}");
        if t == 4 {
            c_warm = Some(ct);
        }
        let b = amuse_beta(t, 4, ct, c_warm, 0.6, 0.8);
        assert!((b - beta[t as usize - 1]).abs() < 1e-6, "beta_{t} = {b}");
    }
    // With c_t = 1/t (no warmup weighting) the odds ratio is the paper's closed form (T0−1)/(t−1).
    for t in 5..30u64 {
        let b = amuse_beta(t, 4, 1.0 / t as f64, Some(0.25), 0.6, 0.8);
        let closed = 1.0 - (3.0 / (t as f64 - 1.0)).powf(0.8) * 0.4;
        assert!((b - closed).abs() < 1e-12);
    }
}

/// Spec §4.2 [vec]: three AMUSE steps with a Muon group (2×3) and the fallback group (3-vector).
#[test]
fn amuse_three_steps() {
    let t_mat = [1.0, 0.0, -1.0, 0.5, 0.5, 0.5];
    let mut params = vec![
        param("W", &[2, 3], &[0.5, -0.25, 0.1, 0.2, -0.3, 0.4]),
        param("b", &[3], &W0),
    ];
    let cfg = config(
        r#"{"name":"amuse","lr":0.02,"momentum":0.95,"weight_decay":0.1,"beta1":0.6,"rho":0.8,"warmup_steps":2,
            "aux":{"lr":0.01,"weight_decay":0.1}}"#,
    );
    let mut opt = cfg.build(&params).unwrap();
    let want_wy = [
        [
            0.5010115842,
            -0.2489722366,
            0.09660020438,
            0.2006847045,
            -0.2973774067,
            0.3998520856,
        ],
        [
            0.5027923623,
            -0.2471658608,
            0.09062222552,
            0.2018893468,
            -0.2927672874,
            0.39959331,
        ],
        [
            0.5039235631,
            -0.2460208534,
            0.08683077382,
            0.2026539724,
            -0.2898444702,
            0.3994302988,
        ],
    ];
    let want_wx = [
        want_wy[0],
        [
            0.5026304733,
            -0.2473300768,
            0.09116567814,
            0.2017798338,
            -0.2931863892,
            0.399616835,
        ],
        [
            0.5037827582,
            -0.2461633848,
            0.08730272941,
            0.2025587946,
            -0.2902083027,
            0.3994505938,
        ],
    ];
    let want_by = [
        [0.9945, -0.9945, 1.994],
        [0.984849128, -0.984849128, 1.983458503],
        [0.9787513086, -0.9787513086, 1.97678246],
    ];
    let want_bx = [
        [0.9945, -0.9945, 1.994],
        [0.98572648, -0.98572648, 1.984416821],
        [0.979510433, -0.979510433, 1.977613518],
    ];
    for t in 0..3 {
        let w = params[0].value.data();
        let b = params[1].value.data();
        let grads = [
            Tensor::new(vec![2, 3], (0..6).map(|i| w[i] - t_mat[i] as f32).collect()).unwrap(),
            Tensor::vector((0..3).map(|i| (H[i] * f64::from(b[i])) as f32).collect()),
        ];
        opt.step(&mut params, &grads).unwrap();
        let x = opt.eval_params(&params);
        assert_close(
            &format!("W_y{}", t + 1),
            params[0].value.data(),
            &want_wy[t],
            2e-6,
            1e-7,
        );
        assert_close(
            &format!("W_x{}", t + 1),
            x[0].data(),
            &want_wx[t],
            2e-6,
            1e-7,
        );
        assert_close(
            &format!("b_y{}", t + 1),
            params[1].value.data(),
            &want_by[t],
            2e-6,
            1e-7,
        );
        assert_close(
            &format!("b_x{}", t + 1),
            x[1].data(),
            &want_bx[t],
            2e-6,
            1e-7,
        );
    }
}
