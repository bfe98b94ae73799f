//! The assertable behaviours of spec B2b, B3, B4, B5 and B6 over 20 seeds each, through the
//! presets `optiscope align` runs. What is asserted is what holds on every seed or in the median
//! as stated; the medians, ranges and failure counts are printed (`--nocapture`) and the tables
//! in BENCHMARKS.md come from `python3 scripts/align_tables.py` over the same seeds.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use optiscope_core::align::experiment::{align_preset, AlignConfig, RunResult};

const SEEDS: u64 = 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn runs(preset: &str, seed: u64) -> Vec<RunResult> {
    let mut c = align_preset(preset).unwrap();
    *c.seed_mut() = seed;
    c.run(|_| {}).unwrap()
}

fn find<'a>(runs: &'a [RunResult], label: &str) -> &'a RunResult {
    runs.iter().find(|r| r.label == label).unwrap()
}

fn across(preset: &str, label: &str, value: &str) -> Vec<f64> {
    (0..SEEDS)
        .map(|s| find(&runs(preset, s), label).last(value).unwrap())
        .collect()
}

#[test]
fn rich_features_offline_dpo_converges_despite_pointwise_coverage() {
    // Spec B2b: C_∞ ~ 3.5e5 (per seed of the sampler; the features are fixed) yet offline KL <
    // 0.02 — measured over 20 seeds: every seed below 0.02 (the feature-space coverage C_feat of
    // π_ref is ~40).
    let offline = across("rich-features", "offline", "kl");
    let c_feat = across("rich-features", "offline", "c_feat");
    let on = across("rich-features", "on-policy-T4", "kl");
    let rd = across("rich-features", "on-policy-T4-reward-distillation", "kl");
    println!(
        "B2b over {SEEDS} seeds: offline median {:.4} max {:.4}; on-policy T4 median {:.4} max {:.4}; \
         reward distillation median {:.4} max {:.4}; C_feat {:.1}",
        median(offline.clone()),
        offline.iter().copied().fold(0.0, f64::max),
        median(on.clone()),
        on.iter().copied().fold(0.0, f64::max),
        median(rd.clone()),
        rd.iter().copied().fold(0.0, f64::max),
        median(c_feat.clone()),
    );
    assert!(offline.iter().all(|k| *k < 0.02), "{offline:?}");
    assert!(
        c_feat.iter().all(|c| c.is_finite() && *c < 1e3),
        "{c_feat:?}"
    );
    let AlignConfig::Samplers(cfg) = align_preset("rich-features").unwrap() else {
        unreachable!()
    };
    let bandit = cfg.build().unwrap();
    let c_inf = bandit.coverage_inf(
        &bandit.policy(&cfg.theta_star),
        &bandit.policy(&cfg.theta_ref),
    );
    assert!(c_inf > 1e4, "pointwise coverage is poor: {c_inf}");
}

#[test]
fn dpo_degenerates_while_distillation_and_reverse_kl_stay_bounded_and_agree() {
    // Spec B3 over 20 drawn samples of 12 pairs with a never-winning arm: PMLE's logit range grows
    // at every recorded step count and its KL ends above distillation's; distillation and reverse
    // KL agree to 1e-6 and stay bounded (logit range < 10) on every seed.
    let mut ranges_end = vec![];
    let mut distill_kl = vec![];
    let mut pmle_kl = vec![];
    for seed in 0..SEEDS {
        let r = runs("degeneracy", seed);
        let pmle = find(&r, "pmle");
        let ranges: Vec<f64> = pmle
            .records
            .iter()
            .map(|x| x.get("logit_range").unwrap())
            .collect();
        assert!(
            ranges.windows(2).all(|w| w[1] > w[0]),
            "seed {seed}: {ranges:?}"
        );
        let (d, k) = (find(&r, "distillation"), find(&r, "reverse-kl"));
        let (dk, kk) = (d.last("kl").unwrap(), k.last("kl").unwrap());
        assert!((dk - kk).abs() < 1e-6, "seed {seed}: {dk} vs {kk}");
        assert!(d.last("logit_range").unwrap() < 10.0, "seed {seed}");
        assert!(pmle.last("kl").unwrap() > dk, "seed {seed}");
        ranges_end.push(*ranges.last().unwrap());
        distill_kl.push(dk);
        pmle_kl.push(pmle.last("kl").unwrap());
    }
    println!(
        "B3 over {SEEDS} seeds: PMLE after 1e5 steps logit range median {:.2}, KL median {:.2}; \
         distillation KL median {:.3} (max {:.3})",
        median(ranges_end),
        median(pmle_kl),
        median(distill_kl.clone()),
        distill_kl.iter().copied().fold(0.0, f64::max),
    );
}

#[test]
fn grpo_is_mode_seeking_as_the_kl_weight_falls() {
    // Spec B4: on a one-context bandit with a unique best arm π(best) → 1 as β_KL → 0. Over 20
    // seeds the medians of π(best) after 400 iterations increase as the weight falls (0.2, 0.04,
    // 0.01, 0), and at weight 0 the median exceeds 0.95.
    let mut medians = vec![];
    for label in ["grpo-kl=0.2", "grpo-kl=0.04", "grpo-kl=0.01", "grpo-kl=0"] {
        let v = across("grpo", label, "pi_best");
        println!(
            "B4 {label}: π(best) median {:.3}, min {:.3}",
            median(v.clone()),
            v.iter().copied().fold(1.0, f64::min)
        );
        medians.push(median(v));
    }
    assert!(medians.windows(2).all(|w| w[1] > w[0]), "{medians:?}");
    assert!(medians[3] > 0.95, "{medians:?}");
}

#[test]
fn thinksafe_self_generation_is_the_cheaper_kl_optimal_target() {
    // Spec B5 over 20 seeds: the prompt tilt leaves the accepted distribution unchanged (excess
    // KL 0 to 1e-12) and needs fewer generations than rejection on every seed; activation
    // steering and the teacher change it (excess > 0). After SFT every run is safe (median
    // safety > 0.95); the teacher's policy pays more KL to the base on harmful contexts than
    // self-generation on every seed, and more on benign ones in the median.
    let mut gens = (vec![], vec![]);
    let mut kl_h = (vec![], vec![]);
    let mut kl_b = (vec![], vec![]);
    for seed in 0..SEEDS {
        let r = runs("thinksafe", seed);
        let (rej, tilt, act, teacher) = (
            find(&r, "rejection"),
            find(&r, "prompt-tilt"),
            find(&r, "activation"),
            find(&r, "teacher"),
        );
        assert!(tilt.last("accepted_excess_kl").unwrap().abs() < 1e-12);
        assert!(rej.last("accepted_excess_kl").unwrap().abs() < 1e-12);
        assert!(
            act.last("accepted_excess_kl").unwrap() > 1e-4,
            "seed {seed}"
        );
        assert!(
            teacher.last("accepted_excess_kl").unwrap() > 1e-4,
            "seed {seed}"
        );
        let (gr, gt) = (
            rej.last("generations_per_accepted").unwrap(),
            tilt.last("generations_per_accepted").unwrap(),
        );
        assert!(gt < gr, "seed {seed}: {gt} vs {gr}");
        assert!(
            teacher.last("kl_harmful").unwrap() > tilt.last("kl_harmful").unwrap(),
            "seed {seed}"
        );
        gens.0.push(gr);
        gens.1.push(gt);
        kl_h.0.push(tilt.last("kl_harmful").unwrap());
        kl_h.1.push(teacher.last("kl_harmful").unwrap());
        kl_b.0.push(tilt.last("kl_benign").unwrap());
        kl_b.1.push(teacher.last("kl_benign").unwrap());
        for run in &r {
            assert!(
                run.last("safety").unwrap() > 0.9,
                "seed {seed} {}",
                run.label
            );
        }
    }
    println!(
        "B5 over {SEEDS} seeds: generations per accepted sample median {:.2} (rejection) vs {:.2} \
         (prompt tilt); KL(p_θ‖p_ref) harmful median {:.3} (self) vs {:.3} (teacher), benign {:.4} \
         vs {:.4}",
        median(gens.0),
        median(gens.1),
        median(kl_h.0),
        median(kl_h.1),
        median(kl_b.0.clone()),
        median(kl_b.1.clone()),
    );
    assert!(median(kl_b.1) > median(kl_b.0));
}

#[test]
fn multitask_weights_trade_one_task_for_the_other() {
    // Spec B6 over 20 seeds: as the weight moves from `helpful` to `concise`, helpful's KL rises
    // and concise's falls monotonically on every seed (the tasks' rewards pull apart).
    for seed in 0..SEEDS {
        let r = runs("multitask", seed);
        let h: Vec<f64> = r.iter().map(|x| x.last("kl_helpful").unwrap()).collect();
        let c: Vec<f64> = r.iter().map(|x| x.last("kl_concise").unwrap()).collect();
        assert!(h.windows(2).all(|w| w[1] > w[0]), "seed {seed}: {h:?}");
        assert!(c.windows(2).all(|w| w[1] < w[0]), "seed {seed}: {c:?}");
    }
}
