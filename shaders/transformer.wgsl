// The transformer family (optiscope_core::device::transformer): token and position embeddings
// and their scatter-add backward, LayerNorm and its backward, GELU (tanh form) and its backward,
// causal multi-head attention (probabilities, outputs, score gradients, qkv gradients), residual
// sums and global-norm gradient clipping; the f32 twins of `TransformerOps for Cpu`, summing in
// the same order. Activations are row-major `(batch * seq) x C`; qkv rows hold q | k | v, head h
// in columns h*d .. (h+1)*d of each; probabilities are batch x heads x seq x seq.
//
// Every entry point is dispatched flat over its threads, in up to 65535 x Y workgroups of 256
// (`flat`), so that large activations fit the per-dimension limit. Nothing here uses atomics: a
// gradient that gathers from many rows is one thread looping over them in order.

struct TfParams {
    // Rows of the activations (batch * seq); elementwise kernels: the length.
    rows: u32,
    // The width C (LayerNorm: of the normalised rows).
    cols: u32,
    batch: u32,
    seq: u32,
    heads: u32,
    head_dim: u32,
    // embed: rows of wte; embed_backward_*: the vocabulary / positions; clip: buffers in sums.
    extra: u32,
    // clip_grad_norm: the largest norm; attention: 1/sqrt(head_dim).
    scalar: f32,
}

@group(0) @binding(0) var<uniform> tp: TfParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;
@group(0) @binding(5) var<storage, read_write> out0: array<f32>;
@group(0) @binding(6) var<storage, read_write> out1: array<f32>;

const LN_EPS: f32 = 1e-5;
const SQRT_2_OVER_PI: f32 = 0.7978846;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// x[i, k] = wte[tokens[i], k] + wpe[i % seq, k]; a = wte, b = wpe, c = tokens.
@compute @workgroup_size(256)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat(gid, nwg);
    if (idx >= tp.rows * tp.cols) {
        return;
    }
    let i = idx / tp.cols;
    let k = idx % tp.cols;
    let tok = u32(c[i]);
    let t = i % tp.seq;
    out0[idx] = a[tok * tp.cols + k] + b[t * tp.cols + k];
}

// The rows of each token, for the scatter-add without a scan of every row per (token, column):
// out0 = [offsets (extra + 1) | row indices (rows)], the rows of token v in ascending order at
// out0[extra + 1 + offsets[v] ..< extra + 1 + offsets[v + 1]] (integers as f32, exact below 2^24).
// One workgroup: its threads count and then place the rows of their tokens (v = lid, lid + 256, ..),
// with the prefix sum of the counts by thread 0 between. c = tokens.
@compute @workgroup_size(256)
fn embed_token_rows(@builtin(local_invocation_id) lid: vec3<u32>) {
    let vocab = tp.extra;
    for (var v = lid.x; v < vocab; v += 256u) {
        let fv = f32(v);
        var n = 0u;
        for (var i = 0u; i < tp.rows; i++) {
            if (c[i] == fv) {
                n++;
            }
        }
        out0[v + 1u] = f32(n);
    }
    storageBarrier();
    if (lid.x == 0u) {
        out0[0] = 0.0;
        for (var v = 0u; v < vocab; v++) {
            out0[v + 1u] = out0[v + 1u] + out0[v];
        }
    }
    storageBarrier();
    for (var v = lid.x; v < vocab; v += 256u) {
        let fv = f32(v);
        var at = vocab + 1u + u32(out0[v]);
        for (var i = 0u; i < tp.rows; i++) {
            if (c[i] == fv) {
                out0[at] = f32(i);
                at++;
            }
        }
    }
}

// dwte[v, k] = sum over rows i with tokens[i] == v of dx[i, k], in row order; a = dx, b = the
// rows of each token (embed_token_rows); a thread per (v, k) for v < extra (the vocabulary).
@compute @workgroup_size(256)
fn embed_backward_wte(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat(gid, nwg);
    if (idx >= tp.extra * tp.cols) {
        return;
    }
    let v = idx / tp.cols;
    let k = idx % tp.cols;
    let rows = tp.extra + 1u;
    var s = 0.0;
    for (var j = u32(b[v]); j < u32(b[v + 1u]); j++) {
        s += a[u32(b[rows + j]) * tp.cols + k];
    }
    out0[idx] = s;
}

// dwpe[t, k] = sum over the batch of dx[b * seq + t, k], in order (0 past seq); a thread per (t, k)
// for t < extra (the positions).
@compute @workgroup_size(256)
fn embed_backward_wpe(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat(gid, nwg);
    if (idx >= tp.extra * tp.cols) {
        return;
    }
    let t = idx / tp.cols;
    let k = idx % tp.cols;
    var s = 0.0;
    if (t < tp.seq) {
        for (var bb = 0u; bb < tp.batch; bb++) {
            s += a[(bb * tp.seq + t) * tp.cols + k];
        }
    }
    out0[idx] = s;
}

// LayerNorm of a row per thread: a = x, b = gain, c = bias; out0 = y, out1 = [mean, rstd] per row.
@compute @workgroup_size(256)
fn layer_norm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= tp.rows) {
        return;
    }
    let n = tp.cols;
    let base = r * n;
    var sum = 0.0;
    for (var k = 0u; k < n; k++) {
        sum += a[base + k];
    }
    let mean = sum / f32(n);
    var var_sum = 0.0;
    for (var k = 0u; k < n; k++) {
        let z = a[base + k] - mean;
        var_sum += z * z;
    }
    let rstd = 1.0 / sqrt(var_sum / f32(n) + LN_EPS);
    for (var k = 0u; k < n; k++) {
        out0[base + k] = (a[base + k] - mean) * rstd * b[k] + c[k];
    }
    out1[2u * r] = mean;
    out1[2u * r + 1u] = rstd;
}

// dx of a LayerNorm row per thread: a = dy, b = x, c = gain, d = stats; out0 = dx.
@compute @workgroup_size(256)
fn layer_norm_dx(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= tp.rows) {
        return;
    }
    let n = tp.cols;
    let base = r * n;
    let mean = d[2u * r];
    let rstd = d[2u * r + 1u];
    var m1 = 0.0;
    var m2 = 0.0;
    for (var k = 0u; k < n; k++) {
        let xhat = (b[base + k] - mean) * rstd;
        let g = a[base + k] * c[k];
        m1 += g;
        m2 += g * xhat;
    }
    m1 = m1 / f32(n);
    m2 = m2 / f32(n);
    for (var k = 0u; k < n; k++) {
        let xhat = (b[base + k] - mean) * rstd;
        out0[base + k] = rstd * (a[base + k] * c[k] - m1 - xhat * m2);
    }
}

// dw, db of a LayerNorm, a column per thread summing the rows in order: a = dy, b = x, d = stats;
// out0 = dw, out1 = db.
@compute @workgroup_size(256)
fn layer_norm_dwdb(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat(gid, nwg);
    if (k >= tp.cols) {
        return;
    }
    var dw = 0.0;
    var db = 0.0;
    for (var r = 0u; r < tp.rows; r++) {
        let g = a[r * tp.cols + k];
        dw += g * (b[r * tp.cols + k] - d[2u * r]) * d[2u * r + 1u];
        db += g;
    }
    out0[k] = dw;
    out1[k] = db;
}

fn gelu_u(x: f32) -> f32 {
    return clamp(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x), -10.0, 10.0);
}

// out0 = gelu(a), elementwise (tp.rows values).
@compute @workgroup_size(256)
fn gelu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= tp.rows) {
        return;
    }
    let x = a[i];
    out0[i] = 0.5 * x * (1.0 + tanh(gelu_u(x)));
}

// out0 = a (dy) * gelu'(b (x)), elementwise.
@compute @workgroup_size(256)
fn gelu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= tp.rows) {
        return;
    }
    let x = b[i];
    let th = tanh(gelu_u(x));
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x);
    out0[i] = a[i] * (0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du);
}

// The causal softmax probabilities of one (sequence, head, position) per thread: a = qkv;
// out0 = probs (zeros above the diagonal are the buffer's initial zeros).
@compute @workgroup_size(256)
fn attn_probs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat(gid, nwg);
    let tl = tp.seq;
    if (idx >= tp.batch * tp.heads * tl) {
        return;
    }
    let t = idx % tl;
    let h = (idx / tl) % tp.heads;
    let bb = idx / (tl * tp.heads);
    let hd = tp.head_dim;
    let w3 = 3u * tp.heads * hd;
    let c0 = tp.heads * hd;
    let q = (bb * tl + t) * w3 + h * hd;
    let o = idx * tl;
    var m = -3.0e38;
    for (var s = 0u; s <= t; s++) {
        let k = (bb * tl + s) * w3 + c0 + h * hd;
        var dot = 0.0;
        for (var j = 0u; j < hd; j++) {
            dot += a[q + j] * a[k + j];
        }
        let sc = dot * tp.scalar;
        out0[o + s] = sc;
        m = max(m, sc);
    }
    var sum = 0.0;
    for (var s = 0u; s <= t; s++) {
        let e = exp(out0[o + s] - m);
        out0[o + s] = e;
        sum += e;
    }
    for (var s = 0u; s <= t; s++) {
        out0[o + s] = out0[o + s] / sum;
    }
}

// y[(b, t), h*d + j] = sum over s <= t of p[b, h, t, s] v[(b, s), h*d + j], in order: a = qkv,
// b = probs; a thread per output entry.
@compute @workgroup_size(256)
fn attn_out(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat(gid, nwg);
    let cw = tp.heads * tp.head_dim;
    if (idx >= tp.rows * cw) {
        return;
    }
    let tl = tp.seq;
    let row = idx / cw;
    let col = idx % cw;
    let h = col / tp.head_dim;
    let t = row % tl;
    let bb = row / tl;
    let p = ((bb * tp.heads + h) * tl + t) * tl;
    var y = 0.0;
    for (var s = 0u; s <= t; s++) {
        y += b[p + s] * a[(bb * tl + s) * 3u * cw + 2u * cw + col];
    }
    out0[idx] = y;
}

// The scores' gradients of one (sequence, head, position) per thread: ds[s] = p[s] (g.v_s -
// sum p g.v); a = dy, b = qkv, c = probs; out0 = ds (batch x heads x seq x seq).
@compute @workgroup_size(256)
fn attn_dscores(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat(gid, nwg);
    let tl = tp.seq;
    if (idx >= tp.batch * tp.heads * tl) {
        return;
    }
    let t = idx % tl;
    let h = (idx / tl) % tp.heads;
    let bb = idx / (tl * tp.heads);
    let hd = tp.head_dim;
    let cw = tp.heads * hd;
    let g = (bb * tl + t) * cw + h * hd;
    let o = idx * tl;
    var dot = 0.0;
    for (var s = 0u; s <= t; s++) {
        let v = (bb * tl + s) * 3u * cw + 2u * cw + h * hd;
        var dp = 0.0;
        for (var j = 0u; j < hd; j++) {
            dp += a[g + j] * b[v + j];
        }
        out0[o + s] = dp;
        dot += c[o + s] * dp;
    }
    for (var s = 0u; s <= t; s++) {
        out0[o + s] = c[o + s] * (out0[o + s] - dot);
    }
}

// dqkv, a thread per entry: a = ds, b = qkv, c = probs, d = dy. For q: sum over s <= t of
// ds[t, s]/sqrt(d) k_s; for k at position s: sum over t >= s of ds[t, s]/sqrt(d) q_t; for v at s:
// sum over t >= s of p[t, s] g_t (each in ascending order).
@compute @workgroup_size(256)
fn attn_dqkv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat(gid, nwg);
    let cw = tp.heads * tp.head_dim;
    let w3 = 3u * cw;
    if (idx >= tp.rows * w3) {
        return;
    }
    let tl = tp.seq;
    let row = idx / w3;
    let col = idx % w3;
    let part = col / cw;
    let hc = col % cw;
    let h = hc / tp.head_dim;
    let pos = row % tl;
    let bb = row / tl;
    let ph = (bb * tp.heads + h) * tl;
    var acc = 0.0;
    if (part == 0u) {
        for (var s = 0u; s <= pos; s++) {
            acc += a[(ph + pos) * tl + s] * tp.scalar * b[(bb * tl + s) * w3 + cw + hc];
        }
    } else if (part == 1u) {
        for (var t = pos; t < tl; t++) {
            acc += a[(ph + t) * tl + pos] * tp.scalar * b[(bb * tl + t) * w3 + hc];
        }
    } else {
        for (var t = pos; t < tl; t++) {
            acc += c[(ph + t) * tl + pos] * d[(bb * tl + t) * cw + hc];
        }
    }
    out0[idx] = acc;
}

// out0 = a + b (tp.rows values).
@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= tp.rows) {
        return;
    }
    out0[i] = a[i] + b[i];
}

// out0 += a (tp.rows values).
@compute @workgroup_size(256)
fn add_assign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= tp.rows) {
        return;
    }
    out0[i] = out0[i] + a[i];
}

// out0 *= min(1, scalar / (sqrt(sum of a[0 .. extra]) + 1e-6)) (tp.rows values): every thread
// sums the few per-buffer sums of squares itself, so the norm never leaves the device.
@compute @workgroup_size(256)
fn clip_grad_norm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= tp.rows) {
        return;
    }
    var total = 0.0;
    for (var k = 0u; k < tp.extra; k++) {
        total += a[k];
    }
    let s = min(1.0, tp.scalar / (sqrt(total) + 1e-6));
    if (s < 1.0) {
        out0[i] = out0[i] * s;
    }
}
