//! The quantization family (`core/src/device/quant.rs` ↔ `shaders/quant.wgsl` ↔
//! `gpu/src/ops/quant.rs`): the per-weight kernel in every mode and ProxQuant's prox against the CPU
//! twins.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{close_elementwise, down, gpu, gpu_device, random};
use optiscope_core::device::quant::categorical::{gumbel, masses, open_unit, NoisyGrid};
use optiscope_core::device::quant::kernel::{quantize, KernelMode, ProxScalars, QuantSpec};
use optiscope_core::device::{Cpu, QuantOps, QuantOut, Storage};
use optiscope_core::quant::bit_level;
use optiscope_core::rng::{stream, Philox, StreamKind};
use optiscope_gpu::GpuDevice;

/// ProxQuant's prox with and without Adam's second moment, including exact ties between grid
/// points (to the upper one) and points outside the grid. Random inputs keep 1e-3·α away from
/// the midpoints, where the prox jumps. Elementwise 1e-5·max(1, |w|).
#[test]
fn prox_grid_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let alpha = 0.25f32;
    let mut w: Vec<f32> = random(31, 120, 0.5)
        .into_iter()
        .filter(|z| ((z / alpha).rem_euclid(1.0) - 0.5).abs() > 1e-3)
        .collect();
    w.extend([0.125, -0.125, 0.375, -0.875, 2.0, -3.0, 0.0, 0.75, -1.0]);
    let v: Vec<f32> = random(32, w.len(), 1e-2).iter().map(|x| x * x).collect();
    let mut worst = 0.0f64;
    // The binary grid {−1, +1} (offset β = 1) too, as ProxQuant's binary experiments use it.
    let binary = |with_v: bool| ProxScalars {
        bias_correction2: 0.3,
        eps: 1e-8,
        ..ProxScalars::binary(if with_v { 1e-3 } else { 0.05 })
    };
    for with_v in [false, true] {
        let s = binary(with_v);
        let mut want = w.clone();
        Cpu.prox_grid(&mut want, with_v.then_some(&v), &s);
        let mut gw = dev.upload(&w);
        let gv = dev.upload(&v);
        dev.prox_grid(&mut gw, with_v.then_some(&gv), &s);
        let got = down(&mut dev, &gw);
        worst = worst.max(close_elementwise(
            &format!("prox_grid binary v={with_v}"),
            &got,
            &want,
            1e-5,
        ));
    }
    for bits in [2, 3] {
        for with_v in [false, true] {
            let s = ProxScalars {
                bias_correction2: 0.3,
                eps: 1e-8,
                ..ProxScalars::signed(bits, alpha, if with_v { 1e-3 } else { 0.05 })
            };
            let mut want = w.clone();
            Cpu.prox_grid(&mut want, with_v.then_some(&v), &s);
            let mut gw = dev.upload(&w);
            let gv = dev.upload(&v);
            dev.prox_grid(&mut gw, with_v.then_some(&gv), &s);
            let got = down(&mut dev, &gw);
            let what = format!("prox_grid bits={bits} v={with_v}");
            worst = worst.max(close_elementwise(&what, &got, &want, 1e-5));
        }
    }
    eprintln!("prox_grid: worst error {worst:.2e}");
}

/// Weights for the categorical modes: N(0, 0.5) and a sweep across (and beyond) the grid, minus
/// those whose two best scores `log π_k + log K_level(k)` are within 1e-3 of each other — there
/// the f32 kernel may pick the other point (its log-masses differ from f64 by ~1e-6), a
/// legitimate rounding difference rather than a kernel error.
fn categorical_weights(spec: &QuantSpec, seed: u64) -> Vec<f32> {
    let grid = NoisyGrid {
        bits: spec.bits,
        alpha: f64::from(spec.alpha),
        sigma: f64::from(spec.sigma),
        extend_edges: spec.extend_edges,
    };
    let mut w = random(seed, 96, 0.5);
    w.extend((0..48).map(|i| -1.6 + 0.067 * i as f32));
    w.retain(|&x| {
        let m = masses(f64::from(x), &grid);
        let mut scores: Vec<f64> = (0..m.n)
            .filter_map(|i| {
                let level = bit_level(grid.kmin() + i as i32, spec.bits) as usize;
                let k = f64::from(spec.keep[level - 1]);
                (k > 0.0).then(|| m.log_pi[i] + k.ln())
            })
            .collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        scores.len() < 2 || scores[0] - scores[1] > 1e-3
    });
    w
}

/// Runs `spec` on `w` on both devices and compares x̂ (1e-5·max(1, |x̂|)), the gain and the
/// parameter derivatives (1e-4·max(1, |·|): sums of products of f32 log-space terms against the
/// f64 reference); returns the worst (x̂, derivative) errors.
fn compare_quantize(dev: &mut GpuDevice, w: &[f32], spec: &QuantSpec, noise: &[f32]) -> (f64, f64) {
    let want = quantize(w, spec, noise);
    let gnoise = (!noise.is_empty()).then(|| dev.upload(noise));
    let gw = dev.upload(w);
    let QuantOut {
        xhat: x,
        gain: g,
        dparams: d,
    } = dev.quantize(&gw, spec, gnoise.as_ref());
    let (x, g, d) = (down(dev, &x), down(dev, &g), down(dev, &d));
    let what = format!(
        "{:?} b={} extend={} keep={:?}",
        spec.mode, spec.bits, spec.extend_edges, spec.keep
    );
    let ex = close_elementwise(&format!("{what} xhat"), &x, &want.xhat, 1e-5);
    let eg = close_elementwise(&format!("{what} gain"), &g, &want.gain, 1e-4);
    let ed = close_elementwise(&format!("{what} dparams"), &d, &want.dparams, 1e-4);
    (ex, eg.max(ed))
}

/// The quantization kernel in every mode against `device::quant::kernel::quantize`.
#[test]
fn quantize_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let mut worst = (0.0f64, 0.0f64);
    let mut track = |e: (f64, f64)| {
        worst = (worst.0.max(e.0), worst.1.max(e.1));
    };

    // Identity: exact copy, gain 1, no parameter derivatives.
    let w = random(41, 100, 0.5);
    let spec = QuantSpec::new(KernelMode::Identity, 3, 0.25);
    let QuantOut {
        xhat: x,
        gain: g,
        dparams: d,
    } = dev.quantize(&ctx.buffer_from(&w), &spec, None);
    let want = quantize(&w, &spec, &[]);
    assert_eq!(down(&mut dev, &x), want.xhat);
    assert_eq!(down(&mut dev, &g), want.gain);
    assert_eq!(down(&mut dev, &d), want.dparams);

    // Nearest at b = 3: exact ties k + ½ round half to even, the clipping boundaries exactly, and
    // random weights at a power-of-two step and at one that is not.
    let mut w = vec![
        0.625f32, -0.625, 0.375, -0.375, 0.125, -0.125, 0.875, -0.875, -1.0, 0.75, 1.3, -1.3, 0.0,
    ];
    let ties = w.len();
    w.extend(random(42, 100, 0.5));
    for (alpha, restricted) in [(0.25f32, false), (0.25, true), (0.3, false)] {
        let spec = QuantSpec {
            restricted,
            ..QuantSpec::new(KernelMode::Nearest, 3, alpha)
        };
        track(compare_quantize(&mut dev, &w, &spec, &[]));
    }
    let QuantOut { xhat: x, .. } = dev.quantize(
        &ctx.buffer_from(&w[..ties]),
        &QuantSpec::new(KernelMode::Nearest, 3, 0.25),
        None,
    );
    assert_eq!(
        down(&mut dev, &x)[..8],
        [0.5, -0.5, 0.5, -0.5, 0.0, 0.0, 0.75, -1.0],
        "round half to even (2.5α → 2α, 0.5α → 0, 3.5α → 3α clipped, −3.5α → −4α)"
    );

    // Asymmetric unsigned rounding (spec A5's scale and zero point, then others), ties included:
    // −0.65 = −2.5·0.26 rounds to −2 (even) → q = 0; 0.39 = 1.5·0.26 → 2 → q = 4.
    for (bits, s, z) in [(3u32, 0.26f32, 2i32), (4, 0.1, 5), (2, 0.5, 0)] {
        let spec = QuantSpec {
            zero_point: z,
            ..QuantSpec::new(KernelMode::Asymmetric, bits, s)
        };
        let mut x = vec![-0.65f32, 0.39, -1.3, 1.2, 0.0];
        x.extend(random(44 + u64::from(bits), 100, 1.0));
        track(compare_quantize(&mut dev, &x, &spec, &[]));
    }

    // Relaxed (Gumbel-softmax) with the trainer's noise: gumbel(open_unit(Philox word)).
    let rng = Philox::new(7);
    for (bits, tau, extend) in [
        (2, 1.0, true),
        (3, 0.5, true),
        (3, 1.0, false),
        (4, 0.7, true),
    ] {
        let alpha = 0.25;
        let spec = QuantSpec {
            tau,
            extend_edges: extend,
            ..QuantSpec::new(KernelMode::Relaxed, bits, alpha)
        };
        let w = categorical_weights(&spec, 43 + u64::from(bits));
        let per = spec.noise_per_weight();
        let noise: Vec<f32> = (0..(w.len() * per) as u64)
            .map(|i| gumbel(open_unit(rng.u32_at(stream(StreamKind::Quant, 9), i))) as f32)
            .collect();
        track(compare_quantize(&mut dev, &w, &spec, &noise));
    }

    // The multi-class STE with level keep weights (DropBits / gates), both edge conventions.
    for keep in [
        [1.0f32, 1.0, 1.0, 1.0],
        [1.0, 1.0, 0.5, 0.0],
        [1.0, 0.0, 0.0, 0.0],
    ] {
        for bits in [2, 3, 4] {
            for extend in [true, false] {
                let spec = QuantSpec {
                    keep,
                    extend_edges: extend,
                    sigma: if bits == 4 { 0.07 } else { 0.25 / 3.0 },
                    ..QuantSpec::new(KernelMode::MultiClass, bits, 0.25)
                };
                let w = categorical_weights(&spec, 50 + u64::from(bits));
                assert!(w.len() > 100, "too few weights kept: {}", w.len());
                track(compare_quantize(&mut dev, &w, &spec, &[]));
            }
        }
    }
    // A sharp categorical (σ = α/400) with the nearest point removed (level 2 dropped): every
    // survivor lies > 87 log-units below it, which underflowed f32 to 0/0 when the weights were
    // taken relative to all points. Survivors of b = 2 are {−2α, 0}: x̂ is the nearer one.
    let spec = QuantSpec {
        keep: [1.0, 0.0, 0.0, 0.0],
        sigma: 0.25 / 400.0,
        ..QuantSpec::new(KernelMode::MultiClass, 2, 0.25)
    };
    let w = [0.24f32, 0.26, 0.3, -0.2, -0.3, -0.27];
    let gw = dev.upload(&w);
    let QuantOut {
        xhat: x,
        gain: g,
        dparams: d,
    } = dev.quantize(&gw, &spec, None);
    let (x, g, d) = (down(&mut dev, &x), down(&mut dev, &g), down(&mut dev, &d));
    assert!(
        x.iter().chain(&g).chain(&d).all(|v| v.is_finite()),
        "x̂ {x:?}, gain {g:?}, dparams {d:?}"
    );
    assert_eq!(x, [0.0, 0.0, 0.0, 0.0, -0.5, -0.5]);
    track(compare_quantize(&mut dev, &w, &spec, &[]));

    assert!(dev.take_error().is_none());
    eprintln!(
        "quantize: worst xhat error {:.2e}, worst gain/dparams error {:.2e}",
        worst.0, worst.1
    );
}

/// A spec the kernel cannot run is reported at the next read-back, not silently zero.
#[test]
fn quantize_reports_what_it_cannot_run() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let w = dev.upload(&[0.1, 0.2]);
    let spec = QuantSpec::new(KernelMode::Relaxed, 2, 0.25);
    let QuantOut { xhat: x, .. } = dev.quantize(&w, &spec, None);
    let err = Storage::download(&mut dev, &x).unwrap_err();
    assert!(err.to_string().contains("Gumbel"), "{err}");
    let QuantOut { xhat: x, .. } =
        dev.quantize(&w, &QuantSpec::new(KernelMode::MultiClass, 5, 0.25), None);
    assert!(Storage::download(&mut dev, &x).is_err());
    assert!(
        Storage::download(&mut dev, &x).is_ok(),
        "the error is reported once"
    );
}
