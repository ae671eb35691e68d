//! The gather op: every output element is one element of the operand, or zero.
//!
//! `y[k] = a[index[k]]` (or `0` where `index[k]` is [`ZERO`]) is linear in `a` with a 0/1
//! Jacobian, so its rules are exact moves of elements: the tangent is the same gather of the
//! operand's tangent, the adjoint is the scatter-add `ā[index[k]] += ȳ[k]` (an element read by
//! several outputs receives the sum of their adjoints). Being linear, it adds nothing to a
//! second derivative, and on a [`Dual`](crate::Dual) tape the same moves carry both parts, so
//! forward-over-reverse `H v` through it needs no rule of its own.
//!
//! One op serves several layers: [`im2col`](crate::Var::im2col) (each patch of an image as a
//! row, zero where the patch overhangs the padding), the reorder of a convolution's output to
//! channel-major rows, and the broadcasts [`repeat_row`](crate::Var::repeat_row) and
//! [`repeat_column`](crate::Var::repeat_column) that layer normalization is composed from.

use crate::error::{AutodiffError, Result};
use crate::matrix::{Matrix, Shape};
use crate::op::Op;
use crate::scalar::Scalar;
use crate::tape::{self, Var};
use std::sync::Arc;

/// The index that stands for a zero output element (padding).
pub(crate) const ZERO: usize = usize::MAX;

/// `y[k] = a[index[k]]`, zero where `index[k] == ZERO`.
pub(crate) fn gather<T: Scalar>(a: &[T], index: &[usize], shape: Shape) -> Matrix<T> {
    let data = crate::kernels::buffers::collect(
        index.len(),
        index.iter().map(|&i| if i == ZERO { T::zero() } else { a[i] }),
    );
    Matrix::from_vec(shape.rows, shape.cols, data).expect("internal error: gather shape")
}

/// `ā[index[k]] += ȳ[k]` into a fresh buffer of the operand's length: the adjoint of
/// [`gather`] (for an image, col2im).
pub(crate) fn scatter_add<T: Scalar>(g: &[T], index: &[usize], len: usize) -> Vec<T> {
    let mut out = vec![T::zero(); len];
    for (&i, &x) in index.iter().zip(g) {
        if i != ZERO {
            out[i] = out[i] + x;
        }
    }
    out
}

impl<'t, T: Scalar> Var<'t, T> {
    /// Records `y = gather(self)` with shape `shape` (`shape.len() == index.len()`, every index
    /// below `self`'s length or [`ZERO`]; the callers build their tables so, and it is
    /// checked here all the same). `name` is the op in error messages.
    pub(crate) fn gather(
        self,
        name: &'static str,
        index: Arc<[usize]>,
        shape: Shape,
    ) -> Result<Var<'t, T>> {
        let len = self.shape().len();
        if index.len() != shape.len() {
            return Err(AutodiffError::invalid(
                name,
                format!("{} indices for a {shape} result", index.len()),
            ));
        }
        if let Some(&bad) = index.iter().find(|&&i| i != ZERO && i >= len) {
            return Err(AutodiffError::SliceOutOfRange {
                op: name.into(),
                start: bad,
                end: bad + 1,
                len,
            });
        }
        let value = {
            let nodes = self.tape.nodes.borrow();
            gather(tape::data(&nodes, self.index), &index, shape)
        };
        self.tape.push(Op::Gather { a: self.index, index, name }, value)
    }

    /// The `1×n` row `self` repeated as every row of an `rows×n` matrix, `1 selfᵀ`.
    /// Its adjoint is the column sums of the output's adjoint.
    ///
    /// ```
    /// use autodiff::{Matrix, Tape};
    /// let tape = Tape::<f64>::new();
    /// let r = tape.input(Matrix::from_vec(1, 2, vec![1.0, 2.0])?);
    /// assert_eq!(r.repeat_row(3)?.value().data(), &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    /// # Ok::<(), autodiff::AutodiffError>(())
    /// ```
    pub fn repeat_row(self, rows: usize) -> Result<Var<'t, T>> {
        let s = self.shape();
        if s.rows != 1 {
            return Err(AutodiffError::shape(
                "repeat_row (needs a 1×n row)",
                s,
                Shape::new(1, s.cols),
            ));
        }
        let n = s.cols;
        let index: Arc<[usize]> = (0..rows * n).map(|k| k % n).collect();
        self.gather("repeat_row", index, Shape::new(rows, n))
    }

    /// The `m×1` column `self` repeated as every column of an `m×cols` matrix, `self 1ᵀ`.
    /// Its adjoint is the row sums of the output's adjoint.
    ///
    /// ```
    /// use autodiff::{Matrix, Tape};
    /// let tape = Tape::<f64>::new();
    /// let c = tape.input(Matrix::column(vec![1.0, 2.0]));
    /// assert_eq!(c.repeat_column(2)?.value().data(), &[1.0, 1.0, 2.0, 2.0]);
    /// # Ok::<(), autodiff::AutodiffError>(())
    /// ```
    pub fn repeat_column(self, cols: usize) -> Result<Var<'t, T>> {
        let s = self.shape();
        if s.cols != 1 {
            return Err(AutodiffError::shape(
                "repeat_column (needs an m×1 column)",
                s,
                Shape::new(s.rows, 1),
            ));
        }
        let index: Arc<[usize]> = (0..s.rows * cols).map(|k| k / cols.max(1)).collect();
        self.gather("repeat_column", index, Shape::new(s.rows, cols))
    }
}
