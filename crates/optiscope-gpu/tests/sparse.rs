//! The sparse family (`core/src/device/sparse.rs` ↔ `shaders/sparse.wgsl` ↔
//! `gpu/src/ops/sparse.rs`): the GCN's normalised adjacency of a degree-corrected SBM graph times
//! dense matrices of 16 and 3 columns (and a CSR with empty rows), against the CPU twin. Both sum
//! each row's entries in stored order, so the tolerance is 1e-6 relative.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{close_elementwise, down, gpu, gpu_device, random};
use optiscope_core::device::{Cpu, Csr, Mat, SparseOps};
use optiscope_core::sparsify::sbm::SbmConfig;

#[test]
fn spmm_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let cfg = SbmConfig {
        n: 120,
        ..SbmConfig::default()
    };
    let g = cfg.generate(3).unwrap().graph;
    let (ip, ix, v) = g.normalized_adjacency();
    let (n, nnz) = (g.n, ix.len());
    let cpu = Csr::upload(&mut Cpu, n, n, &ip, &ix, &v).unwrap();
    let gpu_a = Csr::upload(&mut dev, n, n, &ip, &ix, &v).unwrap();
    for k in [16, 3] {
        let x = random(40 + k as u64, n * k, 1.0);
        let want = Cpu.spmm(&cpu, Mat::new(&x, n, k));
        let gx = dev.upload(&x);
        let y = dev.spmm(&gpu_a, Mat::new(&gx, n, k));
        let got = down(&mut dev, &y);
        let worst = close_elementwise("spmm", &got, &want, 1e-6);
        eprintln!("spmm {n}×{n} ({nnz} entries) · {n}×{k}: worst {worst:.1e}");
    }
    // Rows without entries give zero rows.
    let a = Csr::upload(&mut dev, 3, 2, &[0, 1, 1, 3], &[1, 0, 1], &[2.0, -1.0, 0.5]).unwrap();
    let x = dev.upload(&[1.0, 2.0, 3.0, 4.0]);
    let y = dev.spmm(&a, Mat::new(&x, 2, 2));
    assert_eq!(down(&mut dev, &y), vec![6.0, 8.0, 0.0, 0.0, 0.5, 0.0]);
    assert!(dev.take_error().is_none());
}

/// The sampled dense-dense product on the SBM adjacency's pattern (16 and 3 columns) and on a
/// pattern with empty rows, against the CPU twin (same summation order: 1e-6 relative).
#[test]
fn sddmm_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let cfg = SbmConfig {
        n: 120,
        ..SbmConfig::default()
    };
    let g = cfg.generate(4).unwrap().graph;
    let (ip, ix, v) = g.normalized_adjacency();
    let n = g.n;
    let cpu = Csr::upload(&mut Cpu, n, n, &ip, &ix, &v).unwrap();
    let gpu_a = Csr::upload(&mut dev, n, n, &ip, &ix, &v).unwrap();
    for k in [16, 3] {
        let a = random(60 + k as u64, n * k, 1.0);
        let b = random(70 + k as u64, n * k, 1.0);
        let want = Cpu.sddmm(&cpu, Mat::new(&a, n, k), Mat::new(&b, n, k));
        let (ga, gb) = (dev.upload(&a), dev.upload(&b));
        let got = dev.sddmm(&gpu_a, Mat::new(&ga, n, k), Mat::new(&gb, n, k));
        close_elementwise("sddmm", &down(&mut dev, &got), &want, 1e-6);
    }
    let p = Csr::upload(&mut dev, 3, 2, &[0, 1, 1, 3], &[1, 0, 1], &[0.0; 3]).unwrap();
    let (a, b) = (
        dev.upload(&[1.0, 2.0, 0.0, 0.0, -1.0, 1.0]),
        dev.upload(&[1.0, 2.0, 3.0, 4.0]),
    );
    let got = dev.sddmm(&p, Mat::new(&a, 3, 2), Mat::new(&b, 2, 2));
    assert_eq!(down(&mut dev, &got), vec![11.0, 1.0, 1.0]);
    assert!(dev.take_error().is_none());
}

/// The GCN's forward and backward (spmm, matmuls, ReLU, the labelled rows' cross-entropy, the
/// scatter back) on the GPU against the CPU device: loss and both weight gradients within 1e-5
/// tensor-relative, plain and with a dropout mask and the distillation term.
#[test]
fn gcn_forward_backward_matches_cpu() {
    use optiscope_core::sparsify::gcn::{forward_backward, Distill, GcnData};
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let cfg = SbmConfig {
        n: 120,
        ..SbmConfig::default()
    };
    let s = cfg.generate(5).unwrap();
    let (f, h, c) = (16, 16, 3);
    let w1 = random(50, h * f, 0.3);
    let w2 = random(51, c * h, 0.3);
    let mask: Vec<f32> = (0..s.graph.n * h)
        .map(|i| if i % 3 == 0 { 0.0 } else { 1.5 })
        .collect();
    let cd = GcnData::new(&mut Cpu, &s.graph, &s.x, &s.y, &s.train, c).unwrap();
    let gd = GcnData::new(&mut dev, &s.graph, &s.x, &s.y, &s.train, c).unwrap();
    let (gw1, gw2, gm) = (dev.upload(&w1), dev.upload(&w2), dev.upload(&mask));
    let teacher: Vec<f32> = (0..s.graph.n * c).map(|i| [0.6, 0.3, 0.1][i % 3]).collect();
    let gt = dev.upload(&teacher);
    for dropout in [false, true] {
        // With dropout, also the distillation term (λ = 10).
        let (cdis, gdis) = (
            Distill {
                teacher: &teacher,
                lambda: 10.0,
            },
            Distill {
                teacher: &gt,
                lambda: 10.0,
            },
        );
        let want = forward_backward(
            &mut Cpu,
            &cd,
            &w1,
            &w2,
            h,
            dropout.then_some(&mask),
            dropout.then_some(&cdis),
        )
        .unwrap();
        let got = forward_backward(
            &mut dev,
            &gd,
            &gw1,
            &gw2,
            h,
            dropout.then_some(&gm),
            dropout.then_some(&gdis),
        )
        .unwrap();
        assert!(
            (got.loss - want.loss).abs() < 1e-5 * want.loss.abs().max(1.0),
            "{} vs {}",
            got.loss,
            want.loss
        );
        let e1 = common::rel_err(&down(&mut dev, &got.w1), &want.w1);
        let e2 = common::rel_err(&down(&mut dev, &got.w2), &want.w2);
        eprintln!("gcn (dropout {dropout}): ∂W1 {e1:.1e}, ∂W2 {e2:.1e}");
        assert!(e1 < 1e-5 && e2 < 1e-5, "{e1} {e2}");
    }
    // UGS's adjacency gradient (two SDDMMs) with masked adjacency values, GPU against CPU.
    use optiscope_core::sparsify::gcn::forward_backward_adjacency;
    let (mut cd, mut gd) = (cd, gd);
    let values: Vec<f32> = {
        let (_, _, v) = s.graph.normalized_adjacency();
        v.iter()
            .enumerate()
            .map(|(i, x)| x * (0.5 + (i % 4) as f32 * 0.25))
            .collect()
    };
    cd.set_adjacency_values(&mut Cpu, &values).unwrap();
    gd.set_adjacency_values(&mut dev, &values).unwrap();
    let want = forward_backward_adjacency(&mut Cpu, &cd, &w1, &w2, h, None).unwrap();
    let got = forward_backward_adjacency(&mut dev, &gd, &gw1, &gw2, h, None).unwrap();
    let ea = common::rel_err(
        &down(&mut dev, got.adjacency.as_ref().unwrap()),
        want.adjacency.as_ref().unwrap(),
    );
    eprintln!("gcn adjacency gradient: {ea:.1e}");
    assert!(ea < 1e-5, "{ea}");
    assert!(dev.take_error().is_none());
}
