//! Second-order solvers and the convergence theory of Section 14.

pub mod averaging;
pub mod cg;
pub mod damping;
pub mod diagonal;
pub mod error;
pub mod hessian_free;
pub mod natural_gradient;
pub mod objective;
pub mod schedule;
pub mod sgd;
pub mod solver;

pub use error::{OptimError, Result};
pub use objective::{NetworkObjective, Objective, QuadraticObjective};
pub use solver::{Solver, StepReport, Work};
