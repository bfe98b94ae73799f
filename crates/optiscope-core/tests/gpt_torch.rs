//! optiscope's GPT against PyTorch: the loss and every gradient of a small model (2 layers, 4
//! heads, C = 32, context 16, batch 3) on the CPU executor against nanoGPT's definition
//! (`tests/gpt/nanogpt.py`) in float64, through `tests/gpt/torch_gradients.py`. Runs when
//! `python3` can import torch and safetensors; otherwise it prints why it skips (the suite must
//! not need torch). Tolerances: the loss to 1e-5 relative, each gradient to 1e-4 of its largest
//! entry (f32 against f64).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::process::Command;

use optiscope_core::device::Cpu;
use optiscope_core::models::{Gpt, GptConfig, Loss, Model, SoftmaxCrossEntropy};
use optiscope_core::rng::{stream, Philox, StreamKind};
use optiscope_core::train::Checkpoint;
use safetensors::SafeTensors;

fn torch_available() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import torch, safetensors"])
        .output()
        .map_err(|e| format!("python3 cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .lines()
            .last()
            .unwrap_or("")
            .to_string())
    }
}

#[test]
fn loss_and_gradients_match_pytorch() {
    if let Err(why) = torch_available() {
        eprintln!(
            "SKIPPED (PyTorch is not importable: {why}); `pip install torch safetensors` runs it"
        );
        return;
    }
    let cfg = GptConfig {
        vocab_size: 11,
        block_size: 16,
        n_layer: 2,
        n_head: 4,
        n_embd: 32,
    };
    let m = Gpt::new(cfg);
    let rng = Philox::new(77);
    // nanoGPT's initialisation, moved off its symmetric start (gains ≠ 1, biases ≠ 0, larger
    // weights) so that every term of the backward carries weight.
    let params: Vec<(String, Vec<usize>, Vec<f32>)> = m
        .init(1)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut noise = vec![0.0; p.value.len()];
            rng.fill_normal(stream(StreamKind::Data, i as u32), 0.1, &mut noise);
            let data = p
                .value
                .data()
                .iter()
                .zip(noise)
                .map(|(v, z)| v * 4.0 + z)
                .collect();
            (p.name, p.value.shape().to_vec(), data)
        })
        .collect();
    let (batch, n) = (3, 3 * cfg.block_size);
    let draw = |id: u32| -> Vec<f32> {
        (0..n)
            .map(|i| {
                (rng.u32_at(stream(StreamKind::Data, id), i as u64) % cfg.vocab_size as u32) as f32
            })
            .collect()
    };
    let (x, y) = (draw(1000), draw(1001));

    let refs: Vec<&Vec<f32>> = params.iter().map(|p| &p.2).collect();
    let acts = Model::<Cpu>::forward(&m, &mut Cpu, &refs, x.clone(), n);
    let mut loss = SoftmaxCrossEntropy {
        classes: cfg.vocab_size,
    };
    let out = loss.loss(&mut Cpu, acts.last().unwrap(), &y, n);
    let ours = f64::from(out.stats[0]) / n as f64;
    let grads = Model::<Cpu>::backward(&m, &mut Cpu, &refs, &acts, out.d_output, n);

    let dir = tempdir();
    let mut c = Checkpoint::default();
    for (name, shape, data) in &params {
        c.put(name.clone(), shape.clone(), data.clone());
    }
    c.put("tokens", vec![batch, cfg.block_size], x);
    c.put("targets", vec![batch, cfg.block_size], y);
    for (k, v) in [
        ("vocab_size", cfg.vocab_size),
        ("block_size", cfg.block_size),
        ("n_layer", cfg.n_layer),
        ("n_head", cfg.n_head),
        ("n_embd", cfg.n_embd),
    ] {
        c.meta.insert(k.into(), v.to_string());
    }
    let (src, dst) = (dir.join("in.safetensors"), dir.join("out.safetensors"));
    std::fs::write(&src, c.to_bytes().unwrap()).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/gpt/torch_gradients.py");
    let run = Command::new("python3")
        .arg(&script)
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "torch_gradients.py failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bytes = std::fs::read(&dst).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let read = |name: &str| -> Vec<f32> {
        st.tensor(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let theirs = f64::from(read("loss")[0]);
    assert!(
        (ours - theirs).abs() <= 1e-5 * theirs.abs(),
        "loss: optiscope {ours} vs PyTorch {theirs}"
    );
    let mut worst = 0.0f64;
    for ((name, _, _), g) in params.iter().zip(&grads) {
        let want = read(name);
        let scale = want.iter().fold(0.0f64, |a, &v| a.max(f64::from(v).abs()));
        let err = g.iter().zip(&want).fold(0.0f64, |a, (&p, &q)| {
            a.max((f64::from(p) - f64::from(q)).abs())
        });
        assert!(scale > 0.0, "{name}: PyTorch's gradient is zero");
        assert!(
            err <= 1e-4 * scale,
            "{name}: error {err:.3e} of {scale:.3e}"
        );
        worst = worst.max(err / scale);
    }
    eprintln!(
        "GPT vs PyTorch (float64): loss {ours:.7} vs {theirs:.7}; worst gradient error {worst:.2e} of the tensor's largest entry"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("optiscope-gpt-torch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
