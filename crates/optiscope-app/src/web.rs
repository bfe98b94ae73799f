//! The web entry point: starts the app on the page's canvas (`index.html` calls `start`). The
//! page glue the app itself uses (status, fragment, downloads) is in [`crate::page`].

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::page::{document, set_text};

/// Starts the explorer on the canvas with id `canvas_id`. Called by `index.html`.
#[wasm_bindgen]
pub async fn start(canvas_id: String) -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let location = window.location();
    let fragment = location.hash().unwrap_or_default();
    let base = format!(
        "{}{}",
        location.origin().unwrap_or_default(),
        location.pathname().unwrap_or_default()
    );
    let canvas = document()
        .and_then(|d| d.get_element_by_id(&canvas_id))
        .ok_or_else(|| JsValue::from_str(&format!("no element #{canvas_id}")))?
        .dyn_into::<web_sys::HtmlCanvasElement>()?;
    // `&gpu=0` or `&gpu=lost`: draw with WebGL2 (the CPU path), not on the GPU the link avoids.
    let gpu = crate::state::PageOptions::split(fragment.trim_start_matches('#'))
        .map_or(crate::state::GpuUse::Auto, |(_, o)| o.gpu);
    let options = eframe::WebOptions {
        wgpu_options: crate::wgpu_options(gpu == crate::state::GpuUse::Auto),
        ..Default::default()
    };
    let result = eframe::WebRunner::new()
        .start(
            canvas,
            options,
            Box::new(move |cc| Ok(Box::new(crate::ExplorerApp::new(cc, &fragment, &base)))),
        )
        .await;
    match &result {
        Ok(()) => set_text("loading", ""),
        Err(e) => set_text("error", &format!("optiscope could not start: {e:?}")),
    }
    result
}
