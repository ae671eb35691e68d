//! Models `z = f(x, θ)` written on the tape: the [`Model`] trait, the layered network [`Mlp`],
//! and a layer's nonlinearity ([`Activation`], or a user's own [`Nonlinearity`]).

mod activation;
mod conv;
mod mlp;
mod nonlinearity;
#[cfg(test)]
pub(crate) mod test_models;

pub use activation::Activation;
pub use conv::ConvNet;
pub use mlp::Mlp;
pub use nonlinearity::{Elementwise, ElementwiseOp, Nonlinearity};

use autodiff::{Matrix, Scalar, Tape, Var};
use std::ops::Range;
use std::sync::Arc;

/// `z = f(x, θ)` as values: one `f64` forward pass, with no loss and no targets (for example to
/// draw targets from the model's own predictive distribution with
/// [`sample_targets`](crate::loss::sample_targets) before a [`Problem`](crate::Problem) exists).
pub fn forward_values<M: Model>(
    model: &M,
    theta: &[f64],
    x: &Matrix<f64>,
) -> crate::error::Result<Matrix<f64>> {
    if theta.len() != model.num_params() {
        return Err(crate::CurvatureError::length(
            "forward_values (θ)",
            model.num_params(),
            theta.len(),
        ));
    }
    let tape = Tape::<f64>::new();
    let th = tape.input(Matrix::column(theta.to_vec()));
    let xv = tape.constant(x.clone());
    Ok(model.forward(&tape, th, xv)?.value())
}

/// A network `z = f(x, θ)`, written once for every scalar type so that the same definition
/// gives values (`f64`), `J v` (`Dual<f64>`) and `H v` (a reverse sweep over a dual tape).
///
/// `theta` is the flat `n×1` parameter vector; `x` is the batch (`N × m_0`, one example per
/// row); the output is `N × m_ℓ`. Any such function gets every whole-matrix curvature product;
/// the per-layer decomposition of Section 8.1.2 also needs [`Model::forward_layers`].
pub trait Model {
    /// The number of parameters `n = dim θ`.
    fn num_params(&self) -> usize;

    /// Records `z = f(x, θ)` and returns `z`.
    fn forward<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>>;

    /// Records the forward pass and returns its layers (`s_i = W_i a_{i-1} + b_i`,
    /// `a_i = φ_i(s_i)`), or `None` for a model without that structure (the default).
    ///
    /// What the returned layers must satisfy (the products trust them;
    /// [`verify::check_model`](crate::verify::check_model) checks each point it can):
    /// 1. The last layer's `a` is `forward`'s output: the same values and the same `J v`
    ///    (∇h, `G v` and `F v` read `z` from the last layer, `H v` from `forward`).
    /// 2. Each `s` is `input · W_iᵀ + 1 b_iᵀ` with `W_i` (row-major `m_i × m_{i-1}`) and `b_i`
    ///    read from θ at `weights` and `biases` (e.g. by [`Var::affine`] of two
    ///    [`Var::slice`]s), both ranges inside θ; `input` may be any node (a residual sum).
    /// 3. Each `a` is `activation(s)` row by row (the same node as `s` for the identity).
    /// 4. No other op between θ, the layers and `z` is nonlinear: only sums, scalings,
    ///    slices and reshapes, so that the Hessian is exactly `G + C + Cᵀ` + the activation
    ///    term. (A multiplicative gate or a normalization outside the layers would add terms
    ///    that [`verify::check_hessian_decomposition`](crate::verify::check_hessian_decomposition)
    ///    reports as a mismatch.)
    ///
    /// Layers may share weight blocks (the same `weights` range in several layers, or ranges
    /// that overlap): their contributions add up in θ. The per-layer products
    /// (`c_vector_product(v, Some(i))`, …) split the terms by layer, not by parameter block.
    fn forward_layers<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Option<Vec<LayerVars<'t, T>>>> {
        let _ = (tape, theta, x);
        Ok(None)
    }

    /// Named ranges of θ (one per layer's `W_i` and `b_i` for a layered model), used for
    /// block-diagonal restrictions and per-block reports. Default: one block, all of θ.
    fn parameter_blocks(&self) -> Vec<ParameterBlock> {
        vec![ParameterBlock { name: "θ".into(), layer: 0, range: 0..self.num_params() }]
    }
}

/// A named contiguous range of θ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterBlock {
    /// E.g. `W1` or `b2`.
    pub name: String,
    /// The layer (1-based) the block belongs to, 0 when not layered.
    pub layer: usize,
    /// Positions in θ.
    pub range: Range<usize>,
}

/// The nodes of layer `i` of a layered forward pass, and where its parameters sit in θ.
#[derive(Clone, Debug)]
pub struct LayerVars<'t, T: Scalar> {
    /// The layer input `a_{i-1}` (`N × m_{i-1}`); `a_0 = x`.
    pub input: Var<'t, T>,
    /// The pre-activation `s_i = a_{i-1} W_iᵀ + 1 b_iᵀ` (`N × m_i`, rows are examples).
    pub s: Var<'t, T>,
    /// The output `a_i = φ_i(s_i)`; the same node as `s` for the identity.
    pub a: Var<'t, T>,
    /// φ_i, for the per-layer products (the forward pass records the op itself): a built-in
    /// `Activation::Tanh.into()`, or `Arc::new(MyNonlinearity)` for a user's own
    /// ([`Elementwise`] or [`Nonlinearity`]).
    pub activation: Arc<dyn Nonlinearity>,
    /// Positions of `vec(W_i)` (row-major `m_i × m_{i-1}`) in θ.
    pub weights: Range<usize>,
    /// Positions of `b_i` in θ.
    pub biases: Range<usize>,
}
