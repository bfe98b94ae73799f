// AdaBlock's update (optiscope_core::device::optim::adablock, the CPU twin): Adam with a full
// g x g second moment per block of g consecutive output units sharing one input unit, the step
// Q diag(step / (sqrt(s) + delta)) Q^T m_b from each block's eigendecomposition. One workgroup
// per block: cyclic Jacobi in the round-robin ordering, whose ceil(g/2) rotations of a round touch
// disjoint index pairs and are applied at once (rows, then columns), `sweeps` sweeps, as the twin.

struct BlockParams {
    blocks: u32,
    groups: u32,
    out_units: u32,
    in_units: u32,
    // Bit 0: spectrum clipping into [clip_lo, clip_hi].
    flags: u32,
    sweeps: u32,
    _pad0: u32,
    _pad1: u32,
    lr: f32,
    weight_decay: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    step_size: f32,
    jitter: f32,
    delta: f32,
    clip_lo: f32,
    clip_hi: f32,
    _pad2: f32,
    _pad3: f32,
}

const CLIP: u32 = 1u;
const TAU_MAX: f32 = 1e18;

@group(0) @binding(0) var<uniform> bp: BlockParams;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

fn lerp(a: f32, b: f32, w: f32) -> f32 {
    return a + w * (b - a);
}

// The step along an eigen-direction with eigenvalue s (clamped at 0), clipped when asked.
fn eigen_step(s: f32) -> f32 {
    let e = bp.step_size / (sqrt(max(s, 0.0)) + bp.delta);
    return select(e, clamp(e, bp.clip_lo, bp.clip_hi), (bp.flags & CLIP) != 0u);
}

// g = 1 (vectors, and weights with one output unit per block): elementwise, one thread per
// coordinate, V_b the scalar v.
@compute @workgroup_size(256)
fn adablock_diag(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= bp.blocks) {
        return;
    }
    let gi = g[i];
    let pd = p[i] * (1.0 - bp.lr * bp.weight_decay);
    let mi = m[i] + bp.one_minus_beta1 * (gi - m[i]);
    m[i] = mi;
    let vi = bp.beta2 * v[i] + bp.one_minus_beta2 * gi * gi;
    v[i] = vi;
    p[i] = pd - eigen_step(vi + bp.jitter) * mi;
}

var<workgroup> a: array<f32, 1024>;
var<workgroup> q: array<f32, 1024>;
var<workgroup> gb: array<f32, 32>;
var<workgroup> mb: array<f32, 32>;
var<workgroup> yb: array<f32, 32>;
var<workgroup> rot: array<vec2<f32>, 16>;

// Flat index of coordinate r of block b (W^T reshaped to rows of g).
fn flat_index(b: u32, r: u32) -> u32 {
    let per_input = bp.out_units / bp.groups;
    let i = b / per_input;
    let k = b % per_input;
    return (k * bp.groups + r) * bp.in_units + i;
}

// Slot k of round r of the round-robin ordering of n (even) indices: (p, q) with p < q, and
// whether it is a real pair (q < g) rather than one with the padding index of an odd g.
fn pair(n: u32, r: u32, k: u32) -> vec3<u32> {
    let mm = n - 1u;
    var x = mm;
    var y = r;
    if (k != 0u) {
        x = (r + k) % mm;
        y = (r + mm - k) % mm;
    }
    let lo = min(x, y);
    let hi = max(x, y);
    return vec3<u32>(lo, hi, select(0u, 1u, hi < bp.groups));
}

// The Jacobi rotation (c, s) that zeroes a_pq (Golub & Van Loan 8.4.1), identity for a_pq = 0.
fn rotation(app: f32, aqq: f32, apq: f32) -> vec2<f32> {
    let nz = apq != 0.0;
    let tau = clamp((aqq - app) / (2.0 * select(1.0, apq, nz)), -TAU_MAX, TAU_MAX);
    let sgn = select(-1.0, 1.0, tau >= 0.0);
    let t = sgn / (abs(tau) + sqrt(1.0 + tau * tau));
    let c = 1.0 / sqrt(1.0 + t * t);
    return select(vec2<f32>(1.0, 0.0), vec2<f32>(c, t * c), nz);
}

@compute @workgroup_size(64)
fn adablock_block(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b = wid.x + wid.y * nwg.x;
    if (b >= bp.blocks) {
        return;
    }
    let gs = bp.groups;
    // Moments; the decayed parameter stays in p until the update (same thread, same index).
    if (lid < gs) {
        let i = flat_index(b, lid);
        let gi = g[i];
        p[i] = p[i] * (1.0 - bp.lr * bp.weight_decay);
        let mi = m[i] + bp.one_minus_beta1 * (gi - m[i]);
        m[i] = mi;
        gb[lid] = gi;
        mb[lid] = mi;
    }
    workgroupBarrier();
    let base = b * gs * gs;
    for (var e = lid; e < gs * gs; e += 64u) {
        let r = e / gs;
        let c = e % gs;
        let ve = bp.beta2 * v[base + e] + bp.one_minus_beta2 * gb[r] * gb[c];
        v[base + e] = ve;
        a[e] = ve + select(0.0, bp.jitter, r == c);
        q[e] = select(0.0, 1.0, r == c);
    }
    workgroupBarrier();
    let n = gs + gs % 2u;
    let half = n / 2u;
    for (var sweep = 0u; sweep < bp.sweeps; sweep += 1u) {
        for (var r = 0u; r + 1u < n; r += 1u) {
            if (lid < half) {
                let pq = pair(n, r, lid);
                var cs = vec2<f32>(1.0, 0.0);
                if (pq.z == 1u) {
                    cs = rotation(a[pq.x * gs + pq.x], a[pq.y * gs + pq.y], a[pq.x * gs + pq.y]);
                }
                rot[lid] = cs;
            }
            workgroupBarrier();
            // A <- J^T A: rows p and q of every pair.
            for (var e = lid; e < half * gs; e += 64u) {
                let k = e / gs;
                let j = e % gs;
                let pq = pair(n, r, k);
                if (pq.z == 1u) {
                    let cs = rot[k];
                    let x = a[pq.x * gs + j];
                    let y = a[pq.y * gs + j];
                    a[pq.x * gs + j] = cs.x * x - cs.y * y;
                    a[pq.y * gs + j] = cs.y * x + cs.x * y;
                }
            }
            workgroupBarrier();
            // A <- A J and Q <- Q J: columns p and q of every pair.
            for (var e = lid; e < half * gs; e += 64u) {
                let k = e / gs;
                let i = e % gs;
                let pq = pair(n, r, k);
                if (pq.z == 1u) {
                    let cs = rot[k];
                    let x = a[i * gs + pq.x];
                    let y = a[i * gs + pq.y];
                    a[i * gs + pq.x] = cs.x * x - cs.y * y;
                    a[i * gs + pq.y] = cs.y * x + cs.x * y;
                    let u = q[i * gs + pq.x];
                    let w = q[i * gs + pq.y];
                    q[i * gs + pq.x] = cs.x * u - cs.y * w;
                    q[i * gs + pq.y] = cs.y * u + cs.x * w;
                }
            }
            workgroupBarrier();
        }
    }
    // y = diag(e(s)) Q^T m_b, then p_b -= Q y.
    if (lid < gs) {
        var acc = 0.0;
        for (var c = 0u; c < gs; c += 1u) {
            acc += q[c * gs + lid] * mb[c];
        }
        yb[lid] = eigen_step(a[lid * gs + lid]) * acc;
    }
    workgroupBarrier();
    if (lid < gs) {
        var acc = 0.0;
        for (var j = 0u; j < gs; j += 1u) {
            acc += q[lid * gs + j] * yb[j];
        }
        let i = flat_index(b, lid);
        p[i] = p[i] - acc;
    }
}
