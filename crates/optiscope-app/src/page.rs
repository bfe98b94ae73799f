//! The web page glue the app uses: the status mirrored into the DOM (`#status`, with `data-*`
//! attributes for tests and tools), the URL fragment, downloads. Below the app in the layering
//! (it knows the [`Status`], not the app); the entry point that starts the app is [`crate::web`].

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::status::Status;

pub(crate) fn document() -> Option<web_sys::Document> {
    web_sys::window()?.document()
}

pub(crate) fn set_text(id: &str, text: &str) {
    if let Some(el) = document().and_then(|d| d.get_element_by_id(id)) {
        el.set_text_content(Some(text));
    }
}

/// Mirrors the status line into `#status` (text and `data-*` attributes).
pub fn publish_status(s: &Status) {
    let Some(el) = document().and_then(|d| d.get_element_by_id("status")) else {
        return;
    };
    let text = format!(
        "compute: {} | step {} | {:.1} ms/frame | {:.0} steps/s",
        s.compute, s.step, s.frame_ms, s.steps_per_s
    );
    if el.text_content().as_deref() != Some(text.as_str()) {
        el.set_text_content(Some(&text));
    }
    let view = s.view.as_str();
    for (k, v) in [
        ("data-compute", s.compute.clone()),
        ("data-step", s.step.to_string()),
        ("data-frame-ms", format!("{:.3}", s.frame_ms)),
        ("data-steps-per-s", format!("{:.1}", s.steps_per_s)),
        ("data-message", s.message.clone()),
        ("data-view", view.to_string()),
        ("data-preset", s.preset.clone()),
        ("data-link", s.link.clone()),
        ("data-detail", s.detail.clone()),
        ("data-guide", s.guide.clone()),
    ] {
        let _ = el.set_attribute(k, &v);
    }
}

/// Records, once, the time of the first frame drawn since navigation started
/// (`performance.now()`, ms) as `data-first-frame-ms` on `#status`, and logs it.
pub fn mark_first_frame() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::Relaxed) {
        return;
    }
    let Some(ms) = web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
    else {
        return;
    };
    if let Some(el) = document().and_then(|d| d.get_element_by_id("status")) {
        let _ = el.set_attribute("data-first-frame-ms", &format!("{ms:.0}"));
    }
    web_sys::console::log_1(
        &format!("optiscope: first frame at {ms:.0} ms after navigation").into(),
    );
}

/// Whether the page is hidden (`document.hidden`: another tab, a minimised window).
pub fn hidden() -> bool {
    document().is_some_and(|d| d.hidden())
}

/// The URL fragment without `#`.
pub fn current_fragment() -> String {
    web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default()
        .trim_start_matches('#')
        .to_string()
}

/// Puts the shareable state into the address bar (so reloading keeps it).
pub fn set_fragment(url: &str) {
    if let (Some(w), Some(hash)) = (web_sys::window(), url.split_once('#').map(|(_, h)| h)) {
        let _ = w.location().set_hash(hash);
    }
}

/// Offers `contents` as a download named `file_name`.
pub fn download(file_name: &str, contents: &str) -> Result<(), String> {
    let err = |e: JsValue| format!("download failed: {e:?}");
    let parts = js_sys_array(contents);
    let blob = web_sys::Blob::new_with_str_sequence(&parts).map_err(err)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(err)?;
    let a = document()
        .ok_or("no document")?
        .create_element("a")
        .map_err(err)?
        .dyn_into::<web_sys::HtmlAnchorElement>()
        .map_err(|_| "not an anchor".to_string())?;
    a.set_href(&url);
    a.set_download(file_name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

fn js_sys_array(s: &str) -> JsValue {
    let arr = js_sys::Array::new();
    arr.push(&JsValue::from_str(s));
    arr.into()
}

thread_local! {
    /// The compute device, for [`lose_gpu`].
    static DEVICE: std::cell::RefCell<Option<wgpu::Device>> = const { std::cell::RefCell::new(None) };
}

/// Keeps the compute device for [`lose_gpu`].
pub fn remember_device(device: wgpu::Device) {
    DEVICE.with(|d| *d.borrow_mut() = Some(device));
}

/// A test hook, `optiscopeLoseGpu()` on the page's module: destroys the WebGPU device the
/// explorer computes on, as a driver reset or a lost GPU would, to check that the page carries on
/// on the CPU. Returns whether there was a device to lose.
#[wasm_bindgen(js_name = optiscopeLoseGpu)]
pub fn lose_gpu() -> bool {
    DEVICE
        .with(|d| d.borrow_mut().take())
        .is_some_and(|device| {
            device.destroy();
            true
        })
}

/// Opens `url` (this page with another fragment) as a fresh page load.
pub fn reload_at(url: &str) {
    if let Some(w) = web_sys::window() {
        set_fragment(url);
        let _ = w.location().reload();
    }
}
