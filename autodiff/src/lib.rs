//! Exact derivative products on matrices: reverse mode on a tape, forward mode with dual numbers.
//!
//! A model is written once, generic over the [`Scalar`] type ([`modes::Function`]); running it
//! on different scalars gives every product the curvature crate needs, exactly:
//!
//! - on `f64` with a recording [`Tape`]: the value, and `Jᵀ u` by one reverse sweep
//!   ([`Tape::backward_with_seeds`] takes cotangents on any nodes, not only the output);
//! - on [`Dual<f64>`] with tangent `v` on θ: `J v` from one forward pass (forward mode);
//! - the reverse sweep over a `Dual<f64>` tape: `H v` (forward-over-reverse), since every
//!   reverse rule is a plain function generic over the scalar and so differentiates itself;
//! - on `Dual<Dual<f64>>`: second derivatives by forward-over-forward (used in tests as an
//!   independent reference).
//!
//! Values are dense row-major matrices ([`Matrix`]): a batch is a matrix whose rows are
//! examples, a flat parameter vector θ is `n×1` and is viewed as weights with [`Var::slice`].
//! Nodes are whole matrix ops, never scalars, and matrix products go through `matrixmultiply`
//! (a dual product is three real products on strided views of the same buffer).
//!
//! Memory is the constraint on big batches, so the tape copies nothing it can read in place: a
//! slice is a view into its operand's buffer (the weights of a layer are never copied out of θ),
//! a sweep that keeps only the inputs' adjoints adds each view's adjoint straight into θ's,
//! seeds are read where the caller keeps them, and the layer map `A Wᵀ + 1 bᵀ`
//! ([`Var::affine`]) is one node with one buffer. On the 2.8-million-parameter autoencoder of
//! the benchmark, the gradient's peak heap is 1.4× the bytes of θ, `∇h`, the input and the
//! layers' `s_i` and `a_i`.
//! Passes that repeat (a training loop, the products of conjugate gradient, one thread per row
//! block) can keep their buffers from one pass to the next in a [`BufferPool`]: inside
//! [`BufferPool::scope`] matrices take and give back buffers of exactly their size.
//!
//! Beyond dense layers, the ops include the layers of convolutional networks: a 2-D
//! convolution ([`Var::conv2d`] over a [`Conv2d`] geometry, im2col on the tape and one matrix
//! product) and layer normalization ([`Var::layer_norm`]); `J v`, `Jᵀ u` and `H v` through them
//! are exact like every other product.
//!
//! Mistakes in use (shapes, a variable from another tape, an out-of-range slice, a NaN when
//! [`Tape::set_check_finite`] is on) are [`AutodiffError`]s naming the op and the shapes.
//! The [`check`] module holds the finite-difference and adjoint checks this crate's own tests
//! use, for users' functions and [`CustomOp`]s.
//!
//! # Layout
//!
//! Lowest first: each module imports only from modules before it in this list (the kernels
//! and [`matrix`] interleave: a matrix allocates through [`kernels::buffers`], and
//! [`kernels::small_gemm`] multiplies matrix views), so the import graph has no cycle
//! (`tests/module_graph.rs` reads every `crate::` path and fails on one).
//!
//! - [`shape`], [`error`]: the [`Shape`] of a matrix and [`AutodiffError`].
//! - [`kernels`]: the performance layer, apart from the AD core. [`kernels::buffers`]
//!   (allocation, [`BufferPool`]), [`kernels::small_gemm`] (small real and dual matrix
//!   products), [`kernels::fast_math`] (vectorized `exp`, `tanh`, sigmoid, softplus).
//!   **Kernels never import the tape, the ops or the rules**: only [`matrix`], [`shape`],
//!   [`error`] and other kernels (outside their tests), so they can be read, tested and
//!   replaced alone. (The paths `autodiff::buffers`, `autodiff::fast_math` and
//!   `autodiff::small_gemm` still name them.)
//! - [`matrix`]: [`Matrix`] and its strided views [`MatRef`], [`MatMut`].
//! - [`scalar`]: the [`Scalar`] trait (each scalar chooses its product and slice kernels), the
//!   sigmoid, and the product of dual matrices from their real and tangent parts.
//! - [`dual`]: [`Dual`] numbers, their matrix product and slice functions.
//! - [`op`]: the ops a tape records (one enum), the elementwise functions [`UnaryFn`], the
//!   row-wise softmax and its products ([`op::softmax`], shared with the curvature crate's
//!   losses and activations), and [`CustomOp`].
//! - [`tape`]: [`Tape`], [`Var`] and the recorded nodes.
//! - [`var`]: the ops as methods of [`Var`], including [`var::conv`] and [`var::layer_norm`].
//! - [`backward`]: the reverse sweep (`Jᵀ u`, and `H v` over dual numbers); its adjoint store
//!   (`backward::adjoints`: adjoint buffers, their reuse and the vectorized accumulation) is
//!   apart from the reverse rule of every op (`backward::vjp`, rules only).
//! - [`tangents`]: the tangent sweep over a recorded tape and the forward rules
//!   (`tangents::jvp`).
//! - [`modes`], [`check`]: the products of a [`Function`] and their finite-difference checks;
//!   [`linalg`], [`random`]: small dense linear algebra and random matrices.
//!
//! # Naming
//! Products and their checks are spelled out in code:
//! [`modes::jacobian_vector_product`], [`modes::transpose_jacobian_vector_product`],
//! [`modes::hessian_vector_product`], [`check::check_hessian_vector_product`], and the rules of a
//! [`CustomOp`] are `jacobian_vector_product` and `transpose_jacobian_vector_product`; the
//! short forms are for the math in docs: `J v`, `Jᵀ u`, `H v` (no `jvp`, `vjp`, `hvp` in names).
//!
//! # Example: `J v`, `Jᵀ u`, `H v` of a small network
//! ```
//! use autodiff::{check, modes, Function, Matrix, Result, Scalar, Tape, Var};
//!
//! /// h(θ) = mean over the batch of ½‖tanh(X Wᵀ) − Y‖², with θ = vec(W), W 2×3.
//! struct Net { x: Matrix<f64>, y: Matrix<f64> }
//! impl Function for Net {
//!     fn eval<'t, T: Scalar>(&self, tape: &'t Tape<T>, theta: Var<'t, T>) -> Result<Var<'t, T>> {
//!         let w = theta.slice(0, 2, 3)?;
//!         let z = tape.constant_f64(&self.x).matmul_t(w)?.tanh()?;
//!         let r = z.sub(tape.constant_f64(&self.y))?;
//!         r.square()?.sum()?.scale(0.5 / self.x.rows() as f64)
//!     }
//! }
//!
//! let net = Net {
//!     x: Matrix::from_fn(4, 3, |i, j| (i as f64 - j as f64) * 0.3),
//!     y: Matrix::from_fn(4, 2, |i, j| if i % 2 == j { 1.0 } else { 0.0 }),
//! };
//! let theta = [0.1, -0.2, 0.3, 0.4, 0.0, -0.5];
//! let v = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
//!
//! let (loss, gradient) = modes::gradient(&net, &theta)?;
//! let (_, _, hv) = modes::hessian_vector_product(&net, &theta, &v)?;
//! assert!(loss > 0.0 && gradient.len() == 6 && hv.len() == 6);
//!
//! // Each product against central differences (tier 1e-8).
//! check::check_gradient(&net, &theta, 1e-8)?.assert_passed();
//! check::check_hessian_vector_product(&net, &theta, &v, 1e-8)?.assert_passed();
//! # Ok::<(), autodiff::AutodiffError>(())
//! ```

pub mod backward;
pub mod check;
pub mod dual;
pub mod error;
pub mod kernels;
pub mod linalg;
pub mod matrix;
pub mod modes;
pub mod op;
pub mod random;
pub mod scalar;
pub mod shape;
pub mod tangents;
pub mod tape;
pub mod var;

/// The performance layer's modules under their former paths (`autodiff::buffers`, ...): the
/// same modules as [`kernels::buffers`], [`kernels::fast_math`] and [`kernels::small_gemm`].
pub use kernels::{buffers, fast_math, small_gemm};

pub use backward::{Gradients, Retain};
pub use dual::Dual;
pub use error::{AutodiffError, Result};
pub use kernels::buffers::BufferPool;
pub use matrix::{MatMut, MatRef, Matrix, Shape};
pub use modes::Function;
pub use op::{CustomOp, UnaryFn};
/// The `rand` crate this crate is built with: [`random`]'s functions take a [`rand::RngCore`],
/// so a user names it (and seeds generators) through this re-export without matching versions.
pub use rand;
pub use scalar::Scalar;
pub use tangents::Tangents;
pub use tape::{Tape, Var};
pub use var::conv::Conv2d;
