//! The heap counter: a global allocator that tracks the peak of live bytes while counting is on.

use super::ops::Workload;
use autodiff::Matrix;
use curvature::{Mlp, Problem};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

/// The system allocator, counting live heap bytes and their high-water mark while `COUNTING`
/// is on, so the peak memory of an op is measured exactly (RSS would also count what the
/// allocator keeps from earlier ops). Off, it costs one relaxed load per call: counting (three
/// atomic read-modify-writes per call) made a W3 gradient 1.03–1.05× slower and `H v`
/// 1.01–1.02× (same-process pairs, on against off), which the timed rows must not carry.
pub struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Live bytes since counting was switched on (a free of an older block takes them below 0).
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

pub fn count(grow: usize, shrink: usize) {
    if !COUNTING.load(Relaxed) {
        return;
    }
    let live = LIVE.fetch_add(grow as isize, Relaxed) + grow as isize;
    LIVE.fetch_sub(shrink as isize, Relaxed);
    PEAK.fetch_max(live, Relaxed);
}

/// The peak of the live heap while `f` runs, above what was live when it started.
fn peak_bytes_during(f: impl FnOnce()) -> f64 {
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    f();
    COUNTING.store(false, Relaxed);
    PEAK.load(Relaxed) as f64
}

// SAFETY: every call forwards to `System` with the caller's layout; the counters are advisory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 0);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, layout.size());
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size, layout.size());
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak live heap during one W1 gradient, over what the caller already holds (θ, x, y, v, u),
/// plus the caller's θ and x, against the bytes any reverse-mode gradient needs: θ, ∇h, x, and
/// each layer's pre-activation `s_i` and output `a_i`. Prints the line and returns the ratio
/// and the JSON record.
pub fn gradient_peak(
    w: &Workload,
    problem: &Problem<'_, Mlp>,
    theta: &[f64],
    x: &Matrix<f64>,
) -> (f64, String) {
    let extra = peak_bytes_during(|| {
        black_box(problem.at(theta).unwrap().gradient().unwrap());
    });
    let params = 8.0 * theta.len() as f64;
    let input = 8.0 * x.len() as f64;
    let layers: f64 = 8.0 * w.batch as f64 * 2.0 * w.mlp.sizes()[1..].iter().sum::<usize>() as f64;
    let needed = 2.0 * params + input + layers;
    let peak = extra + params + input;
    println!(
        "W1 gradient peak heap {:.0} MB (the op's own allocations {:.0} MB + the caller's θ and x); needed: θ + ∇h + x + (s_i, a_i) {:.0} MB; ratio {:.2}",
        peak / 1e6,
        extra / 1e6,
        needed / 1e6,
        peak / needed
    );
    let json = format!(
        "{{\"workload\":\"w1\",\"op\":\"gradient_peak_memory\",\"threads\":1,\"peak_bytes\":{peak:e},\"needed_bytes\":{needed:e},\"ratio\":{:e}}}",
        peak / needed
    );
    (peak / needed, json)
}
