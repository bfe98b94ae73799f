//! Compression of graph networks and mixtures of experts (spec `quant_align_prune.md` part C;
//! issue 13):
//!
//! * [`graph`]: undirected graphs in CSR form, the validated `src,dst` edge-list loader;
//! * [`teddy`]: TEDDY's degree-based edge scores, nested pruning and the ℓ0-ball projection;
//! * [`sbm`]: the degree-corrected stochastic block model of the synthetic experiment;
//! * [`gcn`]: the two-layer GCN, forward and backward over the device families;
//! * [`experiment`]: training it on pruned graphs (ℓ0-projected weights), and the SBM experiment
//!   of TEDDY against random, reverse and UGS pruning;
//! * [`ugs`]: UGS's learned edge masks, pruned iteratively with the weights rewound;
//! * [`moe`]: a mixture of SwiGLU experts with a top-k router, f64 reference and device
//!   forward/backward;
//! * [`convert`]: MoE → dense conversion (scorers, grouping, scaling, block concatenation,
//!   distillation);
//! * [`moe_experiment`]: the `tiny` preset and its experiment over every scorer.

pub mod convert;
pub mod experiment;
pub mod gcn;
pub mod graph;
pub mod moe;
pub mod moe_experiment;
pub mod sbm;
pub mod teddy;
pub mod ugs;

pub use graph::{EdgeError, Graph};
