//! The spectrum view: singular values of BA against step for every run, the targets dashed —
//! gradient descent climbs them one at a time, largest first; SpecGD and Muon grow all at once.

use egui_plot::{HLine, Legend, Line, LineStyle, Plot};
use optiscope_core::experiment::Experiment;
use optiscope_core::problems::Observation;

use super::run_color;
use optiscope_core::metrics::RunMetrics;

/// (step, singular values) of one run, oldest first.
type SpectrumSeries = Vec<(u64, Vec<f64>)>;

/// Draws the view.
pub fn spectrum_ui(ui: &mut egui::Ui, exp: &Experiment, loaded: Option<&RunMetrics>) {
    let targets: Vec<f64> = exp
        .problem()
        .spectrum_targets()
        .map(<[f64]>::to_vec)
        .unwrap_or_default();
    if targets.is_empty() && loaded.is_none() {
        ui.label("This problem has no spectrum: choose the lora-spectrum preset.");
        return;
    }
    ui.label("Singular values of BA against step; dashed: the targets. Same color = same run.");
    // The axes span the run's steps and the targets from the start, so step 0 shows where the
    // values must go (the dashed lines alone do not widen a plot's bounds).
    let top = targets.iter().copied().fold(0.0f64, f64::max) * 1.1;
    let steps = if loaded.is_some() {
        0
    } else {
        exp.config().steps
    };
    Plot::new("spectrum")
        .legend(Legend::default())
        .include_y(0.0)
        .include_y(top)
        .include_x(0.0)
        .include_x(steps as f64)
        .x_axis_label("step")
        .y_axis_label("singular value of BA")
        .show(ui, |plot| {
            for t in &targets {
                plot.hline(
                    HLine::new("target", *t)
                        .style(LineStyle::dashed_loose())
                        .color(egui::Color32::GRAY),
                );
            }
            let series: Vec<(String, SpectrumSeries)> = match loaded {
                Some(m) => m
                    .runs
                    .iter()
                    .map(|(l, r)| (format!("{l} (file)"), r.singular_values.clone()))
                    .collect(),
                None => exp
                    .runs()
                    .iter()
                    .map(|run| {
                        let points = run
                            .history()
                            .iter()
                            .filter_map(|r| match &r.observation {
                                Observation::SingularValues(s) => Some((r.step, s.clone())),
                                Observation::Point(_) => None,
                            })
                            .collect();
                        (run.config.label.clone(), points)
                    })
                    .collect(),
            };
            for (i, (label, points)) in series.iter().enumerate() {
                let k = points.first().map_or(0, |(_, s)| s.len());
                for j in 0..k {
                    let line: Vec<[f64; 2]> = points
                        .iter()
                        .filter_map(|(t, s)| s.get(j).map(|v| [*t as f64, *v]))
                        .collect();
                    plot.line(
                        Line::new(label.clone(), line)
                            .color(run_color(i))
                            .width(1.5),
                    );
                }
            }
        });
}
