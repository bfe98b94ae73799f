//! The degree-corrected stochastic block model of spec C1's synthetic analogue: `n` nodes in `c`
//! equal communities, degree propensities `θ_i ~ Pareto(α) + 1` normalised to mean 1, edges
//! independently with probability `min(1, p_{y_i y_j} θ_i θ_j)` (`p_in` within a community,
//! `p_out` across), features `μ_{y_i} + N(0, I)` with community means `μ_y ~ N(0, mean_scale² I)`,
//! and `train_per_class` labelled nodes per community (the rest are the test set). Every draw
//! comes from the counter-based generator, addressed by the seed.

use serde::{Deserialize, Serialize};

use super::graph::Graph;
use crate::config::ConfigError;
use crate::rng::{stream, Philox, StreamKind};

/// The generator's settings (defaults: the spec's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SbmConfig {
    /// Nodes.
    pub n: usize,
    /// Communities (= classes).
    pub communities: usize,
    /// Edge probability within a community (before the propensities).
    pub p_in: f64,
    /// Across communities.
    pub p_out: f64,
    /// The Pareto shape α of the propensities.
    pub pareto_alpha: f64,
    /// Feature dimension.
    pub features: usize,
    /// Standard deviation of the community means.
    pub mean_scale: f64,
    /// Labelled (training) nodes per community.
    pub train_per_class: usize,
}

impl Default for SbmConfig {
    fn default() -> Self {
        Self {
            n: 300,
            communities: 3,
            p_in: 0.06,
            p_out: 0.012,
            pareto_alpha: 2.5,
            features: 16,
            mean_scale: 0.45,
            train_per_class: 15,
        }
    }
}

/// A generated graph with its node features and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Sbm {
    /// The graph (no self-loops).
    pub graph: Graph,
    /// `[n][features]` row-major.
    pub x: Vec<f32>,
    /// Community of every node.
    pub y: Vec<u32>,
    /// Whether a node is labelled for training.
    pub train: Vec<bool>,
}

/// The most nodes the generator makes (it draws all n² pairs).
pub const MAX_SBM_NODES: usize = 20_000;

impl SbmConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(2..=MAX_SBM_NODES).contains(&self.n) {
            return Err(ConfigError::invalid(
                "n",
                self.n,
                format!("must be in 2..={MAX_SBM_NODES}"),
            ));
        }
        if !(2..=self.n).contains(&self.communities) || self.n % self.communities != 0 {
            return Err(ConfigError::invalid(
                "communities",
                self.communities,
                "must be at least 2 and divide n",
            ));
        }
        for (f, v) in [("p_in", self.p_in), ("p_out", self.p_out)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(ConfigError::invalid(
                    f,
                    v,
                    "must be a probability in [0, 1]",
                ));
            }
        }
        if !(self.pareto_alpha.is_finite() && self.pareto_alpha > 0.0) {
            return Err(ConfigError::invalid(
                "pareto_alpha",
                self.pareto_alpha,
                "must be > 0",
            ));
        }
        if !(1..=1024).contains(&self.features) {
            return Err(ConfigError::invalid(
                "features",
                self.features,
                "must be in 1..=1024",
            ));
        }
        if !(self.mean_scale.is_finite() && self.mean_scale >= 0.0) {
            return Err(ConfigError::invalid(
                "mean_scale",
                self.mean_scale,
                "must be >= 0",
            ));
        }
        let per = self.n / self.communities;
        if !(1..per).contains(&self.train_per_class) {
            return Err(ConfigError::invalid(
                "train_per_class",
                self.train_per_class,
                format!("must be in 1..{per} (a community's size)"),
            ));
        }
        Ok(())
    }

    /// The graph of `seed`.
    pub fn generate(&self, seed: u64) -> Result<Sbm, ConfigError> {
        self.validate()?;
        let rng = Philox::new(seed);
        let u = |id: u32, i: u64| {
            f64::from(rng.u32_at(stream(StreamKind::Data, id), i)) / 4_294_967_296.0
        };
        let (n, c) = (self.n, self.communities);
        let per = n / c;
        let y: Vec<u32> = (0..n).map(|i| (i / per) as u32).collect();
        // Pareto(α) + 1 (numpy's Lomax shifted by one), then mean 1.
        let mut theta: Vec<f64> = (0..n as u64)
            .map(|i| (1.0 - u(100, i)).powf(-1.0 / self.pareto_alpha))
            .collect();
        let mean = theta.iter().sum::<f64>() / n as f64;
        theta.iter_mut().for_each(|t| *t /= mean);
        let mut edges = vec![];
        for i in 0..n {
            for j in i + 1..n {
                let p = if y[i] == y[j] { self.p_in } else { self.p_out } * theta[i] * theta[j];
                if u(101, (i * n + j) as u64) < p.min(1.0) {
                    edges.push((i as u32, j as u32));
                }
            }
        }
        let graph =
            Graph::new(n, edges).map_err(|e| ConfigError::invalid("n", n, e.to_string()))?;
        let f = self.features;
        let means: Vec<f64> = (0..(c * f) as u64)
            .map(|i| self.mean_scale * f64::from(rng.normal_at(stream(StreamKind::Data, 102), i)))
            .collect();
        let x = (0..n * f)
            .map(|k| {
                let (i, j) = (k / f, k % f);
                (means[y[i] as usize * f + j]
                    + f64::from(rng.normal_at(stream(StreamKind::Data, 103), k as u64)))
                    as f32
            })
            .collect();
        // train_per_class nodes of each community: the smallest keys of a random permutation.
        let mut train = vec![false; n];
        for k in 0..c {
            let mut members: Vec<(u32, usize)> = (k * per..(k + 1) * per)
                .map(|i| (rng.u32_at(stream(StreamKind::Data, 104), i as u64), i))
                .collect();
            members.sort_unstable();
            for &(_, i) in &members[..self.train_per_class] {
                train[i] = true;
            }
        }
        Ok(Sbm { graph, x, y, train })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_sbm_has_its_shape_and_repeats() {
        let cfg = SbmConfig::default();
        let a = cfg.generate(0).unwrap();
        assert_eq!(a, cfg.generate(0).unwrap());
        assert_ne!(a.graph.edges, cfg.generate(1).unwrap().graph.edges);
        assert_eq!(a.train.iter().filter(|t| **t).count(), 45);
        for k in 0..3 {
            let labelled = (0..300).filter(|&i| a.train[i] && a.y[i] == k).count();
            assert_eq!(labelled, 15);
        }
        // Expected edges ≈ Σ_{i<j} p_ij (E θ = 1): 3·C(100, 2)·0.06 = 891 within and
        // 30 000·0.012 = 360 across, ≈ 1250 (less where min(1, ·) caps a pair); 71 % within.
        let e = a.graph.edges.len();
        assert!((900..1700).contains(&e), "{e} edges");
        let within = a
            .graph
            .edges
            .iter()
            .filter(|&&(u, v)| a.y[u as usize] == a.y[v as usize])
            .count();
        assert!(within as f64 > 0.6 * e as f64, "{within} of {e} within");
        let mut bad = cfg.clone();
        bad.communities = 7;
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("communities"));
    }
}
