//! `optiscope list`.

use std::process::ExitCode;

use std::io::Write;

use clap::Args;
use optiscope_core::config::MethodInfo;
use optiscope_core::experiment::presets::PRESETS;
use optiscope_core::optim::{OptimizerConfig, METHODS};
use optiscope_core::quant::QuantMethod;
use optiscope_core::train::DataChoice;

/// Lists the optimizers with every parameter and its default, and the presets.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let methods: Vec<_> = METHODS
        .iter()
        .map(|m| {
            let defaults = OptimizerConfig::default_for(m.name)
                .map(serde_json::to_value)
                .transpose()?;
            Ok((m, defaults.unwrap_or_default()))
        })
        .collect::<anyhow::Result<_>>()?;
    if args.json {
        let doc = serde_json::json!({
            "optimizers": methods.iter().map(|(m, d)| serde_json::json!({"name": m.name, "summary": m.summary, "defaults": d})).collect::<Vec<_>>(),
            "presets": PRESETS.iter().map(|p| serde_json::json!({"name": p.name, "summary": p.summary})).collect::<Vec<_>>(),
            "quantizers": info_json(QuantMethod::INFO),
            "data": info_json(DataChoice::INFO),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "Optimizers (config \"name\", then each field = default):\n"
    )?;
    for (m, defaults) in &methods {
        writeln!(out, "  {:<20} {}", m.name, m.summary)?;
        if let Some(obj) = defaults.as_object() {
            for (k, v) in obj {
                if k == "name" {
                    continue;
                }
                let shown = if m.name == "amuse" && k == "warmup_steps" {
                    "(required, >= 1)".to_string()
                } else {
                    v.to_string()
                };
                writeln!(out, "      {k:<18} {shown}")?;
            }
        }
        writeln!(out, "      {:<18} [] (per-parameter overrides: {{\"params\": [names], \"lr\", \"weight_decay\"}})", "param_groups")?;
        writeln!(out)?;
    }
    writeln!(out, "Presets (optiscope run --preset NAME):\n")?;
    for p in PRESETS {
        writeln!(out, "  {:<16} {}", p.name, p.summary)?;
    }
    for (title, info) in [
        (
            "Quantizers (optiscope train --quant NAME)",
            QuantMethod::INFO,
        ),
        ("Data sets (optiscope train --data NAME)", DataChoice::INFO),
    ] {
        writeln!(out, "\n{title}:\n")?;
        for m in info {
            writeln!(out, "  {:<16} {}", m.name, m.summary)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn info_json(info: &[MethodInfo]) -> serde_json::Value {
    info.iter()
        .map(|m| serde_json::json!({"name": m.name, "summary": m.summary}))
        .collect()
}
