// Newton-Schulz on a diagonal matrix diag(u): products of diagonal matrices stay diagonal, so
// every iteration X <- aX + (bA + cA^2)X, A = XX^T, is the scalar map x <- ax + (bx^2 + cx^4)x on
// each entry. The twin of `Orthogonalizer::apply_diagonal`. (Full matrices are orthogonalized by
// composing dense.wgsl and dense_reduce.wgsl; see optiscope-gpu/src/ops/optim.rs.)

struct NsParams {
    n: u32,
    steps: u32,
    _pad0: u32,
    _pad1: u32,
    // (a, b, c, unused) for each iteration; iterations past the last entry reuse it.
    coefficients: array<vec4<f32>, 8>,
}

@group(0) @binding(0) var<uniform> np: NsParams;
@group(0) @binding(1) var<storage, read> u: array<f32>;
// inv_norm[0]: 1 / normalization of u (written by dense_reduce.wgsl's finish_inverse_norm).
@group(0) @binding(2) var<storage, read> inv_norm: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn ns_diagonal(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= np.n) {
        return;
    }
    var x = u[i] * inv_norm[0];
    for (var it = 0u; it < np.steps; it++) {
        let c = np.coefficients[min(it, 7u)];
        let x2 = x * x;
        x = c.x * x + (c.y * x2 + c.z * x2 * x2) * x;
    }
    out[i] = x;
}
