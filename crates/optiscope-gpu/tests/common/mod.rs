//! What every conformance file shares: the adapter (skipping with a printed reason, or failing
//! under `REQUIRE_GPU=1`), seeded inputs and the error measures.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use optiscope_core::device::Storage;
use optiscope_core::rng::{stream, Philox, StreamKind};
use optiscope_gpu::{AdapterPolicy, GpuContext, GpuDevice};

/// The adapter, once per test binary; None (after printing why) when there is none.
pub fn gpu() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Result<Arc<GpuContext>, String>> = OnceLock::new();
    match CTX.get_or_init(|| {
        GpuContext::request_blocking(AdapterPolicy::AllowSoftware).map_err(|e| e.to_string())
    }) {
        Ok(ctx) => Some(ctx.clone()),
        Err(reason) => {
            assert!(
                std::env::var("REQUIRE_GPU").map_or(true, |v| v != "1"),
                "REQUIRE_GPU=1 but no GPU adapter: {reason}"
            );
            eprintln!("SKIPPED (no GPU adapter: {reason}); install mesa-vulkan-drivers and set WGPU_BACKEND=vulkan to run it");
            None
        }
    }
}

/// `scale ·` N(0, 1) values, seeded.
pub fn random(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut v = vec![0.0; n];
    Philox::new(seed).fill_normal(stream(StreamKind::Data, 7), scale, &mut v);
    v
}

/// max |a − b| / max |b|, the tensor-relative error.
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b
        .iter()
        .fold(0.0f64, |m, &v| m.max(f64::from(v).abs()))
        .max(1e-30);
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
        .fold(0.0, f64::max)
        / scale
}

pub fn read(ctx: &GpuContext, buf: &optiscope_gpu::GpuBuffer) -> Vec<f32> {
    ctx.read_blocking(buf).unwrap()
}

/// Elementwise check `|got − want| ≤ tol·max(1, |want|)`; returns the worst `|got − want| /
/// max(1, |want|)` for the log.
pub fn close_elementwise(what: &str, got: &[f32], want: &[f32], tol: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - f64::from(w)).abs() / f64::from(w).abs().max(1.0);
        assert!(
            err <= tol,
            "{what}[{i}]: GPU {g} vs CPU {w} (error {err:.2e} > {tol:.0e})"
        );
        worst = worst.max(err);
    }
    worst
}

pub fn gpu_device(ctx: &Arc<GpuContext>) -> GpuDevice {
    GpuDevice::new(ctx.clone())
}

pub fn down(dev: &mut GpuDevice, buf: &optiscope_gpu::GpuBuffer) -> Vec<f32> {
    Storage::download(dev, buf).unwrap()
}
