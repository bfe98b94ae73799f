//! Named experiments: what `optiscope run --preset NAME` and the explorer's preset menu start from.

use super::{ExperimentConfig, RunConfig};
use crate::optim::{
    AdamConfig, AdamWScheduleFreeConfig, AdjustLrFn, AmuseConfig, MezoConfig, MuonConfig,
    OptimizerConfig, SgdConfig, SgdScheduleFreeConfig, SpecGdConfig,
};
use crate::problems::landscape::{
    BealeConfig, QuadraticConfig, RiverValleyConfig, RosenbrockConfig, SaddleConfig,
};
use crate::problems::{LoraConfig, ProblemConfig};

/// A preset's name and what it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresetInfo {
    /// The name.
    pub name: &'static str,
    /// What it shows.
    pub summary: &'static str,
}

/// Every preset, in menu order.
pub const PRESETS: &[PresetInfo] = &[
    PresetInfo { name: "river-valley", summary: "noisy river valley (spec 4.4): GD, Muon, SF-Muon and AMUSE; AMUSE ends lowest" },
    PresetInfo { name: "lora-spectrum", summary: "LoRA factorization (spec 2.3): GD learns sigma largest-first, SpecGD/Muon smallest-first" },
    PresetInfo { name: "rosenbrock", summary: "Rosenbrock's banana valley with six optimizers" },
    PresetInfo { name: "beale", summary: "Beale's function with six optimizers" },
    PresetInfo { name: "saddle", summary: "escaping a saddle point with six optimizers" },
    PresetInfo { name: "quadratic", summary: "ill-conditioned rotated quadratic (kappa = 50) with six optimizers" },
    PresetInfo { name: "mezo-quadratic", summary: "the same quadratic: gradient descent against MeZO (one random direction per step, two losses) at the same learning rate" },
];

fn run(label: &str, optimizer: OptimizerConfig) -> RunConfig {
    RunConfig {
        label: label.into(),
        optimizer,
        lr_warmup_steps: 0,
    }
}

fn sgd(lr: f64, momentum: f64) -> OptimizerConfig {
    OptimizerConfig::Sgd(SgdConfig {
        lr,
        momentum,
        ..Default::default()
    })
}

fn amuse(lr: f64, beta1: f64, rho: f64, warmup_steps: u64) -> OptimizerConfig {
    OptimizerConfig::Amuse(AmuseConfig {
        lr,
        beta1,
        rho,
        warmup_steps,
        adjust_lr_fn: AdjustLrFn::Original,
        ..Default::default()
    })
}

/// Learning rates of the six landscape optimizers, chosen per landscape from a sweep over
/// {1e-4, 3e-4, …, 0.3} (the largest stable rate that reaches the minimum's basin in the preset's
/// steps): the point is a readable picture, not a benchmark.
struct LandscapeLrs {
    sgd_momentum: f64,
    adam: f64,
    muon: f64,
    sgd_schedulefree: f64,
    adamw_schedulefree: f64,
    amuse: f64,
}

/// The six optimizers of the landscape presets.
fn landscape_runs(lr: LandscapeLrs) -> Vec<RunConfig> {
    vec![
        run("sgd-momentum", sgd(lr.sgd_momentum, 0.9)),
        run(
            "adam",
            OptimizerConfig::Adam(AdamConfig {
                lr: lr.adam,
                ..Default::default()
            }),
        ),
        run(
            "muon",
            OptimizerConfig::Muon(MuonConfig {
                lr: lr.muon,
                ..Default::default()
            }),
        ),
        run(
            "sgd-schedulefree",
            OptimizerConfig::SgdSchedulefree(SgdScheduleFreeConfig {
                lr: lr.sgd_schedulefree,
                warmup_steps: 20,
                ..Default::default()
            }),
        ),
        run(
            "adamw-schedulefree",
            OptimizerConfig::AdamwSchedulefree(AdamWScheduleFreeConfig {
                lr: lr.adamw_schedulefree,
                warmup_steps: 20,
                ..Default::default()
            }),
        ),
        run("amuse", amuse(lr.amuse, 0.6, 0.3, 20)),
    ]
}

/// The preset called `name`.
pub fn preset(name: &str) -> Option<ExperimentConfig> {
    let (problem, runs, steps) = match name {
        "river-valley" => {
            let muon = RunConfig {
                lr_warmup_steps: 50,
                ..run(
                    "muon",
                    OptimizerConfig::Muon(MuonConfig {
                        lr: 0.05,
                        ..Default::default()
                    }),
                )
            };
            let runs = vec![
                run("gd", sgd(0.2, 0.0)),
                muon,
                run("sf-muon", amuse(0.05, 0.9, 0.0, 50)),
                run("amuse", amuse(0.05, 0.6, 0.3, 50)),
            ];
            (
                ProblemConfig::RiverValley(RiverValleyConfig::default()),
                runs,
                2000,
            )
        }
        "lora-spectrum" => {
            let muon = MuonConfig {
                lr: 0.005,
                momentum: 0.0,
                nesterov: false,
                adjust_lr_fn: AdjustLrFn::None,
                ..Default::default()
            };
            let runs = vec![
                run("gd", sgd(0.01, 0.0)),
                run(
                    "specgd",
                    OptimizerConfig::Specgd(SpecGdConfig {
                        lr: 0.005,
                        ..Default::default()
                    }),
                ),
                run("muon", OptimizerConfig::Muon(muon)),
            ];
            (
                ProblemConfig::LoraFactorization(LoraConfig::default()),
                runs,
                3000,
            )
        }
        "rosenbrock" => (
            ProblemConfig::Rosenbrock(RosenbrockConfig::default()),
            landscape_runs(LandscapeLrs {
                sgd_momentum: 1e-3,
                adam: 0.1,
                muon: 0.01,
                sgd_schedulefree: 0.01,
                adamw_schedulefree: 0.1,
                amuse: 0.1,
            }),
            1000,
        ),
        "beale" => (
            ProblemConfig::Beale(BealeConfig::default()),
            landscape_runs(LandscapeLrs {
                sgd_momentum: 1e-3,
                adam: 0.03,
                muon: 0.01,
                sgd_schedulefree: 0.03,
                adamw_schedulefree: 0.1,
                amuse: 0.03,
            }),
            1000,
        ),
        "saddle" => (
            ProblemConfig::Saddle(SaddleConfig::default()),
            landscape_runs(LandscapeLrs {
                sgd_momentum: 0.01,
                adam: 0.01,
                muon: 0.01,
                sgd_schedulefree: 0.1,
                adamw_schedulefree: 0.01,
                amuse: 0.01,
            }),
            500,
        ),
        "quadratic" => (
            ProblemConfig::Quadratic(QuadraticConfig::default()),
            landscape_runs(LandscapeLrs {
                sgd_momentum: 3e-3,
                adam: 0.03,
                muon: 0.01,
                sgd_schedulefree: 0.03,
                adamw_schedulefree: 0.1,
                amuse: 0.1,
            }),
            500,
        ),
        "mezo-quadratic" => {
            let mezo = |lr| {
                OptimizerConfig::Mezo(MezoConfig {
                    lr,
                    ..Default::default()
                })
            };
            (
                ProblemConfig::Quadratic(QuadraticConfig::default()),
                vec![
                    run("gd", sgd(0.01, 0.0)),
                    run("mezo", mezo(0.01)),
                    run("mezo-lr-0.003", mezo(0.003)),
                ],
                1000,
            )
        }
        _ => return None,
    };
    Some(ExperimentConfig {
        problem,
        runs,
        steps,
        seed: 0,
        record_every: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Experiment;

    #[test]
    fn every_listed_preset_builds_and_steps() {
        for p in PRESETS {
            let cfg = preset(p.name).unwrap_or_else(|| panic!("{} listed but missing", p.name));
            let mut e = Experiment::new(cfg).unwrap();
            e.step(20);
            assert_eq!(e.current_step(), 20);
            assert!(
                e.runs().iter().all(|r| r.diverged().is_none()),
                "{}",
                p.name
            );
        }
        assert!(preset("nope").is_none());
    }
}
