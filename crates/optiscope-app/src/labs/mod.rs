//! The labs of the explorer, one folder entry each, listed once here: adding a lab is its module,
//! its [`LabKind`] variant (name and tab label) with its part of the link in
//! [`crate::state::LabStates`], and one arm below.

pub mod align;
pub mod compress;
pub mod experiment;
pub mod quantization;
pub mod transformer;

use crate::lab::{Lab, LabIo};
use crate::state::{ExplorerState, LabKind};

/// The lab of `kind` from the link state `state` (a lab the link does not hold starts from its
/// defaults).
pub fn build(kind: LabKind, state: &ExplorerState, io: &mut LabIo<'_>) -> Box<dyn Lab> {
    match kind {
        LabKind::Experiment => Box::new(experiment::ExperimentLab::new(
            state.labs.experiment.clone(),
            io,
        )),
        LabKind::Quantization => Box::new(quantization::QuantLab::new(
            state.labs.quantization.clone().unwrap_or_default(),
            io,
        )),
        LabKind::Align => Box::new(align::AlignLab::new(
            state.labs.align.clone().unwrap_or_default(),
            io,
        )),
        LabKind::Compress => Box::new(compress::CompressLab::new(
            state.labs.compress.clone().unwrap_or_default(),
            io,
        )),
        LabKind::Transformer => Box::new(transformer::TransformerLab::new(
            state.labs.transformer.clone().unwrap_or_default(),
            io,
        )),
    }
}
