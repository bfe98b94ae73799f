//! Which compute path the explorer uses, and the landscape heat map on it: the WGSL kernels on
//! eframe's own wgpu device when it has compute shaders (WebGPU, Vulkan, Metal, DX12), the CPU
//! twins otherwise (WebGL2 has no compute shaders). A device that is lost, or that reports an
//! error no one handled, is noted by [`GpuHealth`]; the app then falls back to the CPU
//! ([`ComputePath::fall_back_if_failed`]) instead of stopping.

use std::sync::{Arc, Mutex};

use optiscope_core::problems::landscape::{color_grid, Landscape};
use optiscope_gpu::GpuContext;

/// Heat maps are this many pixels on a side.
pub const HEATMAP_SIZE: u32 = 256;

/// Where the explorer computes.
pub enum ComputePath {
    /// WGSL compute on eframe's device.
    Gpu {
        /// The device, with its pipeline cache.
        ctx: Arc<GpuContext>,
        /// eframe's renderer, to show our texture.
        renderer: Arc<egui::mutex::RwLock<egui_wgpu::Renderer>>,
        /// The heat-map texture and its egui id, created on first use.
        target: Option<(wgpu::Texture, egui::TextureId)>,
        /// Whether the device still works.
        health: GpuHealth,
    },
    /// The CPU twins.
    Cpu {
        /// Why not the GPU.
        reason: String,
    },
}

impl ComputePath {
    /// Chooses the path for eframe's render state (`None`: no wgpu renderer).
    pub fn choose(render_state: Option<&egui_wgpu::RenderState>) -> Self {
        let Some(rs) = render_state else {
            return Self::Cpu {
                reason: "no wgpu renderer".into(),
            };
        };
        let info = rs.adapter.get_info();
        if let Some(reason) = gpu_refusal(&info, &rs.device.limits()) {
            return Self::Cpu { reason };
        }
        let ctx = Arc::new(GpuContext::from_device(
            rs.device.clone(),
            rs.queue.clone(),
            info,
        ));
        Self::on_gpu(ctx, rs.renderer.clone())
    }

    /// The GPU path on `ctx` (drawing with `renderer`), with its health watched.
    pub fn on_gpu(
        ctx: Arc<GpuContext>,
        renderer: Arc<egui::mutex::RwLock<egui_wgpu::Renderer>>,
    ) -> Self {
        Self::Gpu {
            health: GpuHealth::watch(&ctx.device),
            ctx,
            renderer,
            target: None,
        }
    }

    /// If the GPU was lost or failed, switches to the CPU and says why (`None`: nothing changed).
    pub fn fall_back_if_failed(&mut self) -> Option<String> {
        let Self::Gpu { health, .. } = self else {
            return None;
        };
        let why = health.failure()?;
        *self = Self::Cpu {
            reason: format!("after {why}"),
        };
        Some(why)
    }

    /// The GPU's device and its health, if on the GPU (for tests and the web page's test hook).
    pub fn gpu(&self) -> Option<(&wgpu::Device, &GpuHealth)> {
        match self {
            Self::Gpu { ctx, health, .. } => Some((&ctx.device, health)),
            Self::Cpu { .. } => None,
        }
    }

    /// The status line's words for the path.
    pub fn describe(&self) -> String {
        match self {
            Self::Gpu { ctx, .. } => {
                let api = if cfg!(target_arch = "wasm32") {
                    "WebGPU".to_string()
                } else {
                    format!("{:?}", ctx.info.backend)
                };
                // Browsers may hide the adapter's name; say what they do tell.
                let i = &ctx.info;
                let name = [i.name.as_str(), i.driver.as_str(), i.driver_info.as_str()]
                    .into_iter()
                    .find(|s| !s.is_empty())
                    .map_or_else(
                        || format!("{:?} adapter (the browser hides its name)", i.device_type),
                        str::to_string,
                    );
                format!("{api} compute on {name}")
            }
            Self::Cpu { reason } => format!("CPU ({reason})"),
        }
    }

    /// The heat map of `l` as an egui texture: computed by the GPU kernels, or by the CPU.
    pub fn heatmap(
        &mut self,
        egui_ctx: &egui::Context,
        l: &Landscape,
    ) -> Result<egui::TextureId, String> {
        let scale = l.color_scale();
        match self {
            Self::Gpu {
                ctx,
                renderer,
                target,
                ..
            } => {
                if target.is_none() {
                    let texture =
                        optiscope_gpu::landscape::heatmap_texture(ctx, HEATMAP_SIZE, HEATMAP_SIZE);
                    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
                    let id = renderer.write().register_native_texture(
                        &ctx.device,
                        &view,
                        wgpu::FilterMode::Linear,
                    );
                    *target = Some((texture, id));
                }
                let Some((texture, id)) = target.as_ref() else {
                    unreachable!("created above")
                };
                let mut enc = ctx.encoder();
                let values = optiscope_gpu::landscape::evaluate_grid(
                    ctx,
                    &mut enc,
                    l,
                    HEATMAP_SIZE,
                    HEATMAP_SIZE,
                )
                .map_err(|e| e.to_string())?;
                optiscope_gpu::landscape::colormap(ctx, &mut enc, l, &values, &scale, texture)
                    .map_err(|e| e.to_string())?;
                ctx.submit(enc);
                Ok(*id)
            }
            Self::Cpu { .. } => {
                let n = HEATMAP_SIZE as usize;
                let pixels = color_grid(&l.grid_values(n, n), &scale);
                let image = egui::ColorImage::from_rgba_unmultiplied([n, n], &pixels);
                let handle =
                    egui_ctx.load_texture("landscape", image, egui::TextureOptions::LINEAR);
                let id = handle.id();
                // egui frees a texture when its last handle drops: keep this one alive.
                egui_ctx.data_mut(|d| d.insert_temp(egui::Id::unique("landscape-texture"), handle));
                Ok(id)
            }
        }
    }
}

/// Why an adapter cannot run the compute kernels (`None`: it can): a GL backend (WebGL2 and
/// OpenGL have no compute shaders here), or limits below what the kernels need.
pub fn gpu_refusal(info: &wgpu::AdapterInfo, limits: &wgpu::Limits) -> Option<String> {
    if info.backend == wgpu::Backend::Gl {
        return Some(
            if cfg!(target_arch = "wasm32") {
                "WebGL2 has no compute shaders"
            } else {
                "OpenGL has no compute shaders here"
            }
            .into(),
        );
    }
    let mut missing = vec![];
    if limits.max_compute_invocations_per_workgroup < MIN_INVOCATIONS {
        missing.push(format!(
            "{} invocations per workgroup (the kernels need {MIN_INVOCATIONS})",
            limits.max_compute_invocations_per_workgroup
        ));
    }
    if limits.max_storage_buffers_per_shader_stage < MIN_STORAGE_BUFFERS {
        missing.push(format!(
            "{} storage buffers per stage (the kernels need {MIN_STORAGE_BUFFERS})",
            limits.max_storage_buffers_per_shader_stage
        ));
    }
    (!missing.is_empty()).then(|| {
        let name = if info.name.is_empty() {
            "the GPU"
        } else {
            info.name.as_str()
        };
        format!("{name} allows only {}", missing.join(" and "))
    })
}

/// Invocations per workgroup the kernels use (16 × 16 tiles).
pub const MIN_INVOCATIONS: u32 = 256;
/// Storage buffers the optimizer kernels bind (the transformer's need more: its lab checks).
pub const MIN_STORAGE_BUFFERS: u32 = 5;

/// Whether a device still works: wgpu's device-lost callback and its handler of errors no one
/// caught (which would otherwise panic) write here, wake the app, and the app reads it every
/// frame.
#[derive(Debug, Clone, Default)]
pub struct GpuHealth {
    failure: Arc<Mutex<Option<String>>>,
    /// The app's context, repainted on a failure (a paused app draws no frames by itself).
    waker: Arc<Mutex<Option<egui::Context>>>,
}

impl GpuHealth {
    /// Watches `device`: its loss and its uncaptured errors.
    pub fn watch(device: &wgpu::Device) -> Self {
        let health = Self::default();
        let lost = health.clone();
        device.set_device_lost_callback(move |reason, message| {
            let what = match reason {
                wgpu::DeviceLostReason::Destroyed => "the GPU device was destroyed".to_string(),
                wgpu::DeviceLostReason::Unknown => "the GPU device was lost".to_string(),
            };
            lost.fail(
                if message.is_empty() || reason == wgpu::DeviceLostReason::Destroyed {
                    what
                } else {
                    format!("{what} ({})", first_line(&message))
                },
            );
        });
        let failed = health.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            failed.fail(format!("a GPU error ({})", first_line(&e.to_string())));
        }));
        health
    }

    /// Repaints `ctx` when the device fails.
    pub fn wake(&self, ctx: &egui::Context) {
        *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(ctx.clone());
    }

    /// Records the first failure (later ones follow from it) and wakes the app.
    pub fn fail(&self, why: String) {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(why);
        if let Some(ctx) = &*self.waker.lock().unwrap_or_else(|e| e.into_inner()) {
            ctx.request_repaint();
        }
    }

    /// The failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The first line of a message, at most 200 characters.
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(backend: wgpu::Backend) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo {
            name: "Test GPU".into(),
            ..wgpu::AdapterInfo::new(wgpu::DeviceType::DiscreteGpu, backend)
        }
    }

    /// A GL adapter, or one whose limits are below the kernels' needs, is refused with the reason
    /// in words; WebGPU's default limits are enough.
    #[test]
    fn adapters_without_what_the_kernels_need_are_refused() {
        let gl = gpu_refusal(&info(wgpu::Backend::Gl), &wgpu::Limits::default()).unwrap();
        assert!(gl.contains("no compute shaders"), "{gl}");
        let low = gpu_refusal(
            &info(wgpu::Backend::Vulkan),
            &wgpu::Limits::downlevel_webgl2_defaults(),
        )
        .unwrap();
        assert_eq!(
            low,
            "Test GPU allows only 0 invocations per workgroup (the kernels need 256) and 0 \
             storage buffers per stage (the kernels need 5)"
        );
        let few = wgpu::Limits {
            max_storage_buffers_per_shader_stage: 4,
            ..wgpu::Limits::default()
        };
        let e = gpu_refusal(&info(wgpu::Backend::Vulkan), &few).unwrap();
        assert!(
            e.ends_with("only 4 storage buffers per stage (the kernels need 5)"),
            "{e}"
        );
        assert_eq!(
            gpu_refusal(
                &info(wgpu::Backend::BrowserWebGpu),
                &wgpu::Limits::default()
            ),
            None
        );
    }
}
