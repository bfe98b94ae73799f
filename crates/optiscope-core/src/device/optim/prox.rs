//! Closed-form proximal maps of the ℓq penalties (spec optimizers.md §5.3), the per-coordinate
//! step of ProxGen: `x* = argmin_x λ'|x|^q + ½(x − z)²` for q ∈ {1, 0, 1/2, 2/3}. The CPU twin
//! computes in f64 and stores f32; `shaders/optim.wgsl` (`prox_q`) is the f32 twin, branch-free
//! per coordinate (`select`, every transcendental function on a safe argument), which refines the
//! two non-convex closed forms by one Newton step on their stationarity condition (f32 `acos`,
//! `cos` and `acosh` alone were 2e-5 off on lavapipe).
//!
//! With `L = 2λ'` (the official code's parameterisation):
//! - q = 1: soft threshold, `sign(z)·max(|z| − λ', 0)`;
//! - q = 0: hard threshold, `z` if `|z| > √(2λ')` else 0;
//! - q = 1/2 (Xu et al. 2012): `τ = 1.5·λ'^{2/3}`; above it `φ = acos((L/8)(|z|/3)^{−3/2})`,
//!   `x* = (2/3)·z·(1 + cos((2/3)(π − φ)))`;
//! - q = 2/3 (Cao, Sun, Xu 2013): `τ = 2·(2λ'/3)^{3/4}`; above it
//!   `φ = acosh((27/16)·z²·L^{−3/2})`, `a = (2/√3)·L^{1/4}·√cosh(φ/3)`,
//!   `x* = sign(z)·((a + √(2|z|/a − a²))/2)³`.
//!
//! At `|z| = τ` both 0 and the jump value minimise; the official code (and this one) picks 0.
//! `λ' = 0` leaves `z` unchanged.

use serde::{Deserialize, Serialize};

/// A penalty `R(θ) = Σ|θ_i|^q` of a proximal step (config names `l1`, `l0`, `l1/2`, `l2/3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[repr(u32)]
pub enum Regularizer {
    /// q = 1 (lasso).
    #[default]
    #[serde(rename = "l1")]
    L1 = 0,
    /// q = 0 (the number of non-zeros).
    #[serde(rename = "l0")]
    L0 = 1,
    /// q = 1/2.
    #[serde(rename = "l1/2")]
    LHalf = 2,
    /// q = 2/3.
    #[serde(rename = "l2/3")]
    LTwoThirds = 3,
}

impl Regularizer {
    /// Every regularizer.
    pub const ALL: [Self; 4] = [Self::L1, Self::L0, Self::LHalf, Self::LTwoThirds];

    /// Its name in configs: `l1`, `l0`, `l1/2`, `l2/3`.
    pub fn name(self) -> &'static str {
        match self {
            Self::L1 => "l1",
            Self::L0 => "l0",
            Self::LHalf => "l1/2",
            Self::LTwoThirds => "l2/3",
        }
    }

    /// The penalty of one coordinate, `|x|^q` (`[x ≠ 0]` for q = 0).
    pub fn penalty(self, x: f64) -> f64 {
        match self {
            Self::L1 => x.abs(),
            Self::L0 => f64::from(u8::from(x != 0.0)),
            Self::LHalf => x.abs().sqrt(),
            Self::LTwoThirds => x.abs().powf(2.0 / 3.0),
        }
    }

    /// The threshold τ(λ'): the prox is 0 exactly for `|z| ≤ τ`.
    pub fn threshold(self, lam: f64) -> f64 {
        match self {
            Self::L1 => lam,
            Self::L0 => (2.0 * lam).sqrt(),
            Self::LHalf => 1.5 * lam.powf(2.0 / 3.0),
            Self::LTwoThirds => 2.0 * (2.0 * lam / 3.0).powf(0.75),
        }
    }

    /// `prox_{λ'R}(z)` in f64.
    pub fn prox(self, z: f64, lam: f64) -> f64 {
        if lam <= 0.0 {
            return z;
        }
        let az = z.abs();
        if self == Self::L1 {
            return z.signum() * (az - lam).max(0.0);
        }
        if az <= self.threshold(lam) {
            return 0.0;
        }
        let l2 = 2.0 * lam;
        match self {
            Self::L1 => unreachable!("handled above"),
            Self::L0 => z,
            Self::LHalf => {
                let phi = ((l2 / 8.0) * (az / 3.0).powf(-1.5)).acos();
                (2.0 / 3.0) * z * (1.0 + ((2.0 / 3.0) * (std::f64::consts::PI - phi)).cos())
            }
            Self::LTwoThirds => {
                let phi = ((27.0 / 16.0) * z * z * l2.powf(-1.5)).acosh();
                let a = (2.0 / 3f64.sqrt()) * l2.powf(0.25) * (phi / 3.0).cosh().sqrt();
                z.signum() * ((a + (2.0 * az / a - a * a).sqrt()) / 2.0).powi(3)
            }
        }
    }
}

impl Regularizer {
    /// The subgradient of `|x|^q` used by the subgradient baseline: `sign(x)` (ℓ1),
    /// `q·sign(x)|x|^{q−1}` (ℓ1/2, ℓ2/3), 0 for ℓ0 (its gradient vanishes almost everywhere, so
    /// the baseline is plain AdamW there) and 0 at `x = 0` (the minimal-norm choice).
    pub fn subgradient(self, x: f64) -> f64 {
        if x == 0.0 {
            return 0.0;
        }
        match self {
            Self::L1 => x.signum(),
            Self::L0 => 0.0,
            Self::LHalf => 0.5 * x.signum() * x.abs().powf(-0.5),
            Self::LTwoThirds => (2.0 / 3.0) * x.signum() * x.abs().powf(-1.0 / 3.0),
        }
    }
}

/// `prox_{λ'R}(z)` of an f32 coordinate (computed in f64), the CPU twin of the shader's `prox_q`.
#[inline]
pub fn prox_f32(reg: Regularizer, z: f32, lam: f32) -> f32 {
    reg.prox(f64::from(z), f64::from(lam)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec §5.3's vector (λ' = 0.4), from `spec/vectors/proxgen.py` (numpy, float64).
    #[test]
    fn closed_forms_reproduce_the_spec_vector() {
        let z = [-3.0, -1.2, -0.7, -0.2, 0.0, 0.15, 0.5, 0.9, 1.3, 2.5];
        let want: [(Regularizer, [f64; 10]); 4] = [
            (
                Regularizer::L1,
                [-2.6, -0.8, -0.3, 0.0, 0.0, 0.0, 0.1, 0.5, 0.9, 2.1],
            ),
            (
                Regularizer::L0,
                [-3.0, -1.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 1.3, 2.5],
            ),
            (
                Regularizer::LHalf,
                [
                    -2.882193728,
                    -1.0,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    0.6523842524,
                    1.110184145,
                    2.370088464,
                ],
            ),
            (
                Regularizer::LTwoThirds,
                [
                    -2.811050454,
                    -0.9264560422,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    0.5802922698,
                    1.036501098,
                    2.297919794,
                ],
            ),
        ];
        for (reg, want) in want {
            for (zi, w) in z.iter().zip(want) {
                let got = reg.prox(*zi, 0.4);
                assert!(
                    (got - w).abs() < 1e-8,
                    "{} prox({zi}) = {got}, want {w}",
                    reg.name()
                );
            }
        }
        let thr = [0.4, 0.894_427_191, 0.814_325_285_0, 0.742_175_382_3];
        for (reg, t) in Regularizer::ALL.iter().zip(thr) {
            assert!(
                (reg.threshold(0.4) - t).abs() < 1e-9,
                "{} threshold",
                reg.name()
            );
        }
    }

    /// The closed forms are the minimisers: a brute-force search over a fine grid (and x = 0)
    /// finds no better point, for random z and λ' kept 1 % away from the thresholds.
    #[test]
    fn closed_forms_minimise_the_objective() {
        let rng = crate::rng::Philox::new(5);
        let mut checked = 0;
        for i in 0..300u64 {
            let z = 6.0 * (f64::from(rng.uniform_at(1, i)) - 0.5);
            let lam = 0.05 + 1.5 * f64::from(rng.uniform_at(2, i));
            for reg in Regularizer::ALL {
                let t = reg.threshold(lam);
                if (z.abs() - t).abs() < 0.01 * t.max(1e-3) {
                    continue;
                }
                let f = |x: f64| lam * reg.penalty(x) + 0.5 * (x - z) * (x - z);
                let x = reg.prox(z, lam);
                let best = (-40_000..=40_000)
                    .map(|k| f64::from(k) * 1e-4)
                    .chain([0.0])
                    .map(f)
                    .fold(f64::INFINITY, f64::min);
                assert!(
                    f(x) <= best + 1e-7,
                    "{} z={z} λ'={lam}: f(prox)={} > grid min {best}",
                    reg.name(),
                    f(x)
                );
                checked += 1;
            }
        }
        assert!(
            checked > 1100,
            "only {checked} cases away from the thresholds"
        );
    }

    /// The non-convex proxes jump at the threshold: ℓ0 from 0 to τ, ℓ1/2 from 0 to (2/3)τ,
    /// ℓ2/3 from 0 to τ/2 (spec §5.3); ℓ1 is continuous.
    #[test]
    fn jumps_at_the_thresholds() {
        for lam in [0.05, 0.4, 1.7] {
            for (reg, jump) in [
                (Regularizer::L1, 0.0),
                (Regularizer::L0, 1.0),
                (Regularizer::LHalf, 2.0 / 3.0),
                (Regularizer::LTwoThirds, 0.5),
            ] {
                let t = reg.threshold(lam);
                assert_eq!(reg.prox(t, lam), 0.0, "{} at τ picks 0", reg.name());
                let above = reg.prox(t * (1.0 + 1e-12), lam);
                assert!(
                    (above - jump * t).abs() < 1e-4 * t,
                    "{} λ'={lam}: just above τ = {t} the prox is {above}, want {}",
                    reg.name(),
                    jump * t
                );
                assert_eq!(reg.prox(-t * 0.999, lam), 0.0);
            }
        }
    }
}
