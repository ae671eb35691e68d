//! The exact step-by-step evolution of the first two moments (dense matrices, original basis).

use super::{QuadraticProblem, Trajectory};
use crate::error::Result;
use crate::schedule::Schedule;
use autodiff::linalg::{identity, matmul, matvec};
use autodiff::Matrix;

/// Moments of `θ_k` after `k` steps: `E[θ_k]` and `V_k`.
#[derive(Clone, Debug)]
pub struct Moments {
    /// `E[θ_k]`.
    pub mean: Vec<f64>,
    /// `V_k = Var(θ_k)`.
    pub variance: Matrix<f64>,
}

fn add(a: &Matrix<f64>, b: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_fn(a.rows(), a.cols(), |i, j| a[(i, j)] + b[(i, j)])
}

/// `E[θ_k]`, `V_k` for `k = 0..=steps` by `m_{k+1} = A_k m_k`, `V_{k+1} = A_k V_k A_kᵀ + α_k² U`
/// with `A_k = I − α_k B⁻¹H*` (no hypothesis needed), plus eqn 20's `E[h(θ_k)] − h(θ*)` and the
/// averaged iterate's, through the covariances `D_k = Cov(S_k, e_k)`, `G_k = Var(S_k)` of the
/// running sum `S_k = Σ_{i≤k} e_i`: `D_{k+1} = D_k A_kᵀ + V_{k+1}`,
/// `G_{k+1} = G_k + D_k A_kᵀ + A_k D_kᵀ + V_{k+1}`.
pub fn exact(
    problem: &QuadraticProblem,
    steps: Schedule,
    k_max: usize,
) -> Result<(Vec<Moments>, Trajectory)> {
    let n = problem.dim();
    let p = matmul(&problem.b_inverse(), &problem.h_star)?;
    let u = problem.u();
    let mut e: Vec<f64> =
        problem.theta0.iter().zip(&problem.theta_star).map(|(a, b)| a - b).collect();
    let mut v: Matrix<f64> = Matrix::zeros(n, n);
    let mut d: Matrix<f64> = Matrix::zeros(n, n);
    let mut g: Matrix<f64> = Matrix::zeros(n, n);
    let mut e_sum = e.clone();
    let mut moments = Vec::with_capacity(k_max + 1);
    let mut traj = Trajectory { excess: Vec::new(), averaged_excess: Vec::new() };
    let excess = |mean_e: &[f64], var: &Matrix<f64>| {
        let outer = Matrix::from_fn(n, n, |i, j| mean_e[i] * mean_e[j]);
        problem.half_trace_h(&add(var, &outer))
    };
    for k in 0..=k_max {
        let mean: Vec<f64> = e.iter().zip(&problem.theta_star).map(|(a, b)| a + b).collect();
        moments.push(Moments { mean, variance: v.clone() });
        traj.excess.push(excess(&e, &v));
        let scale = 1.0 / (k + 1) as f64;
        let avg_e: Vec<f64> = e_sum.iter().map(|s| s * scale).collect();
        traj.averaged_excess.push(excess(&avg_e, &g.map(|x| x * scale * scale)));
        if k == k_max {
            break;
        }
        let alpha = steps.step_size(k);
        let a = Matrix::from_fn(n, n, |i, j| identity(n)[(i, j)] - alpha * p[(i, j)]);
        e = matvec(&a, &e)?;
        let ava = matmul(&matmul(&a, &v)?, &a.transpose())?;
        v = Matrix::from_fn(n, n, |i, j| ava[(i, j)] + alpha * alpha * u[(i, j)]);
        let dat = matmul(&d, &a.transpose())?;
        g = Matrix::from_fn(n, n, |i, j| g[(i, j)] + dat[(i, j)] + dat[(j, i)] + v[(i, j)]);
        d = add(&dat, &v);
        for (s, x) in e_sum.iter_mut().zip(&e) {
            *s += x;
        }
    }
    Ok((moments, traj))
}
