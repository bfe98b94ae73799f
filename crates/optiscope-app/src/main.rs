//! The explorer in a native window: `cargo run --release -p optiscope-app`.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> eframe::Result {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 800.0])
            .with_title("optiscope explorer"),
        wgpu_options: optiscope_app::wgpu_options(true),
        ..Default::default()
    };
    let fragment = std::env::args().nth(1).unwrap_or_default();
    eframe::run_native(
        "optiscope explorer",
        options,
        Box::new(move |cc| {
            let app = optiscope_app::ExplorerApp::new(cc, &fragment, "http://127.0.0.1:8080/");
            // The app's own path: choosing a second one would re-register wgpu's device-lost
            // and error callbacks and leave the app's GpuHealth deaf.
            eprintln!("optiscope explorer: {}", app.compute().describe());
            Ok(Box::new(app))
        }),
    )
}

/// On the web the entry point is the library's `start` (see `index.html`).
#[cfg(target_arch = "wasm32")]
fn main() {}
