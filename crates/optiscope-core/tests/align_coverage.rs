//! Spec B2a (poor coverage, tabular): on-policy DPO against offline DPO and the two-round hybrid,
//! over 20 seeds. The spec's 5-seed claims are not all robust: its own numpy code over seeds 0..19
//! gives the hybrid at N = 20 000 a median KL(π*‖π̂) of 0.033 but 7 seeds ≥ 0.05 (max 0.119), and
//! a median offline/on-policy(T = 4) ratio at N = 80 000 of 8.2. So what is asserted is what
//! holds over 20 seeds here (measured: ratio 6.3; hybrid median 0.036, max 0.105, 8 seeds ≥ 0.05):
//! at N = 80 000 median offline KL > 4× median on-policy T = 4 KL; at N = 20 000 the hybrid's
//! median is below 0.05, every seed below 0.2 and below the same seed's offline KL. The medians
//! and the failure counts are printed (`--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use optiscope_core::align::sampler::{Labels, Problem, Sampler};
use optiscope_core::align::{Bandit, FeatureKind};

const THETA_REF: [f64; 10] = [-3.0, -3.0, -3.0, -3.0, -3.0, 3.0, 3.0, 3.0, 3.0, 3.0];
const THETA_STAR: [f64; 10] = [
    0.505, 0.816, 1.644, 1.097, 1.460, -1.0, -1.0, -1.0, -1.0, -1.0,
];
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

#[test]
fn on_policy_beats_offline_and_the_hybrid_converges_everywhere() {
    let bandit = Bandit::new(1, 10, &FeatureKind::OneHot).unwrap();
    let problem = Problem {
        bandit: &bandit,
        theta_ref: &THETA_REF,
        theta_star: &THETA_STAR,
        beta: 0.1,
        ridge: 1e-4,
        labels: Labels::BradleyTerry,
    };
    // π_ref puts 0.25 % of its mass where π* puts 90 %: C_∞ = 574 (spec).
    let c = bandit.coverage_inf(&bandit.policy(&THETA_STAR), &bandit.policy(&THETA_REF));
    assert!((c - 574.0).abs() < 6.0, "C_inf {c}");

    let final_kl = |s: Sampler, n: usize, seed: u64| problem.run(s, n, seed).last().unwrap().kl;
    let on4 = Sampler::OnPolicy {
        rounds: 4,
        cumulative: false,
    };
    let offline: Vec<f64> = (0..SEEDS)
        .map(|s| final_kl(Sampler::Offline, 80_000, s))
        .collect();
    let online: Vec<f64> = (0..SEEDS).map(|s| final_kl(on4, 80_000, s)).collect();
    let offline20: Vec<f64> = (0..SEEDS)
        .map(|s| final_kl(Sampler::Offline, 20_000, s))
        .collect();
    let hybrid: Vec<f64> = (0..SEEDS)
        .map(|s| final_kl(Sampler::Hybrid, 20_000, s))
        .collect();
    let (mo, mn, mh) = (
        median(offline.clone()),
        median(online.clone()),
        median(hybrid.clone()),
    );
    let range = |v: &[f64]| {
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(0.0, f64::max),
        )
    };
    let worse = offline.iter().zip(&online).filter(|(o, n)| n >= o).count();
    let above = hybrid.iter().filter(|k| **k >= 0.05).count();
    eprintln!(
        "B2a over {SEEDS} seeds: N=80000 median KL offline {mo:.4} {:.4?}, on-policy T=4 {mn:.4} \
         {:.4?} (not better than offline on {worse} seeds); N=20000 offline median {:.4} {:.4?}, \
         hybrid median {mh:.4} {:.4?} ({above} seeds >= 0.05)",
        range(&offline),
        range(&online),
        median(offline20.clone()),
        range(&offline20),
        range(&hybrid),
    );
    assert!(
        mo / mn > 4.0,
        "median offline {mo} / on-policy {mn} = {}",
        mo / mn
    );
    assert!(mh < 0.05, "hybrid median {mh}");
    for (s, (h, o)) in hybrid.iter().zip(&offline20).enumerate() {
        assert!(*h < 0.2 && h < o, "seed {s}: hybrid {h}, offline {o}");
    }
}
