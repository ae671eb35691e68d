//! The identities of the paper as checks on dense matrices built from products.

use crate::error::Result;
use crate::loss::{dense_f_r, dense_h_l, PredictiveDistribution};
use crate::model::Model;
use crate::operator::LinearOperator;
use crate::problem::Problem;
use crate::reparam::{pull_back, zeta_jacobian};
use crate::CurvatureKind;
use autodiff::check::{central_difference, compare, CheckReport};
use autodiff::linalg::symmetric_eigen;
use autodiff::modes::Function;
use autodiff::Matrix;
use rand::{rngs::StdRng, SeedableRng};

/// `B = Bᵀ` for the dense `B` (n products), entry-wise relative to `max |B_ij|`.
pub fn check_symmetric(op: &dyn LinearOperator, tolerance: f64) -> Result<CheckReport> {
    let b = op.to_dense()?;
    Ok(compare("B vs Bᵀ", b.data(), b.transpose().data(), tolerance)?)
}

/// `λ_min(B) ≥ −tolerance · max|λ|` for the symmetrized dense `B`. The report's `computed` is
/// `λ_min / max|λ|` and its error the amount by which it falls below zero.
pub fn check_positive_semidefinite(op: &dyn LinearOperator, tolerance: f64) -> Result<CheckReport> {
    let eig = symmetric_eigen(&op.to_dense()?)?;
    let scale = eig.values.iter().fold(1e-300_f64, |m, v| m.max(v.abs()));
    let lowest = eig.values.first().copied().unwrap_or(0.0) / scale;
    let mut report = compare("λ_min(B) / max|λ| ≥ 0", &[lowest], &[lowest.max(0.0)], tolerance)?;
    report.max_rel_error = (-lowest).max(0.0);
    Ok(report)
}

/// Two operators agree as dense matrices.
pub fn check_equal(
    what: &str,
    a: &dyn LinearOperator,
    b: &dyn LinearOperator,
    tolerance: f64,
) -> Result<CheckReport> {
    let (a, b) = (a.to_dense()?, b.to_dense()?);
    Ok(compare(what, a.data(), b.data(), tolerance)?)
}

/// The Section 12 invariance condition `J_ζᵀ B_θ J_ζ = B_γ` for `kind`, with `θ = ζ(γ)`:
/// `theta_problem` is the problem in θ, `gamma_problem` the same data on the model
/// [`Reparameterized`](crate::reparam::Reparameterized) (so its parameters are γ).
pub fn check_reparameterization<M: Model, G: Model, Z: Function>(
    theta_problem: &Problem<'_, M>,
    gamma_problem: &Problem<'_, G>,
    zeta: &Z,
    gamma: &[f64],
    kind: &CurvatureKind,
    tolerance: f64,
) -> Result<CheckReport> {
    let theta = autodiff::modes::value(zeta, gamma)?.into_vec();
    let theta_pass = theta_problem.at(&theta)?;
    let gamma_pass = gamma_problem.at(gamma)?;
    let b_theta = theta_pass.operator(kind)?.to_dense()?;
    let b_gamma = gamma_pass.operator(kind)?.to_dense()?;
    let pulled = pull_back(&b_theta, &zeta_jacobian(zeta, gamma)?)?;
    Ok(compare(
        &format!("J_ζᵀ B_θ J_ζ vs B_γ ({kind:?})"),
        pulled.data(),
        b_gamma.data(),
        tolerance,
    )?)
}

/// A user's distribution at one `(z, y)`: `∇_z L` and `H_L` against central differences
/// (tier `tolerance`), `H_L` and `F_R` symmetric, `F_R` PSD, and `F_R` against the sampled
/// `E[∇_z log r ∇_z log rᵀ]` from `samples` draws of [`PredictiveDistribution::sample`] (within
/// 5 standard errors per entry; the report's error is the worst ratio |diff| / (5 se)).
/// Where the distribution claims [`is_natural_parameter`](PredictiveDistribution::is_natural_parameter),
/// also `F_R = H_L` at this `(z, y)` (relative `1e-10`, both exact; Section 9.2).
/// Returns the worst of these checks.
pub fn check_loss(
    dist: &dyn PredictiveDistribution,
    z: &[f64],
    y: &[f64],
    tolerance: f64,
    samples: usize,
    seed: u64,
) -> Result<CheckReport> {
    let m = z.len();
    let along =
        |u: &[f64], t: f64| -> Vec<f64> { z.iter().zip(u).map(|(a, b)| a + t * b).collect() };
    let mut grad = vec![0.0; m];
    dist.grad_z(z, y, &mut grad);
    let mut fd = Vec::with_capacity(m);
    let mut hessian_fd = Matrix::zeros(m, m);
    for j in 0..m {
        let e: Vec<f64> = (0..m).map(|k| if k == j { 1.0 } else { 0.0 }).collect();
        fd.push(central_difference(1e-4, |t| Ok(vec![dist.loss(&along(&e, t), y)]))?[0]);
        let column = central_difference(1e-4, |t| {
            let mut g = vec![0.0; m];
            dist.grad_z(&along(&e, t), y, &mut g);
            Ok(g)
        })?;
        for i in 0..m {
            hessian_fd[(i, j)] = column[i];
        }
    }
    let h = dense_h_l(dist, z, y);
    let f = dense_f_r(dist, z);
    let mut report =
        compare(&format!("{}: ∇_z L vs central differences", dist.name()), &grad, &fd, tolerance)?
            .worst(compare(
                &format!("{}: H_L vs differences of ∇_z L", dist.name()),
                h.data(),
                hessian_fd.data(),
                tolerance,
            )?)
            .worst(compare(
                &format!("{}: H_L symmetric", dist.name()),
                h.data(),
                h.transpose().data(),
                1e-12,
            )?)
            .worst(compare(
                &format!("{}: F_R symmetric", dist.name()),
                f.data(),
                f.transpose().data(),
                1e-12,
            )?);
    let eig = symmetric_eigen(&f)?;
    let scale = eig.values.iter().fold(1e-300_f64, |a, v| a.max(v.abs()));
    let mut psd = compare(
        &format!("{}: F_R PSD (λ_min / max|λ|)", dist.name()),
        &[eig.values[0] / scale],
        &[0.0],
        1e-12,
    )?;
    psd.max_rel_error = (-eig.values[0] / scale).max(0.0);
    report = report.worst(psd);
    if dist.is_natural_parameter() {
        // Claimed natural parameter: then F_R = E[H_L] = H_L for every y (Section 9.2), and the
        // Fisher equals the GGN. Both sides are exact, so the tier is round-off.
        report = report.worst(compare(
            &format!("{}: F_R vs H_L (claimed natural parameter)", dist.name()),
            f.data(),
            h.data(),
            1e-10,
        )?);
    }
    if samples > 1 {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut sum, mut sum_sq) = (vec![0.0; m * m], vec![0.0; m * m]);
        let mut target = vec![0.0; y.len()];
        let mut g = vec![0.0; m];
        for _ in 0..samples {
            dist.sample(z, &mut rng, &mut target);
            dist.grad_z(z, &target, &mut g);
            for i in 0..m {
                for j in 0..m {
                    sum[i * m + j] += g[i] * g[j];
                    sum_sq[i * m + j] += (g[i] * g[j]).powi(2);
                }
            }
        }
        let n = samples as f64;
        let mut worst = (0.0_f64, 0, 0.0, 0.0);
        for k in 0..m * m {
            let mean = sum[k] / n;
            let se = ((sum_sq[k] / n - mean * mean).max(0.0) / n).sqrt();
            let ratio = (mean - f.data()[k]).abs() / (5.0 * se + 1e-12);
            if ratio > worst.0 {
                worst = (ratio, k, f.data()[k], mean);
            }
        }
        let mut sampled = compare(
            &format!("{}: F_R vs sampled E[g gᵀ] (|diff| / 5 se)", dist.name()),
            &[worst.2],
            &[worst.3],
            1.0,
        )?;
        sampled.max_rel_error = worst.0;
        sampled.at = worst.1;
        report = report.worst(sampled);
    }
    Ok(report)
}
