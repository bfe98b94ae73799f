//! The Transformer lab: a small character-level GPT (nanoGPT's, 2 layers, C = 64, context 32 by
//! default) trained live on tiny Shakespeare by up to three optimizers side by side, from one
//! initialisation and the same batches: training and validation losses, the singular values of
//! every block's matrices, and a text sample from each run's latest weights. On WebGPU (or a
//! native GPU) the steps run in WGSL with asynchronous read-backs; under WebGL2, on the CPU.

pub mod run;

use egui::{Color32, RichText};
use egui_plot::{Legend, Line, Plot, Points};
use optiscope_core::corpus::{tinyshakespeare, Corpus};
use optiscope_core::device::Cpu;
use optiscope_core::train::lm::ScheduleKind;
use optiscope_gpu::GpuDevice;
use web_time::Instant;

use self::run::{LiveRun, LmRun};
use crate::compute::ComputePath;
use crate::lab::{replay_or_play, Lab, LabIo};
use crate::state::{
    transformer_optimizer, LabKind, LabStates, TransformerLabState, MAX_TRANSFORMER_RUNS,
    TRANSFORMER_OPTIMIZERS,
};
use crate::views::run_color;

/// Per frame, the time each run may spend drawing its text sample.
const SAMPLE_BUDGET_SECS: f64 = 0.003;

/// The storage buffers one transformer kernel binds (`shaders/transformer.wgsl`).
const STORAGE_BUFFERS_NEEDED: u32 = 7;

/// Tokens per second since playing started, from the steps known to be done
/// ([`LiveRun::done_steps`]: on a GPU, work done, not work queued — a GPU run's losses arrive
/// ten steps at a time, so a short window would only see their bursts).
#[derive(Debug, Default)]
struct Rate {
    since: Option<(Instant, u64)>,
    tokens_per_s: f64,
}

impl Rate {
    fn update(&mut self, playing: bool, done: u64, tokens_per_step: usize) {
        if !playing {
            self.since = None;
            return;
        }
        let Some((t0, d0)) = self.since else {
            self.since = Some((Instant::now(), done));
            return;
        };
        let dt = t0.elapsed().as_secs_f64();
        if dt > 1.0 {
            self.tokens_per_s = done.saturating_sub(d0) as f64 * tokens_per_step as f64 / dt;
        }
    }
}

/// Where a lab's runs train.
enum Placement {
    Gpu,
    /// On the CPU, with the reason in words (`CPU (why)`).
    Cpu(String),
}

/// The Transformer lab.
pub struct TransformerLab {
    state: TransformerLabState,
    runs: Vec<Box<dyn LiveRun>>,
    /// The step a link asks for, replayed over the next frames.
    target: u64,
    /// Where the runs train.
    device: Placement,
    /// The text split by its `val_fraction`, made once (each run gets a copy).
    corpus: Option<(f64, Corpus)>,
    rate: Rate,
    /// The block whose matrices the spectra plot shows.
    layer: usize,
}

impl TransformerLab {
    /// The lab on `state`, replaying to its step over the next frames. Settings that cannot run
    /// fall back to the defaults, with a message.
    pub fn new(state: TransformerLabState, io: &mut LabIo<'_>) -> Self {
        let mut lab = Self {
            target: state.step,
            state,
            runs: vec![],
            device: Placement::Cpu(String::new()),
            corpus: None,
            rate: Rate::default(),
            layer: 0,
        };
        if let Err(e) = lab.start(io.compute) {
            io.error(format!(
                "the transformer settings are not valid ({e}); showing the defaults"
            ));
            lab.state = TransformerLabState::default();
            lab.target = 0;
            if let Err(e) = lab.start(io.compute) {
                io.error(format!("the Transformer lab could not start: {e}"));
            }
        }
        lab
    }

    /// Builds the runs of `self.state` at step 0 on the compute path's device.
    fn start(&mut self, compute: &ComputePath) -> Result<(), String> {
        self.runs.clear();
        self.state.validate()?;
        let lm = &self.state.lm;
        let corpus = match self.corpus.take() {
            Some((f, c)) if f == lm.val_fraction => c,
            _ => Corpus::new(&tinyshakespeare(), lm.val_fraction, None)?,
        };
        let gpu = match compute {
            ComputePath::Gpu { ctx, .. } => {
                let limits = ctx.device.limits();
                if limits.max_storage_buffers_per_shader_stage >= STORAGE_BUFFERS_NEEDED {
                    Ok(ctx.clone())
                } else {
                    Err(format!(
                        "CPU (the GPU binds {} storage buffers per kernel, the transformer's need {STORAGE_BUFFERS_NEEDED})",
                        limits.max_storage_buffers_per_shader_stage
                    ))
                }
            }
            ComputePath::Cpu { reason } => Err(format!("CPU ({reason})")),
        };
        self.device = match &gpu {
            Ok(_) => Placement::Gpu,
            Err(why) => Placement::Cpu(why.clone()),
        };
        for i in 0..self.state.optimizers.len() {
            let cfg = self.state.run_config(i);
            let run: Box<dyn LiveRun> = match &gpu {
                Ok(ctx) => Box::new(LmRun::new(
                    cfg,
                    corpus.clone(),
                    GpuDevice::new(ctx.clone()),
                )?),
                Err(_) => Box::new(LmRun::new(cfg, corpus.clone(), Cpu)?),
            };
            self.runs.push(run);
        }
        self.corpus = Some((self.state.lm.val_fraction, corpus));
        self.layer = self.layer.min(self.state.lm.n_layer - 1);
        Ok(())
    }

    /// Restarts with `state` (new settings) at step 0; invalid settings are refused with the
    /// run kept.
    fn apply(&mut self, mut state: TransformerLabState, io: &mut LabIo<'_>) {
        state.step = 0;
        if let Err(e) = state.validate() {
            io.error(format!("not applied: {e}"));
            return;
        }
        let old = std::mem::replace(&mut self.state, state);
        match self.start(io.compute) {
            Ok(()) => {
                self.target = 0;
                if io.message.as_ref().is_some_and(|(_, error)| *error) {
                    *io.message = None;
                }
            }
            Err(e) => {
                io.error(format!("not applied: {e}"));
                self.state = old;
                let _ = self.start(io.compute);
            }
        }
    }

    /// The lab's state (what its part of the link holds).
    pub fn state(&self) -> &TransformerLabState {
        &self.state
    }

    /// The runs.
    pub fn runs(&self) -> &[Box<dyn LiveRun>] {
        &self.runs
    }

    /// Where the runs train: `GPU`, or `CPU (why)`.
    pub fn device(&self) -> &str {
        match &self.device {
            Placement::Gpu => "GPU",
            Placement::Cpu(why) => why,
        }
    }

    /// Tokens trained per second since playing started, all runs together.
    pub fn tokens_per_s(&self) -> f64 {
        self.rate.tokens_per_s
    }

    /// The runs' step (they step together; a run that stopped early no longer counts).
    fn steps(&self) -> u64 {
        let live = self.runs.iter().filter(|r| r.stopped().is_none());
        live.map(|r| r.steps())
            .min()
            .or_else(|| self.runs.iter().map(|r| r.steps()).max())
            .unwrap_or(0)
    }

    fn all_finished(&self) -> bool {
        self.runs.iter().all(|r| r.finished())
    }

    fn restoring(&self) -> bool {
        self.steps() < self.target && !self.all_finished()
    }

    /// Collects read-backs and draws sample tokens; a run that fails stops, with its message.
    fn poll(&mut self, io: &mut LabIo<'_>) {
        for r in &mut self.runs {
            if let Err(e) = r.poll(SAMPLE_BUDGET_SECS) {
                io.error(e);
                *io.playing = false;
            }
        }
    }

    /// One step of every run (all in step with each other); false when finished, stopped, or
    /// waiting for a GPU's read-backs.
    fn step_once(&mut self, io: &mut LabIo<'_>) -> bool {
        if self.all_finished() {
            return false;
        }
        let live: Vec<usize> = (0..self.runs.len())
            .filter(|&i| !self.runs[i].finished())
            .collect();
        if live.iter().any(|&i| !self.runs[i].can_step()) {
            return false;
        }
        for i in live {
            if let Err(e) = self.runs[i].step() {
                io.error(e);
                *io.playing = false;
            }
        }
        self.state.step = self.steps();
        true
    }

    /// The commands that train the same runs with `optiscope train --model gpt`, one per line.
    pub fn cli_command(&self) -> String {
        cli_command(&self.state)
    }
}

/// `optiscope train --model gpt` for each run of `s`: its whole config on standard input (the
/// shared sizes, steps, schedule and seed with that run's optimizer), one line per run.
pub fn cli_command(s: &TransformerLabState) -> String {
    (0..s.optimizers.len())
        .map(|i| {
            let cfg = s.run_config(i);
            let json = serde_json::to_string(&cfg).unwrap_or_default();
            format!(
                "printf '%s' '{}' | optiscope train --model gpt --config - --out runs/transformer-{}",
                json.replace('\'', "'\\''"),
                cfg.optimizer.name()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Lab for TransformerLab {
    fn kind(&self) -> LabKind {
        LabKind::Transformer
    }

    fn view_name(&self) -> &'static str {
        "transformer"
    }

    fn preset(&self) -> String {
        let lm = &self.state.lm;
        format!("gpt-{}x{}-ctx{}", lm.n_layer, lm.n_embd, lm.block_size)
    }

    fn guide(&self) -> &'static crate::guide::Guide {
        crate::guide::transformer()
    }

    fn step(&self) -> u64 {
        self.steps()
    }

    fn step_label(&self) -> String {
        format!(
            "step {} / {} · {:.0} tokens/s",
            self.steps(),
            self.state.lm.steps,
            self.rate.tokens_per_s
        )
    }

    fn step_unit(&self) -> &'static str {
        "steps"
    }

    fn step_hint(&self) -> &'static str {
        "S: one optimizer step of every run (the same batch for all)"
    }

    fn finished(&self) -> bool {
        self.all_finished()
    }

    fn busy(&self) -> bool {
        self.restoring() || self.runs.iter().any(|r| r.busy())
    }

    fn step_by(&mut self, n: u64, io: &mut LabIo<'_>) -> u64 {
        let mut taken = 0;
        while taken < n && self.step_once(io) {
            taken += 1;
        }
        self.poll(io);
        self.target = self.target.max(self.steps());
        taken
    }

    fn frame(&mut self, playing: bool, speed: u32, budget_secs: f64, io: &mut LabIo<'_>) -> u64 {
        self.poll(io);
        let taken = replay_or_play(
            self,
            (playing, speed, budget_secs),
            io,
            Self::restoring,
            Self::step_once,
        );
        self.poll(io);
        let done = self.runs.iter().map(|r| r.done_steps()).sum();
        let tokens = self.state.lm.batch_size * self.state.lm.block_size;
        self.rate.update(playing || self.restoring(), done, tokens);
        taken
    }

    fn reset(&mut self, io: &mut LabIo<'_>) {
        self.state.step = 0;
        self.target = 0;
        if let Err(e) = self.start(io.compute) {
            io.error(e);
        }
    }

    fn compute_changed(&mut self, io: &mut LabIo<'_>) {
        // The runs start again on the new path and replay to where they were (training is
        // deterministic given the config and the step).
        let step = self.target.max(self.steps());
        match self.start(io.compute) {
            Ok(()) => self.target = step,
            Err(e) => io.error(e),
        }
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        let label = ui.label("seed:");
        let mut seed = self.state.lm.seed;
        if ui
            .add(egui::DragValue::new(&mut seed))
            .labelled_by(label.id)
            .on_hover_text("the initialisation and the batches, shared by every run")
            .changed()
        {
            let mut state = self.state.clone();
            state.lm.seed = seed;
            self.apply(state, io);
        }
        ui.label(format!("on: {}", self.device()));
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        ui.heading("Transformer");
        ui.weak(
            "nanoGPT's character-level GPT on tiny Shakespeare, every run from the same \
             initialisation and the same batches. Matrix optimizers (Muon, AMUSE) orthogonalize \
             the blocks' weight matrices; embeddings, gains and biases go to their auxiliary \
             AdamW. Watch the spectra: Muon's and AMUSE's singular values grow together, AdamW's \
             largest ones first.",
        );
        ui.separator();
        let mut state = self.state.clone();
        let mut changed = false;
        ui.label(RichText::new("optimizers").strong());
        let mut edited = false;
        let removed = crate::views::run_rows(ui, &mut state.optimizers, |ui, i, o| {
            let mut name = o.name();
            egui::ComboBox::from_id_salt(("gpt-opt", i))
                .selected_text(name)
                .show_ui(ui, |ui| {
                    for &n in TRANSFORMER_OPTIMIZERS {
                        ui.selectable_value(&mut name, n, n);
                    }
                })
                .response
                .accessible_name(format!("run {} optimizer", i + 1));
            if name != o.name() {
                if let Some(c) = transformer_optimizer(name) {
                    *o = c;
                    edited = true;
                }
            }
            let mut lr = o.lr();
            let speed = lr * 0.01;
            if ui
                .add(
                    egui::DragValue::new(&mut lr)
                        .speed(speed)
                        .range(1e-6..=1.0)
                        .prefix("lr "),
                )
                .accessible_name(format!("run {} lr", i + 1))
                .changed()
                && o.set_field("lr", serde_json::json!(lr)).is_ok()
            {
                edited = true;
            }
        });
        changed |= removed | edited;
        if state.optimizers.len() < MAX_TRANSFORMER_RUNS && ui.button("add a run").clicked() {
            state
                .optimizers
                .extend(transformer_optimizer("adamw_schedulefree"));
            changed = true;
        }
        ui.separator();
        ui.label(RichText::new("model and run").strong());
        let lm = &mut state.lm;
        egui::Grid::new("gpt-sizes").num_columns(2).show(ui, |ui| {
            let mut row = |ui: &mut egui::Ui, label: &str, v: &mut usize, choices: &[usize]| {
                let name = ui.label(label).id;
                egui::ComboBox::from_id_salt(("gpt-size", label.to_string()))
                    .selected_text(v.to_string())
                    .show_ui(ui, |ui| {
                        for &c in choices {
                            changed |= ui.selectable_value(v, c, c.to_string()).changed();
                        }
                    })
                    .response
                    .labelled_by(name);
                ui.end_row();
            };
            row(ui, "layers", &mut lm.n_layer, &[1, 2, 3, 4]);
            row(ui, "heads", &mut lm.n_head, &[1, 2, 4, 8]);
            row(ui, "width C", &mut lm.n_embd, &[32, 64, 128]);
            row(ui, "context", &mut lm.block_size, &[16, 32, 64]);
            row(ui, "batch", &mut lm.batch_size, &[4, 8, 16, 32]);
            let label = ui.label("steps");
            changed |= ui
                .add(egui::DragValue::new(&mut lm.steps).range(10..=100_000))
                .labelled_by(label.id)
                .changed();
            ui.end_row();
            let label = ui.label("evaluate every");
            changed |= ui
                .add(egui::DragValue::new(&mut lm.eval_interval).range(10..=10_000))
                .labelled_by(label.id)
                .changed();
            ui.end_row();
            let label = ui.label("schedule");
            let mut kind = lm.schedule.kind;
            egui::ComboBox::from_id_salt("gpt-schedule")
                .selected_text(kind.name())
                .show_ui(ui, |ui| {
                    for k in [
                        ScheduleKind::Constant,
                        ScheduleKind::Cosine,
                        ScheduleKind::Wsd,
                    ] {
                        ui.selectable_value(&mut kind, k, k.name());
                    }
                })
                .response
                .labelled_by(label.id);
            if kind != lm.schedule.kind {
                lm.schedule.kind = kind;
                changed = true;
            }
            ui.end_row();
            let label = ui.label("warm-up steps");
            changed |= ui
                .add(egui::DragValue::new(&mut lm.schedule.warmup_steps).range(0..=10_000))
                .labelled_by(label.id)
                .changed();
            ui.end_row();
        });
        if changed {
            self.apply(state, io);
        }
    }

    fn view_ui(&mut self, ui: &mut egui::Ui, _io: &mut LabIo<'_>) {
        if self.restoring() {
            ui.colored_label(
                Color32::from_rgb(255, 190, 40),
                format!(
                    "replaying the link: step {} of {}",
                    self.steps(),
                    self.target
                ),
            );
        }
        if self.runs.is_empty() {
            ui.label("The runs could not start: see the message below.");
            return;
        }
        for r in &self.runs {
            if let Some(why) = r.stopped() {
                ui.colored_label(Color32::from_rgb(255, 120, 120), why);
            }
        }
        let height = (ui.available_height() * 0.36).max(140.0);
        ui.columns(2, |cols| {
            cols[0].label("Loss per character (nats): training batches (lines), validation at the evaluation point (dots).");
            Plot::new("gpt-loss")
                .legend(Legend::default())
                .height(height)
                .x_axis_label("step")
                .include_y(0.0)
                .include_y(4.5)
                .include_x(0.0)
                .include_x(self.state.lm.steps as f64)
                .show(&mut cols[0], |plot| {
                    for (i, r) in self.runs.iter().enumerate() {
                        let rec = r.records();
                        plot.line(
                            Line::new(format!("{} train", r.name()), rec.train.clone())
                                .color(run_color(i).gamma_multiply(0.6))
                                .width(1.0),
                        );
                        plot.points(
                            Points::new(format!("{} val", r.name()), rec.val.clone())
                                .color(run_color(i))
                                .radius(3.0),
                        );
                        plot.line(
                            Line::new(format!("{} val", r.name()), rec.val.clone())
                                .color(run_color(i))
                                .width(2.0),
                        );
                    }
                });
            let n_layer = self.state.lm.n_layer;
            cols[1].horizontal(|ui| {
                ui.label("Singular values of block");
                for l in 0..n_layer {
                    ui.selectable_value(&mut self.layer, l, l.to_string());
                }
                ui.label("'s matrices (largest first, at the evaluation point).");
            });
            let layer = self.layer;
            Plot::new("gpt-spectra")
                .legend(Legend::default())
                .height(height)
                .x_axis_label("index")
                .include_x(0.0)
                .include_y(0.0)
                .show(&mut cols[1], |plot| {
                    for (i, r) in self.runs.iter().enumerate() {
                        let Some((_, spectra)) = &r.records().spectra else {
                            continue;
                        };
                        for (k, (name, sv)) in spectra
                            .iter()
                            .filter(|(n, _)| n.starts_with(&format!("transformer.h.{layer}.")))
                            .enumerate()
                        {
                            let short = name
                                .trim_start_matches(&format!("transformer.h.{layer}."))
                                .trim_end_matches(".weight");
                            let pts: Vec<[f64; 2]> =
                                sv.iter().enumerate().map(|(j, s)| [j as f64, *s]).collect();
                            let style = [
                                egui_plot::LineStyle::Solid,
                                egui_plot::LineStyle::dashed_loose(),
                                egui_plot::LineStyle::dotted_loose(),
                                egui_plot::LineStyle::dashed_dense(),
                            ][k % 4];
                            plot.line(
                                Line::new(format!("{} {short}", r.name()), pts)
                                    .color(run_color(i))
                                    .style(style)
                                    .width(1.5),
                            );
                        }
                    }
                });
        });
        ui.separator();
        ui.label("Text sampled from each run's latest evaluation weights (temperature 1, a new one every few seconds):");
        egui::ScrollArea::vertical().show(ui, |ui| {
            for (i, r) in self.runs.iter().enumerate() {
                let rec = r.records();
                let val = rec
                    .val
                    .last()
                    .map_or("-".into(), |v| format!("{:.3}", v[1]));
                ui.colored_label(
                    run_color(i),
                    format!("{} · step {} · val loss {val}", r.name(), r.steps()),
                );
                match &rec.sample {
                    Some((step, text)) => {
                        ui.label(RichText::new(text.as_str()).monospace());
                        ui.weak(format!("(weights of step {step})"));
                    }
                    None => {
                        ui.weak("(sampling...)");
                    }
                }
            }
        });
    }

    fn share_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        if ui
            .button("copy CLI command")
            .on_hover_text(
                "`optiscope train --model gpt` for each run: the same initialisation, batches and losses",
            )
            .clicked()
        {
            ui.ctx().copy_text(self.cli_command());
            io.notice("CLI commands copied (one per run)");
        }
    }

    fn link_notice(&self) -> &'static str {
        "link copied: it retrains these runs to this step"
    }

    fn detail(&mut self) -> String {
        let runs = self
            .runs
            .iter()
            .map(|r| {
                let rec = r.records();
                let last =
                    |v: &[[f64; 2]]| v.last().map_or("-".to_string(), |p| format!("{:.4}", p[1]));
                let first = rec
                    .train
                    .first()
                    .map_or("-".to_string(), |p| format!("{:.4}", p[1]));
                format!(
                    "{} step={} train0={first} train={} val={} evals={} sample={}",
                    r.name(),
                    r.steps(),
                    last(&rec.train),
                    last(&rec.val),
                    rec.val.len(),
                    rec.sample.as_ref().map_or(0, |(_, s)| s.chars().count())
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let device = match self.device {
            Placement::Gpu => "gpu",
            Placement::Cpu(_) => "cpu",
        };
        format!(
            "device={device} tokens_per_s={:.0}; {runs}",
            self.rate.tokens_per_s
        )
    }

    fn save_state(&self, states: &mut LabStates) {
        let mut state = self.state.clone();
        state.step = self.target.max(self.steps());
        states.transformer = Some(state);
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::run::{LiveRun, LmRun, SAMPLE_TOKENS};
    use super::*;
    use crate::state::ExplorerState;
    use optiscope_core::train::lm::LmConfig;

    fn io_parts() -> (Option<(String, bool)>, bool, ComputePath) {
        (
            None,
            false,
            ComputePath::Cpu {
                reason: "test".into(),
            },
        )
    }

    /// A short run of the default lab (2 layers, C = 64, context 32; AdamW, Muon, AMUSE).
    fn short(steps: u64) -> TransformerLabState {
        let mut s = TransformerLabState::default();
        s.lm.steps = steps;
        s.lm.eval_interval = 20;
        s.lm.eval_iters = 2;
        s
    }

    /// Every run starts from the same weights on the same batch (equal first losses and step-0
    /// validation losses), all of them learn (the last logged training loss is below the first by
    /// more than 0.3 nats in 60 steps — AMUSE is still in its warm-up — from ln 65 ≈ 4.17), each evaluation is recorded at the evaluation
    /// point, the spectra cover every block matrix, and a sample of the configured length
    /// arrives.
    #[test]
    fn the_runs_start_together_and_learn() {
        let (mut msg, mut playing, mut compute) = io_parts();
        let mut io = LabIo {
            message: &mut msg,
            playing: &mut playing,
            compute: &mut compute,
        };
        let mut lab = TransformerLab::new(short(60), &mut io);
        assert_eq!(lab.device(), "CPU (test)");
        assert_eq!(lab.step_by(100, &mut io), 60);
        assert!(lab.finished());
        for _ in 0..10_000 {
            if !lab.busy() {
                break;
            }
            lab.frame(false, 1, 0.0, &mut io);
        }
        assert!(msg.is_none(), "{msg:?}");
        let runs = lab.runs();
        assert_eq!(runs.len(), 3);
        let first = runs[0].records().train[0][1];
        let val0 = runs[0].records().val[0];
        assert!((first - 65f64.ln()).abs() < 0.2, "initial loss {first}");
        for r in runs {
            let rec = r.records();
            assert_eq!(rec.train.len(), 60, "{}", r.name());
            assert_eq!(
                rec.train[0][1],
                first,
                "{}: same weights, same batch",
                r.name()
            );
            assert_eq!(rec.val[0], val0, "{}: same step-0 evaluation", r.name());
            let steps: Vec<f64> = rec.val.iter().map(|v| v[0]).collect();
            assert_eq!(steps, [0.0, 20.0, 40.0, 60.0], "{}", r.name());
            let last = rec.train.last().unwrap()[1];
            assert!(last < first - 0.3, "{}: {first} -> {last}", r.name());
            let (step, spectra) = rec.spectra.as_ref().unwrap();
            assert_eq!(*step, 60);
            assert_eq!(spectra.len(), 4 * 2, "{}: 4 matrices x 2 blocks", r.name());
            assert_eq!(spectra["transformer.h.0.mlp.c_fc.weight"].len(), 64);
            let (_, text) = rec.sample.as_ref().unwrap();
            assert_eq!(text.chars().count(), SAMPLE_TOKENS);
        }
        let d = lab.detail();
        assert!(d.starts_with("device=cpu tokens_per_s="), "{d}");
        assert!(d.contains("muon step=60"), "{d}");
    }

    /// A link of a lab that has stepped reopens the same runs and replays them to the same step
    /// with the same losses, bit for bit.
    #[test]
    fn a_link_retrains_to_the_same_losses() {
        let (mut msg, mut playing, mut compute) = io_parts();
        let mut io = LabIo {
            message: &mut msg,
            playing: &mut playing,
            compute: &mut compute,
        };
        let mut state = short(200);
        state.optimizers.truncate(2);
        state.lm.seed = 7;
        let mut lab = TransformerLab::new(state, &mut io);
        lab.step_by(25, &mut io);
        let mut explorer = ExplorerState::from_preset("river-valley");
        explorer.lab = LabKind::Transformer;
        lab.save_state(&mut explorer.labs);
        let reopened = ExplorerState::from_fragment(&explorer.to_fragment())
            .unwrap()
            .unwrap();
        assert_eq!(reopened, explorer);
        let mut again = TransformerLab::new(reopened.labs.transformer.clone().unwrap(), &mut io);
        assert!(again.busy());
        for _ in 0..1000 {
            if again.step() == 25 {
                break;
            }
            again.frame(false, 1, 0.01, &mut io);
        }
        assert_eq!(again.step(), 25);
        for (a, b) in lab.runs().iter().zip(again.runs()) {
            assert_eq!(a.records().train, b.records().train, "{}", a.name());
        }
    }

    /// The copied commands hold each run's whole config: the JSON on each line is that run's.
    #[test]
    fn cli_commands_carry_each_run() {
        let mut s = TransformerLabState::default();
        s.lm.seed = 3;
        s.lm.schedule.kind = ScheduleKind::Cosine;
        s.optimizers[1]
            .set_field("lr", serde_json::json!(0.05))
            .unwrap();
        let cmd = cli_command(&s);
        let lines: Vec<&str> = cmd.lines().collect();
        assert_eq!(lines.len(), 3);
        for (i, line) in lines.iter().enumerate() {
            let json = line
                .strip_prefix("printf '%s' '")
                .and_then(|l| {
                    l.split_once(
                        "' | optiscope train --model gpt --config - --out runs/transformer-",
                    )
                })
                .map(|(j, _)| j)
                .unwrap_or_else(|| panic!("{line}"));
            let cfg: LmConfig = serde_json::from_str(json).unwrap();
            assert_eq!(cfg, s.run_config(i));
        }
        assert!(lines[1].ends_with("runs/transformer-muon"));
    }

    /// Short links pick the optimizers; unknown optimizers, sizes the page cannot train and too
    /// many runs are refused with the reason.
    #[test]
    fn short_links_and_bounds() {
        let s = ExplorerState::from_fragment(
            "transformer=muon,adamw_schedulefree&seed=5&step=40&speed=3",
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.lab, LabKind::Transformer);
        assert_eq!(s.speed, 3);
        let t = s.labs.transformer.unwrap();
        let names: Vec<&str> = t.optimizers.iter().map(|o| o.name()).collect();
        assert_eq!(names, ["muon", "adamw_schedulefree"]);
        assert_eq!((t.lm.seed, t.step), (5, 40));
        let e = ExplorerState::from_fragment("transformer=mezo").unwrap_err();
        assert!(
            e.contains("not one the Transformer lab runs (one of adamw, adam"),
            "{e}"
        );
        let e = ExplorerState::from_fragment("transformer=adamw,muon,amuse,adam").unwrap_err();
        assert!(e.contains("4 optimizers: the lab trains 1 to 3"), "{e}");
        let e = ExplorerState::from_fragment("transformer=adamw&depth=3").unwrap_err();
        assert!(e.contains("unknown link parameter \"depth\""), "{e}");
        for name in TRANSFORMER_OPTIMIZERS {
            let c = transformer_optimizer(name).unwrap();
            c.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(transformer_optimizer("mezo").is_none());
        let mut big = TransformerLabState::default();
        big.lm.n_embd = 256;
        big.lm.n_head = 4;
        let e = big.validate().unwrap_err();
        assert_eq!(
            e,
            "n_embd = 256 is more than the explorer trains (128; `optiscope train --model gpt` runs it)"
        );
    }

    /// The lab's GPU run (its read-backs through `LabDevice`) trains as its CPU run does: the
    /// same losses to 1e-4 over 30 steps with Muon (Newton–Schulz on the device) and AdamW.
    #[test]
    fn gpu_runs_match_cpu_runs() {
        let Some(ctx) = crate::test_gpu() else {
            return;
        };
        let mut s = short(30);
        s.lm.n_embd = 32;
        s.lm.block_size = 16;
        s.lm.batch_size = 4;
        s.lm.log_interval = 7;
        let corpus = Corpus::new(&tinyshakespeare(), s.lm.val_fraction, None).unwrap();
        for i in [0, 1] {
            let cfg = s.run_config(i);
            let mut cpu = LmRun::new(cfg.clone(), corpus.clone(), Cpu).unwrap();
            let mut gpu = LmRun::new(cfg, corpus.clone(), GpuDevice::new(ctx.clone())).unwrap();
            while !gpu.finished() {
                cpu.step().unwrap();
                gpu.step().unwrap();
                gpu.poll(0.0).unwrap();
            }
            while gpu.busy() || cpu.busy() {
                gpu.poll(1.0).unwrap();
                cpu.poll(1.0).unwrap();
            }
            let (c, g) = (cpu.records(), gpu.records());
            assert_eq!(g.train.len(), 30, "{}", cpu.name());
            assert_eq!(
                g.val.len(),
                3,
                "{}: evaluations at 0, 20 and the last, 30",
                cpu.name()
            );
            assert_eq!(c.val.len(), 3, "{}", cpu.name());
            for (a, b) in c
                .train
                .iter()
                .chain(&c.val)
                .zip(g.train.iter().chain(&g.val))
            {
                assert_eq!(a[0], b[0]);
                assert!((a[1] - b[1]).abs() < 1e-4, "{}: {a:?} vs {b:?}", cpu.name());
            }
        }
    }
}
