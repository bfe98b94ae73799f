//! optiscope-gpu: the GPU executor of optiscope, on wgpu.
//!
//! * [`context`]: device acquisition (standalone, or on a device handed over by eframe), a
//!   pipeline cache, buffers and asynchronous read-back (blocking conveniences on native only);
//! * [`shaders`]: the WGSL sources from the repository's `shaders/` folder;
//! * [`device`]: [`GpuDevice`], core's device `Storage` on wgpu buffers and the one launch helper;
//! * [`ops`]: each kernel family of `optiscope_core::device` for [`GpuDevice`]
//!   (`ops/<family>.rs`: optim, dense, act, quant, random) with the typed launchers of its WGSL,
//!   so every optimizer, model and the trainer run through the same host-side code as on the CPU;
//! * [`landscape`]: the explorer's heat map of a 2-D problem;
//! * [`optimizer`]: that executor behind core's host `Optimizer` interface (native).

pub mod context;
pub mod device;
pub mod landscape;
#[doc(hidden)]
pub mod layout;
pub mod ops;
#[cfg(not(target_arch = "wasm32"))]
pub mod optimizer;
pub mod shaders;

pub use context::{AdapterPolicy, GpuBuffer, GpuContext, GpuError};
pub use device::GpuDevice;
#[cfg(not(target_arch = "wasm32"))]
pub use optimizer::GpuOptimizer;
