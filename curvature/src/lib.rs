//! Models, losses as predictive distributions, and curvature matrices as operators.

pub mod error;
pub mod operator;

pub use error::CurvatureError;
pub use operator::{CurvatureKind, LinearOperator};
