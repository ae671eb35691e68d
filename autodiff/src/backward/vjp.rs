//! The reverse rule of every built-in op: given the adjoint `ḡ` of a node, add `J_{x}ᵀ ḡ` into
//! the adjoint of each operand `x` that needs one.
//!
//! The rules are plain functions generic over the scalar: run on a tape of dual numbers they
//! differentiate themselves, which is how the sweep over a `Dual<f64>` tape yields `H v`.

use super::adjoints::{column_sums, Sink};
use crate::error::Result;
use crate::matrix::Matrix;
use crate::op::{softmax, Op, UnaryFn};
use crate::scalar::Scalar;
use crate::tape;

/// Adds the contributions of node `i` (with adjoint `g`) to its operands' adjoints.
pub(crate) fn propagate<T: Scalar>(sink: &mut Sink<'_, T>, i: usize, g: &Matrix<T>) -> Result<()> {
    let nodes = sink.nodes;
    let needs = |j: usize| nodes[j].requires_grad;
    let val = |j: usize| tape::value(nodes, j);
    let mat = |j: usize, transpose: bool| {
        let v = tape::view(nodes, j);
        if transpose {
            v.t()
        } else {
            v
        }
    };
    let (gr, gc) = (g.rows(), g.cols());
    let gd = g.data();
    match &nodes[i].op {
        Op::Input | Op::Constant => {}
        &Op::MatMul { a, b, trans_a, trans_b } => {
            // C = op(A) op(B): d op(A) = G op(B)ᵀ, d op(B) = op(A)ᵀ G.
            let (av, bv) = (mat(a, trans_a), mat(b, trans_b));
            if needs(a) {
                if trans_a {
                    sink.product(a, bv, g.as_ref().t()); // dA = (G op(B)ᵀ)ᵀ = op(B) Gᵀ
                } else {
                    sink.product(a, g.as_ref(), bv.t());
                }
            }
            if needs(b) {
                if trans_b {
                    sink.product(b, g.as_ref().t(), av); // dB = (op(A)ᵀ G)ᵀ = Gᵀ op(A)
                } else {
                    sink.product(b, av.t(), g.as_ref());
                }
            }
        }
        &Op::Add(a, b) => {
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k]);
            }
            if needs(b) {
                sink.elementwise(b, gr, gc, |k| gd[k]);
            }
        }
        &Op::Sub(a, b) => {
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k]);
            }
            if needs(b) {
                sink.elementwise(b, gr, gc, |k| -gd[k]);
            }
        }
        &Op::Mul(a, b) => {
            let (ad, bd) = (tape::data(nodes, a), tape::data(nodes, b));
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k] * bd[k]);
            }
            if needs(b) {
                sink.elementwise(b, gr, gc, |k| gd[k] * ad[k]);
            }
        }
        &Op::Div(a, b) => {
            // c = a / b: dc/da = 1/b, dc/db = -c/b.
            let (bd, cd) = (tape::data(nodes, b), tape::data(nodes, i));
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k] / bd[k]);
            }
            if needs(b) {
                sink.elementwise(b, gr, gc, |k| -gd[k] * cd[k] / bd[k]);
            }
        }
        &Op::Affine { a, w, b } => {
            // S = A Wᵀ + 1 bᵀ: dA = G W, dW = Gᵀ A, db = column sums of G.
            if needs(a) {
                sink.product(a, g.as_ref(), mat(w, false));
            }
            if needs(w) {
                sink.product(w, g.as_ref().t(), mat(a, false));
            }
            if needs(b) {
                let col_sums = column_sums(gd, gc);
                sink.elementwise(b, 1, gc, |k| col_sums[k]);
            }
        }
        &Op::AddRow(a, r) => {
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k]);
            }
            if needs(r) {
                let col_sums = column_sums(gd, gc);
                sink.elementwise(r, 1, gc, |k| col_sums[k]);
            }
        }
        &Op::Scale(a, c) => {
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k] * c);
            }
        }
        &Op::AddScalar(a, _) => {
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k]);
            }
        }
        &Op::Transpose(a) => {
            if needs(a) {
                // A is gc×gr; element (p, q) of A gets G(q, p).
                sink.elementwise(a, gc, gr, |k| gd[(k % gr) * gc + k / gr]);
            }
        }
        &Op::Sum(a) => {
            if needs(a) {
                let s = nodes[a].shape;
                sink.elementwise(a, s.rows, s.cols, |_| gd[0]);
            }
        }
        &Op::SumRows(a) => {
            if needs(a) {
                let s = nodes[a].shape;
                sink.elementwise(a, s.rows, s.cols, |k| gd[k / s.cols]);
            }
        }
        &Op::SumCols(a) => {
            if needs(a) {
                let s = nodes[a].shape;
                sink.elementwise(a, s.rows, s.cols, |k| gd[k % s.cols]);
            }
        }
        &Op::Unary(a, f) => {
            if needs(a) {
                let (xd, yd) = (tape::data(nodes, a), tape::data(nodes, i));
                // Match once, outside the loop, so the common activations vectorise.
                let shape = (gr, gc);
                match f {
                    UnaryFn::Tanh => {
                        sink.elementwise_zip(a, shape, gd, yd, |g, y| g * (T::one() - y * y))
                    }
                    UnaryFn::Sigmoid => {
                        sink.elementwise_zip(a, shape, gd, yd, |g, y| g * y * (T::one() - y))
                    }
                    UnaryFn::Identity => sink.elementwise_zip(a, shape, gd, yd, |g, _| g),
                    _ => sink
                        .elementwise(a, gr, gc, |k| gd[k] * f.derivative_with_output(xd[k], yd[k])),
                }
            }
        }
        &Op::Powi(a, n) => {
            if needs(a) {
                let xd = tape::data(nodes, a);
                let nn = T::from_f64(n as f64);
                sink.elementwise(a, gr, gc, |k| gd[k] * nn * xd[k].powi(n - 1));
            }
        }
        &Op::LogSumExp(a) => {
            if needs(a) {
                // ∂ lse_i / ∂ x_ij = exp(x_ij - lse_i) = softmax_ij.
                let (x, y) = (val(a), tape::data(nodes, i));
                let c = x.cols();
                let xd = x.data();
                sink.elementwise(a, x.rows(), c, |k| gd[k / c] * (xd[k] - y[k / c]).exp());
            }
        }
        &Op::Softmax(a) => {
            if needs(a) {
                // dx = y ⊙ (g - Σ_j g_j y_j) per row.
                let y = tape::data(nodes, i);
                let mut dx = y.to_vec();
                softmax::softmax_jacobian_rows(&mut dx, gd, gc);
                sink.elementwise(a, gr, gc, |k| dx[k]);
            }
        }
        &Op::LogSoftmax(a) => {
            if needs(a) {
                // dx = g - softmax ⊙ Σ_j g_j per row, softmax = exp(y).
                let y = tape::data(nodes, i);
                let sums: Vec<T> = (0..gr)
                    .map(|r| gd[r * gc..(r + 1) * gc].iter().fold(T::zero(), |s, &x| s + x))
                    .collect();
                sink.elementwise(a, gr, gc, |k| gd[k] - y[k].exp() * sums[k / gc]);
            }
        }
        &Op::Slice { a, start } => {
            if needs(a) {
                // Touch only the sliced range: θ is sliced once per weight and bias, so a sweep over
                // all of θ per slice would cost O(layers · n).
                let (root, offset) = sink.target(a).unwrap_or((a, 0));
                for (x, &g) in sink.region(root, offset + start, gd.len()).iter_mut().zip(gd) {
                    *x = *x + g;
                }
            }
        }
        &Op::Reshape(a) => {
            if needs(a) {
                let s = nodes[a].shape;
                sink.elementwise(a, s.rows, s.cols, |k| gd[k]);
            }
        }
        Op::Gather { a, index, .. } => {
            if needs(*a) {
                // col2im: each output adjoint goes back to the element it was read from.
                let s = nodes[*a].shape;
                let back = crate::var::gather::scatter_add(gd, index, s.len());
                sink.elementwise(*a, s.rows, s.cols, |k| back[k]);
            }
        }
        Op::Custom { op, inputs } => {
            let owned: Vec<_> = inputs.iter().map(|&j| val(j)).collect();
            let values: Vec<&Matrix<T>> = owned.iter().map(|c| c.as_ref()).collect();
            let cotangents = op.transpose_jacobian_vector_product(&values, &val(i), g)?;
            if cotangents.len() != inputs.len() {
                return Err(crate::AutodiffError::invalid(
                    op.name(),
                    format!(
                        "vjp returned {} cotangents for {} inputs",
                        cotangents.len(),
                        inputs.len()
                    ),
                ));
            }
            for (&j, ct) in inputs.iter().zip(&cotangents) {
                if ct.shape() != nodes[j].shape {
                    return Err(crate::AutodiffError::shape(
                        format!("{} (vjp cotangent vs input)", op.name()),
                        ct.shape(),
                        nodes[j].shape,
                    ));
                }
                if needs(j) {
                    let cd = ct.data();
                    sink.elementwise(j, ct.rows(), ct.cols(), |k| cd[k]);
                }
            }
        }
    }
    Ok(())
}
