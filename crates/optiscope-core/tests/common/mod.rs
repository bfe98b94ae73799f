//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
#![allow(dead_code)]

use optiscope_core::optim::{Optimizer, OptimizerConfig, Param, ParamRole};
use optiscope_core::Tensor;

/// Parses an optimizer config from JSON.
pub fn config(json: &str) -> OptimizerConfig {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

pub fn param(name: &str, shape: &[usize], data: &[f64]) -> Param {
    Param {
        name: name.into(),
        value: Tensor::new(shape.to_vec(), data.iter().map(|&v| v as f32).collect()).unwrap(),
        role: ParamRole::Auto,
    }
}

pub fn tensor(shape: &[usize], data: &[f64]) -> Tensor {
    Tensor::new(shape.to_vec(), data.iter().map(|&v| v as f32).collect()).unwrap()
}

/// Asserts `got ≈ want` elementwise: |got − want| ≤ rel·|want| + abs.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f64], rel: f64, abs: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w).abs();
        assert!(
            err <= rel * w.abs() + abs,
            "{what}[{i}]: got {g}, want {w} (error {err:.3e})"
        );
    }
}

/// Builds `cfg` for `params` and steps it once per gradient set, returning params after each step.
pub fn run_steps(
    cfg: &OptimizerConfig,
    params: &mut [Param],
    grads: &[Vec<Tensor>],
) -> (Box<dyn Optimizer>, Vec<Vec<Vec<f32>>>) {
    let mut opt = cfg.build(params).unwrap();
    let mut out = vec![];
    for g in grads {
        opt.step(params, g).unwrap();
        out.push(params.iter().map(|p| p.value.data().to_vec()).collect());
    }
    (opt, out)
}
