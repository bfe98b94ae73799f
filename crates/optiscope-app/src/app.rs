//! The explorer app: the top bar, the status line, sharing and the per-frame step budget around
//! the lab shown. Every lab is a [`Lab`]; the app never branches on which one it is.

use web_time::Instant;

use crate::compute::ComputePath;
use crate::lab::{Lab, LabIo};
use crate::labs;
use crate::state::{ExplorerState, GpuUse, LabKind};
pub use crate::status::Status;

/// How long stepping may take per frame, so the view stays responsive at any speed.
const STEP_BUDGET_SECS: f64 = 0.010;

/// Frame time and stepping rate, smoothed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Perf {
    /// Exponential moving average of the frame time, ms.
    pub frame_ms: f64,
    /// Exponential moving average of steps per wall-clock second while playing (steps taken in
    /// a frame over that frame's duration).
    pub steps_per_s: f64,
}

/// The optiscope explorer.
pub struct ExplorerApp {
    /// The link state as opened; each lab writes its part back when a link is made.
    state: ExplorerState,
    /// The labs built so far (a lab is built when it is first shown).
    labs: Vec<Box<dyn Lab>>,
    playing: bool,
    message: Option<(String, bool)>,
    compute: ComputePath,
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
}

type Inbox = std::sync::Arc<std::sync::Mutex<Vec<(String, Result<Vec<u8>, String>)>>>;

impl ExplorerApp {
    /// The app on eframe's context, starting from a link's fragment (or the default preset).
    pub fn new(cc: &eframe::CreationContext<'_>, fragment: &str, base_url: &str) -> Self {
        crate::fonts::install_fonts(&cc.egui_ctx);
        let (state, mut message) = match ExplorerState::from_fragment(fragment) {
            Ok(Some(s)) => (s, None),
            Ok(None) => (ExplorerState::from_preset("river-valley"), None),
            Err(e) => (
                ExplorerState::from_preset("river-valley"),
                Some((format!("{e}; showing the defaults"), true)),
            ),
        };
        let compute = match state.page.gpu {
            GpuUse::Auto => ComputePath::choose(cc.wgpu_render_state.as_ref()),
            GpuUse::Off => ComputePath::Cpu {
                reason: "gpu=0 in the link".into(),
            },
            GpuUse::Lost => {
                message = Some((
                    "the WebGPU device was lost: the explorer continues on the CPU path \
                     (remove &gpu=lost from the address to try the GPU again)"
                        .into(),
                    true,
                ));
                ComputePath::Cpu {
                    reason: "the WebGPU device was lost".into(),
                }
            }
        };
        if let Some((_device, health)) = compute.gpu() {
            health.wake(&cc.egui_ctx);
            #[cfg(target_arch = "wasm32")]
            crate::page::remember_device(_device.clone());
        }
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
                let fragment = std::mem::take(&mut self.fragment);
                *self = Self::with_state(state, compute, &self.base_url.clone());
                self.fragment = fragment;
            }
            Ok(None) => {}
            Err(e) => self.message = Some((format!("{e}; keeping the current experiment"), true)),
        }
    }

    /// The app for `state` on `compute` (also what tests use, with no eframe).
    pub fn with_state(state: ExplorerState, compute: ComputePath, base_url: &str) -> Self {
        let playing = state.page.play;
        let mut app = Self {
            state,
            labs: vec![],
            playing,
            message: None,
            compute,
            perf: Perf::default(),
            last_frame: None,
            base_url: base_url.to_string(),
            inbox: Default::default(),
            taken_last_frame: 0,
            fragment: String::new(),
        };
        // The experiment lab always exists (the default tab); the link's own lab too.
        app.ensure_lab(LabKind::Experiment);
        app.ensure_lab(app.state.lab);
        app
    }

    /// Builds the lab of `kind` from the link state when it is first needed.
    fn ensure_lab(&mut self, kind: LabKind) {
        if self.labs.iter().any(|l| l.kind() == kind) {
            return;
        }
        let mut io = LabIo {
            message: &mut self.message,
            playing: &mut self.playing,
            compute: &mut self.compute,
        };
        let lab = labs::build(kind, &self.state, &mut io);
        self.labs.push(lab);
    }

    /// The lab shown and the rest of the app that a lab may change.
    fn shown(&mut self) -> (&mut dyn Lab, LabIo<'_>) {
        let kind = self.state.lab;
        self.ensure_lab(kind);
        let lab = self
            .labs
            .iter_mut()
            .find(|l| l.kind() == kind)
            .unwrap_or_else(|| unreachable!("ensure_lab built it"));
        let io = LabIo {
            message: &mut self.message,
            playing: &mut self.playing,
            compute: &mut self.compute,
        };
        (lab.as_mut(), io)
    }

    /// The lab shown.
    pub fn lab(&mut self) -> &mut dyn Lab {
        self.shown().0
    }

    /// What the status line says.
    pub fn status(&mut self) -> Status {
        let link = self.share_url();
        let (lab, _) = self.shown();
        let (step, view, preset, detail, guide) = (
            lab.step(),
            lab.view_name(),
            lab.preset(),
            lab.detail(),
            lab.guide().title,
        );
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
            view: view.to_string(),
            preset,
            link,
            detail,
            guide: if self.state.guide {
                guide.to_string()
            } else {
                String::new()
            },
        }
    }

    /// The shareable link of the current state: every lab built so far writes its part.
    pub fn share_url(&self) -> String {
        let mut s = self.state.clone();
        for lab in &self.labs {
            lab.save_state(&mut s.labs);
        }
        format!("{}#{}", self.base_url, s.to_fragment())
    }

    /// The GPU was lost or failed (`why`): on the web the page reloads at the current state on
    /// the CPU path (eframe draws with the same device, so WebGL2 must take over the drawing);
    /// natively every lab moves its work to the CPU and carries on.
    fn gpu_failed(&mut self, why: &str) {
        #[cfg(target_arch = "wasm32")]
        {
            let url = format!("{}&gpu=lost", self.share_url());
            crate::page::reload_at(&url);
        }
        self.message = Some((format!("{why}: continuing on the CPU path"), true));
        let mut io = LabIo {
            message: &mut self.message,
            playing: &mut self.playing,
            compute: &mut self.compute,
        };
        for lab in &mut self.labs {
            lab.compute_changed(&mut io);
        }
    }

    /// Falls back to the CPU if the GPU was lost or failed since the last frame.
    pub fn check_gpu(&mut self) {
        if let Some(why) = self.compute.fall_back_if_failed() {
            self.gpu_failed(&why);
        }
    }

    /// The compute path (tests).
    pub fn compute(&self) -> &ComputePath {
        &self.compute
    }

    /// Up to `n` steps of the lab shown.
    pub fn step_by(&mut self, n: u64) -> u64 {
        let (lab, mut io) = self.shown();
        lab.step_by(n, &mut io)
    }

    /// The lab shown, back at step 0.
    pub fn reset(&mut self) {
        let (lab, mut io) = self.shown();
        lab.reset(&mut io);
    }

    /// Steps while playing, within the per-frame budget.
    /// Nothing plays while the page is hidden (another tab, a minimised window): browsers may
    /// still run frames there, and a hidden lab should not spend the machine.
    fn play(&mut self) {
        #[cfg(target_arch = "wasm32")]
        let hidden = crate::page::hidden();
        #[cfg(not(target_arch = "wasm32"))]
        let hidden = false;
        let (playing, speed) = (self.playing && !hidden, self.state.speed);
        let (lab, mut io) = self.shown();
        self.taken_last_frame = lab.frame(playing, speed, STEP_BUDGET_SECS, &mut io);
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
        if steps > 0 {
            self.step_by(steps as u64);
        }
        if play {
            self.playing = !self.playing;
        }
        if reset {
            self.reset();
        }
    }

    /// Files dropped on the window: read them (asynchronously on the web) and hand them to the
    /// lab shown.
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
            let opened = match bytes {
                Err(e) => Err(format!("cannot read {name}: {e}")),
                Ok(b) => {
                    let text = String::from_utf8_lossy(&b).into_owned();
                    self.lab()
                        .open_file(&name, &text)
                        .unwrap_or_else(|| Err(format!("{name}: this lab opens no files")))
                }
            };
            match opened {
                Ok(shown) => self.notice(shown),
                Err(e) => self.message = Some((e, true)),
            }
        }
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.heading("optiscope");
            ui.separator();
            for kind in LabKind::ALL {
                ui.selectable_value(&mut self.state.lab, kind, kind.label());
            }
            ui.separator();
            let playing = self.playing;
            let (lab, mut io) = self.shown();
            if ui
                .button(if playing { "pause" } else { "play" })
                .on_hover_text("Space")
                .clicked()
            {
                *io.playing = !playing;
            }
            if ui.button("step").on_hover_text(lab.step_hint()).clicked() {
                lab.step_by(1, &mut io);
            }
            if ui.button("reset").on_hover_text("R").clicked() {
                lab.reset(&mut io);
            }
            let unit = lab.step_unit();
            ui.add(
                egui::Slider::new(&mut self.state.speed, 1..=500)
                    .logarithmic(true)
                    .text(format!("{unit}/frame")),
            );
            let (lab, mut io) = self.shown();
            ui.separator();
            lab.top_bar_ui(ui, &mut io);
        });
        ui.horizontal_wrapped(|ui| self.share_ui(ui));
    }

    fn share_ui(&mut self, ui: &mut egui::Ui) {
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
            let notice = self.lab().link_notice();
            self.notice(notice);
        }
        let (lab, mut io) = self.shown();
        lab.share_ui(ui, &mut io);
    }

    /// The lab's "what to look for" panel above its view: open or closed as the link says, and
    /// the link follows when it is toggled.
    fn guide_ui(&mut self, ui: &mut egui::Ui) {
        let guide = self.lab().guide();
        let open = self.state.guide;
        let header = egui::CollapsingHeader::new(
            egui::RichText::new(format!("What to look for: {}", guide.title)).strong(),
        )
        .id_salt("guide")
        .open(Some(open))
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.label(egui::RichText::new("The claim.").strong());
                ui.label(guide.claim);
            });
            ui.horizontal_wrapped(|ui| {
                ui.label(egui::RichText::new("On the screen.").strong());
                ui.label(guide.look_for);
            });
            ui.label(egui::RichText::new(guide.citation).small().weak());
        });
        if header.header_response.clicked() {
            self.state.guide = !open;
        }
        ui.separator();
    }

    fn status_ui(&mut self, ui: &mut egui::Ui) {
        let s = self.status();
        let (label, unit) = {
            let lab = self.lab();
            (lab.step_label(), lab.step_unit())
        };
        ui.horizontal_wrapped(|ui| {
            ui.label(format!("compute: {}", s.compute));
            ui.separator();
            ui.label(label);
            ui.separator();
            ui.label(format!("{:.1} ms/frame", s.frame_ms));
            ui.separator();
            ui.label(format!("{:.0} {unit}/s", s.steps_per_s));
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
        self.check_gpu();
        self.frame_timing();
        self.keyboard(&ctx);
        self.dropped_files(&ctx);
        self.play();
        let page = self.state.page.clone();
        if !page.hide_top {
            egui::Panel::top("top").show(ui, |ui| self.top_bar_ui(ui));
        }
        if !page.hide_status {
            egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        }
        let kind = self.state.lab;
        if !page.hide_controls {
            egui::Panel::left(kind.name())
                .resizable(true)
                .default_size(320.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        let (lab, mut io) = self.shown();
                        lab.controls_ui(ui, &mut io);
                    });
                });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            self.guide_ui(ui);
            let (lab, mut io) = self.shown();
            lab.view_ui(ui, &mut io);
        });
        #[cfg(target_arch = "wasm32")]
        {
            crate::page::publish_status(&self.status());
            crate::page::mark_first_frame();
        }
        let busy = self.lab().busy();
        if self.playing || busy {
            ctx.request_repaint();
        }
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
    use crate::labs::experiment::ExperimentLab;
    use crate::labs::quantization::controls::QuantAction;
    use crate::labs::quantization::QuantLab;
    use crate::state::QuantViewState;

    fn cpu() -> ComputePath {
        ComputePath::Cpu {
            reason: "test".into(),
        }
    }

    /// The lab of `kind`, built if needed, as its own type.
    fn lab_of<L: 'static>(app: &mut ExplorerApp, kind: LabKind) -> &mut L {
        app.ensure_lab(kind);
        let lab = app.labs.iter_mut().find(|l| l.kind() == kind).unwrap();
        lab.as_any().downcast_mut().unwrap()
    }

    fn experiment(app: &mut ExplorerApp) -> &mut ExperimentLab {
        lab_of(app, LabKind::Experiment)
    }

    fn quant(app: &mut ExplorerApp) -> &mut QuantLab {
        lab_of(app, LabKind::Quantization)
    }

    /// A frame's input: a 1280×800 screen.
    fn input() -> egui::RawInput {
        egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(1280.0, 800.0),
            )),
            ..Default::default()
        }
    }

    /// `&play=1` starts the page playing, and with every panel hidden (`&hide=top,controls,status`)
    /// the frames still step the lab; its shared link keeps the page options.
    #[test]
    fn a_play_link_starts_playing_with_its_panels_hidden() {
        let state =
            ExplorerState::from_fragment("#preset=rosenbrock&play=1&hide=top,controls,status")
                .unwrap()
                .unwrap();
        let mut app = ExplorerApp::with_state(state, cpu(), "http://h/");
        assert!(app.playing);
        assert!(app
            .share_url()
            .ends_with("&play=1&hide=top,controls,status"));
        let ctx = egui::Context::default();
        for _ in 0..2 {
            let mut out = ctx.run_ui(input(), |ui| app.frame_ui(ui));
            out.textures_delta.clear();
        }
        assert!(experiment(&mut app).experiment().current_step() > 0);
    }

    /// A link made at some step reopens the same runs at the same step, with the same losses.
    #[test]
    fn shared_link_reproduces_the_runs() {
        let mut state = ExplorerState::from_preset("rosenbrock");
        state.labs.experiment.experiment.seed = 3;
        let mut app = ExplorerApp::with_state(state, cpu(), "http://h/");
        app.step_by(37);
        let url = app.share_url();
        let fragment = url.split_once('#').unwrap().1;
        let state = ExplorerState::from_fragment(fragment).unwrap().unwrap();
        let mut reopened = ExplorerApp::with_state(state, cpu(), "http://h/");
        assert_eq!(experiment(&mut reopened).experiment().current_step(), 37);
        let a: Vec<_> = experiment(&mut app)
            .experiment()
            .runs()
            .iter()
            .map(|r| r.history().to_vec())
            .collect();
        let b: Vec<_> = experiment(&mut reopened)
            .experiment()
            .runs()
            .iter()
            .map(|r| r.history().to_vec())
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn an_invalid_experiment_in_a_link_falls_back_to_its_preset_with_a_message() {
        let mut state = ExplorerState::from_preset("saddle");
        state.labs.experiment.experiment.runs.clear();
        let mut app = ExplorerApp::with_state(state, cpu(), "");
        assert!(
            app.status().message.contains("not valid"),
            "{}",
            app.status().message
        );
        assert!(!experiment(&mut app).experiment().runs().is_empty());
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
        app.step_by(2);
        let s = app.status();
        assert_eq!(s.compute, "CPU (WebGL2 has no compute shaders)");
        assert_eq!(s.step, 2);
        assert_eq!(s.view, "landscape");
        assert_eq!(s.preset, "river-valley");
        assert!(s.link.contains("#s="));
    }

    /// The labs' states travel together: a link made in the Quantization lab also carries the
    /// experiment lab's, and switching labs keeps each where it was.
    #[test]
    fn switching_labs_keeps_each_labs_state() {
        let mut app = ExplorerApp::with_state(ExplorerState::from_preset("saddle"), cpu(), "");
        app.step_by(5);
        app.state.lab = LabKind::Quantization;
        app.step_by(3);
        assert_eq!(app.status().view, "quantization");
        assert_eq!(app.status().step, 3);
        app.state.lab = LabKind::Experiment;
        assert_eq!(app.status().step, 5);
        let url = app.share_url();
        let state = ExplorerState::from_fragment(url.split_once('#').unwrap().1)
            .unwrap()
            .unwrap();
        assert_eq!(state.labs.experiment.step, 5);
        assert_eq!(state.labs.quantization.unwrap().step, 3);
    }

    /// A link made in the Quantization lab reopens the same training run at the same step, with
    /// the same weights (the same quantization statistics) and the same epoch metrics.
    #[test]
    fn a_quantization_link_retrains_to_the_same_step() {
        let mut state = ExplorerState::from_fragment("#view=quantization&data=moons&epochs=4")
            .unwrap()
            .unwrap();
        state.speed = 7;
        let mut app = ExplorerApp::with_state(state, cpu(), "http://h/");
        assert_eq!(app.status().view, "quantization");
        app.playing = true;
        for _ in 0..6 {
            app.play();
        }
        let steps = quant(&mut app).run().unwrap().steps();
        assert!(steps >= 6, "{steps} minibatches after 6 frames");
        assert_eq!(app.status().step, steps);
        let url = app.share_url();
        let state = ExplorerState::from_fragment(url.split_once('#').unwrap().1)
            .unwrap()
            .unwrap();
        assert_eq!(state.labs.quantization.as_ref().unwrap().step, steps);
        let mut reopened = ExplorerApp::with_state(state, cpu(), "http://h/");
        assert!(quant(&mut reopened).run().unwrap().restoring());
        quant(&mut reopened)
            .run_mut()
            .unwrap()
            .catch_up(f64::INFINITY)
            .unwrap();
        let (a, b) = (app.status(), reopened.status());
        assert_eq!(b.step, steps);
        assert_eq!(a.detail, b.detail);
        assert!(a.detail.contains("near_frac="), "{}", a.detail);
        assert_eq!(
            quant(&mut app).run().unwrap().epochs(),
            quant(&mut reopened).run().unwrap().epochs()
        );
    }

    #[test]
    fn quantization_controls_retrain_and_keep_the_run_on_bad_configs() {
        let state = ExplorerState::from_fragment("#view=quantization")
            .unwrap()
            .unwrap();
        let mut app = ExplorerApp::with_state(state, cpu(), "");
        app.step_by(3);
        let mut cfg = quant(&mut app).state().train.clone();
        cfg.hidden = vec![8];
        // The controls' actions, applied to the lab shown (the Quantization lab).
        let apply = |app: &mut ExplorerApp, action: QuantAction| {
            let (lab, mut io) = app.shown();
            let lab: &mut QuantLab = lab.as_any().downcast_mut().unwrap();
            lab.apply(action, &mut io);
        };
        apply(&mut app, QuantAction::Retrain(Box::new(cfg.clone())));
        assert_eq!(app.status().step, 0);
        assert_eq!(quant(&mut app).run().unwrap().config().hidden, vec![8]);
        app.step_by(2);
        // Revised ProxQuant needs Adam's second moment: refused, the run goes on.
        let mut bad = cfg.clone();
        bad.quant = optiscope_core::quant::QuantConfig::new(
            optiscope_core::quant::QuantMethod::Proxquant,
            2,
        );
        bad.optimizer = optiscope_core::optim::OptimizerConfig::default_for("sgd").unwrap();
        apply(&mut app, QuantAction::Retrain(Box::new(bad)));
        apply(&mut app, QuantAction::SetEpochs(1));
        assert!(app.status().message.starts_with("not applied"));
        assert_eq!(app.status().step, 2);
        let mut want = cfg.clone();
        want.epochs = 1;
        assert_eq!(quant(&mut app).state().train, want);
        while app.step_by(1) == 1 {}
        assert!(quant(&mut app).run().unwrap().finished());
        assert_eq!(quant(&mut app).run().unwrap().epochs().len(), 1);
    }

    /// A link whose training config cannot train shows the defaults and says why.
    #[test]
    fn an_invalid_quantization_link_falls_back_to_the_defaults() {
        let mut state = ExplorerState::from_fragment("#view=quantization")
            .unwrap()
            .unwrap();
        state.labs.quantization.as_mut().unwrap().train.hidden = vec![0];
        let mut app = ExplorerApp::with_state(state, cpu(), "");
        assert!(
            app.status().message.contains("not valid"),
            "{}",
            app.status().message
        );
        assert_eq!(quant(&mut app).state(), &QuantViewState::default());
        assert!(quant(&mut app).run().is_some());
    }

    /// Every lab draws headless (egui without a renderer) while playing — the Quantization lab
    /// on every quantizer at its second layer, the experiment lab in each of its views — and a
    /// frame stays cheap next to the rendering.
    #[test]
    fn every_lab_draws_while_playing() {
        let ctx = egui::Context::default();
        let mut links: Vec<String> = optiscope_core::quant::QuantMethod::ALL
            .iter()
            .map(|m| format!("#view=quantization&method={}&layer=1", m.name()))
            .collect();
        links.extend(
            [
                "#view=landscape",
                "#view=spectrum",
                "#view=loss",
                "#preset=lora-spectrum",
            ]
            .map(String::from),
        );
        for f in links {
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
            eprintln!("{f}: {ms:.2} ms per frame (step {})", app.status().step);
            assert!(app.status().step > 0, "{f}");
            assert_eq!(app.status().message, "", "{f}");
        }
    }

    /// A lost GPU (its device destroyed, as a driver reset would) moves the explorer to the CPU
    /// with a message saying so, and the Transformer lab, which trained on the GPU, carries on
    /// on the CPU from the step it had reached. Needs an adapter (lavapipe in CI).
    #[test]
    fn a_lost_gpu_falls_back_to_the_cpu_at_the_same_step() {
        use crate::labs::transformer::TransformerLab;
        let Some(ctx) = crate::test_gpu() else {
            return;
        };
        let renderer = egui_wgpu::Renderer::new(
            &ctx.device,
            wgpu::TextureFormat::Rgba8Unorm,
            egui_wgpu::RendererOptions::default(),
        );
        let path = ComputePath::on_gpu(
            ctx.clone(),
            std::sync::Arc::new(egui::mutex::RwLock::new(renderer)),
        );
        let state = ExplorerState::from_fragment("#transformer=adamw&steps=20")
            .unwrap()
            .unwrap();
        let mut app = ExplorerApp::with_state(state, path, "");
        assert_eq!(
            lab_of::<TransformerLab>(&mut app, LabKind::Transformer).device(),
            "GPU"
        );
        assert_eq!(app.step_by(3), 3);
        app.check_gpu();
        assert!(app.compute().gpu().is_some(), "nothing failed yet");
        ctx.device.destroy();
        // wgpu reports the loss once the queue is empty, when the device is next polled.
        let health = app.compute().gpu().unwrap().1.clone();
        for _ in 0..500 {
            let _ = ctx.device.poll(wgpu::PollType::Poll);
            if health.failure().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        app.check_gpu();
        assert!(
            app.compute().gpu().is_none(),
            "still on the GPU after losing it"
        );
        let (message, is_error) = app.message.clone().unwrap();
        assert!(is_error);
        assert_eq!(
            message,
            "the GPU device was destroyed: continuing on the CPU path"
        );
        assert_eq!(
            app.compute().describe(),
            "CPU (after the GPU device was destroyed)"
        );
        let lab = lab_of::<TransformerLab>(&mut app, LabKind::Transformer);
        assert_eq!(lab.device(), "CPU (after the GPU device was destroyed)");
        // It replays to step 3 on the CPU over the next frames, then steps on.
        let mut frames = 0;
        while lab.busy() && frames < 1000 {
            let mut io_parts = (
                None,
                false,
                ComputePath::Cpu {
                    reason: String::new(),
                },
            );
            let mut io = LabIo {
                message: &mut io_parts.0,
                playing: &mut io_parts.1,
                compute: &mut io_parts.2,
            };
            lab.frame(false, 1, 0.01, &mut io);
            frames += 1;
        }
        assert_eq!(lab.step(), 3);
        assert_eq!(app.step_by(1), 1);
        assert_eq!(app.status().step, 4);
    }
}
