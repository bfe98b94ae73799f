//! Where an optimizer's tensors live and how its kernels run there.
//!
//! Every executor in this module is written once, generic over [`Device`]: the host-side logic
//! (step counters, bias corrections, Schedule-Free weights, AMUSE's β, routing of parameters) is
//! shared, and only the kernels differ. [`Cpu`] runs them on `Vec<f32>` with the functions of
//! [`super::elementwise`]; `optiscope-gpu` implements the same trait on wgpu buffers with the WGSL
//! twins of those functions. That is what makes the CPU and GPU executors agree by construction
//! everywhere except inside the kernels, which the conformance tests compare.

use super::elementwise::{self, AdamScalars, AmuseAuxScalars, ScheduleFreeScalars, SgdScalars};
use super::orthogonalize::{OrthoTarget, Orthogonalizer};
use super::OptimError;

/// Storage and kernels for optimizer tensors.
pub trait Device {
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
    fn download(&mut self, buf: &Self::Buf) -> Result<Vec<f32>, OptimError>;
    /// `dst ← src`.
    fn copy_into(&mut self, dst: &mut Self::Buf, src: &Self::Buf);
    /// One SGD step ([`elementwise::sgd_step`]).
    fn sgd(
        &mut self,
        p: &mut Self::Buf,
        g: &Self::Buf,
        momentum_buf: &mut Self::Buf,
        s: &SgdScalars,
    );
    /// One Adam/AdamW step ([`elementwise::adam_step`]).
    fn adam(
        &mut self,
        p: &mut Self::Buf,
        g: &Self::Buf,
        m: &mut Self::Buf,
        v: &mut Self::Buf,
        v_max: &mut Self::Buf,
        s: &AdamScalars,
    );
    /// One Schedule-Free SGD step ([`elementwise::sgd_schedulefree_step`]).
    fn sgd_schedulefree(
        &mut self,
        y: &mut Self::Buf,
        z: &mut Self::Buf,
        g: &Self::Buf,
        s: &ScheduleFreeScalars,
    );
    /// One Schedule-Free AdamW step ([`elementwise::adamw_schedulefree_step`]).
    fn adamw_schedulefree(
        &mut self,
        y: &mut Self::Buf,
        z: &mut Self::Buf,
        v: &mut Self::Buf,
        g: &Self::Buf,
        s: &ScheduleFreeScalars,
    );
    /// `p ← lerp(p, z, w)`.
    fn lerp_towards(&mut self, p: &mut Self::Buf, z: &Self::Buf, w: f32);
    /// Muon's momentum ([`elementwise::muon_momentum`]); returns the update direction U.
    fn muon_momentum(
        &mut self,
        buf: &mut Self::Buf,
        g: &Self::Buf,
        beta: f64,
        nesterov: bool,
    ) -> Self::Buf;
    /// The orthogonalized (unscaled) update of `u`, a stack of matrices or a diagonal.
    fn orthogonalize(
        &mut self,
        u: &Self::Buf,
        target: OrthoTarget,
        orth: &Orthogonalizer,
    ) -> Result<Self::Buf, OptimError>;
    /// `p ← p · decay − lr · o`.
    fn decay_sub(&mut self, p: &mut Self::Buf, o: &Self::Buf, decay: f32, lr: f32);
    /// AMUSE's weight decay at y: `z ← z − z_coef · y`, `y ← y · y_factor`.
    fn amuse_decay_at_y(
        &mut self,
        z: &mut Self::Buf,
        y: &mut Self::Buf,
        z_coef: f32,
        y_factor: f32,
    );
    /// AMUSE's fallback-group step on z ([`elementwise::amuse_aux_step`]).
    fn amuse_aux(
        &mut self,
        z: &mut Self::Buf,
        v: &mut Self::Buf,
        g: &Self::Buf,
        s: &AmuseAuxScalars,
    );
    /// AMUSE's end of step: `x' = lerp(y, z, c)`, stored in `x` if given; `y ← lerp(x', z, 1 − β)`.
    fn amuse_tail(
        &mut self,
        y: &mut Self::Buf,
        z: &Self::Buf,
        x: Option<&mut Self::Buf>,
        c: f32,
        one_minus_beta: f32,
    );
}

/// The CPU: buffers are `Vec<f32>`, kernels the functions of [`elementwise`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cpu;

impl Device for Cpu {
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

    fn download(&mut self, buf: &Vec<f32>) -> Result<Vec<f32>, OptimError> {
        Ok(buf.clone())
    }

    fn copy_into(&mut self, dst: &mut Vec<f32>, src: &Vec<f32>) {
        dst.copy_from_slice(src);
    }

    fn sgd(&mut self, p: &mut Vec<f32>, g: &Vec<f32>, momentum_buf: &mut Vec<f32>, s: &SgdScalars) {
        elementwise::sgd_step(p, g, momentum_buf, s);
    }

    fn adam(
        &mut self,
        p: &mut Vec<f32>,
        g: &Vec<f32>,
        m: &mut Vec<f32>,
        v: &mut Vec<f32>,
        v_max: &mut Vec<f32>,
        s: &AdamScalars,
    ) {
        elementwise::adam_step(p, g, m, v, v_max, s);
    }

    fn sgd_schedulefree(
        &mut self,
        y: &mut Vec<f32>,
        z: &mut Vec<f32>,
        g: &Vec<f32>,
        s: &ScheduleFreeScalars,
    ) {
        elementwise::sgd_schedulefree_step(y, z, g, s);
    }

    fn adamw_schedulefree(
        &mut self,
        y: &mut Vec<f32>,
        z: &mut Vec<f32>,
        v: &mut Vec<f32>,
        g: &Vec<f32>,
        s: &ScheduleFreeScalars,
    ) {
        elementwise::adamw_schedulefree_step(y, z, v, g, s);
    }

    fn lerp_towards(&mut self, p: &mut Vec<f32>, z: &Vec<f32>, w: f32) {
        elementwise::lerp_towards(p, z, w);
    }

    fn muon_momentum(
        &mut self,
        buf: &mut Vec<f32>,
        g: &Vec<f32>,
        beta: f64,
        nesterov: bool,
    ) -> Vec<f32> {
        let mut u = vec![0.0; g.len()];
        elementwise::muon_momentum(&mut u, buf, g, (1.0 - beta) as f32, beta as f32, nesterov);
        u
    }

    fn orthogonalize(
        &mut self,
        u: &Vec<f32>,
        target: OrthoTarget,
        orth: &Orthogonalizer,
    ) -> Result<Vec<f32>, OptimError> {
        Ok(match target {
            OrthoTarget::Stack(stack) => {
                let mut out = Vec::with_capacity(u.len());
                for matrix in u.chunks_exact(stack.matrix_len()) {
                    out.extend(orth.apply(matrix, stack.rows, stack.cols)?);
                }
                out
            }
            OrthoTarget::Diagonal => orth.apply_diagonal(u),
        })
    }

    fn decay_sub(&mut self, p: &mut Vec<f32>, o: &Vec<f32>, decay: f32, lr: f32) {
        elementwise::decay_sub(p, o, decay, lr);
    }

    fn amuse_decay_at_y(&mut self, z: &mut Vec<f32>, y: &mut Vec<f32>, z_coef: f32, y_factor: f32) {
        elementwise::amuse_decay_at_y(z, y, z_coef, y_factor);
    }

    fn amuse_aux(&mut self, z: &mut Vec<f32>, v: &mut Vec<f32>, g: &Vec<f32>, s: &AmuseAuxScalars) {
        elementwise::amuse_aux_step(z, v, g, s);
    }

    fn amuse_tail(
        &mut self,
        y: &mut Vec<f32>,
        z: &Vec<f32>,
        x: Option<&mut Vec<f32>>,
        c: f32,
        one_minus_beta: f32,
    ) {
        elementwise::amuse_tail(y, z, x.map(|v| v.as_mut_slice()), c, one_minus_beta);
    }
}
