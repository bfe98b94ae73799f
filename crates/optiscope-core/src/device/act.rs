//! The activation and normalisation family: bias plus activation, its backward, and the softmax
//! cross-entropy at a classifier's output, the row softmax and its backward, SwiGLU's gating and a
//! top-k router's gates (the mixture-of-experts lab). CPU twins below; WGSL in
//! `shaders/act.wgsl`; GPU launches in `optiscope-gpu/src/ops/act.rs`. (LayerNorm and GELU join
//! here with the transformer.)

use super::dense::Mat;
use super::{Cpu, Storage};

/// An elementwise activation after a linear layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// None: `y = x`.
    Identity,
    /// `max(x, 0)`.
    Relu,
}

impl Activation {
    /// The activation applied to `y` in place (the CPU twin).
    pub fn apply(self, y: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
    }
}

/// The softmax cross-entropy of a batch.
#[derive(Debug, Clone)]
pub struct XentOut<B> {
    /// `∂(mean loss)/∂logits` (already divided by the batch size), `n × classes`.
    pub d_logits: B,
    /// Two values: the summed loss and the number of rows whose first maximal logit is the label.
    pub stats: B,
}

/// Activations and softmax.
pub trait ActOps: Storage {
    /// `y ← act(y + b)` with `b` added to each of the `rows` rows of the `rows × cols` matrix `y`.
    fn bias_act(
        &mut self,
        y: &mut Self::Buf,
        b: &Self::Buf,
        rows: usize,
        cols: usize,
        act: Activation,
    );
    /// ReLU's backward in place: `dy ← dy ⊙ [out > 0]` (out: the ReLU's output).
    fn relu_backward(&mut self, dy: &mut Self::Buf, out: &Self::Buf);
    /// Mean softmax cross-entropy of `logits` (`n × classes`) against `labels` (class indices
    /// stored as f32).
    fn softmax_xent(
        &mut self,
        logits: Mat<'_, Self::Buf>,
        labels: &Self::Buf,
    ) -> XentOut<Self::Buf>;
    /// The row softmax of `logits` (`n × classes`, read as stored), in f32 with the row's
    /// maximum subtracted first: a new buffer.
    fn softmax_rows(&mut self, logits: Mat<'_, Self::Buf>) -> Self::Buf;
    /// The backward of a row softmax: from the probabilities `p` (`n × classes`, as stored) and
    /// `dp = ∂L/∂p`, `∂L/∂logits = p ⊙ (dp − Σ_row p ⊙ dp)`. It is also the backward of
    /// [`topk_softmax`](Self::topk_softmax): the zero gates of unselected experts pass nothing.
    fn softmax_backward(&mut self, p: Mat<'_, Self::Buf>, dp: &Self::Buf) -> Self::Buf;
    /// A top-k router's renormalised gates: in each row of `logits` (`n × experts`, as stored),
    /// the softmax over its `k` largest entries (ties go to the lower index, as a stable sort),
    /// 0 elsewhere. `k` is at least 1 and at most the number of columns.
    fn topk_softmax(&mut self, logits: Mat<'_, Self::Buf>, k: usize) -> Self::Buf;
    /// SwiGLU's gating `h = silu(a) ⊙ b`, `silu(z) = z·σ(z)` (a and b of equal length).
    fn swiglu(&mut self, a: &Self::Buf, b: &Self::Buf) -> Self::Buf;
    /// Its backward from `dh`: `(∂a, ∂b) = (dh ⊙ b ⊙ silu′(a), dh ⊙ silu(a))` with
    /// `silu′(z) = σ(z)(1 + z(1 − σ(z)))`.
    fn swiglu_backward(
        &mut self,
        dh: &Self::Buf,
        a: &Self::Buf,
        b: &Self::Buf,
    ) -> (Self::Buf, Self::Buf);
}

/// `σ(z)` in f32 as the WGSL twin computes it (`1 / (1 + e^{−z})`; 0 when `e^{−z}` overflows).
pub fn sigmoid_f32(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Whether entry `c` of `row` is among its `k` largest (ties go to the lower index): its rank,
/// the number of entries above it or equal to it at a lower index, is below `k`.
pub fn in_top_k(row: &[f32], c: usize, k: usize) -> bool {
    let v = row[c];
    let rank = row
        .iter()
        .enumerate()
        .filter(|&(j, &u)| u > v || (u == v && j < c))
        .count();
    rank < k
}

impl ActOps for Cpu {
    fn softmax_backward(&mut self, p: Mat<'_, Vec<f32>>, dp: &Vec<f32>) -> Vec<f32> {
        super::dense::as_stored(&p, "softmax_backward");
        let c = p.cols;
        let mut out = vec![0.0f32; p.rows * c];
        if c > 0 {
            for ((o, pr), dr) in out
                .chunks_mut(c)
                .zip(p.buf.chunks(c))
                .zip(dp.chunks(c))
                .take(p.rows)
            {
                let s: f32 = pr.iter().zip(dr).map(|(a, b)| a * b).sum();
                for ((o, &pk), &dk) in o.iter_mut().zip(pr).zip(dr) {
                    *o = pk * (dk - s);
                }
            }
        }
        out
    }

    fn topk_softmax(&mut self, logits: Mat<'_, Vec<f32>>, k: usize) -> Vec<f32> {
        super::dense::as_stored(&logits, "topk_softmax");
        let c = logits.cols;
        assert!(
            (1..=c).contains(&k),
            "topk_softmax: k = {k} with {c} columns"
        );
        let mut out = vec![0.0f32; logits.rows * c];
        for (o, row) in out.chunks_mut(c).zip(logits.buf.chunks(c)) {
            let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let mut sum = 0.0f32;
            for j in 0..c {
                if in_top_k(row, j, k) {
                    o[j] = (row[j] - m).exp();
                    sum += o[j];
                }
            }
            o.iter_mut().for_each(|v| *v /= sum);
        }
        out
    }

    fn swiglu(&mut self, a: &Vec<f32>, b: &Vec<f32>) -> Vec<f32> {
        assert_eq!(a.len(), b.len(), "swiglu of unequal lengths");
        a.iter()
            .zip(b)
            .map(|(&z, &u)| z * sigmoid_f32(z) * u)
            .collect()
    }

    fn swiglu_backward(
        &mut self,
        dh: &Vec<f32>,
        a: &Vec<f32>,
        b: &Vec<f32>,
    ) -> (Vec<f32>, Vec<f32>) {
        assert!(
            dh.len() == a.len() && a.len() == b.len(),
            "swiglu_backward of unequal lengths"
        );
        let mut da = Vec::with_capacity(a.len());
        let mut db = Vec::with_capacity(a.len());
        for ((&g, &z), &u) in dh.iter().zip(a).zip(b) {
            let s = sigmoid_f32(z);
            da.push(g * u * (s * (1.0 + z * (1.0 - s))));
            db.push(g * z * s);
        }
        (da, db)
    }

    fn softmax_rows(&mut self, logits: Mat<'_, Vec<f32>>) -> Vec<f32> {
        super::dense::as_stored(&logits, "softmax_rows");
        let c = logits.cols;
        let mut out = logits.buf[..logits.rows * c].to_vec();
        if c > 0 {
            for row in out.chunks_mut(c) {
                let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let mut sum = 0.0f32;
                for v in row.iter_mut() {
                    *v = (*v - m).exp();
                    sum += *v;
                }
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
        out
    }

    fn bias_act(
        &mut self,
        y: &mut Vec<f32>,
        b: &Vec<f32>,
        rows: usize,
        cols: usize,
        act: Activation,
    ) {
        if cols > 0 {
            for row in y.chunks_mut(cols).take(rows) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
        }
        act.apply(y);
    }

    fn relu_backward(&mut self, dy: &mut Vec<f32>, out: &Vec<f32>) {
        for (d, a) in dy.iter_mut().zip(out) {
            if *a <= 0.0 {
                *d = 0.0;
            }
        }
    }

    fn softmax_xent(&mut self, logits: Mat<'_, Vec<f32>>, labels: &Vec<f32>) -> XentOut<Vec<f32>> {
        super::dense::as_stored(&logits, "softmax_xent");
        let (n, c) = (logits.rows, logits.cols);
        let logits = logits.buf;
        let mut d = vec![0.0f32; n * c];
        let (mut loss, mut correct) = (0.0f64, 0.0f64);
        for i in 0..n {
            let row = &logits[i * c..(i + 1) * c];
            let label = labels[i] as usize;
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let sum: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
            loss += sum.ln() - f64::from(row[label] - max);
            // The first maximal logit is the prediction (ties go to the lower class).
            let argmax = (0..c).fold(0, |best, k| if row[k] > row[best] { k } else { best });
            correct += f64::from(u8::from(argmax == label));
            for k in 0..c {
                let p = (f64::from(row[k] - max).exp() / sum) as f32;
                d[i * c + k] = (p - if k == label { 1.0 } else { 0.0 }) / n as f32;
            }
        }
        XentOut {
            d_logits: d,
            stats: vec![loss as f32, correct as f32],
        }
    }
}
