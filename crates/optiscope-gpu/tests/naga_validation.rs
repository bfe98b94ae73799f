//! Every WGSL file in `shaders/` parses and validates with naga — no GPU needed. The list comes
//! from the folder itself, so a new shader cannot skip the check, and every file must also be
//! registered in `optiscope_gpu::shaders::ALL` (which embeds it).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

#[test]
fn every_shader_file_validates_and_is_registered() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let source = std::fs::read_to_string(&path).unwrap();
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
        let registered = optiscope_gpu::shaders::ALL.iter().find(|s| s.name == name);
        assert_eq!(
            registered.map(|s| s.source),
            Some(source.as_str()),
            "{name} is not registered in shaders::ALL"
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        optiscope_gpu::shaders::ALL.len(),
        "shaders::ALL lists a file that is not in shaders/"
    );
    assert!(checked >= 6, "found only {checked} shader files");
}
