//! nanoGPT's `GPT` (karpathy/nanoGPT `model.py`, `bias=True`, `dropout=0`), forward and backward
//! written by hand over the device's kernels: token embedding `wte` plus learned position
//! embedding `wpe`; `n_layer` pre-LayerNorm blocks `x ← x + attn(ln_1(x))`, `x ← x +
//! mlp(ln_2(x))` with a fused `c_attn` (`[3C, C]`), causal softmax attention scaled by
//! `1/√(C/n_head)`, `c_proj`, an MLP `c_fc` (`[4C, C]`) → GELU (tanh form) → `c_proj`; a final
//! `ln_f`; logits `ln_f(x)·wteᵀ` (the head tied to `wte`). Weights are `[out, in]` row-major.
//!
//! Parameters carry nanoGPT's `state_dict` names (`transformer.h.0.attn.c_attn.weight`, …), in
//! its order, so a checkpoint loads into `GPT` by name; `lm_head.weight` is `wte` and is written
//! as a copy. The 2-D hidden matrices are [`ParamRole::Matrix`] (Muon and AMUSE orthogonalize
//! them); embeddings, gains and biases are [`ParamRole::Vector`] (their auxiliary AdamW), the
//! grouping of modded-nanogpt.

use serde::{Deserialize, Serialize};

use super::Model;
use crate::config::ConfigError;
use crate::device::{
    Activation, AttentionOut, AttnShape, Device, EmbedGrads, LayerNormGrads, LayerNormOut,
    LinearGrads, Mat,
};
use crate::rng::{stream, Philox, StreamKind};
use crate::tensor::{Param, ParamRole, Tensor};

/// The sizes of a GPT (nanoGPT's `GPTConfig` with `bias=True`, `dropout=0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GptConfig {
    /// Tokens in the vocabulary (characters, for the character-level model).
    pub vocab_size: usize,
    /// The longest context (rows of `wpe`).
    pub block_size: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads (must divide `n_embd`).
    pub n_head: usize,
    /// The model width C.
    pub n_embd: usize,
}

/// The largest width, context, depth and vocabulary a config may ask for (far above what the
/// presets use; a bound so that a crafted file cannot ask for terabytes).
pub const MAX_GPT_WIDTH: usize = 4096;
/// The longest context.
pub const MAX_GPT_CONTEXT: usize = 8192;
/// The most blocks.
pub const MAX_GPT_LAYERS: usize = 64;
/// The largest vocabulary.
pub const MAX_GPT_VOCAB: usize = 1 << 20;

/// Parameters per block, in nanoGPT's order.
const PER_LAYER: usize = 12;
/// Activations kept per block by the forward pass besides the block's output (see `forward`).
const ACTS_PER_LAYER: usize = 10;

impl GptConfig {
    /// Every size checked against its bound, and `n_head` dividing `n_embd`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |field: &str, v: usize, max: usize| {
            if (1..=max).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError::invalid(
                    field,
                    v,
                    format!("must be in 1..={max}"),
                ))
            }
        };
        check("vocab_size", self.vocab_size, MAX_GPT_VOCAB)?;
        check("block_size", self.block_size, MAX_GPT_CONTEXT)?;
        check("n_layer", self.n_layer, MAX_GPT_LAYERS)?;
        check("n_embd", self.n_embd, MAX_GPT_WIDTH)?;
        check("n_head", self.n_head, self.n_embd)?;
        if self.n_embd % self.n_head != 0 {
            return Err(ConfigError::invalid(
                "n_head",
                self.n_head,
                format!("must divide n_embd = {}", self.n_embd),
            ));
        }
        Ok(())
    }

    /// Parameter values (with `wte` counted once), as nanoGPT's `get_num_params(False)` + `wpe`.
    pub fn num_params(&self) -> usize {
        let c = self.n_embd;
        let block = 2 * c
            + (3 * c * c + 3 * c)
            + (c * c + c)
            + 2 * c
            + (4 * c * c + 4 * c)
            + (4 * c * c + c);
        self.vocab_size * c + self.block_size * c + self.n_layer * block + 2 * c
    }

    /// The names, shapes and roles of every parameter, in nanoGPT's `state_dict` order (without
    /// the tied `lm_head.weight`).
    pub fn param_specs(&self) -> Vec<(String, Vec<usize>, ParamRole)> {
        let c = self.n_embd;
        let mut out = vec![
            (
                "transformer.wte.weight".to_string(),
                vec![self.vocab_size, c],
                ParamRole::Vector,
            ),
            (
                "transformer.wpe.weight".to_string(),
                vec![self.block_size, c],
                ParamRole::Vector,
            ),
        ];
        for i in 0..self.n_layer {
            let p = |s: &str| format!("transformer.h.{i}.{s}");
            out.extend([
                (p("ln_1.weight"), vec![c], ParamRole::Vector),
                (p("ln_1.bias"), vec![c], ParamRole::Vector),
                (p("attn.c_attn.weight"), vec![3 * c, c], ParamRole::Matrix),
                (p("attn.c_attn.bias"), vec![3 * c], ParamRole::Vector),
                (p("attn.c_proj.weight"), vec![c, c], ParamRole::Matrix),
                (p("attn.c_proj.bias"), vec![c], ParamRole::Vector),
                (p("ln_2.weight"), vec![c], ParamRole::Vector),
                (p("ln_2.bias"), vec![c], ParamRole::Vector),
                (p("mlp.c_fc.weight"), vec![4 * c, c], ParamRole::Matrix),
                (p("mlp.c_fc.bias"), vec![4 * c], ParamRole::Vector),
                (p("mlp.c_proj.weight"), vec![c, 4 * c], ParamRole::Matrix),
                (p("mlp.c_proj.bias"), vec![c], ParamRole::Vector),
            ]);
        }
        out.push(("transformer.ln_f.weight".into(), vec![c], ParamRole::Vector));
        out.push(("transformer.ln_f.bias".into(), vec![c], ParamRole::Vector));
        out
    }
}

/// A GPT run over sequences of `seq` positions (`seq ≤ block_size`; training uses the block
/// size, sampling the prompt's length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpt {
    /// The sizes.
    pub cfg: GptConfig,
    /// Positions per sequence in a forward pass.
    pub seq: usize,
}

/// Indices into the parameter list.
fn p_layer(l: usize, k: usize) -> usize {
    2 + l * PER_LAYER + k
}

// Offsets of a block's parameters.
const LN1_W: usize = 0;
const LN1_B: usize = 1;
const ATTN_W: usize = 2;
const ATTN_B: usize = 3;
const APROJ_W: usize = 4;
const APROJ_B: usize = 5;
const LN2_W: usize = 6;
const LN2_B: usize = 7;
const FC_W: usize = 8;
const FC_B: usize = 9;
const MPROJ_W: usize = 10;
const MPROJ_B: usize = 11;

// Offsets of a block's activations (after acts[0] = tokens, acts[1] = the embedding).
const A_LN1: usize = 0;
const A_LN1_STATS: usize = 1;
const A_QKV: usize = 2;
const A_ATT: usize = 3;
const A_PROBS: usize = 4;
const A_MID: usize = 5;
const A_LN2: usize = 6;
const A_LN2_STATS: usize = 7;
const A_FC: usize = 8;
const A_GELU: usize = 9;

impl Gpt {
    /// The model of `cfg` over full contexts.
    pub fn new(cfg: GptConfig) -> Self {
        Self {
            cfg,
            seq: cfg.block_size,
        }
    }

    /// The same model over sequences of `seq` positions (1..=block_size).
    pub fn with_seq(self, seq: usize) -> Self {
        assert!(
            (1..=self.cfg.block_size).contains(&seq),
            "a sequence of {seq} positions with a block size of {}",
            self.cfg.block_size
        );
        Self { seq, ..self }
    }

    fn attn_shape(&self, batch: usize) -> AttnShape {
        AttnShape {
            batch,
            seq: self.seq,
            heads: self.cfg.n_head,
            head_dim: self.cfg.n_embd / self.cfg.n_head,
        }
    }

    /// nanoGPT's initialisation from `seed`: every linear weight and both embeddings
    /// `N(0, 0.02²)`, the residual projections (`c_proj`) `N(0, (0.02/√(2·n_layer))²)`, biases 0,
    /// LayerNorm gains 1. Each tensor draws from its own Philox stream (id = its index).
    pub fn init(&self, seed: u64) -> Vec<Param> {
        let rng = Philox::new(seed);
        let proj_std = 0.02 / (2.0 * self.cfg.n_layer as f32).sqrt();
        self.cfg
            .param_specs()
            .into_iter()
            .enumerate()
            .map(|(i, (name, shape, role))| {
                let len: usize = shape.iter().product();
                let mut data = vec![0.0f32; len];
                if name.ends_with("ln_1.weight")
                    || name.ends_with("ln_2.weight")
                    || name.ends_with("ln_f.weight")
                {
                    data.fill(1.0);
                } else if shape.len() == 2 {
                    let std = if name.ends_with("c_proj.weight") {
                        proj_std
                    } else {
                        0.02
                    };
                    rng.fill_normal(stream(StreamKind::Init, i as u32), std, &mut data);
                }
                Param {
                    name,
                    value: Tensor::sized(shape, data),
                    role,
                }
            })
            .collect()
    }
}

impl<D: Device> Model<D> for Gpt {
    fn name(&self) -> &'static str {
        "gpt"
    }

    fn layer_widths(&self) -> Vec<usize> {
        let mut w = vec![self.cfg.vocab_size];
        w.extend(std::iter::repeat_n(self.cfg.n_embd, self.cfg.n_layer));
        w.push(self.cfg.vocab_size);
        w
    }

    fn init(&self, seed: u64) -> Vec<Param> {
        Gpt::init(self, seed)
    }

    fn weight_matrices(&self) -> Vec<usize> {
        (0..self.cfg.n_layer)
            .flat_map(|l| [ATTN_W, APROJ_W, FC_W, MPROJ_W].map(|k| p_layer(l, k)))
            .collect()
    }

    /// The activations: `[tokens, x₀ = embedding]`, then per block `[ln_1(x), its statistics,
    /// qkv, attention output, attention probabilities, x + attn, ln_2(·), its statistics, c_fc
    /// output, GELU output, the block's output]`, then `[ln_f(x_L), its statistics, logits]`. `x` holds the
    /// tokens (as f32), `n = batch · seq` of them.
    fn forward(&self, dev: &mut D, params: &[&D::Buf], x: D::Buf, n: usize) -> Vec<D::Buf> {
        let (c, v, t) = (self.cfg.n_embd, self.cfg.vocab_size, self.seq);
        assert!(n % t == 0, "{n} tokens are not whole sequences of {t}");
        let batch = n / t;
        let a = self.attn_shape(batch);
        let wte = Mat::new(params[0], v, c);
        let wpe = Mat::new(params[1], self.cfg.block_size, c);
        let x0 = dev.embed(wte, wpe, &x, batch, t);
        let mut acts = Vec::with_capacity(2 + ACTS_PER_LAYER * self.cfg.n_layer + 4);
        acts.push(x);
        acts.push(x0);
        let mut x_idx = 1;
        for l in 0..self.cfg.n_layer {
            let w = |k: usize| params[p_layer(l, k)];
            let LayerNormOut { y: ln1, stats: s1 } =
                dev.layer_norm(Mat::new(&acts[x_idx], n, c), w(LN1_W), w(LN1_B));
            let qkv = dev.linear(
                Mat::new(&ln1, n, c),
                Mat::new(w(ATTN_W), 3 * c, c),
                w(ATTN_B),
                Activation::Identity,
            );
            let AttentionOut { y: att, probs } = dev.attention(&qkv, a);
            let proj = dev.linear(
                Mat::new(&att, n, c),
                Mat::new(w(APROJ_W), c, c),
                w(APROJ_B),
                Activation::Identity,
            );
            let mid = dev.add(&acts[x_idx], &proj);
            let LayerNormOut { y: ln2, stats: s2 } =
                dev.layer_norm(Mat::new(&mid, n, c), w(LN2_W), w(LN2_B));
            let fc = dev.linear(
                Mat::new(&ln2, n, c),
                Mat::new(w(FC_W), 4 * c, c),
                w(FC_B),
                Activation::Identity,
            );
            let g = dev.gelu(&fc);
            let mlp = dev.linear(
                Mat::new(&g, n, 4 * c),
                Mat::new(w(MPROJ_W), c, 4 * c),
                w(MPROJ_B),
                Activation::Identity,
            );
            let out = dev.add(&mid, &mlp);
            // The block's output, the next block's input, is kept after its activations.
            acts.extend([ln1, s1, qkv, att, probs, mid, ln2, s2, fc, g, out]);
            x_idx = acts.len() - 1;
        }
        let nf = 2 + PER_LAYER * self.cfg.n_layer;
        let LayerNormOut { y: lnf, stats: sf } =
            dev.layer_norm(Mat::new(&acts[x_idx], n, c), params[nf], params[nf + 1]);
        let logits = dev.matmul(Mat::new(&lnf, n, c), wte.t());
        acts.extend([lnf, sf, logits]);
        acts
    }

    fn backward(
        &self,
        dev: &mut D,
        params: &[&D::Buf],
        acts: &[D::Buf],
        d_out: D::Buf,
        n: usize,
    ) -> Vec<D::Buf> {
        let (c, v, t) = (self.cfg.n_embd, self.cfg.vocab_size, self.seq);
        let batch = n / t;
        let a = self.attn_shape(batch);
        let layers = self.cfg.n_layer;
        // Block l's input is acts[1] for l = 0, else the output kept after block l−1's
        // activations; block l's activations start at 2 + l·(ACTS_PER_LAYER + 1).
        let stride = ACTS_PER_LAYER + 1;
        let act = |l: usize, k: usize| &acts[2 + l * stride + k];
        let input = |l: usize| {
            if l == 0 {
                &acts[1]
            } else {
                &acts[2 + (l - 1) * stride + ACTS_PER_LAYER]
            }
        };
        let last = 2 + layers * stride;
        let (x_last, lnf, sf) = (&acts[last - 1], &acts[last], &acts[last + 1]);
        let nf = 2 + PER_LAYER * layers;
        let mut grads: Vec<Option<D::Buf>> = (0..nf + 2).map(|_| None).collect();

        // Head: logits = lnf · wteᵀ.
        let wte_head = dev.matmul(Mat::new(&d_out, n, v).t(), Mat::new(lnf, n, c));
        let d_lnf = dev.matmul(Mat::new(&d_out, n, v), Mat::new(params[0], v, c));
        let LayerNormGrads { mut dx, dw, db } =
            dev.layer_norm_backward(&d_lnf, Mat::new(x_last, n, c), params[nf], sf);
        grads[nf] = Some(dw);
        grads[nf + 1] = Some(db);
        for l in (0..layers).rev() {
            let w = |k: usize| params[p_layer(l, k)];
            // x_out = mid + c_proj(gelu(c_fc(ln_2(mid)))).
            let LinearGrads { weight, bias } =
                dev.linear_grads(Mat::new(act(l, A_GELU), n, 4 * c), Mat::new(&dx, n, c));
            grads[p_layer(l, MPROJ_W)] = Some(weight);
            grads[p_layer(l, MPROJ_B)] = Some(bias);
            let d_g = dev.linear_input_grad(Mat::new(&dx, n, c), Mat::new(w(MPROJ_W), c, 4 * c));
            let d_fc = dev.gelu_backward(&d_g, act(l, A_FC));
            let LinearGrads { weight, bias } =
                dev.linear_grads(Mat::new(act(l, A_LN2), n, c), Mat::new(&d_fc, n, 4 * c));
            grads[p_layer(l, FC_W)] = Some(weight);
            grads[p_layer(l, FC_B)] = Some(bias);
            let d_ln2 =
                dev.linear_input_grad(Mat::new(&d_fc, n, 4 * c), Mat::new(w(FC_W), 4 * c, c));
            let g2 = dev.layer_norm_backward(
                &d_ln2,
                Mat::new(act(l, A_MID), n, c),
                w(LN2_W),
                act(l, A_LN2_STATS),
            );
            grads[p_layer(l, LN2_W)] = Some(g2.dw);
            grads[p_layer(l, LN2_B)] = Some(g2.db);
            dev.add_assign(&mut dx, &g2.dx);
            // mid = x_in + c_proj(attention(c_attn(ln_1(x_in)))).
            let LinearGrads { weight, bias } =
                dev.linear_grads(Mat::new(act(l, A_ATT), n, c), Mat::new(&dx, n, c));
            grads[p_layer(l, APROJ_W)] = Some(weight);
            grads[p_layer(l, APROJ_B)] = Some(bias);
            let d_att = dev.linear_input_grad(Mat::new(&dx, n, c), Mat::new(w(APROJ_W), c, c));
            let d_qkv = dev.attention_backward(&d_att, act(l, A_QKV), act(l, A_PROBS), a);
            let LinearGrads { weight, bias } =
                dev.linear_grads(Mat::new(act(l, A_LN1), n, c), Mat::new(&d_qkv, n, 3 * c));
            grads[p_layer(l, ATTN_W)] = Some(weight);
            grads[p_layer(l, ATTN_B)] = Some(bias);
            let d_ln1 =
                dev.linear_input_grad(Mat::new(&d_qkv, n, 3 * c), Mat::new(w(ATTN_W), 3 * c, c));
            let g1 = dev.layer_norm_backward(
                &d_ln1,
                Mat::new(input(l), n, c),
                w(LN1_W),
                act(l, A_LN1_STATS),
            );
            grads[p_layer(l, LN1_W)] = Some(g1.dw);
            grads[p_layer(l, LN1_B)] = Some(g1.db);
            dev.add_assign(&mut dx, &g1.dx);
        }
        let EmbedGrads {
            wte: mut d_wte,
            wpe,
        } = dev.embed_backward(Mat::new(&dx, n, c), &acts[0], batch, v, self.cfg.block_size);
        dev.add_assign(&mut d_wte, &wte_head);
        grads[0] = Some(d_wte);
        grads[1] = Some(wpe);
        grads
            .into_iter()
            .enumerate()
            .map(|(i, g)| g.unwrap_or_else(|| unreachable!("gradient {i} of the GPT not computed")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Cpu;
    use crate::models::loss::{Loss, SoftmaxCrossEntropy};

    fn tiny() -> GptConfig {
        GptConfig {
            vocab_size: 7,
            block_size: 6,
            n_layer: 2,
            n_head: 2,
            n_embd: 8,
        }
    }

    /// The mean cross-entropy of the next tokens in f64 from the f32 logits.
    fn loss_of(m: &Gpt, params: &[Vec<f32>], x: &[f32], y: &[f32]) -> f64 {
        let refs: Vec<&Vec<f32>> = params.iter().collect();
        let acts = Model::<Cpu>::forward(m, &mut Cpu, &refs, x.to_vec(), x.len());
        let v = m.cfg.vocab_size;
        let logits = acts.last().unwrap();
        logits
            .chunks(v)
            .zip(y)
            .map(|(row, &label)| {
                let row: Vec<f64> = row.iter().map(|&a| f64::from(a)).collect();
                let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                mx + row.iter().map(|a| (a - mx).exp()).sum::<f64>().ln() - row[label as usize]
            })
            .sum::<f64>()
            / y.len() as f64
    }

    /// Every gradient of the whole model against central differences of its loss, tensor by
    /// tensor (max error over the tensor's largest gradient ≤ 2 %), from weights scaled well past
    /// nanoGPT's 0.02 so that every path carries signal (a wrong or missing term is an O(1)
    /// error). Two layers, two heads, a sequence shorter than the block size.
    #[test]
    fn gradients_match_finite_differences() {
        let cfg = tiny();
        let m = Gpt::new(cfg).with_seq(5);
        let mut params: Vec<Vec<f32>> =
            m.init(3).into_iter().map(|p| p.value.into_data()).collect();
        // Larger weights and non-trivial gains and biases, deterministically.
        let mut noise = vec![0.0f32; 4096];
        Philox::new(9).fill_normal(stream(StreamKind::Data, 0), 0.3, &mut noise);
        for (i, p) in params.iter_mut().enumerate() {
            for (j, v) in p.iter_mut().enumerate() {
                *v = *v * 10.0 + noise[(i * 131 + j) % noise.len()];
            }
        }
        let x = vec![0.0, 3.0, 6.0, 1.0, 1.0, 5.0, 2.0, 4.0, 0.0, 6.0];
        let y = vec![3.0, 6.0, 1.0, 1.0, 2.0, 2.0, 4.0, 0.0, 6.0, 5.0];
        let refs: Vec<&Vec<f32>> = params.iter().collect();
        let acts = Model::<Cpu>::forward(&m, &mut Cpu, &refs, x.clone(), x.len());
        let mut loss = SoftmaxCrossEntropy {
            classes: cfg.vocab_size,
        };
        let out = loss.loss(&mut Cpu, acts.last().unwrap(), &y, y.len());
        let grads = Model::<Cpu>::backward(&m, &mut Cpu, &refs, &acts, out.d_output, x.len());
        let specs = cfg.param_specs();
        assert_eq!(grads.len(), specs.len());
        for (ti, g) in grads.iter().enumerate() {
            assert_eq!(g.len(), params[ti].len(), "{}: length", specs[ti].0);
            let mut fd = vec![0.0f64; g.len()];
            for i in 0..g.len() {
                let h = 1e-2f32;
                let (mut plus, mut minus) = (params.clone(), params.clone());
                plus[ti][i] += h;
                minus[ti][i] -= h;
                let dx = f64::from(plus[ti][i]) - f64::from(minus[ti][i]);
                fd[i] = (loss_of(&m, &plus, &x, &y) - loss_of(&m, &minus, &x, &y)) / dx;
            }
            let scale = fd.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            let err = g
                .iter()
                .zip(&fd)
                .fold(0.0f64, |a, (&an, &f)| a.max((f64::from(an) - f).abs()));
            // Positions past the sequence never reach wpe's last row: its gradient is 0.
            if specs[ti].0 == "transformer.wpe.weight" {
                assert!(g[5 * cfg.n_embd..].iter().all(|&v| v == 0.0));
            }
            assert!(scale > 1e-4, "{}: no signal ({scale:e})", specs[ti].0);
            assert!(
                err <= 2e-2 * scale,
                "{}: backward vs finite differences, error {err:.3e} of {scale:.3e}",
                specs[ti].0
            );
        }
    }

    #[test]
    fn names_shapes_and_counts_follow_nanogpt() {
        let cfg = GptConfig {
            vocab_size: 65,
            block_size: 64,
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
        };
        let specs = cfg.param_specs();
        assert_eq!(specs.len(), 2 + 12 * 4 + 2);
        assert_eq!(specs[4].0, "transformer.h.0.attn.c_attn.weight");
        assert_eq!(specs[4].1, vec![384, 128]);
        assert_eq!(specs[12].0, "transformer.h.0.mlp.c_proj.weight");
        assert_eq!(specs[12].1, vec![128, 512]);
        let total: usize = specs.iter().map(|s| s.1.iter().product::<usize>()).sum();
        assert_eq!(total, cfg.num_params());
        // nanoGPT prints "number of parameters: 0.80M" for the baby config (wpe excluded):
        // 65·128 + 4·198 272 + 256.
        assert_eq!(total - 64 * 128, 801_664);
        let m = Gpt::new(cfg);
        let mats = Model::<Cpu>::weight_matrices(&m);
        assert_eq!(mats.len(), 16);
        assert!(mats.iter().all(|&i| specs[i].2 == ParamRole::Matrix));
        let init = m.init(0);
        let std = |i: usize| {
            let d = init[i].value.data();
            (d.iter().map(|v| v * v).sum::<f32>() / d.len() as f32).sqrt()
        };
        assert!((std(4) - 0.02).abs() < 1e-3);
        assert!((std(12) - 0.02 / 8f32.sqrt()).abs() < 5e-4);
        assert!(init[2].value.data().iter().all(|&v| v == 1.0));
        assert!(init[3].value.data().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn configs_out_of_bounds_are_refused() {
        let bad = GptConfig {
            n_head: 3,
            ..tiny()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("must divide n_embd = 8"));
        let bad = GptConfig {
            block_size: 0,
            ..tiny()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("block_size"));
        tiny().validate().unwrap();
    }
}
