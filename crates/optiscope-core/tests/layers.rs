//! The layering of ARCHITECTURE.md, checked: inside `optiscope-core` and inside `optiscope-app`
//! every module imports (`crate::…`) only modules of a strictly lower layer, so there are no
//! upward imports and no cycles. Test modules (`mod tests { … }`, `tests.rs`) are exempt: a test
//! may train a model with an optimizer. A new top-level module must be given a layer here.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Core: base (config, rng, linalg → tensor, metrics, data) → device → methods → {align,
/// sparsify} → train → experiment.
const CORE: &[(&str, u32)] = &[
    ("config", 0),
    ("rng", 0),
    ("linalg", 0),
    ("tagged", 0),
    ("tensor", 1),
    ("metrics", 1),
    ("data", 1),
    ("corpus", 1),
    ("device", 2),
    ("optim", 3),
    ("quant", 3),
    ("models", 3),
    ("problems", 3),
    // To come with the alignment and compression labs.
    ("align", 4),
    ("sparsify", 4),
    ("train", 5),
    ("experiment", 6),
    ("lib", 7),
];

/// The explorer: status → {page, state, compute} → {views, lab} → export → labs → app → entry points.
const APP: &[(&str, u32)] = &[
    ("status", 0),
    ("fonts", 0),
    ("page", 1),
    ("state", 1),
    ("compute", 1),
    ("guide", 1),
    ("views", 2),
    ("lab", 2),
    ("export", 3),
    ("labs", 4),
    ("app", 5),
    ("lib", 6),
    ("web", 7),
    ("main", 7),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::<module>` references of a file's non-test code, by module.
fn imports(source: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (i, line) in source.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("mod tests {") || t.starts_with("pub mod tests {") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let mut rest = t;
        while let Some(at) = rest.find("crate::") {
            let name: String = rest[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            if !name.is_empty() {
                out.entry(name).or_insert(i + 1);
            }
            rest = &rest[at + 7..];
        }
    }
    out
}

fn check(crate_dir: &str, layers: &[(&str, u32)]) -> usize {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src");
    let rank: BTreeMap<&str, u32> = layers.iter().copied().collect();
    let root = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut errors = vec![];
    let mut checked = 0;
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let Some(&own) = rank.get(top.as_str()) else {
            errors.push(format!(
                "{crate_dir}/src/{}: module `{top}` has no layer in tests/layers.rs",
                rel.display()
            ));
            continue;
        };
        let source = std::fs::read_to_string(&file).unwrap();
        for (dep, line) in imports(&source) {
            if dep == top {
                continue;
            }
            // A function of the crate root (`crate::wgpu_options`) is in the root's layer.
            let dep_rank = rank
                .get(dep.as_str())
                .or_else(|| root.contains(&format!("fn {dep}(")).then(|| &rank["lib"]));
            match dep_rank {
                Some(&r) if r < own => {}
                Some(&r) => errors.push(format!(
                    "{crate_dir}/src/{}:{line}: `{top}` (layer {own}) imports `crate::{dep}` \
                     (layer {r}): only lower layers may be imported",
                    rel.display()
                )),
                // Re-exports and items of the crate root (`crate::Tensor`) are not modules.
                None if dep.chars().next().is_some_and(|c| c.is_ascii_lowercase()) => {
                    errors.push(format!(
                        "{crate_dir}/src/{}:{line}: `crate::{dep}` is not a module with a layer",
                        rel.display()
                    ));
                }
                None => {}
            }
        }
        checked += 1;
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    checked
}

#[test]
fn core_modules_import_only_lower_layers() {
    let n = check("optiscope-core", CORE);
    assert!(n > 30, "checked only {n} files");
}

#[test]
fn explorer_modules_import_only_lower_layers() {
    let n = check("optiscope-app", APP);
    assert!(n > 10, "checked only {n} files");
}

/// The checker sees an upward import (so the two tests above can fail).
#[test]
fn an_upward_import_is_found() {
    let found = imports("use crate::train::Trainer;\n// crate::experiment in a comment\nfn f() { crate::optim::x(); }\n#[cfg(test)]\nmod tests {\n    use crate::app;\n}\n");
    assert_eq!(
        found.keys().map(String::as_str).collect::<Vec<_>>(),
        ["optim", "train"]
    );
}
