//! The categorical quantizers of spec A1–A3 on one scalar: interval masses of the logistic noise
//! model, Relaxed Quantization's Gumbel-softmax sample, and the multi-class straight-through
//! estimator of SRQ/CPQ with DropBits' keep weights.
//!
//! Everything is computed from log-masses so that cells many σ away neither underflow nor cancel
//! (the WGSL twin in `shaders/quant.wgsl` follows the same formulas in f32). Derivatives are
//! returned with respect to the three continuous inputs `x`, `α`, `σ` and to the keep weight of
//! each bit level, which is what the training loop needs for every learnable quantity.

/// Largest grid a categorical quantizer evaluates (b ≤ 4 bits: 16 points, all of them, so the
/// "local grid" of RQ is the whole grid and exact).
pub const MAX_POINTS: usize = 16;
/// Largest bit-width of the categorical quantizers.
pub const MAX_BITS: u32 = 4;

/// A signed b-bit grid `g_k = α·k`, `k ∈ [−2^{b−1}, 2^{b−1} − 1]`, with logistic noise scale σ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoisyGrid {
    /// Bits b (2..=4).
    pub bits: u32,
    /// Step α > 0.
    pub alpha: f64,
    /// Logistic noise scale σ > 0.
    pub sigma: f64,
    /// Extend the two outermost cells to ±∞ so the masses sum to one and clipping is absorbed
    /// (spec A1's convention); `false` renormalises over the finite cells.
    pub extend_edges: bool,
}

impl NoisyGrid {
    /// Number of grid points.
    pub fn points(&self) -> usize {
        1 << self.bits
    }

    /// Lowest grid index.
    pub fn kmin(&self) -> i32 {
        -(1 << (self.bits - 1))
    }

    /// Grid point `k`.
    pub fn point(&self, k: i32) -> f64 {
        self.alpha * f64::from(k)
    }
}

/// `log σ(u) = −softplus(−u)`, stable for every u.
pub fn log_sigmoid(u: f64) -> f64 {
    -((-u).max(0.0) + (-u.abs()).exp().ln_1p())
}

/// `log(e^a − e^b)` for `a > b`.
fn log_diff_exp(a: f64, b: f64) -> f64 {
    a + (-(b - a).exp()).ln_1p()
}

/// Log-masses of every cell and their derivatives.
#[derive(Debug, Clone, Copy)]
pub struct Masses {
    /// Number of cells (grid points).
    pub n: usize,
    /// `log π_k`.
    pub log_pi: [f64; MAX_POINTS],
    /// `∂ log π_k / ∂(x, α, σ)`.
    pub dlog_pi: [[f64; 3]; MAX_POINTS],
}

/// The masses `π_k = P(x + ε ∈ cell k)`, `ε ~ Logistic(0, σ)`, of every cell of `grid`.
///
/// Neighbouring cells share a boundary, so `log σ(±u)` is computed once per boundary
/// `u_b = (α(k_min + b − ½) − x)/σ`, b = 0..=n.
pub fn masses(x: f64, grid: &NoisyGrid) -> Masses {
    let n = grid.points();
    let mut out = Masses {
        n,
        log_pi: [f64::NEG_INFINITY; MAX_POINTS],
        dlog_pi: [[0.0; 3]; MAX_POINTS],
    };
    let (a, s) = (grid.alpha, grid.sigma);
    let mut u = [0.0; MAX_POINTS + 1];
    let mut ls_pos = [0.0; MAX_POINTS + 1]; // log σ(u_b)
    let mut ls_neg = [0.0; MAX_POINTS + 1]; // log σ(−u_b)
    for b in 0..=n {
        u[b] = (a * (f64::from(grid.kmin() + b as i32) - 0.5) - x) / s;
        ls_pos[b] = log_sigmoid(u[b]);
        // log σ(−u) = log σ(u) − u; on the side where it is tiny (u ≪ 0) the direct form keeps
        // its digits.
        ls_neg[b] = if u[b] > 0.0 {
            ls_pos[b] - u[b]
        } else {
            log_sigmoid(-u[b])
        };
    }
    for i in 0..n {
        let kf = f64::from(grid.kmin() + i as i32);
        // Upper (i + 1) and lower (i) standardized boundaries, derivatives w.r.t. (x, α, σ).
        let (hi, lo) = (u[i + 1], u[i]);
        let dhi = [-1.0 / s, (kf + 0.5) / s, -hi / s];
        let dlo = [-1.0 / s, (kf - 0.5) / s, -lo / s];
        let top = grid.extend_edges && i == n - 1;
        let bottom = grid.extend_edges && i == 0;
        let (log_pi, dlog) = if top {
            // π = 1 − σ(lo) = σ(−lo); ∂ log π = −σ(lo)·∂lo.
            let w = ls_pos[i].exp();
            (ls_neg[i], dlo.map(|d| -w * d))
        } else if bottom {
            // π = σ(hi); ∂ log π = σ(−hi)·∂hi.
            let w = ls_neg[i + 1].exp();
            (ls_pos[i + 1], dhi.map(|d| w * d))
        } else {
            // Both CDFs near 1 would cancel: use the complementary tails there.
            let lp = if hi + lo > 0.0 {
                log_diff_exp(ls_neg[i], ls_neg[i + 1])
            } else {
                log_diff_exp(ls_pos[i + 1], ls_pos[i])
            };
            // σ'(u)/π = exp(log σ(u) + log σ(−u) − log π).
            let wh = (ls_pos[i + 1] + ls_neg[i + 1] - lp).exp();
            let wl = (ls_pos[i] + ls_neg[i] - lp).exp();
            (lp, [0, 1, 2].map(|j| wh * dhi[j] - wl * dlo[j]))
        };
        out.log_pi[i] = log_pi;
        out.dlog_pi[i] = dlog;
    }
    out
}

/// What a categorical quantizer returns for one scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatOut {
    /// Quantized value x̂ (forward).
    pub xhat: f64,
    /// Assigned grid index (the selected point; for the soft RQ sample, the heaviest one).
    pub k: i32,
    /// `∂x̂/∂x` as the backward pass sees it (the gain f'(x) for the multi-class STE).
    pub dx: f64,
    /// `∂x̂/∂α`.
    pub dalpha: f64,
    /// `∂x̂/∂σ`.
    pub dsigma: f64,
    /// `∂x̂/∂K_j` for levels j = 1..=b (index j − 1; level 1 is never gated, its entry is 0).
    pub dkeep: [f64; MAX_BITS as usize],
}

/// The multi-class straight-through estimator (spec A2) with level keep weights `keep[j−1] = K_j`
/// (DropBits: 0 or 1; hard-concrete gates: in [0, 1]; `K_1` must be 1). The categorical is
/// `r_k ∝ π_k·K_{level(k)}`; the forward pass takes its mode, the backward pass differentiates
/// `f = Σ r_k g_k` and adds the selected point's own dependence on α.
pub fn multiclass_ste(x: f64, grid: &NoisyGrid, keep: &[f64; MAX_BITS as usize]) -> CatOut {
    let m = masses(x, grid);
    let mut levels = [1usize; MAX_POINTS];
    for (i, l) in levels.iter_mut().enumerate().take(m.n) {
        *l = super::bit_level(grid.kmin() + i as i32, grid.bits) as usize;
    }
    let level = |i: usize| levels[i];
    // Unnormalised weights relative to the largest log-mass among the surviving points (K > 0):
    // a removed point may lie hundreds of log-units above every survivor (small σ, the nearest
    // point dropped), and relative to it every survivor's weight would underflow to 0/0. Removed
    // points get weight 0, so they add nothing to f, its derivatives or `dkeep` (a removed level's
    // gate sits at the clamp z = 0, where the hard concrete's derivative is 0 anyway).
    let top = (0..m.n)
        .filter(|&i| keep[level(i) - 1] > 0.0)
        .map(|i| m.log_pi[i])
        .fold(f64::NEG_INFINITY, f64::max);
    let mut w = [0.0; MAX_POINTS];
    let mut total = 0.0;
    let mut best = usize::MAX;
    let mut best_score = f64::NEG_INFINITY;
    for i in 0..m.n {
        let kw = keep[level(i) - 1];
        if kw > 0.0 {
            w[i] = (m.log_pi[i] - top).exp();
        }
        total += w[i] * kw;
        if kw > 0.0 {
            let score = m.log_pi[i] + kw.ln();
            if score > best_score {
                best_score = score;
                best = i;
            }
        }
    }
    let f: f64 = (0..m.n)
        .map(|i| w[i] * keep[level(i) - 1] * grid.point(grid.kmin() + i as i32))
        .sum::<f64>()
        / total;
    let mut d = [0.0; 3];
    let mut dkeep = [0.0; MAX_BITS as usize];
    for i in 0..m.n {
        let g = grid.point(grid.kmin() + i as i32);
        let kw = keep[level(i) - 1];
        let c = w[i] * (g - f) / total;
        for (dj, dl) in d.iter_mut().zip(m.dlog_pi[i]) {
            *dj += kw * c * dl;
        }
        if level(i) > 1 {
            dkeep[level(i) - 1] += c;
        }
    }
    let k = grid.kmin() + best as i32;
    CatOut {
        xhat: grid.point(k),
        k,
        dx: d[0],
        dalpha: d[1] + f64::from(k),
        dsigma: d[2],
        dkeep,
    }
}

/// Relaxed Quantization's training forward (spec A1): `y = softmax((log π + G)/τ)` with Gumbel
/// noise `G_k = −log(−log u_k)`, `x̂ = Σ y_k g_k`, and its exact derivatives.
pub fn relaxed(x: f64, grid: &NoisyGrid, tau: f64, gumbel: &[f64]) -> CatOut {
    let m = masses(x, grid);
    let mut logits = [f64::NEG_INFINITY; MAX_POINTS];
    for i in 0..m.n {
        logits[i] = (m.log_pi[i] + gumbel[i]) / tau;
    }
    let top = logits[..m.n]
        .iter()
        .fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let mut y = [0.0; MAX_POINTS];
    let mut total = 0.0;
    for i in 0..m.n {
        y[i] = (logits[i] - top).exp();
        total += y[i];
    }
    let mut xhat = 0.0;
    let mut mean_k = 0.0;
    let mut best = 0;
    for i in 0..m.n {
        y[i] /= total;
        xhat += y[i] * grid.point(grid.kmin() + i as i32);
        mean_k += y[i] * f64::from(grid.kmin() + i as i32);
        if y[i] > y[best] {
            best = i;
        }
    }
    let mut d = [0.0; 3];
    for (i, (yi, dlog)) in y.iter().zip(&m.dlog_pi).take(m.n).enumerate() {
        let c = yi * (grid.point(grid.kmin() + i as i32) - xhat) / tau;
        for (dj, dl) in d.iter_mut().zip(dlog) {
            *dj += c * dl;
        }
    }
    CatOut {
        xhat,
        k: grid.kmin() + best as i32,
        dx: d[0],
        dalpha: d[1] + mean_k,
        dsigma: d[2],
        dkeep: [0.0; MAX_BITS as usize],
    }
}

/// The deterministic evaluation rounding of RQ/SRQ/CPQ: the grid point of largest `π_k·K_level`
/// (the categorical's mode).
pub fn mode(x: f64, grid: &NoisyGrid, keep: &[f64; MAX_BITS as usize]) -> i32 {
    multiclass_ste(x, grid, keep).k
}

/// Gumbel noise `−log(−log u)` of a uniform `u ∈ (0, 1)`.
pub fn gumbel(u: f64) -> f64 {
    -(-u.ln()).ln()
}

/// A uniform in the open interval (0, 1) from a 32-bit word: `((w >> 8) + ½)·2⁻²⁴`.
pub fn open_unit(w: u32) -> f64 {
    (f64::from(w >> 8) + 0.5) / 16_777_216.0
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // tests index parallel arrays of expected values
mod tests {
    use super::*;

    const ALL: [f64; 4] = [1.0; 4];

    fn b2() -> NoisyGrid {
        NoisyGrid {
            bits: 2,
            alpha: 0.5,
            sigma: 0.5 / 3.0,
            extend_edges: true,
        }
    }

    fn close(what: &str, got: f64, want: f64, tol: f64) {
        assert!(
            (got - want).abs() <= tol * want.abs().max(1.0),
            "{what}: got {got}, want {want}"
        );
    }

    /// Spec A1 vector: masses, Gumbel noise, relaxed sample (b = 2, α = 0.5, σ = α/3, x = 0.3).
    #[test]
    fn relaxed_quantization_vector() {
        let m = masses(0.3, &b2());
        let want_pi = [
            0.0018329389424928035,
            0.03373825033014336,
            0.38998629391570494,
            0.5744425168116589,
        ];
        for i in 0..4 {
            close("pi", m.log_pi[i].exp(), want_pi[i], 1e-12);
        }
        let u = [0.15, 0.8, 0.4, 0.95];
        let g: Vec<f64> = u.iter().map(|&u| gumbel(u)).collect();
        let want_g = [
            -0.6403369387607479,
            1.4999399867595158,
            0.08742157179075517,
            2.9701952490421637,
        ];
        for i in 0..4 {
            close("gumbel", g[i], want_g[i], 1e-12);
        }
        let out = relaxed(0.3, &b2(), 1.0, &g);
        close("xhat_soft", out.xhat, 0.46896890800194463, 1e-12);
        assert_eq!(mode(0.3, &b2(), &ALL), 1, "eval rounds to 0.5");
    }

    /// Spec A2 vector: the multi-class STE's forward is the mode, its backward the slope of f.
    #[test]
    fn multiclass_ste_vector() {
        let out = multiclass_ste(0.3, &b2(), &ALL);
        assert_eq!(out.xhat, 0.5);
        close("dxhat/dx", out.dx, 0.8417813122033148, 1e-10);
    }

    /// Spec A2 gain curve (b = 3, α = 0.25) at three noise scales.
    #[test]
    fn gain_curve() {
        let table = [
            (
                3.0,
                [
                    0.9634735339902625,
                    0.9740355296757516,
                    0.9997124884095354,
                    1.0255658617304952,
                    1.0362475845934809,
                ],
            ),
            (
                6.0,
                [
                    0.5436041443432605,
                    0.6541653434498723,
                    0.9635647750722136,
                    1.3456317230312347,
                    1.5296719327449197,
                ],
            ),
            (
                10.0,
                [
                    0.1329672517362353,
                    0.2437358813555786,
                    0.7065994152352665,
                    1.7327621285383505,
                    2.5009079573787276,
                ],
            ),
        ];
        for (div, want) in table {
            let grid = NoisyGrid {
                bits: 3,
                alpha: 0.25,
                sigma: 0.25 / div,
                extend_edges: true,
            };
            for (i, w) in want.iter().enumerate() {
                let x = 0.03125 * i as f64;
                close("f'", multiclass_ste(x, &grid, &ALL).dx, *w, 1e-9);
            }
        }
    }

    /// Every derivative the backward passes use is the derivative of the soft quantizer f (for
    /// the STE) or of the relaxed sample (for RQ): central finite differences in f64.
    #[test]
    fn derivatives_match_finite_differences() {
        // f = Σ r_k g_k, the function whose slope the multi-class STE returns, and Σ r_k k.
        let soft_and_mean_k = |x: f64, g: &NoisyGrid, keep: &[f64; 4]| {
            let m = masses(x, g);
            let (mut num, mut den, mut mk) = (0.0, 0.0, 0.0);
            for i in 0..m.n {
                let k = g.kmin() + i as i32;
                let kw = keep[crate::device::quant::bit_level(k, g.bits) as usize - 1];
                num += m.log_pi[i].exp() * kw * g.point(k);
                mk += m.log_pi[i].exp() * kw * f64::from(k);
                den += m.log_pi[i].exp() * kw;
            }
            (num / den, mk / den)
        };
        let soft = |x: f64, g: &NoisyGrid, keep: &[f64; 4]| soft_and_mean_k(x, g, keep).0;
        let keep = [1.0, 0.7, 0.4, 1.0];
        let h = 1e-6;
        for &(x, extend) in &[
            (0.3, true),
            (-0.41, false),
            (0.9, true),
            (-1.3, true),
            (0.07, false),
        ] {
            let g = NoisyGrid {
                bits: 3,
                alpha: 0.25,
                sigma: 0.07,
                extend_edges: extend,
            };
            let out = multiclass_ste(x, &g, &keep);
            let k = f64::from(out.k);
            close(
                "dx",
                out.dx,
                (soft(x + h, &g, &keep) - soft(x - h, &g, &keep)) / (2.0 * h),
                1e-6,
            );
            let ga = |a: f64| NoisyGrid { alpha: a, ..g };
            let fd_a = (soft(x, &ga(0.25 + h), &keep) - soft(x, &ga(0.25 - h), &keep)) / (2.0 * h);
            // The selected point moves with α by k* (STE), not by the soft mean Σ r_k k.
            let mean_k = soft_and_mean_k(x, &g, &keep).1;
            close("dalpha", out.dalpha, fd_a - mean_k + k, 1e-6);
            let gs = |s: f64| NoisyGrid { sigma: s, ..g };
            let fd_s = (soft(x, &gs(0.07 + h), &keep) - soft(x, &gs(0.07 - h), &keep)) / (2.0 * h);
            close("dsigma", out.dsigma, fd_s, 1e-6);
            for j in 1..3 {
                let mut kp = keep;
                kp[j] += h;
                let mut km = keep;
                km[j] -= h;
                let fd = (soft(x, &g, &kp) - soft(x, &g, &km)) / (2.0 * h);
                close("dkeep", out.dkeep[j], fd, 1e-6);
            }
            // RQ: the relaxed sample itself is smooth in every input.
            let gum = [0.3, -0.2, 1.1, 0.05, -0.7, 0.4, 0.9, -1.0];
            let r = |x: f64, g: &NoisyGrid| relaxed(x, g, 0.8, &gum).xhat;
            let out = relaxed(x, &g, 0.8, &gum);
            close(
                "rq dx",
                out.dx,
                (r(x + h, &g) - r(x - h, &g)) / (2.0 * h),
                1e-6,
            );
            close(
                "rq dalpha",
                out.dalpha,
                (r(x, &ga(0.25 + h)) - r(x, &ga(0.25 - h))) / (2.0 * h),
                1e-6,
            );
            close(
                "rq dsigma",
                out.dsigma,
                (r(x, &gs(0.07 + h)) - r(x, &gs(0.07 - h))) / (2.0 * h),
                1e-6,
            );
        }
    }

    /// Known behaviour (A1 i–iii): masses sum to one; σ → 0 gives the nearest point; τ → 0 makes
    /// the relaxed sample a grid point. Far cells stay finite (no underflow to −∞ or NaN).
    #[test]
    fn limits_and_stability() {
        for i in 0..200 {
            let x = -2.0 + 0.02 * f64::from(i);
            let m = masses(x, &b2());
            let s: f64 = m.log_pi[..4].iter().map(|l| l.exp()).sum();
            close("sum pi", s, 1.0, 1e-12);
            let sharp = NoisyGrid {
                sigma: 1e-4,
                ..b2()
            };
            let want = (x / 0.5).round_ties_even().clamp(-2.0, 1.0);
            if ((x / 0.5).fract().abs() - 0.5).abs() > 1e-2 {
                assert_eq!(f64::from(mode(x, &sharp, &ALL)), want, "x = {x}");
            }
            // τ → 0: the sample is the grid point of argmax(log π + G) (skipping near-ties).
            let gum = [0.1, -0.3, 0.2, 0.0];
            let mut logits: Vec<(f64, usize)> = (0..4).map(|i| (m.log_pi[i] + gum[i], i)).collect();
            logits.sort_by(|a, b| b.0.total_cmp(&a.0));
            if logits[0].0 - logits[1].0 > 1e-2 {
                let cold = relaxed(x, &b2(), 1e-3, &gum);
                let want = b2().point(b2().kmin() + logits[0].1 as i32);
                assert!(
                    (cold.xhat - want).abs() < 1e-6,
                    "x = {x}: {} vs {want}",
                    cold.xhat
                );
            }
        }
        let far = masses(
            40.0,
            &NoisyGrid {
                sigma: 0.01,
                extend_edges: false,
                ..b2()
            },
        );
        assert!(
            far.log_pi[..4].iter().all(|l| l.is_finite()),
            "{:?}",
            far.log_pi
        );
        let out = multiclass_ste(
            40.0,
            &NoisyGrid {
                sigma: 0.01,
                extend_edges: false,
                ..b2()
            },
            &ALL,
        );
        assert!(out.dx.is_finite() && out.dalpha.is_finite() && out.xhat == 0.5);
    }

    /// A sharp categorical (σ = α/4000) with the nearest point removed: every survivor lies
    /// ~1000 log-units below it (beyond f64's exp range), which gave 0/0 when the weights were
    /// taken relative to all points. x̂ is the nearest survivor and every derivative is finite.
    #[test]
    fn removed_nearest_point_with_a_tiny_sigma_stays_finite() {
        let g = NoisyGrid {
            sigma: 0.5 / 4000.0,
            ..b2()
        };
        // b = 2, α = 0.5: points −1, −0.5, 0, 0.5; level 2 (±0.5) removed, survivors −1 and 0.
        let drop2 = [1.0, 0.0, 1.0, 1.0];
        for (x, want) in [
            (0.48, 0.0),
            (0.52, 0.0),
            (-0.45, 0.0),
            (-0.55, -1.0),
            (0.6, 0.0),
        ] {
            let out = multiclass_ste(x, &g, &drop2);
            assert_eq!(out.xhat, want, "x = {x}");
            assert!(
                [out.dx, out.dalpha, out.dsigma]
                    .iter()
                    .chain(&out.dkeep)
                    .all(|v| v.is_finite()),
                "x = {x}: {out:?}"
            );
        }
    }

    /// Multi-class STE forward = nearest rounding without dropped bits: exact with finite edge
    /// cells; with extended edges only ≥ 3σ inside the outermost boundaries (spec A2).
    #[test]
    fn forward_is_nearest_rounding() {
        for extend in [false, true] {
            let g = NoisyGrid {
                extend_edges: extend,
                ..b2()
            };
            for i in 0..400 {
                let x = -1.5 + 0.005 * f64::from(i) + 1e-4;
                if extend && (x < -0.75 + 3.0 * g.sigma || x > 0.25 - 3.0 * g.sigma) {
                    continue;
                }
                let want = (x / 0.5).round_ties_even().clamp(-2.0, 1.0) * 0.5;
                assert_eq!(
                    multiclass_ste(x, &g, &ALL).xhat,
                    want,
                    "x = {x}, extend {extend}"
                );
            }
        }
    }

    /// Gumbel-max (A1 iv): the frequency of each argmax over 10⁵ uniforms matches π (4σ).
    #[test]
    fn gumbel_max_matches_the_masses() {
        let rng = crate::rng::Philox::new(11);
        let m = masses(0.3, &b2());
        let n = 100_000u64;
        let mut counts = [0u64; 4];
        for t in 0..n {
            let mut best = (0, f64::NEG_INFINITY);
            for i in 0..4 {
                let v = m.log_pi[i] + gumbel(open_unit(rng.u32_at(7, 4 * t + i as u64)));
                if v > best.1 {
                    best = (i, v);
                }
            }
            counts[best.0] += 1;
        }
        for i in 0..4 {
            let p = m.log_pi[i].exp();
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            let f = counts[i] as f64 / n as f64;
            assert!((f - p).abs() <= 4.0 * sd + 1e-9, "index {i}: {f} vs {p}");
        }
    }
}
