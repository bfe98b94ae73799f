//! Problems: losses with hand-written gradients (no autograd), each checked against finite
//! differences in its tests.
//!
//! * [`landscape`]: 2-D test functions (Rosenbrock, Beale, a saddle, an ill-conditioned quadratic,
//!   the river valley of spec §4.4);
//! * [`lora`]: the LoRA-style matrix factorization of spec §2.3, which records the singular values
//!   of `BA`.

pub mod landscape;
pub mod lora;

pub use crate::config::ConfigError;
use serde::Serialize;

use crate::tensor::Param;
use crate::tensor::Tensor;

pub use crate::metrics::Observation;
pub use landscape::{Landscape, LandscapeKind};
pub use lora::{LoraConfig, LoraFactorization};

/// A differentiable objective over named parameters.
pub trait Problem: Send {
    /// The initial parameters (the same for every run of an experiment).
    fn init_params(&self) -> Vec<Param>;
    /// The loss at `params` (f64 accumulation; no noise).
    fn loss(&self, params: &[Tensor]) -> f64;
    /// The gradient at `params` for step `step` (stochastic problems add noise that depends only on
    /// the seed and the step, so every run sees the same noise sequence).
    fn gradient(&self, params: &[Tensor], step: u64) -> Vec<Tensor>;
    /// What the views draw at `params`.
    fn observe(&self, params: &[Tensor]) -> Observation;
    /// Target singular values (factorization problems), largest first.
    fn spectrum_targets(&self) -> Option<&[f64]> {
        None
    }
    /// The 2-D landscape, if this is one.
    fn landscape(&self) -> Option<&Landscape> {
        None
    }
}

/// A problem, as a config tagged by `"name"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum ProblemConfig {
    /// Rosenbrock's banana valley.
    Rosenbrock(landscape::RosenbrockConfig),
    /// Beale's function.
    Beale(landscape::BealeConfig),
    /// A saddle at the origin with two minima at (0, ±1).
    Saddle(landscape::SaddleConfig),
    /// An ill-conditioned, rotated quadratic.
    Quadratic(landscape::QuadraticConfig),
    /// The river valley of spec §4.4.
    RiverValley(landscape::RiverValleyConfig),
    /// The LoRA-style matrix factorization of spec §2.3.
    LoraFactorization(LoraConfig),
}

crate::tagged::tagged_deserialize!(ProblemConfig {
    "rosenbrock" => Rosenbrock,
    "beale" => Beale,
    "saddle" => Saddle,
    "quadratic" => Quadratic,
    "river_valley" => RiverValley,
    "lora_factorization" => LoraFactorization,
});

impl ProblemConfig {
    /// The `"name"` tag.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Rosenbrock(_) => "rosenbrock",
            Self::Beale(_) => "beale",
            Self::Saddle(_) => "saddle",
            Self::Quadratic(_) => "quadratic",
            Self::RiverValley(_) => "river_valley",
            Self::LoraFactorization(_) => "lora_factorization",
        }
    }

    /// Builds the problem; `seed` drives initialization and gradient noise.
    pub fn build(&self, seed: u64) -> Result<Box<dyn Problem>, ConfigError> {
        Ok(match self {
            Self::LoraFactorization(c) => Box::new(LoraFactorization::new(c, seed)?),
            _ => Box::new(Landscape::from_config(self, seed)?),
        })
    }
}
