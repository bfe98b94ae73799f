//! The runs panel: the optimizers in play, each one's hyperparameters edited field by field from
//! its config (with the reference defaults), adding and removing runs.

use optiscope_core::experiment::RunConfig;
use optiscope_core::optim::{OptimizerConfig, METHODS};
use serde_json::Value;

use super::run_color;

/// Draws the panel on a copy of the runs; returns the new runs when the user changed something
/// valid, and shows why when a value is not allowed.
pub fn runs_ui(ui: &mut egui::Ui, runs: &[RunConfig]) -> Option<Vec<RunConfig>> {
    let mut edited = runs.to_vec();
    let mut changed = false;
    let mut remove = None;
    let error_id = egui::Id::unique("runs-error");
    for (i, run) in edited.iter_mut().enumerate() {
        let header = egui::RichText::new(format!("{} ({})", run.label, run.optimizer.name()))
            .strong()
            .color(run_color(i));
        egui::CollapsingHeader::new(header)
            .id_salt(("run", i))
            .default_open(i == 0)
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    let label = ui.label("method");
                    let mut name = run.optimizer.name().to_string();
                    egui::ComboBox::from_id_salt(("method", i))
                        .selected_text(&name)
                        .show_ui(ui, |ui| {
                            for m in METHODS {
                                ui.selectable_value(&mut name, m.name.to_string(), m.name)
                                    .on_hover_text(m.summary);
                            }
                        })
                        .response
                        .labelled_by(label.id);
                    if name != run.optimizer.name() {
                        if let Some(cfg) = fresh_config(&name, run.optimizer.lr()) {
                            run.optimizer = cfg;
                            changed = true;
                        }
                    }
                    if ui
                        .small_button("remove")
                        .on_hover_text("remove this run")
                        .clicked()
                    {
                        remove = Some(i);
                    }
                });
                if let Some(new_cfg) = config_fields_ui(ui, i, &run.optimizer, error_id) {
                    run.optimizer = new_cfg;
                    changed = true;
                }
                let mut warmup = run.lr_warmup_steps;
                ui.horizontal(|ui| {
                    let label = ui.label("lr_warmup_steps").on_hover_text(
                        "linear learning-rate warmup applied on top of the optimizer",
                    );
                    ui.add(egui::DragValue::new(&mut warmup).range(0..=100_000))
                        .labelled_by(label.id);
                });
                if warmup != run.lr_warmup_steps {
                    run.lr_warmup_steps = warmup;
                    changed = true;
                }
            });
    }
    if let Some(i) = remove {
        if edited.len() > 1 {
            edited.remove(i);
            changed = true;
        }
    }
    ui.horizontal(|ui| {
        let label = ui.label("add");
        egui::ComboBox::from_id_salt("add-run")
            .selected_text("optimizer…")
            .show_ui(ui, |ui| {
                for m in METHODS {
                    if ui
                        .selectable_label(false, m.name)
                        .on_hover_text(m.summary)
                        .clicked()
                    {
                        if let Some(cfg) = fresh_config(m.name, 0.0) {
                            let label = unique_label(&edited, m.name);
                            edited.push(RunConfig {
                                label,
                                optimizer: cfg,
                                lr_warmup_steps: 0,
                            });
                            changed = true;
                        }
                    }
                }
            })
            .response
            .labelled_by(label.id);
    });
    if let Some(err) = ui.ctx().data(|d| d.get_temp::<String>(error_id)) {
        ui.colored_label(egui::Color32::from_rgb(255, 120, 120), err);
    }
    changed.then_some(edited)
}

/// The reference defaults of `name`, keeping `lr` when it is given (> 0), with AMUSE's required
/// warmup filled in.
pub(crate) fn fresh_config(name: &str, lr: f64) -> Option<OptimizerConfig> {
    let mut v = serde_json::to_value(OptimizerConfig::default_for(name)?).ok()?;
    if lr > 0.0 {
        v["lr"] = lr.into();
    }
    if name == "amuse" {
        v["warmup_steps"] = 20.into();
    }
    serde_json::from_value(v).ok()
}

fn unique_label(runs: &[RunConfig], base: &str) -> String {
    (1..)
        .map(|k| {
            if k == 1 {
                base.to_string()
            } else {
                format!("{base}-{k}")
            }
        })
        .find(|l| runs.iter().all(|r| &r.label != l))
        .unwrap_or_default()
}

/// Editors for every field of `cfg`; the new config when an edit produced a valid one.
pub(crate) fn config_fields_ui(
    ui: &mut egui::Ui,
    run: usize,
    cfg: &OptimizerConfig,
    error_id: egui::Id,
) -> Option<OptimizerConfig> {
    let original = serde_json::to_value(cfg).ok()?;
    let mut value = original.clone();
    if let Value::Object(map) = &mut value {
        egui::Grid::new(("fields", run))
            .num_columns(2)
            .show(ui, |ui| {
                for (key, v) in map.iter_mut() {
                    if key == "name" || key == "param_groups" {
                        continue;
                    }
                    field_ui(ui, key, v, &format!("{run}.{key}"));
                }
            });
    }
    if value == original {
        return None;
    }
    let result = serde_json::from_value::<OptimizerConfig>(value)
        .map_err(|e| e.to_string())
        .and_then(|c| c.validate().map(|()| c).map_err(|e| e.to_string()));
    match result {
        Ok(c) => {
            ui.ctx().data_mut(|d| d.remove::<String>(error_id));
            Some(c)
        }
        Err(e) => {
            ui.ctx()
                .data_mut(|d| d.insert_temp(error_id, format!("not applied: {e}")));
            None
        }
    }
}

fn field_ui(ui: &mut egui::Ui, key: &str, v: &mut Value, id: &str) {
    // Each editor is named by its label (AccessKit: screen readers, the UI tests).
    let label = ui.label(key).id;
    match v {
        Value::Bool(b) => {
            ui.checkbox(b, "").labelled_by(label);
        }
        Value::Number(n) if n.is_u64() => {
            let mut x = n.as_u64().unwrap_or(0);
            if ui
                .add(egui::DragValue::new(&mut x))
                .labelled_by(label)
                .changed()
            {
                *v = x.into();
            }
        }
        Value::Number(n) => {
            let mut x = n.as_f64().unwrap_or(0.0);
            let speed = (x.abs() * 0.01).max(1e-6);
            if ui
                .add(egui::DragValue::new(&mut x).speed(speed).max_decimals(8))
                .labelled_by(label)
                .changed()
            {
                *v = serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
            }
        }
        Value::Array(items) => {
            ui.horizontal(|ui| {
                for (j, item) in items.iter_mut().enumerate() {
                    if let Some(mut x) = item.as_f64() {
                        let speed = (x.abs() * 0.01).max(1e-6);
                        if ui
                            .add(egui::DragValue::new(&mut x).speed(speed).max_decimals(8))
                            .accessible_name(format!("{key}[{j}]"))
                            .on_hover_text(format!("{key}[{j}]"))
                            .changed()
                        {
                            *item =
                                serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
                        }
                    }
                }
            });
        }
        Value::Object(map) => {
            ui.vertical(|ui| {
                egui::Grid::new(id).num_columns(2).show(ui, |ui| {
                    for (k, inner) in map.iter_mut() {
                        field_ui(ui, k, inner, &format!("{id}.{k}"));
                    }
                });
            });
        }
        Value::String(current) => match enum_options(key) {
            Some(options) => {
                let mut chosen = current.clone();
                egui::ComboBox::from_id_salt(id)
                    .selected_text(chosen.as_str())
                    .show_ui(ui, |ui| {
                        for o in options {
                            ui.selectable_value(&mut chosen, (*o).to_string(), *o);
                        }
                    })
                    .response
                    .labelled_by(label);
                if chosen != *current {
                    *v = Value::String(chosen);
                }
            }
            None => {
                ui.label(current.as_str());
            }
        },
        other => {
            ui.label(other.to_string());
        }
    }
    ui.end_row();
}

/// The values an enum-valued config field accepts (the serde names of the core's enums).
fn enum_options(key: &str) -> Option<&'static [&'static str]> {
    Some(match key {
        "adjust_lr_fn" => &["original", "match_rms_adamw", "none"],
        "orthogonalizer" => &["newton_schulz", "polar_express", "svd"],
        "eps_mode" => &["after_bias_correction", "before_bias_correction"],
        "variant" => &["current", "paper"],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option offered for an enum field deserializes for the methods that have the field.
    #[test]
    fn enum_options_are_accepted_by_the_configs() {
        for m in METHODS {
            let base = serde_json::to_value(fresh_config(m.name, 0.0).unwrap()).unwrap();
            for (key, _) in base.as_object().unwrap() {
                for option in enum_options(key).unwrap_or(&[]) {
                    let mut v = base.clone();
                    v[key] = Value::String((*option).into());
                    assert!(
                        serde_json::from_value::<OptimizerConfig>(v).is_ok(),
                        "{}: {key} = {option}",
                        m.name
                    );
                }
            }
        }
    }
}
