//! Section 12: curvature under a reparameterization `θ = ζ(γ)`.
//!
//! [`Reparameterized`] is the model `γ ↦ f(x, ζ(γ))`; a [`Problem`](crate::Problem) built on it
//! gives the curvature matrices in γ directly, and [`zeta_jacobian`] gives `J_ζ`, so that the
//! invariance condition `J_ζᵀ B_θ J_ζ = B_γ` of Section 12 can be checked for each kind. It
//! holds for the GGN, the Fisher and the empirical Fisher (they are built from `J_f`, and
//! `J_{f∘ζ} = J_f J_ζ`); for the Hessian, `H_γ = J_ζᵀ H_θ J_ζ + Σ_j [∇h]_j H_{[ζ]_j}` (Section
//! 12.1, without the stray average over S the paper's text carries), so it holds only when ζ is
//! affine or the gradient vanishes.

use crate::error::{CurvatureError, Result};
use crate::model::Model;
use autodiff::modes::{self, Function};
use autodiff::{Matrix, Scalar, Tape, Var};

/// The model `z = f(x, ζ(γ))`, whose parameters are γ.
pub struct Reparameterized<'a, M: Model, Z: Function> {
    model: &'a M,
    zeta: &'a Z,
    gamma_dim: usize,
}

impl<'a, M: Model, Z: Function> Reparameterized<'a, M, Z> {
    /// Composes `model` with `ζ: ℝ^{gamma_dim} → ℝ^n`; checks at `gamma` that ζ returns an
    /// `n×1` vector, `n` being the model's parameter count.
    pub fn new(model: &'a M, zeta: &'a Z, gamma: &[f64]) -> Result<Self> {
        let theta = modes::value(zeta, gamma)?;
        if theta.shape() != autodiff::Shape::new(model.num_params(), 1) {
            return Err(CurvatureError::Dimension {
                op: "Reparameterized::new".into(),
                expected: format!("ζ(γ) of shape {}×1", model.num_params()),
                actual: theta.shape().to_string(),
            });
        }
        Ok(Reparameterized { model, zeta, gamma_dim: gamma.len() })
    }

    /// `θ = ζ(γ)`.
    pub fn theta(&self, gamma: &[f64]) -> Result<Vec<f64>> {
        Ok(modes::value(self.zeta, gamma)?.into_vec())
    }
}

impl<M: Model, Z: Function> Model for Reparameterized<'_, M, Z> {
    fn num_params(&self) -> usize {
        self.gamma_dim
    }

    fn forward<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        gamma: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        let theta = self.zeta.eval(tape, gamma)?;
        self.model.forward(tape, theta, x)
    }
}

/// The dense Jacobian `J_ζ` (`n × dim γ`) at γ, from `dim γ` exact forward-mode products.
pub fn zeta_jacobian<Z: Function>(zeta: &Z, gamma: &[f64]) -> Result<Matrix<f64>> {
    Ok(modes::dense_jacobian(zeta, gamma)?)
}

/// `J_ζᵀ B_θ J_ζ` for a dense `B_θ` (`n×n`) and `J_ζ` (`n×k`).
pub fn pull_back(b_theta: &Matrix<f64>, j_zeta: &Matrix<f64>) -> Result<Matrix<f64>> {
    let bj = autodiff::linalg::matmul(b_theta, j_zeta)?;
    Ok(autodiff::linalg::matmul(&j_zeta.transpose(), &bj)?)
}
