//! Gradient descent and SGD with heavy-ball momentum.

use crate::error::{check_range, Result};
use crate::objective::Objective;
use crate::schedule::Schedule;
use crate::solver::{loss_and_gradient, norm, Solver, StepReport, Work};

/// `v ← μ v − α_k g_k`, `θ ← θ + v` (heavy-ball momentum; `μ = 0` is plain (S)GD).
#[derive(Clone, Debug)]
pub struct GradientDescent {
    schedule: Schedule,
    momentum: f64,
    velocity: Vec<f64>,
    k: usize,
}

impl GradientDescent {
    /// Momentum `μ ∈ [0, 1)`.
    pub fn new(schedule: Schedule, momentum: f64) -> Result<Self> {
        check_range("GradientDescent", "momentum", momentum, 0.0, true, 1.0 - f64::EPSILON)?;
        Ok(GradientDescent { schedule, momentum, velocity: Vec::new(), k: 0 })
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
        for ((v, t), gi) in self.velocity.iter_mut().zip(theta.iter_mut()).zip(&g) {
            *v = self.momentum * *v - alpha * gi;
            *t += *v;
        }
        self.k += 1;
        objective.next_batch();
        Ok(StepReport::basic(
            loss,
            alpha,
            norm(&self.velocity),
            Work { gradients: 1, ..Work::default() },
        ))
    }
}
