use super::*;
use crate::optim::Cpu;
use crate::quant::dropbits::DropBitsConfig;
use crate::quant::LearnBitsConfig;

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

/// A run saved mid-epoch and restored into a fresh trainer ends with the same weights, bit for bit.
#[test]
fn resume_is_bit_for_bit() {
    for quant in [
        QuantConfig::new(QuantMethod::Cpq, 2),
        QuantConfig {
            learn_bits: Some(LearnBitsConfig::default()),
            dropbits: Some(DropBitsConfig::default()),
            ..QuantConfig::new(QuantMethod::Cpq, 3)
        },
        QuantConfig::new(QuantMethod::Rq, 2),
        QuantConfig::new(QuantMethod::Proxquant, 2),
        QuantConfig::new(QuantMethod::Lsq, 3),
    ] {
        let c = TrainConfig {
            quant,
            epochs: 2,
            ..TrainConfig::default()
        };
        let (mut full, _) = run(c.clone());
        let (train, test) = c.data.load(c.test_fraction, c.split_seed);
        let mut a = Trainer::new(c.clone(), &train, &test, Cpu).unwrap();
        for _ in 0..31 {
            a.step().unwrap();
        }
        let bytes = a.save().unwrap().to_bytes().unwrap();
        let mut b = Trainer::new(c.clone(), &train, &test, Cpu).unwrap();
        b.restore(Checkpoint::from_bytes(&bytes).unwrap()).unwrap();
        while !b.finished() {
            b.step().unwrap();
        }
        let fa = full.save().unwrap();
        let fb = b.save().unwrap();
        assert_eq!(fa.tensors, fb.tensors, "{:?}", c.quant.method);
        assert_eq!(fa.meta, fb.meta);
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
/// `ηλ / (√v̂ + ε)`, λ = 0.05 — the path the trainer takes (`ProxVisitor`, `prox_grid`).
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
        let mut dev = Cpu;
        let mut v = ProxVisitor {
            dev: &mut dev,
            params: &mut params,
            scalars: vec![ProxScalars::binary(0.1 * 0.05)],
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
        };
        exec.visit_state(&mut v);
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
