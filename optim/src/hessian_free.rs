//! Hessian-free optimization in the manner of Martens (2010): truncated preconditioned CG on
//! the damped GGN, warm-started, with CG-iterate backtracking, Levenberg-Marquardt damping and
//! an Armijo line search as the last resort.
//!
//! One step: `g = ∇h` on the gradient batch; `B` (GGN by default) on the curvature batch;
//! CG on `(B + λI) δ = −g` from `δ₀ = decay · δ_prev`, with a diagonal preconditioner
//! `M = (diag(B) + λ)^ξ`; among the stored CG iterates, the one with the lowest loss, searching
//! backward from the last (Martens' backtracking); `ρ` of that step against the undamped
//! quadratic model sets `λ`; if the step still does not reduce the loss, shrink it
//! (Armijo, `h(θ + αδ) ≤ h(θ) + c α gᵀδ`), and reject it if that fails too. A step is also
//! rejected when no stored CG iterate has a finite loss: θ is then unchanged, `λ` raised, and
//! [`crate::MAX_NON_FINITE_REJECTIONS`] such rejections in a row end in an error, so `λ` cannot
//! grow without bound while a caller loops.
//!
//! The preconditioner's diagonal is estimated with random-sign products (Hutchinson), a
//! diagonal of the curvature matrix itself, as Section 11.2 recommends over the empirical
//! Fisher's (Chapelle & Erhan 2011); negative estimates are clipped at 0.

use crate::cg::{conjugate_gradient, CgParams};
use crate::damping::{reduction_ratio, LevenbergMarquardt};
use crate::error::{check_range, Result};
use crate::objective::Objective;
use crate::solver::{loss_and_gradient, norm, Rejection, RejectionCount, Solver, StepReport, Work};
use curvature::operator::estimate_diagonal;
use curvature::{CurvatureKind, Damped};

/// Settings of [`HessianFree`].
#[derive(Clone, Debug, PartialEq)]
pub struct HessianFreeParams {
    /// The curvature matrix (default GGN).
    pub kind: CurvatureKind,
    /// Initial `λ` (default 1).
    pub initial_lambda: f64,
    /// CG settings (default: at most 50 iterations, Martens' progress test).
    pub cg: CgParams,
    /// Warm-start decay of the previous solution (default 0.95), in `[0, 1]`.
    pub warm_start_decay: f64,
    /// `ξ` of the preconditioner `(diag + λ)^ξ`, or `None` for no preconditioner (default ¾).
    pub preconditioner_exponent: Option<f64>,
    /// Random-sign products for the diagonal estimate (default 2).
    pub diagonal_samples: usize,
    /// Armijo constant `c` (default 1e-2) and shrink factor (default 0.8).
    pub armijo: (f64, f64),
    /// Line-search trials before rejecting the step (default 20).
    pub max_line_search: usize,
}

impl Default for HessianFreeParams {
    fn default() -> Self {
        HessianFreeParams {
            kind: CurvatureKind::Ggn,
            initial_lambda: 1.0,
            cg: CgParams {
                max_iterations: 50,
                tolerance: 1e-10,
                progress_epsilon: Some(5e-4),
                store_iterates: true,
            },
            warm_start_decay: 0.95,
            preconditioner_exponent: Some(0.75),
            diagonal_samples: 2,
            armijo: (1e-2, 0.8),
            max_line_search: 20,
        }
    }
}

/// The Hessian-free optimizer.
#[derive(Clone, Debug)]
pub struct HessianFree {
    params: HessianFreeParams,
    lm: LevenbergMarquardt,
    previous: Vec<f64>,
    seed: u64,
    rejections: RejectionCount,
}

impl HessianFree {
    /// Validates every setting.
    pub fn new(mut params: HessianFreeParams) -> Result<Self> {
        params.cg.store_iterates = true;
        params.cg.validate()?;
        check_range("HessianFree", "warm_start_decay", params.warm_start_decay, 0.0, true, 1.0)?;
        if let Some(xi) = params.preconditioner_exponent {
            check_range("HessianFree", "preconditioner_exponent (ξ)", xi, 0.0, false, 1.0)?;
        }
        check_range("HessianFree", "armijo c", params.armijo.0, 0.0, false, 1.0)?;
        check_range(
            "HessianFree",
            "armijo shrink",
            params.armijo.1,
            0.0,
            false,
            1.0 - f64::EPSILON,
        )?;
        Ok(HessianFree {
            lm: LevenbergMarquardt::new(params.initial_lambda)?,
            params,
            previous: Vec::new(),
            seed: 0,
            rejections: RejectionCount::default(),
        })
    }

    /// The current damping `λ`.
    pub fn lambda(&self) -> f64 {
        self.lm.lambda
    }
}

impl Solver for HessianFree {
    fn name(&self) -> &str {
        "Hessian-free"
    }

    fn step(&mut self, theta: &mut [f64], objective: &mut dyn Objective) -> Result<StepReport> {
        let n = theta.len();
        let (loss, g) = loss_and_gradient(objective, theta, "HessianFree::step")?;
        let lambda = self.lm.lambda;
        let mut work = Work { gradients: 1, ..Work::default() };
        if self.previous.len() != n {
            self.previous = vec![0.0; n];
        }
        let x0: Vec<f64> = self.previous.iter().map(|p| self.params.warm_start_decay * p).collect();
        let neg_g: Vec<f64> = g.iter().map(|v| -v).collect();
        let info = {
            let b = objective.curvature(theta, &self.params.kind)?;
            let preconditioner = match self.params.preconditioner_exponent {
                Some(xi) if self.params.diagonal_samples > 0 => {
                    self.seed += 1;
                    let d = estimate_diagonal(&*b, self.params.diagonal_samples, self.seed)?;
                    work.curvature_products += self.params.diagonal_samples;
                    Some(
                        d.iter()
                            .map(|v| (v.max(0.0) + lambda).powf(xi).max(1e-300))
                            .collect::<Vec<_>>(),
                    )
                }
                _ => None,
            };
            let damped = Damped::new(&*b, lambda)?;
            let info = conjugate_gradient(
                &damped,
                &neg_g,
                &x0,
                preconditioner.as_deref(),
                &self.params.cg,
            )?;
            work.curvature_products += info.iterations + 1;
            info
        };
        // Backtracking over CG iterates, from the last one backward while the loss improves.
        let mut best: Option<(usize, f64)> = None;
        for (idx, (_, x)) in info.iterates.iter().enumerate().rev() {
            let cand: Vec<f64> = theta.iter().zip(x).map(|(t, d)| t + d).collect();
            let l = objective.loss(&cand)?;
            work.losses += 1;
            match best {
                Some((_, bl)) if l >= bl || !l.is_finite() => break,
                // A non-finite loss at the last iterates: look further back.
                _ if !l.is_finite() => continue,
                _ => best = Some((idx, l)),
            }
        }
        let chosen = best.map(|(idx, l)| (info.iterates[idx].0, info.iterates[idx].1.clone(), l));
        let mut report = StepReport::basic(loss, 1.0, 0.0, work);
        report.lambda = Some(lambda);
        report.cg_iterations = Some(info.iterations);
        report.cg_stop = Some(info.stop);
        let Some((iteration, delta, delta_loss)) = chosen else {
            // No stored iterate has a finite loss: reject, raise λ, drop the warm start.
            self.lm.update(f64::NAN);
            self.previous.iter_mut().for_each(|p| *p = 0.0);
            report.step_size = 0.0;
            report.rejected = Some(Rejection::NonFiniteLoss);
            objective.next_batch();
            return self.rejections.settle("Hessian-free", report);
        };
        self.previous = info.x.clone();
        let g_delta: f64 = g.iter().zip(&delta).map(|(a, b)| a * b).sum();
        // CG's model value is the damped φ(δ) = gᵀδ + ½δᵀ(B + λI)δ; the undamped model's change
        // M(δ) − h = φ(δ) − ½λ‖δ‖² needs no further product.
        let damped_model = info.model_values[iteration];
        let predicted = -(damped_model - 0.5 * lambda * delta.iter().map(|d| d * d).sum::<f64>());
        let rho = reduction_ratio(loss - delta_loss, predicted);
        self.lm.update(rho);
        report.predicted_reduction = Some(predicted);
        report.rho = Some(rho);
        // Armijo line search on the chosen direction.
        let (c, shrink) = self.params.armijo;
        let mut alpha = 1.0;
        let mut new_loss = delta_loss;
        let mut accepted = new_loss.is_finite() && new_loss <= loss + c * alpha * g_delta;
        let mut trials = 0;
        while !accepted && trials < self.params.max_line_search {
            alpha *= shrink;
            let cand: Vec<f64> = theta.iter().zip(&delta).map(|(t, d)| t + alpha * d).collect();
            new_loss = objective.loss(&cand)?;
            report.work.losses += 1;
            accepted = new_loss.is_finite() && new_loss <= loss + c * alpha * g_delta;
            trials += 1;
        }
        if accepted {
            for (t, d) in theta.iter_mut().zip(&delta) {
                *t += alpha * d;
            }
            report.step_size = alpha;
            report.step_norm = alpha * norm(&delta);
            report.new_loss = Some(new_loss);
            report.actual_reduction = Some(loss - new_loss);
        } else {
            self.previous.iter_mut().for_each(|p| *p = 0.0);
            report.step_size = 0.0;
            report.rejected = Some(if new_loss.is_finite() {
                Rejection::NoDecrease
            } else {
                Rejection::NonFiniteLoss
            });
        }
        objective.next_batch();
        self.rejections.settle("Hessian-free", report)
    }
}
