//! Training a classifier, written once for every device: an MLP whose weight matrices pass
//! through a quantizer ([`crate::quant`]) on the way forward, trained with any optimizer of
//! [`crate::optim`] in minibatches, evaluated with hard-quantized weights.
//!
//! * weights and biases, their optimizer and the data live on the [`Device`];
//! * each quantizer's few learnable scalars (step α, noise σ, bit gates) live on the host and are
//!   trained by a second instance of the same optimizer config (CPU executor), from gradients the
//!   device reduces to `DPARAMS` numbers per layer;
//! * every random draw (shuffles, Gumbel noise, DropBits, gates) is addressed by Philox counters
//!   from `(seed, epoch, step)`, so a run resumed from a checkpoint repeats the uninterrupted run
//!   bit for bit.

pub mod checkpoint;
pub mod loss;
mod state;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::ConfigError;
use crate::data::{self, Dataset};
use crate::device::quant::categorical::{open_unit, MAX_BITS};
use crate::device::quant::kernel::{KernelMode, ProxScalars, QuantSpec, DPARAMS};
use crate::device::{Counter, Cpu, Device, DeviceError, Mat, QuantOut};
use crate::models::{Mlp, Model};
use crate::optim::{Executor, OptimError, OptimizerConfig, Param, ParamRole};
use crate::quant::dropbits::{self, hard_concrete, hard_concrete_open_prob};
use crate::quant::{self, QuantConfig, QuantMethod};
use crate::rng::{stream, Philox, StreamKind};
use crate::tensor::Tensor;
use loss::{Loss, LossOut, SoftmaxCrossEntropy};

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
        if self.quant.method == QuantMethod::Proxquant && self.quant.revised {
            check_revised_proxquant(&self.optimizer)?;
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

/// One finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: u64,
    /// Mean minibatch loss over the epoch (training forward).
    pub train_loss: f64,
    /// Accuracy of the training forward over the epoch.
    pub train_accuracy: f64,
    /// Test loss with hard-quantized weights.
    pub test_loss: f64,
    /// Test accuracy with hard-quantized weights.
    pub test_accuracy: f64,
    /// Per weight layer: bits, step, near-grid fraction, quantization MSE.
    pub layers: Vec<LayerStats>,
}

/// Quantization statistics of one weight matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// Effective bit-width (learned with `learn_bits`).
    pub bits: u32,
    /// Grid step α.
    pub alpha: f64,
    /// Fraction of weights within 0.1·α of their grid point.
    pub near_frac: f64,
    /// Mean squared quantization error.
    pub mse: f64,
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

/// What [`Trainer::minibatch_forward`] computes.
struct MinibatchForward<D: Device> {
    /// Rows in the minibatch.
    n: usize,
    /// Their labels.
    y: D::Buf,
    /// The input and every layer's output (the last are the logits).
    acts: Vec<D::Buf>,
    /// Each weight matrix as the forward used it (None: the latent weights themselves).
    qw: Vec<Option<D::Buf>>,
    /// Each quantized layer's derivatives, for the backward pass.
    backs: Vec<Option<QuantBack<D>>>,
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

/// What [`Trainer::minibatch_grads`] computes.
struct MinibatchGrads<D: Device> {
    /// Rows in the minibatch.
    n: usize,
    /// `[Σ loss, number correct]` over the rows.
    stats: D::Buf,
    /// One gradient per model parameter (`w0, b0, w1, …`), of the mean loss.
    grads: Vec<D::Buf>,
    /// One gradient per quantizer parameter (host tensors).
    qgrads: Vec<Tensor>,
}

/// Host-side state of one layer's quantizer.
#[derive(Debug, Clone, PartialEq)]
struct LayerQuant {
    /// Index of its first parameter in `qparams` (None: nothing learnable).
    first: Option<usize>,
    /// STE and ProxQuant: the step, refreshed from the weights at each epoch start.
    scale: f32,
}

/// A steppable training run on device `D`.
pub struct Trainer<D: Device> {
    cfg: TrainConfig,
    /// The model: its parameters, forward and backward.
    model: Box<dyn Model<D>>,
    /// The indices of its weight matrices (what the quantizer transforms), in layer order.
    weights: Vec<usize>,
    /// The loss of its output.
    loss: Box<dyn Loss<D>>,
    /// Features per row of the data.
    input_dim: usize,
    dev: D,
    metas: Vec<Param>,
    params: Vec<D::Buf>,
    opt: Box<dyn Executor<D>>,
    quant: Vec<LayerQuant>,
    qparams: Vec<Param>,
    qopt: Option<Box<dyn Executor<Cpu>>>,
    train: Split<D>,
    test: Split<D>,
    order: Vec<u32>,
    /// Whether `order` (and the data-derived steps) belong to the current epoch: an epoch starts
    /// lazily at its first minibatch, so `set_epochs` after the end continues like a longer run.
    epoch_started: bool,
    pos: Position,
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
        let layers = weights.len();
        let q = &cfg.quant;
        let mut quant = Vec::with_capacity(layers);
        let mut qparams = Vec::new();
        for l in 0..layers {
            let w = metas[weights[l]].value.data();
            let max_abs = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let mut lq = LayerQuant {
                first: None,
                scale: 0.0,
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
            quant.push(lq);
        }
        let qopt = if qparams.is_empty() {
            None
        } else {
            Some(
                quant_optimizer(&cfg.optimizer)
                    .build_on(&mut Cpu, &qparams)
                    .map_err(|e| e.within("optimizer"))?,
            )
        };
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
        let mut t = Self {
            cfg,
            model,
            weights,
            loss,
            input_dim,
            dev,
            metas,
            params,
            opt,
            quant,
            qparams,
            qopt,
            train,
            test,
            order: vec![],
            epoch_started: false,
            pos: Position::default(),
        };
        t.refresh_scales()?;
        Ok(t)
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

    /// STE's `max|w|/Q_P` and ProxQuant's `2·mean|w|/√Q_P` from the current weights.
    fn refresh_scales(&mut self) -> Result<(), TrainError> {
        let method = self.cfg.quant.method;
        if matches!(method, QuantMethod::Ste | QuantMethod::Proxquant) {
            for l in 0..self.quant.len() {
                let w = self.dev.download(&self.params[self.weights[l]])?;
                self.quant[l].scale = if method == QuantMethod::Ste {
                    let (_, qp) =
                        quant::signed_range(self.cfg.quant.bits, self.cfg.quant.restricted);
                    w.iter().fold(0.0f32, |m, v| m.max(v.abs())) / qp as f32
                } else {
                    quant::lsq_init(&w, self.cfg.quant.bits)
                }
                .max(f32::MIN_POSITIVE);
            }
        }
        Ok(())
    }

    fn qvalue(&self, i: usize) -> f64 {
        f64::from(self.qparams[i].value.data()[0])
    }

    /// The step α and noise σ of layer `l`'s grid.
    fn alpha_sigma(&self, l: usize) -> (f64, f64) {
        let q = &self.quant[l];
        match (self.cfg.quant.method, q.first) {
            (QuantMethod::Lsq, Some(i)) => (self.qvalue(i), 0.0),
            (m, Some(i)) if m.is_categorical() => (self.qvalue(i).exp(), self.qvalue(i + 1).exp()),
            _ => (f64::from(q.scale), 0.0),
        }
    }

    fn gate_log_a(&self, l: usize) -> Option<Vec<f64>> {
        let first = self.quant[l].first?;
        self.cfg.quant.learn_bits.as_ref()?;
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
    fn eval_spec(&self, l: usize) -> Option<QuantSpec> {
        let q = &self.cfg.quant;
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

    /// Layer `l`'s training spec, Gumbel noise, and the gates with `∂K/∂log a` (CPQ learn_bits).
    #[allow(clippy::type_complexity)]
    fn train_spec(&mut self, l: usize) -> (Option<QuantSpec>, Option<D::Buf>, Option<Gates>) {
        let q = self.cfg.quant.clone();
        let Some(mut spec) = self.eval_spec(l) else {
            return (None, None, None);
        };
        let rng = self.rng();
        let step = self.pos.step;
        let mut gates = None;
        match q.method {
            QuantMethod::Proxquant => return (None, None, None), // trains the latent weights as is
            QuantMethod::Rq => {
                spec.mode = KernelMode::Relaxed;
                let k = 1usize << q.bits;
                let n = self.metas[self.weights[l]].value.len();
                let s = stream(StreamKind::Quant, (l as u32) << 16);
                let base = step * (n * k) as u64;
                let at = Counter {
                    seed: self.cfg.seed,
                    stream: s,
                    offset: base,
                };
                return (Some(spec), Some(self.dev.gumbel(at, n * k)), None);
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

    /// The model's forward pass over `n` rows `x`, each weight matrix replaced by its
    /// transform where there is one; returns every layer's activations.
    fn forward(&mut self, x: D::Buf, transformed: &[Option<D::Buf>], n: usize) -> Vec<D::Buf> {
        let params = with_transformed(&self.params, &self.weights, transformed);
        self.model.forward(&mut self.dev, &params, x, n)
    }

    /// The current minibatch's training forward: its labels, the activations of every layer
    /// (the last are the logits) and each weight matrix's quantization. Changes nothing; the
    /// epoch must have started.
    fn minibatch_forward(&mut self) -> MinibatchForward<D> {
        let bs = self.cfg.batch_size;
        let start = self.pos.batch as usize * bs;
        let rows: Vec<u32> = self.order[start..(start + bs).min(self.train.n)].to_vec();
        let n = rows.len();
        let layers = self.weights.len();
        let x = self.train.x(&mut self.dev, self.input_dim, &rows);
        let y = self.train.y(&mut self.dev, &rows);
        // Quantize every weight matrix.
        let mut qw: Vec<Option<D::Buf>> = Vec::with_capacity(layers);
        let mut backs = Vec::with_capacity(layers);
        for l in 0..layers {
            let (spec, noise, gates) = self.train_spec(l);
            match spec {
                Some(spec) => {
                    let QuantOut {
                        xhat,
                        gain,
                        dparams,
                    } = self
                        .dev
                        .quantize(&self.params[self.weights[l]], &spec, noise.as_ref());
                    qw.push(Some(xhat));
                    backs.push(Some(QuantBack {
                        gain,
                        dparams,
                        gates,
                    }));
                }
                None => {
                    qw.push(None);
                    backs.push(None);
                }
            }
        }
        let acts = self.forward(x, &qw, n);
        MinibatchForward {
            n,
            y,
            acts,
            qw,
            backs,
        }
    }

    /// The current minibatch's loss statistics and gradients (of the mean loss) with respect to
    /// every model parameter and every quantizer parameter, at the current state; changes
    /// nothing. The epoch must have started.
    fn minibatch_grads(&mut self) -> Result<MinibatchGrads<D>, TrainError> {
        let MinibatchForward {
            n,
            y,
            acts,
            qw,
            backs,
        } = self.minibatch_forward();
        let out = acts
            .last()
            .unwrap_or_else(|| unreachable!("a forward pass has an output"));
        let LossOut { d_output, stats } = self.loss.loss(&mut self.dev, out, &y, n);
        let params = with_transformed(&self.params, &self.weights, &qw);
        let mut grads = self
            .model
            .backward(&mut self.dev, &params, &acts, d_output, n);
        let mut qgrads: Vec<Tensor> = self
            .qparams
            .iter()
            .map(|p| Tensor::zeros(p.value.shape()))
            .collect();
        // Through each weight transform: ∂L/∂w = gain ⊙ ∂L/∂x̂, and its parameters' gradients
        // Σ ∂L/∂x̂ · ∂x̂/∂θ (the layers last to first, as the backward produced them).
        for l in (0..self.weights.len()).rev() {
            let Some(QuantBack {
                gain,
                dparams,
                gates,
            }) = &backs[l]
            else {
                continue;
            };
            let i = self.weights[l];
            if let Some(first) = self.quant[l].first {
                let nw = self.metas[i].value.len();
                let sums = self
                    .dev
                    .weighted_col_sums(&grads[i], Mat::new(dparams, nw, DPARAMS));
                let sums = self.dev.download(&sums)?;
                self.quant_grads(l, first, &sums, gates.as_ref(), &mut qgrads);
            }
            grads[i] = self.dev.mul(&grads[i], gain);
        }
        Ok(MinibatchGrads {
            n,
            stats,
            grads,
            qgrads,
        })
    }

    /// One minibatch. Returns the epoch's metrics when it completes the epoch.
    pub fn step(&mut self) -> Result<Option<EpochMetrics>, TrainError> {
        if self.finished() {
            return Ok(None);
        }
        if !self.epoch_started {
            self.start_epoch()?;
        }
        let MinibatchGrads {
            n,
            stats,
            grads,
            qgrads,
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
        let sums = self.dev.sums_of_squares(&grad_refs);
        let sums = self.dev.download(&sums)?;
        if let Some(i) = sums.iter().position(|v| !v.is_finite()) {
            let what = format!("gradient of model.{}", self.metas[i].name);
            return Err(diverged(what, f64::from(sums[i])));
        }
        if let Some(p) = qgrads.iter().position(|g| !g.all_finite()) {
            let what = format!("gradient of quant.{}", self.qparams[p].name);
            let bad = qgrads[p].data().iter().find(|v| !v.is_finite());
            return Err(diverged(what, bad.map_or(f64::NAN, |&v| f64::from(v))));
        }
        self.opt.step(&mut self.dev, &mut self.params, &grad_refs)?;
        if let Some(qopt) = &mut self.qopt {
            let mut bufs: Vec<Vec<f32>> = self
                .qparams
                .iter_mut()
                .map(|p| std::mem::take(p.value.data_vec_mut()))
                .collect();
            let grads: Vec<&Vec<f32>> = qgrads.iter().map(Tensor::data_vec).collect();
            let res = qopt.step(&mut Cpu, &mut bufs, &grads);
            for (p, b) in self.qparams.iter_mut().zip(bufs) {
                *p.value.data_vec_mut() = b;
            }
            res?;
            self.clamp_qparams();
        }
        if self.cfg.quant.method == QuantMethod::Proxquant {
            self.prox_step()?;
        }
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

    /// Keeps learned steps positive and finite (a step cannot cross zero).
    fn clamp_qparams(&mut self) {
        if self.cfg.quant.method == QuantMethod::Lsq {
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
        let q = &self.cfg.quant;
        let (alpha, sigma) = self.alpha_sigma(l);
        match q.method {
            QuantMethod::Lsq => {
                let nw = self.metas[self.weights[l]].value.len();
                let g = quant::lsq_grad_scale(nw, q.bits);
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
    fn prox_step(&mut self) -> Result<(), TrainError> {
        let q = self.cfg.quant.clone();
        let lambda = q.reg_rate * self.pos.epoch as f64;
        if lambda == 0.0 {
            return Ok(());
        }
        let threshold = (self.cfg.optimizer.lr() * lambda) as f32;
        let layers = self.quant.len();
        let scalars: Vec<ProxScalars> = (0..layers)
            .map(|l| ProxScalars::signed(q.bits, self.quant[l].scale, threshold))
            .collect();
        if !q.revised {
            for (l, s) in scalars.iter().enumerate() {
                self.dev
                    .prox_grid(&mut self.params[self.weights[l]], None, s);
            }
            return Ok(());
        }
        let (beta2, eps) = adam_precond(&self.cfg.optimizer)
            .ok_or_else(|| ConfigError::invalid("quant.revised", true, "needs adam or adamw"))?;
        revised_prox(
            &mut self.dev,
            &mut self.params,
            &self.weights,
            self.opt.as_ref(),
            &scalars,
            beta2,
            eps,
        )?;
        Ok(())
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
        let qtrain: Option<Vec<Vec<f32>>> = self.qopt.as_ref().map(|qopt| {
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
        });
        let out = f(self);
        self.params = train;
        if let Some(bufs) = qtrain {
            for (p, b) in self.qparams.iter_mut().zip(bufs) {
                *p.value.data_vec_mut() = b;
            }
        }
        out
    }

    fn evaluate(&mut self, train: bool) -> Result<(f64, f64), TrainError> {
        self.with_eval_point(|t| t.evaluate_here(train))
    }

    fn evaluate_here(&mut self, train: bool) -> Result<(f64, f64), TrainError> {
        let weights: Vec<Option<D::Buf>> = (0..self.weights.len())
            .map(|l| {
                self.eval_spec(l).map(|spec| {
                    self.dev
                        .quantize(&self.params[self.weights[l]], &spec, None)
                        .xhat
                })
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
        let q = self.cfg.quant.clone();
        let Some(spec) = self.eval_spec(l) else {
            return Ok(LayerView {
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
                },
            });
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
        };
        Ok(LayerView {
            weights,
            xhat,
            grid,
            levels,
            keep,
            stats,
        })
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
        for p in &self.qparams {
            c.put(
                format!("quant.{}", p.name),
                p.value.shape().to_vec(),
                p.value.data().to_vec(),
            );
        }
        let scalars = state::save_executor(&mut self.dev, self.opt.as_mut(), "optim.", &mut c)?;
        let qscalars = match &mut self.qopt {
            Some(qopt) => state::save_executor(&mut Cpu, qopt.as_mut(), "qoptim.", &mut c)?,
            None => BTreeMap::new(),
        };
        c.meta.insert("config".into(), json(&self.cfg));
        c.meta.insert("position".into(), json(&self.pos));
        c.meta.insert("optim_scalars".into(), json(&scalars));
        c.meta.insert("qoptim_scalars".into(), json(&qscalars));
        let scales: Vec<f32> = self.quant.iter().map(|q| q.scale).collect();
        c.meta.insert("quant_scales".into(), json(&scales));
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
        for p in &mut self.qparams {
            let data = c
                .take(&format!("quant.{}", p.name), p.value.len())
                .map_err(bad)?;
            p.value.data_mut().copy_from_slice(&data);
        }
        let parse = |key: &str| -> Result<serde_json::Value, TrainError> {
            let s = c
                .meta
                .get(key)
                .ok_or_else(|| bad(format!("no `{key}` metadata")))?;
            serde_json::from_str(s).map_err(|e| bad(format!("`{key}` metadata: {e}")))
        };
        let pos: Position = serde_json::from_value(parse("position")?)
            .map_err(|e| bad(format!("position: {e}")))?;
        self.check_position(&pos)
            .map_err(|e| bad(format!("position: {e}")))?;
        let scalars: BTreeMap<String, f64> = serde_json::from_value(parse("optim_scalars")?)
            .map_err(|e| bad(format!("optim_scalars: {e}")))?;
        let qscalars: BTreeMap<String, f64> = serde_json::from_value(parse("qoptim_scalars")?)
            .map_err(|e| bad(format!("qoptim_scalars: {e}")))?;
        let scales: Vec<f32> = serde_json::from_value(parse("quant_scales")?)
            .map_err(|e| bad(format!("quant_scales: {e}")))?;
        if scales.len() != self.quant.len() {
            return Err(bad("quant_scales: wrong number of layers".into()));
        }
        state::load_executor(&mut self.dev, self.opt.as_mut(), "optim.", &mut c, &scalars)
            .map_err(bad)?;
        if let Some(qopt) = &mut self.qopt {
            state::load_executor(&mut Cpu, qopt.as_mut(), "qoptim.", &mut c, &qscalars)
                .map_err(bad)?;
        }
        for (q, s) in self.quant.iter_mut().zip(scales) {
            q.scale = s;
        }
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

/// The optimizer of the quantizer's own parameters: the run's config without weight decay (which
/// would pull log-steps and gate logits toward 0 regardless of the loss) and without parameter
/// groups (they name the model's parameters).
fn quant_optimizer(cfg: &OptimizerConfig) -> OptimizerConfig {
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
fn check_revised_proxquant(cfg: &OptimizerConfig) -> Result<(), ConfigError> {
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
struct Gates {
    /// `z_j` (index j − 2).
    z: Vec<f64>,
    /// `∂z_j/∂log a_j`.
    dz: Vec<f64>,
    /// `log a_j`.
    log_a: Vec<f64>,
}

impl Gates {
    fn sample(log_a: &[f64], u: &[f64]) -> Self {
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
    fn grad_log_a(&self, dk: &[f64], lambda: f64) -> Vec<f64> {
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

/// The model's parameters with each weight matrix `weights[l]` replaced by `transformed[l]`
/// where there is one (the quantizer's output), as the forward and backward passes use them.
fn with_transformed<'a, B>(
    params: &'a [B],
    weights: &[usize],
    transformed: &'a [Option<B>],
) -> Vec<&'a B> {
    let mut out: Vec<&B> = params.iter().collect();
    for (&i, t) in weights.iter().zip(transformed) {
        if let Some(t) = t {
            out[i] = t;
        }
    }
    out
}

/// Revised ProxQuant's prox on each weight matrix (layer `l`: scalars
/// `scalars[l]`, parameter `weights[l]`) in the metric of the optimizer's own second moment: the threshold
/// `ηλ / (√v̂ + ε)` with `v̂ = v / (1 − β2ᵗ)` per coordinate (ProxGen).
fn revised_prox<D: Device>(
    dev: &mut D,
    params: &mut [D::Buf],
    weights: &[usize],
    opt: &dyn Executor<D>,
    scalars: &[ProxScalars],
    beta2: f64,
    eps: f64,
) -> Result<(), ConfigError> {
    for (&i, s) in weights.iter().zip(scalars) {
        let moment = opt
            .second_moment(i)
            .ok_or_else(|| ConfigError::invalid("quant.revised", true, "needs adam or adamw"))?;
        let s = ProxScalars {
            bias_correction2: (1.0 - beta2.powf(moment.step as f64)) as f32,
            eps: eps as f32,
            ..*s
        };
        dev.prox_grid(&mut params[i], Some(moment.v), &s);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
