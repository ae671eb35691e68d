//! Natural gradient / (generalized) Gauss-Newton with any curvature matrix and Tikhonov damping
//! (Sections 7 and 10): `δ = −(B + λI)⁻¹ ∇h`, `θ ← θ + α δ`.

use crate::cg::{conjugate_gradient, CgParams, CgStop};
use crate::damping::{reduction_ratio, LevenbergMarquardt};
use crate::error::{check_range, OptimError, Result};
use crate::objective::Objective;
use crate::schedule::Schedule;
use crate::solver::{
    all_finite, loss_and_gradient, norm, Rejection, RejectionCount, Solver, StepReport, Work,
};
use autodiff::linalg::cholesky_solve;
use curvature::{CurvatureKind, Damped, LinearOperator};

/// How the damped system is solved.
#[derive(Clone, Debug, PartialEq)]
pub enum DirectionSolve {
    /// Materialize `B` (n products) and solve by Cholesky: exact, for small models.
    Dense,
    /// Conjugate gradient on products with `B + λI`.
    ConjugateGradient(CgParams),
}

/// Settings of [`NaturalGradient`].
#[derive(Clone, Debug, PartialEq)]
pub struct NaturalGradientParams {
    /// Which `B` (any kind, block-diagonal ones included).
    pub kind: CurvatureKind,
    /// `α_k`.
    pub schedule: Schedule,
    /// Initial damping `λ ≥ 0`.
    pub lambda: f64,
    /// Adapt `λ` by Levenberg-Marquardt from `ρ` (costs one extra product per step), and reject
    /// steps that increase the loss.
    pub adapt_lambda: bool,
    /// How the system is solved.
    pub solve: DirectionSolve,
}

/// Natural gradient descent / damped Gauss-Newton.
///
/// Every step evaluates `h` at the trial θ (one forward pass, counted in [`Work::losses`]); a
/// trial with a non-finite direction, θ or loss is rejected (θ unchanged, [`StepReport::rejected`]
/// says why, `λ` raised when adapted; see [`crate::MAX_NON_FINITE_REJECTIONS`]).
#[derive(Clone, Debug)]
pub struct NaturalGradient {
    params: NaturalGradientParams,
    lm: LevenbergMarquardt,
    k: usize,
    name: String,
    rejections: RejectionCount,
}

impl NaturalGradient {
    /// Validates `λ ≥ 0` (and the CG settings).
    pub fn new(params: NaturalGradientParams) -> Result<Self> {
        check_range("NaturalGradient", "lambda", params.lambda, 0.0, true, f64::INFINITY)?;
        if let DirectionSolve::ConjugateGradient(cg) = &params.solve {
            cg.validate()?;
        }
        let name = format!("natural gradient ({:?})", params.kind);
        Ok(NaturalGradient {
            lm: LevenbergMarquardt::new(params.lambda)?,
            params,
            k: 0,
            name,
            rejections: RejectionCount::default(),
        })
    }

    /// The current damping `λ`.
    pub fn lambda(&self) -> f64 {
        self.lm.lambda
    }
}

impl Solver for NaturalGradient {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, theta: &mut [f64], objective: &mut dyn Objective) -> Result<StepReport> {
        let n = theta.len();
        let (loss, g) = loss_and_gradient(objective, theta, "NaturalGradient::step")?;
        let lambda = self.lm.lambda;
        let mut work = Work { gradients: 1, ..Work::default() };
        let neg_g: Vec<f64> = g.iter().map(|v| -v).collect();
        let (delta, cg_iterations, cg_stop, model_curvature) = {
            let b = objective.curvature(theta, &self.params.kind)?;
            let (delta, iterations, stop) = match &self.params.solve {
                DirectionSolve::Dense => {
                    let mut dense = b.to_dense()?;
                    work.curvature_products += n;
                    for i in 0..n {
                        dense[(i, i)] += lambda;
                    }
                    let delta = cholesky_solve(&dense, &neg_g).map_err(|_| {
                        OptimError::NotPositiveDefinite {
                            solver: "NaturalGradient".into(),
                            kind: format!("{:?}", self.params.kind),
                            lambda,
                        }
                    })?;
                    (delta, None, None)
                }
                DirectionSolve::ConjugateGradient(cg) => {
                    let damped = Damped::new(&*b, lambda)?;
                    let info = conjugate_gradient(&damped, &neg_g, &vec![0.0; n], None, cg)?;
                    work.curvature_products += info.iterations + 1;
                    (info.x, Some(info.iterations), Some(info.stop))
                }
            };
            // δᵀ B δ for the model's prediction (undamped B).
            let mut bd = vec![0.0; n];
            let curvature = if self.params.adapt_lambda {
                b.apply(&delta, &mut bd)?;
                work.curvature_products += 1;
                Some(delta.iter().zip(&bd).map(|(a, c)| a * c).sum::<f64>())
            } else {
                None
            };
            (delta, iterations, stop, curvature)
        };
        let alpha = self.params.schedule.step_size(self.k);
        self.k += 1;
        let mut report = StepReport::basic(loss, alpha, 0.0, work);
        report.lambda = Some(lambda);
        report.cg_iterations = cg_iterations;
        report.cg_stop = cg_stop;
        let candidate: Vec<f64> = theta.iter().zip(&delta).map(|(t, d)| t + alpha * d).collect();
        let rejected = if matches!(cg_stop, Some(CgStop::Breakdown))
            || !all_finite(&delta)
            || !all_finite(&candidate)
        {
            Some(Rejection::NonFiniteStep)
        } else {
            let new_loss = objective.loss(&candidate)?;
            report.work.losses += 1;
            report.new_loss = Some(new_loss);
            report.actual_reduction = Some(loss - new_loss);
            if let Some(dbd) = model_curvature {
                let predicted = -(alpha * g.iter().zip(&delta).map(|(a, b)| a * b).sum::<f64>()
                    + 0.5 * alpha * alpha * dbd);
                report.predicted_reduction = Some(predicted);
                report.rho = Some(reduction_ratio(loss - new_loss, predicted));
            }
            if !new_loss.is_finite() {
                Some(Rejection::NonFiniteLoss)
            } else if self.params.adapt_lambda && new_loss > loss {
                Some(Rejection::NoDecrease)
            } else {
                None
            }
        };
        if self.params.adapt_lambda {
            // No ρ (a non-finite step) counts as untrustworthy: NaN raises λ.
            self.lm.update(report.rho.unwrap_or(f64::NAN));
        }
        report.rejected = rejected;
        if rejected.is_none() {
            report.step_norm = alpha * norm(&delta);
            theta.copy_from_slice(&candidate);
        } else {
            report.step_size = 0.0;
        }
        objective.next_batch();
        self.rejections.settle(&self.name, report)
    }
}
