//! The Quantization lab's run: an MLP trained live on the CPU with core's trainer, each weight
//! matrix passing through a quantizer, with what the plots need recorded as it goes
//! (`near_frac` over training, the metrics of every epoch, the layer view last drawn).

use optiscope_core::data::Dataset;
use optiscope_core::device::Cpu;
use optiscope_core::train::{EpochMetrics, LayerView, TrainConfig, TrainError, Trainer};
use web_time::Instant;

/// Points of the `near_frac` curve per epoch.
const RECORDS_PER_EPOCH: u64 = 4;

/// A live training run and what the view plots of it.
pub struct QuantRun {
    pub(super) trainer: Trainer<Cpu>,
    /// Metrics of every finished epoch.
    pub(super) epochs: Vec<EpochMetrics>,
    /// `(epoch, near_frac per layer)`, the epoch fractional between epoch ends.
    pub(super) near: Vec<(f64, Vec<f64>)>,
    /// `(epoch, share of exact zeros per layer)` at the same points (ProxGen's sparsity).
    pub(super) zeros: Vec<(f64, Vec<f64>)>,
    /// Record `near_frac` and the zeros every this many minibatches (and at every epoch end).
    record_every: u64,
    /// The step a link asked for: the run steps there over the next frames.
    pub(super) target: u64,
    /// The layer view last drawn: (step, layer, view).
    view: Option<(u64, usize, LayerView)>,
    /// Training and test rows.
    pub(super) rows: (usize, usize),
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
            .map(|l| trainer.layer_view(l).map(|v| v.stats.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            trainer,
            epochs: vec![],
            near: vec![(0.0, first.iter().map(|s| s.near_frac).collect())],
            zeros: vec![(0.0, first.iter().map(|s| s.sparsity).collect())],
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

    /// The model's layer widths, input first.
    pub fn widths(&self) -> Vec<usize> {
        self.trainer.widths()
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

    /// One minibatch (nothing once finished); records `near_frac`, the zeros and the epoch's metrics. An
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
            let x = m.epoch as f64;
            self.near
                .push((x, m.layers.iter().map(|s| s.near_frac).collect()));
            self.zeros
                .push((x, m.layers.iter().map(|s| s.sparsity).collect()));
            self.epochs.push(m);
        } else if self.trainer.steps() % self.record_every == 0 {
            let stats = (0..self.trainer.layers())
                .map(|l| self.trainer.layer_view(l).map(|v| v.stats.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            self.near
                .push((x, stats.iter().map(|s| s.near_frac).collect()));
            self.zeros
                .push((x, stats.iter().map(|s| s.sparsity).collect()));
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
                if v.stats.sparsity > 0.0 {
                    s.push_str(&format!(" zeros={:.4}", v.stats.sparsity));
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labs::quantization::controls::fresh_quant;
    use crate::state::default_quant_train;
    use optiscope_core::quant::QuantMethod;
    use optiscope_core::train::DataChoice;

    fn data(cfg: &TrainConfig) -> (Dataset, Dataset) {
        cfg.data.load(cfg.test_fraction, cfg.split_seed)
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

    /// A ProxGen run (the optimizer menu lists it like every other) trains in the lab and its
    /// layer view reports the share of exact zeros.
    #[test]
    fn a_proxgen_run_reports_its_sparsity() {
        let mut cfg = default_quant_train();
        cfg.quant = fresh_quant(QuantMethod::None, 3);
        cfg.optimizer = serde_json::from_str(
            r#"{"name":"proxgen","lr":0.01,"regularizer":"l1/2","penalty":0.001}"#,
        )
        .unwrap();
        let mut run = QuantRun::new(&cfg, &data(&cfg), 0).unwrap();
        for _ in 0..20 {
            run.step().unwrap();
        }
        let view = run.layer_view(0).unwrap();
        let zeros = view.weights.iter().filter(|&&w| w == 0.0).count() as f64;
        assert!(view.stats.sparsity > 0.1, "{}", view.stats.sparsity);
        assert_eq!(view.stats.sparsity, zeros / view.weights.len() as f64);
        // The curve over training starts dense and records the zeros as they appear.
        assert_eq!(run.zeros[0].1, vec![0.0, 0.0]);
        assert!(run.zeros.len() > 1 && run.zeros.last().unwrap().1[0] > 0.1);
        assert_eq!(run.zeros.len(), run.near.len());
    }
}
