//! The softplus `ln(1 + eˣ) = max(x, 0) + ln(1 + e^{−|x|})` over a slice (the Bernoulli loss):
//! `e^{−|x|}` by the parent module's range-reduced exponential, then `ln(1 + t)` for `t` in
//! `[0, 1]` by the `atanh` series, on the same three paths as the other bulk functions.

use super::{check_lengths, exp_neg_abs, poly12, LN2_HI, LN2_LO};

/// `2 / (2j + 1)` for `j = 1..=12`: `ln(1 + f) = 2 atanh s = 2s + s R(s²)` with
/// `s = f / (2 + f)` and `R(z) = Σ_j 2zʲ / (2j + 1)` (the Taylor series of `atanh`). For
/// `|s| ≤ 0.1716` (`1 + f` in `[√½, √2]`) the terms left out are below `10⁻¹⁹` of the result.
const LOG_C: [f64; 12] = [
    2.0 / 3.0,
    2.0 / 5.0,
    2.0 / 7.0,
    2.0 / 9.0,
    2.0 / 11.0,
    2.0 / 13.0,
    2.0 / 15.0,
    2.0 / 17.0,
    2.0 / 19.0,
    2.0 / 21.0,
    2.0 / 23.0,
    2.0 / 25.0,
];

/// `ln(1 + t)` for `t` in `[0, 1]` (and NaN), within about an ulp.
///
/// `u = 1 + t` loses `c = t − (u − 1)` (exact), added back as `c / u`; `u = 2ᵏ m` with `m` in
/// `[√½, √2]`, `f = m − 1` exact, and `ln(1 + f) = f − f²/2 + s (f²/2 + R)` (which equals
/// `2s + s R` since `f − 2s = s f`), so the rounding of `s` reaches only the small last term.
#[inline(always)]
fn log1p_unit(t: f64) -> f64 {
    let u = 1.0 + t;
    let c = t - (u - 1.0);
    let k: f64 = if u > std::f64::consts::SQRT_2 { 1.0 } else { 0.0 };
    let m = if u > std::f64::consts::SQRT_2 { 0.5 * u } else { u };
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let r = z * poly12(&LOG_C, z);
    let hfsq = 0.5 * f * f;
    let corr = s.mul_add(hfsq + r, k.mul_add(LN2_LO, c / u));
    k.mul_add(LN2_HI, f - (hfsq - corr))
}

/// `softplus x = ln(1 + eˣ) = max(x, 0) + ln(1 + e^{−|x|})` for one element: `e^{−|x|}` by
/// the range-reduced exponential, then [`log1p_unit`]. Exactly `eˣ` for `x` below about −37.
#[inline(always)]
fn softplus_one(x: f64) -> f64 {
    let t = exp_neg_abs(x);
    let positive = if x > 0.0 { x } else { 0.0 };
    positive + log1p_unit(t)
}

/// `out[i] = softplus(x[i])`.
#[inline(always)]
fn softplus_loop(x: &[f64], out: &mut [f64]) {
    map_loop!(x, out, softplus_one);
}

bulk!(softplus_bulk, softplus_loop, softplus_avx512, softplus_avx2);

/// `out[i] = softplus(x[i]) = ln(1 + e^{x[i]})`, without overflow for large `x` and exactly
/// `eˣ` where that is the rounded result; within 2 ulp of `max(x, 0) + ln_1p(e^{−|x|})`
/// evaluated with glibc (the Bernoulli loss sums it over a batch). Panics if the lengths differ.
pub fn softplus_f64(x: &[f64], out: &mut [f64]) {
    softplus_bulk(x, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fast_math::tests::{arguments, same_on_every_path, ulps, worst};

    #[test]
    fn softplus_is_within_two_ulp_of_the_libm_formula() {
        let xs = arguments();
        let mut out = vec![0.0; xs.len()];
        softplus_f64(&xs, &mut out);
        let reference = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
        let (err, at) = worst(&xs, &out, reference);
        eprintln!("softplus: worst {err} ulp at x = {at:e} over {} arguments", xs.len());
        assert!(err <= 2, "softplus: {err} ulp at x = {at:e}");
        same_on_every_path(&xs, &out, softplus_one, softplus_avx512, softplus_avx2);
        // ln(1 + t) on its own, where u = 1 + t is halved (t > √2 − 1) and where it rounds
        // away most of t (tiny t: the lost part c is the whole answer).
        let ts: Vec<f64> =
            (0..=200_000).map(|i| f64::from(i) / 2e5).chain([1e-300, 1e-17]).collect();
        let (err, at) = ts.iter().fold((0, 0.0), |w, &t| {
            let e = ulps(log1p_unit(t), t.ln_1p());
            if e > w.0 {
                (e, t)
            } else {
                w
            }
        });
        assert!(err <= 1, "ln(1 + t): {err} ulp at t = {at:e}");
        let mut s = [0.0; 6];
        softplus_f64(&[0.0, f64::INFINITY, f64::NEG_INFINITY, 800.0, -800.0, -40.0], &mut s);
        assert_eq!(s, [std::f64::consts::LN_2, f64::INFINITY, 0.0, 800.0, 0.0, (-40.0f64).exp()]);
        let mut nan = [0.0];
        softplus_f64(&[f64::NAN], &mut nan);
        assert!(nan[0].is_nan());
    }
}
