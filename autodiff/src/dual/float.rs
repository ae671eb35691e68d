//! `num_traits::Float` for [`Dual`]: every function with its exact derivative rule.
//! Each method lifts `f` as `f(re) + f'(re)·eps·ε` (see [`Dual::chain`]).

use super::Dual;
use crate::scalar::Scalar;
use num_traits::Float;
use std::num::FpCategory;

impl<T: Scalar> Float for Dual<T> {
    // --- constants and predicates: on `re` only -------------------------------------------
    fn nan() -> Self {
        Dual::constant(T::nan())
    }
    fn infinity() -> Self {
        Dual::constant(T::infinity())
    }
    fn neg_infinity() -> Self {
        Dual::constant(T::neg_infinity())
    }
    fn neg_zero() -> Self {
        Dual::constant(T::neg_zero())
    }
    fn min_value() -> Self {
        Dual::constant(T::min_value())
    }
    fn min_positive_value() -> Self {
        Dual::constant(T::min_positive_value())
    }
    fn max_value() -> Self {
        Dual::constant(T::max_value())
    }
    fn epsilon() -> Self {
        Dual::constant(T::epsilon())
    }
    fn is_nan(self) -> bool {
        self.re.is_nan()
    }
    fn is_infinite(self) -> bool {
        self.re.is_infinite()
    }
    fn is_finite(self) -> bool {
        self.re.is_finite()
    }
    fn is_normal(self) -> bool {
        self.re.is_normal()
    }
    fn classify(self) -> FpCategory {
        self.re.classify()
    }
    fn is_sign_positive(self) -> bool {
        self.re.is_sign_positive()
    }
    fn is_sign_negative(self) -> bool {
        self.re.is_sign_negative()
    }
    fn integer_decode(self) -> (u64, i16, i8) {
        self.re.integer_decode()
    }

    // --- piecewise constant: zero derivative (the a.e. value) -----------------------------
    fn floor(self) -> Self {
        Dual::constant(self.re.floor())
    }
    fn ceil(self) -> Self {
        Dual::constant(self.re.ceil())
    }
    fn round(self) -> Self {
        Dual::constant(self.re.round())
    }
    fn trunc(self) -> Self {
        Dual::constant(self.re.trunc())
    }
    fn signum(self) -> Self {
        Dual::constant(self.re.signum())
    }
    /// `x − trunc(x)`: derivative 1.
    fn fract(self) -> Self {
        Dual::new(self.re.fract(), self.eps)
    }

    // --- piecewise smooth ------------------------------------------------------------------
    /// Derivative `sign(re)` (`+1` at `+0`, `−1` at `−0`).
    fn abs(self) -> Self {
        if self.re.is_sign_negative() {
            -self
        } else {
            self
        }
    }
    /// Keeps the derivative of the chosen argument (`self` on ties).
    fn max(self, other: Self) -> Self {
        if other.re > self.re || self.re.is_nan() {
            other
        } else {
            self
        }
    }
    /// Keeps the derivative of the chosen argument (`self` on ties).
    fn min(self, other: Self) -> Self {
        if other.re < self.re || self.re.is_nan() {
            other
        } else {
            self
        }
    }
    /// `max(self − other, 0)`.
    #[allow(deprecated)]
    fn abs_sub(self, other: Self) -> Self {
        if self.re > other.re {
            self - other
        } else {
            Dual::constant(T::zero())
        }
    }

    // --- arithmetic --------------------------------------------------------------------------
    fn mul_add(self, a: Self, b: Self) -> Self {
        self * a + b
    }
    fn recip(self) -> Self {
        let r = self.re.recip();
        self.chain(r, -r * r)
    }
    /// `d xⁿ = n xⁿ⁻¹`.
    fn powi(self, n: i32) -> Self {
        let d = if n == 0 { T::zero() } else { T::from_f64(n as f64) * self.re.powi(n - 1) };
        self.chain(self.re.powi(n), d)
    }
    /// `d xʸ = y xʸ⁻¹ ẋ + xʸ ln x ẏ`; the `ẏ` term is skipped when `ẏ = 0` so that negative
    /// bases with constant exponents stay finite.
    fn powf(self, y: Self) -> Self {
        let value = self.re.powf(y.re);
        let dx = if y.re.is_zero() { T::zero() } else { y.re * self.re.powf(y.re - T::one()) };
        let mut eps = dx * self.eps;
        if !y.eps.is_zero() {
            eps = eps + value * self.re.ln() * y.eps;
        }
        Dual::new(value, eps)
    }
    fn sqrt(self) -> Self {
        let r = self.re.sqrt();
        self.chain(r, (r + r).recip())
    }
    fn cbrt(self) -> Self {
        let r = self.re.cbrt();
        self.chain(r, (T::from_f64(3.0) * r * r).recip())
    }
    fn hypot(self, other: Self) -> Self {
        let h = self.re.hypot(other.re);
        Dual::new(h, (self.re * self.eps + other.re * other.eps) / h)
    }

    // --- exponentials and logarithms ----------------------------------------------------------
    fn exp(self) -> Self {
        let e = self.re.exp();
        self.chain(e, e)
    }
    fn exp2(self) -> Self {
        let e = self.re.exp2();
        self.chain(e, e * T::from_f64(std::f64::consts::LN_2))
    }
    fn exp_m1(self) -> Self {
        self.chain(self.re.exp_m1(), self.re.exp())
    }
    fn ln(self) -> Self {
        self.chain(self.re.ln(), self.re.recip())
    }
    fn ln_1p(self) -> Self {
        self.chain(self.re.ln_1p(), (T::one() + self.re).recip())
    }
    /// `log_b x = ln x / ln b`, with both arguments differentiated.
    fn log(self, base: Self) -> Self {
        self.ln() / base.ln()
    }
    fn log2(self) -> Self {
        self.chain(self.re.log2(), (self.re * T::from_f64(std::f64::consts::LN_2)).recip())
    }
    fn log10(self) -> Self {
        self.chain(self.re.log10(), (self.re * T::from_f64(std::f64::consts::LN_10)).recip())
    }

    // --- trigonometric ---------------------------------------------------------------------------
    fn sin(self) -> Self {
        self.chain(self.re.sin(), self.re.cos())
    }
    fn cos(self) -> Self {
        self.chain(self.re.cos(), -self.re.sin())
    }
    fn tan(self) -> Self {
        let t = self.re.tan();
        self.chain(t, T::one() + t * t)
    }
    fn sin_cos(self) -> (Self, Self) {
        (self.sin(), self.cos())
    }
    fn asin(self) -> Self {
        self.chain(self.re.asin(), (T::one() - self.re * self.re).sqrt().recip())
    }
    fn acos(self) -> Self {
        self.chain(self.re.acos(), -(T::one() - self.re * self.re).sqrt().recip())
    }
    fn atan(self) -> Self {
        self.chain(self.re.atan(), (T::one() + self.re * self.re).recip())
    }
    /// `atan2(y, x)`: `d = (x ẏ − y ẋ) / (x² + y²)`.
    fn atan2(self, x: Self) -> Self {
        let r2 = self.re * self.re + x.re * x.re;
        Dual::new(self.re.atan2(x.re), (x.re * self.eps - self.re * x.eps) / r2)
    }

    // --- hyperbolic ----------------------------------------------------------------------------------
    fn sinh(self) -> Self {
        self.chain(self.re.sinh(), self.re.cosh())
    }
    fn cosh(self) -> Self {
        self.chain(self.re.cosh(), self.re.sinh())
    }
    fn tanh(self) -> Self {
        let t = self.re.tanh();
        self.chain(t, T::one() - t * t)
    }
    fn asinh(self) -> Self {
        self.chain(self.re.asinh(), (self.re * self.re + T::one()).sqrt().recip())
    }
    fn acosh(self) -> Self {
        self.chain(self.re.acosh(), (self.re * self.re - T::one()).sqrt().recip())
    }
    fn atanh(self) -> Self {
        self.chain(self.re.atanh(), (T::one() - self.re * self.re).recip())
    }

    fn to_degrees(self) -> Self {
        let k = T::from_f64(180.0 / std::f64::consts::PI);
        Dual::new(self.re.to_degrees(), self.eps * k)
    }
    fn to_radians(self) -> Self {
        let k = T::from_f64(std::f64::consts::PI / 180.0);
        Dual::new(self.re.to_radians(), self.eps * k)
    }
}
