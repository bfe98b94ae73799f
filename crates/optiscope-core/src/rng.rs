//! Counter-based random numbers: Philox4x32-10, identical on the CPU and in WGSL.
//!
//! # Algorithm
//! Philox4x32 with 10 rounds (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as
//! 1, 2, 3", SC 2011; the Random123 library). A *block* maps a 128-bit counter `c = (c0, c1, c2, c3)`
//! and a 64-bit key `k = (k0, k1)` to four u32 words. One round is
//!
//! ```text
//! (hi0, lo0) = 0xD2511F53 · c0        (full 64-bit product, split into high and low words)
//! (hi1, lo1) = 0xCD9E8D57 · c2
//! c ← (hi1 ⊕ c1 ⊕ k0, lo1, hi0 ⊕ c3 ⊕ k1, lo0)
//! ```
//! and between rounds the key is bumped by the Weyl constants `k0 += 0x9E3779B9`,
//! `k1 += 0xBB67AE85` (wrapping). Only 32-bit multiplies, xors and adds are needed, so a WGSL
//! shader (no 64-bit integers) reproduces the stream bit for bit with a 16-bit split multiply.
//!
//! # How optiscope addresses the stream
//! The key is the 64-bit seed (`k0` = low word). Draws are addressed by a 64-bit *stream* (what the
//! numbers are for: an initialization, gradient noise, ...) and a 64-bit *index*:
//! word `i` of stream `s` is word `i mod 4` of the block with counter
//! `(lo(i/4), hi(i/4), lo(s), hi(s))`. Every draw is a pure function of `(seed, stream, index)`,
//! so results do not depend on the order in which draws are made or on how a GPU dispatch is split.
//!
//! * uniform f32 in `[0, 1)`: `(w >> 8) · 2⁻²⁴` (24 random bits, exactly representable);
//! * standard normal: Box–Muller on the two words of a pair. Normal `j` uses block `j / 4`; the words
//!   `(w0, w1)` give normals `4q` and `4q+1`, `(w2, w3)` give `4q+2` and `4q+3`:
//!   `u1 = ((wa >> 8) + 1) · 2⁻²⁴ ∈ (0, 1]`, `u2 = (wb >> 8) · 2⁻²⁴`, `r = sqrt(−2 ln u1)`,
//!   normals `r cos(2π u2)` and `r sin(2π u2)`, computed in f32 with the `libm` functions so that
//!   native and wasm builds agree bit for bit.

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;
/// Number of Philox rounds.
pub const PHILOX_ROUNDS: usize = 10;

/// The Philox4x32-10 block function: four u32 words for a counter and a key.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..PHILOX_ROUNDS {
        if round > 0 {
            k[0] = k[0].wrapping_add(PHILOX_W0);
            k[1] = k[1].wrapping_add(PHILOX_W1);
        }
        let p0 = u64::from(PHILOX_M0) * u64::from(c[0]);
        let p1 = u64::from(PHILOX_M1) * u64::from(c[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// What a stream of random numbers is for; combined with an id into a 64-bit stream number
/// (`kind << 32 | id`), so different uses never share numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum StreamKind {
    /// Parameter initialization; id = parameter index.
    Init = 1,
    /// Problem data (targets, random matrices); id chosen by the problem.
    Data = 2,
    /// Gradient noise; id = step.
    GradNoise = 3,
    /// Training-order shuffles; id = epoch.
    Shuffle = 4,
    /// Quantizer noise (Gumbel, DropBits, hard-concrete gates); id chosen by the trainer.
    Quant = 5,
    /// MeZO: perturbations (id 16 + parameter index, keyed per step) and block schedules (ids 1, 2).
    Mezo = 6,
    /// The alignment lab: sampler pairs and labels (id = round), B3's drawn sample (1000), GRPO's
    /// groups (2000 + iteration), ThinkSafe's contexts, readouts and generations (3000..3103),
    /// the multi-task world and pairs (4000..4100 + task).
    Align = 7,
    /// The language model's text windows: id 0 the training batches (index = step · batch +
    /// row), id 1 the fixed evaluation batches.
    Text = 8,
}

/// The 64-bit stream number of `kind` and `id`.
pub fn stream(kind: StreamKind, id: u32) -> u64 {
    (u64::from(kind as u32) << 32) | u64::from(id)
}

/// A Philox4x32-10 generator keyed by a 64-bit seed. It has no mutable state: every draw is
/// addressed by `(stream, index)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Philox {
    key: [u32; 2],
}

impl Philox {
    /// The generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            key: [seed as u32, (seed >> 32) as u32],
        }
    }

    /// The block with counter `(lo(block), hi(block), lo(stream), hi(stream))`.
    pub fn block(&self, stream: u64, block: u64) -> [u32; 4] {
        philox4x32_10(
            [
                block as u32,
                (block >> 32) as u32,
                stream as u32,
                (stream >> 32) as u32,
            ],
            self.key,
        )
    }

    /// Word `index` of `stream`.
    pub fn u32_at(&self, stream: u64, index: u64) -> u32 {
        self.block(stream, index / 4)[(index % 4) as usize]
    }

    /// A uniform f32 in `[0, 1)` from word `index` of `stream`.
    pub fn uniform_at(&self, stream: u64, index: u64) -> f32 {
        u32_to_unit(self.u32_at(stream, index))
    }

    /// Standard normal number `index` of `stream` (Box–Muller, see the module docs).
    pub fn normal_at(&self, stream: u64, index: u64) -> f32 {
        let w = self.block(stream, index / 4);
        let lane = (index % 4) as usize;
        let pair = lane / 2 * 2;
        let (z_cos, z_sin) = box_muller(w[pair], w[pair + 1]);
        if lane % 2 == 0 {
            z_cos
        } else {
            z_sin
        }
    }

    /// Fills `out` with `scale ·` normals `0..out.len()` of `stream` (a whole block at a time).
    pub fn fill_normal(&self, stream: u64, scale: f32, out: &mut [f32]) {
        for (q, chunk) in out.chunks_mut(4).enumerate() {
            let w = self.block(stream, q as u64);
            let (a, b) = box_muller(w[0], w[1]);
            let (c, d) = box_muller(w[2], w[3]);
            for (o, z) in chunk.iter_mut().zip([a, b, c, d]) {
                *o = scale * z;
            }
        }
    }
}

/// `(w >> 8) · 2⁻²⁴`: a uniform f32 in `[0, 1)`.
pub fn u32_to_unit(w: u32) -> f32 {
    (w >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Box–Muller on two words: the pair of standard normals `(r cos θ, r sin θ)`.
pub fn box_muller(wa: u32, wb: u32) -> (f32, f32) {
    let u1 = ((wa >> 8) + 1) as f32 * (1.0 / 16_777_216.0);
    let u2 = u32_to_unit(wb);
    let r = libm::sqrtf(-2.0 * libm::logf(u1));
    let theta = core::f32::consts::TAU * u2;
    (r * libm::cosf(theta), r * libm::sinf(theta))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors of Philox4x32-10 published with Random123 (`kat_vectors`).
    #[test]
    fn philox_matches_random123_known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn draws_are_addressed_not_sequential() {
        let g = Philox::new(42);
        let s = stream(StreamKind::Init, 3);
        let forward: Vec<f32> = (0..37).map(|i| g.normal_at(s, i)).collect();
        let mut filled = vec![0.0; 37];
        g.fill_normal(s, 1.0, &mut filled);
        assert_eq!(forward, filled);
        let backward: Vec<f32> = (0..37).rev().map(|i| g.normal_at(s, i)).collect();
        assert_eq!(forward, backward.into_iter().rev().collect::<Vec<_>>());
        assert_ne!(g.u32_at(s, 0), g.u32_at(stream(StreamKind::Init, 4), 0));
        assert_ne!(g.u32_at(s, 0), Philox::new(43).u32_at(s, 0));
    }

    /// Moments of 200 000 draws: mean and variance within 5 standard errors of their targets.
    #[test]
    fn uniform_and_normal_moments() {
        let g = Philox::new(7);
        let n = 200_000u64;
        let s = stream(StreamKind::GradNoise, 0);
        let (mut su, mut suu, mut sz, mut szz, mut sz4) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for i in 0..n {
            let u = f64::from(g.uniform_at(s, i));
            assert!((0.0..1.0).contains(&u));
            su += u;
            suu += u * u;
            let z = f64::from(g.normal_at(s, i));
            sz += z;
            szz += z * z;
            sz4 += z.powi(4);
        }
        let nf = n as f64;
        let se = 1.0 / nf.sqrt();
        assert!((su / nf - 0.5).abs() < 5.0 * se * (1.0f64 / 12.0).sqrt());
        assert!((suu / nf - su * su / nf / nf - 1.0 / 12.0).abs() < 5.0 * se * 0.075);
        assert!((sz / nf).abs() < 5.0 * se);
        assert!((szz / nf - 1.0).abs() < 5.0 * se * 2f64.sqrt());
        assert!((sz4 / nf - 3.0).abs() < 5.0 * se * 96f64.sqrt());
    }
}
