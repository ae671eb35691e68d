//! Stochastic trace estimators from products: Hutchinson's (error `∝ m^{-1/2}`) and Hutch++
//! (Meyer, Musco, Musco & Woodruff 2021: error `∝ m^{-1}` when the spectrum decays), seeded.

use super::{check_nonempty, dot, norm, orthogonalize_twice, rademacher};
use crate::error::{CurvatureError, Result};
use crate::operator::LinearOperator;
use rand::{rngs::StdRng, SeedableRng};

/// A stochastic estimate of `tr(A)`.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEstimate {
    /// The estimate.
    pub estimate: f64,
    /// The standard error of the stochastic part, from the spread of its probes (`None` with
    /// fewer than two of them).
    pub standard_error: Option<f64>,
    /// Operator products used.
    pub products: usize,
}

/// The mean and standard error of samples.
fn mean_and_standard_error(samples: &[f64]) -> (f64, Option<f64>) {
    let s = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / s;
    let error = (samples.len() > 1).then(|| {
        let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (s - 1.0);
        (variance / s).sqrt()
    });
    (mean, error)
}

/// Hutchinson's estimator `tr(A) ≈ (1/m) Σ_s u_sᵀ A u_s` over `m = samples` Rademacher probes:
/// unbiased, with variance `2 (‖A‖_F² − Σ_i A_ii²) / m` for symmetric `A`.
pub fn hutchinson_trace(
    a: &dyn LinearOperator,
    samples: usize,
    seed: u64,
) -> Result<TraceEstimate> {
    let n = check_nonempty("hutchinson_trace", a)?;
    if samples == 0 {
        return Err(CurvatureError::invalid("hutchinson_trace", "needs at least one sample"));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut u, mut au) = (vec![0.0; n], vec![0.0; n]);
    let values: Vec<f64> = (0..samples)
        .map(|_| {
            rademacher(&mut rng, &mut u);
            a.apply(&u, &mut au)?;
            Ok(dot(&u, &au))
        })
        .collect::<Result<_>>()?;
    let (estimate, standard_error) = mean_and_standard_error(&values);
    Ok(TraceEstimate { estimate, standard_error, products: samples })
}

/// Hutch++: `tr(A) ≈ tr(Qᵀ A Q) + tr_Hutchinson((I − QQᵀ) A (I − QQᵀ))`, with `Q` an orthonormal
/// basis of `A S` for `⌊m/3⌋` Rademacher columns `S` and the rest of the `m = products` products
/// spent on Hutchinson probes of the deflated remainder. The top of the spectrum is counted
/// exactly, so the error is Hutchinson's on the tail: `∝ m^{-1}` for a spectrum decaying
/// like `1/i`, and zero when `rank(A) ≤ ⌊m/3⌋`. Needs `m ≥ 3`.
pub fn hutch_plus_plus_trace(
    a: &dyn LinearOperator,
    products: usize,
    seed: u64,
) -> Result<TraceEstimate> {
    let n = check_nonempty("hutch_plus_plus_trace", a)?;
    if products < 3 {
        return Err(CurvatureError::invalid(
            "hutch_plus_plus_trace",
            format!("needs at least 3 products, got {products}"),
        ));
    }
    let k = products / 3;
    let probes = products - 2 * k;
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut s, mut y) = (vec![0.0; n], vec![0.0; n]);
    // Q: an orthonormal basis of A S, built one column at a time (Gram-Schmidt twice); a
    // column inside the span of the others (A of rank below k) adds nothing and is dropped.
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(k);
    let mut used = 0;
    for _ in 0..k {
        rademacher(&mut rng, &mut s);
        a.apply(&s, &mut y)?;
        used += 1;
        let scale = norm(&y);
        orthogonalize_twice(&q, &mut y);
        let length = norm(&y);
        if length > 1e-10 * scale && length > 0.0 && q.len() < n {
            q.push(y.iter().map(|x| x / length).collect());
        }
    }
    let mut exact_part = 0.0;
    for column in &q {
        a.apply(column, &mut y)?;
        used += 1;
        exact_part += dot(column, &y);
    }
    let values: Vec<f64> = (0..probes)
        .map(|_| {
            rademacher(&mut rng, &mut s);
            for column in &q {
                let c = dot(column, &s);
                s.iter_mut().zip(column).for_each(|(x, p)| *x -= c * p);
            }
            a.apply(&s, &mut y)?;
            Ok(dot(&s, &y))
        })
        .collect::<Result<_>>()?;
    used += probes;
    let (tail, standard_error) = mean_and_standard_error(&values);
    Ok(TraceEstimate { estimate: exact_part + tail, standard_error, products: used })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectra::test_support::{log_log_slope, rms, rotated_diagonal};
    use autodiff::Matrix;

    #[test]
    fn hutchinson_error_is_its_closed_form_and_shrinks_like_one_over_root_m() {
        let (op, dense) = rotated_diagonal((0..24).map(|i| (i as f64 - 8.0) / 4.0).collect());
        let trace: f64 = (0..24).map(|i| dense[(i, i)]).sum();
        let frobenius: f64 = dense.data().iter().map(|x| x * x).sum();
        let diagonal: f64 = (0..24).map(|i| dense[(i, i)].powi(2)).sum();
        let variance = 2.0 * (frobenius - diagonal);
        let mut points = Vec::new();
        for m in [2, 8, 32, 128] {
            let runs: Vec<TraceEstimate> =
                (0..400).map(|seed| hutchinson_trace(&op, m, seed).unwrap()).collect();
            let errors: Vec<f64> = runs.iter().map(|r| r.estimate - trace).collect();
            let measured = rms(&errors);
            let predicted = (variance / m as f64).sqrt();
            assert!((measured / predicted - 1.0).abs() < 0.12, "m={m}: {measured} vs {predicted}");
            // The reported standard error estimates the same quantity (its mean square does).
            let reported = rms(&runs.iter().map(|r| r.standard_error.unwrap()).collect::<Vec<_>>());
            assert!((reported / predicted - 1.0).abs() < 0.12, "m={m}: {reported} vs {predicted}");
            points.push((m as f64, measured));
        }
        let slope = log_log_slope(&points);
        assert!((slope + 0.5).abs() < 0.1, "slope {slope}");
    }

    #[test]
    fn hutch_plus_plus_error_shrinks_like_one_over_m_on_a_decaying_spectrum() {
        // λ_i = 1/i: the tail beyond k = m/3 has ‖·‖_F ∝ k^{-1/2}, so the error ∝ m^{-1}.
        let lambda: Vec<f64> = (1..=300).map(|i| 1.0 / i as f64).collect();
        let trace: f64 = lambda.iter().sum();
        let (op, _) = rotated_diagonal(lambda);
        let mut points = Vec::new();
        for m in [12, 24, 48, 96] {
            let errors: Vec<f64> = (0..200)
                .map(|seed| hutch_plus_plus_trace(&op, m, seed).unwrap().estimate - trace)
                .collect();
            points.push((m as f64, rms(&errors)));
        }
        let slope = log_log_slope(&points);
        assert!((slope + 1.0).abs() < 0.2, "slope {slope}: {points:?}");
    }

    #[test]
    fn hutch_plus_plus_is_exact_for_low_rank_and_checks_its_input() {
        // Rank 3 with 3·4 products: Q spans the range, the remainder is zero.
        let lambda: Vec<f64> =
            (0..20).map(|i| if i < 3 { 2.0 - i as f64 * 1.7 } else { 0.0 }).collect();
        let (op, _) = rotated_diagonal(lambda);
        let r = hutch_plus_plus_trace(&op, 12, 5).unwrap();
        assert!((r.estimate - (2.0 + 0.3 - 1.4)).abs() < 1e-12, "{}", r.estimate);
        assert!(r.products <= 12);
        let a = Matrix::from_fn(3, 3, |i, j| (i + j) as f64);
        assert!(hutch_plus_plus_trace(&a, 2, 0).is_err());
        assert!(hutchinson_trace(&a, 0, 0).is_err());
        assert!(hutchinson_trace(&Matrix::zeros(0, 0), 3, 0).is_err());
    }
}
