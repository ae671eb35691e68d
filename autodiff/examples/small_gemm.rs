//! Times the direct small-matrix kernel (`autodiff::small_gemm::gemm`) against
//! `matrixmultiply::dgemm` on the shapes of the 10-20-20-3 MLP (batch 32) and a few larger ones,
//! to choose `SMALL_GEMM_MAX_WORK`.
//!
//! Run: `cargo run --release -p natgrad-autodiff --example small_gemm`. Prints the median time
//! per product over 31 samples of each path, interleaved (each sample repeats the product
//! to take ~20 µs). A second table times the product of dual matrices (the `H v` pass) as three
//! small products on the stride-2 parts against the fused kernel `small_gemm::gemm_dual`.

use autodiff::small_gemm::{gemm, gemm_dual, SMALL_GEMM_MAX_WORK};
use autodiff::{Dual, MatMut, MatRef, Matrix, Scalar};
use std::hint::black_box;
use std::time::Instant;

fn mm(a: MatRef<'_, f64>, b: MatRef<'_, f64>, c: MatMut<'_, f64>) {
    // SAFETY: the views come from live matrices of matching shapes.
    unsafe {
        matrixmultiply::dgemm(
            a.rows(),
            a.cols(),
            b.cols(),
            1.0,
            a.as_ptr(),
            a.row_stride(),
            a.col_stride(),
            b.as_ptr(),
            b.row_stride(),
            b.col_stride(),
            0.0,
            c.as_mut_ptr(),
            c.row_stride(),
            c.col_stride(),
        )
    }
}

/// Median nanoseconds per call of `f` and of `g`, their samples interleaved so that load from
/// other processes falls on both alike.
fn time2(work: usize, mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64) {
    // About 200k multiply-adds (~20 µs) per sample.
    let reps = (200_000 / work.max(1)).clamp(1, 10_000);
    let sample = |h: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..reps {
            h();
        }
        t.elapsed().as_nanos() as f64 / reps as f64
    };
    sample(&mut f);
    sample(&mut g);
    let (mut sf, mut sg): (Vec<f64>, Vec<f64>) =
        (0..31).map(|_| (sample(&mut f), sample(&mut g))).unzip();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut sf), median(&mut sg))
}

fn filled(r: usize, c: usize) -> Matrix<f64> {
    Matrix::from_fn(r, c, |i, j| ((i * 31 + j * 17) % 13) as f64 * 0.1 - 0.6)
}

fn main() {
    println!("threshold SMALL_GEMM_MAX_WORK = {SMALL_GEMM_MAX_WORK} (m·k·n)");
    println!(
        "{:<26} {:>8} {:>12} {:>12} {:>8}",
        "product (m×k×n)", "m·k·n", "dgemm ns", "small ns", "speedup"
    );
    // (label, m, k, n, A transposed, B transposed, strides ×2 as for a dual matrix's parts)
    let cases: &[(&str, usize, usize, usize, bool, bool, bool)] = &[
        ("A·B", 32, 10, 20, false, false, false),
        ("A·Wᵀ (fwd)", 32, 10, 20, false, true, false),
        ("A·B", 32, 20, 20, false, false, false),
        ("A·Wᵀ (fwd)", 32, 20, 20, false, true, false),
        ("A·B", 32, 20, 3, false, false, false),
        ("A·Wᵀ (fwd)", 32, 20, 3, false, true, false),
        ("A·B", 20, 32, 20, false, false, false),
        ("Gᵀ·A (dW)", 20, 32, 10, true, false, false),
        ("Gᵀ·A (dW)", 20, 32, 20, true, false, false),
        ("Gᵀ·A (dW)", 3, 32, 20, true, false, false),
        ("G·W (dA)", 32, 20, 10, false, false, false),
        ("G·W (dA)", 32, 3, 20, false, false, false),
        ("dual part A·Wᵀ", 32, 20, 20, false, true, true),
        ("dual part Gᵀ·A", 20, 32, 20, true, false, true),
        ("A·B", 32, 32, 32, false, false, false),
        ("A·B", 40, 40, 40, false, false, false),
        ("A·B", 48, 48, 48, false, false, false),
        ("A·B", 64, 64, 64, false, false, false),
        ("A·B", 96, 96, 96, false, false, false),
        ("A·B", 256, 64, 128, false, false, false),
        ("Gᵀ·A", 128, 256, 64, true, false, false),
    ];
    for &(label, m, k, n, ta, tb, dual) in cases {
        // A "dual" operand stores every element twice as far apart, like Dual<f64>'s parts.
        let s = if dual { 2 } else { 1 };
        let (ar, ac) = if ta { (k, m * s) } else { (m, k * s) };
        let (br, bc) = if tb { (n, k * s) } else { (k, n * s) };
        let a = filled(ar, ac);
        let b = filled(br, bc);
        let mut c1 = Matrix::zeros(m, n * s);
        let mut c2 = Matrix::zeros(m, n * s);
        let view = |x: &Matrix<f64>, r: usize, c: usize, t: bool| {
            // SAFETY: an `r×c` view with column stride `s` of a matrix with `c·s` columns.
            let v = unsafe {
                MatRef::from_raw_parts(x.data().as_ptr(), r, c, (c * s) as isize, s as isize)
            };
            if t {
                v.t()
            } else {
                v
            }
        };
        let av = if ta { view(&a, k, m, true) } else { view(&a, m, k, false) };
        let bv = if tb { view(&b, n, k, true) } else { view(&b, k, n, false) };
        let work = m * k * n;
        let (t_mm, t_small) = time2(
            work,
            || {
                // SAFETY: an `m×n` view with column stride `s` of `c1` (`n·s` columns).
                let cv = unsafe {
                    MatMut::from_raw_parts(
                        c1.data_mut().as_mut_ptr(),
                        m,
                        n,
                        (n * s) as isize,
                        s as isize,
                    )
                };
                mm(black_box(av), black_box(bv), cv);
            },
            || {
                // SAFETY: as above, for `c2`.
                let cv = unsafe {
                    MatMut::from_raw_parts(
                        c2.data_mut().as_mut_ptr(),
                        m,
                        n,
                        (n * s) as isize,
                        s as isize,
                    )
                };
                gemm(black_box(av), black_box(bv), cv, false);
            },
        );
        let max_diff =
            c1.data().iter().zip(c2.data()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        assert!(max_diff <= 1e-12 * k as f64, "{label}: paths differ by {max_diff}");
        println!(
            "{:<26} {:>8} {:>12.0} {:>12.0} {:>7.2}×",
            format!("{label} {m}×{k}×{n}"),
            work,
            t_mm,
            t_small,
            t_mm / t_small
        );
    }
    dual_products();
}

/// The stride-2 real and tangent parts of a dual matrix.
fn parts<T: Scalar>(m: MatRef<'_, Dual<T>>) -> (MatRef<'_, T>, MatRef<'_, T>) {
    let p = m.as_ptr() as *const T;
    let (r, c, rs, cs) = (m.rows(), m.cols(), 2 * m.row_stride(), 2 * m.col_stride());
    // SAFETY: Dual<T> is repr(C) with two T fields, so the parts interleave inside the buffer.
    unsafe {
        (MatRef::from_raw_parts(p, r, c, rs, cs), MatRef::from_raw_parts(p.add(1), r, c, rs, cs))
    }
}

fn parts_mut<T: Scalar>(m: &mut Matrix<Dual<T>>) -> (MatMut<'_, T>, MatMut<'_, T>) {
    let (r, c) = (m.rows(), m.cols());
    let p = m.data_mut().as_mut_ptr() as *mut T;
    // SAFETY: as in `parts`; the two views interleave and never alias.
    unsafe {
        (
            MatMut::from_raw_parts(p, r, c, 2 * c as isize, 2),
            MatMut::from_raw_parts(p.add(1), r, c, 2 * c as isize, 2),
        )
    }
}

fn dual_products() {
    println!("\ndual product (m×k×n)        3 products ns     fused ns  speedup");
    let cases: &[(&str, usize, usize, usize, bool, bool)] = &[
        ("A·Wᵀ (fwd)", 32, 10, 20, false, true),
        ("A·Wᵀ (fwd)", 32, 20, 20, false, true),
        ("A·Wᵀ (fwd)", 32, 20, 3, false, true),
        ("Gᵀ·A (dW)", 20, 32, 20, true, false),
        ("G·W (dA)", 32, 20, 20, false, false),
        ("A·B", 32, 32, 32, false, false),
    ];
    let dual = |r: usize, c: usize| {
        Matrix::from_fn(r, c, |i, j| {
            Dual::new(0.1 * ((i * 7 + j) % 5) as f64, 0.01 * (i + j) as f64)
        })
    };
    for &(label, m, k, n, ta, tb) in cases {
        let a = if ta { dual(k, m) } else { dual(m, k) };
        let b = if tb { dual(n, k) } else { dual(k, n) };
        let av = if ta { a.as_ref().t() } else { a.as_ref() };
        let bv = if tb { b.as_ref().t() } else { b.as_ref() };
        let (a_re, a_eps) = parts(av);
        let (b_re, b_eps) = parts(bv);
        let (mut c1, mut c2) = (Matrix::zeros(m, n), Matrix::zeros(m, n));
        let (t3, t1) = time2(
            m * k * n * 3,
            || {
                let (c_re, mut c_eps) = parts_mut(&mut c1);
                gemm(a_re, b_re, c_re, false);
                gemm(a_re, b_eps, c_eps.rb_mut(), false);
                gemm(a_eps, b_re, c_eps, true);
            },
            || {
                let (c_re, c_eps) = parts_mut(&mut c2);
                gemm_dual((a_re, Some(a_eps)), (b_re, Some(b_eps)), (c_re, c_eps), false);
            },
        );
        let max_diff = c1
            .data()
            .iter()
            .zip(c2.data())
            .map(|(x, y)| (x.re - y.re).abs().max((x.eps - y.eps).abs()))
            .fold(0.0, f64::max);
        assert!(max_diff <= 1e-12 * k as f64, "{label}: paths differ by {max_diff}");
        println!(
            "{:<26} {:>14.0} {:>12.0} {:>7.2}×",
            format!("{label} {m}×{k}×{n}"),
            t3,
            t1,
            t3 / t1
        );
    }
}
