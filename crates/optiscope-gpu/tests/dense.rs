//! The dense family (`core/src/device/dense.rs` ↔ `shaders/dense*.wgsl` ↔ `gpu/src/ops/dense.rs`):
//! matrix products, reductions, row gathers, column and weighted sums, and the layer composites, against
//! the CPU twins.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{down, gpu, gpu_device, random, read, rel_err};
use optiscope_core::device::{Activation, Cpu, DenseOps, LinearGrads, Mat};
use optiscope_core::tensor::{gemm, Op};
use optiscope_gpu::ops::dense::{self, MatmulKernel, ReduceScratch};

/// Every matrix-product kernel against the CPU's, for shapes that are and are not multiples of
/// the tiles (and of 4, where `Vec4` falls back to `Tiled`), with every transpose combination
/// and α, β ≠ 0, relative 1e-5.
#[test]
fn matmul_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    for (m, k, n) in [
        (64, 64, 64),
        (37, 70, 5),
        (128, 17, 100),
        (1, 128, 1),
        (128, 128, 128),
        (132, 44, 124),
        (4, 8, 4),
    ] {
        for (op_a, op_b) in [
            (Op::N, Op::N),
            (Op::T, Op::N),
            (Op::N, Op::T),
            (Op::T, Op::T),
        ] {
            let a = random(1, m * k, 1.0);
            let b = random(2, k * n, 1.0);
            let c0 = random(3, m * n, 1.0);
            let mut want = c0.clone();
            gemm(m, k, n, 0.7, &a, op_a, &b, op_b, -0.3, &mut want);
            // The vec4 kernel really runs where every dimension is a multiple of 4.
            if m % 4 == 0 && k % 4 == 0 && n % 4 == 0 {
                let ran = dense::resolve(MatmulKernel::Vec4, (m, k, n), op_a, op_b, false);
                assert_eq!(ran, MatmulKernel::Vec4, "{m}x{k}x{n} {op_a:?}{op_b:?}");
            }
            for kernel in [
                MatmulKernel::Vec4,
                MatmulKernel::Tiled,
                MatmulKernel::Naive,
                MatmulKernel::Auto,
            ] {
                let (ga, gb, gc) = (
                    ctx.buffer_from(&a),
                    ctx.buffer_from(&b),
                    ctx.buffer_from(&c0),
                );
                let mut enc = ctx.encoder();
                dense::gemm(
                    &ctx,
                    &mut enc,
                    kernel,
                    (m, k, n),
                    0.7,
                    &ga,
                    op_a,
                    &gb,
                    op_b,
                    -0.3,
                    &gc,
                )
                .unwrap();
                ctx.submit(enc);
                let err = rel_err(&read(&ctx, &gc), &want);
                assert!(
                    err < 1e-5,
                    "{kernel:?} {m}x{k}x{n} {op_a:?}{op_b:?}: {err:.2e}"
                );
            }
        }
    }
}

/// `Auto` takes the wide kernel only where it applies, and on a hardware GPU only with enough
/// wide tiles to fill it.
#[test]
fn auto_kernel_choice() {
    use MatmulKernel::{Auto, Tiled, Vec4};
    let r = |dims, a, b, sw| dense::resolve(Auto, dims, a, b, sw);
    assert_eq!(r((768, 128, 384), Op::N, Op::T, false), Tiled); // 18 wide tiles
    assert_eq!(r((768, 128, 384), Op::N, Op::T, true), Vec4);
    assert_eq!(r((16384, 384, 1152), Op::N, Op::T, false), Vec4); // 1152 wide tiles
    assert_eq!(r((16384, 384, 65), Op::N, Op::T, false), Vec4); // 128 tiles, n one partial
    assert_eq!(r((65, 16384, 384), Op::T, Op::N, true), Tiled); // A's m = 65 is not 4k
    assert_eq!(r((1024, 1024, 1024), Op::N, Op::N, false), Vec4);
    assert_eq!(dense::resolve(Vec4, (8, 6, 8), Op::N, Op::N, false), Tiled);
}

/// Sums and sums of squares against f64, relative 1e-5.
#[test]
fn reductions_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let scratch = ReduceScratch::new(&ctx);
    for n in [1, 255, 256, 257, 10_000, 100_000] {
        let x = random(n as u64, n, 1.0);
        let buf = ctx.buffer_from(&x);
        for squares in [false, true] {
            let mut enc = ctx.encoder();
            scratch.sum(&ctx, &mut enc, &buf, squares);
            ctx.submit(enc);
            let got = f64::from(read(&ctx, &scratch.result)[0]);
            let want: f64 = x
                .iter()
                .map(|&v| {
                    if squares {
                        f64::from(v) * f64::from(v)
                    } else {
                        f64::from(v)
                    }
                })
                .sum();
            let scale: f64 =
                x.iter().map(|&v| f64::from(v).abs()).fold(0.0, f64::max) * (n as f64).sqrt();
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(scale),
                "n={n} squares={squares}: {got} vs {want}"
            );
        }
    }
}

/// The gradient-weighted column sums of the n × DPARAMS derivative matrix (f32 tree reduction
/// against the CPU's f64 sum): relative 1e-4 of the sum, or of `Σ_i |g_i·d_ij|` where the sum
/// cancels to below it (the error of any f32 summation scales with the absolute sum).
#[test]
fn weighted_col_sums_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let mut worst = 0.0f64;
    for (n, p) in [(1, 6), (255, 6), (7000, 6), (128 * 100, 3)] {
        let g = random(21 + n as u64, n, 1e-2);
        let d = random(22 + n as u64, n * p, 1.0);
        let want = Cpu.weighted_col_sums(&g, Mat::new(&d, n, p));
        let got = dev.weighted_col_sums(&ctx.buffer_from(&g), Mat::new(&ctx.buffer_from(&d), n, p));
        let got = down(&mut dev, &got);
        for j in 0..p {
            let abs_sum: f64 = (0..n)
                .map(|i| (f64::from(g[i]) * f64::from(d[i * p + j])).abs())
                .sum();
            let scale = f64::from(want[j]).abs().max(abs_sum * 1e-2);
            let err = (f64::from(got[j]) - f64::from(want[j])).abs() / scale;
            assert!(
                err <= 1e-4,
                "n={n} column {j}: {} vs {} ({err:.2e})",
                got[j],
                want[j]
            );
            worst = worst.max(err);
        }
    }
    eprintln!("weighted_col_sums: worst relative error {worst:.2e}");
}

/// The layer composites — `linear` (identity and ReLU), `linear_grads`, `linear_input_grad` — and
/// the primitives `matmul` (through `Mat::t`), `gather_rows`, `col_sums`, `mul` and
/// `sums_of_squares` against `Cpu`, on shapes that are not multiples of the matmul tile. Products
/// and sums: tensor-relative 1e-5; gathers and elementwise products: exact.
#[test]
fn dense_layer_kernels_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let (n, fi, fo) = (37, 70, 50);
    let x = random(11, n * fi, 1.0);
    let w = random(12, fo * fi, 0.2);
    let b = random(13, fo, 0.5);
    let (gx, gw, gb) = (dev.upload(&x), dev.upload(&w), dev.upload(&b));
    let mut worst = 0.0f64;
    for act in [Activation::Identity, Activation::Relu] {
        let want = Cpu.linear(Mat::new(&x, n, fi), Mat::new(&w, fo, fi), &b, act);
        let got = dev.linear(Mat::new(&gx, n, fi), Mat::new(&gw, fo, fi), &gb, act);
        let got = down(&mut dev, &got);
        let err = rel_err(&got, &want);
        assert!(err < 1e-5, "linear {act:?}: {err:.2e}");
        worst = worst.max(err);
        if act == Activation::Relu {
            assert!(got.iter().all(|&v| v >= 0.0));
        }
    }
    // xᵀx through a transposed read (70 × 70).
    let want = Cpu.matmul(Mat::new(&x, n, fi).t(), Mat::new(&x, n, fi));
    let got = dev.matmul(Mat::new(&gx, n, fi).t(), Mat::new(&gx, n, fi));
    let err = rel_err(&down(&mut dev, &got), &want);
    assert!(err < 1e-5, "matmul xᵀx: {err:.2e}");

    // The gradients of a linear layer and the gradient reaching its input.
    let delta = random(16, n * fo, 0.1);
    let gdelta = dev.upload(&delta);
    let LinearGrads {
        weight: want_w,
        bias: want_b,
    } = Cpu.linear_grads(Mat::new(&x, n, fi), Mat::new(&delta, n, fo));
    let LinearGrads { weight, bias } =
        dev.linear_grads(Mat::new(&gx, n, fi), Mat::new(&gdelta, n, fo));
    let (got_w, got_b) = (down(&mut dev, &weight), down(&mut dev, &bias));
    for (what, got, want) in [("grad w", &got_w, &want_w), ("grad b", &got_b, &want_b)] {
        let err = rel_err(got, want);
        assert!(err < 1e-5, "linear_grads {what}: {err:.2e}");
        worst = worst.max(err);
    }
    let want = Cpu.linear_input_grad(Mat::new(&delta, n, fo), Mat::new(&w, fo, fi));
    let got = dev.linear_input_grad(Mat::new(&gdelta, n, fo), Mat::new(&gw, fo, fi));
    let err = rel_err(&down(&mut dev, &got), &want);
    assert!(err < 1e-5, "linear_input_grad: {err:.2e}");
    worst = worst.max(err);
    let want = Cpu.col_sums(Mat::new(&x, n, fi));
    let got = dev.col_sums(Mat::new(&gx, n, fi));
    assert!(rel_err(&down(&mut dev, &got), &want) < 1e-5, "col_sums");

    // Gathers (repeated, out of order, the last row) and products are exact.
    let rows = [5u32, 0, 36, 5, 17, 2];
    let got = dev.gather_rows(Mat::new(&gx, n, fi), &rows);
    assert_eq!(
        down(&mut dev, &got),
        Cpu.gather_rows(Mat::new(&x, n, fi), &rows)
    );
    let other = random(17, n * fi, 1.0);
    let got = dev.mul(&gx, &ctx.buffer_from(&other));
    assert_eq!(down(&mut dev, &got), Cpu.mul(&x, &other));
    // Σ x² of several buffers in one read-back (f32 tree against f64: relative 1e-5).
    let want = Cpu.sums_of_squares(&[&x, &w, &b]);
    let got = dev.sums_of_squares(&[&gx, &gw, &gb]);
    assert!(
        rel_err(&down(&mut dev, &got), &want) < 1e-5,
        "sums_of_squares"
    );
    assert!(dev.take_error().is_none());
    eprintln!("dense layer kernels: worst tensor-relative error {worst:.2e}");
}
