//! Theorem 3's closed forms, in the eigenbasis of `P = B⁻¹H*` (see [`super::QuadraticProblem`]).

use super::QuadraticProblem;
use crate::error::Result;
use crate::schedule::Schedule;
use autodiff::linalg::matvec;
use autodiff::Matrix;

/// `E[θ_k] = θ* + Π_{j<k} (I − α_j P) (θ_0 − θ*)`, via `W Π(1 − α_j D) W⁻¹`.
pub fn mean(problem: &QuadraticProblem, steps: Schedule, k: usize) -> Result<Vec<f64>> {
    let e0: Vec<f64> = problem.theta0.iter().zip(&problem.theta_star).map(|(a, b)| a - b).collect();
    let mut c = matvec(&problem.basis.w_inv, &e0)?;
    for (i, ci) in c.iter_mut().enumerate() {
        let factor: f64 = (0..k).map(|j| 1.0 - steps.step_size(j) * problem.basis.d[i]).product();
        *ci *= factor;
    }
    let e = matvec(&problem.basis.w, &c)?;
    Ok(e.iter().zip(&problem.theta_star).map(|(a, b)| a + b).collect())
}

/// Constant `α` (Theorem 3, first part; needs `αλ₁(P) ≤ 1`):
/// `V_k = (I − Λ^k)(V_∞)`, `V_∞ = α²(I − Λ)⁻¹(U)`, `Λ = Ψ_α`; entry-wise in the eigenbasis,
/// `Ṽ_∞,ij = α² Ũ_ij / (1 − (1 − αd_i)(1 − αd_j))`.
pub fn variance_constant(problem: &QuadraticProblem, alpha: f64, k: usize) -> Result<Matrix<f64>> {
    variance_constant_in_basis(problem, alpha, Some(k))
}

/// The stationary variance `V_∞ = α²(I − Ψ_α)⁻¹(U)` for a constant step.
pub fn variance_limit(problem: &QuadraticProblem, alpha: f64) -> Result<Matrix<f64>> {
    variance_constant_in_basis(problem, alpha, None)
}

fn variance_constant_in_basis(
    problem: &QuadraticProblem,
    alpha: f64,
    k: Option<usize>,
) -> Result<Matrix<f64>> {
    problem.check_conditions("Theorem 3", Schedule::Constant(alpha), false)?;
    let u = problem.in_basis(&problem.u());
    let d = &problem.basis.d;
    let n = problem.dim();
    let v = Matrix::from_fn(n, n, |i, j| {
        let lam = (1.0 - alpha * d[i]) * (1.0 - alpha * d[j]);
        let v_inf = alpha * alpha * u[(i, j)] / (1.0 - lam);
        match k {
            Some(k) => (1.0 - lam.powf(k as f64)) * v_inf,
            None => v_inf,
        }
    });
    Ok(problem.out_of_basis(&v))
}

/// Decaying `α_k = 1/(k + a + 1)` (Theorem 3, second part; needs `a ≥ 1`, `λ_n(P) > ½`,
/// `λ₁(P) ≤ a + 1`): the leading term `V_k ≈ (1/(k + a)) (Ξ − I)⁻¹(U)`, entry-wise
/// `Ũ_ij / ((d_i + d_j − 1)(k + a))`. The theorem's remainder `E_k` shrinks as `1/k²`.
pub fn variance_decaying_leading(
    problem: &QuadraticProblem,
    a: f64,
    k: usize,
) -> Result<Matrix<f64>> {
    problem.check_conditions("Theorem 3", Schedule::Shifted(a), false)?;
    let u = problem.in_basis(&problem.u());
    let d = &problem.basis.d;
    let n = problem.dim();
    let v = Matrix::from_fn(n, n, |i, j| u[(i, j)] / ((d[i] + d[j] - 1.0) * (k as f64 + a)));
    Ok(problem.out_of_basis(&v))
}
