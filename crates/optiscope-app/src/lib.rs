//! The optiscope explorer: watch optimizers move on loss landscapes, singular values grow, losses
//! fall — live, from the same core experiments the `optiscope` binary runs.
//!
//! One module per view ([`views`]), the state that lives in the link ([`state`]), export and
//! import ([`export`]), the compute path ([`compute`]); [`app::ExplorerApp`] ties them together.
//! Entry points: `src/main.rs` (an eframe window) and the wasm `start` function (the web page).

pub mod app;
pub mod compute;
pub mod export;
pub mod fonts;
pub mod guide;
pub mod lab;
pub mod labs;
#[cfg(target_arch = "wasm32")]
pub mod page;
pub mod state;
pub mod status;
pub mod views;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use app::ExplorerApp;
pub use fonts::install_fonts;

/// The GPU adapter for a test, or `None` with the reason printed (a failure under
/// `REQUIRE_GPU=1`, as in CI).
#[cfg(test)]
pub(crate) fn test_gpu() -> Option<std::sync::Arc<optiscope_gpu::GpuContext>> {
    match optiscope_gpu::GpuContext::request_blocking(optiscope_gpu::AdapterPolicy::AllowSoftware) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            assert!(
                std::env::var("REQUIRE_GPU").map_or(true, |v| v != "1"),
                "REQUIRE_GPU=1 but no GPU adapter: {e}"
            );
            eprintln!("SKIPPED (no GPU adapter: {e})");
            None
        }
    }
}

/// eframe's wgpu setup for the explorer: the adapter's own limits (eframe asks for WebGL2-level
/// limits on GL, which have no compute; everywhere else the adapter's limits let the compute
/// kernels run). Without `gpu`, only the GL backend (WebGL2 on the web): drawing, no compute.
pub fn wgpu_options(gpu: bool) -> egui_wgpu::WgpuConfiguration {
    let mut create = egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    if !gpu {
        create.instance_descriptor.backends = wgpu::Backends::GL;
    }
    create.device_descriptor = std::sync::Arc::new(|adapter: &wgpu::Adapter| {
        let limits = if adapter.get_info().backend == wgpu::Backend::Gl {
            wgpu::Limits::downlevel_webgl2_defaults()
        } else {
            adapter.limits()
        };
        wgpu::DeviceDescriptor {
            label: Some("optiscope explorer"),
            required_limits: wgpu::Limits {
                max_texture_dimension_2d: limits
                    .max_texture_dimension_2d
                    .max(2048)
                    .min(adapter.limits().max_texture_dimension_2d),
                ..limits
            },
            ..Default::default()
        }
    });
    egui_wgpu::WgpuConfiguration {
        wgpu_setup: egui_wgpu::WgpuSetup::CreateNew(create),
        ..Default::default()
    }
}
