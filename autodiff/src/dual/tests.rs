//! Every `Float` function of `Dual`: first derivatives (via `Dual<f64>`) and second derivatives
//! (via `Dual<Dual<f64>>`, seeded `re.eps = eps.re = 1`) against closed forms written here by
//! hand. Tolerance: 1e-13 relative (a few flops of libm functions on both sides).

use super::*;
use crate::matrix::{MatRef, Matrix};
use num_traits::Float;
use quickcheck::{QuickCheck, TestResult};

type D2 = Dual<Dual<f64>>;

fn d1(f: impl Fn(Dual<f64>) -> Dual<f64>, x: f64) -> (f64, f64) {
    let y = f(Dual::variable(x));
    (y.re, y.eps)
}

fn d2(f: impl Fn(D2) -> D2, x: f64) -> f64 {
    f(Dual::new(Dual::new(x, 1.0), Dual::new(1.0, 0.0))).eps.eps
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-13 * b.abs().max(1.0)
}

/// (name, f on Dual<f64>, f on D2, f, f', f'', points)
macro_rules! check_fn {
    ($name:expr, $method:ident ( $($arg:expr),* ), $f:expr, $df:expr, $d2f:expr, $points:expr) => {{
        for &x in $points.iter() {
            let (v, d) = d1(|t| t.$method($($arg),*), x);
            let dd = d2(|t| t.$method($($arg),*), x);
            let (fv, dfv, d2fv): (f64, f64, f64) = ($f(x), $df(x), $d2f(x));
            assert!(close(v, fv), "{} value at {x}: {v} vs {fv}", $name);
            assert!(close(d, dfv), "{}' at {x}: {d} vs {dfv}", $name);
            assert!(close(dd, d2fv), "{}'' at {x}: {dd} vs {d2fv}", $name);
        }
    }};
}

#[test]
fn elementary_functions_match_closed_forms() {
    let pos = [0.3, 1.0, 2.7];
    let any = [-1.3, 0.4, 2.2];
    let unit = [-0.6, 0.1, 0.7];
    check_fn!("exp", exp(), |x: f64| x.exp(), |x: f64| x.exp(), |x: f64| x.exp(), any);
    check_fn!(
        "exp2",
        exp2(),
        |x: f64| x.exp2(),
        |x: f64| x.exp2() * 2f64.ln(),
        |x: f64| x.exp2() * 2f64.ln().powi(2),
        any
    );
    check_fn!("exp_m1", exp_m1(), |x: f64| x.exp_m1(), |x: f64| x.exp(), |x: f64| x.exp(), any);
    check_fn!("ln", ln(), |x: f64| x.ln(), |x: f64| 1.0 / x, |x: f64| -1.0 / (x * x), pos);
    check_fn!(
        "ln_1p",
        ln_1p(),
        |x: f64| x.ln_1p(),
        |x: f64| 1.0 / (1.0 + x),
        |x: f64| -1.0 / (1.0 + x).powi(2),
        pos
    );
    check_fn!(
        "log2",
        log2(),
        |x: f64| x.log2(),
        |x: f64| 1.0 / (x * 2f64.ln()),
        |x: f64| -1.0 / (x * x * 2f64.ln()),
        pos
    );
    check_fn!(
        "log10",
        log10(),
        |x: f64| x.log10(),
        |x: f64| 1.0 / (x * 10f64.ln()),
        |x: f64| -1.0 / (x * x * 10f64.ln()),
        pos
    );
    check_fn!(
        "sqrt",
        sqrt(),
        |x: f64| x.sqrt(),
        |x: f64| 0.5 / x.sqrt(),
        |x: f64| -0.25 * x.powf(-1.5),
        pos
    );
    check_fn!(
        "cbrt",
        cbrt(),
        |x: f64| x.cbrt(),
        |x: f64| x.powf(-2.0 / 3.0) / 3.0,
        |x: f64| -2.0 / 9.0 * x.powf(-5.0 / 3.0),
        pos
    );
    check_fn!(
        "recip",
        recip(),
        |x: f64| 1.0 / x,
        |x: f64| -1.0 / (x * x),
        |x: f64| 2.0 / (x * x * x),
        pos
    );
    check_fn!("powi3", powi(3), |x: f64| x.powi(3), |x: f64| 3.0 * x * x, |x: f64| 6.0 * x, any);
    check_fn!(
        "powi-2",
        powi(-2),
        |x: f64| x.powi(-2),
        |x: f64| -2.0 * x.powi(-3),
        |x: f64| 6.0 * x.powi(-4),
        any
    );
    check_fn!("powi0", powi(0), |_x: f64| 1.0, |_x: f64| 0.0, |_x: f64| 0.0, any);
    check_fn!("sin", sin(), |x: f64| x.sin(), |x: f64| x.cos(), |x: f64| -x.sin(), any);
    check_fn!("cos", cos(), |x: f64| x.cos(), |x: f64| -x.sin(), |x: f64| -x.cos(), any);
    check_fn!(
        "tan",
        tan(),
        |x: f64| x.tan(),
        |x: f64| 1.0 / x.cos().powi(2),
        |x: f64| 2.0 * x.sin() / x.cos().powi(3),
        unit
    );
    check_fn!(
        "asin",
        asin(),
        |x: f64| x.asin(),
        |x: f64| 1.0 / (1.0 - x * x).sqrt(),
        |x: f64| x / (1.0 - x * x).powf(1.5),
        unit
    );
    check_fn!(
        "acos",
        acos(),
        |x: f64| x.acos(),
        |x: f64| -1.0 / (1.0 - x * x).sqrt(),
        |x: f64| -x / (1.0 - x * x).powf(1.5),
        unit
    );
    check_fn!(
        "atan",
        atan(),
        |x: f64| x.atan(),
        |x: f64| 1.0 / (1.0 + x * x),
        |x: f64| -2.0 * x / (1.0 + x * x).powi(2),
        any
    );
    check_fn!("sinh", sinh(), |x: f64| x.sinh(), |x: f64| x.cosh(), |x: f64| x.sinh(), any);
    check_fn!("cosh", cosh(), |x: f64| x.cosh(), |x: f64| x.sinh(), |x: f64| x.cosh(), any);
    check_fn!(
        "tanh",
        tanh(),
        |x: f64| x.tanh(),
        |x: f64| 1.0 / x.cosh().powi(2),
        |x: f64| -2.0 * x.sinh() / x.cosh().powi(3),
        any
    );
    check_fn!(
        "asinh",
        asinh(),
        |x: f64| x.asinh(),
        |x: f64| 1.0 / (x * x + 1.0).sqrt(),
        |x: f64| -x / (x * x + 1.0).powf(1.5),
        any
    );
    check_fn!(
        "acosh",
        acosh(),
        |x: f64| x.acosh(),
        |x: f64| 1.0 / (x * x - 1.0).sqrt(),
        |x: f64| -x / (x * x - 1.0).powf(1.5),
        [1.2, 2.0, 3.5]
    );
    check_fn!(
        "atanh",
        atanh(),
        |x: f64| x.atanh(),
        |x: f64| 1.0 / (1.0 - x * x),
        |x: f64| 2.0 * x / (1.0 - x * x).powi(2),
        unit
    );
    check_fn!(
        "to_degrees",
        to_degrees(),
        |x: f64| x.to_degrees(),
        |_x: f64| 180.0 / std::f64::consts::PI,
        |_x: f64| 0.0,
        any
    );
    check_fn!(
        "to_radians",
        to_radians(),
        |x: f64| x.to_radians(),
        |_x: f64| std::f64::consts::PI / 180.0,
        |_x: f64| 0.0,
        any
    );
    check_fn!("abs", abs(), |x: f64| x.abs(), |x: f64| x.signum(), |_x: f64| 0.0, any);
    check_fn!("fract", fract(), |x: f64| x.fract(), |_x: f64| 1.0, |_x: f64| 0.0, any);
    for (name, method) in [("floor", 0), ("ceil", 1), ("round", 2), ("trunc", 3), ("signum", 4)] {
        let f = |t: Dual<f64>| match method {
            0 => t.floor(),
            1 => t.ceil(),
            2 => t.round(),
            3 => t.trunc(),
            _ => t.signum(),
        };
        let (_, d) = d1(f, 1.3);
        assert_eq!(d, 0.0, "{name} must have a zero derivative");
    }
}

#[test]
fn binary_functions_differentiate_both_arguments() {
    // Closed forms for ∂/∂x and ∂/∂y at (x, y) = (1.7, 0.6).
    let (x, y) = (1.7_f64, 0.6_f64);
    let dx =
        |f: &dyn Fn(Dual<f64>, Dual<f64>) -> Dual<f64>| f(Dual::variable(x), Dual::constant(y)).eps;
    let dy =
        |f: &dyn Fn(Dual<f64>, Dual<f64>) -> Dual<f64>| f(Dual::constant(x), Dual::variable(y)).eps;
    type Binary<'a> = &'a dyn Fn(Dual<f64>, Dual<f64>) -> Dual<f64>;
    let cases: [(&str, Binary<'_>, f64, f64); 9] = [
        ("add", &|a, b| a + b, 1.0, 1.0),
        ("sub", &|a, b| a - b, 1.0, -1.0),
        ("mul", &|a, b| a * b, y, x),
        ("div", &|a, b| a / b, 1.0 / y, -x / (y * y)),
        ("rem", &|a, b| a % b, 1.0, -(x / y).trunc()),
        ("powf", &|a, b| a.powf(b), y * x.powf(y - 1.0), x.powf(y) * x.ln()),
        ("log", &|a, b| a.log(b), 1.0 / (x * y.ln()), -x.ln() / (y * y.ln().powi(2))),
        ("hypot", &|a, b| a.hypot(b), x / x.hypot(y), y / x.hypot(y)),
        ("atan2", &|a, b| a.atan2(b), y / (x * x + y * y), -x / (x * x + y * y)),
    ];
    for (name, f, want_x, want_y) in cases {
        assert!(close(dx(f), want_x), "∂{name}/∂x: {} vs {want_x}", dx(f));
        assert!(close(dy(f), want_y), "∂{name}/∂y: {} vs {want_y}", dy(f));
    }
    let fma = Dual::variable(x).mul_add(Dual::constant(y), Dual::constant(2.0));
    assert!(close(fma.eps, y));
    // Second mixed derivative through nesting: ∂²(x y)/∂x∂y = 1.
    let xy = D2::new(Dual::new(x, 1.0), Dual::new(0.0, 0.0))
        * D2::new(Dual::new(y, 0.0), Dual::new(1.0, 0.0));
    assert!(close(xy.eps.eps, 1.0));
}

#[test]
fn max_min_keep_the_chosen_derivative_and_comparisons_use_re() {
    let a = Dual::new(1.0, 5.0);
    let b = Dual::new(2.0, 7.0);
    assert_eq!(a.max(b).eps, 7.0);
    assert_eq!(a.min(b).eps, 5.0);
    assert!(a < b && Dual::new(1.0, 100.0) <= Dual::new(1.0, -100.0));
    assert!(Dual::new(1.0, 1.0) != Dual::new(1.0, 2.0), "PartialEq compares both parts");
    // Negative base with a constant exponent stays finite; ln of a negative is NaN, no panic.
    let p = Dual::variable(-2.0).powf(Dual::constant(3.0));
    assert!(close(p.re, -8.0) && close(p.eps, 12.0));
    assert!(Dual::variable(-1.0).ln().re.is_nan());
    assert!(!Dual::new(1.0, f64::NAN).is_all_finite() && Dual::new(1.0, f64::NAN).is_finite());
}

fn naive(a: &Matrix<Dual<f64>>, b: &Matrix<Dual<f64>>) -> Matrix<Dual<f64>> {
    Matrix::from_fn(a.rows(), b.cols(), |i, j| (0..a.cols()).map(|l| a[(i, l)] * b[(l, j)]).sum())
}

fn random_dual(rows: usize, cols: usize, seed: u64, zero_eps: bool) -> Matrix<Dual<f64>> {
    Matrix::from_fn(rows, cols, |i, j| {
        let t = ((seed % 1000) as f64 + 1.0) * 0.37 + i as f64 * 1.3 - j as f64 * 0.7;
        Dual::new(t.sin(), if zero_eps { 0.0 } else { (1.7 * t).cos() })
    })
}

fn assert_close_dual(c: &Matrix<Dual<f64>>, want: &Matrix<Dual<f64>>) -> Result<(), String> {
    for (x, y) in c.data().iter().zip(want.data()) {
        if !(close(x.re, y.re) && close(x.eps, y.eps)) {
            return Err(format!("{x} vs {y}"));
        }
    }
    Ok(())
}

#[test]
fn dual_gemm_matches_triple_loop() {
    fn prop(
        m: u8,
        k: u8,
        n: u8,
        seed: u64,
        zero_a: bool,
        zero_b: bool,
        accumulate: bool,
    ) -> TestResult {
        let (m, k, n) = (1 + m as usize % 6, 1 + k as usize % 6, 1 + n as usize % 6);
        let a = random_dual(m, k, seed, zero_a);
        let b = random_dual(k, n, seed.wrapping_add(1), zero_b);
        let start = random_dual(m, n, seed.wrapping_add(2), false);
        let mut c = start.clone();
        Dual::gemm(a.as_ref(), b.as_ref(), c.as_mut(), accumulate);
        let mut want = naive(&a, &b);
        if accumulate {
            want = Matrix::from_fn(m, n, |i, j| want[(i, j)] + start[(i, j)]);
        }
        if let Err(e) = assert_close_dual(&c, &want) {
            return TestResult::error(format!(
                "{m}×{k}·{k}×{n} zero_a={zero_a} zero_b={zero_b} acc={accumulate}: {e}"
            ));
        }
        // Transposed views: (Bᵀ Aᵀ) = (A B)ᵀ, reading both operands through strides.
        let mut ct = Matrix::zeros(n, m);
        Dual::gemm(b.as_ref().t(), a.as_ref().t(), ct.as_mut(), false);
        match assert_close_dual(&ct, &naive(&a, &b).transpose()) {
            Ok(()) => TestResult::passed(),
            Err(e) => TestResult::error(format!("transposed: {e}")),
        }
    }
    QuickCheck::new()
        .tests(200)
        .quickcheck(prop as fn(u8, u8, u8, u64, bool, bool, bool) -> TestResult);
}

/// Products above the small-kernel size run as real products on the strided parts
/// (`gemm_dual_by_products`, through `matrixmultiply`), straight into `C`'s parts or, from
/// depth 512 on, through a contiguous buffer: every combination of zero tangents,
/// accumulation, and operands and results read or written through transposed views, against
/// the triple loop.
#[test]
fn large_dual_gemm_matches_triple_loop() {
    for (m, k, n) in [(70, 60, 66), (20, 520, 30)] {
        large_dual_gemm_case(m, k, n);
    }
}

fn large_dual_gemm_case(m: usize, k: usize, n: usize) {
    assert!(m * k * n > crate::kernels::small_gemm::SMALL_GEMM_MAX_WORK);
    for case in 0..32u64 {
        let (zero_a, zero_b, accumulate) = (case & 1 == 1, case & 2 == 2, case & 4 == 4);
        let (ta, tb, tc) = (case & 8 == 8, case & 16 == 16, case % 3 == 0);
        let a = random_dual(m, k, case, zero_a);
        let b = random_dual(k, n, case + 100, zero_b);
        let (at, bt) = (a.transpose(), b.transpose());
        let av = if ta { at.as_ref().t() } else { a.as_ref() };
        let bv = if tb { bt.as_ref().t() } else { b.as_ref() };
        let start = random_dual(m, n, case + 200, false);
        let mut want = naive(&a, &b);
        if accumulate {
            want = Matrix::from_fn(m, n, |i, j| want[(i, j)] + start[(i, j)]);
        }
        let got = if tc {
            let mut ct = start.transpose();
            Dual::gemm(av, bv, ct.as_mut().t(), accumulate);
            ct.transpose()
        } else {
            let mut c = start.clone();
            Dual::gemm(av, bv, c.as_mut(), accumulate);
            c
        };
        let what = format!(
            "case {case} (zero a {zero_a}, b {zero_b}, acc {accumulate}, t {ta} {tb} {tc})"
        );
        assert_close_dual(&got, &want).map_err(|e| format!("{what}: {e}")).unwrap();
    }
}

#[test]
fn nested_dual_gemm_recurses() {
    let a = Matrix::from_fn(3, 2, |i, j| {
        D2::new(Dual::new(i as f64 + 0.5, 1.0), Dual::new(j as f64, 0.25))
    });
    let b = Matrix::from_fn(2, 4, |i, j| {
        D2::new(Dual::new(j as f64 - 1.0, 0.5), Dual::new(i as f64 * 0.3, -1.0))
    });
    let mut c = Matrix::zeros(3, 4);
    D2::gemm(a.as_ref(), b.as_ref(), c.as_mut(), false);
    let want = Matrix::from_fn(3, 4, |i, j| (0..2).map(|l| a[(i, l)] * b[(l, j)]).sum::<D2>());
    for (x, y) in c.data().iter().zip(want.data()) {
        for (p, q) in
            [(x.re.re, y.re.re), (x.re.eps, y.re.eps), (x.eps.re, y.eps.re), (x.eps.eps, y.eps.eps)]
        {
            assert!(close(p, q), "{p} vs {q}");
        }
    }
    let _: MatRef<'_, D2> = c.as_ref();
}

/// The bulk dual `tanh` gives the same bits on every instruction set this CPU has as the
/// baseline build of the same loop (the vector builds only move the copies between duals and
/// the stack buffers into whole registers), at lengths around the stack chunk of 128.
#[test]
fn lifted_bulk_tanh_agrees_bit_for_bit_across_instruction_sets() {
    let derivative = |t: f64| 1.0 - t * t;
    for len in [0, 1, 7, 8, 9, 127, 128, 129, 300] {
        let x: Vec<Dual<f64>> =
            (0..len).map(|i| Dual::new(-6.0 + 0.041 * i as f64, 0.5 - 0.013 * i as f64)).collect();
        let run = |f: &dyn Fn(&mut [Dual<f64>])| {
            let mut out = vec![Dual::constant(f64::NAN); len];
            f(&mut out);
            out
        };
        let want = run(&|out| lift_slice_impl(&x, out, f64::tanh_slice, derivative));
        let mut paths = vec![("dispatch", run(&|out| Dual::<f64>::tanh_slice(&x, out)))];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                let f = |out: &mut [Dual<f64>]| unsafe {
                    lift_slice_avx512(&x, out, f64::tanh_slice, derivative)
                };
                paths.push(("avx512", run(&f)));
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                let f = |out: &mut [Dual<f64>]| unsafe {
                    lift_slice_avx2(&x, out, f64::tanh_slice, derivative)
                };
                paths.push(("avx2", run(&f)));
            }
        }
        for (name, got) in paths {
            for (g, w) in got.iter().zip(&want) {
                let bits = |d: &Dual<f64>| (d.re.to_bits(), d.eps.to_bits());
                assert_eq!(bits(g), bits(w), "{name}, length {len}");
            }
        }
    }
}
