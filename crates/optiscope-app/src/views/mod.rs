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
