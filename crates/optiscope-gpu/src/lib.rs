//! optiscope-gpu: the GPU executor of optiscope, on wgpu.
//!
//! * [`context`]: device acquisition (standalone, or on a device handed over by eframe), a
//!   pipeline cache, buffers and asynchronous read-back (blocking conveniences on native only);
//! * [`shaders`]: the WGSL sources from the repository's `shaders/` folder;
//! * [`kernels`], [`landscape`]: typed launchers of every kernel, each the twin of a CPU function
//!   in `optiscope-core`;
//! * [`device`]: core's `optim::Device` on the GPU, so every optimizer runs through the same
//!   host-side code as on the CPU; with `model`, core's `train::ModelDevice` (the MLP and
//!   quantizer kernels of `shaders/mlp.wgsl` and `shaders/quant.wgsl`), so the trainer does too;
//! * [`optimizer`]: that executor behind core's host `Optimizer` interface (native).

pub mod context;
pub mod device;
pub mod kernels;
pub mod landscape;
#[doc(hidden)]
pub mod layout;
mod model;
#[cfg(not(target_arch = "wasm32"))]
pub mod optimizer;
pub mod shaders;

pub use context::{AdapterPolicy, GpuBuffer, GpuContext, GpuError};
pub use device::GpuDevice;
#[cfg(not(target_arch = "wasm32"))]
pub use optimizer::GpuOptimizer;
