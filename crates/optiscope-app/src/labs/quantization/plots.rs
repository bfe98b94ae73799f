//! The Quantization lab's central view: the header, the layer selector, the weights on the grid
//! (histogram, grid points coloured by bit level, cell boundaries, `near_frac(0.1)` and `mse` in
//! the title), and below them `near_frac` over training and the accuracy per epoch.

use egui::{Color32, RichText, Stroke};
use egui_plot::{Bar, BarChart, HLine, Legend, Line, LineStyle, Plot, VLine};
use optiscope_core::quant::QuantMethod;
use optiscope_core::train::{EpochMetrics, LayerView};

use super::histogram::{assigned_color, histogram, level_color, Histogram};
use super::run::QuantRun;
use crate::state::dropbits_on;
use crate::views::run_color;

/// Draws the view: the header, the layer selector, the weights on the grid, and the two curves.
/// `layer` is the weight matrix shown (changed by the selector).
pub fn quant_ui(ui: &mut egui::Ui, run: &mut QuantRun, layer: &mut usize) {
    let layers = run.trainer.layers();
    *layer = (*layer).min(layers - 1);
    let widths = run.widths();
    let cfg = run.config().clone();
    ui.horizontal_wrapped(|ui| {
        ui.label(
            RichText::new(format!(
                "{} on {} · epoch {} / {} · step {}",
                cfg.quant.label(),
                cfg.data.name(),
                run.trainer.epoch(),
                cfg.epochs,
                run.steps()
            ))
            .strong(),
        );
        if let Some(m) = run.epochs.last() {
            ui.separator();
            ui.label(format!(
                "test accuracy {:.1} %{} · train {:.1} %",
                100.0 * m.test_accuracy,
                if cfg.quant.method == QuantMethod::None {
                    ""
                } else {
                    " (hard-quantized weights)"
                },
                100.0 * m.train_accuracy
            ));
        }
        if run.restoring() {
            ui.separator();
            ui.colored_label(
                Color32::from_rgb(255, 190, 40),
                format!("replaying the link: step {} of {}", run.steps(), run.target),
            );
        } else if run.finished() {
            ui.separator();
            ui.label("finished (raise the epochs to go on)");
        }
    });
    ui.horizontal_wrapped(|ui| {
        ui.label("weight matrix:");
        for l in 0..layers {
            ui.selectable_value(
                layer,
                l,
                format!("layer {} ({} → {})", l + 1, widths[l], widths[l + 1]),
            );
        }
    });
    let view = match run.layer_view(*layer) {
        Ok(v) => v.clone(),
        Err(e) => {
            ui.colored_label(Color32::from_rgb(255, 120, 120), e.to_string());
            return;
        }
    };
    let hist = histogram(&view);
    let s = &view.stats;
    let title = if view.grid.is_empty() {
        format!(
            "layer {}: full precision, {} weights (bin width {:.3e})",
            *layer + 1,
            view.weights.len(),
            hist.bin
        )
    } else {
        let learned = if cfg.quant.learn_bits.is_some() {
            format!(" (learned, of {})", cfg.quant.bits)
        } else {
            String::new()
        };
        format!(
            "layer {}: {}-bit{learned} · α = {:.4} · near_frac(0.1) = {:.3} · mse = {:.3e} · {} \
             weights, bins α/{}",
            *layer + 1,
            s.bits,
            s.alpha,
            s.near_frac,
            s.mse,
            view.weights.len(),
            if hist.widened {
                format!("{:.2}", s.alpha / hist.bin)
            } else {
                "8".into()
            }
        )
    };
    // Exact zeros of the latent weights (ProxGen's sparsity; ProxQuant's prox also lands weights
    // exactly on the grid point 0).
    let title = if s.sparsity > 0.0 {
        format!("{title} · {:.1} % exactly zero", 100.0 * s.sparsity)
    } else {
        title
    };
    ui.label(RichText::new(title).strong());
    let leveled =
        !view.grid.is_empty() && (dropbits_on(&cfg.quant) || cfg.quant.learn_bits.is_some());
    ui.weak(if view.grid.is_empty() {
        "The full-precision weights (no quantizer).".to_string()
    } else if leveled {
        "Bars: the full-precision weights, coloured by the grid point each one is assigned to. \
         Solid lines: grid points, coloured by bit level (level 1 = the coarsest sub-grid; dotted: \
         a level the learned bit-width turned off). Dashed: cell boundaries."
            .to_string()
    } else {
        "Bars: the full-precision weights, coloured by the grid point each one is assigned to. \
         Solid lines: grid points. Dashed: cell boundaries."
            .to_string()
    });
    let total = ui.available_height();
    let hist_height = (total * 0.58).max(160.0);
    weights_plot_ui(ui, &view, &hist, *layer, leveled, hist_height);
    let curve_height = (ui.available_height() - 8.0).max(120.0);
    let full_precision = cfg.quant.method == QuantMethod::None;
    let sparse = run.zeros.iter().any(|(_, z)| z.iter().any(|&v| v > 0.0));
    ui.columns(2, |cols| {
        if full_precision && sparse {
            zeros_plot_ui(&mut cols[0], &run.zeros, layers, curve_height);
        } else if full_precision {
            cols[0].label("near_frac(0.1): no grid in full precision.");
        } else {
            near_frac_plot_ui(&mut cols[0], &run.near, layers, curve_height);
        }
        accuracy_plot_ui(&mut cols[1], &run.epochs, full_precision, curve_height);
    });
}

fn weights_plot_ui(
    ui: &mut egui::Ui,
    view: &LayerView,
    hist: &Histogram,
    layer: usize,
    leveled: bool,
    height: f32,
) {
    let alpha = view.stats.alpha;
    let classes = hist.counts.first().map_or(0, Vec::len);
    let mut bars: Vec<Vec<Bar>> = vec![vec![]; classes];
    for (i, row) in hist.counts.iter().enumerate() {
        let x = (hist.first + i as i64) as f64 * hist.bin;
        let mut base = 0.0;
        for (k, &count) in row.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let fill = if view.grid.is_empty() {
                Color32::from_rgb(120, 170, 230)
            } else {
                assigned_color(k, classes)
            };
            bars[k].push(
                Bar::new(x, f64::from(count))
                    .base_offset(base)
                    .width(hist.bin)
                    .fill(fill)
                    .stroke(Stroke::new(0.5, fill.gamma_multiply(0.6)))
                    .name(match view.grid.get(k) {
                        Some(g) => format!("→ grid point {g:.4}"),
                        None => String::new(),
                    }),
            );
            base += f64::from(count);
        }
    }
    let all_same_level = !leveled;
    Plot::new(("quant-weights", layer))
        .height(height)
        .legend(Legend::default())
        .include_y(0.0)
        .include_x(hist.range.0)
        .include_x(hist.range.1)
        .x_axis_label("weight value")
        .y_axis_label("weights per bin")
        .show_grid([false, true])
        .allow_scroll(false)
        .show(ui, |plot| {
            for (k, b) in bars.into_iter().enumerate() {
                if b.is_empty() {
                    continue;
                }
                let name = if view.grid.is_empty() {
                    "weights"
                } else {
                    "weights (colour: assigned grid point)"
                };
                plot.bar_chart(
                    BarChart::new(name, b)
                        .color(if view.grid.is_empty() {
                            Color32::from_rgb(120, 170, 230)
                        } else {
                            assigned_color(k, classes)
                        })
                        .element_formatter(Box::new(|bar: &Bar, _| {
                            format!(
                                "w ≈ {:.4}\n{} weights {}",
                                bar.argument, bar.value, bar.name
                            )
                        })),
                );
            }
            // The zero bar: the weights that are exactly 0 (ProxGen's prox), drawn over the bin
            // that holds them so they stand apart from the merely small ones.
            let exact = view.weights.iter().filter(|&&w| w == 0.0).count();
            if exact > 0 {
                let bar = Bar::new(0.0, exact as f64)
                    .width(hist.bin / 3.0)
                    .fill(Color32::from_rgb(240, 90, 60))
                    .name("exactly 0");
                plot.bar_chart(
                    BarChart::new(format!("exactly 0 ({exact})"), vec![bar])
                        .color(Color32::from_rgb(240, 90, 60)),
                );
            }
            if view.grid.is_empty() {
                return;
            }
            for (i, g) in view.grid.iter().enumerate() {
                let g = f64::from(*g);
                plot.vline(
                    VLine::new("cell boundary", g - alpha / 2.0)
                        .color(Color32::from_gray(140))
                        .style(LineStyle::dashed_loose())
                        .width(1.0),
                );
                if i + 1 == view.grid.len() {
                    plot.vline(
                        VLine::new("cell boundary", g + alpha / 2.0)
                            .color(Color32::from_gray(140))
                            .style(LineStyle::dashed_loose())
                            .width(1.0),
                    );
                }
            }
            for (i, g) in view.grid.iter().enumerate() {
                let level = view.levels.get(i).copied().unwrap_or(1);
                let kept = view.keep.get(level as usize - 1).is_none_or(|&k| k > 0.0);
                let (name, color) = if all_same_level {
                    ("grid point".to_string(), Color32::from_gray(170))
                } else {
                    (format!("grid point, bit level {level}"), level_color(level))
                };
                let line = VLine::new(name, f64::from(*g)).color(color).width(2.0);
                plot.vline(if kept {
                    line
                } else {
                    line.style(LineStyle::dotted_loose()).width(1.5)
                });
            }
        });
}

/// The share of exact zeros per layer over training (ProxGen's sparsity, in full precision).
fn zeros_plot_ui(ui: &mut egui::Ui, zeros: &[(f64, Vec<f64>)], layers: usize, height: f32) {
    ui.label("exact zeros over training: the share of each layer's weights the prox set to 0");
    per_layer_curves_ui(ui, "quant-zeros", zeros, layers, 1.0, None, height);
}

fn near_frac_plot_ui(ui: &mut egui::Ui, near: &[(f64, Vec<f64>)], layers: usize, height: f32) {
    ui.label("near_frac(0.1) over training: the share of weights within 0.1·α of their grid point");
    let uniform = HLine::new("uniform weights (0.2)", 0.2)
        .color(Color32::GRAY)
        .style(LineStyle::dashed_loose());
    per_layer_curves_ui(
        ui,
        "quant-near-frac",
        near,
        layers,
        0.5,
        Some(uniform),
        height,
    );
}

/// One curve per layer of `(epoch, value per layer)` records, y from 0 to at least `y_max`, with
/// an optional reference line.
fn per_layer_curves_ui(
    ui: &mut egui::Ui,
    id: &str,
    records: &[(f64, Vec<f64>)],
    layers: usize,
    y_max: f64,
    reference: Option<HLine>,
    height: f32,
) {
    Plot::new(id)
        .height(height)
        .legend(Legend::default())
        .include_y(0.0)
        .include_y(y_max)
        .include_x(0.0)
        .x_axis_label("epoch")
        .allow_scroll(false)
        .show(ui, |plot| {
            if let Some(line) = reference {
                plot.hline(line);
            }
            for l in 0..layers {
                let pts: Vec<[f64; 2]> = records
                    .iter()
                    .filter_map(|(x, v)| v.get(l).map(|y| [*x, *y]))
                    .collect();
                plot.line(
                    Line::new(format!("layer {}", l + 1), pts)
                        .color(run_color(l))
                        .width(1.5),
                );
            }
        });
}

fn accuracy_plot_ui(ui: &mut egui::Ui, epochs: &[EpochMetrics], full_precision: bool, height: f32) {
    ui.label(if full_precision {
        "accuracy per epoch: train (training forward) and test"
    } else {
        "accuracy per epoch: train (training forward) and test (hard-quantized weights)"
    });
    Plot::new("quant-accuracy")
        .height(height)
        .legend(Legend::default())
        .include_y(0.0)
        .include_y(1.0)
        .include_x(0.0)
        .x_axis_label("epoch")
        .allow_scroll(false)
        .show(ui, |plot| {
            let train: Vec<[f64; 2]> = epochs
                .iter()
                .map(|m| [m.epoch as f64, m.train_accuracy])
                .collect();
            let test: Vec<[f64; 2]> = epochs
                .iter()
                .map(|m| [m.epoch as f64, m.test_accuracy])
                .collect();
            plot.line(
                Line::new("train", train)
                    .color(Color32::from_rgb(0, 200, 255))
                    .width(1.5),
            );
            plot.line(
                Line::new("test", test)
                    .color(Color32::from_rgb(255, 165, 0))
                    .width(1.5),
            );
        });
}
