//! The landscape view's kernels: a 2-D problem evaluated on a W×H grid, and its log-scaled
//! colormap written into an RGBA8 texture (what the explorer draws).

use bytemuck::{Pod, Zeroable};
use optiscope_core::problems::landscape::{ColorScale, Landscape, LandscapeKind};

use crate::context::{GpuBuffer, GpuContext, GpuError};
use crate::shaders;

/// `LandscapeParams` of `landscape.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
struct LandscapeParams {
    kind: u32,
    width: u32,
    height: u32,
    _pad: u32,
    bounds: [f32; 4],
    constants: [f32; 4],
    scale: [f32; 4],
}

fn params(l: &Landscape, width: u32, height: u32, scale: Option<&ColorScale>) -> LandscapeParams {
    let (kind, constants) = match l.kind {
        LandscapeKind::Rosenbrock { a, b } => (0, [a, b, 0.0, 0.0]),
        LandscapeKind::Beale => (1, [0.0; 4]),
        LandscapeKind::Saddle => (2, [0.0; 4]),
        LandscapeKind::Quadratic { h } => (3, h),
        LandscapeKind::RiverValley {
            kappa,
            wall,
            amplitude,
            u_star,
        } => (4, [kappa, wall, amplitude, u_star]),
    };
    let [[x0, x1], [y0, y1]] = l.bounds();
    let scale = scale.map_or([0.0; 4], |s| [s.min_value, s.delta, s.log_lo, s.log_hi]);
    LandscapeParams {
        kind,
        width,
        height,
        _pad: 0,
        bounds: [x0 as f32, x1 as f32, y0 as f32, y1 as f32],
        constants: constants.map(|c| c as f32),
        scale,
    }
}

/// Records the evaluation of `l` on a `width × height` grid (row 0 at the top), the twin of
/// `Landscape::grid_values`. Returns the values buffer.
pub fn evaluate_grid(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    l: &Landscape,
    width: u32,
    height: u32,
) -> Result<GpuBuffer, GpuError> {
    let values = ctx.zeros((width * height) as usize);
    let p = params(l, width, height, None);
    let groups = [
        ctx.groups_1d("evaluate_grid", width as usize, 16)?[0],
        ctx.groups_1d("evaluate_grid", height as usize, 16)?[0],
        1,
    ];
    ctx.dispatch(
        enc,
        shaders::LANDSCAPE,
        "evaluate_grid",
        bytemuck::bytes_of(&p),
        &[(1, &values.buffer)],
        groups,
    );
    Ok(values)
}

/// A `width × height` RGBA8 texture the colormap kernel can write and a view can sample.
pub fn heatmap_texture(ctx: &GpuContext, width: u32, height: u32) -> wgpu::Texture {
    ctx.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("landscape heat map"),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::STORAGE_BINDING
            | wgpu::TextureUsages::TEXTURE_BINDING
            | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    })
}

/// Records the colormap pass: `values` (from [`evaluate_grid`]) into `texture`, the twin of
/// `landscape::color_grid`.
pub fn colormap(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    l: &Landscape,
    values: &GpuBuffer,
    scale: &ColorScale,
    texture: &wgpu::Texture,
) -> Result<(), GpuError> {
    let (width, height) = (texture.width(), texture.height());
    let p = params(l, width, height, Some(scale));
    let pipeline = ctx.pipeline(shaders::LANDSCAPE, "colormap");
    let uniform = wgpu::util::DeviceExt::create_buffer_init(
        &ctx.device,
        &wgpu::util::BufferInitDescriptor {
            label: Some("uniform"),
            contents: bytemuck::bytes_of(&p),
            usage: wgpu::BufferUsages::UNIFORM,
        },
    );
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("colormap"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: values.buffer.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: wgpu::BindingResource::TextureView(&view),
            },
        ],
    });
    let groups = [
        ctx.groups_1d("colormap", width as usize, 16)?[0],
        ctx.groups_1d("colormap", height as usize, 16)?[0],
        1,
    ];
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("colormap"),
        timestamp_writes: None,
    });
    pass.set_pipeline(&pipeline);
    pass.set_bind_group(0, &bind_group, &[]);
    pass.dispatch_workgroups(groups[0], groups[1], 1);
    Ok(())
}

/// Reads an RGBA8 texture back as tightly packed rows (rows are padded to 256 bytes for the copy).
pub async fn read_rgba(ctx: &GpuContext, texture: &wgpu::Texture) -> Result<Vec<u8>, GpuError> {
    let (width, height) = (texture.width(), texture.height());
    let row = width * 4;
    let padded =
        row.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("texture read-back"),
        size: u64::from(padded * height),
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let mut enc = ctx.encoder();
    enc.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(padded),
                rows_per_image: Some(height),
            },
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    );
    ctx.submit(enc);
    let bytes = ctx.read_bytes(&buffer, u64::from(padded * height)).await?;
    Ok(bytes
        .chunks(padded as usize)
        .flat_map(|r| r[..row as usize].to_vec())
        .collect())
}

/// This module's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    use crate::layout::uniform_layout;
    vec![
        uniform_layout!(LandscapeParams in shaders::LANDSCAPE, "LandscapeParams" {
            kind, width, height,
            bounds as ["x0", "x1", "y0", "y1"],
            constants as ["c0", "c1", "c2", "c3"],
            scale as ["min_value", "delta", "log_lo", "log_hi"],
        }),
    ]
}
