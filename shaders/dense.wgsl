// The dense family (optiscope_core::device::dense): matrix products.
// C <- alpha * op(A) * op(B) + beta * C for row-major f32 matrices, op(A): m x k, op(B): k x n.
// Two kernels: `matmul_tiled` (64x64 output tile per workgroup of 16x16 threads, 4x4 outputs per
// thread, 16-deep K tiles staged in workgroup memory) and `matmul_naive` (one output per thread,
// operands read straight from storage; kept as the benchmark baseline).

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
