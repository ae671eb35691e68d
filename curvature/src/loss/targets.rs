//! What a loss's targets must be: [`TargetIssue`], what
//! [`PredictiveDistribution::check_target`] reports about one row, and [`check_targets`], which
//! [`Problem::new`](crate::Problem::new) runs over the batch.

use super::PredictiveDistribution;
use crate::error::{CurvatureError, Result};
use autodiff::Matrix;

/// How far the entries of a categorical target row may sum from 1.
pub const CATEGORICAL_SUM_TOLERANCE: f64 = 1e-6;

/// What is wrong with one target row: the column to blame (if one is), and why.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetIssue {
    /// The bad element of the row, when one element is to blame.
    pub column: Option<usize>,
    /// What is wrong, in words.
    pub reason: String,
}

impl TargetIssue {
    /// An issue with element `column` of the row.
    pub fn at(column: usize, reason: impl Into<String>) -> Self {
        TargetIssue { column: Some(column), reason: reason.into() }
    }

    /// An issue with the row as a whole.
    pub fn row(reason: impl Into<String>) -> Self {
        TargetIssue { column: None, reason: reason.into() }
    }
}

/// Every element finite (the Gaussians' targets).
pub fn finite_target(y: &[f64]) -> std::result::Result<(), TargetIssue> {
    match y.iter().position(|t| !t.is_finite()) {
        Some(c) => Err(TargetIssue::at(c, format!("target {} is not finite", y[c]))),
        None => Ok(()),
    }
}

/// A probability vector: every element finite and `≥ 0`, the row summing to 1 within
/// [`CATEGORICAL_SUM_TOLERANCE`] (one-hot rows, or soft labels).
pub fn probability_target(y: &[f64]) -> std::result::Result<(), TargetIssue> {
    finite_target(y)?;
    if let Some(c) = y.iter().position(|&t| t < 0.0) {
        return Err(TargetIssue::at(c, format!("probability {} is negative", y[c])));
    }
    let total: f64 = y.iter().sum();
    if (total - 1.0).abs() > CATEGORICAL_SUM_TOLERANCE {
        return Err(TargetIssue::row(format!(
            "probabilities sum to {total}, not 1 (within {CATEGORICAL_SUM_TOLERANCE:e})"
        )));
    }
    Ok(())
}

/// Every element in `[0, 1]` (independent Bernoulli targets).
pub fn unit_interval_target(y: &[f64]) -> std::result::Result<(), TargetIssue> {
    match y.iter().position(|t| !(0.0..=1.0).contains(t)) {
        Some(c) => Err(TargetIssue::at(c, format!("target {} is outside [0, 1]", y[c]))),
        None => Ok(()),
    }
}

/// Checks every row of `y` with [`PredictiveDistribution::check_target`]; the first bad row
/// is a [`CurvatureError::InvalidTarget`] naming the row and column.
pub fn check_targets(dist: &dyn PredictiveDistribution, y: &Matrix<f64>) -> Result<()> {
    for r in 0..y.rows() {
        if let Err(issue) = dist.check_target(y.row(r)) {
            return Err(CurvatureError::InvalidTarget {
                loss: dist.name().into(),
                row: r,
                column: issue.column,
                reason: issue.reason,
            });
        }
    }
    Ok(())
}
