//! The `optiscope` binary as a user meets it: files written, exit codes, one-line errors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary, on the CPU executor unless a test asks otherwise (deterministic and quiet).
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_optiscope"));
    c.env("OPTISCOPE_BACKEND", "cpu");
    c
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("optiscope-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn replay_json(dir: &Path, json: &str) -> Output {
    let path = dir.join("trace.json");
    std::fs::write(&path, json).unwrap();
    bin().arg("replay").arg(&path).output().unwrap()
}

/// Bad input gets exit code 2 and one line that names the field, the value and what is allowed.
#[test]
fn bad_input_is_one_line_and_exit_2() {
    let d = tempdir("bad");
    let p = r#""params":{"w":{"shape":[2],"data":[1,2]}}"#;
    let cases = [
        (format!(r#"{{"optimizer":{{"name":"adan"}},{p},"grads":[]}}"#), "unknown variant `adan`, expected one of `sgd`, `adam`, `adamw`, `muon`"),
        (format!(r#"{{"optimizer":{{"name":"adamw","lrr":0.1}},{p},"grads":[]}}"#), "unknown field `lrr`, expected one of `lr`"),
        (format!(r#"{{"optimizer":{{"name":"adamw","lr":"fast"}},{p},"grads":[]}}"#), "optimizer: lr: invalid type: string \"fast\", expected f64"),
        (format!(r#"{{"optimizer":{{"name":"sgd","lr":0}},{p},"grads":[]}}"#), "optimizer.lr = 0: must be a finite number > 0"),
        (format!(r#"{{"optimizer":{{"name":"sgd","lr":-0.5}},{p},"grads":[]}}"#), "optimizer.lr = -0.5: must be a finite number > 0"),
        (format!(r#"{{"optimizer":{{"name":"adam","betas":[0.9,1.0]}},{p},"grads":[]}}"#), "optimizer.betas[1] = 1: must be in [0, 1)"),
        (format!(r#"{{"optimizer":{{"name":"adam","betas":[-0.1,0.9]}},{p},"grads":[]}}"#), "optimizer.betas[0] = -0.1: must be in [0, 1)"),
        (format!(r#"{{"optimizer":{{"name":"sgd","lr":0.1}},{p},"grads":[{{"w":[1,2,3]}}]}}"#), "grads[0].w: 3 values, but the parameter has shape [2] (2 values)"),
        (format!(r#"{{"optimizer":{{"name":"sgd","lr":0.1}},{p},"grads":[{{"w":[1,NaN]}}]}}"#), "NaN and Infinity are not JSON numbers"),
        (format!(r#"{{"optimizer":{{"name":"sgd","lr":0.1}},{p},"grads":[{{"w":[1,1e39]}}]}}"#), "grads[0].w[1] = 1000000000000000000000000000000000000000: not a finite f32"),
        (format!(r#"{{"optimizer":{{"name":"sgd","lr":0.1}},{p},"grads":[{{"v":[1,2]}}]}}"#), "grads[0].v: no parameter named \"v\" (parameters: w)"),
        (r#"{"optimizer":{"name":"sgd","lr":0.1},"params":{"w":{"shape":[2,2],"data":[1,2]}},"grads":[]}"#.to_string(), "params.w: shape [2, 2] needs 4 values, got 2"),
        (r#"{"optimizer":{"name":"sgd","lr":0.1},"params":{"w":{"shape":[4294967296,4294967296],"data":[1,2]}},"grads":[]}"#.to_string(), "params.w: shape [4294967296, 4294967296]: the product of its dimensions overflows"),
        (r#"{"optimizer":{"name":"amuse"},"params":{"w":{"shape":[2],"data":[1,2]}},"grads":[]}"#.to_string(), "optimizer.warmup_steps = 0: must be >= 1"),
        (
            r#"{"optimizer":{"name":"muon"},"params":{"w":{"shape":[2],"data":[1,2],"role":"matrix"}},"grads":[]}"#.to_string(),
            "params.w.role = matrix: needs a tensor of rank >= 2, this one has shape [2]",
        ),
    ];
    for (json, want) in cases {
        let o = replay_json(&d, &json);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{json}\n{err}");
        assert!(err.contains(want), "{json}\nwant: {want}\ngot:  {err}");
        // One error line; besides it only the line naming the backend.
        let other: Vec<_> = err
            .lines()
            .filter(|l| !l.starts_with("backend: "))
            .collect();
        assert_eq!(other.len(), 1, "one line: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = bin()
        .args(["replay", "/nonexistent/trace.json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read /nonexistent/trace.json"),
        "{}",
        stderr(&o)
    );
    let o = bin().args(["run", "--preset", "nope"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("possible values: river-valley, lora-spectrum"),
        "{}",
        stderr(&o)
    );
}

/// Replay reproduces the spec's SGD-Nesterov vector (spec §0.1) and writes f32 values.
#[test]
fn replay_reproduces_a_spec_vector() {
    let d = tempdir("replay");
    let o = replay_json(
        &d,
        r#"{"optimizer":{"name":"sgd","lr":0.1,"momentum":0.9,"nesterov":true},
            "params":{"p":{"shape":[3],"data":[1,-2,0.5]}},
            "grads":[{"p":[0.1,-0.2,0.3]},{"p":[-0.05,0.4,0.1]},{"p":[0.2,0,-0.3]}]}"#,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let want = [
        [0.981, -1.962, 0.443],
        [0.9824, -2.0218, 0.3997],
        [0.94116, -2.03962, 0.42673],
    ];
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    for (s, w) in steps.iter().zip(want) {
        for key in ["params", "eval_params"] {
            let got: Vec<f64> = s[key]["p"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            for (g, w) in got.iter().zip(w) {
                assert!(
                    (g - w).abs() < 1e-6 * (1.0 + w.abs()),
                    "{key}: {got:?} vs {w:?}"
                );
            }
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `run --preset` writes config.json, metrics.jsonl and summary.json; rerunning config.json
/// repeats the run exactly; an existing result folder is never overwritten without --force.
#[test]
fn run_writes_files_and_config_repeats_the_run() {
    let d = tempdir("run");
    let out = d.join("rv");
    let o = bin()
        .args([
            "run",
            "--preset",
            "river-valley",
            "--steps",
            "300",
            "--seed",
            "5",
            "-q",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("river_valley — 300 steps, seed 5"),
        "{stdout}"
    );
    for label in ["gd", "muon", "sf-muon", "amuse"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(label)),
            "{label} missing from the summary:\n{stdout}"
        );
    }
    let metrics = read(&out.join("metrics.jsonl"));
    assert_eq!(
        metrics.lines().count(),
        4 * 301,
        "4 runs × (step 0 + 300 steps)"
    );
    let first: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    assert_eq!(first["run"], "gd");
    assert_eq!(first["step"], 0);
    assert!(first["loss"].as_f64().unwrap() > 0.0 && first["point"].as_array().unwrap().len() == 2);
    let cfg: serde_json::Value = serde_json::from_str(&read(&out.join("config.json"))).unwrap();
    assert_eq!(
        (cfg["steps"].as_u64(), cfg["seed"].as_u64()),
        (Some(300), Some(5))
    );
    assert_eq!(
        cfg["runs"][3]["optimizer"]["rho"], 0.3,
        "the resolved config spells out every field"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    assert_eq!(summary.as_array().unwrap().len(), 4);

    // Same config again, another folder: identical metrics.
    let again = d.join("again");
    let o = bin()
        .arg("run")
        .arg(out.join("config.json"))
        .arg("-q")
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&again.join("metrics.jsonl")), metrics);

    // The first folder is refused and left as it was.
    let o = bin()
        .args(["run", "--preset", "saddle", "-q", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("already holds the results of a run"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read(&out.join("metrics.jsonl")), metrics);
}

/// A diverging run stops with a message naming the run and step, exits 1, and keeps its records.
#[test]
fn divergence_is_reported_and_records_are_kept() {
    let d = tempdir("nan");
    let cfg = d.join("diverge.json");
    std::fs::write(
        &cfg,
        r#"{"problem":{"name":"saddle"},"steps":50,
            "runs":[{"label":"too-fast","optimizer":{"name":"sgd","lr":5}},{"label":"fine","optimizer":{"name":"sgd","lr":0.1}}]}"#,
    )
    .unwrap();
    let out = d.join("out");
    let o = bin()
        .arg("run")
        .arg(&cfg)
        .arg("-q")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("run \"too-fast\" diverged at step 7"), "{err}");
    let metrics = read(&out.join("metrics.jsonl"));
    let fast: Vec<_> = metrics
        .lines()
        .filter(|l| l.contains("\"too-fast\""))
        .collect();
    assert_eq!(fast.len(), 7, "steps 0..=6 kept");
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"fine\"")).count(),
        51,
        "the other run went on"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("diverged@7"));
}

/// A run whose optimizer fails (SpecGD's SVD of an infinite gradient: the f32 product R·Aᵀ
/// overflows while the f64 loss is finite) stops with its records kept and is marked failed in
/// summary.json; the command still writes everything and exits 1. (That the other runs go on is
/// tested in core's experiment tests: here every run meets the same infinite gradient.)
#[test]
fn a_failing_optimizer_keeps_its_records_and_is_marked_failed() {
    let d = tempdir("fail");
    let cfg = d.join("fail.json");
    std::fs::write(
        &cfg,
        r#"{"problem":{"name":"lora_factorization","m":4,"n":4,"targets":[1e38,1e38],"init_scale":10,"b_init":"random"},
            "steps":20,"runs":[{"label":"spec","optimizer":{"name":"specgd"}},{"label":"gd","optimizer":{"name":"sgd","lr":1e-3}}]}"#,
    )
    .unwrap();
    let out = d.join("out");
    let o = bin()
        .arg("run")
        .arg(&cfg)
        .arg("-q")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("run \"spec\" failed at step 1: the SVD of a 4x2 matrix cannot be taken"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    assert_eq!(summary[0]["label"], "spec");
    assert_eq!(summary[0]["failed"]["step"], 1);
    assert!(summary[0]["failed"]["error"]
        .as_str()
        .unwrap()
        .contains("NaN or infinite"));
    assert_eq!(summary[1]["diverged"]["step"], 1);
    let metrics = read(&out.join("metrics.jsonl"));
    assert_eq!(metrics.lines().count(), 2, "step 0 of both runs: {metrics}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("failed@1"));
}

/// `--backend cpu` probes no adapter; probing one prints none of Mesa's loader noise, even
/// where XDG_RUNTIME_DIR is not set (headless machines, CI).
#[test]
fn backends_print_no_loader_noise() {
    let d = tempdir("noise");
    for (backend, out) in [("cpu", "a"), ("auto", "b")] {
        let o = bin()
            .env("OPTISCOPE_BACKEND", backend)
            .env_remove("XDG_RUNTIME_DIR")
            .args(["run", "--preset", "saddle", "--steps", "5", "-q", "--out"])
            .arg(d.join(out))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(!err.contains("XDG_RUNTIME_DIR"), "{backend}: {err}");
        assert!(
            err.lines().all(|l| !l.starts_with("error")),
            "{backend}: {err}"
        );
        if backend == "cpu" {
            assert_eq!(err, "backend: CPU\n");
        }
    }
}

#[test]
fn list_shows_every_method_and_default() {
    let o = bin().arg("list").output().unwrap();
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    for name in [
        "sgd",
        "adam",
        "adamw",
        "muon",
        "specgd",
        "sgd_schedulefree",
        "adamw_schedulefree",
        "amuse",
        "proxgen",
        "prox_sgd",
        "river-valley",
        "lora-spectrum",
    ] {
        assert!(s.contains(name), "{name} missing");
    }
    assert!(
        s.contains("ns_coefficients") && s.contains("[3.4445,-4.775,2.0315]"),
        "{s}"
    );
    let o = bin().args(["list", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let adamw = v["optimizers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "adamw")
        .unwrap();
    assert_eq!(adamw["defaults"]["weight_decay"], 0.01);
}

/// `--backend gpu` without any adapter fails with a message; `auto` falls back to the CPU and
/// says so. (WGPU_BACKEND=metal leaves no adapter on Linux.)
#[cfg(target_os = "linux")]
#[test]
fn backend_without_adapter() {
    let d = tempdir("noadapter");
    let path = d.join("trace.json");
    std::fs::write(&path, r#"{"optimizer":{"name":"sgd","lr":0.1},"params":{"w":{"shape":[2],"data":[1,2]}},"grads":[{"w":[0.5,0.5]}]}"#).unwrap();
    let run = |backend: &str| {
        bin()
            .env("WGPU_BACKEND", "metal")
            .args(["replay", "--backend", backend])
            .arg(&path)
            .output()
            .unwrap()
    };
    let o = run("gpu");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error: --backend gpu: no GPU adapter found"),
        "{}",
        stderr(&o)
    );
    let o = run("auto");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("backend: CPU (no GPU adapter found"),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["steps"][0]["params"]["w"],
        serde_json::json!([0.95, 1.95])
    );
}

/// On a machine with an adapter (lavapipe in CI), `replay --backend gpu` names it and agrees
/// with `--backend cpu` to 1e-5 relative on a Muon trace (the numpy check covers every optimizer).
#[test]
fn gpu_replay_agrees_with_cpu() {
    let d = tempdir("gpu");
    let path = d.join("trace.json");
    std::fs::write(
        &path,
        r#"{"optimizer":{"name":"muon","lr":0.02,"weight_decay":0.1},
            "params":{"w":{"shape":[3,2],"data":[0.5,-0.25,0.1,0.2,-0.3,0.4]},"b":{"shape":[2],"data":[1,-1]}},
            "grads":[{"w":[0.2,-0.1,0.05,0.3,-0.4,0.1],"b":[0.1,0.2]},{"w":[-0.1,0.2,0.3,-0.05,0.1,0.1],"b":[-0.3,0.1]}]}"#,
    )
    .unwrap();
    let o = bin()
        .args(["replay", "--backend", "gpu"])
        .arg(&path)
        .output()
        .unwrap();
    if !o.status.success() {
        assert!(
            std::env::var("REQUIRE_GPU").map_or(true, |v| v != "1"),
            "REQUIRE_GPU=1 but: {}",
            stderr(&o)
        );
        eprintln!("SKIPPED (no GPU adapter): {}", stderr(&o));
        return;
    }
    assert!(stderr(&o).contains("backend: GPU, "), "{}", stderr(&o));
    let gpu: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cpu: serde_json::Value =
        serde_json::from_slice(&bin().arg("replay").arg(&path).output().unwrap().stdout).unwrap();
    for step in 0..2 {
        for name in ["w", "b"] {
            let g = gpu["steps"][step]["params"][name].as_array().unwrap();
            let c = cpu["steps"][step]["params"][name].as_array().unwrap();
            for (x, y) in g.iter().zip(c) {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                assert!(
                    (x - y).abs() <= 1e-5 * y.abs().max(0.1),
                    "step {step} {name}: {x} vs {y}"
                );
            }
        }
    }
}

/// The explorer's "copy CLI command" pipes the experiment config into `optiscope run -`; that
/// run reproduces the losses of the same experiment stepped in-process (what the explorer does).
#[test]
fn config_from_stdin_reproduces_in_process_losses() {
    use std::io::Write;
    let d = tempdir("stdin");
    let mut cfg = optiscope_core::experiment::presets::preset("rosenbrock").unwrap();
    cfg.steps = 40;
    cfg.seed = 7;
    let out = d.join("out");
    let mut child = bin()
        .args(["run", "-", "-q", "--out"])
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&cfg).unwrap().as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let mut exp = optiscope_core::Experiment::new(cfg).unwrap();
    exp.step(40);
    let metrics = read(&out.join("metrics.jsonl"));
    let mut n = 0;
    for line in metrics.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let run = exp
            .runs()
            .iter()
            .find(|r| r.config.label == v["run"].as_str().unwrap())
            .unwrap();
        let rec = run
            .history()
            .iter()
            .find(|r| r.step == v["step"].as_u64().unwrap())
            .unwrap();
        assert_eq!(v["loss"].as_f64().unwrap(), rec.loss, "{line}");
        n += 1;
    }
    assert_eq!(n, 6 * 41);
}

/// `optiscope train`: metrics.jsonl with the promised keys, a checkpoint, and a resumed run that
/// ends with exactly the weights and optimizer state of an uninterrupted one.
#[test]
fn train_writes_metrics_and_resumes_bit_for_bit() {
    let d = tempdir("train");
    let args = [
        "train", "--quant", "cpq", "--bits", "2", "--hidden", "32", "-q",
    ];
    let full = d.join("full");
    let o = bin()
        .args(args)
        .args(["--epochs", "4", "--out"])
        .arg(&full)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(full.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["epoch"], i as u64 + 1);
        for k in [
            "train_loss",
            "train_accuracy",
            "test_accuracy",
            "samples_per_s",
        ] {
            assert!(l[k].as_f64().unwrap().is_finite(), "{k} in {l}");
        }
        assert_eq!(l["layers"][0]["bits"], 2);
    }
    assert!(
        lines[3]["test_accuracy"].as_f64().unwrap() > 0.8,
        "{}",
        lines[3]
    );

    let half = d.join("half");
    let o = bin()
        .args(args)
        .args(["--epochs", "2", "--out"])
        .arg(&half)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bin()
        .args(["train", "-q", "--epochs", "4", "--resume"])
        .arg(&half)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |p: &Path| {
        optiscope_core::train::Checkpoint::from_bytes(
            &std::fs::read(p.join("checkpoint.safetensors")).unwrap(),
        )
        .unwrap()
    };
    let (a, b) = (read(&full), read(&half));
    assert!(a.tensors.contains_key("model.w0") && a.tensors.contains_key("optim.0.exp_avg_sq"));
    assert!(a.tensors.contains_key("quant.w0.log_alpha"));
    assert_eq!(
        a.tensors, b.tensors,
        "resumed weights/optimizer state differ"
    );
    assert_eq!(a.meta, b.meta);
    assert_eq!(
        std::fs::read_to_string(full.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        std::fs::read_to_string(half.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count()
    );
}

/// Bad train inputs are refused with one line naming what is wrong, and nothing is overwritten.
#[test]
fn train_refuses_bad_input_and_never_overwrites() {
    let d = tempdir("train-bad");
    let run = d.join("run");
    let o = bin()
        .args([
            "train", "-q", "--epochs", "1", "--hidden", "16", "--quant", "lsq", "--out",
        ])
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--quant".into(),
                "cpq".into(),
                "--bits".into(),
                "6".into(),
                "--out".into(),
                d.join("x").display().to_string(),
            ],
            "bits = 6: cpq supports 2..=4 bits",
        ),
        (
            vec![
                "--optimizer".into(),
                "adan".into(),
                "--out".into(),
                d.join("y").display().to_string(),
            ],
            "invalid value 'adan' for '--optimizer <OPTIMIZER>'",
        ),
        (
            vec![
                "--quant".into(),
                "proxquant".into(),
                "--optimizer".into(),
                "sgd".into(),
                "--out".into(),
                d.join("z").display().to_string(),
            ],
            "revised proxquant takes the prox in Adam's metric",
        ),
        (
            vec!["--out".into(), run.display().to_string()],
            "already holds a training run",
        ),
        (
            vec![
                "--hidden".into(),
                "100000000000".into(),
                "--out".into(),
                d.join("w").display().to_string(),
            ],
            "hidden = 100000000000: each hidden width must be in 1..=4096",
        ),
        (
            vec![
                "--resume".into(),
                run.display().to_string(),
                "--bits".into(),
                "3".into(),
            ],
            "--bits would change the config",
        ),
    ];
    for (extra, want) in cases {
        let o = bin().arg("train").args(&extra).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{extra:?}: {}", stderr(&o));
    }
    // A run that diverges stops with status 1 and says so; the metrics of finished epochs stay.
    let div = d.join("div");
    let o = bin()
        .args([
            "train",
            "-q",
            "--epochs",
            "3",
            "--hidden",
            "16",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--out",
        ])
        .arg(&div)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the training loss became"),
        "{}",
        stderr(&o)
    );
    // One minibatch per epoch and a huge step: epochs 1 and 2 finish with finite training
    // losses, epoch 3's evaluation overflows, minibatch 4 diverges. What was written stays: the
    // metrics of the three epochs and epoch 3's checkpoint, which loads and resumes.
    let div = d.join("div2");
    let o = bin()
        .args([
            "train",
            "-q",
            "--epochs",
            "5",
            "--hidden",
            "16",
            "--optimizer",
            "sgd",
            "--batch-size",
            "2000",
            "--lr",
            "1e8",
            "--out",
        ])
        .arg(&div)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("at minibatch 4 (epoch 4)")
            && stderr(&o).contains("at its last finite state"),
        "{}",
        stderr(&o)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(div.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["epoch"], i as u64 + 1);
        assert!(l["train_loss"].as_f64().unwrap().is_finite(), "{l}");
    }
    let ck = optiscope_core::train::Checkpoint::from_bytes(
        &std::fs::read(div.join("checkpoint.safetensors")).unwrap(),
    )
    .unwrap();
    assert!(
        ck.meta["position"].contains("\"epoch\":3"),
        "{}",
        ck.meta["position"]
    );
    assert!(ck.tensors["model.w0"].1.iter().all(|w| w.is_finite()));
    let o = bin()
        .args(["train", "--epochs", "3", "--resume"])
        .arg(&div)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    // A corrupt checkpoint is refused and left as it is.
    let ck = run.join("checkpoint.safetensors");
    let good = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &good[..good.len() / 2]).unwrap();
    let o = bin()
        .args(["train", "--epochs", "2", "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a usable checkpoint"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&ck).unwrap(), &good[..good.len() / 2]);
}

/// Ctrl-C (SIGINT) writes a checkpoint before exiting, in the middle of an epoch; resuming it
/// ends with exactly the weights and optimizer state of a run that was never interrupted, and the
/// garbage line a user left in metrics.jsonl is reported, not dropped silently.
#[cfg(unix)]
#[test]
fn train_checkpoints_on_ctrl_c_and_resumes_mid_epoch() {
    let d = tempdir("train-int");
    let common = ["-q", "--hidden", "16", "--quant", "srq", "--bits", "3"];
    let read_ck = |p: &Path| {
        optiscope_core::train::Checkpoint::from_bytes(
            &std::fs::read(p.join("checkpoint.safetensors")).unwrap(),
        )
        .unwrap()
    };
    // An interruption lands at a random minibatch; one at an epoch boundary (1 in 23) does not
    // test the middle of an epoch, so that case is tried again.
    for attempt in 0..5 {
        let run = d.join(format!("run{attempt}"));
        let child = bin()
            .arg("train")
            .args(common)
            .args([
                "--epochs",
                "100000",
                "--checkpoint-every",
                "100000",
                "--out",
            ])
            .arg(&run)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until training is under way (the metrics file appears after the first epoch).
        let t0 = std::time::Instant::now();
        while !run.join("metrics.jsonl").exists()
            || std::fs::metadata(run.join("metrics.jsonl")).unwrap().len() == 0
        {
            assert!(t0.elapsed().as_secs() < 60, "training did not start");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!run.join("checkpoint.safetensors").exists());
        let ok = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("interrupted: checkpoint written"),
            "{}",
            stderr(&out)
        );
        let pos: serde_json::Value = serde_json::from_str(&read_ck(&run).meta["position"]).unwrap();
        let (epoch, batch) = (
            pos["epoch"].as_u64().unwrap(),
            pos["batch"].as_u64().unwrap(),
        );
        if batch == 0 {
            continue;
        }
        // Finish two more epochs than the interrupted one had started, and the same run uninterrupted.
        let epochs = (epoch + 2).to_string();
        let mut metrics = std::fs::OpenOptions::new()
            .append(true)
            .open(run.join("metrics.jsonl"))
            .unwrap();
        std::io::Write::write_all(&mut metrics, b"not json\n").unwrap();
        let o = bin()
            .args(["train", "-q", "--epochs", &epochs, "--resume"])
            .arg(&run)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("skipped 1 line(s) that are not metrics records"),
            "{}",
            stderr(&o)
        );
        let whole = d.join(format!("whole{attempt}"));
        let o = bin()
            .arg("train")
            .args(common)
            .args(["--epochs", &epochs, "--out"])
            .arg(&whole)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let (a, b) = (read_ck(&run), read_ck(&whole));
        assert_eq!(
            a.tensors, b.tensors,
            "interrupted at epoch {epoch}, batch {batch}: resumed weights/optimizer state differ"
        );
        assert_eq!(a.meta["position"], b.meta["position"]);
        return;
    }
    panic!("every interruption landed on an epoch boundary");
}

/// Sizes past their documented bounds are refused before anything is allocated (exit 2, the
/// bound in the message).
#[test]
fn sizes_past_their_bounds_are_refused() {
    let d = tempdir("bounds");
    let cases: [(Vec<&str>, &str); 3] = [
        (
            vec![
                "run",
                "--preset",
                "saddle",
                "--steps",
                "100000000000",
                "-q",
                "--out",
            ],
            "at most 10000000 records per run",
        ),
        (
            vec!["bench", "--sizes", "100000"],
            "each size must be in 1..=8192",
        ),
        (
            vec!["bench", "--params", "1000000000000"],
            "each count must be in 1..=268435456",
        ),
    ];
    for (args, want) in cases {
        let mut c = bin();
        c.args(&args);
        if args[0] == "run" {
            c.arg(d.join("out"));
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}

/// `optiscope train --optimizer proxgen --regularizer l1/2 --penalty λ` records the share of exact
/// zeros per layer (and zeroes some); the flags are refused for an optimizer without a penalty.
#[test]
fn proxgen_trains_sparse_and_penalty_needs_a_proximal_optimizer() {
    let d = tempdir("proxgen");
    let o = bin()
        .args(["train", "-q", "--epochs", "2", "--optimizer", "proxgen"])
        .args(["--regularizer", "l1/2", "--penalty", "0.002", "--out"])
        .arg(d.join("run"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = read(&d.join("run/metrics.jsonl"));
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    let sparsity: Vec<f64> = last["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["sparsity"].as_f64().unwrap())
        .collect();
    assert!(
        sparsity.iter().all(|s| (0.0..1.0).contains(s)),
        "{sparsity:?}"
    );
    assert!(sparsity[0] > 0.05, "the prox zeroes weights: {sparsity:?}");
    let config = read(&d.join("run/config.json"));
    assert!(
        config.contains(r#""regularizer": "l1/2""#) || config.contains(r#""regularizer":"l1/2""#),
        "{config}"
    );
    let o = bin()
        .args(["train", "-q", "--epochs", "1", "--penalty", "0.01", "--out"])
        .arg(d.join("bad"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("--penalty") && e.contains("adamw") && e.contains("proxgen"),
        "{e}"
    );
    // `optiscope eval` reads the run back: the same test accuracy and zeros as its last epoch,
    // and with --prune at least that share of zeros (the checkpoint untouched).
    let eval = |extra: &[&str]| -> serde_json::Value {
        let o = bin()
            .arg("eval")
            .arg(d.join("run"))
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let plain = eval(&[]);
    assert_eq!(plain["test_accuracy"], last["test_accuracy"]);
    let weights = [64.0 * 128.0, 128.0 * 10.0];
    let zeros = (sparsity[0] * weights[0] + sparsity[1] * weights[1]) / (weights[0] + weights[1]);
    assert!(
        (plain["sparsity"].as_f64().unwrap() - zeros).abs() < 1e-9,
        "{plain}"
    );
    let pruned = eval(&["--prune", "0.9"]);
    assert!(
        (pruned["sparsity"].as_f64().unwrap() - 0.9).abs() < 1e-3,
        "{pruned}"
    );
    assert_eq!(eval(&[]), plain, "eval does not change the checkpoint");
    let o = bin()
        .arg("eval")
        .arg(d.join("run"))
        .args(["--prune", "1.5"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--prune 1.5"), "{}", stderr(&o));
}

/// `optiscope align --preset coverage`: the contract of its summary (per run `label`, `n_total`,
/// `kl`; the labels offline, on-policy-T2, on-policy-T4, hybrid at 20 000 and 80 000 pairs), its
/// config.json repeats it exactly, and bad input is refused naming the field.
#[test]
fn align_coverage_preset_writes_its_contract_and_repeats() {
    let d = tempdir("align");
    let o = bin()
        .args(["align", "-q", "--preset", "coverage", "--out"])
        .arg(d.join("a"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&read(&d.join("a/summary.json"))).unwrap();
    let mut seen = vec![];
    for run in summary.as_array().unwrap() {
        let label = run["label"].as_str().unwrap().to_string();
        let n = run["n_total"].as_u64().unwrap();
        assert!(
            ["offline", "on-policy-T2", "on-policy-T4", "hybrid"].contains(&label.as_str()),
            "{label}"
        );
        assert!([20_000, 80_000].contains(&n), "{n}");
        assert!(run["kl"].as_f64().unwrap().is_finite());
        seen.push((label, n));
    }
    assert_eq!(seen.len(), 8);
    let lines = read(&d.join("a/metrics.jsonl")).lines().count();
    assert_eq!(lines, 2 * (1 + 2 + 4 + 2), "one line per run per round");
    let o = bin()
        .args(["align", "-q"])
        .arg(d.join("a/config.json"))
        .arg("--out")
        .arg(d.join("b"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        read(&d.join("a/summary.json")),
        read(&d.join("b/summary.json"))
    );
    let bad_cfg = read(&d.join("a/config.json")).replace(r#""beta": 0.1"#, r#""beta": 0.0"#);
    std::fs::write(d.join("bad.json"), bad_cfg).unwrap();
    let o = bin()
        .args(["align", "-q"])
        .arg(d.join("bad.json"))
        .arg("--out")
        .arg(d.join("c"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("beta"), "{}", stderr(&o));
    let o = bin()
        .args([
            "align",
            "-q",
            "--preset",
            "coverage",
            "--backend",
            "gpu",
            "--out",
        ])
        .arg(d.join("d"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--backend gpu") && stderr(&o).contains("--fit adam"),
        "{}",
        stderr(&o)
    );
    // --fit adam: the first-order fit on the chosen device, recorded in config.json.
    let o = bin()
        .args([
            "align",
            "-q",
            "--preset",
            "rich-features",
            "--fit",
            "adam",
            "--backend",
            "cpu",
            "--out",
        ])
        .arg(d.join("e"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg: serde_json::Value = serde_json::from_str(&read(&d.join("e/config.json"))).unwrap();
    assert_eq!(cfg["experiment"], "samplers");
    assert_eq!(cfg["fit"]["kind"], "first_order");
    assert_eq!(cfg["fit"]["optimizer"]["name"], "adam");
    let o = bin()
        .args(["align", "-q", "--preset", "grpo", "--fit", "adam", "--out"])
        .arg(d.join("f"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no DPO fit"), "{}", stderr(&o));
}

/// Every other alignment preset writes one summary row per run with the values its behaviour is
/// read from, and `--seed` changes the draws of a drawn sample.
#[test]
fn align_presets_write_their_summaries() {
    let d = tempdir("align-presets");
    for (preset, runs, key) in [
        ("degeneracy", 8, "logit_range"),
        ("grpo", 4, "pi_best"),
        ("thinksafe", 4, "generations_per_accepted"),
        ("multitask", 5, "kl_helpful"),
    ] {
        let o = bin()
            .args(["align", "-q", "--preset", preset, "--out"])
            .arg(d.join(preset))
            .output()
            .unwrap();
        assert!(o.status.success(), "{preset}: {}", stderr(&o));
        let s: serde_json::Value =
            serde_json::from_str(&read(&d.join(format!("{preset}/summary.json")))).unwrap();
        let rows = s.as_array().unwrap();
        assert_eq!(rows.len(), runs, "{preset}");
        assert!(
            rows.iter()
                .all(|r| r[key].as_f64().is_some_and(f64::is_finite)),
            "{preset}: {s}"
        );
    }
    let o = bin()
        .args([
            "align",
            "-q",
            "--preset",
            "degeneracy",
            "--seed",
            "5",
            "--out",
        ])
        .arg(d.join("seed5"))
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_ne!(
        read(&d.join("degeneracy/summary.json")),
        read(&d.join("seed5/summary.json"))
    );
}

/// `optiscope prune scores EDGES.csv`: the contract (header `src,dst,score`, one line per input
/// edge in input order) on spec C1's graph, whose scores are known, and bad input refused with
/// exit 2 naming the line.
#[test]
fn prune_scores_prints_the_teddy_score_of_every_edge() {
    let d = tempdir("prune-scores");
    // The spec's edges, in another order and orientation: the scores follow the input.
    std::fs::write(d.join("e.csv"), "src,dst\n4,5\n1,0\n0,2\n0,3\n2,1\n3,4\n").unwrap();
    let o = bin()
        .args(["prune", "scores"])
        .arg(d.join("e.csv"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "src,dst,score");
    let want = [
        ("4,5", 0.3017767),
        ("1,0", 0.0756874),
        ("0,2", 0.0756874),
        ("0,3", 0.0756874),
        ("2,1", 0.1031144),
        ("3,4", 0.1370441),
    ];
    assert_eq!(lines.len(), 1 + want.len());
    for (line, (edge, score)) in lines[1..].iter().zip(want) {
        let (e, s) = line.rsplit_once(',').unwrap();
        assert_eq!(e, edge);
        assert!((s.parse::<f64>().unwrap() - score).abs() < 5e-8, "{line}");
    }
    std::fs::write(d.join("bad.csv"), "src,dst\n0,1\n1,0\n").unwrap();
    let o = bin()
        .args(["prune", "scores"])
        .arg(d.join("bad.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("line 3: duplicate edge 1-0 (first on line 2)"),
        "{}",
        stderr(&o)
    );
}

/// `optiscope prune --preset sbm`: one summary row per run (dense, then each method at each
/// fraction), the exact edge counts, the table, one metrics line per run per epoch, and bad
/// fractions refused.
#[test]
fn prune_sbm_preset_writes_its_table() {
    let d = tempdir("prune-sbm");
    let o = bin()
        .args([
            "prune",
            "--preset",
            "sbm",
            "-q",
            "--backend",
            "cpu",
            "--edges",
            "0.5",
            "--out",
        ])
        .arg(d.join("a"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_str(&read(&d.join("a/summary.json"))).unwrap();
    let rows = rows.as_array().unwrap();
    let methods: Vec<&str> = rows.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["dense", "teddy", "random", "reverse"]);
    let dense = rows[0]["edges"].as_u64().unwrap();
    for r in &rows[1..] {
        assert_eq!(r["edges"].as_u64().unwrap(), dense - dense / 2, "{r}");
        let acc = r["test_accuracy"].as_f64().unwrap();
        assert!((0.4..=1.0).contains(&acc), "{r}");
    }
    assert!(
        rows[1]["isolated"].as_u64() < rows[3]["isolated"].as_u64(),
        "teddy isolates fewer than reverse"
    );
    assert_eq!(read(&d.join("a/metrics.jsonl")).lines().count(), 4 * 200);
    assert_eq!(read(&d.join("a/table.csv")).lines().count(), 5);
    let o = bin()
        .args(["prune", "--preset", "sbm", "-q", "--edges", "1.5", "--out"])
        .arg(d.join("b"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--edges 1.5"), "{}", stderr(&o));
    // The written config repeats a slice of the run (flags override it).
    let o = bin()
        .args(["prune", "-q", "--method", "random", "--config"])
        .arg(d.join("a/config.json"))
        .arg("--out")
        .arg(d.join("c"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let again: serde_json::Value = serde_json::from_str(&read(&d.join("c/summary.json"))).unwrap();
    assert_eq!(again[1], rows[2], "the random row again");
    // UGS runs when asked for, with the exact count of edges removed.
    let o = bin()
        .args([
            "prune", "--preset", "sbm", "-q", "--method", "ugs", "--edges", "0.3", "--out",
        ])
        .arg(d.join("u"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_str(&read(&d.join("u/summary.json"))).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows[1]["method"], "ugs");
    let dense = rows[0]["edges"].as_u64().unwrap();
    assert_eq!(rows[1]["edges"].as_u64().unwrap(), dense - (dense * 3) / 10);
}

/// `optiscope moe`: the files of its contract, every scorer in the summary, the flags applied,
/// a repeat from config.json giving the same numbers, and bad input refused with exit 2.
#[test]
fn moe_writes_its_contract_and_repeats() {
    let d = tempdir("moe");
    let o = bin()
        .args([
            "moe",
            "--preset",
            "tiny",
            "--scoring",
            "gate-mass",
            "--grouping",
            "router",
            "--scaling",
            "cond-gate",
            "--k",
            "3",
            "--steps",
            "20",
            "--seed",
            "4",
            "-q",
            "--out",
        ])
        .arg(d.join("a"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "config.json",
        "metrics.jsonl",
        "teacher.safetensors",
        "dense.safetensors",
        "dense-distilled.safetensors",
        "summary.json",
    ] {
        assert!(d.join("a").join(f).exists(), "{f}");
    }
    let s: serde_json::Value = serde_json::from_str(&read(&d.join("a/summary.json"))).unwrap();
    assert_eq!(s["scoring"], "gate-mass");
    assert_eq!(s["grouping"], "router");
    assert_eq!(s["scaling"], "cond-gate");
    assert_eq!(s["selected"].as_array().unwrap().len(), 3);
    assert_eq!(s["scales"].as_array().unwrap().len(), 3);
    // Router grouping folds all 8 experts into the 3 groups.
    let members: usize = s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_array().unwrap().len())
        .sum();
    assert_eq!(members, 8);
    let errors = s["errors"].as_object().unwrap();
    assert_eq!(errors.len(), 7);
    for (name, e) in errors {
        let (pre, post) = (
            e["pre_distillation"].as_f64().unwrap(),
            e["post_distillation"].as_f64().unwrap(),
        );
        assert!(pre > 0.0 && post > 0.0 && post < pre, "{name}: {e}");
        assert_eq!(
            e["pre_distillation_by_scaling"]["cond-gate"].as_f64(),
            Some(pre),
            "{name}"
        );
    }
    assert_eq!(s["selected"], errors["gate-mass"]["selected"]);
    assert_eq!(read(&d.join("a/metrics.jsonl")).lines().count(), 7 * 20);
    let o = bin()
        .args(["moe", "-q", "--config"])
        .arg(d.join("a/config.json"))
        .arg("--out")
        .arg(d.join("b"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        read(&d.join("a/summary.json")),
        read(&d.join("b/summary.json"))
    );
    // The same tensors bit for bit, and the same header (its metadata map's key order is not
    // fixed by the safetensors crate, so headers are compared as JSON).
    let split = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        (header, bytes[8 + n..].to_vec())
    };
    for f in ["teacher", "dense", "dense-distilled"] {
        let f = format!("{f}.safetensors");
        assert_eq!(
            split(&d.join("a").join(&f)),
            split(&d.join("b").join(&f)),
            "{f}"
        );
    }
    // Bad input: exit 2 with the field named; an existing run is not overwritten.
    for (args, want) in [
        (vec!["--k", "9"], "k"),
        (vec!["--scoring", "best"], "best"),
        (vec!["--steps", "0"], "steps"),
    ] {
        let o = bin()
            .arg("moe")
            .args(&args)
            .arg("--out")
            .arg(d.join("c"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    let o = bin()
        .args(["moe", "-q", "--steps", "1", "--out"])
        .arg(d.join("a"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
}
