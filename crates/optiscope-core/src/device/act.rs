//! The activation and normalisation family: bias plus activation, its backward, and the softmax
//! cross-entropy at a classifier's output. CPU twins below; WGSL in `shaders/act.wgsl`; GPU
//! launches in `optiscope-gpu/src/ops/act.rs`. (LayerNorm and GELU join here with the
//! transformer.)

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
}

impl ActOps for Cpu {
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
