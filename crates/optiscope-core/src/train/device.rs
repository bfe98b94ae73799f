//! The kernels of model training, on top of the optimizer kernels of [`Device`]. The trainer in
//! [`super`] is written once against this trait; [`Cpu`] implements it here with plain loops and
//! `matrixmultiply`, and `optiscope-gpu` implements it with the WGSL twins in `shaders/mlp.wgsl`
//! and `shaders/quant.wgsl`.

use crate::optim::{Cpu, Device};
use crate::quant::kernel::{self, ProxScalars, QuantSpec, DPARAMS};
use crate::tensor::{gemm, Op};

/// Where a model's activations, gradients and weights live.
pub trait ModelDevice: Device {
    /// Rows `rows` of the row-major `? × dim` matrix `src`, in that order.
    fn gather_rows(&mut self, src: &Self::Buf, dim: usize, rows: &[u32]) -> Self::Buf;
    /// `y = x·wᵀ + b` (x: `n × fi`, w: `fo × fi`, b: `fo`), then ReLU when `relu`.
    #[allow(clippy::too_many_arguments)]
    fn linear(
        &mut self,
        x: &Self::Buf,
        w: &Self::Buf,
        b: &Self::Buf,
        n: usize,
        fi: usize,
        fo: usize,
        relu: bool,
    ) -> Self::Buf;
    /// Mean softmax cross-entropy of `logits` (`n × c`) against `labels` (class indices stored as
    /// f32): returns `∂loss/∂logits` (already divided by n) and `[Σ loss, number correct]`.
    fn softmax_xent(
        &mut self,
        logits: &Self::Buf,
        labels: &Self::Buf,
        n: usize,
        c: usize,
    ) -> (Self::Buf, Self::Buf);
    /// Weight and bias gradients of a linear layer: `δᵀ·x` (`fo × fi`) and the column sums of δ.
    fn linear_grads(
        &mut self,
        x: &Self::Buf,
        delta: &Self::Buf,
        n: usize,
        fi: usize,
        fo: usize,
    ) -> (Self::Buf, Self::Buf);
    /// The gradient reaching the layer's input, `(δ·w) ⊙ [act > 0]` (act: the ReLU output that
    /// was the layer's input).
    #[allow(clippy::too_many_arguments)]
    fn linear_backprop(
        &mut self,
        delta: &Self::Buf,
        w: &Self::Buf,
        act: &Self::Buf,
        n: usize,
        fi: usize,
        fo: usize,
    ) -> Self::Buf;
    /// The quantization kernel ([`kernel::quantize`]) on `w`: `(x̂, gain, dparams)` with
    /// `dparams` row-major `n × DPARAMS`. `noise` holds the Gumbel values RQ needs.
    fn quantize(
        &mut self,
        w: &Self::Buf,
        spec: &QuantSpec,
        noise: Option<&Self::Buf>,
    ) -> (Self::Buf, Self::Buf, Self::Buf);
    /// `a ⊙ b`.
    fn mul(&mut self, a: &Self::Buf, b: &Self::Buf) -> Self::Buf;
    /// `Σ_i g_i · d[i, j]` for each of the `p` columns of the row-major `n × p` matrix `d`.
    fn weighted_col_sums(&mut self, g: &Self::Buf, d: &Self::Buf, n: usize, p: usize) -> Self::Buf;
    /// ProxQuant's prox ([`kernel::prox_grid`]), in place.
    fn prox_grid(&mut self, w: &mut Self::Buf, v: Option<&Self::Buf>, s: &ProxScalars);
    /// `Σ x²` of each buffer, one value per buffer in one buffer (accumulated in f64 on the CPU):
    /// NaN or infinite exactly when a buffer holds a NaN or an infinity, or squares past f32's
    /// range. The trainer checks its gradients with one read-back before any state changes.
    fn sums_of_squares(&mut self, bufs: &[&Self::Buf]) -> Self::Buf;
}

impl ModelDevice for Cpu {
    fn gather_rows(&mut self, src: &Vec<f32>, dim: usize, rows: &[u32]) -> Vec<f32> {
        rows.iter()
            .flat_map(|&r| {
                src[r as usize * dim..(r as usize + 1) * dim]
                    .iter()
                    .copied()
            })
            .collect()
    }

    fn linear(
        &mut self,
        x: &Vec<f32>,
        w: &Vec<f32>,
        b: &Vec<f32>,
        n: usize,
        fi: usize,
        fo: usize,
        relu: bool,
    ) -> Vec<f32> {
        let mut y = vec![0.0; n * fo];
        for row in y.chunks_mut(fo) {
            row.copy_from_slice(b);
        }
        gemm(n, fi, fo, 1.0, x, Op::N, w, Op::T, 1.0, &mut y);
        if relu {
            y.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        y
    }

    fn softmax_xent(
        &mut self,
        logits: &Vec<f32>,
        labels: &Vec<f32>,
        n: usize,
        c: usize,
    ) -> (Vec<f32>, Vec<f32>) {
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
        (d, vec![loss as f32, correct as f32])
    }

    fn linear_grads(
        &mut self,
        x: &Vec<f32>,
        delta: &Vec<f32>,
        n: usize,
        fi: usize,
        fo: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let mut gw = vec![0.0; fo * fi];
        gemm(fo, n, fi, 1.0, delta, Op::T, x, Op::N, 0.0, &mut gw);
        let mut gb = vec![0.0f32; fo];
        for row in delta.chunks(fo) {
            gb.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        (gw, gb)
    }

    fn linear_backprop(
        &mut self,
        delta: &Vec<f32>,
        w: &Vec<f32>,
        act: &Vec<f32>,
        n: usize,
        fi: usize,
        fo: usize,
    ) -> Vec<f32> {
        let mut dx = vec![0.0; n * fi];
        gemm(n, fo, fi, 1.0, delta, Op::N, w, Op::N, 0.0, &mut dx);
        for (d, a) in dx.iter_mut().zip(act) {
            if *a <= 0.0 {
                *d = 0.0;
            }
        }
        dx
    }

    fn quantize(
        &mut self,
        w: &Vec<f32>,
        spec: &QuantSpec,
        noise: Option<&Vec<f32>>,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let out = kernel::quantize(w, spec, noise.map_or(&[][..], |v| v.as_slice()));
        (out.xhat, out.gain, out.dparams)
    }

    fn mul(&mut self, a: &Vec<f32>, b: &Vec<f32>) -> Vec<f32> {
        a.iter().zip(b).map(|(x, y)| x * y).collect()
    }

    fn weighted_col_sums(&mut self, g: &Vec<f32>, d: &Vec<f32>, n: usize, p: usize) -> Vec<f32> {
        debug_assert!(p <= DPARAMS || d.len() == n * p);
        let mut out = vec![0.0f64; p];
        for (gi, row) in g.iter().zip(d.chunks(p)).take(n) {
            for (o, v) in out.iter_mut().zip(row) {
                *o += f64::from(*gi) * f64::from(*v);
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }

    fn prox_grid(&mut self, w: &mut Vec<f32>, v: Option<&Vec<f32>>, s: &ProxScalars) {
        kernel::prox_grid(w, v.map(|v| v.as_slice()), s);
    }

    fn sums_of_squares(&mut self, bufs: &[&Vec<f32>]) -> Vec<f32> {
        bufs.iter()
            .map(|b| b.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() as f32)
            .collect()
    }
}
