//! The built-in ops of the tape, their forward rules, and the user-extensible [`CustomOp`].
//!
//! Each op is a variant of one enum, so the forward rule (here) and the reverse rule
//! (`vjp`) are each one exhaustive `match`: a new variant makes the compiler list every rule
//! that is missing. Forward mode needs no rules of its own: running the forward rules on
//! [`Dual`](crate::Dual) values *is* the Jacobian-vector product.

pub mod custom;
pub mod softmax;
pub mod unary;

pub use custom::CustomOp;
pub use unary::UnaryFn;

use crate::matrix::Matrix;
use crate::scalar::Scalar;
use smallvec::{smallvec, SmallVec};
use std::sync::Arc;

/// One recorded operation; operands are node indices on the same tape.
#[derive(Clone)]
pub(crate) enum Op<T: Scalar> {
    /// A leaf whose adjoint is wanted (parameters θ).
    Input,
    /// A leaf with no adjoint (data, targets).
    Constant,
    /// `op(A) op(B)` where `op` transposes when the flag is set.
    MatMul {
        a: usize,
        b: usize,
        trans_a: bool,
        trans_b: bool,
    },
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    /// `A + 1 r` with `r` a `1×n` row added to every row of `A` (a bias).
    AddRow(usize, usize),
    /// The layer map `A Wᵀ + 1 bᵀ` in one node: one buffer instead of two, and no copy of the
    /// product (its value is not needed by any rule).
    Affine {
        a: usize,
        w: usize,
        b: usize,
    },
    /// `c A`.
    Scale(usize, T),
    /// `A + c`.
    AddScalar(usize, T),
    Transpose(usize),
    /// Sum of all elements, `1×1`.
    Sum(usize),
    /// Row sums, `m×1`.
    SumRows(usize),
    /// Column sums, `1×n`.
    SumCols(usize),
    Unary(usize, UnaryFn),
    Powi(usize, i32),
    /// Row-wise `log Σ_j exp(a_ij)`, `m×1`.
    LogSumExp(usize),
    /// Row-wise softmax.
    Softmax(usize),
    /// Row-wise log-softmax.
    LogSoftmax(usize),
    /// Elements `start..start + rows·cols` of the operand (row-major), as `rows×cols`.
    Slice {
        a: usize,
        start: usize,
    },
    /// The operand's elements in the same order, with a new shape.
    Reshape(usize),
    /// `y[k] = a[index[k]]`, zero where the index is [`gather::ZERO`] (im2col, broadcasts;
    /// see [`gather`]). `name` is the public op that recorded it, for error messages.
    Gather {
        a: usize,
        index: Arc<[usize]>,
        name: &'static str,
    },
    Custom {
        op: Arc<dyn CustomOp<T>>,
        inputs: Vec<usize>,
    },
}

impl<T: Scalar> Op<T> {
    /// The op's name in error messages.
    pub(crate) fn name(&self) -> String {
        match self {
            Op::Input => "input".into(),
            Op::Constant => "constant".into(),
            Op::MatMul { .. } => "matmul".into(),
            Op::Add(..) => "add".into(),
            Op::Sub(..) => "sub".into(),
            Op::Mul(..) => "mul".into(),
            Op::Div(..) => "div".into(),
            Op::AddRow(..) => "add_row".into(),
            Op::Affine { .. } => "affine".into(),
            Op::Scale(..) => "scale".into(),
            Op::AddScalar(..) => "add_scalar".into(),
            Op::Transpose(..) => "transpose".into(),
            Op::Sum(..) => "sum".into(),
            Op::SumRows(..) => "sum_rows".into(),
            Op::SumCols(..) => "sum_cols".into(),
            Op::Unary(_, f) => f.name().into(),
            Op::Powi(..) => "powi".into(),
            Op::LogSumExp(..) => "log_sum_exp".into(),
            Op::Softmax(..) => "softmax".into(),
            Op::LogSoftmax(..) => "log_softmax".into(),
            Op::Slice { .. } => "slice".into(),
            Op::Reshape(..) => "reshape".into(),
            Op::Gather { name, .. } => (*name).into(),
            Op::Custom { op, .. } => op.name().to_string(),
        }
    }

    /// The node indices this op reads (inline up to three, an affine layer's: no allocation).
    pub(crate) fn operands(&self) -> SmallVec<[usize; 3]> {
        match self {
            Op::Input | Op::Constant => smallvec![],
            Op::MatMul { a, b, .. } => smallvec![*a, *b],
            Op::Affine { a, w, b } => smallvec![*a, *w, *b],
            Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) | Op::AddRow(a, b) => {
                smallvec![*a, *b]
            }
            Op::Scale(a, _)
            | Op::AddScalar(a, _)
            | Op::Transpose(a)
            | Op::Sum(a)
            | Op::SumRows(a)
            | Op::SumCols(a)
            | Op::Unary(a, _)
            | Op::Powi(a, _)
            | Op::LogSumExp(a)
            | Op::Softmax(a)
            | Op::LogSoftmax(a)
            | Op::Slice { a, .. }
            | Op::Reshape(a)
            | Op::Gather { a, .. } => smallvec![*a],
            Op::Custom { inputs, .. } => SmallVec::from_slice(inputs),
        }
    }
}

/// Elementwise `f(a, b)` over two matrices of the same shape (checked by the caller).
pub(crate) fn zip_map<T: Scalar>(a: &Matrix<T>, b: &Matrix<T>, f: impl Fn(T, T) -> T) -> Matrix<T> {
    let data = crate::kernels::buffers::collect(
        a.len(),
        a.data().iter().zip(b.data()).map(|(&x, &y)| f(x, y)),
    );
    Matrix::from_vec(a.rows(), a.cols(), data).expect("internal error: zip_map shapes")
}

/// `(max_j a_ij, log Σ_j exp(a_ij - max))` for one row: the stable pieces of log-sum-exp.
pub(crate) fn row_log_sum_exp<T: Scalar>(row: &[T]) -> T {
    let max = row.iter().copied().fold(T::neg_infinity(), T::max);
    if !max.is_finite() {
        return max;
    }
    let sum = row.iter().fold(T::zero(), |s, &x| s + (x - max).exp());
    max + sum.ln()
}

/// Row-wise log-softmax of a matrix.
pub(crate) fn log_softmax<T: Scalar>(a: &Matrix<T>) -> Matrix<T> {
    let mut out = a.clone();
    for i in 0..a.rows() {
        let lse = row_log_sum_exp(a.row(i));
        for x in out.row_mut(i) {
            *x = *x - lse;
        }
    }
    out
}
