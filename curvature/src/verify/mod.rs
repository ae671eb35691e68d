//! Checks for researchers' own tests: each returns a [`CheckReport`] (largest discrepancy,
//! where, tolerance) usable as `report.assert_passed()` or `assert!(report.passed())`.
//!
//! Tolerance tiers, as in `autodiff::check`: against finite differences about `1e-8`
//! (norm-wise relative); between two exact computations (identities, dense matrices built two
//! ways) about `1e-10` or tighter, scaled with the size of the matrices.

mod identities;
mod products;

pub use autodiff::check::CheckReport;
pub use identities::{
    check_equal, check_fisher_equals_ggn, check_ggn_residual_identity, check_hessian_decomposition,
    check_loss, check_positive_semidefinite, check_reparameterization, check_symmetric,
};
pub use products::{
    check_adjoint, check_gradient, check_hessian_vector_product, check_jacobian_vector_product,
};
