//! AdaBlock's update (spec optimizers.md §6): Adam with a full `g × g` second-moment matrix per
//! block of coordinates, the inverse square root applied through a batched symmetric
//! eigendecomposition. This is the CPU twin of `shaders/optim_adablock.wgsl`: the same block
//! layout, the same Jacobi rotations in the same (round-robin) order and the same number of
//! sweeps, in f32.
//!
//! **Block layout** (the official code's `W.T.reshape(-1, g)`): a weight `W[out, in]` is cut into
//! blocks of `g` consecutive *output* units sharing one *input* unit; block `b = i·(out/g) + k`
//! holds the flat indices `(k·g + r)·in + i` for `r < g`. `g` must divide `out` (the optimizer
//! checks it and names the parameter); `g = 1` is diagonal.
//!
//! **Eigendecomposition**: cyclic Jacobi with the round-robin (chess-tournament) ordering, so the
//! `⌈g/2⌉` rotations of a round touch disjoint index pairs and a workgroup applies them at once;
//! every rotation is the stable one of Golub & Van Loan (Alg. 8.4.1: `τ = (a_qq − a_pp)/(2a_pq)`,
//! `t = sign(τ)/(|τ| + √(1 + τ²))`). [`JACOBI_SWEEPS`] sweeps leave the off-diagonal at f32
//! rounding for `g ≤ 32` (tested); eigenvalues that come out slightly negative are clamped at 0.

/// Largest block size (the official code's limit: its batched SVD stops at 32 × 32).
pub const MAX_GROUPS: usize = 32;

/// Jacobi sweeps per eigendecomposition (the shader uses the same number).
pub const JACOBI_SWEEPS: usize = 8;

/// How a parameter's coordinates are grouped into blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLayout {
    /// Output units (rows of `W[out, in]`; the length of a vector, with `inp = 1`).
    pub out: usize,
    /// Input units (columns).
    pub inp: usize,
    /// Block size `g` (divides `out`).
    pub groups: usize,
}

impl BlockLayout {
    /// A vector of `n` coordinates adapted one by one (diagonal Adam).
    pub fn diagonal(n: usize) -> Self {
        Self {
            out: n,
            inp: 1,
            groups: 1,
        }
    }

    /// Number of blocks.
    pub fn blocks(&self) -> usize {
        self.out * self.inp / self.groups
    }

    /// Length of the second-moment state: `blocks · g²`.
    pub fn state_len(&self) -> usize {
        self.blocks() * self.groups * self.groups
    }

    /// Flat index of coordinate `r` of block `b`.
    #[inline]
    pub fn index(&self, b: usize, r: usize) -> usize {
        let per_input = self.out / self.groups;
        let (i, k) = (b / per_input, b % per_input);
        (k * self.groups + r) * self.inp + i
    }
}

/// Scalars of one AdaBlock step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaBlockScalars {
    /// Learning rate η (for the decoupled decay).
    pub lr: f32,
    /// Decoupled weight decay λ (`p ← p(1 − ηλ)` first).
    pub weight_decay: f32,
    /// `1 − β1`.
    pub one_minus_beta1: f32,
    /// β2.
    pub beta2: f32,
    /// `1 − β2`.
    pub one_minus_beta2: f32,
    /// `η √(1 − β2ᵗ) / (1 − β1ᵗ)`.
    pub step_size: f32,
    /// Added to the diagonal before the eigendecomposition (blocks: `jitter`, 1e-6 by default;
    /// vectors: 0).
    pub jitter: f32,
    /// Added to `√s` in the denominator (blocks: `delta`; vectors: `eps`).
    pub delta: f32,
    /// Spectrum clipping: every eigen-step `step/(√s + δ)` clamped into `[lo, hi]`.
    pub clip: Option<(f32, f32)>,
}

impl AdaBlockScalars {
    /// The step along an eigen-direction with eigenvalue `s`.
    #[inline]
    pub fn eigen_step(&self, s: f32) -> f32 {
        let e = self.step_size / (s.max(0.0).sqrt() + self.delta);
        match self.clip {
            Some((lo, hi)) => e.clamp(lo, hi),
            None => e,
        }
    }
}

/// The pair `(p, q)`, `p < q`, that slot `k` of round `r` rotates in the round-robin ordering of
/// `n` (even) indices, or `None` when it involves the padding index of an odd `g`.
#[inline]
pub fn round_robin_pair(n: usize, g: usize, r: usize, k: usize) -> Option<(usize, usize)> {
    let m = n - 1;
    let (a, b) = if k == 0 {
        (m, r)
    } else {
        ((r + k) % m, (r + m - k) % m)
    };
    let (p, q) = (a.min(b), a.max(b));
    (q < g).then_some((p, q))
}

/// Cap on `|τ|` of a rotation (keeps `τ²` finite in f32).
const TAU_MAX: f32 = 1e18;

/// The Jacobi rotation `(c, s)` that zeroes `a_pq` (identity when `a_pq = 0`).
#[inline]
pub fn jacobi_rotation(app: f32, aqq: f32, apq: f32) -> (f32, f32) {
    if apq == 0.0 {
        return (1.0, 0.0);
    }
    // |τ| is capped at 1e18 so that τ² stays finite (the rotation is then ~1e-18, i.e. none).
    let tau = ((aqq - app) / (2.0 * apq)).clamp(-TAU_MAX, TAU_MAX);
    let sign = if tau >= 0.0 { 1.0 } else { -1.0 };
    let t = sign / (tau.abs() + (1.0 + tau * tau).sqrt());
    let c = 1.0 / (1.0 + t * t).sqrt();
    (c, t * c)
}

/// Diagonalises the symmetric row-major `g × g` matrix `a` in place (its diagonal becomes the
/// eigenvalues) and writes the eigenvectors into the columns of `q`: `A₀ = Q diag(a) Qᵀ`.
pub fn jacobi_eigh(a: &mut [f32], q: &mut [f32], g: usize) {
    q.fill(0.0);
    for i in 0..g {
        q[i * g + i] = 1.0;
    }
    if g < 2 {
        return;
    }
    let n = g + g % 2;
    for _ in 0..JACOBI_SWEEPS {
        for r in 0..n - 1 {
            for k in 0..n / 2 {
                let Some((p, qq)) = round_robin_pair(n, g, r, k) else {
                    continue;
                };
                let (c, s) = jacobi_rotation(a[p * g + p], a[qq * g + qq], a[p * g + qq]);
                // A ← Jᵀ A (rows p, q), then A ← A J and Q ← Q J (columns p, q).
                for j in 0..g {
                    let (x, y) = (a[p * g + j], a[qq * g + j]);
                    a[p * g + j] = c * x - s * y;
                    a[qq * g + j] = s * x + c * y;
                }
                for i in 0..g {
                    let (x, y) = (a[i * g + p], a[i * g + qq]);
                    a[i * g + p] = c * x - s * y;
                    a[i * g + qq] = s * x + c * y;
                    let (x, y) = (q[i * g + p], q[i * g + qq]);
                    q[i * g + p] = c * x - s * y;
                    q[i * g + qq] = s * x + c * y;
                }
            }
        }
    }
}

/// One AdaBlock step on the parameter `p` laid out by `layout`: decoupled decay, `m ← β1 m +
/// (1 − β1) g`, per block `V_b ← β2 V_b + (1 − β2) g_b g_bᵀ` (row-major in `v`), the
/// eigendecomposition `Q diag(s) Qᵀ = V_b + jitter·I`, and `p_b ← p_b − Q diag(e(s)) Qᵀ m_b` with
/// `e(s) = step/(√max(s, 0) + δ)`, clamped when clipping. With `g = 1` every coordinate is its
/// own block in flat order, whatever `out` and `inp`.
pub fn adablock_step(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    layout: &BlockLayout,
    s: &AdaBlockScalars,
) {
    let gs = layout.groups;
    let decay = 1.0 - s.lr * s.weight_decay;
    if gs == 1 {
        // Every coordinate its own block, in flat order (`v[i]` is coordinate i's).
        for i in 0..p.len() {
            p[i] *= decay;
            m[i] += s.one_minus_beta1 * (g[i] - m[i]);
            v[i] = s.beta2 * v[i] + s.one_minus_beta2 * g[i] * g[i];
            p[i] -= s.eigen_step(v[i] + s.jitter) * m[i];
        }
        return;
    }
    let mut a = vec![0.0f32; gs * gs];
    let mut q = vec![0.0f32; gs * gs];
    let mut gb = vec![0.0f32; gs];
    let mut mb = vec![0.0f32; gs];
    let mut y = vec![0.0f32; gs];
    for b in 0..layout.blocks() {
        for r in 0..gs {
            let i = layout.index(b, r);
            p[i] *= decay;
            m[i] += s.one_minus_beta1 * (g[i] - m[i]);
            gb[r] = g[i];
            mb[r] = m[i];
        }
        let vb = &mut v[b * gs * gs..(b + 1) * gs * gs];
        for r in 0..gs {
            for c in 0..gs {
                let e = s.beta2 * vb[r * gs + c] + s.one_minus_beta2 * gb[r] * gb[c];
                vb[r * gs + c] = e;
                a[r * gs + c] = if r == c { e + s.jitter } else { e };
            }
        }
        jacobi_eigh(&mut a, &mut q, gs);
        // y = diag(e) Qᵀ m_b, then the update Q y.
        for j in 0..gs {
            let mut acc = 0.0f32;
            for c in 0..gs {
                acc += q[c * gs + j] * mb[c];
            }
            y[j] = s.eigen_step(a[j * gs + j]) * acc;
        }
        for r in 0..gs {
            let mut acc = 0.0f32;
            for j in 0..gs {
                acc += q[r * gs + j] * y[j];
            }
            p[layout.index(b, r)] -= acc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Philox;

    #[test]
    fn layout_is_the_official_transpose_reshape() {
        // spec §6.1: W[4,3], g = 2: blocks_of(arange) = [[0,3],[6,9],[1,4],[7,10],[2,5],[8,11]].
        let l = BlockLayout {
            out: 4,
            inp: 3,
            groups: 2,
        };
        let blocks: Vec<Vec<usize>> = (0..l.blocks())
            .map(|b| (0..2).map(|r| l.index(b, r)).collect())
            .collect();
        assert_eq!(
            blocks,
            [[0, 3], [6, 9], [1, 4], [7, 10], [2, 5], [8, 11]].map(Vec::from)
        );
    }

    #[test]
    fn round_robin_covers_every_pair_once_per_sweep_disjointly() {
        for g in 2..=MAX_GROUPS {
            let n = g + g % 2;
            let mut seen = std::collections::HashSet::new();
            for r in 0..n - 1 {
                let mut used = vec![false; g];
                for k in 0..n / 2 {
                    if let Some((p, q)) = round_robin_pair(n, g, r, k) {
                        assert!(p < q && q < g);
                        assert!(!used[p] && !used[q], "g={g} round {r}: overlapping pairs");
                        used[p] = true;
                        used[q] = true;
                        assert!(seen.insert((p, q)), "g={g}: pair ({p},{q}) twice");
                    }
                }
            }
            assert_eq!(seen.len(), g * (g - 1) / 2, "g={g}");
        }
    }

    /// A random PSD `g × g` matrix of rank `rank` plus `jitter·I` (what AdaBlock decomposes).
    fn psd(normal: &mut impl FnMut() -> f64, g: usize, rank: usize, jitter: f64) -> Vec<f64> {
        let mut a = vec![0.0; g * g];
        for _ in 0..rank {
            let x: Vec<f64> = (0..g).map(|_| normal() * 0.1).collect();
            for r in 0..g {
                for c in 0..g {
                    a[r * g + c] += x[r] * x[c];
                }
            }
        }
        for i in 0..g {
            a[i * g + i] += jitter;
        }
        a
    }

    #[test]
    fn jacobi_matches_nalgebra_eigenvalues_and_reconstructs() {
        // Against nalgebra's f64 symmetric eigensolver, full-rank and rank-one (+ jitter) blocks:
        // sorted eigenvalues, QᵀQ = I and Q diag(λ) Qᵀ = A, each to 4e-7·g relative to max|A|
        // (f32 rounding of the input alone is ~6e-8 per entry). Six sweeps already reach this for
        // g = 32; five leave 2e-4.
        let ph = Philox::new(11);
        let mut at = 0u64;
        let mut normal = || {
            at += 1;
            f64::from(ph.normal_at(0, at))
        };
        for g in [2, 3, 5, 8, 10, 16, 17, 32] {
            for rank in [1, g] {
                let a64 = psd(&mut normal, g, rank, 1e-6);
                let mut a: Vec<f32> = a64.iter().map(|&x| x as f32).collect();
                let mut q = vec![0.0f32; g * g];
                jacobi_eigh(&mut a, &mut q, g);
                let scale = a64.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                let (mut worst_q, mut worst_rec) = (0.0f64, 0.0f64);
                let want = nalgebra::DMatrix::from_row_slice(g, g, &a64).symmetric_eigenvalues();
                let mut want: Vec<f64> = want.iter().copied().collect();
                let mut got: Vec<f64> = (0..g).map(|i| f64::from(a[i * g + i])).collect();
                want.sort_by(f64::total_cmp);
                got.sort_by(f64::total_cmp);
                let worst_eig = got
                    .iter()
                    .zip(&want)
                    .fold(0.0f64, |m, (x, y)| m.max((x - y).abs() / scale));
                for r in 0..g {
                    for c in 0..g {
                        let (mut qtq, mut rec) = (0.0f64, 0.0f64);
                        for j in 0..g {
                            qtq += f64::from(q[j * g + r]) * f64::from(q[j * g + c]);
                            rec += f64::from(q[r * g + j])
                                * f64::from(a[j * g + j])
                                * f64::from(q[c * g + j]);
                        }
                        let eye = if r == c { 1.0 } else { 0.0 };
                        worst_q = worst_q.max((qtq - eye).abs());
                        worst_rec = worst_rec.max((rec - a64[r * g + c]).abs() / scale);
                    }
                }
                // f32 rounding grows with g: measured worst 2.6e-6 (g = 10), 9.9e-6 (g = 32).
                let tol = 4e-7 * g as f64;
                assert!(
                    worst_eig <= tol && worst_q <= tol && worst_rec <= tol,
                    "g={g} rank={rank}: eigenvalues {worst_eig:.2e}, QᵀQ − I {worst_q:.2e}, \
                     reconstruction {worst_rec:.2e} (relative to max|A|; allowed {tol:.1e})"
                );
            }
        }
    }

    #[test]
    fn rotation_zeroes_the_pivot_and_handles_extremes() {
        for (app, aqq, apq) in [
            (1.0f32, 2.0, 0.5),
            (3.0, 3.0, 1.0),
            (1e-6, 5.0, 1e-20),
            (2.0, -1.0, 4.0),
        ] {
            let (c, s) = jacobi_rotation(app, aqq, apq);
            assert!((c * c + s * s - 1.0).abs() < 1e-6);
            // b_pq of Jᵀ A J
            let bpq = c * s * (app - aqq) + (c * c - s * s) * apq;
            assert!(
                bpq.abs() <= 1e-6 * (app.abs() + aqq.abs() + apq.abs()),
                "{bpq}"
            );
        }
        assert_eq!(jacobi_rotation(1.0, 2.0, 0.0), (1.0, 0.0));
    }

    #[test]
    fn groups_one_is_adam_with_jitter() {
        // spec §6.2: with g = 1 the update is η√bc2/bc1 · m/(√(v + jitter) + δ).
        let s = AdaBlockScalars {
            lr: 0.01,
            weight_decay: 0.0,
            one_minus_beta1: 0.1,
            beta2: 0.999,
            one_minus_beta2: 0.001,
            step_size: (0.01 * 0.001f64.sqrt() / 0.1) as f32,
            jitter: 1e-6,
            delta: 1e-4,
            clip: None,
        };
        let mut p = vec![0.5f32, -0.2, 0.1];
        let g = [0.1f32, -0.3, 0.2];
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        adablock_step(&mut p, &g, &mut m, &mut v, &BlockLayout::diagonal(3), &s);
        for i in 0..3 {
            let (mi, vi) = (0.1 * f64::from(g[i]), 0.001 * f64::from(g[i]).powi(2));
            let want =
                [0.5, -0.2, 0.1][i] - f64::from(s.step_size) * mi / ((vi + 1e-6).sqrt() + 1e-4);
            assert!(
                (f64::from(p[i]) - want).abs() < 1e-6,
                "{i}: {} vs {want}",
                p[i]
            );
        }
    }
}
