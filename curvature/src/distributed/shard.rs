//! [`Shard`]: one rank's rows, run as a plain [`Problem`] on one thread or as a
//! [`ShardedProblem`] on several.
//!
//! With one thread per rank (the usual MPI layout: one rank per core) a one-block
//! `ShardedProblem` would only add its per-product costs (a scoped thread region, a mutex per
//! pass, a buffer-pool scope, the weighted sum's pass over the result), so the rank runs its
//! shard's [`ForwardPass`] directly. Both give the same bits: a one-block `ShardedPass`
//! multiplies its block's vector by the weight `1.0`.

use crate::error::Result;
use crate::loss::PredictiveDistribution;
use crate::model::Model;
use crate::operator::{CurvatureKind, LinearOperator};
use crate::parallel::{ShardedPass, ShardedProblem};
use crate::problem::{ForwardPass, Problem};
use autodiff::Matrix;

/// One rank's rows: a plain [`Problem`], and a [`ShardedProblem`] of the same rows when the
/// rank runs on several threads.
pub(super) struct Shard<'a, M: Model> {
    /// The shard as one problem: the one-thread path, and the Monte-Carlo Fisher's.
    problem: Problem<'a, M>,
    /// The shard's row blocks, one thread each, for more than one thread.
    threads: Option<ShardedProblem<'a, M>>,
}

impl<'a, M: Model + Sync> Shard<'a, M> {
    /// The shard `(x, y)` on `threads` threads: a plain [`Problem`] for one, else also a
    /// [`ShardedProblem`]. Errors as [`Problem::new`] does, or if `threads` is zero.
    pub(super) fn new(
        model: &'a M,
        loss: &'a dyn PredictiveDistribution,
        x: &'a Matrix<f64>,
        y: &'a Matrix<f64>,
        threads: usize,
    ) -> Result<Self> {
        let threads = match threads {
            1 => None,
            _ => Some(ShardedProblem::from_parts(model, loss, x, y, threads)?),
        };
        Ok(Shard { problem: Problem::new(model, loss, x, y)?, threads })
    }

    /// The shard as one problem, borrowed for as long as `self` (`Problem` is covariant).
    fn problem(&self) -> Problem<'_, M> {
        self.problem
    }

    /// Records the shard's forward pass at θ.
    pub(super) fn at(&self, theta: &[f64]) -> Result<ShardPass<'_, M>> {
        match &self.threads {
            None => self.problem().at(theta).map(ShardPass::Plain),
            Some(sharded) => sharded.at(theta).map(ShardPass::Threads),
        }
    }

    /// The shard's `H v` at θ from θ alone.
    pub(super) fn hessian_vector_product(&self, theta: &[f64], v: &[f64]) -> Result<Vec<f64>> {
        match &self.threads {
            None => self.problem.hessian_vector_product(theta, v),
            Some(sharded) => sharded.hessian_vector_product(theta, v),
        }
    }

    /// The shard's curvature matrix of `kind` at θ. A Monte-Carlo kind (`monte_carlo`) runs on
    /// one thread: a [`ShardedPass`] does not draw targets (per block they would be another
    /// estimator).
    pub(super) fn operator(
        &self,
        theta: &[f64],
        kind: &CurvatureKind,
        monte_carlo: bool,
    ) -> Result<Box<dyn LinearOperator + '_>> {
        match &self.threads {
            Some(sharded) if !monte_carlo => {
                sharded.at(theta).and_then(|pass| pass.into_operator(kind))
            }
            _ => self.problem().at(theta).and_then(|pass| pass.into_operator(kind)),
        }
    }
}

/// A shard's forward pass at one θ: a [`ForwardPass`] or a [`ShardedPass`].
pub(super) enum ShardPass<'p, M: Model> {
    /// One thread.
    Plain(ForwardPass<'p, M>),
    /// Several threads.
    Threads(ShardedPass<'p, M>),
}

/// The same call on either kind of pass.
macro_rules! either {
    ($self:expr, $pass:ident => $call:expr) => {
        match $self {
            ShardPass::Plain($pass) => $call,
            ShardPass::Threads($pass) => $call,
        }
    };
}

impl<M: Model + Sync> ShardPass<'_, M> {
    /// The shard's `h(θ)` (its own average).
    pub(super) fn loss(&self) -> Result<f64> {
        either!(self, pass => pass.loss())
    }

    /// The shard's `∇h(θ)`.
    pub(super) fn gradient(&self) -> Result<Vec<f64>> {
        either!(self, pass => pass.gradient())
    }

    /// The shard's `G v`.
    pub(super) fn ggn_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        either!(self, pass => pass.ggn_vector_product(v))
    }

    /// The shard's `F v`.
    pub(super) fn fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        either!(self, pass => pass.fisher_vector_product(v))
    }

    /// The shard's `F̄ v`.
    pub(super) fn empirical_fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        either!(self, pass => pass.empirical_fisher_vector_product(v))
    }

    /// The shard's `H v` over the recorded pass.
    pub(super) fn hessian_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        either!(self, pass => pass.hessian_vector_product(v))
    }
}
