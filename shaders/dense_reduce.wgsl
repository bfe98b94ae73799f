// The dense family (optiscope_core::device::dense): reductions.
// Reductions in two passes: every workgroup of 256 threads sums a grid-strided share of the input
// into one partial (tree reduction in workgroup memory), then one workgroup sums the partials.
// Used for Frobenius norms (Newton-Schulz normalization) and plain sums.

struct ReduceParams {
    n: u32,
    // Number of partials written by the first pass (= workgroups dispatched).
    num_partials: u32,
    // finish_inverse_norm writes 1 / (sqrt(total) * norm_mul + norm_add).
    norm_mul: f32,
    norm_add: f32,
}

@group(0) @binding(0) var<uniform> rd: ReduceParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;
@group(0) @binding(4) var<storage, read_write> scaled: array<f32>;

var<workgroup> scratch: array<f32, 256>;

fn tree_reduce(lid: u32) {
    for (var s = 128u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid < s) {
            scratch[lid] = scratch[lid] + scratch[lid + s];
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn partial_sum_squares(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var acc = 0.0;
    let stride = rd.num_partials * 256u;
    for (var i = wid.x * 256u + lid.x; i < rd.n; i = i + stride) {
        let v = input[i];
        acc = acc + v * v;
    }
    scratch[lid.x] = acc;
    tree_reduce(lid.x);
    if (lid.x == 0u) {
        partials[wid.x] = scratch[0];
    }
}

@compute @workgroup_size(256)
fn partial_sum(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var acc = 0.0;
    let stride = rd.num_partials * 256u;
    for (var i = wid.x * 256u + lid.x; i < rd.n; i = i + stride) {
        acc = acc + input[i];
    }
    scratch[lid.x] = acc;
    tree_reduce(lid.x);
    if (lid.x == 0u) {
        partials[wid.x] = scratch[0];
    }
}

fn sum_partials(lid: u32) {
    var acc = 0.0;
    for (var i = lid; i < rd.num_partials; i = i + 256u) {
        acc = acc + partials[i];
    }
    scratch[lid] = acc;
    tree_reduce(lid);
}

// result[0] = the total.
@compute @workgroup_size(256)
fn finish_sum(@builtin(local_invocation_id) lid: vec3<u32>) {
    sum_partials(lid.x);
    if (lid.x == 0u) {
        result[0] = scratch[0];
    }
}

// result[0] = 1 / (sqrt(total) * norm_mul + norm_add): the Newton-Schulz normalization factor.
@compute @workgroup_size(256)
fn finish_inverse_norm(@builtin(local_invocation_id) lid: vec3<u32>) {
    sum_partials(lid.x);
    if (lid.x == 0u) {
        result[0] = 1.0 / (sqrt(scratch[0]) * rd.norm_mul + rd.norm_add);
    }
}

// scaled[i] *= result[0], for i < n.
@compute @workgroup_size(256)
fn scale_by_result(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x < rd.n) {
        scaled[gid.x] = scaled[gid.x] * result[0];
    }
}
