//! The Compression lab: `optiscope prune --preset sbm` and `optiscope moe` stepped live on the
//! CPU with core's code.
//!
//! TEDDY: the degree-corrected SBM drawn node-link (a spring layout, nodes coloured by
//! community, isolated nodes ringed), the edges the chosen method removes at the slider's
//! fraction greyed; the degree histograms before and after; and the test accuracy against the
//! fraction of edges removed for TEDDY, random and reverse pruning, filled in as the lab trains
//! the GCN at each fraction of a grid (a step is 10 epochs of one training). Moving the slider or
//! switching the method redraws at once.
//!
//! MoE → dense: the routing heat map (experts × clusters, the mean gate) with the chosen
//! scorer's experts outlined; every scorer's relative error before and after distillation side
//! by side; the distillation loss of every scorer, live (a step is 10 distillation steps).
//!
//! The link holds both halves' configs, the slider, the method and the steps taken (every draw
//! is addressed by the seed, so a link replays to the same picture); "copy CLI command" gives the
//! `optiscope prune` or `optiscope moe` line that writes the same numbers.

use egui::{Color32, RichText, Stroke};
use egui_plot::{Bar, BarChart, GridMark, HLine, Legend, Line, Plot, Points, VLine};
use optiscope_core::device::Cpu;
use optiscope_core::rng::{stream, Philox, StreamKind};
use optiscope_core::sparsify::convert::{Grouping, Scaling, Scoring};
use optiscope_core::sparsify::experiment::{edge_masks, EdgeMethod, GcnTraining, PruneConfig};
use optiscope_core::sparsify::graph::Graph;
use optiscope_core::sparsify::moe_experiment::{MoeConfig, MoeRun, CLUSTERS, DUPLICATES};
use optiscope_core::sparsify::sbm::Sbm;

use crate::export;
use crate::lab::{replay_or_play, Lab, LabIo};
use crate::state::{CompressLabState, CompressPart, LabKind, LabStates, MAX_EDGES_REMOVED};
use crate::views::run_color;

/// Epochs (TEDDY) or distillation steps (MoE) per lab step.
const CHUNK: usize = 10;
/// The fractions of edges removed at which the accuracy curves are trained.
const GRID: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// The TEDDY half: the graph, its layout and the accuracy curves being trained.
struct TeddyLive {
    cfg: PruneConfig,
    data: Sbm,
    layout: Vec<[f32; 2]>,
    /// (method, fraction removed): the whole graph first — the teacher with dense weights and no
    /// distillation, then (when the training differs from that) the whole graph's own row, as
    /// `optiscope prune` trains them — then the grid.
    jobs: Vec<(EdgeMethod, f64)>,
    /// The job of the whole graph's row (0, or 1 after a separate teacher).
    dense: usize,
    /// Test accuracy and isolated nodes of each job once trained.
    done: Vec<Option<(f64, usize)>>,
    current: Option<(usize, GcnTraining<Cpu>)>,
    /// The whole graph's outputs, the teacher when distillation is on.
    teacher: Option<Vec<f32>>,
    steps: u64,
}

impl TeddyLive {
    fn new(cfg: &PruneConfig) -> Result<Self, String> {
        cfg.validate().map_err(|e| e.to_string())?;
        let data = cfg.sbm.generate(cfg.seed).map_err(|e| e.to_string())?;
        let layout = spring_layout(&data.graph, &data.y, cfg.seed);
        let dense = usize::from(teacher_config(cfg) != cfg.train);
        let mut jobs = vec![(EdgeMethod::Teddy, 0.0); dense + 1];
        for m in EdgeMethod::ONE_SHOT {
            jobs.extend(GRID.iter().map(|&p| (m, p)));
        }
        Ok(Self {
            cfg: cfg.clone(),
            done: vec![None; jobs.len()],
            jobs,
            dense,
            data,
            layout,
            current: None,
            teacher: None,
            steps: 0,
        })
    }

    fn chunks_per_job(&self) -> u64 {
        self.cfg.train.epochs.div_ceil(CHUNK) as u64
    }

    fn total(&self) -> u64 {
        self.jobs.len() as u64 * self.chunks_per_job()
    }

    fn finished(&self) -> bool {
        self.done.iter().all(Option::is_some)
    }

    /// The graph `method` leaves at `fraction` removed.
    fn kept(&self, method: EdgeMethod, fraction: f64) -> Graph {
        let g = &self.data.graph;
        if fraction <= 0.0 {
            return g.clone();
        }
        let keep = edge_masks(g, method, &[fraction], self.cfg.seed)
            .and_then(|m| m.into_iter().next())
            .unwrap_or_else(|| vec![true; g.edges.len()]);
        g.subgraph(&keep)
    }

    /// Ten epochs of the next training.
    fn step(&mut self) -> Result<(), String> {
        if self.current.is_none() {
            let Some(next) = self.done.iter().position(Option::is_none) else {
                return Ok(());
            };
            let (method, p) = self.jobs[next];
            let kept = self.kept(method, p);
            let cfg = if next == 0 {
                teacher_config(&self.cfg)
            } else {
                self.cfg.train.clone()
            };
            let t = GcnTraining::new(
                &mut Cpu,
                &self.data,
                &kept,
                &cfg,
                self.cfg.seed,
                self.teacher.as_deref(),
            )
            .map_err(|e| e.to_string())?;
            self.current = Some((next, t));
        }
        let Some((job, t)) = &mut self.current else {
            return Ok(());
        };
        for _ in 0..CHUNK {
            if t.finished() {
                break;
            }
            t.epoch(&mut Cpu).map_err(|e| e.to_string())?;
        }
        if t.finished() {
            let run = t.finish(&mut Cpu, &self.data).map_err(|e| e.to_string())?;
            let job = *job;
            let (method, p) = self.jobs[job];
            let isolated = self.kept(method, p).isolated();
            if job == 0 {
                self.teacher = Some(run.probs.clone());
            }
            self.done[job] = Some((run.test_accuracy, isolated));
            self.current = None;
        }
        self.steps += 1;
        Ok(())
    }
}

/// The teacher's training, as `PruneConfig::run` has it: dense weights, no distillation.
fn teacher_config(cfg: &PruneConfig) -> optiscope_core::sparsify::experiment::GcnTrainConfig {
    optiscope_core::sparsify::experiment::GcnTrainConfig {
        weight_sparsity: 0.0,
        distill: 0.0,
        ..cfg.train.clone()
    }
}

/// A Fruchterman–Reingold spring layout in the unit square (with a weak pull to the centre),
/// started from the communities on a circle (so a few iterations already read well), seeded.
fn spring_layout(g: &Graph, community: &[u32], seed: u64) -> Vec<[f32; 2]> {
    let n = g.n;
    let c = community.iter().copied().max().map_or(1, |m| m + 1) as f32;
    let rng = Philox::new(seed);
    let s = stream(StreamKind::Data, 900);
    let mut pos: Vec<[f32; 2]> = (0..n)
        .map(|i| {
            let a = std::f32::consts::TAU * community[i] as f32 / c;
            let (u, v) = (
                rng.uniform_at(s, 2 * i as u64),
                rng.uniform_at(s, 2 * i as u64 + 1),
            );
            [
                0.5 + 0.3 * a.cos() + 0.2 * (u - 0.5),
                0.5 + 0.3 * a.sin() + 0.2 * (v - 0.5),
            ]
        })
        .collect();
    let k = 1.0 / (n.max(1) as f32).sqrt();
    let iters = 80;
    let mut disp = vec![[0.0f32; 2]; n];
    for it in 0..iters {
        let temp = 0.05 * (1.0 - it as f32 / iters as f32) + 0.002;
        disp.iter_mut().for_each(|d| *d = [0.0, 0.0]);
        for i in 0..n {
            for j in i + 1..n {
                let (dx, dy) = (pos[i][0] - pos[j][0], pos[i][1] - pos[j][1]);
                let d2 = (dx * dx + dy * dy).max(1e-6);
                let f = k * k / d2;
                disp[i][0] += dx * f;
                disp[i][1] += dy * f;
                disp[j][0] -= dx * f;
                disp[j][1] -= dy * f;
            }
        }
        for &(u, v) in &g.edges {
            let (u, v) = (u as usize, v as usize);
            let (dx, dy) = (pos[u][0] - pos[v][0], pos[u][1] - pos[v][1]);
            let d = (dx * dx + dy * dy).sqrt().max(1e-3);
            let f = d / k;
            disp[u][0] -= dx * f;
            disp[u][1] -= dy * f;
            disp[v][0] += dx * f;
            disp[v][1] += dy * f;
        }
        for (p, d) in pos.iter_mut().zip(&disp) {
            // A weak pull to the centre keeps nodes without edges from drifting off.
            let d = [d[0] + 4.0 * (0.5 - p[0]), d[1] + 4.0 * (0.5 - p[1])];
            let len = (d[0] * d[0] + d[1] * d[1]).sqrt().max(1e-9);
            let step = len.min(temp);
            p[0] = (p[0] + d[0] / len * step).clamp(0.0, 1.0);
            p[1] = (p[1] + d[1] / len * step).clamp(0.0, 1.0);
        }
    }
    pos
}

/// The MoE half.
struct MoeLive {
    run: MoeRun<Cpu>,
    steps: u64,
}

impl MoeLive {
    fn new(cfg: &MoeConfig) -> Result<Self, String> {
        Ok(Self {
            run: MoeRun::new(&mut Cpu, cfg).map_err(|e| e.to_string())?,
            steps: 0,
        })
    }

    fn chunks_per_scorer(&self) -> u64 {
        (self.run.total_steps() / Scoring::ALL.len()).div_ceil(CHUNK) as u64
    }

    fn total(&self) -> u64 {
        Scoring::ALL.len() as u64 * self.chunks_per_scorer()
    }

    /// Up to ten distillation steps of the scorer being distilled (a chunk never crosses into
    /// the next scorer, so a step count means one thing).
    fn step(&mut self) -> Result<(), String> {
        let per = self.run.total_steps() / Scoring::ALL.len();
        for _ in 0..CHUNK {
            match self.run.step(&mut Cpu).map_err(|e| e.to_string())? {
                Some((_, step, _)) if step >= per => break,
                Some(_) => {}
                None => break,
            }
        }
        self.steps += 1;
        Ok(())
    }
}

enum Live {
    Teddy(Box<TeddyLive>),
    Moe(Box<MoeLive>),
}

impl Live {
    fn new(state: &CompressLabState) -> Result<Self, String> {
        state.validate()?;
        Ok(match state.part {
            CompressPart::Teddy => Self::Teddy(Box::new(TeddyLive::new(&state.prune)?)),
            CompressPart::Moe => Self::Moe(Box::new(MoeLive::new(&state.moe)?)),
        })
    }

    fn steps(&self) -> u64 {
        match self {
            Self::Teddy(t) => t.steps,
            Self::Moe(m) => m.steps,
        }
    }

    fn total(&self) -> u64 {
        match self {
            Self::Teddy(t) => t.total(),
            Self::Moe(m) => m.total(),
        }
    }

    fn finished(&self) -> bool {
        match self {
            Self::Teddy(t) => t.finished(),
            Self::Moe(m) => m.run.finished(),
        }
    }

    fn step(&mut self) -> Result<(), String> {
        match self {
            Self::Teddy(t) => t.step(),
            Self::Moe(m) => m.step(),
        }
    }
}

/// The Compression lab.
pub struct CompressLab {
    state: CompressLabState,
    live: Option<Live>,
    /// The step a link asks for, replayed over the next frames.
    target: u64,
}

impl CompressLab {
    /// The lab on `state`, replaying to its step over the next frames. Settings that cannot run
    /// fall back to the defaults, with a message.
    pub fn new(state: CompressLabState, io: &mut LabIo<'_>) -> Self {
        let mut lab = Self {
            target: state.step,
            state,
            live: None,
        };
        lab.start(io);
        lab
    }

    fn start(&mut self, io: &mut LabIo<'_>) {
        match Live::new(&self.state) {
            Ok(live) => self.live = Some(live),
            Err(e) => {
                io.error(format!(
                    "the compression settings are not valid ({e}); showing the defaults"
                ));
                let part = self.state.part;
                self.state = CompressLabState {
                    part,
                    ..CompressLabState::default()
                };
                self.target = 0;
                self.live = Live::new(&self.state).ok();
            }
        }
    }

    /// Restarts with `state` (new settings) at step 0.
    fn apply(&mut self, state: CompressLabState, io: &mut LabIo<'_>) {
        let mut state = state;
        state.step = 0;
        match Live::new(&state) {
            Ok(live) => {
                self.state = state;
                self.target = 0;
                self.live = Some(live);
                if io.message.as_ref().is_some_and(|(_, error)| *error) {
                    *io.message = None;
                }
            }
            Err(e) => io.error(format!("not applied: {e}")),
        }
    }

    /// The lab's state (what its part of the link holds).
    pub fn state(&self) -> &CompressLabState {
        &self.state
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

    /// The command that writes the same numbers.
    pub fn cli_command(&self) -> String {
        cli_command(&self.state)
    }
}

/// `optiscope prune` for the slice the graph shows, or `optiscope moe` for the MoE half: the
/// short line when its flags say everything, else the whole config on standard input.
pub fn cli_command(s: &CompressLabState) -> String {
    let stdin =
        |json: String, cmd: &str| format!("printf '%s' '{}' | {cmd}", json.replace('\'', "'\\''"));
    match s.part {
        CompressPart::Teddy => {
            let p = &s.prune;
            let mut flags = PruneConfig {
                seed: p.seed,
                ..PruneConfig::default()
            };
            flags.train.weight_sparsity = p.train.weight_sparsity;
            flags.train.distill = p.train.distill;
            let slice = PruneConfig {
                fractions: vec![s.edges],
                methods: vec![s.method],
                ..p.clone()
            };
            let expressible = PruneConfig {
                fractions: p.fractions.clone(),
                methods: p.methods.clone(),
                ..flags
            };
            if expressible != *p {
                return stdin(
                    serde_json::to_string(&slice).unwrap_or_default(),
                    "optiscope prune --config -",
                );
            }
            let mut cmd = format!(
                "optiscope prune --preset sbm --seed {} --method {} --edges {}",
                p.seed,
                s.method.name(),
                s.edges
            );
            if p.train.weight_sparsity > 0.0 {
                cmd += &format!(" --weights {}", p.train.weight_sparsity);
            }
            if p.train.distill > 0.0 {
                cmd += &format!(" --distill {}", p.train.distill);
            }
            cmd
        }
        CompressPart::Moe => {
            let m = &s.moe;
            let mut flags = MoeConfig {
                scoring: m.scoring,
                grouping: m.grouping,
                scaling: m.scaling,
                k: m.k,
                seed: m.seed,
                ..MoeConfig::default()
            };
            flags.distill.steps = m.distill.steps;
            if flags != *m {
                return stdin(
                    serde_json::to_string(m).unwrap_or_default(),
                    "optiscope moe --config - --out runs/moe",
                );
            }
            format!(
                "optiscope moe --preset tiny --scoring {} --grouping {} --scaling {} --k {} --steps {} --seed {} --out runs/moe",
                m.scoring.name(),
                m.grouping.name(),
                m.scaling.name(),
                m.k,
                m.distill.steps,
                m.seed
            )
        }
    }
}

fn lg(v: f64) -> f64 {
    v.max(1e-12).log10()
}

fn log_axis(mark: GridMark, _range: &std::ops::RangeInclusive<f64>) -> String {
    format!("1e{:.0}", mark.value)
}

impl Lab for CompressLab {
    fn kind(&self) -> LabKind {
        LabKind::Compress
    }

    fn view_name(&self) -> &'static str {
        match self.state.part {
            CompressPart::Teddy => "compress-teddy",
            CompressPart::Moe => "compress-moe",
        }
    }

    fn preset(&self) -> String {
        match self.state.part {
            CompressPart::Teddy => "sbm".into(),
            CompressPart::Moe => "tiny".into(),
        }
    }

    fn guide(&self) -> &'static crate::guide::Guide {
        crate::guide::compress(self.state.part.name())
    }

    fn step(&self) -> u64 {
        self.live.as_ref().map_or(0, Live::steps)
    }

    fn step_label(&self) -> String {
        let total = self.live.as_ref().map_or(0, Live::total);
        format!("step {} / {total}", self.step())
    }

    fn step_unit(&self) -> &'static str {
        "steps"
    }

    fn step_hint(&self) -> &'static str {
        "S: ten epochs of the next GCN training (TEDDY), or ten distillation steps (MoE)"
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
        let mut part = self.state.part;
        ui.selectable_value(&mut part, CompressPart::Teddy, "TEDDY (graph)")
            .on_hover_text("edge sparsification of a GCN on a degree-corrected SBM");
        ui.selectable_value(&mut part, CompressPart::Moe, "MoE → dense")
            .on_hover_text("score, select, concatenate and distil a mixture of experts");
        if part != self.state.part {
            let state = CompressLabState {
                part,
                ..self.state.clone()
            };
            self.apply(state, io);
        }
        let label = ui.label("seed:");
        let mut seed = match self.state.part {
            CompressPart::Teddy => self.state.prune.seed,
            CompressPart::Moe => self.state.moe.seed,
        };
        if ui
            .add(egui::DragValue::new(&mut seed))
            .labelled_by(label.id)
            .changed()
        {
            let mut state = self.state.clone();
            state.prune.seed = seed;
            state.moe.seed = seed;
            self.apply(state, io);
        }
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        match self.state.part {
            CompressPart::Teddy => self.teddy_controls(ui, io),
            CompressPart::Moe => self.moe_controls(ui, io),
        }
    }

    fn view_ui(&mut self, ui: &mut egui::Ui, _io: &mut LabIo<'_>) {
        if self.restoring() {
            ui.colored_label(
                Color32::from_rgb(255, 190, 40),
                format!(
                    "replaying the link: step {} of {}",
                    self.step(),
                    self.target
                ),
            );
        }
        match &self.live {
            Some(Live::Teddy(t)) => teddy_ui(ui, t, &self.state),
            Some(Live::Moe(m)) => moe_ui(ui, m, &self.state),
            None => {
                ui.label("The experiment could not start: see the message below.");
            }
        }
    }

    fn share_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        if ui
            .button("copy CLI command")
            .on_hover_text("writes the same numbers with `optiscope prune` or `optiscope moe`")
            .clicked()
        {
            ui.ctx().copy_text(self.cli_command());
            io.notice("CLI command copied");
        }
        if ui.button("export summary JSON").clicked() {
            let json = serde_json::to_string_pretty(&self.summary()).unwrap_or_default() + "\n";
            export::report(
                io,
                export::save_text("optiscope-compress-summary.json", &json),
            );
        }
    }

    fn link_notice(&self) -> &'static str {
        "link copied: it reopens this compression experiment at this step"
    }

    fn detail(&mut self) -> String {
        match &self.live {
            Some(Live::Teddy(t)) => {
                let kept = t.kept(self.state.method, self.state.edges);
                let trained = t.done.iter().filter(|d| d.is_some()).count();
                format!(
                    "{} edges={:.2} kept={} isolated={} trained={trained}/{}",
                    self.state.method.name(),
                    self.state.edges,
                    kept.edges.len(),
                    kept.isolated(),
                    t.jobs.len()
                )
            }
            Some(Live::Moe(m)) => m
                .run
                .results()
                .iter()
                .map(|r| {
                    let post = if r.post_distillation.is_nan() {
                        "-".to_string()
                    } else {
                        format!("{:.4}", r.post_distillation)
                    };
                    format!(
                        "{} {:?} pre={:.4} post={post}",
                        r.scoring.name(),
                        r.selected,
                        r.pre_distillation
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            None => String::new(),
        }
    }

    fn save_state(&self, states: &mut LabStates) {
        let mut state = self.state.clone();
        state.step = self.target.max(self.step());
        states.compress = Some(state);
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl CompressLab {
    /// What "export summary JSON" writes: TEDDY's trained grid, or every scorer's result.
    pub fn summary(&self) -> serde_json::Value {
        match &self.live {
            Some(Live::Teddy(t)) => serde_json::Value::Array(
                t.jobs
                    .iter()
                    .zip(&t.done)
                    .skip(t.dense)
                    .filter_map(|(&(m, p), d)| {
                        let (acc, iso) = (*d)?;
                        let method = if p == 0.0 { "dense" } else { m.name() };
                        Some(serde_json::json!({"method": method, "edges_removed": p,
                            "test_accuracy": acc, "isolated": iso}))
                    })
                    .collect(),
            ),
            Some(Live::Moe(m)) => serde_json::to_value(m.run.results()).unwrap_or_default(),
            None => serde_json::Value::Null,
        }
    }

    fn teddy_controls(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        ui.heading("TEDDY");
        ui.weak(
            "Edges scored by degrees alone, g_i·g_j with g_i the mean inverse-sqrt degree of i's \
             neighbours over d_i; the lowest go first. Spec C1's SBM: n = 300, 3 communities, a \
             2-layer GCN (hidden 16, Adam, 200 epochs).",
        );
        ui.separator();
        let mut edges = self.state.edges;
        ui.add(
            egui::Slider::new(&mut edges, 0.0..=MAX_EDGES_REMOVED)
                .fixed_decimals(2)
                .text("edges removed"),
        );
        self.state.edges = edges;
        ui.label("method drawn");
        for m in EdgeMethod::ONE_SHOT {
            let hint = match m {
                EdgeMethod::Teddy => "the lowest TEDDY scores first",
                EdgeMethod::Random => "uniformly at random",
                _ => "the highest TEDDY scores first (a control)",
            };
            ui.radio_value(&mut self.state.method, m, m.name())
                .on_hover_text(hint);
        }
        ui.separator();
        let mut draft = self.state.clone();
        let mut changed = false;
        egui::Grid::new("compress-teddy-knobs")
            .num_columns(2)
            .show(ui, |ui| {
                let label = ui.label("weights removed").on_hover_text(
                    "the ℓ0 projection over all weights after every step (0: dense weights)",
                );
                changed |= ui
                    .add(
                        egui::DragValue::new(&mut draft.prune.train.weight_sparsity)
                            .speed(0.01)
                            .range(0.0..=0.95),
                    )
                    .labelled_by(label.id)
                    .changed();
                ui.end_row();
                let label = ui.label("distillation λ").on_hover_text(
                    "λ · KL(p_dense ‖ p) from the whole graph's model (the spec uses 10)",
                );
                changed |= ui
                    .add(
                        egui::DragValue::new(&mut draft.prune.train.distill)
                            .speed(0.1)
                            .range(0.0..=100.0),
                    )
                    .labelled_by(label.id)
                    .changed();
                ui.end_row();
                let label = ui.label("epochs");
                changed |= ui
                    .add(egui::DragValue::new(&mut draft.prune.train.epochs).range(10..=2000))
                    .labelled_by(label.id)
                    .changed();
                ui.end_row();
            });
        if changed {
            self.apply(draft, io);
        }
    }

    fn moe_controls(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>) {
        ui.heading("MoE → dense");
        ui.weak(
            "8 SwiGLU experts (d = 16, width 8, top-2); experts 0/1 and 2/3 are near-duplicates \
             serving clusters 0 and 1. Each scorer keeps k experts; they are concatenated into \
             one dense FFN (exactly Σ_j c_j E_j(x)) and distilled from the mixture.",
        );
        ui.separator();
        let mut draft = self.state.clone();
        let mut changed = false;
        egui::Grid::new("compress-moe-knobs")
            .num_columns(2)
            .show(ui, |ui| {
                let label = ui
                    .label("scoring")
                    .on_hover_text("the scorer outlined on the heat map and exported");
                egui::ComboBox::from_id_salt("compress-scoring")
                    .selected_text(draft.moe.scoring.name())
                    .show_ui(ui, |ui| {
                        for s in Scoring::ALL {
                            ui.selectable_value(&mut draft.moe.scoring, s, s.name());
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui
                    .label("grouping")
                    .on_hover_text("how unselected experts are folded into the selected ones");
                egui::ComboBox::from_id_salt("compress-grouping")
                    .selected_text(draft.moe.grouping.name())
                    .show_ui(ui, |ui| {
                        for g in Grouping::ALL {
                            changed |= ui
                                .selectable_value(&mut draft.moe.grouping, g, g.name())
                                .changed();
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("scaling");
                egui::ComboBox::from_id_salt("compress-scaling")
                    .selected_text(draft.moe.scaling.name())
                    .show_ui(ui, |ui| {
                        for s in Scaling::ALL {
                            changed |= ui
                                .selectable_value(&mut draft.moe.scaling, s, s.name())
                                .changed();
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("k (experts kept)");
                changed |= ui
                    .add(egui::DragValue::new(&mut draft.moe.k).range(1..=8))
                    .labelled_by(label.id)
                    .changed();
                ui.end_row();
                let label = ui.label("distillation steps");
                changed |= ui
                    .add(egui::DragValue::new(&mut draft.moe.distill.steps).range(10..=5000))
                    .labelled_by(label.id)
                    .changed();
                ui.end_row();
            });
        // The scorer only changes what is outlined and exported: no restart.
        self.state.moe.scoring = draft.moe.scoring;
        if changed {
            self.apply(draft, io);
        }
    }
}

fn teddy_ui(ui: &mut egui::Ui, t: &TeddyLive, state: &CompressLabState) {
    let g = &t.data.graph;
    let kept_mask: Vec<bool> = if state.edges <= 0.0 {
        vec![true; g.edges.len()]
    } else {
        edge_masks(g, state.method, &[state.edges], t.cfg.seed)
            .and_then(|m| m.into_iter().next())
            .unwrap_or_else(|| vec![true; g.edges.len()])
    };
    let kept = g.subgraph(&kept_mask);
    let mut degree = vec![0usize; g.n];
    for &(u, v) in &kept.edges {
        degree[u as usize] += 1;
        degree[v as usize] += 1;
    }
    ui.label(
        RichText::new(format!(
            "{}: {:.0} % of {} edges removed, {} kept, {} nodes isolated (ringed); pruned edges grey",
            state.method.name(),
            100.0 * state.edges,
            g.edges.len(),
            kept.edges.len(),
            kept.isolated()
        ))
        .strong(),
    );
    let side = (ui.available_width() * 0.5)
        .min(ui.available_height() - 20.0)
        .max(200.0);
    ui.horizontal(|ui| {
        let (resp, painter) = ui.allocate_painter(egui::vec2(side, side), egui::Sense::hover());
        let rect = resp.rect.shrink(8.0);
        painter.rect_filled(resp.rect, 4.0, ui.visuals().extreme_bg_color);
        let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
        for p in &t.layout {
            for k in 0..2 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let at = |i: usize| {
            let p = t.layout[i];
            egui::pos2(
                rect.left() + rect.width() * (p[0] - lo[0]) / (hi[0] - lo[0]).max(1e-6),
                rect.top() + rect.height() * (p[1] - lo[1]) / (hi[1] - lo[1]).max(1e-6),
            )
        };
        let grey = Stroke::new(0.6, ui.visuals().weak_text_color().gamma_multiply(0.25));
        let ink = Stroke::new(1.0, ui.visuals().strong_text_color().gamma_multiply(0.7));
        for (k, &(u, v)) in g.edges.iter().enumerate() {
            if !kept_mask[k] {
                painter.line_segment([at(u as usize), at(v as usize)], grey);
            }
        }
        for (k, &(u, v)) in g.edges.iter().enumerate() {
            if kept_mask[k] {
                painter.line_segment([at(u as usize), at(v as usize)], ink);
            }
        }
        for (i, &deg) in degree.iter().enumerate() {
            let p = at(i);
            painter.circle_filled(p, 2.8, run_color(t.data.y[i] as usize + 1));
            if deg == 0 {
                painter.circle_stroke(p, 4.5, Stroke::new(1.2, Color32::from_rgb(230, 40, 40)));
            }
        }
        ui.vertical(|ui| {
            let w = ui.available_width().max(200.0);
            let h = (side / 2.0 - 24.0).max(120.0);
            ui.label(RichText::new("degree histogram, before and after").strong());
            let mut before = vec![0usize; 21];
            for d in g.degrees() {
                before[(d as usize).min(20)] += 1;
            }
            let mut after = vec![0usize; 21];
            for &d in &degree {
                after[d.min(20)] += 1;
            }
            Plot::new("compress-degrees")
                .height(h)
                .width(w)
                .legend(Legend::default())
                .x_axis_label("degree (20: 20 or more)")
                .y_axis_label("nodes")
                .allow_scroll(false)
                .show(ui, |plot| {
                    for (j, (name, counts, color)) in [
                        ("whole graph", &before, Color32::from_gray(150)),
                        (
                            "after pruning",
                            &after,
                            run_color(state_color(state.method)),
                        ),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        let bars = counts
                            .iter()
                            .enumerate()
                            .map(|(d, c)| {
                                Bar::new(d as f64 - 0.2 + 0.4 * j as f64, *c as f64).width(0.38)
                            })
                            .collect();
                        plot.bar_chart(BarChart::new(name, bars).color(color));
                    }
                });
            ui.label(
                RichText::new("test accuracy against edges removed (trained as the lab steps)")
                    .strong(),
            );
            Plot::new("compress-accuracy")
                .height(h)
                .width(w)
                .legend(Legend::default())
                .include_x(0.0)
                .include_x(1.0)
                .x_axis_label("fraction of edges removed")
                .y_axis_label("test accuracy")
                .allow_scroll(false)
                .show(ui, |plot| {
                    plot.vline(VLine::new("slider", state.edges).color(Color32::from_gray(140)));
                    if let Some((acc, _)) = t.done[t.dense] {
                        plot.hline(HLine::new("whole graph", acc).color(Color32::from_gray(110)));
                    }
                    for m in EdgeMethod::ONE_SHOT {
                        let mut pts: Vec<[f64; 2]> =
                            t.done[t.dense].map(|(a, _)| [0.0, a]).into_iter().collect();
                        pts.extend(t.jobs.iter().zip(&t.done).filter_map(|(&(jm, p), d)| {
                            (jm == m && p > 0.0).then_some(())?;
                            d.map(|(a, _)| [p, a])
                        }));
                        let color = run_color(state_color(m));
                        plot.line(Line::new(m.name(), pts.clone()).color(color).width(1.5));
                        plot.points(Points::new(m.name(), pts).color(color).radius(3.0));
                    }
                });
        });
    });
}

/// The palette index of a method's curve.
fn state_color(m: EdgeMethod) -> usize {
    match m {
        EdgeMethod::Teddy => 1,
        EdgeMethod::Random => 2,
        EdgeMethod::Reverse => 0,
        EdgeMethod::Ugs => 5,
    }
}

fn moe_ui(ui: &mut egui::Ui, m: &MoeLive, state: &CompressLabState) {
    let results = m.run.results();
    let heat = m.run.routing();
    let chosen = results.iter().find(|r| r.scoring == state.moe.scoring);
    let e = m.run.tiny().moe.n_experts();
    ui.label(
        RichText::new(format!(
            "routing: mean gate of each expert on each cluster's tokens; outlined: the experts \
             {} keeps ({:?})",
            state.moe.scoring.name(),
            chosen.map(|c| c.selected.clone()).unwrap_or_default()
        ))
        .strong(),
    );
    let w = ui.available_width();
    let cell = ((w * 0.45) / (CLUSTERS as f32 + 2.0)).clamp(18.0, 48.0);
    ui.horizontal(|ui| {
        let size = egui::vec2(cell * (CLUSTERS as f32 + 3.0), cell * (e as f32 + 1.5));
        let (resp, painter) = ui.allocate_painter(size, egui::Sense::hover());
        let origin = resp.rect.min + egui::vec2(cell * 2.5, cell * 1.2);
        let top = heat.iter().copied().fold(1e-9, f64::max);
        let font = egui::FontId::proportional((cell * 0.4).max(10.0));
        let text = ui.visuals().text_color();
        for c in 0..CLUSTERS {
            painter.text(
                origin + egui::vec2(cell * (c as f32 + 0.5), -cell * 0.6),
                egui::Align2::CENTER_CENTER,
                format!("c{c}"),
                font.clone(),
                text,
            );
        }
        for x in 0..e {
            let dup = DUPLICATES.iter().any(|&(a, b)| a == x || b == x);
            painter.text(
                origin + egui::vec2(-cell * 1.2, cell * (x as f32 + 0.5)),
                egui::Align2::CENTER_CENTER,
                format!("E{x}{}", if dup { "*" } else { "" }),
                font.clone(),
                text,
            );
            for c in 0..CLUSTERS {
                let v = (heat[x * CLUSTERS + c] / top) as f32;
                let r = egui::Rect::from_min_size(
                    origin + egui::vec2(cell * c as f32, cell * x as f32),
                    egui::vec2(cell - 1.0, cell - 1.0),
                );
                let col = Color32::from_rgb(
                    (30.0 + 225.0 * v) as u8,
                    (40.0 + 150.0 * v) as u8,
                    (90.0 - 60.0 * v) as u8,
                );
                painter.rect_filled(r, 2.0, col);
            }
            if chosen.is_some_and(|c| c.selected.contains(&x)) {
                let r = egui::Rect::from_min_size(
                    origin + egui::vec2(-2.0, cell * x as f32 - 2.0),
                    egui::vec2(cell * CLUSTERS as f32 + 3.0, cell + 3.0),
                );
                painter.rect_stroke(
                    r,
                    3.0,
                    Stroke::new(3.0, Color32::from_rgb(230, 40, 40)),
                    egui::StrokeKind::Outside,
                );
            }
        }
        ui.vertical(|ui| {
            ui.label(RichText::new("relative error ‖y − ŷ‖²/‖y‖² on held-out tokens").strong());
            Plot::new("compress-errors")
                .height((size.y - 20.0).max(160.0))
                .legend(Legend::default())
                .include_y(0.0)
                .x_axis_formatter(|mark, _| {
                    Scoring::ALL
                        .get(mark.value.round() as usize)
                        .filter(|_| (mark.value - mark.value.round()).abs() < 1e-6)
                        .map_or(String::new(), |s| s.name().to_string())
                })
                .allow_scroll(false)
                .show(ui, |plot| {
                    let pre: Vec<Bar> = results
                        .iter()
                        .enumerate()
                        .map(|(i, r)| Bar::new(i as f64 - 0.2, r.pre_distillation).width(0.38))
                        .collect();
                    let post: Vec<Bar> = results
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| !r.post_distillation.is_nan())
                        .map(|(i, r)| Bar::new(i as f64 + 0.2, r.post_distillation).width(0.38))
                        .collect();
                    plot.bar_chart(
                        BarChart::new("before distillation", pre).color(Color32::from_gray(150)),
                    );
                    plot.bar_chart(BarChart::new("after distillation", post).color(run_color(1)));
                });
        });
    });
    ui.label(
        RichText::new("distillation loss, every scorer (MSE to the mixture, log scale)").strong(),
    );
    Plot::new("compress-distill")
        .height((ui.available_height() - 8.0).max(140.0))
        .legend(Legend::default())
        .x_axis_label("distillation step")
        .y_axis_formatter(log_axis)
        .allow_scroll(false)
        .show(ui, |plot| {
            for (i, r) in results.iter().enumerate() {
                if r.losses.is_empty() {
                    continue;
                }
                let pts: Vec<[f64; 2]> = r
                    .losses
                    .iter()
                    .enumerate()
                    .map(|(s, l)| [s as f64 + 1.0, lg(*l)])
                    .collect();
                let width = if r.scoring == state.moe.scoring {
                    2.5
                } else {
                    1.2
                };
                plot.line(
                    Line::new(r.scoring.name(), pts)
                        .color(run_color(i))
                        .width(width),
                );
            }
        });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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

    /// The TEDDY half trains the whole graph first, then the grid, a chunk of epochs per step,
    /// and its accuracies equal `optiscope prune`'s for the same slice — plain, and with the
    /// weights projected and distilled (a separate teacher job, as the CLI trains it).
    #[test]
    fn teddy_steps_match_the_cli_numbers() {
        let (mut msg, mut playing, mut compute) = io_parts();
        let mut io = LabIo {
            message: &mut msg,
            playing: &mut playing,
            compute: &mut compute,
        };
        for (weights, distill) in [(0.0, 0.0), (0.5, 10.0)] {
            let state = CompressLabState {
                prune: PruneConfig {
                    train: optiscope_core::sparsify::experiment::GcnTrainConfig {
                        epochs: 30,
                        weight_sparsity: weights,
                        distill,
                        ..Default::default()
                    },
                    ..PruneConfig::default()
                },
                ..CompressLabState::default()
            };
            let mut lab = CompressLab::new(state.clone(), &mut io);
            let extra = usize::from(distill > 0.0);
            assert_eq!(lab.live.as_ref().unwrap().total(), (28 + extra as u64) * 3);
            lab.step_by(6 + 3 * extra as u64, &mut io);
            let Some(Live::Teddy(t)) = &lab.live else {
                panic!("teddy")
            };
            let (dense, teddy10) = (t.done[extra].unwrap(), t.done[extra + 1].unwrap());
            // The same numbers from core's experiment (what `optiscope prune` runs).
            let cfg = PruneConfig {
                fractions: vec![0.1],
                methods: vec![EdgeMethod::Teddy],
                ..state.prune.clone()
            };
            let rows = cfg.run(&mut Cpu, |_, _| {}).unwrap();
            assert_eq!(
                rows[0].test_accuracy, dense.0,
                "dense ({weights}, {distill})"
            );
            assert_eq!(
                rows[1].test_accuracy, teddy10.0,
                "teddy 10 % ({weights}, {distill})"
            );
            assert_eq!(rows[1].isolated, teddy10.1);
            assert!(lab.detail().starts_with("teddy edges=0.50 kept="));
        }
    }

    /// The copied command is the short `optiscope prune` line when the flags say everything,
    /// else the whole config on standard input; the same for `optiscope moe`.
    #[test]
    fn cli_commands_carry_every_setting() {
        let mut s = CompressLabState::default();
        assert_eq!(
            cli_command(&s),
            "optiscope prune --preset sbm --seed 0 --method teddy --edges 0.5"
        );
        s.prune.train.epochs = 50;
        let c = cli_command(&s);
        assert!(
            c.starts_with("printf '%s' '{") && c.ends_with("' | optiscope prune --config -"),
            "{c}"
        );
        let json = &c["printf '%s' '".len()..c.len() - "' | optiscope prune --config -".len()];
        let cfg: PruneConfig = serde_json::from_str(json).unwrap();
        assert_eq!(
            (cfg.train.epochs, cfg.fractions.clone(), cfg.methods.clone()),
            (50, vec![0.5], vec![EdgeMethod::Teddy])
        );
        s.part = CompressPart::Moe;
        assert!(cli_command(&s).starts_with("optiscope moe --preset tiny --scoring diversity"));
        s.moe.tiny.test = 100;
        let c = cli_command(&s);
        assert!(
            c.ends_with("' | optiscope moe --config - --out runs/moe"),
            "{c}"
        );
    }

    /// The MoE half shows every scorer's pre-distillation error at step 0 and distils them in
    /// order; the errors equal `optiscope moe`'s.
    #[test]
    fn moe_steps_match_the_cli_numbers() {
        let (mut msg, mut playing, mut compute) = io_parts();
        let mut io = LabIo {
            message: &mut msg,
            playing: &mut playing,
            compute: &mut compute,
        };
        let mut state = CompressLabState {
            part: CompressPart::Moe,
            ..CompressLabState::default()
        };
        state.moe.distill.steps = 20;
        let mut lab = CompressLab::new(state.clone(), &mut io);
        assert_eq!(lab.live.as_ref().unwrap().total(), 7 * 2);
        assert!(lab.detail().contains("diversity"));
        while !lab.finished() {
            assert_eq!(lab.step_by(1, &mut io), 1);
        }
        assert_eq!(lab.step(), 14);
        let report = state.moe.run(&mut Cpu, &mut |_, _, _| {}).unwrap();
        let Some(Live::Moe(m)) = &lab.live else {
            panic!("moe")
        };
        for (a, b) in m.run.results().iter().zip(&report.scorers) {
            assert_eq!(a.selected, b.selected);
            assert_eq!(a.post_distillation, b.post_distillation);
        }
        assert!(lab
            .cli_command()
            .starts_with("optiscope moe --preset tiny --scoring diversity"));
    }

    #[test]
    fn the_spring_layout_separates_communities() {
        let data = optiscope_core::sparsify::sbm::SbmConfig::default()
            .generate(0)
            .unwrap();
        let pos = spring_layout(&data.graph, &data.y, 0);
        assert!(pos
            .iter()
            .all(|p| (0.0..=1.0).contains(&p[0]) && (0.0..=1.0).contains(&p[1])));
        // Mean distance within a community is below the mean distance across.
        let (mut within, mut across, mut nw, mut na) = (0.0, 0.0, 0, 0);
        for i in (0..300).step_by(3) {
            for j in (1..300).step_by(7) {
                let d = ((pos[i][0] - pos[j][0]).powi(2) + (pos[i][1] - pos[j][1]).powi(2)).sqrt();
                if data.y[i] == data.y[j] {
                    within += d;
                    nw += 1;
                } else {
                    across += d;
                    na += 1;
                }
            }
        }
        assert!(within / (nw as f32) < 0.8 * across / (na as f32));
        assert!(pos.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
    }
}
