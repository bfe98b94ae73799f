//! LoRA-style matrix factorization (spec §2.2–2.3): `L(B, A) = ½‖BA − M‖_F²` with `B ∈ ℝ^{m×k}`,
//! `A ∈ ℝ^{k×n}` and a target `M = U_k diag(σ*) V_kᵀ`. Gradient descent from small initialization
//! learns the target's singular values largest-first (Saxe et al. 2014; Gidel et al. 2019); SpecGD
//! and Muon grow them at equal rates, so the smallest is reached first (arXiv 2602.06385).

use serde::{Deserialize, Serialize};

use super::{ConfigError, Observation, Problem};
use crate::linalg;
use crate::rng::{stream, Philox, StreamKind};
use crate::tensor::{matmul, Op, Tensor};
use crate::tensor::{Param, ParamRole};

/// How `B` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BInit {
    /// `B = 0` (LoRA's initialization; the gradient of A is zero at the first step).
    #[default]
    Zero,
    /// `B = init_scale · N(0, 1)`, like A.
    Random,
}

/// The factorization problem. Defaults are spec §2.3: 16×16, rank 4, targets (8, 4, 2, 1),
/// `A = 1e-3·N(0,1)`, `B = 0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraConfig {
    /// Rows of M (and of B).
    pub m: usize,
    /// Columns of M (and of A).
    pub n: usize,
    /// Target singular values, one per factor rank, largest first; `k = targets.len()`.
    pub targets: Vec<f64>,
    /// Standard deviation of the random initialization.
    pub init_scale: f64,
    /// How B starts.
    pub b_init: BInit,
    /// Seed of the target's random singular vectors (fixed, so the target does not change with
    /// the experiment's seed, which drives the initialization).
    pub data_seed: u64,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            m: 16,
            n: 16,
            targets: vec![8.0, 4.0, 2.0, 1.0],
            init_scale: 1e-3,
            b_init: BInit::Zero,
            data_seed: 1234,
        }
    }
}

/// The built problem.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraFactorization {
    m: usize,
    n: usize,
    k: usize,
    targets: Vec<f64>,
    /// Row-major m×n target, f64.
    target: Vec<f64>,
    init: [Vec<f32>; 2],
}

fn random_orthogonal(seed: u64, id: u32, size: usize) -> Vec<f32> {
    let mut x = vec![0.0; size * size];
    Philox::new(seed).fill_normal(stream(StreamKind::Data, id), 1.0, &mut x);
    linalg::orthogonal_from(&x, size)
}

impl LoraFactorization {
    /// Builds the target from `data_seed` and the initialization from `seed`.
    pub fn new(c: &LoraConfig, seed: u64) -> Result<Self, ConfigError> {
        let k = c.targets.len();
        if !(1..=512).contains(&c.m) || !(1..=512).contains(&c.n) {
            return Err(ConfigError::invalid(
                "m, n",
                format!("{}, {}", c.m, c.n),
                "must be in 1..=512",
            ));
        }
        if k == 0 || k > c.m.min(c.n) {
            return Err(ConfigError::invalid(
                "targets",
                format!("{:?}", c.targets),
                "needs 1..=min(m, n) values",
            ));
        }
        if c.targets.iter().any(|t| !(t.is_finite() && *t > 0.0))
            || c.targets.windows(2).any(|w| w[0] < w[1])
        {
            return Err(ConfigError::invalid(
                "targets",
                format!("{:?}", c.targets),
                "must be finite, > 0 and sorted largest first",
            ));
        }
        if !(c.init_scale.is_finite() && c.init_scale >= 0.0) {
            return Err(ConfigError::invalid(
                "init_scale",
                c.init_scale,
                "must be a finite number >= 0",
            ));
        }
        let (m, n) = (c.m, c.n);
        let u = random_orthogonal(c.data_seed, 0, m);
        let v = random_orthogonal(c.data_seed, 1, n);
        let mut target = vec![0.0f64; m * n];
        for r in 0..m {
            for col in 0..n {
                target[r * n + col] = (0..k)
                    .map(|i| f64::from(u[r * m + i]) * c.targets[i] * f64::from(v[col * n + i]))
                    .sum();
            }
        }
        let rng = Philox::new(seed);
        let mut a = vec![0.0; k * n];
        rng.fill_normal(stream(StreamKind::Init, 0), c.init_scale as f32, &mut a);
        let mut b = vec![0.0; m * k];
        if c.b_init == BInit::Random {
            rng.fill_normal(stream(StreamKind::Init, 1), c.init_scale as f32, &mut b);
        }
        Ok(Self {
            m,
            n,
            k,
            targets: c.targets.clone(),
            target,
            init: [b, a],
        })
    }

    /// `BA` (row-major m×n), from `[B, A]`.
    fn product(&self, params: &[Tensor]) -> Vec<f32> {
        matmul(
            self.m,
            self.k,
            self.n,
            params[0].data(),
            Op::N,
            params[1].data(),
            Op::N,
        )
    }

    /// `BA − M` in f64 (row-major m×n), from `[B, A]`.
    fn residual(&self, params: &[Tensor]) -> Vec<f64> {
        let ba = self.product(params);
        ba.iter()
            .zip(&self.target)
            .map(|(&p, &t)| f64::from(p) - t)
            .collect()
    }
}

impl Problem for LoraFactorization {
    fn init_params(&self) -> Vec<Param> {
        let [b, a] = &self.init;
        vec![
            Param {
                name: "B".into(),
                value: Tensor::sized(vec![self.m, self.k], b.clone()),
                role: ParamRole::Matrix,
            },
            Param {
                name: "A".into(),
                value: Tensor::sized(vec![self.k, self.n], a.clone()),
                role: ParamRole::Matrix,
            },
        ]
    }

    fn loss(&self, params: &[Tensor]) -> f64 {
        0.5 * self.residual(params).iter().map(|r| r * r).sum::<f64>()
    }

    fn gradient(&self, params: &[Tensor], _step: u64) -> Vec<Tensor> {
        let (m, n, k) = (self.m, self.n, self.k);
        let r: Vec<f32> = self.residual(params).iter().map(|&v| v as f32).collect();
        let g_b = matmul(m, n, k, &r, Op::N, params[1].data(), Op::T); // (BA − M) Aᵀ
        let g_a = matmul(k, m, n, params[0].data(), Op::T, &r, Op::N); // Bᵀ (BA − M)
        vec![
            Tensor::sized(vec![m, k], g_b),
            Tensor::sized(vec![k, n], g_a),
        ]
    }

    fn observe(&self, params: &[Tensor]) -> Observation {
        let ba = self.product(params);
        let mut s =
            linalg::singular_values(&ba, self.m, self.n).unwrap_or_else(|_| vec![f64::NAN; self.k]);
        s.truncate(self.k);
        Observation::SingularValues(s)
    }

    fn spectrum_targets(&self) -> Option<&[f64]> {
        Some(&self.targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_has_the_requested_singular_values() {
        let p = LoraFactorization::new(&LoraConfig::default(), 0).unwrap();
        let t: Vec<f32> = p.target.iter().map(|&v| v as f32).collect();
        let s = linalg::singular_values(&t, 16, 16).unwrap();
        for (i, want) in [8.0, 4.0, 2.0, 1.0, 0.0].iter().enumerate() {
            assert!((s[i] - want).abs() < 1e-5, "σ{i} = {}", s[i]);
        }
    }

    /// Central differences of the f64 loss in each coordinate agree with the gradient.
    #[test]
    fn gradient_matches_finite_differences() {
        let c = LoraConfig {
            m: 5,
            n: 4,
            targets: vec![3.0, 1.0],
            init_scale: 0.5,
            b_init: BInit::Random,
            data_seed: 7,
        };
        let p = LoraFactorization::new(&c, 11).unwrap();
        let params: Vec<Tensor> = p.init_params().into_iter().map(|p| p.value).collect();
        let grads = p.gradient(&params, 0);
        for which in 0..2 {
            for i in 0..params[which].len() {
                let h = 1e-2f32;
                let mut plus = params.clone();
                plus[which].data_mut()[i] += h;
                let mut minus = params.clone();
                minus[which].data_mut()[i] -= h;
                let dx = f64::from(plus[which].data()[i]) - f64::from(minus[which].data()[i]);
                let fd = (p.loss(&plus) - p.loss(&minus)) / dx;
                let g = f64::from(grads[which].data()[i]);
                // The loss is quartic in the parameters: central differences err by O(h²).
                assert!(
                    (fd - g).abs() < 1e-3 * (1.0 + g.abs()),
                    "param {which}[{i}]: fd {fd} vs {g}"
                );
            }
        }
    }

    #[test]
    fn lora_init_has_zero_b_and_small_a() {
        let p = LoraFactorization::new(&LoraConfig::default(), 0).unwrap();
        let init = p.init_params();
        assert!(init[0].value.data().iter().all(|&v| v == 0.0));
        let rms = init[1].value.frobenius_norm() / (init[1].value.len() as f64).sqrt();
        assert!((rms / 1e-3 - 1.0).abs() < 0.25, "{rms}");
    }

    #[test]
    fn unsorted_targets_are_rejected() {
        let c = LoraConfig {
            targets: vec![1.0, 2.0],
            ..Default::default()
        };
        let err = LoraFactorization::new(&c, 0).unwrap_err().to_string();
        assert_eq!(
            err,
            "targets = [1.0, 2.0]: must be finite, > 0 and sorted largest first"
        );
    }
}
