//! Golden outputs: the files `optiscope` writes, fingerprinted (SHA-256) and compared with the
//! fingerprints recorded in `tests/golden/cli.json`, so that a refactoring which must preserve
//! behaviour is checked bit for bit on the CPU:
//!
//! - `optiscope run --preset NAME` for every preset: `metrics.jsonl` and `summary.json`;
//! - `optiscope align --preset NAME` for every alignment preset: the same two files;
//! - `optiscope train` for every quantizer (and CPQ with learned bits), seed 0, 3 epochs, CPU:
//!   `metrics.jsonl` without its timings (`samples_per_s`, `seconds`), and every tensor and
//!   metadata entry of the checkpoint;
//! - `optiscope replay` of the traces in `tests/golden/replay/` (every spec vector, the
//!   rank ≥ 3 readings, two random traces per optimizer; `tests/golden/make_replay_traces.py`).
//!
//! The f32 results depend on the matrix-product kernel `matrixmultiply` picks for the CPU, so the
//! file records the CPU features it was made with; on a CPU with other features the test says so
//! and skips. Record anew (only when a change is meant to change outputs) with
//! `OPTISCOPE_GOLDEN=record cargo test -p optiscope-cli --test golden`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use optiscope_core::align::experiment::ALIGN_PRESETS;
use optiscope_core::experiment::presets::PRESETS;
use optiscope_core::quant::QuantMethod;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden_file() -> PathBuf {
    repo().join("tests/golden/cli.json")
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The CPU features that choose `matrixmultiply`'s f32 kernel.
fn cpu_features() -> Value {
    #[cfg(target_arch = "x86_64")]
    {
        serde_json::json!({
            "arch": "x86_64",
            "avx": std::is_x86_feature_detected!("avx"),
            "avx2": std::is_x86_feature_detected!("avx2"),
            "fma": std::is_x86_feature_detected!("fma"),
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        serde_json::json!({ "arch": std::env::consts::ARCH })
    }
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_optiscope"));
    c.env("OPTISCOPE_BACKEND", "cpu");
    c
}

fn run_ok(c: &mut Command) -> Vec<u8> {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("optiscope-golden-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `metrics.jsonl` of a training run with the wall-clock fields removed.
fn train_metrics_without_timings(path: &Path) -> Vec<u8> {
    let mut out = vec![];
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object_mut().unwrap();
        obj.remove("samples_per_s");
        obj.remove("seconds");
        out.extend(serde_json::to_vec(&v).unwrap());
        out.push(b'\n');
    }
    out
}

/// Every output's fingerprint, by a stable name.
fn fingerprints() -> BTreeMap<String, String> {
    let mut got = BTreeMap::new();
    let d = tempdir("outputs");
    for p in PRESETS {
        let out = d.join(format!("run-{}", p.name));
        run_ok(
            bin()
                .args(["run", "--preset", p.name, "-q", "--out"])
                .arg(&out),
        );
        for f in ["metrics.jsonl", "summary.json"] {
            got.insert(
                format!("run {} {f}", p.name),
                hex(&std::fs::read(out.join(f)).unwrap()),
            );
        }
    }
    for p in ALIGN_PRESETS {
        let out = d.join(format!("align-{}", p.name));
        run_ok(
            bin()
                .args(["align", "--preset", p.name, "-q", "--out"])
                .arg(&out),
        );
        for f in ["metrics.jsonl", "summary.json"] {
            got.insert(
                format!("align {} {f}", p.name),
                hex(&std::fs::read(out.join(f)).unwrap()),
            );
        }
    }
    let mut trains: Vec<(String, Vec<&str>)> = QuantMethod::ALL
        .iter()
        .map(|m| {
            (
                m.name().to_string(),
                vec!["--quant", m.name(), "--bits", "3"],
            )
        })
        .collect();
    trains.push((
        "cpq-learned-bits".into(),
        vec!["--quant", "cpq", "--bits", "3", "--learn-bits", "0.05"],
    ));
    for (name, flags) in trains {
        let out = d.join(format!("train-{name}"));
        run_ok(
            bin()
                .args(["train", "-q", "--epochs", "3", "--seed", "0"])
                .args(flags)
                .arg("--out")
                .arg(&out),
        );
        got.insert(
            format!("train {name} metrics.jsonl"),
            hex(&train_metrics_without_timings(&out.join("metrics.jsonl"))),
        );
        let ck = optiscope_core::train::Checkpoint::from_bytes(
            &std::fs::read(out.join("checkpoint.safetensors")).unwrap(),
        )
        .unwrap();
        for (tensor, (shape, data)) in &ck.tensors {
            let mut bytes = format!("{shape:?}").into_bytes();
            bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
            got.insert(format!("train {name} tensor {tensor}"), hex(&bytes));
        }
        for (key, value) in &ck.meta {
            got.insert(format!("train {name} meta {key}"), hex(value.as_bytes()));
        }
    }
    let traces = repo().join("tests/golden/replay");
    let mut files: Vec<_> = std::fs::read_dir(&traces)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "{} replay traces", files.len());
    for f in files {
        let stdout = run_ok(bin().arg("replay").arg(&f));
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        got.insert(format!("replay {name}"), hex(&stdout));
    }
    let _ = std::fs::remove_dir_all(&d);
    got
}

#[test]
fn outputs_are_bit_identical_to_the_recorded_ones() {
    let got = fingerprints();
    let record = std::env::var("OPTISCOPE_GOLDEN").is_ok_and(|v| v == "record");
    if record {
        let file = serde_json::json!({
            "cpu": cpu_features(),
            "fingerprints": got,
        });
        std::fs::write(
            golden_file(),
            serde_json::to_string_pretty(&file).unwrap() + "\n",
        )
        .unwrap();
        eprintln!(
            "recorded {} fingerprints in {}",
            got.len(),
            golden_file().display()
        );
        return;
    }
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_file()).unwrap()).unwrap();
    if file["cpu"] != cpu_features() {
        eprintln!(
            "SKIPPED: the golden outputs were recorded on a CPU with the features {}, this one has {} \
             (matrixmultiply picks another f32 kernel); record them here first with \
             OPTISCOPE_GOLDEN=record",
            file["cpu"],
            cpu_features()
        );
        return;
    }
    let want: BTreeMap<String, String> =
        serde_json::from_value(file["fingerprints"].clone()).unwrap();
    let differ: Vec<&String> = want
        .keys()
        .chain(got.keys())
        .filter(|k| want.get(*k) != got.get(*k))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} outputs differ from the recorded ones: {differ:?}",
        differ.len(),
        want.len()
    );
}
