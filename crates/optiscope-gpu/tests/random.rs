//! The random family (`core/src/device/random.rs`, `core/src/rng.rs` ↔ `shaders/random.wgsl` ↔
//! `gpu/src/ops/random.rs`): Philox words bit for bit, normals to f32 rounding of log/cos/sin.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{down, gpu, gpu_device, read};
use optiscope_core::device::{Counter, Cpu, RandomOps};
use optiscope_core::rng::{stream, Philox, StreamKind};
use optiscope_gpu::ops::random;

/// The generator's u32 stream is identical to the CPU's for 100 000 draws; normals agree to f32
/// rounding of log/cos/sin.
#[test]
fn rng_streams_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let (seed, s) = (0x1234_5678_9abc_def0u64, stream(StreamKind::GradNoise, 42));
    let n = 100_000;
    let mut enc = ctx.encoder();
    let words = random::rng_u32(&ctx, &mut enc, seed, s, 3, n).unwrap();
    let normals = random::rng_normal(&ctx, &mut enc, seed, s, 0, 4096, 2.0).unwrap();
    ctx.submit(enc);
    let got: Vec<u32> =
        bytemuck::cast_slice(&pollster::block_on(ctx.read_bytes(&words, (n * 4) as u64)).unwrap())
            .to_vec();
    let cpu = Philox::new(seed);
    for (i, w) in got.iter().enumerate() {
        assert_eq!(*w, cpu.u32_at(s, i as u64 + 3), "word {}", i + 3);
    }
    let z = read(&ctx, &normals);
    for (i, v) in z.iter().enumerate() {
        let want = 2.0 * cpu.normal_at(s, i as u64);
        assert!(
            (v - want).abs() < 1e-4 * (1.0 + want.abs()),
            "normal {i}: {v} vs {want}"
        );
    }
}

/// The device's `normal` (generated on the GPU) against the CPU's at an offset, and past the
/// shader's 32-bit index (the host fallback), to f32 rounding of log/cos/sin.
#[test]
fn device_normal_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    for offset in [1001u64, (1 << 32) + 5] {
        let at = Counter {
            seed: 99,
            stream: stream(StreamKind::GradNoise, 3),
            offset,
        };
        let want = Cpu.normal(at, 777, 0.5);
        let got = dev.normal(at, 777, 0.5);
        let got = down(&mut dev, &got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() < 1e-4 * (1.0 + w.abs()),
                "offset {offset}, normal {i}: {g} vs {w}"
            );
        }
    }
    assert!(dev.take_error().is_none());
}

/// MeZO's fused `p ← decay·p + scale·z` (z regenerated in the kernel, never stored) against the
/// CPU twin, at offset 0 and at an offset inside a Philox block, to f32 rounding of log/cos/sin
/// (as the device's `normal`).
#[test]
fn axpy_normal_matches_cpu() {
    use optiscope_core::device::OptimOps;
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let start: Vec<f32> = (0..1001).map(|i| (i as f32 * 0.37).sin()).collect();
    for offset in [0u64, 3] {
        let at = Counter {
            seed: 42,
            stream: stream(StreamKind::Mezo, 16),
            offset,
        };
        let mut want = start.clone();
        Cpu.axpy_normal(&mut want, at, 0.9, -0.25);
        let mut buf = dev.upload(&start);
        dev.axpy_normal(&mut buf, at, 0.9, -0.25);
        let got = down(&mut dev, &buf);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() < 1e-4 * (1.0 + w.abs()),
                "offset {offset}, element {i}: {g} vs {w}"
            );
        }
    }
    assert!(dev.take_error().is_none());
}
