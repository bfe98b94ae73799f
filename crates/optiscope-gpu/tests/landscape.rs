//! The explorer's heat map (`gpu/src/landscape.rs` ↔ `shaders/landscape.wgsl`) against the 2-D
//! problems' CPU grid and colormap.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{gpu, read, rel_err};
use optiscope_core::problems::landscape::{color_grid, Landscape};
use optiscope_core::problems::ProblemConfig;

/// The landscape grid and its colormap against the CPU twins (values relative 1e-4 of the grid's
/// range; colors within one step of 255).
#[test]
fn landscape_grid_and_colormap_match_cpu() {
    let Some(ctx) = gpu() else { return };
    for json in [
        r#"{"name":"rosenbrock"}"#,
        r#"{"name":"beale"}"#,
        r#"{"name":"saddle"}"#,
        r#"{"name":"quadratic"}"#,
        r#"{"name":"river_valley"}"#,
    ] {
        let cfg: ProblemConfig = serde_json::from_str(json).unwrap();
        let l = Landscape::from_config(&cfg, 0).unwrap();
        let (w, h) = (64u32, 48u32);
        let want = l.grid_values(w as usize, h as usize);
        let scale = l.color_scale();
        let texture = optiscope_gpu::landscape::heatmap_texture(&ctx, w, h);
        let mut enc = ctx.encoder();
        let values = optiscope_gpu::landscape::evaluate_grid(&ctx, &mut enc, &l, w, h).unwrap();
        optiscope_gpu::landscape::colormap(&ctx, &mut enc, &l, &values, &scale, &texture).unwrap();
        ctx.submit(enc);
        let got = read(&ctx, &values);
        let err = rel_err(&got, &want);
        assert!(err < 1e-4, "{json}: grid error {err:.2e}");
        let pixels =
            pollster::block_on(optiscope_gpu::landscape::read_rgba(&ctx, &texture)).unwrap();
        let cpu_pixels = color_grid(&got, &scale);
        let worst = pixels
            .iter()
            .zip(&cpu_pixels)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 1, "{json}: colormap differs by {worst}/255");
        assert_eq!(pixels.len(), (w * h * 4) as usize);
    }
}
