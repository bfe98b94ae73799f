//! Golden explorer states: a set of links (every preset in the short form, the Quantization
//! view's short form, `#s=` states of version 1, malformed links) and what each opens — the
//! resolved state as JSON, or the error line — compared with `tests/golden/explorer_links.json`.
//! A refactoring of the state must open the same links to the same experiments, runs and steps.
//! Record anew (only when a change is meant to change what links open) with
//! `OPTISCOPE_GOLDEN=record cargo test -p optiscope-app --test golden_links`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use optiscope_app::state::{ExplorerState, View};
use optiscope_core::experiment::presets::PRESETS;
use optiscope_core::quant::{QuantConfig, QuantMethod};
use serde_json::Value;

fn golden_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/explorer_links.json")
}

/// The links: every form a link can take, valid and not.
fn links() -> Vec<String> {
    let mut out = vec![String::new(), "#".into()];
    for p in PRESETS {
        out.push(format!("#preset={}", p.name));
    }
    out.push("#preset=rosenbrock&speed=50&steps=300".into());
    out.push("#preset=lora-spectrum&steps=99999999999".into());
    out.push("#view=quantization".into());
    out.push(
        "#view=quantization&method=srq&bits=3&dropbits=0.25&data=spirals&hidden=8,8&seed=2\
         &lr=0.005&batch=32&epochs=5&layer=1&step=40&speed=7"
            .into(),
    );
    out.push("#view=quantization&method=cpq&bits=4&learn_bits=0.05&data=moons".into());
    out.push("#view=quantization&method=proxquant&bits=2&dropbits=off".into());
    // Version-1 states as the explorer writes them.
    let mut s = ExplorerState::from_preset("lora-spectrum");
    s.step = 123;
    s.experiment.seed = 9;
    s.speed = 20;
    out.push(format!("#{}", s.to_fragment()));
    let mut s = ExplorerState::from_preset("river-valley");
    s.view = View::Quantization;
    let q = s.quant_mut();
    q.step = 321;
    q.layer = 1;
    q.train.hidden = vec![16, 16];
    q.train.quant = QuantConfig::new(QuantMethod::Lsq, 3);
    out.push(format!("#{}", s.to_fragment()));
    let mut s = ExplorerState::from_preset("saddle");
    s.view = View::Loss;
    s.experiment.runs.truncate(2);
    s.experiment.runs[0].label = "renamed".into();
    out.push(format!("#{}", s.to_fragment()));
    // Malformed ones: the error line the explorer shows.
    for bad in [
        "#preset=nope",
        "#preset=saddle&speed=fast",
        "#view=nope",
        "#view=quantization&method=adan",
        "#view=quantization&hidden=0",
        "#s=!!!",
        "#s=eyJ2ZXJzaW9uIjowfQ",
        "#x=1",
    ] {
        out.push(bad.into());
    }
    out
}

fn resolve(link: &str) -> Value {
    match ExplorerState::from_fragment(link) {
        Ok(Some(state)) => serde_json::to_value(state).unwrap(),
        Ok(None) => Value::String("(no state: the defaults)".into()),
        Err(e) => serde_json::json!({ "error": e }),
    }
}

#[test]
fn links_open_the_recorded_states() {
    let got: BTreeMap<String, Value> = links().iter().map(|l| (l.clone(), resolve(l))).collect();
    if std::env::var("OPTISCOPE_GOLDEN").is_ok_and(|v| v == "record") {
        std::fs::write(
            golden_file(),
            serde_json::to_string_pretty(&got).unwrap() + "\n",
        )
        .unwrap();
        eprintln!(
            "recorded {} links in {}",
            got.len(),
            golden_file().display()
        );
        return;
    }
    let want: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(golden_file()).unwrap()).unwrap();
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (link, w) in &want {
        assert_eq!(&got[link], w, "the link {link:?} opens something else");
    }
}
