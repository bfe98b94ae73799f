//! Models: their parameters (names, shapes and roles, which route them in the optimizers), a
//! forward pass that keeps what the backward needs, and a backward pass that returns one
//! gradient per parameter — written once against the device's kernels, so a model runs on the CPU
//! and on the GPU. The trainer ([`crate::train`]) drives any [`Model`] with a loss, a weight
//! transform (the quantizers) and an optimizer.

mod gpt;
pub mod loss;
mod mlp;

pub use gpt::{Gpt, GptConfig};
pub use loss::{Loss, LossOut, SoftmaxCrossEntropy};
pub use mlp::Mlp;

use crate::device::Device;
use crate::tensor::Param;

/// A differentiable model on device `D`.
pub trait Model<D: Device>: Send {
    /// Its name in configs and messages (`mlp`).
    fn name(&self) -> &'static str;

    /// The widths of its layers, input first (for display: `64-128-10`).
    fn layer_widths(&self) -> Vec<usize>;

    /// The parameters with their initial values, from `seed`.
    fn init(&self, seed: u64) -> Vec<Param>;

    /// The indices of the parameters that are weight matrices, in layer order: what a weight
    /// transform (a quantizer, a prox) acts on.
    fn weight_matrices(&self) -> Vec<usize>;

    /// The forward pass of `n` rows `x` with `params` (a weight transform's output standing in
    /// for its weights): the input and every layer's output, the model's output last.
    fn forward(&self, dev: &mut D, params: &[&D::Buf], x: D::Buf, n: usize) -> Vec<D::Buf>;

    /// The backward pass from `d_out = ∂L/∂output`: one gradient per parameter, with respect to
    /// the parameters as the forward used them.
    fn backward(
        &self,
        dev: &mut D,
        params: &[&D::Buf],
        acts: &[D::Buf],
        d_out: D::Buf,
        n: usize,
    ) -> Vec<D::Buf>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::device::Cpu;
    use crate::models::loss::{Loss, SoftmaxCrossEntropy};

    /// The mean loss of `model` on `x`, `labels` with `params`, in f64 from its outputs.
    fn loss_of<M: Model<Cpu>>(model: &M, params: &[Vec<f32>], x: &[f32], labels: &[f32]) -> f64 {
        let n = labels.len();
        let refs: Vec<&Vec<f32>> = params.iter().collect();
        let acts = model.forward(&mut Cpu, &refs, x.to_vec(), n);
        let out = acts.last().map(Vec::as_slice).unwrap_or_default();
        let classes = out.len() / n;
        out.chunks(classes)
            .zip(labels)
            .map(|(row, &label)| {
                let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln() - row[label as usize]
            })
            .sum::<f64>()
            / n as f64
    }

    /// Every gradient of `model`'s backward (through the softmax cross-entropy) against central
    /// differences of its forward, coordinate by coordinate. What every model's tests call.
    pub(crate) fn check_gradients<M: Model<Cpu>>(model: &M, x: &[f32], labels: &[f32]) {
        let n = labels.len();
        let params: Vec<Vec<f32>> = model
            .init(3)
            .into_iter()
            .map(|p| p.value.into_data())
            .collect();
        let refs: Vec<&Vec<f32>> = params.iter().collect();
        let acts = model.forward(&mut Cpu, &refs, x.to_vec(), n);
        let classes = acts.last().map_or(0, Vec::len) / n;
        let mut loss = SoftmaxCrossEntropy { classes };
        let out = loss.loss(
            &mut Cpu,
            acts.last().unwrap_or(&vec![]),
            &labels.to_vec(),
            n,
        );
        let grads = model.backward(&mut Cpu, &refs, &acts, out.d_output, n);
        assert_eq!(grads.len(), params.len());
        for (t, g) in grads.iter().enumerate() {
            assert_eq!(g.len(), params[t].len(), "gradient {t}: length");
            for i in 0..params[t].len() {
                let h = 1e-2f32;
                let (mut plus, mut minus) = (params.clone(), params.clone());
                plus[t][i] += h;
                minus[t][i] -= h;
                let dx = f64::from(plus[t][i]) - f64::from(minus[t][i]);
                let fd =
                    (loss_of(model, &plus, x, labels) - loss_of(model, &minus, x, labels)) / dx;
                let an = f64::from(g[i]);
                // ReLU kinks make a few coordinates non-differentiable within ±h: a loose bound.
                assert!(
                    (fd - an).abs() < 2e-3 + 2e-2 * an.abs(),
                    "param {t}[{i}]: finite differences {fd} vs backward {an}"
                );
            }
        }
    }
}
