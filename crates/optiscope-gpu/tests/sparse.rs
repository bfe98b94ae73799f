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
