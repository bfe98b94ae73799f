//! Spec §5.2–5.3 (proxgen.out.txt, numpy float64): two ProxGen-Adam steps for every regularizer,
//! reproduced in f32 (1e-6 relative + 1e-7 absolute); the prox acts on weight tensors only; and
//! proximal SGD against its definition.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;

const P0: [f64; 5] = [0.5, -0.02, 0.3, -0.8, 0.05];
const G1: [f64; 5] = [0.1, 0.01, -0.2, 0.05, 0.3];
const G2: [f64; 5] = [0.2, -0.01, -0.1, 0.0, 0.2];

/// `(regularizer, penalty, p1, p2)` from the spec's out file (`[none]` is penalty 0).
const CASES: [(&str, f64, [f64; 5], [f64; 5]); 5] = [
    (
        "l1",
        0.05,
        [0.350000015, 0.0, 0.3749999963, -0.8, -0.03333333056],
        [
            0.2218637886,
            0.0,
            0.4365904328,
            -0.7255491039,
            -0.1107550399,
        ],
    ),
    (
        "l0",
        0.05,
        [0.40000001, 0.0, 0.399999995, -0.89999998, 0.0],
        [0.3034818135, 0.0, 0.493217953, -0.9670057865, 0.0],
    ),
    (
        "l1/2",
        0.05,
        [0.358230571, 0.0, 0.379714702, -0.8456273414, 0.0],
        [0.2286512173, 0.0, 0.4493416338, -0.8352427317, 0.0],
    ),
    (
        "l2/3",
        0.05,
        [0.3528272453, 0.0, 0.3769274154, -0.8290338314, 0.0],
        [
            0.221469524,
            0.0,
            0.4424752624,
            -0.7942068268,
            -0.06441667853,
        ],
    ),
    (
        "l1",
        0.0,
        [
            0.40000001,
            -0.1199999,
            0.399999995,
            -0.89999998,
            -0.04999999667,
        ],
        [
            0.3034818135,
            -0.1147367474,
            0.493217953,
            -0.9670057865,
            -0.1470352057,
        ],
    ),
];

fn proxgen(reg: &str, penalty: f64) -> String {
    format!(
        r#"{{"name":"proxgen","lr":0.1,"weight_decay":0,"regularizer":"{reg}","penalty":{penalty}}}"#
    )
}

/// The spec's two steps, on the vector as a weight tensor (`[5, 1]`, role matrix).
#[test]
fn two_adam_prox_steps_for_every_regularizer() {
    for (reg, penalty, p1, p2) in CASES {
        let mut params = vec![param("w", &[5, 1], &P0)];
        let grads = [vec![tensor(&[5, 1], &G1)], vec![tensor(&[5, 1], &G2)]];
        let (_, got) = run_steps(&config(&proxgen(reg, penalty)), &mut params, &grads);
        assert_close(
            &format!("{reg} λ={penalty} p1"),
            &got[0][0],
            &p1,
            1e-6,
            1e-7,
        );
        assert_close(
            &format!("{reg} λ={penalty} p2"),
            &got[1][0],
            &p2,
            1e-6,
            1e-7,
        );
        if penalty > 0.0 {
            assert!(
                got[1][0].contains(&0.0),
                "{reg}: the prox zeroes a coordinate"
            );
        }
    }
}

/// A vector (bias, shape `[5]`) takes the plain Adam step whatever the penalty: the `[none]` row.
#[test]
fn vectors_take_the_plain_step() {
    let (_, _, p1, p2) = CASES[4];
    for (reg, ..) in &CASES[..4] {
        let mut params = vec![param("b", &[5], &P0)];
        let grads = [vec![tensor(&[5], &G1)], vec![tensor(&[5], &G2)]];
        let (_, got) = run_steps(&config(&proxgen(reg, 0.05)), &mut params, &grads);
        assert_close(&format!("{reg} bias p1"), &got[0][0], &p1, 1e-6, 1e-7);
        assert_close(&format!("{reg} bias p2"), &got[1][0], &p2, 1e-6, 1e-7);
    }
}

/// The official default decays first: with weight_decay 0.01 the first step starts from
/// `p0 (1 − η·0.01)`, so for l1 `p1 = soft(p0(1 − 0.001) − Δ, λ')` with the same Adam Δ, λ'.
#[test]
fn weight_decay_is_decoupled_and_first() {
    let json = r#"{"name":"proxgen","lr":0.1,"regularizer":"l1","penalty":0.05}"#;
    let mut params = vec![param("w", &[5, 1], &P0)];
    let grads = [vec![tensor(&[5, 1], &G1)]];
    let (_, got) = run_steps(&config(json), &mut params, &grads);
    // First Adam step: m̂ = g, v̂ = g², denom = |g| + ε, Δ = η g / denom, λ' = η λ / denom.
    let want: Vec<f64> = P0
        .iter()
        .zip(G1)
        .map(|(p, g)| {
            let denom = g.abs() + 1e-8;
            let z = p * (1.0 - 0.1 * 0.01) - 0.1 * g / denom;
            let lam = 0.1 * 0.05 / denom;
            z.signum() * (z.abs() - lam).max(0.0)
        })
        .collect();
    assert_close("decayed l1 p1", &got[0][0], &want, 1e-6, 1e-7);
}

/// Proximal SGD with momentum, two steps, against its definition in f64:
/// `m ← μm + g`, `z = p − ηm`, `p = prox(z; ηλ)` (l0: hard threshold at √(2ηλ)).
#[test]
fn prox_sgd_is_momentum_then_prox() {
    let (lr, mu, lam) = (0.5, 0.9, 0.02);
    let json = format!(
        r#"{{"name":"prox_sgd","lr":{lr},"momentum":{mu},"regularizer":"l0","penalty":{lam}}}"#
    );
    let mut params = vec![param("w", &[5, 1], &P0)];
    let grads = [vec![tensor(&[5, 1], &G1)], vec![tensor(&[5, 1], &G2)]];
    let (_, got) = run_steps(&config(&json), &mut params, &grads);
    let thr = (2.0f64 * lr * lam).sqrt();
    let (mut p, mut m) = (P0.to_vec(), [0.0f64; 5]);
    for (t, g) in [G1, G2].iter().enumerate() {
        for i in 0..5 {
            m[i] = mu * m[i] + g[i];
            let z = p[i] - lr * m[i];
            p[i] = if z.abs() > thr { z } else { 0.0 };
        }
        assert_close(&format!("prox_sgd p{}", t + 1), &got[t][0], &p, 1e-6, 1e-7);
    }
    assert!(got[0][0].contains(&0.0), "some coordinate is thresholded");
}

/// Unknown regularizers and negative penalties are refused with the field named.
#[test]
fn bad_configs_name_the_field() {
    let err = serde_json::from_str::<optiscope_core::OptimizerConfig>(
        r#"{"name":"proxgen","regularizer":"l3"}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("regularizer"), "{err}");
    let cfg = config(r#"{"name":"proxgen","penalty":-1}"#);
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("penalty"), "{err}");
}

/// The subgradient baseline, one step against its definition in f64: AdamW on `f + λ|θ|^q` with
/// `g + λ q sign(θ)|θ|^{q−1}` (0 at θ = 0; nothing for ℓ0), no prox, so no exact zeros.
#[test]
fn the_subgradient_baseline_is_adamw_on_the_penalized_gradient() {
    for (reg, q) in [
        ("l1", 1.0f64),
        ("l1/2", 0.5),
        ("l2/3", 2.0 / 3.0),
        ("l0", 0.0),
    ] {
        let json = format!(
            r#"{{"name":"adamw_subgradient","lr":0.1,"weight_decay":0,"regularizer":"{reg}","penalty":0.05}}"#
        );
        let mut params = vec![param("w", &[5, 1], &P0)];
        let grads = [vec![tensor(&[5, 1], &G1)]];
        let (_, got) = run_steps(&config(&json), &mut params, &grads);
        let want: Vec<f64> = P0
            .iter()
            .zip(G1)
            .map(|(&p, g)| {
                let sub = if q == 0.0 || p == 0.0 {
                    0.0
                } else {
                    q * p.signum() * p.abs().powf(q - 1.0)
                };
                let g = g + 0.05 * sub;
                // First Adam step: m̂ = g, v̂ = g², Δ = η g / (|g| + ε).
                p - 0.1 * g / (g.abs() + 1e-8)
            })
            .collect();
        assert_close(
            &format!("{reg} subgradient p1"),
            &got[0][0],
            &want,
            1e-6,
            1e-7,
        );
        assert!(!got[0][0].contains(&0.0), "{reg}: no exact zeros");
    }
}
