//! DPO fitted by a first-order optimizer of the project on any device (spec B1: "Newton/IRLS on
//! the CPU, Adam on the GPU"). The bandit's features and a batch's pairs live in device buffers;
//! each step is the family's two kernels — the log-policy of every context
//! ([`AlignOps::bandit_log_policy`], one workgroup per context on the GPU) and DPO's per-pair
//! terms ([`AlignOps::dpo_pair_terms`]) — and one weighted column sum of the pairs' gathered
//! feature rows for the gradient, then the optimizer's step on θ. Only θ is read back, at the end.
//!
//! The objective is the weighted mean DPO loss without the Newton fit's ridge; the learning rate
//! follows a cosine from the optimizer's to 0 over the steps (`cosine`), so that the constant-rate
//! jitter of Adam dies out and the fit settles at the minimiser.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::bandit::Bandit;
use super::dpo::Pairs;
use crate::config::ConfigError;
use crate::device::{Device, DeviceError, Mat};
use crate::optim::{OptimError, OptimizerConfig};
use crate::tensor::{Param, Tensor};

/// An alignment run failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AlignError {
    /// A field of the config is not allowed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The device failed.
    #[error("device: {0}")]
    Device(#[from] DeviceError),
    /// The optimizer refused a step.
    #[error("optimizer: {0}")]
    Optim(#[from] OptimError),
}

/// How each round's DPO fit is solved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fit {
    /// Newton/IRLS in f64 on the host, with the config's ridge (the default).
    #[default]
    Newton,
    /// A first-order optimizer of the project on the chosen device, in f32.
    FirstOrder(FirstOrderFit),
}

/// A first-order DPO fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstOrderFit {
    /// The optimizer (any of `optiscope list` that backpropagates).
    pub optimizer: OptimizerConfig,
    /// Steps per fit.
    pub steps: usize,
    /// A cosine decay of the learning rate to 0 over the steps.
    #[serde(default = "yes")]
    pub cosine: bool,
}

fn yes() -> bool {
    true
}

impl FirstOrderFit {
    /// Adam at lr 0.05 for 400 cosine-decayed steps.
    pub fn adam() -> Self {
        let mut optimizer =
            OptimizerConfig::default_for("adam").unwrap_or_else(|| unreachable!("adam exists"));
        let _ = optimizer.set_field("lr", serde_json::json!(0.05));
        Self {
            optimizer,
            steps: 400,
            cosine: true,
        }
    }

    /// Checks the fields.
    pub fn validate(&self, field: &str) -> Result<(), ConfigError> {
        self.optimizer.validate_first_order(
            &format!("{field}.optimizer"),
            "needs a first-order optimizer (the fit has exact gradients)",
        )?;
        if !(1..=1_000_000).contains(&self.steps) {
            return Err(ConfigError::invalid(
                format!("{field}.steps"),
                self.steps,
                "must be in 1..=1000000",
            ));
        }
        Ok(())
    }
}

/// The bandit's features on a device.
pub struct DeviceBandit<D: Device> {
    /// `φ`, `[n_ctx·K][d]` in f32.
    pub phi: D::Buf,
    /// Contexts.
    pub n_ctx: usize,
    /// Arms.
    pub k: usize,
    /// Features.
    pub d: usize,
}

impl<D: Device> DeviceBandit<D> {
    /// Uploads `b`'s features.
    pub fn new(dev: &mut D, b: &Bandit) -> Self {
        let phi: Vec<f32> = b.phi.iter().map(|v| *v as f32).collect();
        Self {
            phi: dev.upload(&phi),
            n_ctx: b.n_ctx,
            k: b.k,
            d: b.d,
        }
    }

    /// `log π_θ` of every context, on the host (one read-back).
    pub fn log_policy(&self, dev: &mut D, theta: &[f64]) -> Result<Vec<f64>, DeviceError> {
        let t: Vec<f32> = theta.iter().map(|v| *v as f32).collect();
        let t = dev.upload(&t);
        let lp = dev.bandit_log_policy(&self.phi, &t, self.n_ctx, self.k);
        Ok(dev.download(&lp)?.into_iter().map(f64::from).collect())
    }
}

/// Fits DPO on `data` with `fit` on `dev`, from `warm` (θ_ref when None); returns θ.
pub fn fit_first_order<D: Device + 'static>(
    dev: &mut D,
    bandit: &DeviceBandit<D>,
    data: &Pairs,
    theta_ref: &[f64],
    beta: f64,
    fit: &FirstOrderFit,
    warm: Option<&[f64]>,
) -> Result<Vec<f64>, AlignError> {
    let (n, d) = (data.len(), bandit.d);
    let start = warm.unwrap_or(theta_ref);
    if n == 0 {
        return Ok(start.to_vec());
    }
    let total: f64 = data.c.iter().sum();
    let to32 = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
    let mut rows = Vec::with_capacity(2 * n);
    rows.extend(data.rows.iter().map(|r| r[0] as f32));
    rows.extend(data.rows.iter().map(|r| r[1] as f32));
    let gather: Vec<u32> = data
        .rows
        .iter()
        .map(|r| r[0])
        .chain(data.rows.iter().map(|r| r[1]))
        .collect();
    let rows = dev.upload(&rows);
    let q = dev.upload(&to32(&data.q));
    let c: Vec<f64> = data.c.iter().map(|c| c / total).collect();
    let c = dev.upload(&to32(&c));
    // The pairs' feature rows [φ(x_i, a_i); φ(x_i, b_i)], gathered once per fit.
    let gathered = dev.gather_rows(Mat::new(&bandit.phi, bandit.n_ctx * bandit.k, d), &gather);
    let theta_ref_buf = dev.upload(&to32(theta_ref));
    let logp_ref = dev.bandit_log_policy(&bandit.phi, &theta_ref_buf, bandit.n_ctx, bandit.k);
    let param = Param::new("theta", Tensor::vector(to32(start)));
    let mut exec = fit.optimizer.build_on(dev, std::slice::from_ref(&param))?;
    let mut theta = vec![dev.upload(param.value.data())];
    for step in 0..fit.steps {
        if fit.cosine {
            let t = step as f64 / fit.steps as f64;
            exec.set_lr_scale(0.5 * (1.0 + (std::f64::consts::PI * t).cos()));
        }
        let logp = dev.bandit_log_policy(&bandit.phi, &theta[0], bandit.n_ctx, bandit.k);
        let terms = dev.dpo_pair_terms(&logp, &logp_ref, &rows, &q, &c, beta as f32);
        let grad = dev.weighted_col_sums(&terms.coef, Mat::new(&gathered, 2 * n, d));
        exec.step(dev, &mut theta, &[&grad])?;
    }
    Ok(dev
        .download(&theta[0])?
        .into_iter()
        .map(f64::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::bandit::FeatureKind;
    use crate::align::dpo::fit_newton;
    use crate::device::Cpu;

    #[test]
    fn adam_on_the_cpu_device_reaches_the_newton_fit() {
        // 3000 labelled pairs on Gaussian features: the cosine-decayed Adam fit lands within
        // 2e-3 of the Newton minimiser (ridge 0) — the same objective by another solver, in f32.
        let b = Bandit::new(
            20,
            6,
            &FeatureKind::Gaussian {
                d: 4,
                scale: 1.0,
                seed: 5,
            },
        )
        .unwrap();
        let (star, reference, beta) = ([1.0, -0.5, 0.8, 0.2], [0.0, 0.3, -0.2, 0.1], 0.5);
        let r: Vec<f64> = b.logits(
            &star
                .iter()
                .zip(&reference)
                .map(|(s, r)| beta * (s - r))
                .collect::<Vec<_>>(),
        );
        let p = b.policy(&reference);
        let rng = crate::rng::Philox::new(1);
        let mut data = Pairs::new(4);
        for i in 0..3000u64 {
            let u = |j: u64| f64::from(rng.u32_at(0, 4 * i + j)) / 4_294_967_296.0;
            let x = ((u(0) * 20.0) as usize).min(19);
            let (a, c) = (b.draw(&p, x, u(1)), b.draw(&p, x, u(2)));
            let won = u(3) < crate::align::bandit::sigmoid(r[x * 6 + a] - r[x * 6 + c]);
            data.push(&b, x, a, c, won);
        }
        let newton = fit_newton(&data, beta, &reference, None, 0.0, 50);
        let mut dev = Cpu;
        let db = DeviceBandit::new(&mut dev, &b);
        let fit = FirstOrderFit {
            steps: 1500,
            ..FirstOrderFit::adam()
        };
        let adam = fit_first_order(&mut dev, &db, &data, &reference, beta, &fit, None).unwrap();
        for (a, n) in adam.iter().zip(&newton) {
            assert!((a - n).abs() < 2e-3, "{adam:?} vs {newton:?}");
        }
        let bad = FirstOrderFit {
            optimizer: OptimizerConfig::default_for("mezo").unwrap(),
            ..FirstOrderFit::adam()
        };
        assert!(bad
            .validate("fit")
            .unwrap_err()
            .to_string()
            .contains("first-order"));
    }
}
