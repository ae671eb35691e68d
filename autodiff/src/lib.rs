//! Exact derivative products on matrices: reverse mode on a tape, forward mode with dual numbers.
#![doc = "(crate docs are written with the tape; see README)"]

pub mod error;
pub mod linalg;
pub mod matrix;
pub mod random;
pub mod scalar;

pub use error::{AutodiffError, Result};
pub use matrix::{MatMut, MatRef, Matrix, Shape};
pub use scalar::Scalar;
