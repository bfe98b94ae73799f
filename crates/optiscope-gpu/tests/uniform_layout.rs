//! Every `#[repr(C)]` uniform struct against its WGSL struct, by naga's reflection: the same size,
//! and every field at the offset (and of the size) of the WGSL members it stands for; every
//! WGSL member that is not padding (`_…`) is covered. A layout mismatch between Rust and a shader
//! fails here, on any machine, instead of as wrong numbers on a GPU.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use naga::proc::Layouter;

#[test]
fn uniform_structs_match_their_wgsl_twins() {
    let layouts = optiscope_gpu::layout::uniform_layouts();
    assert!(layouts.len() >= 8, "{} uniform structs", layouts.len());
    let mut seen = std::collections::BTreeSet::new();
    for l in &layouts {
        let what = format!("{} ({}: {})", l.rust, l.shader.name, l.wgsl);
        let module = naga::front::wgsl::parse_str(l.shader.source).unwrap();
        let mut layouter = Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(l.wgsl))
            .unwrap_or_else(|| panic!("{what}: no WGSL struct of that name"));
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("{what}: not a struct");
        };
        assert_eq!(*span as usize, l.size, "{what}: size");
        let wgsl: BTreeMap<&str, (usize, usize)> = members
            .iter()
            .map(|m| {
                (
                    m.name.as_deref().unwrap_or(""),
                    (m.offset as usize, layouter[m.ty].size as usize),
                )
            })
            .collect();
        let mut covered = std::collections::BTreeSet::new();
        for f in &l.fields {
            let mut at = f.offset;
            for name in &f.wgsl {
                let (offset, size) = *wgsl
                    .get(name)
                    .unwrap_or_else(|| panic!("{what}: no WGSL member {name} for {}", f.name));
                assert_eq!(offset, at, "{what}: {} / {name} offset", f.name);
                at += size;
                covered.insert(*name);
            }
            assert_eq!(at - f.offset, f.size, "{what}: {} size", f.name);
        }
        for name in wgsl.keys() {
            assert!(
                name.starts_with('_') || covered.contains(name),
                "{what}: WGSL member {name} has no Rust field"
            );
        }
        seen.insert(l.shader.name);
    }
    // Every shader that declares a uniform is checked.
    for shader in optiscope_gpu::shaders::ALL {
        if shader.source.contains("var<uniform>") {
            assert!(
                seen.contains(shader.name),
                "{}: its uniform struct is not listed",
                shader.name
            );
        }
    }
}
