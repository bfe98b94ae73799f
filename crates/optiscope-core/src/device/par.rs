//! Data parallelism for the CPU twins: a slice cut into equal chunks, the chunks handed to the
//! machine's cores with scoped threads. On wasm32 (no threads) and for small jobs it runs on the
//! calling thread. Every chunk is computed by the same code whichever thread runs it, so results
//! do not depend on the number of threads.

/// The threads a CPU kernel may use: `OPTISCOPE_THREADS` if set (at least 1), else the
/// machine's available parallelism (1 on wasm32).
pub fn threads() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static THREADS: OnceLock<usize> = OnceLock::new();
        *THREADS.get_or_init(|| {
            std::env::var("OPTISCOPE_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        })
    }
}

/// Below this many values of work a job runs on the calling thread (a thread's start costs about
/// as much as this many multiply-adds).
const MIN_PARALLEL_WORK: usize = 1 << 15;

/// `f(i, chunk_i)` for every `chunk`-long piece of `out` (the last may be shorter), in parallel
/// when `work` (the job's total cost in multiply-adds, roughly) is large enough to pay for threads.
pub fn for_chunks<F>(out: &mut [f32], chunk: usize, work: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    if chunk == 0 || out.is_empty() {
        return;
    }
    let pieces = out.len().div_ceil(chunk);
    let threads = threads().min(pieces);
    if threads <= 1 || work < MIN_PARALLEL_WORK {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
        return;
    }
    // (On wasm32 `threads()` is 1: the threads below are never started there.)
    #[cfg(not(target_arch = "wasm32"))]
    {
        // Contiguous runs of chunks per thread, the first `pieces % threads` one chunk longer.
        let per = pieces / threads;
        let extra = pieces % threads;
        std::thread::scope(|s| {
            let mut rest = out;
            let mut first = 0;
            for t in 0..threads {
                let n = per + usize::from(t < extra);
                let len = (n * chunk).min(rest.len());
                let (mine, tail) = rest.split_at_mut(len);
                rest = tail;
                let f = &f;
                let start = first;
                first += n;
                s.spawn(move || {
                    mine.chunks_mut(chunk)
                        .enumerate()
                        .for_each(|(i, c)| f(start + i, c));
                });
            }
        });
    }
}

/// [`for_chunks`] over two outputs cut alike: `f(i, a_i, b_i)` with `a` in `chunk_a`-long and `b`
/// in `chunk_b`-long pieces (both must have the same number of pieces).
pub fn for_chunks2<F>(
    a: &mut [f32],
    chunk_a: usize,
    b: &mut [f32],
    chunk_b: usize,
    work: usize,
    f: F,
) where
    F: Fn(usize, &mut [f32], &mut [f32]) + Sync,
{
    if chunk_a == 0 || chunk_b == 0 || a.is_empty() {
        return;
    }
    let pieces = a.len().div_ceil(chunk_a);
    assert_eq!(
        pieces,
        b.len().div_ceil(chunk_b),
        "for_chunks2: unequal pieces"
    );
    let threads = threads().min(pieces);
    let serial = |a: &mut [f32], b: &mut [f32], start: usize| {
        a.chunks_mut(chunk_a)
            .zip(b.chunks_mut(chunk_b))
            .enumerate()
            .for_each(|(i, (x, y))| f(start + i, x, y));
    };
    if threads <= 1 || work < MIN_PARALLEL_WORK {
        serial(a, b, 0);
        return;
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let per = pieces / threads;
        let extra = pieces % threads;
        std::thread::scope(|s| {
            let (mut ra, mut rb) = (a, b);
            let mut first = 0;
            for t in 0..threads {
                let n = per + usize::from(t < extra);
                let (ma, ta) = ra.split_at_mut((n * chunk_a).min(ra.len()));
                let (mb, tb) = rb.split_at_mut((n * chunk_b).min(rb.len()));
                (ra, rb) = (ta, tb);
                let start = first;
                first += n;
                let serial = &serial;
                s.spawn(move || serial(ma, mb, start));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_once_with_its_index() {
        for len in [0, 1, 7, 100_000, 100_003] {
            let mut out = vec![0.0f32; len];
            for_chunks(&mut out, 10, usize::MAX, |i, c| {
                c.iter_mut()
                    .enumerate()
                    .for_each(|(j, v)| *v = (i * 10 + j) as f32);
            });
            assert!(
                out.iter().enumerate().all(|(k, &v)| v == k as f32),
                "len {len}"
            );
        }
        let (mut a, mut b) = (vec![0.0f32; 90_000], vec![0.0f32; 30_000]);
        for_chunks2(&mut a, 3, &mut b, 1, usize::MAX, |i, x, y| {
            x.fill(i as f32);
            y[0] = i as f32;
        });
        assert!(b.iter().enumerate().all(|(k, &v)| v == k as f32));
        assert!(a.iter().enumerate().all(|(k, &v)| v == (k / 3) as f32));
    }
}
