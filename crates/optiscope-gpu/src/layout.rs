//! The `#[repr(C)]` uniform structs and the WGSL structs they must match, field by field. Every
//! module that launches a kernel lists its uniforms here (`uniform_layouts`); the test
//! `tests/uniform_layout.rs` reads each shader with naga and compares the size and the offset of
//! every field, so a layout mismatch fails `cargo test` on a machine without a GPU.

use crate::shaders::Shader;

/// One uniform struct on both sides.
#[derive(Debug, Clone)]
pub struct UniformLayout {
    /// The Rust type's name.
    pub rust: &'static str,
    /// The shader that declares its twin.
    pub shader: Shader,
    /// The WGSL struct's name.
    pub wgsl: &'static str,
    /// `size_of` the Rust type.
    pub size: usize,
    /// Every Rust field except padding.
    pub fields: Vec<FieldLayout>,
}

/// One Rust field and the WGSL members it stands for (one of the same name, or several
/// consecutive scalars for an array such as `bounds: [f32; 4]` ↔ `x0, x1, y0, y1`).
#[derive(Debug, Clone)]
pub struct FieldLayout {
    /// The Rust field.
    pub name: &'static str,
    /// Its offset.
    pub offset: usize,
    /// Its size.
    pub size: usize,
    /// The WGSL members it covers, in order.
    pub wgsl: Vec<&'static str>,
}

/// `uniform_layout!(Type in SHADER, "WgslName" { field, field as ["a", "b"], ... })`.
macro_rules! uniform_layout {
    ($ty:ident in $shader:expr, $wgsl:literal { $($field:ident $(as [$($m:literal),+])?),* $(,)? }) => {{
        let value = <$ty as bytemuck::Zeroable>::zeroed();
        $crate::layout::UniformLayout {
            rust: stringify!($ty),
            shader: $shader,
            wgsl: $wgsl,
            size: std::mem::size_of::<$ty>(),
            fields: vec![$($crate::layout::FieldLayout {
                name: stringify!($field),
                offset: std::mem::offset_of!($ty, $field),
                size: std::mem::size_of_val(&value.$field),
                wgsl: $crate::layout::uniform_layout!(@members $field $(, [$($m),+])?),
            }),*],
        }
    }};
    (@members $field:ident) => { vec![stringify!($field)] };
    (@members $field:ident, [$($m:literal),+]) => { vec![$($m),+] };
}

pub(crate) use uniform_layout;

/// Every uniform struct of the crate.
pub fn uniform_layouts() -> Vec<UniformLayout> {
    let mut out = crate::ops::uniform_layouts();
    out.extend(crate::landscape::uniform_layouts());
    out
}
