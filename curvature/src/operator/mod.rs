//! Curvature matrices as linear operators: [`LinearOperator`], [`Damped`], and [`CurvatureKind`].

mod block;
mod curvature;

/// Hutchinson's diagonal estimator, now in [`crate::spectra`] (re-exported here for callers of
/// its old path).
pub use crate::spectra::estimate_diagonal;
pub use block::{dense_block, BlockDiagonal};
pub use curvature::{layer_blocks, CurvatureOperator};

use crate::error::{CurvatureError, Result};
use autodiff::Matrix;

/// A symmetric (or general) `n×n` matrix known through its products `v ↦ B v`.
///
/// Every curvature matrix of the paper (Hessian, GGN, Fisher, MC Fisher, empirical Fisher) is
/// one of these, as is a dense matrix and a damped matrix `B + λI` (Section 10).
pub trait LinearOperator {
    /// The dimension `n` (the number of parameters for a curvature matrix).
    fn dim(&self) -> usize;

    /// `out ← B v`. Errors if `v` or `out` does not have length [`dim`](Self::dim).
    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()>;

    /// Whether `B` is symmetric by construction.
    fn is_symmetric(&self) -> bool {
        true
    }

    /// The dense `n×n` matrix, built column by column from `B eⱼ` (n products).
    fn to_dense(&self) -> Result<Matrix<f64>> {
        let n = self.dim();
        let mut dense = Matrix::zeros(n, n);
        let mut e = vec![0.0; n];
        let mut column = vec![0.0; n];
        for j in 0..n {
            e[j] = 1.0;
            self.apply(&e, &mut column)?;
            e[j] = 0.0;
            for (i, value) in column.iter().enumerate() {
                dense[(i, j)] = *value;
            }
        }
        Ok(dense)
    }

    /// The exact diagonal, from `n` products `eⱼᵀ B eⱼ` (for small `n`).
    fn diagonal(&self) -> Result<Vec<f64>> {
        let n = self.dim();
        let mut e = vec![0.0; n];
        let mut column = vec![0.0; n];
        let mut diagonal = vec![0.0; n];
        for j in 0..n {
            e[j] = 1.0;
            self.apply(&e, &mut column)?;
            e[j] = 0.0;
            diagonal[j] = column[j];
        }
        Ok(diagonal)
    }
}

/// Checks that `v` and `out` have the operator's dimension; every `apply` starts with this.
pub fn check_apply_lengths(op: &str, dim: usize, v: &[f64], out: &[f64]) -> Result<()> {
    if v.len() != dim {
        return Err(CurvatureError::length(format!("{op}: v"), dim, v.len()));
    }
    if out.len() != dim {
        return Err(CurvatureError::length(format!("{op}: out"), dim, out.len()));
    }
    Ok(())
}

impl LinearOperator for Matrix<f64> {
    fn dim(&self) -> usize {
        self.rows()
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        if self.rows() != self.cols() {
            return Err(CurvatureError::Dimension {
                op: "Matrix::apply".into(),
                expected: "a square matrix".into(),
                actual: self.shape().to_string(),
            });
        }
        check_apply_lengths("Matrix::apply", self.rows(), v, out)?;
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.row(i).iter().zip(v).map(|(a, b)| a * b).sum();
        }
        Ok(())
    }

    fn is_symmetric(&self) -> bool {
        let n = self.rows();
        self.cols() == n && (0..n).all(|i| (0..i).all(|j| self[(i, j)] == self[(j, i)]))
    }
}

/// The damped operator `B + λI` of Section 10 (Tikhonov damping).
#[derive(Clone, Copy, Debug)]
pub struct Damped<Op> {
    /// The undamped operator `B`.
    pub op: Op,
    /// The damping strength `λ ≥ 0`.
    pub lambda: f64,
}

impl<Op: LinearOperator> Damped<Op> {
    /// `B + λI`; errors unless `λ` is finite and `λ ≥ 0`.
    pub fn new(op: Op, lambda: f64) -> Result<Self> {
        if !(lambda.is_finite() && lambda >= 0.0) {
            return Err(CurvatureError::invalid(
                "Damped::new",
                format!("damping λ must be finite and ≥ 0, got {lambda}"),
            ));
        }
        Ok(Damped { op, lambda })
    }
}

impl<Op: LinearOperator> LinearOperator for Damped<Op> {
    fn dim(&self) -> usize {
        self.op.dim()
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.op.apply(v, out)?;
        for (o, x) in out.iter_mut().zip(v) {
            *o += self.lambda * x;
        }
        Ok(())
    }

    fn is_symmetric(&self) -> bool {
        self.op.is_symmetric()
    }
}

impl<Op: LinearOperator + ?Sized> LinearOperator for &Op {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        (**self).apply(v, out)
    }
    fn is_symmetric(&self) -> bool {
        (**self).is_symmetric()
    }
}

impl<Op: LinearOperator + ?Sized> LinearOperator for Box<Op> {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        (**self).apply(v, out)
    }
    fn is_symmetric(&self) -> bool {
        (**self).is_symmetric()
    }
}

/// Which curvature matrix `B` a solver asks for (Sections 5, 8, 9, 11).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CurvatureKind {
    /// The Hessian `H` of the objective (eqn 6).
    Hessian,
    /// The generalized Gauss-Newton `G = mean Jᵀ H_L J` (eqn 5).
    Ggn,
    /// The Fisher `F = mean Jᵀ F_R J` (eqn 7), exact through `F_R`.
    Fisher,
    /// The Monte-Carlo Fisher with `samples` targets drawn per example from `R_{y|z}` (Section 11.1).
    MonteCarloFisher {
        /// Targets drawn per example.
        samples: usize,
        /// Seed of the sampler.
        seed: u64,
    },
    /// The empirical Fisher `F̄ = mean ∇L ∇Lᵀ` over the training targets (Section 11).
    EmpiricalFisher,
    /// The block-diagonal restriction (one block per layer) of another kind.
    BlockDiagonal(Box<CurvatureKind>),
}

/// A linear operator from a closure `v ↦ B v`, e.g. a term of the Section 8.1.2 decomposition:
/// `FnOperator::new(n, |v| pass.c_vector_product(v, None))`.
pub struct FnOperator<F> {
    dim: usize,
    product: F,
    symmetric: bool,
}

impl<F: Fn(&[f64]) -> Result<Vec<f64>>> FnOperator<F> {
    /// An operator of dimension `dim` that is not assumed symmetric.
    pub fn new(dim: usize, product: F) -> Self {
        FnOperator { dim, product, symmetric: false }
    }

    /// Declares the operator symmetric (as `C + Cᵀ` or the activation term are).
    pub fn symmetric(mut self) -> Self {
        self.symmetric = true;
        self
    }
}

impl<F: Fn(&[f64]) -> Result<Vec<f64>>> LinearOperator for FnOperator<F> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply_lengths("FnOperator::apply", self.dim, v, out)?;
        let result = (self.product)(v)?;
        if result.len() != self.dim {
            return Err(CurvatureError::length(
                "FnOperator::apply (product result)",
                self.dim,
                result.len(),
            ));
        }
        out.copy_from_slice(&result);
        Ok(())
    }

    fn is_symmetric(&self) -> bool {
        self.symmetric
    }
}
