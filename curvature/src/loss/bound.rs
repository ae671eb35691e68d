//! Section 13: the lower bound on the improvement predicted by the Fisher quadratic model.

use super::{check_batch, dense_f_r, PredictiveDistribution};
use crate::error::Result;
use autodiff::linalg::symmetric_eigen;
use autodiff::Matrix;

/// `−(1/(2N)) Σ_n ∇_z log r(y_n|z_n)ᵀ F_R(z_n)⁺ ∇_z log r(y_n|z_n)` (Section 13): for every δ,
/// `M(δ) − h(θ) ≥` this value, where `M` is the quadratic model with the Fisher.
///
/// `F_R` may be singular (softmax: `F_R 1 = 0`); its pseudo-inverse is used, with eigenvalues
/// below `1e-12 · λ_max` treated as zero. The gradient `∇_z log r` lies in the range of `F_R` for
/// the built-in distributions (for softmax it sums to zero), so nothing is lost.
pub fn section13_bound(
    dist: &dyn PredictiveDistribution,
    z: &Matrix<f64>,
    y: &Matrix<f64>,
) -> Result<f64> {
    check_batch(dist, "section13_bound", z, y)?;
    let mut total = 0.0;
    let mut g = vec![0.0; z.cols()];
    for r in 0..z.rows() {
        dist.grad_z(z.row(r), y.row(r), &mut g);
        let eig = symmetric_eigen(&dense_f_r(dist, z.row(r)))?;
        let cutoff = 1e-12 * eig.values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for (k, &lambda) in eig.values.iter().enumerate() {
            if lambda > cutoff {
                let proj: f64 = (0..g.len()).map(|i| eig.vectors[(i, k)] * g[i]).sum();
                total += proj * proj / lambda;
            }
        }
    }
    Ok(-total / (2.0 * z.rows() as f64))
}
