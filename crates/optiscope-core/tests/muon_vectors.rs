//! Spec §1.2 and §2.3 vectors (muon.out.txt, specgd_lora.out.txt; numpy float64) in f32.
//! Tolerance 2e-6 relative + 1e-7 absolute (NS5 in f32 matches float64 to ~1e-6, spec §1.3).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use optiscope_core::linalg;
use optiscope_core::optim::OptimizerConfig;

const P0: [f64; 6] = [0.5, -0.25, 0.1, 0.2, -0.3, 0.4];
const G1: [f64; 6] = [0.2, -0.1, 0.05, 0.3, -0.4, 0.1];
const G2: [f64; 6] = [-0.1, 0.2, 0.3, -0.05, 0.1, 0.1];

fn two_steps(json: &str) -> Vec<Vec<Vec<f32>>> {
    let mut params = vec![param("w", &[3, 2], &P0)];
    run_steps(
        &config(json),
        &mut params,
        &[vec![tensor(&[3, 2], &G1)], vec![tensor(&[3, 2], &G2)]],
    )
    .1
}

#[test]
fn muon_two_steps_for_each_shape_scaling() {
    let cases = [
        (
            "original",
            [
                0.4876533233,
                -0.243854998,
                0.09712909884,
                0.1829965302,
                -0.2767576521,
                0.393452987,
            ],
            [
                0.4871217614,
                -0.2549696679,
                0.07125880965,
                0.1756153576,
                -0.269600293,
                0.3816986589,
            ],
        ),
        (
            "match_rms_adamw",
            [
                0.4957906752,
                -0.2479033523,
                0.09904455507,
                0.1949038296,
                -0.2929957769,
                0.3975744992,
            ],
            [
                0.4949246038,
                -0.2506891942,
                0.09158418771,
                0.1925298295,
                -0.2905419363,
                0.3936772948,
            ],
        ),
        (
            "none",
            [
                0.4897354772,
                -0.2448908752,
                0.09761921833,
                0.1860433237,
                -0.2809126003,
                0.3945075835,
            ],
            [
                0.4891183224,
                -0.253874397,
                0.07645958838,
                0.1799433669,
                -0.2749587593,
                0.3847637057,
            ],
        ),
    ];
    for (scale, p1, p2) in cases {
        let got = two_steps(&format!(
            r#"{{"name":"muon","lr":0.02,"momentum":0.95,"weight_decay":0.1,"adjust_lr_fn":"{scale}"}}"#
        ));
        assert_close(&format!("{scale} p1"), &got[0][0], &p1, 2e-6, 1e-7);
        assert_close(&format!("{scale} p2"), &got[1][0], &p2, 2e-6, 1e-7);
    }
}

#[test]
fn muon_without_nesterov() {
    let got = two_steps(r#"{"name":"muon","lr":0.02,"momentum":0.95,"nesterov":false}"#);
    assert_close(
        "p1",
        &got[0][0],
        &[
            0.4886532511,
            -0.2443549685,
            0.09732911919,
            0.1833965184,
            -0.2773575196,
            0.3942529338,
        ],
        2e-6,
        1e-7,
    );
    assert_close(
        "p2",
        &got[1][0],
        &[
            0.4834272161,
            -0.2502114946,
            0.07727553417,
            0.170182155,
            -0.2614805181,
            0.3837037632,
        ],
        2e-6,
        1e-7,
    );
}

/// Spec §1.2: the momentum buffer after two steps is exactly
/// [[0.0045, 0.00525], [0.017375, 0.01175], [−0.014, 0.00975]]; with Nesterov off the second step
/// moves along NS5 of that buffer.
#[test]
fn second_step_moves_along_ns5_of_the_buffer() {
    let want = [0.0045, 0.00525, 0.017375, 0.01175, -0.014, 0.00975];
    let got = two_steps(
        r#"{"name":"muon","lr":0.02,"momentum":0.95,"nesterov":false,"adjust_lr_fn":"none"}"#,
    );
    let step: Vec<f32> = got[0][0]
        .iter()
        .zip(&got[1][0])
        .map(|(a, b)| (a - b) / 0.02)
        .collect();
    let buf: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    let ns = optiscope_core::device::optim::orthogonalize::Orthogonalizer::NewtonSchulz {
        coefficients: optiscope_core::device::optim::orthogonalize::MUON_NS_COEFFICIENTS
            .map(|c| c as f32),
        steps: 5,
        eps: 1e-7,
    }
    .apply(&buf, 3, 2)
    .unwrap();
    assert_close(
        "update direction",
        &step,
        &ns.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
        1e-3,
        1e-4,
    );
}

/// The inputs of the two reading tests below (`tests/replay/vectors.py` uses the same formulas).
fn reading_inputs(n: usize) -> (Vec<f64>, Vec<f64>) {
    let data = (0..n)
        .map(|i| ((i * 37 % 17) as f64 - 8.0) / 10.0)
        .collect();
    let grad = (0..n).map(|i| ((i * 11 % 13) as f64 - 6.0) / 7.0).collect();
    (data, grad)
}

/// One plain Muon step (lr 0.1, no momentum) on a parameter of `shape`.
fn muon_one_step(shape: &[usize]) -> Vec<f32> {
    let (data, grad) = reading_inputs(shape.iter().product());
    let cfg = config(r#"{"name":"muon","lr":0.1,"momentum":0.0,"nesterov":false}"#);
    let mut params = vec![param("w", shape, &data)];
    run_steps(&cfg, &mut params, &[vec![tensor(shape, &grad)]]);
    params[0].value.data().to_vec()
}

/// Conv filters are flattened to [out, in·kh·kw] and scaled by that shape (Muon #60/#63): for
/// [4, 1, 3, 1] the flattened factor is sqrt(4/3) and the unflattened kh/kw reading would give
/// sqrt(3). Numbers from the float64 reference (`python3 tests/replay/vectors.py`).
#[test]
fn conv_filters_use_the_flattened_shape() {
    let want = [
        -0.7321603557,
        -0.5250312934,
        -0.1942199874,
        0.1186656008,
        0.3929809221,
        0.7742066315,
        -0.6910439076,
        -0.4650253538,
        -0.1291342027,
        0.1597820489,
        0.4529868617,
        0.8392924162,
    ];
    assert_close("conv", &muon_one_step(&[4, 1, 3, 1]), &want, 2e-6, 1e-7);
}

/// A stack [b, m, n] is b matrices, each orthogonalized on its own with the factor of m × n
/// (spec §1.1 "a batch with trailing two dims", §8 batched NS for MoE experts), not one [b, m·n]
/// matrix. Numbers from the float64 reference (`python3 tests/replay/vectors.py`).
#[test]
fn stacks_are_orthogonalized_matrix_by_matrix() {
    let want = [
        -0.7402238208,
        -0.5552118961,
        -0.2711123375,
        0.03948852325,
        0.4551130633,
        0.7873075778,
        -0.6395181446,
        -0.4792434184,
        -0.1811852446,
        0.1462523936,
        0.5096469883,
        0.8344536297,
    ];
    let stacked = muon_one_step(&[2, 3, 2]);
    assert_close("stack", &stacked, &want, 2e-6, 1e-7);
    // The flattened reading is a different update (so this test can tell the two apart).
    let flat = muon_one_step(&[2, 6]);
    let gap = stacked
        .iter()
        .zip(&flat)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(gap > 1e-2, "stack and [2, 6] readings agree to {gap}");
}

/// Vectors go to the auxiliary AdamW (MuonWithAuxAdam): its first step is lr·sign(g).
#[test]
fn vectors_are_routed_to_aux_adamw() {
    let mut params = vec![param("bias", &[3], &[1.0, -2.0, 0.5])];
    let cfg = config(r#"{"name":"muon","aux_adam":{"lr":0.01}}"#);
    run_steps(&cfg, &mut params, &[vec![tensor(&[3], &[0.1, -0.2, 0.3])]]);
    assert_close(
        "bias",
        params[0].value.data(),
        &[0.99, -1.99, 0.49],
        1e-6,
        1e-7,
    );
    // A group with use_muon = false sends a matrix there too.
    let mut params = vec![param("head", &[1, 2], &[1.0, -2.0])];
    let cfg = config(
        r#"{"name":"muon","aux_adam":{"lr":0.01},"param_groups":[{"params":["head"],"use_muon":false}]}"#,
    );
    run_steps(&cfg, &mut params, &[vec![tensor(&[1, 2], &[0.5, -0.5])]]);
    assert_close("head", params[0].value.data(), &[0.99, -1.99], 1e-6, 1e-7);
}

/// Spec §2.3 tiny vector: M = diag(2, 1, 0), exact polar factor via SVD, lr 0.1.
#[test]
fn specgd_tiny_vector() {
    let m = [2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
    let mut params = vec![
        param("B", &[3, 2], &[0.1, 0.0, 0.0, 0.05, 0.02, -0.01]),
        param("A", &[2, 3], &[0.1, 0.02, 0.0, -0.03, 0.05, 0.01]),
    ];
    let cfg = config(r#"{"name":"specgd","lr":0.1,"rank_tol":1e-12}"#);
    let mut opt = cfg.build(&params).unwrap();
    let want = [
        (
            [
                0.1952102193,
                -0.03057778192,
                0.03057781497,
                0.1452102783,
                0.01989332094,
                -0.009953571939,
            ],
            [
                0.1999999292,
                0.01988104252,
                1.015389955e-06,
                -0.02988104201,
                0.1499999157,
                0.009947867934,
            ],
            [0.04022440821, 0.02247391649],
        ),
        (
            [
                0.2941899237,
                -0.04482455513,
                0.04482485709,
                0.2441901197,
                0.01969356572,
                -0.009810556074,
            ],
            [
                0.2985526418,
                0.03683281991,
                -8.21573292e-06,
                -0.04683281424,
                0.2485525172,
                0.009799071596,
            ],
            [0.09018432475, 0.06240280709],
        ),
    ];
    for (t, (b, a, sigma)) in want.iter().enumerate() {
        let bm = params[0].value.data().to_vec();
        let am = params[1].value.data().to_vec();
        let ba = optiscope_core::tensor::matmul(
            3,
            2,
            3,
            &bm,
            optiscope_core::tensor::Op::N,
            &am,
            optiscope_core::tensor::Op::N,
        );
        let r: Vec<f32> = ba.iter().zip(&m).map(|(x, y)| x - *y as f32).collect();
        let gb = optiscope_core::tensor::matmul(
            3,
            3,
            2,
            &r,
            optiscope_core::tensor::Op::N,
            &am,
            optiscope_core::tensor::Op::T,
        );
        let ga = optiscope_core::tensor::matmul(
            2,
            3,
            3,
            &bm,
            optiscope_core::tensor::Op::T,
            &r,
            optiscope_core::tensor::Op::N,
        );
        let grads = [
            optiscope_core::Tensor::new(vec![3, 2], gb).unwrap(),
            optiscope_core::Tensor::new(vec![2, 3], ga).unwrap(),
        ];
        opt.step(&mut params, &grads).unwrap();
        assert_close(
            &format!("B{}", t + 1),
            params[0].value.data(),
            b,
            1e-5,
            2e-7,
        );
        assert_close(
            &format!("A{}", t + 1),
            params[1].value.data(),
            a,
            1e-5,
            2e-7,
        );
        let ba = optiscope_core::tensor::matmul(
            3,
            2,
            3,
            params[0].value.data(),
            optiscope_core::tensor::Op::N,
            params[1].value.data(),
            optiscope_core::tensor::Op::N,
        );
        let s = linalg::singular_values(&ba, 3, 3).unwrap();
        assert_close(
            &format!("sigma(B{0}A{0})", t + 1),
            &s[..2].iter().map(|&v| v as f32).collect::<Vec<_>>(),
            sigma,
            1e-5,
            1e-7,
        );
    }
    assert!(matches!(cfg, OptimizerConfig::Specgd(_)));
}
