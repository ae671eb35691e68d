//! The tangent rule of every built-in op: given the tangents of a node's operands (and the
//! stored primal values), the tangent of the node. One `match`, mirroring [`vjp`](crate::backward::vjp).
//!
//! [`Tape::tangents`](crate::Tape::tangents) runs these rules over an already-recorded tape: the
//! Jacobian-vector product without recomputing the forward values, which is what a curvature
//! product repeated at a fixed θ and batch (conjugate gradient) wants. On a fresh point the
//! dual-number forward pass gives the same `J v` in one go.

use crate::error::{AutodiffError, Result};
use crate::kernels::buffers;
use crate::matrix::{MatRef, Matrix};
use crate::op::{softmax, zip_map, Op, UnaryFn};
use crate::scalar::Scalar;
use crate::tape::{self, Node};

/// Tangent storage: `None` is a zero tangent (the node does not depend on the seeds).
pub(crate) type TangentStore<T> = Vec<Option<Matrix<T>>>;

fn product<T: Scalar>(a: MatRef<'_, T>, b: MatRef<'_, T>, into: &mut Option<Matrix<T>>) {
    match into {
        Some(m) => T::gemm(a, b, m.as_mut(), true),
        slot @ None => {
            let mut m = Matrix::zeros(a.rows(), b.cols());
            T::gemm(a, b, m.as_mut(), false);
            *slot = Some(m);
        }
    }
}

fn view<T: Copy>(m: &Matrix<T>, transpose: bool) -> MatRef<'_, T> {
    if transpose {
        m.as_ref().t()
    } else {
        m.as_ref()
    }
}

fn map<T: Scalar>(t: &Matrix<T>, f: impl Fn(usize, T) -> T) -> Matrix<T> {
    let data = buffers::collect(t.len(), t.data().iter().enumerate().map(|(k, &x)| f(k, x)));
    Matrix::from_vec(t.rows(), t.cols(), data).expect("internal error: tangent shape")
}

/// `m ← m + 1 r`: the row `r` added to every row (row by row: no index arithmetic per element).
fn add_to_rows<T: Scalar>(m: &mut Matrix<T>, r: &[T]) {
    for row in m.data_mut().chunks_mut(r.len().max(1)) {
        for (x, &b) in row.iter_mut().zip(r) {
            *x = *x + b;
        }
    }
}

/// Shape and elements of the node whose tangent is formed, resolved only when a rule asks.
struct Out<'n, T: Scalar> {
    nodes: &'n [Node<T>],
    i: usize,
}

impl<'n, T: Scalar> Out<'n, T> {
    fn rows(&self) -> usize {
        self.nodes[self.i].shape.rows
    }
    fn cols(&self) -> usize {
        self.nodes[self.i].shape.cols
    }
    fn len(&self) -> usize {
        self.nodes[self.i].shape.len()
    }
    fn shape(&self) -> crate::matrix::Shape {
        self.nodes[self.i].shape
    }
    fn data(&self) -> &'n [T] {
        tape::data(self.nodes, self.i)
    }
}

fn row_dots<T: Scalar>(a: &[T], b: &[T], cols: usize) -> Vec<T> {
    a.chunks(cols)
        .zip(b.chunks(cols))
        .map(|(x, y)| x.iter().zip(y).fold(T::zero(), |s, (&p, &q)| s + p * q))
        .collect()
}

/// The tangent of node `i`, or `None` if all its operands' tangents are zero.
pub(crate) fn tangent<T: Scalar>(
    nodes: &[Node<T>],
    i: usize,
    tan: &TangentStore<T>,
) -> Result<Option<Matrix<T>>> {
    let val = |j: usize| tape::value(nodes, j);
    // The node's own value, read in place (a view's value is never copied: the tangent of a
    // slice of θ does not need it).
    let out = Out { nodes, i };
    let mat = |j: usize, transpose: bool| {
        let v = tape::view(nodes, j);
        if transpose {
            v.t()
        } else {
            v
        }
    };
    let t = |j: usize| tan[j].as_ref();
    Ok(match &nodes[i].op {
        Op::Input | Op::Constant => None,
        &Op::MatMul { a, b, trans_a, trans_b } => {
            let mut c = None;
            if let Some(ta) = t(a) {
                product(view(ta, trans_a), mat(b, trans_b), &mut c);
            }
            if let Some(tb) = t(b) {
                product(mat(a, trans_a), view(tb, trans_b), &mut c);
            }
            c
        }
        &Op::Add(a, b) | &Op::Sub(a, b) => {
            let sign = if matches!(nodes[i].op, Op::Sub(..)) { -T::one() } else { T::one() };
            match (t(a), t(b)) {
                (None, None) => None,
                (Some(x), None) => Some(x.clone()),
                (None, Some(y)) => Some(y.map(|v| sign * v)),
                (Some(x), Some(y)) => Some(zip_map(x, y, |p, q| p + sign * q)),
            }
        }
        &Op::Mul(a, b) => {
            let (ad, bd) = (tape::data(nodes, a), tape::data(nodes, b));
            match (t(a), t(b)) {
                (None, None) => None,
                (Some(x), None) => Some(map(x, |k, v| v * bd[k])),
                (None, Some(y)) => Some(map(y, |k, v| ad[k] * v)),
                (Some(x), Some(y)) => Some(map(x, |k, v| v * bd[k] + ad[k] * y.data()[k])),
            }
        }
        &Op::Div(a, b) => {
            // ċ = (ȧ − c ḃ) / b.
            let (bd, cd) = (tape::data(nodes, b), out.data());
            match (t(a), t(b)) {
                (None, None) => None,
                (Some(x), None) => Some(map(x, |k, v| v / bd[k])),
                (None, Some(y)) => Some(map(y, |k, v| -cd[k] * v / bd[k])),
                (Some(x), Some(y)) => Some(map(x, |k, v| (v - cd[k] * y.data()[k]) / bd[k])),
            }
        }
        &Op::Affine { a, w, b } => {
            // Ṡ = Ȧ Wᵀ + A Ẇᵀ + 1 ḃᵀ.
            let mut c = None;
            if let Some(ta) = t(a) {
                product(ta.as_ref(), mat(w, true), &mut c);
            }
            if let Some(tw) = t(w) {
                product(mat(a, false), tw.as_ref().t(), &mut c);
            }
            if let Some(tb) = t(b) {
                let m = c.get_or_insert_with(|| Matrix::zeros(out.rows(), out.cols()));
                add_to_rows(m, tb.data());
            }
            c
        }
        &Op::AddRow(a, r) => {
            let cols = out.cols();
            match (t(a), t(r)) {
                (None, None) => None,
                (ta, tr) => {
                    let mut base = ta.cloned().unwrap_or_else(|| Matrix::zeros(out.rows(), cols));
                    if let Some(rt) = tr {
                        add_to_rows(&mut base, rt.data());
                    }
                    Some(base)
                }
            }
        }
        &Op::Scale(a, c) => t(a).map(|x| x.map(|v| v * c)),
        &Op::AddScalar(a, _) | &Op::Reshape(a) => t(a).map(|x| {
            x.clone().reshape(out.rows(), out.cols()).expect("internal error: reshape tangent")
        }),
        &Op::Transpose(a) => t(a).map(|x| x.transpose()),
        &Op::Sum(a) => {
            t(a).map(|x| Matrix::filled(1, 1, x.data().iter().fold(T::zero(), |s, &v| s + v)))
        }
        &Op::SumRows(a) => t(a).map(|x| {
            Matrix::from_fn(x.rows(), 1, |r, _| x.row(r).iter().fold(T::zero(), |s, &v| s + v))
        }),
        &Op::SumCols(a) => t(a).map(|x| {
            Matrix::from_fn(1, x.cols(), |_, c| (0..x.rows()).fold(T::zero(), |s, r| s + x[(r, c)]))
        }),
        &Op::Unary(a, f) => t(a).map(|x| {
            let (xd, yd) = (tape::data(nodes, a), out.data());
            // Match once, outside the loop, so the common activations vectorise.
            match f {
                UnaryFn::Tanh => map(x, |k, v| v * (T::one() - yd[k] * yd[k])),
                UnaryFn::Sigmoid => map(x, |k, v| v * yd[k] * (T::one() - yd[k])),
                UnaryFn::Identity => x.clone(),
                _ => map(x, |k, v| v * f.derivative_with_output(xd[k], yd[k])),
            }
        }),
        &Op::Powi(a, n) => t(a).map(|x| {
            let (xd, nn) = (tape::data(nodes, a), T::from_f64(n as f64));
            map(x, |k, v| v * nn * xd[k].powi(n - 1))
        }),
        &Op::LogSumExp(a) => t(a).map(|x| {
            // d lse_i = Σ_j softmax_ij ȧ_ij, softmax_ij = exp(a_ij − lse_i).
            let (ad, cols) = (tape::data(nodes, a), x.cols());
            let p: Vec<T> =
                ad.iter().enumerate().map(|(k, &v)| (v - out.data()[k / cols]).exp()).collect();
            Matrix::column(row_dots(&p, x.data(), cols))
        }),
        &Op::Softmax(a) => t(a).map(|x| {
            // ẏ = y ⊙ (ẋ − yᵀẋ) per row.
            let data = buffers::collect(out.len(), out.data().iter().copied());
            let mut dy = Matrix::from_vec(x.rows(), x.cols(), data).expect("softmax tangent");
            softmax::softmax_jacobian_rows(dy.data_mut(), x.data(), x.cols());
            dy
        }),
        &Op::LogSoftmax(a) => t(a).map(|x| {
            let cols = x.cols();
            let p: Vec<T> = out.data().iter().map(|&v| v.exp()).collect();
            let dots = row_dots(&p, x.data(), cols);
            map(x, |k, v| v - dots[k / cols])
        }),
        &Op::Slice { a, start } => t(a).map(|x| {
            let len = out.len();
            Matrix::from_vec(
                out.rows(),
                out.cols(),
                buffers::collect(len, x.data()[start..start + len].iter().copied()),
            )
            .expect("internal error: slice tangent")
        }),
        Op::Gather { a, index, .. } => {
            t(*a).map(|x| crate::var::gather::gather(x.data(), index, out.shape()))
        }
        Op::Custom { op, inputs } => {
            if inputs.iter().all(|&j| t(j).is_none()) {
                None
            } else {
                let zeros: Vec<Matrix<T>> = inputs
                    .iter()
                    .map(|&j| Matrix::zeros(nodes[j].shape.rows, nodes[j].shape.cols))
                    .collect();
                let owned: Vec<_> = inputs.iter().map(|&j| val(j)).collect();
                let values: Vec<&Matrix<T>> = owned.iter().map(|c| c.as_ref()).collect();
                let tangents: Vec<&Matrix<T>> =
                    inputs.iter().zip(&zeros).map(|(&j, z)| t(j).unwrap_or(z)).collect();
                let result = op.jacobian_vector_product(&values, &tangents)?;
                if result.shape() != out.shape() {
                    return Err(AutodiffError::shape(
                        format!("{} (jvp tangent vs output)", op.name()),
                        result.shape(),
                        out.shape(),
                    ));
                }
                Some(result)
            }
        }
    })
}
