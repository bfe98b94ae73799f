//! Golden explorer states: a set of links (every preset in the short form, the Quantization
//! view's, the Alignment, Compression and Transformer labs' short forms, `#s=` states of versions 1 and 2, malformed links) and what each opens —
//! the resolved state as JSON, or the error line — compared with
//! `tests/golden/explorer_links.json`.
//! A refactoring of the state must open the same links to the same experiments, runs and steps.
//! Record anew (only when a change is meant to change what links open) with
//! `OPTISCOPE_GOLDEN=record cargo test -p optiscope-app --test golden_links`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use optiscope_app::state::{
    AlignLabState, ExperimentLabState, ExplorerState, LabKind, QuantViewState, View,
};
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
    for p in optiscope_core::align::experiment::ALIGN_PRESETS {
        out.push(format!("#align={}", p.name));
    }
    out.push("#align=coverage&seed=3&step=5&speed=2".into());
    out.push("#compress=teddy".into());
    out.push("#compress=teddy&seed=2&edges=0.7&method=reverse&step=12&speed=3".into());
    out.push("#compress=moe".into());
    out.push("#compress=moe&scoring=reap&k=3&seed=1&step=4".into());
    out.push("#transformer=".into());
    out.push("#transformer=muon,adamw_schedulefree&seed=4&step=30&steps=500&speed=2".into());
    out.push("#transformer=mezo".into());
    out.push("#transformer=adamw&step=3000".into());
    // Version-1 states as the explorer wrote them before labs (these bytes are what old links
    // hold: the fields in the order of the version-1 struct).
    let v1 = |view: &str,
              preset: &str,
              experiment: serde_json::Value,
              step: u64,
              speed: u32,
              quant: Option<serde_json::Value>| {
        let mut v = serde_json::json!({
            "version": 1,
            "view": view,
            "preset": preset,
            "experiment": experiment,
            "step": step,
            "speed": speed,
        });
        if let Some(q) = quant {
            v["quant"] = q;
        }
        format!(
            "#s={}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        )
    };
    let exp = |name: &str| {
        serde_json::to_value(ExperimentLabState::from_preset(name).experiment).unwrap()
    };
    let mut lora = exp("lora-spectrum");
    lora["seed"] = 9.into();
    out.push(v1("spectrum", "lora-spectrum", lora, 123, 20, None));
    let mut q = QuantViewState {
        step: 321,
        layer: 1,
        ..QuantViewState::default()
    };
    q.train.hidden = vec![16, 16];
    q.train.quant = QuantConfig::new(QuantMethod::Lsq, 3);
    out.push(v1(
        "quantization",
        "river-valley",
        exp("river-valley"),
        0,
        4,
        Some(serde_json::to_value(&q).unwrap()),
    ));
    let mut saddle = exp("saddle");
    saddle["runs"].as_array_mut().unwrap().truncate(2);
    saddle["runs"][0]["label"] = "renamed".into();
    out.push(v1("loss", "saddle", saddle, 0, 4, None));
    // Version-2 states as the explorer writes them now.
    let mut s = ExplorerState::from_preset("beale");
    s.labs.experiment.step = 17;
    s.labs.experiment.view = View::Loss;
    out.push(format!("#{}", s.to_fragment()));
    s.lab = LabKind::Quantization;
    s.quant_mut().step = 9;
    s.quant_mut().train.quant = QuantConfig::new(QuantMethod::Rq, 2);
    out.push(format!("#{}", s.to_fragment()));
    s.lab = LabKind::Align;
    *s.align_mut() = AlignLabState::from_preset("thinksafe");
    s.align_mut().step = 3;
    out.push(format!("#{}", s.to_fragment()));
    let mut bad_beta = s.clone();
    *bad_beta.align_mut() = AlignLabState::from_preset("coverage");
    if let optiscope_core::align::experiment::AlignConfig::Samplers(c) =
        &mut bad_beta.align_mut().config
    {
        c.beta = -1.0;
    }
    out.push(format!("#{}", bad_beta.to_fragment()));
    // Malformed ones: the error line the explorer shows.
    for bad in [
        "#preset=nope",
        "#preset=saddle&speed=fast",
        "#view=nope",
        "#view=quantization&method=adan",
        "#view=quantization&hidden=0",
        "#align=nope",
        "#align=grpo&seed=x",
        "#align=grpo&lr=1",
        "#compress=graph",
        "#compress=teddy&edges=1.5",
        "#compress=teddy&method=ugs",
        "#compress=moe&scoring=best",
        "#compress=moe&k=0",
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
