//! The eqn-6 residual `R = (1/N) Σ_n Σ_j [∇_z L_n]_j H_{[f]_j}` against a reference that shares
//! no code with the residual product.
//!
//! [`ForwardPass::ggn_residual_vector_product`](crate::ForwardPass::ggn_residual_vector_product)
//! and `H v` run through the same dual sweep, so
//! [`check_ggn_residual_identity`](super::check_ggn_residual_identity) (`H = G + R`) partly
//! checks that sweep against itself. Here `R` is instead the Hessian of the scalar
//!
//! `r(θ) = (1/N) Σ_n g_nᵀ f(x_n, θ)`, with `g_n = ∇_z L(y_n, z_n)` evaluated once at θ and held
//! constant,
//!
//! written directly on a tape ([`Function`]) and differentiated by
//! [`autodiff::modes::dense_hessian`] (`n` forward-over-reverse products
//! [`autodiff::modes::hessian_vector_product`]). Its `g_n` come from the loss's
//! [`grad_z`](crate::loss::PredictiveDistribution::grad_z) at outputs from a forward pass of
//! its own, not from the pass's cached `∇_z h`; what the two sides still share is the model's
//! `forward` and `autodiff`'s derivative rules (checked against differences by
//! [`check_model`](super::check_model) and `autodiff`'s own tests), and the loss's first
//! derivative (checked by [`check_loss`](super::check_loss)).

use super::decomposition::block_location;
use crate::error::{CurvatureError, Result};
use crate::model::{forward_values, Model};
use crate::operator::{FnOperator, LinearOperator};
use crate::problem::Problem;
use autodiff::check::{compare, CheckReport};
use autodiff::modes::{dense_hessian, Function};
use autodiff::{Matrix, Scalar, Tape, Var};

/// `θ ↦ (1/N) Σ_n g_nᵀ f(x_n, θ)` with the rows `g_n` of `weights` held constant.
struct WeightedOutput<'a, M: Model> {
    model: &'a M,
    x: &'a Matrix<f64>,
    /// `N × m_ℓ`: row n is `∇_z L(y_n, z_n)`.
    weights: Matrix<f64>,
}

impl<M: Model> Function for WeightedOutput<'_, M> {
    fn eval<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        theta: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        let z = self.model.forward(tape, theta, tape.constant_f64(self.x))?;
        let rows = self.x.rows().max(1) as f64;
        z.mul(tape.constant_f64(&self.weights))?.sum()?.scale(1.0 / rows)
    }
}

/// The dense reference residual at θ: the Hessian of `(1/N) Σ_n g_nᵀ f(x_n, θ)` with
/// `g_n = ∇_z L(y_n, z_n)` held constant.
fn reference_residual<M: Model>(problem: &Problem<'_, M>, theta: &[f64]) -> Result<Matrix<f64>> {
    let z = forward_values(problem.model, theta, problem.x)?;
    if z.rows() != problem.y.rows() {
        return Err(CurvatureError::Dimension {
            op: "check_ggn_residual".into(),
            expected: format!("one output row per target row ({})", problem.y.rows()),
            actual: z.shape().to_string(),
        });
    }
    let mut weights = Matrix::zeros(z.rows(), z.cols());
    for r in 0..z.rows() {
        problem.loss.grad_z(z.row(r), problem.y.row(r), weights.row_mut(r));
    }
    let function = WeightedOutput { model: problem.model, x: problem.x, weights };
    Ok(dense_hessian(&function, theta)?)
}

/// The eqn-6 residual `(1/N) Σ_n Σ_j [∇_z L_n]_j H_{[f]_j}` of
/// [`ForwardPass::ggn_residual_vector_product`](crate::ForwardPass::ggn_residual_vector_product)
/// at θ (built dense from `n` products) against an independent reference: the dense Hessian
/// of `θ ↦ (1/N) Σ_n g_nᵀ f(x_n, θ)` with `g_n = ∇_z L` held constant, by
/// `autodiff::modes::dense_hessian` on that expression written directly on a tape (see the
/// module docs for what the two share). Any model; a failed entry is named by the model's
/// parameter blocks. Both sides are exact: a tolerance of about `1e-10` (norm-wise relative).
/// Cost: `2n` second-order products; for small models.
pub fn check_ggn_residual<M: Model>(
    problem: &Problem<'_, M>,
    theta: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    let pass = problem.at(theta)?;
    let residual = FnOperator::new(pass.dim(), |v| pass.ggn_residual_vector_product(v));
    check_ggn_residual_operator(problem, theta, &residual, tolerance)
}

/// As [`check_ggn_residual`], for any operator claimed to be the eqn-6 residual of `problem`
/// at θ (e.g. a residual product of your own): its dense matrix against the same independent
/// reference. Errors if `residual`'s dimension is not the problem's number of parameters.
pub fn check_ggn_residual_operator<M: Model>(
    problem: &Problem<'_, M>,
    theta: &[f64],
    residual: &dyn LinearOperator,
    tolerance: f64,
) -> Result<CheckReport> {
    let n = problem.dim();
    if theta.len() != n {
        return Err(CurvatureError::length("check_ggn_residual (θ)", n, theta.len()));
    }
    if residual.dim() != n {
        return Err(CurvatureError::length("check_ggn_residual (operator)", n, residual.dim()));
    }
    let computed = residual.to_dense()?;
    let reference = reference_residual(problem, theta)?;
    let mut report = compare(
        "eqn-6 residual vs Hessian of mean g_nᵀ f(x_n, θ) (g_n = ∇_z L held constant)",
        computed.data(),
        reference.data(),
        tolerance,
    )?;
    report.location = Some(block_location(&problem.model.parameter_blocks(), n, report.at));
    Ok(report)
}
