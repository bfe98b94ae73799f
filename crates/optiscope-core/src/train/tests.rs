use super::quantizer::{quant_optimizer, revised_prox, Gates, Quantizer};
use super::*;
use crate::device::quant::kernel::{ProxScalars, DPARAMS};
use crate::device::{Cpu, QuantOps};
use crate::optim::OptimizerConfig;
use crate::quant::dropbits::{hard_concrete, hard_concrete_open_prob, DropBitsConfig};
use crate::quant::{self, LearnBitsConfig};
use crate::Tensor;

/// The trainer's quantizer, to look inside.
fn quantizer(t: &mut Trainer<Cpu>) -> &mut Quantizer<Cpu> {
    t.transform
        .as_any_mut()
        .downcast_mut::<Quantizer<Cpu>>()
        .expect("the trainer's transform is its quantizer")
}

fn run(cfg: TrainConfig) -> (Trainer<Cpu>, Vec<EpochMetrics>) {
    let (train, test) = cfg.data.load(cfg.test_fraction, cfg.split_seed);
    let mut t = Trainer::new(cfg, &train, &test, Cpu).unwrap();
    let mut out = vec![];
    while !t.finished() {
        if let Some(m) = t.step().unwrap() {
            out.push(m);
        }
    }
    (t, out)
}

fn cfg(method: QuantMethod, bits: u32, epochs: u64) -> TrainConfig {
    TrainConfig {
        quant: QuantConfig::new(method, bits),
        epochs,
        ..TrainConfig::default()
    }
}

#[test]
fn every_quantizer_trains_the_digits() {
    for (method, floor) in [
        (QuantMethod::None, 0.93),
        (QuantMethod::Ste, 0.85),
        (QuantMethod::Lsq, 0.85),
        (QuantMethod::Rq, 0.85),
        (QuantMethod::Srq, 0.85),
        (QuantMethod::Cpq, 0.85),
        (QuantMethod::Proxquant, 0.85),
    ] {
        let (_, m) = run(cfg(method, 4, 3));
        let last = m.last().unwrap();
        eprintln!("{method:?} 4-bit, 3 epochs: {last:?}");
        assert_eq!(m.len(), 3);
        assert!(
            last.test_accuracy >= floor,
            "{method:?}: {}",
            last.test_accuracy
        );
        assert!(last.train_loss.is_finite());
    }
}

/// The quantizers × optimizer families of the resume claim (README): every quantizer (CPQ with
/// DropBits and with learned bits) under SGD with momentum, AdamW, Muon, Schedule-Free AdamW and
/// AMUSE (ProxQuant revised under AdamW, the original elsewhere), and AdaBlock, MeZO and MeZO-BCD
/// in full precision. `optiscope-gpu`'s conformance
/// tests run a part of the same table on the GPU.
fn resume_table() -> Vec<(String, TrainConfig)> {
    let optimizers = [
        r#"{"name": "sgd", "lr": 0.05, "momentum": 0.9}"#,
        r#"{"name": "adamw", "lr": 0.01}"#,
        r#"{"name": "muon", "lr": 0.02}"#,
        r#"{"name": "adamw_schedulefree", "lr": 0.01, "warmup_steps": 5}"#,
        r#"{"name": "amuse", "lr": 0.02, "warmup_steps": 5}"#,
    ];
    let mut quants: Vec<QuantConfig> = QuantMethod::ALL
        .iter()
        .map(|&m| QuantConfig::new(m, 3))
        .collect();
    quants.push(QuantConfig {
        learn_bits: Some(LearnBitsConfig::default()),
        dropbits: Some(DropBitsConfig::default()),
        ..QuantConfig::new(QuantMethod::Cpq, 3)
    });
    let mut out = vec![];
    for opt in optimizers {
        let optimizer: OptimizerConfig = serde_json::from_str(opt).unwrap();
        for quant in &quants {
            let mut quant = quant.clone();
            if quant.method == QuantMethod::Proxquant {
                quant.revised = optimizer.name() == "adamw";
                quant.reg_rate = 2e-3;
            }
            let label = format!(
                "{} × {}{}",
                optimizer.name(),
                quant.method.name(),
                if quant.learn_bits.is_some() {
                    " (learned bits)"
                } else {
                    ""
                }
            );
            out.push((
                label,
                TrainConfig {
                    quant,
                    optimizer: optimizer.clone(),
                    hidden: vec![16],
                    epochs: 2,
                    ..TrainConfig::default()
                },
            ));
        }
    }
    // Issue 11's optimizers in full precision (MeZO trains without a quantizer).
    for opt in [
        r#"{"name": "adablock", "lr": 0.01, "groups": 16}"#,
        r#"{"name": "mezo", "lr": 0.01, "weight_decay": 0.1}"#,
        r#"{"name": "mezo_bcd", "lr": 0.01, "schedule": "permutation"}"#,
    ] {
        let optimizer: OptimizerConfig = serde_json::from_str(opt).unwrap();
        out.push((
            format!("{} × none", optimizer.name()),
            TrainConfig {
                optimizer,
                hidden: vec![16],
                epochs: 2,
                ..TrainConfig::default()
            },
        ));
    }
    out
}

/// Every run of [`resume_table`] saved in the middle of its first epoch (after 7 of 23
/// minibatches) and restored into a fresh trainer ends one epoch and 3 minibatches later with the
/// same weights, quantizer and optimizer state as the uninterrupted run, bit for bit.
#[test]
fn resume_is_bit_for_bit_for_every_quantizer_and_optimizer_family() {
    let table = resume_table();
    assert_eq!(table.len(), 5 * 8 + 3);
    for (label, c) in table {
        let (train, test) = c.data.load(c.test_fraction, c.split_seed);
        let new = || Trainer::new(c.clone(), &train, &test, Cpu).unwrap();
        let mut full = new();
        let total = full.batches_per_epoch() + 3;
        for _ in 0..total {
            full.step().unwrap();
        }
        let mut a = new();
        for _ in 0..7 {
            a.step().unwrap();
        }
        let bytes = a.save().unwrap().to_bytes().unwrap();
        let mut b = new();
        b.restore(Checkpoint::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(b.steps(), 7, "{label}");
        for _ in 7..total {
            b.step().unwrap();
        }
        let (fa, fb) = (full.save().unwrap(), b.save().unwrap());
        assert_eq!(fa.tensors, fb.tensors, "{label}");
        assert_eq!(fa.meta, fb.meta, "{label}");
    }
}

#[test]
fn mismatched_checkpoint_is_refused() {
    let c = cfg(QuantMethod::Cpq, 2, 1);
    let (train, test) = c.data.load(c.test_fraction, c.split_seed);
    let mut a = Trainer::new(c, &train, &test, Cpu).unwrap();
    let saved = a.save().unwrap();
    let c2 = TrainConfig {
        hidden: vec![64],
        ..cfg(QuantMethod::Cpq, 2, 1)
    };
    let mut b = Trainer::new(c2, &train, &test, Cpu).unwrap();
    let err = b.restore(saved).unwrap_err().to_string();
    assert!(err.contains("model.w0"), "{err}");
}

/// A checkpoint whose position is outside the run is refused with the reason (it indexed past
/// the shuffled order and panicked before).
#[test]
fn a_crafted_position_is_refused() {
    let c = cfg(QuantMethod::None, 4, 2);
    let (train, test) = c.data.load(c.test_fraction, c.split_seed);
    let mut a = Trainer::new(c.clone(), &train, &test, Cpu).unwrap();
    for _ in 0..3 {
        a.step().unwrap();
    }
    let saved = a.save().unwrap();
    let pos: serde_json::Value = serde_json::from_str(&saved.meta["position"]).unwrap();
    let bpe = a.batches_per_epoch();
    for (field, value, want) in [
        ("batch", serde_json::json!(1_000_000), "not below the"),
        ("batch", serde_json::json!(bpe), "not below the"),
        ("step", serde_json::json!(7), "does not follow"),
        ("seen", serde_json::json!(1), "rows seen"),
        ("correct", serde_json::json!(1e9), "do not fit"),
    ] {
        let mut crafted = saved.clone();
        let mut p = pos.clone();
        p[field] = value;
        crafted.meta.insert("position".into(), p.to_string());
        let mut b = Trainer::new(c.clone(), &train, &test, Cpu).unwrap();
        let err = b.restore(crafted).unwrap_err().to_string();
        assert!(
            err.contains("position") && err.contains(want),
            "{field}: {err}"
        );
    }
    let mut b = Trainer::new(c, &train, &test, Cpu).unwrap();
    b.restore(saved).unwrap();
    assert_eq!(b.steps(), 3);
}

#[test]
fn revised_proxquant_needs_adam() {
    let mut c = cfg(QuantMethod::Proxquant, 2, 1);
    c.optimizer = serde_json::from_str(r#"{"name":"sgd","lr":0.1}"#).unwrap();
    let (train, test) = c.data.load(c.test_fraction, c.split_seed);
    let err = Trainer::new(c.clone(), &train, &test, Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("adam"), "{err}");
    c.optimizer = serde_json::from_str(r#"{"name":"adam","amsgrad":true}"#).unwrap();
    let err = Trainer::new(c, &train, &test, Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("amsgrad is not supported"), "{err}");
}

/// optiscope-level check of revised ProxQuant (optimizers.md §5.4 vector): two Adam steps
/// (η = 0.1, no weight decay), each followed by the binary prox with the per-coordinate threshold
/// `ηλ / (√v̂ + ε)`, λ = 0.05 — the path the trainer takes (`revised_prox`, `prox_grid`).
#[test]
fn revised_proxquant_two_adam_steps_vector() {
    let p0 = [0.5f32, -0.02, 0.3, -0.8, 0.05];
    let grads = [
        [0.1f32, 0.01, -0.2, 0.05, 0.3],
        [0.2, -0.01, -0.1, 0.0, 0.2],
    ];
    let want = [
        [
            0.450000005,
            -0.6199994,
            0.4249999938,
            -0.99999996,
            -0.06666666278,
        ],
        [0.3850998384, -1.0, 0.5498454732, -1.0, -0.1833153715],
    ];
    let cfg: OptimizerConfig =
        serde_json::from_str(r#"{"name":"adam","lr":0.1,"weight_decay":0}"#).unwrap();
    let meta = [Param::new("w", Tensor::new(vec![5], p0.to_vec()).unwrap())];
    let mut exec = cfg.build_on(&mut Cpu, &meta).unwrap();
    let mut params = vec![p0.to_vec()];
    for (g, want) in grads.iter().zip(want) {
        exec.step(&mut Cpu, &mut params, &[&g.to_vec()]).unwrap();
        let scalars = [ProxScalars::binary(0.1 * 0.05)];
        let model = ModelState {
            params: &mut params,
            weights: &[0],
            opt: exec.as_ref(),
        };
        revised_prox(&mut Cpu, model, &scalars, 0.999, 1e-8).unwrap();
        for (got, w) in params[0].iter().zip(want) {
            assert!(
                (f64::from(*got) - w).abs() < 1e-6,
                "{:?} vs {want:?}",
                params[0]
            );
        }
    }
}

/// Resume is bit for bit with every optimizer family (state visited by name: moments, momentum,
/// Schedule-Free averages and modes, AMUSE's β and c_{T0} before and after warmup).
#[test]
fn resume_is_bit_for_bit_for_every_optimizer() {
    for opt in [
        r#"{"name":"sgd","lr":0.05,"momentum":0.9,"nesterov":true}"#,
        r#"{"name":"muon","lr":0.02}"#,
        r#"{"name":"adamw_schedulefree","lr":0.005}"#,
        r#"{"name":"amuse","lr":0.02,"warmup_steps":40}"#,
        r#"{"name":"amuse","lr":0.02,"warmup_steps":10}"#,
    ] {
        let c = TrainConfig {
            optimizer: serde_json::from_str(opt).unwrap(),
            quant: QuantConfig::new(QuantMethod::Lsq, 3),
            hidden: vec![16],
            epochs: 2,
            ..TrainConfig::default()
        };
        let (train, test) = c.data.load(c.test_fraction, c.split_seed);
        let (mut full, _) = run(c.clone());
        let mut a = Trainer::new(c.clone(), &train, &test, Cpu).unwrap();
        for _ in 0..20 {
            a.step().unwrap();
        }
        let bytes = a.save().unwrap().to_bytes().unwrap();
        let mut b = Trainer::new(c.clone(), &train, &test, Cpu).unwrap();
        b.restore(Checkpoint::from_bytes(&bytes).unwrap()).unwrap();
        while !b.finished() {
            b.step().unwrap();
        }
        assert_eq!(
            full.save().unwrap().tensors,
            b.save().unwrap().tensors,
            "{opt}"
        );
    }
}

/// A finished run extended with `set_epochs` (`--resume DIR --epochs N`) continues exactly like a
/// run that was asked for N epochs from the start: the next epoch gets its own shuffle and its
/// data-derived steps (STE, ProxQuant) are refreshed — also when restored from the checkpoint
/// written at the end.
#[test]
fn extending_a_finished_run_equals_a_longer_run() {
    for method in [QuantMethod::Ste, QuantMethod::Proxquant, QuantMethod::Cpq] {
        let c = TrainConfig {
            quant: QuantConfig::new(method, 3),
            hidden: vec![16],
            epochs: 4,
            ..TrainConfig::default()
        };
        let (train, test) = c.data.load(c.test_fraction, c.split_seed);
        let (mut long, long_metrics) = run(c.clone());
        let short = TrainConfig {
            epochs: 2,
            ..c.clone()
        };
        let (mut a, _) = run(short.clone());
        a.set_epochs(4);
        let mut metrics = vec![];
        while !a.finished() {
            metrics.extend(a.step().unwrap());
        }
        assert_eq!(metrics, long_metrics[2..], "{method:?} extended in place");
        let (mut done, _) = run(short);
        let bytes = done.save().unwrap().to_bytes().unwrap();
        let mut b = Trainer::new(c.clone(), &train, &test, Cpu).unwrap();
        b.restore(Checkpoint::from_bytes(&bytes).unwrap()).unwrap();
        while !b.finished() {
            b.step().unwrap();
        }
        let want = long.save().unwrap().tensors;
        assert_eq!(want, a.save().unwrap().tensors, "{method:?}");
        assert_eq!(
            want,
            b.save().unwrap().tensors,
            "{method:?} from the checkpoint"
        );
    }
}

#[test]
fn quantizer_parameters_get_no_weight_decay_and_ignore_groups() {
    let cfg: OptimizerConfig = serde_json::from_str(
        r#"{"name":"adamw","lr":0.01,"weight_decay":0.1,
            "param_groups":[{"params":["w0"],"lr":0.001}]}"#,
    )
    .unwrap();
    let q = quant_optimizer(&cfg);
    let v = serde_json::to_value(&q).unwrap();
    assert_eq!(v["weight_decay"], 0.0);
    assert!(v.get("param_groups").is_none(), "{v}");
    let muon: OptimizerConfig = serde_json::from_str(r#"{"name":"muon"}"#).unwrap();
    let v = serde_json::to_value(quant_optimizer(&muon)).unwrap();
    assert_eq!(v["aux_adam"]["weight_decay"], 0.0, "{v}");
    // A run whose groups name model parameters trains with a learned quantizer.
    let c = TrainConfig {
        optimizer: cfg,
        quant: QuantConfig::new(QuantMethod::Rq, 2),
        hidden: vec![8],
        epochs: 1,
        ..TrainConfig::default()
    };
    let (train, test) = c.data.load(c.test_fraction, c.split_seed);
    assert!(Trainer::new(c, &train, &test, Cpu).is_ok());
}

/// Looking at a run (evaluation, layer views) never changes it: with Schedule-Free, whose
/// evaluation point is an average, a run inspected after every step ends where an uninspected
/// one does, bit for bit.
#[test]
fn inspecting_a_run_does_not_perturb_it() {
    let c = TrainConfig {
        optimizer: serde_json::from_str(r#"{"name":"adamw_schedulefree","lr":0.005}"#).unwrap(),
        quant: QuantConfig::new(QuantMethod::Rq, 2),
        hidden: vec![16],
        epochs: 1,
        ..TrainConfig::default()
    };
    let (train, test) = c.data.load(c.test_fraction, c.split_seed);
    let mut a = Trainer::new(c.clone(), &train, &test, Cpu).unwrap();
    let mut b = Trainer::new(c, &train, &test, Cpu).unwrap();
    for _ in 0..10 {
        a.step().unwrap();
        b.step().unwrap();
        b.layer_view(0).unwrap();
        b.evaluate_test().unwrap();
    }
    assert_eq!(a.save().unwrap().tensors, b.save().unwrap().tensors);
    // And the view is at the average, not at the gradient point y.
    let y = a.save().unwrap().tensors["model.w0"].1.clone();
    assert_ne!(a.layer_view(0).unwrap().weights, y);
}

// ---- the trainer's own gradients against finite differences --------------------------------

/// A small run (digits, one hidden layer of 8) that has taken 5 minibatches, so the weights and
/// the quantizer's parameters have moved off their initial values.
fn moved(quant: QuantConfig) -> Trainer<Cpu> {
    let c = TrainConfig {
        quant,
        hidden: vec![8],
        epochs: 1,
        ..TrainConfig::default()
    };
    let (train, test) = c.data.load(c.test_fraction, c.split_seed);
    let mut t = Trainer::new(c, &train, &test, Cpu).unwrap();
    for _ in 0..5 {
        t.step().unwrap();
    }
    t
}

/// The mean cross-entropy of the trainer's current minibatch (its training forward, same noise),
/// summed in f64 from the logits: the f32 statistics of the trainer are too coarse to difference.
fn minibatch_loss(t: &mut Trainer<Cpu>) -> f64 {
    let (fwd, labels, n) = t.minibatch_forward();
    let logits = fwd.acts.last().unwrap();
    let classes = logits.len() / n;
    let total: f64 = logits
        .chunks(classes)
        .zip(&labels)
        .map(|(row, &label)| {
            let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            lse - row[label as usize]
        })
        .sum();
    total / n as f64
}

/// `[L(p + ε·dir) − L(p − ε·dir)] / 2ε` for model parameter `i`, with ε = 1e-4 / max|dir|.
fn directional_fd(t: &mut Trainer<Cpu>, i: usize, dir: &[f32]) -> f64 {
    let scale = dir.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-30);
    let eps = 1e-4 / scale;
    let base = t.params[i].clone();
    let shifted = |sign: f32| -> Vec<f32> {
        base.iter()
            .zip(dir)
            .map(|(p, d)| p + sign * eps * d)
            .collect()
    };
    t.params[i] = shifted(1.0);
    let up = minibatch_loss(t);
    t.params[i] = shifted(-1.0);
    let down = minibatch_loss(t);
    t.params[i] = base;
    (up - down) / (2.0 * f64::from(eps))
}

fn random_direction(seed: u64, n: usize) -> Vec<f32> {
    let mut v = vec![0.0; n];
    crate::rng::Philox::new(seed).fill_normal(0, 1.0, &mut v);
    v
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// `|got − want| ≤ 2e-2·|want| + 1e-3`: f32 logits differenced at ε = 1e-4 and the odd ReLU
/// kink inside ±ε; a missing factor or term is an O(1) error.
#[track_caller]
fn assert_fd(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 2e-2 * want.abs() + 1e-3,
        "{what}: trainer {got:.6e}, finite differences {want:.6e}"
    );
}

/// Where the training forward is differentiable — full precision, and Relaxed Quantization with
/// its Gumbel noise fixed — the trainer's gradients of weights, biases and quantizer parameters
/// (log α, log σ) are the finite differences of its own training loss.
#[test]
fn trainer_gradients_match_finite_differences_of_the_training_loss() {
    for quant in [
        QuantConfig::new(QuantMethod::None, 4),
        QuantConfig::new(QuantMethod::Rq, 3),
    ] {
        let method = quant.method;
        let mut t = moved(quant);
        let g = t.minibatch_grads().unwrap();
        for i in 0..t.params.len() {
            for k in 0..2 {
                let dir = random_direction(100 + 10 * i as u64 + k, t.params[i].len());
                let fd = directional_fd(&mut t, i, &dir);
                assert_fd(
                    &format!("{method:?} model.{}", t.metas[i].name),
                    dot(&g.grads[i], &dir),
                    fd,
                );
            }
        }
        let nq = quantizer(&mut t).qparams.len();
        for q in 0..nq {
            let h = 1e-4f32;
            let base = quantizer(&mut t).qparams[q].value.data()[0];
            quantizer(&mut t).qparams[q].value.data_mut()[0] = base + h;
            let up = minibatch_loss(&mut t);
            quantizer(&mut t).qparams[q].value.data_mut()[0] = base - h;
            let down = minibatch_loss(&mut t);
            quantizer(&mut t).qparams[q].value.data_mut()[0] = base;
            let fd = (up - down) / (2.0 * f64::from(h));
            assert_fd(
                &format!("{method:?} quant.{}", quantizer(&mut t).qparams[q].name),
                f64::from(g.host_grads[q].data()[0]),
                fd,
            );
        }
        assert_eq!(nq, if method == QuantMethod::Rq { 4 } else { 0 });
    }
}

/// For every quantizer, the trainer's gradients are the chain rule through its quantizer:
/// weights `gain ⊙ ∂L/∂x̂`, biases `∂L/∂b`, and the quantizer's parameters
/// `Σ_i ∂L/∂x̂_i · ∂x̂_i/∂θ` (times α or σ for their logs, LSQ's gradient scale for its step, and
/// the hard-concrete chain for learned bits), where `∂L/∂x̂` comes from finite differences of a
/// full-precision forward at the quantized weights x̂ — not from the trainer's backward.
#[test]
fn trainer_gradients_follow_the_chain_rule_of_every_quantizer() {
    let mut quants: Vec<QuantConfig> = QuantMethod::ALL
        .iter()
        .map(|&m| QuantConfig::new(m, 3))
        .collect();
    quants.push(QuantConfig {
        learn_bits: Some(LearnBitsConfig {
            lambda: 0.05,
            init_log_a: 0.5,
        }),
        dropbits: None,
        ..QuantConfig::new(QuantMethod::Cpq, 3)
    });
    for quant in quants {
        let label = format!(
            "{:?} learn_bits={}",
            quant.method,
            quant.learn_bits.is_some()
        );
        let mut t = moved(quant);
        let g = t.minibatch_grads().unwrap();
        // The full-precision twin at x̂: same minibatch, same biases, weights replaced by x̂.
        let mut fp = moved(QuantConfig::new(QuantMethod::None, 3));
        fp.order = t.order.clone();
        fp.pos = t.pos;
        fp.params = t.params.clone();
        let layers = t.weights.len();
        let step = t.pos.step;
        let mut quantized = vec![];
        for l in 0..layers {
            let (spec, noise, gates) = quantizer(&mut t).train_spec(&mut Cpu, l, step);
            let w = t.params[2 * l].clone();
            let (xhat, gain, dparams) = match &spec {
                Some(spec) => {
                    let q = Cpu.quantize(&w, spec, noise.as_ref());
                    (q.xhat, q.gain, q.dparams)
                }
                None => (w.clone(), vec![1.0; w.len()], vec![]),
            };
            fp.params[2 * l] = xhat;
            quantized.push((gain, dparams, gates));
        }
        for (l, (gain, dparams, gates)) in quantized.into_iter().enumerate() {
            let w = &t.params[2 * l];
            let what = format!("{label} layer {l}");
            for k in 0..2 {
                let v = random_direction(200 + 10 * l as u64 + k, w.len());
                let along: Vec<f32> = v.iter().zip(&gain).map(|(a, b)| a * b).collect();
                let fd = directional_fd(&mut fp, 2 * l, &along);
                assert_fd(&format!("{what} weights"), dot(&g.grads[2 * l], &v), fd);
                let vb = random_direction(300 + 10 * l as u64 + k, t.params[2 * l + 1].len());
                let fd = directional_fd(&mut fp, 2 * l + 1, &vb);
                assert_fd(&format!("{what} biases"), dot(&g.grads[2 * l + 1], &vb), fd);
            }
            let Some(first) = quantizer(&mut t).layers[l].first else {
                continue;
            };
            // Σ_i ∂L/∂x̂_i · dparams[i][j]: a directional derivative along column j.
            let column =
                |j: usize| -> Vec<f32> { dparams.chunks(DPARAMS).map(|row| row[j]).collect() };
            let mut sums: Vec<f64> = (0..DPARAMS)
                .map(|j| directional_fd(&mut fp, 2 * l, &column(j)))
                .collect();
            let (alpha, sigma) = quantizer(&mut t).alpha_sigma(l);
            let q = t.cfg.quant.clone();
            let mut want = vec![];
            if q.method == QuantMethod::Lsq {
                let nw = t.metas[2 * l].value.len();
                want.push(f64::from(quant::lsq_grad_scale(nw, q.bits)) * sums[0]);
            } else {
                want.push(alpha * sums[0]);
                want.push(sigma * sums[1]);
                if let (Some(gates), Some(lb)) = (&gates, &q.learn_bits) {
                    sums.drain(..2);
                    sums.truncate(q.bits as usize);
                    want.extend(gates.grad_log_a(&sums, lb.lambda));
                }
            }
            let got: Vec<f64> = (first..)
                .take_while(|&p| {
                    let qp = &quantizer(&mut t).qparams;
                    p < qp.len() && qp[p].name.starts_with(&format!("w{l}."))
                })
                .flat_map(|p| {
                    g.host_grads[p]
                        .data()
                        .iter()
                        .map(|&v| f64::from(v))
                        .collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(got.len(), want.len(), "{what}: quantizer parameters");
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_fd(&format!("{what} quantizer parameter {k}"), *a, *b);
            }
        }
    }
}

/// `Gates::grad_log_a` is the derivative of `Σ_j ∂L/∂K_j · K_j(log a) + λ Σ_i P(z_i ≠ 0)` with the
/// uniforms fixed, `K_j = Π_{i ≤ j} z_i` the nested hard-concrete gates (finite differences).
#[test]
fn gate_gradients_match_finite_differences() {
    let u = [0.3, 0.8, 0.55];
    let dk = [0.0, 0.7, -1.3, 0.4]; // ∂L/∂K_j for levels 1..=4 (level 1 is never gated)
    let lambda = 0.2;
    let phi = |la: &[f64]| -> f64 {
        let mut k = 1.0;
        let mut total = 0.0;
        for (i, (&a, &ui)) in la.iter().zip(&u).enumerate() {
            k *= hard_concrete(a, ui).0;
            total += dk[i + 1] * k + lambda * hard_concrete_open_prob(a).0;
        }
        total
    };
    for la in [[0.5, -0.2, 1.0], [2.0, 0.1, -0.5], [0.0, 0.0, 0.0]] {
        let gates = Gates::sample(&la, &u);
        assert!(
            gates.dz.iter().all(|&d| d > 0.0),
            "every gate inside its clamp: {la:?}"
        );
        let grad = gates.grad_log_a(&dk, lambda);
        for i in 0..3 {
            let h = 1e-6;
            let (mut up, mut down) = (la, la);
            up[i] += h;
            down[i] -= h;
            let fd = (phi(&up) - phi(&down)) / (2.0 * h);
            assert!(
                (grad[i] - fd).abs() <= 1e-6 * fd.abs().max(1.0),
                "log a {la:?}, gate {i}: {} vs {fd}",
                grad[i]
            );
        }
    }
}

/// The learned-bits claim of BENCHMARKS.md as a test: the bit cost λ moves the learned
/// bit-widths — a large λ ends with fewer bits than a small one, on every seed of 0..3.
#[test]
fn the_bit_cost_lowers_the_learned_bit_widths() {
    let bits = |lambda: f64, seed: u64| -> Vec<u32> {
        let c = TrainConfig {
            quant: QuantConfig {
                learn_bits: Some(LearnBitsConfig {
                    lambda,
                    ..LearnBitsConfig::default()
                }),
                ..QuantConfig::new(QuantMethod::Cpq, 4)
            },
            hidden: vec![32],
            epochs: 20,
            seed,
            ..TrainConfig::default()
        };
        let (_, m) = run(c);
        m.last().unwrap().layers.iter().map(|l| l.bits).collect()
    };
    for seed in 0..3 {
        let (small, large) = (bits(0.001, seed), bits(0.5, seed));
        eprintln!("seed {seed}: bits with λ = 0.001 {small:?}, with λ = 0.5 {large:?}");
        assert_eq!(small, [4, 4], "seed {seed}: λ = 0.001 keeps every bit");
        assert!(
            large.iter().sum::<u32>() < small.iter().sum::<u32>(),
            "seed {seed}: λ = 0.5 gives {large:?}, λ = 0.001 {small:?}"
        );
    }
}

/// MeZO and MeZO-BCD train the digits MLP (64-32-10, lr 0.01, 3 epochs of 23 minibatches) from
/// forward passes alone: over seeds 0..6 the third epoch's training loss is below the first's
/// for every seed, and the median drop is stated in the failure message.
#[test]
fn zeroth_order_methods_train_the_mlp_from_forward_passes() {
    for opt in [
        r#"{"name": "mezo", "lr": 0.01}"#,
        r#"{"name": "mezo_bcd", "lr": 0.01}"#,
    ] {
        let mut drops = vec![];
        for seed in 0..6 {
            let c = TrainConfig {
                optimizer: serde_json::from_str(opt).unwrap(),
                hidden: vec![32],
                epochs: 3,
                seed,
                ..TrainConfig::default()
            };
            let (train, test) = c.data.load(c.test_fraction, c.split_seed);
            let mut t = Trainer::new(c, &train, &test, Cpu).unwrap();
            let mut losses = vec![];
            while !t.finished() {
                if let Some(m) = t.step().unwrap() {
                    losses.push(m.train_loss);
                }
            }
            drops.push(losses[0] - losses[2]);
        }
        let mut sorted = drops.clone();
        sorted.sort_by(f64::total_cmp);
        let median = (sorted[2] + sorted[3]) / 2.0;
        assert!(
            drops.iter().all(|&d| d > 0.0),
            "{opt}: loss drops epoch 1 -> 3 per seed {drops:?} (median {median:.3})"
        );
    }
}

#[test]
fn zeroth_order_methods_refuse_a_quantizer() {
    let c = TrainConfig {
        optimizer: serde_json::from_str(r#"{"name": "mezo"}"#).unwrap(),
        quant: QuantConfig::new(QuantMethod::Lsq, 4),
        ..TrainConfig::default()
    };
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("quant.method") && err.contains("mezo"),
        "{err}"
    );
}
