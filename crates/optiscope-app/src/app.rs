//! The explorer app: panels around the view, the per-frame step budget, sharing and export.

use optiscope_core::data::Dataset;
use optiscope_core::experiment::presets::PRESETS;
use optiscope_core::experiment::Experiment;
use optiscope_core::problems::landscape::Landscape;
use optiscope_core::problems::ProblemConfig;
use optiscope_core::train::{DataChoice, TrainConfig};
use web_time::Instant;

use crate::compute::ComputePath;
use crate::export;
use crate::state::{ExplorerState, QuantViewState, View};
pub use crate::status::Status;
use crate::views;
use crate::views::quant::{QuantAction, QuantRun};
use optiscope_core::metrics::{self, RunMetrics};

/// How long stepping may take per frame, so the view stays responsive at any speed.
const STEP_BUDGET_SECS: f64 = 0.010;

/// How long replaying a link's training run may take per frame (the page stays live meanwhile).
const RESTORE_BUDGET_SECS: f64 = 0.040;

/// Frame time and stepping rate, smoothed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Perf {
    /// Exponential moving average of the frame time, ms.
    pub frame_ms: f64,
    /// Exponential moving average of experiment steps per wall-clock second while playing
    /// (steps taken in a frame over that frame's duration).
    pub steps_per_s: f64,
}

/// A data set split once, keyed by what the split depends on.
type DataCache = ((DataChoice, u64, u64), (Dataset, Dataset));

/// The optiscope explorer.
pub struct ExplorerApp {
    state: ExplorerState,
    exp: Experiment,
    playing: bool,
    message: Option<(String, bool)>,
    compute: ComputePath,
    heatmap: Option<(String, egui::TextureId)>,
    loaded: Option<RunMetrics>,
    perf: Perf,
    last_frame: Option<Instant>,
    /// Where the page lives (web), for the shareable link.
    base_url: String,
    /// Dropped files read so far: (name, contents or why not).
    inbox: Inbox,
    /// Steps taken while playing in the previous frame.
    taken_last_frame: u64,
    /// The URL fragment last applied or written (web): a different one in the address bar is a
    /// new link to open.
    fragment: String,
    /// The Quantization view's training run, built when the view is first shown.
    quant_run: Option<QuantRun>,
    /// The last data set the Quantization view loaded, to retrain without loading it again.
    quant_data: Option<DataCache>,
}

type Inbox = std::sync::Arc<std::sync::Mutex<Vec<(String, Result<Vec<u8>, String>)>>>;

impl ExplorerApp {
    /// The app on eframe's context, starting from a link's fragment (or the default preset).
    pub fn new(cc: &eframe::CreationContext<'_>, fragment: &str, base_url: &str) -> Self {
        let compute = ComputePath::choose(cc.wgpu_render_state.as_ref());
        let (state, message) = match ExplorerState::from_fragment(fragment) {
            Ok(Some(s)) => (s, None),
            Ok(None) => (ExplorerState::from_preset("river-valley"), None),
            Err(e) => (
                ExplorerState::from_preset("river-valley"),
                Some((format!("{e}; showing the defaults"), true)),
            ),
        };
        let mut app = Self::with_state(state, compute, base_url);
        if message.is_some() {
            app.message = message;
        }
        app.fragment = fragment.trim_start_matches('#').to_string();
        app
    }

    /// Opens a link's fragment in the running app (the address bar changed).
    pub fn open_fragment(&mut self, fragment: &str) {
        self.fragment = fragment.trim_start_matches('#').to_string();
        match ExplorerState::from_fragment(fragment) {
            Ok(Some(state)) => {
                let compute = std::mem::replace(
                    &mut self.compute,
                    ComputePath::Cpu {
                        reason: String::new(),
                    },
                );
                let heatmap = self.heatmap.take();
                let fragment = std::mem::take(&mut self.fragment);
                *self = Self::with_state(state, compute, &self.base_url.clone());
                self.heatmap = heatmap;
                self.fragment = fragment;
            }
            Ok(None) => {}
            Err(e) => self.message = Some((format!("{e}; keeping the current experiment"), true)),
        }
    }

    /// The app for `state` on `compute` (also what tests use, with no eframe).
    pub fn with_state(state: ExplorerState, compute: ComputePath, base_url: &str) -> Self {
        let (exp, message) = match Experiment::new(state.experiment.clone()) {
            Ok(e) => (e, None),
            Err(err) => {
                let fallback = ExplorerState::from_preset(&state.preset);
                let e = Experiment::new(fallback.experiment.clone())
                    .unwrap_or_else(|_| unreachable!("presets are valid"));
                (
                    e,
                    Some((
                        format!("the link's experiment is not valid ({err}); showing the preset"),
                        true,
                    )),
                )
            }
        };
        let mut app = Self {
            state,
            exp,
            playing: false,
            message,
            compute,
            heatmap: None,
            loaded: None,
            perf: Perf::default(),
            last_frame: None,
            base_url: base_url.to_string(),
            inbox: Inbox::default(),
            taken_last_frame: 0,
            fragment: String::new(),
            quant_run: None,
            quant_data: None,
        };
        let target = app.state.step;
        app.state.step = 0;
        app.advance(target);
        if app.state.view == View::Quantization {
            app.ensure_quant();
        }
        app
    }

    /// The split data of `cfg`, loaded once per (data set, test fraction, split seed).
    fn quant_data(&mut self, cfg: &TrainConfig) -> &(Dataset, Dataset) {
        let key = (cfg.data, cfg.test_fraction.to_bits(), cfg.split_seed);
        if self.quant_data.as_ref().is_none_or(|(k, _)| *k != key) {
            self.quant_data = Some((key, cfg.data.load(cfg.test_fraction, cfg.split_seed)));
        }
        match &self.quant_data {
            Some((_, d)) => d,
            None => unreachable!("filled just above"),
        }
    }

    /// Builds the Quantization view's run from the state when there is none (its first showing,
    /// a link, a reset). A config that cannot train falls back to the defaults, with a message.
    fn ensure_quant(&mut self) {
        if self.quant_run.is_some() {
            return;
        }
        let q = self.state.quant_mut().clone();
        let data = self.quant_data(&q.train).clone();
        match QuantRun::new(&q.train, &data, q.step) {
            Ok(run) => self.quant_run = Some(run),
            Err(e) => {
                self.message = Some((
                    format!("the training config is not valid ({e}); showing the defaults"),
                    true,
                ));
                let fallback = QuantViewState::default();
                let data = self.quant_data(&fallback.train).clone();
                self.quant_run = QuantRun::new(&fallback.train, &data, 0).ok();
                self.state.quant = Some(fallback);
            }
        }
    }

    /// Trains the Quantization view's config again from step 0.
    fn reset_quant(&mut self) {
        self.state.quant_mut().step = 0;
        self.quant_run = None;
        self.ensure_quant();
    }

    /// Applies what the Quantization view's controls asked for.
    fn quant_action(&mut self, action: QuantAction) {
        match action {
            QuantAction::Retrain(cfg) => {
                let data = self.quant_data(&cfg).clone();
                match QuantRun::new(&cfg, &data, 0) {
                    Ok(run) => {
                        let q = self.state.quant_mut();
                        q.train = *cfg;
                        q.step = 0;
                        self.quant_run = Some(run);
                        if self.message.as_ref().is_some_and(|(_, error)| *error) {
                            self.message = None;
                        }
                    }
                    Err(e) => self.message = Some((format!("not applied: {e}"), true)),
                }
            }
            QuantAction::SetEpochs(epochs) => {
                self.state.quant_mut().train.epochs = epochs;
                if let Some(run) = &mut self.quant_run {
                    run.set_epochs(epochs);
                }
            }
        }
    }

    /// `n` minibatches of the Quantization view's run (fewer when it finishes or fails).
    fn quant_advance(&mut self, n: u64) -> u64 {
        let Some(run) = &mut self.quant_run else {
            return 0;
        };
        let mut taken = 0;
        while taken < n && !run.finished() {
            if let Err(e) = run.step() {
                self.message = Some((
                    format!("training stopped at step {}: {e}", run.steps()),
                    true,
                ));
                self.playing = false;
                run.stop_restoring();
                break;
            }
            taken += 1;
        }
        taken
    }

    /// The Quantization view's frame: replay a link's steps (within a budget), then play.
    fn quant_play(&mut self) {
        self.ensure_quant();
        let Some(run) = &mut self.quant_run else {
            return;
        };
        if run.restoring() {
            match run.catch_up(RESTORE_BUDGET_SECS) {
                Ok(n) => self.taken_last_frame = n,
                Err(e) => {
                    self.message = Some((
                        format!("replaying the link stopped at step {}: {e}", run.steps()),
                        true,
                    ));
                    run.stop_restoring();
                }
            }
            return;
        }
        if !self.playing {
            return;
        }
        if run.finished() {
            self.playing = false;
            return;
        }
        let start = Instant::now();
        let mut taken = 0u64;
        while taken < u64::from(self.state.speed)
            && start.elapsed().as_secs_f64() < STEP_BUDGET_SECS
            && self.quant_run.as_ref().is_some_and(|r| !r.finished())
        {
            if self.quant_advance(1) == 0 {
                break;
            }
            taken += 1;
        }
        self.taken_last_frame = taken;
    }

    /// What the status line says.
    pub fn status(&mut self) -> Status {
        let quant = self.state.view == View::Quantization;
        let (step, detail) = match (&mut self.quant_run, quant) {
            (Some(run), true) => (run.steps(), run.summary()),
            (None, true) => (0, String::new()),
            (_, false) => (self.exp.current_step(), String::new()),
        };
        Status {
            compute: self.compute.describe(),
            step,
            frame_ms: self.perf.frame_ms,
            steps_per_s: self.perf.steps_per_s,
            message: self
                .message
                .as_ref()
                .map(|(m, _)| m.clone())
                .unwrap_or_default(),
            view: self.state.view,
            preset: self.state.preset.clone(),
            link: self.share_url(),
            detail,
        }
    }

    /// The shareable link of the current state.
    pub fn share_url(&self) -> String {
        let mut s = self.state.clone();
        s.step = self.exp.current_step();
        if let (Some(q), Some(run)) = (s.quant.as_mut(), &self.quant_run) {
            q.step = run.link_step();
        }
        format!("{}#{}", self.base_url, s.to_fragment())
    }

    fn advance(&mut self, n: u64) {
        let report = self.exp.step(n);
        for (i, d) in report.diverged {
            let label = &self.exp.runs()[i].config.label;
            self.message = Some((
                format!(
                    "run {label:?} diverged at step {} (loss {}); it stops there",
                    d.step, d.loss
                ),
                true,
            ));
        }
        for (i, f) in report.failed {
            let label = &self.exp.runs()[i].config.label;
            self.message = Some((
                format!(
                    "run {label:?} failed at step {}: {}; it stops there, the others go on",
                    f.step, f.error
                ),
                true,
            ));
        }
        self.state.step = self.exp.current_step();
    }

    /// Rebuilds the experiment from the state's config (after an edit), back at step 0.
    fn reset(&mut self) {
        match Experiment::new(self.state.experiment.clone()) {
            Ok(e) => {
                self.exp = e;
                self.state.step = 0;
            }
            Err(e) => self.message = Some((e.to_string(), true)),
        }
    }

    fn load_preset(&mut self, name: &str) {
        let view = self.state.view;
        let quant = self.state.quant.take();
        self.state = ExplorerState::from_preset(name);
        self.state.quant = quant;
        if matches!(view, View::Loss) {
            self.state.view = view;
        }
        self.loaded = None;
        self.reset();
    }

    /// Steps while playing, within the per-frame budget.
    fn play(&mut self) {
        self.taken_last_frame = 0;
        if self.state.view == View::Quantization {
            self.quant_play();
            return;
        }
        if !self.playing || self.exp.is_done() {
            self.playing &= !self.exp.is_done();
            return;
        }
        let start = Instant::now();
        let mut taken = 0u64;
        while taken < u64::from(self.state.speed)
            && start.elapsed().as_secs_f64() < STEP_BUDGET_SECS
            && !self.exp.is_done()
        {
            self.advance(1);
            taken += 1;
        }
        self.taken_last_frame = taken;
    }

    fn frame_timing(&mut self) {
        let now = Instant::now();
        if let Some(last) = self.last_frame {
            let ms = now.duration_since(last).as_secs_f64() * 1e3;
            self.perf.frame_ms = if self.perf.frame_ms == 0.0 {
                ms
            } else {
                0.9 * self.perf.frame_ms + 0.1 * ms
            };
            if self.taken_last_frame > 0 {
                let rate = self.taken_last_frame as f64 / (ms / 1e3).max(1e-6);
                self.perf.steps_per_s = if self.perf.steps_per_s == 0.0 {
                    rate
                } else {
                    0.9 * self.perf.steps_per_s + 0.1 * rate
                };
            }
        }
        self.last_frame = Some(now);
    }

    fn notice(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), false));
    }

    fn keyboard(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        // Count presses: on a slow frame several can arrive at once, and each is one step.
        let (steps, play, reset) = ctx.input(|i| {
            (
                i.num_presses(egui::Key::S),
                i.num_presses(egui::Key::Space) % 2 == 1,
                i.key_pressed(egui::Key::R),
            )
        });
        let quant = self.state.view == View::Quantization;
        if steps > 0 {
            if quant {
                self.quant_advance(steps as u64);
            } else {
                self.advance(steps as u64);
            }
        }
        if play {
            self.playing = !self.playing;
        }
        if reset {
            if quant {
                self.reset_quant();
            } else {
                self.reset();
            }
        }
    }

    /// Files dropped on the window: read them (asynchronously on the web) and show the metrics.
    fn dropped_files(&mut self, ctx: &egui::Context) {
        for f in ctx.input(|i| i.raw.dropped_files.clone()) {
            let name = f.path().file_name().map_or_else(
                || f.path().display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            #[cfg(not(target_arch = "wasm32"))]
            {
                let bytes = f.bytes();
                self.inbox
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((name, bytes));
            }
            #[cfg(target_arch = "wasm32")]
            {
                let inbox = self.inbox.clone();
                let ctx = ctx.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let bytes = f.bytes_async().await;
                    inbox
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((name, bytes));
                    ctx.request_repaint();
                });
            }
        }
        let arrived: Vec<_> =
            std::mem::take(&mut *self.inbox.lock().unwrap_or_else(|e| e.into_inner()));
        for (name, bytes) in arrived {
            let parsed = bytes
                .map_err(|e| format!("cannot read {name}: {e}"))
                .and_then(|b| metrics::read_run_metrics(&name, &String::from_utf8_lossy(&b)));
            match parsed {
                Ok(m) => {
                    let skipped = match m.skipped {
                        0 => String::new(),
                        k => format!(
                            "; {k} record(s) had a point or singular values that are not numbers (shown without them)"
                        ),
                    };
                    self.notice(format!(
                        "showing {} ({} runs{skipped}); \"close file\" returns to the live experiment",
                        m.name,
                        m.runs.len()
                    ));
                    self.loaded = Some(m);
                }
                Err(e) => self.message = Some((e, true)),
            }
        }
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.heading("optiscope");
            ui.separator();
            for view in View::ALL {
                ui.selectable_value(&mut self.state.view, view, view.label());
            }
            ui.separator();
            let quant = self.state.view == View::Quantization;
            if quant {
                self.ensure_quant();
            }
            if !quant {
                self.preset_ui(ui);
                ui.separator();
            }
            if ui
                .button(if self.playing { "pause" } else { "play" })
                .on_hover_text("Space")
                .clicked()
            {
                self.playing = !self.playing;
            }
            if ui
                .button("step")
                .on_hover_text(if quant {
                    "S: one minibatch"
                } else {
                    "S: one optimizer step"
                })
                .clicked()
            {
                if quant {
                    self.quant_advance(1);
                } else {
                    self.advance(1);
                }
            }
            if ui.button("reset").on_hover_text("R").clicked() {
                if quant {
                    self.reset_quant();
                } else {
                    self.reset();
                }
            }
            ui.add(
                egui::Slider::new(&mut self.state.speed, 1..=500)
                    .logarithmic(true)
                    .text(if quant {
                        "minibatches/frame"
                    } else {
                        "steps/frame"
                    }),
            );
            if quant {
                return;
            }
            ui.separator();
            let mut seed = self.state.experiment.seed;
            ui.label("seed");
            if ui.add(egui::DragValue::new(&mut seed)).changed() {
                self.state.experiment.seed = seed;
                self.reset();
            }
            let mut steps = self.state.experiment.steps;
            ui.label("steps");
            if ui
                .add(egui::DragValue::new(&mut steps).range(1..=1_000_000))
                .changed()
            {
                self.state.experiment.steps = steps;
                self.reset();
            }
        });
        ui.horizontal_wrapped(|ui| self.share_ui(ui));
    }

    fn preset_ui(&mut self, ui: &mut egui::Ui) {
        let mut preset = self.state.preset.clone();
        egui::ComboBox::from_id_salt("preset")
            .selected_text(format!("preset: {preset}"))
            .show_ui(ui, |ui| {
                for p in PRESETS {
                    ui.selectable_value(&mut preset, p.name.to_string(), p.name)
                        .on_hover_text(p.summary);
                }
            });
        if preset != self.state.preset {
            self.load_preset(&preset);
        }
    }

    fn share_ui(&mut self, ui: &mut egui::Ui) {
        let quant = self.state.view == View::Quantization;
        if ui.button("copy link").clicked() {
            let url = self.share_url();
            ui.ctx().copy_text(url.clone());
            #[cfg(target_arch = "wasm32")]
            {
                crate::page::set_fragment(&url);
                self.fragment = url
                    .split_once('#')
                    .map(|(_, f)| f.to_string())
                    .unwrap_or_default();
            }
            self.notice(if quant {
                "link copied: it reopens this training run at this step"
            } else {
                "link copied: it reopens this experiment at this step"
            });
        }
        if quant {
            let train = self.state.quant_mut().train.clone();
            if ui
                .button("copy CLI command")
                .on_hover_text("trains the same model to the end with `optiscope train`")
                .clicked()
            {
                ui.ctx().copy_text(export::train_cli_command(&train));
                self.notice("CLI command copied");
            }
            if ui.button("export metrics CSV").clicked() {
                let csv = self
                    .quant_run
                    .as_ref()
                    .map(QuantRun::metrics_csv)
                    .unwrap_or_default();
                let r = export::save_text("optiscope-quantization.csv", &csv);
                self.report(r);
            }
            if ui.button("export config JSON").clicked() {
                let json = serde_json::to_string_pretty(&train).unwrap_or_default() + "\n";
                let r = export::save_text("optiscope-train-config.json", &json);
                self.report(r);
            }
            return;
        }
        if ui
            .button("copy CLI command")
            .on_hover_text("reruns this experiment with `optiscope run`")
            .clicked()
        {
            ui.ctx().copy_text(export::cli_command(
                &self.state.experiment,
                &self.state.preset,
            ));
            self.notice("CLI command copied");
        }
        if ui.button("export metrics CSV").clicked() {
            let r = export::save_text("optiscope-metrics.csv", &export::metrics_csv(&self.exp));
            self.report(r);
        }
        if ui.button("export config JSON").clicked() {
            let r = export::save_text(
                "optiscope-config.json",
                &export::config_json(&self.state.experiment),
            );
            self.report(r);
        }
        if self.loaded.is_some() && ui.button("close file").clicked() {
            self.loaded = None;
        }
        ui.label("(drop a metrics.jsonl here to view it)");
    }

    fn report(&mut self, r: Result<String, String>) {
        self.message = Some(match r {
            Ok(m) => (m, false),
            Err(e) => (e, true),
        });
    }

    fn status_ui(&mut self, ui: &mut egui::Ui) {
        let s = self.status();
        ui.horizontal_wrapped(|ui| {
            ui.label(format!("compute: {}", s.compute));
            ui.separator();
            if self.state.view == View::Quantization {
                let bpe = self
                    .quant_run
                    .as_ref()
                    .map_or(String::new(), |r| format!(" (epoch {})", r.epoch_label()));
                ui.label(format!("minibatch {}{bpe}", s.step));
            } else {
                ui.label(format!("step {} / {}", s.step, self.state.experiment.steps));
            }
            ui.separator();
            ui.label(format!("{:.1} ms/frame", s.frame_ms));
            ui.separator();
            ui.label(format!(
                "{:.0} {}/s",
                s.steps_per_s,
                if self.state.view == View::Quantization {
                    "minibatches"
                } else {
                    "steps"
                }
            ));
            if let Some((m, is_error)) = &self.message {
                ui.separator();
                let color = if *is_error {
                    egui::Color32::from_rgb(255, 120, 120)
                } else {
                    ui.visuals().text_color()
                };
                ui.colored_label(color, m);
            }
        });
    }

    fn central_ui(&mut self, ui: &mut egui::Ui) {
        match self.state.view {
            View::Landscape => {
                let landscape = match Landscape::from_config(
                    &self.state.experiment.problem,
                    self.state.experiment.seed,
                ) {
                    Ok(l) => l,
                    Err(_) => {
                        ui.label(
                            "This problem is not a 2-D landscape: see the Spectrum and Loss views.",
                        );
                        return;
                    }
                };
                let key = serde_json::to_string(&self.state.experiment.problem).unwrap_or_default();
                if self.heatmap.as_ref().is_none_or(|(k, _)| *k != key) {
                    match self.compute.heatmap(ui.ctx(), &landscape) {
                        Ok(id) => self.heatmap = Some((key, id)),
                        Err(e) => self.message = Some((format!("heat map: {e}"), true)),
                    }
                }
                let tex = self.heatmap.as_ref().map(|(_, id)| *id);
                if let Some(views::landscape::LandscapeAction::SetStart(p)) =
                    views::landscape::landscape_ui(
                        ui,
                        &self.exp,
                        &landscape,
                        tex,
                        self.loaded.as_ref(),
                    )
                {
                    set_start(&mut self.state.experiment.problem, p);
                    self.reset();
                }
            }
            View::Spectrum => views::spectrum::spectrum_ui(ui, &self.exp, self.loaded.as_ref()),
            View::Loss => views::loss::loss_ui(ui, &self.exp, self.loaded.as_ref()),
            View::Quantization => {
                self.ensure_quant();
                let layer = &mut self.state.quant_mut().layer;
                let mut shown = *layer;
                match &mut self.quant_run {
                    Some(run) => views::quant::quant_ui(ui, run, &mut shown),
                    None => {
                        ui.label("The training run could not start: see the message below.");
                    }
                }
                self.state.quant_mut().layer = shown;
            }
        }
    }

    /// One frame: input, stepping, panels. Shared by the native and web entry points.
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        #[cfg(target_arch = "wasm32")]
        {
            let current = crate::page::current_fragment();
            if current != self.fragment {
                self.open_fragment(&current);
            }
        }
        self.frame_timing();
        self.keyboard(&ctx);
        self.dropped_files(&ctx);
        self.play();
        egui::Panel::top("top").show(ui, |ui| self.top_bar_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        if self.state.view == View::Quantization {
            egui::Panel::left("quant-controls")
                .resizable(true)
                .default_size(300.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        ui.heading("Training");
                        let cfg = self.state.quant_mut().train.clone();
                        if let Some(action) =
                            views::quant::controls_ui(ui, &cfg, self.quant_run.as_ref())
                        {
                            self.quant_action(action);
                        }
                    });
                });
        } else {
            egui::Panel::left("runs")
                .resizable(true)
                .default_size(320.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        ui.heading("Runs");
                        if let Some(runs) = views::runs::runs_ui(ui, &self.state.experiment.runs) {
                            self.state.experiment.runs = runs;
                            self.reset();
                        }
                    });
                });
        }
        egui::CentralPanel::default().show(ui, |ui| self.central_ui(ui));
        #[cfg(target_arch = "wasm32")]
        crate::page::publish_status(&self.status());
        let restoring = self.state.view == View::Quantization
            && self.quant_run.as_ref().is_some_and(QuantRun::restoring);
        if self.playing || restoring {
            ctx.request_repaint();
        }
    }
}

/// Moves the start of a 2-D problem.
fn set_start(problem: &mut ProblemConfig, p: [f64; 2]) {
    match problem {
        ProblemConfig::Rosenbrock(c) => c.start = p,
        ProblemConfig::Beale(c) => c.start = p,
        ProblemConfig::Saddle(c) => c.start = p,
        ProblemConfig::Quadratic(c) => c.start = p,
        ProblemConfig::RiverValley(c) => c.start = p,
        ProblemConfig::LoraFactorization(_) => {}
    }
}

impl eframe::App for ExplorerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame_ui(ui);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu() -> ComputePath {
        ComputePath::Cpu {
            reason: "test".into(),
        }
    }

    /// A link made at some step reopens the same runs at the same step, with the same losses.
    #[test]
    fn shared_link_reproduces_the_runs() {
        let mut app =
            ExplorerApp::with_state(ExplorerState::from_preset("rosenbrock"), cpu(), "http://h/");
        app.state.experiment.seed = 3;
        app.reset();
        app.advance(37);
        let url = app.share_url();
        let fragment = url.split_once('#').unwrap().1;
        let state = ExplorerState::from_fragment(fragment).unwrap().unwrap();
        let reopened = ExplorerApp::with_state(state, cpu(), "http://h/");
        assert_eq!(reopened.exp.current_step(), 37);
        for (a, b) in app.exp.runs().iter().zip(reopened.exp.runs()) {
            assert_eq!(a.history(), b.history(), "{}", a.config.label);
        }
    }

    #[test]
    fn an_invalid_experiment_in_a_link_falls_back_to_its_preset_with_a_message() {
        let mut state = ExplorerState::from_preset("saddle");
        state.experiment.runs.clear();
        let mut app = ExplorerApp::with_state(state, cpu(), "");
        assert!(
            app.status().message.contains("not valid"),
            "{}",
            app.status().message
        );
        assert!(!app.exp.runs().is_empty());
    }

    #[test]
    fn status_names_the_compute_path_and_step() {
        let mut app = ExplorerApp::with_state(
            ExplorerState::from_preset("river-valley"),
            ComputePath::Cpu {
                reason: "WebGL2 has no compute shaders".into(),
            },
            "",
        );
        app.advance(2);
        let s = app.status();
        assert_eq!(s.compute, "CPU (WebGL2 has no compute shaders)");
        assert_eq!(s.step, 2);
        assert!(s.link.contains("#s="));
    }

    #[test]
    fn clicking_the_landscape_moves_the_start() {
        let mut app = ExplorerApp::with_state(ExplorerState::from_preset("quadratic"), cpu(), "");
        set_start(&mut app.state.experiment.problem, [0.5, -0.25]);
        app.reset();
        let first = &app.exp.runs()[0].history()[0];
        assert_eq!(
            first.observation,
            optiscope_core::problems::Observation::Point([0.5, -0.25])
        );
    }

    /// A link made in the Quantization view reopens the same training run at the same step, with
    /// the same weights (the same quantization statistics) and the same epoch metrics.
    #[test]
    fn a_quantization_link_retrains_to_the_same_step() {
        let mut state = ExplorerState::from_fragment("#view=quantization&data=moons&epochs=4")
            .unwrap()
            .unwrap();
        state.speed = 7;
        let mut app = ExplorerApp::with_state(state, cpu(), "http://h/");
        assert_eq!(app.status().view, View::Quantization);
        app.playing = true;
        for _ in 0..6 {
            app.play();
        }
        let steps = app.quant_run.as_ref().unwrap().steps();
        assert!(steps >= 6, "{steps} minibatches after 6 frames");
        assert_eq!(app.status().step, steps);
        let url = app.share_url();
        let state = ExplorerState::from_fragment(url.split_once('#').unwrap().1)
            .unwrap()
            .unwrap();
        assert_eq!(state.quant.as_ref().unwrap().step, steps);
        let mut reopened = ExplorerApp::with_state(state, cpu(), "http://h/");
        assert!(reopened.quant_run.as_ref().unwrap().restoring());
        reopened
            .quant_run
            .as_mut()
            .unwrap()
            .catch_up(f64::INFINITY)
            .unwrap();
        let (a, b) = (app.status(), reopened.status());
        assert_eq!(b.step, steps);
        assert_eq!(a.detail, b.detail);
        assert!(a.detail.contains("near_frac="), "{}", a.detail);
        assert_eq!(
            app.quant_run.as_ref().unwrap().epochs(),
            reopened.quant_run.as_ref().unwrap().epochs()
        );
    }

    #[test]
    fn quantization_controls_retrain_and_keep_the_run_on_bad_configs() {
        let state = ExplorerState::from_fragment("#view=quantization")
            .unwrap()
            .unwrap();
        let mut app = ExplorerApp::with_state(state, cpu(), "");
        app.quant_advance(3);
        let mut cfg = app.state.quant.as_ref().unwrap().train.clone();
        cfg.hidden = vec![8];
        app.quant_action(QuantAction::Retrain(Box::new(cfg.clone())));
        assert_eq!(app.status().step, 0);
        assert_eq!(app.quant_run.as_ref().unwrap().config().hidden, vec![8]);
        app.quant_advance(2);
        // Revised ProxQuant needs Adam's second moment: refused, the run goes on.
        let mut bad = cfg.clone();
        bad.quant = optiscope_core::quant::QuantConfig::new(
            optiscope_core::quant::QuantMethod::Proxquant,
            2,
        );
        bad.optimizer = optiscope_core::optim::OptimizerConfig::default_for("sgd").unwrap();
        app.quant_action(QuantAction::Retrain(Box::new(bad)));
        assert!(app.status().message.starts_with("not applied"));
        assert_eq!(app.status().step, 2);
        assert_eq!(app.state.quant.as_ref().unwrap().train, cfg);
        app.quant_action(QuantAction::SetEpochs(1));
        while app.quant_advance(1) == 1 {}
        assert!(app.quant_run.as_ref().unwrap().finished());
        assert_eq!(app.quant_run.as_ref().unwrap().epochs().len(), 1);
    }

    /// A link whose training config cannot train shows the defaults and says why.
    #[test]
    fn an_invalid_quantization_link_falls_back_to_the_defaults() {
        let mut state = ExplorerState::from_fragment("#view=quantization")
            .unwrap()
            .unwrap();
        state.quant.as_mut().unwrap().train.hidden = vec![0];
        let mut app = ExplorerApp::with_state(state, cpu(), "");
        assert!(
            app.status().message.contains("not valid"),
            "{}",
            app.status().message
        );
        assert_eq!(app.state.quant, Some(QuantViewState::default()));
        assert!(app.quant_run.is_some());
    }

    /// The Quantization view draws headless (egui without a renderer) on every quantizer, at
    /// every layer, while training; and a frame stays cheap next to the rendering.
    #[test]
    fn the_quantization_view_draws_for_every_quantizer() {
        let ctx = egui::Context::default();
        let input = || egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(1280.0, 800.0),
            )),
            ..Default::default()
        };
        for method in optiscope_core::quant::QuantMethod::ALL {
            let f = format!("#view=quantization&method={}&layer=1", method.name());
            let state = ExplorerState::from_fragment(&f).unwrap().unwrap();
            let mut app = ExplorerApp::with_state(state, cpu(), "");
            app.playing = true;
            let start = Instant::now();
            let frames = 10;
            for _ in 0..frames {
                let mut out = ctx.run_ui(input(), |ui| app.frame_ui(ui));
                out.textures_delta.clear();
                let prims = ctx.tessellate(out.shapes, out.pixels_per_point);
                assert!(!prims.is_empty());
            }
            let ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(frames);
            eprintln!(
                "{}: {ms:.2} ms per frame (step {})",
                method.name(),
                app.status().step
            );
            assert!(app.status().step > 0, "{}", method.name());
            assert_eq!(app.status().message, "", "{}", method.name());
        }
    }
}
