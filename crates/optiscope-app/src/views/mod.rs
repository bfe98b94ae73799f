//! The experiment lab's views, one module each, and the run palette every lab shares. They draw
//! from the experiment (or an opened metrics file) and return what the user asked for; the lab
//! applies it. (The Quantization lab draws with its own modules, `labs/quantization/`.)

pub mod landscape;
pub mod loss;
pub mod runs;
pub mod spectrum;

use egui::Color32;

/// The color of run `i` (a qualitative palette readable on the viridis heat map and on light
/// and dark panels).
pub fn run_color(i: usize) -> Color32 {
    const PALETTE: [Color32; 8] = [
        Color32::from_rgb(255, 99, 71),
        Color32::from_rgb(65, 105, 225),
        Color32::from_rgb(255, 165, 0),
        Color32::from_rgb(0, 200, 255),
        Color32::from_rgb(255, 105, 180),
        Color32::from_rgb(50, 205, 50),
        Color32::from_rgb(186, 85, 211),
        Color32::from_rgb(160, 160, 160),
    ];
    PALETTE[i % PALETTE.len()]
}

/// A list of runs, a row each: the run's colour, `row`'s widgets for it and a ✕ that removes it
/// (never the last one). Returns whether a run was removed.
pub fn run_rows<T>(
    ui: &mut egui::Ui,
    items: &mut Vec<T>,
    mut row: impl FnMut(&mut egui::Ui, usize, &mut T),
) -> bool {
    let mut remove = None;
    for (i, item) in items.iter_mut().enumerate() {
        ui.push_id(i, |ui| {
            ui.horizontal_wrapped(|ui| {
                // The run's colour as a painted swatch (no glyph the default fonts may lack).
                let (swatch, _) =
                    ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
                ui.painter().rect_filled(swatch, 2.0, run_color(i));
                row(ui, i, item);
                if ui
                    .small_button("✕")
                    .on_hover_text("remove this run")
                    .clicked()
                {
                    remove = Some(i);
                }
            });
        });
    }
    match remove {
        Some(i) if items.len() > 1 => {
            items.remove(i);
            true
        }
        _ => false,
    }
}
