//! Damping (Section 10): the reduction ratio and the Levenberg-Marquardt rule for `λ`.

use crate::error::{check_range, Result};

/// `ρ = actual / predicted` reduction: how well the quadratic model `M(δ)` predicted the change
/// of `h`. NaN when the predicted reduction is not positive (no trust can be inferred).
pub fn reduction_ratio(actual_reduction: f64, predicted_reduction: f64) -> f64 {
    if predicted_reduction > 0.0 {
        actual_reduction / predicted_reduction
    } else {
        f64::NAN
    }
}

/// The Levenberg-Marquardt adjustment of the damping `λ` used by HF (Martens 2010):
/// `λ ← increase · λ` when `ρ < low`, `λ ← decrease · λ` when `ρ > high`, else unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct LevenbergMarquardt {
    /// Current damping `λ ≥ 0`.
    pub lambda: f64,
    /// Factor `< 1` applied when the model is trustworthy (default 2/3).
    pub decrease: f64,
    /// Factor `> 1` applied when it is not (default 3/2).
    pub increase: f64,
    /// Below this `ρ`, raise `λ` (default ¼).
    pub low: f64,
    /// Above this `ρ`, lower `λ` (default ¾).
    pub high: f64,
    /// `λ` never falls below this (default 1e-8), so it can recover by multiplication.
    pub min_lambda: f64,
}

impl LevenbergMarquardt {
    /// The rule of Martens (2010) starting at `lambda`.
    pub fn new(lambda: f64) -> Result<Self> {
        let lm = LevenbergMarquardt {
            lambda,
            decrease: 2.0 / 3.0,
            increase: 1.5,
            low: 0.25,
            high: 0.75,
            min_lambda: 1e-8,
        };
        lm.validate()?;
        Ok(lm)
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        check_range("LevenbergMarquardt", "lambda", self.lambda, 0.0, true, f64::INFINITY)?;
        check_range("LevenbergMarquardt", "decrease", self.decrease, 0.0, false, 1.0)?;
        check_range("LevenbergMarquardt", "increase", self.increase, 1.0, true, f64::INFINITY)?;
        check_range("LevenbergMarquardt", "low", self.low, f64::NEG_INFINITY, false, self.high)?;
        check_range("LevenbergMarquardt", "min_lambda", self.min_lambda, 0.0, true, f64::INFINITY)?;
        Ok(())
    }

    /// Adjusts `λ` from `ρ` and returns the new value. A NaN `ρ` (no predicted reduction, or a
    /// failed step) counts as untrustworthy and raises `λ`.
    pub fn update(&mut self, rho: f64) -> f64 {
        if rho.is_nan() || rho < self.low {
            self.lambda = (self.lambda * self.increase).max(self.min_lambda);
        } else if rho > self.high {
            self.lambda = (self.lambda * self.decrease).max(self.min_lambda);
        }
        self.lambda
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_ratio_is_a_plain_quotient_when_defined() {
        assert_eq!(reduction_ratio(1.0, 2.0), 0.5);
        assert_eq!(reduction_ratio(-1.0, 2.0), -0.5);
        assert!(reduction_ratio(1.0, 0.0).is_nan() && reduction_ratio(1.0, -1.0).is_nan());
    }

    #[test]
    fn lambda_rises_for_small_rho_falls_for_large_and_holds_between() {
        let mut lm = LevenbergMarquardt::new(1.0).unwrap();
        assert_eq!(lm.update(0.1), 1.5);
        assert_eq!(lm.update(0.5), 1.5);
        assert!((lm.update(0.9) - 1.0).abs() < 1e-15);
        assert_eq!(lm.update(f64::NAN), 1.5);
        assert_eq!(lm.update(0.25), 1.5, "boundary ρ = ¼ holds");
        assert_eq!(lm.update(0.75), 1.5, "boundary ρ = ¾ holds");
    }

    #[test]
    fn bad_settings_are_rejected_on_both_sides() {
        assert!(LevenbergMarquardt::new(-1e-12).is_err());
        assert!(LevenbergMarquardt::new(0.0).is_ok());
        let mut lm = LevenbergMarquardt::new(1.0).unwrap();
        lm.decrease = 1.0;
        assert!(lm.validate().is_ok());
        lm.decrease = 1.01;
        assert!(lm.validate().is_err());
        lm.decrease = 0.5;
        lm.increase = 0.99;
        assert!(lm.validate().is_err());
    }
}
