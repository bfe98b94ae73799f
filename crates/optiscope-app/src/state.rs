//! The explorer's whole state as one serializable value, and its compact, versioned form in the
//! URL fragment: `#s=` + base64url(JSON). Opening a link rebuilds the same experiment and steps it
//! to the same step, so the picture is the same.

use base64::Engine;
use optiscope_core::experiment::presets::preset;
use optiscope_core::experiment::ExperimentConfig;
use serde::{Deserialize, Serialize};

/// The current format of the shared state.
pub const STATE_VERSION: u32 = 1;

/// Which view is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// The 2-D landscape with optimizer paths.
    #[default]
    Landscape,
    /// Singular values of a factorization against step.
    Spectrum,
    /// Loss curves.
    Loss,
}

/// Everything a link reproduces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplorerState {
    /// Format version ([`STATE_VERSION`]).
    pub version: u32,
    /// The view shown.
    pub view: View,
    /// The preset the experiment started from (for the menu; the experiment itself is below).
    pub preset: String,
    /// The experiment: problem, runs with their configs, seed, steps.
    pub experiment: ExperimentConfig,
    /// The step shown.
    pub step: u64,
    /// Steps per frame while playing.
    pub speed: u32,
}

impl ExplorerState {
    /// The state of `preset_name` (river-valley if unknown) at step 0.
    pub fn from_preset(preset_name: &str) -> Self {
        let (name, experiment) = match preset(preset_name) {
            Some(e) => (preset_name, e),
            None => ("river-valley", default_experiment()),
        };
        let view = match experiment.problem {
            optiscope_core::problems::ProblemConfig::LoraFactorization(_) => View::Spectrum,
            _ => View::Landscape,
        };
        Self {
            version: STATE_VERSION,
            view,
            preset: name.into(),
            experiment,
            step: 0,
            speed: 4,
        }
    }

    /// The fragment (without `#`) that encodes this state.
    pub fn to_fragment(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!(
            "s={}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    /// Parses a fragment (with or without `#`). `Ok(None)` for an empty fragment; an error message
    /// for anything malformed or from another version.
    pub fn from_fragment(fragment: &str) -> Result<Option<Self>, String> {
        let f = fragment.trim_start_matches('#');
        if f.is_empty() {
            return Ok(None);
        }
        if let Some(rest) = f.strip_prefix("preset=") {
            return Self::from_preset_fragment(rest).map(Some);
        }
        let Some(data) = f.strip_prefix("s=") else {
            return Err(format!("the link's fragment {:?} is not an optiscope state (expected #s=... or #preset=NAME)", truncate(f)));
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(data.trim_end_matches('='))
            .map_err(|e| format!("the link's state is not valid base64url: {e}"))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the link's state is not valid JSON: {e}"))?;
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if version != u64::from(STATE_VERSION) {
            return Err(format!("the link was made by another version of optiscope (state version {version}, this one reads {STATE_VERSION})"));
        }
        let state: Self = serde_json::from_value(value)
            .map_err(|e| format!("the link's state is not usable: {e}"))?;
        Ok(Some(state))
    }
}

impl ExplorerState {
    /// `NAME[&speed=N][&steps=N]`: a short, hand-writable link to a preset.
    fn from_preset_fragment(rest: &str) -> Result<Self, String> {
        let mut parts = rest.split('&');
        let name = parts.next().unwrap_or_default();
        if preset(name).is_none() {
            let names: Vec<_> = optiscope_core::experiment::presets::PRESETS
                .iter()
                .map(|p| p.name)
                .collect();
            return Err(format!(
                "unknown preset {name:?} in the link (presets: {})",
                names.join(", ")
            ));
        }
        let mut state = Self::from_preset(name);
        for part in parts {
            match part.split_once('=') {
                Some(("speed", v)) => {
                    state.speed = v
                        .parse::<u32>()
                        .map_err(|_| format!("speed={v:?} in the link is not a number"))?
                        .clamp(1, 10_000)
                }
                Some(("steps", v)) => {
                    state.experiment.steps = v
                        .parse::<u64>()
                        .map_err(|_| format!("steps={v:?} in the link is not a number"))?
                        .clamp(1, 10_000_000)
                }
                _ => {
                    return Err(format!(
                        "unknown link parameter {part:?} (allowed: speed=N, steps=N)"
                    ))
                }
            }
        }
        Ok(state)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn default_experiment() -> ExperimentConfig {
    // river-valley always exists; fall back to an empty-run config only if presets change.
    preset("river-valley").unwrap_or_else(|| unreachable!("the river-valley preset is built in"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_the_fragment() {
        let mut s = ExplorerState::from_preset("lora-spectrum");
        s.step = 123;
        s.experiment.seed = 9;
        let f = s.to_fragment();
        assert!(f.len() < 3000, "fragment is {} chars", f.len());
        assert_eq!(
            ExplorerState::from_fragment(&format!("#{f}")).unwrap(),
            Some(s)
        );
    }

    #[test]
    fn malformed_and_old_fragments_are_errors_not_panics() {
        assert_eq!(ExplorerState::from_fragment("").unwrap(), None);
        assert_eq!(
            ExplorerState::from_fragment("#preset=rosenbrock&speed=50")
                .unwrap()
                .unwrap()
                .speed,
            50
        );
        assert!(ExplorerState::from_fragment("#preset=nope")
            .unwrap_err()
            .contains("unknown preset"));
        assert!(ExplorerState::from_fragment("#x=1")
            .unwrap_err()
            .contains("not an optiscope state"));
        assert!(ExplorerState::from_fragment("#s=!!!")
            .unwrap_err()
            .contains("base64url"));
        let old = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"version":0}"#);
        assert!(ExplorerState::from_fragment(&format!("#s={old}"))
            .unwrap_err()
            .contains("another version"));
        let bad = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"version":1,"view":"nope"}"#);
        assert!(ExplorerState::from_fragment(&format!("#s={bad}"))
            .unwrap_err()
            .contains("not usable"));
    }
}
