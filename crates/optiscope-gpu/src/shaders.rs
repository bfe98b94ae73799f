//! The WGSL sources, embedded from the repository's `shaders/` folder.

/// One shader file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shader {
    /// File name in `shaders/`.
    pub name: &'static str,
    /// WGSL source.
    pub source: &'static str,
}

macro_rules! shader {
    ($ident:ident, $file:literal) => {
        #[doc = concat!("`shaders/", $file, "`.")]
        pub const $ident: Shader = Shader {
            name: $file,
            source: include_str!(concat!("../../../shaders/", $file)),
        };
    };
}

shader!(OPTIM_ELEMENTWISE, "optim_elementwise.wgsl");
shader!(MATMUL, "matmul.wgsl");
shader!(REDUCE, "reduce.wgsl");
shader!(NEWTON_SCHULZ, "newton_schulz.wgsl");
shader!(RNG, "rng.wgsl");
shader!(LANDSCAPE, "landscape.wgsl");
shader!(QUANT, "quant.wgsl");
shader!(MLP, "mlp.wgsl");

/// Every shader (the naga test checks that this matches the folder).
pub const ALL: &[Shader] = &[
    OPTIM_ELEMENTWISE,
    MATMUL,
    REDUCE,
    NEWTON_SCHULZ,
    RNG,
    LANDSCAPE,
    QUANT,
    MLP,
];
