//! The Alignment lab: `optiscope align`'s experiments stepped live on the CPU with core's code.
//!
//! Sampler experiments (`coverage`, `rich-features`) step one run's round at a time, the runs
//! side by side: per-arm bars of π̂ (the chosen run), π* and π_ref for a chosen context, with the
//! hybrid's G-optimal design weights on the arms; KL(π*‖π̂) per round on a log scale for every
//! run against the pairs used; the coverage C_feat of each round's sampler and the entropy over
//! rounds. The other kinds (`degeneracy`, `grpo`, `thinksafe`, `multitask`) step one run at a
//! time: a chosen value of every run over its records, and the table of their last values.
//!
//! Knobs: the preset, the seed, β, every sampler run (sampler, T, N, objective), the kind's own
//! numbers (γ, ω, …) and the whole config as JSON. The link holds the config and the step count
//! (every draw is addressed by the seed, so a link replays to the same picture); "copy CLI
//! command" gives the `optiscope align` line that writes the same numbers.

use egui::{Color32, RichText};
use egui_plot::{Bar, BarChart, GridMark, HLine, Legend, Line, Plot, Points};
use optiscope_core::align::bandit::Bandit;
use optiscope_core::align::experiment::{
    align_preset, AlignConfig, AlignRun, RunResult, SamplerConfig, ALIGN_PRESETS,
};
use optiscope_core::align::first_order::Fit;
use optiscope_core::align::sampler::{Labels, Objective, Problem, Sampler, SamplerRun};
use optiscope_core::device::Cpu;

use crate::export;
use crate::lab::{replay_or_play, Lab, LabIo};
use crate::state::{AlignLabState, LabKind, LabStates};
use crate::views::run_color;

/// What is being stepped.
enum Live {
    /// Sampler runs, a round at a time.
    Samplers {
        cfg: SamplerConfig,
        bandit: Bandit,
        runs: Vec<SamplerRun>,
    },
    /// Any other kind, a run at a time.
    Runs {
        cfg: AlignConfig,
        done: Vec<RunResult>,
    },
}

impl Live {
    fn new(cfg: &AlignConfig) -> Result<Self, String> {
        cfg.build().map_err(|e| e.to_string())?;
        Ok(match cfg {
            AlignConfig::Samplers(c) => {
                let bandit = c.build().map_err(|e| e.to_string())?;
                let problem = problem(c, &bandit);
                let runs = c
                    .runs
                    .iter()
                    .map(|r| SamplerRun::new(&problem, r.sampler, r.objective, r.n_total, c.seed))
                    .collect();
                Self::Samplers {
                    cfg: c.clone(),
                    bandit,
                    runs,
                }
            }
            other => Self::Runs {
                cfg: other.clone(),
                done: vec![],
            },
        })
    }

    fn steps(&self) -> u64 {
        match self {
            Self::Samplers { runs, .. } => runs.iter().map(|r| r.rounds().len() as u64).sum(),
            Self::Runs { done, .. } => done.len() as u64,
        }
    }

    fn total(&self) -> u64 {
        match self {
            Self::Samplers { runs, .. } => runs.iter().map(|r| r.total_rounds() as u64).sum(),
            Self::Runs { cfg, .. } => cfg.runs() as u64,
        }
    }

    fn finished(&self) -> bool {
        self.steps() >= self.total()
    }

    /// One step: the next round of the run with the fewest rounds (the runs advance side by
    /// side), or the next run.
    fn step(&mut self) -> Result<(), String> {
        match self {
            Self::Samplers { cfg, bandit, runs } => {
                let Some(next) = runs
                    .iter_mut()
                    .filter(|r| !r.finished())
                    .min_by_key(|r| r.rounds().len())
                else {
                    return Ok(());
                };
                let p = problem(cfg, bandit);
                match &cfg.fit {
                    Fit::Newton => {
                        next.step(&p);
                        Ok(())
                    }
                    Fit::FirstOrder(f) => next.step_on(&p, &mut Cpu, f).map_err(|e| e.to_string()),
                }
            }
            Self::Runs { cfg, done } => {
                if done.len() < cfg.runs() {
                    let r = cfg.run_one(done.len()).map_err(|e| e.to_string())?;
                    done.push(r);
                }
                Ok(())
            }
        }
    }
}

fn problem<'a>(c: &'a SamplerConfig, bandit: &'a Bandit) -> Problem<'a> {
    Problem {
        bandit,
        theta_ref: &c.theta_ref,
        theta_star: &c.theta_star,
        beta: c.beta,
        ridge: c.ridge,
        labels: c.labels,
    }
}

/// The Alignment lab.
pub struct AlignLab {
    state: AlignLabState,
    live: Option<Live>,
    /// The step a link asks for, replayed over the next frames.
    target: u64,
    /// The config as JSON in the editor.
    editor: String,
    /// The experiment being edited by the knobs (applied with "apply").
    draft: AlignConfig,
}

impl AlignLab {
    /// The lab on `state`, replaying to its step over the next frames. A config that cannot run
    /// falls back to the coverage preset, with a message.
    pub fn new(state: AlignLabState, io: &mut LabIo<'_>) -> Self {
        let draft = state.config.clone();
        let mut lab = Self {
            editor: pretty(&state.config),
            target: state.step,
            draft,
            state,
            live: None,
        };
        lab.start(io);
        lab
    }

    fn start(&mut self, io: &mut LabIo<'_>) {
        match Live::new(&self.state.config) {
            Ok(live) => self.live = Some(live),
            Err(e) => {
                io.error(format!(
                    "the alignment config is not valid ({e}); showing the coverage preset"
                ));
                self.state = AlignLabState::default();
                self.live = Live::new(&self.state.config).ok();
                self.target = 0;
                self.draft = self.state.config.clone();
                self.editor = pretty(&self.state.config);
            }
        }
    }

    /// Replaces the experiment (from a preset, the knobs or the editor) and starts at step 0.
    fn apply(&mut self, preset: Option<String>, cfg: AlignConfig, io: &mut LabIo<'_>) {
        match Live::new(&cfg) {
            Ok(live) => {
                if let Some(p) = preset {
                    self.state.preset = p;
                }
                self.state.config = cfg.clone();
                self.state.step = 0;
                self.state.run = 0;
                self.state.context = 0;
                self.state.value.clear();
                self.target = 0;
                self.live = Some(live);
                self.draft = cfg.clone();
                self.editor = pretty(&cfg);
                if io.message.as_ref().is_some_and(|(_, error)| *error) {
                    *io.message = None;
                }
            }
            Err(e) => io.error(format!("not applied: {e}")),
        }
    }

    /// The lab's state (what its part of the link holds).
    pub fn state(&self) -> &AlignLabState {
        &self.state
    }

    /// The results so far, in the shape `optiscope align` reports them.
    pub fn results(&self) -> Vec<RunResult> {
        match &self.live {
            Some(Live::Samplers { cfg, runs, .. }) => runs
                .iter()
                .zip(&cfg.runs)
                .map(|(r, spec)| spec.result(r.rounds()))
                .collect(),
            Some(Live::Runs { done, .. }) => done.clone(),
            None => vec![],
        }
    }

    fn restoring(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| l.steps() < self.target && !l.finished())
    }

    fn step_once(&mut self, io: &mut LabIo<'_>) -> bool {
        let Some(live) = &mut self.live else {
            return false;
        };
        if live.finished() {
            return false;
        }
        match live.step() {
            Ok(()) => {
                self.state.step = live.steps();
                true
            }
            Err(e) => {
                io.error(format!("stopped at step {}: {e}", live.steps()));
                *io.playing = false;
                self.target = live.steps();
                false
            }
        }
    }
}

fn pretty(cfg: &AlignConfig) -> String {
    serde_json::to_string_pretty(cfg).unwrap_or_default()
}

fn run_name(spec: &AlignRun) -> String {
    format!("{} · N = {}", spec.label, spec.n_total)
}

/// log10 for a log-scaled plot, clamped below at 1e-12.
fn lg(v: f64) -> f64 {
    v.max(1e-12).log10()
}

fn log_axis(mark: GridMark, _range: &std::ops::RangeInclusive<f64>) -> String {
    format!("1e{:.0}", mark.value)
}

impl Lab for AlignLab {
    fn kind(&self) -> LabKind {
        LabKind::Align
    }

    fn view_name(&self) -> &'static str {
        "align"
    }

    fn preset(&self) -> String {
        self.state.preset.clone()
    }

    fn guide(&self) -> &'static crate::guide::Guide {
        crate::guide::align(&self.state.preset)
    }

    fn step(&self) -> u64 {
        self.live.as_ref().map_or(0, Live::steps)
    }

    fn step_label(&self) -> String {
        let total = self.live.as_ref().map_or(0, Live::total);
        match &self.live {
            Some(Live::Samplers { .. }) => format!("round {} / {total}", self.step()),
            _ => format!("run {} / {total}", self.step()),
        }
    }

    fn step_unit(&self) -> &'static str {
        match &self.live {
            Some(Live::Samplers { .. }) => "rounds",
            _ => "runs",
        }
    }

    fn step_hint(&self) -> &'static str {
        "S: one sampler run's next round (or the next run)"
    }

    fn finished(&self) -> bool {
        self.live.as_ref().is_none_or(Live::finished)
    }

    fn busy(&self) -> bool {
        self.restoring()
    }

    fn step_by(&mut self, n: u64, io: &mut LabIo<'_>) -> u64 {
        let mut taken = 0;
        while taken < n && self.step_once(io) {
            taken += 1;
        }
        self.target = self.target.max(self.step());
        taken
    }

    fn frame(&mut self, playing: bool, speed: u32, budget_secs: f64, io: &mut LabIo<'_>) -> u64 {
        replay_or_play(
            self,
            (playing, speed, budget_secs),
            io,
            Self::restoring,
            Self::step_once,
        )
    }

    fn reset(&mut self, io: &mut LabIo<'_>) {
        self.state.step = 0;
        self.target = 0;
        self.live = None;
        self.start(io);
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        let label = ui.label("preset:");
        let mut chosen = None;
        egui::ComboBox::from_id_salt("align-preset")
            .selected_text(self.state.preset.clone())
            .show_ui(ui, |ui| {
                for p in ALIGN_PRESETS {
                    if ui
                        .selectable_label(self.state.preset == p.name, p.name)
                        .on_hover_text(p.summary)
                        .clicked()
                    {
                        chosen = Some(p.name);
                    }
                }
            })
            .response
            .labelled_by(label.id);
        if let Some(name) = chosen {
            if let Some(mut cfg) = align_preset(name) {
                *cfg.seed_mut() = *self.state.config.clone().seed_mut();
                self.apply(Some(name.to_string()), cfg, io);
            }
        }
        let label = ui.label("seed:");
        let mut seed = *self.state.config.clone().seed_mut();
        if ui
            .add(egui::DragValue::new(&mut seed))
            .labelled_by(label.id)
            .changed()
        {
            let mut cfg = self.state.config.clone();
            *cfg.seed_mut() = seed;
            self.apply(None, cfg, io);
        }
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        ui.heading("Experiment");
        if let Some(p) = ALIGN_PRESETS.iter().find(|p| p.name == self.state.preset) {
            ui.weak(p.summary);
        }
        ui.separator();
        let mut apply = false;
        match &mut self.draft {
            AlignConfig::Samplers(c) => apply |= sampler_knobs(ui, c),
            other => apply |= number_knobs(ui, other),
        }
        if ui
            .button("apply")
            .on_hover_text("restart with these settings")
            .clicked()
            || apply
        {
            let cfg = self.draft.clone();
            self.apply(None, cfg, io);
        }
        ui.separator();
        egui::CollapsingHeader::new("config JSON (optiscope align CONFIG.json)")
            .default_open(false)
            .show(ui, |ui| {
                ui.add(
                    egui::TextEdit::multiline(&mut self.editor)
                        .code_editor()
                        .desired_rows(12)
                        .desired_width(f32::INFINITY),
                );
                if ui.button("apply JSON").clicked() {
                    match serde_json::from_str::<AlignConfig>(&self.editor) {
                        Ok(cfg) => self.apply(None, cfg, io),
                        Err(e) => io.error(format!("not applied: {e}")),
                    }
                }
            });
    }

    fn view_ui(&mut self, ui: &mut egui::Ui, _io: &mut LabIo<'_>) {
        let restoring = self.restoring();
        let (target, state) = (self.target, &mut self.state);
        match &self.live {
            Some(Live::Samplers { cfg, bandit, runs }) => {
                if restoring {
                    replay_note(
                        ui,
                        runs.iter().map(|r| r.rounds().len() as u64).sum(),
                        target,
                    );
                }
                samplers_ui(ui, cfg, bandit, runs, state);
            }
            Some(Live::Runs { cfg, done }) => {
                if restoring {
                    replay_note(ui, done.len() as u64, target);
                }
                runs_ui(ui, cfg, done, state);
            }
            None => {
                ui.label("The experiment could not start: see the message below.");
            }
        }
    }

    fn share_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        if ui
            .button("copy CLI command")
            .on_hover_text("writes the same numbers with `optiscope align`")
            .clicked()
        {
            ui.ctx()
                .copy_text(align_cli_command(&self.state.preset, &self.state.config));
            io.notice("CLI command copied");
        }
        if ui.button("export summary JSON").clicked() {
            let rows: Vec<_> = self.results().iter().map(RunResult::summary_row).collect();
            let json = serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n";
            export::report(io, export::save_text("optiscope-align-summary.json", &json));
        }
        if ui.button("export config JSON").clicked() {
            let json = pretty(&self.state.config) + "\n";
            export::report(io, export::save_text("optiscope-align-config.json", &json));
        }
    }

    fn link_notice(&self) -> &'static str {
        "link copied: it reopens this alignment experiment at this step"
    }

    fn detail(&mut self) -> String {
        self.results()
            .iter()
            .filter_map(|r| {
                let (k, v) = r
                    .records
                    .last()?
                    .values
                    .iter()
                    .find(|(k, _)| k == "kl")
                    .or_else(|| r.records.last()?.values.last())?;
                Some(format!("{} {k}={v:.4}", r.label))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn save_state(&self, states: &mut LabStates) {
        let mut state = self.state.clone();
        state.step = self.target.max(self.step());
        states.align = Some(state);
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

fn replay_note(ui: &mut egui::Ui, at: u64, target: u64) {
    ui.colored_label(
        Color32::from_rgb(255, 190, 40),
        format!("replaying the link: step {at} of {target}"),
    );
}

/// `optiscope align --preset NAME --seed S` when the config is the preset's, else the config on
/// standard input.
pub fn align_cli_command(preset: &str, cfg: &AlignConfig) -> String {
    let seed = *cfg.clone().seed_mut();
    if let Some(mut p) = align_preset(preset) {
        *p.seed_mut() = seed;
        if &p == cfg {
            return format!("optiscope align --preset {preset} --seed {seed}");
        }
    }
    let json = serde_json::to_string(cfg)
        .unwrap_or_default()
        .replace('\'', "'\\''");
    format!("printf '%s' '{json}' | optiscope align - --backend cpu --out runs/align")
}

/// The knobs of a sampler experiment: β, the fit, and every run. Returns whether a run was added
/// or removed (applied at once).
fn sampler_knobs(ui: &mut egui::Ui, c: &mut SamplerConfig) -> bool {
    let mut changed = false;
    egui::Grid::new("align-globals")
        .num_columns(2)
        .show(ui, |ui| {
            let label = ui.label("β").on_hover_text(
                "DPO's temperature; labels are Bradley–Terry with r = β(θ* − θ_ref)ᵀφ",
            );
            ui.add(
                egui::DragValue::new(&mut c.beta)
                    .speed(0.01)
                    .range(1e-3..=100.0),
            )
            .labelled_by(label.id);
            ui.end_row();
            ui.label("γ-model labels").on_hover_text(
            "P(a ≻ b) = σ(γ(log π*(a) − log π*(b))) instead of Bradley–Terry on β(θ* − θ_ref): \
             DPO then fits θ_ref + γθ*/β, sharper than π* when β < γ",
        );
            let mut gamma = match c.labels {
                Labels::Gamma { gamma } => Some(gamma),
                Labels::BradleyTerry => None,
            };
            ui.horizontal(|ui| {
                let mut on = gamma.is_some();
                if ui.checkbox(&mut on, "γ").changed() {
                    gamma = on.then_some(1.0);
                }
                if let Some(g) = &mut gamma {
                    ui.add(egui::DragValue::new(g).speed(0.01).range(1e-3..=100.0))
                        .accessible_name("γ value");
                }
            });
            c.labels = gamma.map_or(Labels::BradleyTerry, |gamma| Labels::Gamma { gamma });
            ui.end_row();
            let label = ui.label("ridge");
            ui.add(
                egui::DragValue::new(&mut c.ridge)
                    .speed(1e-5)
                    .range(0.0..=10.0),
            )
            .labelled_by(label.id);
            ui.end_row();
            ui.label("fit");
            let mut adam = matches!(c.fit, Fit::FirstOrder(_));
            if ui
                .checkbox(&mut adam, "Adam (else Newton)")
                .on_hover_text("first-order DPO fits through the device kernels (here the CPU)")
                .changed()
            {
                c.fit = if adam {
                    Fit::FirstOrder(optiscope_core::align::first_order::FirstOrderFit::adam())
                } else {
                    Fit::Newton
                };
            }
            ui.end_row();
        });
    ui.label(RichText::new("runs").strong());
    changed |= crate::views::run_rows(ui, &mut c.runs, |ui, _, r| {
        ui.add(egui::TextEdit::singleline(&mut r.label).desired_width(110.0))
            .accessible_name("run label");
        let kind = match r.sampler {
            Sampler::Offline => 0,
            Sampler::OnPolicy { .. } => 1,
            Sampler::Hybrid => 2,
        };
        let mut k = kind;
        egui::ComboBox::from_id_salt("sampler")
            .width(90.0)
            .selected_text(["offline", "on-policy", "hybrid"][k])
            .show_ui(ui, |ui| {
                for (j, name) in ["offline", "on-policy", "hybrid"].iter().enumerate() {
                    ui.selectable_value(&mut k, j, *name);
                }
            })
            .response
            .accessible_name("sampler");
        if k != kind {
            r.sampler = match k {
                0 => Sampler::Offline,
                1 => Sampler::OnPolicy {
                    rounds: 4,
                    cumulative: false,
                },
                _ => Sampler::Hybrid,
            };
        }
        if let Sampler::OnPolicy { rounds, cumulative } = &mut r.sampler {
            let label = ui.label("T");
            ui.add(egui::DragValue::new(rounds).range(1..=64))
                .labelled_by(label.id);
            ui.checkbox(cumulative, "cumulative");
        }
        let label = ui.label("N");
        ui.add(
            egui::DragValue::new(&mut r.n_total)
                .speed(100.0)
                .range(2..=1_000_000),
        )
        .labelled_by(label.id);
        let mut rd = r.objective == Objective::RewardDistillation;
        if ui
            .checkbox(&mut rd, "reward distillation")
            .on_hover_text("else DPO")
            .changed()
        {
            r.objective = if rd {
                Objective::RewardDistillation
            } else {
                Objective::Dpo
            };
        }
    });
    if ui.button("add run").clicked() {
        let n = c.runs.last().map_or(20_000, |r| r.n_total);
        c.runs.push(AlignRun {
            label: format!("run-{}", c.runs.len() + 1),
            sampler: Sampler::OnPolicy {
                rounds: 2,
                cumulative: false,
            },
            n_total: n,
            objective: Objective::Dpo,
        });
        changed = true;
    }
    changed
}

/// The numeric knobs of the other kinds: (field, label, hover).
fn knob_fields(cfg: &AlignConfig) -> &'static [(&'static str, &'static str, &'static str)] {
    match cfg {
        AlignConfig::Degeneracy(_) => &[
            (
                "gamma",
                "γ",
                "the preference model's P(a ≻ b) = σ(γ(log π*(a) − log π*(b)))",
            ),
            ("n_pairs", "pairs", "the finite sample's size"),
            ("lr", "PMLE lr", "gradient descent's learning rate"),
            ("reward_ridge", "reward λ", "the ridge of the reward model"),
        ],
        AlignConfig::Grpo(_) => &[
            ("group", "G", "actions per group"),
            ("iterations", "iterations", "π_old refreshed each"),
            ("lr", "lr", "gradient ascent's learning rate"),
            ("clip", "ε", "the ratio's clip"),
        ],
        AlignConfig::ThinkSafe(_) => &[
            ("omega", "ω", "the prompt tilt on the safe logits"),
            ("activation_scale", "s", "the activation steering's scale"),
            (
                "accepted_per_context",
                "accepted",
                "accepted samples per harmful context",
            ),
            ("kl_weight", "KL weight", "forward KL on benign contexts"),
            ("steps", "SFT steps", "full-batch gradient descent"),
        ],
        AlignConfig::Multitask(_) => &[
            ("beta", "β", "DPO's temperature"),
            ("pairs_per_task", "pairs/task", "labelled pairs per task"),
            (
                "speech_noise",
                "feature noise",
                "between the teacher's and the student's features",
            ),
        ],
        AlignConfig::Samplers(_) => &[],
    }
}

/// Drag values over the kind's numeric fields, through its JSON (integers stay integers).
fn number_knobs(ui: &mut egui::Ui, cfg: &mut AlignConfig) -> bool {
    let Ok(serde_json::Value::Object(mut map)) = serde_json::to_value(&*cfg) else {
        return false;
    };
    let mut edited = false;
    egui::Grid::new("align-knobs")
        .num_columns(2)
        .show(ui, |ui| {
            for (field, label, hover) in knob_fields(cfg) {
                let Some(v) = map.get_mut(*field) else {
                    continue;
                };
                let name = ui.label(*label).on_hover_text(*hover).id;
                if let Some(mut n) = v.as_u64() {
                    if ui
                        .add(egui::DragValue::new(&mut n).range(1..=1_000_000))
                        .labelled_by(name)
                        .changed()
                    {
                        *v = n.into();
                        edited = true;
                    }
                } else if let Some(mut x) = v.as_f64() {
                    if ui
                        .add(egui::DragValue::new(&mut x).speed(0.01))
                        .labelled_by(name)
                        .changed()
                    {
                        *v = x.into();
                        edited = true;
                    }
                }
                ui.end_row();
            }
        });
    if edited {
        if let Ok(new) = serde_json::from_value::<AlignConfig>(serde_json::Value::Object(map)) {
            *cfg = new;
        }
    }
    false
}

fn samplers_ui(
    ui: &mut egui::Ui,
    cfg: &SamplerConfig,
    bandit: &Bandit,
    runs: &[SamplerRun],
    state: &mut AlignLabState,
) {
    let target = bandit.policy(&cfg.theta_star);
    let reference = bandit.policy(&cfg.theta_ref);
    // π* in the text's colour, so that it shows in the light and the dark theme.
    let ink = ui.visuals().strong_text_color();
    ui.horizontal_wrapped(|ui| {
        ui.label(
            RichText::new(format!(
                "{} contexts × {} arms, d = {}, β = {} · C_∞(π_ref) = {:.3e}",
                bandit.n_ctx,
                bandit.k,
                bandit.d,
                cfg.beta,
                bandit.coverage_inf(&target, &reference)
            ))
            .strong(),
        );
    });
    state.run = state.run.min(runs.len().saturating_sub(1));
    state.context = state.context.min(bandit.n_ctx - 1);
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("policy of run:");
        egui::ComboBox::from_id_salt("align-run")
            .selected_text(run_name(&cfg.runs[state.run]))
            .show_ui(ui, |ui| {
                for (i, r) in cfg.runs.iter().enumerate() {
                    ui.selectable_value(&mut state.run, i, run_name(r));
                }
            })
            .response
            .labelled_by(label.id);
        if bandit.n_ctx > 1 {
            let label = ui.label("context:");
            ui.add(egui::DragValue::new(&mut state.context).range(0..=bandit.n_ctx - 1))
                .labelled_by(label.id);
        }
    });
    let (x, k) = (state.context, bandit.k);
    let run = &runs[state.run];
    let fitted = bandit.policy(run.theta());
    let design = run.design().map(|(cand, lambda)| {
        let mut m = vec![0.0; k];
        let mut total = 0.0;
        for (&(cx, a, b), &l) in cand.iter().zip(lambda) {
            if cx == x {
                m[a] += l / 2.0;
                m[b] += l / 2.0;
                total += l;
            }
        }
        if total > 0.0 {
            m.iter_mut().for_each(|v| *v /= total);
        }
        m
    });
    let height = (ui.available_height() / 3.0).clamp(140.0, 320.0);
    let series: Vec<(String, Vec<f64>, Color32)> = {
        let mut s = vec![
            (
                "π_ref".to_string(),
                reference[x * k..(x + 1) * k].to_vec(),
                Color32::GRAY,
            ),
            (
                "π*".to_string(),
                target[x * k..(x + 1) * k].to_vec(),
                Color32::WHITE,
            ),
            (
                format!(
                    "π̂ ({}, round {})",
                    cfg.runs[state.run].label,
                    run.rounds().len()
                ),
                fitted[x * k..(x + 1) * k].to_vec(),
                run_color(state.run),
            ),
        ];
        if let Some(d) = design {
            s.push((
                "G-optimal design weight".into(),
                d,
                Color32::from_rgb(255, 215, 0),
            ));
        }
        s
    };
    let width = 0.8 / series.len() as f64;
    Plot::new(("align-bars", x))
        .height(height)
        .legend(Legend::default())
        .include_y(0.0)
        .include_y(1.0)
        .x_axis_label(format!("arm (context {x})"))
        .y_axis_label("probability")
        .allow_scroll(false)
        .show(ui, |plot| {
            for (j, (name, values, color)) in series.into_iter().enumerate() {
                let bars = values
                    .iter()
                    .enumerate()
                    .map(|(a, v)| {
                        Bar::new(a as f64 - 0.4 + width * (j as f64 + 0.5), *v).width(width * 0.95)
                    })
                    .collect();
                plot.bar_chart(BarChart::new(name, bars).color(color));
            }
        });
    let half = (ui.available_width() / 2.0 - 8.0).max(200.0);
    let kl_height = (ui.available_height() * 0.55).clamp(140.0, 320.0);
    ui.label(
        RichText::new("KL(π* ‖ fitted π) after each round, against the labelled pairs used")
            .strong(),
    );
    Plot::new("align-kl")
        .height(kl_height)
        .legend(Legend::default())
        .x_axis_label("labelled pairs")
        .y_axis_label("KL (log scale)")
        .y_axis_formatter(log_axis)
        .allow_scroll(false)
        .show(ui, |plot| {
            for (i, (r, spec)) in runs.iter().zip(&cfg.runs).enumerate() {
                let pts: Vec<[f64; 2]> = r
                    .rounds()
                    .iter()
                    .map(|r| [r.samples as f64, lg(r.kl)])
                    .collect();
                plot.line(
                    Line::new(run_name(spec), pts.clone())
                        .color(run_color(i))
                        .width(1.5),
                );
                plot.points(
                    Points::new(run_name(spec), pts)
                        .color(run_color(i))
                        .radius(3.0),
                );
            }
        });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.set_width(half);
            ui.label(
                RichText::new("feature-space coverage C_feat of each round's sampler").strong(),
            );
            Plot::new("align-coverage")
                .height(kl_height * 0.7)
                .width(half)
                .x_axis_label("round")
                .y_axis_formatter(log_axis)
                .allow_scroll(false)
                .show(ui, |plot| {
                    for (i, (r, spec)) in runs.iter().zip(&cfg.runs).enumerate() {
                        let pts: Vec<[f64; 2]> = r
                            .rounds()
                            .iter()
                            .filter(|r| r.c_feat.is_finite())
                            .map(|r| [r.round as f64, lg(r.c_feat)])
                            .collect();
                        plot.line(
                            Line::new(run_name(spec), pts)
                                .color(run_color(i))
                                .width(1.5),
                        );
                    }
                });
        });
        ui.vertical(|ui| {
            ui.set_width(half);
            ui.label(RichText::new("entropy of the fitted π (line: H(π*))").strong());
            Plot::new("align-entropy")
                .height(kl_height * 0.7)
                .width(half)
                .x_axis_label("round")
                .include_y(0.0)
                .allow_scroll(false)
                .show(ui, |plot| {
                    plot.hline(HLine::new("H(π*)", bandit.entropy(&target)).color(ink));
                    for (i, (r, spec)) in runs.iter().zip(&cfg.runs).enumerate() {
                        let pts: Vec<[f64; 2]> = r
                            .rounds()
                            .iter()
                            .map(|r| [r.round as f64, r.entropy])
                            .collect();
                        plot.line(
                            Line::new(run_name(spec), pts)
                                .color(run_color(i))
                                .width(1.5),
                        );
                    }
                });
        });
    });
}

fn runs_ui(ui: &mut egui::Ui, cfg: &AlignConfig, done: &[RunResult], state: &mut AlignLabState) {
    let keys: Vec<String> = done
        .iter()
        .flat_map(|r| {
            r.records
                .first()
                .map(|x| x.values.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .fold(vec![], |mut acc: Vec<String>, k| {
            if !acc.contains(&k) {
                acc.push(k);
            }
            acc
        });
    // The x axis: the first value when it counts something (steps, iteration, stage), else the round.
    let axis = keys
        .first()
        .filter(|k| ["steps", "step", "iteration", "stage"].contains(&k.as_str()))
        .cloned();
    let plottable: Vec<&String> = keys.iter().filter(|k| Some(*k) != axis.as_ref()).collect();
    if state.value.is_empty() || !plottable.iter().any(|k| **k == state.value) {
        if let Some(first) = plottable.first() {
            state.value = (*first).clone();
        }
    }
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("{} experiment", cfg.kind())).strong());
        ui.separator();
        let label = ui.label("value:");
        egui::ComboBox::from_id_salt("align-value")
            .selected_text(state.value.clone())
            .show_ui(ui, |ui| {
                for k in &plottable {
                    ui.selectable_value(&mut state.value, (*k).clone(), k.as_str());
                }
            })
            .response
            .labelled_by(label.id);
    });
    if done.is_empty() {
        ui.weak("Press play or step: each step runs the next run.");
    }
    let value = state.value.clone();
    let log = value.starts_with("kl") || value == "logit_range";
    let height = (ui.available_height() * 0.5).clamp(160.0, 360.0);
    Plot::new(("align-runs", value.clone()))
        .height(height)
        .legend(Legend::default())
        .x_axis_label(axis.clone().unwrap_or_else(|| "record".into()))
        .y_axis_label(if log {
            format!("{value} (log scale)")
        } else {
            value.clone()
        })
        .y_axis_formatter(move |m: GridMark, _r: &std::ops::RangeInclusive<f64>| {
            if log {
                format!("1e{:.0}", m.value)
            } else {
                format!("{:.3}", m.value)
            }
        })
        .allow_scroll(false)
        .show(ui, |plot| {
            for (i, r) in done.iter().enumerate() {
                let pts: Vec<[f64; 2]> = r
                    .records
                    .iter()
                    .filter_map(|rec| {
                        let x = axis
                            .as_ref()
                            .and_then(|a| rec.get(a))
                            .unwrap_or(rec.round as f64);
                        let y = rec.get(&value)?;
                        Some([x, if log { lg(y) } else { y }])
                    })
                    .collect();
                plot.line(
                    Line::new(r.label.clone(), pts.clone())
                        .color(run_color(i))
                        .width(1.5),
                );
                plot.points(
                    Points::new(r.label.clone(), pts)
                        .color(run_color(i))
                        .radius(3.0),
                );
            }
        });
    ui.separator();
    ui.label(RichText::new("last values (summary.json)").strong());
    egui::ScrollArea::horizontal().show(ui, |ui| {
        let mut columns: Vec<String> = vec![];
        for r in done {
            for (k, _) in r.summary_row() {
                if !columns.contains(&k) && k != "label" {
                    columns.push(k);
                }
            }
        }
        egui::Grid::new("align-summary")
            .striped(true)
            .show(ui, |ui| {
                ui.label(RichText::new("run").strong());
                for c in &columns {
                    ui.label(RichText::new(c).strong());
                }
                ui.end_row();
                for (i, r) in done.iter().enumerate() {
                    ui.colored_label(run_color(i), &r.label);
                    let row = r.summary_row();
                    for c in &columns {
                        ui.label(match row.get(c) {
                            Some(serde_json::Value::Number(n)) => {
                                let v = n.as_f64().unwrap_or(f64::NAN);
                                if v.fract() == 0.0 && v.abs() < 1e9 {
                                    format!("{v:.0}")
                                } else {
                                    format!("{v:.4}")
                                }
                            }
                            Some(other) => other.to_string(),
                            None => "—".into(),
                        });
                    }
                    ui.end_row();
                }
            });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::ComputePath;

    fn io_parts() -> (Option<(String, bool)>, bool, ComputePath) {
        (
            None,
            false,
            ComputePath::Cpu {
                reason: "test".into(),
            },
        )
    }

    #[test]
    fn steps_advance_the_runs_side_by_side_and_match_the_cli() {
        let (mut msg, mut playing, mut compute) = io_parts();
        let mut io = LabIo {
            message: &mut msg,
            playing: &mut playing,
            compute: &mut compute,
        };
        let mut state = AlignLabState::from_preset("rich-features");
        *state.config.seed_mut() = 4;
        let mut lab = AlignLab::new(state.clone(), &mut io);
        assert_eq!(lab.step_label(), "round 0 / 9");
        assert_eq!(lab.step_by(3, &mut io), 3);
        // One round of each of the three runs: the side-by-side order.
        assert!(lab.results().iter().all(|r| r.records.len() == 1));
        while lab.step_by(1, &mut io) == 1 {}
        assert!(lab.finished());
        let cli = state.config.run(|_| {}).unwrap();
        assert_eq!(lab.results(), cli, "the lab's runs are the CLI's");
        assert!(align_cli_command(&state.preset, &state.config)
            .ends_with("--preset rich-features --seed 4"));
    }

    #[test]
    fn other_kinds_step_one_run_at_a_time_and_bad_json_is_refused() {
        let (mut msg, mut playing, mut compute) = io_parts();
        let mut io = LabIo {
            message: &mut msg,
            playing: &mut playing,
            compute: &mut compute,
        };
        let mut lab = AlignLab::new(AlignLabState::from_preset("grpo"), &mut io);
        assert_eq!(lab.step_label(), "run 0 / 4");
        lab.step_by(2, &mut io);
        assert_eq!(lab.results().len(), 2);
        assert_eq!(lab.results()[1].label, "grpo-kl=0.04");
        let mut bad = lab.state.config.clone();
        if let AlignConfig::Grpo(g) = &mut bad {
            g.clip = 2.0;
        }
        lab.apply(None, bad, &mut io);
        let (text, error) = io.message.clone().unwrap();
        assert!(error && text.contains("clip"), "{text}");
        assert_eq!(lab.results().len(), 2, "a refused config keeps the run");
    }

    #[test]
    fn a_link_replays_to_the_same_rounds() {
        let (mut msg, mut playing, mut compute) = io_parts();
        let mut io = LabIo {
            message: &mut msg,
            playing: &mut playing,
            compute: &mut compute,
        };
        let state = crate::state::ExplorerState::from_fragment("#align=coverage&seed=1")
            .unwrap()
            .unwrap();
        let mut lab = AlignLab::new(state.labs.align.clone().unwrap(), &mut io);
        lab.step_by(5, &mut io);
        let mut states = state.labs.clone();
        lab.save_state(&mut states);
        let saved = states.align.unwrap();
        assert_eq!(saved.step, 5);
        let mut reopened = AlignLab::new(saved, &mut io);
        assert!(reopened.busy());
        let mut frames = 0;
        while reopened.busy() && frames < 1000 {
            reopened.frame(false, 1, 0.01, &mut io);
            frames += 1;
        }
        assert_eq!(reopened.step(), 5);
        assert_eq!(reopened.results(), lab.results());
        assert!(io.message.is_none(), "{:?}", io.message);
    }
}
