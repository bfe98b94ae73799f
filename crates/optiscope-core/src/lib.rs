//! optiscope-core: the methods of optiscope, in plain Rust that also compiles to wasm32. Layers,
//! from the bottom (`tests/layers.rs` checks that nothing imports upwards):
//!
//! * base — [`config`] (the one `ConfigError` of every config, the method registries),
//!   [`tensor`] (a small f32 tensor, matrix products with `matrixmultiply`, named parameters),
//!   [`linalg`] (SVD, polar factors; `nalgebra`, f64), [`rng`] (the counter-based Philox4x32-10
//!   shared with the WGSL shaders), [`metrics`] (the `metrics.jsonl` records the CLI writes and
//!   the explorer reads), [`data`] (the digits, the seeded split, spirals and moons), [`corpus`]
//!   (character vocabularies, the tiny-Shakespeare text, train/validation windows);
//! * [`device`] — storage and the kernel families (optimizer updates, dense algebra,
//!   activations, quantization, random), each a trait with its CPU twin;
//! * methods — [`optim`] (every optimizer as a serde config plus its executor, written once over
//!   the device), [`quant`] (the quantizers' configs, grids and baselines), [`models`] (the
//!   `Model` and `Loss` traits, the MLP), [`problems`] (2-D landscapes and the LoRA
//!   factorization with hand-written gradients);
//! * [`train`] — the one trainer over a model, a loss, a weight transform (the quantizers) and a
//!   gradient source, with checkpoints;
//! * [`experiment`] — a problem plus several runs, steppable, with snapshots for the views.
//!
//! Nothing here knows about GPUs, windows or files.

pub mod align;
pub mod config;
pub mod corpus;
pub mod data;
pub mod device;
pub mod experiment;
pub mod linalg;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod problems;
pub mod quant;
pub mod rng;
pub mod sparsify;
pub mod tagged;
pub mod tensor;
pub mod train;

pub use experiment::{Experiment, ExperimentConfig, RunConfig};
pub use optim::{Optimizer, OptimizerConfig, Param};
pub use tensor::Tensor;
