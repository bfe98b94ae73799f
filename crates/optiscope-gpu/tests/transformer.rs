//! The transformer family (`core/src/device/transformer.rs` ↔ `shaders/transformer.wgsl` ↔
//! `gpu/src/ops/transformer.rs`): every op against its CPU twin on lavapipe, and the whole GPT's
//! forward and backward (two layers, every gradient) against the CPU. Both sides sum in the same
//! order; the tolerances allow for fused multiply-adds and the GPU's exp and tanh (1e-5 for
//! single ops; 5e-4 of each tensor's largest entry for the whole model's gradients, where the
//! matrix products' different summation orders compound through two blocks).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{close_elementwise, down, gpu, gpu_device, random, rel_err};
use optiscope_core::device::{AttnShape, Cpu, DenseOps, Mat, Storage, TransformerOps};
use optiscope_core::models::{Gpt, GptConfig, Loss, Model, SoftmaxCrossEntropy};

fn tokens(n: usize, vocab: usize, seed: u64) -> Vec<f32> {
    random(seed, n, 1.0)
        .iter()
        .map(|v| ((v.abs() * 1000.0) as usize % vocab) as f32)
        .collect()
}

#[test]
fn embedding_forward_and_scatter_add_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let (vocab, c, batch, seq, positions) = (11, 24, 3, 9, 12);
    let wte = random(1, vocab * c, 1.0);
    let wpe = random(2, positions * c, 1.0);
    let tok = tokens(batch * seq, vocab, 3);
    let want = Cpu.embed(
        Mat::new(&wte, vocab, c),
        Mat::new(&wpe, positions, c),
        &tok,
        batch,
        seq,
    );
    let (gwte, gwpe, gtok) = (dev.upload(&wte), dev.upload(&wpe), dev.upload(&tok));
    let x = dev.embed(
        Mat::new(&gwte, vocab, c),
        Mat::new(&gwpe, positions, c),
        &gtok,
        batch,
        seq,
    );
    assert_eq!(
        down(&mut dev, &x),
        want,
        "embedding: a sum of two values is exact"
    );
    let dx = random(4, batch * seq * c, 1.0);
    let want = Cpu.embed_backward(Mat::new(&dx, batch * seq, c), &tok, batch, vocab, positions);
    let gdx = dev.upload(&dx);
    let got = dev.embed_backward(
        Mat::new(&gdx, batch * seq, c),
        &gtok,
        batch,
        vocab,
        positions,
    );
    close_elementwise("dwte", &down(&mut dev, &got.wte), &want.wte, 1e-6);
    close_elementwise("dwpe", &down(&mut dev, &got.wpe), &want.wpe, 1e-6);
    // A vocabulary wider than the index kernel's workgroup (tokens strided over its threads),
    // most tokens absent, one repeated in many rows: the rows of each token gathered in order
    // give the CPU's sums exactly.
    let (vocab, c, batch, seq) = (300, 8, 4, 16);
    let mut tok = tokens(batch * seq, vocab, 9);
    tok[10..30].fill(299.0);
    let dx = random(10, batch * seq * c, 1.0);
    let want = Cpu.embed_backward(Mat::new(&dx, batch * seq, c), &tok, batch, vocab, seq);
    let (gdx, gtok) = (dev.upload(&dx), dev.upload(&tok));
    let got = dev.embed_backward(Mat::new(&gdx, batch * seq, c), &gtok, batch, vocab, seq);
    assert_eq!(down(&mut dev, &got.wte), want.wte, "dwte, vocab {vocab}");
    assert_eq!(down(&mut dev, &got.wpe), want.wpe, "dwpe, vocab {vocab}");
    assert!(dev.take_error().is_none());
}

#[test]
fn layer_norm_and_gelu_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let (rows, c) = (45, 40);
    let x: Vec<f32> = random(5, rows * c, 2.0).iter().map(|v| v - 0.7).collect();
    let w: Vec<f32> = random(6, c, 0.3).iter().map(|v| v + 1.0).collect();
    let b = random(7, c, 0.3);
    let dy = random(8, rows * c, 1.0);
    let want = Cpu.layer_norm(Mat::new(&x, rows, c), &w, &b);
    let wgrad = Cpu.layer_norm_backward(&dy, Mat::new(&x, rows, c), &w, &want.stats);
    let (gx, gw, gb, gdy) = (
        dev.upload(&x),
        dev.upload(&w),
        dev.upload(&b),
        dev.upload(&dy),
    );
    let got = dev.layer_norm(Mat::new(&gx, rows, c), &gw, &gb);
    close_elementwise("layer_norm", &down(&mut dev, &got.y), &want.y, 1e-5);
    close_elementwise("stats", &down(&mut dev, &got.stats), &want.stats, 1e-5);
    let g = dev.layer_norm_backward(&gdy, Mat::new(&gx, rows, c), &gw, &got.stats);
    close_elementwise("dx", &down(&mut dev, &g.dx), &wgrad.dx, 1e-5);
    close_elementwise("dw", &down(&mut dev, &g.dw), &wgrad.dw, 1e-5);
    close_elementwise("db", &down(&mut dev, &g.db), &wgrad.db, 1e-5);

    let mut z = random(9, 1000, 3.0);
    z.extend([0.0, -40.0, 40.0]);
    let gz = dev.upload(&z);
    let y = dev.gelu(&gz);
    close_elementwise("gelu", &down(&mut dev, &y), &Cpu.gelu(&z), 1e-5);
    let r = random(10, z.len(), 1.0);
    let gr = dev.upload(&r);
    let d = dev.gelu_backward(&gr, &gz);
    close_elementwise(
        "gelu_backward",
        &down(&mut dev, &d),
        &Cpu.gelu_backward(&r, &z),
        1e-5,
    );
    assert!(dev.take_error().is_none());
}

#[test]
fn causal_attention_forward_and_backward_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let a = AttnShape {
        batch: 3,
        seq: 17,
        heads: 4,
        head_dim: 8,
    };
    let c = a.width();
    let qkv = random(11, a.rows() * 3 * c, 1.0);
    let dy = random(12, a.rows() * c, 1.0);
    let want = Cpu.attention(&qkv, a);
    let wd = Cpu.attention_backward(&dy, &qkv, &want.probs, a);
    let (gq, gdy) = (dev.upload(&qkv), dev.upload(&dy));
    let got = dev.attention(&gq, a);
    close_elementwise("probs", &down(&mut dev, &got.probs), &want.probs, 1e-5);
    close_elementwise("attention", &down(&mut dev, &got.y), &want.y, 1e-5);
    let d = dev.attention_backward(&gdy, &gq, &got.probs, a);
    close_elementwise("dqkv", &down(&mut dev, &d), &wd, 1e-5);
    assert!(dev.take_error().is_none());
}

#[test]
fn residual_sums_and_clipping_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let (x, y) = (random(13, 700, 1.0), random(14, 700, 1.0));
    let (gx, gy) = (dev.upload(&x), dev.upload(&y));
    let s = dev.add(&gx, &gy);
    assert_eq!(down(&mut dev, &s), Cpu.add(&x, &y));
    let mut acc = dev.duplicate(&gx);
    dev.add_assign(&mut acc, &gy);
    assert_eq!(down(&mut dev, &acc), Cpu.add(&x, &y));
    // Two gradients with a norm far above 1: clipped on both devices by the same scale.
    let grads = vec![random(15, 300, 1.0), random(16, 50, 1.0)];
    let mut want = grads.clone();
    let sums = Cpu.sums_of_squares(&[&want[0], &want[1]]);
    Cpu.clip_grad_norm(&mut want, &sums, 1.0);
    let mut got: Vec<_> = grads.iter().map(|g| dev.upload(g)).collect();
    let gsums = dev.sums_of_squares(&[&got[0], &got[1]]);
    dev.clip_grad_norm(&mut got, &gsums, 1.0);
    for (g, w) in got.iter().zip(&want) {
        close_elementwise("clipped", &down(&mut dev, g), w, 1e-6);
    }
    assert!(dev.take_error().is_none());
}

/// The whole GPT (2 layers, 4 heads, C = 32, context 16, batch 3): logits, loss and every
/// gradient on the GPU against the CPU.
#[test]
fn whole_gpt_forward_and_backward_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut dev = gpu_device(&ctx);
    let cfg = GptConfig {
        vocab_size: 13,
        block_size: 16,
        n_layer: 2,
        n_head: 4,
        n_embd: 32,
    };
    let m = Gpt::new(cfg);
    // nanoGPT's init, with the gains and biases moved off 1 and 0 so that every path matters.
    let params: Vec<Vec<f32>> = m
        .init(5)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let noise = random(100 + i as u64, p.value.len(), 0.1);
            p.value
                .data()
                .iter()
                .zip(noise)
                .map(|(v, z)| v * 5.0 + z)
                .collect()
        })
        .collect();
    let n = 3 * cfg.block_size;
    let x = tokens(n, cfg.vocab_size, 20);
    let y = tokens(n, cfg.vocab_size, 21);
    let mut loss = SoftmaxCrossEntropy {
        classes: cfg.vocab_size,
    };
    let refs: Vec<&Vec<f32>> = params.iter().collect();
    let acts = Model::<Cpu>::forward(&m, &mut Cpu, &refs, x.clone(), n);
    let out = Loss::<Cpu>::loss(&mut loss, &mut Cpu, acts.last().unwrap(), &y, n);
    let want = Model::<Cpu>::backward(&m, &mut Cpu, &refs, &acts, out.d_output, n);

    let gparams: Vec<_> = params.iter().map(|p| dev.upload(p)).collect();
    let grefs: Vec<_> = gparams.iter().collect();
    let gx = dev.upload(&x);
    let gy = dev.upload(&y);
    let gacts = m.forward(&mut dev, &grefs, gx, n);
    let logits = down(&mut dev, gacts.last().unwrap());
    let err = rel_err(&logits, acts.last().unwrap());
    assert!(err < 1e-5, "logits: relative error {err:.2e}");
    let gout = loss.loss(&mut dev, gacts.last().unwrap(), &gy, n);
    let stats = down(&mut dev, &gout.stats);
    assert!((stats[0] - out.stats[0]).abs() < 1e-4 * out.stats[0].abs());
    let got = m.backward(&mut dev, &grefs, &gacts, gout.d_output, n);
    let mut worst = 0.0f64;
    for ((name, _, _), (g, w)) in cfg.param_specs().iter().zip(got.iter().zip(&want)) {
        let err = rel_err(&down(&mut dev, g), w);
        assert!(err < 5e-4, "{name}: relative error {err:.2e}");
        worst = worst.max(err);
    }
    eprintln!("GPT gradients, GPU vs CPU: worst tensor-relative error {worst:.2e}");
    assert!(dev.take_error().is_none());
}

/// The language-model trainer on the GPU against the CPU: five AdamW steps of a tiny GPT on
/// tiny Shakespeare with clipping, the losses read back once (the GPU never synchronises
/// before), and the validation loss at the end.
/// The trainer on the GPU follows the CPU's losses, validation loss and weights — a full run
/// and a LoRA run (rank 2 under Muon: the adapters' products and Newton–Schulz on the GPU), whose
/// adapter spectra agree too.
#[test]
fn lm_trainer_on_gpu_follows_the_cpu() {
    use optiscope_core::corpus::{tinyshakespeare, Corpus};
    use optiscope_core::train::lm::{LmConfig, LmTrainer};
    use optiscope_core::train::lora::LoraConfig;
    let Some(ctx) = gpu() else { return };
    let text: String = tinyshakespeare().chars().take(20_000).collect();
    let plain = LmConfig {
        n_layer: 2,
        n_head: 2,
        n_embd: 32,
        block_size: 16,
        batch_size: 4,
        steps: 5,
        eval_iters: 2,
        log_interval: 5,
        grad_clip: 0.5,
        ..LmConfig::default()
    };
    let lora = LmConfig {
        lora: Some(LoraConfig {
            rank: 2,
            alpha: Some(4.0),
        }),
        optimizer: serde_json::from_str(r#"{"name": "muon", "lr": 0.02}"#).unwrap(),
        ..plain.clone()
    };
    for cfg in [plain, lora] {
        let what = if cfg.lora.is_some() { "LoRA" } else { "full" };
        let corpus = || Corpus::new(&text, 0.1, None).unwrap();
        let mut cpu = LmTrainer::new(cfg.clone(), corpus(), Cpu, None).unwrap();
        let mut gpu_t = LmTrainer::new(cfg, corpus(), gpu_device(&ctx), None).unwrap();
        for _ in 0..5 {
            cpu.step().unwrap();
            gpu_t.step().unwrap();
        }
        let (a, b) = (cpu.take_losses().unwrap(), gpu_t.take_losses().unwrap());
        assert_eq!(a.len(), 5);
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x.train_loss - y.train_loss).abs() < 1e-4,
                "{what} step {}: {} vs {}",
                x.step,
                x.train_loss,
                y.train_loss
            );
        }
        let (vc, vg) = (
            cpu.evaluate().unwrap().unwrap(),
            gpu_t.evaluate().unwrap().unwrap(),
        );
        assert!((vc - vg).abs() < 1e-4, "{what}: val loss {vc} vs {vg}");
        for ((name, _, w), (_, _, g)) in
            cpu.weights().unwrap().iter().zip(&gpu_t.weights().unwrap())
        {
            let err = rel_err(g, w);
            assert!(err < 1e-3, "{what} {name}: relative error {err:.2e}");
        }
        let (sc, sg) = (cpu.spectra().unwrap(), gpu_t.spectra().unwrap());
        assert_eq!(sc.keys().collect::<Vec<_>>(), sg.keys().collect::<Vec<_>>());
        for (k, v) in &sc {
            for (x, y) in v.iter().zip(&sg[k]) {
                assert!(
                    (x - y).abs() <= 1e-3 * v[0],
                    "{what} {k}: {v:?} vs {:?}",
                    sg[k]
                );
            }
        }
    }
}
