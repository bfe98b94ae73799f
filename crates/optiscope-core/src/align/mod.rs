//! Preference learning on a linear-softmax contextual bandit (spec quant_align_prune.md part B):
//! the one object every alignment objective and sampler of the Alignment lab lives on.
//!
//! * [`bandit`]: contexts, arms, features `φ(x, a)`, the policy `π_θ(a|x) ∝ exp(θᵀφ(x, a))`,
//!   Bradley–Terry labels, and the metrics (KL(π*‖π), entropy, coverage);
//! * [`dpo`]: DPO's per-pair loss and gradient, its Newton/IRLS fit (DPO on a linear softmax is
//!   logistic regression on feature differences), and its exact population objective;
//! * [`design`]: the (preferential) G-optimal design of the hybrid sampler, by Frank–Wolfe;
//! * [`sampler`]: offline, on-policy and hybrid pair streams with Bradley–Terry labels;
//! * [`experiment`]: a bandit with several sampler runs, and the presets of `optiscope align`.
//!
//! Everything here is f64 on the host: the reference the device kernels are checked against.

pub mod bandit;
pub mod design;
pub mod dpo;
pub mod experiment;
pub mod sampler;

pub use bandit::{Bandit, FeatureKind};
