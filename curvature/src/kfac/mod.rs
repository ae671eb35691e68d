//! K-FAC and EKFAC (Martens & Grosse 2015; George et al. 2018), built on the exact products:
//! per layer, the curvature block of `[vec(W_i), b_i]` is approximated by a Kronecker product
//! of a small output-side factor `G_i` and an input-side factor `Ā_{i-1}` (Sections 10 and 13
//! of the paper point to K-FAC as the practical end of the natural-gradient line).
//!
//! **The factors.** With `ā_n = [a_{i-1,n}; 1]` (the layer input with the bias column) and
//! `g_{n,k}` the vectors back-propagated from the output to `s_i`, the exact per-layer block is
//! `(1/N) Σ_n Σ_k w_{n,k} (g_{n,k} g_{n,k}ᵀ) ⊗ (ā_n ā_nᵀ)` and K-FAC replaces the mean of the
//! products by the product of the means, `G_i ⊗ Ā_{i-1}` with `Ā = (1/N) Σ_n ā_n ā_nᵀ` and
//! `G = (1/N) Σ_{n,k} w_{n,k} g_{n,k} g_{n,k}ᵀ`. The output-side vectors ([`KfacKind`]):
//! - [`KfacKind::Type2`]: `H_L(z_n) = Σ_k λ_{n,k} u_{n,k} u_{n,k}ᵀ` (its eigen decomposition)
//!   and `g_{n,k} = J_{z←s_i}ᵀ u_{n,k}`, `w = λ`: the GGN's own factorization, so one example
//!   gives exactly the GGN block (any `H_L`, singular or not: the eigenvalues are weights, no
//!   square root is taken). One reverse sweep per output dimension, all examples at once.
//! - [`KfacKind::MonteCarlo`]: one target `ỹ_n ~ R_{y|z_n}` (seeded), `g = J ᵀ ∇_z L(ỹ_n, z_n)`
//!   (an unbiased one-sample estimate of the Fisher's factor). One reverse sweep.
//! - [`KfacKind::Empirical`]: the training targets, `g = Jᵀ ∇_z L(y_n, z_n)`. One reverse sweep.
//!
//! **Layout.** The order of the Kronecker product follows θ's row-major `W_i` (`s = a Wᵀ + b`):
//! for the extended matrix `W̄ = [W | b]` (`m_i × (m_{i-1}+1)`) stored row-major, the block is
//! `G ⊗ Ā` and `(G ⊗ Ā) vec(X) = vec(G X Ā)`. θ does not interleave the bias with the weights
//! (all of `vec(W_i)`, then `b_i`), so [`KfacLayer::to_extended`] and
//! [`KfacLayer::write_extended`] permute between θ's block and `vec(W̄)`: weight `(r, c)` sits at
//! `r m_{i-1} + c` in θ's block and at `r (m_{i-1}+1) + c` in `vec(W̄)`; bias `r` at
//! `m_i m_{i-1} + r` and at `r (m_{i-1}+1) + m_{i-1}`.
//!
//! **Operators.** [`Kfac`] (block diagonal, one `G ⊗ Ā` per layer) is a [`LinearOperator`](crate::LinearOperator);
//! [`Kfac::inverse`] gives `(K + damping)⁻¹` with factored π-damping (Martens & Grosse 2015,
//! Section 6.3) or exact damping `(G ⊗ Ā + λI)⁻¹` through the factors' eigen decompositions.
//! [`Ekfac`] keeps K-FAC's eigenbasis `Q_G ⊗ Q_A` and re-estimates the diagonal scalings from
//! the same statistics: `S = diag(Qᵀ B Q)`, the closest matrix to the exact block `B` (in
//! Frobenius norm) among those diagonal in that basis, K-FAC included.
//!
//! ```
//! use curvature::kfac::{KfacDamping, KfacKind};
//! use curvature::loss::SquaredError;
//! use curvature::{operator::dense_block, Activation, LinearOperator, Mlp, Problem};
//! use autodiff::Matrix;
//!
//! // One example: the K-FAC block equals the exact GGN block.
//! let mlp = Mlp::new(&[3, 4, 2], &[Activation::Tanh, Activation::Identity])?;
//! let x = Matrix::from_vec(1, 3, vec![0.5, -1.0, 2.0])?;
//! let y = Matrix::from_vec(1, 2, vec![1.0, 0.0])?;
//! let problem = Problem::new(&mlp, &SquaredError, &x, &y)?;
//! let theta: Vec<f64> = (0..mlp.num_params()).map(|k| 0.3 * (k as f64).cos()).collect();
//! let pass = problem.at(&theta)?;
//! let kfac = pass.kfac(&KfacKind::Type2)?.to_dense()?;
//! let ggn = pass.ggn().to_dense()?;
//! let r = mlp.layer_range(1);
//! let (k1, g1) = (dense_block(&kfac, r.clone(), r.clone())?, dense_block(&ggn, r.clone(), r)?);
//! assert!(k1.data().iter().zip(g1.data()).all(|(a, b)| (a - b).abs() < 1e-12));
//! // The damped inverse.
//! let inverse = pass.kfac(&KfacKind::Type2)?.inverse(KfacDamping::Exact { lambda: 0.1 })?;
//! assert_eq!(inverse.dim(), mlp.num_params());
//! # Ok::<(), curvature::CurvatureError>(())
//! ```

mod ekfac;
mod factors;
mod operator;
#[cfg(test)]
mod tests;

pub use ekfac::{Ekfac, EkfacInverse};
pub use operator::{Kfac, KfacDamping, KfacInverse, KfacLayer};

/// Which output-side vectors make the `G` factor (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KfacKind {
    /// The eigen decomposition of `H_L`: the GGN's factor (exact for one example).
    Type2,
    /// One target per example drawn from `R_{y|z}` with this seed: the Fisher's factor.
    MonteCarlo {
        /// Seed of the sampler.
        seed: u64,
    },
    /// The training targets: the empirical Fisher's factor.
    Empirical,
}
