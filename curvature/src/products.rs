//! One products trait: [`CurvatureProducts`], what a recorded forward pass offers every curvature
//! matrix, whatever runs it ([`ForwardPass`](crate::ForwardPass) on one thread,
//! [`ShardedPass`](crate::ShardedPass) on one thread per row block).
//!
//! The generic [`CurvatureOperator`](crate::CurvatureOperator) turns any implementation into the
//! matrix of a [`CurvatureKind`](crate::CurvatureKind) with one `match`, so a new kind of pass
//! gets every curvature matrix (block-diagonal and Monte-Carlo ones included) by implementing
//! these products once.

use crate::error::{CurvatureError, Result};
use crate::loss::{self, PredictiveDistribution};
use autodiff::Matrix;
use rand::{rngs::StdRng, SeedableRng};
use std::ops::Range;

/// The products of Martens (2020) at one θ and batch, averaged over the batch like
/// `h(θ) = (1/N) Σ_n L(y_n, f(x_n, θ))` (Section 3).
///
/// `n` is the number of parameters, `N` the number of examples, `m` the output size, `J_n` the
/// Jacobian of `f(x_n, θ)` with respect to θ (`m × n`), and `z_n = f(x_n, θ)`. Every product
/// checks the lengths and shapes of its arguments (a [`CurvatureError`], never a panic) and,
/// while the [finite checks](crate::checks) are on, their values and its result.
///
/// Implemented by [`ForwardPass`](crate::ForwardPass), [`ShardedPass`](crate::ShardedPass)
/// (the same quantities to round-off: the row blocks only reorder the sums over examples), and
/// by `&T` for any implementation `T`, so that a
/// [`CurvatureOperator`](crate::CurvatureOperator) may own its pass or borrow it.
pub trait CurvatureProducts {
    /// The number of parameters `n`.
    fn dim(&self) -> usize;

    /// The objective `h(θ) = (1/N) Σ_n L(y_n, z_n)` (Section 3).
    fn loss(&self) -> Result<f64>;

    /// The gradient `∇h(θ) = (1/N) Σ_n J_nᵀ ∇_z L(y_n, z_n)` (eqn 1).
    fn gradient(&self) -> Result<Vec<f64>>;

    /// `J v` (`N × m`, row n is `J_n v`; Section 9.1).
    fn jacobian_vector_product(&self, v: &[f64]) -> Result<Matrix<f64>>;

    /// `Jᵀ u = Σ_n J_nᵀ u_n` for `u` of the output's shape `N × m` (Section 9.1; not averaged).
    fn transpose_jacobian_vector_product(&self, u: &Matrix<f64>) -> Result<Vec<f64>>;

    /// The generalized Gauss-Newton product `G v = (1/N) Σ_n J_nᵀ H_L(z_n) J_n v` (eqn 5).
    fn ggn_vector_product(&self, v: &[f64]) -> Result<Vec<f64>>;

    /// The Fisher product `F v = (1/N) Σ_n J_nᵀ F_R(z_n) J_n v` (eqn 7).
    fn fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>>;

    /// The empirical Fisher product `F̄ v = (1/N) Σ_n ∇L_n (∇L_nᵀ v)` over the training targets,
    /// `∇L_n = J_nᵀ ∇_z L(y_n, z_n)` (Section 11).
    fn empirical_fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>>;

    /// The Hessian product `H v` (eqn 6):
    /// `H = (1/N) Σ_n J_nᵀ H_L J_n + (1/N) Σ_n Σ_j [∇_z L_n]_j H_{[f]_j}`.
    fn hessian_vector_product(&self, v: &[f64]) -> Result<Vec<f64>>;

    /// `samples` target matrices `ỹ_s` (each `N ×` the loss's target size, row n drawn from
    /// `R_{y|z_n}`), from one generator seeded with `seed` that draws sample by sample and, within
    /// a sample, example by example in batch order (Section 11.1). Errors if `samples` is zero.
    fn monte_carlo_targets(&self, samples: usize, seed: u64) -> Result<Vec<Matrix<f64>>>;

    /// The Monte-Carlo Fisher product for the targets `ỹ_s` (as drawn by
    /// [`monte_carlo_targets`](Self::monte_carlo_targets)):
    /// `(1/(N S)) Σ_n Σ_s g̃_{ns} (g̃_{ns}ᵀ v)` with `g̃_{ns} = J_nᵀ ∇_z L(ỹ_{ns}, z_n)` and `S`
    /// the number of target matrices (Section 11.1), from one `J v` and one reverse sweep.
    /// Errors if `targets` is empty or a matrix does not have the shape of the loss's targets.
    fn monte_carlo_fisher_vector_product(
        &self,
        targets: &[Matrix<f64>],
        v: &[f64],
    ) -> Result<Vec<f64>>;

    /// One range of θ per layer (its `W_i` and `b_i` together): the blocks of the block-diagonal
    /// kinds ([`layer_blocks`](crate::operator::layer_blocks) of the model).
    fn layer_blocks(&self) -> Vec<Range<usize>>;

    /// Takes back a vector that one of this pass's products returned, once its values are used,
    /// so that the next product can reuse its memory (a [`ShardedPass`](crate::ShardedPass)
    /// returns it to its first block's buffer pool). The default drops it.
    fn recycle(&self, product: Vec<f64>) {
        drop(product);
    }
}

impl<T: CurvatureProducts + ?Sized> CurvatureProducts for &T {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn loss(&self) -> Result<f64> {
        (**self).loss()
    }
    fn gradient(&self) -> Result<Vec<f64>> {
        (**self).gradient()
    }
    fn jacobian_vector_product(&self, v: &[f64]) -> Result<Matrix<f64>> {
        (**self).jacobian_vector_product(v)
    }
    fn transpose_jacobian_vector_product(&self, u: &Matrix<f64>) -> Result<Vec<f64>> {
        (**self).transpose_jacobian_vector_product(u)
    }
    fn ggn_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        (**self).ggn_vector_product(v)
    }
    fn fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        (**self).fisher_vector_product(v)
    }
    fn empirical_fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        (**self).empirical_fisher_vector_product(v)
    }
    fn hessian_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        (**self).hessian_vector_product(v)
    }
    fn monte_carlo_targets(&self, samples: usize, seed: u64) -> Result<Vec<Matrix<f64>>> {
        (**self).monte_carlo_targets(samples, seed)
    }
    fn monte_carlo_fisher_vector_product(
        &self,
        targets: &[Matrix<f64>],
        v: &[f64],
    ) -> Result<Vec<f64>> {
        (**self).monte_carlo_fisher_vector_product(targets, v)
    }
    fn layer_blocks(&self) -> Vec<Range<usize>> {
        (**self).layer_blocks()
    }
    fn recycle(&self, product: Vec<f64>) {
        (**self).recycle(product)
    }
}

/// The Monte-Carlo targets of a batch whose outputs `z` are the rows of `outputs` stacked in
/// order (one matrix for a [`ForwardPass`](crate::ForwardPass), one per row block for a
/// [`ShardedPass`](crate::ShardedPass)): for each sample, the blocks' rows drawn in order from
/// one generator, so the targets do not depend on how the batch is split.
pub(crate) fn draw_monte_carlo_targets(
    distribution: &dyn PredictiveDistribution,
    outputs: &[&Matrix<f64>],
    samples: usize,
    seed: u64,
) -> Result<Vec<Matrix<f64>>> {
    if samples == 0 {
        return Err(CurvatureError::invalid("monte_carlo_fisher", "needs at least one sample"));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    (0..samples)
        .map(|_| match outputs {
            [z] => loss::sample_targets(distribution, z, &mut rng),
            _ => {
                let parts = outputs
                    .iter()
                    .map(|z| loss::sample_targets(distribution, z, &mut rng))
                    .collect::<Result<Vec<_>>>()?;
                stack_rows(&parts)
            }
        })
        .collect()
}

/// The rows of `parts` one under the other (the parts have the same number of columns).
fn stack_rows(parts: &[Matrix<f64>]) -> Result<Matrix<f64>> {
    let cols = parts.first().map_or(0, Matrix::cols);
    let rows = parts.iter().map(Matrix::rows).sum();
    let mut data = Vec::with_capacity(rows * cols);
    for part in parts {
        data.extend_from_slice(part.data());
    }
    Ok(Matrix::from_vec(rows, cols, data)?)
}

/// Checks Monte-Carlo `targets` for a batch of `rows` outputs with `output_cols` columns: at
/// least one matrix, each of the shape of the loss's targets.
pub(crate) fn check_monte_carlo_targets(
    distribution: &dyn PredictiveDistribution,
    rows: usize,
    output_cols: usize,
    targets: &[Matrix<f64>],
) -> Result<()> {
    if targets.is_empty() {
        return Err(CurvatureError::invalid(
            "monte_carlo_fisher_vector_product",
            "needs at least one target matrix",
        ));
    }
    let cols = distribution.target_dim(output_cols)?;
    match targets.iter().position(|t| t.rows() != rows || t.cols() != cols) {
        Some(s) => Err(CurvatureError::Dimension {
            op: format!("monte_carlo_fisher_vector_product (targets[{s}])"),
            expected: format!("{rows}×{cols}"),
            actual: targets[s].shape().to_string(),
        }),
        None => Ok(()),
    }
}
