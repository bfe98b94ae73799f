//! The transformer family on the GPU: `TransformerOps` for [`GpuDevice`], launching
//! `shaders/transformer.wgsl`. The CPU twins are `optiscope_core::device::transformer`;
//! `tests/transformer.rs` compares them, op by op and through the whole GPT.

use bytemuck::{Pod, Zeroable};
use optiscope_core::device::dense::as_stored;
use optiscope_core::device::{
    AttentionOut, AttnShape, EmbedGrads, LayerNormGrads, LayerNormOut, Mat, TransformerOps,
};

use crate::context::GpuBuffer;
use crate::device::GpuDevice;
use crate::shaders;

/// `TfParams` of `transformer.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
struct TfParams {
    rows: u32,
    cols: u32,
    batch: u32,
    seq: u32,
    heads: u32,
    head_dim: u32,
    extra: u32,
    scalar: f32,
}

impl TfParams {
    fn len(n: usize) -> Self {
        Self {
            rows: n as u32,
            ..Self::default()
        }
    }

    fn rows(rows: usize, cols: usize) -> Self {
        Self {
            rows: rows as u32,
            cols: cols as u32,
            ..Self::default()
        }
    }

    fn attention(a: AttnShape) -> Self {
        Self {
            rows: a.rows() as u32,
            cols: a.width() as u32,
            batch: a.batch as u32,
            seq: a.seq as u32,
            heads: a.heads as u32,
            head_dim: a.head_dim as u32,
            extra: 0,
            scalar: a.scale(),
        }
    }
}

impl GpuDevice {
    fn tf(
        &mut self,
        entry: &'static str,
        p: TfParams,
        bufs: &[(u32, &wgpu::Buffer)],
        threads: usize,
    ) {
        if threads > 0 {
            self.launch_flat(
                shaders::TRANSFORMER,
                entry,
                bytemuck::bytes_of(&p),
                bufs,
                threads,
            );
        }
    }
}

impl TransformerOps for GpuDevice {
    fn embed(
        &mut self,
        wte: Mat<'_, GpuBuffer>,
        wpe: Mat<'_, GpuBuffer>,
        tokens: &GpuBuffer,
        batch: usize,
        seq: usize,
    ) -> GpuBuffer {
        as_stored(&wte, "embed");
        as_stored(&wpe, "embed");
        let c = wte.cols;
        assert!(
            wpe.cols == c && seq <= wpe.rows && tokens.len >= batch * seq,
            "embed: wte {}×{c}, wpe {}×{}, {batch}×{seq} tokens",
            wte.rows,
            wpe.rows,
            wpe.cols
        );
        let x = self.ctx.zeros(batch * seq * c);
        let p = TfParams {
            seq: seq as u32,
            extra: wte.rows as u32,
            ..TfParams::rows(batch * seq, c)
        };
        let bufs = [
            (1, &wte.buf.buffer),
            (2, &wpe.buf.buffer),
            (3, &tokens.buffer),
            (5, &x.buffer),
        ];
        self.tf("embed", p, &bufs, x.len);
        x
    }

    fn embed_backward(
        &mut self,
        dx: Mat<'_, GpuBuffer>,
        tokens: &GpuBuffer,
        batch: usize,
        vocab: usize,
        positions: usize,
    ) -> EmbedGrads<GpuBuffer> {
        as_stored(&dx, "embed_backward");
        let (rows, c) = (dx.rows, dx.cols);
        assert!(
            batch > 0 && rows % batch == 0 && rows / batch <= positions,
            "embed_backward: {rows} rows in {batch} sequences, {positions} positions"
        );
        let wte = self.ctx.zeros(vocab * c);
        let wpe = self.ctx.zeros(positions * c);
        let base = TfParams {
            batch: batch as u32,
            seq: (rows / batch) as u32,
            ..TfParams::rows(rows, c)
        };
        let p = TfParams {
            extra: vocab as u32,
            ..base
        };
        // The rows of each token first (one workgroup), then a thread per (token, column) sums
        // only its own rows: O(rows · C) instead of O(vocab · rows · C).
        assert!(
            vocab + 1 + rows < 1 << 24,
            "embed_backward: {rows} rows and {vocab} tokens do not fit f32 indices"
        );
        let index = self.ctx.zeros(vocab + 1 + rows);
        let bufs = [(3, &tokens.buffer), (5, &index.buffer)];
        self.tf("embed_token_rows", p, &bufs, 256);
        let bufs = [(1, &dx.buf.buffer), (2, &index.buffer), (5, &wte.buffer)];
        self.tf("embed_backward_wte", p, &bufs, wte.len);
        let p = TfParams {
            extra: positions as u32,
            ..base
        };
        let bufs = [(1, &dx.buf.buffer), (5, &wpe.buffer)];
        self.tf("embed_backward_wpe", p, &bufs, wpe.len);
        EmbedGrads { wte, wpe }
    }

    fn layer_norm(
        &mut self,
        x: Mat<'_, GpuBuffer>,
        w: &GpuBuffer,
        b: &GpuBuffer,
    ) -> LayerNormOut<GpuBuffer> {
        as_stored(&x, "layer_norm");
        let (rows, c) = (x.rows, x.cols);
        assert!(
            w.len == c && b.len == c,
            "layer_norm: gain or bias not of width {c}"
        );
        let y = self.ctx.zeros(rows * c);
        let stats = self.ctx.zeros(2 * rows);
        let bufs = [
            (1, &x.buf.buffer),
            (2, &w.buffer),
            (3, &b.buffer),
            (5, &y.buffer),
            (6, &stats.buffer),
        ];
        self.tf("layer_norm", TfParams::rows(rows, c), &bufs, rows);
        LayerNormOut { y, stats }
    }

    fn layer_norm_backward(
        &mut self,
        dy: &GpuBuffer,
        x: Mat<'_, GpuBuffer>,
        w: &GpuBuffer,
        stats: &GpuBuffer,
    ) -> LayerNormGrads<GpuBuffer> {
        as_stored(&x, "layer_norm_backward");
        let (rows, c) = (x.rows, x.cols);
        let dx = self.ctx.zeros(rows * c);
        let dw = self.ctx.zeros(c);
        let db = self.ctx.zeros(c);
        let p = TfParams::rows(rows, c);
        let bufs = [
            (1, &dy.buffer),
            (2, &x.buf.buffer),
            (3, &w.buffer),
            (4, &stats.buffer),
            (5, &dx.buffer),
        ];
        self.tf("layer_norm_dx", p, &bufs, rows);
        let bufs = [
            (1, &dy.buffer),
            (2, &x.buf.buffer),
            (4, &stats.buffer),
            (5, &dw.buffer),
            (6, &db.buffer),
        ];
        self.tf("layer_norm_dwdb", p, &bufs, c);
        LayerNormGrads { dx, dw, db }
    }

    fn gelu(&mut self, x: &GpuBuffer) -> GpuBuffer {
        let y = self.ctx.zeros(x.len);
        let bufs = [(1, &x.buffer), (5, &y.buffer)];
        self.tf("gelu", TfParams::len(x.len), &bufs, x.len);
        y
    }

    fn gelu_backward(&mut self, dy: &GpuBuffer, x: &GpuBuffer) -> GpuBuffer {
        assert_eq!(dy.len, x.len, "gelu_backward of unequal lengths");
        let dx = self.ctx.zeros(x.len);
        let bufs = [(1, &dy.buffer), (2, &x.buffer), (5, &dx.buffer)];
        self.tf("gelu_backward", TfParams::len(x.len), &bufs, x.len);
        dx
    }

    fn attention(&mut self, qkv: &GpuBuffer, a: AttnShape) -> AttentionOut<GpuBuffer> {
        let c = a.width();
        assert_eq!(qkv.len, a.rows() * 3 * c, "attention: qkv of {a:?}");
        let probs = self.ctx.zeros(a.probs_len());
        let y = self.ctx.zeros(a.rows() * c);
        let p = TfParams::attention(a);
        let bufs = [(1, &qkv.buffer), (5, &probs.buffer)];
        self.tf("attn_probs", p, &bufs, a.batch * a.heads * a.seq);
        let bufs = [(1, &qkv.buffer), (2, &probs.buffer), (5, &y.buffer)];
        self.tf("attn_out", p, &bufs, y.len);
        AttentionOut { y, probs }
    }

    fn attention_backward(
        &mut self,
        dy: &GpuBuffer,
        qkv: &GpuBuffer,
        probs: &GpuBuffer,
        a: AttnShape,
    ) -> GpuBuffer {
        let c = a.width();
        assert!(
            qkv.len == a.rows() * 3 * c && dy.len == a.rows() * c && probs.len == a.probs_len(),
            "attention_backward: buffers of {a:?}"
        );
        let p = TfParams::attention(a);
        let ds = self.ctx.zeros(a.probs_len());
        let bufs = [
            (1, &dy.buffer),
            (2, &qkv.buffer),
            (3, &probs.buffer),
            (5, &ds.buffer),
        ];
        self.tf("attn_dscores", p, &bufs, a.batch * a.heads * a.seq);
        let dqkv = self.ctx.zeros(a.rows() * 3 * c);
        let bufs = [
            (1, &ds.buffer),
            (2, &qkv.buffer),
            (3, &probs.buffer),
            (4, &dy.buffer),
            (5, &dqkv.buffer),
        ];
        self.tf("attn_dqkv", p, &bufs, dqkv.len);
        dqkv
    }

    fn add(&mut self, a: &GpuBuffer, b: &GpuBuffer) -> GpuBuffer {
        assert_eq!(a.len, b.len, "add of unequal lengths");
        let out = self.ctx.zeros(a.len);
        let bufs = [(1, &a.buffer), (2, &b.buffer), (5, &out.buffer)];
        self.tf("add", TfParams::len(a.len), &bufs, a.len);
        out
    }

    fn add_assign(&mut self, a: &mut GpuBuffer, b: &GpuBuffer) {
        assert_eq!(a.len, b.len, "add_assign of unequal lengths");
        let bufs = [(1, &b.buffer), (5, &a.buffer)];
        self.tf("add_assign", TfParams::len(a.len), &bufs, a.len);
    }

    fn clip_grad_norm(&mut self, grads: &mut [GpuBuffer], sums: &GpuBuffer, max_norm: f32) {
        assert_eq!(sums.len, grads.len(), "clip_grad_norm: one sum per buffer");
        for g in grads.iter() {
            let p = TfParams {
                extra: sums.len as u32,
                scalar: max_norm,
                ..TfParams::len(g.len)
            };
            let bufs = [(1, &sums.buffer), (5, &g.buffer)];
            self.tf("clip_grad_norm", p, &bufs, g.len);
        }
    }
}

/// This module's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    use crate::layout::uniform_layout;
    vec![
        uniform_layout!(TfParams in shaders::TRANSFORMER, "TfParams" {
            rows, cols, batch, seq, heads, head_dim, extra, scalar
        }),
    ]
}
