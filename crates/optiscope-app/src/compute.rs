//! Which compute path the explorer uses, and the landscape heat map on it: the WGSL kernels on
//! eframe's own wgpu device when it has compute shaders (WebGPU, Vulkan, Metal, DX12), the CPU
//! twins otherwise (WebGL2 has no compute shaders).

use std::sync::Arc;

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
        if info.backend == wgpu::Backend::Gl {
            let reason = if cfg!(target_arch = "wasm32") {
                "WebGL2 has no compute shaders"
            } else {
                "OpenGL has no compute shaders here"
            };
            return Self::Cpu {
                reason: reason.into(),
            };
        }
        let limits = rs.device.limits();
        if limits.max_compute_invocations_per_workgroup < 256
            || limits.max_storage_buffers_per_shader_stage < 5
        {
            return Self::Cpu {
                reason: format!("{} lacks the compute limits the kernels need", info.name),
            };
        }
        let ctx = Arc::new(GpuContext::from_device(
            rs.device.clone(),
            rs.queue.clone(),
            info,
        ));
        Self::Gpu {
            ctx,
            renderer: rs.renderer.clone(),
            target: None,
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
