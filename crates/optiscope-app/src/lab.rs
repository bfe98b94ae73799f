//! A lab: one thing the explorer shows and steps — its controls, its central view, its stepping
//! under a per-frame time budget, its part of the link and its exports. The app holds every lab
//! behind this trait and never branches on which one is shown (in the manner of egui's `Demo`
//! registry and rerun's `ViewClass`). The labs are listed once, in [`crate::labs::build`].

use crate::compute::ComputePath;
use crate::state::{LabKind, LabStates};

/// What a lab may change in the app while it is drawn or stepped.
pub struct LabIo<'a> {
    /// The message of the status line: `(text, is_error)`.
    pub message: &'a mut Option<(String, bool)>,
    /// Whether the app is playing (a lab stops it when its run stops).
    pub playing: &'a mut bool,
    /// The compute path (the landscape's heat map runs on it).
    pub compute: &'a mut ComputePath,
}

impl LabIo<'_> {
    /// An error in the status line.
    pub fn error(&mut self, text: impl Into<String>) {
        *self.message = Some((text.into(), true));
    }

    /// A notice in the status line.
    pub fn notice(&mut self, text: impl Into<String>) {
        *self.message = Some((text.into(), false));
    }
}

/// One lab of the explorer.
pub trait Lab {
    /// Which lab this is (its name in links and its tab).
    fn kind(&self) -> LabKind;

    /// The name of the view shown, for the page's `data-view` (`landscape`, `quantization`, ...).
    fn view_name(&self) -> &'static str;

    /// The preset it shows, if it has presets (for the status).
    fn preset(&self) -> String {
        String::new()
    }

    /// Its "what to look for" panel, for what it shows now (its preset, method or part).
    fn guide(&self) -> &'static crate::guide::Guide;

    /// The step counter the status shows.
    fn step(&self) -> u64;

    /// The step counter in words for the status bar (`step 3 / 2000`, `minibatch 3 (epoch 0 / 5)`).
    fn step_label(&self) -> String;

    /// What one step is, plural, for rates (`steps`, `minibatches`).
    fn step_unit(&self) -> &'static str;

    /// What the step button does, for its hover text.
    fn step_hint(&self) -> &'static str;

    /// Whether nothing is left to step.
    fn finished(&self) -> bool;

    /// Whether it still works without playing (replaying a link): the app keeps repainting.
    fn busy(&self) -> bool {
        false
    }

    /// Up to `n` steps; returns the steps taken (fewer when it finishes or stops).
    fn step_by(&mut self, n: u64, io: &mut LabIo<'_>) -> u64;

    /// One frame: the work it does without playing (replaying a link), then, when `playing`, up
    /// to `speed` steps within `budget_secs`. Returns the steps taken while playing.
    fn frame(&mut self, playing: bool, speed: u32, budget_secs: f64, io: &mut LabIo<'_>) -> u64;

    /// Back to step 0 with the same settings.
    fn reset(&mut self, io: &mut LabIo<'_>);

    /// The compute path changed (the GPU was lost or failed and the app is now on the CPU):
    /// drop what lives on the old device and carry on at the same step.
    fn compute_changed(&mut self, _io: &mut LabIo<'_>) {}

    /// Its own controls in the top bar (sub-views, presets, seed, ...), after play/step/reset.
    fn top_bar_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>);

    /// The left panel.
    fn controls_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>);

    /// The central view.
    fn view_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>);

    /// Its export buttons (CLI command, metrics, config), after "copy link".
    fn share_ui(&mut self, ui: &mut egui::Ui, io: &mut LabIo<'_>);

    /// What "copy link" says it reopens.
    fn link_notice(&self) -> &'static str;

    /// A one-line summary of its state for the page's `data-detail` (empty if none).
    fn detail(&mut self) -> String {
        String::new()
    }

    /// Writes its part of the link into `states` (with the step it should reopen at).
    fn save_state(&self, states: &mut LabStates);

    /// A dropped file: `Some(what was shown)` if the lab opens it, else `None`.
    fn open_file(&mut self, _name: &str, _text: &str) -> Option<Result<String, String>> {
        None
    }

    /// The lab itself, for code that knows which lab it holds (its tests).
    fn as_any(&mut self) -> &mut dyn std::any::Any;
}

/// How long replaying a link may take per frame (the page stays live meanwhile).
pub const RESTORE_BUDGET_SECS: f64 = 0.040;

/// [`Lab::frame`] for a lab that replays a link one step at a time and plays with
/// [`Lab::step_by`]: while `restoring(lab)`, `step_once` within [`RESTORE_BUDGET_SECS`] (no steps
/// count as played); else, when playing, up to `speed` steps within `budget_secs`, stopping the
/// app when the lab is finished. Returns the steps played.
pub fn replay_or_play<L: Lab>(
    lab: &mut L,
    (playing, speed, budget_secs): (bool, u32, f64),
    io: &mut LabIo<'_>,
    restoring: fn(&L) -> bool,
    step_once: fn(&mut L, &mut LabIo<'_>) -> bool,
) -> u64 {
    if restoring(lab) {
        let start = web_time::Instant::now();
        while restoring(lab) && start.elapsed().as_secs_f64() < RESTORE_BUDGET_SECS {
            if !step_once(lab, io) {
                break;
            }
        }
        return 0;
    }
    if !playing {
        return 0;
    }
    if lab.finished() {
        *io.playing = false;
        return 0;
    }
    let start = web_time::Instant::now();
    let mut taken = 0u64;
    while taken < u64::from(speed) && start.elapsed().as_secs_f64() < budget_secs {
        if lab.step_by(1, io) == 0 {
            break;
        }
        taken += 1;
    }
    taken
}
