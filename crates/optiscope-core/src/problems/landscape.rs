//! 2-D landscapes: a point `(x, y)` as one parameter `"xy"` of shape `[2]`, with the role
//! [`ParamRole::Diagonal`] so that matrix methods see `diag(x, y)` (spec §4.4: Muon then acts
//! like sign descent, as on a diagonal weight matrix).

use serde::{Deserialize, Serialize};

use super::{ConfigError, Observation, Problem, ProblemConfig};
use crate::rng::{stream, Philox, StreamKind};
use crate::tensor::Tensor;
use crate::tensor::{Param, ParamRole};

fn check_point(field: &str, p: [f64; 2]) -> Result<(), ConfigError> {
    if p.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            format!("{p:?}"),
            "must be finite",
        ))
    }
}

fn check_noise(n: [f64; 2]) -> Result<(), ConfigError> {
    if n.iter().all(|v| v.is_finite() && *v >= 0.0) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "noise_std",
            format!("{n:?}"),
            "must be finite and >= 0",
        ))
    }
}

macro_rules! landscape_config {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty = $default:expr),* $(,)? }, start = $start:expr, noise = $noise:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
            /// Starting point of every run.
            pub start: [f64; 2],
            /// Standard deviation of Gaussian noise added to each gradient component.
            pub noise_std: [f64; 2],
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* start: $start, noise_std: $noise }
            }
        }
    };
}

landscape_config!(
    /// Rosenbrock: `(a − x)² + b (y − x²)²`, minimum 0 at `(a, a²)`.
    RosenbrockConfig { /// a.
    a: f64 = 1.0, /// b.
    b: f64 = 100.0 },
    start = [-1.2, 1.0],
    noise = [0.0, 0.0]
);

landscape_config!(
    /// Beale: `Σᵢ (cᵢ − x + x yⁱ)²` with c = (1.5, 2.25, 2.625); minimum 0 at (3, 0.5).
    BealeConfig {},
    start = [1.0, 1.5],
    noise = [0.0, 0.0]
);

landscape_config!(
    /// A saddle: `x²/2 − y²/2 + y⁴/4`, saddle point at 0, minima −1/4 at (0, ±1). The default start
    /// lies just off the saddle's stable direction, so escaping it takes a while.
    SaddleConfig {},
    start = [1.0, 0.01],
    noise = [0.0, 0.0]
);

landscape_config!(
    /// `½ (u² + κ v²)` in coordinates `(u, v)` rotated by `angle_deg` from `(x, y)`; minimum 0 at 0.
    QuadraticConfig { /// κ: ratio of the largest to the smallest curvature.
    condition_number: f64 = 50.0, /// Rotation of the principal axes, degrees.
    angle_deg: f64 = 30.0 },
    start = [-1.5, 1.5],
    noise = [0.0, 0.0]
);

landscape_config!(
    /// The river valley of spec §4.4: `κ/2 (u − u*)² + A/2 (v − a sin u)²` — a flat winding river
    /// floor `v = a sin u` between steep walls; minimum 0 at `(u*, a sin u*)`.
    RiverValleyConfig { /// κ: curvature along the river.
    kappa: f64 = 0.02, /// A: curvature across the valley.
    wall: f64 = 4.0, /// a: amplitude of the river's meander.
    amplitude: f64 = 0.5, /// u*: where the river ends.
    u_star: f64 = 6.0 },
    start = [0.0, 1.0],
    noise = [0.025, 0.5]
);

/// Which function a [`Landscape`] is, with its constants.
#[derive(Debug, Clone, PartialEq)]
pub enum LandscapeKind {
    /// `(a − x)² + b (y − x²)²`.
    Rosenbrock {
        /// a.
        a: f64,
        /// b.
        b: f64,
    },
    /// `Σᵢ (cᵢ − x + x yⁱ)²`, c = (1.5, 2.25, 2.625); minimum 0 at (3, 0.5).
    Beale,
    /// `x²/2 − y²/2 + y⁴/4`: a saddle at 0, minima −1/4 at (0, ±1).
    Saddle,
    /// `½ pᵀ H p` with `H = R diag(1, κ) Rᵀ`.
    Quadratic {
        /// The Hessian, row-major.
        h: [f64; 4],
    },
    /// `κ/2 (u − u*)² + A/2 (v − a sin u)²`.
    RiverValley {
        /// κ.
        kappa: f64,
        /// A.
        wall: f64,
        /// a.
        amplitude: f64,
        /// u*.
        u_star: f64,
    },
}

/// A 2-D problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Landscape {
    /// The function.
    pub kind: LandscapeKind,
    /// Where every run starts.
    pub start: [f64; 2],
    /// Gradient noise standard deviations.
    pub noise_std: [f64; 2],
    seed: u64,
}

const BEALE_C: [f64; 3] = [1.5, 2.25, 2.625];

impl Landscape {
    /// Builds the landscape of a 2-D problem config.
    pub fn from_config(cfg: &ProblemConfig, seed: u64) -> Result<Self, ConfigError> {
        let (kind, start, noise_std) = match cfg {
            ProblemConfig::Rosenbrock(c) => {
                if !(c.b > 0.0 && c.a.is_finite() && c.b.is_finite()) {
                    return Err(ConfigError::invalid(
                        "b",
                        c.b,
                        "must be a finite number > 0",
                    ));
                }
                (
                    LandscapeKind::Rosenbrock { a: c.a, b: c.b },
                    c.start,
                    c.noise_std,
                )
            }
            ProblemConfig::Beale(c) => (LandscapeKind::Beale, c.start, c.noise_std),
            ProblemConfig::Saddle(c) => (LandscapeKind::Saddle, c.start, c.noise_std),
            ProblemConfig::Quadratic(c) => {
                if !(c.condition_number >= 1.0 && c.condition_number.is_finite()) {
                    return Err(ConfigError::invalid(
                        "condition_number",
                        c.condition_number,
                        "must be a finite number >= 1",
                    ));
                }
                let t = c.angle_deg.to_radians();
                let (s, co) = t.sin_cos();
                let k = c.condition_number;
                // H = R diag(1, κ) Rᵀ with R = [[cos, −sin], [sin, cos]].
                let h = [
                    co * co + k * s * s,
                    (1.0 - k) * co * s,
                    (1.0 - k) * co * s,
                    s * s + k * co * co,
                ];
                (LandscapeKind::Quadratic { h }, c.start, c.noise_std)
            }
            ProblemConfig::RiverValley(c) => {
                for (f, v) in [("kappa", c.kappa), ("wall", c.wall)] {
                    if !(v > 0.0 && v.is_finite()) {
                        return Err(ConfigError::invalid(f, v, "must be a finite number > 0"));
                    }
                }
                let kind = LandscapeKind::RiverValley {
                    kappa: c.kappa,
                    wall: c.wall,
                    amplitude: c.amplitude,
                    u_star: c.u_star,
                };
                (kind, c.start, c.noise_std)
            }
            ProblemConfig::LoraFactorization(_) => {
                unreachable!("the factorization is not a landscape; ProblemConfig::build routes it")
            }
        };
        check_point("start", start)?;
        check_noise(noise_std)?;
        Ok(Self {
            kind,
            start,
            noise_std,
            seed,
        })
    }

    /// The function value at `(x, y)`.
    pub fn value(&self, x: f64, y: f64) -> f64 {
        match self.kind {
            LandscapeKind::Rosenbrock { a, b } => (a - x).powi(2) + b * (y - x * x).powi(2),
            LandscapeKind::Beale => BEALE_C
                .iter()
                .enumerate()
                .map(|(i, c)| (c - x + x * y.powi(i as i32 + 1)).powi(2))
                .sum(),
            LandscapeKind::Saddle => 0.5 * x * x - 0.5 * y * y + 0.25 * y.powi(4),
            LandscapeKind::Quadratic { h } => {
                0.5 * (h[0] * x * x + (h[1] + h[2]) * x * y + h[3] * y * y)
            }
            LandscapeKind::RiverValley {
                kappa,
                wall,
                amplitude,
                u_star,
            } => {
                0.5 * kappa * (x - u_star).powi(2) + 0.5 * wall * (y - amplitude * x.sin()).powi(2)
            }
        }
    }

    /// The exact gradient at `(x, y)`.
    pub fn grad(&self, x: f64, y: f64) -> [f64; 2] {
        match self.kind {
            LandscapeKind::Rosenbrock { a, b } => {
                let r = y - x * x;
                [-2.0 * (a - x) - 4.0 * b * x * r, 2.0 * b * r]
            }
            LandscapeKind::Beale => {
                let mut g = [0.0, 0.0];
                for (i, c) in BEALE_C.iter().enumerate() {
                    let p = i as i32 + 1;
                    let r = c - x + x * y.powi(p);
                    g[0] += 2.0 * r * (y.powi(p) - 1.0);
                    g[1] += 2.0 * r * x * f64::from(p) * y.powi(p - 1);
                }
                g
            }
            LandscapeKind::Saddle => [x, -y + y.powi(3)],
            LandscapeKind::Quadratic { h } => [h[0] * x + h[1] * y, h[2] * x + h[3] * y],
            LandscapeKind::RiverValley {
                kappa,
                wall,
                amplitude,
                u_star,
            } => {
                let r = y - amplitude * x.sin();
                [
                    kappa * (x - u_star) - wall * r * amplitude * x.cos(),
                    wall * r,
                ]
            }
        }
    }

    /// The global minimum value (for log-scaled heat maps of `f − f*`).
    pub fn min_value(&self) -> f64 {
        match self.kind {
            LandscapeKind::Saddle => -0.25,
            _ => 0.0,
        }
    }

    /// The global minimizer(s) shown as markers.
    pub fn minimizers(&self) -> Vec<[f64; 2]> {
        match self.kind {
            LandscapeKind::Rosenbrock { a, .. } => vec![[a, a * a]],
            LandscapeKind::Beale => vec![[3.0, 0.5]],
            LandscapeKind::Saddle => vec![[0.0, 1.0], [0.0, -1.0]],
            LandscapeKind::Quadratic { .. } => vec![[0.0, 0.0]],
            LandscapeKind::RiverValley {
                amplitude, u_star, ..
            } => vec![[u_star, amplitude * u_star.sin()]],
        }
    }

    /// The region a view shows: `[[x_min, x_max], [y_min, y_max]]`.
    pub fn bounds(&self) -> [[f64; 2]; 2] {
        match self.kind {
            LandscapeKind::Rosenbrock { .. } => [[-2.0, 2.0], [-1.0, 3.0]],
            LandscapeKind::Beale => [[-4.5, 4.5], [-4.5, 4.5]],
            LandscapeKind::Saddle => [[-2.0, 2.0], [-2.0, 2.0]],
            LandscapeKind::Quadratic { .. } => [[-2.0, 2.0], [-2.0, 2.0]],
            LandscapeKind::RiverValley { .. } => [[-1.0, 7.5], [-2.0, 2.0]],
        }
    }
}

/// How a heat map maps values to colors: `t = clamp((ln(v − min_value + delta) − log_lo) /
/// (log_hi − log_lo), 0, 1)`, then [`colormap`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorScale {
    /// The landscape's minimum value f*.
    pub min_value: f32,
    /// Added before the logarithm so f = f* stays finite.
    pub delta: f32,
    /// ln of the value mapped to the first color.
    pub log_lo: f32,
    /// ln of the value mapped to the last color.
    pub log_hi: f32,
}

impl Landscape {
    /// The value at the centre of every cell of a `width × height` grid over [`Self::bounds`],
    /// row-major with row 0 at the top (the largest y). Coordinates are formed in f32 exactly as
    /// the GPU kernel `evaluate_grid` forms them; the value is computed in f64 and rounded.
    pub fn grid_values(&self, width: usize, height: usize) -> Vec<f32> {
        let [[x0, x1], [y0, y1]] = self.bounds().map(|r| r.map(|v| v as f32));
        let mut out = Vec::with_capacity(width * height);
        for j in 0..height {
            let y = y1 - (y1 - y0) * (j as f32 + 0.5) / height as f32;
            for i in 0..width {
                let x = x0 + (x1 - x0) * (i as f32 + 0.5) / width as f32;
                out.push(self.value(f64::from(x), f64::from(y)) as f32);
            }
        }
        out
    }

    /// A log scale spanning the values on a 64×64 grid (the same for the CPU and GPU paths).
    pub fn color_scale(&self) -> ColorScale {
        let values = self.grid_values(64, 64);
        let min_value = self.min_value() as f32;
        let max = values.iter().fold(min_value, |m, &v| m.max(v));
        let delta = ((max - min_value) * 1e-6).max(1e-12);
        let lo = values.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        ColorScale {
            min_value,
            delta,
            log_lo: ((lo - min_value).max(0.0) + delta).ln(),
            log_hi: (max - min_value + delta).ln(),
        }
    }
}

/// Viridis as a degree-6 polynomial in t ∈ [0, 1] (a public-domain fit of matplotlib's map), as
/// RGBA8 — the twin of the `colormap` kernel.
pub fn colormap(t: f32) -> [u8; 4] {
    // The same digits as the WGSL twin (`shaders/landscape.wgsl`), rounded to f32 by the compiler.
    #[allow(clippy::excessive_precision)]
    const C: [[f32; 3]; 7] = [
        [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
        [0.1050930431085774, 1.404613529898575, 1.384590162594685],
        [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
        [-4.634230498983486, -5.799100973351585, -19.33244095627987],
        [6.228269936347081, 14.17993336680509, 56.69055260068105],
        [4.776384997670288, -13.74514537774601, -65.35303263337234],
        [-5.435455855934631, 4.645852612178535, 26.3124352495832],
    ];
    let mut rgba = [255u8; 4];
    for (ch, out) in rgba.iter_mut().take(3).enumerate() {
        let v = C.iter().rev().fold(0.0f32, |acc, c| acc * t + c[ch]);
        *out = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    rgba
}

/// RGBA8 pixels of `values` under `scale`: the twin of the `colormap` kernel.
pub fn color_grid(values: &[f32], scale: &ColorScale) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| {
            let t = (((v - scale.min_value).max(0.0) + scale.delta).ln() - scale.log_lo)
                / (scale.log_hi - scale.log_lo);
            colormap(t.clamp(0.0, 1.0))
        })
        .collect()
}

fn point(params: &[Tensor]) -> (f64, f64) {
    let d = params[0].data();
    (f64::from(d[0]), f64::from(d[1]))
}

impl Problem for Landscape {
    fn init_params(&self) -> Vec<Param> {
        let xy = Tensor::vector(vec![self.start[0] as f32, self.start[1] as f32]);
        vec![Param {
            name: "xy".into(),
            value: xy,
            role: ParamRole::Diagonal,
        }]
    }

    fn loss(&self, params: &[Tensor]) -> f64 {
        let (x, y) = point(params);
        self.value(x, y)
    }

    fn gradient(&self, params: &[Tensor], step: u64) -> Vec<Tensor> {
        let (x, y) = point(params);
        let mut g = self.grad(x, y);
        if self.noise_std != [0.0, 0.0] {
            let rng = Philox::new(self.seed);
            let s = stream(StreamKind::GradNoise, step as u32);
            for (i, gi) in g.iter_mut().enumerate() {
                *gi += self.noise_std[i] * f64::from(rng.normal_at(s, i as u64));
            }
        }
        vec![Tensor::vector(vec![g[0] as f32, g[1] as f32])]
    }

    fn observe(&self, params: &[Tensor]) -> Observation {
        let (x, y) = point(params);
        Observation::Point([x, y])
    }

    fn landscape(&self) -> Option<&Landscape> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Landscape> {
        [
            ProblemConfig::Rosenbrock(RosenbrockConfig::default()),
            ProblemConfig::Beale(BealeConfig::default()),
            ProblemConfig::Saddle(SaddleConfig::default()),
            ProblemConfig::Quadratic(QuadraticConfig::default()),
            ProblemConfig::RiverValley(RiverValleyConfig {
                noise_std: [0.0, 0.0],
                ..Default::default()
            }),
        ]
        .iter()
        .map(|c| Landscape::from_config(c, 0).unwrap())
        .collect()
    }

    /// Central differences (h = 1e-5, f64) agree with the hand-written gradients to 1e-6 relative.
    #[test]
    fn gradients_match_finite_differences() {
        let h = 1e-5;
        for l in all() {
            let [[x0, x1], [y0, y1]] = l.bounds();
            for i in 0..7 {
                for j in 0..7 {
                    let x = x0 + (x1 - x0) * (i as f64 + 0.37) / 7.0;
                    let y = y0 + (y1 - y0) * (j as f64 + 0.61) / 7.0;
                    let fd = [
                        (l.value(x + h, y) - l.value(x - h, y)) / (2.0 * h),
                        (l.value(x, y + h) - l.value(x, y - h)) / (2.0 * h),
                    ];
                    let g = l.grad(x, y);
                    for k in 0..2 {
                        let tol = 1e-6 * (1.0 + g[k].abs());
                        assert!(
                            (fd[k] - g[k]).abs() < tol,
                            "{:?} at ({x}, {y}) d{k}: fd {} vs {}",
                            l.kind,
                            fd[k],
                            g[k]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn minimizers_have_the_minimum_value_and_zero_gradient() {
        for l in all() {
            for [x, y] in l.minimizers() {
                assert!(
                    (l.value(x, y) - l.min_value()).abs() < 1e-12,
                    "{:?}",
                    l.kind
                );
                assert!(l.grad(x, y).iter().all(|g| g.abs() < 1e-12), "{:?}", l.kind);
            }
        }
    }

    #[test]
    fn quadratic_has_the_requested_condition_number() {
        let l = Landscape::from_config(&ProblemConfig::Quadratic(QuadraticConfig::default()), 0)
            .unwrap();
        let LandscapeKind::Quadratic { h } = l.kind else {
            unreachable!()
        };
        let (tr, det) = (h[0] + h[3], h[0] * h[3] - h[1] * h[2]);
        let disc = (tr * tr / 4.0 - det).sqrt();
        assert!(((tr / 2.0 + disc) / (tr / 2.0 - disc) - 50.0).abs() < 1e-9);
    }

    /// Noise has the configured standard deviation and depends on the step only.
    #[allow(clippy::needless_range_loop)]
    #[test]
    fn river_valley_noise_statistics() {
        let l =
            Landscape::from_config(&ProblemConfig::RiverValley(RiverValleyConfig::default()), 3)
                .unwrap();
        let p = [Tensor::vector(vec![1.0, 0.2])];
        let exact = l.grad(1.0, 0.2);
        let n = 20_000;
        let mut sq = [0.0; 2];
        for step in 0..n {
            let g = l.gradient(&p, step);
            for k in 0..2 {
                sq[k] += (f64::from(g[0].data()[k]) - exact[k]).powi(2);
            }
        }
        for k in 0..2 {
            let sd = (sq[k] / n as f64).sqrt();
            assert!(
                (sd / l.noise_std[k] - 1.0).abs() < 0.03,
                "component {k}: sd {sd}"
            );
        }
        assert_eq!(l.gradient(&p, 17), l.gradient(&p, 17));
        assert_ne!(l.gradient(&p, 17), l.gradient(&p, 18));
    }

    #[test]
    fn grid_row_zero_is_the_top_and_colors_span_the_map() {
        let l = Landscape::from_config(&ProblemConfig::Rosenbrock(RosenbrockConfig::default()), 0)
            .unwrap();
        let g = l.grid_values(4, 2);
        // cell (0, 0): x = -2 + 4·0.5/4 = -1.5, y = 3 − 4·0.5/2 = 2
        assert!((f64::from(g[0]) - l.value(-1.5, 2.0)).abs() < 1e-4);
        let scale = l.color_scale();
        let px = color_grid(&[scale.min_value, 1e6], &scale);
        assert_eq!(&px[..4], &colormap(0.0));
        assert_eq!(&px[4..], &colormap(1.0));
        // matplotlib's viridis runs from (68, 1, 84) to (253, 231, 37); the fit is within 4.
        for (got, want) in [
            (colormap(0.0), [68, 1, 84]),
            (colormap(0.5), [33, 145, 140]),
            (colormap(1.0), [253, 231, 37]),
        ] {
            assert!(
                got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 4),
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn bad_config_names_the_field() {
        let c = ProblemConfig::Quadratic(QuadraticConfig {
            condition_number: 0.5,
            ..Default::default()
        });
        assert_eq!(
            Landscape::from_config(&c, 0).unwrap_err().to_string(),
            "condition_number = 0.5: must be a finite number >= 1"
        );
    }
}
