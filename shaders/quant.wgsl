// The quantization family (optiscope_core::device::quant): the per-weight quantization kernel and
// ProxQuant's prox onto the grid, the f32 twins of optiscope_core::device::quant::kernel
// (quantize_one, prox_grid). The chain rule around it (the gain product and the gradient-weighted
// sums) is the dense family's (dense_rows.wgsl).
//
// The categorical modes follow core/src/device/quant/categorical.rs formula for formula: interval masses of the
// logistic noise model in log space (stable many sigma away from a cell), the Gumbel-softmax
// sample of Relaxed Quantization, and the multi-class straight-through estimator with level keep
// weights. The CPU reference computes in f64; here everything is f32 (WGSL has neither f64 nor
// log1p/expm1, which are written out below so small arguments keep their relative precision).
//
// Outputs per weight i: out0[i] = x_hat, out1[i] = gain dx_hat/dw, out2[i * 6 + j] =
// dx_hat/d(alpha, sigma, K1, K2, K3, K4).

struct QuantParams {
    // Elements (weights).
    n: u32,
    // Bits b of the grid.
    bits: u32,
    // Bit 0: extend the outermost cells to +-inf (categorical modes); bit 1: restricted symmetric
    // range (Nearest); bit 2: prox_grid has Adam's second moment v at binding 1.
    flags: u32,
    _pad0: u32,
    // Grid step alpha (the uniform step s of Nearest).
    alpha: f32,
    // Logistic noise scale sigma.
    sigma: f32,
    // Gumbel-softmax temperature (Relaxed).
    tau: f32,
    // prox_grid: eta * lambda_t, 1 - beta2^t, the optimizer's eps.
    threshold: f32,
    bias_correction2: f32,
    eps: f32,
    // prox_grid: the grid alpha*k + beta for k in [kmin, kmax] (small integers, exact in f32).
    kmin: f32,
    kmax: f32,
    // Keep weights K1..K4 of the bit levels (MultiClass).
    keep: vec4<f32>,
    beta: f32,
    // Zero point z of the asymmetric mode (a small integer, exact in f32).
    zero_point: f32,
    _pad1: f32,
    _pad2: f32,
}

@group(0) @binding(0) var<uniform> qp: QuantParams;
// Weights w (quantize), v (prox_grid).
@group(0) @binding(1) var<storage, read> src: array<f32>;
// Gumbel noise, 2^b per weight (Relaxed).
@group(0) @binding(2) var<storage, read> aux: array<f32>;
// x_hat (quantize), w in place (prox_grid).
@group(0) @binding(3) var<storage, read_write> out0: array<f32>;
// The gain (quantize).
@group(0) @binding(4) var<storage, read_write> out1: array<f32>;
// The n x 6 parameter derivatives (quantize).
@group(0) @binding(5) var<storage, read_write> out2: array<f32>;

const DPARAMS: u32 = 6u;
const EXTEND_EDGES: u32 = 1u;
const RESTRICTED: u32 = 2u;
const HAS_V: u32 = 4u;
const LOWEST: f32 = -3.4028235e38;

// log(1 + x), x > -1, with full relative precision near 0.
fn log1p_(x: f32) -> f32 {
    if (abs(x) < 1e-2) {
        // Taylor series to x^6: truncation below 2e-15 relative.
        return x * (1.0 - x * (0.5 - x * (1.0 / 3.0 - x * (0.25 - x * (0.2 - x / 6.0)))));
    }
    return log(1.0 + x);
}

// exp(d) - 1 for |d| <= ln 2 (Taylor series to d^10: truncation below 1e-9 relative).
fn expm1_small(d: f32) -> f32 {
    var t = 1.0 / 3628800.0;
    t = 1.0 / 362880.0 + d * t;
    t = 1.0 / 40320.0 + d * t;
    t = 1.0 / 5040.0 + d * t;
    t = 1.0 / 720.0 + d * t;
    t = 1.0 / 120.0 + d * t;
    t = 1.0 / 24.0 + d * t;
    t = 1.0 / 6.0 + d * t;
    t = 0.5 + d * t;
    t = 1.0 + d * t;
    return d * t;
}

// log(1 - e^d) for d < 0 (the CPU's ln_1p(-exp(d)), without the cancellation f32 has near 0).
fn log1mexp(d_in: f32) -> f32 {
    // Equal log-masses in f32 where f64 still separates them: keep the result finite.
    let d = min(d_in, -1e-30);
    if (d > -0.6931472) {
        return log(-expm1_small(d));
    }
    return log1p_(-exp(d));
}

// log sigma(u) = -softplus(-u), stable for every u.
fn log_sigmoid(u: f32) -> f32 {
    return -(max(-u, 0.0) + log1p_(exp(-abs(u))));
}

// log sigma'(u) = log sigma(u) + log sigma(-u).
fn log_dsigmoid(u: f32) -> f32 {
    return log_sigmoid(u) + log_sigmoid(-u);
}

// log(e^a - e^b) for a > b.
fn log_diff_exp(a: f32, b: f32) -> f32 {
    return a + log1mexp(b - a);
}

// Level of grid index k in a b-bit grid: the smallest j with k = 0 mod 2^(b - j).
fn bit_level(k: i32, bits: u32) -> u32 {
    for (var j = 1u; j <= bits; j++) {
        let mask = (1i << (bits - j)) - 1i;
        if ((k & mask) == 0i) {
            return j;
        }
    }
    return bits;
}

// log pi_k and d log pi_k / d(x, alpha, sigma) of every cell, written by masses().
var<private> log_pi: array<f32, 16>;
var<private> dlog_pi: array<vec3<f32>, 16>;

fn kmin() -> i32 {
    return -(1i << (qp.bits - 1u));
}

fn points() -> u32 {
    return 1u << qp.bits;
}

// The masses pi_k = P(x + eps in cell k), eps ~ Logistic(0, sigma), of every cell.
fn masses(x: f32) {
    let n = points();
    let a = qp.alpha;
    let s = qp.sigma;
    let extend = (qp.flags & EXTEND_EDGES) != 0u;
    for (var i = 0u; i < n; i++) {
        let kf = f32(kmin() + i32(i));
        // Upper and lower standardized boundaries and their derivatives w.r.t. (x, alpha, sigma).
        let hi = (a * (kf + 0.5) - x) / s;
        let lo = (a * (kf - 0.5) - x) / s;
        let dhi = vec3<f32>(-1.0 / s, (kf + 0.5) / s, -hi / s);
        let dlo = vec3<f32>(-1.0 / s, (kf - 0.5) / s, -lo / s);
        if (extend && i == n - 1u) {
            // pi = 1 - sigma(lo) = sigma(-lo); d log pi = -sigma(lo) d lo.
            log_pi[i] = log_sigmoid(-lo);
            dlog_pi[i] = -exp(log_sigmoid(lo)) * dlo;
        } else if (extend && i == 0u) {
            // pi = sigma(hi); d log pi = sigma(-hi) d hi.
            log_pi[i] = log_sigmoid(hi);
            dlog_pi[i] = exp(log_sigmoid(-hi)) * dhi;
        } else {
            // Both CDFs near 1 would cancel: use the complementary tails there.
            var lp: f32;
            if (hi + lo > 0.0) {
                lp = log_diff_exp(log_sigmoid(-lo), log_sigmoid(-hi));
            } else {
                lp = log_diff_exp(log_sigmoid(hi), log_sigmoid(lo));
            }
            let wh = exp(log_dsigmoid(hi) - lp);
            let wl = exp(log_dsigmoid(lo) - lp);
            log_pi[i] = lp;
            dlog_pi[i] = wh * dhi - wl * dlo;
        }
    }
}

fn write_out(i: u32, xhat: f32, gain: f32, d0: f32, d1: f32, dk: vec4<f32>) {
    out0[i] = xhat;
    out1[i] = gain;
    let base = i * DPARAMS;
    out2[base] = d0;
    out2[base + 1u] = d1;
    out2[base + 2u] = dk.x;
    out2[base + 3u] = dk.y;
    out2[base + 4u] = dk.z;
    out2[base + 5u] = dk.w;
}

// x_hat = w, gain 1 (full precision, ProxQuant's training forward).
@compute @workgroup_size(64)
fn quantize_identity(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= qp.n) {
        return;
    }
    write_out(i, src[i], 1.0, 0.0, 0.0, vec4<f32>(0.0));
}

// Uniform rounding alpha * clip(round(w / alpha), -Q_N, Q_P) (round half to even), the clipped
// STE gain, and LSQ's d x_hat / d s in column 0.
@compute @workgroup_size(64)
fn quantize_nearest(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= qp.n) {
        return;
    }
    let qpos = f32((1i << (qp.bits - 1u)) - 1i);
    let qneg = select(qpos + 1.0, qpos, (qp.flags & RESTRICTED) != 0u);
    let s = qp.alpha;
    let v = src[i] / s;
    let q = clamp(round(v), -qneg, qpos);
    var ds: f32;
    if (v <= -qneg) {
        ds = -qneg;
    } else if (v >= qpos) {
        ds = qpos;
    } else {
        ds = q - v;
    }
    let inside = v > -qneg && v < qpos;
    write_out(i, s * q, select(0.0, 1.0, inside), ds, 0.0, vec4<f32>(0.0));
}

// Asymmetric unsigned rounding alpha * (clamp(round(w / alpha) + z, 0, 2^b - 1) - z), clipped-STE
// gain (1 where round(w / alpha) + z lies in [0, 2^b - 1]) and the LSQ-style d x_hat / d alpha.
@compute @workgroup_size(256)
fn quantize_asymmetric(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= qp.n) {
        return;
    }
    let top = f32((1u << qp.bits) - 1u);
    let z = qp.zero_point;
    let s = qp.alpha;
    let v = src[i] / s;
    let u = round(v) + z;
    let q = clamp(u, 0.0, top);
    let inside = u >= 0.0 && u <= top;
    let ds = select(q - z, u - z - v, inside);
    write_out(i, s * (q - z), select(0.0, 1.0, inside), ds, 0.0, vec4<f32>(0.0));
}

// Relaxed Quantization's training sample: y = softmax((log pi + G) / tau), x_hat = sum y_k g_k,
// with its exact derivatives. G: 2^b Gumbel values per weight at binding 2.
@compute @workgroup_size(64)
fn quantize_relaxed(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= qp.n) {
        return;
    }
    let n = points();
    let k0 = kmin();
    let a = qp.alpha;
    masses(src[i]);
    var y: array<f32, 16>;
    var top = LOWEST;
    for (var j = 0u; j < n; j++) {
        y[j] = (log_pi[j] + aux[i * n + j]) / qp.tau;
        top = max(top, y[j]);
    }
    var total = 0.0;
    for (var j = 0u; j < n; j++) {
        y[j] = exp(y[j] - top);
        total += y[j];
    }
    var xhat = 0.0;
    var mean_k = 0.0;
    for (var j = 0u; j < n; j++) {
        y[j] = y[j] / total;
        let kf = f32(k0 + i32(j));
        xhat += y[j] * (a * kf);
        mean_k += y[j] * kf;
    }
    var d = vec3<f32>(0.0);
    for (var j = 0u; j < n; j++) {
        let c = y[j] * (a * f32(k0 + i32(j)) - xhat) / qp.tau;
        d += c * dlog_pi[j];
    }
    write_out(i, xhat, d.x, d.y + mean_k, d.z, vec4<f32>(0.0));
}

// The multi-class straight-through estimator of SRQ/CPQ: the categorical r_k ~ pi_k K_level(k);
// forward: its mode; backward: the slope of f = sum r_k g_k, plus the selected point's own
// dependence on alpha.
@compute @workgroup_size(64)
fn quantize_multiclass(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= qp.n) {
        return;
    }
    let n = points();
    let k0 = kmin();
    let a = qp.alpha;
    masses(src[i]);
    // Unnormalised weights relative to the largest log-mass among the surviving points (K > 0):
    // relative to a removed point far above them, every survivor's weight would underflow (0/0).
    // Removed points get weight 0 (as on the CPU).
    var top = LOWEST;
    for (var j = 0u; j < n; j++) {
        if (qp.keep[bit_level(k0 + i32(j), qp.bits) - 1u] > 0.0) {
            top = max(top, log_pi[j]);
        }
    }
    var w: array<f32, 16>;
    var total = 0.0;
    var best = 0u;
    var found = false;
    var best_score = LOWEST;
    for (var j = 0u; j < n; j++) {
        let kw = qp.keep[bit_level(k0 + i32(j), qp.bits) - 1u];
        w[j] = select(0.0, exp(log_pi[j] - top), kw > 0.0);
        total += w[j] * kw;
        if (kw > 0.0) {
            // The first maximal score wins, as on the CPU.
            let score = log_pi[j] + log(kw);
            if (!found || score > best_score) {
                best_score = score;
                best = j;
                found = true;
            }
        }
    }
    var f = 0.0;
    for (var j = 0u; j < n; j++) {
        let kw = qp.keep[bit_level(k0 + i32(j), qp.bits) - 1u];
        f += w[j] * kw * (a * f32(k0 + i32(j)));
    }
    f = f / total;
    var d = vec3<f32>(0.0);
    var dkeep = vec4<f32>(0.0);
    for (var j = 0u; j < n; j++) {
        let level = bit_level(k0 + i32(j), qp.bits);
        let kw = qp.keep[level - 1u];
        let c = w[j] * (a * f32(k0 + i32(j)) - f) / total;
        d += kw * c * dlog_pi[j];
        if (level > 1u) {
            dkeep[level - 1u] += c;
        }
    }
    let k = f32(k0 + i32(best));
    write_out(i, a * k, d.x, d.y + k, d.z, dkeep);
}

// ProxQuant's prox toward the grid alpha*k + beta, k in [kmin, kmax], in place on out0: a coordinate
// within tau of its nearest point (ties to the upper point) lands on it, any other moves tau
// towards it; tau = threshold / (sqrt(v / bias_correction2) + eps) with v at binding 1, else
// threshold.
@compute @workgroup_size(256)
fn prox_grid(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= qp.n) {
        return;
    }
    var tau = qp.threshold;
    if ((qp.flags & HAS_V) != 0u) {
        tau = qp.threshold / (sqrt(src[i] / qp.bias_correction2) + qp.eps);
    }
    let z = out0[i];
    let g = qp.alpha * clamp(floor((z - qp.beta) / qp.alpha + 0.5), qp.kmin, qp.kmax) + qp.beta;
    let d = z - g;
    if (abs(d) <= tau) {
        out0[i] = g;
    } else {
        out0[i] = z - tau * sign(d);
    }
}
