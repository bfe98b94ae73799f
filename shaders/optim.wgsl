// The optimizer-update family (optiscope_core::device::optim): elementwise update rules, the twins
// of `device::optim::elementwise`. Every per-step scalar (bias corrections, Schedule-Free weights,
// 1 - beta) arrives precomputed by the host in f64 and rounded to f32, as the CPU executor receives it.

struct ElemParams {
    n: u32,
    // Bit 0 nesterov, bit 1 maximize, bit 2 first step, bit 3 decoupled decay, bit 4 amsgrad,
    // bit 5 AMUSE's explicit x.
    flags: u32,
    _pad0: u32,
    _pad1: u32,
    lr: f32,
    momentum: f32,
    one_minus_dampening: f32,
    weight_decay: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    eps: f32,
    step_size: f32,
    bc2_sqrt: f32,
    ckp1: f32,
    y_step: f32,
    bias_correction2: f32,
    // Interpolation weight of lerp kernels; decay factor of decay_sub.
    w: f32,
    _pad2: f32,
    _pad3: f32,
}

const NESTEROV: u32 = 1u;
const MAXIMIZE: u32 = 2u;
const FIRST_STEP: u32 = 4u;
const DECOUPLED: u32 = 8u;
const AMSGRAD: u32 = 16u;
const EXPLICIT_X: u32 = 32u;

@group(0) @binding(0) var<uniform> ep: ElemParams;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> s1: array<f32>;
@group(0) @binding(4) var<storage, read_write> s2: array<f32>;
@group(0) @binding(5) var<storage, read_write> s3: array<f32>;

fn has(bit: u32) -> bool {
    return (ep.flags & bit) != 0u;
}

fn lerp(a: f32, b: f32, w: f32) -> f32 {
    return a + w * (b - a);
}

// SGD: p, g, s1 = momentum buffer.
@compute @workgroup_size(256)
fn sgd_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    var d = g[i];
    if (has(MAXIMIZE)) {
        d = -d;
    }
    if (ep.weight_decay != 0.0) {
        d = d + ep.weight_decay * p[i];
    }
    if (ep.momentum != 0.0) {
        var b = d;
        if (!has(FIRST_STEP)) {
            b = ep.momentum * s1[i] + ep.one_minus_dampening * d;
        }
        s1[i] = b;
        if (has(NESTEROV)) {
            d = d + ep.momentum * b;
        } else {
            d = b;
        }
    }
    p[i] = p[i] - ep.lr * d;
}

// Adam / AdamW: p, g, s1 = m, s2 = v, s3 = v_max.
@compute @workgroup_size(256)
fn adam_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    var gi = g[i];
    if (has(MAXIMIZE)) {
        gi = -gi;
    }
    if (has(DECOUPLED)) {
        p[i] = p[i] * (1.0 - ep.lr * ep.weight_decay);
    } else if (ep.weight_decay != 0.0) {
        gi = gi + ep.weight_decay * p[i];
    }
    let m = lerp(s1[i], gi, ep.one_minus_beta1);
    s1[i] = m;
    let v = ep.beta2 * s2[i] + ep.one_minus_beta2 * gi * gi;
    s2[i] = v;
    var vv = v;
    if (has(AMSGRAD)) {
        vv = max(s3[i], v);
        s3[i] = vv;
    }
    let denom = sqrt(vv) / ep.bc2_sqrt + ep.eps;
    p[i] = p[i] - ep.step_size * m / denom;
}

fn schedulefree_tail(i: u32, d: f32) {
    // p = y, s1 = z
    let y = lerp(p[i], s1[i], ep.ckp1);
    p[i] = y + ep.y_step * d;
    s1[i] = s1[i] - ep.lr * d;
}

// Schedule-Free SGD: p = y, g, s1 = z.
@compute @workgroup_size(256)
fn sgd_schedulefree_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    schedulefree_tail(i, g[i] + ep.weight_decay * p[i]);
}

// Schedule-Free AdamW: p = y, g, s1 = z, s2 = v.
@compute @workgroup_size(256)
fn adamw_schedulefree_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    let gi = g[i];
    let v = ep.beta2 * s2[i] + ep.one_minus_beta2 * gi * gi;
    s2[i] = v;
    let denom = sqrt(v / ep.bias_correction2) + ep.eps;
    schedulefree_tail(i, gi / denom + ep.weight_decay * p[i]);
}

// p = lerp(p, s1, w): Schedule-Free / AMUSE mode switches and y -> x recovery.
@compute @workgroup_size(256)
fn lerp_towards(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    p[i] = lerp(p[i], s1[i], ep.w);
}

// Muon momentum: s1 = M <- lerp(M, g, 1 - beta); p (the output U) = lerp(g, M, beta) or M.
// `momentum` holds beta, `one_minus_beta1` holds 1 - beta.
@compute @workgroup_size(256)
fn muon_momentum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    let m = lerp(s1[i], g[i], ep.one_minus_beta1);
    s1[i] = m;
    if (has(NESTEROV)) {
        p[i] = lerp(g[i], m, ep.momentum);
    } else {
        p[i] = m;
    }
}

// p <- p * w - lr * g: a decoupled decay and an orthogonalized step (g holds the scaled update).
@compute @workgroup_size(256)
fn decay_sub(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    p[i] = p[i] * ep.w - ep.lr * g[i];
}

// AMUSE weight decay at y: s1 = z <- z - lr * y (lr holds gamma*lambda_y); p = y <- y * w.
@compute @workgroup_size(256)
fn amuse_decay_at_y(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    s1[i] = s1[i] - ep.lr * p[i];
    p[i] = p[i] * ep.w;
}

// AMUSE fallback group: p = z, g, s2 = v: u = g / (sqrt(v / bc2) + eps) + lambda z; z <- z - lr u.
@compute @workgroup_size(256)
fn amuse_aux_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    let gi = g[i];
    let v = ep.beta2 * s2[i] + ep.one_minus_beta2 * gi * gi;
    s2[i] = v;
    let u = gi / (sqrt(v / ep.bias_correction2) + ep.eps) + ep.weight_decay * p[i];
    p[i] = p[i] - ep.lr * u;
}

// AMUSE end of step: x_next = lerp(y, z, c); y = lerp(x_next, z, 1 - beta) (in w);
// p = y, s1 = z, s3 = stored x (written only with EXPLICIT_X).
@compute @workgroup_size(256)
fn amuse_tail(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    let x_next = lerp(p[i], s1[i], ep.ckp1);
    if (has(EXPLICIT_X)) {
        s3[i] = x_next;
    }
    p[i] = lerp(x_next, s1[i], ep.w);
}
