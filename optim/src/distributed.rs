//! [`DistributedObjective`]: the objective of a batch split over ranks
//! ([`curvature::distributed::DistributedProblem`]), so every solver runs unchanged on it.
//!
//! Each rank holds its shard; the loss, the gradient and every curvature product are
//! all-reduced, so all ranks see the same numbers to the bit, run the same CG iterations and
//! keep the same θ ([`differences_from_rank_zero`](curvature::distributed::differences_from_rank_zero)
//! checks it). The solvers' own randomness (Hessian-free's preconditioner probes) is seeded,
//! and so the same on every rank; the Monte-Carlo Fisher draws per-rank targets
//! ([`monte_carlo_seed`](curvature::distributed::monte_carlo_seed)).
//!
//! ```
//! use autodiff::Matrix;
//! use curvature::distributed::SingleProcess;
//! use curvature::loss::SquaredError;
//! use curvature::{Activation, Mlp};
//! use optim::hessian_free::{HessianFree, HessianFreeParams};
//! use optim::{DistributedObjective, Objective, Solver};
//! let mlp = Mlp::new(&[2, 4, 1], &[Activation::Tanh, Activation::Identity])?;
//! let x = Matrix::from_fn(8, 2, |i, j| (i + 3 * j) as f64 * 0.1);
//! let y = Matrix::from_fn(8, 1, |i, _| (i as f64 * 0.7).sin());
//! // Under MPI: this rank's rows and `MpiWorld::initialize()?`.
//! let mut objective = DistributedObjective::new(&mlp, &SquaredError, &x, &y, 1, &SingleProcess)?;
//! let mut theta = vec![0.3; mlp.num_params()];
//! let before = objective.loss(&theta)?;
//! HessianFree::new(HessianFreeParams::default())?.step(&mut theta, &mut objective)?;
//! assert!(objective.loss(&theta)? < before);
//! # Ok::<(), optim::OptimError>(())
//! ```

use crate::error::Result;
use crate::objective::Objective;
use autodiff::Matrix;
use curvature::distributed::{Communicator, DistributedProblem};
use curvature::loss::PredictiveDistribution;
use curvature::{CurvatureKind, LinearOperator, Model};

/// The full-batch objective `h(θ) = (1/N) Σ_n L(y_n, f(x_n, θ))` over the union of every rank's
/// shard. Every method is collective: all ranks call it together, with the same θ.
pub struct DistributedObjective<'a, M: Model> {
    problem: DistributedProblem<'a, M>,
}

impl<'a, M: Model + Sync> DistributedObjective<'a, M> {
    /// This rank's shard `(x, y)` on `threads` threads inside the rank
    /// ([`DistributedProblem::new`]; collective).
    pub fn new(
        model: &'a M,
        loss: &'a dyn PredictiveDistribution,
        x: &'a Matrix<f64>,
        y: &'a Matrix<f64>,
        threads: usize,
        communicator: &'a dyn Communicator,
    ) -> Result<Self> {
        Ok(DistributedObjective {
            problem: DistributedProblem::new(model, loss, x, y, threads, communicator)?,
        })
    }

    /// The distributed problem (for products the [`Objective`] trait does not name).
    pub fn problem(&self) -> &DistributedProblem<'a, M> {
        &self.problem
    }
}

impl<M: Model + Sync> Objective for DistributedObjective<'_, M> {
    fn dim(&self) -> usize {
        self.problem.dim()
    }

    fn loss(&mut self, theta: &[f64]) -> Result<f64> {
        Ok(self.problem.at(theta)?.loss()?)
    }

    fn loss_and_gradient(&mut self, theta: &[f64], gradient: &mut [f64]) -> Result<f64> {
        let (loss, g) = self.problem.at(theta)?.loss_and_gradient()?;
        if gradient.len() != g.len() {
            return Err(curvature::CurvatureError::length(
                "DistributedObjective::loss_and_gradient (gradient)",
                g.len(),
                gradient.len(),
            )
            .into());
        }
        gradient.copy_from_slice(&g);
        Ok(loss)
    }

    fn curvature(
        &mut self,
        theta: &[f64],
        kind: &CurvatureKind,
    ) -> Result<Box<dyn LinearOperator + '_>> {
        Ok(self.problem.operator(theta, kind)?)
    }
}
