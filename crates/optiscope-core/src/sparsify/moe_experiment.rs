//! Spec C2's tiny MoE → dense experiment: a cluster-specialised mixture (`tiny` preset), every
//! scorer's selection, the conversion and its distillation, and the relative errors before and
//! after.
//!
//! The construction (roles fixed for every seed; the seed changes the draws): `d = 16`, 8
//! SwiGLU experts of width 8, top-2 routing; tokens from a mixture of 6 Gaussian clusters
//! (weights .3, .3, .1 × 4; centres of norm 3, noise σ = 0.5); expert e is "at home" in cluster
//! `HOME[e]` = 0, 0, 1, 1, 2, 3, 4, 5 (its router row is that centre plus N(0, 0.1²) noise), and
//! experts 1 and 3 are near-duplicates of 0 and 2 (their weights plus 5 % noise).

use serde::{Deserialize, Serialize};

use super::convert::{
    convert, relative_error, select, Calibration, Conversion, DistillConfig, DistillError,
    Distiller, DiversityConfig, Grouping, Scaling, Scoring,
};
use super::moe::{DeviceMoe, Ffn, Moe};
use crate::config::ConfigError;
use crate::device::{Device, DeviceError};
use crate::rng::{stream, Philox, StreamKind};

/// Experts of the tiny mixture.
pub const EXPERTS: usize = 8;
/// Clusters of its tokens.
pub const CLUSTERS: usize = 6;
/// Each expert's home cluster.
pub const HOME: [usize; EXPERTS] = [0, 0, 1, 1, 2, 3, 4, 5];
/// The near-duplicate pairs (the second is the first plus 5 % noise).
pub const DUPLICATES: [(usize, usize); 2] = [(0, 1), (2, 3)];
/// The clusters' weights.
pub const MIX: [f64; CLUSTERS] = [0.3, 0.3, 0.1, 0.1, 0.1, 0.1];

/// The most values a token set's largest buffer may hold (2²⁴: 64 MiB of f32).
pub const MAX_TINY_VALUES: u64 = 1 << 24;

/// The tiny mixture's sizes (defaults: the spec's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TinyConfig {
    /// Model width.
    pub d: usize,
    /// Each expert's intermediate width.
    pub hidden: usize,
    /// Experts per token.
    pub top_k: usize,
    /// Calibration tokens (scoring and grouping).
    pub calibration: usize,
    /// Held-out tokens (the relative errors).
    pub test: usize,
    /// Distillation tokens.
    pub distill_tokens: usize,
}

impl Default for TinyConfig {
    fn default() -> Self {
        Self {
            d: 16,
            hidden: 8,
            top_k: 2,
            calibration: 2048,
            test: 2048,
            distill_tokens: 8192,
        }
    }
}

impl TinyConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (f, v, lo, hi) in [
            ("d", self.d, 1, 1024),
            ("hidden", self.hidden, 1, 1024),
            ("top_k", self.top_k, 1, EXPERTS),
            ("calibration", self.calibration, 1, 1 << 20),
            ("test", self.test, 1, 1 << 20),
            ("distill_tokens", self.distill_tokens, 1, 1 << 20),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(ConfigError::invalid(
                    f,
                    v,
                    format!("must be in {lo}..={hi}"),
                ));
            }
        }
        // The largest buffers, bounded together (in u64, so nothing overflows on wasm32): every
        // expert's output on a token set, and the gated wide FFN's activations on the
        // distillation tokens.
        let (d, h) = (self.d as u64, self.hidden as u64);
        let e = EXPERTS as u64;
        for (f, n, width) in [
            ("calibration", self.calibration, e * d),
            ("test", self.test, e * d),
            ("distill_tokens", self.distill_tokens, e * h.max(d)),
        ] {
            if (n as u64).saturating_mul(width) > MAX_TINY_VALUES {
                return Err(ConfigError::invalid(
                    f,
                    n,
                    format!("times {width} values per token must stay within {MAX_TINY_VALUES}"),
                ));
            }
        }
        Ok(())
    }

    /// The mixture of `seed`.
    pub fn build(&self, seed: u64) -> Result<Tiny, ConfigError> {
        self.validate()?;
        let (d, h) = (self.d, self.hidden);
        let rng = Philox::new(seed);
        let normals = |id: u32, len: usize, scale: f64| -> Vec<f64> {
            (0..len as u64)
                .map(|i| scale * f64::from(rng.normal_at(stream(StreamKind::Data, id), i)))
                .collect()
        };
        let mut centres = normals(300, CLUSTERS * d, 1.0);
        for c in centres.chunks_mut(d) {
            let norm = c
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
                .max(f64::MIN_POSITIVE);
            c.iter_mut().for_each(|v| *v *= 3.0 / norm);
        }
        let (sd, sh) = (1.0 / (d as f64).sqrt(), 1.0 / (h as f64).sqrt());
        let (g, u, w) = (
            normals(301, EXPERTS * h * d, sd),
            normals(302, EXPERTS * h * d, sd),
            normals(303, EXPERTS * d * h, sh),
        );
        let mut experts: Vec<Ffn> = (0..EXPERTS)
            .map(|e| Ffn {
                d,
                width: h,
                gate: g[e * h * d..(e + 1) * h * d].to_vec(),
                up: u[e * h * d..(e + 1) * h * d].to_vec(),
                down: w[e * d * h..(e + 1) * d * h].to_vec(),
            })
            .collect();
        for (i, &(a, b)) in DUPLICATES.iter().enumerate() {
            let id = 304 + 3 * i as u32;
            let base = experts[a].clone();
            let add = |v: &[f64], noise: Vec<f64>| -> Vec<f64> {
                v.iter().zip(noise).map(|(x, z)| x + z).collect()
            };
            experts[b] = Ffn {
                gate: add(&base.gate, normals(id, h * d, 0.05 * sd)),
                up: add(&base.up, normals(id + 1, h * d, 0.05 * sd)),
                down: add(&base.down, normals(id + 2, d * h, 0.05 * sh)),
                ..base
            };
        }
        let noise = normals(310, EXPERTS * d, 0.1);
        let router: Vec<f64> = (0..EXPERTS * d)
            .map(|i| centres[HOME[i / d] * d + i % d] + noise[i])
            .collect();
        Ok(Tiny {
            moe: Moe {
                d,
                top_k: self.top_k,
                router,
                experts,
            },
            centres,
            seed,
        })
    }
}

/// The tiny mixture and its token distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Tiny {
    /// The teacher.
    pub moe: Moe,
    /// Cluster centres, `CLUSTERS × d`.
    pub centres: Vec<f64>,
    /// The seed it was drawn from (the tokens' draws use it too).
    pub seed: u64,
}

/// Which token set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    /// For scoring and grouping.
    Calibration,
    /// For the relative errors.
    Test,
    /// For the distillation.
    Distill,
}

impl Tiny {
    /// `n` tokens of `set` (`n × d`) and their clusters.
    pub fn sample(&self, set: Tokens, n: usize) -> (Vec<f64>, Vec<usize>) {
        let id = match set {
            Tokens::Calibration => 320,
            Tokens::Test => 322,
            Tokens::Distill => 324,
        };
        let rng = Philox::new(self.seed);
        let d = self.moe.d;
        let mut x = Vec::with_capacity(n * d);
        let mut z = Vec::with_capacity(n);
        for t in 0..n as u64 {
            let u = f64::from(rng.u32_at(stream(StreamKind::Data, id), t)) / 4_294_967_296.0;
            let mut acc = 0.0;
            let mut c = CLUSTERS - 1;
            for (k, w) in MIX.iter().enumerate() {
                acc += w;
                if u < acc {
                    c = k;
                    break;
                }
            }
            z.push(c);
            for j in 0..d as u64 {
                let e = rng.normal_at(stream(StreamKind::Data, id + 1), t * d as u64 + j);
                x.push(self.centres[c * d + j as usize] + 0.5 * f64::from(e));
            }
        }
        (x, z)
    }
}

/// The routing heat map: the mean gate of every expert on the tokens of every cluster,
/// `experts × clusters` (0 for a cluster without tokens).
pub fn routing(cal: &Calibration, clusters: &[usize]) -> Vec<f64> {
    let e = cal.experts;
    let mut sum = vec![0.0; e * CLUSTERS];
    let mut count = [0usize; CLUSTERS];
    for (t, &c) in clusters.iter().enumerate().take(cal.n) {
        count[c] += 1;
        for j in 0..e {
            sum[j * CLUSTERS + c] += cal.gates[t * e + j];
        }
    }
    for j in 0..e {
        for c in 0..CLUSTERS {
            if count[c] > 0 {
                sum[j * CLUSTERS + c] /= count[c] as f64;
            }
        }
    }
    sum
}

/// `optiscope moe`'s experiment: the preset, the conversion's choices and the distillation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MoeConfig {
    /// The tiny mixture's sizes.
    pub tiny: TinyConfig,
    /// Experts kept.
    pub k: usize,
    /// The scorer whose conversion is exported (the others are still run and reported).
    pub scoring: Scoring,
    /// How unselected experts are folded in.
    pub grouping: Grouping,
    /// The scales.
    pub scaling: Scaling,
    /// The diversity-aware scorer's settings.
    pub diversity: DiversityConfig,
    /// The distillation.
    pub distill: DistillConfig,
    /// Seed of the mixture, the tokens, the random scorer and the batches.
    pub seed: u64,
}

impl Default for MoeConfig {
    fn default() -> Self {
        Self {
            tiny: TinyConfig::default(),
            k: 4,
            scoring: Scoring::Diversity,
            grouping: Grouping::None,
            scaling: Scaling::GateMass,
            diversity: DiversityConfig::default(),
            distill: DistillConfig::default(),
            seed: 0,
        }
    }
}

impl MoeConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.tiny.validate()?;
        self.distill.validate()?;
        if !(1..=EXPERTS).contains(&self.k) {
            return Err(ConfigError::invalid(
                "k",
                self.k,
                format!("must be in 1..={EXPERTS} (the mixture's experts)"),
            ));
        }
        if !(self.diversity.epsilon.is_finite() && self.diversity.epsilon > 0.0) {
            return Err(ConfigError::invalid(
                "diversity.epsilon",
                self.diversity.epsilon,
                "must be > 0",
            ));
        }
        if self.diversity.importance == Some(Scoring::Diversity) {
            return Err(ConfigError::invalid(
                "diversity.importance",
                "diversity",
                "must be a scorer with scores",
            ));
        }
        Ok(())
    }
}

/// One scorer's conversion and how well it reproduces the mixture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScorerResult {
    /// The scorer.
    pub scoring: Scoring,
    /// Selected experts, ascending (the concatenation order).
    pub selected: Vec<usize>,
    /// Their scales.
    pub scales: Vec<f64>,
    /// The relative error `‖y − ŷ‖²/‖y‖²` on the held-out tokens before distillation.
    pub pre_distillation: f64,
    /// The same selection and grouping under each scaling, before distillation.
    pub pre_distillation_by_scaling: std::collections::BTreeMap<String, f64>,
    /// After distillation.
    pub post_distillation: f64,
    /// The distillation loss of every step.
    #[serde(skip)]
    pub losses: Vec<f64>,
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct MoeReport {
    /// The teacher and its tokens' distribution.
    pub tiny: Tiny,
    /// The routing heat map on the calibration tokens (`experts × clusters`).
    pub routing: Vec<f64>,
    /// Every scorer's result, in [`Scoring::ALL`]'s order.
    pub scorers: Vec<ScorerResult>,
    /// The configured scorer's conversion (before distillation).
    pub conversion: Conversion,
    /// Its dense FFN after distillation.
    pub distilled: Ffn,
}

/// A run failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MoeError {
    /// A setting is not allowed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The device failed.
    #[error("device: {0}")]
    Device(#[from] DeviceError),
    /// The distillation failed.
    #[error(transparent)]
    Distill(#[from] DistillError),
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

impl MoeConfig {
    /// Runs every scorer (the configured grouping and scaling for each), distilling each
    /// conversion on `dev`; `each(scoring, step, loss)` sees every distillation step.
    pub fn run<D: Device + 'static>(
        &self,
        dev: &mut D,
        each: &mut dyn FnMut(Scoring, usize, f64),
    ) -> Result<MoeReport, MoeError> {
        let mut run = MoeRun::new(dev, self)?;
        while let Some((scoring, step, loss)) = run.step(dev)? {
            each(scoring, step, loss);
        }
        run.report()
    }
}

/// [`MoeConfig::run`] one distillation step at a time (the explorer steps it between frames):
/// everything before distillation — the mixture, the tokens, every scorer's selection,
/// conversion and pre-distillation errors — is done by [`MoeRun::new`].
pub struct MoeRun<D: Device> {
    cfg: MoeConfig,
    tiny: Tiny,
    routing: Vec<f64>,
    xt: Vec<f64>,
    yt: Vec<f64>,
    xd: D::Buf,
    yd: D::Buf,
    results: Vec<ScorerResult>,
    conversions: Vec<Conversion>,
    distilled: Vec<Option<Ffn>>,
    current: Option<(usize, Distiller<D>)>,
}

impl<D: Device + 'static> MoeRun<D> {
    /// The mixture, its tokens and every scorer's conversion; the teacher's outputs on the
    /// distillation tokens by the mixture's device forward.
    pub fn new(dev: &mut D, cfg: &MoeConfig) -> Result<Self, MoeError> {
        cfg.validate()?;
        let tiny = cfg.tiny.build(cfg.seed)?;
        let moe = &tiny.moe;
        let (xc, zc) = tiny.sample(Tokens::Calibration, cfg.tiny.calibration);
        let (xt, _) = tiny.sample(Tokens::Test, cfg.tiny.test);
        let (xd, _) = tiny.sample(Tokens::Distill, cfg.tiny.distill_tokens);
        let cal = Calibration::new(moe, &xc);
        let yt = moe.forward(&xt);
        let dm = DeviceMoe::upload(dev, moe);
        let xdb = dev.upload(&to_f32(&xd));
        let ydb = dm.forward(dev, &xdb, cfg.tiny.distill_tokens).ffn.y;
        let mut results = Vec::with_capacity(Scoring::ALL.len());
        let mut conversions = Vec::with_capacity(Scoring::ALL.len());
        for scoring in Scoring::ALL {
            let selected = select(moe, &cal, scoring, cfg.k, cfg.seed, &cfg.diversity);
            let mut by_scaling = std::collections::BTreeMap::new();
            for s in Scaling::ALL {
                let c = convert(moe, &cal, &selected, cfg.grouping, s);
                by_scaling.insert(s.name().to_string(), relative_error(&c.dense, &xt, &yt));
            }
            let conv = convert(moe, &cal, &selected, cfg.grouping, cfg.scaling);
            results.push(ScorerResult {
                scoring,
                selected,
                scales: conv.scales.clone(),
                pre_distillation: relative_error(&conv.dense, &xt, &yt),
                pre_distillation_by_scaling: by_scaling,
                post_distillation: f64::NAN,
                losses: Vec::with_capacity(cfg.distill.steps),
            });
            conversions.push(conv);
        }
        Ok(Self {
            routing: routing(&cal, &zc),
            cfg: cfg.clone(),
            tiny,
            xt,
            yt,
            xd: xdb,
            yd: ydb,
            distilled: vec![None; results.len()],
            results,
            conversions,
            current: None,
        })
    }

    /// The next distillation step (scorers in [`Scoring::ALL`]'s order, each to the end):
    /// `(scoring, its step from 1, the batch's loss)`, or None when every scorer is done.
    pub fn step(&mut self, dev: &mut D) -> Result<Option<(Scoring, usize, f64)>, MoeError> {
        if self.current.is_none() {
            let Some(next) = self.distilled.iter().position(Option::is_none) else {
                return Ok(None);
            };
            let (xb, yb) = (dev.duplicate(&self.xd), dev.duplicate(&self.yd));
            let kd = Distiller::new(
                dev,
                &self.conversions[next].dense,
                xb,
                yb,
                self.cfg.tiny.distill_tokens,
                &self.cfg.distill,
                self.cfg.seed,
            )?;
            self.current = Some((next, kd));
        }
        let Some((i, kd)) = &mut self.current else {
            unreachable!("a distillation was just started")
        };
        let i = *i;
        let loss = kd.step(dev)?;
        self.results[i].losses.push(loss);
        let step = self.results[i].losses.len();
        if step >= self.cfg.distill.steps {
            let ffn = kd.weights(dev)?;
            self.results[i].post_distillation = relative_error(&ffn, &self.xt, &self.yt);
            self.distilled[i] = Some(ffn);
            self.current = None;
        }
        Ok(Some((self.results[i].scoring, step, loss)))
    }

    /// Distillation steps taken, over every scorer.
    pub fn steps(&self) -> usize {
        self.results.iter().map(|r| r.losses.len()).sum()
    }

    /// Distillation steps of the whole run.
    pub fn total_steps(&self) -> usize {
        self.results.len() * self.cfg.distill.steps
    }

    /// Whether every scorer is distilled.
    pub fn finished(&self) -> bool {
        self.distilled.iter().all(Option::is_some)
    }

    /// The mixture.
    pub fn tiny(&self) -> &Tiny {
        &self.tiny
    }

    /// The routing heat map on the calibration tokens (`experts × clusters`).
    pub fn routing(&self) -> &[f64] {
        &self.routing
    }

    /// Every scorer's result so far (post-distillation NaN until its distillation is done).
    pub fn results(&self) -> &[ScorerResult] {
        &self.results
    }

    /// The report of a finished run (an error before).
    pub fn report(self) -> Result<MoeReport, MoeError> {
        let k = Scoring::ALL
            .iter()
            .position(|s| *s == self.cfg.scoring)
            .unwrap_or_else(|| unreachable!("every scorer is run"));
        let (Some(distilled), Some(conversion)) =
            (self.distilled[k].clone(), self.conversions.get(k).cloned())
        else {
            return Err(MoeError::Config(ConfigError::invalid(
                "run",
                "unfinished",
                "the distillation has not finished",
            )));
        };
        Ok(MoeReport {
            tiny: self.tiny,
            routing: self.routing,
            scorers: self.results,
            conversion,
            distilled,
        })
    }
}

/// The Hugging Face (Qwen-MoE / Mixtral) names and shapes of the teacher's tensors:
/// `mlp.gate.weight` `[E, d]`, `mlp.experts.{e}.gate_proj.weight` `[h, d]`,
/// `mlp.experts.{e}.up_proj.weight` `[h, d]`, `mlp.experts.{e}.down_proj.weight` `[d, h]`.
pub fn teacher_tensors(moe: &Moe) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let (d, h, e) = (moe.d, moe.hidden(), moe.n_experts());
    let mut out = vec![(
        "mlp.gate.weight".to_string(),
        vec![e, d],
        to_f32(&moe.router),
    )];
    for (j, f) in moe.experts.iter().enumerate() {
        out.push((
            format!("mlp.experts.{j}.gate_proj.weight"),
            vec![h, d],
            to_f32(&f.gate),
        ));
        out.push((
            format!("mlp.experts.{j}.up_proj.weight"),
            vec![h, d],
            to_f32(&f.up),
        ));
        out.push((
            format!("mlp.experts.{j}.down_proj.weight"),
            vec![d, h],
            to_f32(&f.down),
        ));
    }
    out
}

/// The dense FFN's names and shapes: `mlp.gate_proj.weight` `[k·h, d]`, `mlp.up_proj.weight`
/// `[k·h, d]`, `mlp.down_proj.weight` `[d, k·h]` (scales folded into the down projection).
pub fn dense_tensors(f: &Ffn) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    vec![
        (
            "mlp.gate_proj.weight".into(),
            vec![f.width, f.d],
            to_f32(&f.gate),
        ),
        (
            "mlp.up_proj.weight".into(),
            vec![f.width, f.d],
            to_f32(&f.up),
        ),
        (
            "mlp.down_proj.weight".into(),
            vec![f.d, f.width],
            to_f32(&f.down),
        ),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The construction's roles hold for every seed: duplicates within 5 % (relative Frobenius
    /// distance about 0.05), router rows nearest their home centre, tokens mostly routed home.
    #[test]
    fn tiny_roles_hold_for_seeds() {
        for seed in 0..5 {
            let t = TinyConfig::default().build(seed).unwrap();
            let m = &t.moe;
            for &(a, b) in &DUPLICATES {
                let (ea, eb) = (&m.experts[a], &m.experts[b]);
                let num: f64 = ea
                    .gate
                    .iter()
                    .zip(&eb.gate)
                    .map(|(x, y)| (x - y).powi(2))
                    .sum();
                let den: f64 = ea.gate.iter().map(|x| x * x).sum();
                let rel = (num / den).sqrt();
                assert!(
                    (0.02..0.1).contains(&rel),
                    "seed {seed}: duplicate distance {rel}"
                );
            }
            let (x, z) = t.sample(Tokens::Calibration, 2048);
            let share0 = z.iter().filter(|&&c| c == 0).count() as f64 / 2048.0;
            assert!((share0 - 0.3).abs() < 0.04, "cluster 0 share {share0}");
            let cal = Calibration::new(m, &x);
            let heat = routing(&cal, &z);
            // Each cluster's gate mass is mostly on its home experts.
            for c in 0..CLUSTERS {
                let home: f64 = (0..EXPERTS)
                    .filter(|&e| HOME[e] == c)
                    .map(|e| heat[e * CLUSTERS + c])
                    .sum();
                assert!(home > 0.4, "seed {seed} cluster {c}: home gate mass {home}");
            }
            // The token sets differ.
            let (xt, _) = t.sample(Tokens::Test, 4);
            assert_ne!(&x[..4 * m.d], &xt[..]);
        }
        let a = TinyConfig::default().build(0).unwrap();
        let b = TinyConfig::default().build(1).unwrap();
        assert_ne!(a.moe.router, b.moe.router);
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut c = MoeConfig {
            k: 9,
            ..MoeConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("k"));
        c.k = 4;
        c.diversity.epsilon = 0.0;
        assert!(c.validate().is_err());
        c.diversity.epsilon = 1e-3;
        c.tiny.top_k = 0;
        assert!(c.validate().is_err());
        c.tiny.top_k = 2;
        c.tiny.d = 1024;
        c.tiny.distill_tokens = 1 << 20;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("distill_tokens"), "{e}");
        c.tiny = TinyConfig::default();
        assert!(c.validate().is_ok());
        let j: Result<MoeConfig, _> = serde_json::from_str(r#"{"scoring": "best"}"#);
        assert!(j.is_err());
        let j: MoeConfig = serde_json::from_str(r#"{"scoring": "reap", "k": 2}"#).unwrap();
        assert_eq!((j.scoring, j.k), (Scoring::Reap, 2));
    }

    /// The exported names and shapes are the Hugging Face Qwen-MoE / Mixtral ones.
    #[test]
    fn tensor_names() {
        let t = TinyConfig::default().build(0).unwrap();
        let names = teacher_tensors(&t.moe);
        assert_eq!(names.len(), 1 + 3 * EXPERTS);
        assert_eq!(
            (names[0].0.as_str(), names[0].1.clone()),
            ("mlp.gate.weight", vec![8, 16])
        );
        assert_eq!(names[1].0, "mlp.experts.0.gate_proj.weight");
        assert_eq!(names[3].1, vec![16, 8]);
        assert!(names
            .iter()
            .all(|(_, s, v)| s.iter().product::<usize>() == v.len()));
        let all: Vec<(&Ffn, f64)> = t.moe.experts[..4].iter().map(|f| (f, 0.5)).collect();
        let dense = dense_tensors(&Ffn::concatenate(&all));
        assert_eq!(dense[0].1, vec![32, 16]);
        assert_eq!(dense[2].0, "mlp.down_proj.weight");
        assert_eq!(dense[2].1, vec![16, 32]);
    }
}
