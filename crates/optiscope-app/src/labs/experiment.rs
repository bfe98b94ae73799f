//! The experiment lab: optimizers side by side on one problem, from the same start — the
//! landscape with their paths, the singular values of a factorization, the losses — with the runs
//! panel editing each optimizer's fields.

use optiscope_core::experiment::presets::PRESETS;
use optiscope_core::experiment::Experiment;
use optiscope_core::metrics::{self, RunMetrics};
use optiscope_core::problems::landscape::Landscape;
use optiscope_core::problems::ProblemConfig;
use web_time::Instant;

use crate::export;
use crate::lab::{Lab, LabIo};
use crate::state::{ExperimentLabState, LabKind, LabStates, View};
use crate::views;

/// The views of this lab, in the order of its tabs.
const VIEWS: [View; 3] = [View::Landscape, View::Spectrum, View::Loss];

/// The experiment lab.
pub struct ExperimentLab {
    state: ExperimentLabState,
    exp: Experiment,
    /// The heat map texture of the current problem: (problem as JSON, texture).
    heatmap: Option<(String, egui::TextureId)>,
    /// A dropped `metrics.jsonl`, drawn instead of the live runs.
    loaded: Option<RunMetrics>,
}

impl ExperimentLab {
    /// The lab on `state`, stepped to its step. An experiment that cannot be built falls back to
    /// its preset, with a message.
    pub fn new(state: ExperimentLabState, io: &mut LabIo<'_>) -> Self {
        let (state, exp) = match Experiment::new(state.experiment.clone()) {
            Ok(e) => (state, e),
            Err(err) => {
                io.error(format!(
                    "the link's experiment is not valid ({err}); showing the preset"
                ));
                let fallback = ExperimentLabState {
                    step: state.step,
                    ..ExperimentLabState::from_preset(&state.preset)
                };
                let e = Experiment::new(fallback.experiment.clone())
                    .unwrap_or_else(|_| unreachable!("presets are valid"));
                (fallback, e)
            }
        };
        let mut lab = Self {
            state,
            exp,
            heatmap: None,
            loaded: None,
        };
        let target = lab.state.step;
        lab.state.step = 0;
        lab.advance(target, io);
        lab
    }

    /// The running experiment.
    pub fn experiment(&self) -> &Experiment {
        &self.exp
    }

    /// The lab's state (what its part of the link holds).
    pub fn state(&self) -> &ExperimentLabState {
        &self.state
    }

    fn advance(&mut self, n: u64, io: &mut LabIo<'_>) -> u64 {
        let before = self.exp.current_step();
        let report = self.exp.step(n);
        for (i, d) in report.diverged {
            let label = &self.exp.runs()[i].config.label;
            io.error(format!(
                "run {label:?} diverged at step {} (loss {}); it stops there",
                d.step, d.loss
            ));
        }
        for (i, f) in report.failed {
            let label = &self.exp.runs()[i].config.label;
            io.error(format!(
                "run {label:?} failed at step {}: {}; it stops there, the others go on",
                f.step, f.error
            ));
        }
        self.state.step = self.exp.current_step();
        self.state.step - before
    }

    /// Rebuilds the experiment from the state's config (after an edit), back at step 0.
    pub fn rebuild(&mut self, io: &mut LabIo<'_>) {
        match Experiment::new(self.state.experiment.clone()) {
            Ok(e) => {
                self.exp = e;
                self.state.step = 0;
            }
            Err(e) => io.error(e.to_string()),
        }
    }

    fn load_preset(&mut self, name: &str, io: &mut LabIo<'_>) {
        let view = self.state.view;
        self.state = ExperimentLabState::from_preset(name);
        if view == View::Loss {
            self.state.view = view;
        }
        self.loaded = None;
        self.rebuild(io);
    }

    fn preset_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        let mut preset = self.state.preset.clone();
        egui::ComboBox::from_id_salt("preset")
            .selected_text(format!("preset: {preset}"))
            .show_ui(ui, |ui| {
                for p in PRESETS {
                    ui.selectable_value(&mut preset, p.name.to_string(), p.name)
                        .on_hover_text(p.summary);
                }
            })
            .response
            .accessible_name("preset");
        if preset != self.state.preset {
            self.load_preset(&preset, io);
        }
    }

    /// Moves the start of a 2-D problem to `p` and starts again.
    pub fn set_start(&mut self, p: [f64; 2], io: &mut LabIo<'_>) {
        set_start(&mut self.state.experiment.problem, p);
        self.rebuild(io);
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

impl Lab for ExperimentLab {
    fn kind(&self) -> LabKind {
        LabKind::Experiment
    }

    fn view_name(&self) -> &'static str {
        self.state.view.name()
    }

    fn preset(&self) -> String {
        self.state.preset.clone()
    }

    fn guide(&self) -> &'static crate::guide::Guide {
        crate::guide::experiment(&self.state.preset)
    }

    fn step(&self) -> u64 {
        self.exp.current_step()
    }

    fn step_label(&self) -> String {
        format!(
            "step {} / {}",
            self.exp.current_step(),
            self.state.experiment.steps
        )
    }

    fn step_unit(&self) -> &'static str {
        "steps"
    }

    fn step_hint(&self) -> &'static str {
        "S: one optimizer step"
    }

    fn finished(&self) -> bool {
        self.exp.is_done()
    }

    fn step_by(&mut self, n: u64, io: &mut LabIo<'_>) -> u64 {
        self.advance(n, io)
    }

    fn frame(&mut self, playing: bool, speed: u32, budget_secs: f64, io: &mut LabIo<'_>) -> u64 {
        if !playing || self.exp.is_done() {
            if self.exp.is_done() {
                *io.playing = false;
            }
            return 0;
        }
        let start = Instant::now();
        let mut taken = 0u64;
        while taken < u64::from(speed)
            && start.elapsed().as_secs_f64() < budget_secs
            && !self.exp.is_done()
        {
            self.advance(1, io);
            taken += 1;
        }
        taken
    }

    fn compute_changed(&mut self, _io: &mut LabIo<'_>) {
        // The heat map is drawn again on the new path.
        self.heatmap = None;
    }

    fn reset(&mut self, io: &mut LabIo<'_>) {
        self.rebuild(io);
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        for view in VIEWS {
            ui.selectable_value(&mut self.state.view, view, view.label());
        }
        ui.separator();
        self.preset_ui(ui, io);
        ui.separator();
        let mut seed = self.state.experiment.seed;
        let label = ui.label("seed");
        if ui
            .add(egui::DragValue::new(&mut seed))
            .labelled_by(label.id)
            .changed()
        {
            self.state.experiment.seed = seed;
            self.rebuild(io);
        }
        let mut steps = self.state.experiment.steps;
        let label = ui.label("steps");
        if ui
            .add(egui::DragValue::new(&mut steps).range(1..=1_000_000))
            .labelled_by(label.id)
            .changed()
        {
            self.state.experiment.steps = steps;
            self.rebuild(io);
        }
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        ui.heading("Runs");
        if let Some(runs) = views::runs::runs_ui(ui, &self.state.experiment.runs) {
            self.state.experiment.runs = runs;
            self.rebuild(io);
        }
    }

    fn view_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        match self.state.view {
            View::Spectrum => views::spectrum::spectrum_ui(ui, &self.exp, self.loaded.as_ref()),
            View::Loss => views::loss::loss_ui(ui, &self.exp, self.loaded.as_ref()),
            _ => {
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
                    match io.compute.heatmap(ui.ctx(), &landscape) {
                        Ok(id) => self.heatmap = Some((key, id)),
                        Err(e) => io.error(format!("heat map: {e}")),
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
                    self.set_start(p, io);
                }
            }
        }
    }

    fn share_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        if ui
            .button("copy CLI command")
            .on_hover_text("reruns this experiment with `optiscope run`")
            .clicked()
        {
            ui.ctx().copy_text(export::cli_command(
                &self.state.experiment,
                &self.state.preset,
            ));
            io.notice("CLI command copied");
        }
        if ui.button("export metrics CSV").clicked() {
            let r = export::save_text("optiscope-metrics.csv", &export::metrics_csv(&self.exp));
            export::report(io, r);
        }
        if ui.button("export config JSON").clicked() {
            let r = export::save_text(
                "optiscope-config.json",
                &export::config_json(&self.state.experiment),
            );
            export::report(io, r);
        }
        if self.loaded.is_some() && ui.button("close file").clicked() {
            self.loaded = None;
        }
        ui.label("(drop a metrics.jsonl here to view it)");
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn link_notice(&self) -> &'static str {
        "link copied: it reopens this experiment at this step"
    }

    fn save_state(&self, states: &mut LabStates) {
        states.experiment = ExperimentLabState {
            step: self.exp.current_step(),
            ..self.state.clone()
        };
    }

    fn open_file(&mut self, name: &str, text: &str) -> Option<Result<String, String>> {
        Some(metrics::read_run_metrics(name, text).map(|m| {
            let skipped = match m.skipped {
                0 => String::new(),
                k => format!(
                    "; {k} record(s) had a point or singular values that are not numbers (shown without them)"
                ),
            };
            let shown = format!(
                "showing {} ({} runs{skipped}); \"close file\" returns to the live experiment",
                m.name,
                m.runs.len()
            );
            self.loaded = Some(m);
            shown
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::ComputePath;

    #[test]
    fn clicking_the_landscape_moves_the_start() {
        let (mut message, mut playing) = (None, false);
        let mut compute = ComputePath::Cpu {
            reason: "test".into(),
        };
        let mut io = LabIo {
            message: &mut message,
            playing: &mut playing,
            compute: &mut compute,
        };
        let mut lab = ExperimentLab::new(ExperimentLabState::from_preset("quadratic"), &mut io);
        lab.set_start([0.5, -0.25], &mut io);
        let first = &lab.exp.runs()[0].history()[0];
        assert_eq!(
            first.observation,
            optiscope_core::problems::Observation::Point([0.5, -0.25])
        );
    }
}
