//! Losses as predictive distributions `R_{y|z}` (Section 4): `L(y, z) = −log r(y|z)`, its
//! gradient and Hessian in `z`, the Fisher `F_R` of `R_{y|z}`, and sampling.
//!
//! A researcher adds a loss by implementing [`PredictiveDistribution`] for one example; the
//! batch helpers here average over the rows of a batch like the objective `h`, and
//! `verify::check_loss` holds a new implementation against finite differences and sampling.
//! Or it writes only `L(y, z)` on the autodiff tape ([`TapeLoss`]) and wraps it in a
//! [`DerivedLoss`], which derives `∇_z L` and `H_L` exactly, and `F_R` from a log-partition
//! ([`derived`]).
//!
//! | name | `z` | `L(y, z)` (constants dropped) | natural (`F_R = H_L`) |
//! |---|---|---|---|
//! | [`SquaredError`] | mean `μ` | `½‖y − z‖²` | yes |
//! | [`GaussianNatural`] | `(η₁, η₂)`, `η₂ > 0` the precision | `½η₂y² − η₁y + η₁²/(2η₂) − ½ln η₂` | yes |
//! | [`GaussianMeanLogVar`] | `(μ, γ = ln σ²)` | `½(y − μ)²e^{−γ} + ½γ` | no (Section 9.2) |
//! | [`SoftmaxCrossEntropy`] | logits | `−Σ_j y_j ln softmax(z)_j` | yes |
//! | [`CategoricalProbabilities`] | probabilities (softmax inside f) | `−Σ_j y_j ln z_j` | no |
//! | [`BernoulliLogits`] | logits, per output | `Σ_j softplus(z_j) − y_j z_j` | yes |

mod bernoulli;
mod bound;
mod categorical;
pub mod derived;
mod gaussian;
mod targets;
#[cfg(test)]
mod tests;

pub use bernoulli::BernoulliLogits;
pub use bound::section13_bound;
pub use categorical::{CategoricalProbabilities, SoftmaxCrossEntropy};
pub use derived::{
    ClosedFormFisher, DerivedLoss, FisherSource, LogPartition, Natural, NaturalParameterMap,
    TapeLoss, ThroughNaturalParameter,
};
pub use gaussian::{GaussianMeanLogVar, GaussianNatural, SquaredError};
pub use targets::{
    check_targets, finite_target, probability_target, unit_interval_target, TargetIssue,
    CATEGORICAL_SUM_TOLERANCE,
};

use crate::error::{CurvatureError, Result};
use autodiff::Matrix;
use rand::RngCore;

/// A predictive distribution `R_{y|z}` and its loss `L(y, z) = −log r(y|z)` (Section 4).
///
/// Methods act on one example: `z` is one row of network outputs and `y` one row of targets,
/// both already checked against [`target_dim`](Self::target_dim) and
/// [`check_output`](Self::check_output) by the batch helpers.
pub trait PredictiveDistribution: Send + Sync {
    /// The name used on command lines and in manifests.
    fn name(&self) -> &str;

    /// The number of target columns for `output_dim` network outputs, or an error if this
    /// output size does not fit the distribution.
    fn target_dim(&self, output_dim: usize) -> Result<usize>;

    /// Checks that `z` is in the distribution's parameter domain (default: any real vector).
    fn check_output(&self, z: &[f64]) -> Result<()> {
        let _ = z;
        Ok(())
    }

    /// Checks that one target row `y` is in the support of `R_{y|z}` (run by
    /// [`Problem::new`](crate::Problem::new) on every row, which names the row in its error).
    /// The default accepts any row; a loss of one's own opts in by overriding it, e.g. with
    /// [`probability_target`], [`unit_interval_target`] or [`finite_target`].
    fn check_target(&self, y: &[f64]) -> std::result::Result<(), TargetIssue> {
        let _ = y;
        Ok(())
    }

    /// `L(y, z) = −log r(y|z)`.
    fn loss(&self, z: &[f64], y: &[f64]) -> f64;

    /// `Σ_n L(y_n, z_n)` over the rows of a batch (shapes checked by the caller). The default
    /// loops over the rows; a loss overrides it to vectorize across them.
    fn loss_rows(&self, z: &Matrix<f64>, y: &Matrix<f64>) -> f64 {
        (0..z.rows()).map(|r| self.loss(z.row(r), y.row(r))).sum()
    }

    /// `out ← ∇_z L(y, z)`.
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]);

    /// [`grad_z`](Self::grad_z) for every row of a batch at once (`z`, `y` and `out` one
    /// example per row, shapes checked by the caller). The default loops over the rows; a loss
    /// overrides it to vectorize across rows (the softmax's `exp` over the whole batch).
    fn grad_z_rows(&self, z: &Matrix<f64>, y: &Matrix<f64>, out: &mut Matrix<f64>) {
        for r in 0..z.rows() {
            self.grad_z(z.row(r), y.row(r), out.row_mut(r));
        }
    }

    /// `out ← H_L u`, the Hessian of `L` in `z` applied to `u`.
    fn apply_h_l(&self, z: &[f64], y: &[f64], u: &[f64], out: &mut [f64]);

    /// [`apply_h_l`](Self::apply_h_l) for every row of a batch at once (shapes checked by the
    /// caller); the default loops over the rows, as for [`grad_z_rows`](Self::grad_z_rows).
    fn apply_h_l_rows(
        &self,
        z: &Matrix<f64>,
        y: &Matrix<f64>,
        u: &Matrix<f64>,
        out: &mut Matrix<f64>,
    ) {
        for r in 0..z.rows() {
            self.apply_h_l(z.row(r), y.row(r), u.row(r), out.row_mut(r));
        }
    }

    /// `out ← F_R u`, with `F_R = E_{y~R_{y|z}}[∇_z log r ∇_z log rᵀ]` (independent of `y`).
    fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]);

    /// [`apply_f_r`](Self::apply_f_r) for every row of a batch at once (shapes checked by the
    /// caller); the default loops over the rows.
    fn apply_f_r_rows(&self, z: &Matrix<f64>, u: &Matrix<f64>, out: &mut Matrix<f64>) {
        for r in 0..z.rows() {
            self.apply_f_r(z.row(r), u.row(r), out.row_mut(r));
        }
    }

    /// `y_out ← ỹ ~ R_{y|z}` (one-hot rows for categorical distributions).
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y_out: &mut [f64]);

    /// Whether `z` is the natural parameter of an exponential family, so that `F_R = H_L`
    /// and the Fisher equals the GGN (Section 9.2).
    fn is_natural_parameter(&self) -> bool;
}

/// The distribution named `name` (the names in the module table, in snake case).
pub fn by_name(name: &str) -> Result<Box<dyn PredictiveDistribution>> {
    Ok(match name {
        "squared_error" => Box::new(SquaredError),
        "gaussian_natural" => Box::new(GaussianNatural),
        "gaussian_mean_logvar" => Box::new(GaussianMeanLogVar),
        "softmax_cross_entropy" => Box::new(SoftmaxCrossEntropy),
        "categorical_probabilities" => Box::new(CategoricalProbabilities),
        "bernoulli_logits" => Box::new(BernoulliLogits),
        other => {
            return Err(CurvatureError::invalid(
                "loss::by_name",
                format!("unknown loss '{other}' (expected one of {})", NAMES.join(", ")),
            ))
        }
    })
}

/// Every built-in loss name.
pub const NAMES: [&str; 6] = [
    "squared_error",
    "gaussian_natural",
    "gaussian_mean_logvar",
    "softmax_cross_entropy",
    "categorical_probabilities",
    "bernoulli_logits",
];

/// Checks `z` (`N × m`) against `y` (`N × target_dim(m)`) and every row of `z` against the
/// distribution's domain.
pub fn check_batch(
    dist: &dyn PredictiveDistribution,
    op: &str,
    z: &Matrix<f64>,
    y: &Matrix<f64>,
) -> Result<()> {
    let target = dist.target_dim(z.cols())?;
    if y.rows() != z.rows() || y.cols() != target {
        return Err(CurvatureError::Dimension {
            op: format!("{op} ({})", dist.name()),
            expected: format!("targets of shape {}×{target} for outputs {}", z.rows(), z.shape()),
            actual: y.shape().to_string(),
        });
    }
    check_outputs(dist, op, z)
}

fn check_outputs(dist: &dyn PredictiveDistribution, op: &str, z: &Matrix<f64>) -> Result<()> {
    dist.target_dim(z.cols())?;
    for r in 0..z.rows() {
        dist.check_output(z.row(r)).map_err(|e| {
            CurvatureError::invalid(format!("{op} ({}), row {r}", dist.name()), e.to_string())
        })?;
    }
    Ok(())
}

fn check_same(op: &str, z: &Matrix<f64>, u: &Matrix<f64>) -> Result<()> {
    if u.shape() != z.shape() {
        return Err(CurvatureError::Dimension {
            op: op.into(),
            expected: format!("u of the outputs' shape {}", z.shape()),
            actual: u.shape().to_string(),
        });
    }
    Ok(())
}

/// `h = (1/N) Σ_n L(y_n, z_n)`.
pub fn mean_loss(
    dist: &dyn PredictiveDistribution,
    z: &Matrix<f64>,
    y: &Matrix<f64>,
) -> Result<f64> {
    check_batch(dist, "mean_loss", z, y)?;
    Ok(dist.loss_rows(z, y) / z.rows() as f64)
}

/// `∇_z h`: rows `∇_z L(y_n, z_n) / N`.
pub fn loss_gradient(
    dist: &dyn PredictiveDistribution,
    z: &Matrix<f64>,
    y: &Matrix<f64>,
) -> Result<Matrix<f64>> {
    check_batch(dist, "loss_gradient", z, y)?;
    let mut out = Matrix::zeros(z.rows(), z.cols());
    dist.grad_z_rows(z, y, &mut out);
    let scale = 1.0 / z.rows() as f64;
    out.data_mut().iter_mut().for_each(|x| *x *= scale);
    Ok(out)
}

/// Rows `H_L(y_n, z_n) u_n / N`: the loss-curvature block of the mean objective.
pub fn apply_h_l_batch(
    dist: &dyn PredictiveDistribution,
    z: &Matrix<f64>,
    y: &Matrix<f64>,
    u: &Matrix<f64>,
) -> Result<Matrix<f64>> {
    check_batch(dist, "apply_h_l_batch", z, y)?;
    check_same("apply_h_l_batch", z, u)?;
    let mut out = Matrix::zeros(z.rows(), z.cols());
    dist.apply_h_l_rows(z, y, u, &mut out);
    let scale = 1.0 / z.rows() as f64;
    out.data_mut().iter_mut().for_each(|x| *x *= scale);
    Ok(out)
}

/// Rows `F_R(z_n) u_n / N`.
pub fn apply_f_r_batch(
    dist: &dyn PredictiveDistribution,
    z: &Matrix<f64>,
    u: &Matrix<f64>,
) -> Result<Matrix<f64>> {
    check_outputs(dist, "apply_f_r_batch", z)?;
    check_same("apply_f_r_batch", z, u)?;
    let mut out = Matrix::zeros(z.rows(), z.cols());
    dist.apply_f_r_rows(z, u, &mut out);
    let scale = 1.0 / z.rows() as f64;
    out.data_mut().iter_mut().for_each(|x| *x *= scale);
    Ok(out)
}

/// One target per example drawn from `R_{y|z_n}`.
pub fn sample_targets(
    dist: &dyn PredictiveDistribution,
    z: &Matrix<f64>,
    rng: &mut dyn RngCore,
) -> Result<Matrix<f64>> {
    check_outputs(dist, "sample_targets", z)?;
    let mut y = Matrix::zeros(z.rows(), dist.target_dim(z.cols())?);
    for r in 0..z.rows() {
        dist.sample(z.row(r), rng, y.row_mut(r));
    }
    Ok(y)
}

/// The dense `H_L` of one example, column `j` being `H_L e_j`.
pub fn dense_h_l(dist: &dyn PredictiveDistribution, z: &[f64], y: &[f64]) -> Matrix<f64> {
    dense_from(z.len(), |u, out| dist.apply_h_l(z, y, u, out))
}

/// The dense `F_R` of one example.
pub fn dense_f_r(dist: &dyn PredictiveDistribution, z: &[f64]) -> Matrix<f64> {
    dense_from(z.len(), |u, out| dist.apply_f_r(z, u, out))
}

fn dense_from(m: usize, apply: impl Fn(&[f64], &mut [f64])) -> Matrix<f64> {
    let mut dense = Matrix::zeros(m, m);
    let mut e = vec![0.0; m];
    let mut col = vec![0.0; m];
    for j in 0..m {
        e[j] = 1.0;
        apply(&e, &mut col);
        e[j] = 0.0;
        for i in 0..m {
            dense[(i, j)] = col[i];
        }
    }
    dense
}
