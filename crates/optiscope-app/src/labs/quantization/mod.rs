//! The Quantization lab: an MLP trained live on the CPU with core's trainer, each weight matrix
//! passing through a quantizer (STE, LSQ, RQ, SRQ, CPQ with DropBits and learned bit-widths,
//! ProxQuant). It draws what spec `quant_align_prune.md` ("Quantization-grid visualisation") asks
//! for: the histogram of the full-precision weights with bin width α/8, coloured by the grid point
//! each weight is assigned to, solid lines at the grid points coloured by bit level (grey without
//! DropBits), dashed lines at the cell boundaries, `near_frac(0.1)` and `mse` in the title; below,
//! `near_frac` over training and the train/test accuracy per epoch.
//!
//! [`run`] (the training run and what it records), [`histogram`] (bins and colours),
//! [`controls`] (the left panel), [`plots`] (the central view); this module is the [`Lab`].

pub mod controls;
pub mod histogram;
pub mod plots;
pub mod run;

use optiscope_core::data::Dataset;
use optiscope_core::train::{DataChoice, TrainConfig};

use crate::export;
use crate::lab::{Lab, LabIo, RESTORE_BUDGET_SECS};
use crate::state::{LabKind, LabStates, QuantViewState};
use controls::QuantAction;
use run::QuantRun;

/// A data set split once, keyed by what the split depends on.
type DataCache = ((DataChoice, u64, u64), (Dataset, Dataset));

/// The Quantization lab.
pub struct QuantLab {
    state: QuantViewState,
    /// The training run (None only when even the defaults could not start).
    run: Option<QuantRun>,
    /// The last data set loaded, to retrain without loading it again.
    data: Option<DataCache>,
}

impl QuantLab {
    /// The lab on `state`, replaying its run to its step over the next frames. A config that
    /// cannot train falls back to the defaults, with a message.
    pub fn new(state: QuantViewState, io: &mut LabIo<'_>) -> Self {
        let mut lab = Self {
            state,
            run: None,
            data: None,
        };
        lab.ensure_run(io);
        lab
    }

    /// The training run.
    pub fn run(&self) -> Option<&QuantRun> {
        self.run.as_ref()
    }

    /// The training run, mutable.
    pub fn run_mut(&mut self) -> Option<&mut QuantRun> {
        self.run.as_mut()
    }

    /// The lab's state (what its part of the link holds).
    pub fn state(&self) -> &QuantViewState {
        &self.state
    }

    /// The split data of `cfg`, loaded once per (data set, test fraction, split seed).
    fn data(&mut self, cfg: &TrainConfig) -> (Dataset, Dataset) {
        let key = (cfg.data, cfg.test_fraction.to_bits(), cfg.split_seed);
        if self.data.as_ref().is_none_or(|(k, _)| *k != key) {
            self.data = Some((key, cfg.data.load(cfg.test_fraction, cfg.split_seed)));
        }
        match &self.data {
            Some((_, d)) => d.clone(),
            None => unreachable!("filled just above"),
        }
    }

    fn ensure_run(&mut self, io: &mut LabIo<'_>) {
        if self.run.is_some() {
            return;
        }
        let q = self.state.clone();
        let data = self.data(&q.train);
        match QuantRun::new(&q.train, &data, q.step) {
            Ok(run) => self.run = Some(run),
            Err(e) => {
                io.error(format!(
                    "the training config is not valid ({e}); showing the defaults"
                ));
                let fallback = QuantViewState::default();
                let data = self.data(&fallback.train);
                self.run = QuantRun::new(&fallback.train, &data, 0).ok();
                self.state = fallback;
            }
        }
    }

    /// Applies what the controls asked for.
    pub fn apply(&mut self, action: QuantAction, io: &mut LabIo<'_>) {
        match action {
            QuantAction::Retrain(cfg) => {
                let data = self.data(&cfg);
                match QuantRun::new(&cfg, &data, 0) {
                    Ok(run) => {
                        self.state.train = *cfg;
                        self.state.step = 0;
                        self.run = Some(run);
                        if io.message.as_ref().is_some_and(|(_, error)| *error) {
                            *io.message = None;
                        }
                    }
                    Err(e) => io.error(format!("not applied: {e}")),
                }
            }
            QuantAction::SetEpochs(epochs) => {
                self.state.train.epochs = epochs;
                if let Some(run) = &mut self.run {
                    run.set_epochs(epochs);
                }
            }
        }
    }
}

impl Lab for QuantLab {
    fn kind(&self) -> LabKind {
        LabKind::Quantization
    }

    fn view_name(&self) -> &'static str {
        "quantization"
    }

    fn guide(&self) -> &'static crate::guide::Guide {
        crate::guide::quantization(self.state.train.quant.method.name())
    }

    fn step(&self) -> u64 {
        self.run.as_ref().map_or(0, QuantRun::steps)
    }

    fn step_label(&self) -> String {
        let epoch = self
            .run
            .as_ref()
            .map_or(String::new(), |r| format!(" (epoch {})", r.epoch_label()));
        format!("minibatch {}{epoch}", self.step())
    }

    fn step_unit(&self) -> &'static str {
        "minibatches"
    }

    fn step_hint(&self) -> &'static str {
        "S: one minibatch"
    }

    fn finished(&self) -> bool {
        self.run.as_ref().is_none_or(QuantRun::finished)
    }

    fn busy(&self) -> bool {
        self.run.as_ref().is_some_and(QuantRun::restoring)
    }

    fn step_by(&mut self, n: u64, io: &mut LabIo<'_>) -> u64 {
        let Some(run) = &mut self.run else {
            return 0;
        };
        let mut taken = 0;
        while taken < n && !run.finished() {
            if let Err(e) = run.step() {
                io.error(format!("training stopped at step {}: {e}", run.steps()));
                *io.playing = false;
                run.stop_restoring();
                break;
            }
            taken += 1;
        }
        taken
    }

    fn frame(&mut self, playing: bool, speed: u32, budget_secs: f64, io: &mut LabIo<'_>) -> u64 {
        let Some(run) = &mut self.run else {
            return 0;
        };
        if run.restoring() {
            if let Err(e) = run.catch_up(RESTORE_BUDGET_SECS) {
                io.error(format!(
                    "replaying the link stopped at step {}: {e}",
                    run.steps()
                ));
                run.stop_restoring();
            }
            return 0;
        }
        if !playing {
            return 0;
        }
        if run.finished() {
            *io.playing = false;
            return 0;
        }
        let start = web_time::Instant::now();
        let mut taken = 0u64;
        while taken < u64::from(speed)
            && start.elapsed().as_secs_f64() < budget_secs
            && !self.finished()
        {
            if self.step_by(1, io) == 0 {
                break;
            }
            taken += 1;
        }
        taken
    }

    fn reset(&mut self, io: &mut LabIo<'_>) {
        self.state.step = 0;
        self.run = None;
        self.ensure_run(io);
    }

    fn top_bar_ui(&mut self, _ui: &mut egui::Ui, _io: &mut LabIo<'_>) {}

    fn controls_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        ui.heading("Training");
        let cfg = self.state.train.clone();
        if let Some(action) = controls::controls_ui(ui, &cfg, self.run.as_ref()) {
            self.apply(action, io);
        }
    }

    fn view_ui(&mut self, ui: &mut egui::Ui, _io: &mut LabIo<'_>) {
        match &mut self.run {
            Some(run) => plots::quant_ui(ui, run, &mut self.state.layer),
            None => {
                ui.label("The training run could not start: see the message below.");
            }
        }
    }

    fn share_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        let train = self.state.train.clone();
        if ui
            .button("copy CLI command")
            .on_hover_text("trains the same model to the end with `optiscope train`")
            .clicked()
        {
            ui.ctx().copy_text(export::train_cli_command(&train));
            io.notice("CLI command copied");
        }
        if ui.button("export metrics CSV").clicked() {
            let csv = self
                .run
                .as_ref()
                .map(QuantRun::metrics_csv)
                .unwrap_or_default();
            let r = export::save_text("optiscope-quantization.csv", &csv);
            export::report(io, r);
        }
        if ui.button("export config JSON").clicked() {
            let json = serde_json::to_string_pretty(&train).unwrap_or_default() + "\n";
            let r = export::save_text("optiscope-train-config.json", &json);
            export::report(io, r);
        }
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn link_notice(&self) -> &'static str {
        "link copied: it reopens this training run at this step"
    }

    fn detail(&mut self) -> String {
        self.run.as_mut().map_or(String::new(), QuantRun::summary)
    }

    fn save_state(&self, states: &mut LabStates) {
        let mut state = self.state.clone();
        if let Some(run) = &self.run {
            state.step = run.link_step();
        }
        states.quantization = Some(state);
    }
}
