//! natgrad: exact Hessian, Gauss-Newton and Fisher products, and the solvers that use them.
//!
//! This facade re-exports the three crates of the workspace ([`autodiff`], [`curvature`],
//! [`optim`]) and holds what the examples share: the synthetic data ([`data`]), SVG figures
//! ([`plot`]), the reproductions of the paper ([`reproduce`]) and the command-line parser
//! ([`cli`]).

pub use autodiff;
pub use curvature;
pub use optim;

pub mod cli;
pub mod data;
pub mod plot;
pub mod reproduce;
