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
//! `timing::round_robin_times`). The `f32` rows run every op but `F v` on `autodiff` directly
//! ([`tape_ops`]; `curvature` is `f64`), on t threads over t row blocks of the batch
//! ([`sharded_f32`], as `ShardedProblem` does), each first checked against its `f64` result;
//! their `÷ grad*` is to the `f32` gradient. After each workload's rows, one line gives what
//! the finite checks cost: each one-thread `f64` op checked (the default) over unchecked
//! (`curvature::checks::without_finite_checks`), the median of back-to-back pairs whose order
//! alternates.
//!
//! Layout: [`args`] (the flags), [`ops`] (the workloads and each op as a closure), [`timing`]
//! (medians, GEMM rates, paired and alternating ratios), [`flops`] (FLOP counts), [`memory`]
//! (the heap counter), [`report`] (the rows and the targets summary), [`spectra`] (the Lanczos
//! row), [`kfac_step`], [`tape_ops`] and [`sharded_f32`]; this file wires them.

use args::{defaults, flags};
use autodiff::random::{random_matrix, random_vector};
use autodiff::Matrix;
use curvature::loss::{BernoulliLogits, PredictiveDistribution, SoftmaxCrossEntropy};
use curvature::{Problem, ShardedProblem};
use flops::{forward_flops, op_flops};
use natgrad::cli;
use ops::{op_closure, workloads, Inputs};
use rand::{rngs::StdRng, SeedableRng};
use report::{print_targets, Row};
use timing::{
    concurrent_gemm_speedup, dual_product_overhead, finite_check_ratios, gemm_rate, gemm_times,
    paired_fraction, paired_ratio, round_robin_times, time,
};

mod args;
mod flops;
mod kfac_step;
mod memory;
mod ops;
mod report;
mod sharded_f32;
mod spectra;
mod tape_ops;
mod timing;

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
        report::print_header();
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
                    let row = Row {
                        workload: w.name,
                        op: op.clone(),
                        dtype: dtype.clone(),
                        threads,
                        median,
                        min,
                        flops,
                        gemm,
                        fraction,
                        ratio,
                        speedup,
                        floor: op_flops(op, f, f1) / op_flops("gradient", f, f1),
                    };
                    json.push(report::print_row(&row));
                    rows.push(row);
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
            let (ratio, record) = memory::gradient_peak(&w, &problem, &theta, &x);
            memory_ratio = ratio;
            json.push(record);
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
