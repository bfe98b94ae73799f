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

shader!(OPTIM, "optim.wgsl");
shader!(OPTIM_NEWTON_SCHULZ, "optim_newton_schulz.wgsl");
shader!(OPTIM_ADABLOCK, "optim_adablock.wgsl");
shader!(DENSE, "dense.wgsl");
shader!(DENSE_REDUCE, "dense_reduce.wgsl");
shader!(DENSE_ROWS, "dense_rows.wgsl");
shader!(ACT, "act.wgsl");
shader!(QUANT, "quant.wgsl");
shader!(RANDOM, "random.wgsl");
shader!(LANDSCAPE, "landscape.wgsl");
shader!(ALIGN, "align.wgsl");
shader!(SPARSE, "sparse.wgsl");
shader!(TRANSFORMER, "transformer.wgsl");

/// Every shader (the naga test checks that this matches the folder).
pub const ALL: &[Shader] = &[
    ALIGN,
    SPARSE,
    OPTIM,
    OPTIM_NEWTON_SCHULZ,
    OPTIM_ADABLOCK,
    DENSE,
    DENSE_REDUCE,
    DENSE_ROWS,
    ACT,
    QUANT,
    RANDOM,
    LANDSCAPE,
    TRANSFORMER,
];
