//! natgrad: exact Hessian, Gauss-Newton and Fisher products, and the solvers that use them.
//!
//! This facade re-exports the three crates of the workspace.

pub use autodiff;
pub use curvature;
pub use optim;
