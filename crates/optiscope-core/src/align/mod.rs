//! Preference learning on a linear-softmax contextual bandit (spec quant_align_prune.md part B):
//! the one object every alignment objective and sampler of the Alignment lab lives on.
//!
//! * [`bandit`]: contexts, arms, features `φ(x, a)`, the policy `π_θ(a|x) ∝ exp(θᵀφ(x, a))`,
//!   Bradley–Terry labels, and the metrics (KL(π*‖π), entropy, coverage);
//! * [`dpo`]: DPO's per-pair loss and gradient, its Newton/IRLS fit (DPO on a linear softmax is
//!   logistic regression on feature differences), and its exact population objective;
//! * [`first_order`]: DPO fitted by a first-order optimizer on any device (the GPU path);
//! * [`design`]: the (preferential) G-optimal design of the hybrid sampler, by Frank–Wolfe;
//! * [`sampler`]: offline, on-policy and hybrid pair streams with Bradley–Terry labels, fitted by
//!   DPO or on-policy reward distillation;
//! * [`distribution`]: alignment as distribution learning (B3) — population DPO's sharpening,
//!   PMLE's finite-sample divergence, preference distillation and reverse KL;
//! * [`grpo`]: GRPO in bandit form (B4);
//! * [`thinksafe`]: the ThinkSafe analogue (B5) — steering, guard-filtered self-generation, SFT;
//! * [`multitask`]: teacher distillation then multi-task DPO (B6);
//! * [`experiment`]: the five kinds of `optiscope align` experiment and its presets.
//!
//! Everything here is f64 on the host — the reference the device kernels are checked against —
//! except [`first_order`], which runs DPO's fit on any device through `device::AlignOps`.

pub mod bandit;
pub mod design;
pub mod distribution;
pub mod dpo;
pub mod experiment;
pub mod first_order;
pub mod grpo;
pub mod multitask;
pub mod sampler;
pub mod thinksafe;

pub use bandit::{Bandit, FeatureKind};
