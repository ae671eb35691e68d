//! [`Activation`]: the φ_i of a layer, with the curvature product the Section 8.1.2 term needs.

use super::Nonlinearity;
use crate::error::{CurvatureError, Result};
use autodiff::op::softmax;
use autodiff::{Scalar, UnaryFn, Var};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

/// The activation `a_i = φ_i(s_i)` of a layer (Section 2).
///
/// The elementwise ones reuse [`UnaryFn`]'s rules (`φ`, `φ'`, `φ''` written once in `autodiff`);
/// `Softmax` acts on a whole row and may only be the last layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `φ(s) = s`.
    Identity,
    /// `φ(s) = tanh s`.
    Tanh,
    /// `φ(s) = 1 / (1 + e⁻ˢ)`.
    Logistic,
    /// `φ(s) = max(s, 0)`.
    Relu,
    /// `φ(s) = ln(1 + eˢ)`.
    Softplus,
    /// `φ(s)_j = e^{s_j} / Σ_k e^{s_k}` over a row (last layer only).
    Softmax,
}

impl Activation {
    /// Every activation, in a fixed order (for tests and help texts).
    pub const ALL: [Activation; 6] = [
        Activation::Identity,
        Activation::Tanh,
        Activation::Logistic,
        Activation::Relu,
        Activation::Softplus,
        Activation::Softmax,
    ];

    /// The elementwise rule, or `None` for softmax.
    pub fn unary(self) -> Option<UnaryFn> {
        match self {
            Activation::Identity => Some(UnaryFn::Identity),
            Activation::Tanh => Some(UnaryFn::Tanh),
            Activation::Logistic => Some(UnaryFn::Sigmoid),
            Activation::Relu => Some(UnaryFn::Relu),
            Activation::Softplus => Some(UnaryFn::Softplus),
            Activation::Softmax => None,
        }
    }

    /// The name used on command lines and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Tanh => "tanh",
            Activation::Logistic => "logistic",
            Activation::Relu => "relu",
            Activation::Softplus => "softplus",
            Activation::Softmax => "softmax",
        }
    }

    /// Records `a = φ(s)` on the tape; the identity records nothing and returns `s`.
    pub fn apply<'t, T: Scalar>(self, s: Var<'t, T>) -> autodiff::Result<Var<'t, T>> {
        match self {
            Activation::Identity => Ok(s),
            Activation::Softmax => s.softmax(),
            other => s.apply(other.unary().expect("elementwise activation")),
        }
    }

    /// `φ'(s)` elementwise (not defined for softmax, whose Jacobian is not diagonal).
    pub fn derivative(self, s: f64) -> Option<f64> {
        self.unary().map(|f| f.derivative(s))
    }
}

/// The built-in activations as layer nonlinearities: the elementwise ones through
/// [`UnaryFn`]'s rules, softmax by its row formulas.
impl Nonlinearity for Activation {
    fn name(&self) -> &str {
        Activation::name(*self)
    }

    fn value(&self, s: &[f64], out: &mut [f64]) {
        match self.unary() {
            Some(f) => out.iter_mut().zip(s).for_each(|(o, &x)| *o = f.value(x)),
            None => softmax::softmax_rows(s, s.len(), out),
        }
    }

    /// Elementwise `c ⊙ φ'(s)`; softmax `p ⊙ (c − cᵀp)`.
    fn transpose_jacobian_vector_product(&self, s: &[f64], c: &[f64], out: &mut [f64]) {
        match self.unary() {
            Some(f) => {
                for k in 0..s.len() {
                    out[k] = c[k] * f.derivative(s[k]);
                }
            }
            None => {
                softmax::softmax_rows(s, s.len(), out);
                softmax::softmax_jacobian_rows(out, c, s.len());
            }
        }
    }

    /// Elementwise `c ⊙ φ''(s) ⊙ u`. Softmax, with `p = φ(s)`, `ṗ = p ⊙ (u − pᵀu)`:
    /// `ṗ ⊙ (c − cᵀp) − p (cᵀṗ)`, the derivative along `u` of `∇_s (cᵀp) = p ⊙ (c − cᵀp)`.
    fn curvature_product(&self, s: &[f64], c: &[f64], u: &[f64], out: &mut [f64]) {
        match self.unary() {
            Some(f) => {
                for k in 0..s.len() {
                    out[k] = c[k] * f.second_derivative(s[k]) * u[k];
                }
            }
            None => {
                let p = softmax::softmax(s);
                softmax::softmax_second_rows(&p, c, u, s.len(), out);
            }
        }
    }

    /// From the recorded `a = φ(s)` where that saves evaluating φ again: tanh
    /// `φ'' = −2a(1 − a²)`, logistic `φ'' = a(1 − a)(1 − 2a)`, softmax with `p = a`; identity
    /// and ReLU `φ'' = 0`; softplus from `s`.
    fn curvature_product_with_output(
        &self,
        s: &[f64],
        a: &[f64],
        c: &[f64],
        u: &[f64],
        out: &mut [f64],
    ) {
        match self {
            Activation::Tanh => {
                for k in 0..s.len() {
                    out[k] = c[k] * (-2.0 * a[k] * (1.0 - a[k] * a[k])) * u[k];
                }
            }
            Activation::Logistic => {
                for k in 0..s.len() {
                    out[k] = c[k] * (a[k] * (1.0 - a[k]) * (1.0 - 2.0 * a[k])) * u[k];
                }
            }
            Activation::Identity | Activation::Relu => out.iter_mut().for_each(|o| *o = 0.0),
            Activation::Softmax => softmax::softmax_second_rows(a, c, u, s.len(), out),
            Activation::Softplus => self.curvature_product(s, c, u, out),
        }
    }

    fn is_identity(&self) -> bool {
        *self == Activation::Identity
    }
}

/// A built-in activation for [`LayerVars::activation`](super::LayerVars::activation): one
/// shared `Arc` per activation, so a forward pass clones a pointer and allocates nothing.
impl From<Activation> for Arc<dyn Nonlinearity> {
    fn from(activation: Activation) -> Self {
        static SHARED: LazyLock<[Arc<dyn Nonlinearity>; 6]> =
            LazyLock::new(|| Activation::ALL.map(|a| Arc::new(a) as Arc<dyn Nonlinearity>));
        let index = Activation::ALL.iter().position(|&a| a == activation).unwrap_or(0);
        SHARED[index].clone()
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = CurvatureError;

    /// Parses `identity`, `linear`, `tanh`, `logistic`, `sigmoid`, `relu`, `softplus`, `softmax`.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "identity" | "linear" => Activation::Identity,
            "tanh" => Activation::Tanh,
            "logistic" | "sigmoid" => Activation::Logistic,
            "relu" => Activation::Relu,
            "softplus" => Activation::Softplus,
            "softmax" => Activation::Softmax,
            other => {
                return Err(CurvatureError::invalid(
                    "Activation::from_str",
                    format!("unknown activation '{other}' (expected identity, tanh, logistic, relu, softplus or softmax)"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The curvature product from the recorded output `a = φ(s)` (what the fused `H v` uses)
    /// equals the one from `s` alone, to 1e-14 of the largest entry, for every activation.
    #[test]
    fn curvature_product_with_output_matches_the_product_from_s() {
        let s = [0.3, -1.2, 0.8, 2.0, -3.5];
        let c = [0.5, -0.7, 1.1, 0.2, 0.9];
        let u = [1.0, 0.4, -0.3, 0.9, -1.3];
        for act in Activation::ALL {
            let mut a = [0.0; 5];
            act.value(&s, &mut a);
            let (mut from_s, mut from_a) = ([0.0; 5], [f64::NAN; 5]);
            act.curvature_product(&s, &c, &u, &mut from_s);
            act.curvature_product_with_output(&s, &a, &c, &u, &mut from_a);
            let scale = from_s.iter().fold(1e-300_f64, |m, x| m.max(x.abs()));
            for (x, y) in from_s.iter().zip(&from_a) {
                assert!((x - y).abs() <= 1e-14 * scale, "{act}: {from_s:?} vs {from_a:?}");
            }
        }
    }

    /// The curvature product against central differences of the gradient
    /// `∇_s (cᵀφ(s))`, written here independently: `c ⊙ φ'(s)` or `p ⊙ (c − cᵀp)`.
    #[test]
    fn curvature_product_matches_differences_of_the_gradient() {
        let s = [0.3, -1.2, 0.8, 2.0];
        let c = [0.5, -0.7, 1.1, 0.2];
        let u = [1.0, 0.4, -0.3, 0.9];
        let grad = |act: Activation, s: &[f64]| -> Vec<f64> {
            match act {
                Activation::Softmax => {
                    let total: f64 = s.iter().map(|v| v.exp()).sum();
                    let p: Vec<f64> = s.iter().map(|v| v.exp() / total).collect();
                    let cp: f64 = c.iter().zip(&p).map(|(a, b)| a * b).sum();
                    p.iter().zip(&c).map(|(pk, ck)| pk * (ck - cp)).collect()
                }
                Activation::Tanh => s.iter().zip(&c).map(|(x, ck)| ck / x.cosh().powi(2)).collect(),
                Activation::Logistic => s
                    .iter()
                    .zip(&c)
                    .map(|(x, ck)| {
                        let e = (-x).exp();
                        ck * e / (1.0 + e).powi(2)
                    })
                    .collect(),
                Activation::Softplus => {
                    s.iter().zip(&c).map(|(x, ck)| ck / (1.0 + (-x).exp())).collect()
                }
                Activation::Relu => {
                    s.iter().zip(&c).map(|(x, ck)| if *x > 0.0 { *ck } else { 0.0 }).collect()
                }
                Activation::Identity => c.to_vec(),
            }
        };
        for act in Activation::ALL {
            let mut out = [0.0; 4];
            Nonlinearity::curvature_product(&act, &s, &c, &u, &mut out);
            let h = 1e-4;
            for k in 0..4 {
                let at = |t: f64| -> f64 {
                    let shifted: Vec<f64> = s.iter().zip(&u).map(|(a, b)| a + t * b).collect();
                    grad(act, &shifted)[k]
                };
                // Richardson-extrapolated central difference; tier 1e-9 absolute at O(1) values.
                let d = |h: f64| (at(h) - at(-h)) / (2.0 * h);
                let fd = (4.0 * d(h / 2.0) - d(h)) / 3.0;
                assert!((out[k] - fd).abs() < 1e-9, "{act} component {k}: {} vs {fd}", out[k]);
            }
        }
    }

    /// `value` against closed forms and `vjp` against central differences of `cᵀφ(s)`.
    #[test]
    fn value_and_vjp_match_closed_forms_and_differences() {
        let s = [0.3, -1.2, 0.8, 2.0];
        let c = [0.5, -0.7, 1.1, 0.2];
        let total: f64 = s.iter().map(|v: &f64| v.exp()).sum();
        for act in Activation::ALL {
            let mut phi = [0.0; 4];
            Nonlinearity::value(&act, &s, &mut phi);
            for k in 0..4 {
                let expected = match act {
                    Activation::Identity => s[k],
                    Activation::Tanh => s[k].tanh(),
                    Activation::Logistic => 1.0 / (1.0 + (-s[k]).exp()),
                    Activation::Relu => s[k].max(0.0),
                    Activation::Softplus => s[k].exp().ln_1p(),
                    Activation::Softmax => s[k].exp() / total,
                };
                assert!((phi[k] - expected).abs() < 1e-15, "{act} φ component {k}");
            }
            let mut vjp = [0.0; 4];
            Nonlinearity::transpose_jacobian_vector_product(&act, &s, &c, &mut vjp);
            for k in 0..4 {
                let at = |t: f64| {
                    let mut shifted = s;
                    shifted[k] += t;
                    let mut out = [0.0; 4];
                    Nonlinearity::value(&act, &shifted, &mut out);
                    c.iter().zip(&out).map(|(a, b)| a * b).sum::<f64>()
                };
                let d = |h: f64| (at(h) - at(-h)) / (2.0 * h);
                let fd = (4.0 * d(5e-5) - d(1e-4)) / 3.0;
                assert!((vjp[k] - fd).abs() < 1e-9, "{act} vjp component {k}: {} vs {fd}", vjp[k]);
            }
        }
        assert!(Activation::Identity.is_identity() && !Activation::Tanh.is_identity());
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for act in Activation::ALL {
            assert_eq!(act.name().parse::<Activation>().unwrap(), act);
        }
        let err = "swish".parse::<Activation>().unwrap_err();
        assert!(err.to_string().contains("unknown activation 'swish'"), "{err}");
    }
}
