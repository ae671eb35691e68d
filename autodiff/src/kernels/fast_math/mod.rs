//! Bulk `tanh`, logistic sigmoid, `exp` and softplus over slices, written so the compiler
//! vectorizes them.
//!
//! A per-element `f64::tanh` is a call into libm that cannot be vectorized, and on a small MLP
//! it costs as much as the matrix products. Here every element takes a branch-free path:
//! `eˣ` is a range reduction `x = k ln 2 + r` plus a polynomial in `r`, with `2ᵏ` built from
//! the exponent bits, and `tanh |x| = −E / (2 + E)` with `E = e^{−2|x|} − 1` carried in two
//! parts (a small-argument polynomial is cheaper where a whole vector of arguments is small).
//! The softplus `ln(1 + eˣ)` (the Bernoulli loss, module `softplus`) adds `ln(1 + t)` for
//! `t = e^{−|x|}` in `[0, 1]`: `1 + t = 2ᵏ m` with `m` in `[√½, √2]` and the `atanh` series in
//! `(m − 1)/(m + 1)`.
//!
//! Every multiply-add is fused (`mul_add`), one rounding each, so the results are the same on
//! every CPU: AVX2 with FMA or AVX-512 (when the CPU has them) only widen the vectors. The
//! baseline path, for x86-64 CPUs without FMA (before 2013), is correct but slow: each
//! `mul_add` is a call to libm's `fma`.
//!
//! Accuracy (asserted by the tests on a dense sweep of `[-30, 30]` and special values): within
//! 2 ulp of glibc's `tanh`, of `1 / (1 + e⁻ˣ)` (or `eˣ / (1 + eˣ)` for `x < 0`) for the
//! sigmoid, and of `max(x, 0) + ln_1p(e^{−|x|})` for the softplus; 1 ulp of glibc's `exp`.
//! `f32` slices are computed in `f64` and rounded once.

/// `1 / ln 2`, to turn `x` into a multiple of `ln 2`.
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// `ln 2` split as `hi + lo` with 32 significant bits in `hi`, so `k · hi` is exact for the
/// `|k| < 2¹¹` used here and the reduced argument keeps full precision.
const LN2_HI: f64 = 0.693_147_180_369_123_8;
/// `ln 2 - LN2_HI`.
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// `1.5 · 2⁵²`: adding it rounds a number below `2⁵¹` in magnitude to an integer, which is then
/// the low bits of the sum.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// Taylor coefficients `1/n!` for `n = 2..=13` of `eʳ - 1 - r`; for `|r| ≤ ln 2 / 2` the
/// truncation error is below `6·10⁻¹⁸`, a twentieth of an ulp of `eʳ`.
const EXP_C: [f64; 12] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// Below this `|x|`, `tanh x = x + x u g(u)` with `u = x²` and the polynomial `g`; above it the
/// result is at least `0.55`, so `1 - 2 / (e²ˣ + 1)` loses no accuracy to cancellation.
const TANH_SMALL: f64 = 0.625;

/// Coefficients of `g(u)` (constant first) with `tanh x = x + x u g(u)` for `x² ≤ 0.625²`:
/// Chebyshev interpolation of `(tanh √u / √u - 1) / u` in 60-digit arithmetic, rounded to f64
/// (done once, offline); relative error of the fit below 0.08 ulp. The tests are the contract:
/// within 2 ulp of glibc over a dense sweep, which a wrong coefficient fails by thousands of ulp.
const TANH_G: [f64; 12] = [
    -0.333_333_333_333_333_3,
    0.133_333_333_333_330_42,
    -0.053_968_253_967_896_99,
    0.021_869_488_519_008_305,
    -0.008_863_235_103_240_878,
    0.003_592_121_751_154_962_2,
    -0.001_455_775_412_047_805_5,
    0.000_589_660_657_775_704_3,
    -0.000_237_590_649_605_556_2,
    9.257_116_129_556_769e-5,
    -3.120_110_142_579_74e-5,
    6.485_163_482_793_113e-6,
];

/// `c₀ + c₁ t + … + c₁₁ t¹¹` by Estrin's scheme: a dependency chain of five steps instead of
/// Horner's eleven, so the vectorized loop is not bound by latency. Both uses have `|t| < 0.4`
/// and decreasing terms, so the different rounding order costs nothing measurable.
#[inline(always)]
fn poly12(c: &[f64; 12], t: f64) -> f64 {
    let t2 = t * t;
    let t4 = t2 * t2;
    let t8 = t4 * t4;
    let p01 = c[1].mul_add(t, c[0]);
    let p23 = c[3].mul_add(t, c[2]);
    let p45 = c[5].mul_add(t, c[4]);
    let p67 = c[7].mul_add(t, c[6]);
    let p89 = c[9].mul_add(t, c[8]);
    let pab = c[11].mul_add(t, c[10]);
    let q0 = p23.mul_add(t2, p01);
    let q1 = p67.mul_add(t2, p45);
    let q2 = pab.mul_add(t2, p89);
    q2.mul_add(t8, q1.mul_add(t4, q0))
}

/// `y = k ln 2 + r + rc` with the integer `k` (as `f64` and as bits), `|r| ≤ ln 2 / 2`, and
/// `rc` the rounding error of `r` (0.1 ulp of `eʳ` otherwise, enough to misround
/// near-halfway results); `|y| < 2¹⁰` or NaN.
#[inline(always)]
fn reduce(y: f64) -> (f64, f64, i64) {
    let t = y.mul_add(LOG2_E, ROUND);
    let kf = t - ROUND;
    // The integer k sits in the low mantissa bits of t, offset by ROUND's own bits.
    let k = t.to_bits().wrapping_sub(ROUND.to_bits()) as i64;
    // k · LN2_HI is exact and cancels most of y, so this difference is exact too.
    let r_hi = (-kf).mul_add(LN2_HI, y);
    let r = (-kf).mul_add(LN2_LO, r_hi);
    // r_hi − r is exact (the two are close); the fma adds the exact −k·LN2_LO and rounds once.
    let rc = (-kf).mul_add(LN2_LO, r_hi - r);
    (r, rc, k)
}

/// `eʸ = (hi + lo) · s₁ · s₂` for `y` in `[-746, 710]` (callers clamp); NaN for NaN.
///
/// `hi + lo` is `eʳ` to about 2⁻⁶⁰ relative, so callers can add it to other terms with one
/// rounding. The scale is split as `2^⌊k/2⌋ · 2^⌈k/2⌉` so that neither factor leaves the normal
/// range and a subnormal result is rounded once.
#[inline(always)]
fn exp_split(y: f64) -> (f64, f64, f64, f64) {
    let (r, rc, k) = reduce(y);
    let q = poly12(&EXP_C, r);
    // eʳ = 1 + r + r² q: the rounding error of 1 + r is recovered exactly (|r| < 1), and the
    // sum renormalized, so hi + lo keeps the bits a single f64 would lose.
    let one_r = 1.0 + r;
    let tail = ((1.0 - one_r) + r) + (r * r).mul_add(q, rc);
    let hi = one_r + tail;
    let lo = (one_r - hi) + tail;
    let k1 = k >> 1;
    let k2 = k - k1;
    let s1 = f64::from_bits(((k1 + 1023) as u64) << 52);
    let s2 = f64::from_bits(((k2 + 1023) as u64) << 52);
    (hi, lo, s1, s2)
}

/// `tanh x` for `|x| < TANH_SMALL`: `x + x u g(u)`, `u = x²`.
#[inline(always)]
fn tanh_small(x: f64) -> f64 {
    let a = x.abs();
    let u = a * a;
    let g = poly12(&TANH_G, u);
    a.mul_add(u * g, a).copysign(x)
}

/// `tanh x` for any `x` (and NaN): `tanh |x| = −E / (2 + E)` with `E = e^{−2|x|} − 1`.
///
/// `E = 2ᵏ (eʳ − 1) + (2ᵏ − 1)` is kept as `E_hi + E_lo` (no cancellation: `k ≤ 0`, and for
/// `k = 0` it is `eʳ − 1` itself), and the quotient is one division refined by its exact
/// residual, so the result is within about half an ulp of `tanh`. Exact for tiny `x`
/// (`tanh x = x` in `f64` below `|x| ≈ 10⁻⁸`).
#[inline(always)]
fn tanh_expm1(x: f64) -> f64 {
    let a = x.abs();
    // tanh rounds to exactly 1 from |x| ≈ 19.06 on; clamping keeps 2ᵏ normal (NaN passes).
    let y = if a > 20.0 { -40.0 } else { -2.0 * a };
    let (r, rc, k) = reduce(y);
    // eʳ − 1 = r + r² q + rc (up to rc·r, below 2⁻⁶⁰ relative), as p_hi + p_lo.
    let tail = (r * r).mul_add(poly12(&EXP_C, r), rc);
    let p_hi = r + tail;
    let p_lo = (r - p_hi) + tail;
    // 2ᵏ for -58 ≤ k ≤ 0; s·p_hi is exact, and s − 1 is exact for k ≥ −53, its rounding
    // error kept below that (where tanh is 1 − 2⁻⁵³ or so, and that error is an ulp).
    let s = f64::from_bits(((k + 1023) as u64) << 52);
    let (sp, sm1) = (s * p_hi, s - 1.0);
    let sm1_lo = s - (sm1 + 1.0);
    let e_hi = sp + sm1;
    // Two-sum (|s − 1| ≥ |s p| whenever s − 1 ≠ 0), plus the low parts.
    let e_lo = ((sm1 - e_hi) + sp) + s.mul_add(p_lo, sm1_lo);
    let d_hi = 2.0 + e_hi;
    let d_lo = ((2.0 - d_hi) + e_hi) + e_lo;
    let inv = 1.0 / d_hi;
    let t0 = -e_hi * inv;
    // −E − t0 (2 + E), its leading part exact by the fma, then one Newton correction.
    let residual = (-t0).mul_add(d_hi, -e_hi) - e_lo - t0 * d_lo;
    residual.mul_add(inv, t0).copysign(x)
}

/// `tanh x` for one element, branch-free (both formulas are evaluated and one is selected).
#[inline(always)]
fn tanh_one(x: f64) -> f64 {
    let (small, large) = (tanh_small(x), tanh_expm1(x));
    if x.abs() < TANH_SMALL {
        small
    } else {
        large
    }
}

/// `e^{−|x|}` rounded once (0 below `x ≈ −745.13`, NaN for NaN): the sigmoid and the softplus
/// both start from it.
#[inline(always)]
fn exp_neg_abs(x: f64) -> f64 {
    // Below -746, e^y rounds to 0 (NaN passes the comparison).
    let y = -x.abs();
    let (hi, lo, s1, s2) = exp_split(if y < -746.0 { -746.0 } else { y });
    (hi + lo) * s1 * s2
}

/// The logistic sigmoid for one element, as `1 / (1 + e)` or `e / (1 + e)` with `e = e^{-|x|}`,
/// the same roundings as the per-element formula so that the two agree closely.
#[inline(always)]
fn sigmoid_one(x: f64) -> f64 {
    let e = exp_neg_abs(x);
    let num = if x >= 0.0 { 1.0 } else { e };
    num / (1.0 + e)
}

/// `out[i] = f(x[i])`, a loop the compiler vectorizes once `f` is inlined: a macro rather than
/// a closure parameter, which would be called through a shim compiled without AVX2.
macro_rules! map_loop {
    ($x:expr, $out:expr, $f:ident) => {
        for (o, &v) in $out.iter_mut().zip($x) {
            *o = $f(v);
        }
    };
}

/// `out[i] = tanh(x[i])` in chunks of eight: a chunk whose elements all take the same formula
/// computes only that one (the polynomial for small arguments is a third of the work of the
/// general formula); a mixed chunk computes both. Runs of 32 small arguments take the
/// polynomial four vectors at a time, whose dependency chains then overlap (0.8 against 1.1
/// ns per element on W3's activations); the general formula stays at eight, where it does not
/// run out of registers. The result is `tanh_one`'s, bit for bit.
#[inline(always)]
fn tanh_chunked(x: &[f64], out: &mut [f64]) {
    const W: usize = 8;
    const RUN: usize = 4 * W;
    let mut xr = x.chunks_exact(RUN);
    let mut or = out.chunks_exact_mut(RUN);
    for (xc, oc) in (&mut xr).zip(&mut or) {
        // Counted without short-circuit, so the test is a few vector compares.
        if xc.iter().filter(|v| v.abs() < TANH_SMALL).count() == RUN {
            map_loop!(xc, oc, tanh_small);
        } else {
            tanh_eights(xc, oc);
        }
    }
    tanh_eights(xr.remainder(), or.into_remainder());
}

/// [`tanh_chunked`]'s chunks of eight, each on the formula its elements need.
#[inline(always)]
fn tanh_eights(x: &[f64], out: &mut [f64]) {
    const W: usize = 8;
    let mut xs = x.chunks_exact(W);
    let mut os = out.chunks_exact_mut(W);
    for (xc, oc) in (&mut xs).zip(&mut os) {
        let small = xc.iter().filter(|v| v.abs() < TANH_SMALL).count();
        if small == W {
            map_loop!(xc, oc, tanh_small);
        } else if small == 0 {
            map_loop!(xc, oc, tanh_expm1);
        } else {
            map_loop!(xc, oc, tanh_one);
        }
    }
    map_loop!(xs.remainder(), os.into_remainder(), tanh_one);
}

/// `eˣ` for one element: `(hi + lo) 2ᵏ` rounded once (twice only for a subnormal result);
/// overflows to infinity from `x ≈ 709.78` and underflows to zero below `≈ -745.13`.
#[inline(always)]
fn exp_one(x: f64) -> f64 {
    // Clamped so that k stays in range; e^710 and e^-746 already round to ∞ and 0 (NaN passes).
    let (hi, lo, s1, s2) = exp_split(x.clamp(-746.0, 710.0));
    (hi + lo) * s1 * s2
}

/// `out[i] = exp(x[i])`.
#[inline(always)]
fn exp_loop(x: &[f64], out: &mut [f64]) {
    map_loop!(x, out, exp_one);
}

/// `out[i] = sigmoid(x[i])` (one formula: nothing to choose per chunk).
#[inline(always)]
fn sigmoid_loop(x: &[f64], out: &mut [f64]) {
    map_loop!(x, out, sigmoid_one);
}

/// One bulk function per slice loop, compiled three ways: for AVX-512 (eight lanes),
/// AVX2 with FMA (four) and the baseline; the widest the CPU has is chosen at run time. Every
/// fused multiply-add rounds once on each path, so all three agree bit for bit (a test checks).
macro_rules! bulk {
    ($name:ident, $body:ident, $avx512:ident, $avx2:ident) => {
        // Plain functions on other architectures (the tests name them there too).
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
        #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
        unsafe fn $avx512(x: &[f64], out: &mut [f64]) {
            $body(x, out);
        }

        #[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
        #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
        unsafe fn $avx2(x: &[f64], out: &mut [f64]) {
            $body(x, out);
        }

        fn $name(x: &[f64], out: &mut [f64]) {
            check_lengths(x.len(), out.len());
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F.
                    unsafe { $avx512(x, out) };
                    return;
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports AVX2 and FMA.
                    unsafe { $avx2(x, out) };
                    return;
                }
            }
            $body(x, out);
        }
    };
}

bulk!(tanh_bulk, tanh_chunked, tanh_avx512, tanh_avx2);
bulk!(sigmoid_bulk, sigmoid_loop, sigmoid_avx512, sigmoid_avx2);
bulk!(exp_bulk, exp_loop, exp_avx512, exp_avx2);

// Declared after `map_loop!` and `bulk!`, which it uses.
mod softplus;
pub use softplus::softplus_f64;

/// `out[i] = exp(x[i])`, within 1 ulp of glibc's `exp` (vectorized; the softmax losses use it
/// over whole batches); panics if the lengths differ.
pub fn exp_f64(x: &[f64], out: &mut [f64]) {
    exp_bulk(x, out);
}

fn check_lengths(x: usize, out: usize) {
    assert_eq!(x, out, "bulk function: input has {x} elements, output {out}");
}

/// `out[i] = tanh(x[i])`, within 2 ulp of glibc's `tanh`; panics if the lengths differ.
pub fn tanh_f64(x: &[f64], out: &mut [f64]) {
    tanh_bulk(x, out);
}

/// `out[i] = 1 / (1 + e^{-x[i]})`, within 2 ulp of that formula (as `eˣ / (1 + eˣ)` for
/// negative `x`) evaluated with glibc's `exp`; panics if the lengths differ.
pub fn sigmoid_f64(x: &[f64], out: &mut [f64]) {
    sigmoid_bulk(x, out);
}

/// Runs an `f64` bulk function on `f32` data through a stack buffer, rounding once at the end.
fn via_f64(x: &[f32], out: &mut [f32], f: fn(&[f64], &mut [f64])) {
    check_lengths(x.len(), out.len());
    const CHUNK: usize = 256;
    let (mut wide, mut res) = ([0.0f64; CHUNK], [0.0f64; CHUNK]);
    for (xc, oc) in x.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
        let n = xc.len();
        for (w, &v) in wide.iter_mut().zip(xc) {
            *w = f64::from(v);
        }
        f(&wide[..n], &mut res[..n]);
        for (o, &r) in oc.iter_mut().zip(&res[..n]) {
            *o = r as f32;
        }
    }
}

/// `out[i] = exp(x[i])` for `f32`, computed in `f64` and rounded once.
pub fn exp_f32(x: &[f32], out: &mut [f32]) {
    via_f64(x, out, exp_f64);
}

/// `out[i] = tanh(x[i])` for `f32`, computed in `f64` and rounded once.
pub fn tanh_f32(x: &[f32], out: &mut [f32]) {
    via_f64(x, out, tanh_f64);
}

/// The logistic sigmoid for `f32`, computed in `f64` and rounded once.
pub fn sigmoid_f32(x: &[f32], out: &mut [f32]) {
    via_f64(x, out, sigmoid_f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::unary::sigmoid;

    /// Position of `x` in the ordered sequence of f64 values, so ulp distance is a difference.
    pub(super) fn ordinal(x: f64) -> i64 {
        let b = x.to_bits() as i64;
        if b < 0 {
            i64::MIN - b
        } else {
            b
        }
    }

    pub(super) fn ulps(a: f64, b: f64) -> u64 {
        if a.is_nan() || b.is_nan() {
            return if a.is_nan() && b.is_nan() { 0 } else { u64::MAX };
        }
        ordinal(a).abs_diff(ordinal(b))
    }

    /// The arguments: a dense sweep of [-30, 30], magnitudes from subnormal to huge, and the
    /// special values.
    pub(super) fn arguments() -> Vec<f64> {
        let mut xs: Vec<f64> = (0..=2_000_000).map(|i| -30.0 + 60.0 * (i as f64) / 2e6).collect();
        let mut m = f64::from_bits(1); // smallest subnormal
        while m < 1e300 {
            xs.extend([m, -m, m * 1.37, -m * 1.37]);
            m *= 1.9;
        }
        // Around the switch between the formulas, and where tanh and the sigmoid saturate.
        for c in [TANH_SMALL, 19.06, 36.7, 708.0, 709.8, 745.1, 746.0] {
            let mut v = c;
            for _ in 0..2000 {
                xs.extend([v, -v]);
                v = f64::from_bits(v.to_bits() + 997);
            }
        }
        xs.extend([
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1000.0,
            -1000.0,
        ]);
        xs
    }

    pub(super) fn worst(xs: &[f64], ours: &[f64], reference: impl Fn(f64) -> f64) -> (u64, f64) {
        xs.iter().zip(ours).map(|(&x, &y)| (ulps(y, reference(x)), x)).fold((0, 0.0), |w, c| {
            if c.0 > w.0 {
                c
            } else {
                w
            }
        })
    }

    /// The dispatched result equals, bit for bit, the baseline loop and every vector path this
    /// CPU can run (a path it lacks is reported, not silently passed).
    pub(super) fn same_on_every_path(
        xs: &[f64],
        dispatched: &[f64],
        one: fn(f64) -> f64,
        avx512: unsafe fn(&[f64], &mut [f64]),
        avx2: unsafe fn(&[f64], &mut [f64]),
    ) {
        let same = |other: &[f64], path: &str| {
            // NaN payloads are not compared: libm's fma and the instruction may set different
            // ones.
            let differ =
                |a: &f64, b: &f64| a.to_bits() != b.to_bits() && !(a.is_nan() && b.is_nan());
            let bad = dispatched.iter().zip(other).position(|(a, b)| differ(a, b));
            assert!(bad.is_none(), "{path} differs at x = {:e}", xs[bad.unwrap_or(0)]);
        };
        let mut out = vec![0.0; xs.len()];
        map_loop!(xs, &mut out, one);
        same(&out, "baseline");
        #[cfg(target_arch = "x86_64")]
        let paths = [
            ("AVX-512", avx512, std::is_x86_feature_detected!("avx512f")),
            (
                "AVX2",
                avx2,
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
            ),
        ];
        #[cfg(not(target_arch = "x86_64"))]
        let paths: [(&str, unsafe fn(&[f64], &mut [f64]), bool); 2] =
            [("AVX-512", avx512, false), ("AVX2", avx2, false)];
        for (path, f, on) in paths {
            if on {
                // SAFETY: the CPU supports the path's features.
                unsafe { f(xs, &mut out) };
                same(&out, path);
            } else {
                eprintln!("{path} not checked: this CPU lacks it");
            }
        }
    }

    #[test]
    fn tanh_is_within_two_ulp_of_libm() {
        let xs = arguments();
        let mut out = vec![0.0; xs.len()];
        tanh_f64(&xs, &mut out);
        let (err, at) = worst(&xs, &out, f64::tanh);
        eprintln!("tanh: worst {err} ulp at x = {at:e} over {} arguments", xs.len());
        assert!(err <= 2, "tanh: {err} ulp at x = {at:e}");
        same_on_every_path(&xs, &out, tanh_one, tanh_avx512, tanh_avx2);
        // The sorted sweep has almost only single-formula chunks; shuffled, almost every chunk
        // of eight mixes the two (with specials among them), and the result must not change.
        let mut shuffled = xs.clone();
        shuffled.extend([f64::NAN, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, 0.624, 0.625]);
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let mut mixed = vec![0.0; shuffled.len()];
        tanh_f64(&shuffled, &mut mixed);
        same_on_every_path(&shuffled, &mixed, tanh_one, tanh_avx512, tanh_avx2);
        let chunks = shuffled.chunks_exact(8);
        let mixed_chunks = chunks
            .filter(|c| {
                let small = c.iter().filter(|v| v.abs() < TANH_SMALL).count();
                small != 0 && small != 8
            })
            .count();
        assert!(mixed_chunks > 10_000, "only {mixed_chunks} mixed chunks");
        let mut s = [0.0; 8];
        let special = [0.0, -0.0, 5e-324, -5e-324, f64::INFINITY, f64::NEG_INFINITY, 25.0, -1e300];
        tanh_f64(&special, &mut s);
        assert_eq!(s[0].to_bits(), 0.0f64.to_bits());
        assert_eq!(s[1].to_bits(), (-0.0f64).to_bits());
        assert_eq!((s[2], s[3]), (5e-324, -5e-324));
        assert_eq!((s[4], s[5], s[6], s[7]), (1.0, -1.0, 1.0, -1.0));
        let mut nan = [0.0];
        tanh_f64(&[f64::NAN], &mut nan);
        assert!(nan[0].is_nan());
    }

    /// The two formulas share no coefficient (a Chebyshev fit of `tanh` and the Taylor series
    /// of `exp`), so where both apply they check each other more tightly than glibc can (whose
    /// own error reaches 2 ulp): within 1 ulp, and exactly `x` where `tanh x` rounds to `x`.
    #[test]
    fn the_two_tanh_formulas_agree_within_one_ulp() {
        let mut worst = (0, 0.0);
        for i in 0..=1_000_000 {
            let x = TANH_SMALL * (i as f64 / 1e6) * 0.999_999_9;
            for x in [x, -x, x * 1e-5, x * 1e-9] {
                let d = ulps(tanh_small(x), tanh_expm1(x));
                if d > worst.0 {
                    worst = (d, x);
                }
            }
        }
        assert!(worst.0 <= 1, "{} ulp apart at x = {:e}", worst.0, worst.1);
        for x in [1e-9, -3e-10, 1e-200, 2.2e-308] {
            assert_eq!(tanh_expm1(x), x);
        }
    }

    #[test]
    fn exp_is_within_one_ulp_of_libm() {
        let mut xs: Vec<f64> =
            (0..=2_000_000).map(|i| -745.2 + 1455.0 * (i as f64) / 2e6).collect();
        xs.extend(arguments().iter().filter(|x| x.abs() < 30.0));
        xs.extend([0.0, -0.0, 1e-300, -1e-300, 709.78, 709.79, -745.13, -745.14, 1e308, -1e308]);
        let mut out = vec![0.0; xs.len()];
        exp_f64(&xs, &mut out);
        let (err, at) = worst(&xs, &out, f64::exp);
        eprintln!("exp: worst {err} ulp at x = {at:e} over {} arguments", xs.len());
        assert!(err <= 1, "exp: {err} ulp at x = {at:e}");
        same_on_every_path(&xs, &out, exp_one, exp_avx512, exp_avx2);
        let mut s = [0.0; 4];
        exp_f64(&[f64::INFINITY, f64::NEG_INFINITY, 800.0, -800.0], &mut s);
        assert_eq!(s, [f64::INFINITY, 0.0, f64::INFINITY, 0.0]);
        let mut nan = [0.0];
        exp_f64(&[f64::NAN], &mut nan);
        assert!(nan[0].is_nan());
    }

    #[test]
    fn sigmoid_is_within_two_ulp_of_the_exp_formula() {
        let xs = arguments();
        let mut out = vec![0.0; xs.len()];
        sigmoid_f64(&xs, &mut out);
        let (err, at) = worst(&xs, &out, sigmoid::<f64>);
        eprintln!("sigmoid: worst {err} ulp at x = {at:e} over {} arguments", xs.len());
        assert!(err <= 2, "sigmoid: {err} ulp at x = {at:e}");
        same_on_every_path(&xs, &out, sigmoid_one, sigmoid_avx512, sigmoid_avx2);
        let mut s = [0.0; 5];
        sigmoid_f64(&[0.0, f64::INFINITY, f64::NEG_INFINITY, 800.0, -800.0], &mut s);
        assert_eq!(s, [0.5, 1.0, 0.0, 1.0, 0.0]);
        let mut nan = [0.0];
        sigmoid_f64(&[f64::NAN], &mut nan);
        assert!(nan[0].is_nan());
    }

    #[test]
    fn f32_versions_are_within_one_ulp_of_the_rounded_f64_result() {
        let xs: Vec<f32> = (0..=200_000).map(|i| -30.0 + 60.0 * (i as f32) / 2e5).collect();
        let mut out = vec![0.0f32; xs.len()];
        tanh_f32(&xs, &mut out);
        for (&x, &y) in xs.iter().zip(&out) {
            let want = f64::from(x).tanh() as f32;
            assert!(y.to_bits().abs_diff(want.to_bits()) <= 1 && y.signum() == want.signum());
        }
        sigmoid_f32(&xs, &mut out);
        for (&x, &y) in xs.iter().zip(&out) {
            let want = sigmoid(f64::from(x)) as f32;
            assert!(y.to_bits().abs_diff(want.to_bits()) <= 1, "{x}: {y} vs {want}");
        }
    }
}
