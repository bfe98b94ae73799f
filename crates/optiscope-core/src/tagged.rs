//! Deserialization of configs tagged by `"name"` with errors that name the field.
//!
//! serde's derived internally-tagged enums buffer the variant's content, which loses the path of
//! a mistyped field (`invalid type: string "fast", expected f64` without saying where). These
//! helpers read the object, pick the variant by `"name"` and deserialize it with
//! `serde_path_to_error`, so the message reads `lr: invalid type: string "fast", expected f64`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Splits a tagged object into its `"name"` and the remaining fields.
pub(crate) fn split_name(
    mut obj: Map<String, Value>,
    valid: &[&str],
) -> Result<(String, Value), String> {
    let list = valid
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match obj.remove("name") {
        Some(Value::String(name)) if valid.contains(&name.as_str()) => {
            Ok((name, Value::Object(obj)))
        }
        Some(Value::String(name)) => Err(format!(
            "name: unknown variant `{name}`, expected one of {list}"
        )),
        Some(other) => Err(format!("name: expected a string, got {other}")),
        None => Err(format!("missing field `name` (one of {list})")),
    }
}

/// Deserializes `value` as `T`, prefixing the error with the path of the offending field.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// Implements `Deserialize` for an enum of configs tagged by `"name"`: one `"name" => Variant`
/// per line.
macro_rules! tagged_deserialize {
    ($ty:ident { $($tag:literal => $variant:ident),* $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::Error;
                let obj = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
                let (name, rest) = crate::tagged::split_name(obj, &[$($tag),*]).map_err(D::Error::custom)?;
                match name.as_str() {
                    $($tag => crate::tagged::from_value(rest).map(Self::$variant),)*
                    _ => unreachable!("split_name accepts only the listed names"),
                }
                .map_err(D::Error::custom)
            }
        }
    };
}

pub(crate) use tagged_deserialize;
