// The alignment family (optiscope_core::device::align): the per-context work of the
// preference-learning bandit in f32 — the twins of `AlignOps for Cpu`.
//
// log_policy: one workgroup per context x; its threads stride over the K arms, each computing the
// logit theta . phi(x, a) in order over the d features, then the workgroup reduces the row's max
// and sum of exp: out0[x*K + a] = logit - (max + log sum exp(logit - max)).
// dpo_pairs: one thread per pair i: the margin h_i from the two gathered log-policies, the
// coefficients c_i beta (sigmoid(h_i) - q_i) (and their negatives for the second arms) and the
// weighted loss.

struct AlignParams {
    // log_policy: contexts; dpo_pairs: pairs.
    n: u32,
    // Arms per context (log_policy).
    k: u32,
    // Features (log_policy).
    d: u32,
    // DPO's beta (dpo_pairs).
    beta: f32,
}

@group(0) @binding(0) var<uniform> ap: AlignParams;
// log_policy: phi, [n*k][d]; dpo_pairs: log pi_theta, [n_ctx*k].
@group(0) @binding(1) var<storage, read> src0: array<f32>;
// log_policy: theta, [d]; dpo_pairs: log pi_ref.
@group(0) @binding(2) var<storage, read> src1: array<f32>;
// dpo_pairs: the 2n row indices (first arms, then second arms), as f32.
@group(0) @binding(3) var<storage, read> rows: array<f32>;
// dpo_pairs: [q_0..q_{n-1}, c_0..c_{n-1}].
@group(0) @binding(4) var<storage, read> labels: array<f32>;
// log_policy: the log-policies; dpo_pairs: the 2n coefficients.
@group(0) @binding(5) var<storage, read_write> out0: array<f32>;
// dpo_pairs: the n weighted losses.
@group(0) @binding(6) var<storage, read_write> out1: array<f32>;

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

fn log_sigmoid(u: f32) -> f32 {
    return -max(-u, 0.0) - log(1.0 + exp(-abs(u)));
}

@compute @workgroup_size(64)
fn log_policy(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let x = wid.x;
    let k = ap.k;
    let d = ap.d;
    // Exactly n workgroups are dispatched (no early return: the barriers below need every thread).
    var m = -3.4028235e38;
    for (var a = lid.x; a < k; a += WG) {
        let base = (x * k + a) * d;
        var s = 0.0;
        for (var j = 0u; j < d; j++) {
            s += src0[base + j] * src1[j];
        }
        out0[x * k + a] = s;
        m = max(m, s);
    }
    red[lid.x] = m;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (lid.x < stride) {
            red[lid.x] = max(red[lid.x], red[lid.x + stride]);
        }
        workgroupBarrier();
    }
    let row_max = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var a = lid.x; a < k; a += WG) {
        sum += exp(out0[x * k + a] - row_max);
    }
    red[lid.x] = sum;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (lid.x < stride) {
            red[lid.x] += red[lid.x + stride];
        }
        workgroupBarrier();
    }
    let lse = row_max + log(red[0]);
    for (var a = lid.x; a < k; a += WG) {
        out0[x * k + a] -= lse;
    }
}

@compute @workgroup_size(256)
fn dpo_pairs(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let n = ap.n;
    if (i >= n) {
        return;
    }
    let ra = u32(rows[i]);
    let rb = u32(rows[n + i]);
    let h = ap.beta * ((src0[ra] - src1[ra]) - (src0[rb] - src1[rb]));
    let q = labels[i];
    let c = labels[n + i];
    let s = 1.0 / (1.0 + exp(-h));
    let g = c * ap.beta * (s - q);
    out0[i] = g;
    out0[n + i] = -g;
    out1[i] = -c * (q * log_sigmoid(h) + (1.0 - q) * log_sigmoid(-h));
}
