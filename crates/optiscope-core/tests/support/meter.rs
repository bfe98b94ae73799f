//! A counting allocator for property tests: the peak bytes live on this thread while a parser
//! runs, and the checks every input reader shares (shared by the core and app suites through
//! `#[path]`).

#![allow(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; it only forwards to System"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;

struct Meter;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the thread's counters may be gone while it exits.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static METER: Meter = Meter;

/// `f`'s result and the most bytes it had allocated at once (beyond what was live before).
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get) - base;
    (out, peak.max(0) as usize)
}

/// The allocation a parser may make for an input of `len` bytes: a constant for its tables and
/// messages plus a small multiple of the input (a JSON tree, the decoded tensors).
pub fn bound(len: usize, per_byte: usize) -> usize {
    (1 << 20) + per_byte * len
}

/// A rejection's message: there, and short whatever the input's size (never the input echoed).
pub fn check_message(what: &str, msg: &str) -> Result<(), TestCaseError> {
    prop_assert!(!msg.trim().is_empty(), "{what}: empty error message");
    prop_assert!(
        msg.chars().count() <= 600,
        "{what}: a {}-character error message: {}…",
        msg.chars().count(),
        msg.chars().take(200).collect::<String>()
    );
    Ok(())
}
