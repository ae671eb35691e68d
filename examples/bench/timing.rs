//! Timing helpers: medians of runs, GEMM rates, and ratios from back-to-back (paired or
//! alternating) runs, so that a load drifting between rows cancels.

use super::ops::{op_closure, Inputs};
use autodiff::{Dual, Matrix, Scalar};
use curvature::checks::without_finite_checks;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

pub fn time<R>(runs: usize, mut f: impl FnMut() -> R) -> (f64, f64) {
    black_box(f());
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[0])
}

/// Times of single 1000³ GEMMs, in seconds.
pub fn gemm_times<T: Scalar>(runs: usize) -> Vec<f64> {
    let n = 1000;
    let a = Matrix::from_fn(n, n, |i, j| T::from_f64(((i * 7 + j * 3) % 11) as f64 * 0.1));
    let b = a.clone();
    let mut c = Matrix::filled(n, n, T::zero());
    T::gemm(a.as_ref(), b.as_ref(), c.as_mut(), false);
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            T::gemm(a.as_ref(), b.as_ref(), c.as_mut(), false);
            start.elapsed().as_secs_f64()
        })
        .collect()
}

/// GFLOP/s of the median of `times` (1000³ GEMMs).
pub fn gemm_rate(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    2e9 / times[times.len() / 2] / 1e9
}

/// The op's rate as a fraction of `threads` one-thread 1000³ GEMMs, the median over `pairs`
/// back-to-back pairs (one GEMM, then one run of the op) so that both see the same load, and
/// the median GEMM rate of the pairs (GFLOP/s). With `rewarm` (for ops of a few milliseconds
/// or less) an untimed run of the op comes between the two, since the GEMM's 24 MB evict its
/// data and a cold run is not what the row's median measures.
pub fn paired_fraction<T: Scalar>(
    pairs: usize,
    flops: f64,
    threads: usize,
    rewarm: bool,
    op: &mut dyn FnMut(),
) -> (f64, f64) {
    let n = 1000;
    let a = Matrix::from_fn(n, n, |i, j| T::from_f64(((i * 7 + j * 3) % 11) as f64 * 0.1));
    let mut c = Matrix::filled(n, n, T::zero());
    let mut gemm = || T::gemm(a.as_ref(), a.as_ref(), c.as_mut(), false);
    gemm();
    op();
    let (mut fractions, mut rates) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    for _ in 0..pairs {
        let start = Instant::now();
        gemm();
        let rate = 2.0 / start.elapsed().as_secs_f64();
        if rewarm {
            op();
        }
        let start = Instant::now();
        op();
        fractions.push(flops / start.elapsed().as_secs_f64() / 1e9 / (rate * threads as f64));
        rates.push(rate);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(fractions), median(rates))
}

/// The throughput of `threads` concurrent one-thread 1000³ dgemms (one per thread, each into its
/// own result) over one thread's: what the machine gives a data-parallel speedup made of
/// one-thread GEMMs at the time, which on a shared VM swings well below `threads` (context for
/// the speedups, measured once at the start, so not a bound on them). Median of `pairs`
/// back-to-back pairs (one GEMM alone, then `threads` at once), after one warm-up pair.
pub fn concurrent_gemm_speedup(threads: usize, pairs: usize) -> f64 {
    let n = 1000;
    let a = Matrix::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f64 * 0.1);
    let mut results: Vec<Matrix<f64>> = (0..threads).map(|_| Matrix::filled(n, n, 0.0)).collect();
    let mut ratios: Vec<f64> = (0..=pairs)
        .map(|_| {
            let start = Instant::now();
            f64::gemm(a.as_ref(), a.as_ref(), results[0].as_mut(), false);
            let one = start.elapsed().as_secs_f64();
            let start = Instant::now();
            std::thread::scope(|s| {
                for c in results.iter_mut() {
                    let a = &a;
                    s.spawn(move || f64::gemm(a.as_ref(), a.as_ref(), c.as_mut(), false));
                }
            });
            threads as f64 * one / start.elapsed().as_secs_f64()
        })
        .skip(1)
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// Time of one dual product `A Wᵀ` over three real products of the same shape, from 7
/// back-to-back pairs: the efficiency lost to the stride-2 real and tangent parts (1.09–1.30×
/// while the products wrote into the parts of `C` directly; about 1.0 since they go through a
/// contiguous buffer).
pub fn dual_product_overhead() -> f64 {
    let (m, k, n) = (1000, 784, 1000);
    let a = Matrix::from_fn(m, k, |i, j| ((i * 7 + j * 3) % 11) as f64 * 0.1);
    let w = Matrix::from_fn(n, k, |i, j| ((i * 5 + j * 3) % 13) as f64 * 0.1);
    let (ad, wd) = (a.map(|x| Dual::new(x, 0.5 * x)), w.map(|x| Dual::new(x, -0.3 * x)));
    let (mut c, mut cd) = (Matrix::<f64>::zeros(m, n), Matrix::<Dual<f64>>::zeros(m, n));
    let mut real = || {
        for _ in 0..3 {
            f64::gemm(a.as_ref(), w.as_ref().t(), c.as_mut(), false);
        }
    };
    let mut dual = || Dual::<f64>::gemm(ad.as_ref(), wd.as_ref().t(), cd.as_mut(), false);
    paired_ratio(7, &mut real, &mut dual)
}

/// `(median, min)` of every one-thread op of a workload whose ops take microseconds, keyed by
/// `(op, dtype)`, their runs sampled round-robin (one run of each op per round, after a warm-up
/// of each): a burst of outside load on this shared machine outlasts a whole row of such runs,
/// and would otherwise land on one row alone. A run is the mean of `CALLS` back-to-back calls
/// after one call of its own to warm up, so that each op is timed warm, as when it is called
/// repeatedly, not right after the others have evicted its code and data. That first call is
/// timed too: the returned map's third number is the median over runs of its time over the
/// run's mean (printed, so the cost of switching ops stays in view).
pub fn round_robin_times(
    inp: &Inputs<'_>,
    ops: &[String],
    dtypes: &[String],
    runs: usize,
) -> HashMap<(String, String), (f64, f64, f64)> {
    type Keyed<'a> = ((String, String), Box<dyn FnMut() + 'a>);
    let mut closures: Vec<Keyed<'_>> = Vec::new();
    for dtype in dtypes {
        for op in ops {
            if let Some(run) = op_closure(inp, None, None, op, dtype) {
                closures.push(((op.clone(), dtype.clone()), run));
            }
        }
    }
    const CALLS: usize = 10;
    closures.iter_mut().for_each(|(_, run)| run());
    let mut samples = vec![Vec::with_capacity(runs); closures.len()];
    let mut first = vec![Vec::with_capacity(runs); closures.len()];
    for _ in 0..runs {
        let all = closures.iter_mut().zip(samples.iter_mut().zip(&mut first));
        for ((_, run), (times, first)) in all {
            let start = Instant::now();
            run();
            let cold = start.elapsed().as_secs_f64();
            let start = Instant::now();
            for _ in 0..CALLS {
                run();
            }
            let warm = start.elapsed().as_secs_f64() / CALLS as f64;
            times.push(warm);
            first.push(cold / warm);
        }
    }
    let median = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        (t[t.len() / 2], t[0])
    };
    closures
        .into_iter()
        .zip(samples.into_iter().zip(first))
        .map(|((key, _), (t, f))| {
            let ((m, min), (f, _)) = (median(t), median(f));
            (key, (m, min, f))
        })
        .collect()
}

/// The median over `runs` back-to-back pairs of `time(b) / time(a)`, after one warm-up of each:
/// both sides of every pair see the same load, so the ratio survives a machine whose speed
/// drifts between rows (the per-row medians do not).
pub fn paired_ratio(runs: usize, a: &mut dyn FnMut(), b: &mut dyn FnMut()) -> f64 {
    a();
    b();
    let mut ratios: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            a();
            let ta = start.elapsed().as_secs_f64();
            let start = Instant::now();
            b();
            start.elapsed().as_secs_f64() / ta
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// For each one-thread f64 op, the median over `pairs` back-to-back runs of its time with the
/// finite checks on (the default) over its time inside `without_finite_checks`: what the checks
/// cost (issue 17: within 2%). Both sides run the same closure, with the same buffer pool: two
/// closures with two pools read about 1.015 with the checks off on both sides (W2's gradient),
/// a bias from where their buffers lie that is as large as what is measured.
pub fn finite_check_ratios(inp: &Inputs<'_>, ops: &[String], pairs: usize) -> Vec<(String, f64)> {
    ops.iter()
        .filter_map(|op| {
            let run = std::cell::RefCell::new(op_closure(inp, None, None, op, "f64")?);
            let mut checked = || (run.borrow_mut())();
            let mut unchecked = || without_finite_checks(|| (run.borrow_mut())());
            Some((op.clone(), alternating_ratio(pairs, &mut unchecked, &mut checked)))
        })
        .collect()
}

/// As [`paired_ratio`] (`time(b) / time(a)`), with the order inside the pairs alternating (`a`
/// first, then `b` first): for two near-equal sides the second run of a pair is often a few
/// percent faster (W2's `G v` on a warm pass read 0.95 with `a` always first), which would
/// otherwise be the result.
pub fn alternating_ratio(pairs: usize, a: &mut dyn FnMut(), b: &mut dyn FnMut()) -> f64 {
    a();
    b();
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    };
    let mut ratios: Vec<f64> = (0..pairs)
        .map(|k| {
            if k % 2 == 0 {
                let ta = time(a);
                time(b) / ta
            } else {
                let tb = time(b);
                tb / time(a)
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}
