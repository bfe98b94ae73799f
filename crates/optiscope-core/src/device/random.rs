//! The random family: tensors of counter-based random numbers. Every value is a pure function of
//! `(seed, stream, index)` through Philox4x32-10 ([`crate::rng`]), so a device may generate them
//! where it likes: the defaults below generate on the host and upload (what the CPU does, and
//! bit-identical everywhere); the GPU overrides [`RandomOps::normal`] with `shaders/random.wgsl`
//! (launched from `optiscope-gpu/src/ops/random.rs`; equal words, normals within the conformance
//! tolerance of the f32 transcendental functions). MeZO's perturbations come from here.

use super::quant::categorical::{gumbel, open_unit};
use super::{Cpu, Storage};
use crate::rng::Philox;

/// Where in the random streams a tensor's values start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Philox's key.
    pub seed: u64,
    /// The stream (see [`crate::rng::stream`]).
    pub stream: u64,
    /// The index of the first value in the stream.
    pub offset: u64,
}

/// Random tensors.
pub trait RandomOps: Storage {
    /// `len` values `scale · N(0, 1)`: normals `offset .. offset + len` of the stream
    /// ([`Philox::normal_at`]).
    fn normal(&mut self, at: Counter, len: usize, scale: f32) -> Self::Buf {
        self.upload(&host_normal(at, len, scale))
    }

    /// `len` standard Gumbel values `−ln(−ln u)`, u from words `offset .. offset + len` of the
    /// stream through [`open_unit`] (computed in f64, stored in f32): the noise of Relaxed
    /// Quantization's Gumbel-softmax sample.
    fn gumbel(&mut self, at: Counter, len: usize) -> Self::Buf {
        let rng = Philox::new(at.seed);
        let values: Vec<f32> = (0..len as u64)
            .map(|i| gumbel(open_unit(rng.u32_at(at.stream, at.offset + i))) as f32)
            .collect();
        self.upload(&values)
    }
}

impl RandomOps for Cpu {}

/// The values of [`RandomOps::normal`], computed on the host (the default, and a device's
/// fallback for counters its kernel cannot address).
pub fn host_normal(at: Counter, len: usize, scale: f32) -> Vec<f32> {
    let rng = Philox::new(at.seed);
    (0..len as u64)
        .map(|i| scale * rng.normal_at(at.stream, at.offset + i))
        .collect()
}
