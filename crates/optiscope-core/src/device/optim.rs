//! The optimizer-update family: one fused kernel per update rule, and the orthogonalization of
//! Muon-type methods. The host logic of every optimizer (step counters, bias corrections,
//! Schedule-Free weights, AMUSE's β, routing of parameters) is written once over [`OptimOps`] in
//! `crate::optim`; only these kernels differ between devices. The CPU twins are the functions of
//! [`elementwise`], [`orthogonalize`], [`prox`] and [`adablock`]; the WGSL twins are
//! `shaders/optim.wgsl`, `shaders/optim_adablock.wgsl` and `shaders/optim_newton_schulz.wgsl` (with the dense family's matmul and reductions), launched
//! from `optiscope-gpu/src/ops/optim.rs`.

pub mod adablock;
pub mod elementwise;
pub mod orthogonalize;
pub mod prox;

use self::adablock::{AdaBlockScalars, BlockLayout};
use self::elementwise::{
    AdamScalars, AmuseAuxScalars, ProxGenScalars, ProxSgdScalars, ScheduleFreeScalars, SgdScalars,
};
use self::orthogonalize::{OrthoTarget, Orthogonalizer};
use super::random::Counter;
use super::{Cpu, DeviceError, Storage};

/// The optimizer-update kernels (every one in place on its state buffers).
pub trait OptimOps: Storage {
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
    /// One ProxGen step with Adam's preconditioner ([`elementwise::proxgen_step`]).
    fn proxgen(
        &mut self,
        p: &mut Self::Buf,
        g: &Self::Buf,
        m: &mut Self::Buf,
        v: &mut Self::Buf,
        s: &ProxGenScalars,
    );
    /// One proximal SGD step, the identity preconditioner ([`elementwise::prox_sgd_step`]).
    fn prox_sgd(&mut self, p: &mut Self::Buf, g: &Self::Buf, m: &mut Self::Buf, s: &ProxSgdScalars);
    /// One AdaBlock step on a parameter laid out in blocks ([`adablock::adablock_step`]); `v`
    /// holds the `g × g` second moment of every block.
    fn adablock(
        &mut self,
        p: &mut Self::Buf,
        g: &Self::Buf,
        m: &mut Self::Buf,
        v: &mut Self::Buf,
        layout: &BlockLayout,
        s: &AdaBlockScalars,
    );
    /// In place `p ← decay·p + scale·z` with `z` regenerated from the counter, never stored
    /// ([`elementwise::axpy_normal`]): MeZO's perturbations and update.
    fn axpy_normal(&mut self, p: &mut Self::Buf, at: Counter, decay: f32, scale: f32);
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
    ) -> Result<Self::Buf, DeviceError>;
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

impl OptimOps for Cpu {
    fn proxgen(
        &mut self,
        p: &mut Vec<f32>,
        g: &Vec<f32>,
        m: &mut Vec<f32>,
        v: &mut Vec<f32>,
        s: &ProxGenScalars,
    ) {
        elementwise::proxgen_step(p, g, m, v, s);
    }

    fn prox_sgd(&mut self, p: &mut Vec<f32>, g: &Vec<f32>, m: &mut Vec<f32>, s: &ProxSgdScalars) {
        elementwise::prox_sgd_step(p, g, m, s);
    }

    fn axpy_normal(&mut self, p: &mut Vec<f32>, at: Counter, decay: f32, scale: f32) {
        elementwise::axpy_normal(p, at, decay, scale);
    }

    fn adablock(
        &mut self,
        p: &mut Vec<f32>,
        g: &Vec<f32>,
        m: &mut Vec<f32>,
        v: &mut Vec<f32>,
        layout: &BlockLayout,
        s: &AdaBlockScalars,
    ) {
        adablock::adablock_step(p, g, m, v, layout, s);
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
    ) -> Result<Vec<f32>, DeviceError> {
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
