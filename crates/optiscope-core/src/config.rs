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
    /// An `Invalid` error. A value longer than 60 characters (a long list, a long string) is
    /// cut to its first 48 and `…`: the message names it, it does not repeat it.
    pub fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        allowed: impl Into<String>,
    ) -> Self {
        let mut value = value.to_string();
        if value.chars().count() > 60 {
            value = value.chars().take(48).chain(['…']).collect();
        }
        Self::Invalid {
            field: field.into(),
            value,
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

/// One entry of a method registry: its name in configs, links and on the command line, and one
/// line of help (`optiscope list`, `--help`, the explorer's menus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodInfo {
    /// The name (a config's `"name"` tag or enum value).
    pub name: &'static str,
    /// What it is and where it comes from.
    pub summary: &'static str,
}

/// A registry of named choices as an enum: `"name" => Variant: "summary"` per line, in the order
/// menus list them, and the default. Generates the enum (serde by name), `ALL`, `INFO`, `name`,
/// `summary` and `from_name`, so the CLI's value lists and the explorer's menus come from it.
macro_rules! choice_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $ty:ident default $default:ident {
            $($(#[$vmeta:meta])* $tag:literal => $variant:ident: $summary:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        $vis enum $ty {
            $($(#[$vmeta])* #[serde(rename = $tag)] $variant,)*
        }

        impl Default for $ty {
            fn default() -> Self {
                Self::$default
            }
        }

        impl $ty {
            /// Every choice, in the order the CLI and the explorer list them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// Name and help of every choice, in the same order.
            pub const INFO: &'static [$crate::config::MethodInfo] = &[
                $($crate::config::MethodInfo { name: $tag, summary: $summary }),*
            ];

            /// The name in configs, links and on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $tag,)*
                }
            }

            /// One line of help.
            pub fn summary(self) -> &'static str {
                match self {
                    $(Self::$variant => $summary,)*
                }
            }

            /// The choice of that name.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|c| c.name() == name)
            }
        }
    };
}

pub(crate) use choice_enum;

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
