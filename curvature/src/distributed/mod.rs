//! Data parallelism over processes: [`DistributedProblem`] holds one rank's shard of the batch
//! and all-reduces every product over a [`Communicator`] (MPI with the `mpi` feature,
//! `mpi::MpiWorld`; threads of one process with [`LocalGroup`]).
//!
//! Every quantity of Section 3 is an average over examples, `h(θ) = (1/N) Σ_n L(y_n, f(x_n, θ))`,
//! so the batch splits across ranks exactly as [`ShardedProblem`](crate::ShardedProblem) splits
//! it across threads: rank r computes its shard's average (on its own threads), weights it by
//! `N_r / N` and the ranks sum. The global `N = Σ_r N_r` is all-reduced once, at construction.
//!
//! **Communication**: each product is a small all-reduce of 1 float (the error flag) followed by
//! one all-reduce of the `n` floats of the product, in place in the product's own vector; the
//! loss is one all-reduce of 2 floats (the flag and the loss), and the loss and gradient
//! together 2 floats then `n`. Nothing else is sent: θ and `v` are already on every rank,
//! because every rank runs the same solver on the same (bitwise) all-reduced products.
//!
//! **Failures are collective**: a rank whose local part fails (bad targets, a non-finite value)
//! still takes part in the flag's all-reduce, with its flag set, so every rank returns an error
//! from the same call instead of the others waiting for it forever, and no rank sends the
//! `n`-float vector for a product that failed somewhere.
//!
//! **Monte-Carlo Fisher**: rank r draws its shard's targets from
//! [`monte_carlo_seed`]`(seed, r)`, so the estimate is deterministic for a given number of ranks
//! and the same as a one-process Monte-Carlo Fisher of the same shards drawn with the same
//! seeds, but not the same as an unsharded one-process draw (a different, equally unbiased,
//! sample).
//!
//! ```
//! use autodiff::Matrix;
//! use curvature::distributed::{DistributedProblem, SingleProcess};
//! use curvature::loss::SquaredError;
//! use curvature::{Activation, Mlp, Problem};
//! let mlp = Mlp::new(&[2, 3, 1], &[Activation::Tanh, Activation::Identity])?;
//! let x = Matrix::from_fn(5, 2, |i, j| (i + 2 * j) as f64 * 0.1);
//! let y = Matrix::from_fn(5, 1, |i, _| i as f64 * 0.2);
//! let theta = vec![0.1; mlp.num_params()];
//! // Under MPI each rank passes its own rows and `MpiWorld`; alone, the whole batch.
//! let distributed = DistributedProblem::new(&mlp, &SquaredError, &x, &y, 2, &SingleProcess)?;
//! let whole = Problem::new(&mlp, &SquaredError, &x, &y)?.at(&theta)?.gradient()?;
//! let all_reduced = distributed.at(&theta)?.gradient()?;
//! for (a, b) in whole.iter().zip(&all_reduced) {
//!     assert!((a - b).abs() <= 1e-15);
//! }
//! # Ok::<(), curvature::CurvatureError>(())
//! ```

mod communicator;
#[cfg(feature = "mpi")]
pub mod mpi;
mod shard;

pub use communicator::{Communicator, LocalGroup, SingleProcess};

use crate::error::{CurvatureError, Result};
use crate::loss::PredictiveDistribution;
use crate::model::Model;
use crate::operator::{check_apply_lengths, CurvatureKind, LinearOperator};
use autodiff::Matrix;
use shard::{Shard, ShardPass};
use std::ops::Range;

/// Rank `rank`'s rows of `rows` examples split over `size` ranks: contiguous ranges in rank
/// order, sizes differing by at most one (the first `rows % size` ranks get one more).
pub fn shard_range(rows: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    let (base, extra) = (rows / size, rows % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// The seed rank `rank` draws its Monte-Carlo Fisher targets from, for a solver's `seed`:
/// `seed` itself on rank 0 (so one rank reproduces the one-process estimator), and distinct,
/// fixed seeds on the others (SplitMix64's increment times the rank, so shards draw
/// independent targets).
pub fn monte_carlo_seed(seed: u64, rank: usize) -> u64 {
    seed.wrapping_add((rank as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// `kind` with every Monte-Carlo seed replaced by this rank's ([`monte_carlo_seed`]), and
/// whether it draws targets at all.
fn rank_kind(kind: &CurvatureKind, rank: usize) -> (CurvatureKind, bool) {
    match kind {
        CurvatureKind::MonteCarloFisher { samples, seed } => (
            CurvatureKind::MonteCarloFisher {
                samples: *samples,
                seed: monte_carlo_seed(*seed, rank),
            },
            true,
        ),
        CurvatureKind::BlockDiagonal(inner) => {
            let (inner, monte_carlo) = rank_kind(inner, rank);
            (CurvatureKind::BlockDiagonal(Box::new(inner)), monte_carlo)
        }
        other => (other.clone(), false),
    }
}

/// How many entries of `values` differ (as bits) from rank 0's, summed over ranks, on every
/// rank: 0 when every rank holds the same θ. Two all-reduces, of `values.len()` floats and of one.
/// Collective; errors if the ranks pass different lengths.
pub fn differences_from_rank_zero(
    values: &[f64],
    communicator: &dyn Communicator,
) -> Result<usize> {
    // Rank 0 sends its values, the others −0.0, and `x + (−0.0)` is `x` to the bit for every
    // x (+0.0 included), so every rank receives rank 0's values exactly.
    let mut first: Vec<f64> =
        if communicator.rank() == 0 { values.to_vec() } else { vec![-0.0; values.len()] };
    communicator.all_reduce_sum(&mut first)?;
    let differing = values.iter().zip(&first).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    let mut total = [differing as f64];
    communicator.all_reduce_sum(&mut total)?;
    Ok(total[0] as usize)
}

/// One rank's shard of a batch, whose products are all-reduced into those of the whole batch.
pub struct DistributedProblem<'a, M: Model> {
    model: &'a M,
    x: &'a Matrix<f64>,
    shard: Shard<'a, M>,
    communicator: &'a dyn Communicator,
    /// `N_r / N`: this shard's share of the global batch.
    weight: f64,
    global_rows: usize,
}

impl<'a, M: Model + Sync> DistributedProblem<'a, M> {
    /// This rank's shard `(x, y)` (at least one row), run on `threads` threads inside the rank:
    /// a plain [`Problem`](crate::Problem) for one thread, a
    /// [`ShardedProblem`](crate::ShardedProblem) for more (the same results to the bit for one
    /// thread). Collective: every rank calls it; it all-reduces the shard sizes once, and errors
    /// on every rank if any rank's shard is invalid.
    pub fn new(
        model: &'a M,
        loss: &'a dyn PredictiveDistribution,
        x: &'a Matrix<f64>,
        y: &'a Matrix<f64>,
        threads: usize,
        communicator: &'a dyn Communicator,
    ) -> Result<Self> {
        let local = Shard::new(model, loss, x, y, threads);
        let mut counts = [x.rows() as f64, f64::from(u8::from(local.is_err()))];
        communicator.all_reduce_sum(&mut counts)?;
        let shard = local.map_err(|e| rank_error(communicator, "DistributedProblem::new", e))?;
        if counts[1] > 0.0 {
            return Err(others_failed(communicator, "DistributedProblem::new", counts[1]));
        }
        let global_rows = counts[0] as usize;
        Ok(DistributedProblem {
            model,
            x,
            shard,
            communicator,
            weight: x.rows() as f64 / global_rows as f64,
            global_rows,
        })
    }

    /// The number of parameters `n`.
    pub fn dim(&self) -> usize {
        self.model.num_params()
    }

    /// This rank's number of examples `N_r`.
    pub fn local_rows(&self) -> usize {
        self.x.rows()
    }

    /// The whole batch's number of examples `N = Σ_r N_r`.
    pub fn global_rows(&self) -> usize {
        self.global_rows
    }

    /// The communicator the products are summed over.
    pub fn communicator(&self) -> &'a dyn Communicator {
        self.communicator
    }

    /// Records this shard's forward pass at θ. A local failure (e.g. a non-finite output) is
    /// kept and reported on every rank by the first product, which all ranks call together.
    pub fn at(&self, theta: &[f64]) -> Result<DistributedPass<'_, M>> {
        if theta.len() != self.dim() {
            // The same on every rank (one model), so no rank waits for another.
            return Err(CurvatureError::length(
                "DistributedProblem::at (θ)",
                self.dim(),
                theta.len(),
            ));
        }
        Ok(DistributedPass { local: self.shard.at(theta), problem: self })
    }

    /// `H v` of the whole batch at θ from θ alone
    /// ([`Problem::hessian_vector_product`](crate::Problem::hessian_vector_product) on the
    /// shard): the flag's all-reduce, then one of `n` floats.
    pub fn hessian_vector_product(&self, theta: &[f64], v: &[f64]) -> Result<Vec<f64>> {
        let local = self.shard.hessian_vector_product(theta, v);
        self.reduce("DistributedProblem::hessian_vector_product", local)
    }

    /// The whole batch's curvature matrix of `kind` at θ as an operator whose every `apply`
    /// is the flag's all-reduce and one of `n` floats, in place in `apply`'s output. Monte-Carlo
    /// kinds draw this rank's targets from [`monte_carlo_seed`] on one thread; the others run
    /// on the shard's threads.
    pub fn operator(
        &self,
        theta: &[f64],
        kind: &CurvatureKind,
    ) -> Result<Box<dyn LinearOperator + '_>> {
        if theta.len() != self.dim() {
            return Err(CurvatureError::length(
                "DistributedProblem::operator (θ)",
                self.dim(),
                theta.len(),
            ));
        }
        let (kind, monte_carlo) = rank_kind(kind, self.communicator.rank());
        let local = self.shard.operator(theta, &kind, monte_carlo);
        Ok(Box::new(DistributedOperator { local, problem: self }))
    }

    /// The first, small all-reduce of every collective call: `[failed, (N_r/N) scalar]`
    /// summed over ranks (just `[failed]` without a scalar), where `failed` counts the ranks
    /// whose local part failed. Returns the summed scalar (0 without one), or on every rank the
    /// error: this rank's own, or that others failed. Sent before any `n`-float vector, so a
    /// failure costs every rank only this.
    fn agree(
        &self,
        op: &str,
        local_error: Option<CurvatureError>,
        scalar: Option<f64>,
    ) -> Result<f64> {
        let flag = f64::from(u8::from(local_error.is_some()));
        let mut small = [flag, self.weight * scalar.unwrap_or_default()];
        let small = &mut small[..1 + usize::from(scalar.is_some())];
        self.communicator.all_reduce_sum(small)?;
        if let Some(e) = local_error {
            return Err(rank_error(self.communicator, op, e));
        }
        if small[0] > 0.0 {
            return Err(others_failed(self.communicator, op, small[0]));
        }
        Ok(small.get(1).copied().unwrap_or_default())
    }

    /// `values ← Σ_ranks (N_r/N) values_r` in place: the `n`-float all-reduce of a product,
    /// after [`agree`](Self::agree) found every rank's part.
    fn weighted_sum_in_place(&self, values: &mut [f64]) -> Result<()> {
        if self.weight != 1.0 {
            values.iter_mut().for_each(|value| *value *= self.weight);
        }
        self.communicator.all_reduce_sum(values)
    }

    /// `Σ_ranks (N_r/N) local_r` on every rank: the flag's all-reduce, then (when every rank's
    /// part is there) the weighted part summed in place, one all-reduce of `n` floats.
    fn reduce(&self, op: &str, local: Result<Vec<f64>>) -> Result<Vec<f64>> {
        let n = self.dim();
        let (mut part, local_error) = match local {
            Ok(part) if part.len() == n => (part, None),
            Ok(part) => (Vec::new(), Some(CurvatureError::length(op, n, part.len()))),
            Err(e) => (Vec::new(), Some(e)),
        };
        self.agree(op, local_error, None)?;
        self.weighted_sum_in_place(&mut part)?;
        Ok(part)
    }
}

/// This rank's own failure, naming the rank.
fn rank_error(communicator: &dyn Communicator, op: &str, e: CurvatureError) -> CurvatureError {
    let (rank, size) = (communicator.rank(), communicator.size());
    CurvatureError::invalid(op, format!("rank {rank} of {size} failed: {e}"))
}

/// Another rank's failure, seen from a rank whose own part succeeded.
fn others_failed(communicator: &dyn Communicator, op: &str, failed: f64) -> CurvatureError {
    let (rank, size) = (communicator.rank(), communicator.size());
    CurvatureError::invalid(
        op,
        format!(
            "{failed} of {size} ranks failed (rank {rank} did not; the failing rank reports why)"
        ),
    )
}

/// One rank's forward pass at θ; every product is all-reduced into the whole batch's.
/// Collective: every rank calls the same products in the same order.
pub struct DistributedPass<'p, M: Model> {
    local: Result<ShardPass<'p, M>>,
    problem: &'p DistributedProblem<'p, M>,
}

impl<M: Model + Sync> DistributedPass<'_, M> {
    fn product(
        &self,
        op: &str,
        f: impl FnOnce(&ShardPass<'_, M>) -> Result<Vec<f64>>,
    ) -> Result<Vec<f64>> {
        let local = match &self.local {
            Ok(pass) => f(pass),
            Err(e) => Err(e.clone()),
        };
        self.problem.reduce(op, local)
    }

    fn check_v(&self, op: &str, v: &[f64]) -> Result<()> {
        // The same on every rank, so it may return before the all-reduce.
        if v.len() != self.problem.dim() {
            return Err(CurvatureError::length(op, self.problem.dim(), v.len()));
        }
        Ok(())
    }

    /// `h(θ)` of the whole batch (one all-reduce of 2 floats: the flag and the loss).
    pub fn loss(&self) -> Result<f64> {
        let local = match &self.local {
            Ok(pass) => pass.loss(),
            Err(e) => Err(e.clone()),
        };
        let (loss, local_error) = match local {
            Ok(loss) => (loss, None),
            Err(e) => (0.0, Some(e)),
        };
        self.problem.agree("DistributedPass::loss", local_error, Some(loss))
    }

    /// `h(θ)` and `∇h(θ)` of the whole batch: one all-reduce of 2 floats (the flag and the
    /// loss), then one of the `n` floats of the gradient.
    pub fn loss_and_gradient(&self) -> Result<(f64, Vec<f64>)> {
        let op = "DistributedPass::loss_and_gradient";
        let local = match &self.local {
            Ok(pass) => pass.gradient().and_then(|g| Ok((pass.loss()?, g))),
            Err(e) => Err(e.clone()),
        };
        let n = self.problem.dim();
        let (loss, mut gradient, local_error) = match local {
            Ok((loss, g)) if g.len() == n => (loss, g, None),
            Ok((_, g)) => (0.0, Vec::new(), Some(CurvatureError::length(op, n, g.len()))),
            Err(e) => (0.0, Vec::new(), Some(e)),
        };
        let loss = self.problem.agree(op, local_error, Some(loss))?;
        self.problem.weighted_sum_in_place(&mut gradient)?;
        Ok((loss, gradient))
    }

    /// `∇h(θ)` (eqn 1) of the whole batch.
    pub fn gradient(&self) -> Result<Vec<f64>> {
        self.product("DistributedPass::gradient", |p| p.gradient())
    }

    /// `G v` (eqn 5) of the whole batch.
    pub fn ggn_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        self.check_v("DistributedPass::ggn_vector_product (v)", v)?;
        self.product("DistributedPass::ggn_vector_product", |p| p.ggn_vector_product(v))
    }

    /// `F v` (eqn 7) of the whole batch.
    pub fn fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        self.check_v("DistributedPass::fisher_vector_product (v)", v)?;
        self.product("DistributedPass::fisher_vector_product", |p| p.fisher_vector_product(v))
    }

    /// `F̄ v` (Section 11) of the whole batch.
    pub fn empirical_fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        self.check_v("DistributedPass::empirical_fisher_vector_product (v)", v)?;
        self.product("DistributedPass::empirical_fisher_vector_product", |p| {
            p.empirical_fisher_vector_product(v)
        })
    }

    /// `H v` (eqn 6) of the whole batch, over the recorded passes.
    pub fn hessian_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        self.check_v("DistributedPass::hessian_vector_product (v)", v)?;
        self.product("DistributedPass::hessian_vector_product", |p| p.hessian_vector_product(v))
    }
}

/// A whole batch's curvature matrix: this shard's operator, weighted and all-reduced.
struct DistributedOperator<'p, M: Model> {
    local: Result<Box<dyn LinearOperator + 'p>>,
    problem: &'p DistributedProblem<'p, M>,
}

impl<M: Model + Sync> LinearOperator for DistributedOperator<'_, M> {
    fn dim(&self) -> usize {
        self.problem.dim()
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        let op = "DistributedOperator::apply";
        check_apply_lengths(op, self.dim(), v, out)?;
        // The local product is written straight into `out` and summed there, in place.
        let local_error = match &self.local {
            Ok(operator) => operator.apply(v, out).err(),
            Err(e) => Some(e.clone()),
        };
        self.problem.agree(op, local_error, None)?;
        self.problem.weighted_sum_in_place(out)
    }

    fn is_symmetric(&self) -> bool {
        self.local.as_ref().map_or(true, |op| op.is_symmetric())
    }
}

#[cfg(test)]
mod tests;
