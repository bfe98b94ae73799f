//! The one error type of every config in the project: optimizers, quantizers, problems,
//! experiments, training runs. Each names the field, the value and what is allowed, so a person
//! (or the explorer's error line) can fix the input without reading code.

use thiserror::Error;

/// A config asks for something that is not allowed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// A field has a value outside what is allowed.
    #[error("{field} = {value}: {allowed}")]
    Invalid {
        /// The field, e.g. `betas[1]` or `problem.kappa`.
        field: String,
        /// The offending value.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A parameter group names a parameter that does not exist.
    #[error("param_groups names parameter {name:?}, which does not exist (parameters: {known})")]
    UnknownParam {
        /// The unknown name.
        name: String,
        /// The parameters that exist.
        known: String,
    },
}

impl ConfigError {
    /// An `Invalid` error.
    pub fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        allowed: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            field: field.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    /// The same error with its field inside `prefix` (`prefix.field`).
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::Invalid {
                field,
                value,
                allowed,
            } => Self::Invalid {
                field: format!("{prefix}.{field}"),
                value,
                allowed,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_field_value_and_rule() {
        let e = ConfigError::invalid("bits", 6, "cpq supports 2..=4 bits");
        assert_eq!(e.to_string(), "bits = 6: cpq supports 2..=4 bits");
        assert_eq!(
            e.within("quant").to_string(),
            "quant.bits = 6: cpq supports 2..=4 bits"
        );
    }
}
