//! Finite checks: a NaN or an infinity in θ, `x`, `y`, `v`, or in a loss or a product computed
//! from finite inputs, is a [`CurvatureError::NonFinite`] naming the quantity and the first bad
//! index, instead of an `Ok(NaN)` that spreads through a solver.
//!
//! The checks are **on by default**. What they scan, and when:
//!
//! | where | what |
//! |---|---|
//! | [`Problem::new`](crate::Problem::new) | `x` and `y` (once per problem) |
//! | [`Problem::at`](crate::Problem::at), [`Problem::hessian_vector_product`](crate::Problem::hessian_vector_product) | θ, then the output `z` (an overflow inside the network) |
//! | every product of [`ForwardPass`](crate::ForwardPass) | its `v` (or `u`), then its result |
//! | [`ForwardPass::loss`](crate::ForwardPass::loss) | the loss, naming the first bad row |
//!
//! Each is one linear scan over a vector the product reads or writes anyway (θ-sized, or the
//! batch's outputs), so it costs a small fraction of a pass: θ in `at` and `v` on its way into
//! the tangent sweep are checked block by block as they are copied (while each block is in
//! L1), and the scan is a vectorized exponent test. The benchmark prints the ratio of
//! the checked to the unchecked path on its workloads. A speed-critical loop that has checked
//! its data once can turn them off for the calls inside a closure with [`without_finite_checks`];
//! the setting belongs to the calling thread and is passed on to the threads of a
//! [`ShardedProblem`](crate::ShardedProblem).
//!
//! ```
//! use autodiff::Matrix;
//! use curvature::loss::SquaredError;
//! use curvature::{checks, Activation, CurvatureError, Mlp, Problem};
//! let mlp = Mlp::new(&[2, 1], &[Activation::Identity])?;
//! let (x, y) = (Matrix::filled(3, 2, 1.0), Matrix::filled(3, 1, 0.5));
//! let problem = Problem::new(&mlp, &SquaredError, &x, &y)?;
//! let theta = [0.1, f64::NAN, 0.0];
//! let err = problem.at(&theta).err().unwrap();
//! assert!(matches!(err, CurvatureError::NonFinite { ref quantity, index: 1, .. } if quantity == "theta"));
//! // Unchecked, the NaN comes back as a value.
//! let loss = checks::without_finite_checks(|| problem.at(&theta)?.loss())?;
//! assert!(loss.is_nan());
//! # Ok::<(), CurvatureError>(())
//! ```

use crate::error::{CurvatureError, Result};
use std::cell::Cell;

thread_local! {
    static FINITE_CHECKS: Cell<bool> = const { Cell::new(true) };
}

/// Whether finite checks are on for this thread (they are unless inside
/// [`without_finite_checks`]).
pub fn finite_checks_enabled() -> bool {
    FINITE_CHECKS.with(Cell::get)
}

/// Runs `f` with the finite checks off on this thread (and on the threads a
/// [`ShardedProblem`](crate::ShardedProblem) runs for it), for speed-critical loops over data
/// already checked. The previous setting comes back when `f` returns or panics.
pub fn without_finite_checks<R>(f: impl FnOnce() -> R) -> R {
    with_finite_checks(false, f)
}

/// Runs `f` with the finite checks set to `on` on this thread, restoring the previous setting
/// afterwards (a worker thread takes its caller's setting this way).
pub(crate) fn with_finite_checks<R>(on: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FINITE_CHECKS.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FINITE_CHECKS.with(|c| c.replace(on)));
    f()
}

/// Errors naming `quantity` and the first non-finite element of `values` (`cols` columns,
/// row-major; 1 for a vector), when the checks are on.
pub(crate) fn check_finite(
    values: &[f64],
    cols: usize,
    quantity: impl FnOnce() -> String,
) -> Result<()> {
    if !finite_checks_enabled() {
        return Ok(());
    }
    check_finite_always(values, cols, quantity)
}

/// A copy of `values` (a vector) checked as [`check_finite`] checks it, in one pass: each
/// block is checked right after it is copied, while it is still in L1, so the check costs no
/// second read of a θ-sized vector that is cold by the time it is copied.
pub(crate) fn copy_checked(values: &[f64], quantity: impl FnOnce() -> String) -> Result<Vec<f64>> {
    if !finite_checks_enabled() {
        return Ok(values.to_vec());
    }
    const BLOCK: usize = 512; // 4 KB
    let mut copy = Vec::with_capacity(values.len());
    for block in values.chunks(BLOCK) {
        let start = copy.len();
        copy.extend_from_slice(block);
        if !all_finite(&copy[start..]) {
            // The error path: name the first bad element (it is in this block).
            return check_finite_always(values, 1, quantity).map(|()| copy);
        }
    }
    Ok(copy)
}

/// [`check_finite`] whatever the setting.
pub(crate) fn check_finite_always(
    values: &[f64],
    cols: usize,
    quantity: impl FnOnce() -> String,
) -> Result<()> {
    if all_finite(values) {
        return Ok(());
    }
    let Some(index) = values.iter().position(|x| !x.is_finite()) else { return Ok(()) };
    Err(CurvatureError::NonFinite {
        quantity: quantity(),
        index,
        cols: cols.max(1),
        value: values[index],
    })
}

/// Whether every value is finite. A value is NaN or ±∞ exactly when its exponent bits are all
/// ones, that is when adding one to its exponent field carries into the sign bit; OR-ing those
/// sums over the slice is an integer reduction the compiler vectorizes (a few instructions per
/// vector of values, with no shuffles), and it is exact: no false alarms from overflowing sums.
/// With AVX2 (detected at run time) each instruction takes four values instead of SSE2's two.
fn all_finite(values: &[f64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { all_finite_avx2(values) };
    }
    all_finite_portable(values)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn all_finite_avx2(values: &[f64]) -> bool {
    all_finite_portable(values)
}

#[inline(always)]
fn all_finite_portable(values: &[f64]) -> bool {
    const EXPONENT: u64 = 0x7ff0_0000_0000_0000;
    const ONE: u64 = 1 << 52;
    let carries = values.iter().fold(0u64, |acc, x| acc | ((x.to_bits() & EXPONENT) + ONE));
    carries >> 63 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bad_element_is_named_and_the_setting_is_restored() {
        assert!(check_finite(&[1.0, 2.0, -3.0], 1, || "v".into()).is_ok());
        // Huge finite values are finite (an earlier check summed them, which overflowed).
        let mut big = vec![1e308; 40];
        assert!(check_finite(&big, 1, || "v".into()).is_ok());
        // A bad value in the tail, and one after an overflowed lane, are found.
        big[37] = f64::NAN;
        let found = |big: &[f64]| match check_finite(big, 1, || "v".into()) {
            Err(CurvatureError::NonFinite { index, .. }) => Some(index),
            _ => None,
        };
        assert_eq!(found(&big), Some(37));
        big[37] = 0.0;
        big[32] = f64::NEG_INFINITY;
        assert_eq!(found(&big), Some(32));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = check_finite(&[0.0, 1.0, 2.0, bad, bad], 2, || "x".into()).unwrap_err();
            assert!(
                matches!(err, CurvatureError::NonFinite { ref quantity, index: 3, cols: 2, .. } if quantity == "x"),
                "{err:?}"
            );
            assert!(err.to_string().contains("row 1, column 1 (index 3)"), "{err}");
        }
        assert!(finite_checks_enabled());
        without_finite_checks(|| {
            assert!(!finite_checks_enabled());
            assert!(check_finite(&[f64::NAN], 1, || "v".into()).is_ok());
            assert!(check_finite_always(&[f64::NAN], 1, || "v".into()).is_err());
        });
        assert!(finite_checks_enabled());
        let _ = std::panic::catch_unwind(|| without_finite_checks(|| panic!("inside")));
        assert!(finite_checks_enabled(), "a panic inside must restore the setting");
    }

    #[test]
    fn the_exponent_test_is_exact_at_the_edges_of_the_finite_range() {
        let finite = [
            0.0,
            -0.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::from_bits(1),                      // the smallest subnormal
            -f64::from_bits(0x000f_ffff_ffff_ffff), // the largest subnormal, negative
            f64::from_bits(0x7fef_ffff_ffff_ffff),  // the exponent one below all ones
        ];
        let bad = [
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001), // a signalling NaN
            f64::from_bits(0xfff8_0000_0000_0001), // a negative NaN with a payload
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        // Lengths that cover the vector body and the scalar remainder of every path.
        for len in [1, 3, 4, 15, 16, 17, 64, 1029] {
            let mut values: Vec<f64> = (0..len).map(|k| finite[k % finite.len()]).collect();
            assert!(all_finite(&values) && all_finite_portable(&values), "len {len}");
            for at in [0, len / 2, len - 1] {
                for &b in &bad {
                    let keep = std::mem::replace(&mut values[at], b);
                    assert!(!all_finite(&values), "len {len}, {b:?} at {at}");
                    assert!(!all_finite_portable(&values), "len {len}, {b:?} at {at}");
                    values[at] = keep;
                }
            }
        }
    }

    #[test]
    fn a_checked_copy_is_the_values_or_names_the_first_bad_one() {
        let values: Vec<f64> = (0..1500).map(|k| (k as f64).sin() * 1e300).collect();
        assert_eq!(copy_checked(&values, || "theta".into()).unwrap(), values);
        // Bad values in the second and third 512-value blocks: the first is named.
        let mut bad = values.clone();
        bad[1400] = f64::NAN;
        bad[700] = f64::NEG_INFINITY;
        let err = copy_checked(&bad, || "theta".into()).unwrap_err();
        assert!(
            matches!(err, CurvatureError::NonFinite { ref quantity, index: 700, cols: 1, value } if quantity == "theta" && value == f64::NEG_INFINITY),
            "{err:?}"
        );
        // In the last, short block.
        bad[700] = 0.0;
        let err = copy_checked(&bad, || "v".into()).unwrap_err();
        assert!(matches!(err, CurvatureError::NonFinite { index: 1400, .. }), "{err:?}");
        // Unchecked, the copy is made as it is.
        let copy = without_finite_checks(|| copy_checked(&bad, || "v".into())).unwrap();
        assert_eq!(copy.len(), bad.len());
        assert!(copy[1400].is_nan() && copy[..1400] == bad[..1400]);
    }
}
