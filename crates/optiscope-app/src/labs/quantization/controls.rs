//! The Quantization lab's left panel: data, model, quantizer, optimizer, epochs, seed; it returns
//! what changed as a [`QuantAction`].

use egui::Color32;
use optiscope_core::device::quant::categorical::MAX_BITS;
use optiscope_core::optim::METHODS;
use optiscope_core::quant::{LearnBitsConfig, QuantConfig, QuantMethod};
use optiscope_core::train::{DataChoice, TrainConfig};

use super::run::QuantRun;
use crate::state::{dropbits_on, set_dropbits};

/// What the controls asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum QuantAction {
    /// Train this config from step 0.
    Retrain(Box<TrainConfig>),
    /// Change the number of epochs and keep training.
    SetEpochs(u64),
}

/// The largest bit-width `method` takes (2..=4 for the categorical methods, 2..=8 otherwise).
pub fn max_bits(method: QuantMethod) -> u32 {
    if method.is_categorical() {
        MAX_BITS
    } else {
        8
    }
}

/// The quantizer of `method`, keeping `bits` where it is allowed.
pub(super) fn fresh_quant(method: QuantMethod, bits: u32) -> QuantConfig {
    QuantConfig::new(method, bits.clamp(2, max_bits(method)))
}

/// The left panel of the view: data, model, quantizer, optimizer, epochs, seed. Returns what
/// changed; `None` when nothing did.
pub fn controls_ui(
    ui: &mut egui::Ui,
    cfg: &TrainConfig,
    run: Option<&QuantRun>,
) -> Option<QuantAction> {
    let mut c = cfg.clone();
    let mut epochs = cfg.epochs;
    let error_id = egui::Id::unique("quant-optimizer-error");
    ui.label(
        "An MLP trains live on the CPU; its weight matrices pass through the quantizer on the way \
         forward. Every change but the epochs trains it again from step 0.",
    );
    ui.add_space(4.0);
    egui::Grid::new("quant-controls")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            let label = ui.label("data");
            egui::ComboBox::from_id_salt("quant-data")
                .selected_text(c.data.name())
                .show_ui(ui, |ui| {
                    for &d in DataChoice::ALL {
                        ui.selectable_value(&mut c.data, d, d.name())
                            .on_hover_text(d.summary());
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();

            let label = ui.label("hidden layers");
            let mut layers = c.hidden.len();
            let mut width = c.hidden.first().copied().unwrap_or(32);
            ui.add(egui::DragValue::new(&mut layers).range(0..=3))
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("hidden width");
            ui.add_enabled(layers > 0, egui::DragValue::new(&mut width).range(1..=512))
                .labelled_by(label.id);
            ui.end_row();
            if layers != c.hidden.len() || c.hidden.first().is_some_and(|&w| w != width) {
                c.hidden = vec![width; layers];
            }

            let label = ui.label("quantizer");
            let mut method = c.quant.method;
            egui::ComboBox::from_id_salt("quant-method")
                .selected_text(method.name())
                .show_ui(ui, |ui| {
                    for &m in QuantMethod::ALL {
                        ui.selectable_value(&mut method, m, m.name())
                            .on_hover_text(m.summary());
                    }
                })
                .response
                .labelled_by(label.id);
            if method != c.quant.method {
                c.quant = fresh_quant(method, c.quant.bits);
            }
            ui.end_row();

            let label = ui.label("bits");
            let mut bits = c.quant.bits;
            ui.add_enabled(
                method != QuantMethod::None,
                egui::Slider::new(&mut bits, 2..=max_bits(method)),
            )
            .labelled_by(label.id);
            if bits != c.quant.bits {
                c.quant.bits = bits;
            }
            ui.end_row();

            let can_drop = matches!(method, QuantMethod::Srq | QuantMethod::Cpq);
            let mut drop = dropbits_on(&c.quant);
            ui.add_enabled(can_drop, egui::Checkbox::new(&mut drop, "DropBits"))
                .on_hover_text(
                    "Drops the finer bit levels at random while training (SRQ, CPQ): level j of b \
                     with probability p^(b−j+1)",
                );
            let mut p = c.quant.dropbits.as_ref().map_or(0.3, |d| d.p);
            if p <= 0.0 {
                p = 0.3;
            }
            let p_changed = ui
                .add_enabled(
                    can_drop && drop,
                    egui::Slider::new(&mut p, 0.05..=0.95).text("p"),
                )
                .changed();
            if can_drop && (drop != dropbits_on(&c.quant) || p_changed) {
                set_dropbits(&mut c.quant, if drop { p } else { 0.0 });
            }
            ui.end_row();

            let mut learn = c.quant.learn_bits.is_some();
            ui.add_enabled(
                method == QuantMethod::Cpq,
                egui::Checkbox::new(&mut learn, "learn bits"),
            )
            .on_hover_text(
                "CPQ: hard-concrete gates on the bit levels learn each layer's bit-width, with a \
                 penalty λ per open level",
            );
            let mut lambda = c
                .quant
                .learn_bits
                .as_ref()
                .map_or(LearnBitsConfig::default().lambda, |l| l.lambda);
            let lambda_changed = ui
                .add_enabled(
                    learn,
                    egui::DragValue::new(&mut lambda)
                        .range(0.0..=10.0)
                        .speed(1e-4)
                        .max_decimals(5)
                        .prefix("λ "),
                )
                .accessible_name("λ (bit penalty)")
                .changed();
            if learn != c.quant.learn_bits.is_some() || lambda_changed {
                c.quant.learn_bits = learn.then(|| LearnBitsConfig {
                    lambda,
                    ..LearnBitsConfig::default()
                });
            }
            ui.end_row();

            let label = ui.label("batch size");
            ui.add(egui::DragValue::new(&mut c.batch_size).range(1..=1024))
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("epochs");
            ui.add(egui::DragValue::new(&mut epochs).range(1..=100_000))
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("seed");
            ui.add(egui::DragValue::new(&mut c.seed))
                .labelled_by(label.id);
            ui.end_row();

            let label = ui.label("optimizer");
            let mut name = c.optimizer.name().to_string();
            egui::ComboBox::from_id_salt("quant-optimizer")
                .selected_text(&name)
                .show_ui(ui, |ui| {
                    for m in METHODS {
                        ui.selectable_value(&mut name, m.name.to_string(), m.name)
                            .on_hover_text(m.summary);
                    }
                })
                .response
                .labelled_by(label.id);
            if name != c.optimizer.name() {
                if let Some(o) = crate::views::runs::fresh_config(&name, c.optimizer.lr()) {
                    c.optimizer = o;
                }
            }
            ui.end_row();
        });
    egui::CollapsingHeader::new(format!("{} fields", c.optimizer.name()))
        .id_salt("quant-optimizer-fields")
        .show(ui, |ui| {
            if let Some(o) =
                crate::views::runs::config_fields_ui(ui, usize::MAX, &c.optimizer, error_id)
            {
                c.optimizer = o;
            }
        });
    if let Some(err) = ui.ctx().data(|d| d.get_temp::<String>(error_id)) {
        ui.colored_label(Color32::from_rgb(255, 120, 120), err);
    }
    if let Some(run) = run {
        ui.add_space(6.0);
        let widths: Vec<String> = run.widths().iter().map(ToString::to_string).collect();
        ui.weak(format!(
            "model {} · {} train / {} test rows · {} minibatches per epoch",
            widths.join(" → "),
            run.rows.0,
            run.rows.1,
            run.trainer.batches_per_epoch()
        ));
    }
    if c != *cfg {
        c.epochs = epochs;
        return Some(QuantAction::Retrain(Box::new(c)));
    }
    (epochs != cfg.epochs).then_some(QuantAction::SetEpochs(epochs))
}
