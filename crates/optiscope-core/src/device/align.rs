//! The alignment family: the per-context work of the preference-learning bandit (spec B0) in
//! f32 — the policy of every context from the features and θ, and DPO's per-pair terms. The
//! gradient then is one weighted column sum ([`DenseOps::weighted_col_sums`](super::DenseOps))
//! of the pairs' gathered feature rows. CPU twins below; WGSL in `shaders/align.wgsl`; GPU
//! launches in `optiscope-gpu/src/ops/align.rs`.

use super::{Cpu, Storage};

/// DPO's per-pair terms of a batch of n pairs ([`AlignOps::dpo_pair_terms`]).
#[derive(Debug, Clone)]
pub struct PairTerms<B> {
    /// `2n` coefficients: `g_i = c_i β (σ(h_i) − q_i)` for the first arms, then `−g_i` for the
    /// second — the weights of the gathered rows `[φ(x_i, a_i); φ(x_i, b_i)]` whose weighted
    /// column sum is `∇_θ Σ_i c_i ℓ_i`.
    pub coef: B,
    /// `c_i ℓ_i = c_i (−q_i log σ(h_i) − (1 − q_i) log σ(−h_i))`, n values.
    pub loss: B,
}

/// The bandit's per-context kernels.
pub trait AlignOps: Storage {
    /// `log π_θ(a|x)` of every context, `[n_ctx][k]`: the logits `θᵀφ(x, a)` (phi row-major
    /// `[n_ctx·k][d]`, d = θ's length), then a row log-softmax (the max subtracted first). On the
    /// GPU one workgroup per context.
    fn bandit_log_policy(
        &mut self,
        phi: &Self::Buf,
        theta: &Self::Buf,
        n_ctx: usize,
        k: usize,
    ) -> Self::Buf;

    /// DPO's terms for n pairs: `rows` holds 2n row indices `x_i·k + a_i` then `x_i·k + b_i`
    /// (as f32, exact below 2²⁴) into the `[n_ctx·k]` log-policies; `q` the probability that
    /// `a_i` won, `c` each pair's weight. The margin is
    /// `h_i = β[(log π_θ − log π_ref)(a_i) − (log π_θ − log π_ref)(b_i)]`.
    fn dpo_pair_terms(
        &mut self,
        logp: &Self::Buf,
        logp_ref: &Self::Buf,
        rows: &Self::Buf,
        q: &Self::Buf,
        c: &Self::Buf,
        beta: f32,
    ) -> PairTerms<Self::Buf>;
}

/// `log σ(u)` in f32, stable for large |u| (the WGSL twin computes it the same way).
pub fn log_sigmoid_f32(u: f32) -> f32 {
    -(-u).max(0.0) - (-(u.abs())).exp().ln_1p()
}

impl AlignOps for Cpu {
    fn bandit_log_policy(
        &mut self,
        phi: &Vec<f32>,
        theta: &Vec<f32>,
        n_ctx: usize,
        k: usize,
    ) -> Vec<f32> {
        let d = theta.len();
        let mut out = vec![0.0f32; n_ctx * k];
        for x in 0..n_ctx {
            let row = &mut out[x * k..(x + 1) * k];
            for (a, v) in row.iter_mut().enumerate() {
                let f = &phi[(x * k + a) * d..(x * k + a + 1) * d];
                *v = f.iter().zip(theta).fold(0.0f32, |s, (f, t)| s + f * t);
            }
            let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let sum: f32 = row.iter().map(|v| (v - m).exp()).sum();
            let lse = m + sum.ln();
            row.iter_mut().for_each(|v| *v -= lse);
        }
        out
    }

    fn dpo_pair_terms(
        &mut self,
        logp: &Vec<f32>,
        logp_ref: &Vec<f32>,
        rows: &Vec<f32>,
        q: &Vec<f32>,
        c: &Vec<f32>,
        beta: f32,
    ) -> PairTerms<Vec<f32>> {
        let n = q.len();
        let mut coef = vec![0.0f32; 2 * n];
        let mut loss = vec![0.0f32; n];
        for i in 0..n {
            let (ra, rb) = (rows[i] as usize, rows[n + i] as usize);
            let h = beta * ((logp[ra] - logp_ref[ra]) - (logp[rb] - logp_ref[rb]));
            let s = 1.0 / (1.0 + (-h).exp());
            let g = c[i] * beta * (s - q[i]);
            coef[i] = g;
            coef[n + i] = -g;
            loss[i] = -c[i] * (q[i] * log_sigmoid_f32(h) + (1.0 - q[i]) * log_sigmoid_f32(-h));
        }
        PairTerms { coef, loss }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::bandit::{log_sigmoid, Bandit, FeatureKind};

    #[test]
    fn the_f32_twins_agree_with_the_f64_bandit() {
        let b = Bandit::new(
            7,
            5,
            &FeatureKind::Gaussian {
                d: 4,
                scale: 1.0,
                seed: 3,
            },
        )
        .unwrap();
        let theta = [0.7, -1.2, 0.4, 2.0];
        let phi: Vec<f32> = b.phi.iter().map(|v| *v as f32).collect();
        let t32: Vec<f32> = theta.iter().map(|v| *v as f32).collect();
        let lp = Cpu.bandit_log_policy(&phi, &t32, 7, 5);
        let want = b.log_policy(&theta);
        for (g, w) in lp.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 1e-5, "{g} vs {w}");
        }
        let lr = Cpu.bandit_log_policy(&phi, &vec![0.1, 0.0, -0.3, 0.2], 7, 5);
        // Two pairs: (x=2, a=1 ≻ b=4) soft 0.7 weight 0.5, (x=6, 3, 0) hard weight 1.
        let rows = vec![11.0, 33.0, 14.0, 30.0];
        let t = Cpu.dpo_pair_terms(&lp, &lr, &rows, &vec![0.7, 1.0], &vec![0.5, 1.0], 0.8);
        for (i, (ra, rb, q, c)) in [(11, 14, 0.7, 0.5), (33, 30, 1.0, 1.0)]
            .into_iter()
            .enumerate()
        {
            let h = 0.8
                * ((f64::from(lp[ra]) - f64::from(lr[ra]))
                    - (f64::from(lp[rb]) - f64::from(lr[rb])));
            let loss = -c * (q * log_sigmoid(h) + (1.0 - q) * log_sigmoid(-h));
            let g = c * 0.8 * (1.0 / (1.0 + (-h).exp()) - q);
            assert!((f64::from(t.loss[i]) - loss).abs() < 1e-6);
            assert!((f64::from(t.coef[i]) - g).abs() < 1e-6 && t.coef[2 + i] == -t.coef[i]);
        }
        assert!(log_sigmoid_f32(-200.0).is_finite() && log_sigmoid_f32(200.0) == 0.0);
    }

    #[test]
    fn the_spec_dpo_vector_in_f32() {
        // Spec B1: Φ = [[1,0,.5],[0,1,−.5],[1,1,0],[−1,.5,1]], θ = (0.2, −0.1, 0.3), θ_ref = 0,
        // β = 0.5, y_w = 2, y_l = 3: h = 0.025, ℓ = 0.6807253, ∇θ = (−0.4937503, −0.1234376,
        // 0.2468752) — through the f32 kernels (gradient = the weighted sum of the two rows),
        // to 1e-6.
        let phi = vec![1.0, 0.0, 0.5, 0.0, 1.0, -0.5, 1.0, 1.0, 0.0, -1.0, 0.5, 1.0];
        let lp = Cpu.bandit_log_policy(&phi, &vec![0.2, -0.1, 0.3], 1, 4);
        let lr = Cpu.bandit_log_policy(&phi, &vec![0.0; 3], 1, 4);
        let t = Cpu.dpo_pair_terms(&lp, &lr, &vec![2.0, 3.0], &vec![1.0], &vec![1.0], 0.5);
        assert!((t.loss[0] - 0.680_725_3).abs() < 1e-6, "{}", t.loss[0]);
        let grad: Vec<f32> = (0..3)
            .map(|j| t.coef[0] * phi[2 * 3 + j] + t.coef[1] * phi[3 * 3 + j])
            .collect();
        for (g, w) in grad.iter().zip([-0.493_750_3, -0.123_437_6, 0.246_875_2]) {
            assert!((g - w).abs() < 1e-6, "{grad:?}");
        }
    }
}
