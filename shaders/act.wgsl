// The activation family (optiscope_core::device::act): bias plus activation after a matmul of
// dense.wgsl, the ReLU's backward, the softmax cross-entropy of a classifier's logits, the row
// softmax and its backward, a top-k router's gates and SwiGLU's gating; the f32 twins of
// `ActOps for Cpu`. Matrices are row-major `rows x cols`.

struct ActParams {
    rows: u32,
    cols: u32,
    // bias_act: bit 0 applies ReLU; topk_softmax: k.
    flags: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> mp: ActParams;
// softmax_xent: the logits; softmax_xent_sum: the rows' [loss, predicted] pairs.
@group(0) @binding(1) var<storage, read> src: array<f32>;
// bias_act: the bias; relu_mask: the activation; softmax_xent: the labels (class indices as f32).
@group(0) @binding(2) var<storage, read> aux: array<f32>;
// The output (in place for bias_act and relu_mask); softmax_xent: d loss / d logits.
@group(0) @binding(3) var<storage, read_write> out0: array<f32>;
// softmax_xent: the rows' [loss, predicted] pairs; softmax_xent_sum: [sum of losses, number
// correct]; swiglu_backward: dL/db.
@group(0) @binding(4) var<storage, read_write> out1: array<f32>;

const RELU: u32 = 1u;

// out0[r, c] += aux[c], then max(., 0) with the RELU flag (after out0 = x w^T by matmul).
@compute @workgroup_size(256)
fn bias_act(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= mp.rows * mp.cols) {
        return;
    }
    let v = out0[t] + aux[t % mp.cols];
    if ((mp.flags & RELU) != 0u) {
        out0[t] = max(v, 0.0);
    } else {
        out0[t] = v;
    }
}

// The row softmax of the rows x cols logits in src, a thread per row (the row's maximum
// subtracted first, the sum in order): out0 = the probabilities.
@compute @workgroup_size(256)
fn softmax_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= mp.rows) {
        return;
    }
    let base = r * mp.cols;
    var m = src[base];
    for (var k = 1u; k < mp.cols; k++) {
        m = max(m, src[base + k]);
    }
    var sum = 0.0;
    for (var k = 0u; k < mp.cols; k++) {
        let e = exp(src[base + k] - m);
        out0[base + k] = e;
        sum += e;
    }
    for (var k = 0u; k < mp.cols; k++) {
        out0[base + k] = out0[base + k] / sum;
    }
}

// out0 = 0 where the ReLU output aux is <= 0 (the backward pass through ReLU).
@compute @workgroup_size(256)
fn relu_mask(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= mp.rows * mp.cols) {
        return;
    }
    if (aux[t] <= 0.0) {
        out0[t] = 0.0;
    }
}

// Softmax cross-entropy of the `rows x cols` logits against the labels, a thread per row:
// out0 = (softmax - onehot) / rows, out1[2i], out1[2i + 1] = row i's loss and whether it was
// predicted (the first maximal logit; ties go to the lower class). softmax_xent_sum adds them.
@compute @workgroup_size(256)
fn softmax_xent(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let n = mp.rows;
    let c = mp.cols;
    if (i >= n) {
        return;
    }
    let base = i * c;
    let label = u32(aux[i]);
    var m = src[base];
    var arg = 0u;
    for (var k = 1u; k < c; k++) {
        let v = src[base + k];
        if (v > m) {
            m = v;
            arg = k;
        }
    }
    var sum = 0.0;
    for (var k = 0u; k < c; k++) {
        sum += exp(src[base + k] - m);
    }
    out1[2u * i] = log(sum) - (src[base + label] - m);
    out1[2u * i + 1u] = select(0.0, 1.0, arg == label);
    for (var k = 0u; k < c; k++) {
        let p = exp(src[base + k] - m) / sum;
        out0[base + k] = (p - select(0.0, 1.0, k == label)) / f32(n);
    }
}

var<workgroup> red_loss: array<f32, 256>;
var<workgroup> red_correct: array<f32, 256>;

// The sums of softmax_xent's per-row [loss, predicted] pairs (src, `rows` of them) in one
// workgroup, the rows strided over its threads and the threads' sums added as a tree:
// out1 = [sum of losses, number correct].
@compute @workgroup_size(256)
fn softmax_xent_sum(@builtin(local_invocation_id) lid: vec3<u32>) {
    var loss = 0.0;
    var correct = 0.0;
    for (var i = lid.x; i < mp.rows; i += 256u) {
        loss += src[2u * i];
        correct += src[2u * i + 1u];
    }
    red_loss[lid.x] = loss;
    red_correct[lid.x] = correct;
    for (var s = 128u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid.x < s) {
            red_loss[lid.x] = red_loss[lid.x] + red_loss[lid.x + s];
            red_correct[lid.x] = red_correct[lid.x] + red_correct[lid.x + s];
        }
    }
    if (lid.x == 0u) {
        out1[0] = red_loss[0];
        out1[1] = red_correct[0];
    }
}

// The backward of a row softmax, a thread per row: src = the probabilities p, aux = dL/dp,
// out0 = p * (dp - sum_row p * dp). Also the backward of topk_softmax (zero gates pass nothing).
@compute @workgroup_size(256)
fn softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= mp.rows) {
        return;
    }
    let base = r * mp.cols;
    var s = 0.0;
    for (var k = 0u; k < mp.cols; k++) {
        s += src[base + k] * aux[base + k];
    }
    for (var k = 0u; k < mp.cols; k++) {
        out0[base + k] = src[base + k] * (aux[base + k] - s);
    }
}

// A top-k router's gates, a thread per row of the logits in src (flags = k): the softmax over
// the row's k largest entries, 0 elsewhere. An entry is selected when its rank (the entries
// above it, or equal to it at a lower index) is below k: ties go to the lower index.
@compute @workgroup_size(256)
fn topk_softmax(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= mp.rows) {
        return;
    }
    let base = r * mp.cols;
    var m = src[base];
    for (var k = 1u; k < mp.cols; k++) {
        m = max(m, src[base + k]);
    }
    var sum = 0.0;
    for (var c = 0u; c < mp.cols; c++) {
        let v = src[base + c];
        var rank = 0u;
        for (var j = 0u; j < mp.cols; j++) {
            let u = src[base + j];
            if (u > v || (u == v && j < c)) {
                rank += 1u;
            }
        }
        if (rank < mp.flags) {
            let e = exp(v - m);
            out0[base + c] = e;
            sum += e;
        } else {
            out0[base + c] = 0.0;
        }
    }
    for (var c = 0u; c < mp.cols; c++) {
        out0[base + c] = out0[base + c] / sum;
    }
}

fn sigmoid(z: f32) -> f32 {
    return 1.0 / (1.0 + exp(-z));
}

// SwiGLU's gating, elementwise over rows (= the length): out0 = silu(src) * aux.
@compute @workgroup_size(256)
fn swiglu(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= mp.rows) {
        return;
    }
    let z = src[t];
    out0[t] = z * sigmoid(z) * aux[t];
}

// Its backward: out0 holds dL/dh on entry and dL/da on exit, out1 = dL/db; src = a, aux = b.
@compute @workgroup_size(256)
fn swiglu_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= mp.rows) {
        return;
    }
    let z = src[t];
    let s = sigmoid(z);
    let g = out0[t];
    out0[t] = g * aux[t] * (s * (1.0 + z * (1.0 - s)));
    out1[t] = g * z * s;
}
