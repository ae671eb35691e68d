//! Second-order solvers and the convergence theory of Section 14 (Martens, JMLR 2020).
//!
//! Every solver implements [`Solver`]: one step from θ on an [`Objective`], which gives the loss,
//! the gradient and curvature products ([`curvature::LinearOperator`]) on the current
//! (mini)batch. [`NetworkObjective`] wraps a `curvature` model, loss and data set (with
//! minibatches); [`QuadraticObjective`] a quadratic. Each step returns a [`StepReport`]: loss,
//! predicted and actual reduction, `ρ`, `λ`, CG iterations and stop reason, step norm, and the
//! work done ([`Work`], convertible to gradient-equivalent passes).
//!
//! - [`sgd::GradientDescent`]: gradient descent / SGD with heavy-ball momentum.
//! - [`diagonal::DiagonalMethod`]: eqn 10, `θ ← θ − α_k (B_k + λI)^{−ξ} g_k`, with AdaGrad,
//!   RMSprop and Adam as configurations (Section 11.2).
//! - [`natural_gradient::NaturalGradient`]: `δ = −(B + λI)⁻¹∇h` with any
//!   [`curvature::CurvatureKind`] (block-diagonal ones too), dense or by CG, fixed or
//!   Levenberg-Marquardt damping (Section 10).
//! - [`hessian_free::HessianFree`]: Martens (2010).
//! - [`kfac::KroneckerFactored`]: K-FAC (Martens & Grosse 2015) on [`curvature::kfac`], with the
//!   step and momentum from the exact 2-D quadratic model.
//! - [`cg::conjugate_gradient`]: stops and reports on negative curvature or breakdown, keeping
//!   the last good iterate; [`damping`]: `ρ` and the LM rule; [`schedule`]; [`averaging`].
//! - [`theory`]: Section 14's exact recursions, Theorems 3, 5 and 6, and a Monte-Carlo simulator.
//!
//! Bad settings (a negative step, `λ < 0`, `ξ ∉ (0, 1]`, …) are [`OptimError`]s at
//! construction; so are non-finite or non-symmetric matrices given to [`QuadraticObjective`] and
//! a non-finite `x0` or `b` given to [`cg::conjugate_gradient`].
//!
//! Every solver keeps the last good iterate. An error leaves θ unchanged. A trial step whose θ,
//! direction or loss is NaN or infinite is rejected: θ (and the solver's state, but `λ`, which
//! rises) is unchanged and [`StepReport::rejected`] says why ([`Rejection`]); after
//! [`MAX_NON_FINITE_REJECTIONS`] such rejections since the last accepted step the solver returns
//! [`OptimError::RepeatedRejection`] instead, so a caller's loop ends rather than spinning while
//! `λ` grows.
//!
//! # Example: natural gradient with the Fisher on the Section 11.1 problem
//! ```
//! use autodiff::Matrix;
//! use curvature::CurvatureKind;
//! use optim::natural_gradient::{DirectionSolve, NaturalGradient, NaturalGradientParams};
//! use optim::schedule::Schedule;
//! use optim::{QuadraticObjective, Solver};
//!
//! // h(θ) = ½θ²: the Fisher is 1, so each step multiplies θ by 1 − α.
//! let mut objective = QuadraticObjective::new(Matrix::filled(1, 1, 1.0), vec![0.0])?;
//! let mut solver = NaturalGradient::new(NaturalGradientParams {
//!     kind: CurvatureKind::Fisher,
//!     schedule: Schedule::constant(0.5)?,
//!     lambda: 0.0,
//!     adapt_lambda: false,
//!     solve: DirectionSolve::Dense,
//! })?;
//! let mut theta = [4.0];
//! let report = solver.step(&mut theta, &mut objective)?;
//! assert_eq!(theta[0], 2.0);
//! assert_eq!(report.loss, 8.0);
//! # Ok::<(), optim::OptimError>(())
//! ```

pub mod averaging;
pub mod cg;
pub mod damping;
pub mod diagonal;
pub mod distributed;
pub mod error;
pub mod hessian_free;
pub mod kfac;
pub mod natural_gradient;
pub mod objective;
pub mod schedule;
pub mod sgd;
pub mod solver;
pub mod theory;

pub use distributed::DistributedObjective;
pub use error::{OptimError, Result};
pub use objective::{NetworkObjective, Objective, QuadraticObjective, MIN_ROWS_PER_THREAD};
pub use solver::{Rejection, Solver, StepReport, Work, MAX_NON_FINITE_REJECTIONS};
