//! Gaussian predictive distributions: mean only, natural parameters, and mean with log-variance.

use super::PredictiveDistribution;
use crate::error::{CurvatureError, Result};
use autodiff::random::standard_normal;
use rand::RngCore;

/// `R_{y|z} = N(z, I)`: `L = ½‖y − z‖²` (the constant `(m/2) ln 2π` dropped), `∇_z L = z − y`,
/// `H_L = F_R = I`. `z` is the natural parameter (Section 9.2).
#[derive(Clone, Copy, Debug, Default)]
pub struct SquaredError;

impl PredictiveDistribution for SquaredError {
    fn name(&self) -> &str {
        "squared_error"
    }
    fn target_dim(&self, output_dim: usize) -> Result<usize> {
        Ok(output_dim)
    }
    /// Finite targets ([`finite_target`](super::finite_target)).
    fn check_target(&self, y: &[f64]) -> std::result::Result<(), super::TargetIssue> {
        super::finite_target(y)
    }
    fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
        0.5 * z.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>()
    }
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
        for ((o, a), b) in out.iter_mut().zip(z).zip(y) {
            *o = a - b;
        }
    }
    fn apply_h_l(&self, _z: &[f64], _y: &[f64], u: &[f64], out: &mut [f64]) {
        out.copy_from_slice(u);
    }
    fn apply_f_r(&self, _z: &[f64], u: &[f64], out: &mut [f64]) {
        out.copy_from_slice(u);
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y: &mut [f64]) {
        for (t, m) in y.iter_mut().zip(z) {
            *t = m + standard_normal(rng);
        }
    }
    fn is_natural_parameter(&self) -> bool {
        true
    }
}

/// A Gaussian per target dimension in natural parameters: `z = (η₁, η₂)` (first `d` columns
/// `η₁ = μ/σ²`, last `d` columns the precision `η₂ = 1/σ² > 0`), sufficient statistics
/// `(y, −y²/2)`, so `log r = η₁y − η₂y²/2 − A(η)` with `A = η₁²/(2η₂) − ½ ln η₂` (the
/// `½ ln 2π` dropped). Then `L = A − η₁y + η₂y²/2`, `H_L = F_R = ∇²A`, independent of `y`:
/// `∂²A/∂η₁² = 1/η₂`, `∂²A/∂η₁∂η₂ = −η₁/η₂²`, `∂²A/∂η₂² = η₁²/η₂³ + 1/(2η₂²)`.
/// Outputs with `η₂ ≤ 0` are outside the domain and rejected by the batch helpers.
#[derive(Clone, Copy, Debug, Default)]
pub struct GaussianNatural;

fn halves(z: &[f64]) -> (&[f64], &[f64]) {
    z.split_at(z.len() / 2)
}

fn even_target(name: &str, output_dim: usize) -> Result<usize> {
    if output_dim == 0 || !output_dim.is_multiple_of(2) {
        return Err(CurvatureError::invalid(
            format!("{name}::target_dim"),
            format!("needs an even, non-zero number of outputs (two per target), got {output_dim}"),
        ));
    }
    Ok(output_dim / 2)
}

impl PredictiveDistribution for GaussianNatural {
    fn name(&self) -> &str {
        "gaussian_natural"
    }
    fn target_dim(&self, output_dim: usize) -> Result<usize> {
        even_target("gaussian_natural", output_dim)
    }
    fn check_output(&self, z: &[f64]) -> Result<()> {
        let (_, precision) = halves(z);
        match precision.iter().position(|&p| !(p > 0.0 && p.is_finite())) {
            Some(j) => Err(CurvatureError::invalid(
                "gaussian_natural",
                format!(
                    "precision η₂ must be positive and finite, got {} at output {}",
                    precision[j],
                    j + precision.len()
                ),
            )),
            None => Ok(()),
        }
    }
    /// Finite targets ([`finite_target`](super::finite_target)).
    fn check_target(&self, y: &[f64]) -> std::result::Result<(), super::TargetIssue> {
        super::finite_target(y)
    }
    fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
        let (e1, e2) = halves(z);
        (0..y.len())
            .map(|j| {
                e1[j] * e1[j] / (2.0 * e2[j]) - 0.5 * e2[j].ln() - e1[j] * y[j]
                    + 0.5 * e2[j] * y[j] * y[j]
            })
            .sum()
    }
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
        let (e1, e2) = halves(z);
        let d = y.len();
        for j in 0..d {
            out[j] = e1[j] / e2[j] - y[j];
            out[d + j] = -e1[j] * e1[j] / (2.0 * e2[j] * e2[j]) - 0.5 / e2[j] + 0.5 * y[j] * y[j];
        }
    }
    fn apply_h_l(&self, z: &[f64], _y: &[f64], u: &[f64], out: &mut [f64]) {
        self.apply_f_r(z, u, out);
    }
    fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]) {
        let (e1, e2) = halves(z);
        let d = e1.len();
        for j in 0..d {
            let (a, b) = (e1[j], e2[j]);
            let h11 = 1.0 / b;
            let h12 = -a / (b * b);
            let h22 = a * a / (b * b * b) + 0.5 / (b * b);
            out[j] = h11 * u[j] + h12 * u[d + j];
            out[d + j] = h12 * u[j] + h22 * u[d + j];
        }
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y: &mut [f64]) {
        let (e1, e2) = halves(z);
        for j in 0..y.len() {
            y[j] = e1[j] / e2[j] + standard_normal(rng) / e2[j].sqrt();
        }
    }
    fn is_natural_parameter(&self) -> bool {
        true
    }
}

/// `R_{y|z} = N(μ, e^γ)` per target dimension with `z = (μ, γ)` (first `d` columns `μ`, last `d`
/// columns `γ = ln σ²`): `L = ½(y − μ)² e^{−γ} + ½γ` (the `½ ln 2π` dropped).
///
/// `H_L = [[e^{−γ}, (y − μ)e^{−γ}], [(y − μ)e^{−γ}, ½(y − μ)²e^{−γ}]]` per dimension, which is
/// indefinite e.g. at `y = 2, μ = γ = 0` (`[[1, 2], [2, 2]]`), while `F_R = diag(e^{−γ}, ½)` is
/// positive definite: `z` is not a natural parameter, and the GGN is not a Fisher (Section 9.2).
///
/// Range: `e^{−γ}` overflows for `γ < −709.78` (`ln f64::MAX`), where the loss is infinite;
/// with the [finite checks](crate::checks) on, [`ForwardPass::loss`](crate::ForwardPass::loss)
/// reports it as a [`NonFinite`](crate::CurvatureError::NonFinite) loss naming the row.
#[derive(Clone, Copy, Debug, Default)]
pub struct GaussianMeanLogVar;

impl PredictiveDistribution for GaussianMeanLogVar {
    fn name(&self) -> &str {
        "gaussian_mean_logvar"
    }
    fn target_dim(&self, output_dim: usize) -> Result<usize> {
        even_target("gaussian_mean_logvar", output_dim)
    }
    /// Finite targets ([`finite_target`](super::finite_target)).
    fn check_target(&self, y: &[f64]) -> std::result::Result<(), super::TargetIssue> {
        super::finite_target(y)
    }
    fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
        let (mu, g) = halves(z);
        (0..y.len()).map(|j| 0.5 * (y[j] - mu[j]).powi(2) * (-g[j]).exp() + 0.5 * g[j]).sum()
    }
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
        let (mu, g) = halves(z);
        let d = y.len();
        for j in 0..d {
            let (r, w) = (y[j] - mu[j], (-g[j]).exp());
            out[j] = -r * w;
            out[d + j] = 0.5 - 0.5 * r * r * w;
        }
    }
    fn apply_h_l(&self, z: &[f64], y: &[f64], u: &[f64], out: &mut [f64]) {
        let (mu, g) = halves(z);
        let d = y.len();
        for j in 0..d {
            let (r, w) = (y[j] - mu[j], (-g[j]).exp());
            let (h11, h12, h22) = (w, r * w, 0.5 * r * r * w);
            out[j] = h11 * u[j] + h12 * u[d + j];
            out[d + j] = h12 * u[j] + h22 * u[d + j];
        }
    }
    fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]) {
        let (_, g) = halves(z);
        let d = g.len();
        for j in 0..d {
            out[j] = (-g[j]).exp() * u[j];
            out[d + j] = 0.5 * u[d + j];
        }
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y: &mut [f64]) {
        let (mu, g) = halves(z);
        for j in 0..y.len() {
            y[j] = mu[j] + (0.5 * g[j]).exp() * standard_normal(rng);
        }
    }
    fn is_natural_parameter(&self) -> bool {
        false
    }
}
