//! The config of a model's weight quantizer: one flat struct so that the command line, the
//! explorer and checkpoints share it. Fields that a method does not use are ignored;
//! [`QuantConfig::resolved`] fills the method's defaults.

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

use super::dropbits::DropBitsConfig;
use crate::device::quant::categorical::MAX_BITS;

crate::config::choice_enum! {
    /// Which quantizer.
    pub enum QuantMethod default None {
        /// Full precision.
        "none" => None: "full precision",
        /// Uniform symmetric quantization, clipped straight-through estimator; the step is
        /// `max|w|/Q_P`, recomputed from the weights at the start of every epoch (spec A5).
        "ste" => Ste: "uniform, clipped straight-through estimator, step max|w|/Q_P per epoch",
        /// Learned step size (LSQ; Esser et al. 2020).
        "lsq" => Lsq: "learned step size (Esser et al. 2020)",
        /// Relaxed Quantization: logistic noise + Gumbel-softmax, learned α and σ (Louizos et
        /// al. 2019).
        "rq" => Rq: "Relaxed Quantization: Gumbel-softmax over the grid (Louizos et al. 2019)",
        /// Semi-Relaxed Quantization: the multi-class straight-through estimator (Lee et al.
        /// 2019).
        "srq" => Srq: "Semi-Relaxed Quantization: multi-class straight-through estimator",
        /// Cluster-Promoting Quantization: multi-class STE + DropBits (+ learned bit-width) with
        /// a sharper categorical (Lee et al., ICCV 2021).
        "cpq" => Cpq: "Cluster-Promoting Quantization: multi-class STE + DropBits (ICCV 2021)",
        /// ProxQuant: a prox step toward the grid after every optimizer step, with a growing λ
        /// (Bai et al. 2019); `revised` takes it in Adam's metric (ProxGen).
        "proxquant" => Proxquant: "(revised) ProxQuant: a prox step toward the grid after each step",
    }
}

impl QuantMethod {
    /// Whether the method draws a categorical over the grid (RQ, SRQ, CPQ).
    pub fn is_categorical(self) -> bool {
        matches!(self, Self::Rq | Self::Srq | Self::Cpq)
    }
}

/// Learned per-layer bit-width: a hard-concrete gate per bit level (CPQ; spec A2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearnBitsConfig {
    /// λ_bit: weight of the expected number of open gates, `λ Σ_j P(z_j ≠ 0)` (cost 1 per bit).
    pub lambda: f64,
    /// Initial `log a` of every gate (large: start with every bit open).
    pub init_log_a: f64,
}

impl Default for LearnBitsConfig {
    fn default() -> Self {
        Self {
            lambda: 1e-3,
            init_log_a: 3.0,
        }
    }
}

/// A weight quantizer. Weights are quantized per layer (one grid per weight matrix); biases stay
/// in full precision, as is usual.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuantConfig {
    /// The method.
    pub method: QuantMethod,
    /// Bit-width b (2..=8; the categorical methods 2..=4).
    pub bits: u32,
    /// Restricted symmetric range `Q_N = Q_P` (STE/LSQ only).
    pub restricted: bool,
    /// RQ's Gumbel-softmax temperature τ.
    pub tau: f64,
    /// Initial σ as a fraction of α (RQ, SRQ: 1/3; CPQ: 1/6 when unset) \[R\].
    pub sigma_init: Option<f64>,
    /// Extend the outermost cells to ±∞ (spec A1's convention).
    pub extend_edges: bool,
    /// DropBits (SRQ: off unless set; CPQ: on with p = 0.3 unless set).
    pub dropbits: Option<DropBitsConfig>,
    /// CPQ: learn each layer's bit-width with hard-concrete gates on the bit levels.
    pub learn_bits: Option<LearnBitsConfig>,
    /// ProxQuant: λ grows by this much per epoch (`λ_t = reg_rate · epoch`, the official homotopy).
    pub reg_rate: f64,
    /// ProxQuant: take the prox in the optimizer's preconditioned metric (revised, ProxGen).
    pub revised: bool,
}

impl Default for QuantConfig {
    fn default() -> Self {
        Self {
            method: QuantMethod::None,
            bits: 4,
            restricted: false,
            tau: 1.0,
            sigma_init: None,
            extend_edges: true,
            dropbits: None,
            learn_bits: None,
            reg_rate: 1e-4,
            revised: true,
        }
    }
}

impl QuantConfig {
    /// The config of `method` at `bits` with every default filled in.
    pub fn new(method: QuantMethod, bits: u32) -> Self {
        Self {
            method,
            bits,
            ..Self::default()
        }
        .resolved()
    }

    /// Fills the method's defaults (σ init, CPQ's DropBits).
    pub fn resolved(mut self) -> Self {
        if self.method.is_categorical() && self.sigma_init.is_none() {
            self.sigma_init = Some(if self.method == QuantMethod::Cpq {
                1.0 / 6.0
            } else {
                1.0 / 3.0
            });
        }
        if self.method == QuantMethod::Cpq && self.dropbits.is_none() {
            self.dropbits = Some(DropBitsConfig::default());
        }
        self
    }

    /// Checks the config; the message names the field and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let m = self.method;
        if m == QuantMethod::None {
            return Ok(());
        }
        let max = if m.is_categorical() { MAX_BITS } else { 8 };
        if !(2..=max).contains(&self.bits) {
            return Err(ConfigError::invalid(
                "bits",
                self.bits,
                format!("{} supports 2..={max} bits", m.name()),
            ));
        }
        if self.restricted && !matches!(m, QuantMethod::Ste | QuantMethod::Lsq) {
            return Err(ConfigError::invalid(
                "restricted",
                true,
                format!("only ste and lsq have a restricted range, not {}", m.name()),
            ));
        }
        if !(self.tau > 0.0 && self.tau.is_finite()) {
            return Err(ConfigError::invalid("tau", self.tau, "must be positive"));
        }
        if let Some(s) = self.sigma_init {
            if !(s > 0.0 && s.is_finite()) {
                return Err(ConfigError::invalid("sigma_init", s, "must be positive"));
            }
        }
        if let Some(d) = &self.dropbits {
            if !matches!(m, QuantMethod::Srq | QuantMethod::Cpq) {
                return Err(ConfigError::invalid(
                    "dropbits",
                    format!("p = {}", d.p),
                    format!("only srq and cpq drop bits, not {}", m.name()),
                ));
            }
            d.validate(self.bits).map_err(|e| e.within("dropbits"))?;
        }
        if let Some(lb) = &self.learn_bits {
            if m != QuantMethod::Cpq {
                return Err(ConfigError::invalid(
                    "learn_bits",
                    format!("lambda = {}", lb.lambda),
                    format!("only cpq learns bit-widths, not {}", m.name()),
                ));
            }
            if !(lb.lambda >= 0.0 && lb.lambda.is_finite()) {
                return Err(ConfigError::invalid(
                    "learn_bits.lambda",
                    lb.lambda,
                    "must be ≥ 0",
                ));
            }
        }
        if !(self.reg_rate >= 0.0 && self.reg_rate.is_finite()) {
            return Err(ConfigError::invalid(
                "reg_rate",
                self.reg_rate,
                "must be ≥ 0",
            ));
        }
        Ok(())
    }

    /// A short label, e.g. `cpq 2-bit` or `full precision`.
    pub fn label(&self) -> String {
        match self.method {
            QuantMethod::None => "full precision".into(),
            m => format!("{} {}-bit", m.name(), self.bits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = QuantConfig::new(QuantMethod::Cpq, 2);
        assert_eq!(c.sigma_init, Some(1.0 / 6.0));
        assert!(c.dropbits.is_some());
        assert!(c.validate().is_ok());
        let e = QuantConfig::new(QuantMethod::Srq, 6)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("2..=4"), "{e}");
        let mut c = QuantConfig::new(QuantMethod::Lsq, 3);
        c.dropbits = Some(DropBitsConfig::default());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("only srq and cpq"));
        let parsed: QuantConfig = serde_json::from_str(r#"{"method":"rq","bits":3}"#).unwrap();
        assert_eq!(parsed.resolved().sigma_init, Some(1.0 / 3.0));
        let bad = serde_json::from_str::<QuantConfig>(r#"{"method":"rq","bitz":3}"#);
        assert!(bad.unwrap_err().to_string().contains("bitz"));
    }
}
