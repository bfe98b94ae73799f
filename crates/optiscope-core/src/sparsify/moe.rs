//! A mixture-of-experts layer of SwiGLU experts with a top-k router (spec C2), in f64 on the
//! host (the reference, the scorers' statistics and the concatenation identity) and in f32 over
//! the device families (forward and backward on the CPU or a GPU):
//!
//! * an expert, and the dense FFN a conversion produces, are the same thing, an [`Ffn`]:
//!   `FFN(x) = W_d (silu(W_g x) ⊙ W_u x)` with weights `[out, in]` row-major;
//! * the router's gates: the softmax over each token's `k` largest logits `W_r x` (ties go to
//!   the lower expert), 0 elsewhere; the layer's output `Σ_e g_e(x) E_e(x)`.
//!
//! On a device the layer is one wide FFN: the experts' gate and up projections stacked by rows
//! and their down projections by columns (the block concatenation with every scale 1), its
//! intermediate activations multiplied by each token's gates expanded over the expert's block
//! (`G · R` with the `E × E·h` block indicator `R`). The backward follows the same graph:
//! `∂W_d = δᵀ M`, `∂M = δ W_d`, `∂H = ∂M ⊙ (G R)`, `∂(G R) = ∂M ⊙ H`, `∂G = ∂(G R) Rᵀ`, the
//! router's logits through the softmax's backward (unselected experts have zero gates and get
//! nothing), and SwiGLU's backward to `∂W_g`, `∂W_u`.

use crate::device::{Device, DeviceError, Mat};

/// `silu(z) = z σ(z)`.
pub fn silu(z: f64) -> f64 {
    z / (1.0 + (-z).exp())
}

/// A SwiGLU feed-forward block `x ↦ W_d (silu(W_g x) ⊙ W_u x)` in f64 (an expert, or a dense FFN).
#[derive(Debug, Clone, PartialEq)]
pub struct Ffn {
    /// Model width.
    pub d: usize,
    /// Intermediate width.
    pub width: usize,
    /// `W_g`, `width × d`.
    pub gate: Vec<f64>,
    /// `W_u`, `width × d`.
    pub up: Vec<f64>,
    /// `W_d`, `d × width`.
    pub down: Vec<f64>,
}

impl Ffn {
    /// The output of every token of `x` (`n × d`), `n × d`.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let (d, w) = (self.d, self.width);
        let n = x.len() / d;
        let mut y = vec![0.0; n * d];
        let mut h = vec![0.0; w];
        for (xr, yr) in x.chunks(d).zip(y.chunks_mut(d)).take(n) {
            for (j, hj) in h.iter_mut().enumerate() {
                let a = dot(&self.gate[j * d..(j + 1) * d], xr);
                let b = dot(&self.up[j * d..(j + 1) * d], xr);
                *hj = silu(a) * b;
            }
            for (r, yv) in yr.iter_mut().enumerate() {
                *yv = dot(&self.down[r * w..(r + 1) * w], &h);
            }
        }
        y
    }

    /// The block concatenation of `parts` (an FFN and its scale `c_j` each, all of width `d`):
    /// gate and up projections stacked by rows, down projections side by side with each
    /// block's columns multiplied by its scale, so that `FFN(x) = Σ_j c_j E_j(x)` exactly.
    pub fn concatenate(parts: &[(&Ffn, f64)]) -> Ffn {
        let d = parts.first().map_or(0, |(f, _)| f.d);
        assert!(
            parts.iter().all(|(f, _)| f.d == d),
            "concatenated FFNs must have one model width"
        );
        let width: usize = parts.iter().map(|(f, _)| f.width).sum();
        let mut gate = Vec::with_capacity(width * d);
        let mut up = Vec::with_capacity(width * d);
        for (f, _) in parts {
            gate.extend_from_slice(&f.gate);
            up.extend_from_slice(&f.up);
        }
        let mut down = Vec::with_capacity(d * width);
        for r in 0..d {
            for (f, c) in parts {
                down.extend(f.down[r * f.width..(r + 1) * f.width].iter().map(|v| c * v));
            }
        }
        Ffn {
            d,
            width,
            gate,
            up,
            down,
        }
    }

    /// The weights in f32, for a device.
    pub fn to_f32(&self) -> [Vec<f32>; 3] {
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect();
        [f(&self.gate), f(&self.up), f(&self.down)]
    }

    /// From f32 weights (a device's download) of the given widths.
    pub fn from_f32(d: usize, width: usize, gate: &[f32], up: &[f32], down: &[f32]) -> Ffn {
        let f = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect();
        Ffn {
            d,
            width,
            gate: f(gate),
            up: f(up),
            down: f(down),
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A mixture-of-experts layer: a top-k router over SwiGLU experts of one width.
#[derive(Debug, Clone, PartialEq)]
pub struct Moe {
    /// Model width.
    pub d: usize,
    /// Experts selected per token.
    pub top_k: usize,
    /// The router `W_r`, `experts × d`.
    pub router: Vec<f64>,
    /// The experts.
    pub experts: Vec<Ffn>,
}

impl Moe {
    /// Experts.
    pub fn n_experts(&self) -> usize {
        self.experts.len()
    }

    /// An expert's intermediate width.
    pub fn hidden(&self) -> usize {
        self.experts.first().map_or(0, |e| e.width)
    }

    /// The gates of every token (`n × experts`): the softmax over its `top_k` largest router
    /// logits (ties go to the lower expert), 0 elsewhere.
    pub fn gates(&self, x: &[f64]) -> Vec<f64> {
        let (d, e) = (self.d, self.n_experts());
        let n = x.len() / d;
        let mut g = vec![0.0; n * e];
        let mut logits = vec![0.0; e];
        for (xr, gr) in x.chunks(d).zip(g.chunks_mut(e)).take(n) {
            for (j, l) in logits.iter_mut().enumerate() {
                *l = dot(&self.router[j * d..(j + 1) * d], xr);
            }
            let mut order: Vec<usize> = (0..e).collect();
            // A stable sort by descending logit: ties keep the lower expert first.
            order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
            let top = &order[..self.top_k];
            let m = logits[top[0]];
            let sum: f64 = top.iter().map(|&j| (logits[j] - m).exp()).sum();
            for &j in top {
                gr[j] = (logits[j] - m).exp() / sum;
            }
        }
        g
    }

    /// Every expert's output for every token, `experts × n × d`.
    pub fn expert_outputs(&self, x: &[f64]) -> Vec<f64> {
        self.experts.iter().flat_map(|f| f.forward(x)).collect()
    }

    /// The layer's output `Σ_e g_e(x) E_e(x)`, `n × d`.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let (d, e) = (self.d, self.n_experts());
        let n = x.len() / d;
        let g = self.gates(x);
        let outs = self.expert_outputs(x);
        let mut y = vec![0.0; n * d];
        for t in 0..n {
            for j in 0..e {
                let gj = g[t * e + j];
                if gj != 0.0 {
                    let o = &outs[(j * n + t) * d..(j * n + t + 1) * d];
                    for (yv, ov) in y[t * d..(t + 1) * d].iter_mut().zip(o) {
                        *yv += gj * ov;
                    }
                }
            }
        }
        y
    }
}

/// An FFN's weights on a device (f32).
pub struct DeviceFfn<B> {
    /// Model width.
    pub d: usize,
    /// Intermediate width.
    pub width: usize,
    /// `[W_g, W_u, W_d]` (`width × d`, `width × d`, `d × width`): one slice, as an optimizer
    /// steps them.
    pub weights: [B; 3],
}

impl<B> DeviceFfn<B> {
    /// Uploads `f`.
    pub fn upload<D: Device<Buf = B>>(dev: &mut D, f: &Ffn) -> Self {
        let [g, u, dn] = f.to_f32();
        Self {
            d: f.d,
            width: f.width,
            weights: [dev.upload(&g), dev.upload(&u), dev.upload(&dn)],
        }
    }

    /// Reads the weights back as an f64 [`Ffn`].
    pub fn download<D: Device<Buf = B>>(&self, dev: &mut D) -> Result<Ffn, DeviceError> {
        let [g, u, dn] = &self.weights;
        let (g, u, dn) = (dev.download(g)?, dev.download(u)?, dev.download(dn)?);
        Ok(Ffn::from_f32(self.d, self.width, &g, &u, &dn))
    }
}

/// The activations of an FFN's forward pass, kept for its backward.
pub struct FfnActs<B> {
    /// Tokens.
    pub n: usize,
    /// `X W_gᵀ`.
    pub a: B,
    /// `X W_uᵀ`.
    pub b: B,
    /// `silu(a) ⊙ b`.
    pub h: B,
    /// `h ⊙ gates` when the intermediate activations are gated (a mixture), else None.
    pub m: Option<B>,
    /// The output, `n × d`.
    pub y: B,
}

/// An FFN's weight gradients, and the gradient at its intermediate gates when it had them.
pub struct FfnGrads<B> {
    /// `∂W_g`.
    pub gate: B,
    /// `∂W_u`.
    pub up: B,
    /// `∂W_d`.
    pub down: B,
    /// `∂L/∂(gates)` (`n × width`), when the forward was gated.
    pub gates: Option<B>,
}

/// The forward pass of `f` over `x` (`n × d`), with its intermediate activations multiplied by
/// `gates` (`n × width`) when given.
pub fn ffn_forward<D: Device>(
    dev: &mut D,
    f: &DeviceFfn<D::Buf>,
    x: &D::Buf,
    n: usize,
    gates: Option<&D::Buf>,
) -> FfnActs<D::Buf> {
    let (d, w) = (f.d, f.width);
    let [wg, wu, wd] = &f.weights;
    let xm = Mat::new(x, n, d);
    let a = dev.matmul(xm, Mat::new(wg, w, d).t());
    let b = dev.matmul(xm, Mat::new(wu, w, d).t());
    let h = dev.swiglu(&a, &b);
    let m = gates.map(|g| dev.mul(&h, g));
    let y = dev.matmul(
        Mat::new(m.as_ref().unwrap_or(&h), n, w),
        Mat::new(wd, d, w).t(),
    );
    FfnActs { n, a, b, h, m, y }
}

/// The backward pass of [`ffn_forward`] from `dy = ∂L/∂y` (`n × d`).
pub fn ffn_backward<D: Device>(
    dev: &mut D,
    f: &DeviceFfn<D::Buf>,
    x: &D::Buf,
    acts: &FfnActs<D::Buf>,
    gates: Option<&D::Buf>,
    dy: &D::Buf,
) -> FfnGrads<D::Buf> {
    let (d, w, n) = (f.d, f.width, acts.n);
    let dym = Mat::new(dy, n, d);
    let m = acts.m.as_ref().unwrap_or(&acts.h);
    let down = dev.matmul(dym.t(), Mat::new(m, n, w));
    let dm = dev.matmul(dym, Mat::new(&f.weights[2], d, w));
    let (dh, dgates) = match gates {
        Some(g) => {
            let dh = dev.mul(&dm, g);
            (dh, Some(dev.mul(&dm, &acts.h)))
        }
        None => (dm, None),
    };
    let (da, db) = dev.swiglu_backward(&dh, &acts.a, &acts.b);
    let xm = Mat::new(x, n, d);
    FfnGrads {
        gate: dev.matmul(Mat::new(&da, n, w).t(), xm),
        up: dev.matmul(Mat::new(&db, n, w).t(), xm),
        down,
        gates: dgates,
    }
}

/// A mixture-of-experts layer on a device: the router and the experts as one wide FFN.
pub struct DeviceMoe<B> {
    /// `W_r`, `experts × d`.
    pub router: B,
    /// Every expert concatenated (scales 1): width `experts · hidden`.
    pub ffn: DeviceFfn<B>,
    /// The block indicator `R` (`experts × experts·hidden`).
    expand: B,
    /// Experts.
    pub experts: usize,
    /// Their width.
    pub hidden: usize,
    /// Experts per token.
    pub top_k: usize,
}

/// The activations of the mixture's forward pass.
pub struct MoeActs<B> {
    /// The gates, `n × experts`.
    pub gates: B,
    /// The gates expanded over each expert's block, `n × experts·hidden`.
    pub expanded: B,
    /// The wide FFN's activations (`ffn.y` is the layer's output).
    pub ffn: FfnActs<B>,
}

/// The mixture's gradients: the router's and the stacked experts' (same layouts as
/// [`DeviceMoe`]).
pub struct MoeGrads<B> {
    /// `∂W_r`.
    pub router: B,
    /// `∂` of the stacked `W_g`, `W_u`, `W_d`.
    pub ffn: FfnGrads<B>,
}

impl<B> DeviceMoe<B> {
    /// Uploads `moe`.
    pub fn upload<D: Device<Buf = B>>(dev: &mut D, moe: &Moe) -> Self {
        let (e, h) = (moe.n_experts(), moe.hidden());
        let all: Vec<(&Ffn, f64)> = moe.experts.iter().map(|f| (f, 1.0)).collect();
        let ffn = DeviceFfn::upload(dev, &Ffn::concatenate(&all));
        let mut r = vec![0.0f32; e * e * h];
        for j in 0..e {
            r[j * e * h + j * h..j * e * h + (j + 1) * h].fill(1.0);
        }
        let router: Vec<f32> = moe.router.iter().map(|&v| v as f32).collect();
        Self {
            router: dev.upload(&router),
            ffn,
            expand: dev.upload(&r),
            experts: e,
            hidden: h,
            top_k: moe.top_k,
        }
    }

    /// The forward pass over `x` (`n × d`).
    pub fn forward<D: Device<Buf = B>>(&self, dev: &mut D, x: &B, n: usize) -> MoeActs<B> {
        let (e, d) = (self.experts, self.ffn.d);
        let logits = dev.matmul(Mat::new(x, n, d), Mat::new(&self.router, e, d).t());
        let gates = dev.topk_softmax(Mat::new(&logits, n, e), self.top_k);
        let expanded = dev.matmul(
            Mat::new(&gates, n, e),
            Mat::new(&self.expand, e, self.ffn.width),
        );
        let ffn = ffn_forward(dev, &self.ffn, x, n, Some(&expanded));
        MoeActs {
            gates,
            expanded,
            ffn,
        }
    }

    /// The backward pass from `dy = ∂L/∂y` (`n × d`).
    pub fn backward<D: Device<Buf = B>>(
        &self,
        dev: &mut D,
        x: &B,
        acts: &MoeActs<B>,
        dy: &B,
    ) -> MoeGrads<B> {
        let (e, d, n) = (self.experts, self.ffn.d, acts.ffn.n);
        let mut ffn = ffn_backward(dev, &self.ffn, x, &acts.ffn, Some(&acts.expanded), dy);
        let dexp = ffn
            .gates
            .take()
            .unwrap_or_else(|| unreachable!("a gated forward has gate gradients"));
        let dg = dev.matmul(
            Mat::new(&dexp, n, self.ffn.width),
            Mat::new(&self.expand, e, self.ffn.width).t(),
        );
        let dl = dev.softmax_backward(Mat::new(&acts.gates, n, e), &dg);
        let router = dev.matmul(Mat::new(&dl, n, e).t(), Mat::new(x, n, d));
        MoeGrads { router, ffn }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::device::Cpu;
    use crate::rng::{stream, Philox, StreamKind};

    fn normals(seed: u64, id: u32, len: usize, scale: f64) -> Vec<f64> {
        let rng = Philox::new(seed);
        (0..len as u64)
            .map(|i| scale * f64::from(rng.normal_at(stream(StreamKind::Data, id), i)))
            .collect()
    }

    fn ffn(seed: u64, d: usize, w: usize) -> Ffn {
        Ffn {
            d,
            width: w,
            gate: normals(seed, 1, w * d, 0.5),
            up: normals(seed, 2, w * d, 0.5),
            down: normals(seed, 3, d * w, 0.5),
        }
    }

    fn moe(seed: u64) -> Moe {
        let (d, e, h) = (5, 4, 3);
        Moe {
            d,
            top_k: 2,
            router: normals(seed, 9, e * d, 1.0),
            experts: (0..e as u64).map(|j| ffn(seed * 10 + j, d, h)).collect(),
        }
    }

    /// The block concatenation's identity `FFN(x) = Σ_j c_j E_j(x)` in f64 to 1e-12, and the f32
    /// device forward of the concatenation against it to 1e-5.
    #[test]
    fn concatenation_is_exact() {
        let m = moe(3);
        let x = normals(4, 5, 7 * m.d, 1.0);
        let parts = [
            (&m.experts[0], 0.3),
            (&m.experts[2], 0.5),
            (&m.experts[3], 0.7),
        ];
        let dense = Ffn::concatenate(&parts);
        assert_eq!(dense.width, 9);
        let lhs = dense.forward(&x);
        let mut rhs = vec![0.0; lhs.len()];
        for (f, c) in parts {
            for (r, v) in rhs.iter_mut().zip(f.forward(&x)) {
                *r += c * v;
            }
        }
        let worst = lhs
            .iter()
            .zip(&rhs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "f64 identity error {worst:e}");
        let mut dev = Cpu;
        let f = DeviceFfn::upload(&mut dev, &dense);
        let xb: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let acts = ffn_forward(&mut dev, &f, &xb, 7, None);
        let worst = acts
            .y
            .iter()
            .zip(&rhs)
            .map(|(a, b)| (f64::from(*a) - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "f32 identity error {worst:e}");
    }

    /// The device forward of the mixture against the f64 reference, and every gradient (router
    /// and all experts') against central finite differences of the f64 reference's loss
    /// `Σ y ⊙ R` (tensor-relative 1e-4; f32 device, f64 differences with step 1e-6).
    #[test]
    fn moe_gradients_match_finite_differences() {
        let m = moe(1);
        let n = 11;
        let x = normals(2, 6, n * m.d, 1.0);
        let r = normals(2, 7, n * m.d, 1.0);
        let loss = |mm: &Moe| -> f64 { mm.forward(&x).iter().zip(&r).map(|(a, b)| a * b).sum() };
        let mut dev = Cpu;
        let dm = DeviceMoe::upload(&mut dev, &m);
        let xb: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let rb: Vec<f32> = r.iter().map(|&v| v as f32).collect();
        let acts = dm.forward(&mut dev, &xb, n);
        let want = m.forward(&x);
        for (a, b) in acts.ffn.y.iter().zip(&want) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "forward {a} vs {b}");
        }
        let g = dm.backward(&mut dev, &xb, &acts, &rb);
        let eps = 1e-6;
        let fd = |set: &dyn Fn(&mut Moe, f64)| {
            let (mut p, mut q) = (m.clone(), m.clone());
            set(&mut p, eps);
            set(&mut q, -eps);
            (loss(&p) - loss(&q)) / (2.0 * eps)
        };
        let check = |what: &str, got: &[f32], want: &[f64]| {
            let num: f64 = got
                .iter()
                .zip(want)
                .map(|(a, b)| (f64::from(*a) - b).powi(2))
                .sum();
            let den: f64 = want.iter().map(|b| b * b).sum();
            let rel = (num / den).sqrt();
            assert!(rel < 1e-4, "{what}: relative error {rel:e}");
        };
        let (e, h, d) = (m.n_experts(), m.hidden(), m.d);
        let want: Vec<f64> = (0..e * d)
            .map(|i| fd(&|mm: &mut Moe, s| mm.router[i] += s))
            .collect();
        check("router", &g.router, &want);
        // Stacked row j·h + i of W_g / W_u is expert j's row i; column j·h + c of W_d is
        // expert j's column c.
        let want: Vec<f64> = (0..e * h * d)
            .map(|i| fd(&|mm: &mut Moe, s| mm.experts[i / (h * d)].gate[i % (h * d)] += s))
            .collect();
        check("gate_proj", &g.ffn.gate, &want);
        let want: Vec<f64> = (0..e * h * d)
            .map(|i| fd(&|mm: &mut Moe, s| mm.experts[i / (h * d)].up[i % (h * d)] += s))
            .collect();
        check("up_proj", &g.ffn.up, &want);
        let want: Vec<f64> = (0..d * e * h)
            .map(|i| {
                let (row, col) = (i / (e * h), i % (e * h));
                fd(&|mm: &mut Moe, s| mm.experts[col / h].down[row * h + col % h] += s)
            })
            .collect();
        check("down_proj", &g.ffn.down, &want);
    }

    /// Top-k gates: k nonzero per token, summing to 1, on the k largest logits.
    #[test]
    fn gates_are_renormalised_top_k() {
        let m = moe(5);
        let x = normals(6, 8, 20 * m.d, 1.0);
        let g = m.gates(&x);
        for (t, row) in g.chunks(m.n_experts()).enumerate() {
            assert_eq!(row.iter().filter(|v| **v > 0.0).count(), 2);
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let xr = &x[t * m.d..(t + 1) * m.d];
            let logits: Vec<f64> = (0..m.n_experts())
                .map(|j| dot(&m.router[j * m.d..(j + 1) * m.d], xr))
                .collect();
            let min_sel = (0..4)
                .filter(|&j| row[j] > 0.0)
                .map(|j| logits[j])
                .fold(f64::INFINITY, f64::min);
            let max_un = (0..4)
                .filter(|&j| row[j] == 0.0)
                .map(|j| logits[j])
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(min_sel >= max_un);
        }
    }
}
