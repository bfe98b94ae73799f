//! The random family on the GPU: `RandomOps` for [`GpuDevice`], with the Philox launchers of
//! `shaders/random.wgsl`. Normals are generated on the device (`normal`); Gumbel noise keeps the
//! default (the host's f64 transcendental functions, uploaded), so RQ's samples are bit-identical
//! to the CPU's. The CPU twins are `optiscope_core::rng` and `optiscope_core::device::random`;
//! `tests/random.rs` compares them.

use bytemuck::{Pod, Zeroable};
use optiscope_core::device::random::host_normal;
use optiscope_core::device::{Counter, RandomOps};

use crate::context::{GpuBuffer, GpuContext, GpuError};
use crate::device::GpuDevice;
use crate::shaders;

/// `RngParams` of `random.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
struct RngParams {
    key: [u32; 2],
    stream: [u32; 2],
    n: u32,
    offset: u32,
    scale: f32,
    decay: f32,
}

fn rng_params(seed: u64, stream: u64, offset: u32, n: usize, scale: f32) -> RngParams {
    RngParams {
        key: [seed as u32, (seed >> 32) as u32],
        stream: [stream as u32, (stream >> 32) as u32],
        n: n as u32,
        offset,
        scale,
        decay: 1.0,
    }
}

/// Words `offset .. offset + n` of Philox stream `stream` under `seed`, on the GPU (the twin of
/// `optiscope_core::rng::Philox::u32_at`). Returns a buffer of `n` u32 (as raw bits).
pub fn rng_u32(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    seed: u64,
    stream: u64,
    offset: u32,
    n: usize,
) -> Result<wgpu::Buffer, GpuError> {
    let out = ctx.zeros(n).buffer;
    let groups = ctx.groups_1d("fill_u32", n, 256)?;
    ctx.dispatch(
        enc,
        shaders::RANDOM,
        "fill_u32",
        bytemuck::bytes_of(&rng_params(seed, stream, offset, n, 1.0)),
        &[(1, &out)],
        groups,
    );
    Ok(out)
}

/// `scale ×` normals `offset .. offset + n` of stream `stream` (twin of `Philox::normal_at`).
#[allow(clippy::too_many_arguments)]
pub fn rng_normal(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    seed: u64,
    stream: u64,
    offset: u32,
    n: usize,
    scale: f32,
) -> Result<GpuBuffer, GpuError> {
    let out = ctx.zeros(n);
    let groups = ctx.groups_1d("fill_normal", n, 256)?;
    ctx.dispatch(
        enc,
        shaders::RANDOM,
        "fill_normal",
        bytemuck::bytes_of(&rng_params(seed, stream, offset, n, scale)),
        &[(2, &out.buffer)],
        groups,
    );
    Ok(out)
}

/// In place `p ← decay·p + scale·z`, z the normals `offset ..` of the stream (MeZO's perturbation
/// and update; the twin of `optiscope_core::device::optim::elementwise::axpy_normal`).
pub fn axpy_normal(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    p: &GpuBuffer,
    at: Counter,
    offset: u32,
    decay: f32,
    scale: f32,
) -> Result<(), GpuError> {
    let groups = ctx.groups_1d("axpy_normal", p.len, 256)?;
    let params = RngParams {
        decay,
        ..rng_params(at.seed, at.stream, offset, p.len, scale)
    };
    ctx.dispatch(
        enc,
        shaders::RANDOM,
        "axpy_normal",
        bytemuck::bytes_of(&params),
        &[(2, &p.buffer)],
        groups,
    );
    Ok(())
}

impl RandomOps for GpuDevice {
    fn normal(&mut self, at: Counter, len: usize, scale: f32) -> GpuBuffer {
        // The shader's index is 32-bit: counters past it (and empty tensors) take the host path.
        let offset = match u32::try_from(at.offset) {
            Ok(offset) if len > 0 && at.offset + len as u64 <= u64::from(u32::MAX) => offset,
            _ => return self.upload(&host_normal(at, len, scale)),
        };
        let ctx = self.ctx.clone();
        match rng_normal(&ctx, self.enc(), at.seed, at.stream, offset, len, scale) {
            Ok(buf) => buf,
            Err(e) => {
                self.error.get_or_insert(e);
                self.ctx.zeros(len)
            }
        }
    }
}

/// This module's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    use crate::layout::uniform_layout;
    vec![uniform_layout!(RngParams in shaders::RANDOM, "RngParams" {
        key as ["key_lo", "key_hi"], stream as ["stream_lo", "stream_hi"], n, offset, scale, decay,
    })]
}
