// The random family (optiscope_core::device::random).
// Philox4x32-10, the twin of optiscope-core's `rng` module: word i of stream s under key k is word
// i % 4 of philox(counter = (lo(i/4), hi(i/4), lo(s), hi(s)), key = k). WGSL has no 64-bit
// integers, so the 32x32 -> 64-bit products are built from 16-bit halves.

struct RngParams {
    key_lo: u32,
    key_hi: u32,
    stream_lo: u32,
    stream_hi: u32,
    // Number of outputs to write.
    n: u32,
    // First output index (outputs are words/normals offset .. offset + n).
    offset: u32,
    scale: f32,
    // axpy_normal: the factor of the old value.
    decay: f32,
}

@group(0) @binding(0) var<uniform> rp: RngParams;
@group(0) @binding(1) var<storage, read_write> out_u32: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_f32: array<f32>;

// (hi, lo) of the 64-bit product a * b.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let lo = (ll & 0xffffu) | (mid << 16u);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, lo);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 10u; r++) {
        if (r > 0u) {
            k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
        }
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

fn block_at(q: u32) -> vec4<u32> {
    // Block indices above 2^32 are not needed by any kernel here (hi word 0).
    return philox4x32_10(vec4<u32>(q, 0u, rp.stream_lo, rp.stream_hi), vec2<u32>(rp.key_lo, rp.key_hi));
}

// Writes words offset .. offset + n of the stream.
@compute @workgroup_size(256)
fn fill_u32(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= rp.n) {
        return;
    }
    let idx = rp.offset + i;
    out_u32[i] = block_at(idx / 4u)[idx % 4u];
}

fn unit_f32(w: u32) -> f32 {
    return f32(w >> 8u) * (1.0 / 16777216.0);
}

// Standard normal idx of the stream (Box-Muller on word pairs, as on the CPU).
fn normal_at(idx: u32) -> f32 {
    let w = block_at(idx / 4u);
    let lane = idx % 4u;
    let pair = (lane / 2u) * 2u;
    let u1 = f32((w[pair] >> 8u) + 1u) * (1.0 / 16777216.0);
    let u2 = unit_f32(w[pair + 1u]);
    let r = sqrt(-2.0 * log(u1));
    let theta = 6.2831855 * u2;
    return select(r * cos(theta), r * sin(theta), lane % 2u == 1u);
}

// Writes scale * normals offset .. offset + n.
@compute @workgroup_size(256)
fn fill_normal(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= rp.n) {
        return;
    }
    out_f32[i] = rp.scale * normal_at(rp.offset + i);
}

// In place, MeZO's perturbation and update: out_f32[i] = decay * out_f32[i] + scale * z_i with z_i
// normal offset + i, regenerated here and never stored.
@compute @workgroup_size(256)
fn axpy_normal(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= rp.n) {
        return;
    }
    out_f32[i] = rp.decay * out_f32[i] + rp.scale * normal_at(rp.offset + i);
}
