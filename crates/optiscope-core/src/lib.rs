//! optiscope-core: the methods of optiscope, in plain Rust that also compiles to wasm32.
//!
//! * [`config`]: the one `ConfigError` of every config;
//! * [`tensor`]: a small f32 tensor and matrix products (`matrixmultiply`);
//! * [`linalg`]: SVD, polar factors, orthonormal bases (`nalgebra`, f64);
//! * [`rng`]: the counter-based Philox4x32-10 generator shared with the WGSL shaders;
//! * [`device`]: storage and the kernel families (optimizer updates, dense algebra, activations,
//!   quantization, random), each a trait with its CPU twin;
//! * [`optim`]: every optimizer as a serde config plus its executor, written once over the device;
//! * [`problems`]: problems with hand-written losses and gradients;
//! * [`experiment`]: a problem plus several runs, steppable, with snapshots for the views;
//! * [`metrics`]: the `metrics.jsonl` lines the CLI writes and the explorer reads.
//!
//! Nothing here knows about GPUs, windows or files.

pub mod config;
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
mod tagged;
pub mod tensor;
pub mod train;

pub use experiment::{Experiment, ExperimentConfig, RunConfig};
pub use optim::{Optimizer, OptimizerConfig, Param};
pub use tensor::Tensor;
