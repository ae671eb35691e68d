//! Models for the crate's own tests: a residual network whose weight block `W2` is used by two
//! layers (the case Section 8.1.2's per-layer products must sum over), one of them with a
//! user-defined nonlinearity, and faults to plant in it.

use super::{Activation, Elementwise, LayerVars, Model, Nonlinearity, ParameterBlock};
use autodiff::{Scalar, Tape, Var};
use std::sync::Arc;

/// `φ(s) = s + sin s`, with `φ''` optionally wrong by a factor 1.01.
#[derive(Clone, Debug)]
pub(crate) struct SinPlus {
    pub(crate) wrong_second_derivative: bool,
}

impl Elementwise for SinPlus {
    fn name(&self) -> &str {
        "s + sin s"
    }
    fn phi<T: Scalar>(&self, s: T) -> T {
        s + s.sin()
    }
    fn dphi<T: Scalar>(&self, s: T) -> T {
        T::one() + s.cos()
    }
    fn d2phi<T: Scalar>(&self, s: T) -> T {
        let factor = if self.wrong_second_derivative { 1.01 } else { 1.0 };
        -s.sin() * T::from_f64(factor)
    }
}

/// A mistake to plant in [`SharedResidual`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Fault {
    #[default]
    None,
    /// `forward` applies `tanh` to the output the layers end with.
    ForwardDiffers,
    /// Layer 2 declares `logistic` but records `tanh`.
    WrongActivation,
    /// Layer 3 declares its weights at `W1`'s range (it reads `W2`).
    WrongWeights,
    /// Layer 3 declares weights running past the end of θ.
    WeightsOutsideTheta,
    /// Layer 3's `φ''` is off by 1%.
    WrongSecondDerivative,
    /// `parameter_blocks` lists `W2` twice.
    OverlappingBlocks,
    /// A hidden nonlinearity: the residual is `a2 ⊙ a1 + a1` (a product no layer declares).
    HiddenProduct,
}

/// `a1 = tanh(x W1ᵀ + b1)`, `a2 = tanh(a1 W2ᵀ + b2)`, `r = a2 + a1` (residual),
/// `a3 = φ(r W2ᵀ + b3)` (the same `W2`, φ = `s + sin s`), `z = a3 W4ᵀ + b4`; widths
/// `3 → 4 → 4 → 4 → 2`. θ = `[W1 (4×3), b1, W2 (4×4), b2, b3, W4 (2×4), b4]`, 50 parameters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SharedResidual {
    pub(crate) fault: Fault,
}

impl SharedResidual {
    pub(crate) const W1: std::ops::Range<usize> = 0..12;
    pub(crate) const B1: std::ops::Range<usize> = 12..16;
    pub(crate) const W2: std::ops::Range<usize> = 16..32;
    pub(crate) const B2: std::ops::Range<usize> = 32..36;
    pub(crate) const B3: std::ops::Range<usize> = 36..40;
    pub(crate) const W4: std::ops::Range<usize> = 40..48;
    pub(crate) const B4: std::ops::Range<usize> = 48..50;

    pub(crate) fn with(fault: Fault) -> Self {
        SharedResidual { fault }
    }

    fn record<'t, T: Scalar>(
        &self,
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
        let phi3 = SinPlus { wrong_second_derivative: self.fault == Fault::WrongSecondDerivative };
        let s1 = x.affine(w1, b1)?;
        let a1 = s1.tanh()?;
        let s2 = a1.affine(w2, b2)?;
        let a2 = s2.tanh()?;
        let r = if self.fault == Fault::HiddenProduct { a2.mul(a1)?.add(a1)? } else { a2.add(a1)? };
        let s3 = r.affine(w2, b3)?;
        let a3 = phi3.record(s3)?;
        let s4 = a3.affine(w4, b4)?;
        let layer = |input, s, a, activation: Arc<dyn Nonlinearity>, weights, biases| LayerVars {
            input,
            s,
            a,
            activation,
            weights,
            biases,
        };
        let declared2 = if self.fault == Fault::WrongActivation {
            Activation::Logistic
        } else {
            Activation::Tanh
        };
        let weights3 = match self.fault {
            Fault::WrongWeights => 4..20,
            Fault::WeightsOutsideTheta => 40..56,
            _ => Self::W2,
        };
        Ok(vec![
            layer(x, s1, a1, Activation::Tanh.into(), Self::W1, Self::B1),
            layer(a1, s2, a2, declared2.into(), Self::W2, Self::B2),
            layer(r, s3, a3, Arc::new(phi3), weights3, Self::B3),
            layer(a3, s4, s4, Activation::Identity.into(), Self::W4, Self::B4),
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
        let z = self.record(theta, x)?[3].a;
        if self.fault == Fault::ForwardDiffers {
            z.tanh()
        } else {
            Ok(z)
        }
    }

    fn forward_layers<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Option<Vec<LayerVars<'t, T>>>> {
        self.record(theta, x).map(Some)
    }

    fn parameter_blocks(&self) -> Vec<ParameterBlock> {
        let block = |name: &str, layer, range| ParameterBlock { name: name.into(), layer, range };
        let mut blocks = vec![
            block("W1", 1, Self::W1),
            block("b1", 1, Self::B1),
            block("W2", 2, Self::W2),
            block("b2", 2, Self::B2),
            block("b3", 3, Self::B3),
            block("W4", 4, Self::W4),
            block("b4", 4, Self::B4),
        ];
        if self.fault == Fault::OverlappingBlocks {
            blocks.push(block("W3", 3, Self::W2));
        }
        blocks
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
