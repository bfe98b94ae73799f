//! The transformer family: token and position embeddings with their scatter-add backward,
//! LayerNorm, GELU (tanh form), causal multi-head self-attention, residual sums and the clipping
//! of the gradients' global norm — what a GPT needs beyond the dense products
//! ([`super::DenseOps`]) and the softmax cross-entropy ([`super::ActOps`]). CPU twins below
//! (multi-threaded over the batch or the rows with [`super::par`]); WGSL in
//! `shaders/transformer.wgsl`; GPU launches in `optiscope-gpu/src/ops/transformer.rs`.
//!
//! Layouts follow nanoGPT: activations are `(batch · seq) × C` row-major; the fused `qkv` rows
//! hold `q` in columns `0..C`, `k` in `C..2C` and `v` in `2C..3C`, head `h` in columns
//! `h·d..(h+1)·d` of each (d = C / heads); attention probabilities are `batch × heads × seq ×
//! seq` with zeros above the diagonal. Token ids are stored as f32 (exact below 2²⁴).

use super::dense::{as_stored, Mat};
use super::par::{for_chunks, for_chunks2};
use super::{Cpu, Storage};
use crate::tensor::{gemm_strided, Strided};

/// LayerNorm's ε (nanoGPT's `F.layer_norm` default).
pub const LN_EPS: f32 = 1e-5;

/// `√(2/π)`, GELU's tanh-form constant.
pub const GELU_SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// The shape of one causal self-attention: `batch` sequences of `seq` positions, `heads` heads
/// of `head_dim` columns each (C = heads · head_dim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnShape {
    /// Sequences.
    pub batch: usize,
    /// Positions per sequence.
    pub seq: usize,
    /// Heads.
    pub heads: usize,
    /// Columns per head.
    pub head_dim: usize,
}

impl AttnShape {
    /// The model width C.
    pub fn width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Rows of the activations (`batch · seq`).
    pub fn rows(&self) -> usize {
        self.batch * self.seq
    }

    /// Values of the probabilities (`batch · heads · seq²`).
    pub fn probs_len(&self) -> usize {
        self.batch * self.heads * self.seq * self.seq
    }

    /// The scale of the scores, `1/√head_dim`.
    pub fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
}

/// A LayerNorm's output and what its backward needs.
#[derive(Debug, Clone)]
pub struct LayerNormOut<B> {
    /// `(x − μ)·rstd·w + b`, `rows × C`.
    pub y: B,
    /// Per row `[μ, rstd]` (`2 · rows` values), `rstd = 1/√(var + ε)` with the biased variance.
    pub stats: B,
}

/// The gradients of a LayerNorm.
#[derive(Debug, Clone)]
pub struct LayerNormGrads<B> {
    /// `∂L/∂x`, `rows × C`.
    pub dx: B,
    /// `∂L/∂w`, `C`.
    pub dw: B,
    /// `∂L/∂b`, `C`.
    pub db: B,
}

/// A causal self-attention's output and what its backward needs.
#[derive(Debug, Clone)]
pub struct AttentionOut<B> {
    /// The heads' outputs side by side, `rows × C` (before the output projection).
    pub y: B,
    /// The softmax probabilities, `batch × heads × seq × seq`, zero above the diagonal.
    pub probs: B,
}

/// The gradients of the token and position embeddings.
#[derive(Debug, Clone)]
pub struct EmbedGrads<B> {
    /// `∂L/∂wte`, `vocab × C`: each position's gradient added to its token's row.
    pub wte: B,
    /// `∂L/∂wpe`, `positions × C`: summed over the batch (rows past `seq` are zero).
    pub wpe: B,
}

/// The transformer's layers.
pub trait TransformerOps: Storage {
    /// `x[b, t] = wte[tokens[b, t]] + wpe[t]` for `batch × seq` tokens: a `(batch · seq) × C`
    /// buffer. Every token must be below `wte.rows` and `seq` at most `wpe.rows`.
    fn embed(
        &mut self,
        wte: Mat<'_, Self::Buf>,
        wpe: Mat<'_, Self::Buf>,
        tokens: &Self::Buf,
        batch: usize,
        seq: usize,
    ) -> Self::Buf;
    /// The embeddings' gradients from `dx` (`(batch · seq) × C`): the token rows scatter-added in
    /// position order, the position rows summed over the batch in order.
    fn embed_backward(
        &mut self,
        dx: Mat<'_, Self::Buf>,
        tokens: &Self::Buf,
        batch: usize,
        vocab: usize,
        positions: usize,
    ) -> EmbedGrads<Self::Buf>;
    /// LayerNorm of each row of `x` with gain `w` and bias `b` (ε = [`LN_EPS`]).
    fn layer_norm(
        &mut self,
        x: Mat<'_, Self::Buf>,
        w: &Self::Buf,
        b: &Self::Buf,
    ) -> LayerNormOut<Self::Buf>;
    /// Its backward from `dy`, with the forward's `stats`.
    fn layer_norm_backward(
        &mut self,
        dy: &Self::Buf,
        x: Mat<'_, Self::Buf>,
        w: &Self::Buf,
        stats: &Self::Buf,
    ) -> LayerNormGrads<Self::Buf>;
    /// GELU in its tanh form, `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`, elementwise.
    fn gelu(&mut self, x: &Self::Buf) -> Self::Buf;
    /// Its backward: `dy ⊙ gelu′(x)`.
    fn gelu_backward(&mut self, dy: &Self::Buf, x: &Self::Buf) -> Self::Buf;
    /// Causal softmax attention of the fused `qkv` (`rows × 3C`): per sequence, head and
    /// position t, `p[t, s] = softmax_{s ≤ t}(q_t·k_s / √d)` and `y_t = Σ_s p[t, s] v_s`.
    fn attention(&mut self, qkv: &Self::Buf, shape: AttnShape) -> AttentionOut<Self::Buf>;
    /// Its backward from `dy` (`rows × C`): `∂L/∂qkv` (`rows × 3C`).
    fn attention_backward(
        &mut self,
        dy: &Self::Buf,
        qkv: &Self::Buf,
        probs: &Self::Buf,
        shape: AttnShape,
    ) -> Self::Buf;
    /// `a + b` (a residual connection): a new buffer.
    fn add(&mut self, a: &Self::Buf, b: &Self::Buf) -> Self::Buf;
    /// `a ← a + b` (a gradient accumulated, e.g. a tied weight's two uses).
    fn add_assign(&mut self, a: &mut Self::Buf, b: &Self::Buf);
    /// Scales every buffer of `grads` by `min(1, max_norm / (‖g‖ + 1e-6))`, `‖g‖ = √(Σ sums)`
    /// over `sums` (one sum of squares per buffer, [`super::DenseOps::sums_of_squares`]), as
    /// PyTorch's `clip_grad_norm_`. The norm stays on the device.
    fn clip_grad_norm(&mut self, grads: &mut [Self::Buf], sums: &Self::Buf, max_norm: f32);
}

/// `eˣ` in f32 for `|x| ≤ 87` without a library call, so that loops over it vectorize: `x =
/// n·ln 2 + r` with `|r| ≤ ln 2 / 2` (ln 2 in two parts), a degree-6 Taylor polynomial of `eʳ`
/// (relative error below 2·10⁻⁷ there) and `2ⁿ` from the exponent bits.
///
/// `n` is rounded by adding and subtracting 1.5·2²³ (exact for `|x·log₂e| < 2²²`, ties to even)
/// and read as an integer from the sum's low mantissa bits: `f32::round` and an `as i32` cast
/// are a libm call and a saturating conversion on baseline x86-64 (no SSE4.1), which kept the
/// GELU's loops scalar (a profile of the baby GPT spent 5 % of its time in `roundf` alone).
#[inline]
pub fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³
    let x = x.clamp(-87.0, 87.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits((n_int.wrapping_add(127) as u32) << 23)
}

/// `tanh(u)` for `|u| ≤ 10` (the GELU's clamped argument) as `1 − 2/(e^{2u} + 1)`, vectorizable;
/// absolute error below 3·10⁻⁷.
#[inline]
pub fn tanh_f32(u: f32) -> f32 {
    1.0 - 2.0 / (exp_f32(2.0 * u) + 1.0)
}

/// `gelu(x)` in f32, the twin of the WGSL (the tanh's argument clamped to ±10, where it is ±1 in
/// f32, so no backend meets an overflow inside tanh).
#[inline]
pub fn gelu_f32(x: f32) -> f32 {
    let u = (GELU_SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).clamp(-10.0, 10.0);
    0.5 * x * (1.0 + tanh_f32(u))
}

/// `gelu′(x)` in f32.
#[inline]
pub fn gelu_grad_f32(x: f32) -> f32 {
    let u = (GELU_SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).clamp(-10.0, 10.0);
    let th = tanh_f32(u);
    let du = GELU_SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044_715 * x * x);
    0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du
}

/// The causal softmax of score row `t` in place: over entries `0..=t` (the row's maximum
/// subtracted first, the sum in order), zero after them.
fn causal_softmax(row: &mut [f32], t: usize) {
    let (live, masked) = row.split_at_mut(t + 1);
    let m = live.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0f32;
    for v in live.iter_mut() {
        *v = exp_f32(*v - m);
        sum += *v;
    }
    live.iter_mut().for_each(|v| *v /= sum);
    masked.fill(0.0);
}

/// The token id stored at `v`, checked against the vocabulary.
fn token(v: f32, vocab: usize) -> usize {
    let t = v as usize;
    assert!(
        v >= 0.0 && v.fract() == 0.0 && t < vocab,
        "token {v} outside a vocabulary of {vocab}"
    );
    t
}

/// The scale `min(1, max_norm / (√Σ sums + 1e-6))` of gradient clipping, in f32 as the WGSL.
pub fn clip_scale(sums: &[f32], max_norm: f32) -> f32 {
    let total: f32 = sums.iter().sum();
    (max_norm / (total.sqrt() + 1e-6)).min(1.0)
}

impl TransformerOps for Cpu {
    fn embed(
        &mut self,
        wte: Mat<'_, Vec<f32>>,
        wpe: Mat<'_, Vec<f32>>,
        tokens: &Vec<f32>,
        batch: usize,
        seq: usize,
    ) -> Vec<f32> {
        as_stored(&wte, "embed");
        as_stored(&wpe, "embed");
        let c = wte.cols;
        assert!(
            wpe.cols == c && seq <= wpe.rows && tokens.len() >= batch * seq,
            "embed: wte {}×{c}, wpe {}×{}, {batch}×{seq} tokens",
            wte.rows,
            wpe.rows,
            wpe.cols
        );
        let mut x = vec![0.0f32; batch * seq * c];
        if c == 0 {
            return x;
        }
        for (i, row) in x.chunks_mut(c).enumerate() {
            let tok = token(tokens[i], wte.rows);
            let t = i % seq;
            let (e, p) = (
                &wte.buf[tok * c..(tok + 1) * c],
                &wpe.buf[t * c..(t + 1) * c],
            );
            for ((o, a), b) in row.iter_mut().zip(e).zip(p) {
                *o = a + b;
            }
        }
        x
    }

    fn embed_backward(
        &mut self,
        dx: Mat<'_, Vec<f32>>,
        tokens: &Vec<f32>,
        batch: usize,
        vocab: usize,
        positions: usize,
    ) -> EmbedGrads<Vec<f32>> {
        as_stored(&dx, "embed_backward");
        let (rows, c) = (dx.rows, dx.cols);
        assert!(
            batch > 0 && rows % batch == 0 && rows / batch <= positions,
            "embed_backward: {rows} rows in {batch} sequences, {positions} positions"
        );
        let seq = rows / batch;
        let mut wte = vec![0.0f32; vocab * c];
        let mut wpe = vec![0.0f32; positions * c];
        if c == 0 {
            return EmbedGrads { wte, wpe };
        }
        for (i, g) in dx.buf.chunks(c).take(rows).enumerate() {
            let tok = token(tokens[i], vocab);
            let t = i % seq;
            wte[tok * c..(tok + 1) * c]
                .iter_mut()
                .zip(g)
                .for_each(|(o, v)| *o += v);
            wpe[t * c..(t + 1) * c]
                .iter_mut()
                .zip(g)
                .for_each(|(o, v)| *o += v);
        }
        EmbedGrads { wte, wpe }
    }

    fn layer_norm(
        &mut self,
        x: Mat<'_, Vec<f32>>,
        w: &Vec<f32>,
        b: &Vec<f32>,
    ) -> LayerNormOut<Vec<f32>> {
        as_stored(&x, "layer_norm");
        let (rows, c) = (x.rows, x.cols);
        assert!(
            w.len() == c && b.len() == c,
            "layer_norm: gain or bias not of width {c}"
        );
        let mut y = vec![0.0f32; rows * c];
        let mut stats = vec![0.0f32; 2 * rows];
        // A few rows per chunk, so a thread's share is worth its start.
        let per = 16;
        for_chunks2(
            &mut y,
            per * c,
            &mut stats,
            2 * per,
            rows * c,
            |i, y, st| {
                for (r, (yr, s)) in y.chunks_mut(c).zip(st.chunks_mut(2)).enumerate() {
                    let row = i * per + r;
                    let xr = &x.buf[row * c..(row + 1) * c];
                    let mean = xr.iter().sum::<f32>() / c as f32;
                    let var = xr.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / c as f32;
                    let rstd = 1.0 / (var + LN_EPS).sqrt();
                    for (((o, &v), &g), &bb) in yr.iter_mut().zip(xr).zip(w).zip(b) {
                        *o = (v - mean) * rstd * g + bb;
                    }
                    s[0] = mean;
                    s[1] = rstd;
                }
            },
        );
        LayerNormOut { y, stats }
    }

    fn layer_norm_backward(
        &mut self,
        dy: &Vec<f32>,
        x: Mat<'_, Vec<f32>>,
        w: &Vec<f32>,
        stats: &Vec<f32>,
    ) -> LayerNormGrads<Vec<f32>> {
        as_stored(&x, "layer_norm_backward");
        let (rows, c) = (x.rows, x.cols);
        let mut dx = vec![0.0f32; rows * c];
        let per = 16;
        for_chunks(&mut dx, per * c, rows * c, |i, dxc| {
            for (r, dxr) in dxc.chunks_mut(c).enumerate() {
                let row = i * per + r;
                let (mean, rstd) = (stats[2 * row], stats[2 * row + 1]);
                let xr = &x.buf[row * c..(row + 1) * c];
                let gr = &dy[row * c..(row + 1) * c];
                // dxhat = dy ⊙ w; dx = rstd (dxhat − mean(dxhat) − xhat · mean(dxhat ⊙ xhat)).
                let (mut m1, mut m2) = (0.0f32, 0.0f32);
                for k in 0..c {
                    let xhat = (xr[k] - mean) * rstd;
                    let d = gr[k] * w[k];
                    m1 += d;
                    m2 += d * xhat;
                }
                m1 /= c as f32;
                m2 /= c as f32;
                for k in 0..c {
                    let xhat = (xr[k] - mean) * rstd;
                    dxr[k] = rstd * (gr[k] * w[k] - m1 - xhat * m2);
                }
            }
        });
        // dw, db: column sums over the rows, in row order.
        let (mut dw, mut db) = (vec![0.0f32; c], vec![0.0f32; c]);
        for row in 0..rows {
            let (mean, rstd) = (stats[2 * row], stats[2 * row + 1]);
            let xr = &x.buf[row * c..(row + 1) * c];
            let gr = &dy[row * c..(row + 1) * c];
            for k in 0..c {
                dw[k] += gr[k] * (xr[k] - mean) * rstd;
                db[k] += gr[k];
            }
        }
        LayerNormGrads { dx, dw, db }
    }

    fn gelu(&mut self, x: &Vec<f32>) -> Vec<f32> {
        let mut y = vec![0.0f32; x.len()];
        let chunk = 1 << 14;
        for_chunks(&mut y, chunk, 8 * x.len(), |i, yc| {
            let xs = &x[i * chunk..];
            yc.iter_mut().zip(xs).for_each(|(o, &v)| *o = gelu_f32(v));
        });
        y
    }

    fn gelu_backward(&mut self, dy: &Vec<f32>, x: &Vec<f32>) -> Vec<f32> {
        assert_eq!(dy.len(), x.len(), "gelu_backward of unequal lengths");
        let mut dx = vec![0.0f32; x.len()];
        let chunk = 1 << 14;
        for_chunks(&mut dx, chunk, 8 * x.len(), |i, dc| {
            let (xs, gs) = (&x[i * chunk..], &dy[i * chunk..]);
            for ((o, &v), &g) in dc.iter_mut().zip(xs).zip(gs) {
                *o = g * gelu_grad_f32(v);
            }
        });
        dx
    }

    /// Per sequence and head, three matrix products on strided views of `qkv` (no copies):
    /// `S = Q Kᵀ/√d` over the whole square, the causal softmax of each row (zero above the
    /// diagonal), `Y_h = P V` written into the head's columns.
    fn attention(&mut self, qkv: &Vec<f32>, a: AttnShape) -> AttentionOut<Vec<f32>> {
        let (tl, c, d, nh) = (a.seq, a.width(), a.head_dim, a.heads);
        assert_eq!(qkv.len(), a.rows() * 3 * c, "attention: qkv of {a:?}");
        let mut y = vec![0.0f32; a.rows() * c];
        let mut probs = vec![0.0f32; a.probs_len()];
        let scale = a.scale();
        let work = a.batch * nh * tl * tl * d;
        // One sequence per chunk: its rows of y and its heads' probabilities.
        for_chunks2(
            &mut y,
            tl * c,
            &mut probs,
            nh * tl * tl,
            work,
            |bi, y, p| {
                let qkv = &qkv[bi * tl * 3 * c..(bi + 1) * tl * 3 * c];
                for h in 0..nh {
                    let p = &mut p[h * tl * tl..(h + 1) * tl * tl];
                    let q = Strided::new(&qkv[h * d..], 3 * c, 1);
                    let kt = Strided::new(&qkv[c + h * d..], 1, 3 * c);
                    gemm_strided(tl, d, tl, scale, q, kt, 0.0, p, tl);
                    for (t, row) in p.chunks_mut(tl).enumerate() {
                        causal_softmax(row, t);
                    }
                    let v = Strided::new(&qkv[2 * c + h * d..], 3 * c, 1);
                    gemm_strided(
                        tl,
                        tl,
                        d,
                        1.0,
                        Strided::new(p, tl, 1),
                        v,
                        0.0,
                        &mut y[h * d..],
                        c,
                    );
                }
            },
        );
        AttentionOut { y, probs }
    }

    /// Per sequence and head: `dP = dY Vᵀ`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`, then
    /// `dQ = dS K/√d`, `dK = dSᵀ Q/√d`, `dV = Pᵀ dY`, each a matrix product into the head's
    /// columns of `dqkv`.
    fn attention_backward(
        &mut self,
        dy: &Vec<f32>,
        qkv: &Vec<f32>,
        probs: &Vec<f32>,
        a: AttnShape,
    ) -> Vec<f32> {
        let (tl, c, d, nh) = (a.seq, a.width(), a.head_dim, a.heads);
        assert!(
            qkv.len() == a.rows() * 3 * c
                && dy.len() == a.rows() * c
                && probs.len() == a.probs_len(),
            "attention_backward: buffers of {a:?}"
        );
        let mut dqkv = vec![0.0f32; a.rows() * 3 * c];
        let scale = a.scale();
        let work = 4 * a.batch * nh * tl * tl * d;
        for_chunks(&mut dqkv, tl * 3 * c, work, |bi, dq| {
            let qkv = &qkv[bi * tl * 3 * c..(bi + 1) * tl * 3 * c];
            let dy = &dy[bi * tl * c..(bi + 1) * tl * c];
            let mut ds = vec![0.0f32; tl * tl];
            for h in 0..nh {
                let p = &probs[(bi * nh + h) * tl * tl..(bi * nh + h + 1) * tl * tl];
                let g = Strided::new(&dy[h * d..], c, 1);
                let vt = Strided::new(&qkv[2 * c + h * d..], 1, 3 * c);
                gemm_strided(tl, d, tl, 1.0, g, vt, 0.0, &mut ds, tl);
                for (t, (row, pr)) in ds.chunks_mut(tl).zip(p.chunks(tl)).enumerate() {
                    let dot: f32 = row[..=t].iter().zip(pr).map(|(x, y)| x * y).sum();
                    for (s, v) in row.iter_mut().enumerate() {
                        *v = if s <= t { pr[s] * (*v - dot) } else { 0.0 };
                    }
                }
                let k = Strided::new(&qkv[c + h * d..], 3 * c, 1);
                let q = Strided::new(&qkv[h * d..], 3 * c, 1);
                let dst = Strided::new(&ds, 1, tl);
                gemm_strided(
                    tl,
                    tl,
                    d,
                    scale,
                    Strided::new(&ds, tl, 1),
                    k,
                    0.0,
                    &mut dq[h * d..],
                    3 * c,
                );
                gemm_strided(tl, tl, d, scale, dst, q, 0.0, &mut dq[c + h * d..], 3 * c);
                let pt = Strided::new(p, 1, tl);
                gemm_strided(tl, tl, d, 1.0, pt, g, 0.0, &mut dq[2 * c + h * d..], 3 * c);
            }
        });
        dqkv
    }

    fn add(&mut self, a: &Vec<f32>, b: &Vec<f32>) -> Vec<f32> {
        assert_eq!(a.len(), b.len(), "add of unequal lengths");
        a.iter().zip(b).map(|(x, y)| x + y).collect()
    }

    fn add_assign(&mut self, a: &mut Vec<f32>, b: &Vec<f32>) {
        assert_eq!(a.len(), b.len(), "add_assign of unequal lengths");
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    }

    fn clip_grad_norm(&mut self, grads: &mut [Vec<f32>], sums: &Vec<f32>, max_norm: f32) {
        let s = clip_scale(sums, max_norm);
        if s < 1.0 {
            grads.iter_mut().flatten().for_each(|v| *v *= s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DenseOps;
    use crate::rng::{stream, Philox, StreamKind};

    fn normals(seed: u64, n: usize, scale: f32) -> Vec<f32> {
        let mut v = vec![0.0; n];
        Philox::new(seed).fill_normal(stream(StreamKind::Data, 1), scale, &mut v);
        v
    }

    /// `Σ r ⊙ y` in f64: the scalar whose gradient the backward passes are checked on.
    fn dot64(r: &[f32], y: &[f64]) -> f64 {
        r.iter().zip(y).map(|(&a, &b)| f64::from(a) * b).sum()
    }

    /// Central differences of `f` at `x` (f64, step `h`), coordinate by coordinate.
    fn fd(x: &[f32], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        let mut v: Vec<f64> = x.iter().map(|&a| f64::from(a)).collect();
        (0..x.len())
            .map(|i| {
                let x0 = v[i];
                v[i] = x0 + h;
                let p = f(&v);
                v[i] = x0 - h;
                let m = f(&v);
                v[i] = x0;
                (p - m) / (2.0 * h)
            })
            .collect()
    }

    fn close(what: &str, got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-3);
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (f64::from(g) - w).abs() <= tol * scale,
                "{what}[{i}]: {g} vs reference {w} (tolerance {tol} of {scale:.3e})"
            );
        }
    }

    fn gelu64(x: f64) -> f64 {
        let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
        0.5 * x * (1.0 + u.tanh())
    }

    #[test]
    fn exp_and_tanh_without_libm_are_accurate() {
        for i in -8700..=8700 {
            let x = i as f32 * 0.01;
            let want = f64::from(x).exp();
            let rel = (f64::from(exp_f32(x)) - want).abs() / want;
            assert!(rel < 4e-7, "exp({x}): {} vs {want} ({rel:.1e})", exp_f32(x));
        }
        for i in -10_000..=10_000 {
            let u = i as f32 * 1e-3;
            let err = (f64::from(tanh_f32(u)) - f64::from(u).tanh()).abs();
            assert!(err < 3e-7, "tanh({u}): error {err:.1e}");
        }
    }

    #[test]
    fn gelu_matches_the_tanh_form_and_its_derivative() {
        let mut x = normals(1, 300, 3.0);
        x.extend([0.0, -30.0, 30.0, 1e-3]);
        let y = Cpu.gelu(&x);
        let want: Vec<f64> = x.iter().map(|&v| gelu64(f64::from(v))).collect();
        close("gelu", &y, &want, 1e-6);
        let r = normals(2, x.len(), 1.0);
        let d = Cpu.gelu_backward(&r, &x);
        let want: Vec<f64> = x
            .iter()
            .zip(&r)
            .map(|(&v, &g)| {
                let v = f64::from(v);
                f64::from(g) * (gelu64(v + 1e-5) - gelu64(v - 1e-5)) / 2e-5
            })
            .collect();
        close("gelu_backward", &d, &want, 1e-5);
    }

    fn ln64(x: &[f64], w: &[f64], b: &[f64], c: usize) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        for (yr, xr) in y.chunks_mut(c).zip(x.chunks(c)) {
            let mean = xr.iter().sum::<f64>() / c as f64;
            let var = xr.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / c as f64;
            let rstd = 1.0 / (var + f64::from(LN_EPS)).sqrt();
            for k in 0..c {
                yr[k] = (xr[k] - mean) * rstd * w[k] + b[k];
            }
        }
        y
    }

    fn to64(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&a| f64::from(a)).collect()
    }

    /// LayerNorm and its three gradients against an f64 reference and its central differences
    /// (70 rows: more than one parallel chunk).
    #[test]
    fn layer_norm_forward_and_backward_match_f64() {
        let (rows, c) = (70, 24);
        let x: Vec<f32> = normals(3, rows * c, 2.0).iter().map(|v| v + 0.5).collect();
        let w: Vec<f32> = normals(4, c, 0.3).iter().map(|v| v + 1.0).collect();
        let b = normals(5, c, 0.3);
        let out = Cpu.layer_norm(Mat::new(&x, rows, c), &w, &b);
        close(
            "layer_norm",
            &out.y,
            &ln64(&to64(&x), &to64(&w), &to64(&b), c),
            1e-5,
        );
        let r = normals(6, rows * c, 1.0);
        let g = Cpu.layer_norm_backward(&r, Mat::new(&x, rows, c), &w, &out.stats);
        let (x6, w6, b6) = (to64(&x), to64(&w), to64(&b));
        close(
            "dx",
            &g.dx,
            &fd(&x, 1e-4, |v| dot64(&r, &ln64(v, &w6, &b6, c))),
            1e-5,
        );
        close(
            "dw",
            &g.dw,
            &fd(&w, 1e-4, |v| dot64(&r, &ln64(&x6, v, &b6, c))),
            1e-5,
        );
        close(
            "db",
            &g.db,
            &fd(&b, 1e-4, |v| dot64(&r, &ln64(&x6, &w6, v, c))),
            1e-5,
        );
    }

    /// Causal attention written from its definition, in f64, with the mask explicit.
    fn attention64(qkv: &[f64], a: AttnShape) -> Vec<f64> {
        let (tl, c, d) = (a.seq, a.width(), a.head_dim);
        let mut y = vec![0.0; a.rows() * c];
        let at = |b: usize, t: usize, col: usize| qkv[(b * tl + t) * 3 * c + col];
        for b in 0..a.batch {
            for h in 0..a.heads {
                for t in 0..tl {
                    let scores: Vec<f64> = (0..tl)
                        .map(|s| {
                            if s > t {
                                f64::NEG_INFINITY
                            } else {
                                (0..d)
                                    .map(|j| at(b, t, h * d + j) * at(b, s, c + h * d + j))
                                    .sum::<f64>()
                                    / (d as f64).sqrt()
                            }
                        })
                        .collect();
                    let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for j in 0..d {
                        y[(b * tl + t) * c + h * d + j] = (0..tl)
                            .map(|s| e[s] / z * at(b, s, 2 * c + h * d + j))
                            .sum();
                    }
                }
            }
        }
        y
    }

    #[test]
    fn attention_forward_and_backward_match_f64() {
        let a = AttnShape {
            batch: 3,
            seq: 7,
            heads: 2,
            head_dim: 4,
        };
        let qkv = normals(7, a.rows() * 3 * a.width(), 1.0);
        let out = Cpu.attention(&qkv, a);
        close("attention", &out.y, &attention64(&to64(&qkv), a), 1e-5);
        // The probabilities: rows sum to one, zero above the diagonal.
        for (i, row) in out.probs.chunks(a.seq).enumerate() {
            let t = i % a.seq;
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(row[t + 1..].iter().all(|&p| p == 0.0) && row[..=t].iter().all(|&p| p > 0.0));
        }
        let r = normals(8, a.rows() * a.width(), 1.0);
        let g = Cpu.attention_backward(&r, &qkv, &out.probs, a);
        let want = fd(&qkv, 1e-5, |v| dot64(&r, &attention64(v, a)));
        close("dqkv", &g, &want, 1e-5);
    }

    #[test]
    fn embedding_and_its_scatter_add() {
        let (vocab, c, batch, seq, positions) = (5, 3, 2, 4, 6);
        let wte = normals(9, vocab * c, 1.0);
        let wpe = normals(10, positions * c, 1.0);
        let tokens = vec![0.0, 4.0, 4.0, 1.0, 2.0, 0.0, 4.0, 3.0];
        let x = Cpu.embed(
            Mat::new(&wte, vocab, c),
            Mat::new(&wpe, positions, c),
            &tokens,
            batch,
            seq,
        );
        for i in 0..batch * seq {
            let (tok, t) = (tokens[i] as usize, i % seq);
            for k in 0..c {
                assert_eq!(x[i * c + k], wte[tok * c + k] + wpe[t * c + k]);
            }
        }
        let dx = normals(11, batch * seq * c, 1.0);
        let g = Cpu.embed_backward(
            Mat::new(&dx, batch * seq, c),
            &tokens,
            batch,
            vocab,
            positions,
        );
        // Token 4 appears at rows 1, 2 and 6; position 1 at rows 1 and 5; positions 4, 5 never.
        for k in 0..c {
            let want4 = dx[c + k] + dx[2 * c + k] + dx[6 * c + k];
            assert!((g.wte[4 * c + k] - want4).abs() < 1e-6);
            assert!((g.wpe[c + k] - (dx[c + k] + dx[5 * c + k])).abs() < 1e-6);
            assert_eq!(g.wpe[4 * c + k], 0.0);
            assert_eq!(g.wpe[5 * c + k], 0.0);
        }
        assert_eq!(g.wte.len(), vocab * c);
    }

    #[test]
    #[should_panic(expected = "outside a vocabulary of 5")]
    fn a_token_past_the_vocabulary_is_refused() {
        let (wte, wpe) = (vec![0.0; 10], vec![0.0; 4]);
        Cpu.embed(Mat::new(&wte, 5, 2), Mat::new(&wpe, 2, 2), &vec![5.0], 1, 1);
    }

    #[test]
    fn clipping_scales_to_the_norm_and_leaves_small_gradients() {
        let mut g = vec![vec![3.0f32, 0.0], vec![4.0]];
        let sums = Cpu.sums_of_squares(&[&g[0], &g[1]]);
        Cpu.clip_grad_norm(&mut g, &sums, 1.0);
        let norm = (g[0][0] * g[0][0] + g[1][0] * g[1][0]).sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert!((g[0][0] / g[1][0] - 0.75).abs() < 1e-6);
        let mut small = vec![vec![0.3f32]];
        let sums = Cpu.sums_of_squares(&[&small[0]]);
        Cpu.clip_grad_norm(&mut small, &sums, 1.0);
        assert_eq!(small[0][0], 0.3);
    }
}
