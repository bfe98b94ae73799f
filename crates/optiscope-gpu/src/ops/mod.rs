//! The kernel families on the GPU, one module per family of `optiscope_core::device`: each
//! implements the family's trait for [`crate::GpuDevice`] with the launchers of its
//! `shaders/<family>*.wgsl`, and lists its uniform structs for the layout test.

pub mod act;
pub mod align;
pub mod dense;
pub mod optim;
pub mod quant;
pub mod random;
pub mod sparse;
pub mod transformer;

/// Every family's uniform structs and their WGSL twins ([`crate::layout`]).
pub(crate) fn uniform_layouts() -> Vec<crate::layout::UniformLayout> {
    let mut out = optim::uniform_layouts();
    out.extend(dense::uniform_layouts());
    out.extend(act::uniform_layouts());
    out.extend(quant::uniform_layouts());
    out.extend(random::uniform_layouts());
    out.extend(align::uniform_layouts());
    out.extend(sparse::uniform_layouts());
    out.extend(transformer::uniform_layouts());
    out
}
