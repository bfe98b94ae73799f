//! The fonts the explorer adds to egui's defaults.

/// Adds the explorer's symbol font (a 38 KB subset of DejaVu Sans: arrows, math operators, super-
/// and subscripts, check marks, shapes; `assets/`) as the last fallback of both families, so that
/// text like `MoE → dense` or `‖Δ‖` draws its symbols instead of empty boxes.
pub fn install_fonts(ctx: &egui::Context) {
    use egui::epaint::text::{FontInsert, FontPriority, InsertFontFamily};
    let families = [egui::FontFamily::Proportional, egui::FontFamily::Monospace]
        .into_iter()
        .map(|family| InsertFontFamily {
            family,
            priority: FontPriority::Lowest,
        })
        .collect();
    ctx.add_font(FontInsert {
        name: "DejaVuSans-symbols".into(),
        data: egui::FontData::from_static(include_bytes!("../assets/DejaVuSans-symbols.ttf")),
        families,
    });
}
