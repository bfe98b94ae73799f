//! The composites' defaults against the CPU's fused overrides, through a device that implements
//! only the primitives (as a new backend would start).

use super::*;
use crate::rng::Philox;
use crate::tensor::Op;

/// The CPU's primitives and nothing else: every composite runs its default.
struct PrimitivesOnly;

impl Storage for PrimitivesOnly {
    type Buf = Vec<f32>;
    fn zeros(&mut self, len: usize) -> Vec<f32> {
        Cpu.zeros(len)
    }
    fn duplicate(&mut self, src: &Vec<f32>) -> Vec<f32> {
        src.clone()
    }
    fn upload(&mut self, data: &[f32]) -> Vec<f32> {
        data.to_vec()
    }
    fn download(&mut self, buf: &Vec<f32>) -> Result<Vec<f32>, DeviceError> {
        Ok(buf.clone())
    }
    fn copy_into(&mut self, dst: &mut Vec<f32>, src: &Vec<f32>) {
        dst.copy_from_slice(src);
    }
}

impl DenseOps for PrimitivesOnly {
    fn matmul(&mut self, a: Mat<'_, Vec<f32>>, b: Mat<'_, Vec<f32>>) -> Vec<f32> {
        Cpu.matmul(a, b)
    }
    fn gather_rows(&mut self, src: Mat<'_, Vec<f32>>, rows: &[u32]) -> Vec<f32> {
        Cpu.gather_rows(src, rows)
    }
    fn col_sums(&mut self, m: Mat<'_, Vec<f32>>) -> Vec<f32> {
        Cpu.col_sums(m)
    }
    fn mul(&mut self, a: &Vec<f32>, b: &Vec<f32>) -> Vec<f32> {
        Cpu.mul(a, b)
    }
    fn weighted_col_sums(&mut self, g: &Vec<f32>, d: Mat<'_, Vec<f32>>) -> Vec<f32> {
        Cpu.weighted_col_sums(g, d)
    }
    fn sums_of_squares(&mut self, bufs: &[&Vec<f32>]) -> Vec<f32> {
        Cpu.sums_of_squares(bufs)
    }
}

impl ActOps for PrimitivesOnly {
    fn bias_act(
        &mut self,
        y: &mut Vec<f32>,
        b: &Vec<f32>,
        rows: usize,
        cols: usize,
        act: Activation,
    ) {
        Cpu.bias_act(y, b, rows, cols, act);
    }
    fn relu_backward(&mut self, dy: &mut Vec<f32>, out: &Vec<f32>) {
        Cpu.relu_backward(dy, out);
    }
    fn softmax_xent(&mut self, logits: Mat<'_, Vec<f32>>, labels: &Vec<f32>) -> XentOut<Vec<f32>> {
        Cpu.softmax_xent(logits, labels)
    }
    fn softmax_rows(&mut self, logits: Mat<'_, Vec<f32>>) -> Vec<f32> {
        Cpu.softmax_rows(logits)
    }
    fn softmax_backward(&mut self, p: Mat<'_, Vec<f32>>, dp: &Vec<f32>) -> Vec<f32> {
        Cpu.softmax_backward(p, dp)
    }
    fn topk_softmax(&mut self, logits: Mat<'_, Vec<f32>>, k: usize) -> Vec<f32> {
        Cpu.topk_softmax(logits, k)
    }
    fn swiglu(&mut self, a: &Vec<f32>, b: &Vec<f32>) -> Vec<f32> {
        Cpu.swiglu(a, b)
    }
    fn swiglu_backward(
        &mut self,
        dh: &Vec<f32>,
        a: &Vec<f32>,
        b: &Vec<f32>,
    ) -> (Vec<f32>, Vec<f32>) {
        Cpu.swiglu_backward(dh, a, b)
    }
}

fn normals(seed: u64, n: usize) -> Vec<f32> {
    let mut v = vec![0.0; n];
    Philox::new(seed).fill_normal(0, 1.0, &mut v);
    v
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// `linear` (default: matmul then bias and activation) against the CPU's fused bias-first gemm,
/// with an inner dimension long enough (700) that the gemm works in several blocks; and an
/// independent triple loop for both.
#[test]
fn linear_default_matches_the_fused_cpu_kernel_and_a_triple_loop() {
    let (n, fi, fo) = (5, 700, 7);
    let (x, w, b) = (normals(1, n * fi), normals(2, fo * fi), normals(3, fo));
    for act in [Activation::Identity, Activation::Relu] {
        let fused = Cpu.linear(Mat::new(&x, n, fi), Mat::new(&w, fo, fi), &b, act);
        let default = PrimitivesOnly.linear(Mat::new(&x, n, fi), Mat::new(&w, fo, fi), &b, act);
        let mut naive = vec![0.0f32; n * fo];
        for i in 0..n {
            for o in 0..fo {
                let dot: f64 = (0..fi)
                    .map(|k| f64::from(x[i * fi + k]) * f64::from(w[o * fi + k]))
                    .sum();
                let y = (dot + f64::from(b[o])) as f32;
                naive[i * fo + o] = if act == Activation::Relu {
                    y.max(0.0)
                } else {
                    y
                };
            }
        }
        assert_close(&default, &fused, 1e-5, "default vs fused");
        assert_close(&fused, &naive, 1e-4, "fused vs f64 loop");
        if act == Activation::Relu {
            assert!(fused.contains(&0.0) && fused.iter().any(|&v| v > 0.0));
        }
    }
}

/// `linear_grads` and `linear_input_grad` against triple loops: `δᵀx`, the column sums of δ, `δw`.
#[test]
fn linear_backward_composites_match_loops() {
    let (n, fi, fo) = (6, 9, 4);
    let (x, w, d) = (normals(4, n * fi), normals(5, fo * fi), normals(6, n * fo));
    let g = PrimitivesOnly.linear_grads(Mat::new(&x, n, fi), Mat::new(&d, n, fo));
    let dx = PrimitivesOnly.linear_input_grad(Mat::new(&d, n, fo), Mat::new(&w, fo, fi));
    let mut gw = vec![0.0f32; fo * fi];
    let mut gb = vec![0.0f32; fo];
    let mut want_dx = vec![0.0f32; n * fi];
    for o in 0..fo {
        for k in 0..fi {
            gw[o * fi + k] = (0..n).map(|i| d[i * fo + o] * x[i * fi + k]).sum();
        }
        gb[o] = (0..n).map(|i| d[i * fo + o]).sum();
    }
    for i in 0..n {
        for k in 0..fi {
            want_dx[i * fi + k] = (0..fo).map(|o| d[i * fo + o] * w[o * fi + k]).sum();
        }
    }
    assert_close(&g.weight, &gw, 1e-5, "weight grad");
    assert_close(&g.bias, &gb, 1e-5, "bias grad");
    assert_close(&dx, &want_dx, 1e-5, "input grad");
}

/// A transposed read: `Mat::t` swaps the shape and `matmul` honours it.
#[test]
fn mat_transpose_reads_the_transpose() {
    let a = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
    let m = Mat::new(&a, 2, 3);
    assert_eq!(m.t().shape(), (3, 2));
    assert_eq!(m.t().op, Op::T);
    // aᵀ·a is 3×3: entry (0, 0) = 1 + 16, (0, 2) = 3 + 24.
    let ata = Cpu.matmul(m.t(), m);
    assert_eq!(ata.len(), 9);
    assert_eq!(ata[0], 17.0);
    assert_eq!(ata[2], 27.0);
}

/// `normal` at an offset is that slice of the stream as `Philox::fill_normal` writes it a
/// block at a time (a second reading of the generator: whole blocks, both Box–Muller pairs).
#[test]
fn random_defaults_are_the_philox_streams() {
    let mut stream3 = vec![0.0f32; 40];
    Philox::new(7).fill_normal(3, 2.0, &mut stream3);
    for offset in [0u64, 8, 13] {
        let at = Counter {
            seed: 7,
            stream: 3,
            offset,
        };
        let z = Cpu.normal(at, 20, 2.0);
        assert_eq!(
            z,
            stream3[offset as usize..offset as usize + 20],
            "offset {offset}"
        );
    }
    let at = Counter {
        seed: 7,
        stream: 3,
        offset: 10,
    };
    let rng = Philox::new(7);
    let g = Cpu.gumbel(at, 5);
    // Gumbel of the word's open-unit value: −ln(−ln u), so exp(−exp(−g)) gives u back.
    for (i, v) in g.iter().enumerate() {
        let u = (f64::from(rng.u32_at(3, 10 + i as u64) >> 8) + 0.5) / 16_777_216.0;
        let back = (-(-f64::from(*v)).exp()).exp();
        assert!((back - u).abs() < 1e-6, "{back} vs {u}");
    }
}
