//! The Quantization view: an MLP trained live on the CPU with core's trainer, each weight matrix
//! passing through a quantizer (STE, LSQ, RQ, SRQ, CPQ with DropBits and learned bit-widths,
//! ProxQuant). It draws what spec `quant_align_prune.md` ("Quantization-grid visualisation")
//! asks for: the histogram of the full-precision weights with bin width α/8, coloured by the grid
//! point each weight is assigned to, solid lines at the grid points coloured by bit level (grey
//! without DropBits), dashed lines at the cell boundaries, `near_frac(0.1)` and `mse` in the title;
//! below, `near_frac` over training and the train/test accuracy per epoch.

use egui::{Color32, RichText, Stroke};
use egui_plot::{Bar, BarChart, HLine, Legend, Line, LineStyle, Plot, VLine};
use optiscope_core::data::Dataset;
use optiscope_core::device::quant::categorical::MAX_BITS;
use optiscope_core::device::Cpu;
use optiscope_core::optim::METHODS;
use optiscope_core::quant::{LearnBitsConfig, QuantConfig, QuantMethod};
use optiscope_core::train::{
    DataChoice, EpochMetrics, LayerView, TrainConfig, TrainError, Trainer,
};
use web_time::Instant;

use super::run_color;
use crate::state::{dropbits_on, set_dropbits};

/// The histogram never has more bins than this (a tiny α on wide weights would otherwise ask for
/// millions); when it would, the bins widen and the title says so.
pub const MAX_BINS: usize = 600;

/// Points of the `near_frac` curve per epoch.
const RECORDS_PER_EPOCH: u64 = 4;

/// A live training run and what the view plots of it.
pub struct QuantRun {
    trainer: Trainer<Cpu>,
    /// Metrics of every finished epoch.
    epochs: Vec<EpochMetrics>,
    /// `(epoch, near_frac per layer)`, the epoch fractional between epoch ends.
    near: Vec<(f64, Vec<f64>)>,
    /// Record `near_frac` every this many minibatches (and at every epoch end).
    record_every: u64,
    /// The step a link asked for: the run steps there over the next frames.
    target: u64,
    /// The layer view last drawn: (step, layer, view).
    view: Option<(u64, usize, LayerView)>,
    /// Training and test rows.
    rows: (usize, usize),
    /// The summary last made: (step, text).
    summary: Option<(u64, String)>,
    /// Why the run stopped early (a diverged loss or gradient, a device error): it is not stepped
    /// again and stays at its last finite state.
    stopped: Option<String>,
}

impl QuantRun {
    /// A fresh run of `cfg` on `data` (its `(train, test)` split), to be stepped to `target`.
    pub fn new(
        cfg: &TrainConfig,
        data: &(Dataset, Dataset),
        target: u64,
    ) -> Result<Self, TrainError> {
        let (train, test) = data;
        let mut trainer = Trainer::new(cfg.clone(), train, test, Cpu)?;
        let record_every = trainer
            .batches_per_epoch()
            .div_ceil(RECORDS_PER_EPOCH)
            .max(1);
        let first = (0..trainer.layers())
            .map(|l| trainer.layer_view(l).map(|v| v.stats.near_frac))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            trainer,
            epochs: vec![],
            near: vec![(0.0, first)],
            record_every,
            target,
            view: None,
            rows: (train.len(), test.len()),
            summary: None,
            stopped: None,
        })
    }

    /// Minibatches taken.
    pub fn steps(&self) -> u64 {
        self.trainer.steps()
    }

    /// The step a link of this run should reopen at: the steps taken, or the step being restored.
    pub fn link_step(&self) -> u64 {
        self.steps().max(self.target)
    }

    /// Whether the run is still stepping toward the step a link asked for.
    pub fn restoring(&self) -> bool {
        self.steps() < self.target && !self.finished()
    }

    /// Gives up on reaching the link's step (after an error).
    pub fn stop_restoring(&mut self) {
        self.target = self.steps();
    }

    /// Whether the run takes no more steps: every configured epoch is done, or it stopped early.
    pub fn finished(&self) -> bool {
        self.trainer.finished() || self.stopped.is_some()
    }

    /// Why the run stopped before its last epoch, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// The resolved config.
    pub fn config(&self) -> &TrainConfig {
        self.trainer.config()
    }

    /// `completed / configured` epochs.
    pub fn epoch_label(&self) -> String {
        format!(
            "{} / {}",
            self.trainer.epoch(),
            self.trainer.config().epochs
        )
    }

    /// Metrics of the finished epochs.
    pub fn epochs(&self) -> &[EpochMetrics] {
        &self.epochs
    }

    /// Allows more (or fewer) epochs without retraining: the run so far does not depend on it.
    pub fn set_epochs(&mut self, epochs: u64) {
        self.trainer.set_epochs(epochs);
        self.summary = None;
    }

    /// One minibatch (nothing once finished); records `near_frac` and the epoch's metrics. An
    /// error stops the run for good ([`QuantRun::stopped`]): it is returned once, and the run
    /// takes no further steps.
    pub fn step(&mut self) -> Result<(), TrainError> {
        if self.finished() {
            return Ok(());
        }
        let metrics = match self.trainer.step() {
            Ok(m) => m,
            Err(e) => {
                self.stopped = Some(format!("stopped at step {}: {e}", self.steps()));
                self.summary = None;
                return Err(e);
            }
        };
        let bpe = self.trainer.batches_per_epoch() as f64;
        let x = self.trainer.steps() as f64 / bpe;
        if let Some(m) = metrics {
            self.near.push((
                m.epoch as f64,
                m.layers.iter().map(|s| s.near_frac).collect(),
            ));
            self.epochs.push(m);
        } else if self.trainer.steps() % self.record_every == 0 {
            let near = (0..self.trainer.layers())
                .map(|l| self.trainer.layer_view(l).map(|v| v.stats.near_frac))
                .collect::<Result<Vec<_>, _>>()?;
            self.near.push((x, near));
        }
        Ok(())
    }

    /// Steps toward the link's step for at most `budget_secs` (unbounded: `f64::INFINITY`);
    /// returns the steps taken.
    pub fn catch_up(&mut self, budget_secs: f64) -> Result<u64, TrainError> {
        let start = Instant::now();
        let mut taken = 0;
        while self.restoring() && start.elapsed().as_secs_f64() < budget_secs {
            self.step()?;
            taken += 1;
        }
        Ok(taken)
    }

    /// Weight matrix `layer` as drawn (recomputed when the run has moved).
    pub fn layer_view(&mut self, layer: usize) -> Result<&LayerView, TrainError> {
        let layer = layer.min(self.trainer.layers() - 1);
        let step = self.steps();
        if !matches!(&self.view, Some((s, l, _)) if *s == step && *l == layer) {
            self.view = Some((step, layer, self.trainer.layer_view(layer)?));
        }
        match &self.view {
            Some((_, _, v)) => Ok(v),
            None => unreachable!("set just above"),
        }
    }

    /// A one-line summary for the page's status (tests compare it between a run and its link).
    pub fn summary(&mut self) -> String {
        let step = self.steps();
        if let Some((at, s)) = &self.summary {
            if *at == step {
                return s.clone();
            }
        }
        let mut s = format!(
            "epoch {}/{}",
            self.trainer.epoch(),
            self.trainer.config().epochs
        );
        if let Some(why) = &self.stopped {
            s.push_str(&format!(" {why};"));
        }
        if let Some(m) = self.epochs.last() {
            s.push_str(&format!(
                " test_accuracy={:.4} train_loss={:.6}",
                m.test_accuracy, m.train_loss
            ));
        }
        for l in 0..self.trainer.layers() {
            if let Ok(v) = self.trainer.layer_view(l) {
                s.push_str(&format!(
                    " layer{}: bits={} alpha={:.6} near_frac={:.4} mse={:.4e}",
                    l + 1,
                    v.stats.bits,
                    v.stats.alpha,
                    v.stats.near_frac,
                    v.stats.mse
                ));
            }
        }
        self.summary = Some((step, s.clone()));
        s
    }

    /// The epoch metrics as CSV: one row per epoch, the quantization statistics per layer.
    pub fn metrics_csv(&self) -> String {
        let layers = self.trainer.layers();
        let mut out = String::from("epoch,train_loss,train_accuracy,test_loss,test_accuracy");
        for l in 1..=layers {
            out.push_str(&format!(
                ",layer{l}_bits,layer{l}_alpha,layer{l}_near_frac,layer{l}_mse"
            ));
        }
        out.push('\n');
        for m in &self.epochs {
            out.push_str(&format!(
                "{},{},{},{},{}",
                m.epoch, m.train_loss, m.train_accuracy, m.test_loss, m.test_accuracy
            ));
            for s in &m.layers {
                out.push_str(&format!(
                    ",{},{},{},{}",
                    s.bits, s.alpha, s.near_frac, s.mse
                ));
            }
            out.push('\n');
        }
        out
    }
}

/// The histogram of one weight matrix: bins of width α/8 centred on multiples of the bin width
/// (so every grid point is a bin centre), each bin's count split by the assigned grid point.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Bin width.
    pub bin: f64,
    /// Index of the first bin: bin `i` is centred at `(first + i)·bin`.
    pub first: i64,
    /// Per bin, the count of weights assigned to each grid point (one class without a grid).
    pub counts: Vec<Vec<u32>>,
    /// Whether the bins were widened beyond α/8 to stay under [`MAX_BINS`].
    pub widened: bool,
    /// The x range drawn: the grid ± α (widened to every weight).
    pub range: (f64, f64),
}

/// Bins `view`'s full-precision weights (spec: bin width α/8 over `[g_min − α, g_max + α]`).
pub fn histogram(view: &LayerView) -> Histogram {
    let (wmin, wmax) = view
        .weights
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &w| {
            (lo.min(f64::from(w)), hi.max(f64::from(w)))
        });
    let (wmin, wmax) = if wmin <= wmax {
        (wmin, wmax)
    } else {
        (0.0, 0.0)
    };
    let alpha = view.stats.alpha;
    let gridded = !view.grid.is_empty() && alpha > 0.0;
    let (mut lo, mut hi) = if gridded {
        let g0 = f64::from(view.grid[0]);
        let g1 = f64::from(view.grid[view.grid.len() - 1]);
        (g0 - alpha, g1 + alpha)
    } else {
        (wmin, wmax)
    };
    lo = lo.min(wmin);
    hi = hi.max(wmax);
    let span = (hi - lo).max(1e-6);
    let mut bin = if gridded { alpha / 8.0 } else { span / 64.0 };
    let widened = span / bin > MAX_BINS as f64;
    if widened {
        bin = span / MAX_BINS as f64;
    }
    let first = (lo / bin).round() as i64;
    let last = (hi / bin).round() as i64;
    let classes = if gridded { view.grid.len() } else { 1 };
    let mut counts = vec![vec![0u32; classes]; (last - first + 1) as usize];
    let kmin = if gridded {
        (f64::from(view.grid[0]) / alpha).round() as i64
    } else {
        0
    };
    for (&w, &xhat) in view.weights.iter().zip(&view.xhat) {
        let i = ((f64::from(w) / bin).round() as i64 - first).clamp(0, last - first) as usize;
        let k = if gridded {
            ((f64::from(xhat) / alpha).round() as i64 - kmin).clamp(0, classes as i64 - 1) as usize
        } else {
            0
        };
        counts[i][k] += 1;
    }
    Histogram {
        bin,
        first,
        counts,
        widened,
        range: (lo, hi),
    }
}

/// The fill of weights assigned to grid point `k` of `n`: a rainbow from red (the most negative
/// point) to violet (the most positive), so neighbouring cells differ and order reads at a glance.
pub fn assigned_color(k: usize, n: usize) -> Color32 {
    let hue = 0.78 * k as f32 / (n.max(2) - 1) as f32;
    egui::ecolor::Hsva::new(hue, 0.5, 0.9, 0.85).into()
}

/// The line colour of bit level `level` (1 = the coarsest, 1-bit sub-grid).
pub fn level_color(level: u32) -> Color32 {
    const LEVELS: [Color32; MAX_BITS as usize] = [
        Color32::from_rgb(255, 80, 80),
        Color32::from_rgb(255, 190, 40),
        Color32::from_rgb(60, 200, 255),
        Color32::from_rgb(200, 120, 255),
    ];
    LEVELS[(level.max(1) as usize - 1) % LEVELS.len()]
}

/// What the controls asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum QuantAction {
    /// Train this config from step 0.
    Retrain(Box<TrainConfig>),
    /// Change the number of epochs and keep training.
    SetEpochs(u64),
}

/// The largest bit-width `method` takes (2..=4 for the categorical methods, 2..=8 otherwise).
pub fn max_bits(method: QuantMethod) -> u32 {
    if method.is_categorical() {
        MAX_BITS
    } else {
        8
    }
}

/// The quantizer of `method`, keeping `bits` where it is allowed.
fn fresh_quant(method: QuantMethod, bits: u32) -> QuantConfig {
    QuantConfig::new(method, bits.clamp(2, max_bits(method)))
}

/// The left panel of the view: data, model, quantizer, optimizer, epochs, seed. Returns what
/// changed; `None` when nothing did.
pub fn controls_ui(
    ui: &mut egui::Ui,
    cfg: &TrainConfig,
    run: Option<&QuantRun>,
) -> Option<QuantAction> {
    let mut c = cfg.clone();
    let mut epochs = cfg.epochs;
    let error_id = egui::Id::unique("quant-optimizer-error");
    ui.label(
        "An MLP trains live on the CPU; its weight matrices pass through the quantizer on the way \
         forward. Every change but the epochs trains it again from step 0.",
    );
    ui.add_space(4.0);
    egui::Grid::new("quant-controls")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            ui.label("data");
            egui::ComboBox::from_id_salt("quant-data")
                .selected_text(c.data.name())
                .show_ui(ui, |ui| {
                    for &d in DataChoice::ALL {
                        ui.selectable_value(&mut c.data, d, d.name())
                            .on_hover_text(d.summary());
                    }
                });
            ui.end_row();

            ui.label("hidden layers");
            let mut layers = c.hidden.len();
            let mut width = c.hidden.first().copied().unwrap_or(32);
            ui.add(egui::DragValue::new(&mut layers).range(0..=3));
            ui.end_row();
            ui.label("hidden width");
            ui.add_enabled(layers > 0, egui::DragValue::new(&mut width).range(1..=512));
            ui.end_row();
            if layers != c.hidden.len() || c.hidden.first().is_some_and(|&w| w != width) {
                c.hidden = vec![width; layers];
            }

            ui.label("quantizer");
            let mut method = c.quant.method;
            egui::ComboBox::from_id_salt("quant-method")
                .selected_text(method.name())
                .show_ui(ui, |ui| {
                    for &m in QuantMethod::ALL {
                        ui.selectable_value(&mut method, m, m.name())
                            .on_hover_text(m.summary());
                    }
                });
            if method != c.quant.method {
                c.quant = fresh_quant(method, c.quant.bits);
            }
            ui.end_row();

            ui.label("bits");
            let mut bits = c.quant.bits;
            ui.add_enabled(
                method != QuantMethod::None,
                egui::Slider::new(&mut bits, 2..=max_bits(method)),
            );
            if bits != c.quant.bits {
                c.quant.bits = bits;
            }
            ui.end_row();

            let can_drop = matches!(method, QuantMethod::Srq | QuantMethod::Cpq);
            let mut drop = dropbits_on(&c.quant);
            ui.add_enabled(can_drop, egui::Checkbox::new(&mut drop, "DropBits"))
                .on_hover_text(
                    "Drops the finer bit levels at random while training (SRQ, CPQ): level j of b \
                     with probability p^(b−j+1)",
                );
            let mut p = c.quant.dropbits.as_ref().map_or(0.3, |d| d.p);
            if p <= 0.0 {
                p = 0.3;
            }
            let p_changed = ui
                .add_enabled(
                    can_drop && drop,
                    egui::Slider::new(&mut p, 0.05..=0.95).text("p"),
                )
                .changed();
            if can_drop && (drop != dropbits_on(&c.quant) || p_changed) {
                set_dropbits(&mut c.quant, if drop { p } else { 0.0 });
            }
            ui.end_row();

            let mut learn = c.quant.learn_bits.is_some();
            ui.add_enabled(
                method == QuantMethod::Cpq,
                egui::Checkbox::new(&mut learn, "learn bits"),
            )
            .on_hover_text(
                "CPQ: hard-concrete gates on the bit levels learn each layer's bit-width, with a \
                 penalty λ per open level",
            );
            let mut lambda = c
                .quant
                .learn_bits
                .as_ref()
                .map_or(LearnBitsConfig::default().lambda, |l| l.lambda);
            let lambda_changed = ui
                .add_enabled(
                    learn,
                    egui::DragValue::new(&mut lambda)
                        .range(0.0..=10.0)
                        .speed(1e-4)
                        .max_decimals(5)
                        .prefix("λ "),
                )
                .changed();
            if learn != c.quant.learn_bits.is_some() || lambda_changed {
                c.quant.learn_bits = learn.then(|| LearnBitsConfig {
                    lambda,
                    ..LearnBitsConfig::default()
                });
            }
            ui.end_row();

            ui.label("batch size");
            ui.add(egui::DragValue::new(&mut c.batch_size).range(1..=1024));
            ui.end_row();
            ui.label("epochs");
            ui.add(egui::DragValue::new(&mut epochs).range(1..=100_000));
            ui.end_row();
            ui.label("seed");
            ui.add(egui::DragValue::new(&mut c.seed));
            ui.end_row();

            ui.label("optimizer");
            let mut name = c.optimizer.name().to_string();
            egui::ComboBox::from_id_salt("quant-optimizer")
                .selected_text(&name)
                .show_ui(ui, |ui| {
                    for m in METHODS {
                        ui.selectable_value(&mut name, m.name.to_string(), m.name)
                            .on_hover_text(m.summary);
                    }
                });
            if name != c.optimizer.name() {
                if let Some(o) = super::runs::fresh_config(&name, c.optimizer.lr()) {
                    c.optimizer = o;
                }
            }
            ui.end_row();
        });
    egui::CollapsingHeader::new(format!("{} fields", c.optimizer.name()))
        .id_salt("quant-optimizer-fields")
        .show(ui, |ui| {
            if let Some(o) = super::runs::config_fields_ui(ui, usize::MAX, &c.optimizer, error_id) {
                c.optimizer = o;
            }
        });
    if let Some(err) = ui.ctx().data(|d| d.get_temp::<String>(error_id)) {
        ui.colored_label(Color32::from_rgb(255, 120, 120), err);
    }
    if let Some(run) = run {
        ui.add_space(6.0);
        let widths: Vec<String> = model_widths(run).iter().map(ToString::to_string).collect();
        ui.weak(format!(
            "model {} · {} train / {} test rows · {} minibatches per epoch",
            widths.join(" → "),
            run.rows.0,
            run.rows.1,
            run.trainer.batches_per_epoch()
        ));
    }
    if c != *cfg {
        c.epochs = epochs;
        return Some(QuantAction::Retrain(Box::new(c)));
    }
    (epochs != cfg.epochs).then_some(QuantAction::SetEpochs(epochs))
}

fn model_widths(run: &QuantRun) -> Vec<usize> {
    run.trainer.widths().to_vec()
}

/// Draws the view: the header, the layer selector, the weights on the grid, and the two curves.
/// `layer` is the weight matrix shown (changed by the selector).
pub fn quant_ui(ui: &mut egui::Ui, run: &mut QuantRun, layer: &mut usize) {
    let layers = run.trainer.layers();
    *layer = (*layer).min(layers - 1);
    let widths = model_widths(run);
    let cfg = run.config().clone();
    ui.horizontal_wrapped(|ui| {
        ui.label(
            RichText::new(format!(
                "{} on {} · epoch {} / {} · step {}",
                cfg.quant.label(),
                cfg.data.name(),
                run.trainer.epoch(),
                cfg.epochs,
                run.steps()
            ))
            .strong(),
        );
        if let Some(m) = run.epochs.last() {
            ui.separator();
            ui.label(format!(
                "test accuracy {:.1} %{} · train {:.1} %",
                100.0 * m.test_accuracy,
                if cfg.quant.method == QuantMethod::None {
                    ""
                } else {
                    " (hard-quantized weights)"
                },
                100.0 * m.train_accuracy
            ));
        }
        if run.restoring() {
            ui.separator();
            ui.colored_label(
                Color32::from_rgb(255, 190, 40),
                format!("replaying the link: step {} of {}", run.steps(), run.target),
            );
        } else if run.finished() {
            ui.separator();
            ui.label("finished (raise the epochs to go on)");
        }
    });
    ui.horizontal_wrapped(|ui| {
        ui.label("weight matrix:");
        for l in 0..layers {
            ui.selectable_value(
                layer,
                l,
                format!("layer {} ({} → {})", l + 1, widths[l], widths[l + 1]),
            );
        }
    });
    let view = match run.layer_view(*layer) {
        Ok(v) => v.clone(),
        Err(e) => {
            ui.colored_label(Color32::from_rgb(255, 120, 120), e.to_string());
            return;
        }
    };
    let hist = histogram(&view);
    let s = &view.stats;
    let title = if view.grid.is_empty() {
        format!(
            "layer {}: full precision, {} weights (bin width {:.3e})",
            *layer + 1,
            view.weights.len(),
            hist.bin
        )
    } else {
        let learned = if cfg.quant.learn_bits.is_some() {
            format!(" (learned, of {})", cfg.quant.bits)
        } else {
            String::new()
        };
        format!(
            "layer {}: {}-bit{learned} · α = {:.4} · near_frac(0.1) = {:.3} · mse = {:.3e} · {} \
             weights, bins α/{}",
            *layer + 1,
            s.bits,
            s.alpha,
            s.near_frac,
            s.mse,
            view.weights.len(),
            if hist.widened {
                format!("{:.2}", s.alpha / hist.bin)
            } else {
                "8".into()
            }
        )
    };
    ui.label(RichText::new(title).strong());
    let leveled =
        !view.grid.is_empty() && (dropbits_on(&cfg.quant) || cfg.quant.learn_bits.is_some());
    ui.weak(if view.grid.is_empty() {
        "The full-precision weights (no quantizer).".to_string()
    } else if leveled {
        "Bars: the full-precision weights, coloured by the grid point each one is assigned to. \
         Solid lines: grid points, coloured by bit level (level 1 = the coarsest sub-grid; dotted: \
         a level the learned bit-width turned off). Dashed: cell boundaries."
            .to_string()
    } else {
        "Bars: the full-precision weights, coloured by the grid point each one is assigned to. \
         Solid lines: grid points. Dashed: cell boundaries."
            .to_string()
    });
    let total = ui.available_height();
    let hist_height = (total * 0.58).max(160.0);
    weights_plot_ui(ui, &view, &hist, *layer, leveled, hist_height);
    let curve_height = (ui.available_height() - 8.0).max(120.0);
    let full_precision = cfg.quant.method == QuantMethod::None;
    ui.columns(2, |cols| {
        if full_precision {
            cols[0].label("near_frac(0.1): no grid in full precision.");
        } else {
            near_frac_plot_ui(&mut cols[0], &run.near, layers, curve_height);
        }
        accuracy_plot_ui(&mut cols[1], &run.epochs, full_precision, curve_height);
    });
}

fn weights_plot_ui(
    ui: &mut egui::Ui,
    view: &LayerView,
    hist: &Histogram,
    layer: usize,
    leveled: bool,
    height: f32,
) {
    let alpha = view.stats.alpha;
    let classes = hist.counts.first().map_or(0, Vec::len);
    let mut bars: Vec<Vec<Bar>> = vec![vec![]; classes];
    for (i, row) in hist.counts.iter().enumerate() {
        let x = (hist.first + i as i64) as f64 * hist.bin;
        let mut base = 0.0;
        for (k, &count) in row.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let fill = if view.grid.is_empty() {
                Color32::from_rgb(120, 170, 230)
            } else {
                assigned_color(k, classes)
            };
            bars[k].push(
                Bar::new(x, f64::from(count))
                    .base_offset(base)
                    .width(hist.bin)
                    .fill(fill)
                    .stroke(Stroke::new(0.5, fill.gamma_multiply(0.6)))
                    .name(match view.grid.get(k) {
                        Some(g) => format!("→ grid point {g:.4}"),
                        None => String::new(),
                    }),
            );
            base += f64::from(count);
        }
    }
    let all_same_level = !leveled;
    Plot::new(("quant-weights", layer))
        .height(height)
        .legend(Legend::default())
        .include_y(0.0)
        .include_x(hist.range.0)
        .include_x(hist.range.1)
        .x_axis_label("weight value")
        .y_axis_label("weights per bin")
        .show_grid([false, true])
        .allow_scroll(false)
        .show(ui, |plot| {
            for (k, b) in bars.into_iter().enumerate() {
                if b.is_empty() {
                    continue;
                }
                let name = if view.grid.is_empty() {
                    "weights"
                } else {
                    "weights (colour: assigned grid point)"
                };
                plot.bar_chart(
                    BarChart::new(name, b)
                        .color(if view.grid.is_empty() {
                            Color32::from_rgb(120, 170, 230)
                        } else {
                            assigned_color(k, classes)
                        })
                        .element_formatter(Box::new(|bar: &Bar, _| {
                            format!(
                                "w ≈ {:.4}\n{} weights {}",
                                bar.argument, bar.value, bar.name
                            )
                        })),
                );
            }
            if view.grid.is_empty() {
                return;
            }
            for (i, g) in view.grid.iter().enumerate() {
                let g = f64::from(*g);
                plot.vline(
                    VLine::new("cell boundary", g - alpha / 2.0)
                        .color(Color32::from_gray(140))
                        .style(LineStyle::dashed_loose())
                        .width(1.0),
                );
                if i + 1 == view.grid.len() {
                    plot.vline(
                        VLine::new("cell boundary", g + alpha / 2.0)
                            .color(Color32::from_gray(140))
                            .style(LineStyle::dashed_loose())
                            .width(1.0),
                    );
                }
            }
            for (i, g) in view.grid.iter().enumerate() {
                let level = view.levels.get(i).copied().unwrap_or(1);
                let kept = view.keep.get(level as usize - 1).is_none_or(|&k| k > 0.0);
                let (name, color) = if all_same_level {
                    ("grid point".to_string(), Color32::from_gray(170))
                } else {
                    (format!("grid point, bit level {level}"), level_color(level))
                };
                let line = VLine::new(name, f64::from(*g)).color(color).width(2.0);
                plot.vline(if kept {
                    line
                } else {
                    line.style(LineStyle::dotted_loose()).width(1.5)
                });
            }
        });
}

fn near_frac_plot_ui(ui: &mut egui::Ui, near: &[(f64, Vec<f64>)], layers: usize, height: f32) {
    ui.label("near_frac(0.1) over training: the share of weights within 0.1·α of their grid point");
    Plot::new("quant-near-frac")
        .height(height)
        .legend(Legend::default())
        .include_y(0.0)
        .include_y(0.5)
        .include_x(0.0)
        .x_axis_label("epoch")
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.hline(
                HLine::new("uniform weights (0.2)", 0.2)
                    .color(Color32::GRAY)
                    .style(LineStyle::dashed_loose()),
            );
            for l in 0..layers {
                let pts: Vec<[f64; 2]> = near
                    .iter()
                    .filter_map(|(x, v)| v.get(l).map(|n| [*x, *n]))
                    .collect();
                plot.line(
                    Line::new(format!("layer {}", l + 1), pts)
                        .color(run_color(l))
                        .width(1.5),
                );
            }
        });
}

fn accuracy_plot_ui(ui: &mut egui::Ui, epochs: &[EpochMetrics], full_precision: bool, height: f32) {
    ui.label(if full_precision {
        "accuracy per epoch: train (training forward) and test"
    } else {
        "accuracy per epoch: train (training forward) and test (hard-quantized weights)"
    });
    Plot::new("quant-accuracy")
        .height(height)
        .legend(Legend::default())
        .include_y(0.0)
        .include_y(1.0)
        .include_x(0.0)
        .x_axis_label("epoch")
        .allow_scroll(false)
        .show(ui, |plot| {
            let train: Vec<[f64; 2]> = epochs
                .iter()
                .map(|m| [m.epoch as f64, m.train_accuracy])
                .collect();
            let test: Vec<[f64; 2]> = epochs
                .iter()
                .map(|m| [m.epoch as f64, m.test_accuracy])
                .collect();
            plot.line(
                Line::new("train", train)
                    .color(Color32::from_rgb(0, 200, 255))
                    .width(1.5),
            );
            plot.line(
                Line::new("test", test)
                    .color(Color32::from_rgb(255, 165, 0))
                    .width(1.5),
            );
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::default_quant_train;

    fn data(cfg: &TrainConfig) -> (Dataset, Dataset) {
        cfg.data.load(cfg.test_fraction, cfg.split_seed)
    }

    #[test]
    fn histogram_bins_are_an_eighth_of_alpha_centred_on_the_grid() {
        let cfg = default_quant_train();
        let mut run = QuantRun::new(&cfg, &data(&cfg), 0).unwrap();
        for _ in 0..30 {
            run.step().unwrap();
        }
        let view = run.layer_view(0).unwrap().clone();
        let h = histogram(&view);
        assert!(!h.widened);
        assert!((h.bin - view.stats.alpha / 8.0).abs() < 1e-12);
        let total: u32 = h.counts.iter().flatten().sum();
        assert_eq!(total as usize, view.weights.len());
        // Every grid point is a bin centre.
        for g in &view.grid {
            let i = f64::from(*g) / h.bin;
            assert!((i - i.round()).abs() < 1e-4, "{g} is not a bin centre");
        }
        // The range covers the grid ± α.
        let a = view.stats.alpha;
        assert!(h.range.0 <= f64::from(view.grid[0]) - a + 1e-9);
        assert!(h.range.1 >= f64::from(*view.grid.last().unwrap()) + a - 1e-9);
        assert_eq!(h.counts[0].len(), view.grid.len());
    }

    #[test]
    fn histogram_without_a_grid_has_one_class() {
        let view = LayerView {
            weights: vec![-1.0, 0.0, 0.5, 1.0],
            xhat: vec![-1.0, 0.0, 0.5, 1.0],
            grid: vec![],
            levels: vec![],
            keep: vec![],
            stats: optiscope_core::train::LayerStats {
                bits: 32,
                alpha: 0.0,
                near_frac: 1.0,
                mse: 0.0,
            },
        };
        let h = histogram(&view);
        assert!(h.counts.iter().all(|c| c.len() == 1));
        assert_eq!(h.counts.iter().flatten().sum::<u32>(), 4);
    }

    #[test]
    fn a_run_records_near_frac_and_epochs_and_replays_to_the_same_numbers() {
        let mut cfg = default_quant_train();
        cfg.data = DataChoice::Moons;
        cfg.epochs = 3;
        let d = data(&cfg);
        let mut a = QuantRun::new(&cfg, &d, 0).unwrap();
        let bpe = a.trainer.batches_per_epoch();
        while !a.finished() {
            a.step().unwrap();
        }
        assert_eq!(a.steps(), 3 * bpe);
        assert_eq!(a.epochs().len(), 3);
        assert!(a.near.len() > 3, "{} near_frac records", a.near.len());
        assert!(a.metrics_csv().lines().count() == 4);
        let mut b = QuantRun::new(&cfg, &d, 2 * bpe + 1).unwrap();
        assert!(b.restoring());
        b.catch_up(f64::INFINITY).unwrap();
        assert_eq!(b.steps(), 2 * bpe + 1);
        assert_eq!(b.epochs(), &a.epochs()[..2]);
        while !b.finished() {
            b.step().unwrap();
        }
        assert_eq!(a.summary(), b.summary());
    }

    /// A run whose loss stops being finite stops for good at its last finite state: the error
    /// is returned once, the summary says why, and further steps change nothing.
    #[test]
    fn a_diverging_run_stops_and_refuses_further_steps() {
        let mut cfg = default_quant_train();
        cfg.optimizer = serde_json::from_str(r#"{"name": "sgd", "lr": 1e30}"#).unwrap();
        let mut run = QuantRun::new(&cfg, &data(&cfg), 0).unwrap();
        let err = loop {
            if let Err(e) = run.step() {
                break e;
            }
            assert!(run.steps() < 50, "no divergence in 50 steps");
        };
        assert!(matches!(err, TrainError::Diverged { .. }), "{err}");
        let at = run.steps();
        assert!(run.finished());
        assert!(run.stopped().is_some_and(|m| m.contains("became")));
        let before = run.layer_view(0).unwrap().weights.clone();
        assert!(
            before.iter().all(|w| w.is_finite()),
            "left at a non-finite state"
        );
        for _ in 0..3 {
            run.step().unwrap();
        }
        assert_eq!(run.steps(), at);
        assert_eq!(run.layer_view(0).unwrap().weights, before);
        assert!(
            run.summary().contains("stopped at step"),
            "{}",
            run.summary()
        );
    }

    #[test]
    fn every_quantizer_trains_a_few_steps() {
        for &method in QuantMethod::ALL {
            let mut cfg = default_quant_train();
            cfg.data = DataChoice::Spirals;
            cfg.quant = fresh_quant(method, 3);
            let mut run = QuantRun::new(&cfg, &data(&cfg), 0).unwrap();
            for _ in 0..5 {
                run.step().unwrap();
            }
            let v = run.layer_view(1).unwrap();
            assert_eq!(
                v.grid.is_empty(),
                method == QuantMethod::None,
                "{}",
                method.name()
            );
        }
    }
}
