//! Stochastic Lanczos quadrature (Golub & Meurant; Ghorbani, Krishnan & Xiao 2019 for neural
//! network Hessians): the spectral density `φ(t) = (1/n) Σ_i δ(t − λ_i)` of a symmetric `A`
//! estimated from `m`-step Lanczos runs on Rademacher probes.
//!
//! For a unit start `q₁ = u/‖u‖`, the eigenpairs `(θ_i, s_i)` of the Lanczos tridiagonal `T_m`
//! are the nodes and weights `τ_i = (e₁ᵀ s_i)²` of the Gauss quadrature of the measure
//! `Σ_j (q₁ᵀ v_j)² δ(t − λ_j)`: `q₁ᵀ f(A) q₁ ≈ Σ_i τ_i f(θ_i)`, exact for polynomials of
//! degree `≤ 2m − 1`. Averaging over probes gives an unbiased density (Hutchinson's trick):
//! `tr f(A) ≈ (n/P) Σ_p Σ_i τ_{p,i} f(θ_{p,i})`.

use super::lanczos::tridiagonalize;
use super::tridiagonal::tridiagonal_eigen;
use super::{check_nonempty, norm, rademacher};
use crate::error::{CurvatureError, Result};
use crate::operator::LinearOperator;
use rand::{rngs::StdRng, SeedableRng};

/// A spectral density as a weighted set of nodes (from [`spectral_density`]).
#[derive(Clone, Debug)]
pub struct SpectralDensity {
    /// Quadrature nodes (Ritz values of every probe's Lanczos run).
    pub nodes: Vec<f64>,
    /// Their weights, `τ_i / P`: non-negative, summing to 1.
    pub weights: Vec<f64>,
    /// The operator's dimension `n`.
    pub dim: usize,
}

impl SpectralDensity {
    /// The estimate of `tr f(A) = Σ_i f(λ_i)`: `n Σ_i w_i f(θ_i)`.
    pub fn trace_of(&self, f: impl Fn(f64) -> f64) -> f64 {
        self.dim as f64 * self.nodes.iter().zip(&self.weights).map(|(t, w)| w * f(*t)).sum::<f64>()
    }

    /// The density smoothed by a Gaussian of width `sigma`, at each point of `grid`
    /// (integrates to 1 over the real line).
    pub fn smoothed(&self, grid: &[f64], sigma: f64) -> Vec<f64> {
        let c = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
        grid.iter()
            .map(|t| {
                let terms = self.nodes.iter().zip(&self.weights);
                terms.map(|(x, w)| w * c * (-0.5 * ((t - x) / sigma).powi(2)).exp()).sum()
            })
            .collect()
    }
}

/// The SLQ density of a symmetric `A` from `probes` Rademacher probes (the probes of
/// [`hutchinson_trace`](super::hutchinson_trace) with the same seed) and `steps` Lanczos steps
/// each (`probes · steps` products), fully reorthogonalized; a probe whose Krylov space becomes
/// invariant stops early with exact quadrature.
pub fn spectral_density(
    a: &dyn LinearOperator,
    probes: usize,
    steps: usize,
    seed: u64,
) -> Result<SpectralDensity> {
    let n = check_nonempty("spectral_density", a)?;
    if !a.is_symmetric() {
        return Err(CurvatureError::invalid(
            "spectral_density",
            "the operator is not declared symmetric (FnOperator::symmetric declares it)",
        ));
    }
    if probes == 0 || steps == 0 || steps > n {
        return Err(CurvatureError::invalid(
            "spectral_density",
            format!("{probes} probes of {steps} steps on dimension {n} (need ≥ 1 probe and 1 ≤ steps ≤ {n})"),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut density = SpectralDensity { nodes: Vec::new(), weights: Vec::new(), dim: n };
    let mut u = vec![0.0; n];
    for _ in 0..probes {
        rademacher(&mut rng, &mut u);
        let length = norm(&u);
        let start = u.iter().map(|x| x / length).collect();
        let t = tridiagonalize(a, start, steps, None)?;
        let (values, vectors) = tridiagonal_eigen(&t.alpha, &t.beta)?;
        for (i, value) in values.iter().enumerate() {
            density.nodes.push(*value);
            density.weights.push(vectors[(0, i)].powi(2) / probes as f64);
        }
    }
    Ok(density)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::FnOperator;
    use crate::spectra::hutchinson_trace;
    use crate::spectra::test_support::{log_log_slope, rms, rotated_diagonal};
    use autodiff::Matrix;

    #[test]
    fn quadrature_is_exact_for_low_degree_polynomials() {
        // With 4 steps the quadrature integrates degree ≤ 7 exactly, so SLQ's tr(A), tr(A²)
        // equal Hutchinson's estimates of tr(A) and tr(A²) over the same probes to round-off.
        let (op, _) = rotated_diagonal((0..40).map(|i| (i as f64 * 0.37).sin() * 3.0).collect());
        let squared = FnOperator::new(40, |v: &[f64]| {
            let mut w = vec![0.0; 40];
            let mut ww = vec![0.0; 40];
            op.apply(v, &mut w)?;
            op.apply(&w, &mut ww)?;
            Ok(ww)
        });
        let density = spectral_density(&op, 7, 4, 11).unwrap();
        let total: f64 = density.weights.iter().sum();
        assert!((total - 1.0).abs() < 1e-12 && density.weights.iter().all(|&w| w >= 0.0));
        let h1 = hutchinson_trace(&op, 7, 11).unwrap().estimate;
        let h2 = hutchinson_trace(&squared, 7, 11).unwrap().estimate;
        assert!((density.trace_of(|t| t) - h1).abs() < 1e-10 * h2.sqrt(), "{h1}");
        assert!((density.trace_of(|t| t * t) - h2).abs() < 1e-10 * h2, "{h2}");
    }

    #[test]
    fn all_steps_put_nodes_on_the_eigenvalues() {
        let lambda: Vec<f64> = (0..12).map(|i| i as f64 * 0.5 - 2.0).collect();
        let (op, _) = rotated_diagonal(lambda.clone());
        let density = spectral_density(&op, 1, 12, 2).unwrap();
        for l in &lambda {
            let nearest = density.nodes.iter().map(|t| (t - l).abs()).fold(f64::MAX, f64::min);
            assert!(nearest < 1e-10, "no node at {l}: {:?}", density.nodes);
        }
        // The smoothed density integrates to 1 (Riemann sum on a fine grid).
        let grid: Vec<f64> = (0..2000).map(|i| -5.0 + i as f64 * 0.005).collect();
        let mass: f64 = density.smoothed(&grid, 0.1).iter().sum::<f64>() * 0.005;
        assert!((mass - 1.0).abs() < 1e-6, "{mass}");
    }

    #[test]
    fn trace_of_a_smooth_function_converges_like_one_over_root_probes() {
        // tr exp(A) with 10 steps (quadrature error negligible): RMS error over seeds ∝ P^{-1/2}.
        let lambda: Vec<f64> = (0..30).map(|i| (i as f64 - 10.0) / 10.0).collect();
        let truth: f64 = lambda.iter().map(|l| l.exp()).sum();
        let (op, _) = rotated_diagonal(lambda);
        let mut points = Vec::new();
        for probes in [2, 8, 32] {
            let errors: Vec<f64> = (0..150)
                .map(|seed| {
                    spectral_density(&op, probes, 10, seed).unwrap().trace_of(f64::exp) - truth
                })
                .collect();
            points.push((probes as f64, rms(&errors)));
        }
        let slope = log_log_slope(&points);
        assert!((slope + 0.5).abs() < 0.15, "slope {slope}: {points:?}");
    }

    #[test]
    fn bad_input_is_an_error() {
        let a = Matrix::from_fn(3, 3, |i, j| (i + j) as f64);
        assert!(spectral_density(&a, 0, 2, 0).is_err());
        assert!(spectral_density(&a, 1, 0, 0).is_err());
        assert!(spectral_density(&a, 1, 4, 0).is_err());
        let nonsymmetric = Matrix::from_fn(3, 3, |i, j| (i * 3 + j) as f64);
        assert!(spectral_density(&nonsymmetric, 1, 2, 0).is_err());
    }
}
