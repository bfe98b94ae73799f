//! The one trainer, written once for every device: a [`Model`] (the MLP today), a [`Loss`] of
//! its output, a [`WeightTransform`] of its weight matrices (the quantizers of [`crate::quant`],
//! [`quantizer::Quantizer`]), a [`GradientSource`] (backpropagation, [`gradient::Backprop`], or the
//! two forward passes of MeZO, [`gradient::Spsa`]) and any optimizer of [`crate::optim`], in
//! minibatches, evaluated with the transform's evaluation weights (hard quantization).
//!
//! * weights and biases, their optimizer and the data live on the [`Device`];
//! * the transform's few learnable scalars (step α, noise σ, bit gates) live on the host and are
//!   trained by a second instance of the same optimizer config (CPU executor), from gradients the
//!   device reduces to `DPARAMS` numbers per layer;
//! * every random draw (shuffles, Gumbel noise, DropBits, gates) is addressed by Philox counters
//!   from `(seed, epoch, step)`, so a run resumed from a checkpoint repeats the uninterrupted run
//!   bit for bit; checkpoint state is read and written by `state.rs` and each part's `save`.

pub mod checkpoint;
pub mod gpt_file;
pub mod gradient;
pub mod lm;
pub mod lora;
pub mod quantizer;
mod state;
pub mod transform;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::ConfigError;
use crate::data::{self, Dataset};
use crate::device::{Device, DeviceError, Mat};
use crate::models::{Loss, LossOut, SoftmaxCrossEntropy};
use crate::models::{Mlp, Model};
use crate::optim::{Executor, OptimError, OptimizerConfig, Param};
use crate::quant::{QuantConfig, QuantMethod};
use crate::rng::{stream, Philox, StreamKind};
#[cfg(test)]
use gradient::Forward;
use gradient::{with_transformed, Backprop, Batch, GradientSource, Gradients, Spsa};
use quantizer::Quantizer;
use transform::{ModelState, WeightTransform};

pub use crate::metrics::{EpochMetrics, LayerStats};
pub use checkpoint::Checkpoint;

crate::config::choice_enum! {
    /// Which data set.
    pub enum DataChoice default Digits {
        /// The 8×8 digits shipped in `data/` (64 features, 10 classes).
        "digits" => Digits: "8x8 handwritten digits shipped with optiscope (1797 images, 10 classes)",
        /// Two interleaved spirals (2-D, 2 classes, 1000 points).
        "spirals" => Spirals: "two interleaved spirals (2-D, 1000 points)",
        /// Two moons (2-D, 2 classes, 1000 points).
        "moons" => Moons: "two moons (2-D, 1000 points)",
    }
}

impl DataChoice {
    /// The data set, split into `(train, test)` with the fixed seeded split.
    pub fn load(self, test_fraction: f64, split_seed: u64) -> (Dataset, Dataset) {
        let all = match self {
            Self::Digits => data::builtin_digits(),
            Self::Spirals => data::spirals(1000, 0.05, split_seed),
            Self::Moons => data::moons(1000, 0.1, split_seed),
        };
        all.split(test_fraction, split_seed)
    }
}

/// A training run, fully resolved (what checkpoints store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Data set.
    pub data: DataChoice,
    /// Hidden layer widths (input and output widths come from the data).
    pub hidden: Vec<usize>,
    /// Optimizer of weights, biases and quantizer parameters.
    pub optimizer: OptimizerConfig,
    /// Weight quantizer.
    pub quant: QuantConfig,
    /// Passes over the training set.
    pub epochs: u64,
    /// Minibatch size (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Seed of initialization, shuffles and quantizer noise.
    pub seed: u64,
    /// Seed of the train/test split (fixed, so every run sees the same test set).
    pub split_seed: u64,
    /// Fraction of the data held out for testing.
    pub test_fraction: f64,
}

/// The widest hidden layer a run may ask for (the explorer's links and `--hidden` share it).
pub const MAX_HIDDEN_WIDTH: usize = 4096;
/// The most hidden layers a run may ask for.
pub const MAX_HIDDEN_LAYERS: usize = 16;
/// The largest minibatch.
pub const MAX_BATCH_SIZE: usize = 100_000;

impl TrainConfig {
    /// Checks every size against its bound before anything is allocated, and the quantizer.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.quant.validate().map_err(|e| e.within("quant"))?;
        if self.epochs == 0 {
            return Err(ConfigError::invalid("epochs", 0, "must be at least 1"));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(ConfigError::invalid(
                "batch_size",
                self.batch_size,
                format!("must be in 1..={MAX_BATCH_SIZE}"),
            ));
        }
        if self.hidden.len() > MAX_HIDDEN_LAYERS {
            return Err(ConfigError::invalid(
                "hidden",
                format!("{} layers", self.hidden.len()),
                format!("at most {MAX_HIDDEN_LAYERS} hidden layers are allowed"),
            ));
        }
        if let Some(w) = self
            .hidden
            .iter()
            .find(|w| !(1..=MAX_HIDDEN_WIDTH).contains(*w))
        {
            return Err(ConfigError::invalid(
                "hidden",
                w,
                format!("each hidden width must be in 1..={MAX_HIDDEN_WIDTH}"),
            ));
        }
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            return Err(ConfigError::invalid(
                "test_fraction",
                self.test_fraction,
                "must be in (0, 1)",
            ));
        }
        if self.optimizer.is_zeroth_order() && self.quant.method != QuantMethod::None {
            return Err(ConfigError::invalid(
                "quant.method",
                self.quant.method.name(),
                format!(
                    "{} trains without a quantizer: its two forward passes give no gradient to a \
                     quantizer's learned parameters (use quant none)",
                    self.optimizer.name()
                ),
            ));
        }
        if self.quant.method == QuantMethod::Proxquant && self.quant.revised {
            quantizer::check_revised_proxquant(&self.optimizer)?;
        }
        self.optimizer.validate().map_err(|e| e.within("optimizer"))
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: DataChoice::Digits,
            hidden: vec![128],
            optimizer: OptimizerConfig::Adamw(crate::optim::AdamWConfig {
                lr: 1e-2,
                ..Default::default()
            }),
            quant: QuantConfig::default(),
            epochs: 30,
            batch_size: 64,
            seed: 0,
            split_seed: 0,
            test_fraction: 0.2,
        }
    }
}

/// A training run cannot start or go on.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data cannot be trained on (empty, or train and test of different shapes).
    #[error("data: {0}")]
    Data(String),
    /// The optimizer failed (e.g. a non-finite gradient) or the device did.
    #[error(transparent)]
    Optim(#[from] OptimError),
    /// A checkpoint does not fit this run.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A language model's training loss (or MeZO's projected gradient) stopped being finite,
    /// noticed at a read-back: the steps up to it have been taken.
    #[error(
        "the {what} became {value} at step {step}; the run stops there (a smaller learning rate \
         or gradient clipping usually helps)"
    )]
    LmDiverged {
        /// What became non-finite.
        what: String,
        /// Its value.
        value: f64,
        /// 1-based step.
        step: u64,
    },
    /// The training loss or a gradient stopped being finite. Detected before the step changes
    /// anything: the run stays at its last finite state.
    #[error(
        "the {what} became {value} at minibatch {step} (epoch {epoch}); the run stops before \
         that step, at its last finite state (a smaller learning rate usually helps)"
    )]
    Diverged {
        /// What became non-finite: "training loss", "gradient of model.w0", ...
        what: String,
        /// The mean loss of the minibatch, or the gradient's sum of squares (or first bad value).
        value: f64,
        /// 1-based minibatch number.
        step: u64,
        /// 1-based epoch.
        epoch: u64,
    },
}

impl From<DeviceError> for TrainError {
    /// A device failure reads as before the kernel families: the optimizer's "device: …" error.
    fn from(e: DeviceError) -> Self {
        TrainError::Optim(e.into())
    }
}

/// A snapshot of one weight matrix for visualisation.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerView {
    /// Full-precision (latent) weights.
    pub weights: Vec<f32>,
    /// Evaluation quantization of each weight.
    pub xhat: Vec<f32>,
    /// Grid points `α·k`, k from −2^{b−1} (empty in full precision).
    pub grid: Vec<f32>,
    /// Bit level of each grid point.
    pub levels: Vec<u32>,
    /// Keep weight of each level at evaluation (1 = used).
    pub keep: Vec<f32>,
    /// Statistics.
    pub stats: LayerStats,
}

struct Split<D: Device> {
    x: D::Buf,
    y: D::Buf,
    n: usize,
}

impl<D: Device> Split<D> {
    /// The feature rows `rows` (each `dim` wide), gathered on the device.
    fn x(&self, dev: &mut D, dim: usize, rows: &[u32]) -> D::Buf {
        dev.gather_rows(Mat::new(&self.x, self.n, dim), rows)
    }

    /// The labels of `rows`.
    fn y(&self, dev: &mut D, rows: &[u32]) -> D::Buf {
        dev.gather_rows(Mat::new(&self.y, self.n, 1), rows)
    }
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct Position {
    /// Completed epochs.
    epoch: u64,
    /// Minibatches done in the current epoch.
    batch: u64,
    /// Minibatches done overall.
    step: u64,
    /// Σ loss·rows of the current epoch.
    loss_sum: f64,
    /// Correct predictions of the current epoch.
    correct: f64,
    /// Rows seen in the current epoch.
    seen: u64,
}

/// A steppable training run on device `D`.
pub struct Trainer<D: Device> {
    cfg: TrainConfig,
    /// The model: its parameters, forward and backward.
    model: Box<dyn Model<D>>,
    /// The indices of its weight matrices (what the transform transforms), in layer order.
    weights: Vec<usize>,
    /// The loss of its output.
    loss: Box<dyn Loss<D>>,
    /// What the weight matrices pass through on the way forward (the quantizer).
    transform: Box<dyn WeightTransform<D>>,
    /// How a minibatch becomes gradients.
    source: Box<dyn GradientSource<D>>,
    /// Features per row of the data.
    input_dim: usize,
    dev: D,
    metas: Vec<Param>,
    params: Vec<D::Buf>,
    opt: Box<dyn Executor<D>>,
    train: Split<D>,
    test: Split<D>,
    order: Vec<u32>,
    /// Whether `order` (and the data-derived steps) belong to the current epoch: an epoch starts
    /// lazily at its first minibatch, so `set_epochs` after the end continues like a longer run.
    epoch_started: bool,
    pos: Position,
    /// The mean loss of the last minibatch (not saved in checkpoints).
    last_loss: f64,
}

impl<D: Device + 'static> Trainer<D> {
    /// A fresh run of `cfg` on `train`/`test` (which must have the same dimension and classes).
    pub fn new(
        cfg: TrainConfig,
        train: &Dataset,
        test: &Dataset,
        mut dev: D,
    ) -> Result<Self, TrainError> {
        let mut cfg = cfg;
        cfg.quant = cfg.quant.clone().resolved();
        cfg.validate()?;
        if train.is_empty() || test.is_empty() {
            return Err(TrainError::Data(
                "the train and test sets must not be empty".into(),
            ));
        }
        let mut widths = vec![train.dim];
        widths.extend(&cfg.hidden);
        widths.push(train.classes as usize);
        let model: Box<dyn Model<D>> = Box::new(Mlp::new(widths));
        let loss: Box<dyn Loss<D>> = Box::new(SoftmaxCrossEntropy {
            classes: train.classes as usize,
        });
        let weights = model.weight_matrices();
        let init = model.init(cfg.seed);
        let params: Vec<D::Buf> = init.iter().map(|p| dev.upload(p.value.data())).collect();
        let metas: Vec<Param> = init;
        let opt = cfg
            .optimizer
            .build_on(&mut dev, &metas)
            .map_err(|e| e.within("optimizer"))?;
        let init_weights: Vec<&crate::tensor::Tensor> =
            weights.iter().map(|&i| &metas[i].value).collect();
        let transform: Box<dyn WeightTransform<D>> = Box::new(Quantizer::new(
            &cfg.quant,
            &cfg.optimizer,
            cfg.seed,
            &init_weights,
        )?);
        let upload = |dev: &mut D, d: &Dataset| Split {
            x: dev.upload(&d.features),
            y: dev.upload(&d.labels.iter().map(|&l| l as f32).collect::<Vec<_>>()),
            n: d.len(),
        };
        if test.dim != train.dim || test.classes != train.classes {
            return Err(TrainError::Data(
                "train and test sets differ in shape".into(),
            ));
        }
        let input_dim = train.dim;
        let train = upload(&mut dev, train);
        let test = upload(&mut dev, test);
        let source: Box<dyn GradientSource<D>> = match opt.zeroth_order() {
            Some(plan) => Box::new(Spsa::new(plan, cfg.seed)),
            None => Box::new(Backprop),
        };
        let mut t = Self {
            cfg,
            model,
            weights,
            loss,
            transform,
            source,
            input_dim,
            dev,
            metas,
            params,
            opt,
            train,
            test,
            order: vec![],
            epoch_started: false,
            pos: Position::default(),
            last_loss: f64::NAN,
        };
        t.refresh_scales()?;
        Ok(t)
    }

    /// The mean training loss of the last minibatch (NaN before the first step).
    pub fn last_loss(&self) -> f64 {
        self.last_loss
    }

    /// The resolved config.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The model's layer widths, input first (for display).
    pub fn widths(&self) -> Vec<usize> {
        self.model.layer_widths()
    }

    /// Completed epochs.
    pub fn epoch(&self) -> u64 {
        self.pos.epoch
    }

    /// Minibatches taken so far.
    pub fn steps(&self) -> u64 {
        self.pos.step
    }

    /// Minibatches per epoch.
    pub fn batches_per_epoch(&self) -> u64 {
        self.train.n.div_ceil(self.cfg.batch_size) as u64
    }

    /// Whether every configured epoch is done.
    pub fn finished(&self) -> bool {
        self.pos.epoch >= self.cfg.epochs
    }

    /// Allows more epochs (`optiscope train --resume DIR --epochs N` with a larger N).
    pub fn set_epochs(&mut self, epochs: u64) {
        self.cfg.epochs = epochs;
    }

    /// The device.
    pub fn device(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Running mean loss and accuracy of the current epoch (NaN before its first batch).
    pub fn running(&self) -> (f64, f64) {
        let n = self.pos.seen as f64;
        (self.pos.loss_sum / n, self.pos.correct / n)
    }

    fn rng(&self) -> Philox {
        Philox::new(self.cfg.seed)
    }

    /// Shuffle for the epoch about to run and refresh the data-derived steps.
    fn start_epoch(&mut self) -> Result<(), TrainError> {
        self.shuffle();
        self.refresh_scales()?;
        self.epoch_started = true;
        Ok(())
    }

    /// The current epoch's training order.
    fn shuffle(&mut self) {
        let n = self.train.n;
        let mut order: Vec<u32> = (0..n as u32).collect();
        let rng = self.rng();
        let s = stream(StreamKind::Shuffle, self.pos.epoch as u32);
        for i in (1..n).rev() {
            let j = (u64::from(rng.u32_at(s, i as u64)) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        self.order = order;
    }

    /// The transform's data-derived state from the current weights.
    fn refresh_scales(&mut self) -> Result<(), TrainError> {
        let weights: Vec<&D::Buf> = self.weights.iter().map(|&i| &self.params[i]).collect();
        self.transform.refresh(&mut self.dev, &weights)?;
        Ok(())
    }

    /// The model's forward pass over `n` rows `x`, each weight matrix replaced by its
    /// transform where there is one; returns every layer's activations.
    fn forward(&mut self, x: D::Buf, transformed: &[Option<D::Buf>], n: usize) -> Vec<D::Buf> {
        let params = with_transformed(&self.params, &self.weights, transformed);
        self.model.forward(&mut self.dev, &params, x, n)
    }

    /// The current minibatch's rows, gathered on the device: `(x, y, n)`.
    fn minibatch_rows(&mut self) -> (D::Buf, D::Buf, usize) {
        let bs = self.cfg.batch_size;
        let start = self.pos.batch as usize * bs;
        let rows: Vec<u32> = self.order[start..(start + bs).min(self.train.n)].to_vec();
        let x = self.train.x(&mut self.dev, self.input_dim, &rows);
        let y = self.train.y(&mut self.dev, &rows);
        (x, y, rows.len())
    }

    /// Runs `f` on the current minibatch as a gradient source sees it (the epoch must have
    /// started), with the trainer's gradient source.
    fn with_batch<T>(
        &mut self,
        f: impl FnOnce(&mut dyn GradientSource<D>, Batch<'_, D>) -> T,
    ) -> T {
        let (x, y, n) = self.minibatch_rows();
        let batch = Batch {
            dev: &mut self.dev,
            model: self.model.as_ref(),
            loss: self.loss.as_mut(),
            transform: self.transform.as_mut(),
            params: &mut self.params,
            weights: &self.weights,
            x: Some(x),
            y,
            n,
            step: self.pos.step,
        };
        f(self.source.as_mut(), batch)
    }

    /// The current minibatch's training forward — the activations of every layer (the last are
    /// the logits) and each weight matrix's transform — with its labels and rows. Changes nothing.
    #[cfg(test)]
    fn minibatch_forward(&mut self) -> (Forward<D>, D::Buf, usize) {
        self.with_batch(|_, mut batch| {
            let x = batch.take_input();
            let fwd = batch.forward(x);
            let y = batch.dev.duplicate(&batch.y);
            (fwd, y, batch.n)
        })
    }

    /// The current minibatch's loss statistics and gradients (of the mean loss) with respect to
    /// every model parameter and every transform parameter, at the current state, from the
    /// gradient source; changes nothing. The epoch must have started.
    fn minibatch_grads(&mut self) -> Result<Gradients<D>, TrainError> {
        self.with_batch(|source, batch| source.gradients(batch))
    }

    /// Rows in the current minibatch.
    fn current_rows(&self) -> usize {
        let bs = self.cfg.batch_size;
        let start = self.pos.batch as usize * bs;
        (start + bs).min(self.train.n) - start
    }

    /// One minibatch. Returns the epoch's metrics when it completes the epoch.
    pub fn step(&mut self) -> Result<Option<EpochMetrics>, TrainError> {
        if self.finished() {
            return Ok(None);
        }
        if !self.epoch_started {
            self.start_epoch()?;
        }
        let n = self.current_rows();
        let Gradients {
            stats,
            grads,
            host_grads: qgrads,
            projected,
        } = self.minibatch_grads()?;
        let layers = self.weights.len();
        let grad_refs: Vec<&D::Buf> = grads.iter().collect();
        // Nothing has changed yet: a non-finite loss or gradient stops the run here, at its last
        // finite state (weights, optimizer and quantizer state, position).
        let stats = self.dev.download(&stats)?;
        let diverged = |what: String, value: f64| TrainError::Diverged {
            what,
            value,
            step: self.pos.step + 1,
            epoch: self.pos.epoch + 1,
        };
        if !stats[0].is_finite() {
            return Err(diverged(
                "training loss".into(),
                f64::from(stats[0]) / n as f64,
            ));
        }
        if let Some(zo) = &projected {
            if !zo.projected_grad.is_finite() {
                return Err(diverged("projected gradient".into(), zo.projected_grad));
            }
        } else {
            let sums = self.dev.sums_of_squares(&grad_refs);
            let sums = self.dev.download(&sums)?;
            if let Some(i) = sums.iter().position(|v| !v.is_finite()) {
                let what = format!("gradient of model.{}", self.metas[i].name);
                return Err(diverged(what, f64::from(sums[i])));
            }
        }
        if let Some(p) = qgrads.iter().position(|g| !g.all_finite()) {
            let what = format!("gradient of quant.{}", self.transform.params()[p].name);
            let bad = qgrads[p].data().iter().find(|v| !v.is_finite());
            return Err(diverged(what, bad.map_or(f64::NAN, |&v| f64::from(v))));
        }
        match &projected {
            Some(zo) => self
                .opt
                .step_projected(&mut self.dev, &mut self.params, zo)?,
            None => self.opt.step(&mut self.dev, &mut self.params, &grad_refs)?,
        }
        let model = ModelState {
            params: &mut self.params,
            weights: &self.weights,
            opt: self.opt.as_ref(),
        };
        self.transform
            .after_step(&mut self.dev, &qgrads, model, self.pos.epoch)?;
        self.last_loss = f64::from(stats[0]) / n as f64;
        self.pos.loss_sum += f64::from(stats[0]);
        self.pos.correct += f64::from(stats[1]);
        self.pos.seen += n as u64;
        self.pos.batch += 1;
        self.pos.step += 1;
        if self.pos.batch < self.batches_per_epoch() {
            return Ok(None);
        }
        let (train_loss, train_accuracy) = self.running();
        let (test_loss, test_accuracy) = self.evaluate_test()?;
        let layers = (0..layers)
            .map(|l| self.layer_view(l).map(|v| v.stats))
            .collect::<Result<Vec<_>, _>>()?;
        self.epoch_started = false;
        self.pos = Position {
            epoch: self.pos.epoch + 1,
            step: self.pos.step,
            ..Position::default()
        };
        let m = EpochMetrics {
            epoch: self.pos.epoch,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            layers,
        };
        Ok(Some(m))
    }

    /// Test loss and accuracy with hard-quantized weights (in the optimizer's eval mode).
    pub fn evaluate_test(&mut self) -> Result<(f64, f64), TrainError> {
        self.evaluate(false)
    }

    /// Train-set loss and accuracy with hard-quantized weights.
    pub fn evaluate_train(&mut self) -> Result<(f64, f64), TrainError> {
        self.evaluate(true)
    }

    /// Runs `f` with the parameters (model and quantizer) at the optimizers' evaluation point —
    /// Schedule-Free's and AMUSE's average — on copies, then puts the training state back
    /// untouched. (Switching the optimizers' modes would lerp the parameters in place and back,
    /// which is not exact in floating point: looking at a run would perturb it.)
    fn with_eval_point<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, TrainError>,
    ) -> Result<T, TrainError> {
        let eval = self.opt.eval_params(&mut self.dev, &self.params);
        let train = std::mem::replace(&mut self.params, eval);
        let qtrain = self.transform.enter_eval();
        let out = f(self);
        self.params = train;
        self.transform.leave_eval(qtrain);
        out
    }

    fn evaluate(&mut self, train: bool) -> Result<(f64, f64), TrainError> {
        self.with_eval_point(|t| t.evaluate_here(train))
    }

    fn evaluate_here(&mut self, train: bool) -> Result<(f64, f64), TrainError> {
        let weights: Vec<Option<D::Buf>> = (0..self.weights.len())
            .map(|l| {
                let w = &self.params[self.weights[l]];
                self.transform.eval(&mut self.dev, l, w)
            })
            .collect();
        let n_all = if train { self.train.n } else { self.test.n };
        let (mut loss, mut correct) = (0.0f64, 0.0f64);
        let chunk = 512;
        for start in (0..n_all).step_by(chunk) {
            let rows: Vec<u32> = (start as u32..(start + chunk).min(n_all) as u32).collect();
            let n = rows.len();
            // Disjoint fields: the device is borrowed mutably, the data set shared.
            let split = if train { &self.train } else { &self.test };
            let x = split.x(&mut self.dev, self.input_dim, &rows);
            let y = split.y(&mut self.dev, &rows);
            let acts = self.forward(x, &weights, n);
            let out = acts
                .last()
                .unwrap_or_else(|| unreachable!("a forward pass has an output"));
            let LossOut { stats, .. } = self.loss.loss(&mut self.dev, out, &y, n);
            let stats = self.dev.download(&stats)?;
            loss += f64::from(stats[0]);
            correct += f64::from(stats[1]);
        }
        Ok((loss / n_all as f64, correct / n_all as f64))
    }

    /// Weight matrix `l` at the evaluation point (Schedule-Free/AMUSE: the average) with its
    /// evaluation quantization, grid and statistics.
    pub fn layer_view(&mut self, l: usize) -> Result<LayerView, TrainError> {
        self.with_eval_point(|t| t.layer_view_here(l))
    }

    fn layer_view_here(&mut self, l: usize) -> Result<LayerView, TrainError> {
        let weights = self.dev.download(&self.params[self.weights[l]])?;
        Ok(self.transform.layer_view(l, weights))
    }

    /// Number of weight matrices.
    pub fn layers(&self) -> usize {
        self.weights.len()
    }

    /// Everything needed to continue the run bit for bit.
    pub fn save(&mut self) -> Result<Checkpoint, TrainError> {
        let mut c = Checkpoint::default();
        for (m, buf) in self.metas.iter().zip(&self.params) {
            let data = self.dev.download(buf)?;
            c.put(format!("model.{}", m.name), m.value.shape().to_vec(), data);
        }
        self.transform.save(&mut c)?;
        let scalars = state::save_executor(&mut self.dev, self.opt.as_mut(), "optim.", &mut c)?;
        c.meta.insert("config".into(), json(&self.cfg));
        c.meta.insert("position".into(), json(&self.pos));
        c.meta.insert("optim_scalars".into(), json(&scalars));
        Ok(c)
    }

    /// Whether `pos` is a position this run can be at: inside an epoch (`batch` below the
    /// batches per epoch), `step` and `seen` agreeing with it, finite sums. A crafted checkpoint
    /// would otherwise index past the shuffled order.
    fn check_position(&self, pos: &Position) -> Result<(), String> {
        let bpe = self.batches_per_epoch();
        if pos.batch >= bpe {
            return Err(format!(
                "batch {} is not below the {bpe} batches of an epoch",
                pos.batch
            ));
        }
        let step = pos
            .epoch
            .checked_mul(bpe)
            .and_then(|s| s.checked_add(pos.batch));
        if step != Some(pos.step) {
            return Err(format!(
                "step {} does not follow from epoch {} and batch {} ({bpe} batches per epoch)",
                pos.step, pos.epoch, pos.batch
            ));
        }
        let seen = pos.batch * self.cfg.batch_size as u64;
        if pos.seen != seen {
            return Err(format!(
                "{} rows seen in the epoch, but {} batches of {} make {seen}",
                pos.seen, pos.batch, self.cfg.batch_size
            ));
        }
        let sums_ok = pos.loss_sum.is_finite()
            && pos.loss_sum >= 0.0
            && (0.0..=seen as f64).contains(&pos.correct);
        if !sums_ok {
            return Err(format!(
                "loss sum {} and correct count {} do not fit {seen} rows",
                pos.loss_sum, pos.correct
            ));
        }
        Ok(())
    }

    /// Restores a checkpoint written by [`Self::save`] for the same config (the caller compares
    /// configs; here every tensor is checked for presence and size).
    pub fn restore(&mut self, mut c: Checkpoint) -> Result<(), TrainError> {
        let bad = TrainError::Checkpoint;
        for i in 0..self.metas.len() {
            let name = format!("model.{}", self.metas[i].name);
            let data = c.take(&name, self.metas[i].value.len()).map_err(bad)?;
            self.params[i] = self.dev.upload(&data);
        }
        let pos: Position = parse_meta(&c, "position")?;
        self.check_position(&pos)
            .map_err(|e| bad(format!("position: {e}")))?;
        let scalars: BTreeMap<String, f64> = parse_meta(&c, "optim_scalars")?;
        state::load_executor(&mut self.dev, self.opt.as_mut(), "optim.", &mut c, &scalars)
            .map_err(bad)?;
        self.transform.restore(&mut c)?;
        if let Some(extra) = c.tensors.keys().next() {
            return Err(bad(format!(
                "unexpected tensor `{extra}` (a different model or optimizer?)"
            )));
        }
        // Inside an epoch: its shuffle again, with the steps it started with (saved above). At an
        // epoch boundary the next step starts the epoch as an uninterrupted run would.
        self.pos = pos;
        self.epoch_started = pos.batch > 0;
        if self.epoch_started {
            self.shuffle();
        }
        Ok(())
    }
}

/// A value as a JSON string (every type stored here serializes; a failure would leave a marker
/// that `restore` then refuses).
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("\"unserializable: {e}\""))
}

/// Metadata `key` of a checkpoint, parsed (the error names the key).
fn parse_meta<T: serde::de::DeserializeOwned>(c: &Checkpoint, key: &str) -> Result<T, TrainError> {
    let bad = TrainError::Checkpoint;
    let s = c
        .meta
        .get(key)
        .ok_or_else(|| bad(format!("no `{key}` metadata")))?;
    let v: serde_json::Value =
        serde_json::from_str(s).map_err(|e| bad(format!("`{key}` metadata: {e}")))?;
    serde_json::from_value(v).map_err(|e| bad(format!("{key}: {e}")))
}

#[cfg(test)]
mod tests;
