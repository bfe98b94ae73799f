//! The language-model trainer: nanoGPT's character-level GPT ([`crate::models::Gpt`]) trained
//! step by step on random windows of a text ([`crate::corpus`]), with any optimizer of the
//! project, gradient clipping, a learning-rate schedule, evaluation on fixed held-out windows at
//! the optimizer's evaluation point, the singular values of chosen weight matrices, checkpoints
//! that resume bit for bit, and nanoGPT-compatible weight files ([`super::gpt_file`]).
//!
//! Everything stays on the device between steps: the step's loss statistics are kept in device
//! buffers and read back together every `log_interval` steps ([`LmTrainer::take_losses`]), the
//! gradient norm for clipping never leaves the device. A non-finite loss is noticed at that
//! read-back ([`divergence`]): the run stops there with [`TrainError::LmDiverged`] (the steps since
//! the last read-back have been taken).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::gpt_file::NamedTensor;
use super::lora::{Lora, LoraConfig};
use super::{json, parse_meta, state, Checkpoint, TrainError};
use crate::config::ConfigError;
use crate::corpus::{windows, Corpus, Vocab, Windows, TINYSHAKESPEARE};
use crate::device::{Device, DeviceError, Mat};
use crate::linalg::singular_values;
use crate::models::{Gpt, GptConfig, Loss, LossOut, Model, SoftmaxCrossEntropy};
use crate::optim::{
    spsa_estimate, CounterPerturbation, Executor, MezoBcdConfig, OptimizerConfig, Param, ParamRole,
    ZoPlan,
};
use crate::rng::{stream, Philox, StreamKind};

crate::config::choice_enum! {
    /// The learning-rate schedule's shape after its warm-up.
    pub enum ScheduleKind default Constant {
        /// The configured rate throughout (after the warm-up).
        "constant" => Constant: "the configured learning rate throughout (after any warm-up)",
        /// Cosine decay to `min_lr_ratio · lr` at the last step (nanoGPT's `get_lr`).
        "cosine" => Cosine: "cosine decay to min_lr_ratio·lr at the last step (nanoGPT)",
        /// Warm-up, stable, decay: constant, then linear decay to `min_lr_ratio · lr` over the
        /// last `decay_fraction` of the steps.
        "wsd" => Wsd: "warm-up, stable, then linear decay over the last decay_fraction of the steps",
    }
}

/// A learning-rate schedule: a multiplier of every configured rate, per step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LrSchedule {
    /// The shape.
    pub kind: ScheduleKind,
    /// Linear warm-up steps: step `i < warmup` runs at `(i + 1)/(warmup + 1)` (nanoGPT).
    pub warmup_steps: u64,
    /// The final multiplier of `cosine` and `wsd` (nanoGPT: `min_lr = lr / 10`).
    pub min_lr_ratio: f64,
    /// `wsd`: the share of the steps, at the end, over which the rate decays.
    pub decay_fraction: f64,
}

impl Default for LrSchedule {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Constant,
            warmup_steps: 0,
            min_lr_ratio: 0.1,
            decay_fraction: 0.2,
        }
    }
}

impl LrSchedule {
    /// The multiplier of step `it` (0-based) of a run of `total` steps.
    pub fn factor(&self, it: u64, total: u64) -> f64 {
        let w = self.warmup_steps;
        if it < w {
            return (it + 1) as f64 / (w + 1) as f64;
        }
        let min = self.min_lr_ratio;
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Cosine => {
                if it >= total || total <= w {
                    return min;
                }
                let ratio = (it - w) as f64 / (total - w) as f64;
                min + 0.5 * (1.0 + (std::f64::consts::PI * ratio).cos()) * (1.0 - min)
            }
            ScheduleKind::Wsd => {
                let decay = ((total as f64) * self.decay_fraction).round() as u64;
                let start = total.saturating_sub(decay).max(w);
                if it < start || total <= start {
                    1.0
                } else {
                    let ratio = (it - start + 1) as f64 / (total - start) as f64;
                    1.0 - ratio.min(1.0) * (1.0 - min)
                }
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return Err(ConfigError::invalid(
                "schedule.min_lr_ratio",
                self.min_lr_ratio,
                "must be in [0, 1]",
            ));
        }
        if !(0.0..=1.0).contains(&self.decay_fraction) {
            return Err(ConfigError::invalid(
                "schedule.decay_fraction",
                self.decay_fraction,
                "must be in [0, 1]",
            ));
        }
        Ok(())
    }
}

/// A language-model training run (what `config.json` and checkpoints hold).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LmConfig {
    /// The text: `tinyshakespeare` (shipped) or the path of a UTF-8 file (read by the caller).
    pub data: String,
    /// The held-out last part of the text (0: no validation).
    pub val_fraction: f64,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Width C.
    pub n_embd: usize,
    /// Context length.
    pub block_size: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Optimizer steps.
    pub steps: u64,
    /// Steps between evaluations (also at step 0 and at the end).
    pub eval_interval: u64,
    /// Batches of the fixed evaluation set.
    pub eval_iters: u64,
    /// The largest global gradient norm (0: no clipping).
    pub grad_clip: f64,
    /// The optimizer (matrix methods orthogonalize the hidden matrices; embeddings, gains and
    /// biases go to their auxiliary AdamW).
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    pub schedule: LrSchedule,
    /// Seed of the initialisation and of the windows.
    pub seed: u64,
    /// Steps between read-backs of the training loss (the only host synchronisation of a step).
    pub log_interval: u64,
    /// Steps between recordings of singular values (0: never).
    pub spectra_every: u64,
    /// The matrices whose singular values are recorded (parameter names; empty: every block's
    /// `attn.c_attn`, `attn.c_proj`, `mlp.c_fc` and `mlp.c_proj` weights).
    pub spectra: Vec<String>,
    /// Whether gains and biases are decayed too: false (nanoGPT's two groups) exempts every 1-D
    /// parameter from the optimizer's weight decay, true leaves the decay as the optimizer says.
    pub decay_vectors: bool,
    /// Where the initial weights came from (`--init`; recorded, read by the caller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// LoRA fine-tuning ([`super::lora`]): only adapters on every block's attention and MLP
    /// matrices train, the recorded spectra are those of the adapter products.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraConfig>,
}

impl Default for LmConfig {
    /// The `baby` preset's sizes and optimizer with a constant learning rate and no warm-up
    /// (what `optiscope train --model gpt` runs without `--preset`: the Schedule-Free comparison
    /// needs no schedule).
    fn default() -> Self {
        LmConfig {
            schedule: LrSchedule::default(),
            ..LmPreset::Baby.config()
        }
    }
}

crate::config::choice_enum! {
    /// Named configurations.
    pub enum LmPreset default Baby {
        /// nanoGPT's CPU run of shakespeare_char.
        "baby" => Baby: "nanoGPT's CPU shakespeare_char run: 4 layers, 4 heads, C=128, context 64, batch 12, 2000 steps, AdamW 1e-3 with cosine decay",
        /// nanoGPT's shakespeare_char config.
        "shakespeare-char" => ShakespeareChar: "nanoGPT's config/train_shakespeare_char.py: 6 layers, 6 heads, C=384, context 256, batch 64, 5000 steps",
    }
}

impl LmPreset {
    /// The preset's config: nanoGPT's `train_shakespeare_char.py` (AdamW lr 1e-3, β₂ 0.99,
    /// weight decay 0.1 on matrices and embeddings, 100 warm-up steps, cosine to lr/10, clip 1,
    /// evaluation every 250 steps) at the preset's sizes; `baby` with the README's CPU overrides
    /// (`--block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
    /// --lr_decay_iters=2000 --eval_iters=20`).
    pub fn config(self) -> LmConfig {
        let optimizer = OptimizerConfig::Adamw(crate::optim::AdamWConfig {
            lr: 1e-3,
            betas: [0.9, 0.99],
            weight_decay: 0.1,
            ..Default::default()
        });
        let base = LmConfig {
            data: TINYSHAKESPEARE.into(),
            val_fraction: 0.1,
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
            block_size: 64,
            batch_size: 12,
            steps: 2000,
            eval_interval: 250,
            eval_iters: 20,
            grad_clip: 1.0,
            optimizer,
            schedule: LrSchedule {
                kind: ScheduleKind::Cosine,
                warmup_steps: 100,
                ..LrSchedule::default()
            },
            seed: 1337,
            log_interval: 10,
            spectra_every: 250,
            spectra: vec![],
            decay_vectors: false,
            lora: None,
            init: None,
        };
        match self {
            Self::Baby => base,
            Self::ShakespeareChar => LmConfig {
                n_layer: 6,
                n_head: 6,
                n_embd: 384,
                block_size: 256,
                batch_size: 64,
                steps: 5000,
                eval_iters: 200,
                ..base
            },
        }
    }
}

/// The largest batch (sequences per step).
pub const MAX_LM_BATCH: usize = 4096;
/// The most evaluation batches.
pub const MAX_EVAL_ITERS: u64 = 100_000;

impl LmConfig {
    /// The model's sizes for a vocabulary of `vocab_size`.
    pub fn gpt(&self, vocab_size: usize) -> GptConfig {
        GptConfig {
            vocab_size,
            block_size: self.block_size,
            n_layer: self.n_layer,
            n_head: self.n_head,
            n_embd: self.n_embd,
        }
    }

    /// Every field checked before anything is allocated.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.gpt(1).validate()?;
        if self.steps == 0 {
            return Err(ConfigError::invalid("steps", 0, "must be at least 1"));
        }
        if !(1..=MAX_LM_BATCH).contains(&self.batch_size) {
            return Err(ConfigError::invalid(
                "batch_size",
                self.batch_size,
                format!("must be in 1..={MAX_LM_BATCH}"),
            ));
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(ConfigError::invalid(
                "val_fraction",
                self.val_fraction,
                "must be in [0, 1) (0 turns validation off)",
            ));
        }
        if self.eval_interval == 0 {
            return Err(ConfigError::invalid(
                "eval_interval",
                0,
                "must be at least 1",
            ));
        }
        if !(1..=MAX_EVAL_ITERS).contains(&self.eval_iters) {
            return Err(ConfigError::invalid(
                "eval_iters",
                self.eval_iters,
                format!("must be in 1..={MAX_EVAL_ITERS}"),
            ));
        }
        if !(self.grad_clip >= 0.0 && self.grad_clip.is_finite()) {
            return Err(ConfigError::invalid(
                "grad_clip",
                self.grad_clip,
                "must be a finite number ≥ 0 (0 turns clipping off)",
            ));
        }
        if self.log_interval == 0 {
            return Err(ConfigError::invalid(
                "log_interval",
                0,
                "must be at least 1",
            ));
        }
        self.schedule.validate()?;
        if let Some(l) = &self.lora {
            // The adapted matrices' smallest side is C (c_attn 3C×C … c_proj C×4C).
            l.validate(self.n_embd)?;
            if self.optimizer.is_zeroth_order() {
                return Err(ConfigError::invalid(
                    "lora",
                    format!("with {}", self.optimizer.name()),
                    "needs a first-order optimizer (a zeroth-order one trains the model's own weights)",
                ));
            }
        }
        self.optimizer.validate().map_err(|e| e.within("optimizer"))
    }
}

/// The hidden matrices whose spectra are recorded by default.
fn default_spectra(cfg: &GptConfig) -> Vec<String> {
    (0..cfg.n_layer)
        .flat_map(|i| {
            ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]
                .map(|m| format!("transformer.h.{i}.{m}.weight"))
        })
        .collect()
}

/// nanoGPT's two parameter groups: the optimizer's config with a first group that sets the
/// weight decay of every 1-D parameter (gains, biases) to 0, when the config has weight decay and
/// parameter groups (later groups, the user's, still win).
fn exempt_vectors(opt: &OptimizerConfig, metas: &[Param]) -> Result<OptimizerConfig, ConfigError> {
    let mut v = serde_json::to_value(opt)
        .map_err(|e| ConfigError::invalid("optimizer", e, "must serialize"))?;
    let decays = v
        .get("weight_decay")
        .and_then(|w| w.as_f64())
        .is_some_and(|w| w > 0.0);
    let Some(obj) = v.as_object_mut().filter(|_| decays) else {
        return Ok(opt.clone());
    };
    let names: Vec<&str> = metas
        .iter()
        .filter(|p| p.value.ndim() < 2)
        .map(|p| p.name.as_str())
        .collect();
    let group = serde_json::json!({"params": names, "weight_decay": 0.0});
    match obj.get_mut("param_groups").and_then(|g| g.as_array_mut()) {
        Some(groups) => groups.insert(0, group),
        None => {
            obj.insert("param_groups".into(), serde_json::json!([group]));
        }
    }
    // A method without parameter groups keeps its config as it is.
    Ok(serde_json::from_value(v).unwrap_or_else(|_| opt.clone()))
}

/// MeZO-BCD's blocks for the GPT: the transformer layers (each block's twelve parameters), and a
/// first block of the embeddings with the final LayerNorm (the tied head's side of the model).
fn transformer_blocks(cfg: &GptConfig) -> Vec<Vec<String>> {
    let specs = cfg.param_specs();
    let mut outer: Vec<String> = vec![specs[0].0.clone(), specs[1].0.clone()];
    outer.extend(specs[specs.len() - 2..].iter().map(|s| s.0.clone()));
    let mut out = vec![outer];
    for l in 0..cfg.n_layer {
        out.push(
            specs[2 + 12 * l..2 + 12 * (l + 1)]
                .iter()
                .map(|s| s.0.clone())
                .collect(),
        );
    }
    out
}

/// One step's training loss, read back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLoss {
    /// The step (1-based: the n-th optimizer step).
    pub step: u64,
    /// The mean cross-entropy of the batch that step used.
    pub train_loss: f64,
    /// The learning rate of the step (the optimizer's `lr` times the schedule's factor).
    pub lr: f64,
}

/// A steppable language-model training run on device `D`.
pub struct LmTrainer<D: Device> {
    cfg: LmConfig,
    gpt: Gpt,
    corpus: Corpus,
    dev: D,
    metas: Vec<Param>,
    params: Vec<D::Buf>,
    opt: Box<dyn Executor<D>>,
    loss: SoftmaxCrossEntropy,
    step: u64,
    /// Steps taken whose loss statistics have not been read back: (step, stats, lr).
    pending: Vec<(u64, D::Buf, f64)>,
    spectra: Vec<usize>,
    /// MeZO's plan when the optimizer is zeroth-order (two forward passes per step, no backward).
    zo: Option<ZoPlan>,
    /// The adapters of a LoRA run: then `params` stay frozen and the optimizer steps these.
    lora: Option<Lora<D>>,
}

impl<D: Device + 'static> LmTrainer<D> {
    /// A fresh run of `cfg` on `corpus`, from nanoGPT's initialisation (seeded) or from `init`
    /// (one value vector per parameter, in [`GptConfig::param_specs`] order).
    pub fn new(
        cfg: LmConfig,
        corpus: Corpus,
        mut dev: D,
        init: Option<Vec<Vec<f32>>>,
    ) -> Result<Self, TrainError> {
        cfg.validate()?;
        let gcfg = cfg.gpt(corpus.vocab.len());
        gcfg.validate()?;
        let need = cfg.block_size + 1;
        if corpus.train.len() < need {
            return Err(TrainError::Data(format!(
                "the training text has {} characters; windows of block_size + 1 = {need} need at least that many",
                corpus.train.len()
            )));
        }
        if cfg.val_fraction > 0.0 && corpus.val.len() < need {
            return Err(TrainError::Data(format!(
                "the validation part ({} characters, val_fraction {}) is shorter than block_size + 1 = {need}; \
                 raise val_fraction or pass 0 to turn validation off",
                corpus.val.len(),
                cfg.val_fraction
            )));
        }
        let gpt = Gpt::new(gcfg);
        let mut metas = gpt.init(cfg.seed);
        if let Some(values) = init {
            if values.len() != metas.len() {
                return Err(TrainError::Checkpoint(format!(
                    "the initial weights have {} tensors, the model {}",
                    values.len(),
                    metas.len()
                )));
            }
            for (m, v) in metas.iter_mut().zip(values) {
                if v.len() != m.value.len() {
                    return Err(TrainError::Checkpoint(format!(
                        "initial `{}` has {} values, the model needs {}",
                        m.name,
                        v.len(),
                        m.value.len()
                    )));
                }
                m.value = crate::tensor::Tensor::sized(m.value.shape().to_vec(), v);
            }
        }
        let params: Vec<D::Buf> = metas.iter().map(|p| dev.upload(p.value.data())).collect();
        let lora = match &cfg.lora {
            Some(l) => {
                let targets = <Gpt as Model<D>>::weight_matrices(&gpt);
                Some(Lora::new(&mut dev, l, &metas, targets, cfg.seed)?)
            }
            None => None,
        };
        let optimizer = if cfg.decay_vectors || lora.is_some() {
            cfg.optimizer.clone()
        } else {
            exempt_vectors(&cfg.optimizer, &metas)?
        };
        let optimizer = match optimizer {
            OptimizerConfig::MezoBcd(c) if c.blocks.is_empty() => {
                OptimizerConfig::MezoBcd(MezoBcdConfig {
                    blocks: transformer_blocks(&gcfg),
                    ..c
                })
            }
            other => other,
        };
        let trained = lora.as_ref().map_or(&metas, |l| &l.metas);
        let opt = optimizer
            .build_on(&mut dev, trained)
            .map_err(|e| e.within("optimizer"))?;
        let names = if cfg.spectra.is_empty() {
            default_spectra(&gcfg)
        } else {
            cfg.spectra.clone()
        };
        let spectra = names
            .iter()
            .map(|n| {
                metas
                    .iter()
                    .position(|p| &p.name == n && p.value.ndim() == 2)
                    .ok_or_else(|| {
                        ConfigError::invalid("spectra", n, "must name a weight matrix of the model")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let zo = opt.zeroth_order();
        Ok(Self {
            lora,
            zo,
            loss: SoftmaxCrossEntropy {
                classes: gcfg.vocab_size,
            },
            cfg,
            gpt,
            corpus,
            dev,
            metas,
            params,
            opt,
            step: 0,
            pending: vec![],
            spectra,
        })
    }

    /// The config.
    pub fn config(&self) -> &LmConfig {
        &self.cfg
    }

    /// The model's sizes.
    pub fn gpt(&self) -> GptConfig {
        self.gpt.cfg
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocab {
        &self.corpus.vocab
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Whether every configured step is done.
    pub fn finished(&self) -> bool {
        self.step >= self.cfg.steps
    }

    /// Allows more steps (`--resume DIR --steps N` with a larger N; the schedule stretches).
    pub fn set_steps(&mut self, steps: u64) {
        self.cfg.steps = steps;
    }

    /// The device.
    pub fn device(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Tokens one step trains on.
    pub fn tokens_per_step(&self) -> usize {
        self.cfg.batch_size * self.cfg.block_size
    }

    /// Whether the loss statistics are due for a read-back after the last step.
    pub fn losses_due(&self) -> bool {
        self.pending.len() as u64 >= self.cfg.log_interval
            || (self.finished() && !self.pending.is_empty())
    }

    /// One optimizer step on the step's batch; its loss is read back later
    /// ([`Self::take_losses`]).
    pub fn step(&mut self) -> Result<(), TrainError> {
        let (b, t) = (self.cfg.batch_size, self.cfg.block_size);
        let (x, y) = windows(
            &self.corpus.train,
            t,
            b,
            self.cfg.seed,
            Windows::Train,
            self.step,
        );
        let n = b * t;
        let (x, y) = (self.dev.upload(&x), self.dev.upload(&y));
        let factor = self.cfg.schedule.factor(self.step, self.cfg.steps);
        if let Some(plan) = &self.zo {
            let stats = self.zeroth_order_step(plan.clone(), x, y, factor)?;
            self.step += 1;
            self.pending
                .push((self.step, stats, self.cfg.optimizer.lr() * factor));
            return Ok(());
        }
        let merged = self
            .lora
            .as_ref()
            .map(|l| l.merged(&mut self.dev, &self.params, &l.params));
        let refs: Vec<&D::Buf> = merged.as_ref().unwrap_or(&self.params).iter().collect();
        let acts = self.gpt.forward(&mut self.dev, &refs, x, n);
        let logits = acts
            .last()
            .unwrap_or_else(|| unreachable!("a forward pass has logits"));
        let LossOut { d_output, stats } = self.loss.loss(&mut self.dev, logits, &y, n);
        let mut grads = self.gpt.backward(&mut self.dev, &refs, &acts, d_output, n);
        drop(acts);
        drop(refs);
        drop(merged);
        if let Some(l) = &self.lora {
            grads = l.grads(&mut self.dev, &grads);
        }
        if self.cfg.grad_clip > 0.0 {
            let sums = {
                let g: Vec<&D::Buf> = grads.iter().collect();
                self.dev.sums_of_squares(&g)
            };
            self.dev
                .clip_grad_norm(&mut grads, &sums, self.cfg.grad_clip as f32);
        }
        self.opt.set_lr_scale(factor);
        let g: Vec<&D::Buf> = grads.iter().collect();
        let trained = match &mut self.lora {
            Some(l) => &mut l.params,
            None => &mut self.params,
        };
        self.opt.step(&mut self.dev, trained, &g)?;
        self.step += 1;
        self.pending
            .push((self.step, stats, self.cfg.optimizer.lr() * factor));
        Ok(())
    }

    /// MeZO's step (spec A4's SPSA, through [`spsa_estimate`]): the step's block perturbed by
    /// `±εz` with `z` regenerated from the step's key, two forward passes, the projected gradient
    /// from their losses (each read back: the update needs it on the host), the executor's
    /// update. Returns the step's statistics: the mean of the two losses. Gradient clipping does
    /// not apply.
    fn zeroth_order_step(
        &mut self,
        plan: ZoPlan,
        x: D::Buf,
        y: D::Buf,
        factor: f64,
    ) -> Result<D::Buf, TrainError> {
        let n = self.tokens_per_step();
        let mut zo = plan.at(self.cfg.seed, self.step);
        let mut z = CounterPerturbation { key: zo.key };
        let (gpt, mut loss) = (self.gpt, self.loss);
        let mut sum = 0.0f64;
        let (_, _, g) = spsa_estimate(
            &mut self.dev,
            &mut self.params,
            &zo.active,
            plan.eps,
            &mut z,
            |dev, params| -> Result<f64, TrainError> {
                let refs: Vec<&D::Buf> = params.iter().collect();
                let input = dev.duplicate(&x);
                let acts = gpt.forward(dev, &refs, input, n);
                let logits = acts.last().unwrap_or_else(|| unreachable!("logits"));
                let LossOut { stats, .. } = loss.loss(dev, logits, &y, n);
                let s = dev.download(&stats)?;
                sum += f64::from(s[0]);
                Ok(f64::from(s[0]) / n as f64)
            },
        )?;
        if !g.is_finite() {
            return Err(TrainError::LmDiverged {
                what: "projected gradient".into(),
                value: g,
                step: self.step + 1,
            });
        }
        zo.projected_grad = g;
        self.opt.set_lr_scale(factor);
        self.opt
            .step_projected(&mut self.dev, &mut self.params, &zo)?;
        Ok(self.dev.upload(&[(sum / 2.0) as f32, 0.0]))
    }

    /// The training losses of the steps since the last read-back, in order (one synchronisation
    /// with the device), non-finite ones included: [`divergence`] says where a run must stop.
    pub fn take_losses(&mut self) -> Result<Vec<StepLoss>, TrainError> {
        let pending = self.take_pending();
        let mut values = Vec::with_capacity(pending.len());
        for b in pending.buffers() {
            values.push(self.dev.download(b)?);
        }
        Ok(pending.resolve(&values))
    }

    /// The steps since the last read-back with the buffers of their loss statistics, for a caller
    /// that reads them itself ([`Self::take_losses`] downloads them; the explorer reads them
    /// asynchronously, as the web requires).
    pub fn take_pending(&mut self) -> PendingLosses<D::Buf> {
        PendingLosses {
            tokens: self.tokens_per_step() as f64,
            steps: std::mem::take(&mut self.pending),
        }
    }

    /// Steps taken whose losses have not been taken yet.
    pub fn pending_steps(&self) -> usize {
        self.pending.len()
    }

    /// The parameters at the optimizer's evaluation point (Schedule-Free's and AMUSE's average),
    /// in [`GptConfig::param_specs`] order: copies, so the training state is untouched.
    pub fn eval_params(&mut self) -> Vec<D::Buf> {
        match &self.lora {
            // The adapters at the evaluation point, merged into the frozen weights.
            Some(l) => {
                let adapters = self.opt.eval_params(&mut self.dev, &l.params);
                l.merged(&mut self.dev, &self.params, &adapters)
            }
            None => self.opt.eval_params(&mut self.dev, &self.params),
        }
    }

    /// The text split the run reads.
    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    /// The mean validation loss over the fixed evaluation batches at the evaluation point (None
    /// without a validation part).
    pub fn evaluate(&mut self) -> Result<Option<f64>, TrainError> {
        let eval = self.eval_params();
        validation_loss(
            &mut self.dev,
            self.gpt.cfg,
            &eval,
            &self.corpus.val,
            &self.cfg,
        )
    }

    /// The singular values (largest first) of the chosen weight matrices at the evaluation
    /// point; in a LoRA run those of their adapter products `s·B·A` (the largest `rank`, the
    /// others are zero), named `{matrix}.lora_BA` (`transformer.h.0.attn.c_attn.lora_BA`).
    pub fn spectra(&mut self) -> Result<BTreeMap<String, Vec<f64>>, TrainError> {
        if let Some(l) = &self.lora {
            let adapters = self.opt.eval_params(&mut self.dev, &l.params);
            let mut out = BTreeMap::new();
            for &i in &self.spectra {
                let Some(t) = l.targets.iter().position(|&x| x == i) else {
                    continue;
                };
                let ba = l.product(&mut self.dev, &adapters, t);
                let w = self.dev.download(&ba)?;
                let shape = self.metas[i].value.shape();
                let mut sv = singular_values(&w, shape[0], shape[1]).map_err(DeviceError::from)?;
                // σ(s·B·A) = s·σ(B·A) for s > 0; beyond the rank they are zero.
                sv.truncate(l.rank());
                sv.iter_mut().for_each(|v| *v *= f64::from(l.scale()));
                let name = self.metas[i].name.trim_end_matches(".weight");
                out.insert(format!("{name}.lora_BA"), sv);
            }
            return Ok(out);
        }
        let eval = self.eval_params();
        let mut weights = Vec::with_capacity(eval.len());
        for (i, w) in eval.iter().enumerate() {
            // Only the recorded matrices are read back.
            weights.push(if self.spectra.contains(&i) {
                self.dev.download(w)?
            } else {
                vec![]
            });
        }
        self.spectra_of(&weights)
    }

    /// The singular values of the chosen weight matrices (`LmConfig::spectra`) from weights read
    /// back by the caller (all parameters in order; only the chosen ones are looked at), as
    /// [`Self::spectra`] gives them outside a LoRA run.
    pub fn spectra_of(
        &self,
        weights: &[Vec<f32>],
    ) -> Result<BTreeMap<String, Vec<f64>>, TrainError> {
        let mut out = BTreeMap::new();
        for &i in &self.spectra {
            let shape = self.metas[i].value.shape();
            let sv = singular_values(&weights[i], shape[0], shape[1]).map_err(DeviceError::from)?;
            out.insert(self.metas[i].name.clone(), sv);
        }
        Ok(out)
    }

    /// The weights at the evaluation point, by name, shape and value (what `model.safetensors`
    /// holds).
    pub fn weights(&mut self) -> Result<Vec<NamedTensor>, TrainError> {
        let eval = self.eval_params();
        let mut out = Vec::with_capacity(eval.len());
        for (m, p) in self.metas.iter().zip(&eval) {
            out.push((
                m.name.clone(),
                m.value.shape().to_vec(),
                self.dev.download(p)?,
            ));
        }
        Ok(out)
    }

    /// Everything needed to continue the run bit for bit (pending losses must have been taken).
    pub fn save(&mut self) -> Result<Checkpoint, TrainError> {
        assert!(
            self.pending.is_empty(),
            "take_losses before save: their steps would be lost"
        );
        let mut c = Checkpoint::default();
        for (m, buf) in self.metas.iter().zip(&self.params) {
            let data = self.dev.download(buf)?;
            c.put(format!("model.{}", m.name), m.value.shape().to_vec(), data);
        }
        if let Some(l) = &self.lora {
            for (m, buf) in l.metas.iter().zip(&l.params) {
                let data = self.dev.download(buf)?;
                c.put(format!("lora.{}", m.name), m.value.shape().to_vec(), data);
            }
        }
        let scalars = state::save_executor(&mut self.dev, self.opt.as_mut(), "optim.", &mut c)?;
        c.meta.insert("config".into(), json(&self.cfg));
        c.meta.insert("kind".into(), "gpt".into());
        c.meta.insert("step".into(), self.step.to_string());
        c.meta.insert("vocab".into(), json(&self.corpus.vocab));
        c.meta.insert("optim_scalars".into(), json(&scalars));
        Ok(c)
    }

    /// Restores a checkpoint written by [`Self::save`] for the same config and text.
    pub fn restore(&mut self, mut c: Checkpoint) -> Result<(), TrainError> {
        let bad = TrainError::Checkpoint;
        let vocab: Vocab = parse_meta(&c, "vocab")?;
        if vocab != self.corpus.vocab {
            return Err(bad("its vocabulary differs from this text's".into()));
        }
        for i in 0..self.metas.len() {
            let name = format!("model.{}", self.metas[i].name);
            let data = c.take(&name, self.metas[i].value.len()).map_err(bad)?;
            self.params[i] = self.dev.upload(&data);
        }
        if let Some(l) = &mut self.lora {
            for i in 0..l.metas.len() {
                let name = format!("lora.{}", l.metas[i].name);
                let data = c.take(&name, l.metas[i].value.len()).map_err(bad)?;
                l.params[i] = self.dev.upload(&data);
            }
        }
        let step: u64 = parse_meta(&c, "step")?;
        let scalars: BTreeMap<String, f64> = parse_meta(&c, "optim_scalars")?;
        state::load_executor(&mut self.dev, self.opt.as_mut(), "optim.", &mut c, &scalars)
            .map_err(bad)?;
        if let Some(extra) = c.tensors.keys().next() {
            return Err(bad(format!(
                "unexpected tensor `{extra}` (a different model or optimizer?)"
            )));
        }
        self.step = step;
        self.pending.clear();
        Ok(())
    }
}

/// The first non-finite training loss of `losses` as the error that stops the run (the steps
/// after it were taken too: a step's loss is read back only every `log_interval` steps).
pub fn divergence(losses: &[StepLoss]) -> Option<TrainError> {
    losses
        .iter()
        .find(|l| !l.train_loss.is_finite())
        .map(|l| TrainError::LmDiverged {
            what: "training loss".into(),
            value: l.train_loss,
            step: l.step,
        })
}

/// The mean cross-entropy over the fixed evaluation batches of `val` — the windows
/// [`LmTrainer::evaluate`] reads: `cfg.eval_iters` batches of `cfg.batch_size` windows of
/// `cfg.block_size` — for the parameters `params` of a model of sizes `gpt` (None when `cfg` has
/// no validation part).
pub fn validation_loss<D: Device>(
    dev: &mut D,
    gpt: GptConfig,
    params: &[D::Buf],
    val: &[u32],
    cfg: &LmConfig,
) -> Result<Option<f64>, TrainError> {
    if cfg.val_fraction == 0.0 {
        return Ok(None);
    }
    let stats = validation_stats(dev, gpt, params, val, cfg);
    let mut values = Vec::with_capacity(stats.len());
    for s in &stats {
        values.push(dev.download(s)?);
    }
    Ok(Some(validation_mean(&values, cfg)))
}

/// [`validation_loss`] without the read-back: the loss statistics of each evaluation batch, to be
/// read by the caller (asynchronously on the web) and averaged by [`validation_mean`]. Empty
/// when `cfg` has no validation part.
pub fn validation_stats<D: Device>(
    dev: &mut D,
    gpt: GptConfig,
    params: &[D::Buf],
    val: &[u32],
    cfg: &LmConfig,
) -> Vec<D::Buf> {
    if cfg.val_fraction == 0.0 {
        return vec![];
    }
    let (b, t, seed) = (cfg.batch_size, cfg.block_size, cfg.seed);
    let (model, mut loss) = (
        Gpt::new(gpt),
        SoftmaxCrossEntropy {
            classes: gpt.vocab_size,
        },
    );
    let refs: Vec<&D::Buf> = params.iter().collect();
    (0..cfg.eval_iters)
        .map(|i| {
            let (x, y) = windows(val, t, b, seed, Windows::Eval, i);
            let (x, y) = (dev.upload(&x), dev.upload(&y));
            let acts = model.forward(dev, &refs, x, b * t);
            let logits = acts.last().unwrap_or_else(|| unreachable!("logits"));
            loss.loss(dev, logits, &y, b * t).stats
        })
        .collect()
}

/// The mean loss per token from the read-back statistics of [`validation_stats`].
pub fn validation_mean(stats: &[Vec<f32>], cfg: &LmConfig) -> f64 {
    let sum: f64 = stats.iter().map(|s| f64::from(s[0])).sum();
    sum / (stats.len() as f64 * (cfg.batch_size * cfg.block_size) as f64)
}

/// Steps whose loss statistics wait for a read-back ([`LmTrainer::take_pending`]): the buffers,
/// in order, and how their values become [`StepLoss`]es.
pub struct PendingLosses<B> {
    tokens: f64,
    steps: Vec<(u64, B, f64)>,
}

impl<B> PendingLosses<B> {
    /// How many steps wait.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The statistics buffers to read, one per step, in order.
    pub fn buffers(&self) -> impl Iterator<Item = &B> {
        self.steps.iter().map(|(_, b, _)| b)
    }

    /// The losses from the buffers' values (`values[i]` read from the i-th buffer).
    pub fn resolve(self, values: &[Vec<f32>]) -> Vec<StepLoss> {
        assert_eq!(
            values.len(),
            self.steps.len(),
            "one read-back per pending step"
        );
        self.steps
            .into_iter()
            .zip(values)
            .map(|((step, _, lr), v)| StepLoss {
                step,
                train_loss: f64::from(v[0]) / self.tokens,
                lr,
            })
            .collect()
    }
}

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleOptions {
    /// New tokens.
    pub tokens: usize,
    /// Logits are divided by it (> 0).
    pub temperature: f64,
    /// Only the `k` most likely tokens are drawn from (None: all).
    pub top_k: Option<usize>,
    /// Seed of the draws.
    pub seed: u64,
}

/// `opts.tokens` new tokens after `prompt` (nanoGPT's `generate`: the context cropped to the
/// last `block_size` tokens, the last position's logits divided by the temperature, all but the
/// top k set to −∞, a draw from the softmax). Draw `i` uses the uniform `(seed; Text stream 2,
/// i)`. Returns the new tokens only.
pub fn generate<D: Device>(
    dev: &mut D,
    cfg: GptConfig,
    params: &[D::Buf],
    prompt: &[u32],
    opts: SampleOptions,
) -> Result<Vec<u32>, TrainError> {
    let mut g = Generator::new(cfg, prompt, opts);
    while !g.done() {
        g.next(dev, params)?;
    }
    Ok(g.into_new_tokens())
}

/// [`generate`] one token at a time (the explorer spreads a sample over frames).
#[derive(Debug, Clone)]
pub struct Generator {
    cfg: GptConfig,
    opts: SampleOptions,
    rng: Philox,
    ctx: Vec<u32>,
    prompt_len: usize,
}

impl Generator {
    /// A sample of `opts.tokens` tokens after `prompt` (at least one token) from a model of sizes `cfg`.
    pub fn new(cfg: GptConfig, prompt: &[u32], opts: SampleOptions) -> Self {
        assert!(
            !prompt.is_empty(),
            "generate needs a prompt of at least one token"
        );
        Self {
            cfg,
            opts,
            rng: Philox::new(opts.seed),
            ctx: prompt.to_vec(),
            prompt_len: prompt.len(),
        }
    }

    /// Whether every token has been drawn.
    pub fn done(&self) -> bool {
        self.ctx.len() - self.prompt_len >= self.opts.tokens
    }

    /// The tokens drawn so far.
    pub fn new_tokens(&self) -> &[u32] {
        &self.ctx[self.prompt_len..]
    }

    /// The tokens drawn.
    pub fn into_new_tokens(mut self) -> Vec<u32> {
        self.ctx.split_off(self.prompt_len)
    }

    /// Draws the next token with the weights `params` (one forward pass over the cropped
    /// context).
    pub fn next<D: Device>(&mut self, dev: &mut D, params: &[D::Buf]) -> Result<u32, TrainError> {
        let i = self.ctx.len() - self.prompt_len;
        let (cfg, v) = (self.cfg, self.cfg.vocab_size);
        let start = self.ctx.len().saturating_sub(cfg.block_size);
        let window: Vec<f32> = self.ctx[start..].iter().map(|&t| t as f32).collect();
        let t = window.len();
        let gpt = Gpt::new(cfg).with_seq(t);
        let refs: Vec<&D::Buf> = params.iter().collect();
        let x = dev.upload(&window);
        let acts = gpt.forward(dev, &refs, x, t);
        let logits = acts.last().unwrap_or_else(|| unreachable!("logits"));
        let last = dev.gather_rows(Mat::new(logits, t, v), &[(t - 1) as u32]);
        let row = dev.download(&last)?;
        let s = stream(StreamKind::Text, 2);
        let tok = draw(&row, self.opts, f64::from(self.rng.uniform_at(s, i as u64)));
        self.ctx.push(tok);
        Ok(tok)
    }
}

/// A token from `logits` by temperature and top-k, with the uniform `u` in [0, 1).
fn draw(logits: &[f32], opts: SampleOptions, u: f64) -> u32 {
    let scaled: Vec<f64> = logits
        .iter()
        .map(|&l| f64::from(l) / opts.temperature)
        .collect();
    let mut keep = vec![true; scaled.len()];
    if let Some(k) = opts.top_k.filter(|&k| k < scaled.len()) {
        let mut sorted = scaled.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let kth = sorted[k.max(1) - 1];
        keep = scaled.iter().map(|&l| l >= kth).collect();
    }
    let max = scaled
        .iter()
        .zip(&keep)
        .filter(|(_, &k)| k)
        .fold(f64::NEG_INFINITY, |m, (&l, _)| m.max(l));
    let w: Vec<f64> = scaled
        .iter()
        .zip(&keep)
        .map(|(&l, &k)| if k { (l - max).exp() } else { 0.0 })
        .collect();
    let total: f64 = w.iter().sum();
    let mut acc = 0.0;
    let target = u * total;
    for (i, wi) in w.iter().enumerate() {
        acc += wi;
        if target < acc {
            return i as u32;
        }
    }
    // Rounding at the top end: the last token with weight.
    w.iter().rposition(|&x| x > 0.0).unwrap_or(0) as u32
}

/// The parameter roles the trainer relies on (for the docs and the tests): the hidden matrices
/// are matrices, everything else a vector.
pub fn role_of(name: &str) -> ParamRole {
    if name.ends_with(".weight") && (name.contains(".attn.") || name.contains(".mlp.")) {
        ParamRole::Matrix
    } else {
        ParamRole::Vector
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Cpu;

    fn tiny(steps: u64) -> LmConfig {
        LmConfig {
            n_layer: 1,
            n_head: 2,
            n_embd: 16,
            block_size: 8,
            batch_size: 4,
            steps,
            eval_interval: 10,
            eval_iters: 2,
            log_interval: 3,
            optimizer: OptimizerConfig::Adamw(crate::optim::AdamWConfig {
                lr: 1e-2,
                ..Default::default()
            }),
            schedule: LrSchedule::default(),
            ..LmConfig::default()
        }
    }

    fn text() -> Corpus {
        let t: String = crate::corpus::tinyshakespeare()
            .chars()
            .take(20_000)
            .collect();
        Corpus::new(&t, 0.1, None).unwrap()
    }

    #[test]
    fn divergence_names_the_first_non_finite_step() {
        let l = |step, train_loss| StepLoss {
            step,
            train_loss,
            lr: 1e-3,
        };
        assert!(divergence(&[l(1, 2.0), l(2, 1.9)]).is_none());
        let e = divergence(&[l(1, 2.0), l(2, f64::INFINITY), l(3, f64::NAN)]).unwrap();
        assert_eq!(
            e.to_string().split(';').next().unwrap(),
            "the training loss became inf at step 2"
        );
    }

    #[test]
    fn schedules_follow_nanogpt() {
        let s = LrSchedule {
            kind: ScheduleKind::Cosine,
            warmup_steps: 100,
            ..LrSchedule::default()
        };
        // nanoGPT's get_lr(it) / learning_rate with warmup 100, decay 2000, min lr/10.
        assert!((s.factor(0, 2000) - 1.0 / 101.0).abs() < 1e-12);
        assert!((s.factor(99, 2000) - 100.0 / 101.0).abs() < 1e-12);
        assert!((s.factor(100, 2000) - 1.0).abs() < 1e-12);
        assert!((s.factor(1050, 2000) - 0.55).abs() < 1e-12);
        assert!((s.factor(2000, 2000) - 0.1).abs() < 1e-12);
        let w = LrSchedule {
            kind: ScheduleKind::Wsd,
            ..LrSchedule::default()
        };
        assert_eq!(w.factor(0, 100), 1.0);
        assert_eq!(w.factor(79, 100), 1.0);
        assert!((w.factor(99, 100) - 0.1).abs() < 1e-12);
        assert!(w.factor(90, 100) < 1.0 && w.factor(90, 100) > 0.1);
        assert_eq!(LrSchedule::default().factor(5, 10), 1.0);
    }

    /// The loss falls on real text within 60 steps of a tiny model, the losses come back in
    /// order with the schedule's rates, and evaluation changes nothing.
    #[test]
    fn a_tiny_gpt_learns_and_evaluation_changes_nothing() {
        let mut t = LmTrainer::new(tiny(60), text(), Cpu, None).unwrap();
        let v0 = t.evaluate().unwrap().unwrap();
        // Untrained: about ln(vocab).
        assert!((v0 - (t.vocab().len() as f64).ln()).abs() < 0.1, "{v0}");
        let mut losses = vec![];
        while !t.finished() {
            t.step().unwrap();
            if t.losses_due() {
                losses.extend(t.take_losses().unwrap());
            }
        }
        assert_eq!(losses.len(), 60);
        assert!(losses
            .iter()
            .enumerate()
            .all(|(i, l)| l.step == i as u64 + 1));
        let first: f64 = losses[..5].iter().map(|l| l.train_loss).sum::<f64>() / 5.0;
        let last: f64 = losses[55..].iter().map(|l| l.train_loss).sum::<f64>() / 5.0;
        assert!(last < first - 0.5, "train loss {first} → {last}");
        let v1 = t.evaluate().unwrap().unwrap();
        assert!(v1 < v0 - 0.5, "val loss {v0} → {v1}");
        assert_eq!(t.evaluate().unwrap().unwrap(), v1);
        assert!(losses.iter().all(|l| l.lr == 1e-2));
    }

    /// MeZO and MeZO-BCD (blocks = the transformer layers) train the GPT with forward passes
    /// only: the mean training loss of the last 20 of 200 steps is below the first 20's, and
    /// MeZO-BCD touches one block per step (cyclic: the embeddings' block first).
    #[test]
    fn zeroth_order_methods_train_the_gpt() {
        for name in ["mezo", "mezo_bcd"] {
            let mut cfg = tiny(200);
            cfg.optimizer =
                serde_json::from_str(&format!(r#"{{"name": "{name}", "lr": 3e-3, "eps": 1e-3}}"#))
                    .unwrap();
            let mut t = LmTrainer::new(cfg, text(), Cpu, None).unwrap();
            let before = t.weights().unwrap();
            t.step().unwrap();
            let after = t.weights().unwrap();
            let changed: Vec<&str> = before
                .iter()
                .zip(&after)
                .filter(|(a, b)| a.2 != b.2)
                .map(|(a, _)| a.0.as_str())
                .collect();
            if name == "mezo_bcd" {
                assert_eq!(
                    changed,
                    vec![
                        "transformer.wte.weight",
                        "transformer.wpe.weight",
                        "transformer.ln_f.weight",
                        "transformer.ln_f.bias"
                    ]
                );
            } else {
                assert_eq!(changed.len(), before.len());
            }
            while !t.finished() {
                t.step().unwrap();
            }
            let l = t.take_losses().unwrap();
            let mean =
                |s: &[StepLoss]| s.iter().map(|x| x.train_loss).sum::<f64>() / s.len() as f64;
            let (first, last) = (mean(&l[..20]), mean(&l[180..]));
            eprintln!("{name}: mean train loss {first:.4} (steps 1-20) → {last:.4} (181-200)");
            assert!(last < first - 0.05, "{name}: {first} → {last}");
        }
    }

    #[test]
    fn resume_continues_bit_for_bit() {
        let mut full = LmTrainer::new(tiny(12), text(), Cpu, None).unwrap();
        while !full.finished() {
            full.step().unwrap();
        }
        full.take_losses().unwrap();
        let mut a = LmTrainer::new(tiny(12), text(), Cpu, None).unwrap();
        for _ in 0..5 {
            a.step().unwrap();
        }
        a.take_losses().unwrap();
        let bytes = a.save().unwrap().to_bytes().unwrap();
        let mut b = LmTrainer::new(tiny(12), text(), Cpu, None).unwrap();
        b.restore(Checkpoint::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(b.steps(), 5);
        while !b.finished() {
            b.step().unwrap();
        }
        b.take_losses().unwrap();
        assert_eq!(b.weights().unwrap(), full.weights().unwrap());
    }

    fn lora(steps: u64, optimizer: &str, lr: f64) -> LmConfig {
        let mut cfg = tiny(steps);
        cfg.optimizer =
            serde_json::from_str(&format!(r#"{{"name": "{optimizer}", "lr": {lr}}}"#)).unwrap();
        cfg.lora = Some(LoraConfig {
            rank: 2,
            alpha: Some(4.0),
        });
        cfg
    }

    /// A LoRA run starts at the given weights (B = 0), trains only through the adapters —
    /// embeddings, gains and biases stay bit for bit, each adapted matrix moves by a matrix of
    /// rank ≤ r — lowers the loss, records r singular values per adapter product, and resumes
    /// bit for bit.
    #[test]
    fn lora_trains_low_rank_updates_only() {
        let base = LmTrainer::new(tiny(1), text(), Cpu, None)
            .unwrap()
            .weights()
            .unwrap();
        let init: Vec<Vec<f32>> = base.iter().map(|w| w.2.clone()).collect();
        let mut t =
            LmTrainer::new(lora(40, "adamw", 1e-2), text(), Cpu, Some(init.clone())).unwrap();
        assert_eq!(
            t.weights().unwrap(),
            base,
            "B = 0: the run starts at its weights"
        );
        let v0 = t.evaluate().unwrap().unwrap();
        while !t.finished() {
            t.step().unwrap();
        }
        t.take_losses().unwrap();
        let v1 = t.evaluate().unwrap().unwrap();
        assert!(v1 < v0 - 0.02, "val loss {v0} → {v1}");
        let after = t.weights().unwrap();
        for (b, a) in base.iter().zip(&after) {
            if role_of(&b.0) == ParamRole::Matrix {
                let delta: Vec<f32> = a.2.iter().zip(&b.2).map(|(x, y)| x - y).collect();
                let sv = singular_values(&delta, b.1[0], b.1[1]).unwrap();
                assert!(sv[0] > 1e-4, "{} did not move", b.0);
                assert!(sv[2] < 1e-5 * sv[0], "{}: rank > 2: {:?}", b.0, &sv[..4]);
            } else {
                assert_eq!(a.2, b.2, "{} is frozen", b.0);
            }
        }
        let spectra = t.spectra().unwrap();
        assert_eq!(spectra.len(), 4);
        assert!(spectra
            .iter()
            .all(|(k, v)| k.ends_with(".lora_BA") && v.len() == 2 && v[0] > 0.0));
        // Resume: 20 steps, save, restore, 20 more equal the 40 straight.
        let mut a =
            LmTrainer::new(lora(40, "adamw", 1e-2), text(), Cpu, Some(init.clone())).unwrap();
        for _ in 0..20 {
            a.step().unwrap();
        }
        a.take_losses().unwrap();
        let bytes = a.save().unwrap().to_bytes().unwrap();
        let mut b = LmTrainer::new(lora(40, "adamw", 1e-2), text(), Cpu, Some(init)).unwrap();
        b.restore(Checkpoint::from_bytes(&bytes).unwrap()).unwrap();
        while !b.finished() {
            b.step().unwrap();
        }
        b.take_losses().unwrap();
        assert_eq!(b.weights().unwrap(), after);
    }

    /// The adapters' gradients against central finite differences of the loss (f64 sums of
    /// the f32 model), through the merged weights: ∂A = s·BᵀG, ∂B = s·G Aᵀ.
    #[test]
    fn lora_gradients_match_finite_differences() {
        let mut t = LmTrainer::new(lora(3, "sgd", 0.1), text(), Cpu, None).unwrap();
        // Two steps so that B ≠ 0 (at B = 0 the gradient of A vanishes).
        t.step().unwrap();
        t.step().unwrap();
        t.take_losses().unwrap();
        let (b, seq) = (t.cfg.batch_size, t.cfg.block_size);
        let (x, y) = windows(&t.corpus.train, seq, b, 7, Windows::Train, 0);
        let loss_at = |t: &mut LmTrainer<Cpu>| -> (f64, Vec<Vec<f32>>) {
            let l = t.lora.as_ref().unwrap();
            let merged = l.merged(&mut t.dev, &t.params, &l.params);
            let refs: Vec<&Vec<f32>> = merged.iter().collect();
            let acts = t.gpt.forward(&mut t.dev, &refs, x.clone(), b * seq);
            let out = t.loss.loss(&mut t.dev, acts.last().unwrap(), &y, b * seq);
            let grads = t
                .gpt
                .backward(&mut t.dev, &refs, &acts, out.d_output, b * seq);
            let g = t.lora.as_ref().unwrap().grads(&mut t.dev, &grads);
            (f64::from(out.stats[0]) / (b * seq) as f64, g)
        };
        let (_, grads) = loss_at(&mut t);
        let h = 1e-2f32;
        let mut checked = 0;
        for (pi, g) in grads.iter().enumerate().take(4) {
            for k in [0, g.len() / 3, g.len() - 1] {
                let orig = t.lora.as_ref().unwrap().params[pi][k];
                t.lora.as_mut().unwrap().params[pi][k] = orig + h;
                let (up, _) = loss_at(&mut t);
                t.lora.as_mut().unwrap().params[pi][k] = orig - h;
                let (down, _) = loss_at(&mut t);
                t.lora.as_mut().unwrap().params[pi][k] = orig;
                let fd = (up - down) / (2.0 * f64::from(h));
                let err = (fd - f64::from(g[k])).abs();
                assert!(
                    err < 2e-3 + 0.05 * fd.abs(),
                    "adapter {pi}[{k}]: analytic {} vs finite differences {fd}",
                    g[k]
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 12);
    }

    #[test]
    fn lora_refuses_bad_ranks_and_zeroth_order() {
        let mut cfg = lora(3, "adamw", 1e-3);
        cfg.lora = Some(LoraConfig {
            rank: 17,
            alpha: None,
        });
        let e = LmTrainer::new(cfg, text(), Cpu, None).err().unwrap();
        assert!(
            e.to_string()
                .starts_with("lora.rank = 17: must be in 1..=16"),
            "{e}"
        );
        let e = LmTrainer::new(lora(3, "mezo", 1e-3), text(), Cpu, None)
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("lora = with mezo: needs a first-order optimizer"),
            "{e}"
        );
        // MeZO-BCD is refused the same way (before its blocks, which name the model's weights).
        let e = LmTrainer::new(lora(3, "mezo_bcd", 1e-3), text(), Cpu, None)
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("lora = with mezo_bcd: needs a first-order optimizer"),
            "{e}"
        );
    }

    #[test]
    fn nanogpt_groups_exempt_gains_and_biases_from_decay() {
        let g = Gpt::new(LmConfig::default().gpt(65));
        let metas = g.init(0);
        let opt = exempt_vectors(&LmConfig::default().optimizer, &metas).unwrap();
        let v = serde_json::to_value(&opt).unwrap();
        let groups = v["param_groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1);
        let names = groups[0]["params"].as_array().unwrap();
        assert_eq!(names.len(), 4 * 8 + 2);
        assert!(names.iter().all(|n| {
            let n = n.as_str().unwrap();
            n.ends_with(".bias") || n.contains("ln_")
        }));
        assert_eq!(groups[0]["weight_decay"], 0.0);
        for p in &metas {
            assert_eq!(role_of(&p.name), p.role, "{}", p.name);
        }
    }

    #[test]
    fn sampling_is_seeded_and_respects_top_k() {
        let opts = SampleOptions {
            tokens: 1,
            temperature: 1.0,
            top_k: Some(2),
            seed: 0,
        };
        let logits = [0.0f32, 5.0, 4.0, -1.0];
        for i in 0..200 {
            let u = f64::from(i) / 200.0;
            assert!(matches!(draw(&logits, opts, u), 1 | 2));
        }
        assert_eq!(
            draw(
                &logits,
                SampleOptions {
                    top_k: Some(1),
                    ..opts
                },
                0.99
            ),
            1
        );
        let cfg = LmConfig::default().gpt(10);
        let small = GptConfig {
            n_layer: 1,
            n_embd: 16,
            n_head: 2,
            block_size: 4,
            ..cfg
        };
        let params: Vec<Vec<f32>> = Gpt::new(small)
            .init(1)
            .into_iter()
            .map(|p| p.value.into_data())
            .collect();
        let a = generate(
            &mut Cpu,
            small,
            &params,
            &[1, 2],
            SampleOptions {
                tokens: 9,
                top_k: None,
                ..opts
            },
        )
        .unwrap();
        let b = generate(
            &mut Cpu,
            small,
            &params,
            &[1, 2],
            SampleOptions {
                tokens: 9,
                top_k: None,
                ..opts
            },
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 9);
        assert!(a.iter().all(|&t| t < 10));
    }
}
