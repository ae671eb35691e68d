//! Checks for researchers' own tests: each returns a [`CheckReport`] (largest discrepancy,
//! where, tolerance, and any sub-checks in `parts`) usable as `report.assert_passed()` or
//! `assert!(report.passed())`.
//!
//! One argument style: the thing checked first (a [`Problem`](crate::Problem) and θ for a
//! model, an operator, a distribution and its `(z, y)`), then what the check needs, then the
//! tolerance (`check_loss` keeps its sampling arguments after the tolerance).
//!
//! For a model of your own, in this order: [`check_model`] (the layers describe the forward
//! pass), [`check_gradient`] and [`check_hessian_vector_product`] (against differences),
//! [`check_ggn_residual_identity`] and [`check_ggn_residual`] (any model; the second against a
//! reference that shares no code with the residual product) and [`check_hessian_decomposition`]
//! (layered models; each term against its own reference). For a loss of your own: [`check_loss`].
//!
//! **What the Hessian checks cannot catch.** Both sides of [`check_ggn_residual_identity`],
//! [`check_hessian_decomposition`] and [`check_fisher_equals_ggn`] use the loss's `H_L` (`H v`
//! seeds its reverse sweep with `H_L J v`; `G` and the term references apply `H_L` too), so a
//! wrong `H_L` cancels out: check a new loss with [`check_loss`]. Likewise the decomposition's
//! term references trust the layers' declared structure (`s_i = input · W_iᵀ + b_i`,
//! `a_i = φ_i(s_i)`): a model that declares it wrongly fails the whole-Hessian comparison while
//! its terms pass, and [`check_model`] says which layer is at fault (the whole-Hessian side
//! is the dual `H v` of `forward`; a pass's own `H v` of a layered model is fused from the same
//! four terms, so it trusts the layers too). [`check_ggn_residual`] does
//! not involve `H_L`: its two sides share only the model's forward pass, `autodiff`'s rules and
//! the loss's first derivative `∇_z L`.
//!
//! A failed dense comparison names its worst entry by the model's parameter blocks
//! ([`CheckReport::location`], e.g. `W2[5] × b1[0]`); a check made of several
//! ([`check_model`], the decomposition's terms) lists them in [`CheckReport::parts`].
//!
//! Tolerance tiers, as in `autodiff::check`: against finite differences about `1e-8`
//! (norm-wise relative); between two exact computations (identities, dense matrices built two
//! ways) about `1e-10` or tighter, scaled with the size of the matrices.

mod decomposition;
mod identities;
mod model;
mod products;
mod residual;

pub use autodiff::check::CheckReport;
pub use decomposition::{
    check_fisher_equals_ggn, check_ggn_residual_identity, check_hessian_decomposition,
};
pub use identities::{
    check_equal, check_loss, check_positive_semidefinite, check_reparameterization, check_symmetric,
};
pub use model::check_model;
pub use products::{
    check_adjoint, check_gradient, check_hessian_vector_product, check_jacobian_vector_product,
};
pub use residual::{check_ggn_residual, check_ggn_residual_operator};
