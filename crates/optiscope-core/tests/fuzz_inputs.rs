//! Property tests of every input a user or a file hands to core: the JSON configs (`run`,
//! `train`, `train --model gpt`, `align`, `prune`, `moe`), a run's `metrics.jsonl` and the two
//! safetensors readers (checkpoints and GPT weights). Inputs are valid files mutated at random
//! (a value replaced by an awkward one, a key removed or added, bytes flipped, a file cut short)
//! and arbitrary text or bytes. For each: no panic; a rejected input gets a short, non-empty
//! message; the memory allocated while reading stays within a bound proportional to the input
//! (measured by a counting allocator); and what is accepted round-trips exactly.
//!
//! Case counts are fixed (see `CASES_*`), so the suite's time is bounded: 40,750 cases (each
//! config parser 5,000, metrics 4,000, checkpoints 3,750, GPT weights 3,000), about 2 s in the
//! test profile. Each test prints its counts (`-- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::cell::Cell;

use optiscope_core::align::experiment::{align_preset, AlignConfig, ALIGN_PRESETS};
use optiscope_core::corpus::Vocab;
use optiscope_core::experiment::presets::{preset, PRESETS};
use optiscope_core::experiment::{Experiment, ExperimentConfig};
use optiscope_core::metrics::read_run_metrics;
use optiscope_core::models::{Gpt, GptConfig};
use optiscope_core::sparsify::experiment::PruneConfig;
use optiscope_core::sparsify::moe_experiment::MoeConfig;
use optiscope_core::tagged::parse_json;
use optiscope_core::train::checkpoint::Checkpoint;
use optiscope_core::train::gpt_file;
use optiscope_core::train::lm::{LmConfig, LmPreset};
use optiscope_core::train::TrainConfig;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

#[path = "support/json_edit.rs"]
mod json_edit;
#[path = "support/meter.rs"]
mod meter;

use json_edit::{apply, edit};
use meter::{bound, check_message, peak_of};

/// A config parser as the CLI runs it: parse (core's `parse_json`, the CLI's), then validate (what the command does before it
/// allocates for the run).
struct ConfigInput<T> {
    name: &'static str,
    seeds: Vec<T>,
    validate: fn(&T) -> Result<(), String>,
}

/// Parses `text` as `T` and validates it, checking the allocation bound and the message.
fn parse_checked<T: DeserializeOwned>(
    input: &ConfigInput<T>,
    text: &str,
) -> Result<Option<T>, TestCaseError> {
    let (result, peak) =
        peak_of(|| parse_json::<T>(text).and_then(|cfg| (input.validate)(&cfg).map(|()| cfg)));
    prop_assert!(
        peak <= bound(text.len(), 64),
        "{}: {peak} bytes allocated reading {} bytes",
        input.name,
        text.len()
    );
    match result {
        Ok(cfg) => Ok(Some(cfg)),
        Err(msg) => {
            check_message(input.name, &msg)?;
            Ok(None)
        }
    }
}

/// Mutated seeds and arbitrary text, `cases` of each; accepted configs round-trip.
fn fuzz_config<T>(input: ConfigInput<T>, cases: u32) -> (u32, u32)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let seeds: Vec<Value> = input
        .seeds
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
    for (seed, value) in input.seeds.iter().zip(&seeds) {
        // The seeds themselves are accepted and round-trip.
        let text = value.to_string();
        let back = parse_checked(&input, &text)
            .unwrap()
            .unwrap_or_else(|| panic!("{}: a seed config is refused: {text}", input.name));
        assert_eq!(&back, seed, "{}: a seed does not round-trip", input.name);
    }
    let accepted = Cell::new(0u32);
    let mut runner = new_runner(cases);
    let strategy = (0..seeds.len(), prop::collection::vec(edit(), 1..4));
    runner
        .run(&strategy, |(s, edits)| {
            let text = apply(seeds[s].clone(), &edits).to_string();
            if let Some(cfg) = parse_checked(&input, &text)? {
                accepted.set(accepted.get() + 1);
                // state → JSON → state is exact (serde_json's float_roundtrip).
                let again = serde_json::to_string(&cfg).unwrap();
                let back = parse_checked(&input, &again)?;
                prop_assert_eq!(back.as_ref(), Some(&cfg), "{}: {}", input.name, again);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", input.name));
    let mut runner = new_runner(cases / 4);
    runner
        .run(&"\\PC{0,200}", |text| {
            parse_checked(&input, &text)?;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", input.name));
    (cases + cases / 4, accepted.get())
}

/// A runner of `cases` cases that keeps no failure file (the suite runs from a clean clone).
fn new_runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

const CASES_CONFIG: u32 = 4000;
const CASES_METRICS: u32 = 2000;
const CASES_SAFETENSORS: u32 = 3000;

#[test]
fn config_parsers_refuse_clearly_and_round_trip() {
    let mut report = vec![];
    report.push((
        "run (ExperimentConfig)",
        fuzz_config(
            ConfigInput::<ExperimentConfig> {
                name: "run",
                seeds: PRESETS.iter().filter_map(|p| preset(p.name)).collect(),
                // What `optiscope run` does first: build the experiment (the problem, every
                // run's optimizer) at step 0. Steps are cut to keep the check cheap; the records'
                // bound is checked by `Experiment::new` itself.
                validate: |c| {
                    let mut c = c.clone();
                    c.steps = c.steps.min(50);
                    Experiment::new(c).map(drop).map_err(|e| e.to_string())
                },
            },
            CASES_CONFIG,
        ),
    ));
    report.push((
        "train (TrainConfig)",
        fuzz_config(
            ConfigInput::<TrainConfig> {
                name: "train",
                seeds: vec![TrainConfig::default()],
                validate: |c| c.validate().map_err(|e| e.to_string()),
            },
            CASES_CONFIG,
        ),
    ));
    report.push((
        "train --model gpt (LmConfig)",
        fuzz_config(
            ConfigInput::<LmConfig> {
                name: "gpt",
                seeds: vec![LmConfig::default(), LmPreset::ShakespeareChar.config()],
                validate: |c| c.validate().map_err(|e| e.to_string()),
            },
            CASES_CONFIG,
        ),
    ));
    report.push((
        "align (AlignConfig)",
        fuzz_config(
            ConfigInput::<AlignConfig> {
                name: "align",
                seeds: ALIGN_PRESETS
                    .iter()
                    .filter_map(|p| align_preset(p.name))
                    .collect(),
                validate: |c| c.build().map_err(|e| e.to_string()),
            },
            CASES_CONFIG,
        ),
    ));
    report.push((
        "prune (PruneConfig)",
        fuzz_config(
            ConfigInput::<PruneConfig> {
                name: "prune",
                seeds: vec![PruneConfig::default()],
                validate: |c| c.validate().map_err(|e| e.to_string()),
            },
            CASES_CONFIG,
        ),
    ));
    report.push((
        "moe (MoeConfig)",
        fuzz_config(
            ConfigInput::<MoeConfig> {
                name: "moe",
                seeds: vec![MoeConfig::default()],
                validate: |c| c.validate().map_err(|e| e.to_string()),
            },
            CASES_CONFIG,
        ),
    ));
    for (name, (cases, accepted)) in report {
        println!("{name}: {cases} cases, {accepted} mutated configs accepted (and round-tripped)");
    }
}

// ---- metrics.jsonl ----

/// One record of `optiscope run`'s metrics.jsonl.
#[derive(Debug, Clone)]
struct Record {
    run: usize,
    step: u64,
    loss: f64,
    point: Option<[f64; 2]>,
    sv: Option<Vec<f64>>,
}

fn record() -> impl Strategy<Value = Record> {
    let finite = -1e12f64..1e12;
    (
        0usize..3,
        0u64..1_000_000,
        finite.clone(),
        prop::option::of((finite.clone(), finite.clone()).prop_map(|(a, b)| [a, b])),
        prop::option::of(prop::collection::vec(0.0f64..1e6, 0..6)),
    )
        .prop_map(|(run, step, loss, point, sv)| Record {
            run,
            step,
            loss,
            point,
            sv,
        })
}

fn record_line(r: &Record) -> String {
    let mut v =
        serde_json::json!({"run": format!("run-{}", r.run), "step": r.step, "loss": r.loss});
    if let Some(p) = r.point {
        v["point"] = serde_json::json!(p);
    }
    if let Some(s) = &r.sv {
        v["singular_values"] = serde_json::json!(s);
    }
    v.to_string()
}

#[test]
fn metrics_parser_refuses_clearly_and_round_trips() {
    let mut runner = new_runner(CASES_METRICS);
    // Round trip: what the run writes is what is read, per run, in order.
    runner
        .run(&prop::collection::vec(record(), 1..40), |records| {
            let text: String = records.iter().map(|r| record_line(r) + "\n").collect();
            let m = read_run_metrics("m.jsonl", &text).map_err(TestCaseError::fail)?;
            prop_assert_eq!(m.skipped, 0);
            for run in 0..3 {
                let mine: Vec<&Record> = records.iter().filter(|r| r.run == run).collect();
                let got = m.runs.get(&format!("run-{run}"));
                prop_assert_eq!(got.is_some(), !mine.is_empty());
                let Some(got) = got else { continue };
                let loss: Vec<[f64; 2]> = mine.iter().map(|r| [r.step as f64, r.loss]).collect();
                prop_assert_eq!(&got.loss, &loss);
                let path: Vec<[f64; 2]> = mine.iter().filter_map(|r| r.point).collect();
                prop_assert_eq!(&got.path, &path);
                let sv: Vec<(u64, Vec<f64>)> = mine
                    .iter()
                    .filter_map(|r| r.sv.clone().map(|s| (r.step, s)))
                    .collect();
                prop_assert_eq!(&got.singular_values, &sv);
            }
            Ok(())
        })
        .unwrap();
    // Damaged files: lines edited, cut, or replaced by anything; errors name the line.
    let line_edit = prop_oneof![
        Just("{\"run\": 3, \"step\": 1, \"loss\": 0.5}".to_string()),
        Just("{\"run\": \"a\", \"step\": -1, \"loss\": 0.5}".to_string()),
        Just("{\"run\": \"a\", \"step\": 1, \"loss\": \"x\"}".to_string()),
        Just("{\"run\": \"a\", \"step\": 1, \"loss\": 1, \"point\": [null, 1]}".to_string()),
        Just("{\"run\": \"a\", \"step\": 1, \"loss\": 1, \"singular_values\": 4}".to_string()),
        Just("{\"step\": 1, \"loss\": 1}".to_string()),
        Just("[1, 2, 3]".to_string()),
        "\\PC{0,120}",
    ];
    let mut runner = new_runner(CASES_METRICS);
    runner
        .run(
            &(
                prop::collection::vec(record(), 1..20),
                any::<usize>(),
                line_edit,
                any::<usize>(),
            ),
            |(records, at, bad, cut)| {
                let mut lines: Vec<String> = records.iter().map(record_line).collect();
                let i = at % lines.len();
                lines[i] = bad;
                let mut text = lines.join("\n");
                if cut % 3 == 0 {
                    let mut c = cut % (text.len() + 1);
                    while !text.is_char_boundary(c) {
                        c -= 1;
                    }
                    text.truncate(c);
                }
                let (r, peak) = peak_of(|| read_run_metrics("m.jsonl", &text));
                prop_assert!(
                    peak <= bound(text.len(), 64),
                    "{peak} bytes for {}",
                    text.len()
                );
                if let Err(e) = r {
                    check_message("metrics", &e)?;
                    prop_assert!(e.starts_with("m.jsonl"), "the message names no file: {}", e);
                }
                Ok(())
            },
        )
        .unwrap();
    println!("metrics.jsonl: {} cases", 2 * CASES_METRICS);
}

// ---- safetensors: checkpoints and GPT weights ----

/// Damage to a file's bytes.
#[derive(Debug, Clone)]
enum Damage {
    /// Set byte `at` to `value`.
    Flip(usize, u8),
    /// Cut the file at `at`.
    Cut(usize),
    /// Overwrite the 8-byte header length with `value`.
    HeaderLen(u64),
    /// Replace `len` bytes of the JSON header from `at` with text.
    HeaderText(usize, String),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(a, v)| Damage::Flip(a, v)),
        1 => any::<usize>().prop_map(Damage::Cut),
        1 => prop_oneof![Just(0u64), Just(1), Just(u64::MAX), Just(1 << 40), any::<u64>()]
            .prop_map(Damage::HeaderLen),
        2 => (any::<usize>(), prop_oneof![
            Just("999999999999".to_string()),
            Just("\"F64\"".to_string()),
            Just("[4294967296,4294967296]".to_string()),
            Just("-1".to_string()),
            "[ -~]{0,12}",
        ]).prop_map(|(a, t)| Damage::HeaderText(a, t)),
    ]
}

fn damaged(bytes: &[u8], edits: &[Damage]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for d in edits {
        if b.len() < 9 {
            break;
        }
        let header_len = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        match d {
            Damage::Flip(at, v) => {
                let i = at % b.len();
                b[i] = *v;
            }
            Damage::Cut(at) => b.truncate(at % b.len()),
            Damage::HeaderLen(v) => b[..8].copy_from_slice(&v.to_le_bytes()),
            Damage::HeaderText(at, text) => {
                let end = header_len.saturating_add(8).min(b.len());
                if end > 8 + text.len() {
                    let i = 8 + at % (end - 8 - text.len());
                    b[i..i + text.len()].copy_from_slice(text.as_bytes());
                }
            }
        }
    }
    b
}

/// Reads `bytes` with `read`, checking the allocation bound and the message.
fn read_checked<T>(
    what: &str,
    bytes: &[u8],
    read: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<Option<T>, TestCaseError> {
    let (r, peak) = peak_of(|| read(bytes));
    // The decoded tensors are as large as the file's data; the header's JSON tree a few times it.
    prop_assert!(
        peak <= bound(bytes.len(), 16),
        "{what}: {peak} bytes allocated reading {} bytes",
        bytes.len()
    );
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            check_message(what, &e)?;
            Ok(None)
        }
    }
}

#[test]
fn checkpoint_reader_refuses_clearly_and_round_trips() {
    let tensor = (
        "[a-z]{1,6}(\\.[a-z0-9]{1,4}){0,2}",
        prop::collection::vec(0usize..5, 0..3),
    )
        .prop_flat_map(|(name, shape)| {
            let n = shape.iter().product::<usize>();
            (
                Just(name),
                Just(shape),
                prop::collection::vec(any::<u32>().prop_map(f32::from_bits), n),
            )
        });
    let checkpoint = (
        prop::collection::btree_map("[a-z.]{1,8}", tensor.prop_map(|(_, s, d)| (s, d)), 0..5),
        prop::collection::btree_map("[a-z_]{1,8}", "\\PC{0,30}", 0..4),
    )
        .prop_map(|(tensors, meta)| Checkpoint { tensors, meta });
    let mut runner = new_runner(CASES_SAFETENSORS);
    runner
        .run(
            &(checkpoint, prop::collection::vec(damage(), 0..4)),
            |(ck, edits)| {
                let bytes = ck.to_bytes().map_err(TestCaseError::fail)?;
                // Round trip, bit for bit (NaN payloads included: compare the bits).
                let back = Checkpoint::from_bytes(&bytes).map_err(TestCaseError::fail)?;
                prop_assert_eq!(&back.meta, &ck.meta);
                prop_assert_eq!(back.tensors.len(), ck.tensors.len());
                for ((ka, (sa, da)), (kb, (sb, db))) in back.tensors.iter().zip(&ck.tensors) {
                    prop_assert_eq!(ka, kb);
                    prop_assert_eq!(sa, sb);
                    let bits = |d: &[f32]| d.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    prop_assert_eq!(bits(da), bits(db));
                }
                let bad = damaged(&bytes, &edits);
                read_checked("checkpoint", &bad, Checkpoint::from_bytes)?;
                Ok(())
            },
        )
        .unwrap();
    let mut runner = new_runner(CASES_SAFETENSORS / 4);
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..300), |bytes| {
            read_checked("checkpoint", &bytes, Checkpoint::from_bytes)?;
            Ok(())
        })
        .unwrap();
    println!(
        "checkpoint.safetensors: {} cases",
        CASES_SAFETENSORS + CASES_SAFETENSORS / 4
    );
}

#[test]
fn gpt_weights_reader_refuses_clearly_and_round_trips() {
    let cfg = GptConfig {
        vocab_size: 5,
        block_size: 4,
        n_layer: 1,
        n_head: 2,
        n_embd: 4,
    };
    let vocab = Vocab::from_chars("\n!abc".chars().collect()).unwrap();
    let params = Gpt::new(cfg).init(3);
    let named: Vec<gpt_file::NamedTensor> = params
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.value.shape().to_vec(),
                p.value.data().to_vec(),
            )
        })
        .collect();
    let bytes = gpt_file::to_bytes(&cfg, &vocab, &named).unwrap();
    let back = gpt_file::from_bytes(&bytes).unwrap();
    assert_eq!(back.cfg, cfg);
    assert_eq!(back.vocab, vocab);
    let values: Vec<Vec<f32>> = named.iter().map(|(_, _, d)| d.clone()).collect();
    assert_eq!(back.values, values, "the weights do not round-trip");
    let mut runner = new_runner(CASES_SAFETENSORS);
    runner
        .run(&prop::collection::vec(damage(), 1..4), |edits| {
            let bad = damaged(&bytes, &edits);
            if let Some(w) = read_checked("model.safetensors", &bad, gpt_file::from_bytes)? {
                // What is accepted is a consistent model: the shapes its metadata gives.
                prop_assert!(w.cfg.validate().is_ok());
                prop_assert_eq!(w.values.len(), w.cfg.param_specs().len());
                for (v, (_, shape, _)) in w.values.iter().zip(w.cfg.param_specs()) {
                    prop_assert_eq!(v.len(), shape.iter().product::<usize>());
                }
            }
            Ok(())
        })
        .unwrap();
    println!("model.safetensors: {CASES_SAFETENSORS} cases");
}
