//! Property tests of the link-fragment parser (`ExplorerState::from_fragment`): arbitrary
//! fragments, and valid states' JSON mutated at random (a value replaced by an awkward one, a key
//! removed or added) then encoded as `#s=`. For each: no panic; a refused link gets a short,
//! non-empty message; the memory allocated while reading stays within a bound proportional to
//! the fragment (a counting allocator); an accepted link round-trips exactly, and every valid
//! state does: state → link → state.
//!
//! Case counts are fixed (`CASES`), so the time is bounded (10,000 cases, about 2 s in the test profile).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use base64::Engine;
use optiscope_app::state::{
    AlignLabState, CompressPart, ExplorerState, GpuUse, LabKind, PageOptions,
};
use optiscope_core::align::experiment::ALIGN_PRESETS;
use optiscope_core::experiment::presets::PRESETS;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[path = "../../optiscope-core/tests/support/json_edit.rs"]
mod json_edit;
#[path = "../../optiscope-core/tests/support/meter.rs"]
mod meter;

use json_edit::{apply, edit};
use meter::{bound, check_message, peak_of};

const CASES: u32 = 2000;

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Valid states: any lab shown, any experiment preset, the other labs present or not (an Align
/// preset, either Compress part), a speed, steps, and page options.
fn state() -> impl Strategy<Value = ExplorerState> {
    (
        0..LabKind::ALL.len(),
        0..PRESETS.len(),
        prop::option::of(0..ALIGN_PRESETS.len()),
        prop::option::of(any::<bool>()),
        any::<bool>(),
        any::<bool>(),
        (1u32..=500, 0u64..100_000),
        prop::array::uniform5(any::<bool>()),
    )
        .prop_map(
            |(lab, preset, align, compress, quant, transformer, (speed, step), page)| {
                let mut s = ExplorerState::from_preset(PRESETS[preset].name);
                s.lab = LabKind::ALL[lab];
                s.speed = speed;
                // Steps within what each lab's run has (a link past the end is refused).
                s.labs.experiment.step = step % (s.labs.experiment.experiment.steps + 1);
                if let Some(a) = align {
                    s.labs.align = Some(AlignLabState::from_preset(ALIGN_PRESETS[a].name));
                    s.align_mut().step = step % 3;
                }
                if let Some(moe) = compress {
                    s.compress_mut().part = if moe {
                        CompressPart::Moe
                    } else {
                        CompressPart::Teddy
                    };
                }
                if quant {
                    s.quant_mut().step = step % 500;
                }
                if transformer {
                    let t = s.transformer_mut();
                    t.step = step % (t.lm.steps + 1);
                }
                s.page = PageOptions {
                    play: page[0],
                    hide_top: page[1],
                    hide_controls: page[2],
                    hide_status: page[3],
                    gpu: if page[4] { GpuUse::Off } else { GpuUse::Auto },
                };
                s
            },
        )
}

/// Reads a fragment, checking the allocation bound and the refusal's message.
fn read(fragment: &str) -> Result<Option<ExplorerState>, TestCaseError> {
    let (r, peak) = peak_of(|| ExplorerState::from_fragment(fragment));
    // An Align lab's config is checked by building its bandit: its features are bounded by
    // core's MAX_FEATURES (f64 each), not by the link's length.
    let align = 8 * optiscope_core::align::bandit::MAX_FEATURES;
    prop_assert!(
        peak <= bound(fragment.len(), 64) + align,
        "{peak} bytes allocated reading a {}-byte link",
        fragment.len()
    );
    match r {
        Ok(s) => Ok(s),
        Err(e) => {
            check_message("link", &e)?;
            Ok(None)
        }
    }
}

#[test]
fn every_valid_state_round_trips_through_its_link() {
    runner(CASES)
        .run(&state(), |s| {
            let fragment = s.to_fragment();
            let back = read(&format!("#{fragment}"))?;
            prop_assert_eq!(back.as_ref(), Some(&s), "#{}", fragment);
            Ok(())
        })
        .unwrap();
    println!("state → link → state: {CASES} cases");
}

#[test]
fn mutated_states_are_refused_clearly_or_round_trip() {
    let accepted = std::cell::Cell::new(0u32);
    runner(2 * CASES)
        .run(
            &(state(), prop::collection::vec(edit(), 1..4)),
            |(s, edits)| {
                let value = apply(serde_json::to_value(&s).unwrap(), &edits);
                let fragment = format!(
                    "#s={}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
                );
                if let Some(got) = read(&fragment)? {
                    accepted.set(accepted.get() + 1);
                    let again = got.to_fragment();
                    let back = read(&format!("#{again}"))?;
                    prop_assert_eq!(back.as_ref(), Some(&got));
                }
                Ok(())
            },
        )
        .unwrap();
    println!(
        "mutated #s= states: {} cases, {} accepted (and round-tripped)",
        2 * CASES,
        accepted.get()
    );
}

#[test]
fn arbitrary_fragments_are_refused_clearly() {
    let prefix = prop_oneof![
        Just(""),
        Just("#"),
        Just("#s="),
        Just("#preset="),
        Just("#view="),
        Just("#align="),
        Just("#compress="),
        Just("#transformer="),
        Just("#preset=rosenbrock&step="),
        Just("#transformer=muon,adamw&steps="),
    ];
    let tail = prop_oneof!["\\PC{0,80}", "[A-Za-z0-9_-]{0,400}", "[0-9]{1,25}"];
    let page = prop_oneof![
        Just(""),
        Just("&play=1"),
        Just("&play=2"),
        Just("&hide=top,controls"),
        Just("&hide=everything"),
        Just("&play=&hide="),
        Just("&gpu=0&play=1"),
        Just("&gpu=lost"),
        Just("&gpu=2"),
    ];
    runner(2 * CASES)
        .run(&(prefix, tail, page), |(p, t, o)| {
            read(&format!("{p}{t}{o}"))?;
            Ok(())
        })
        .unwrap();
    println!("arbitrary fragments: {} cases", 2 * CASES);
}
