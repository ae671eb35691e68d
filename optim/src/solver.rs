//! [`Solver`]: one step of an optimizer, and the [`StepReport`] of what it did.

use crate::cg::CgStop;
use crate::error::{OptimError, Result};
use crate::objective::Objective;

/// An optimizer that updates θ in place, one step at a time.
pub trait Solver {
    /// The solver's name for reports.
    fn name(&self) -> &str;

    /// Takes one step from θ on the objective's current batch. On an error θ is unchanged, and
    /// so it is when the report says the step was [`StepReport::rejected`]; after
    /// [`MAX_NON_FINITE_REJECTIONS`] non-finite rejections in a row the step is
    /// [`OptimError::RepeatedRejection`].
    fn step(&mut self, theta: &mut [f64], objective: &mut dyn Objective) -> Result<StepReport>;
}

/// The work a step did, in calls; [`Work::gradient_equivalents`] converts to passes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Work {
    /// Loss-and-gradient evaluations (a forward and a reverse sweep each).
    pub gradients: usize,
    /// Loss-only evaluations (a forward pass each).
    pub losses: usize,
    /// Curvature-vector products.
    pub curvature_products: usize,
}

impl Work {
    /// Gradient-equivalent passes: a gradient is 1, a loss ⅓ (one of its three matrix-product
    /// units), a GGN/Fisher product over a cached forward pass 4/3 (a tangent sweep and a reverse
    /// sweep: four units). Hessian products cost more (about 3); callers using them say so.
    pub fn gradient_equivalents(&self) -> f64 {
        self.gradients as f64
            + self.losses as f64 / 3.0
            + 4.0 * self.curvature_products as f64 / 3.0
    }

    /// Adds another step's work.
    pub fn add(&mut self, other: Work) {
        self.gradients += other.gradients;
        self.losses += other.losses;
        self.curvature_products += other.curvature_products;
    }
}

/// What one step did (Section 10's quantities where they apply).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StepReport {
    /// `h(θ_k)` before the step (on the step's batch).
    pub loss: f64,
    /// `h(θ_{k+1})` when the solver evaluated it.
    pub new_loss: Option<f64>,
    /// `−(M(δ) − h(θ_k))`, the reduction the quadratic model predicts.
    pub predicted_reduction: Option<f64>,
    /// `h(θ_k) − h(θ_k + δ)`.
    pub actual_reduction: Option<f64>,
    /// The reduction ratio `ρ` = actual / predicted.
    pub rho: Option<f64>,
    /// The damping `λ` used for this step.
    pub lambda: Option<f64>,
    /// The step size `α_k`.
    pub step_size: f64,
    /// `‖θ_{k+1} − θ_k‖`.
    pub step_norm: f64,
    /// Conjugate-gradient iterations and why CG stopped, when CG ran.
    pub cg_iterations: Option<usize>,
    /// Why CG stopped.
    pub cg_stop: Option<CgStop>,
    /// Why the step was rejected, when it was: θ (and the solver's state) were left unchanged.
    pub rejected: Option<Rejection>,
    /// Work done.
    pub work: Work,
}

impl StepReport {
    /// A report with only the loss, step size and step norm filled in.
    pub fn basic(loss: f64, step_size: f64, step_norm: f64, work: Work) -> Self {
        StepReport {
            loss,
            new_loss: None,
            predicted_reduction: None,
            actual_reduction: None,
            rho: None,
            lambda: None,
            step_size,
            step_norm,
            cg_iterations: None,
            cg_stop: None,
            rejected: None,
            work,
        }
    }
}

/// The most steps a solver rejects for a non-finite trial (θ, loss or direction) after its last
/// accepted step before it returns [`OptimError::RepeatedRejection`] instead of another report:
/// each rejection leaves θ unchanged (and raises `λ` where the solver adapts it), so a caller
/// looping on `step` is told to stop rather than spin while `λ` grows without bound.
/// Rejections for a finite loss that did not decrease ([`Rejection::NoDecrease`]) are ordinary
/// damping behaviour and are not counted.
pub const MAX_NON_FINITE_REJECTIONS: usize = 10;

/// Why a solver rejected its trial step (θ was left unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The trial θ (or the direction) had a NaN or an infinite entry.
    NonFiniteStep,
    /// `h` at the trial θ was NaN or infinite.
    NonFiniteLoss,
    /// `h` at the trial θ was finite but not low enough (the solver's acceptance test failed).
    NoDecrease,
}

impl Rejection {
    /// Whether this rejection counts towards [`MAX_NON_FINITE_REJECTIONS`].
    pub fn is_non_finite(self) -> bool {
        !matches!(self, Rejection::NoDecrease)
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rejection::NonFiniteStep => "the trial step was not finite",
            Rejection::NonFiniteLoss => "the loss at the trial step was not finite",
            Rejection::NoDecrease => "the loss did not decrease",
        })
    }
}

/// Counts a solver's non-finite rejections since its last accepted step.
#[derive(Clone, Debug, Default)]
pub(crate) struct RejectionCount(usize);

impl RejectionCount {
    /// Passes the report on, or, at the [`MAX_NON_FINITE_REJECTIONS`]-th non-finite rejection
    /// since the last accepted step, returns [`OptimError::RepeatedRejection`] (and starts
    /// counting afresh, so a caller that changes something may try again).
    pub(crate) fn settle(&mut self, solver: &str, report: StepReport) -> Result<StepReport> {
        match report.rejected {
            None => self.0 = 0,
            Some(cause) if cause.is_non_finite() => {
                self.0 += 1;
                if self.0 >= MAX_NON_FINITE_REJECTIONS {
                    self.0 = 0;
                    return Err(OptimError::RepeatedRejection {
                        solver: solver.into(),
                        rejections: MAX_NON_FINITE_REJECTIONS,
                        cause,
                    });
                }
            }
            Some(_) => {}
        }
        Ok(report)
    }
}

/// `(h(θ), ∇h(θ))` on the objective's current batch, or [`OptimError::NonFinite`] naming `op`:
/// how every solver's step begins.
pub(crate) fn loss_and_gradient(
    objective: &mut dyn Objective,
    theta: &[f64],
    op: &str,
) -> Result<(f64, Vec<f64>)> {
    let mut g = vec![0.0; theta.len()];
    let loss = objective.loss_and_gradient(theta, &mut g)?;
    if !all_finite(&g) || !loss.is_finite() {
        return Err(OptimError::NonFinite { op: op.into(), detail: "loss or gradient".into() });
    }
    Ok((loss, g))
}

pub(crate) fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

pub(crate) fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}
