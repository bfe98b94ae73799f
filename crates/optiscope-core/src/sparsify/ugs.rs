//! UGS, the unified graph sparsification of Chen et al. (ICML 2021), as spec C1's iterative
//! baseline — its graph half: a trainable mask `m_e` on every edge multiplies the normalised
//! adjacency's two entries of that edge (self-loops are never masked, as in TEDDY), trained with
//! the weights by the same optimizer on `CE + γ ‖m‖₁` (the sub-gradient `γ sign(m)` added to the
//! mask gradient); after each round the `edge_rate` share of the remaining edges with the
//! smallest `|m_e|` is removed, the weights are rewound to their initialisation, the masks of
//! the survivors reset to 1, and the next round trains on the pruned graph (renormalised). The
//! last round before each level removes exactly what reaches `⌊E·p⌋`, so the levels are nested
//! and their counts exact. (So the levels asked for shape the trajectory: the mask at 50 % is
//! not the same when the run also stops at 30 %.)
//!
//! The weight side is not UGS's own here: the tickets are retrained like every other method's
//! (the same ℓ0 projection of the weights and the same distillation, when asked for), so the
//! table compares how the edges were chosen. Choices [R]: the optimizer of the weights also
//! steps the masks (as UGS's code adds them to the model's parameters); no dropout while the
//! masks are learned; `γ = 1e-6` (TEDDY's README runs UGS with λ_a = 1e-6).
//!
//! The adjacency gradient comes from the device ([`forward_backward_adjacency`]: two sampled
//! dense-dense products); gathering it per edge, the sub-gradient and the masked values are a
//! few thousand numbers on the host per step.

use serde::{Deserialize, Serialize};

use super::experiment::{init_params, GcnTrainConfig, PruneError};
use super::gcn::{forward_backward_adjacency, GcnData};
use super::graph::Graph;
use super::sbm::Sbm;
use crate::config::ConfigError;
use crate::device::Device;
use crate::tensor::{Param, Tensor};

/// UGS's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UgsConfig {
    /// The share of the remaining edges removed after each round (UGS: 0.05).
    pub edge_rate: f64,
    /// γ of the masks' ℓ1 penalty.
    pub edge_l1: f64,
    /// Epochs per round (0: the training's epochs).
    pub epochs_per_round: usize,
}

impl Default for UgsConfig {
    fn default() -> Self {
        Self {
            edge_rate: 0.05,
            edge_l1: 1e-6,
            epochs_per_round: 0,
        }
    }
}

impl UgsConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.edge_rate > 0.0 && self.edge_rate <= 1.0) {
            return Err(ConfigError::invalid(
                "ugs.edge_rate",
                self.edge_rate,
                "must be in (0, 1]",
            ));
        }
        if !(self.edge_l1.is_finite() && self.edge_l1 >= 0.0) {
            return Err(ConfigError::invalid(
                "ugs.edge_l1",
                self.edge_l1,
                "must be >= 0",
            ));
        }
        if self.epochs_per_round > 100_000 {
            return Err(ConfigError::invalid(
                "ugs.epochs_per_round",
                self.epochs_per_round,
                "must be in 0..=100000",
            ));
        }
        Ok(())
    }
}

/// The edges (indices into `sub`'s edges) of `sub`'s normalised adjacency's stored entries, None
/// for self-loops.
fn entry_edges(sub: &Graph, indptr: &[u32], indices: &[u32]) -> Vec<Option<usize>> {
    let mut id = std::collections::HashMap::with_capacity(sub.edges.len());
    for (k, &(u, v)) in sub.edges.iter().enumerate() {
        id.insert((u.min(v), u.max(v)), k);
    }
    let mut out = Vec::with_capacity(indices.len());
    for r in 0..sub.n {
        for &c in &indices[indptr[r] as usize..indptr[r + 1] as usize] {
            let r32 = r as u32;
            out.push(if c == r32 {
                None
            } else {
                id.get(&(r32.min(c), r32.max(c))).copied()
            });
        }
    }
    out
}

/// One UGS round on the graph `sub`: the learned `|m_e|` of each of its edges.
fn train_round<D: Device + 'static>(
    dev: &mut D,
    data: &Sbm,
    sub: &Graph,
    train: &GcnTrainConfig,
    ugs: &UgsConfig,
    seed: u64,
) -> Result<Vec<f64>, PruneError> {
    let c = data.y.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut gd = GcnData::new(dev, sub, &data.x, &data.y, &data.train, c)?;
    let (ip, ix, base) = sub.normalized_adjacency();
    let owner = entry_edges(sub, &ip, &ix);
    let e = sub.edges.len();
    let h = train.hidden;
    let [w1, w2] = init_params(seed, gd.f, h, c)?;
    let mask = Param::new(
        "edge_mask",
        Tensor::new(vec![e.max(1)], vec![1.0; e.max(1)])
            .map_err(|err| ConfigError::invalid("graph", e, err.to_string()))?,
    );
    let params = [w1, w2, mask];
    let mut exec = train.optimizer.build_on(dev, &params)?;
    let mut w: Vec<D::Buf> = params.iter().map(|p| dev.upload(p.value.data())).collect();
    let epochs = if ugs.epochs_per_round == 0 {
        train.epochs
    } else {
        ugs.epochs_per_round
    };
    let mut values = base.clone();
    let mut grad = vec![0.0f32; e.max(1)];
    for _ in 0..epochs {
        let m = dev.download(&w[2])?;
        for ((v, b), o) in values.iter_mut().zip(&base).zip(&owner) {
            *v = match o {
                Some(k) => b * m[*k],
                None => *b,
            };
        }
        gd.set_adjacency_values(dev, &values)?;
        let g = forward_backward_adjacency(dev, &gd, &w[0], &w[1], h, None)?;
        let ga = match &g.adjacency {
            Some(a) => dev.download(a)?,
            None => unreachable!("asked for the adjacency gradient"),
        };
        // ∂L/∂m_e = Σ over the edge's two entries of Â_k · ∂L/∂Â_k, plus γ sign(m_e).
        grad.iter_mut().zip(&m).for_each(|(g, mk)| {
            let sign = if *mk == 0.0 {
                0.0
            } else {
                f64::from(mk.signum())
            };
            *g = (ugs.edge_l1 * sign) as f32;
        });
        for ((gk, b), o) in ga.iter().zip(&base).zip(&owner) {
            if let Some(k) = o {
                grad[*k] += b * gk;
            }
        }
        let gm = dev.upload(&grad);
        exec.step(dev, &mut w, &[&g.w1, &g.w2, &gm])?;
    }
    let m = dev.download(&w[2])?;
    Ok(m.iter().take(e).map(|v| f64::from(v.abs())).collect())
}

/// UGS's nested keep-masks over `data.graph`'s edges at `fractions` of the edges removed (in the
/// order given), learned round by round on `dev`.
pub fn ugs_masks<D: Device + 'static>(
    dev: &mut D,
    data: &Sbm,
    train: &GcnTrainConfig,
    ugs: &UgsConfig,
    fractions: &[f64],
    seed: u64,
) -> Result<Vec<Vec<bool>>, PruneError> {
    ugs.validate()?;
    let g = &data.graph;
    let total = g.edges.len();
    let target = |p: f64| ((total as f64) * p.clamp(0.0, 1.0)).floor() as usize;
    let mut targets: Vec<usize> = fractions.iter().map(|&p| target(p)).collect();
    targets.sort_unstable();
    targets.dedup();
    let plain = GcnTrainConfig {
        weight_sparsity: 0.0,
        distill: 0.0,
        dropout: 0.0,
        ..train.clone()
    };
    let mut alive = vec![true; total];
    let mut found: Vec<(usize, Vec<bool>)> = vec![];
    for &t in &targets {
        loop {
            let removed = alive.iter().filter(|a| !**a).count();
            if removed >= t {
                break;
            }
            let ids: Vec<usize> = (0..total).filter(|&i| alive[i]).collect();
            let sub = g.subgraph(&alive);
            let score = train_round(dev, data, &sub, &plain, ugs, seed)?;
            let step = ((ids.len() as f64 * ugs.edge_rate).ceil() as usize)
                .max(1)
                .min(t - removed);
            let mut order: Vec<usize> = (0..ids.len()).collect();
            order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
            for &k in &order[..step] {
                alive[ids[k]] = false;
            }
        }
        found.push((t, alive.clone()));
    }
    Ok(fractions
        .iter()
        .map(|&p| {
            let t = target(p);
            found
                .iter()
                .find(|(ft, _)| *ft == t)
                .map_or_else(|| vec![true; total], |(_, m)| m.clone())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::device::Cpu;
    use crate::sparsify::sbm::SbmConfig;

    /// Exact, nested counts at every level (given out of order), self-loops untouched, and the
    /// learned masks not an arbitrary order: the first round's smallest masks differ from the
    /// input order's first edges.
    #[test]
    fn masks_are_nested_and_exact() {
        let data = SbmConfig {
            n: 90,
            ..SbmConfig::default()
        }
        .generate(1)
        .unwrap();
        let train = GcnTrainConfig {
            epochs: 30,
            ..GcnTrainConfig::default()
        };
        let ugs = UgsConfig {
            edge_rate: 0.2,
            ..UgsConfig::default()
        };
        let fr = [0.5, 0.1, 0.3];
        let masks = ugs_masks(&mut Cpu, &data, &train, &ugs, &fr, 0).unwrap();
        let e = data.graph.edges.len();
        for (p, m) in fr.iter().zip(&masks) {
            let removed = m.iter().filter(|k| !**k).count();
            assert_eq!(removed, ((e as f64) * p).floor() as usize, "level {p}");
        }
        let (m10, m30, m50) = (&masks[1], &masks[2], &masks[0]);
        for i in 0..e {
            // An edge removed at a level stays removed at every higher one.
            assert!(m10[i] || !m30[i], "nested 10 % ⊂ 30 %");
            assert!(m30[i] || !m50[i], "nested 30 % ⊂ 50 %");
        }
        let first_removed: Vec<usize> = (0..e).filter(|&i| !m10[i]).collect();
        let prefix: Vec<usize> = (0..first_removed.len()).collect();
        assert_ne!(first_removed, prefix);
    }

    #[test]
    fn bad_settings_are_refused() {
        let u = UgsConfig {
            edge_rate: 0.0,
            ..UgsConfig::default()
        };
        assert!(u.validate().unwrap_err().to_string().contains("edge_rate"));
    }
}
