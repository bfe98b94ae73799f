//! The histogram of one weight matrix on its grid (spec `quant_align_prune.md`,
//! "Quantization-grid visualisation"): bins of width α/8 coloured by the grid point each weight is
//! assigned to, and the colours of grid points and bit levels.

use egui::Color32;
use optiscope_core::device::quant::categorical::MAX_BITS;
use optiscope_core::train::LayerView;

/// The histogram never has more bins than this (a tiny α on wide weights would otherwise ask for
/// millions); when it would, the bins widen and the title says so.
pub const MAX_BINS: usize = 600;

/// The histogram of one weight matrix: bins of width α/8 centred on multiples of the bin width
/// (so every grid point is a bin centre), each bin's count split by the assigned grid point.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Bin width.
    pub bin: f64,
    /// Index of the first bin: bin `i` is centred at `(first + i)·bin`.
    pub first: i64,
    /// Per bin, the count of weights assigned to each grid point (one class without a grid).
    pub counts: Vec<Vec<u32>>,
    /// Whether the bins were widened beyond α/8 to stay under [`MAX_BINS`].
    pub widened: bool,
    /// The x range drawn: the grid ± α (widened to every weight).
    pub range: (f64, f64),
}

/// Bins `view`'s full-precision weights (spec: bin width α/8 over `[g_min − α, g_max + α]`).
pub fn histogram(view: &LayerView) -> Histogram {
    let (wmin, wmax) = view
        .weights
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &w| {
            (lo.min(f64::from(w)), hi.max(f64::from(w)))
        });
    let (wmin, wmax) = if wmin <= wmax {
        (wmin, wmax)
    } else {
        (0.0, 0.0)
    };
    let alpha = view.stats.alpha;
    let gridded = !view.grid.is_empty() && alpha > 0.0;
    let (mut lo, mut hi) = if gridded {
        let g0 = f64::from(view.grid[0]);
        let g1 = f64::from(view.grid[view.grid.len() - 1]);
        (g0 - alpha, g1 + alpha)
    } else {
        (wmin, wmax)
    };
    lo = lo.min(wmin);
    hi = hi.max(wmax);
    let span = (hi - lo).max(1e-6);
    let mut bin = if gridded { alpha / 8.0 } else { span / 64.0 };
    let widened = span / bin > MAX_BINS as f64;
    if widened {
        bin = span / MAX_BINS as f64;
    }
    let first = (lo / bin).round() as i64;
    let last = (hi / bin).round() as i64;
    let classes = if gridded { view.grid.len() } else { 1 };
    let mut counts = vec![vec![0u32; classes]; (last - first + 1) as usize];
    let kmin = if gridded {
        (f64::from(view.grid[0]) / alpha).round() as i64
    } else {
        0
    };
    for (&w, &xhat) in view.weights.iter().zip(&view.xhat) {
        let i = ((f64::from(w) / bin).round() as i64 - first).clamp(0, last - first) as usize;
        let k = if gridded {
            ((f64::from(xhat) / alpha).round() as i64 - kmin).clamp(0, classes as i64 - 1) as usize
        } else {
            0
        };
        counts[i][k] += 1;
    }
    Histogram {
        bin,
        first,
        counts,
        widened,
        range: (lo, hi),
    }
}

/// The fill of weights assigned to grid point `k` of `n`: a rainbow from red (the most negative
/// point) to violet (the most positive), so neighbouring cells differ and order reads at a glance.
pub fn assigned_color(k: usize, n: usize) -> Color32 {
    let hue = 0.78 * k as f32 / (n.max(2) - 1) as f32;
    egui::ecolor::Hsva::new(hue, 0.5, 0.9, 0.85).into()
}

/// The line colour of bit level `level` (1 = the coarsest, 1-bit sub-grid).
pub fn level_color(level: u32) -> Color32 {
    const LEVELS: [Color32; MAX_BITS as usize] = [
        Color32::from_rgb(255, 80, 80),
        Color32::from_rgb(255, 190, 40),
        Color32::from_rgb(60, 200, 255),
        Color32::from_rgb(200, 120, 255),
    ];
    LEVELS[(level.max(1) as usize - 1) % LEVELS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labs::quantization::run::QuantRun;
    use crate::state::default_quant_train;
    use optiscope_core::data::Dataset;
    use optiscope_core::train::TrainConfig;

    fn data(cfg: &TrainConfig) -> (Dataset, Dataset) {
        cfg.data.load(cfg.test_fraction, cfg.split_seed)
    }

    #[test]
    fn histogram_bins_are_an_eighth_of_alpha_centred_on_the_grid() {
        let cfg = default_quant_train();
        let mut run = QuantRun::new(&cfg, &data(&cfg), 0).unwrap();
        for _ in 0..30 {
            run.step().unwrap();
        }
        let view = run.layer_view(0).unwrap().clone();
        let h = histogram(&view);
        assert!(!h.widened);
        assert!((h.bin - view.stats.alpha / 8.0).abs() < 1e-12);
        let total: u32 = h.counts.iter().flatten().sum();
        assert_eq!(total as usize, view.weights.len());
        // Every grid point is a bin centre.
        for g in &view.grid {
            let i = f64::from(*g) / h.bin;
            assert!((i - i.round()).abs() < 1e-4, "{g} is not a bin centre");
        }
        // The range covers the grid ± α.
        let a = view.stats.alpha;
        assert!(h.range.0 <= f64::from(view.grid[0]) - a + 1e-9);
        assert!(h.range.1 >= f64::from(*view.grid.last().unwrap()) + a - 1e-9);
        assert_eq!(h.counts[0].len(), view.grid.len());
    }

    #[test]
    fn histogram_without_a_grid_has_one_class() {
        let view = LayerView {
            weights: vec![-1.0, 0.0, 0.5, 1.0],
            xhat: vec![-1.0, 0.0, 0.5, 1.0],
            grid: vec![],
            levels: vec![],
            keep: vec![],
            stats: optiscope_core::train::LayerStats {
                bits: 32,
                alpha: 0.0,
                near_frac: 1.0,
                mse: 0.0,
                sparsity: 0.0,
            },
        };
        let h = histogram(&view);
        assert!(h.counts.iter().all(|c| c.len() == 1));
        assert_eq!(h.counts.iter().flatten().sum::<u32>(), 4);
    }
}
