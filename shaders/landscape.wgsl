// A 2-D landscape on a W x H grid and its log-scaled colormap: the twins of optiscope-core's
// `Landscape::grid_values` and `landscape::color_grid`. Pixel (i, j) samples the centre of its
// cell, row 0 at the top: x = x0 + (x1 - x0)(i + 0.5)/W, y = y1 - (y1 - y0)(j + 0.5)/H.

struct LandscapeParams {
    // 0 Rosenbrock(a, b), 1 Beale, 2 saddle, 3 quadratic(h00, h01, h10, h11), 4 river valley(kappa, wall, amplitude, u_star).
    kind: u32,
    width: u32,
    height: u32,
    _pad0: u32,
    x0: f32,
    x1: f32,
    y0: f32,
    y1: f32,
    c0: f32,
    c1: f32,
    c2: f32,
    c3: f32,
    // Colormap: t = clamp((ln(v - min_value + delta) - log_lo) / (log_hi - log_lo), 0, 1).
    min_value: f32,
    delta: f32,
    log_lo: f32,
    log_hi: f32,
}

@group(0) @binding(0) var<uniform> lp: LandscapeParams;
@group(0) @binding(1) var<storage, read_write> values: array<f32>;
@group(0) @binding(2) var<storage, read> values_in: array<f32>;
@group(0) @binding(3) var image: texture_storage_2d<rgba8unorm, write>;

fn landscape_value(x: f32, y: f32) -> f32 {
    switch lp.kind {
        case 0u: {
            let r = y - x * x;
            return (lp.c0 - x) * (lp.c0 - x) + lp.c1 * r * r;
        }
        case 1u: {
            let t1 = 1.5 - x + x * y;
            let t2 = 2.25 - x + x * y * y;
            let t3 = 2.625 - x + x * y * y * y;
            return t1 * t1 + t2 * t2 + t3 * t3;
        }
        case 2u: {
            return 0.5 * x * x - 0.5 * y * y + 0.25 * y * y * y * y;
        }
        case 3u: {
            return 0.5 * (lp.c0 * x * x + (lp.c1 + lp.c2) * x * y + lp.c3 * y * y);
        }
        default: {
            let r = y - lp.c2 * sin(x);
            return 0.5 * lp.c0 * (x - lp.c3) * (x - lp.c3) + 0.5 * lp.c1 * r * r;
        }
    }
}

@compute @workgroup_size(16, 16)
fn evaluate_grid(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= lp.width || gid.y >= lp.height) {
        return;
    }
    let x = lp.x0 + (lp.x1 - lp.x0) * (f32(gid.x) + 0.5) / f32(lp.width);
    let y = lp.y1 - (lp.y1 - lp.y0) * (f32(gid.y) + 0.5) / f32(lp.height);
    values[gid.y * lp.width + gid.x] = landscape_value(x, y);
}

// Viridis, as a degree-6 polynomial fit (a public-domain approximation of matplotlib's map).
fn viridis(t: f32) -> vec3<f32> {
    let c0 = vec3<f32>(0.2777273272234177, 0.005407344544966578, 0.3340998053353061);
    let c1 = vec3<f32>(0.1050930431085774, 1.404613529898575, 1.384590162594685);
    let c2 = vec3<f32>(-0.3308618287255563, 0.214847559468213, 0.09509516302823659);
    let c3 = vec3<f32>(-4.634230498983486, -5.799100973351585, -19.33244095627987);
    let c4 = vec3<f32>(6.228269936347081, 14.17993336680509, 56.69055260068105);
    let c5 = vec3<f32>(4.776384997670288, -13.74514537774601, -65.35303263337234);
    let c6 = vec3<f32>(-5.435455855934631, 4.645852612178535, 26.3124352495832);
    return c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * (c5 + t * c6)))));
}

@compute @workgroup_size(16, 16)
fn colormap(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= lp.width || gid.y >= lp.height) {
        return;
    }
    let v = values_in[gid.y * lp.width + gid.x];
    let t = clamp((log(max(v - lp.min_value, 0.0) + lp.delta) - lp.log_lo) / (lp.log_hi - lp.log_lo), 0.0, 1.0);
    let rgb = clamp(viridis(t), vec3<f32>(0.0), vec3<f32>(1.0));
    textureStore(image, vec2<i32>(i32(gid.x), i32(gid.y)), vec4<f32>(rgb, 1.0));
}
