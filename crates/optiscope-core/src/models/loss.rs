//! Losses of a model's output: from the output and the targets, `∂L/∂output` and the statistics
//! of the minibatch, for the trainer. Softmax cross-entropy now; language modelling, DPO/GRPO and
//! distillation objectives (in the layers above) implement the same trait.

use crate::device::{Device, Mat, XentOut};

/// What a loss gives back for a minibatch.
pub struct LossOut<D: Device> {
    /// `∂(mean loss)/∂output`.
    pub d_output: D::Buf,
    /// `[Σ loss over the rows, number correct]`.
    pub stats: D::Buf,
}

/// A loss on device `D`.
pub trait Loss<D: Device>: Send {
    /// The loss of `n` rows of `output` against `targets`.
    fn loss(&mut self, dev: &mut D, output: &D::Buf, targets: &D::Buf, n: usize) -> LossOut<D>;
}

/// Mean softmax cross-entropy over `classes` logits per row, against class indices (stored as
/// f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxCrossEntropy {
    /// Logits per row.
    pub classes: usize,
}

impl<D: Device> Loss<D> for SoftmaxCrossEntropy {
    fn loss(&mut self, dev: &mut D, output: &D::Buf, targets: &D::Buf, n: usize) -> LossOut<D> {
        let XentOut { d_logits, stats } =
            dev.softmax_xent(Mat::new(output, n, self.classes), targets);
        LossOut {
            d_output: d_logits,
            stats,
        }
    }
}
