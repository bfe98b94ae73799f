//! `optiscope train --model gpt`, `optiscope sample` and `optiscope eval` on a GPT run as a user
//! meets them: the files and their contracts, bit-exact resume, `--init`, and one-line refusals
//! (exit code 2) for bad input. Tiny models (2 layers, C = 32, context 16) so each run takes well
//! under a second.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use optiscope_core::train::gpt_file;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_optiscope"));
    c.env("OPTISCOPE_BACKEND", "cpu");
    c
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("optiscope-gpt-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const TINY: &[&str] = &[
    "train",
    "--model",
    "gpt",
    "--n-layer",
    "2",
    "--n-head",
    "2",
    "--n-embd",
    "32",
    "--block-size",
    "16",
    "--batch-size",
    "4",
    "--eval-interval",
    "10",
    "--eval-iters",
    "2",
    "--log-interval",
    "3",
    "--spectra-every",
    "10",
    "--lr",
    "0.01",
    "-q",
];

fn train(extra: &[&str]) -> Output {
    bin().args(TINY).args(extra).output().unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn refused(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "exit code for {needle:?}: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("error"))
            .count(),
        1,
        "{err}"
    );
}

fn lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn weights(dir: &Path) -> gpt_file::GptWeights {
    gpt_file::from_bytes(&std::fs::read(dir.join("model.safetensors")).unwrap()).unwrap()
}

#[test]
fn training_writes_its_contract_and_resumes_bit_for_bit() {
    let d = tempdir("contract");
    let full = d.join("full");
    ok(&train(&["--steps", "20", "--out", full.to_str().unwrap()]));
    for f in [
        "config.json",
        "metrics.jsonl",
        "model.safetensors",
        "checkpoint.safetensors",
    ] {
        assert!(full.join(f).exists(), "{f}");
    }
    let m = lines(&full);
    let steps: Vec<u64> = m
        .iter()
        .filter(|l| l.get("train_loss").is_some())
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=20).collect::<Vec<_>>());
    for l in m.iter().filter(|l| l.get("train_loss").is_some()) {
        assert!(l["lr"].as_f64().unwrap() == 0.01 && l["tokens_per_s"].as_f64().unwrap() > 0.0);
    }
    let evals: Vec<u64> = m
        .iter()
        .filter(|l| l.get("val_loss").is_some())
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(evals, vec![0, 10, 20]);
    let spectra: Vec<&serde_json::Value> = m
        .iter()
        .filter(|l| l.get("singular_values").is_some())
        .collect();
    assert_eq!(spectra.len(), 3);
    let sv = spectra[2]["singular_values"].as_object().unwrap();
    assert_eq!(sv.len(), 8, "4 hidden matrices per block");
    assert_eq!(
        sv["transformer.h.1.mlp.c_fc.weight"]
            .as_array()
            .unwrap()
            .len(),
        32
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(full.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (cfg["n_layer"].as_u64(), cfg["data"].as_str()),
        (Some(2), Some("tinyshakespeare"))
    );

    // Ten steps, then --resume to twenty: the same weights and the same metric lines.
    let part = d.join("part");
    ok(&train(&["--steps", "10", "--out", part.to_str().unwrap()]));
    let o = bin()
        .args([
            "train",
            "--model",
            "gpt",
            "--resume",
            part.to_str().unwrap(),
            "--steps",
            "20",
            "-q",
        ])
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(weights(&part), weights(&full));
    let strip = |v: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        v.into_iter()
            .map(|mut l| {
                l.as_object_mut().unwrap().remove("tokens_per_s");
                l
            })
            .collect()
    };
    assert_eq!(strip(lines(&part)), strip(lines(&full)));

    // A resumed run keeps its config.
    refused(
        &bin()
            .args([
                "train",
                "--model",
                "gpt",
                "--resume",
                part.to_str().unwrap(),
                "--lr",
                "0.1",
            ])
            .output()
            .unwrap(),
        "--lr would change the config",
    );
    // An output folder holding a run is never overwritten.
    refused(
        &train(&["--steps", "5", "--out", full.to_str().unwrap()]),
        "already holds a training run",
    );

    // Sampling: the prompt, then the requested number of characters, the same for one seed.
    let sample = |seed: &str| {
        let o = bin()
            .args([
                "sample",
                "--checkpoint",
                full.to_str().unwrap(),
                "--prompt",
                "ROMEO:",
                "--tokens",
                "40",
                "--seed",
                seed,
            ])
            .output()
            .unwrap();
        ok(&o);
        String::from_utf8(o.stdout).unwrap()
    };
    let a = sample("1");
    assert!(a.starts_with("ROMEO:"), "{a}");
    assert_eq!(
        a.trim_end_matches('\n').chars().count(),
        "ROMEO:".len() + 40
    );
    assert_eq!(a, sample("1"));
    assert_ne!(a, sample("2"));
    refused(
        &bin()
            .args([
                "sample",
                "--checkpoint",
                full.to_str().unwrap(),
                "--prompt",
                "€",
            ])
            .output()
            .unwrap(),
        "is not in the model's vocabulary",
    );

    // eval: the validation text's loss, near the last val_loss (different windows).
    let o = bin()
        .args(["eval", full.to_str().unwrap()])
        .output()
        .unwrap();
    ok(&o);
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let last = evals.len();
    let val = m
        .iter()
        .filter(|l| l.get("val_loss").is_some())
        .nth(last - 1)
        .unwrap()["val_loss"]
        .as_f64()
        .unwrap();
    assert!(
        (e["loss"].as_f64().unwrap() - val).abs() < 0.3,
        "{e} vs {val}"
    );
    assert_eq!(
        e["tokens"].as_u64().unwrap(),
        e["windows"].as_u64().unwrap() * 16
    );
}

#[test]
fn init_takes_the_sizes_and_vocabulary_from_the_file() {
    let d = tempdir("init");
    let base = d.join("base");
    ok(&train(&["--steps", "3", "--out", base.to_str().unwrap()]));
    let tuned = d.join("tuned");
    let o = bin()
        .args([
            "train",
            "--model",
            "gpt",
            "--init",
            base.to_str().unwrap(),
            "--steps",
            "0",
        ])
        .output()
        .unwrap();
    refused(&o, "steps = 0: must be at least 1");
    // No size flags needed; the run starts from the file's weights (step 0's val loss is theirs).
    let o = bin()
        .args([
            "train",
            "--model",
            "gpt",
            "--init",
            base.to_str().unwrap(),
            "--steps",
            "2",
            "--eval-interval",
            "10",
            "--eval-iters",
            "2",
            "--batch-size",
            "4",
            "-q",
            "--out",
            tuned.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    ok(&o);
    let w = weights(&tuned);
    assert_eq!((w.cfg.n_layer, w.cfg.n_embd, w.cfg.block_size), (2, 32, 16));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tuned.join("config.json")).unwrap()).unwrap();
    assert!(cfg["init"].as_str().unwrap().ends_with("base"));
    refused(
        &bin()
            .args([
                "train",
                "--model",
                "gpt",
                "--init",
                base.to_str().unwrap(),
                "--n-layer",
                "3",
                "--out",
                d.join("x").to_str().unwrap(),
            ])
            .output()
            .unwrap(),
        "--n-layer 3: --init",
    );
    let text = d.join("other.txt");
    std::fs::write(
        &text,
        "plain text with a tilde ~ that Shakespeare never wrote\n".repeat(20),
    )
    .unwrap();
    refused(
        &bin()
            .args([
                "train",
                "--model",
                "gpt",
                "--init",
                base.to_str().unwrap(),
                "--data",
                text.to_str().unwrap(),
                "--out",
                d.join("y").to_str().unwrap(),
            ])
            .output()
            .unwrap(),
        "character '~'",
    );
}

#[test]
fn bad_input_is_refused_with_one_line() {
    let d = tempdir("bad");
    let out = d.join("r");
    const SMALL: [&str; 13] = [
        "train",
        "--model",
        "gpt",
        "--n-layer",
        "1",
        "--n-head",
        "2",
        "--n-embd",
        "16",
        "--block-size",
        "16",
        "--steps",
        "2",
    ];
    let o = |extra: &[&str]| {
        let mut args: Vec<&str> = SMALL.to_vec();
        args.push("-q");
        args.extend_from_slice(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        bin().args(&args).output().unwrap()
    };
    refused(
        &bin()
            .args([
                "train", "--model", "gpt", "--n-head", "3", "--n-embd", "32", "--out",
            ])
            .arg(&out)
            .output()
            .unwrap(),
        "n_head = 3: must divide n_embd = 32",
    );
    refused(&o(&["--quant", "lsq"]), "--quant applies to --model mlp");
    refused(&o(&["--batch-size", "0"]), "batch_size = 0");
    refused(&o(&["--val-fraction", "1.5"]), "val_fraction = 1.5");
    refused(&o(&["--grad-clip=-1"]), "grad_clip = -1");
    refused(
        &o(&["--data", "/nonexistent/text.txt"]),
        "--data /nonexistent/text.txt",
    );
    refused(&o(&["--eval-interval", "0"]), "eval_interval = 0");
    // AMUSE has no default warm-up: the refusal names the field and where to set it.
    refused(
        &o(&["--optimizer", "amuse"]),
        r#"--optimizer amuse: warmup_steps = 0: must be >= 1"#,
    );
    refused(
        &o(&["--optimizer", "amuse"]),
        r#"{"optimizer": {"name": "amuse", "warmup_steps": N}}"#,
    );
    let short = d.join("short.txt");
    std::fs::write(&short, "tiny").unwrap();
    refused(
        &o(&["--data", short.to_str().unwrap()]),
        "block_size + 1 = 17",
    );
    refused(
        &bin()
            .args(["train", "--n-layer", "2", "--out", out.to_str().unwrap()])
            .output()
            .unwrap(),
        "--n-layer applies to --model gpt",
    );
    refused(
        &bin()
            .args([
                "train",
                "--data",
                "tinyshakespeare",
                "--out",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap(),
        "unknown for the MLP",
    );
    assert!(
        !out.join("metrics.jsonl").exists(),
        "nothing is written for refused input"
    );
    // --optimizer alone keeps the run's rate and says so when the method's own differs.
    let muon = d.join("muon");
    let o = bin()
        .args(SMALL)
        .args(["--eval-iters", "1", "--optimizer", "muon", "--out"])
        .arg(&muon)
        .output()
        .unwrap();
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "note: --optimizer muon keeps the run's learning rate 0.001 (muon's default is 0.02)"
        ),
        "{err}"
    );
}

/// A run whose loss stops being finite ends with exit status 1, naming the step; the finite
/// steps before it stay in metrics.jsonl.
#[test]
fn divergence_stops_the_run_and_keeps_the_finite_steps() {
    let d = tempdir("diverge");
    let out = d.join("r");
    let o = bin()
        .args([
            "train",
            "--model",
            "gpt",
            "--n-layer",
            "2",
            "--n-head",
            "2",
            "--n-embd",
            "32",
            "--block-size",
            "16",
            "--batch-size",
            "4",
            "--log-interval",
            "3",
            "-q",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--grad-clip",
            "0",
            "--steps",
            "30",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the training loss became"), "{err}");
    let m = lines(&out);
    let train: Vec<&serde_json::Value> =
        m.iter().filter(|l| l.get("train_loss").is_some()).collect();
    assert!(train
        .iter()
        .all(|l| l["train_loss"].as_f64().is_some_and(f64::is_finite)));
    let diverged_at: u64 = err
        .split(" at step ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|s| s.parse().ok())
        .expect("the step is named");
    assert_eq!(train.len() as u64, diverged_at - 1, "{err}");
}

/// `--lora-rank r` with `--init`: config.json records the adapters, the recorded spectra are the
/// adapter products' (r values each, keys `….lora_BA`), model.safetensors holds merged weights
/// in which only the attention and MLP matrices moved (by rank ≤ r), and the run resumes; the
/// flags are refused without --init or with --lora-alpha alone.
#[test]
fn lora_fine_tunes_from_init() {
    let d = tempdir("lora");
    let base = d.join("base");
    ok(&train(&["--steps", "3", "--out", base.to_str().unwrap()]));
    let tuned = d.join("tuned");
    let lora = |extra: &[&str], out: &Path| {
        bin()
            .args([
                "train",
                "--model",
                "gpt",
                "--init",
                base.to_str().unwrap(),
                "--lora-rank",
                "2",
                "--lora-alpha",
                "4",
                "--optimizer",
                "muon",
                "--lr",
                "0.02",
                "--eval-iters",
                "1",
                "--spectra-every",
                "2",
                "--batch-size",
                "4",
                "-q",
            ])
            .args(extra)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    ok(&lora(&["--steps", "4"], &tuned));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tuned.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["lora"], serde_json::json!({"rank": 2, "alpha": 4.0}));
    let spectra: Vec<serde_json::Value> = lines(&tuned)
        .into_iter()
        .filter(|l| l.get("singular_values").is_some())
        .collect();
    assert_eq!(spectra.len(), 3, "steps 0, 2 and 4");
    let last = spectra[2]["singular_values"].as_object().unwrap();
    assert_eq!(last.len(), 8, "4 matrices in each of 2 blocks");
    for (k, v) in last {
        assert!(k.ends_with(".lora_BA"), "{k}");
        let v = v.as_array().unwrap();
        assert!(v.len() == 2 && v[0].as_f64().unwrap() > 0.0, "{k}: {v:?}");
    }
    let (b, t) = (weights(&base), weights(&tuned));
    let names: Vec<String> = b.cfg.param_specs().into_iter().map(|(n, ..)| n).collect();
    for ((name, before), after) in names.iter().zip(&b.values).zip(&t.values) {
        let adapted =
            name.ends_with(".weight") && (name.contains(".attn.") || name.contains(".mlp."));
        assert_eq!(
            adapted,
            before != after,
            "{name}: only the adapted matrices move"
        );
    }
    // Resume continues the adapters (2 more steps).
    let o = bin()
        .args(["train", "--model", "gpt", "--steps", "6", "-q", "--resume"])
        .arg(&tuned)
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(
        lines(&tuned)
            .iter()
            .filter(|l| l.get("train_loss").is_some())
            .count(),
        6
    );
    let gpt = |args: &[&str], out: &str| {
        bin()
            .args(["train", "--model", "gpt"])
            .args(args)
            .arg("--out")
            .arg(d.join(out))
            .output()
            .unwrap()
    };
    refused(
        &gpt(&["--lora-rank", "2"], "no-init"),
        "--lora-rank fine-tunes given weights: pass them with --init MODEL",
    );
    refused(
        &gpt(&["--lora-alpha", "2"], "alpha"),
        "--lora-alpha scales LoRA adapters: give --lora-rank too",
    );
    refused(
        &gpt(
            &["--lora-rank", "99", "--init", base.to_str().unwrap()],
            "big",
        ),
        "lora.rank = 99: must be in 1..=32",
    );
}
