//! The landscape view: the log-scaled heat map of a 2-D problem, every run's path from the same
//! start, the current points, a legend; click to move the start, hover for coordinates and loss.

use egui_plot::{Legend, Line, MarkerShape, Plot, PlotImage, PlotPoint, Points};
use optiscope_core::experiment::Experiment;
use optiscope_core::problems::landscape::Landscape;
use optiscope_core::problems::Observation;

use super::run_color;
use optiscope_core::metrics::RunMetrics;

/// What the user did in the view.
pub enum LandscapeAction {
    /// Clicked: start every run from this point.
    SetStart([f64; 2]),
}

/// Draws the view. `heatmap` is the texture of `landscape`'s heat map.
pub fn landscape_ui(
    ui: &mut egui::Ui,
    exp: &Experiment,
    landscape: &Landscape,
    heatmap: Option<egui::TextureId>,
    loaded: Option<&RunMetrics>,
) -> Option<LandscapeAction> {
    let [[x0, x1], [y0, y1]] = landscape.bounds();
    let hover_text = ui
        .ctx()
        .data(|d| d.get_temp::<String>(egui::Id::unique("landscape-hover")))
        .unwrap_or_default();
    ui.label(if hover_text.is_empty() {
        "Click to start every run from that point.".to_string()
    } else {
        hover_text
    });
    let response = Plot::new("landscape")
        .legend(Legend::default())
        .data_aspect(1.0)
        .include_x(x0)
        .include_x(x1)
        .include_y(y0)
        .include_y(y1)
        .allow_drag(false)
        .allow_zoom(false)
        .show(ui, |plot| {
            if let Some(tex) = heatmap {
                let center = PlotPoint::new((x0 + x1) / 2.0, (y0 + y1) / 2.0);
                plot.image(PlotImage::new(
                    "loss (log scale)",
                    tex,
                    center,
                    [(x1 - x0) as f32, (y1 - y0) as f32],
                ));
            }
            let minima: Vec<[f64; 2]> = landscape.minimizers();
            plot.points(
                Points::new("minimum", minima)
                    .shape(MarkerShape::Asterisk)
                    .radius(6.0)
                    .color(egui::Color32::WHITE),
            );
            if let Some(m) = loaded {
                for (i, (label, run)) in m.runs.iter().enumerate() {
                    plot.line(
                        Line::new(format!("{label} (file)"), run.path.clone())
                            .color(run_color(i))
                            .width(1.5),
                    );
                }
            } else {
                for (i, run) in exp.runs().iter().enumerate() {
                    let path: Vec<[f64; 2]> = run
                        .history()
                        .iter()
                        .filter_map(|r| match r.observation {
                            Observation::Point(p) => Some(p),
                            Observation::SingularValues(_) => None,
                        })
                        .collect();
                    let color = run_color(i);
                    if let Some(last) = path.last().copied() {
                        plot.points(
                            Points::new(run.config.label.clone(), vec![last])
                                .radius(4.0)
                                .color(color),
                        );
                    }
                    plot.line(
                        Line::new(run.config.label.clone(), path)
                            .color(color)
                            .width(1.5),
                    );
                }
            }
            plot.pointer_coordinate()
        });
    let pointer = response.inner;
    let text = pointer
        .map(|p| {
            format!(
                "x = {:.4}, y = {:.4}, loss = {:.4e}",
                p.x,
                p.y,
                landscape.value(p.x, p.y)
            )
        })
        .unwrap_or_default();
    ui.ctx()
        .data_mut(|d| d.insert_temp(egui::Id::unique("landscape-hover"), text));
    if response.response.clicked() {
        if let Some(p) = pointer {
            return Some(LandscapeAction::SetStart([p.x, p.y]));
        }
    }
    None
}
