//! The two-layer GCN of spec C1 (Kipf & Welling's normalisation with self-loops), with its forward
//! and backward written out over the device families, so it trains on the CPU or a GPU:
//!
//! `H = ReLU(Â X W1ᵀ)` (dropout on H while training), `Z = Â H W2ᵀ`, loss the mean softmax
//! cross-entropy of Z over the labelled nodes. `Â X` is computed once. Backward:
//! `∂W2 = δZᵀ (Â H)`, `δH = Â (δZ W2) ⊙ [H > 0]` (Â is symmetric, its own transpose),
//! `∂W1 = δHᵀ (Â X)`. The labelled rows of Z are gathered for the loss and `δZ` is scattered back
//! by a sparse product with the `n × m` selection matrix. Weights are `[out, in]` row-major, no
//! biases (as the spec's experiment).

use super::graph::Graph;
use crate::device::{Activation, Csr, Device, DeviceError, Mat};

/// A graph's data on a device, for the GCN.
pub struct GcnData<D: Device> {
    /// `Â`, `n × n`.
    pub a: Csr<D::Buf>,
    /// `Â X`, `n × f`.
    pub ax: D::Buf,
    /// `X`, `n × f`.
    pub x: D::Buf,
    /// The selection matrix `n × m` (1 at (train[i], i)).
    pub scatter: Csr<D::Buf>,
    /// The labelled nodes.
    pub train: Vec<u32>,
    /// Their labels (as f32).
    pub train_labels: D::Buf,
    /// Nodes.
    pub n: usize,
    /// Features.
    pub f: usize,
    /// Classes.
    pub c: usize,
}

/// A bad GCN input.
fn bad(what: &str) -> DeviceError {
    DeviceError::Unsupported(format!("gcn: {what}"))
}

impl<D: Device> GcnData<D> {
    /// Uploads `graph`'s normalised adjacency, the features `x` (`n × f`), and the labels `y` of
    /// the nodes where `train` holds (`c` classes).
    pub fn new(
        dev: &mut D,
        graph: &Graph,
        x: &[f32],
        y: &[u32],
        train: &[bool],
        c: usize,
    ) -> Result<Self, DeviceError> {
        let n = graph.n;
        if n == 0 || x.len() % n != 0 || y.len() != n || train.len() != n || c < 2 {
            return Err(bad(
                "features, labels and the train mask must have a row per node",
            ));
        }
        if y.iter().any(|&l| l as usize >= c) {
            return Err(bad("a label is not below the number of classes"));
        }
        let f = x.len() / n;
        let (ip, ix, v) = graph.normalized_adjacency();
        let a =
            Csr::upload(dev, n, n, &ip, &ix, &v).ok_or_else(|| bad("the graph is too large"))?;
        let xb = dev.upload(x);
        let ax = dev.spmm(&a, Mat::new(&xb, n, f));
        let rows: Vec<u32> = (0..n as u32).filter(|&i| train[i as usize]).collect();
        let m = rows.len();
        if m == 0 {
            return Err(bad("no labelled node"));
        }
        // Row i of the selection matrix holds a 1 in the column of i among the labelled nodes.
        let mut indptr = vec![0u32; n + 1];
        let mut indices = Vec::with_capacity(m);
        for i in 0..n {
            if train[i] {
                indices.push(indices.len() as u32);
            }
            indptr[i + 1] = indices.len() as u32;
        }
        let scatter = Csr::upload(dev, n, m, &indptr, &indices, &vec![1.0; m])
            .ok_or_else(|| bad("the graph is too large"))?;
        let labels: Vec<f32> = rows.iter().map(|&i| y[i as usize] as f32).collect();
        let train_labels = dev.upload(&labels);
        Ok(Self {
            a,
            ax,
            x: xb,
            scatter,
            train: rows,
            train_labels,
            n,
            f,
            c,
        })
    }
}

impl<D: Device> GcnData<D> {
    /// Replaces the values of `Â`'s stored entries (same pattern; e.g. masked by learned edge
    /// weights) and recomputes `Â X`.
    pub fn set_adjacency_values(&mut self, dev: &mut D, values: &[f32]) -> Result<(), DeviceError> {
        if values.len() != self.a.nnz {
            return Err(bad("adjacency values of the wrong length"));
        }
        let v = dev.upload(values);
        dev.copy_into(&mut self.a.values, &v);
        self.ax = dev.spmm(&self.a, Mat::new(&self.x, self.n, self.f));
        Ok(())
    }
}

/// The loss and the gradients of one forward/backward.
pub struct GcnGrads<B> {
    /// `∂L/∂W1`, `hidden × f`.
    pub w1: B,
    /// `∂L/∂W2`, `c × hidden`.
    pub w2: B,
    /// `∂L/∂Â` at `Â`'s stored entries (both layers' uses), when asked for.
    pub adjacency: Option<B>,
    /// The mean cross-entropy over the labelled nodes.
    pub loss: f64,
}

/// The logits `Z` (`n × c`) for the weights `w1` (`hidden × f`) and `w2` (`c × hidden`).
pub fn logits<D: Device>(
    dev: &mut D,
    data: &GcnData<D>,
    w1: &D::Buf,
    w2: &D::Buf,
    hidden: usize,
) -> D::Buf {
    let (n, f, c) = (data.n, data.f, data.c);
    let zero = dev.zeros(hidden);
    let mut h = dev.matmul(Mat::new(&data.ax, n, f), Mat::new(w1, hidden, f).t());
    dev.bias_act(&mut h, &zero, n, hidden, Activation::Relu);
    let ah = dev.spmm(&data.a, Mat::new(&h, n, hidden));
    dev.matmul(Mat::new(&ah, n, hidden), Mat::new(w2, c, hidden).t())
}

/// Logit distillation from a teacher: its softmax outputs `p_T` (`n × c`) and the weight λ of
/// `λ · (1/n) Σ_i KL(p_T(i) ‖ p(i))` over all nodes (spec C1), whose gradient in the logits is
/// `λ (p − p_T) / n`.
pub struct Distill<'a, B> {
    /// `p_T`, `n × c`.
    pub teacher: &'a B,
    /// λ.
    pub lambda: f64,
}

/// One forward and backward pass; `dropout` (`n × hidden`, entries 0 or `1/(1−p)`) multiplies H
/// while training, `distill` adds the distillation term. The loss reported is the cross-entropy
/// alone.
pub fn forward_backward<D: Device>(
    dev: &mut D,
    data: &GcnData<D>,
    w1: &D::Buf,
    w2: &D::Buf,
    hidden: usize,
    dropout: Option<&D::Buf>,
    distill: Option<&Distill<'_, D::Buf>>,
) -> Result<GcnGrads<D::Buf>, DeviceError> {
    pass(dev, data, (w1, w2), hidden, dropout, distill, false)
}

/// [`forward_backward`] (no distillation) that also returns `∂L/∂Â` at `Â`'s stored entries:
/// `Z = Â P` with `P = H W2ᵀ` gives `δZ_r · P_c` at entry (r, c), the first layer's
/// `S = Â Q` with `Q = X W1ᵀ` gives `δS_r · Q_c`, both by a sampled dense-dense product
/// ([`SparseOps::sddmm`](crate::device::SparseOps::sddmm)). UGS learns its edge masks from it.
pub fn forward_backward_adjacency<D: Device>(
    dev: &mut D,
    data: &GcnData<D>,
    w1: &D::Buf,
    w2: &D::Buf,
    hidden: usize,
    dropout: Option<&D::Buf>,
) -> Result<GcnGrads<D::Buf>, DeviceError> {
    pass(dev, data, (w1, w2), hidden, dropout, None, true)
}

fn pass<D: Device>(
    dev: &mut D,
    data: &GcnData<D>,
    (w1, w2): (&D::Buf, &D::Buf),
    hidden: usize,
    dropout: Option<&D::Buf>,
    distill: Option<&Distill<'_, D::Buf>>,
    adjacency: bool,
) -> Result<GcnGrads<D::Buf>, DeviceError> {
    let (n, f, c, m) = (data.n, data.f, data.c, data.train.len());
    let zero = dev.zeros(hidden);
    let mut h = dev.matmul(Mat::new(&data.ax, n, f), Mat::new(w1, hidden, f).t());
    dev.bias_act(&mut h, &zero, n, hidden, Activation::Relu);
    let relu_out = dev.duplicate(&h);
    if let Some(mask) = dropout {
        h = dev.mul(&h, mask);
    }
    let ah = dev.spmm(&data.a, Mat::new(&h, n, hidden));
    let z = dev.matmul(Mat::new(&ah, n, hidden), Mat::new(w2, c, hidden).t());
    let zt = dev.gather_rows(Mat::new(&z, n, c), &data.train);
    let xent = dev.softmax_xent(Mat::new(&zt, m, c), &data.train_labels);
    let mut dz = dev.spmm(&data.scatter, Mat::new(&xent.d_logits, m, c));
    if let Some(d) = distill {
        // dz += λ (softmax(Z) − p_T) / n.
        let mut p = dev.softmax_rows(Mat::new(&z, n, c));
        dev.decay_sub(&mut p, d.teacher, 1.0, 1.0);
        dev.decay_sub(&mut dz, &p, 1.0, -(d.lambda / n as f64) as f32);
    }
    let gw2 = dev.matmul(Mat::new(&dz, n, c).t(), Mat::new(&ah, n, hidden));
    let dah = dev.matmul(Mat::new(&dz, n, c), Mat::new(w2, c, hidden));
    let mut dh = dev.spmm(&data.a, Mat::new(&dah, n, hidden));
    if let Some(mask) = dropout {
        dh = dev.mul(&dh, mask);
    }
    dev.relu_backward(&mut dh, &relu_out);
    let gw1 = dev.matmul(Mat::new(&dh, n, hidden).t(), Mat::new(&data.ax, n, f));
    let adjacency = adjacency.then(|| {
        let p = dev.matmul(Mat::new(&h, n, hidden), Mat::new(w2, c, hidden).t());
        let mut g = dev.sddmm(&data.a, Mat::new(&dz, n, c), Mat::new(&p, n, c));
        let q = dev.matmul(Mat::new(&data.x, n, f), Mat::new(w1, hidden, f).t());
        let g1 = dev.sddmm(&data.a, Mat::new(&dh, n, hidden), Mat::new(&q, n, hidden));
        dev.decay_sub(&mut g, &g1, 1.0, -1.0);
        g
    });
    let stats = dev.download(&xent.stats)?;
    Ok(GcnGrads {
        w1: gw1,
        w2: gw2,
        adjacency,
        loss: f64::from(stats[0]) / m as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Cpu;
    use crate::rng::Philox;
    use crate::sparsify::sbm::SbmConfig;

    /// The loss in f64 with dense matrices: an independent reference.
    fn dense_loss(
        graph: &Graph,
        x: &[f64],
        y: &[u32],
        train: &[bool],
        w: (&[f64], &[f64]),
        sizes: (usize, usize, usize),
        distill: Option<(&[f64], f64)>,
    ) -> f64 {
        dense_loss_bumped(graph, x, y, train, w, sizes, (distill, None))
    }

    /// `(r, c, δ)`: `Â[r, c] += δ`.
    type Bump = (usize, usize, f64);

    /// The same with `Â[r, c] += δ` for `bump = (r, c, δ)`.
    fn dense_loss_bumped(
        graph: &Graph,
        x: &[f64],
        y: &[u32],
        train: &[bool],
        (w1, w2): (&[f64], &[f64]),
        (f, h, c): (usize, usize, usize),
        (distill, bump): (Option<(&[f64], f64)>, Option<Bump>),
    ) -> f64 {
        let n = graph.n;
        let mut a = vec![0.0; n * n];
        let d: Vec<f64> = (0..n)
            .map(|i| graph.neighbours(i).len() as f64 + 1.0)
            .collect();
        for i in 0..n {
            a[i * n + i] = 1.0 / d[i];
            for &j in graph.neighbours(i) {
                a[i * n + j as usize] = 1.0 / (d[i] * d[j as usize]).sqrt();
            }
        }
        if let Some((r, cc, delta)) = bump {
            a[r * n + cc] += delta;
        }
        let mm = |p: &[f64], q: &[f64], r: usize, k: usize, s: usize| {
            let mut o = vec![0.0; r * s];
            for i in 0..r {
                for l in 0..k {
                    for j in 0..s {
                        o[i * s + j] += p[i * k + l] * q[l * s + j];
                    }
                }
            }
            o
        };
        let t = |p: &[f64], r: usize, s: usize| {
            let mut o = vec![0.0; r * s];
            for i in 0..r {
                for j in 0..s {
                    o[j * r + i] = p[i * s + j];
                }
            }
            o
        };
        let ax = mm(&a, x, n, n, f);
        let hp: Vec<f64> = mm(&ax, &t(w1, h, f), n, f, h)
            .iter()
            .map(|v| v.max(0.0))
            .collect();
        let ah = mm(&a, &hp, n, n, h);
        let z = mm(&ah, &t(w2, c, h), n, h, c);
        let (mut loss, mut m) = (0.0, 0.0);
        for i in (0..n).filter(|&i| train[i]) {
            let row = &z[i * c..(i + 1) * c];
            let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
            loss += lse - row[y[i] as usize];
            m += 1.0;
        }
        let mut kl = 0.0;
        if let Some((t, lambda)) = distill {
            for i in 0..n {
                let row = &z[i * c..(i + 1) * c];
                let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
                for k in 0..c {
                    let tk = t[i * c + k];
                    kl += lambda * tk * (tk.ln() - (row[k] - lse)) / n as f64;
                }
            }
        }
        loss / m + kl
    }

    #[test]
    fn gradients_match_finite_differences_of_a_dense_f64_reference() {
        let cfg = SbmConfig {
            n: 30,
            features: 5,
            train_per_class: 4,
            p_in: 0.2,
            p_out: 0.05,
            ..SbmConfig::default()
        };
        let s = cfg.generate(2).unwrap();
        let (f, h, c) = (5, 4, 3);
        let rng = Philox::new(8);
        let w1: Vec<f64> = (0..h * f)
            .map(|i| 0.5 * f64::from(rng.normal_at(1, i as u64)))
            .collect();
        let w2: Vec<f64> = (0..c * h)
            .map(|i| 0.5 * f64::from(rng.normal_at(2, i as u64)))
            .collect();
        let x: Vec<f64> = s.x.iter().map(|v| f64::from(*v)).collect();
        let mut dev = Cpu;
        let data = GcnData::new(&mut dev, &s.graph, &s.x, &s.y, &s.train, c).unwrap();
        let to32 = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
        let g = forward_backward(&mut dev, &data, &to32(&w1), &to32(&w2), h, None, None).unwrap();
        let loss = dense_loss(&s.graph, &x, &s.y, &s.train, (&w1, &w2), (f, h, c), None);
        assert!((g.loss - loss).abs() < 1e-5, "{} vs {loss}", g.loss);
        // With the distillation term (λ = 3) towards a fixed teacher.
        let t: Vec<f64> = (0..s.graph.n * c)
            .map(|i| [0.5, 0.3, 0.2][(i + i / c) % 3])
            .collect();
        let t32 = to32(&t);
        let dis = Distill {
            teacher: &t32,
            lambda: 3.0,
        };
        let gd =
            forward_backward(&mut dev, &data, &to32(&w1), &to32(&w2), h, None, Some(&dis)).unwrap();
        let e = 1e-6;
        for (distill, g) in [(None, &g), (Some((t.as_slice(), 3.0)), &gd)] {
            let dense_loss = |g: &Graph,
                              x: &[f64],
                              y: &[u32],
                              tr: &[bool],
                              w: (&[f64], &[f64]),
                              s: (usize, usize, usize)| {
                dense_loss(g, x, y, tr, w, s, distill)
            };
            for (which, w, grad) in [(1, &w1, &g.w1), (2, &w2, &g.w2)] {
                for j in 0..w.len() {
                    let (mut p, mut q) = (w.clone(), w.clone());
                    p[j] += e;
                    q[j] -= e;
                    let fd = if which == 1 {
                        (dense_loss(&s.graph, &x, &s.y, &s.train, (&p, &w2), (f, h, c))
                            - dense_loss(&s.graph, &x, &s.y, &s.train, (&q, &w2), (f, h, c)))
                            / (2.0 * e)
                    } else {
                        (dense_loss(&s.graph, &x, &s.y, &s.train, (&w1, &p), (f, h, c))
                            - dense_loss(&s.graph, &x, &s.y, &s.train, (&w1, &q), (f, h, c)))
                            / (2.0 * e)
                    };
                    assert!(
                        (fd - f64::from(grad[j])).abs() < 1e-4,
                        "W{which}[{j}]: {fd} vs {}",
                        grad[j]
                    );
                }
            }
        }
    }

    /// `∂L/∂Â` at every stored entry (self-loops included) against central differences of the
    /// dense reference with that one entry moved, and the same weight gradients as the plain
    /// pass.
    #[test]
    fn adjacency_gradient_matches_finite_differences() {
        let cfg = SbmConfig {
            n: 24,
            features: 4,
            train_per_class: 3,
            p_in: 0.25,
            p_out: 0.05,
            ..SbmConfig::default()
        };
        let s = cfg.generate(6).unwrap();
        let (f, h, c) = (4, 3, 3);
        let rng = Philox::new(9);
        let w1: Vec<f64> = (0..h * f)
            .map(|i| 0.6 * f64::from(rng.normal_at(1, i as u64)))
            .collect();
        let w2: Vec<f64> = (0..c * h)
            .map(|i| 0.6 * f64::from(rng.normal_at(2, i as u64)))
            .collect();
        let x: Vec<f64> = s.x.iter().map(|v| f64::from(*v)).collect();
        let mut dev = Cpu;
        let data = GcnData::new(&mut dev, &s.graph, &s.x, &s.y, &s.train, c).unwrap();
        let to32 = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
        let (a32, b32) = (to32(&w1), to32(&w2));
        let g = forward_backward_adjacency(&mut dev, &data, &a32, &b32, h, None).unwrap();
        let plain = forward_backward(&mut dev, &data, &a32, &b32, h, None, None).unwrap();
        assert_eq!(g.w1, plain.w1);
        assert_eq!(g.w2, plain.w2);
        let adj = g.adjacency.unwrap();
        let (ip, ix, _) = s.graph.normalized_adjacency();
        assert_eq!(adj.len(), ix.len());
        let e = 1e-6;
        let mut checked = 0;
        for r in 0..s.graph.n {
            for k in ip[r] as usize..ip[r + 1] as usize {
                let cc = ix[k] as usize;
                let l = |d: f64| {
                    let w = (w1.as_slice(), w2.as_slice());
                    dense_loss_bumped(
                        &s.graph,
                        &x,
                        &s.y,
                        &s.train,
                        w,
                        (f, h, c),
                        (None, Some((r, cc, d))),
                    )
                };
                let fd = (l(e) - l(-e)) / (2.0 * e);
                assert!(
                    (fd - f64::from(adj[k])).abs() < 1e-4,
                    "Â[{r}, {cc}]: {fd} vs {}",
                    adj[k]
                );
                checked += 1;
            }
        }
        assert!(checked > 2 * s.graph.n, "{checked} entries");
        assert!(
            adj.iter().any(|v| v.abs() > 1e-3),
            "a gradient that is not all zero"
        );
    }
}
