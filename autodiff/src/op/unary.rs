//! Elementwise functions φ with their first and second derivatives, written once.
//!
//! The same [`UnaryFn`] rule serves the tape's forward op, its reverse rule (so it runs on dual
//! numbers for Hessian-vector products), and the activation-curvature term of Section 8.1.2,
//! which needs `φ''`.

/// The logistic sigmoid (defined beside [`Scalar`], whose slice version defaults to it).
pub use crate::scalar::sigmoid;
use crate::scalar::Scalar;

/// An elementwise function `y = φ(x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnaryFn {
    /// `φ(x) = x`.
    Identity,
    /// `φ(x) = -x`.
    Neg,
    /// `φ(x) = eˣ`.
    Exp,
    /// `φ(x) = ln x` (NaN for `x < 0`, as `f64::ln`).
    Log,
    /// `φ(x) = tanh x`.
    Tanh,
    /// The logistic sigmoid `φ(x) = 1 / (1 + e⁻ˣ)`.
    Sigmoid,
    /// `φ(x) = max(x, 0)`, with `φ'(0) = 0` and `φ'' = 0` (the a.e. values).
    Relu,
    /// `φ(x) = ln(1 + eˣ)`, computed without overflow.
    Softplus,
    /// `φ(x) = x²`.
    Square,
    /// `φ(x) = √x`.
    Sqrt,
}

impl UnaryFn {
    /// The name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            UnaryFn::Identity => "identity",
            UnaryFn::Neg => "neg",
            UnaryFn::Exp => "exp",
            UnaryFn::Log => "log",
            UnaryFn::Tanh => "tanh",
            UnaryFn::Sigmoid => "sigmoid",
            UnaryFn::Relu => "relu",
            UnaryFn::Softplus => "softplus",
            UnaryFn::Square => "square",
            UnaryFn::Sqrt => "sqrt",
        }
    }

    /// `φ(x)`.
    pub fn value<T: Scalar>(self, x: T) -> T {
        match self {
            UnaryFn::Identity => x,
            UnaryFn::Neg => -x,
            UnaryFn::Exp => x.exp(),
            UnaryFn::Log => x.ln(),
            UnaryFn::Tanh => x.tanh(),
            UnaryFn::Sigmoid => sigmoid(x),
            UnaryFn::Relu => {
                if x > T::zero() {
                    x
                } else {
                    T::zero()
                }
            }
            // ln(1 + eˣ) = max(x, 0) + ln(1 + e^{-|x|}), finite for all x.
            UnaryFn::Softplus => {
                let relu = if x > T::zero() { x } else { T::zero() };
                relu + (-(x.abs())).exp().ln_1p()
            }
            UnaryFn::Square => x * x,
            UnaryFn::Sqrt => x.sqrt(),
        }
    }

    /// `out[i] = φ(x[i])` over a slice: [`Scalar::tanh_slice`] and [`Scalar::sigmoid_slice`]
    /// for the two activations that are a libm call per element, [`value`](Self::value)
    /// otherwise. Panics if the lengths differ.
    pub fn apply_slice<T: Scalar>(self, x: &[T], out: &mut [T]) {
        match self {
            UnaryFn::Tanh => T::tanh_slice(x, out),
            UnaryFn::Sigmoid => T::sigmoid_slice(x, out),
            _ => {
                assert_eq!(x.len(), out.len(), "apply_slice: lengths differ");
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = self.value(v);
                }
            }
        }
    }

    /// `φ'(x)`, given also `y = φ(x)` so that the rules that reuse the output can.
    pub fn derivative_with_output<T: Scalar>(self, x: T, y: T) -> T {
        let one = T::one();
        match self {
            UnaryFn::Identity => one,
            UnaryFn::Neg => -one,
            UnaryFn::Exp => y,
            UnaryFn::Log => one / x,
            UnaryFn::Tanh => one - y * y,
            UnaryFn::Sigmoid => y * (one - y),
            UnaryFn::Relu => {
                if x > T::zero() {
                    one
                } else {
                    T::zero()
                }
            }
            UnaryFn::Softplus => sigmoid(x),
            UnaryFn::Square => x + x,
            UnaryFn::Sqrt => one / (y + y),
        }
    }

    /// `φ'(x)`.
    pub fn derivative<T: Scalar>(self, x: T) -> T {
        self.derivative_with_output(x, self.value(x))
    }

    /// `φ''(x)`, used by the activation-curvature term of Section 8.1.2.
    pub fn second_derivative<T: Scalar>(self, x: T) -> T {
        let one = T::one();
        let two = one + one;
        match self {
            UnaryFn::Identity | UnaryFn::Neg | UnaryFn::Relu => T::zero(),
            UnaryFn::Exp => x.exp(),
            UnaryFn::Log => -one / (x * x),
            UnaryFn::Tanh => {
                let y = x.tanh();
                -two * y * (one - y * y)
            }
            UnaryFn::Sigmoid | UnaryFn::Softplus => {
                // σ'' = σ(1-σ)(1-2σ); softplus'' = σ' = σ(1-σ).
                let s = sigmoid(x);
                let d = s * (one - s);
                if self == UnaryFn::Sigmoid {
                    d * (one - two * s)
                } else {
                    d
                }
            }
            UnaryFn::Square => two,
            UnaryFn::Sqrt => -one / (two * two * x * x.sqrt()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dual;

    const ALL: [UnaryFn; 10] = [
        UnaryFn::Identity,
        UnaryFn::Neg,
        UnaryFn::Exp,
        UnaryFn::Log,
        UnaryFn::Tanh,
        UnaryFn::Sigmoid,
        UnaryFn::Relu,
        UnaryFn::Softplus,
        UnaryFn::Square,
        UnaryFn::Sqrt,
    ];

    /// Closed forms written independently of the implementation above.
    fn closed_form(f: UnaryFn, x: f64) -> (f64, f64, f64) {
        let s = 1.0 / (1.0 + (-x).exp());
        match f {
            UnaryFn::Identity => (x, 1.0, 0.0),
            UnaryFn::Neg => (-x, -1.0, 0.0),
            UnaryFn::Exp => (x.exp(), x.exp(), x.exp()),
            UnaryFn::Log => (x.ln(), 1.0 / x, -1.0 / (x * x)),
            UnaryFn::Tanh => {
                let c = x.cosh();
                (x.tanh(), 1.0 / (c * c), -2.0 * x.sinh() / (c * c * c))
            }
            UnaryFn::Sigmoid => (s, s * (1.0 - s), s * (1.0 - s) * (1.0 - 2.0 * s)),
            UnaryFn::Relu => (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 }, 0.0),
            UnaryFn::Softplus => ((1.0 + x.exp()).ln(), s, s * (1.0 - s)),
            UnaryFn::Square => (x * x, 2.0 * x, 2.0),
            UnaryFn::Sqrt => (x.sqrt(), 0.5 / x.sqrt(), -0.25 * x.powf(-1.5)),
        }
    }

    #[test]
    fn values_and_derivatives_match_closed_forms() {
        // Relative tolerance 1e-13: both sides are a few flops of libm functions.
        for f in ALL {
            for &x in &[0.3, 1.7, 2.5, 0.05] {
                let (v, d, d2) = closed_form(f, x);
                let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-300).max(1.0);
                assert!(rel(f.value(x), v) < 1e-13, "{} value at {x}", f.name());
                assert!(rel(f.derivative(x), d) < 1e-13, "{}' at {x}", f.name());
                assert!(rel(f.second_derivative(x), d2) < 1e-13, "{}'' at {x}", f.name());
            }
        }
    }

    #[test]
    fn apply_slice_matches_value() {
        let xs: Vec<f64> = (0..400).map(|i| -20.0 + 0.1 * i as f64).collect();
        for f in ALL {
            let mut out = vec![0.0; xs.len()];
            f.apply_slice(&xs, &mut out);
            for (&x, &y) in xs.iter().zip(&out) {
                let v = f.value(x);
                // Bulk tanh and sigmoid are within 2 ulp; the rest is the same call.
                let tol = if matches!(f, UnaryFn::Tanh | UnaryFn::Sigmoid) { 2 } else { 0 };
                let same_nan = v.is_nan() && y.is_nan();
                let dist = (y.to_bits() as i64).abs_diff(v.to_bits() as i64);
                assert!(same_nan || dist <= tol, "{} at {x}: {y} vs {v}", f.name());
            }
        }
        // Dual numbers (over 128, so the stack chunks turn over): the bulk value of the real
        // part, and the closed-form derivative `1 − tanh²`, `s (1 − s)` times the tangent; a
        // dual of duals also carries the second derivative `−2 t (1 − t²)`, `s (1 − s)(1 − 2s)`.
        let close = |a: f64, b: f64, what: &str, x: f64| {
            assert!((a - b).abs() <= 4e-16 * (1.0 + b.abs()), "{what} at {x}: {a} vs {b}");
        };
        let ds: Vec<Dual<f64>> = xs.iter().map(|&x| Dual::new(x, 0.75)).collect();
        let dds: Vec<Dual<Dual<f64>>> =
            xs.iter().map(|&x| Dual::new(Dual::new(x, 1.0), Dual::new(1.0, 0.0))).collect();
        for f in [UnaryFn::Tanh, UnaryFn::Sigmoid] {
            let mut out = vec![Dual::constant(0.0); ds.len()];
            f.apply_slice(&ds, &mut out);
            let mut out2 = vec![Dual::constant(Dual::constant(0.0)); dds.len()];
            f.apply_slice(&dds, &mut out2);
            for ((&x, y), y2) in xs.iter().zip(&out).zip(&out2) {
                let v = f.value(x);
                let (d1, d2) = match f {
                    UnaryFn::Tanh => (1.0 - v * v, -2.0 * v * (1.0 - v * v)),
                    _ => (v * (1.0 - v), v * (1.0 - v) * (1.0 - 2.0 * v)),
                };
                let dist = (y.re.to_bits() as i64).abs_diff(v.to_bits() as i64);
                assert!(dist <= 2, "{} at {x}: {} vs {v}", f.name(), y.re);
                close(y.eps, 0.75 * d1, f.name(), x);
                close(y2.re.re, y.re, "nested value", x);
                close(y2.re.eps, d1, "nested first derivative", x);
                close(y2.eps.re, d1, "nested tangent", x);
                close(y2.eps.eps, d2, "nested second derivative", x);
            }
        }
    }

    #[test]
    fn stable_forms_do_not_overflow() {
        assert_eq!(sigmoid(-800.0_f64), 0.0);
        assert_eq!(sigmoid(800.0_f64), 1.0);
        assert!((UnaryFn::Softplus.value(800.0_f64) - 800.0).abs() < 1e-12);
        assert!(UnaryFn::Softplus.value(-800.0_f64) >= 0.0);
        assert!(UnaryFn::Relu.derivative(0.0_f64) == 0.0);
    }
}
