//! [`CurvatureError`]: what the curvature crate reports instead of panicking.

use thiserror::Error;

/// Errors from models, losses and curvature operators.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum CurvatureError {
    /// An error from the tape (shapes, slices, non-finite values).
    #[error(transparent)]
    Autodiff(#[from] autodiff::AutodiffError),
    /// A vector or matrix has the wrong length or shape for this operation.
    #[error("{op}: expected {expected}, got {actual}")]
    Dimension {
        /// The operation that was called.
        op: String,
        /// What was expected, in words (e.g. `a vector of length 12`).
        expected: String,
        /// What was passed.
        actual: String,
    },
    /// An argument outside its domain.
    #[error("{op}: {reason}")]
    InvalidArgument {
        /// The operation that was called.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// A NaN or an infinity in an input or a result while finite checks are on (the default;
    /// see [`checks`](crate::checks)).
    #[error("{quantity}: non-finite value {value} at {}", position(*.index, *.cols))]
    NonFinite {
        /// What holds the value: `theta`, `x`, `y`, `v in ggn_vector_product`, `loss`, …
        quantity: String,
        /// The first bad element (row-major for a matrix).
        index: usize,
        /// The quantity's number of columns (1 for a vector), to name the row and column.
        cols: usize,
        /// The value found there.
        value: f64,
    },
    /// A target row outside the support of the loss's distribution
    /// ([`PredictiveDistribution::check_target`](crate::loss::PredictiveDistribution::check_target)).
    #[error("{loss} targets, row {row}{}: {reason}", column_suffix(*.column))]
    InvalidTarget {
        /// The loss's name.
        loss: String,
        /// The first bad row of `y`.
        row: usize,
        /// The bad column in that row, when one element is to blame.
        column: Option<usize>,
        /// What is wrong.
        reason: String,
    },
}

impl CurvatureError {
    /// A [`CurvatureError::Dimension`] for a vector of the wrong length.
    pub fn length(op: impl Into<String>, expected: usize, actual: usize) -> Self {
        CurvatureError::Dimension {
            op: op.into(),
            expected: format!("a vector of length {expected}"),
            actual: format!("length {actual}"),
        }
    }

    /// A [`CurvatureError::InvalidArgument`].
    pub fn invalid(op: impl Into<String>, reason: impl Into<String>) -> Self {
        CurvatureError::InvalidArgument { op: op.into(), reason: reason.into() }
    }
}

/// The crate's result type.
pub type Result<T, E = CurvatureError> = std::result::Result<T, E>;

/// `row r, column c (index i)` for a matrix, `index i` for a vector.
fn position(index: usize, cols: usize) -> String {
    if cols > 1 {
        format!("row {}, column {} (index {index})", index / cols, index % cols)
    } else {
        format!("index {index}")
    }
}

fn column_suffix(column: Option<usize>) -> String {
    column.map_or_else(String::new, |c| format!(", column {c}"))
}
