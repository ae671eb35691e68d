//! [`OptimError`]: bad settings and failed sub-computations, never panics.

use thiserror::Error;

/// Errors from the solvers and the Section 14 theory.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum OptimError {
    /// From a curvature operator or objective.
    #[error(transparent)]
    Curvature(#[from] curvature::CurvatureError),
    /// From the tape or dense linear algebra.
    #[error(transparent)]
    Autodiff(#[from] autodiff::AutodiffError),
    /// A setting outside its domain (checked at construction).
    #[error("{solver}: {parameter} = {value} is invalid: {reason}")]
    InvalidParameter {
        /// The solver or function.
        solver: String,
        /// The setting's name.
        parameter: String,
        /// The value given.
        value: f64,
        /// What is allowed.
        reason: String,
    },
    /// A vector of the wrong length.
    #[error("{op}: expected length {expected}, got {actual}")]
    Dimension {
        /// The operation.
        op: String,
        /// Expected length.
        expected: usize,
        /// Actual length.
        actual: usize,
    },
    /// A theorem's hypothesis does not hold for the given problem (Section 14).
    #[error("{theorem} needs {condition}, but {value} was found")]
    ConditionViolated {
        /// E.g. `Theorem 5`.
        theorem: String,
        /// The hypothesis in words.
        condition: String,
        /// The offending quantity.
        value: f64,
    },
    /// A dense curvature matrix plus damping is not positive definite, so the direction
    /// `(B + λI)⁻¹ g` is undefined.
    #[error("{solver}: {kind} + λI with λ = {lambda} is not positive definite; raise λ or use a PSD curvature")]
    NotPositiveDefinite {
        /// The solver.
        solver: String,
        /// The curvature kind.
        kind: String,
        /// The damping used.
        lambda: f64,
    },
    /// A solver rejected [`crate::solver::MAX_NON_FINITE_REJECTIONS`] trial steps in a row for
    /// non-finite values; θ is the last accepted iterate.
    #[error("{solver}: {rejections} steps in a row rejected since the last accepted one ({cause}); θ is unchanged: lower the step size, raise λ or check the objective")]
    RepeatedRejection {
        /// The solver.
        solver: String,
        /// How many non-finite rejections.
        rejections: usize,
        /// The last rejection's cause.
        cause: crate::solver::Rejection,
    },
    /// A matrix that must be symmetric is not (beyond the stated tolerance).
    #[error("{op}: the {rows}×{rows} matrix is not symmetric: A[{i}][{j}] = {a_ij} but A[{j}][{i}] = {a_ji} (tolerance {tolerance:e} × max|A|)")]
    NotSymmetric {
        /// The operation.
        op: String,
        /// The matrix order.
        rows: usize,
        /// Row of the worst pair.
        i: usize,
        /// Column of the worst pair.
        j: usize,
        /// `A[i][j]`.
        a_ij: f64,
        /// `A[j][i]`.
        a_ji: f64,
        /// The relative tolerance used.
        tolerance: f64,
    },
    /// A computation produced NaN or infinity (the iterate is left unchanged).
    #[error("{op}: non-finite value ({detail})")]
    NonFinite {
        /// The operation.
        op: String,
        /// What was non-finite.
        detail: String,
    },
}

impl OptimError {
    /// An [`OptimError::InvalidParameter`].
    pub fn invalid(solver: &str, parameter: &str, value: f64, reason: &str) -> Self {
        OptimError::InvalidParameter {
            solver: solver.into(),
            parameter: parameter.into(),
            value,
            reason: reason.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = OptimError> = std::result::Result<T, E>;

/// Checks `lo < value` (or `lo ≤ value` when `inclusive`) and `value ≤ hi`, and finiteness.
pub(crate) fn check_range(
    solver: &str,
    name: &str,
    value: f64,
    lo: f64,
    lo_inclusive: bool,
    hi: f64,
) -> Result<f64> {
    let above = if lo_inclusive { value >= lo } else { value > lo };
    if value.is_finite() && above && value <= hi {
        Ok(value)
    } else {
        let open = if lo_inclusive { "[" } else { "(" };
        let close = if hi.is_infinite() { ")" } else { "]" };
        Err(OptimError::invalid(
            solver,
            name,
            value,
            &format!("must lie in {open}{lo}, {hi}{close}"),
        ))
    }
}
