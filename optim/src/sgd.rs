//! Gradient descent and SGD with heavy-ball momentum.

use crate::error::{check_range, Result};
use crate::objective::Objective;
use crate::schedule::Schedule;
use crate::solver::{
    all_finite, loss_and_gradient, norm, Rejection, RejectionCount, Solver, StepReport, Work,
};

/// `v ← μ v − α_k g_k`, `θ ← θ + v` (heavy-ball momentum; `μ = 0` is plain (S)GD).
///
/// A step whose new θ would not be finite (an overflowing `α_k g_k`) is rejected: θ and `v`
/// stay as they were and the report says [`Rejection::NonFiniteStep`] (see
/// [`crate::MAX_NON_FINITE_REJECTIONS`]). The trial loss is not evaluated (it would cost a
/// forward pass per step); a non-finite loss at the new θ is caught by the next step's gradient.
#[derive(Clone, Debug)]
pub struct GradientDescent {
    schedule: Schedule,
    momentum: f64,
    velocity: Vec<f64>,
    k: usize,
    rejections: RejectionCount,
}

impl GradientDescent {
    /// Momentum `μ ∈ [0, 1)`.
    pub fn new(schedule: Schedule, momentum: f64) -> Result<Self> {
        check_range("GradientDescent", "momentum", momentum, 0.0, true, 1.0 - f64::EPSILON)?;
        Ok(GradientDescent {
            schedule,
            momentum,
            velocity: Vec::new(),
            k: 0,
            rejections: RejectionCount::default(),
        })
    }
}

impl Solver for GradientDescent {
    fn name(&self) -> &str {
        if self.momentum > 0.0 {
            "SGD with momentum"
        } else {
            "gradient descent"
        }
    }

    fn step(&mut self, theta: &mut [f64], objective: &mut dyn Objective) -> Result<StepReport> {
        let (loss, g) = loss_and_gradient(objective, theta, "GradientDescent::step")?;
        if self.velocity.len() != theta.len() {
            self.velocity = vec![0.0; theta.len()];
        }
        let alpha = self.schedule.step_size(self.k);
        self.k += 1;
        let velocity: Vec<f64> =
            self.velocity.iter().zip(&g).map(|(v, gi)| self.momentum * v - alpha * gi).collect();
        let trial: Vec<f64> = theta.iter().zip(&velocity).map(|(t, v)| t + v).collect();
        let work = Work { gradients: 1, ..Work::default() };
        let report = if all_finite(&velocity) && all_finite(&trial) {
            theta.copy_from_slice(&trial);
            self.velocity = velocity;
            StepReport::basic(loss, alpha, norm(&self.velocity), work)
        } else {
            let mut report = StepReport::basic(loss, 0.0, 0.0, work);
            report.rejected = Some(Rejection::NonFiniteStep);
            report
        };
        objective.next_batch();
        let name = self.name().to_string();
        self.rejections.settle(&name, report)
    }
}
