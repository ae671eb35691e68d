//! A layer's nonlinearity `a_i = φ_i(s_i)`, built in or the user's own: [`Nonlinearity`] is what
//! the Section 8.1.2 activation term and [`verify::check_model`](crate::verify::check_model) need
//! of it; [`Elementwise`] is the short way to write one (φ, φ', φ'' once, generic over the
//! tape's scalar), recorded on any tape by [`Elementwise::record`].
//!
//! The forward pass records the op itself (a built-in [`Activation`](super::Activation) uses
//! the tape's fast elementwise ops, an [`Elementwise`] a [`CustomOp`]); the layer's
//! [`LayerVars::activation`](super::LayerVars::activation) only points to the nonlinearity for
//! the per-layer products, which call it once per example row. So a user's φ costs no dynamic
//! dispatch in the hot loops of the built-in activations.

use autodiff::{AutodiffError, CustomOp, Matrix, Scalar, Shape, Var};
use std::fmt;
use std::sync::Arc;

/// What a layer's nonlinearity `a = φ(s)` supplies, per example row `s ∈ ℝ^{m_i}`: its value,
/// its reverse rule, and the curvature product of Section 8.1.2's activation term.
///
/// Implemented by [`Activation`](super::Activation) (softmax included, which is not
/// elementwise) and by every [`Elementwise`]; implement it directly for a row-wise op of your
/// own. It is object safe: [`LayerVars`](super::LayerVars) holds an `Arc<dyn Nonlinearity>`.
pub trait Nonlinearity: fmt::Debug + Send + Sync {
    /// The name in reports.
    fn name(&self) -> &str;

    /// `out ← φ(s)` for one example.
    fn value(&self, s: &[f64], out: &mut [f64]);

    /// `out ← J_φ(s)ᵀ c` for one example (`c ⊙ φ'(s)` when elementwise).
    fn transpose_jacobian_vector_product(&self, s: &[f64], c: &[f64], out: &mut [f64]);

    /// `out ← Σ_j c_j H_{[φ(s)]_j} u` for one example: the Hessian in `s` of `s ↦ cᵀ φ(s)`
    /// (with `c = ∇_{a} L` held fixed) applied to `u`; `c ⊙ φ''(s) ⊙ u` when elementwise.
    fn curvature_product(&self, s: &[f64], c: &[f64], u: &[f64], out: &mut [f64]);

    /// [`curvature_product`](Self::curvature_product) given also the recorded output
    /// `a = φ(s)` of the same example, which a nonlinearity may use to avoid recomputing φ
    /// (tanh: `φ'' = −2a(1 − a²)`). Default: ignores `a`. Used by the fused `H v` of a
    /// recorded pass; an override must agree with `curvature_product` to round-off.
    fn curvature_product_with_output(
        &self,
        s: &[f64],
        a: &[f64],
        c: &[f64],
        u: &[f64],
        out: &mut [f64],
    ) {
        let _ = a;
        self.curvature_product(s, c, u, out);
    }

    /// Whether φ is the identity (no activation term; `a` may be the node `s` itself).
    fn is_identity(&self) -> bool {
        false
    }
}

/// An elementwise nonlinearity `φ: ℝ → ℝ` given by `φ`, `φ'` and `φ''`, each written once and
/// generic over the tape's scalar, so that the same definition runs on `f64` (values,
/// `Jᵀ u`), on `Dual<f64>` (`J v`) and on a dual tape (`H v`, which differentiates `φ'`).
///
/// Every `Elementwise` is a [`Nonlinearity`]; [`record`](Elementwise::record) puts `a = φ(s)`
/// on the tape as a [`CustomOp`] ([`ElementwiseOp`]). [`verify::check_model`] holds `φ'` and
/// `φ''` against differences of `φ` at the layer's own pre-activations.
///
/// # Example: `φ(s) = s + sin s`, checked against the dense Hessian
/// ```
/// use autodiff::{Scalar, Tape, Var, Matrix};
/// use curvature::loss::SquaredError;
/// use curvature::model::{Elementwise, LayerVars, Model};
/// use curvature::{verify, Activation, Problem};
///
/// /// `φ(s) = s + sin s`.
/// #[derive(Clone, Debug)]
/// struct SinPlus;
/// impl Elementwise for SinPlus {
///     fn name(&self) -> &str { "s + sin s" }
///     fn phi<T: Scalar>(&self, s: T) -> T { s + s.sin() }
///     fn dphi<T: Scalar>(&self, s: T) -> T { T::one() + s.cos() }
///     fn d2phi<T: Scalar>(&self, s: T) -> T { -s.sin() }
/// }
///
/// /// `z = φ(x W1ᵀ + b1) W2ᵀ + b2`, widths 2 → 3 → 1; θ = [W1, b1, W2, b2].
/// struct Net;
/// impl Net {
///     fn layers<'t, T: Scalar>(&self, th: Var<'t, T>, x: Var<'t, T>)
///         -> autodiff::Result<Vec<LayerVars<'t, T>>> {
///         let s1 = x.affine(th.slice(0, 3, 2)?, th.slice(6, 1, 3)?)?;
///         let a1 = SinPlus.record(s1)?;
///         let s2 = a1.affine(th.slice(9, 1, 3)?, th.slice(12, 1, 1)?)?;
///         Ok(vec![
///             LayerVars { input: x, s: s1, a: a1, activation: std::sync::Arc::new(SinPlus),
///                         weights: 0..6, biases: 6..9 },
///             LayerVars { input: a1, s: s2, a: s2, activation: Activation::Identity.into(),
///                         weights: 9..12, biases: 12..13 },
///         ])
///     }
/// }
/// impl Model for Net {
///     fn num_params(&self) -> usize { 13 }
///     fn forward<'t, T: Scalar>(&self, _: &'t Tape<T>, th: Var<'t, T>, x: Var<'t, T>)
///         -> autodiff::Result<Var<'t, T>> { Ok(self.layers(th, x)?[1].a) }
///     fn forward_layers<'t, T: Scalar>(&self, _: &'t Tape<T>, th: Var<'t, T>, x: Var<'t, T>)
///         -> autodiff::Result<Option<Vec<LayerVars<'t, T>>>> { self.layers(th, x).map(Some) }
/// }
///
/// let x = Matrix::from_fn(4, 2, |i, j| 0.4 * i as f64 - 0.7 * j as f64);
/// let y = Matrix::from_fn(4, 1, |i, _| (i as f64).cos());
/// let problem = Problem::new(&Net, &SquaredError, &x, &y)?;
/// let theta: Vec<f64> = (0..13).map(|k| 0.5 * (1.3 * k as f64).sin()).collect();
/// // The layers are consistent with `forward` and `a = φ(s)`, φ' and φ'' agree with φ ...
/// verify::check_model(&problem, &theta, 1e-8)?.assert_passed();
/// // ... and G + C + Cᵀ + activation term (with φ'' = −sin s) is the Hessian, to round-off.
/// verify::check_hessian_decomposition(&problem, &theta, 1e-10)?.assert_passed();
/// # Ok::<(), curvature::CurvatureError>(())
/// ```
///
/// [`verify::check_model`]: crate::verify::check_model
pub trait Elementwise: fmt::Debug + Send + Sync + 'static {
    /// The name in reports and tape errors.
    fn name(&self) -> &str;
    /// `φ(s)`.
    fn phi<T: Scalar>(&self, s: T) -> T;
    /// `φ'(s)`.
    fn dphi<T: Scalar>(&self, s: T) -> T;
    /// `φ''(s)`.
    fn d2phi<T: Scalar>(&self, s: T) -> T;

    /// Records `a = φ(s)` elementwise on `s`'s tape.
    fn record<'t, T: Scalar>(&self, s: Var<'t, T>) -> autodiff::Result<Var<'t, T>>
    where
        Self: Clone,
    {
        s.custom(Arc::new(ElementwiseOp(self.clone())), &[])
    }
}

impl<E: Elementwise> Nonlinearity for E {
    fn name(&self) -> &str {
        Elementwise::name(self)
    }
    fn value(&self, s: &[f64], out: &mut [f64]) {
        out.iter_mut().zip(s).for_each(|(o, &x)| *o = self.phi(x));
    }
    fn transpose_jacobian_vector_product(&self, s: &[f64], c: &[f64], out: &mut [f64]) {
        for ((o, &x), &ck) in out.iter_mut().zip(s).zip(c) {
            *o = ck * self.dphi(x);
        }
    }
    fn curvature_product(&self, s: &[f64], c: &[f64], u: &[f64], out: &mut [f64]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = c[k] * self.d2phi(s[k]) * u[k];
        }
    }
}

/// An [`Elementwise`] as a tape op: forward `φ`, reverse and tangent rules through `φ'`.
#[derive(Clone, Debug)]
pub struct ElementwiseOp<E>(pub E);

impl<E: Elementwise, T: Scalar> CustomOp<T> for ElementwiseOp<E> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn output_shape(&self, inputs: &[Shape]) -> autodiff::Result<Shape> {
        match inputs {
            [s] => Ok(*s),
            _ => Err(AutodiffError::invalid(
                self.0.name(),
                format!("an elementwise nonlinearity takes one input, got {}", inputs.len()),
            )),
        }
    }
    fn forward(&self, inputs: &[&Matrix<T>]) -> autodiff::Result<Matrix<T>> {
        Ok(inputs[0].map(|x| self.0.phi(x)))
    }
    fn transpose_jacobian_vector_product(
        &self,
        inputs: &[&Matrix<T>],
        _output: &Matrix<T>,
        cotangent: &Matrix<T>,
    ) -> autodiff::Result<Vec<Matrix<T>>> {
        let s = inputs[0];
        Ok(vec![Matrix::from_fn(s.rows(), s.cols(), |i, j| {
            cotangent[(i, j)] * self.0.dphi(s[(i, j)])
        })])
    }
    fn jacobian_vector_product(
        &self,
        inputs: &[&Matrix<T>],
        tangents: &[&Matrix<T>],
    ) -> autodiff::Result<Matrix<T>> {
        let s = inputs[0];
        Ok(Matrix::from_fn(s.rows(), s.cols(), |i, j| tangents[0][(i, j)] * self.0.dphi(s[(i, j)])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug)]
    struct Cubic;
    impl Elementwise for Cubic {
        fn name(&self) -> &str {
            "s³/3"
        }
        fn phi<T: Scalar>(&self, s: T) -> T {
            s * s * s / T::from_f64(3.0)
        }
        fn dphi<T: Scalar>(&self, s: T) -> T {
            s * s
        }
        fn d2phi<T: Scalar>(&self, s: T) -> T {
            s + s
        }
    }

    /// The tape op's forward, vjp and jvp against each other and central differences.
    #[test]
    fn elementwise_op_passes_the_custom_op_check() {
        let s = Matrix::from_fn(3, 2, |i, j| 0.4 * i as f64 - 0.9 * j as f64 + 0.1);
        autodiff::check::check_custom_op(&ElementwiseOp(Cubic), &[s], 1e-8, 3)
            .unwrap()
            .assert_passed();
    }

    /// The row rules from φ, φ', φ'' in closed form: `s³/3`, `c s²`, `2 c s u`.
    #[test]
    fn row_rules_follow_phi_and_its_derivatives() {
        let (s, c, u) = ([0.5, -1.5], [2.0, 0.25], [-1.0, 3.0]);
        let mut out = [0.0; 2];
        Nonlinearity::value(&Cubic, &s, &mut out);
        assert_eq!(out, [0.125 / 3.0, -3.375 / 3.0]);
        Nonlinearity::transpose_jacobian_vector_product(&Cubic, &s, &c, &mut out);
        assert_eq!(out, [0.5, 0.5625]);
        Nonlinearity::curvature_product(&Cubic, &s, &c, &u, &mut out);
        assert_eq!(out, [-2.0, -2.25]);
        assert!(!Nonlinearity::is_identity(&Cubic));
    }
}
