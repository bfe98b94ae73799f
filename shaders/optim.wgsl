// The optimizer-update family (optiscope_core::device::optim): elementwise update rules, the twins
// of `device::optim::elementwise`. Every per-step scalar (bias corrections, Schedule-Free weights,
// 1 - beta) arrives precomputed by the host in f64 and rounded to f32, as the CPU executor receives it.

struct ElemParams {
    n: u32,
    // Bit 0 nesterov, bit 1 maximize, bit 2 first step, bit 3 decoupled decay, bit 4 amsgrad,
    // bit 5 AMUSE's explicit x, bit 6 apply the prox (ProxGen), bit 7 the subgradient baseline
    // instead of the prox, bits 8-9 the regularizer.
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
    // Interpolation weight of lerp kernels; decay factor of decay_sub; ProxGen's lr * penalty.
    w: f32,
    // ProxGen's penalty (the subgradient baseline's factor of the subgradient).
    penalty: f32,
    _pad3: f32,
}

const NESTEROV: u32 = 1u;
const MAXIMIZE: u32 = 2u;
const FIRST_STEP: u32 = 4u;
const DECOUPLED: u32 = 8u;
const AMSGRAD: u32 = 16u;
const EXPLICIT_X: u32 = 32u;
const PROX: u32 = 64u;
const SUBGRADIENT: u32 = 128u;
const REG_L1: u32 = 0u;
const REG_L0: u32 = 1u;
const REG_LHALF: u32 = 2u;

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

// prox_{lam R}(z) for R = |x|^q, q = 1, 0, 1/2, 2/3 (reg 0..3): the twin of
// optiscope_core::device::optim::prox (computed there in f64). Branch-free per coordinate: every
// transcendental function gets a safe argument (the coordinate clamped to the threshold, lam to a
// tiny positive value) and `select` keeps the closed form only where |z| > threshold. `reg` is
// uniform over the dispatch.
fn prox_q(z: f32, lam_in: f32, reg: u32) -> f32 {
    let az = abs(z);
    let s = sign(z);
    let lam = max(lam_in, 1e-30);
    var x: f32;
    if (reg == REG_L1) {
        x = s * max(az - lam, 0.0);
    } else if (reg == REG_L0) {
        x = select(0.0, z, az > sqrt(2.0 * lam));
    } else if (reg == REG_LHALF) {
        let l2 = 2.0 * lam;
        let thr = 1.5 * pow(lam, 2.0 / 3.0);
        let a = max(az, thr);
        // (L/8)(a/3)^(-3/2) <= 1/sqrt(2) for a >= thr.
        let arg = min((l2 / 8.0) * pow(a / 3.0, -1.5), 1.0);
        let phi = acos(arg);
        var v = (2.0 / 3.0) * a * (1.0 + cos((2.0 / 3.0) * (3.14159265358979 - phi)));
        // One Newton step on the stationarity of the magnitude, v - a + (lam/2) v^(-1/2) = 0
        // (derivative 1 - (lam/4) v^(-3/2) >= 3/4 on this branch): f32 acos/cos lose ~1e-5.
        let rv = inverseSqrt(v);
        v = v - (v - a + 0.5 * lam * rv) / (1.0 - 0.25 * lam * rv * rv * rv);
        x = select(0.0, s * v, az > thr);
    } else {
        let l2 = 2.0 * lam;
        let thr = 2.0 * pow(2.0 * lam / 3.0, 0.75);
        let a = max(az, thr);
        // acosh((27/16) a^2 L^(-3/2)) in logs, so a tiny L cannot overflow: for large arguments
        // acosh(y) = ln(2y) to f32 precision.
        let ly = log(27.0 / 16.0) + 2.0 * log(a) - 1.5 * log(l2);
        let y = exp(min(ly, 40.0));
        let phi = select(log(y + sqrt(max(y * y - 1.0, 0.0))), 0.6931472 + ly, ly > 20.0);
        // cosh(phi / 3) in logs for the same reason; sqrt(cosh) = exp(log(cosh) / 2).
        let t = phi / 3.0;
        let log_cosh = select(log(0.5 * (exp(t) + exp(-t))), t - 0.6931472, t > 20.0);
        let aa = (2.0 / sqrt(3.0)) * exp(0.25 * log(l2) + 0.5 * log_cosh);
        let r = (aa + sqrt(max(2.0 * a / aa - aa * aa, 0.0))) / 2.0;
        var v = r * r * r;
        // One Newton step on v - a + (2/3) lam v^(-1/3) = 0 (derivative 1 - (2/9) lam v^(-4/3)
        // >= 2/3 on this branch).
        let c = pow(v, -1.0 / 3.0);
        v = v - (v - a + (2.0 / 3.0) * lam * c) / (1.0 - (2.0 / 9.0) * lam * c / v);
        x = select(0.0, s * v, az > thr);
    }
    return select(x, z, lam_in <= 0.0);
}

fn prox_reg() -> u32 {
    return (ep.flags >> 8u) & 3u;
}

// ProxGen (Adam instance): p, g, s1 = m, s2 = v. Decoupled decay, Adam's moments, z = Adam step,
// then p = prox(z; lr*penalty / denom) where the PROX flag is set (weight tensors).
// The subgradient of |x|^q (0 at x = 0, and everywhere for l0), branch-free: the powers see a
// safe argument on every lane.
fn subgrad_q(x: f32, reg: u32) -> f32 {
    let ax = abs(x);
    let safe = select(ax, 1.0, ax == 0.0);
    let s = sign(x);
    var d = s;
    d = select(d, 0.0, reg == REG_L0);
    d = select(d, 0.5 * s * inverseSqrt(safe), reg == REG_LHALF);
    d = select(d, (2.0 / 3.0) * s * pow(safe, -1.0 / 3.0), reg == 3u);
    return d;
}

@compute @workgroup_size(256)
fn proxgen_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    // The subgradient baseline (weight tensors: PROX and SUBGRADIENT set): Adam on f + lambda R.
    let sub = has(PROX) && has(SUBGRADIENT);
    let gi = g[i] + select(0.0, ep.penalty * subgrad_q(p[i], prox_reg()), sub);
    let pd = p[i] * (1.0 - ep.lr * ep.weight_decay);
    let m = lerp(s1[i], gi, ep.one_minus_beta1);
    s1[i] = m;
    let v = ep.beta2 * s2[i] + ep.one_minus_beta2 * gi * gi;
    s2[i] = v;
    let denom = sqrt(v) / ep.bc2_sqrt + ep.eps;
    let z = pd - ep.step_size * m / denom;
    p[i] = select(z, prox_q(z, ep.w / denom, prox_reg()), has(PROX) && !sub);
}

// Proximal SGD: p, g, s1 = momentum buffer. Decoupled decay, m = momentum * m + g, z = p - lr m,
// then p = prox(z; lr*penalty) where the PROX flag is set.
@compute @workgroup_size(256)
fn prox_sgd_step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= ep.n) {
        return;
    }
    let pd = p[i] * (1.0 - ep.lr * ep.weight_decay);
    let m = ep.momentum * s1[i] + g[i];
    s1[i] = m;
    let z = pd - ep.lr * m;
    p[i] = select(z, prox_q(z, ep.w, prox_reg()), has(PROX));
}
