//! Models for the crate's own tests: a residual network whose weight block `W2` is used by two
//! layers (the case Section 8.1.2's per-layer products must sum over).

use super::{Activation, LayerVars, Model, ParameterBlock};
use autodiff::{Scalar, Tape, Var};

/// `a1 = tanh(x W1ᵀ + b1)`, `a2 = tanh(a1 W2ᵀ + b2)`, `r = a2 + a1` (residual),
/// `a3 = logistic(r W2ᵀ + b3)` (the same `W2`), `z = a3 W4ᵀ + b4`; widths `3 → 4 → 4 → 4 → 2`.
/// θ = `[W1 (4×3), b1, W2 (4×4), b2, b3, W4 (2×4), b4]`, 50 parameters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SharedResidual;

impl SharedResidual {
    pub(crate) const W1: std::ops::Range<usize> = 0..12;
    pub(crate) const B1: std::ops::Range<usize> = 12..16;
    pub(crate) const W2: std::ops::Range<usize> = 16..32;
    pub(crate) const B2: std::ops::Range<usize> = 32..36;
    pub(crate) const B3: std::ops::Range<usize> = 36..40;
    pub(crate) const W4: std::ops::Range<usize> = 40..48;
    pub(crate) const B4: std::ops::Range<usize> = 48..50;

    fn record<'t, T: Scalar>(
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Vec<LayerVars<'t, T>>> {
        let w1 = theta.slice(Self::W1.start, 4, 3)?;
        let b1 = theta.slice(Self::B1.start, 1, 4)?;
        let w2 = theta.slice(Self::W2.start, 4, 4)?;
        let b2 = theta.slice(Self::B2.start, 1, 4)?;
        let b3 = theta.slice(Self::B3.start, 1, 4)?;
        let w4 = theta.slice(Self::W4.start, 2, 4)?;
        let b4 = theta.slice(Self::B4.start, 1, 2)?;
        let s1 = x.affine(w1, b1)?;
        let a1 = s1.tanh()?;
        let s2 = a1.affine(w2, b2)?;
        let a2 = s2.tanh()?;
        let r = a2.add(a1)?;
        let s3 = r.affine(w2, b3)?;
        let a3 = s3.sigmoid()?;
        let s4 = a3.affine(w4, b4)?;
        let layer = |input, s, a, activation: Activation, weights, biases| LayerVars {
            input,
            s,
            a,
            activation: activation.into(),
            weights,
            biases,
        };
        Ok(vec![
            layer(x, s1, a1, Activation::Tanh, Self::W1, Self::B1),
            layer(a1, s2, a2, Activation::Tanh, Self::W2, Self::B2),
            layer(r, s3, a3, Activation::Logistic, Self::W2, Self::B3),
            layer(a3, s4, s4, Activation::Identity, Self::W4, Self::B4),
        ])
    }
}

impl Model for SharedResidual {
    fn num_params(&self) -> usize {
        50
    }

    fn forward<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        Ok(Self::record(theta, x)?[3].a)
    }

    fn forward_layers<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Option<Vec<LayerVars<'t, T>>>> {
        Self::record(theta, x).map(Some)
    }

    fn parameter_blocks(&self) -> Vec<ParameterBlock> {
        let block = |name: &str, layer, range| ParameterBlock { name: name.into(), layer, range };
        vec![
            block("W1", 1, Self::W1),
            block("b1", 1, Self::B1),
            block("W2", 2, Self::W2),
            block("b2", 2, Self::B2),
            block("b3", 3, Self::B3),
            block("W4", 4, Self::W4),
            block("b4", 4, Self::B4),
        ]
    }
}

/// The objective `h(θ) = (1/N) Σ_n ½‖f(x_n, θ) − y_n‖²` of a model written directly on the
/// tape (loss included), so that `autodiff::modes::dense_hessian` gives the Hessian by a path
/// that shares nothing with `Problem`'s products or the decomposition.
pub(crate) struct SquaredErrorObjective<'a, M> {
    pub(crate) model: &'a M,
    pub(crate) x: &'a autodiff::Matrix<f64>,
    pub(crate) y: &'a autodiff::Matrix<f64>,
}

impl<M: Model> autodiff::modes::Function for SquaredErrorObjective<'_, M> {
    fn eval<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        theta: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        let x = tape.constant_f64(self.x);
        let y = tape.constant_f64(self.y);
        let z = self.model.forward(tape, theta, x)?;
        z.sub(y)?.square()?.sum()?.scale(0.5 / self.x.rows() as f64)
    }
}
