//! Seeded random numbers for tests, checks and samplers: standard normals and random matrices.

use crate::matrix::Matrix;
use rand::{Rng, RngCore};

/// One draw from `N(0, 1)` by the Box–Muller transform (uses two uniforms, returns one normal).
pub fn standard_normal(rng: &mut (impl RngCore + ?Sized)) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A `rows×cols` matrix of independent standard normals.
pub fn random_matrix(rows: usize, cols: usize, rng: &mut (impl RngCore + ?Sized)) -> Matrix<f64> {
    Matrix::from_fn(rows, cols, |_, _| standard_normal(rng))
}

/// A vector of `n` independent standard normals.
pub fn random_vector(n: usize, rng: &mut (impl RngCore + ?Sized)) -> Vec<f64> {
    (0..n).map(|_| standard_normal(rng)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn standard_normal_has_unit_moments() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 200_000;
        let xs = random_vector(n, &mut rng);
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        // Standard errors: 1/√n ≈ 0.0022 for the mean, √(2/n) ≈ 0.0032 for the variance.
        assert!(mean.abs() < 5.0 * 0.0023, "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * 0.0032, "variance {var}");
    }
}
