//! One optimizer's run in the Transformer lab: core's [`LmTrainer`] on the CPU or on the page's
//! GPU, with every read-back asynchronous (the web cannot block on the GPU): the training losses
//! every `log_interval` steps, and at every evaluation the weights at the optimizer's evaluation
//! point with the validation batches' statistics. The singular values and the text sample are
//! computed on the CPU from those weights; the sample is drawn a token at a time across frames.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use optiscope_core::corpus::Corpus;
use optiscope_core::device::{Cpu, Device};
use optiscope_core::models::GptConfig;
use optiscope_core::train::lm::{
    divergence, validation_mean, validation_stats, Generator, LmConfig, LmTrainer, PendingLosses,
    SampleOptions,
};
use optiscope_gpu::{GpuBuffer, GpuDevice};
use web_time::Instant;

/// Values read back from a device, filled when they arrive: at once on the CPU (and natively on
/// a GPU), from the browser's event loop on WebGPU.
pub type Slot = Rc<RefCell<Option<Result<Vec<Vec<f32>>, String>>>>;

fn ready(values: Result<Vec<Vec<f32>>, String>) -> Slot {
    Rc::new(RefCell::new(Some(values)))
}

/// A device the lab trains on, with its read-back that never blocks the page.
pub trait LabDevice: Device<Buf: Clone> + 'static {
    /// Whether work is queued (a GPU): stepping then waits for the loss read-backs, so the queue
    /// holds at most two logging intervals, and for a due evaluation to start.
    const QUEUED: bool;

    /// Starts reading `bufs` (after all recorded work).
    fn read_later(&mut self, bufs: Vec<Self::Buf>) -> Slot;
}

impl LabDevice for Cpu {
    const QUEUED: bool = false;

    fn read_later(&mut self, bufs: Vec<Vec<f32>>) -> Slot {
        ready(Ok(bufs))
    }
}

impl LabDevice for GpuDevice {
    const QUEUED: bool = true;

    fn read_later(&mut self, bufs: Vec<GpuBuffer>) -> Slot {
        if let Some(e) = self.take_error() {
            return ready(Err(e.to_string()));
        }
        self.flush();
        #[cfg(target_arch = "wasm32")]
        {
            let slot: Slot = Rc::new(RefCell::new(None));
            let (ctx, out) = (self.context().clone(), slot.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let values = ctx.read_all(&bufs).await.map_err(|e| e.to_string());
                *out.borrow_mut() = Some(values);
            });
            slot
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let ctx = self.context().clone();
            ready(pollster::block_on(ctx.read_all(&bufs)).map_err(|e| e.to_string()))
        }
    }
}

/// Takes the values out of `slot` once they have arrived.
fn take(slot: &Slot) -> Option<Result<Vec<Vec<f32>>, String>> {
    slot.borrow_mut().take()
}

/// Characters in each text sample.
pub const SAMPLE_TOKENS: usize = 120;

/// What a run has shown so far.
#[derive(Debug, Default, Clone)]
pub struct Records {
    /// `[step, training loss]`, one per step, as read back.
    pub train: Vec<[f64; 2]>,
    /// `[step, validation loss]` at the evaluation point, one per evaluation.
    pub val: Vec<[f64; 2]>,
    /// The latest singular values (largest first) of each block's matrices, with their step.
    pub spectra: Option<(u64, BTreeMap<String, Vec<f64>>)>,
    /// The latest finished text sample, with the step of its weights.
    pub sample: Option<(u64, String)>,
}

/// A run the lab steps, on either device.
pub trait LiveRun {
    /// The optimizer's name.
    fn name(&self) -> &'static str;
    /// Steps taken.
    fn steps(&self) -> u64;
    /// Whether every configured step is done, or the run stopped.
    fn finished(&self) -> bool;
    /// Why it stopped early.
    fn stopped(&self) -> Option<&str>;
    /// Whether it may take a step now (a GPU run waits for its read-backs).
    fn can_step(&self) -> bool;
    /// One optimizer step (recorded, on a GPU).
    fn step(&mut self) -> Result<(), String>;
    /// Collects arrived read-backs, starts due ones and draws sample tokens for up to
    /// `budget_secs`.
    fn poll(&mut self, budget_secs: f64) -> Result<(), String>;
    /// Whether read-backs are in flight or a sample is being drawn.
    fn busy(&self) -> bool;
    /// What it has shown.
    fn records(&self) -> &Records;
    /// The run's config.
    fn config(&self) -> &LmConfig;
    /// Steps known to be done: taken, on the CPU; on a GPU, those whose losses have been read
    /// back (work done, not work queued).
    fn done_steps(&self) -> u64;
}

/// An evaluation in flight: its step and the read-back of the evaluation batches' statistics
/// followed by the weights at the evaluation point.
struct Snapshot {
    step: u64,
    stats: usize,
    slot: Slot,
}

/// One optimizer's live run on device `D`.
pub struct LmRun<D: LabDevice> {
    name: &'static str,
    trainer: LmTrainer<D>,
    gpt: GptConfig,
    records: Records,
    resolved: u64,
    losses: Option<(PendingLosses<D::Buf>, Slot)>,
    snapshot: Option<Snapshot>,
    /// The step of an evaluation due but not started (one is in flight).
    due: Option<u64>,
    /// The weights of the latest evaluation (the sample's and the spectra's source).
    weights: Option<(u64, Vec<Vec<f32>>)>,
    sampling: Option<(u64, Generator)>,
    last_sample: Option<Instant>,
    stopped: Option<String>,
}

/// A new sample is started at most this often.
const SAMPLE_EVERY_SECS: f64 = 3.0;

impl<D: LabDevice> LmRun<D> {
    /// A fresh run of `cfg` on `corpus` on `dev`, its first evaluation (step 0) started.
    pub fn new(cfg: LmConfig, corpus: Corpus, dev: D) -> Result<Self, String> {
        let name = cfg.optimizer.name();
        let trainer = LmTrainer::new(cfg, corpus, dev, None).map_err(|e| e.to_string())?;
        let gpt = trainer.gpt();
        let mut run = Self {
            name,
            trainer,
            gpt,
            records: Records::default(),
            resolved: 0,
            losses: None,
            snapshot: None,
            due: Some(0),
            weights: None,
            sampling: None,
            last_sample: None,
            stopped: None,
        };
        run.start_snapshot();
        Ok(run)
    }

    /// Stops the run for good with `why` (returned as the message): nothing in flight is waited
    /// for any more.
    fn stop(&mut self, why: String) -> String {
        let msg = format!("{}: stopped at step {}: {why}", self.name, self.steps());
        self.stopped = Some(msg.clone());
        (self.losses, self.snapshot, self.due, self.sampling) = (None, None, None, None);
        msg
    }

    /// Starts the loss read-back when it is due and none is in flight.
    fn start_losses(&mut self) {
        if self.losses.is_none() && self.trainer.losses_due() {
            let pending = self.trainer.take_pending();
            let bufs = pending.buffers().cloned().collect();
            let slot = self.trainer.device().read_later(bufs);
            self.losses = Some((pending, slot));
        }
    }

    fn start_snapshot(&mut self) {
        if self.snapshot.is_some() {
            return;
        }
        let Some(step) = self.due.take() else {
            return;
        };
        let weights = self.trainer.eval_params();
        let cfg = self.trainer.config().clone();
        let val = self.trainer.corpus().val.clone();
        let gpt = self.gpt;
        let dev = self.trainer.device();
        let mut bufs = validation_stats(dev, gpt, &weights, &val, &cfg);
        let stats = bufs.len();
        bufs.extend(weights);
        let slot = dev.read_later(bufs);
        self.snapshot = Some(Snapshot { step, stats, slot });
    }

    /// An evaluation's values arrived: the validation loss, the spectra, the weights.
    fn finish_snapshot(&mut self, step: u64, stats: usize, mut values: Vec<Vec<f32>>) {
        let weights = values.split_off(stats);
        if stats > 0 {
            let v = validation_mean(&values, self.trainer.config());
            self.records.val.push([step as f64, v]);
        }
        // The trainer's choice of matrices (`LmConfig::spectra`: by default every block's).
        let spectra = self.trainer.spectra_of(&weights).unwrap_or_default();
        self.records.spectra = Some((step, spectra));
        self.weights = Some((step, weights));
    }

    /// Whether the latest evaluation's weights are newer than the sample shown.
    fn sample_stale(&self) -> bool {
        match (&self.weights, &self.records.sample) {
            (Some((w, _)), Some((s, _))) => w > s,
            (Some(_), None) => true,
            _ => false,
        }
    }

    fn advance_sample(&mut self, budget_secs: f64) -> Result<(), String> {
        let start = Instant::now();
        if self.sampling.is_none() {
            let due = self
                .last_sample
                .is_none_or(|t| t.elapsed().as_secs_f64() >= SAMPLE_EVERY_SECS);
            if !(due && self.sample_stale()) {
                return Ok(());
            }
            let Some((step, _)) = &self.weights else {
                return Ok(());
            };
            let vocab = self.trainer.vocab();
            let prompt = vocab.encode("\n").unwrap_or_else(|_| vec![0]);
            let opts = SampleOptions {
                tokens: SAMPLE_TOKENS,
                temperature: 1.0,
                top_k: None,
                seed: *step,
            };
            self.sampling = Some((*step, Generator::new(self.gpt, &prompt, opts)));
            self.last_sample = Some(Instant::now());
        }
        let (Some((step, g)), Some((_, w))) = (&mut self.sampling, &self.weights) else {
            return Ok(());
        };
        let mut cpu = Cpu;
        while !g.done() && start.elapsed().as_secs_f64() < budget_secs {
            g.next(&mut cpu, w).map_err(|e| e.to_string())?;
        }
        if g.done() {
            let text = self.trainer.vocab().decode(g.new_tokens());
            self.records.sample = Some((*step, text));
            self.sampling = None;
        }
        Ok(())
    }
}

impl<D: LabDevice> LiveRun for LmRun<D> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn steps(&self) -> u64 {
        self.trainer.steps()
    }

    fn finished(&self) -> bool {
        self.trainer.finished() || self.stopped.is_some()
    }

    fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    fn can_step(&self) -> bool {
        // A GPU run queues at most one logging interval beyond the read-back in flight (a due
        // read-back starts with the step that makes it due), and waits with an evaluation due
        // until it has started, so that its weights are those of its step.
        let queue_full =
            D::QUEUED && self.trainer.pending_steps() as u64 >= self.trainer.config().log_interval;
        !(self.finished() || queue_full || self.due.is_some())
    }

    fn step(&mut self) -> Result<(), String> {
        if !self.can_step() {
            return Ok(());
        }
        if let Err(e) = self.trainer.step() {
            return Err(self.stop(e.to_string()));
        }
        let (step, every) = (self.trainer.steps(), self.trainer.config().eval_interval);
        if step % every.max(1) == 0 || self.trainer.finished() {
            self.due = Some(step);
        }
        self.start_losses();
        self.start_snapshot();
        if !D::QUEUED {
            // On the CPU everything has happened: collect it now.
            return self.poll(0.0);
        }
        Ok(())
    }

    fn poll(&mut self, budget_secs: f64) -> Result<(), String> {
        if self.stopped.is_some() {
            return Ok(());
        }
        if let Some(values) = self.losses.as_ref().and_then(|(_, slot)| take(slot)) {
            let (pending, _) = self.losses.take().unwrap_or_else(|| unreachable!("taken"));
            let values = values.map_err(|e| self.stop(e))?;
            let losses = pending.resolve(&values);
            // The finite steps are kept, the first non-finite one stops the run.
            let finite = losses
                .iter()
                .take_while(|l| l.train_loss.is_finite())
                .map(|l| [l.step as f64, l.train_loss]);
            self.records.train.extend(finite);
            self.resolved = losses.last().map_or(self.resolved, |l| l.step);
            if let Some(e) = divergence(&losses) {
                return Err(self.stop(e.to_string()));
            }
        }
        if self.losses.is_none() && self.trainer.losses_due() {
            self.start_losses();
            if !D::QUEUED {
                return self.poll(budget_secs);
            }
        }
        if let Some(values) = self.snapshot.as_ref().and_then(|s| take(&s.slot)) {
            let s = self
                .snapshot
                .take()
                .unwrap_or_else(|| unreachable!("taken"));
            let values = values.map_err(|e| self.stop(e))?;
            self.finish_snapshot(s.step, s.stats, values);
        }
        self.start_snapshot();
        if !D::QUEUED && self.snapshot.is_some() {
            return self.poll(budget_secs);
        }
        self.advance_sample(budget_secs)
            .map_err(|e| self.stop(format!("sampling: {e}")))
    }

    fn busy(&self) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        // A sample of the latest weights still to draw counts too (it starts within seconds).
        self.losses.is_some()
            || self.snapshot.is_some()
            || self.sampling.is_some()
            || self.due.is_some()
            || self.sample_stale()
    }

    fn records(&self) -> &Records {
        &self.records
    }

    fn config(&self) -> &LmConfig {
        self.trainer.config()
    }

    fn done_steps(&self) -> u64 {
        if D::QUEUED {
            self.resolved
        } else {
            self.steps()
        }
    }
}
