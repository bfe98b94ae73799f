//! The loss view: every run's loss against step, log scale (of loss − f*, so a landscape whose
//! minimum is negative plots too).

use egui_plot::{GridMark, Legend, Line, Plot};
use optiscope_core::experiment::Experiment;

use super::run_color;
use optiscope_core::metrics::RunMetrics;

/// log10 of `loss − floor`, clamped below at 1e-12.
fn log_loss(loss: f64, floor: f64) -> f64 {
    (loss - floor).max(1e-12).log10()
}

/// Draws the view.
pub fn loss_ui(ui: &mut egui::Ui, exp: &Experiment, loaded: Option<&RunMetrics>) {
    let floor = exp.problem().landscape().map_or(0.0, |l| l.min_value());
    ui.label(if floor == 0.0 {
        "Loss against step (log scale).".to_string()
    } else {
        format!("Loss − ({floor}) against step (log scale).")
    });
    Plot::new("loss")
        .legend(Legend::default())
        .y_axis_formatter(|mark: GridMark, _range| format!("1e{:.0}", mark.value))
        .show(ui, |plot| match loaded {
            Some(m) => {
                for (i, (label, run)) in m.runs.iter().enumerate() {
                    let pts: Vec<[f64; 2]> = run
                        .loss
                        .iter()
                        .map(|[s, l]| [*s, log_loss(*l, floor)])
                        .collect();
                    plot.line(
                        Line::new(format!("{label} (file)"), pts)
                            .color(run_color(i))
                            .width(1.5),
                    );
                }
            }
            None => {
                for (i, run) in exp.runs().iter().enumerate() {
                    let pts: Vec<[f64; 2]> = run
                        .history()
                        .iter()
                        .map(|r| [r.step as f64, log_loss(r.loss, floor)])
                        .collect();
                    plot.line(
                        Line::new(run.config.label.clone(), pts)
                            .color(run_color(i))
                            .width(1.5),
                    );
                }
            }
        });
}
