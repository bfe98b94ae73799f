//! The native explorer driven as a person drives it, through egui_kittest: widgets are found by
//! their accessible labels (AccessKit, what a screen reader reads) and clicked or typed into, and
//! the app is rendered headless with wgpu (lavapipe in CI). Switching labs, each lab's "what to
//! look for" panel, play / step / reset, editing an optimizer's field, and refusing an invalid
//! value with its message. The app runs on the CPU path here (the GPU path has its own tests).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use optiscope_app::compute::ComputePath;
use optiscope_app::state::{ExplorerState, LabKind};
use optiscope_app::ExplorerApp;

/// The app on `fragment` in a 1280×800 window.
fn harness(fragment: &str) -> Harness<'static, ExplorerApp> {
    let state = ExplorerState::from_fragment(fragment)
        .unwrap()
        .unwrap_or_else(|| ExplorerState::from_preset("river-valley"));
    let cpu = ComputePath::Cpu {
        reason: "kittest".into(),
    };
    let app = ExplorerApp::with_state(state, cpu, "http://localhost/");
    Harness::builder()
        .with_size([1280.0, 800.0])
        .with_context_setup(optiscope_app::install_fonts)
        .build_ui_state(|ui, app: &mut ExplorerApp| app.frame_ui(ui), app)
}

/// The link state the app would share now.
fn link(h: &mut Harness<'_, ExplorerApp>) -> ExplorerState {
    let url = h.state().share_url();
    ExplorerState::from_fragment(url.split_once('#').unwrap().1)
        .unwrap()
        .unwrap()
}

/// Every lab's tab opens it, with its own controls and its "what to look for" panel.
#[test]
fn each_labs_tab_opens_it_with_its_guide() {
    let mut h = harness("");
    h.run();
    for (kind, view, control) in [
        (LabKind::Quantization, "quantization", "quantizer"),
        (LabKind::Align, "align", "preset"),
        (LabKind::Compress, "compress-teddy", "edges removed"),
        (LabKind::Transformer, "transformer", "width C"),
        (LabKind::Experiment, "landscape", "add"),
    ] {
        h.get_by_label(kind.label()).click();
        // A lab builds its runs over a few frames (repainting while busy), then settles;
        // `run` then checks every widget has an accessible name.
        h.run_steps(30);
        h.run();
        let status = h.state_mut().status();
        assert_eq!(status.view, view, "{kind:?}");
        let title = h.state_mut().lab().guide().title;
        assert_eq!(status.guide, title, "{kind:?}");
        h.get_by_label(&format!("What to look for: {title}"));
        assert!(
            h.query_all_by_label_contains(control).next().is_some(),
            "{kind:?}: no control labelled {control:?}"
        );
    }
}

/// The guide collapses and opens by its header, and the link remembers it.
#[test]
fn the_guide_collapses_and_the_link_remembers() {
    let mut h = harness("#preset=lora-spectrum");
    h.run();
    let header =
        "What to look for: Muon and SpecGD on a LoRA factorization: equal-rate spectral growth";
    assert!(h.query_by_label_contains("The claim.").is_some());
    h.get_by_label(header).click();
    h.run();
    assert!(
        h.query_by_label_contains("The claim.").is_none(),
        "still open"
    );
    assert!(!link(&mut h).guide);
    assert_eq!(h.state_mut().status().guide, "");
    h.get_by_label(header).click();
    h.run();
    assert!(
        h.query_by_label_contains("The claim.").is_some(),
        "still closed"
    );
    assert!(link(&mut h).guide);
}

/// Step, play, pause and reset by their buttons.
#[test]
fn step_play_pause_and_reset() {
    let mut h = harness("#preset=rosenbrock");
    h.run();
    assert_eq!(h.state_mut().status().step, 0);
    h.get_by_label("step").click();
    h.run();
    assert_eq!(h.state_mut().status().step, 1);
    h.get_by_label("play").click();
    // Playing repaints every frame: a fixed number of frames, not `run`.
    h.run_steps(6);
    let played = h.state_mut().status().step;
    assert!(played > 2, "playing did not step: {played}");
    h.get_by_label("pause").click();
    h.run_steps(2);
    let paused = h.state_mut().status().step;
    h.run_steps(4);
    assert_eq!(
        h.state_mut().status().step,
        paused,
        "paused but still stepping"
    );
    h.get_by_label("reset").click();
    h.run();
    assert_eq!(h.state_mut().status().step, 0);
}

/// Types `text` into the field labelled `label` (a drag value becomes a text field when clicked)
/// and presses Enter.
fn type_into(h: &mut Harness<'_, ExplorerApp>, label: &str, text: &str) {
    h.get_by_label(label).click();
    h.run();
    // A clicked drag value is a text field: select its text, type over it.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.run();
    h.get_by_label(label).type_text(text);
    h.run();
    h.key_press(egui::Key::Enter);
    h.run();
}

/// An optimizer's field, edited in the runs panel, changes the experiment (and its link); an
/// invalid value is refused with its message and the run keeps its value.
#[test]
fn an_optimizer_field_is_edited_and_an_invalid_value_refused() {
    let mut h = harness("#preset=river-valley");
    h.run();
    let lr = |h: &mut Harness<'_, ExplorerApp>| {
        link(h).labs.experiment.experiment.runs[0].optimizer.lr()
    };
    assert_eq!(lr(&mut h), 0.2);
    type_into(&mut h, "lr", "0.05");
    let field = h.get_by_label("lr").accesskit_node().value();
    assert_eq!(lr(&mut h), 0.05, "the field shows {field:?}");
    type_into(&mut h, "lr", "-1");
    assert_eq!(lr(&mut h), 0.05, "an invalid lr was applied");
    let refusal = h.get_by_label_contains("not applied: ");
    let node = refusal.accesskit_node();
    let text = node.label().or(node.value()).unwrap_or_default();
    assert!(text.starts_with("not applied: lr = -1"), "{text}");
}

/// The Transformer lab's model width is chosen from its menu by label and the runs restart at
/// the new size (its link follows).
#[test]
fn the_transformer_lab_changes_its_width_from_the_menu() {
    let mut h = harness("#transformer=adamw,muon");
    // The lab builds its runs over a few frames (it repaints while busy).
    h.run_steps(20);
    assert_eq!(link(&mut h).labs.transformer.unwrap().lm.n_embd, 64);
    h.get_by_label("width C").click();
    h.run();
    h.get_by_label("32").click();
    h.run_steps(20);
    assert_eq!(link(&mut h).labs.transformer.unwrap().lm.n_embd, 32);
    assert_eq!(h.state_mut().status().step, 0);
    assert_eq!(h.state_mut().status().message, "");
}

/// The app renders through wgpu, headless, to a picture that is not blank. Needs an adapter
/// (lavapipe in CI, `WGPU_BACKEND=vulkan`).
#[test]
fn the_app_renders_headless_with_wgpu() {
    let state = ExplorerState::from_preset("river-valley");
    let cpu = ComputePath::Cpu {
        reason: "kittest".into(),
    };
    let app = ExplorerApp::with_state(state, cpu, "http://localhost/");
    let mut h = Harness::builder()
        .with_size([1280.0, 800.0])
        .with_context_setup(optiscope_app::install_fonts)
        .wgpu()
        .build_ui_state(|ui, app: &mut ExplorerApp| app.frame_ui(ui), app);
    h.run();
    let image = match h.render() {
        Ok(image) => image,
        Err(e) => {
            assert!(
                std::env::var("REQUIRE_GPU").map_or(true, |v| v != "1"),
                "REQUIRE_GPU=1 but rendering failed: {e}"
            );
            eprintln!("SKIPPED (no wgpu adapter to render with: {e})");
            return;
        }
    };
    assert_eq!((image.width(), image.height()), (1280, 800));
    let colours: std::collections::HashSet<[u8; 4]> = image.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 200,
        "the rendered app looks blank: {} colours",
        colours.len()
    );
}
