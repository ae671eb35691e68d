//! Step-size schedules `α_k`: the solvers' and the Section 14 theory's ([`crate::theory`]),
//! one type for both. The theorems cover [`Schedule::Constant`] and [`Schedule::Shifted`]
//! (`α_k = 1/(k + a + 1)`, eqn 19's decaying steps); the exact recursion, the closed-form mean and
//! the simulation take any schedule.

use crate::error::{check_range, Result};

/// A step-size schedule, `k = 0, 1, 2, …`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// `α_k = α`.
    Constant(f64),
    /// `α_k = c / (k + 1)` (the "ρ/k" family).
    InverseTime(f64),
    /// `α_k = 1 / (k + a + 1)` (Section 14, Theorem 5's second regime).
    Shifted(f64),
}

impl Schedule {
    /// `α_k = alpha > 0`.
    pub fn constant(alpha: f64) -> Result<Self> {
        check_range("Schedule::constant", "alpha", alpha, 0.0, false, f64::INFINITY)
            .map(Schedule::Constant)
    }
    /// `α_k = c / (k + 1)`, `c > 0`.
    pub fn inverse_time(c: f64) -> Result<Self> {
        check_range("Schedule::inverse_time", "c", c, 0.0, false, f64::INFINITY)
            .map(Schedule::InverseTime)
    }
    /// `α_k = 1 / (k + a + 1)`, `a ≥ 0`.
    pub fn shifted(a: f64) -> Result<Self> {
        check_range("Schedule::shifted", "a", a, 0.0, true, f64::INFINITY).map(Schedule::Shifted)
    }

    /// `α_k`.
    pub fn step_size(&self, k: usize) -> f64 {
        match *self {
            Schedule::Constant(a) => a,
            Schedule::InverseTime(c) => c / (k as f64 + 1.0),
            Schedule::Shifted(a) => 1.0 / (k as f64 + a + 1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_formulas_and_reject_bad_constants() {
        assert_eq!(Schedule::constant(0.3).unwrap().step_size(7), 0.3);
        assert_eq!(Schedule::inverse_time(2.0).unwrap().step_size(3), 0.5);
        assert_eq!(Schedule::shifted(1.0).unwrap().step_size(2), 0.25);
        assert!(Schedule::constant(0.0).is_err() && Schedule::constant(-0.1).is_err());
        assert!(Schedule::shifted(0.0).is_ok() && Schedule::shifted(-1e-9).is_err());
        assert!(Schedule::inverse_time(f64::NAN).is_err());
    }
}
