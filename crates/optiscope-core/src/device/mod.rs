//! The kernel layer: where tensors live ([`Storage`]) and the operations that run on them, one
//! trait per kernel family. Everything above this layer (optimizers, quantizers, models, the
//! trainer) is written once, generic over these traits; [`Cpu`] implements every family here, beside
//! its trait, and `optiscope-gpu` implements the same traits on wgpu buffers.
//!
//! | family | trait | CPU twin | WGSL | GPU launch | conformance |
//! |---|---|---|---|---|---|
//! | storage | [`Storage`] | [`Cpu`] below | — | `gpu/src/device.rs` | every file |
//! | optimizer updates | [`OptimOps`] | [`optim`] (`elementwise`, `orthogonalize`, `prox`) | `optim.wgsl`, `optim_newton_schulz.wgsl` | `gpu/src/ops/optim.rs` | `gpu/tests/optim.rs` |
//! | dense algebra | [`DenseOps`] | [`dense`] | `dense.wgsl`, `dense_reduce.wgsl`, `dense_rows.wgsl` | `gpu/src/ops/dense.rs` | `gpu/tests/dense.rs` |
//! | activations, softmax | [`ActOps`] | [`act`] | `act.wgsl` | `gpu/src/ops/act.rs` | `gpu/tests/act.rs` |
//! | quantization | [`QuantOps`] | [`quant`] (`kernel`, `categorical`, `prox`) | `quant.wgsl` | `gpu/src/ops/quant.rs` | `gpu/tests/quant.rs` |
//! | random | [`RandomOps`] | [`random`] (Philox, [`crate::rng`]) | `random.wgsl` | `gpu/src/ops/random.rs` | `gpu/tests/random.rs` |
//! | alignment bandit | [`AlignOps`] | [`align`] | `align.wgsl` | `gpu/src/ops/align.rs` | `gpu/tests/align.rs` |
//! | sparse products | [`SparseOps`] | [`sparse`] | `sparse.wgsl` | `gpu/src/ops/sparse.rs` | `gpu/tests/sparse.rs` |
//! | transformer layers | [`TransformerOps`] | [`transformer`] (threads: [`par`]) | `transformer.wgsl` | `gpu/src/ops/transformer.rs` | `gpu/tests/transformer.rs` |
//!
//! Each family has a small set of *primitives* every device implements and *composites* with
//! default implementations built from them ([`DenseOps::linear`] is a matmul and a bias
//! activation; [`RandomOps::normal`] is the host's Philox stream uploaded), so a new model starts
//! on the defaults and a device overrides a composite with a fused kernel only where a benchmark
//! asks for it. Matrix arguments carry their shape ([`Mat`]); results with more than one buffer
//! are named structs ([`LinearGrads`], [`XentOut`], [`QuantOut`]); failures are one
//! [`DeviceError`].

pub mod act;
pub mod align;
pub mod dense;
pub mod optim;
pub mod par;
pub mod quant;
pub mod random;
pub mod sparse;
pub mod transformer;

#[cfg(test)]
mod tests;

use thiserror::Error;

use crate::linalg::SvdError;

pub use act::{ActOps, Activation, XentOut};
pub use align::{AlignOps, PairTerms};
pub use dense::{DenseOps, LinearGrads, Mat};
pub use optim::OptimOps;
pub use quant::{QuantOps, QuantOut};
pub use random::{Counter, RandomOps};
pub use sparse::{Csr, SparseOps};
pub use transformer::{
    AttentionOut, AttnShape, EmbedGrads, LayerNormGrads, LayerNormOut, TransformerOps,
};

/// A device could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeviceError {
    /// The backend failed: a lost device, a failed read-back, a dispatch past the device's limits.
    #[error("{0}")]
    Backend(String),
    /// The device has no kernel for this input (e.g. a bit-width its shader does not take).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A decomposition on the host did not converge or met a non-finite input.
    #[error(transparent)]
    Svd(#[from] SvdError),
}

/// Where a device's tensors live: flat f32 buffers, created, copied and read back.
pub trait Storage {
    /// A flat f32 buffer of one tensor.
    type Buf: Send;

    /// A buffer of `len` zeros.
    fn zeros(&mut self, len: usize) -> Self::Buf;
    /// A copy of `src`.
    fn duplicate(&mut self, src: &Self::Buf) -> Self::Buf;
    /// A buffer holding `data` (for restoring checkpoints and uploading inputs).
    fn upload(&mut self, data: &[f32]) -> Self::Buf;
    /// The contents of `buf`, after every recorded kernel (blocking; for checkpoints, metrics and
    /// tests). Fails where the device cannot read back synchronously (the GPU on the web).
    fn download(&mut self, buf: &Self::Buf) -> Result<Vec<f32>, DeviceError>;
    /// `dst ← src`.
    fn copy_into(&mut self, dst: &mut Self::Buf, src: &Self::Buf);
}

/// A device with every kernel family: what the trainer and the models ask for. Implemented for
/// every type that implements the families; optimizers ask only for [`OptimOps`].
pub trait Device:
    Storage
    + OptimOps
    + DenseOps
    + ActOps
    + QuantOps
    + RandomOps
    + AlignOps
    + SparseOps
    + TransformerOps
{
}

impl<T> Device for T where
    T: Storage
        + OptimOps
        + DenseOps
        + ActOps
        + QuantOps
        + RandomOps
        + AlignOps
        + SparseOps
        + TransformerOps
{
}

/// The CPU: buffers are `Vec<f32>`; each family's kernels are implemented beside its trait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cpu;

impl Storage for Cpu {
    type Buf = Vec<f32>;

    fn zeros(&mut self, len: usize) -> Vec<f32> {
        vec![0.0; len]
    }

    fn duplicate(&mut self, src: &Vec<f32>) -> Vec<f32> {
        src.clone()
    }

    fn upload(&mut self, data: &[f32]) -> Vec<f32> {
        data.to_vec()
    }

    fn download(&mut self, buf: &Vec<f32>) -> Result<Vec<f32>, DeviceError> {
        Ok(buf.clone())
    }

    fn copy_into(&mut self, dst: &mut Vec<f32>, src: &Vec<f32>) {
        dst.copy_from_slice(src);
    }
}
