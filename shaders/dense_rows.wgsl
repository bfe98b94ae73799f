// The row and reduction kernels of the dense family (optiscope_core::device::dense) beside the
// matmul of dense.wgsl: row gathers, column sums (the bias gradient), the elementwise product and
// the gradient-weighted column sums g^T d; the f32 twins of `DenseOps for Cpu`. Matrices are
// row-major `rows x cols`.

struct RowsParams {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> rp: RowsParams;
// gather_rows: the source matrix; col_sums: the matrix; mul: a; weighted_col_sums: g.
@group(0) @binding(1) var<storage, read> src: array<f32>;
// mul: b; weighted_col_sums: the rows x cols matrix d.
@group(0) @binding(2) var<storage, read> aux: array<f32>;
// The output.
@group(0) @binding(3) var<storage, read_write> out0: array<f32>;
// gather_rows: the row indices.
@group(0) @binding(5) var<storage, read> row_index: array<u32>;

// out0[r, c] = src[row_index[r], c] for a `rows x cols` output.
@compute @workgroup_size(256)
fn gather_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= rp.rows * rp.cols) {
        return;
    }
    let r = t / rp.cols;
    let c = t - r * rp.cols;
    out0[t] = src[row_index[r] * rp.cols + c];
}

// out0[c] = sum_r src[r, c] (the bias gradient), rows summed in order as on the CPU.
@compute @workgroup_size(64)
fn col_sums(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= rp.cols) {
        return;
    }
    var acc = 0.0;
    for (var r = 0u; r < rp.rows; r++) {
        acc += src[r * rp.cols + c];
    }
    out0[c] = acc;
}

// out0 = src * aux over rows * cols elements.
@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i < rp.rows * rp.cols) {
        out0[i] = src[i] * aux[i];
    }
}

var<workgroup> scratch: array<f32, 256>;

// out0[j] = sum_i src[i] * aux[i * cols + j] over the rows i: one workgroup per column j.
@compute @workgroup_size(256)
fn weighted_col_sums(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let j = wid.x;
    var acc = 0.0;
    for (var i = lid.x; i < rp.rows; i += 256u) {
        acc += src[i] * aux[i * rp.cols + j];
    }
    scratch[lid.x] = acc;
    for (var s = 128u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid.x < s) {
            scratch[lid.x] = scratch[lid.x] + scratch[lid.x + s];
        }
    }
    if (lid.x == 0u && j < rp.cols) {
        out0[j] = scratch[0];
    }
}
