//! The adapter the GPU suite runs on, printed for the log (CI greps for it to prove the suite
//! was not skipped).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::gpu;

/// The adapter the suite ran on, for the log (CI greps for it to prove the suite was not skipped).
#[test]
fn reports_the_adapter() {
    let Some(ctx) = gpu() else { return };
    let name = ctx.describe();
    eprintln!("GPU conformance adapter: {name}");
    assert!(!ctx.info.name.is_empty(), "{name}");
}
