//! The ops a model is written with, as methods on [`Var`]: each checks its operands, computes
//! the forward value, and records one node.
//!
//! The layers of convolutional networks are here too: [`conv`] (im2col and the convolution),
//! [`layer_norm`], and the index op they are built from (`gather`).

pub mod conv;
pub(crate) mod gather;
pub mod layer_norm;

use crate::error::{AutodiffError, Result};
use crate::matrix::{MatRef, Matrix, Shape};
use crate::op::{log_softmax, row_log_sum_exp, softmax, zip_map, CustomOp, Op, UnaryFn};
use crate::scalar::Scalar;
use crate::tape::{self, Var};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::sync::Arc;

impl<'t, T: Scalar> Var<'t, T> {
    fn same_tape(&self, op: &str, other: Var<'_, T>) -> Result<()> {
        self.tape.check_var(op, other)
    }

    /// Records `op` with the value `f(values of operands)`.
    /// Views (slices) among the operands are copied for `f`; the products read views in place
    /// through [`record_views`](Self::record_views).
    fn record(self, op: Op<T>, f: impl FnOnce(&[&Matrix<T>]) -> Matrix<T>) -> Result<Var<'t, T>> {
        let value = {
            let nodes = self.tape.nodes.borrow();
            let operands: SmallVec<[Cow<'_, Matrix<T>>; 3]> =
                op.operands().into_iter().map(|i| tape::value(&nodes, i)).collect();
            let refs: SmallVec<[&Matrix<T>; 3]> = operands.iter().map(|c| c.as_ref()).collect();
            f(&refs)
        };
        self.tape.push(op, value)
    }

    /// Records `op` with the value `f(views of operands)`, copying nothing.
    fn record_views(
        self,
        op: Op<T>,
        f: impl FnOnce(&[MatRef<'_, T>]) -> Matrix<T>,
    ) -> Result<Var<'t, T>> {
        let value = {
            let nodes = self.tape.nodes.borrow();
            let operands: SmallVec<[MatRef<'_, T>; 3]> =
                op.operands().into_iter().map(|i| tape::view(&nodes, i)).collect();
            f(&operands)
        };
        self.tape.push(op, value)
    }

    fn elementwise(self, op: &str, other: Var<'t, T>) -> Result<()> {
        self.same_tape(op, other)?;
        let (a, b) = (self.shape(), other.shape());
        if a != b {
            return Err(AutodiffError::shape(op, a, b));
        }
        Ok(())
    }

    /// The matrix product `self · b`, through the scalar's GEMM kernel.
    pub fn matmul(self, b: Var<'t, T>) -> Result<Var<'t, T>> {
        self.matmul_general("matmul", b, false, false)
    }

    /// `self · bᵀ` without forming `bᵀ` (a layer `A Wᵀ` with `W` stored `out×in`).
    pub fn matmul_t(self, b: Var<'t, T>) -> Result<Var<'t, T>> {
        self.matmul_general("matmul_t", b, false, true)
    }

    /// `selfᵀ · b` without forming `selfᵀ`.
    pub fn t_matmul(self, b: Var<'t, T>) -> Result<Var<'t, T>> {
        self.matmul_general("t_matmul", b, true, false)
    }

    fn matmul_general(
        self,
        name: &str,
        b: Var<'t, T>,
        trans_a: bool,
        trans_b: bool,
    ) -> Result<Var<'t, T>> {
        self.same_tape(name, b)?;
        let (sa, sb) = (self.shape(), b.shape());
        let (m, ka) = if trans_a { (sa.cols, sa.rows) } else { (sa.rows, sa.cols) };
        let (kb, n) = if trans_b { (sb.cols, sb.rows) } else { (sb.rows, sb.cols) };
        if ka != kb {
            return Err(AutodiffError::shape(name, sa, sb));
        }
        let op = Op::MatMul { a: self.index, b: b.index, trans_a, trans_b };
        self.record_views(op, |v| {
            let mut c = Matrix::zeros(m, n);
            let av = if trans_a { v[0].t() } else { v[0] };
            let bv = if trans_b { v[1].t() } else { v[1] };
            T::gemm(av, bv, c.as_mut(), false);
            c
        })
    }

    /// Elementwise `self + b` (same shapes).
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, b: Var<'t, T>) -> Result<Var<'t, T>> {
        self.elementwise("add", b)?;
        self.record(Op::Add(self.index, b.index), |v| zip_map(v[0], v[1], |x, y| x + y))
    }

    /// Elementwise `self - b` (same shapes).
    #[allow(clippy::should_implement_trait)]
    pub fn sub(self, b: Var<'t, T>) -> Result<Var<'t, T>> {
        self.elementwise("sub", b)?;
        self.record(Op::Sub(self.index, b.index), |v| zip_map(v[0], v[1], |x, y| x - y))
    }

    /// Elementwise (Hadamard) product `self ⊙ b` (same shapes).
    #[allow(clippy::should_implement_trait)]
    pub fn mul(self, b: Var<'t, T>) -> Result<Var<'t, T>> {
        self.elementwise("mul", b)?;
        self.record(Op::Mul(self.index, b.index), |v| zip_map(v[0], v[1], |x, y| x * y))
    }

    /// Elementwise quotient `self / b` (same shapes).
    #[allow(clippy::should_implement_trait)]
    pub fn div(self, b: Var<'t, T>) -> Result<Var<'t, T>> {
        self.elementwise("div", b)?;
        self.record(Op::Div(self.index, b.index), |v| zip_map(v[0], v[1], |x, y| x / y))
    }

    /// `self + 1 r`: the `1×n` row `r` added to every row (a bias over a batch).
    pub fn add_row(self, r: Var<'t, T>) -> Result<Var<'t, T>> {
        self.same_tape("add_row", r)?;
        let (sa, sr) = (self.shape(), r.shape());
        if sr.rows != 1 || sr.cols != sa.cols {
            return Err(AutodiffError::shape("add_row", sa, sr));
        }
        self.record(Op::AddRow(self.index, r.index), |v| {
            let mut out = v[0].clone();
            let row = v[1].data();
            for i in 0..out.rows() {
                for (x, &b) in out.row_mut(i).iter_mut().zip(row) {
                    *x = *x + b;
                }
            }
            out
        })
    }

    /// The layer map `self · wᵀ + 1 bᵀ` (`self` is `N×m_in`, `w` is `m_out×m_in`, `b` is
    /// `1×m_out`) as one node: the same values as `self.matmul_t(w)?.add_row(b)`, with one
    /// buffer instead of two.
    pub fn affine(self, w: Var<'t, T>, b: Var<'t, T>) -> Result<Var<'t, T>> {
        self.same_tape("affine", w)?;
        self.same_tape("affine", b)?;
        let (sa, sw, sb) = (self.shape(), w.shape(), b.shape());
        if sa.cols != sw.cols {
            return Err(AutodiffError::shape("affine (input vs weights)", sa, sw));
        }
        if sb.rows != 1 || sb.cols != sw.rows {
            return Err(AutodiffError::shape("affine (weights vs bias)", sw, sb));
        }
        self.record_views(Op::Affine { a: self.index, w: w.index, b: b.index }, |v| {
            // Start from the bias rows and accumulate the product onto them: one pass. The
            // rows are filled by doubling copies (log₂ N of them, not one per row).
            let total = sa.rows * sw.rows;
            let mut data = crate::kernels::buffers::with_capacity(total);
            if total > 0 {
                data.extend((0..sw.rows).map(|j| v[2].get(0, j)));
                while data.len() < total {
                    data.extend_from_within(..data.len().min(total - data.len()));
                }
            }
            let mut c = Matrix::from_vec(sa.rows, sw.rows, data).expect("internal error: affine");
            T::gemm(v[0], v[1].t(), c.as_mut(), true);
            c
        })
    }

    /// `c · self` for a constant `c`.
    pub fn scale(self, c: f64) -> Result<Var<'t, T>> {
        let c = T::from_f64(c);
        self.record(Op::Scale(self.index, c), |v| v[0].map(|x| x * c))
    }

    /// `self + c` elementwise, for a constant `c`.
    pub fn add_scalar(self, c: f64) -> Result<Var<'t, T>> {
        let c = T::from_f64(c);
        self.record(Op::AddScalar(self.index, c), |v| v[0].map(|x| x + c))
    }

    /// `selfᵀ` (a copy; prefer [`matmul_t`](Self::matmul_t)/[`t_matmul`](Self::t_matmul) in products).
    pub fn transpose(self) -> Result<Var<'t, T>> {
        self.record(Op::Transpose(self.index), |v| v[0].transpose())
    }

    /// Sum of all elements, as `1×1`.
    pub fn sum(self) -> Result<Var<'t, T>> {
        self.record(Op::Sum(self.index), |v| {
            Matrix::filled(1, 1, v[0].data().iter().fold(T::zero(), |s, &x| s + x))
        })
    }

    /// Mean of all elements, as `1×1`.
    pub fn mean(self) -> Result<Var<'t, T>> {
        let n = self.shape().len().max(1) as f64;
        self.sum()?.scale(1.0 / n)
    }

    /// Row sums (`m×n → m×1`).
    pub fn sum_rows(self) -> Result<Var<'t, T>> {
        self.record(Op::SumRows(self.index), |v| {
            let a = v[0];
            Matrix::from_fn(a.rows(), 1, |i, _| a.row(i).iter().fold(T::zero(), |s, &x| s + x))
        })
    }

    /// Row means (`m×n → m×1`).
    pub fn mean_rows(self) -> Result<Var<'t, T>> {
        let n = self.shape().cols.max(1) as f64;
        self.sum_rows()?.scale(1.0 / n)
    }

    /// Column sums (`m×n → 1×n`).
    pub fn sum_cols(self) -> Result<Var<'t, T>> {
        self.record(Op::SumCols(self.index), |v| {
            let a = v[0];
            let mut out = Matrix::zeros(1, a.cols());
            for i in 0..a.rows() {
                for (o, &x) in out.data_mut().iter_mut().zip(a.row(i)) {
                    *o = *o + x;
                }
            }
            out
        })
    }

    /// Column means (`m×n → 1×n`), e.g. a batch average.
    pub fn mean_cols(self) -> Result<Var<'t, T>> {
        let m = self.shape().rows.max(1) as f64;
        self.sum_cols()?.scale(1.0 / m)
    }

    /// Applies an elementwise function `φ` (see [`UnaryFn`]).
    pub fn apply(self, f: UnaryFn) -> Result<Var<'t, T>> {
        self.record(Op::Unary(self.index, f), |v| {
            let mut out = Matrix::zeros(v[0].rows(), v[0].cols());
            f.apply_slice(v[0].data(), out.data_mut());
            out
        })
    }

    /// `-self`.
    #[allow(clippy::should_implement_trait)]
    pub fn neg(self) -> Result<Var<'t, T>> {
        self.apply(UnaryFn::Neg)
    }
    /// `exp` elementwise.
    pub fn exp(self) -> Result<Var<'t, T>> {
        self.apply(UnaryFn::Exp)
    }
    /// Natural logarithm elementwise.
    pub fn ln(self) -> Result<Var<'t, T>> {
        self.apply(UnaryFn::Log)
    }
    /// `tanh` elementwise.
    pub fn tanh(self) -> Result<Var<'t, T>> {
        self.apply(UnaryFn::Tanh)
    }
    /// Logistic sigmoid elementwise.
    pub fn sigmoid(self) -> Result<Var<'t, T>> {
        self.apply(UnaryFn::Sigmoid)
    }
    /// `max(x, 0)` elementwise.
    pub fn relu(self) -> Result<Var<'t, T>> {
        self.apply(UnaryFn::Relu)
    }
    /// `ln(1 + eˣ)` elementwise.
    pub fn softplus(self) -> Result<Var<'t, T>> {
        self.apply(UnaryFn::Softplus)
    }
    /// `x²` elementwise.
    pub fn square(self) -> Result<Var<'t, T>> {
        self.apply(UnaryFn::Square)
    }
    /// `√x` elementwise.
    pub fn sqrt(self) -> Result<Var<'t, T>> {
        self.apply(UnaryFn::Sqrt)
    }

    /// `xⁿ` elementwise for an integer `n`.
    pub fn powi(self, n: i32) -> Result<Var<'t, T>> {
        self.record(Op::Powi(self.index, n), |v| v[0].map(|x| x.powi(n)))
    }

    /// Row-wise `log Σ_j exp(x_ij)`, computed stably (`m×n → m×1`).
    pub fn log_sum_exp(self) -> Result<Var<'t, T>> {
        self.record(Op::LogSumExp(self.index), |v| {
            let a = v[0];
            Matrix::from_fn(a.rows(), 1, |i, _| row_log_sum_exp(a.row(i)))
        })
    }

    /// Row-wise softmax ([`softmax_rows`](crate::op::softmax::softmax_rows)).
    pub fn softmax(self) -> Result<Var<'t, T>> {
        self.record(Op::Softmax(self.index), |v| {
            let mut p = Matrix::zeros(v[0].rows(), v[0].cols());
            softmax::softmax_rows(v[0].data(), v[0].cols(), p.data_mut());
            p
        })
    }

    /// Row-wise log-softmax, computed stably.
    pub fn log_softmax(self) -> Result<Var<'t, T>> {
        self.record(Op::LogSoftmax(self.index), |v| log_softmax(v[0]))
    }

    /// Elements `start..start + rows·cols` of `self` in row-major order, as a `rows×cols` matrix:
    /// how a flat parameter vector θ is viewed as weight matrices and biases.
    pub fn slice(self, start: usize, rows: usize, cols: usize) -> Result<Var<'t, T>> {
        let len = self.shape().len();
        let count = rows.checked_mul(cols);
        let end = count.and_then(|c| start.checked_add(c)).filter(|&e| e <= len);
        let Some(end) = end else {
            return Err(AutodiffError::SliceOutOfRange {
                op: "slice".into(),
                start,
                end: start.saturating_add(rows.saturating_mul(cols)),
                len,
            });
        };
        debug_assert!(end <= len);
        // A view: no copy of the elements, and (in a sweep that keeps only the inputs'
        // adjoints) the adjoint is accumulated straight into the operand's.
        Ok(self.tape.push_view(Op::Slice { a: self.index, start }, Shape::new(rows, cols)))
    }

    /// The same elements (row-major order) with shape `rows×cols`.
    pub fn reshape(self, rows: usize, cols: usize) -> Result<Var<'t, T>> {
        let s = self.shape();
        if rows.checked_mul(cols) != s.checked_len() {
            return Err(AutodiffError::shape("reshape", s, Shape::new(rows, cols)));
        }
        self.record(Op::Reshape(self.index), |v| {
            v[0].clone().reshape(rows, cols).expect("internal error: reshape length")
        })
    }

    /// Applies a user-defined op to `self` and `others` (in that order).
    pub fn custom(self, op: Arc<dyn CustomOp<T>>, others: &[Var<'t, T>]) -> Result<Var<'t, T>> {
        let mut inputs = vec![self.index];
        for &o in others {
            self.same_tape(op.name(), o)?;
            inputs.push(o.index);
        }
        let shapes: Vec<Shape> = inputs.iter().map(|&i| self.tape.shape_of(i)).collect();
        let out_shape = op.output_shape(&shapes)?;
        let value = {
            let nodes = self.tape.nodes.borrow();
            let owned: Vec<Cow<'_, Matrix<T>>> =
                inputs.iter().map(|&i| tape::value(&nodes, i)).collect();
            let values: Vec<&Matrix<T>> = owned.iter().map(|c| c.as_ref()).collect();
            op.forward(&values)?
        };
        if value.shape() != out_shape {
            return Err(AutodiffError::shape(
                format!("{} (forward result vs output_shape)", op.name()),
                value.shape(),
                out_shape,
            ));
        }
        self.tape.push(Op::Custom { op, inputs }, value)
    }
}
