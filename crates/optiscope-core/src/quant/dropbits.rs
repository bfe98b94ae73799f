//! DropBits (spec A2, structure reconstructed \[R\]) and the hard-concrete gates that learn a
//! per-layer bit-width.
//!
//! Bit level j of a b-bit grid is kept with a nested indicator `K_j = Π_{i=2}^{j} Z_i`, so the
//! surviving points always form a uniform sub-grid. `Z_j = 0` with probability `drop_prob[j]`;
//! by default `p^{b−j+1}` with p = 0.3 (the finest level is dropped most often). The vector is a
//! configurable input: the paper's exact schedule can replace it.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

use crate::device::quant::categorical::MAX_BITS;

/// DropBits settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DropBitsConfig {
    /// p of the default geometric schedule `P(Z_j = 0) = p^{b−j+1}`.
    pub p: f64,
    /// Explicit drop probabilities for levels 2..=b (overrides `p` when non-empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drop_prob: Vec<f64>,
}

impl Default for DropBitsConfig {
    fn default() -> Self {
        Self {
            p: 0.3,
            drop_prob: vec![],
        }
    }
}

impl DropBitsConfig {
    /// `P(Z_j = 0)` for j = 2..=bits (index j − 2).
    pub fn drop_probs(&self, bits: u32) -> Vec<f64> {
        if !self.drop_prob.is_empty() {
            return self.drop_prob.clone();
        }
        (2..=bits)
            .map(|j| self.p.powi((bits - j + 1) as i32))
            .collect()
    }

    /// Checks the settings for a `bits`-bit grid; the message names the field.
    pub fn validate(&self, bits: u32) -> Result<(), ConfigError> {
        if !(0.0..1.0).contains(&self.p) {
            return Err(ConfigError::invalid("p", self.p, "must be in [0, 1)"));
        }
        if !self.drop_prob.is_empty() && self.drop_prob.len() != bits as usize - 1 {
            return Err(ConfigError::invalid(
                "drop_prob",
                format!("{:?}", self.drop_prob),
                format!(
                    "a {bits}-bit grid needs {} entries (levels 2..={bits})",
                    bits - 1
                ),
            ));
        }
        if let Some(p) = self.drop_prob.iter().find(|p| !(0.0..1.0).contains(*p)) {
            return Err(ConfigError::invalid(
                "drop_prob",
                format!("{:?}", self.drop_prob),
                format!("{p} is not in [0, 1)"),
            ));
        }
        Ok(())
    }

    /// Nested keep indicators `K_1..K_b` (index j − 1) from uniforms `u[j−2]` for levels 2..=b:
    /// `Z_j = [u ≥ drop_prob_j]`.
    pub fn keep(&self, bits: u32, uniforms: &[f64]) -> [f64; MAX_BITS as usize] {
        let probs = self.drop_probs(bits);
        let mut keep = [1.0; MAX_BITS as usize];
        let mut alive = 1.0;
        for j in 2..=bits as usize {
            if uniforms[j - 2] < probs[j - 2] {
                alive = 0.0;
            }
            keep[j - 1] = alive;
        }
        keep
    }

    /// Probability that level j survives, `Π_{i≤j} (1 − P(Z_i = 0))` (index j − 1).
    pub fn keep_probs(&self, bits: u32) -> Vec<f64> {
        let probs = self.drop_probs(bits);
        let mut out = vec![1.0];
        for p in probs {
            out.push(out[out.len() - 1] * (1.0 - p));
        }
        out
    }
}

/// Hard-concrete stretch/temperature constants (Louizos, Welling & Kingma 2018).
pub const HC_BETA: f64 = 2.0 / 3.0;
/// Lower stretch limit γ.
pub const HC_GAMMA: f64 = -0.1;
/// Upper stretch limit ζ.
pub const HC_ZETA: f64 = 1.1;

fn sigmoid(u: f64) -> f64 {
    1.0 / (1.0 + (-u).exp())
}

/// A hard-concrete sample `z = clip(s(ζ−γ)+γ, 0, 1)`, `s = σ((log u − log(1−u) + log a)/β)`,
/// and `∂z/∂ log a` (zero where clipped).
pub fn hard_concrete(log_a: f64, u: f64) -> (f64, f64) {
    let s = sigmoid(((u.ln() - (-u).ln_1p()) + log_a) / HC_BETA);
    let stretched = s * (HC_ZETA - HC_GAMMA) + HC_GAMMA;
    let z = stretched.clamp(0.0, 1.0);
    let dz = if stretched > 0.0 && stretched < 1.0 {
        (HC_ZETA - HC_GAMMA) * s * (1.0 - s) / HC_BETA
    } else {
        0.0
    };
    (z, dz)
}

/// `P(z ≠ 0) = σ(log a − β log(−γ/ζ))` and its derivative in `log a` (the L0 cost of a gate).
pub fn hard_concrete_open_prob(log_a: f64) -> (f64, f64) {
    let p = sigmoid(log_a - HC_BETA * (-HC_GAMMA / HC_ZETA).ln());
    (p, p * (1.0 - p))
}

/// The deterministic test-time gate `clip(σ(log a)(ζ−γ)+γ, 0, 1)`.
pub fn hard_concrete_test(log_a: f64) -> f64 {
    (sigmoid(log_a) * (HC_ZETA - HC_GAMMA) + HC_GAMMA).clamp(0.0, 1.0)
}

/// Learned bit-width of a layer: the largest j whose nested test-time gate product exceeds ½
/// (`log_a[j−2]` gates level j; level 1 is always there).
pub fn learned_bits(log_a: &[f64]) -> u32 {
    let mut product = 1.0;
    let mut bits = 1;
    for (i, &la) in log_a.iter().enumerate() {
        product *= hard_concrete_test(la);
        if product > 0.5 {
            bits = i as u32 + 2;
        } else {
            break;
        }
    }
    bits
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // tests index parallel arrays of expected values
mod tests {
    use super::*;
    use crate::device::quant::categorical::{multiclass_ste, NoisyGrid};

    /// Spec vector: b = 3, p = 0.3 → keep_2 = 0.91, keep_3 = 0.637, and the empirical keep rates
    /// of 2·10⁵ draws agree within 4σ.
    #[test]
    fn keep_probabilities() {
        let cfg = DropBitsConfig::default();
        let kp = cfg.keep_probs(3);
        assert!(
            (kp[1] - 0.91).abs() < 1e-12 && (kp[2] - 0.637).abs() < 1e-12,
            "{kp:?}"
        );
        let rng = crate::rng::Philox::new(3);
        let n = 200_000u64;
        let mut counts = [0u64; 3];
        for t in 0..n {
            let u = [
                f64::from(rng.uniform_at(1, 2 * t)),
                f64::from(rng.uniform_at(1, 2 * t + 1)),
            ];
            let keep = cfg.keep(3, &u);
            for j in 0..3 {
                counts[j] += keep[j] as u64;
            }
        }
        assert_eq!(counts[0], n, "level 1 is never dropped");
        for j in 1..3 {
            let p = kp[j];
            let f = counts[j] as f64 / n as f64;
            assert!(
                (f - p).abs() < 4.0 * (p * (1.0 - p) / n as f64).sqrt(),
                "level {}: {f}",
                j + 1
            );
        }
    }

    /// With dropped bits the surviving grid is a uniform sub-grid: every forward value lies on
    /// it, and consecutive survivors are equally spaced.
    #[test]
    fn survivors_form_a_uniform_subgrid() {
        let grid = NoisyGrid {
            bits: 3,
            alpha: 0.25,
            sigma: 0.25 / 6.0,
            extend_edges: true,
        };
        for keep in [[1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0]] {
            let survivors: Vec<i32> = (-4..=3)
                .filter(|&k| keep[crate::quant::bit_level(k, 3) as usize - 1] > 0.0)
                .collect();
            let gaps: Vec<i32> = survivors.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(gaps.iter().all(|&g| g == gaps[0]), "{survivors:?}");
            for i in 0..100 {
                let x = -1.2 + 0.021 * f64::from(i);
                let k = multiclass_ste(x, &grid, &keep).k;
                assert!(
                    survivors.contains(&k),
                    "x = {x}: k = {k} not in {survivors:?}"
                );
            }
        }
    }

    #[test]
    fn explicit_vector_is_validated() {
        let bad = DropBitsConfig {
            p: 0.3,
            drop_prob: vec![0.1],
        };
        assert!(bad.validate(3).unwrap_err().to_string().contains("needs 2"));
        let ok = DropBitsConfig {
            p: 0.3,
            drop_prob: vec![0.1, 0.5],
        };
        assert_eq!(ok.drop_probs(3), [0.1, 0.5]);
        assert!(DropBitsConfig {
            p: 1.0,
            drop_prob: vec![]
        }
        .validate(3)
        .is_err());
        // p = 0 (the CLI's `--dropbits 0`) never drops, even for uniforms of 0.
        let off = DropBitsConfig {
            p: 0.0,
            drop_prob: vec![],
        };
        assert_eq!(off.keep(4, &[0.0, 0.0, 0.0]), [1.0; 4]);
    }

    /// Spec vector: log a = [−2, 0, 2], u = [0.2, 0.5, 0.9].
    #[test]
    fn hard_concrete_vector() {
        let la = [-2.0, 0.0, 2.0];
        let u = [0.2, 0.5, 0.9];
        let z_want = [0.0, 0.5, 1.0];
        let p_want = [0.40097526440092285, 0.8318221839916905, 0.973366655261484];
        let t_want = [0.04304350642654106, 0.5, 0.956956493573459];
        for i in 0..3 {
            assert!((hard_concrete(la[i], u[i]).0 - z_want[i]).abs() < 1e-12);
            assert!((hard_concrete_open_prob(la[i]).0 - p_want[i]).abs() < 1e-12);
            assert!((hard_concrete_test(la[i]) - t_want[i]).abs() < 1e-12);
        }
        // Derivatives by central differences where the gate is not clipped.
        let h = 1e-6;
        let (_, dz) = hard_concrete(0.0, 0.5);
        let fd = (hard_concrete(h, 0.5).0 - hard_concrete(-h, 0.5).0) / (2.0 * h);
        assert!((dz - fd).abs() < 1e-7);
        let (_, dp) = hard_concrete_open_prob(0.3);
        let fd =
            (hard_concrete_open_prob(0.3 + h).0 - hard_concrete_open_prob(0.3 - h).0) / (2.0 * h);
        assert!((dp - fd).abs() < 1e-7);
        assert_eq!(learned_bits(&[3.0, 3.0]), 3);
        assert_eq!(learned_bits(&[3.0, -3.0]), 2);
        assert_eq!(learned_bits(&[-3.0, 3.0]), 1);
    }
}
