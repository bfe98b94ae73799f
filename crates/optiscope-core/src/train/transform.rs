//! The weight-transform hook of the trainer: what happens to a model's weight matrices between the
//! parameters and the forward pass, with its own learnable host parameters and its own step. The
//! quantizers and ProxQuant ([`super::quantizer::Quantizer`]) plug in here; a pruning mask or an
//! ℓ0 projection is the next one. The trainer calls only these methods.

use super::{Checkpoint, LayerView, TrainError};
use crate::device::{Device, DeviceError};
use crate::optim::{Executor, Param};
use crate::tensor::Tensor;

/// The model's side of a step, as a transform's [`WeightTransform::after_step`] sees it.
pub struct ModelState<'a, D: Device> {
    /// Every model parameter.
    pub params: &'a mut [D::Buf],
    /// The indices of the weight matrices in `params`, in layer order.
    pub weights: &'a [usize],
    /// The model's optimizer (its state, e.g. Adam's second moment, after this step).
    pub opt: &'a dyn Executor<D>,
}

/// A transform of a model's weight matrices on the way forward.
///
/// Weight matrix `l` is `params[weights[l]]`. Within a step the gradient source calls
/// `forward(l)` for every layer (through `Batch::forward`), then the model's backward, then
/// `backward(l)` for every layer that `forward` transformed (last to first, for backprop); the
/// trainer then runs the model's optimizer and `after_step`.
pub trait WeightTransform<D: Device>: Send {
    /// Recomputes what the transform derives from the weights themselves (e.g. a step from
    /// `max|w|`), at construction and at every epoch start.
    fn refresh(&mut self, dev: &mut D, weights: &[&D::Buf]) -> Result<(), DeviceError>;

    /// The training forward of weight matrix `l` at minibatch `step` (0-based, counting every
    /// epoch): what the model sees instead of `w`, or None to use `w` itself. Keeps what
    /// [`Self::backward`] needs for this layer.
    fn forward(&mut self, dev: &mut D, l: usize, w: &D::Buf, step: u64) -> Option<D::Buf>;

    /// The chain rule through layer `l`'s forward: `∂L/∂w` from `grad` = `∂L/∂(what the model
    /// saw)`, adding the gradients of the transform's own parameters to `host_grads` (one tensor
    /// per [`Self::params`]). Only called for layers `forward` transformed.
    fn backward(
        &mut self,
        dev: &mut D,
        l: usize,
        grad: &D::Buf,
        host_grads: &mut [Tensor],
    ) -> Result<D::Buf, DeviceError>;

    /// The evaluation transform of weight matrix `l` (hard quantization), or None.
    fn eval(&self, dev: &mut D, l: usize, w: &D::Buf) -> Option<D::Buf>;

    /// The transform's learnable host parameters (checkpointed as `quant.<name>`).
    fn params(&self) -> &[Param];

    /// After the model's optimizer step: the step of the transform's own parameters from
    /// `host_grads`, then any change it makes to the model's weights (ProxQuant's prox). `epoch`
    /// counts completed epochs.
    fn after_step(
        &mut self,
        dev: &mut D,
        host_grads: &[Tensor],
        model: ModelState<'_, D>,
        epoch: u64,
    ) -> Result<(), TrainError>;

    /// Puts the transform's parameters at their evaluation point (Schedule-Free's and AMUSE's
    /// average) and returns their training values for [`Self::leave_eval`].
    fn enter_eval(&mut self) -> Vec<Vec<f32>>;

    /// Restores the training values [`Self::enter_eval`] returned, bit for bit.
    fn leave_eval(&mut self, train: Vec<Vec<f32>>);

    /// Weight matrix `l` (its values `weights`, at the evaluation point) as the transform shows
    /// it: the evaluation transform, its grid and statistics.
    fn layer_view(&self, l: usize, weights: Vec<f32>) -> LayerView;

    /// Writes the transform's parameters and state into `c`.
    fn save(&mut self, c: &mut Checkpoint) -> Result<(), TrainError>;

    /// Reads what [`Self::save`] wrote, taking its tensors out of `c`.
    fn restore(&mut self, c: &mut Checkpoint) -> Result<(), TrainError>;

    /// The transform itself, for tests that look inside.
    #[cfg(test)]
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}
