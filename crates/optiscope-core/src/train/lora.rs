//! LoRA adapters for the language-model trainer (Hu et al. 2021, "LoRA: Low-Rank Adaptation of
//! Large Language Models"): every target weight `W` (`out × in`) is frozen and trained through
//! `W + s·B·A` with `A` (`r × in`) and `B` (`out × r`), `s = alpha / r`. The adapters are the only
//! trainable parameters; a matrix optimizer (Muon, AMUSE, SpecGD) orthogonalizes each factor's
//! gradient separately, which is the setting of the LoRA spectral-growth paper (Kang et al.,
//! arXiv 2602.06385: under Muon the singular values of `BA` grow at nearly equal rates, under
//! gradient descent and AdamW largest first). The trainer records the singular values of every
//! `s·B·A` instead of the weights'.
//!
//! Initialisation as PEFT's `LoraLayer`: `B = 0`, so training starts at the given weights, and
//! `A` with the variance of PyTorch's `kaiming_uniform_(a = √5)`, `1 / (3·in)` — drawn here as a
//! Gaussian of that variance from the seed (stream `Init`, id 1000 + 2·target).
//!
//! The forward pass sees merged weights, so the model's gradient with respect to a target is `G`
//! and the chain rule gives the adapters' `∂A = s·Bᵀ G` and `∂B = s·G Aᵀ`.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::device::{Device, Mat};
use crate::optim::{Param, ParamRole};
use crate::rng::{stream, Philox, StreamKind};
use crate::tensor::Tensor;

/// The adapters of a run (`--lora-rank`, `--lora-alpha`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    /// The adapters' rank r.
    pub rank: usize,
    /// The scale's numerator: the update is `(alpha / r)·B·A` (default: r, a scale of 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
}

impl LoraConfig {
    /// `alpha / rank`.
    pub fn scale(&self) -> f64 {
        self.alpha.unwrap_or(self.rank as f64) / self.rank as f64
    }

    /// The rank must fit every target (`1 ≤ r ≤ min(out, in)`), alpha be finite and positive.
    pub fn validate(&self, smallest_side: usize) -> Result<(), ConfigError> {
        if !(1..=smallest_side).contains(&self.rank) {
            return Err(ConfigError::invalid(
                "lora.rank",
                self.rank,
                format!("must be in 1..={smallest_side} (the smallest side of an adapted matrix)"),
            ));
        }
        if let Some(a) = self.alpha {
            if !(a > 0.0 && a.is_finite()) {
                return Err(ConfigError::invalid(
                    "lora.alpha",
                    a,
                    "must be a finite number > 0",
                ));
            }
        }
        Ok(())
    }
}

/// The adapters of the target matrices and what maps them to and from the model's weights.
pub struct Lora<D: Device> {
    /// Indices of the adapted weights among the model's parameters.
    pub targets: Vec<usize>,
    /// `[A₀, B₀, A₁, B₁, …]`, named `{target}.lora_A` / `.lora_B`.
    pub metas: Vec<Param>,
    /// Their values on the device, in the same order.
    pub params: Vec<D::Buf>,
    /// `(out, in)` of each target.
    shapes: Vec<(usize, usize)>,
    rank: usize,
    scale: f32,
}

impl<D: Device> Lora<D> {
    /// Adapters of rank `cfg.rank` on `targets` (indices into `model`, each a matrix), drawn
    /// from `seed`.
    pub fn new(
        dev: &mut D,
        cfg: &LoraConfig,
        model: &[Param],
        targets: Vec<usize>,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        let shapes: Vec<(usize, usize)> = targets
            .iter()
            .map(|&i| {
                let s = model[i].value.shape();
                (s[0], s[1])
            })
            .collect();
        let smallest = shapes.iter().map(|&(o, i)| o.min(i)).min().unwrap_or(0);
        cfg.validate(smallest)?;
        let rng = Philox::new(seed);
        let r = cfg.rank;
        let mut metas = Vec::with_capacity(2 * targets.len());
        for (t, (&i, &(out, inp))) in targets.iter().zip(&shapes).enumerate() {
            let mut a = vec![0.0f32; r * inp];
            let std = (1.0 / (3.0 * inp as f64)).sqrt() as f32;
            rng.fill_normal(stream(StreamKind::Init, 1000 + 2 * t as u32), std, &mut a);
            let name = model[i].name.trim_end_matches(".weight");
            metas.push(Param {
                name: format!("{name}.lora_A"),
                value: Tensor::sized(vec![r, inp], a),
                role: ParamRole::Matrix,
            });
            metas.push(Param {
                name: format!("{name}.lora_B"),
                value: Tensor::sized(vec![out, r], vec![0.0; out * r]),
                role: ParamRole::Matrix,
            });
        }
        let params = metas.iter().map(|p| dev.upload(p.value.data())).collect();
        Ok(Self {
            targets,
            metas,
            params,
            shapes,
            rank: r,
            scale: cfg.scale() as f32,
        })
    }

    /// The adapters' rank r.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The scale s = alpha / r.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// `B·A` of target `t` from adapter values `adapters` (this order), without the scale.
    pub fn product(&self, dev: &mut D, adapters: &[D::Buf], t: usize) -> D::Buf {
        let (out, inp) = self.shapes[t];
        dev.matmul(
            Mat::new(&adapters[2 * t + 1], out, self.rank),
            Mat::new(&adapters[2 * t], self.rank, inp),
        )
    }

    /// The model's weights with every target replaced by `W + s·B·A` (copies; `base` unchanged).
    pub fn merged(&self, dev: &mut D, base: &[D::Buf], adapters: &[D::Buf]) -> Vec<D::Buf> {
        let mut out: Vec<D::Buf> = base.iter().map(|b| dev.duplicate(b)).collect();
        for (t, &i) in self.targets.iter().enumerate() {
            let ba = self.product(dev, adapters, t);
            // W ← W·1 − (−s)·BA
            dev.decay_sub(&mut out[i], &ba, 1.0, -self.scale);
        }
        out
    }

    /// The adapters' gradients `[∂A₀, ∂B₀, …]` from the model's (`grads`, one per parameter).
    pub fn grads(&self, dev: &mut D, grads: &[D::Buf]) -> Vec<D::Buf> {
        let mut out = Vec::with_capacity(self.params.len());
        for (t, &i) in self.targets.iter().enumerate() {
            let (o, inp) = self.shapes[t];
            let r = self.rank;
            let g = &grads[i];
            let (a, b) = (&self.params[2 * t], &self.params[2 * t + 1]);
            // ∂A = s·Bᵀ G (r × in), ∂B = s·G Aᵀ (out × r).
            let da = dev.matmul(Mat::new(b, o, r).t(), Mat::new(g, o, inp));
            let db = dev.matmul(Mat::new(g, o, inp), Mat::new(a, r, inp).t());
            out.push(self.scaled(dev, da, r * inp));
            out.push(self.scaled(dev, db, o * r));
        }
        out
    }

    /// `s·x` for `x` of `len` values.
    fn scaled(&self, dev: &mut D, mut x: D::Buf, len: usize) -> D::Buf {
        if self.scale != 1.0 {
            let zero = dev.zeros(len);
            dev.decay_sub(&mut x, &zero, self.scale, 0.0);
        }
        x
    }
}
