//! Reading user input (config and trace files) with errors that name the file, the field and
//! what went wrong.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;

/// Bad input: a config, a trace or an argument the user can fix. Exits with code 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// A [`BadInput`] as an `anyhow::Error`.
pub fn bad(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

/// Reads and parses a JSON file; every failure is a [`BadInput`] naming the file and, for parse
/// errors, the path of the offending field.
/// `-` reads standard input.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = read_text(path)?;
    parse_json(&text).map_err(|msg| bad(format!("{}: {msg}", path.display())))
}

/// Reads a text file (`-`: standard input); a failure is a [`BadInput`] naming the file.
pub fn read_text(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| bad(format!("cannot read standard input: {e}")))
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))
    }
}

pub use optiscope_core::tagged::parse_json;

/// A clap value parser over a method registry: the names it accepts, each with its help line
/// (shown by `--help`), so the CLI's value lists are the registries of core.
pub fn choices(
    info: &'static [optiscope_core::config::MethodInfo],
) -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        info.iter()
            .map(|m| clap::builder::PossibleValue::new(m.name).help(m.summary)),
    )
}
