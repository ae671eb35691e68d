//! Times the bulk `tanh` and sigmoid of `autodiff::fast_math` against the per-element libm
//! formulas, on 1280 elements (one 32×40 activation of the 10-20-20-3 MLP) and on 10⁶.
//!
//! Run: `cargo run --release -p natgrad-autodiff --example fast_tanh`. Prints the median time
//! per element over 15 samples of each, interleaved.

use autodiff::fast_math::{sigmoid_f32, sigmoid_f64, tanh_f32, tanh_f64};
use autodiff::op::unary::sigmoid;
use std::hint::black_box;
use std::time::Instant;

/// Median nanoseconds per element of `f` and of `g`, their samples interleaved.
fn time2(len: usize, mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64) {
    // About 2·10⁶ elements per sample.
    let reps = (2_000_000 / len).max(1);
    let sample = |h: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..reps {
            h();
        }
        t.elapsed().as_nanos() as f64 / (reps * len) as f64
    };
    sample(&mut f);
    sample(&mut g);
    let (mut sf, mut sg): (Vec<f64>, Vec<f64>) =
        (0..15).map(|_| (sample(&mut f), sample(&mut g))).unzip();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut sf), median(&mut sg))
}

fn row(name: &str, len: usize, (libm, bulk): (f64, f64)) {
    println!("{name:<14} {len:>9} {libm:>12.2} {bulk:>12.2} {:>8.2}×", libm / bulk);
}

fn main() {
    println!(
        "{:<14} {:>9} {:>12} {:>12} {:>9}",
        "function", "elements", "libm ns/el", "bulk ns/el", "speedup"
    );
    for len in [1280, 1_000_000] {
        // Pre-activations of a tanh layer: mostly in [-3, 3], some saturated.
        let x: Vec<f64> = (0..len).map(|i| ((i * 7919) % 2001) as f64 * 0.004 - 4.0).collect();
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let (mut out, mut out32) = (vec![0.0; len], vec![0.0f32; len]);
        let mut out_b = out.clone();
        let mut out32_b = out32.clone();
        let t = time2(
            len,
            || {
                for (o, &v) in out.iter_mut().zip(black_box(&x)) {
                    *o = v.tanh();
                }
            },
            || tanh_f64(black_box(&x), &mut out_b),
        );
        row("tanh f64", len, t);
        let t = time2(
            len,
            || {
                for (o, &v) in out.iter_mut().zip(black_box(&x)) {
                    *o = sigmoid(v);
                }
            },
            || sigmoid_f64(black_box(&x), &mut out_b),
        );
        row("sigmoid f64", len, t);
        let t = time2(
            len,
            || {
                for (o, &v) in out32.iter_mut().zip(black_box(&x32)) {
                    *o = v.tanh();
                }
            },
            || tanh_f32(black_box(&x32), &mut out32_b),
        );
        row("tanh f32", len, t);
        let t = time2(
            len,
            || {
                for (o, &v) in out32.iter_mut().zip(black_box(&x32)) {
                    *o = sigmoid(v);
                }
            },
            || sigmoid_f32(black_box(&x32), &mut out32_b),
        );
        row("sigmoid f32", len, t);
        black_box((&out, &out_b, &out32, &out32_b));
    }
}
