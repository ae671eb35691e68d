//! Products of a [`Problem`] against central differences and the adjoint identity.

use crate::error::Result;
use crate::model::Model;
use crate::problem::Problem;
use autodiff::check::{central_difference, compare, CheckReport};
use autodiff::Matrix;

fn shifted(theta: &[f64], v: &[f64], t: f64) -> Vec<f64> {
    theta.iter().zip(v).map(|(a, b)| a + t * b).collect()
}

/// Step `1e-3` relative to the scales of θ and v (Richardson-extrapolated central differences).
fn step(theta: &[f64], v: &[f64]) -> f64 {
    let ts = theta.iter().fold(1.0_f64, |m, x| m.max(x.abs()));
    let vs = v.iter().fold(1e-300_f64, |m, x| m.max(x.abs()));
    1e-3 * ts / vs
}

/// `∇h` against central differences of `h` along each coordinate (`4n` loss evaluations).
pub fn check_gradient<M: Model>(
    problem: &Problem<'_, M>,
    theta: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    let gradient = problem.at(theta)?.gradient()?;
    let mut reference = Vec::with_capacity(theta.len());
    let mut e = vec![0.0; theta.len()];
    for j in 0..theta.len() {
        e[j] = 1.0;
        let d = central_difference(step(theta, &e), |t| {
            let pass = problem.at(&shifted(theta, &e, t)).map_err(to_autodiff)?;
            Ok(vec![pass.loss().map_err(to_autodiff)?])
        })?;
        e[j] = 0.0;
        reference.push(d[0]);
    }
    Ok(compare("gradient vs central differences", &gradient, &reference, tolerance)?)
}

/// `J v` against central differences of the output `f(x, θ + t v)`.
pub fn check_jacobian_vector_product<M: Model>(
    problem: &Problem<'_, M>,
    theta: &[f64],
    v: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    let jv = problem.at(theta)?.jacobian_vector_product(v)?;
    let reference = central_difference(step(theta, v), |t| {
        let pass = problem.at(&shifted(theta, v, t)).map_err(to_autodiff)?;
        Ok(pass.output().data().to_vec())
    })?;
    Ok(compare("J v vs central differences", jv.data(), &reference, tolerance)?)
}

/// The adjoint identity `⟨u, J v⟩ = ⟨Jᵀ u, v⟩` between the tangent and reverse sweeps,
/// relative to `Σ|u_i (J v)_i| + Σ|(Jᵀu)_i v_i|` (round-off tier).
pub fn check_adjoint<M: Model>(
    problem: &Problem<'_, M>,
    theta: &[f64],
    u: &Matrix<f64>,
    v: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    let pass = problem.at(theta)?;
    let jv = pass.jacobian_vector_product(v)?;
    let jtu = pass.transpose_jacobian_vector_product(u)?;
    let lhs: f64 = u.data().iter().zip(jv.data()).map(|(a, b)| a * b).sum();
    let rhs: f64 = jtu.iter().zip(v).map(|(a, b)| a * b).sum();
    let scale: f64 = u.data().iter().zip(jv.data()).map(|(a, b)| (a * b).abs()).sum::<f64>()
        + jtu.iter().zip(v).map(|(a, b)| (a * b).abs()).sum::<f64>();
    let mut report = compare("⟨u, J v⟩ vs ⟨Jᵀ u, v⟩", &[rhs], &[lhs], tolerance)?;
    report.max_rel_error = (lhs - rhs).abs() / scale.max(1e-300);
    Ok(report)
}

/// `H v` against central differences of the gradient along `v`.
pub fn check_hessian_vector_product<M: Model>(
    problem: &Problem<'_, M>,
    theta: &[f64],
    v: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    let hv = problem.at(theta)?.hessian_vector_product(v)?;
    let reference = central_difference(step(theta, v), |t| {
        problem.at(&shifted(theta, v, t)).and_then(|p| p.gradient()).map_err(to_autodiff)
    })?;
    Ok(compare("H v vs central differences of the gradient", &hv, &reference, tolerance)?)
}

fn to_autodiff(e: crate::CurvatureError) -> autodiff::AutodiffError {
    match e {
        crate::CurvatureError::Autodiff(inner) => inner,
        other => autodiff::AutodiffError::invalid("curvature", other.to_string()),
    }
}
