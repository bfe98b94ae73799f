// The sparse family (optiscope_core::device::sparse): a CSR matrix times a dense one, and the
// sampled dense-dense product on a CSR pattern; the twins of `SparseOps for Cpu`. Every sum runs
// in the CPU twin's order.

struct SparseParams {
    // Rows of the CSR matrix (= of the output).
    rows: u32,
    // Columns of the dense matrix (= of the output).
    k: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> sp: SparseParams;
// Row pointers (rows + 1), as f32.
@group(0) @binding(1) var<storage, read> indptr: array<f32>;
// Column of every stored entry, as f32.
@group(0) @binding(2) var<storage, read> indices: array<f32>;
// Value of every stored entry.
@group(0) @binding(3) var<storage, read> values: array<f32>;
// The dense matrix, row-major cols x k.
@group(0) @binding(4) var<storage, read> x: array<f32>;
// spmm: the output, row-major rows x k; sddmm: one value per stored entry.
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
// sddmm: the left matrix, row-major rows x k (x is the right one, cols x k).
@group(0) @binding(6) var<storage, read> left: array<f32>;

// One thread per output entry (r, j): it walks row r's stored entries in order.
@compute @workgroup_size(256)
fn spmm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= sp.rows * sp.k) {
        return;
    }
    let r = t / sp.k;
    let j = t % sp.k;
    let lo = u32(indptr[r]);
    let hi = u32(indptr[r + 1u]);
    var s = 0.0;
    for (var e = lo; e < hi; e++) {
        s += values[e] * x[u32(indices[e]) * sp.k + j];
    }
    out[t] = s;
}

// One thread per row r: for each of its stored entries e at (r, c), out[e] = left[r, :] . x[c, :].
@compute @workgroup_size(256)
fn sddmm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= sp.rows) {
        return;
    }
    let lo = u32(indptr[r]);
    let hi = u32(indptr[r + 1u]);
    for (var e = lo; e < hi; e++) {
        let c = u32(indices[e]);
        var s = 0.0;
        for (var t = 0u; t < sp.k; t++) {
            s += left[r * sp.k + t] * x[c * sp.k + t];
        }
        out[e] = s;
    }
}
