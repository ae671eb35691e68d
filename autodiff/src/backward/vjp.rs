//! The reverse rule of every built-in op: given the adjoint `ḡ` of a node, add `J_{x}ᵀ ḡ` into
//! the adjoint of each operand `x` that needs one.
//!
//! The rules are plain functions generic over the scalar: run on a tape of dual numbers they
//! differentiate themselves, which is how the sweep over a `Dual<f64>` tape yields `H v`.

use super::adjoints::Sink;
use crate::error::Result;
use crate::matrix::Matrix;
use crate::op::{softmax, Op, UnaryFn};
use crate::scalar::Scalar;
use crate::tape;
use smallvec::SmallVec;

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
            let cotangents = op.vjp(&values, &val(i), g)?;
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

/// Column sums of a row-major matrix with `cols` columns, each accumulated row by row in
/// order; on the stack up to 32 columns (a small layer's bias costs no allocation). Columns
/// are summed in blocks of 8, 4, 2 and 1 whose partial sums stay in registers (summing
/// straight into the result kept every partial sum in memory, a load and a store per element:
/// 4% of a W3 `H v`, whose dual sums are 16 bytes each).
fn column_sums<T: Scalar>(data: &[T], cols: usize) -> SmallVec<[T; 32]> {
    /// Appends the sums of columns `j..j + W` (a width known at compile time, so that the
    /// accumulators are registers).
    #[inline(always)]
    fn block<T: Scalar, const W: usize>(
        data: &[T],
        cols: usize,
        j: usize,
        sums: &mut SmallVec<[T; 32]>,
    ) {
        let mut acc = [T::zero(); W];
        for row in data.chunks_exact(cols) {
            let row: &[T; W] = row[j..j + W].try_into().expect("block within the row");
            for t in 0..W {
                acc[t] = acc[t] + row[t];
            }
        }
        sums.extend_from_slice(&acc);
    }
    let mut sums = SmallVec::with_capacity(cols);
    if cols == 0 {
        return sums;
    }
    let mut j = 0;
    while j + 8 <= cols {
        block::<T, 8>(data, cols, j, &mut sums);
        j += 8;
    }
    for w in [4, 2, 1] {
        if cols - j >= w {
            match w {
                4 => block::<T, 4>(data, cols, j, &mut sums),
                2 => block::<T, 2>(data, cols, j, &mut sums),
                _ => block::<T, 1>(data, cols, j, &mut sums),
            }
            j += w;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::column_sums;
    use crate::Dual;

    /// Every width around the eight-column blocks, and one past the inline 32: each sum equals
    /// the row-by-row sum exactly (same order), for reals and for dual numbers.
    #[test]
    fn column_sums_are_the_row_by_row_sums() {
        for cols in [0, 1, 7, 8, 9, 16, 20, 33] {
            let rows = 5;
            let data: Vec<f64> =
                (0..rows * cols).map(|i| ((i * 37) % 23) as f64 / 7.0 - 1.5).collect();
            let want: Vec<f64> =
                (0..cols).map(|j| (0..rows).fold(0.0, |s, r| s + data[r * cols + j])).collect();
            assert_eq!(column_sums(&data, cols).to_vec(), want, "{cols} columns");
            let dual: Vec<Dual<f64>> = data.iter().map(|&x| Dual::new(x, 2.0 * x + 1.0)).collect();
            let got = column_sums(&dual, cols);
            for (j, d) in got.iter().enumerate() {
                let eps = (0..rows).fold(0.0, |s, r| s + dual[r * cols + j].eps);
                assert_eq!((d.re, d.eps), (want[j], eps), "{cols} columns, dual [{j}]");
            }
            assert_eq!(got.len(), cols);
        }
    }
}
