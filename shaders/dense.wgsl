// The dense family (optiscope_core::device::dense): matrix products.
// C <- alpha * op(A) * op(B) + beta * C for row-major f32 matrices, op(A): m x k, op(B): k x n.
// Three kernels: `matmul_vec4` (128x128 output tile per workgroup, 8x8 outputs per thread, vec4
// loads; at the end of the file), `matmul_tiled` (64x64 output tile per workgroup of 16x16
// threads, 4x4 outputs per thread, 16-deep K tiles staged in workgroup memory, any shape) and
// `matmul_naive` (one output per thread, operands read straight from storage; kept as the
// benchmark baseline).

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    // Bit 0: A is stored transposed (k x m); bit 1: B is stored transposed (n x k).
    flags: u32,
    alpha: f32,
    beta: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> mp: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= mp.m || kk >= mp.k) {
        return 0.0;
    }
    if ((mp.flags & 1u) != 0u) {
        return a[kk * mp.m + row];
    }
    return a[row * mp.k + kk];
}

fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= mp.k || col >= mp.n) {
        return 0.0;
    }
    if ((mp.flags & 2u) != 0u) {
        return b[col * mp.k + kk];
    }
    return b[kk * mp.n + col];
}

fn store_c(row: u32, col: u32, acc: f32) {
    if (row < mp.m && col < mp.n) {
        let idx = row * mp.n + col;
        if (mp.beta == 0.0) {
            c[idx] = mp.alpha * acc;
        } else {
            c[idx] = mp.alpha * acc + mp.beta * c[idx];
        }
    }
}

@compute @workgroup_size(16, 16)
fn matmul_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.y;
    let col = gid.x;
    if (row >= mp.m || col >= mp.n) {
        return;
    }
    var acc = 0.0;
    for (var kk = 0u; kk < mp.k; kk++) {
        acc = acc + load_a(row, kk) * load_b(kk, col);
    }
    store_c(row, col, acc);
}

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;

// A tile stored [k][m], B tile [k][n], so the inner loop reads rows of both.
var<workgroup> a_tile: array<f32, 1024>;
var<workgroup> b_tile: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    for (var k0 = 0u; k0 < mp.k; k0 = k0 + TILE_K) {
        // 64 x 16 elements of each operand, 4 per thread.
        for (var e = 0u; e < 4u; e++) {
            let idx = tid + e * 256u;
            let am = idx / TILE_K;
            let ak = idx % TILE_K;
            a_tile[ak * TILE + am] = load_a(row0 + am, k0 + ak);
            let bk = idx / TILE;
            let bn = idx % TILE;
            b_tile[bk * TILE + bn] = load_b(k0 + bk, col0 + bn);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = a_tile[kk * TILE + lid.y + 16u * i];
                bv[i] = b_tile[kk * TILE + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = acc[i * 4u + j] + av[i] * bv[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store_c(row0 + lid.y + 16u * i, col0 + lid.x + 16u * j, acc[i * 4u + j]);
        }
    }
}

// `matmul_vec4`: 128x128 output tile per workgroup of 16x16 threads, 8x8 outputs per thread (two
// 4-row by two 4-column blocks, 64 apart, so that a warp's workgroup-memory reads are
// contiguous vec4s), 8-deep K tiles. Every global load is one vec4 per thread per operand and K
// tile, which needs the operands' contiguous dimension to be a multiple of 4 (A: k, or m when
// transposed; B: n, or k when transposed) — the launcher checks it and otherwise uses
// `matmul_tiled`. The same buffers as above, bound a second time as vec4 arrays.
@group(0) @binding(5) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> b4: array<vec4<f32>>;

const WIDE: u32 = 128u;
const WIDE_K: u32 = 8u;
// 8 rows of K, each 128 columns as 32 vec4s.
var<workgroup> a4_tile: array<vec4<f32>, 256>;
var<workgroup> b4_tile: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16)
fn matmul_vec4(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * WIDE;
    let col0 = wid.x * WIDE;
    let tid = lid.y * 16u + lid.x;
    let a_t = (mp.flags & 1u) != 0u;
    let b_t = (mp.flags & 2u) != 0u;
    var acc: array<vec4<f32>, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = vec4<f32>(0.0);
    }
    for (var k0 = 0u; k0 < mp.k; k0 = k0 + WIDE_K) {
        // A's tile, 128 (m) x 8 (k), stored [k][m].
        if (a_t) {
            // Stored k x m: thread -> (kk, 4 consecutive m).
            let kk = tid / 32u;
            let m4 = (tid % 32u) * 4u;
            var v = vec4<f32>(0.0);
            if (k0 + kk < mp.k && row0 + m4 < mp.m) {
                v = a4[((k0 + kk) * mp.m + row0 + m4) / 4u];
            }
            a4_tile[kk * 32u + m4 / 4u] = v;
        } else {
            // Stored m x k: thread -> (m, 4 consecutive k).
            let mm = tid / 2u;
            let k4 = (tid % 2u) * 4u;
            var v = vec4<f32>(0.0);
            if (row0 + mm < mp.m && k0 + k4 < mp.k) {
                v = a4[((row0 + mm) * mp.k + k0 + k4) / 4u];
            }
            for (var i = 0u; i < 4u; i++) {
                a4_tile[(k4 + i) * 32u + mm / 4u][mm % 4u] = v[i];
            }
        }
        // B's tile, 8 (k) x 128 (n), stored [k][n].
        if (b_t) {
            // Stored n x k: thread -> (n, 4 consecutive k).
            let nn = tid / 2u;
            let k4 = (tid % 2u) * 4u;
            var v = vec4<f32>(0.0);
            if (col0 + nn < mp.n && k0 + k4 < mp.k) {
                v = b4[((col0 + nn) * mp.k + k0 + k4) / 4u];
            }
            for (var i = 0u; i < 4u; i++) {
                b4_tile[(k4 + i) * 32u + nn / 4u][nn % 4u] = v[i];
            }
        } else {
            // Stored k x n: thread -> (kk, 4 consecutive n).
            let kk = tid / 32u;
            let n4 = (tid % 32u) * 4u;
            var v = vec4<f32>(0.0);
            if (k0 + kk < mp.k && col0 + n4 < mp.n) {
                v = b4[((k0 + kk) * mp.n + col0 + n4) / 4u];
            }
            b4_tile[kk * 32u + n4 / 4u] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < WIDE_K; kk++) {
            let a_lo = a4_tile[kk * 32u + lid.y];
            let a_hi = a4_tile[kk * 32u + lid.y + 16u];
            let b_lo = b4_tile[kk * 32u + lid.x];
            let b_hi = b4_tile[kk * 32u + lid.x + 16u];
            var ar = array<f32, 8>(a_lo.x, a_lo.y, a_lo.z, a_lo.w, a_hi.x, a_hi.y, a_hi.z, a_hi.w);
            for (var i = 0u; i < 8u; i++) {
                acc[2u * i] = fma(vec4<f32>(ar[i]), b_lo, acc[2u * i]);
                acc[2u * i + 1u] = fma(vec4<f32>(ar[i]), b_hi, acc[2u * i + 1u]);
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 8u; i++) {
        let row = row0 + lid.y * 4u + (i % 4u) + 64u * (i / 4u);
        for (var h = 0u; h < 2u; h++) {
            let col = col0 + lid.x * 4u + 64u * h;
            let v = acc[2u * i + h];
            store_c(row, col, v.x);
            store_c(row, col + 1u, v.y);
            store_c(row, col + 2u, v.z);
            store_c(row, col + 3u, v.w);
        }
    }
}
