//! Hutchinson's estimator of a diagonal (Bekas, Kokiopoulou & Saad 2007): unbiased, seeded.

use super::{check_nonempty, rademacher};
use crate::error::{CurvatureError, Result};
use crate::operator::LinearOperator;
use rand::{rngs::StdRng, SeedableRng};

/// Hutchinson's estimator `diag(B) ≈ (1/S) Σ_s u_s ⊙ (B u_s)` with Rademacher `u_s` (entries ±1),
/// unbiased since `E[u uᵀ] = I`; `samples` products, seeded. Its variance at entry `i` is
/// `(1/S) Σ_{j≠i} B_ij²`, so its error shrinks like `S^{-1/2}` and it suits matrices whose
/// diagonal dominates. The probes are those of [`hutchinson_trace`](super::hutchinson_trace)
/// with the same seed, so the sum of this estimate is that trace estimate.
pub fn estimate_diagonal(op: &dyn LinearOperator, samples: usize, seed: u64) -> Result<Vec<f64>> {
    if samples == 0 {
        return Err(CurvatureError::invalid("estimate_diagonal", "needs at least one sample"));
    }
    let n = check_nonempty("estimate_diagonal", op)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut u = vec![0.0; n];
    let mut bu = vec![0.0; n];
    let mut sum = vec![0.0; n];
    for _ in 0..samples {
        rademacher(&mut rng, &mut u);
        op.apply(&u, &mut bu)?;
        for ((s, a), b) in sum.iter_mut().zip(&u).zip(&bu) {
            *s += a * b;
        }
    }
    Ok(sum.into_iter().map(|s| s / samples as f64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectra::test_support::{log_log_slope, rms, rotated_diagonal};
    use autodiff::Matrix;

    #[test]
    fn hutchinson_is_exact_for_diagonal_matrices_and_converges_otherwise() {
        // For a diagonal matrix u ⊙ (D u) = D's diagonal exactly (u_i² = 1).
        let d = Matrix::from_fn(4, 4, |i, j| if i == j { (i + 1) as f64 } else { 0.0 });
        assert_eq!(estimate_diagonal(&d, 1, 3).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        // Off-diagonal entries ±0.5, n = 4: per-sample std ≤ √(3·0.25) ≈ 0.87; with 40 000
        // samples the standard error is ≤ 0.0044, and we allow 5 of them.
        let b = Matrix::from_fn(4, 4, |i, j| if i == j { (i + 1) as f64 } else { 0.5 });
        let est = estimate_diagonal(&b, 40_000, 4).unwrap();
        for (i, e) in est.iter().enumerate() {
            assert!((e - (i + 1) as f64).abs() < 5.0 * 0.0044, "entry {i}: {e}");
        }
        assert!(estimate_diagonal(&b, 0, 1).is_err());
        assert!(estimate_diagonal(&Matrix::zeros(0, 0), 1, 1).is_err());
    }

    #[test]
    fn error_shrinks_like_one_over_root_samples_with_the_closed_form_variance() {
        // Entry i's estimate has variance Σ_{j≠i} A_ij² / S; the mean squared error summed
        // over entries is ‖A − diag(A)‖_F² / S. Check its value (within 15%, 300 seeds) and
        // the slope of the RMS error in S (−0.5 ± 0.1).
        let (op, dense) = rotated_diagonal((0..24).map(|i| (i as f64 - 5.0) / 3.0).collect());
        let off: f64 = (0..24)
            .flat_map(|i| (0..24).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| dense[(i, j)].powi(2))
            .sum();
        let mut points = Vec::new();
        for samples in [2, 8, 32, 128] {
            let errors: Vec<f64> = (0..300)
                .map(|seed| {
                    let est = estimate_diagonal(&op, samples, seed).unwrap();
                    est.iter()
                        .enumerate()
                        .map(|(i, e)| (e - dense[(i, i)]).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .collect();
            let predicted = (off / samples as f64).sqrt();
            let measured = rms(&errors);
            assert!(
                (measured / predicted - 1.0).abs() < 0.15,
                "S={samples}: {measured} vs {predicted}"
            );
            points.push((samples as f64, measured));
        }
        let slope = log_log_slope(&points);
        assert!((slope + 0.5).abs() < 0.1, "slope {slope}");
    }
}
