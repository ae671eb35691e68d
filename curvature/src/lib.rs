//! Models, losses as predictive distributions, and the curvature matrices of Martens (JMLR
//! 2020) as exact linear operators: the Hessian, the generalized Gauss-Newton (GGN), the
//! Fisher, the Monte-Carlo Fisher and the empirical Fisher, whole or per layer, dense when small,
//! and the Hessian split into the terms of Section 8.1.2.
//!
//! A [`Problem`] is a model `f`, a loss `L(y, z) = −log r(y|z)` ([`loss::PredictiveDistribution`])
//! and a batch; [`Problem::at`] records the forward pass at θ once in a [`ForwardPass`], which
//! every product reuses. Products average over the batch like `h(θ) = (1/N) Σ_n L(y_n, f(x_n, θ))`.
//!
//! | paper | code |
//! |---|---|
//! | `f(x, θ)`, `z` | [`Model::forward`], [`ForwardPass::output`] |
//! | `s_i = W_i a_{i-1} + b_i`, `a_i = φ_i(s_i)` | [`Mlp`], [`Activation`], [`model::LayerVars`], a user's φ: [`model::Elementwise`], [`model::Nonlinearity`] |
//! | `R_{y|z}`, `L`, `∇_z L`, `H_L`, `F_R` | [`loss::PredictiveDistribution`] |
//! | `∇h` (eqn 1) | [`ForwardPass::gradient`] |
//! | `J v`, `Jᵀ u` (Sec 9.1) | [`ForwardPass::jacobian_vector_product`], [`ForwardPass::transpose_jacobian_vector_product`] |
//! | `H v` (eqn 6) | [`ForwardPass::hessian_vector_product`], [`ForwardPass::hessian`] |
//! | `G v` (eqn 5) | [`ForwardPass::ggn_vector_product`], [`ForwardPass::ggn`] |
//! | `F v` (eqn 7) | [`ForwardPass::fisher_vector_product`], [`ForwardPass::fisher`] |
//! | MC Fisher, `F̄` (Sec 11) | [`ForwardPass::monte_carlo_fisher`], [`ForwardPass::empirical_fisher`] |
//! | all of the above, on any pass | [`CurvatureProducts`], [`CurvatureOperator`]`<P>` |
//! | eqn 6 residual, `C`, `Cᵀ`, activation term (Sec 8.1.2) | [`ForwardPass::ggn_residual_vector_product`], [`ForwardPass::c_vector_product`], … ([`decomposition`]) |
//! | `B + λI` (Sec 10) | [`Damped`] |
//! | `θ = ζ(γ)`, `J_ζ` (Sec 12) | [`reparam`] |
//! | Sec 13 bound | [`loss::section13_bound`] |
//! | spectra, traces, diagonals of any of these (PyHessian-style) | [`spectra`]: Lanczos, SLQ, Hutchinson, Hutch++ |
//!
//! **One products trait**: [`CurvatureProducts`] is what a recorded pass offers: `h`, `∇h`,
//! `J v`, `Jᵀ u`, `G v`, `F v`, `F̄ v`, `H v` and the Monte-Carlo Fisher (its targets drawn,
//! then its product). [`ForwardPass`] implements it on one thread and [`ShardedPass`] on one
//! thread per row block (their inherent methods of the same names are the same products), and
//! `&P` implements it for any pass `P`. The one generic [`CurvatureOperator<P>`] turns any
//! implementation into the matrix of a [`CurvatureKind`] with one `match` (block-diagonal
//! kinds by the layer blocks, Monte-Carlo targets drawn once), owning the pass
//! ([`ForwardPass::into_operator`], what an optimizer's objective returns) or borrowing it
//! ([`ForwardPass::ggn`], [`ForwardPass::operator`]). The operator picks its product once, when
//! it is built, so `apply` dispatches nothing. The distributed pass
//! ([`distributed::DistributedPass`]) does not implement the trait: its products are collective
//! (every rank must call them in the same order), the whole batch's `J v` and `Jᵀ u` have
//! their rows on other ranks, and each rank draws Monte-Carlo targets from its own seed; it
//! all-reduces the operator of its rank's shard instead.
//!
//! **Parameter layout** (one convention everywhere): `θ = concat_{i=1..ℓ} [vec(W_i), b_i]` with
//! `W_i` stored row-major as `m_i × m_{i-1}`; [`Mlp::weight_range`] and [`Mlp::bias_range`] say
//! where each block sits.
//!
//! **Costs** (in passes over the network): the gradient is one forward and one reverse sweep;
//! `G v`, `F v`, `F̄ v` and the MC Fisher are a tangent sweep plus a reverse sweep over the cached
//! forward pass; `H v` is a forward and a reverse sweep on dual numbers
//! ([`Problem::hessian_vector_product`] needs no `f64` pass at all), or, on the recorded pass of
//! a layered model, a tangent and a reverse sweep over it (fused: the Section 8.1.2 terms).
//! No product loops over examples or parameters. Counting matrix-product FLOPs with `F` a
//! forward pass and `F₁` its first layer: the gradient, `J v` and `Jᵀ u` cost `3F − F₁`,
//! `G v`/`F v`/`F̄ v` from θ `5F − 2F₁` (`4F − 2F₁` on a recorded pass), `H v` `8F − 5F₁` (its
//! reverse sweep skips the gradient, [`autodiff::Tape::backward_tangents`]; `6F − 4F₁` fused on
//! a recorded pass of a layered model, [`ForwardPass::hessian_vector_product`]).
//!
//! **Threads**: every quantity is a sum over examples, so [`ShardedProblem`] splits the batch
//! into row blocks and runs each product on one thread per block, exactly (the blocks only
//! reorder the sums); `optim`'s `NetworkObjective::with_threads` trains with it. Each block
//! allocates from its own [`autodiff::BufferPool`], so a worker thread reuses the buffers of
//! its last pass instead of faulting in fresh pages every time.
//!
//! **Errors and checks**: bad input is a [`CurvatureError`] naming the quantity, never a panic
//! or a silent NaN. Sizes are checked arithmetic ([`Mlp::new`] refuses widths whose parameter
//! count overflows); [`Problem::new`] checks every target row against its loss
//! ([`loss::PredictiveDistribution::check_target`]: probability rows for the categoricals,
//! `[0, 1]` for Bernoulli, finite for the Gaussians; [`CurvatureError::InvalidTarget`] names
//! the row and column). The [`checks`] module's finite checks, on by default, turn a NaN or
//! ±∞ in θ, `x`, `y`, `v`, or in a loss or product computed from finite inputs, into a
//! [`CurvatureError::NonFinite`] naming the quantity and the first bad index; each is one
//! linear scan of a vector the product touches anyway (the benchmark prints the checked over
//! unchecked ratio), and [`checks::without_finite_checks`] turns them off for speed-critical
//! loops.
//!
//! **Processes**: [`distributed::DistributedProblem`] holds one rank's shard and all-reduces every
//! product over a [`distributed::Communicator`] (MPI with the `mpi` feature): per product, a
//! 1-float all-reduce of the error flag, then one all-reduce of the `n` floats, in place.
//!
//! # Example
//! ```
//! use curvature::loss::SoftmaxCrossEntropy;
//! use curvature::{verify, Activation, LinearOperator, Mlp, Problem};
//! use autodiff::Matrix;
//!
//! let mlp = Mlp::new(&[2, 3, 3], &[Activation::Tanh, Activation::Identity])?;
//! let x = Matrix::from_fn(4, 2, |i, j| (i as f64 - 1.5) * (j as f64 + 0.5));
//! let y = Matrix::from_fn(4, 3, |i, j| if i % 3 == j { 1.0 } else { 0.0 });
//! let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y)?;
//! let theta: Vec<f64> = (0..mlp.num_params()).map(|k| 0.1 * (k as f64).sin()).collect();
//!
//! let pass = problem.at(&theta)?;
//! let g = pass.ggn().to_dense()?;              // the GGN, 21×21
//! let h = pass.hessian().to_dense()?;          // the Hessian
//! assert_eq!(g.shape(), h.shape());
//! // Softmax cross-entropy on logits: z is a natural parameter, so F = G (Section 9.2) ...
//! assert!(verify::check_fisher_equals_ggn(&problem, &theta, 1e-12)?.passed());
//! // ... and H = G + C + Cᵀ + activation term (Section 8.1.2), to round-off.
//! assert!(verify::check_hessian_decomposition(&problem, &theta, 1e-10)?.passed());
//! # Ok::<(), curvature::CurvatureError>(())
//! ```

pub mod checks;
pub mod decomposition;
pub mod distributed;
pub mod error;
pub mod kfac;
pub mod loss;
pub mod model;
pub mod npy;
pub mod operator;
pub mod parallel;
pub mod problem;
pub mod products;
pub mod reparam;
pub mod spectra;
pub mod verify;

pub use error::CurvatureError;
pub use model::{Activation, Mlp, Model};
pub use operator::{CurvatureKind, CurvatureOperator, Damped, FnOperator, LinearOperator};
pub use parallel::{ShardedPass, ShardedProblem};
pub use problem::{ForwardPass, Problem};
pub use products::CurvatureProducts;
/// The `rand` crate this crate is built with: [`loss::PredictiveDistribution::sample`] takes a
/// [`rand::RngCore`], so a user names it (and seeds generators) through this re-export without
/// matching versions by hand.
pub use rand;
