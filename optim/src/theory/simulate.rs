//! A seeded Monte-Carlo run of eqn 19 with Gaussian gradient noise `ε ~ N(0, Σ_g)`.

use super::QuadraticProblem;
use crate::error::Result;
use crate::schedule::Schedule;
use autodiff::linalg::{matvec, symmetric_eigen};
use autodiff::random::standard_normal;
use autodiff::Matrix;
use rand::{rngs::StdRng, SeedableRng};

/// Per-iteration sample means of `h(θ_k) − h(θ*)` and `h(θ̄_k) − h(θ*)` over the replicas,
/// with their standard errors (a 95% interval is `mean ± 1.96 se`).
#[derive(Clone, Debug)]
pub struct MonteCarlo {
    /// Mean excess of `θ_k`.
    pub mean: Vec<f64>,
    /// Its standard error.
    pub standard_error: Vec<f64>,
    /// Mean excess of the average `θ̄_k`.
    pub averaged_mean: Vec<f64>,
    /// Its standard error.
    pub averaged_standard_error: Vec<f64>,
}

/// Runs `replicas` independent copies of eqn 19 for `k_max` steps from `seed`.
pub fn simulate(
    problem: &QuadraticProblem,
    steps: Schedule,
    k_max: usize,
    replicas: usize,
    seed: u64,
) -> Result<MonteCarlo> {
    let n = problem.dim();
    // Σ_g^{½} by its eigen decomposition (Σ_g may be singular, so not Cholesky).
    let sqrt_sigma = symmetric_eigen(&problem.sigma_g)?.reconstruct_with(|l| l.max(0.0).sqrt());
    let b_inv = problem.b_inverse();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut s1, mut s2) = (vec![0.0; k_max + 1], vec![0.0; k_max + 1]);
    let (mut a1, mut a2) = (vec![0.0; k_max + 1], vec![0.0; k_max + 1]);
    for _ in 0..replicas.max(1) {
        let mut theta = problem.theta0.clone();
        let mut sum = theta.clone();
        for k in 0..=k_max {
            let h = problem.excess(&theta)?;
            let avg: Vec<f64> = sum.iter().map(|s| s / (k + 1) as f64).collect();
            let ha = problem.excess(&avg)?;
            s1[k] += h;
            s2[k] += h * h;
            a1[k] += ha;
            a2[k] += ha * ha;
            if k == k_max {
                break;
            }
            let z: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
            let eps = matvec(&sqrt_sigma, &z)?;
            let e: Vec<f64> = theta.iter().zip(&problem.theta_star).map(|(a, b)| a - b).collect();
            let g: Vec<f64> =
                matvec(&problem.h_star, &e)?.iter().zip(&eps).map(|(a, b)| a + b).collect();
            let step = matvec(&b_inv, &g)?;
            let alpha = steps.step_size(k);
            for ((t, s), d) in theta.iter_mut().zip(sum.iter_mut()).zip(&step) {
                *t -= alpha * d;
                *s += *t;
            }
        }
    }
    let r = replicas.max(1) as f64;
    let stats = |s: &[f64], q: &[f64]| -> (Vec<f64>, Vec<f64>) {
        s.iter()
            .zip(q)
            .map(|(a, b)| {
                let mean = a / r;
                let var = (b / r - mean * mean).max(0.0) * r / (r - 1.0).max(1.0);
                (mean, (var / r).sqrt())
            })
            .unzip()
    };
    let (mean, standard_error) = stats(&s1, &s2);
    let (averaged_mean, averaged_standard_error) = stats(&a1, &a2);
    Ok(MonteCarlo { mean, standard_error, averaged_mean, averaged_standard_error })
}

/// A random SPD matrix with eigenvalues `spectrum` (in a random orthonormal basis), for tests
/// and examples.
pub fn matrix_with_spectrum(spectrum: &[f64], seed: u64) -> Result<Matrix<f64>> {
    let n = spectrum.len();
    let mut rng = StdRng::seed_from_u64(seed);
    let x = autodiff::random::random_matrix(n, n, &mut rng);
    let sym = Matrix::from_fn(n, n, |i, j| x[(i, j)] + x[(j, i)]);
    let q = symmetric_eigen(&sym)?.vectors;
    Ok(Matrix::from_fn(n, n, |i, j| (0..n).map(|k| q[(i, k)] * spectrum[k] * q[(j, k)]).sum()))
}
