//! JSON input with errors that name the field: [`parse_json`] (every config file, standard
//! input, a checkpoint's stored config) and [`from_json_value`] (a link's state), and the
//! deserialization of configs tagged by `"name"`.
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
        Some(other) => Err(format!("name: expected a string, got {}", kind(&other))),
        None => Err(format!("missing field `name` (one of {list})")),
    }
}

/// What a JSON value is, in words, without repeating a long one (a string is quoted; messages
/// shorten long quotes).
pub(crate) fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!("an array of {} values", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// Deserializes `value` as `T`, prefixing the error with the path of the offending field.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    from_json_value(value)
}

/// Parses JSON text into `T`, with the field path in the message (`optimizer.lr: invalid type
/// ...`) and every long quoted value in it shortened ([`shorten_quoted`]): what every config file,
/// standard input and checkpoint's stored config goes through.
pub fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let syntax = e.inner().is_syntax();
        let mut msg = path_message(e);
        if syntax && ["NaN", "Infinity"].iter().any(|t| text.contains(t)) {
            msg.push_str(" (NaN and Infinity are not JSON numbers; every value must be finite)");
        }
        msg
    })
}

/// [`parse_json`] for a JSON value already parsed (a link's state).
pub fn from_json_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(path_message)
}

fn path_message(e: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.into_inner();
    shorten_quoted(&if path == "." || path.is_empty() {
        inner.to_string()
    } else {
        format!("{path}: {inner}")
    })
}

/// The longest quoted span (between backticks or double quotes) a message keeps whole.
const QUOTED_MAX: usize = 40;

/// `msg` with every span between backticks or double quotes longer than 40 characters cut to its
/// first 24 and `…`: serde quotes the offending value, and a message should name it, not repeat
/// a 5,000-character string.
pub fn shorten_quoted(msg: &str) -> String {
    let chars: Vec<char> = msg.chars().collect();
    let mut out = String::with_capacity(msg.len().min(1024));
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        i += 1;
        if c != '`' && c != '"' {
            continue;
        }
        let Some(len) = chars[i..].iter().position(|&d| d == c) else {
            continue;
        };
        if len > QUOTED_MAX {
            out.extend(&chars[i..i + 24]);
            out.push('…');
        } else {
            out.extend(&chars[i..i + len]);
        }
        out.push(c);
        i += len + 1;
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_quoted_values_are_shortened_and_paths_named() {
        let long = "x".repeat(5000);
        assert_eq!(
            shorten_quoted(&format!("unknown variant `{long}`, expected `a` or `b`")),
            format!("unknown variant `{}…`, expected `a` or `b`", "x".repeat(24))
        );
        assert_eq!(
            shorten_quoted("a `short` \"one\" and `open"),
            "a `short` \"one\" and `open"
        );
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct S {
            inner: Vec<u32>,
        }
        let e = parse_json::<S>(&format!("{{\"inner\": [1, \"{long}\"]}}")).unwrap_err();
        assert!(
            e.starts_with("inner[1]: invalid type: string \"xxxx"),
            "{e}"
        );
        assert!(e.chars().count() < 120, "{e}");
        let e = parse_json::<S>("{\"inner\": [NaN]}").unwrap_err();
        assert!(e.ends_with("every value must be finite)"), "{e}");
    }
}
