//! Training the GCN on a (pruned) graph, and spec C1's edge-sparsification experiment: TEDDY,
//! random and reverse (highest score first) pruning at several fractions of edges removed, each
//! trained from the same seed, with the ℓ0 projection of the weights after every step when a
//! weight sparsity is asked for.

use serde::{Deserialize, Serialize};

use super::gcn::{forward_backward, logits, Distill, GcnData};
use super::sbm::{Sbm, SbmConfig};
use super::teddy::{edge_scores, l0_project, nested_masks, prune_order};
use crate::config::ConfigError;
use crate::device::{Device, DeviceError, Mat};
use crate::optim::{OptimError, OptimizerConfig};
use crate::rng::{stream, Philox, StreamKind};
use crate::tensor::{Param, Tensor};

/// How the edges to remove are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeMethod {
    /// TEDDY: the lowest degree-based scores first.
    Teddy,
    /// Uniformly at random.
    Random,
    /// The highest TEDDY scores first (the spec's "reverse" control).
    Reverse,
    /// UGS: learned edge masks, pruned iteratively by magnitude with the weights rewound
    /// ([`super::ugs`]).
    Ugs,
}

impl EdgeMethod {
    /// The one-shot methods (an order from the graph alone), in the order of the table: the
    /// default comparison.
    pub const ONE_SHOT: [Self; 3] = [Self::Teddy, Self::Random, Self::Reverse];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Teddy => "teddy",
            Self::Random => "random",
            Self::Reverse => "reverse",
            Self::Ugs => "ugs",
        }
    }
}

/// The GCN's training settings (defaults: the spec's synthetic experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcnTrainConfig {
    /// Hidden width.
    pub hidden: usize,
    /// Full-batch epochs.
    pub epochs: usize,
    /// The optimizer (Adam, lr 0.01, L2 5e-4).
    pub optimizer: OptimizerConfig,
    /// Dropout on the hidden layer while training.
    pub dropout: f64,
    /// The fraction of weight entries removed by the ℓ0 projection after every step (0: dense).
    pub weight_sparsity: f64,
    /// λ of the logit distillation from the model trained on the whole graph (0: none); the
    /// spec's experiment uses 10.
    pub distill: f64,
}

impl Default for GcnTrainConfig {
    fn default() -> Self {
        let mut optimizer =
            OptimizerConfig::default_for("adam").unwrap_or_else(|| unreachable!("adam exists"));
        let _ = optimizer.set_field("lr", serde_json::json!(0.01));
        let _ = optimizer.set_field("weight_decay", serde_json::json!(5e-4));
        Self {
            hidden: 16,
            epochs: 200,
            optimizer,
            dropout: 0.0,
            weight_sparsity: 0.0,
            distill: 0.0,
        }
    }
}

impl GcnTrainConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.optimizer
            .validate_first_order("optimizer", "needs a first-order optimizer")?;
        if !(1..=4096).contains(&self.hidden) {
            return Err(ConfigError::invalid(
                "hidden",
                self.hidden,
                "must be in 1..=4096",
            ));
        }
        if !(1..=100_000).contains(&self.epochs) {
            return Err(ConfigError::invalid(
                "epochs",
                self.epochs,
                "must be in 1..=100000",
            ));
        }
        for (f, v) in [
            ("dropout", self.dropout),
            ("weight_sparsity", self.weight_sparsity),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(ConfigError::invalid(f, v, "must be in [0, 1)"));
            }
        }
        Ok(())
    }
}

/// A training run failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PruneError {
    /// A field is not allowed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The device failed.
    #[error("device: {0}")]
    Device(#[from] DeviceError),
    /// The optimizer refused a step.
    #[error("optimizer: {0}")]
    Optim(#[from] OptimError),
}

/// What one training run reached.
#[derive(Debug, Clone, PartialEq)]
pub struct GcnRun {
    /// Accuracy on the unlabelled (test) nodes at the end.
    pub test_accuracy: f64,
    /// The training loss of every epoch.
    pub losses: Vec<f64>,
    /// The share of weight entries that are exactly zero at the end.
    pub weight_zeros: f64,
    /// The softmax outputs of every node at the end (`n × c`): a teacher for distillation.
    pub probs: Vec<f32>,
}

/// Trains the GCN on `data`'s graph `graph` (pruned or not) from `seed`'s initialisation;
/// with `teacher` (`n × c` probabilities) and `cfg.distill > 0`, distilling from it.
pub fn train_gcn<D: Device + 'static>(
    dev: &mut D,
    data: &Sbm,
    graph: &super::graph::Graph,
    cfg: &GcnTrainConfig,
    seed: u64,
    teacher: Option<&[f32]>,
) -> Result<GcnRun, PruneError> {
    let mut t = GcnTraining::new(dev, data, graph, cfg, seed, teacher)?;
    while !t.finished() {
        t.epoch(dev)?;
    }
    t.finish(dev, data)
}

/// A GCN training one epoch at a time (what [`train_gcn`] runs to the end; the explorer steps
/// it between frames).
pub struct GcnTraining<D: Device> {
    gd: GcnData<D>,
    exec: Box<dyn crate::optim::Executor<D>>,
    w: Vec<D::Buf>,
    teacher: Option<D::Buf>,
    cfg: GcnTrainConfig,
    rng: Philox,
    losses: Vec<f64>,
}

impl<D: Device + 'static> GcnTraining<D> {
    /// Uploads the graph and the initial weights (see [`train_gcn`]).
    pub fn new(
        dev: &mut D,
        data: &Sbm,
        graph: &super::graph::Graph,
        cfg: &GcnTrainConfig,
        seed: u64,
        teacher: Option<&[f32]>,
    ) -> Result<Self, PruneError> {
        cfg.validate()?;
        let c = data.y.iter().copied().max().map_or(0, |m| m as usize + 1);
        let gd = GcnData::new(dev, graph, &data.x, &data.y, &data.train, c)?;
        let n = gd.n;
        let params = init_params(seed, gd.f, cfg.hidden, c)?;
        let exec = cfg.optimizer.build_on(dev, &params)?;
        let w: Vec<D::Buf> = params.iter().map(|p| dev.upload(p.value.data())).collect();
        let teacher = match teacher {
            Some(t) if cfg.distill > 0.0 => {
                if t.len() != n * c {
                    return Err(ConfigError::invalid(
                        "teacher",
                        format!("{} values", t.len()),
                        format!("needs n × c = {}", n * c),
                    )
                    .into());
                }
                Some(dev.upload(t))
            }
            _ => None,
        };
        Ok(Self {
            gd,
            exec,
            w,
            teacher,
            cfg: cfg.clone(),
            rng: Philox::new(seed),
            losses: Vec::with_capacity(cfg.epochs),
        })
    }

    /// Epochs done.
    pub fn epochs_done(&self) -> usize {
        self.losses.len()
    }

    /// Whether every epoch is done.
    pub fn finished(&self) -> bool {
        self.losses.len() >= self.cfg.epochs
    }

    /// One epoch (a full-batch step, then the ℓ0 projection when asked for); its loss.
    pub fn epoch(&mut self, dev: &mut D) -> Result<f64, PruneError> {
        let (n, h, cfg) = (self.gd.n, self.cfg.hidden, &self.cfg);
        let epoch = self.losses.len();
        let rng = self.rng;
        let mask = (cfg.dropout > 0.0).then(|| {
            let s = stream(StreamKind::Shuffle, epoch as u32);
            let scale = (1.0 / (1.0 - cfg.dropout)) as f32;
            let m: Vec<f32> = (0..(n * h) as u64)
                .map(|i| {
                    if f64::from(rng.u32_at(s, i)) / 4_294_967_296.0 < cfg.dropout {
                        0.0
                    } else {
                        scale
                    }
                })
                .collect();
            dev.upload(&m)
        });
        let distill = self.teacher.as_ref().map(|t| Distill {
            teacher: t,
            lambda: cfg.distill,
        });
        let w = &mut self.w;
        let g = forward_backward(
            dev,
            &self.gd,
            &w[0],
            &w[1],
            h,
            mask.as_ref(),
            distill.as_ref(),
        )?;
        self.losses.push(g.loss);
        self.exec.step(dev, w, &[&g.w1, &g.w2])?;
        let keep = 1.0 - cfg.weight_sparsity;
        if keep < 1.0 {
            // The ℓ0 projection over all weights jointly.
            let (a, b) = (dev.download(&w[0])?, dev.download(&w[1])?);
            let mut all: Vec<f32> = a.iter().chain(&b).copied().collect();
            l0_project(&mut all, keep);
            let (pa, pb) = all.split_at(a.len());
            let (ua, ub) = (dev.upload(pa), dev.upload(pb));
            dev.copy_into(&mut w[0], &ua);
            dev.copy_into(&mut w[1], &ub);
        }
        Ok(g.loss)
    }

    /// The run so far: test accuracy on `data`'s unlabelled nodes, losses, zeros, outputs.
    pub fn finish(&self, dev: &mut D, data: &Sbm) -> Result<GcnRun, PruneError> {
        let (n, c, h, w) = (self.gd.n, self.gd.c, self.cfg.hidden, &self.w);
        let zb = logits(dev, &self.gd, &w[0], &w[1], h);
        let probs = dev.softmax_rows(Mat::new(&zb, n, c));
        let probs = dev.download(&probs)?;
        let z = dev.download(&zb)?;
        let (mut right, mut total) = (0usize, 0usize);
        for i in (0..n).filter(|&i| !data.train[i]) {
            let row = &z[i * c..(i + 1) * c];
            let arg = (0..c).fold(0, |b, k| if row[k] > row[b] { k } else { b });
            right += usize::from(arg == data.y[i] as usize);
            total += 1;
        }
        let mut zeros = 0usize;
        let mut len = 0usize;
        for b in w {
            let v = dev.download(b)?;
            zeros += v.iter().filter(|x| **x == 0.0).count();
            len += v.len();
        }
        Ok(GcnRun {
            test_accuracy: right as f64 / total.max(1) as f64,
            losses: self.losses.clone(),
            weight_zeros: zeros as f64 / len.max(1) as f64,
            probs,
        })
    }
}

/// The GCN's weights `w1` (`hidden × f`) and `w2` (`c × hidden`) at initialisation for `seed`
/// (Glorot-normal): every method and UGS's every round start from these.
pub(super) fn init_params(
    seed: u64,
    f: usize,
    h: usize,
    c: usize,
) -> Result<[Param; 2], ConfigError> {
    let rng = Philox::new(seed);
    let init = |id: u32, rows: usize, cols: usize| {
        let scale = (2.0 / (rows + cols) as f64).sqrt();
        (0..rows * cols)
            .map(|i| {
                (scale * f64::from(rng.normal_at(stream(StreamKind::Init, id), i as u64))) as f32
            })
            .collect::<Vec<f32>>()
    };
    let t = |rows: usize, cols: usize, id: u32| {
        Tensor::new(vec![rows, cols], init(id, rows, cols))
            .map_err(|e| ConfigError::invalid("hidden", h, e.to_string()))
    };
    Ok([Param::new("w1", t(h, f, 0)?), Param::new("w2", t(c, h, 1)?)])
}

/// The keep-masks of a one-shot `method` at `fractions` of the edges removed (nested for every
/// method; random's order is drawn from `seed`); None for UGS, whose masks are learned by
/// training ([`super::ugs::ugs_masks`]).
pub fn edge_masks(
    graph: &super::graph::Graph,
    method: EdgeMethod,
    fractions: &[f64],
    seed: u64,
) -> Option<Vec<Vec<bool>>> {
    let order = match method {
        EdgeMethod::Teddy => prune_order(&edge_scores(graph)),
        EdgeMethod::Reverse => {
            let s: Vec<f64> = edge_scores(graph).iter().map(|v| -v).collect();
            prune_order(&s)
        }
        EdgeMethod::Random => {
            let rng = Philox::new(seed);
            let keys: Vec<f64> = (0..graph.edges.len() as u64)
                .map(|i| f64::from(rng.u32_at(stream(StreamKind::Data, 200), i)))
                .collect();
            prune_order(&keys)
        }
        EdgeMethod::Ugs => return None,
    };
    Some(nested_masks(&order, fractions))
}

/// The SBM experiment's settings: the graph generator, the training, the fractions of edges
/// removed and the methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PruneConfig {
    /// The graph.
    pub sbm: SbmConfig,
    /// The GCN's training.
    pub train: GcnTrainConfig,
    /// Fractions of edges removed.
    pub fractions: Vec<f64>,
    /// The methods compared.
    pub methods: Vec<EdgeMethod>,
    /// UGS's settings (when it is among the methods).
    pub ugs: super::ugs::UgsConfig,
    /// The seed of the graph, the random order and the initialisation.
    pub seed: u64,
}

impl Default for PruneConfig {
    fn default() -> Self {
        Self {
            sbm: SbmConfig::default(),
            train: GcnTrainConfig::default(),
            fractions: vec![0.3, 0.5, 0.7],
            methods: EdgeMethod::ONE_SHOT.to_vec(),
            ugs: super::ugs::UgsConfig::default(),
            seed: 0,
        }
    }
}

/// One row of the table: a method at a fraction of edges removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PruneRow {
    /// The method (`dense` for the unpruned graph).
    pub method: String,
    /// The fraction of edges removed.
    pub edges_removed: f64,
    /// Edges kept.
    pub edges: usize,
    /// Nodes left without an edge.
    pub isolated: usize,
    /// Test accuracy at the end of training.
    pub test_accuracy: f64,
    /// Weight entries exactly zero at the end.
    pub weight_zeros: f64,
    /// The last epoch's training loss.
    pub final_loss: f64,
}

impl PruneConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.sbm.validate()?;
        self.train.validate()?;
        if self.fractions.is_empty() || self.fractions.iter().any(|f| !(0.0..=1.0).contains(f)) {
            return Err(ConfigError::invalid(
                "fractions",
                format!("{:?}", self.fractions),
                "needs fractions of edges removed in [0, 1]",
            ));
        }
        self.ugs.validate()?;
        if self.methods.is_empty() {
            return Err(ConfigError::invalid(
                "methods",
                "[]",
                "needs at least one method",
            ));
        }
        Ok(())
    }

    /// Trains the dense graph, then every method at every fraction; `each` sees every row (with
    /// its per-epoch losses) as it is done.
    pub fn run<D: Device + 'static>(
        &self,
        dev: &mut D,
        mut each: impl FnMut(&PruneRow, &[f64]),
    ) -> Result<Vec<PruneRow>, PruneError> {
        self.validate()?;
        let data = self.sbm.generate(self.seed)?;
        let g = &data.graph;
        let mut rows = vec![];
        let mut record = |method: &str,
                          p: f64,
                          kept: &super::graph::Graph,
                          run: GcnRun,
                          rows: &mut Vec<PruneRow>| {
            let row = PruneRow {
                method: method.into(),
                edges_removed: p,
                edges: kept.edges.len(),
                isolated: kept.isolated(),
                test_accuracy: run.test_accuracy,
                weight_zeros: run.weight_zeros,
                final_loss: run.losses.last().copied().unwrap_or(f64::NAN),
            };
            each(&row, &run.losses);
            rows.push(row);
        };
        // The teacher: the dense graph's model with dense weights.
        let teacher_cfg = GcnTrainConfig {
            weight_sparsity: 0.0,
            distill: 0.0,
            ..self.train.clone()
        };
        let teacher = train_gcn(dev, &data, g, &teacher_cfg, self.seed, None)?;
        let probs = teacher.probs.clone();
        let dense = if teacher_cfg == self.train {
            teacher
        } else {
            train_gcn(dev, &data, g, &self.train, self.seed, Some(&probs))?
        };
        record("dense", 0.0, g, dense, &mut rows);
        for &method in &self.methods {
            let masks = match edge_masks(g, method, &self.fractions, self.seed) {
                Some(m) => m,
                None => super::ugs::ugs_masks(
                    dev,
                    &data,
                    &self.train,
                    &self.ugs,
                    &self.fractions,
                    self.seed,
                )?,
            };
            for (&p, keep) in self.fractions.iter().zip(&masks) {
                let kept = g.subgraph(keep);
                let run = train_gcn(dev, &data, &kept, &self.train, self.seed, Some(&probs))?;
                record(method.name(), p, &kept, run, &mut rows);
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Cpu;

    #[test]
    fn the_gcn_learns_the_communities_and_the_l0_projection_holds() {
        let data = SbmConfig::default().generate(0).unwrap();
        let run = train_gcn(
            &mut Cpu,
            &data,
            &data.graph,
            &GcnTrainConfig::default(),
            0,
            None,
        )
        .unwrap();
        // Spec: dense 0.927 over 3 seeds; chance is 1/3.
        assert!(run.test_accuracy > 0.8, "{}", run.test_accuracy);
        assert!(run.losses.last().unwrap() < &run.losses[0]);
        let cfg = GcnTrainConfig {
            weight_sparsity: 0.5,
            epochs: 20,
            ..GcnTrainConfig::default()
        };
        let run = train_gcn(&mut Cpu, &data, &data.graph, &cfg, 0, None).unwrap();
        // 16·16 + 3·16 = 304 weights, ⌈152⌉ kept: at least half exactly zero.
        assert!(run.weight_zeros >= 0.5, "{}", run.weight_zeros);
    }
}
