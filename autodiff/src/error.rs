//! [`AutodiffError`]: every user mistake the crate reports instead of panicking.

use crate::shape::Shape;
use thiserror::Error;

/// What went wrong, with the op's name and the shapes involved.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum AutodiffError {
    /// Two operands (or an operand and an expected shape) do not fit.
    #[error("{op}: shape mismatch between {lhs} and {rhs}")]
    ShapeMismatch {
        /// The op or function that was called.
        op: String,
        /// Left (or actual) shape.
        lhs: Shape,
        /// Right (or expected) shape.
        rhs: Shape,
    },
    /// A variable recorded on a different tape was passed to this tape.
    #[error("{op}: variable belongs to another tape")]
    ForeignVar {
        /// The op that was called.
        op: String,
    },
    /// A slice reads past the end of its operand.
    #[error("{op}: range {start}..{end} is out of range for {len} elements")]
    SliceOutOfRange {
        /// The op that was called.
        op: String,
        /// First element read.
        start: usize,
        /// One past the last element read.
        end: usize,
        /// Number of elements in the operand.
        len: usize,
    },
    /// A NaN or infinity appeared while finite checks were on ([`Tape::set_check_finite`](crate::Tape::set_check_finite)).
    #[error("{op}: non-finite value in the result of node {node}")]
    NonFinite {
        /// The op that produced the value.
        op: String,
        /// The node index on the tape.
        node: usize,
    },
    /// An argument is outside the op's domain (e.g. a seed on a variable that is not on the tape).
    #[error("{op}: {reason}")]
    InvalidArgument {
        /// The op or function that was called.
        op: String,
        /// What is wrong with the argument.
        reason: String,
    },
}

impl AutodiffError {
    /// Builds a [`AutodiffError::ShapeMismatch`].
    pub fn shape(op: impl Into<String>, lhs: Shape, rhs: Shape) -> Self {
        AutodiffError::ShapeMismatch { op: op.into(), lhs, rhs }
    }

    /// Builds an [`AutodiffError::InvalidArgument`].
    pub fn invalid(op: impl Into<String>, reason: impl Into<String>) -> Self {
        AutodiffError::InvalidArgument { op: op.into(), reason: reason.into() }
    }
}

/// The crate's result type.
pub type Result<T, E = AutodiffError> = std::result::Result<T, E>;
