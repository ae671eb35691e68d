//! Benchmark of the derivative and curvature products on three workloads (DESIGN.md):
//! W1 the 784-1000-500-250-30-250-500-1000-784 autoencoder (logistic units, linear code,
//! sigmoid cross-entropy, batch 1000), W2 a 64-128-128-10 tanh MLP with softmax cross-entropy
//! (batch 256), W3 a 10-20-20-3 tanh MLP (batch 32).
//!
//! For each op: median and min of `--runs` timed runs after a warm-up, the matrix-product FLOPs
//! of the op, GFLOP/s, that as a fraction of the GEMM rate measured in the same process
//! (1000³ `dgemm`/`sgemm` through `matrixmultiply`), and the time as a ratio to the gradient.
//! The fraction (`of GEMM*`) and the ratios (`÷ grad*`, `speedup*`) are medians over
//! back-to-back pairs (a GEMM and a run of the op; the op and the one-thread gradient; the op
//! on t threads and on one), so a load that drifts between rows, as it does on this shared
//! machine, cancels; the targets use them.
//!
//! Run: `cargo run --release --example bench -- [--workload w1,w2,w3] [--op gradient,hvp,…]
//! [--dtype f64,f32] [--threads 1,2] [--runs 10] [--json PATH]`; an unknown flag or value, a
//! thread count of 0 or a `--json` path that cannot be created is an error (exit 2, one line,
//! before anything is timed). A thread count t > 1 runs
//! every f64 op through a `ShardedProblem` of t row blocks (data parallelism over the batch),
//! each block on single-threaded GEMMs, and reports the speedup over one thread in the same
//! process. W3's one-thread rows are sampled round-robin across its ops (see
//! `round_robin_times`). The `f32` rows run every op but `F v` on `autodiff` directly
//! ([`tape_ops`]; `curvature` is `f64`), on t threads over t row blocks of the batch
//! ([`sharded_f32`], as `ShardedProblem` does), each first checked against its `f64` result;
//! their `÷ grad*` is to the `f32` gradient. After each workload's rows, one line gives what
//! the finite checks cost: each one-thread `f64` op checked (the default) over unchecked
//! (`curvature::checks::without_finite_checks`), the median of back-to-back pairs whose order
//! alternates.

use autodiff::random::{random_matrix, random_vector};
use autodiff::{BufferPool, Dual, Matrix, Scalar};
use curvature::checks::without_finite_checks;
use curvature::loss::{BernoulliLogits, PredictiveDistribution, SoftmaxCrossEntropy};
use curvature::{Activation, Mlp, Problem, ShardedProblem};
use natgrad::cli::{self, Flag};
use rand::{rngs::StdRng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};
use std::time::Instant;

mod kfac_step;
mod sharded_f32;
mod spectra;
mod tape_ops;

/// The system allocator, counting live heap bytes and their high-water mark while `COUNTING`
/// is on, so the peak memory of an op is measured exactly (RSS would also count what the
/// allocator keeps from earlier ops). Off, it costs one relaxed load per call: counting (three
/// atomic read-modify-writes per call) made a W3 gradient 1.03–1.05× slower and `H v`
/// 1.01–1.02× (same-process pairs, on against off), which the timed rows must not carry.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Live bytes since counting was switched on (a free of an older block takes them below 0).
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn count(grow: usize, shrink: usize) {
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

struct Workload {
    name: &'static str,
    mlp: Mlp,
    batch: usize,
    bernoulli: bool,
}

fn workloads() -> Vec<Workload> {
    use Activation::{Identity as I, Logistic as L, Tanh as T};
    vec![
        Workload {
            name: "w1",
            mlp: Mlp::new(
                &[784, 1000, 500, 250, 30, 250, 500, 1000, 784],
                &[L, L, L, I, L, L, L, I],
            )
            .unwrap(),
            batch: 1000,
            bernoulli: true,
        },
        Workload {
            name: "w2",
            mlp: Mlp::new(&[64, 128, 128, 10], &[T, T, I]).unwrap(),
            batch: 256,
            bernoulli: false,
        },
        Workload {
            name: "w3",
            mlp: Mlp::new(&[10, 20, 20, 3], &[T, T, I]).unwrap(),
            batch: 32,
            bernoulli: false,
        },
    ]
}

/// Matrix-product FLOPs of one forward pass, and of its first layer (whose input has no
/// tangent and needs no adjoint).
fn forward_flops(w: &Workload) -> (f64, f64) {
    let s = w.mlp.sizes();
    let n = w.batch as f64;
    let total = s.windows(2).map(|p| 2.0 * n * p[0] as f64 * p[1] as f64).sum();
    (total, 2.0 * n * s[0] as f64 * s[1] as f64)
}

/// FLOPs per op, counting only matrix products (see the README's benchmark section).
fn op_flops(op: &str, f: f64, f1: f64) -> f64 {
    match op {
        "loss" => f,
        "gradient" | "jvp" | "vjp" => 3.0 * f - f1,
        "ggn" | "fisher" | "empirical_fisher" => 5.0 * f - 2.0 * f1,
        "ggn_repeated" => 4.0 * f - 2.0 * f1,
        // A dual forward (3 real products per layer, 2 in the first, whose input has no
        // tangent: 3F − F₁) and a dual backward: dA with 3 products per layer but the first
        // (3F − 3F₁), dW with only its 2 tangent products (the gradient, its primal part, is not
        // wanted) and 1 in the first layer (2F − F₁).
        "hvp" => 8.0 * f - 5.0 * f1,
        _ => f64::NAN,
    }
}

fn time<R>(runs: usize, mut f: impl FnMut() -> R) -> (f64, f64) {
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
fn gemm_times<T: Scalar>(runs: usize) -> Vec<f64> {
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
fn gemm_rate(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    2e9 / times[times.len() / 2] / 1e9
}

/// The op's rate as a fraction of `threads` one-thread 1000³ GEMMs, the median over `pairs`
/// back-to-back pairs (one GEMM, then one run of the op) so that both see the same load, and
/// the median GEMM rate of the pairs (GFLOP/s). With `rewarm` (for ops of a few milliseconds
/// or less) an untimed run of the op comes between the two, since the GEMM's 24 MB evict its
/// data and a cold run is not what the row's median measures.
fn paired_fraction<T: Scalar>(
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
fn concurrent_gemm_speedup(threads: usize, pairs: usize) -> f64 {
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

struct Args {
    workloads: Vec<String>,
    ops: Vec<String>,
    dtypes: Vec<String>,
    threads: Vec<usize>,
    runs: usize,
    json: Option<String>,
}

/// The ops `--op` accepts.
const OPS: [&str; 9] =
    ["loss", "gradient", "jvp", "vjp", "hvp", "ggn", "fisher", "empirical_fisher", "ggn_repeated"];

/// The flags, one line each (see `natgrad::cli`).
fn flags() -> Vec<Flag<Args>> {
    vec![
        Flag::value("--workload", "w1,w2,w3", |a: &mut Args, v| {
            cli::list_of(v, &["w1", "w2", "w3"]).map(|w| a.workloads = w)
        }),
        Flag::value("--op", "OP,…", |a, v| cli::list_of(v, &OPS).map(|o| a.ops = o)),
        Flag::value("--dtype", "f64,f32", |a, v| {
            cli::list_of(v, &["f64", "f32"]).map(|d| a.dtypes = d)
        }),
        Flag::value("--threads", "T,…", |a, v| {
            cli::list(v, cli::positive).map(|t| a.threads = t)
        }),
        Flag::value("--runs", "N", |a, v| cli::positive(v).map(|n| a.runs = n)),
        Flag::value("--json", "PATH", |a, v| {
            a.json = Some(v.into());
            Ok(())
        }),
    ]
}

fn defaults() -> Args {
    Args {
        workloads: vec!["w1".into(), "w2".into(), "w3".into()],
        ops: OPS.map(String::from).to_vec(),
        dtypes: vec!["f64".into(), "f32".into()],
        threads: vec![1],
        runs: 10,
        json: None,
    }
}

/// One measured row, for the targets summary.
struct Row {
    workload: &'static str,
    op: String,
    dtype: String,
    threads: usize,
    median: f64,
    fraction: f64,
    /// Median of paired time ratios to the one-thread f64 gradient (threads = 1 only).
    ratio: f64,
    /// Median of paired one-thread / this-row time ratios (threads > 1 only).
    speedup: f64,
    /// The op's matrix-product FLOPs over the gradient's: the ratio it would have at equal
    /// GEMM efficiency.
    floor: f64,
}

/// The targets against this run's numbers (those measured in this run only), with the
/// FLOP-count floor of each ratio target and, beside the 2-thread speedup, the throughput of two
/// concurrent dgemms measured at the start.
fn print_targets(rows: &[Row], memory_ratio: f64, two_gemms: Option<f64>) {
    let find = |w: &str, op: &str, dtype: &str, threads: usize| {
        rows.iter()
            .find(|r| r.workload == w && r.op == op && r.dtype == dtype && r.threads == threads)
    };
    let mut lines: Vec<(String, String, bool)> = Vec::new();
    let mut check =
        |name: String, measured: String, holds: bool| lines.push((name, measured, holds));
    if let Some(g) = find("w1", "gradient", "f64", 1) {
        check(
            "W1 gradient ≥ 85% of GEMM".into(),
            format!("{:.0}%", 100.0 * g.fraction),
            g.fraction >= 0.85,
        );
        for (op, limit) in [
            ("jvp", 0.7),
            ("ggn", 1.6),
            ("fisher", 1.6),
            ("empirical_fisher", 1.6),
            ("ggn_repeated", 1.3),
            ("hvp", 2.5),
        ] {
            if let Some(r) = find("w1", op, "f64", 1) {
                let ratio = r.ratio;
                check(
                    format!("W1 {op} ≤ {limit} gradients (FLOP floor {:.2})", r.floor),
                    format!("{ratio:.2}"),
                    ratio <= limit,
                );
            }
        }
        if let Some(r2) = find("w1", "gradient", "f64", 2) {
            let speedup = r2.speedup;
            let gemms =
                two_gemms.map_or(String::new(), |c| format!(" (two dgemms at once: {c:.2}×)"));
            check(
                "W1 gradient 2 threads ≥ 1.8× one".into(),
                format!("{speedup:.2}×{gemms}"),
                speedup >= 1.8,
            );
        }
    }
    if let Some(g) = find("w1", "gradient", "f32", 1) {
        check(
            "W1 f32 gradient ≥ 80% of sgemm".into(),
            format!("{:.0}%", 100.0 * g.fraction),
            g.fraction >= 0.8,
        );
    }
    if let Some(g) = find("w2", "gradient", "f64", 1) {
        check(
            "W2 gradient ≥ 60% of GEMM".into(),
            format!("{:.0}%", 100.0 * g.fraction),
            g.fraction >= 0.6,
        );
    }
    if let Some(g) = find("w3", "gradient", "f64", 1) {
        check("W3 gradient < 10 µs".into(), format!("{:.1} µs", 1e6 * g.median), g.median < 10e-6);
    }
    let w3: Vec<&Row> =
        rows.iter().filter(|r| r.workload == "w3" && r.threads == 1 && r.dtype == "f64").collect();
    if let Some(slowest) = w3.iter().max_by(|a, b| a.median.total_cmp(&b.median)) {
        check(
            "W3 every op < 25 µs".into(),
            format!("slowest {} {:.1} µs", slowest.op, 1e6 * slowest.median),
            slowest.median < 25e-6,
        );
    }
    if memory_ratio.is_finite() {
        check(
            "W1 gradient peak memory ≤ 1.5×".into(),
            format!("{memory_ratio:.2}×"),
            memory_ratio <= 1.5,
        );
    }
    println!("\ntargets (issue 3)");
    for (name, measured, holds) in &lines {
        println!("  {:<52} {:>26}  {}", name, measured, if *holds { "holds" } else { "MISSED" });
    }
}

/// Everything one op's timing needs.
struct Inputs<'a> {
    w: &'a Workload,
    problem: Problem<'a, Mlp>,
    theta: &'a [f64],
    v: &'a [f64],
    u: &'a Matrix<f64>,
    x: &'a Matrix<f64>,
    y: &'a Matrix<f64>,
    /// `v` and `u` rounded to `f32`, for the `f32` ops.
    v32: Matrix<f32>,
    u32: Matrix<f32>,
}

/// Time of one dual product `A Wᵀ` over three real products of the same shape, from 7
/// back-to-back pairs: the efficiency lost to the stride-2 real and tangent parts (1.09–1.30×
/// while the products wrote into the parts of `C` directly; about 1.0 since they go through a
/// contiguous buffer).
fn dual_product_overhead() -> f64 {
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

/// One op as a closure to time, or `None` where the combination is not benchmarked. With
/// `sharded` (or `blocks`, for `f32`), the ops run on its row blocks, one thread each, each
/// block allocating from its own `BufferPool`; on one thread they run in a `BufferPool` of the
/// closure's, kept from call to call, as `optim`'s `NetworkObjective` runs them: without one,
/// glibc hands the big buffers of a W1 pass back to the kernel when they are freed, and the next
/// call faults them in afresh (~200 MB per W1 `H v`, 5–9% of its time in `perf`).
fn op_closure<'a>(
    inp: &'a Inputs<'a>,
    sharded: Option<&'a ShardedProblem<'a, Mlp>>,
    blocks: Option<&'a sharded_f32::Blocks>,
    op: &str,
    dtype: &str,
) -> Option<Box<dyn FnMut() + 'a>> {
    let mut run = unpooled_op_closure(inp, sharded, blocks, op, dtype)?;
    if sharded.is_some() || blocks.is_some() {
        return Some(run);
    }
    let mut pool = BufferPool::new();
    Some(Box::new(move || pool.scope(&mut run)))
}

/// [`op_closure`] without the one-thread pool.
fn unpooled_op_closure<'a>(
    inp: &'a Inputs<'a>,
    sharded: Option<&'a ShardedProblem<'a, Mlp>>,
    blocks: Option<&'a sharded_f32::Blocks>,
    op: &str,
    dtype: &str,
) -> Option<Box<dyn FnMut() + 'a>> {
    let (problem, theta, v, u) = (&inp.problem, inp.theta, inp.v, inp.u);
    let (w, x, y) = (inp.w, inp.x, inp.y);
    if op == "kfac" || op == "kfac32" {
        let single = op == "kfac32";
        return (dtype == "f64" && sharded.is_none())
            .then(|| kfac_step::closure(problem, theta, single));
    }
    // The f64 ops of a `Problem` and of a `ShardedProblem`: the same methods on two types.
    macro_rules! f64_ops {
        ($p:expr) => {{
            let p = $p;
            let run: Box<dyn FnMut() + 'a> = match op {
                "loss" => Box::new(move || drop(black_box(p.at(theta).unwrap().loss()))),
                "gradient" => Box::new(move || drop(black_box(p.at(theta).unwrap().gradient()))),
                "jvp" => Box::new(move || {
                    drop(black_box(p.at(theta).unwrap().jacobian_vector_product(v)))
                }),
                "vjp" => Box::new(move || {
                    drop(black_box(p.at(theta).unwrap().transpose_jacobian_vector_product(u)))
                }),
                "hvp" => Box::new(move || drop(black_box(p.hessian_vector_product(theta, v)))),
                "ggn" => {
                    Box::new(move || drop(black_box(p.at(theta).unwrap().ggn_vector_product(v))))
                }
                "fisher" => {
                    Box::new(move || drop(black_box(p.at(theta).unwrap().fisher_vector_product(v))))
                }
                "empirical_fisher" => Box::new(move || {
                    drop(black_box(p.at(theta).unwrap().empirical_fisher_vector_product(v)))
                }),
                "ggn_repeated" => {
                    let pass = p.at(theta).unwrap();
                    Box::new(move || drop(black_box(pass.ggn_vector_product(v))))
                }
                _ => return None,
            };
            run
        }};
    }
    if dtype == "f64" {
        return Some(match sharded {
            Some(sh) => f64_ops!(sh),
            None => f64_ops!(problem),
        });
    }
    if let Some(b) = blocks {
        return (dtype == "f32")
            .then(|| sharded_f32::closure(w, b, op, theta, v, &inp.v32))
            .flatten();
    }
    Some(match (dtype, op) {
        ("f32", "loss") => Box::new(move || {
            black_box(tape_ops::loss::<f32>(w, theta, x, y));
        }),
        ("f32", "gradient") => Box::new(move || {
            drop(black_box(tape_ops::Forward::<f32>::new(w, theta, x).gradient(w, y)))
        }),
        ("f32", "jvp") => Box::new(move || {
            drop(black_box(
                tape_ops::Forward::<f32>::new(w, theta, x).jacobian_vector_product(&inp.v32),
            ))
        }),
        ("f32", "vjp") => Box::new(move || {
            drop(black_box(
                tape_ops::Forward::<f32>::new(w, theta, x)
                    .transpose_jacobian_vector_product(&inp.u32),
            ))
        }),
        ("f32", "hvp") => Box::new(move || {
            drop(black_box(tape_ops::hessian_vector_product::<f32>(w, theta, v, x, y)))
        }),
        ("f32", "ggn") => Box::new(move || {
            drop(black_box(tape_ops::Forward::<f32>::new(w, theta, x).ggn(w, &inp.v32)))
        }),
        ("f32", "empirical_fisher") => Box::new(move || {
            let pass = tape_ops::Forward::<f32>::new(w, theta, x);
            drop(black_box(pass.empirical_fisher(w, y, &inp.v32)))
        }),
        ("f32", "ggn_repeated") => {
            let pass = tape_ops::Forward::<f32>::new(w, theta, x);
            Box::new(move || drop(black_box(pass.ggn(w, &inp.v32))))
        }
        _ => return None,
    })
}

/// `(median, min)` of every one-thread op of a workload whose ops take microseconds, keyed by
/// `(op, dtype)`, their runs sampled round-robin (one run of each op per round, after a warm-up
/// of each): a burst of outside load on this shared machine outlasts a whole row of such runs,
/// and would otherwise land on one row alone. A run is the mean of `CALLS` back-to-back calls
/// after one call of its own to warm up, so that each op is timed warm, as when it is called
/// repeatedly, not right after the others have evicted its code and data. That first call is
/// timed too: the returned map's third number is the median over runs of its time over the
/// run's mean (printed, so the cost of switching ops stays in view).
fn round_robin_times(
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
fn paired_ratio(runs: usize, a: &mut dyn FnMut(), b: &mut dyn FnMut()) -> f64 {
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
fn finite_check_ratios(inp: &Inputs<'_>, ops: &[String], pairs: usize) -> Vec<(String, f64)> {
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
fn alternating_ratio(pairs: usize, a: &mut dyn FnMut(), b: &mut dyn FnMut()) -> f64 {
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

fn main() {
    let args = cli::parse_env("bench", &flags(), defaults());
    // Fail now, not after the whole run, if the JSON file cannot be written.
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::File::create(path) {
            cli::fail("bench", &format!("--json {path}: cannot write: {e}"));
        }
    }
    // Threads are batch shards (ShardedProblem), each running matrixmultiply's single-threaded
    // GEMM (the workspace does not enable its `threading` feature).
    let rate64 = gemm_rate(gemm_times::<f64>(5));
    let rate32 = gemm_rate(gemm_times::<f32>(5));
    println!(
        "GEMM 1000³ one thread: dgemm {rate64:.1} GFLOP/s, sgemm {rate32:.1} GFLOP/s at start; \
         columns marked * are medians over back-to-back pairs: 'GEMM*' and 'of GEMM*' from \
         pairs of one 1000³ GEMM and one run of the op (the op's rate against threads × the \
         GEMM's), '÷ grad*' and 'speedup*' from pairs of runs"
    );
    if args.workloads.iter().any(|w| w == "w1") {
        println!(
            "dual product 1000×784×1000 (W1's first layer in H v) over three real ones: {:.2}× \
             (median of 7 pairs; the stride-2 parts cost this over contiguous operands)",
            dual_product_overhead()
        );
    }
    // What running one-thread GEMMs on t threads at once gives on this machine now.
    let concurrent: Vec<(usize, f64)> = args
        .threads
        .iter()
        .filter(|&&t| t > 1)
        .map(|&t| {
            let speedup = concurrent_gemm_speedup(t, 9);
            println!(
                "{t} concurrent one-thread 1000³ dgemms over one: {speedup:.2}× the throughput \
                 (median of 9 pairs, now): context for the {t}-thread speedups below"
            );
            (t, speedup)
        })
        .collect();
    let mut json = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut memory_ratio = f64::NAN;
    for w in workloads().into_iter().filter(|w| args.workloads.iter().any(|n| n == w.name)) {
        let mut rng = StdRng::seed_from_u64(0);
        let (m0, ml) = (w.mlp.input_dim(), w.mlp.output_dim());
        let x = random_matrix(w.batch, m0, &mut rng).map(|v| 1.0 / (1.0 + (-v).exp()));
        let y = if w.bernoulli {
            x.clone()
        } else {
            Matrix::from_fn(w.batch, ml, |i, j| if i % ml == j { 1.0 } else { 0.0 })
        };
        let theta: Vec<f64> =
            random_vector(w.mlp.num_params(), &mut rng).iter().map(|t| 0.05 * t).collect();
        let v = random_vector(theta.len(), &mut rng);
        let u = random_matrix(w.batch, ml, &mut rng);
        let loss: Box<dyn PredictiveDistribution> =
            if w.bernoulli { Box::new(BernoulliLogits) } else { Box::new(SoftmaxCrossEntropy) };
        let problem = Problem::new(&w.mlp, loss.as_ref(), &x, &y).unwrap();
        let (f, f1) = forward_flops(&w);
        let runs = if w.name == "w1" { args.runs } else { args.runs * 20 };
        println!(
            "\n{} ({} params, batch {}), {} runs each, times in ms",
            w.name,
            theta.len(),
            w.batch,
            runs
        );
        println!(
            "{:<18} {:>5} {:>3} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}",
            "op",
            "dtype",
            "thr",
            "median",
            "min",
            "GFLOP",
            "GFLOP/s",
            "GEMM*",
            "of GEMM*",
            "÷ grad*",
            "speedup*"
        );
        let (v32, u32) =
            (Matrix::column(v.iter().map(|&a| a as f32).collect()), u.map(|a| a as f32));
        let inputs = Inputs { w: &w, problem, theta: &theta, v: &v, u: &u, x: &x, y: &y, v32, u32 };
        if args.dtypes.iter().any(|d| d == "f32") {
            let error = tape_ops::check(&w, &inputs.problem, (&theta, &v, &u));
            println!(
                "f32 ops against the f64 ones: largest relative error {error:.1e} (limit 1e-3)"
            );
            // (NaN fails too.)
            if error.is_nan() || error >= 1e-3 {
                eprintln!("bench: an f32 op disagrees with its f64 counterpart; nothing timed");
                std::process::exit(1);
            }
        }
        let interleaved =
            (w.name == "w3").then(|| round_robin_times(&inputs, &args.ops, &args.dtypes, runs));
        if let Some(times) = &interleaved {
            let mut first: Vec<String> = times
                .iter()
                .map(|((op, dtype), &(_, _, f))| format!("{op} {dtype} {f:.2}×"))
                .collect();
            first.sort();
            println!(
                "one-thread rows: runs of {} calls sampled round-robin across the ops, each after one \
                 call to warm up; that first call took (median over runs) {}",
                10,
                first.join(", ")
            );
        }
        for &threads in &args.threads {
            let sharded = (threads > 1).then(|| ShardedProblem::new(&problem, threads).unwrap());
            let blocks = (threads > 1 && args.dtypes.iter().any(|d| d == "f32"))
                .then(|| sharded_f32::Blocks::new(&x, &y, &inputs.u32, threads));
            if let Some(b) = &blocks {
                let error =
                    sharded_f32::check(&w, b, &inputs.problem, (&theta, &v, &u), &inputs.v32);
                println!(
                    "f32 ops on {threads} row blocks against the f64 ones: largest relative error {error:.1e} (limit 1e-3)"
                );
                if error.is_nan() || error >= 1e-3 {
                    eprintln!("bench: a sharded f32 op disagrees with its f64 counterpart");
                    std::process::exit(1);
                }
            }
            for dtype in &args.dtypes {
                for op in &args.ops {
                    let Some(mut run) =
                        op_closure(&inputs, sharded.as_ref(), blocks.as_ref(), op, dtype)
                    else {
                        continue;
                    };
                    let stored = interleaved
                        .as_ref()
                        .filter(|_| threads == 1)
                        .and_then(|t| t.get(&(op.clone(), dtype.clone())).copied());
                    let (median, min) = match stored {
                        Some((median, min, _)) => (median, min),
                        None => time(runs, &mut run),
                    };
                    let flops = op_flops(op, f, f1);
                    let pairs = runs.min(10);
                    let rewarm = median < 0.01;
                    let (fraction, gemm) = if dtype == "f32" {
                        paired_fraction::<f32>(pairs, flops, threads, rewarm, &mut run)
                    } else {
                        paired_fraction::<f64>(pairs, flops, threads, rewarm, &mut run)
                    };
                    // Ratios from back-to-back pairs (see `paired_ratio`): to the one-thread
                    // f64 gradient, and the speedup over the same op on one thread.
                    // (An f32 op is compared with the f32 gradient.)
                    let ratio = if threads == 1 && op != "gradient" {
                        let mut g = op_closure(&inputs, None, None, "gradient", dtype).unwrap();
                        paired_ratio(runs, &mut g, &mut run)
                    } else if threads == 1 {
                        1.0
                    } else {
                        f64::NAN
                    };
                    let speedup = if threads > 1 {
                        let mut one = op_closure(&inputs, None, None, op, dtype).unwrap();
                        paired_ratio(runs, &mut run, &mut one)
                    } else {
                        1.0
                    };
                    let rate = flops / median / 1e9;
                    println!(
                        "{op:<18} {dtype:>5} {threads:>3} {:>10.4} {:>10.4} {:>8.2} {:>8.1} {:>8.1} {:>7.0}% {:>7.2} {:>8.2}",
                        median * 1e3,
                        min * 1e3,
                        flops / 1e9,
                        rate,
                        gemm,
                        100.0 * fraction,
                        ratio,
                        speedup
                    );
                    rows.push(Row {
                        workload: w.name,
                        op: op.clone(),
                        dtype: dtype.clone(),
                        threads,
                        median,
                        fraction,
                        ratio,
                        speedup,
                        floor: op_flops(op, f, f1) / op_flops("gradient", f, f1),
                    });
                    json.push(format!(
                        "{{\"workload\":\"{}\",\"op\":\"{op}\",\"dtype\":\"{dtype}\",\"threads\":{threads},\"median_s\":{median:e},\"min_s\":{min:e},\"flops\":{flops:e},\"gflops\":{rate:e},\"gemm_gflops\":{gemm:e},\"fraction_of_gemm\":{fraction:e},\"paired_ratio_to_gradient\":{ratio:e},\"paired_speedup\":{speedup:e}}}",
                        w.name
                    ));
                }
            }
        }
        if w.name == "w2" && args.ops.iter().any(|o| o == "hvp" || o == "lanczos") {
            json.push(spectra::lanczos_row(&inputs.problem, &theta, &v, runs.min(20)));
        }
        if args.threads.contains(&1) && args.dtypes.iter().any(|d| d == "f64") {
            let ratios = finite_check_ratios(&inputs, &args.ops, runs);
            println!(
                "{} finite checks (curvature::checks, on by default): checked ÷ unchecked, one \
                 thread f64, median of {} back-to-back pairs (order alternating): {}",
                w.name,
                runs,
                ratios.iter().map(|(op, r)| format!("{op} {r:.3}")).collect::<Vec<_>>().join(", ")
            );
            for (op, r) in &ratios {
                json.push(format!(
                    "{{\"workload\":\"{}\",\"op\":\"{op}\",\"dtype\":\"f64\",\"threads\":1,\"paired_checked_over_unchecked\":{r:e}}}",
                    w.name
                ));
            }
        }
        if w.name == "w1" && args.ops.iter().any(|o| o == "gradient") {
            // Peak live heap during one gradient, over what the caller already holds (θ, x, y,
            // v, u), plus the caller's θ and x, against the bytes any reverse-mode gradient
            // needs: θ, ∇h, x, and each layer's pre-activation s_i and output a_i.
            let extra = peak_bytes_during(|| {
                black_box(problem.at(&theta).unwrap().gradient().unwrap());
            });
            let params = 8.0 * theta.len() as f64;
            let input = 8.0 * x.len() as f64;
            let layers: f64 =
                8.0 * w.batch as f64 * 2.0 * w.mlp.sizes()[1..].iter().sum::<usize>() as f64;
            let needed = 2.0 * params + input + layers;
            let peak = extra + params + input;
            println!(
                "W1 gradient peak heap {:.0} MB (the op's own allocations {:.0} MB + the caller's θ and x); needed: θ + ∇h + x + (s_i, a_i) {:.0} MB; ratio {:.2}",
                peak / 1e6,
                extra / 1e6,
                needed / 1e6,
                peak / needed
            );
            memory_ratio = peak / needed;
            json.push(format!(
                "{{\"workload\":\"w1\",\"op\":\"gradient_peak_memory\",\"threads\":1,\"peak_bytes\":{peak:e},\"needed_bytes\":{needed:e},\"ratio\":{:e}}}",
                peak / needed
            ));
        }
    }
    for &(t, speedup) in &concurrent {
        json.push(format!(
            "{{\"op\":\"concurrent_gemm\",\"threads\":{t},\"paired_speedup\":{speedup:e}}}"
        ));
    }
    let two_gemms = concurrent.iter().find(|(t, _)| *t == 2).map(|&(_, s)| s);
    print_targets(&rows, memory_ratio, two_gemms);
    if let Some(path) = args.json {
        if let Err(e) = std::fs::write(&path, format!("[\n{}\n]\n", json.join(",\n"))) {
            eprintln!("bench: --json {path}: cannot write: {e}");
            std::process::exit(1);
        }
        println!("wrote {path}");
    }
}
