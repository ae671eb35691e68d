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
