//! Models, losses as predictive distributions, and curvature matrices as operators.

pub mod decomposition;
pub mod error;
pub mod loss;
pub mod model;
pub mod operator;
pub mod problem;
pub mod reparam;
pub mod verify;

pub use error::CurvatureError;
pub use model::{Activation, Mlp, Model};
pub use operator::{CurvatureKind, CurvatureOperator, Damped, FnOperator, LinearOperator};
pub use problem::{ForwardPass, Problem};
