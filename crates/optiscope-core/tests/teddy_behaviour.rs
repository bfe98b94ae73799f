//! Spec C1's assertable behaviours over 20 seeds of the degree-corrected SBM (n = 300, three
//! communities): TEDDY isolates fewer nodes than reverse pruning at every level on every seed;
//! the pruned counts are exact and the masks nested. The spec's "no more than random + 2 on
//! average" holds at 30 % and 50 % of the edges removed but not at 70 % over 20 seeds — here
//! (mean 43.9 against random's 36.5) nor in the spec's own numpy code over seeds 0..19 (41.6
//! against 38.4) — so it is asserted at 30 % and 50 % and the 70 % means are printed
//! (`--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use optiscope_core::sparsify::experiment::{edge_masks, EdgeMethod};
use optiscope_core::sparsify::sbm::SbmConfig;

const SEEDS: u64 = 20;
const LEVELS: [f64; 3] = [0.3, 0.5, 0.7];

#[test]
fn teddy_isolates_fewer_nodes_than_reverse_and_about_as_many_as_random() {
    let mut sum = [[0usize; 3]; 3]; // [method][level]
    for seed in 0..SEEDS {
        let g = SbmConfig::default().generate(seed).unwrap().graph;
        let mut iso = [[0usize; 3]; 3];
        for (m, method) in EdgeMethod::ONE_SHOT.into_iter().enumerate() {
            let masks = edge_masks(&g, method, &LEVELS, seed).unwrap();
            for (l, keep) in masks.iter().enumerate() {
                let removed = keep.iter().filter(|k| !**k).count();
                assert_eq!(removed, (g.edges.len() as f64 * LEVELS[l]).floor() as usize);
                if l > 0 {
                    assert!(
                        masks[l].iter().zip(&masks[l - 1]).all(|(h, lo)| !*h || *lo),
                        "nested"
                    );
                }
                iso[m][l] = g.subgraph(keep).isolated();
                sum[m][l] += iso[m][l];
            }
        }
        for l in 0..3 {
            assert!(
                iso[0][l] < iso[2][l],
                "seed {seed} level {}: teddy {} vs reverse {}",
                LEVELS[l],
                iso[0][l],
                iso[2][l]
            );
        }
    }
    for (l, p) in LEVELS.iter().enumerate() {
        let mean = |m: usize| sum[m][l] as f64 / SEEDS as f64;
        println!(
            "{:.0} % removed: isolated nodes, mean over {SEEDS} seeds: teddy {:.1}, random {:.1}, reverse {:.1}",
            100.0 * p,
            mean(0),
            mean(1),
            mean(2)
        );
        if *p < 0.6 {
            assert!(
                mean(0) <= mean(1) + 2.0,
                "level {p}: teddy {} vs random {}",
                mean(0),
                mean(1)
            );
        }
    }
}

#[test]
fn distillation_does_not_hurt_at_half_the_weights() {
    // Spec C1: TEDDY at 50 % of the edges with the weights projected onto the ℓ0 ball keeping
    // 50 %, with and without distilling (λ = 10) from the whole graph's model: over 20 seeds the
    // mean accuracy with distillation is not below the mean without (spec, 3 seeds: 0.831 →
    // 0.889); the means and the seeds where it is lower are printed.
    use optiscope_core::device::Cpu;
    use optiscope_core::sparsify::experiment::PruneConfig;
    let (mut plain, mut distilled, mut worse) = (0.0, 0.0, 0);
    for seed in 0..SEEDS {
        let mut cfg = PruneConfig {
            fractions: vec![0.5],
            methods: vec![EdgeMethod::Teddy],
            seed,
            ..PruneConfig::default()
        };
        cfg.train.weight_sparsity = 0.5;
        let a = cfg.run(&mut Cpu, |_, _| {}).unwrap()[1].test_accuracy;
        cfg.train.distill = 10.0;
        let b = cfg.run(&mut Cpu, |_, _| {}).unwrap()[1].test_accuracy;
        plain += a / SEEDS as f64;
        distilled += b / SEEDS as f64;
        worse += usize::from(b < a);
    }
    println!(
        "TEDDY 50 % edges, 50 % weights over {SEEDS} seeds: mean accuracy {plain:.3} without \
         distillation, {distilled:.3} with λ = 10 (lower on {worse} seeds)"
    );
    assert!(distilled >= plain, "{distilled} < {plain}");
}

#[test]
fn ugs_learned_masks_beat_random_pruning_at_half_the_edges() {
    // UGS learns which edges to keep from the training loss: at 50 % of the edges removed its
    // tickets are more accurate than random pruning's on average over 20 seeds (measured: 0.864
    // against 0.829, BENCHMARKS.md), at the cost of more isolated nodes than TEDDY (which looks
    // at degrees only). Asserted: the mean over the seeds is above random's, and UGS isolates
    // more nodes than TEDDY on average.
    use optiscope_core::device::Cpu;
    use optiscope_core::sparsify::experiment::PruneConfig;
    let (mut ugs, mut random, mut iso_ugs, mut iso_teddy) = (0.0, 0.0, 0.0, 0.0);
    for seed in 0..SEEDS {
        let cfg = PruneConfig {
            fractions: vec![0.5],
            methods: vec![EdgeMethod::Ugs, EdgeMethod::Random, EdgeMethod::Teddy],
            seed,
            ..PruneConfig::default()
        };
        let rows = cfg.run(&mut Cpu, |_, _| {}).unwrap();
        let n = SEEDS as f64;
        ugs += rows[1].test_accuracy / n;
        random += rows[2].test_accuracy / n;
        iso_ugs += rows[1].isolated as f64 / n;
        iso_teddy += rows[3].isolated as f64 / n;
    }
    println!(
        "50 % edges over {SEEDS} seeds: UGS {ugs:.3}, random {random:.3}; isolated UGS \
         {iso_ugs:.1}, TEDDY {iso_teddy:.1}"
    );
    assert!(ugs > random, "UGS {ugs} vs random {random}");
    assert!(
        iso_ugs > iso_teddy,
        "isolated: UGS {iso_ugs} vs TEDDY {iso_teddy}"
    );
}
