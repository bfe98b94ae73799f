//! Spec §6 (adablock.out.txt, numpy float64 with `np.linalg.eigh`): two AdaBlockW steps on
//! `W[4, 3]` for groups 1, 2 and 4 and with spectrum clipping, reproduced in f32 (1e-5 relative +
//! 1e-6 absolute); the block layout's divisibility error; vectors take diagonal Adam; and the
//! rotation equivariance inside a block that diagonal methods lack.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;

const W0: [f64; 12] = [
    0.5, -0.2, 0.1, 0.3, 0.4, -0.6, -0.1, 0.2, 0.3, 0.0, -0.5, 0.25,
];
const G1: [f64; 12] = [
    0.1, -0.3, 0.2, 0.05, 0.2, -0.1, -0.2, 0.1, 0.0, 0.3, -0.05, 0.1,
];
const G2: [f64; 12] = [
    -0.1, 0.1, 0.1, 0.2, -0.1, 0.05, 0.1, 0.1, -0.2, 0.0, 0.2, 0.1,
];

/// `(label, extra config, W1, W2)` from the spec's out file (lr 0.01, betas (0.9, 0.999),
/// delta 1e-4, jitter 1e-6, weight_decay 0).
#[rustfmt::skip]
const CASES: [(&str, &str, [f64; 12], [f64; 12]); 5] = [
    ("groups=1", r#""groups":1"#,
     [0.4907444397, -0.1901582662, 0.09027458943, 0.2919772894, 0.3902745894, -0.5907444397,
      -0.09027458943, 0.1907444397, 0.3, -0.009841733759, -0.4919772894, 0.2407444397],
     [0.4912470938, -0.1862152127, 0.08117221681, 0.2833663366, 0.3876739115, -0.5882496122,
      -0.08767391154, 0.1811940123, 0.3072370361, -0.01643619858, -0.497425035, 0.2311940123]),
    ("groups=2", r#""groups":2"#,
     [0.4916214068, -0.1917831069, 0.09126614951, 0.2958107034, 0.3945220712, -0.5956330748,
      -0.09452207125, 0.1916214068, 0.3, -0.008216893131, -0.4958107034, 0.2407444397],
     [0.4892571281, -0.1857338855, 0.08171713442, 0.2865045894, 0.3969878146, -0.5968941922,
      -0.09754403979, 0.1827579484, 0.3049992452, -0.01699617183, -0.4995029489, 0.2325106858]),
    ("groups=4", r#""groups":4"#,
     [0.497382036, -0.1921461079, 0.09200460721, 0.298691018, 0.3947640719, -0.5960023036,
      -0.09476407191, 0.197382036, 0.3, -0.007853892135, -0.498691018, 0.2460023036],
     [0.4986099052, -0.1880820601, 0.08506071946, 0.2911452657, 0.3932871715, -0.595055357,
      -0.09395593559, 0.1910974942, 0.3050499945, -0.01396190877, -0.504792233, 0.2412678611]),
    // Clipping with the default gamma: the band [0.0005, 500.5] does not bite yet.
    ("clipped, gamma 1e-3", r#""groups":2,"clipping":true,"final_lr":0.5,"gamma":1e-3"#,
     [0.4916214068, -0.1917831069, 0.09126614951, 0.2958107034, 0.3945220712, -0.5956330748,
      -0.09452207125, 0.1916214068, 0.3, -0.008216893131, -0.4958107034, 0.2407444397],
     [0.4892571281, -0.1857338855, 0.08171713442, 0.2865045894, 0.3969878146, -0.5968941922,
      -0.09754403979, 0.1827579484, 0.3049992452, -0.01699617183, -0.4995029489, 0.2325106858]),
    // gamma 1: bands [0.25, 1] at t = 1 and [1/3, 0.75] at t = 2; the second step is clipped.
    ("clipped, gamma 1", r#""groups":2,"clipping":true,"final_lr":0.5,"gamma":1"#,
     [0.4916214068, -0.1917831069, 0.09126614951, 0.2958107034, 0.3945220712, -0.5956330748,
      -0.09452207125, 0.1916214068, 0.3, -0.008216893131, -0.4958107034, 0.2407444397],
     [0.4893408716, -0.1853354091, 0.08117590947, 0.2863371025, 0.3929636382, -0.5964584166,
      -0.09499828743, 0.1826742049, 0.3054291112, -0.01948233419, -0.4996704358, 0.2324082519]),
];

fn adablock(extra: &str) -> String {
    format!(r#"{{"name":"adablock","lr":0.01,{extra}}}"#)
}

#[test]
fn two_steps_for_groups_one_two_four_and_clipping() {
    for (label, extra, w1, w2) in CASES {
        let mut params = vec![param("W", &[4, 3], &W0)];
        let grads = [vec![tensor(&[4, 3], &G1)], vec![tensor(&[4, 3], &G2)]];
        let (_, got) = run_steps(&config(&adablock(extra)), &mut params, &grads);
        assert_close(&format!("{label} W1"), &got[0][0], &w1, 1e-5, 1e-6);
        assert_close(&format!("{label} W2"), &got[1][0], &w2, 1e-5, 1e-6);
    }
    // The two clipped runs differ at step 2 (so the band really acts).
    let (_, _, _, a) = CASES[3];
    let (_, _, _, b) = CASES[4];
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-4));
}

/// `groups` larger than the output size shrinks to it (the official `if out <= groups`): groups 10
/// on `W[4, 3]` is groups 4.
#[test]
fn groups_above_the_output_size_use_the_output_size() {
    let mut a = vec![param("W", &[4, 3], &W0)];
    let mut b = a.clone();
    let grads = [vec![tensor(&[4, 3], &G1)], vec![tensor(&[4, 3], &G2)]];
    let (_, ga) = run_steps(&config(&adablock(r#""groups":10"#)), &mut a, &grads);
    let (_, gb) = run_steps(&config(&adablock(r#""groups":4"#)), &mut b, &grads);
    assert_eq!(ga, gb);
}

#[test]
fn groups_that_do_not_divide_the_output_size_are_refused_naming_the_parameter() {
    let params = vec![param("fc1.weight", &[6, 3], &[0.0; 18])];
    let err = config(&adablock(r#""groups":4"#))
        .build(&params)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("groups = 4")
            && err.contains("\"fc1.weight\"")
            && err.contains("output size 6"),
        "{err}"
    );
    for bad in [
        r#""groups":0"#,
        r#""groups":33"#,
        r#""delta":0,"jitter":0"#,
        r#""eps":0"#,
    ] {
        let err = config(&adablock(bad)).validate().unwrap_err().to_string();
        let field = bad.split('"').nth(1).unwrap();
        assert!(err.contains(field), "{bad}: {err}");
    }
}

/// A vector takes diagonal Adam in the original form with `eps` (no jitter), whatever `groups`.
#[test]
fn vectors_take_diagonal_adam_with_eps() {
    let b0 = [0.5, -0.2, 0.1];
    let mut params = vec![param("b", &[3], &b0)];
    let g = [0.1, -0.3, 0.0];
    let grads = [vec![tensor(&[3], &g)]];
    let (_, got) = run_steps(
        &config(&adablock(r#""groups":2,"eps":1e-3"#)),
        &mut params,
        &grads,
    );
    let step = 0.01 * 0.001f64.sqrt() / 0.1;
    let want: Vec<f64> = b0
        .iter()
        .zip(g)
        .map(|(p, g)| p - step * 0.1 * g / ((0.001 * g * g).sqrt() + 1e-3))
        .collect();
    assert_close("bias", &got[0][0], &want, 1e-6, 1e-7);
}

/// Spec §6 known behaviour: rotating a block's coordinates and gradients by R rotates the iterates
/// by R under block-diagonal adaptation (numpy: 7e-17 in f64), not under the diagonal method
/// (4.5e-3). Here in f32 with the spec's setting (W[2, 1], one block, jitter 0, lr 0.01, 5 steps)
/// over 20 gradient sequences: block-diagonal below 1e-5 every time, diagonal above 1e-4.
#[test]
fn block_diagonal_adaptation_is_rotation_equivariant_inside_a_block() {
    let th = 0.7f64;
    let rot = |v: [f64; 2]| {
        [
            th.cos() * v[0] - th.sin() * v[1],
            th.sin() * v[0] + th.cos() * v[1],
        ]
    };
    let w0 = [0.3, -0.2];
    let ph = optiscope_core::rng::Philox::new(5);
    let (mut worst_block, mut best_diag) = (0.0f64, f64::INFINITY);
    for seq in 0..20u64 {
        let gs: Vec<[f64; 2]> = (0..5u64)
            .map(|k| {
                let at = |j| f64::from(ph.normal_at(seq, 2 * k + j));
                [at(0), at(1)]
            })
            .collect();
        let err = |extra: &str| {
            let cfg = config(&adablock(extra));
            let mut a = vec![param("W", &[2, 1], &w0)];
            let mut b = vec![param("W", &[2, 1], &rot(w0))];
            let ga: Vec<_> = gs.iter().map(|g| vec![tensor(&[2, 1], g)]).collect();
            let gb: Vec<_> = gs.iter().map(|g| vec![tensor(&[2, 1], &rot(*g))]).collect();
            run_steps(&cfg, &mut a, &ga);
            run_steps(&cfg, &mut b, &gb);
            let (wa, wb) = (a[0].value.data(), b[0].value.data());
            let ra = rot([f64::from(wa[0]), f64::from(wa[1])]);
            (ra[0] - f64::from(wb[0]))
                .abs()
                .max((ra[1] - f64::from(wb[1])).abs())
        };
        worst_block = worst_block.max(err(r#""groups":2,"jitter":0"#));
        best_diag = best_diag.min(err(r#""groups":1"#));
    }
    eprintln!("rotation equivariance over 20 sequences: block-diagonal worst {worst_block:.2e}, diagonal best {best_diag:.2e}");
    assert!(
        worst_block < 1e-5,
        "block-diagonal: worst {worst_block:.2e}"
    );
    assert!(best_diag > 1e-4, "diagonal: best {best_diag:.2e}");
}
