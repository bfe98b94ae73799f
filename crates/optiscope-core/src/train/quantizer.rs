//! Every quantizer of [`crate::quant`] (full precision, STE, LSQ, RQ, SRQ, CPQ with DropBits or
//! learned bits, ProxQuant and its revision) as the trainer's [`WeightTransform`]: the training
//! forward through the device's quantization kernel, the chain rule to the weights and to the
//! quantizer's own parameters (step α, noise σ, bit gates; on the host, trained by a second
//! instance of the run's optimizer config on the CPU), hard quantization for evaluation, and
//! ProxQuant's prox after each step.
//!
//! Every random draw (Gumbel noise, DropBits, gates) is addressed by Philox counters from
//! `(seed, layer, step)`, so a run resumed from a checkpoint repeats the uninterrupted run.

use std::collections::BTreeMap;

use super::transform::{ModelState, WeightTransform};
use super::{state, Checkpoint, LayerStats, LayerView, TrainError};
use crate::config::ConfigError;
use crate::device::quant::categorical::{open_unit, MAX_BITS};
use crate::device::quant::kernel::{KernelMode, ProxScalars, QuantSpec, DPARAMS};
use crate::device::{Counter, Cpu, Device, DeviceError, Mat, QuantOut};
use crate::optim::{Executor, OptimizerConfig, Param, ParamRole};
use crate::quant::dropbits::{self, hard_concrete, hard_concrete_open_prob};
use crate::quant::{self, QuantConfig, QuantMethod};
use crate::rng::{stream, Philox, StreamKind};
use crate::tensor::Tensor;

/// Host-side state of one layer's quantizer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LayerQuant {
    /// Index of its first parameter in `qparams` (None: nothing learnable).
    pub(super) first: Option<usize>,
    /// STE and ProxQuant: the step, refreshed from the weights at each epoch start.
    scale: f32,
    /// Weights in the layer's matrix.
    len: usize,
}

/// What the backward pass needs of one quantized weight matrix.
struct QuantBack<D: Device> {
    /// `∂x̂/∂w` per weight (the straight-through or relaxed gain).
    gain: D::Buf,
    /// `∂x̂/∂(quantizer parameters)` per weight, `DPARAMS` per row.
    dparams: D::Buf,
    /// The hard-concrete gates of learned bits.
    gates: Option<Gates>,
}

/// A model's weight quantizer (one grid per weight matrix).
pub struct Quantizer<D: Device> {
    /// The resolved quantizer config.
    cfg: QuantConfig,
    /// The run's optimizer (ProxQuant's threshold takes its learning rate, the revision its
    /// second moment).
    optimizer: OptimizerConfig,
    /// Seed of the noise.
    seed: u64,
    pub(super) layers: Vec<LayerQuant>,
    pub(super) qparams: Vec<Param>,
    qopt: Option<Box<dyn Executor<Cpu>>>,
    /// What `backward` needs, per layer, from the last `forward`.
    pending: Vec<Option<QuantBack<D>>>,
}

impl<D: Device> Quantizer<D> {
    /// The quantizer of `cfg.quant` for weight matrices initialised to `init` (one per layer).
    pub fn new(
        cfg: &QuantConfig,
        optimizer: &OptimizerConfig,
        seed: u64,
        init: &[&Tensor],
    ) -> Result<Self, TrainError> {
        let q = cfg;
        let mut layers = Vec::with_capacity(init.len());
        let mut qparams = Vec::new();
        for (l, w) in init.iter().enumerate() {
            let w = w.data();
            let max_abs = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let mut lq = LayerQuant {
                first: None,
                scale: 0.0,
                len: w.len(),
            };
            let scalar = |name: String, v: f64| Param {
                name,
                value: Tensor::sized(vec![1], vec![v as f32]),
                role: ParamRole::Vector,
            };
            match q.method {
                QuantMethod::None | QuantMethod::Ste | QuantMethod::Proxquant => {}
                QuantMethod::Lsq => {
                    lq.first = Some(qparams.len());
                    qparams.push(scalar(
                        format!("w{l}.step"),
                        f64::from(quant::lsq_init(w, q.bits)),
                    ));
                }
                QuantMethod::Rq | QuantMethod::Srq | QuantMethod::Cpq => {
                    lq.first = Some(qparams.len());
                    // α from max|w|/2^{b−1} (spec A1), σ as a fraction of α.
                    let alpha = f64::from(max_abs) / f64::from(1u32 << (q.bits - 1));
                    let sigma = alpha * q.sigma_init.unwrap_or(1.0 / 3.0);
                    qparams.push(scalar(format!("w{l}.log_alpha"), alpha.ln()));
                    qparams.push(scalar(format!("w{l}.log_sigma"), sigma.ln()));
                    if let Some(lb) = &q.learn_bits {
                        let n = q.bits as usize - 1;
                        qparams.push(Param {
                            name: format!("w{l}.gate_log_a"),
                            value: Tensor::sized(vec![n], vec![lb.init_log_a as f32; n]),
                            role: ParamRole::Vector,
                        });
                    }
                }
            }
            layers.push(lq);
        }
        let qopt = if qparams.is_empty() {
            None
        } else {
            Some(
                quant_optimizer(optimizer)
                    .build_on(&mut Cpu, &qparams)
                    .map_err(|e| e.within("optimizer"))?,
            )
        };
        let pending = (0..layers.len()).map(|_| None).collect();
        Ok(Self {
            cfg: q.clone(),
            optimizer: optimizer.clone(),
            seed,
            layers,
            qparams,
            qopt,
            pending,
        })
    }

    fn qvalue(&self, i: usize) -> f64 {
        f64::from(self.qparams[i].value.data()[0])
    }

    /// The step α and noise σ of layer `l`'s grid.
    pub(super) fn alpha_sigma(&self, l: usize) -> (f64, f64) {
        let q = &self.layers[l];
        match (self.cfg.method, q.first) {
            (QuantMethod::Lsq, Some(i)) => (self.qvalue(i), 0.0),
            (m, Some(i)) if m.is_categorical() => (self.qvalue(i).exp(), self.qvalue(i + 1).exp()),
            _ => (f64::from(q.scale), 0.0),
        }
    }

    fn gate_log_a(&self, l: usize) -> Option<Vec<f64>> {
        let first = self.layers[l].first?;
        self.cfg.learn_bits.as_ref()?;
        Some(
            self.qparams[first + 2]
                .value
                .data()
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
        )
    }

    /// Level keep weights at evaluation: all levels, or the learned bit-width.
    fn eval_keep(&self, l: usize) -> [f32; MAX_BITS as usize] {
        let mut keep = [1.0; MAX_BITS as usize];
        if let Some(la) = self.gate_log_a(l) {
            let bits = dropbits::learned_bits(&la) as usize;
            for (j, k) in keep.iter_mut().enumerate() {
                if j >= bits {
                    *k = 0.0;
                }
            }
        }
        keep
    }

    /// The kernel spec of layer `l` for evaluation (hard quantization), or None in full precision.
    pub(super) fn eval_spec(&self, l: usize) -> Option<QuantSpec> {
        let q = &self.cfg;
        let (alpha, sigma) = self.alpha_sigma(l);
        let mode = match q.method {
            QuantMethod::None => return None,
            m if m.is_categorical() => KernelMode::MultiClass,
            _ => KernelMode::Nearest,
        };
        Some(QuantSpec {
            mode,
            bits: q.bits,
            alpha: alpha as f32,
            sigma: sigma as f32,
            tau: q.tau as f32,
            extend_edges: q.extend_edges,
            restricted: q.restricted,
            keep: self.eval_keep(l),
            zero_point: 0,
        })
    }

    /// Layer `l`'s training spec at minibatch `step`, its Gumbel noise, and the gates with
    /// `∂K/∂log a` (CPQ learn_bits).
    #[allow(clippy::type_complexity)]
    pub(super) fn train_spec(
        &self,
        dev: &mut D,
        l: usize,
        step: u64,
    ) -> (Option<QuantSpec>, Option<D::Buf>, Option<Gates>) {
        let q = &self.cfg;
        let Some(mut spec) = self.eval_spec(l) else {
            return (None, None, None);
        };
        let rng = Philox::new(self.seed);
        let mut gates = None;
        match q.method {
            QuantMethod::Proxquant => return (None, None, None), // trains the latent weights as is
            QuantMethod::Rq => {
                spec.mode = KernelMode::Relaxed;
                let k = 1usize << q.bits;
                let n = self.layers[l].len;
                let at = Counter {
                    seed: self.seed,
                    stream: stream(StreamKind::Quant, (l as u32) << 16),
                    offset: step * (n * k) as u64,
                };
                return (Some(spec), Some(dev.gumbel(at, n * k)), None);
            }
            QuantMethod::Srq | QuantMethod::Cpq => {
                let s = stream(StreamKind::Quant, ((l as u32) << 16) | 1);
                let levels = q.bits as usize - 1;
                let u: Vec<f64> = (0..levels as u64)
                    .map(|j| open_unit(rng.u32_at(s, step * levels as u64 + j)))
                    .collect();
                if let Some(la) = self.gate_log_a(l) {
                    let g = Gates::sample(&la, &u);
                    spec.keep = g.keep();
                    gates = Some(g);
                } else if let Some(db) = &q.dropbits {
                    spec.keep = db.keep(q.bits, &u).map(|v| v as f32);
                } else {
                    spec.keep = [1.0; MAX_BITS as usize];
                }
            }
            _ => {}
        }
        (Some(spec), None, gates)
    }

    /// Keeps learned steps positive and finite (a step cannot cross zero).
    fn clamp_qparams(&mut self) {
        if self.cfg.method == QuantMethod::Lsq {
            for p in &mut self.qparams {
                let v = &mut p.value.data_mut()[0];
                *v = v.max(1e-6);
            }
        }
    }

    /// Chain rule from `Σ_i ∂L/∂x̂_i · ∂x̂_i/∂(α, σ, K)` to the layer's host parameters.
    fn quant_grads(
        &self,
        l: usize,
        first: usize,
        sums: &[f32],
        gates: Option<&Gates>,
        out: &mut [Tensor],
    ) {
        let q = &self.cfg;
        let (alpha, sigma) = self.alpha_sigma(l);
        match q.method {
            QuantMethod::Lsq => {
                let g = quant::lsq_grad_scale(self.layers[l].len, q.bits);
                out[first].data_mut()[0] = g * sums[0];
            }
            m if m.is_categorical() => {
                out[first].data_mut()[0] = (alpha * f64::from(sums[0])) as f32;
                out[first + 1].data_mut()[0] = (sigma * f64::from(sums[1])) as f32;
                if let (Some(g), Some(lb)) = (gates, &q.learn_bits) {
                    let dk: Vec<f64> = (0..q.bits as usize)
                        .map(|j| f64::from(sums[2 + j]))
                        .collect();
                    let grad = g.grad_log_a(&dk, lb.lambda);
                    for (o, v) in out[first + 2].data_mut().iter_mut().zip(grad) {
                        *o = v as f32;
                    }
                }
            }
            _ => {}
        }
    }

    /// ProxQuant's prox after the optimizer step, `λ_t = reg_rate · epoch`.
    fn prox_step(
        &mut self,
        dev: &mut D,
        model: ModelState<'_, D>,
        epoch: u64,
    ) -> Result<(), TrainError> {
        let q = &self.cfg;
        let lambda = q.reg_rate * epoch as f64;
        if lambda == 0.0 {
            return Ok(());
        }
        let threshold = (self.optimizer.lr() * lambda) as f32;
        let scalars: Vec<ProxScalars> = self
            .layers
            .iter()
            .map(|lq| ProxScalars::signed(q.bits, lq.scale, threshold))
            .collect();
        if !q.revised {
            for (l, s) in scalars.iter().enumerate() {
                dev.prox_grid(&mut model.params[model.weights[l]], None, s);
            }
            return Ok(());
        }
        let (beta2, eps) = adam_precond(&self.optimizer)
            .ok_or_else(|| ConfigError::invalid("quant.revised", true, "needs adam or adamw"))?;
        revised_prox(dev, model, &scalars, beta2, eps)?;
        Ok(())
    }
}

impl<D: Device + 'static> WeightTransform<D> for Quantizer<D> {
    /// STE's `max|w|/Q_P` and ProxQuant's `2·mean|w|/√Q_P` from the current weights.
    fn refresh(&mut self, dev: &mut D, weights: &[&D::Buf]) -> Result<(), DeviceError> {
        let method = self.cfg.method;
        if matches!(method, QuantMethod::Ste | QuantMethod::Proxquant) {
            for (lq, w) in self.layers.iter_mut().zip(weights) {
                let w = dev.download(w)?;
                lq.scale = if method == QuantMethod::Ste {
                    let (_, qp) = quant::signed_range(self.cfg.bits, self.cfg.restricted);
                    w.iter().fold(0.0f32, |m, v| m.max(v.abs())) / qp as f32
                } else {
                    quant::lsq_init(&w, self.cfg.bits)
                }
                .max(f32::MIN_POSITIVE);
            }
        }
        Ok(())
    }

    fn forward(&mut self, dev: &mut D, l: usize, w: &D::Buf, step: u64) -> Option<D::Buf> {
        let (spec, noise, gates) = self.train_spec(dev, l, step);
        let Some(spec) = spec else {
            self.pending[l] = None;
            return None;
        };
        let QuantOut {
            xhat,
            gain,
            dparams,
        } = dev.quantize(w, &spec, noise.as_ref());
        self.pending[l] = Some(QuantBack {
            gain,
            dparams,
            gates,
        });
        Some(xhat)
    }

    /// `∂L/∂w = gain ⊙ ∂L/∂x̂`, and the layer's parameters' gradients `Σ ∂L/∂x̂ · ∂x̂/∂θ`.
    fn backward(
        &mut self,
        dev: &mut D,
        l: usize,
        grad: &D::Buf,
        host_grads: &mut [Tensor],
    ) -> Result<D::Buf, DeviceError> {
        let QuantBack {
            gain,
            dparams,
            gates,
        } = self.pending[l]
            .take()
            .unwrap_or_else(|| unreachable!("backward of layer {l} without its forward"));
        if let Some(first) = self.layers[l].first {
            let sums = dev.weighted_col_sums(grad, Mat::new(&dparams, self.layers[l].len, DPARAMS));
            let sums = dev.download(&sums)?;
            self.quant_grads(l, first, &sums, gates.as_ref(), host_grads);
        }
        Ok(dev.mul(grad, &gain))
    }

    fn eval(&self, dev: &mut D, l: usize, w: &D::Buf) -> Option<D::Buf> {
        self.eval_spec(l)
            .map(|spec| dev.quantize(w, &spec, None).xhat)
    }

    fn params(&self) -> &[Param] {
        &self.qparams
    }

    fn after_step(
        &mut self,
        dev: &mut D,
        host_grads: &[Tensor],
        model: ModelState<'_, D>,
        epoch: u64,
    ) -> Result<(), TrainError> {
        if let Some(qopt) = &mut self.qopt {
            let mut bufs: Vec<Vec<f32>> = self
                .qparams
                .iter_mut()
                .map(|p| std::mem::take(p.value.data_vec_mut()))
                .collect();
            let grads: Vec<&Vec<f32>> = host_grads.iter().map(Tensor::data_vec).collect();
            let res = qopt.step(&mut Cpu, &mut bufs, &grads);
            for (p, b) in self.qparams.iter_mut().zip(bufs) {
                *p.value.data_vec_mut() = b;
            }
            res?;
            self.clamp_qparams();
        }
        if self.cfg.method == QuantMethod::Proxquant {
            self.prox_step(dev, model, epoch)?;
        }
        Ok(())
    }

    fn enter_eval(&mut self) -> Vec<Vec<f32>> {
        let Some(qopt) = self.qopt.as_ref() else {
            return vec![];
        };
        let bufs: Vec<Vec<f32>> = self
            .qparams
            .iter()
            .map(|p| p.value.data().to_vec())
            .collect();
        let qeval = qopt.eval_params(&mut Cpu, &bufs);
        for (p, e) in self.qparams.iter_mut().zip(qeval) {
            *p.value.data_vec_mut() = e;
        }
        bufs
    }

    fn leave_eval(&mut self, train: Vec<Vec<f32>>) {
        if self.qopt.is_some() {
            for (p, b) in self.qparams.iter_mut().zip(train) {
                *p.value.data_vec_mut() = b;
            }
        }
    }

    fn layer_view(&self, l: usize, weights: Vec<f32>) -> LayerView {
        let q = &self.cfg;
        let Some(spec) = self.eval_spec(l) else {
            let sparsity = exact_zeros(&weights);
            return LayerView {
                xhat: weights.clone(),
                weights,
                grid: vec![],
                levels: vec![],
                keep: vec![],
                stats: LayerStats {
                    bits: 32,
                    alpha: 0.0,
                    near_frac: 1.0,
                    mse: 0.0,
                    sparsity,
                },
            };
        };
        let xhat = crate::device::quant::kernel::quantize(&weights, &spec, &[]).xhat;
        let (kmin, kmax) = {
            let (qn, qp) = quant::signed_range(q.bits, q.restricted && !q.method.is_categorical());
            (-qn, qp)
        };
        let grid: Vec<f32> = (kmin..=kmax).map(|k| spec.alpha * k as f32).collect();
        let levels: Vec<u32> = (kmin..=kmax).map(|k| quant::bit_level(k, q.bits)).collect();
        let keep = spec.keep[..q.bits as usize].to_vec();
        let bits = if q.learn_bits.is_some() {
            keep.iter().filter(|&&k| k > 0.0).count() as u32
        } else {
            q.bits
        };
        let stats = LayerStats {
            bits,
            alpha: f64::from(spec.alpha),
            near_frac: quant::near_frac(&weights, &xhat, spec.alpha, 0.1),
            mse: quant::mse(&weights, &xhat),
            sparsity: exact_zeros(&weights),
        };
        LayerView {
            weights,
            xhat,
            grid,
            levels,
            keep,
            stats,
        }
    }

    /// `quant.<name>` tensors, the quantizer optimizer's state under `qoptim.`, and the metadata
    /// `qoptim_scalars` and `quant_scales`.
    fn save(&mut self, c: &mut Checkpoint) -> Result<(), TrainError> {
        for p in &self.qparams {
            c.put(
                format!("quant.{}", p.name),
                p.value.shape().to_vec(),
                p.value.data().to_vec(),
            );
        }
        let qscalars = match &mut self.qopt {
            Some(qopt) => state::save_executor(&mut Cpu, qopt.as_mut(), "qoptim.", c)?,
            None => BTreeMap::new(),
        };
        c.meta
            .insert("qoptim_scalars".into(), super::json(&qscalars));
        let scales: Vec<f32> = self.layers.iter().map(|q| q.scale).collect();
        c.meta.insert("quant_scales".into(), super::json(&scales));
        Ok(())
    }

    fn restore(&mut self, c: &mut Checkpoint) -> Result<(), TrainError> {
        let bad = TrainError::Checkpoint;
        for p in &mut self.qparams {
            let data = c
                .take(&format!("quant.{}", p.name), p.value.len())
                .map_err(bad)?;
            p.value.data_mut().copy_from_slice(&data);
        }
        let qscalars: BTreeMap<String, f64> = super::parse_meta(c, "qoptim_scalars")?;
        let scales: Vec<f32> = super::parse_meta(c, "quant_scales")?;
        if scales.len() != self.layers.len() {
            return Err(bad("quant_scales: wrong number of layers".into()));
        }
        if let Some(qopt) = &mut self.qopt {
            state::load_executor(&mut Cpu, qopt.as_mut(), "qoptim.", c, &qscalars).map_err(bad)?;
        }
        for (q, s) in self.layers.iter_mut().zip(scales) {
            q.scale = s;
        }
        Ok(())
    }

    #[cfg(test)]
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// The share of exactly zero values (0 for an empty tensor).
fn exact_zeros(w: &[f32]) -> f64 {
    if w.is_empty() {
        return 0.0;
    }
    w.iter().filter(|&&v| v == 0.0).count() as f64 / w.len() as f64
}

/// The optimizer of the quantizer's own parameters: the run's config without weight decay (which
/// would pull log-steps and gate logits toward 0 regardless of the loss) and without parameter
/// groups (they name the model's parameters).
pub(super) fn quant_optimizer(cfg: &OptimizerConfig) -> OptimizerConfig {
    fn strip(v: &mut serde_json::Value) {
        if let serde_json::Value::Object(map) = v {
            for (k, val) in map.iter_mut() {
                if k.starts_with("weight_decay") {
                    *val = serde_json::json!(0.0);
                } else {
                    strip(val);
                }
            }
            map.remove("param_groups");
        }
    }
    let mut v = serde_json::to_value(cfg).unwrap_or_default();
    strip(&mut v);
    serde_json::from_value(v).unwrap_or_else(|_| cfg.clone())
}

/// Revised ProxQuant divides by Adam's `√v̂ + ε` with one learning rate: Adam or AdamW in
/// PyTorch's form, without AMSGrad or per-group learning rates.
pub(super) fn check_revised_proxquant(cfg: &OptimizerConfig) -> Result<(), ConfigError> {
    let why = match cfg {
        OptimizerConfig::Adam(c) => adam_like_reason(c.amsgrad, c.eps_mode, &c.param_groups),
        OptimizerConfig::Adamw(c) => adam_like_reason(c.amsgrad, c.eps_mode, &c.param_groups),
        other => Some(format!("train with adam or adamw, not {}", other.name())),
    };
    match why {
        None => Ok(()),
        Some(why) => Err(ConfigError::invalid(
            "quant.revised",
            true,
            format!(
                "revised proxquant takes the prox in Adam's metric: {why} (or set the \
                 quantizer's revised = false)"
            ),
        )),
    }
}

fn adam_like_reason(
    amsgrad: bool,
    eps_mode: crate::optim::EpsMode,
    groups: &[crate::optim::ParamGroup],
) -> Option<String> {
    if amsgrad {
        Some("amsgrad is not supported".into())
    } else if eps_mode != crate::optim::EpsMode::AfterBiasCorrection {
        Some("eps_mode must be after_bias_correction".into())
    } else if groups.iter().any(|g| g.lr.is_some()) {
        Some("per-group learning rates are not supported".into())
    } else {
        None
    }
}

/// Adam's (β2, ε) when the optimizer is Adam or AdamW.
fn adam_precond(cfg: &OptimizerConfig) -> Option<(f64, f64)> {
    match cfg {
        OptimizerConfig::Adam(c) => Some((c.betas[1], c.eps)),
        OptimizerConfig::Adamw(c) => Some((c.betas[1], c.eps)),
        _ => None,
    }
}

/// Hard-concrete gates of one layer's bit levels 2..=b, sampled for one step.
#[derive(Debug, Clone)]
pub(super) struct Gates {
    /// `z_j` (index j − 2).
    pub(super) z: Vec<f64>,
    /// `∂z_j/∂log a_j`.
    pub(super) dz: Vec<f64>,
    /// `log a_j`.
    log_a: Vec<f64>,
}

impl Gates {
    pub(super) fn sample(log_a: &[f64], u: &[f64]) -> Self {
        let (z, dz) = log_a
            .iter()
            .zip(u)
            .map(|(&la, &u)| hard_concrete(la, u))
            .unzip();
        Self {
            z,
            dz,
            log_a: log_a.to_vec(),
        }
    }

    /// Nested keep weights `K_j = Π_{i=2}^{j} z_i`, `K_1 = 1`.
    fn keep(&self) -> [f32; MAX_BITS as usize] {
        let mut keep = [1.0f32; MAX_BITS as usize];
        let mut k = 1.0;
        for (j, z) in self.z.iter().enumerate() {
            k *= z;
            keep[j + 1] = k as f32;
        }
        keep
    }

    /// `∂/∂log a_i` of the loss (through `K_j`, given `∂L/∂K_j` for levels 1..=b) plus
    /// `λ·∂P(z_i ≠ 0)/∂log a_i`.
    pub(super) fn grad_log_a(&self, dk: &[f64], lambda: f64) -> Vec<f64> {
        let m = self.z.len();
        (0..m)
            .map(|i| {
                // ∂K_j/∂z_i = Π_{2 ≤ m ≤ j, m ≠ i} z_m for j ≥ i.
                let mut dz_i = 0.0;
                for j in i..m {
                    let prod: f64 = (0..=j).filter(|&t| t != i).map(|t| self.z[t]).product();
                    dz_i += dk[j + 1] * prod;
                }
                dz_i * self.dz[i] + lambda * hard_concrete_open_prob(self.log_a[i]).1
            })
            .collect()
    }
}

/// Revised ProxQuant's prox on each weight matrix (layer `l`: scalars `scalars[l]`, parameter
/// `weights[l]`) in the metric of the optimizer's own second moment: the threshold
/// `ηλ / (√v̂ + ε)` with `v̂ = v / (1 − β2ᵗ)` per coordinate (ProxGen).
pub(super) fn revised_prox<D: Device>(
    dev: &mut D,
    model: ModelState<'_, D>,
    scalars: &[ProxScalars],
    beta2: f64,
    eps: f64,
) -> Result<(), ConfigError> {
    for (&i, s) in model.weights.iter().zip(scalars) {
        let moment = model
            .opt
            .second_moment(i)
            .ok_or_else(|| ConfigError::invalid("quant.revised", true, "needs adam or adamw"))?;
        let s = ProxScalars {
            bias_correction2: (1.0 - beta2.powf(moment.step as f64)) as f32,
            eps: eps as f32,
            ..*s
        };
        dev.prox_grid(&mut model.params[i], Some(moment.v), &s);
    }
    Ok(())
}
