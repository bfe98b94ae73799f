//! The gradient source of the trainer: how one minibatch becomes what the optimizer steps from.
//! Backpropagation ([`Backprop`]): one gradient per parameter. MeZO's two-point estimate
//! ([`Spsa`]): two forward passes at `θ ± εz` (each on a copy of the input, `Batch::input_copy`;
//! no backward, no activations kept past the loss), `z` regenerated on the device from the step's
//! key, and the projected gradient `ĝ` handed to the zeroth-order executor.

use super::transform::WeightTransform;
use super::TrainError;
use crate::device::Device;
use crate::models::Model;
use crate::tensor::Tensor;

use crate::models::{Loss, LossOut};
use crate::optim::{spsa_estimate, CounterPerturbation, ZoPlan, ZoStep};

/// One minibatch and everything a gradient source may use on it. The source may change
/// `params` while it works (a perturbation) but must leave them as it found them.
pub struct Batch<'a, D: Device> {
    /// The device.
    pub dev: &'a mut D,
    /// The model.
    pub model: &'a dyn Model<D>,
    /// The loss of its output.
    pub loss: &'a mut dyn Loss<D>,
    /// The weight transform.
    pub transform: &'a mut dyn WeightTransform<D>,
    /// Every model parameter.
    pub params: &'a mut [D::Buf],
    /// The indices of the weight matrices in `params`, in layer order.
    pub weights: &'a [usize],
    /// The minibatch's inputs (`n` rows), until a forward pass takes them
    /// ([`Batch::take_input`]; [`Batch::input_copy`] for a source that runs several).
    pub x: Option<D::Buf>,
    /// Its targets.
    pub y: D::Buf,
    /// Rows.
    pub n: usize,
    /// The minibatch's number (0-based, over every epoch), for counter-based noise.
    pub step: u64,
}

/// A training forward pass of a [`Batch`].
pub struct Forward<D: Device> {
    /// The input and every layer's output (the last is the model's output).
    pub acts: Vec<D::Buf>,
    /// Each weight matrix as the forward used it (None: the parameter itself).
    pub transformed: Vec<Option<D::Buf>>,
}

impl<D: Device> Batch<'_, D> {
    /// The input, moved out (a forward pass keeps it as its first activation).
    ///
    /// # Panics
    /// When it was taken already: a source that runs several forward passes copies it first.
    pub fn take_input(&mut self) -> D::Buf {
        self.x
            .take()
            .unwrap_or_else(|| panic!("the minibatch's input was already taken"))
    }

    /// A copy of the input, for a source that runs more than one forward pass.
    pub fn input_copy(&mut self) -> D::Buf {
        let x = self
            .x
            .as_ref()
            .unwrap_or_else(|| panic!("the minibatch's input was already taken"));
        self.dev.duplicate(x)
    }

    /// The training forward of input `x` at the current parameters: every weight matrix through
    /// the transform, then the model.
    pub fn forward(&mut self, x: D::Buf) -> Forward<D> {
        let transformed: Vec<Option<D::Buf>> = (0..self.weights.len())
            .map(|l| {
                let w = &self.params[self.weights[l]];
                self.transform.forward(self.dev, l, w, self.step)
            })
            .collect();
        let params = with_transformed(self.params, self.weights, &transformed);
        let acts = self.model.forward(self.dev, &params, x, self.n);
        Forward { acts, transformed }
    }
}

/// What a gradient source gives back for a minibatch.
pub struct Gradients<D: Device> {
    /// `[Σ loss over the rows, number correct]`.
    pub stats: D::Buf,
    /// One gradient per model parameter, of the mean loss.
    pub grads: Vec<D::Buf>,
    /// One gradient per parameter of the weight transform (host tensors).
    pub host_grads: Vec<Tensor>,
    /// A zeroth-order source's step with its projected gradient (`grads` is then empty).
    pub projected: Option<ZoStep>,
}

/// How a minibatch becomes gradients.
pub trait GradientSource<D: Device>: Send {
    /// The minibatch's loss statistics and gradients at the current parameters.
    fn gradients(&mut self, batch: Batch<'_, D>) -> Result<Gradients<D>, TrainError>;
}

/// Backpropagation: the loss's and the model's hand-written backward passes, then the chain rule
/// through each weight transform (last layer first, as the backward produced them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Backprop;

impl<D: Device> GradientSource<D> for Backprop {
    fn gradients(&mut self, mut batch: Batch<'_, D>) -> Result<Gradients<D>, TrainError> {
        let x = batch.take_input();
        let Forward { acts, transformed } = batch.forward(x);
        let n = batch.n;
        let out = acts
            .last()
            .unwrap_or_else(|| unreachable!("a forward pass has an output"));
        let LossOut { d_output, stats } = batch.loss.loss(batch.dev, out, &batch.y, n);
        let params = with_transformed(batch.params, batch.weights, &transformed);
        let mut grads = batch.model.backward(batch.dev, &params, &acts, d_output, n);
        let mut host_grads: Vec<Tensor> = batch
            .transform
            .params()
            .iter()
            .map(|p| Tensor::zeros(p.value.shape()))
            .collect();
        for l in (0..batch.weights.len()).rev() {
            if transformed[l].is_none() {
                continue;
            }
            let i = batch.weights[l];
            grads[i] = batch
                .transform
                .backward(batch.dev, l, &grads[i], &mut host_grads)?;
        }
        Ok(Gradients {
            stats,
            grads,
            host_grads,
            projected: None,
        })
    }
}

/// MeZO's two-point (SPSA) estimate for a zeroth-order executor ([`ZoPlan`]): the step's
/// perturbation of the active parameters by `+εz`, a forward pass and its loss, `−2εz`, another,
/// `+εz` (restore). The minibatch's reported loss and accuracy are the means of the two passes.
#[derive(Debug, Clone, PartialEq)]
pub struct Spsa {
    plan: ZoPlan,
    seed: u64,
}

impl Spsa {
    /// The source of `plan` in a run seeded `seed`.
    pub fn new(plan: ZoPlan, seed: u64) -> Self {
        Self { plan, seed }
    }
}

impl<D: Device> GradientSource<D> for Spsa {
    fn gradients(&mut self, batch: Batch<'_, D>) -> Result<Gradients<D>, TrainError> {
        let Batch {
            dev,
            model,
            loss,
            transform,
            params,
            weights,
            x,
            y,
            n,
            step,
        } = batch;
        let x = x.unwrap_or_else(|| panic!("the minibatch's input was already taken"));
        let mut zo = self.plan.at(self.seed, step);
        let mut z = CounterPerturbation { key: zo.key };
        let mut sums = [0.0f64; 2];
        let (_, _, g) = spsa_estimate(
            dev,
            params,
            &zo.active,
            self.plan.eps,
            &mut z,
            |dev, params| -> Result<f64, TrainError> {
                let transformed: Vec<Option<D::Buf>> = (0..weights.len())
                    .map(|l| transform.forward(dev, l, &params[weights[l]], step))
                    .collect();
                let used = with_transformed(params, weights, &transformed);
                let input = dev.duplicate(&x);
                let acts = model.forward(dev, &used, input, n);
                let out = acts
                    .last()
                    .unwrap_or_else(|| unreachable!("a forward pass has an output"));
                let LossOut { stats, .. } = loss.loss(dev, out, &y, n);
                drop(acts);
                let stats = dev.download(&stats)?;
                sums[0] += f64::from(stats[0]);
                sums[1] += f64::from(stats[1]);
                Ok(f64::from(stats[0]) / n as f64)
            },
        )?;
        zo.projected_grad = g;
        let stats = dev.upload(&[(sums[0] / 2.0) as f32, (sums[1] / 2.0) as f32]);
        let host_grads = transform
            .params()
            .iter()
            .map(|p| Tensor::zeros(p.value.shape()))
            .collect();
        Ok(Gradients {
            stats,
            grads: vec![],
            host_grads,
            projected: Some(zo),
        })
    }
}

/// The model's parameters with each weight matrix `weights[l]` replaced by `transformed[l]`
/// where there is one, as the forward and backward passes use them.
pub(super) fn with_transformed<'a, B>(
    params: &'a [B],
    weights: &[usize],
    transformed: &'a [Option<B>],
) -> Vec<&'a B> {
    let mut out: Vec<&B> = params.iter().collect();
    for (&i, t) in weights.iter().zip(transformed) {
        if let Some(t) = t {
            out[i] = t;
        }
    }
    out
}
