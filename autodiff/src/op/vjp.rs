//! The reverse rule of every built-in op: given the adjoint `ḡ` of a node, add `J_{x}ᵀ ḡ` into
//! the adjoint of each operand `x` that needs one.
//!
//! The rules are plain functions generic over the scalar: run on a tape of dual numbers they
//! differentiate themselves, which is how the sweep over a `Dual<f64>` tape yields `H v`.

use super::{log_softmax, Op};
use crate::error::Result;
use crate::matrix::{MatRef, Matrix};
use crate::scalar::Scalar;
use crate::tape::Node;

/// Adjoint storage: one optional matrix per node, created on first contribution.
pub(crate) type Adjoints<T> = Vec<Option<Matrix<T>>>;

/// `adj[j] += a · b` (matrix product of views), allocating the slot on first use.
fn add_product<T: Scalar>(adj: &mut Adjoints<T>, j: usize, a: MatRef<'_, T>, b: MatRef<'_, T>) {
    match &mut adj[j] {
        Some(m) => T::gemm(a, b, m.as_mut(), true),
        slot @ None => {
            let mut m = Matrix::zeros(a.rows(), b.cols());
            T::gemm(a, b, m.as_mut(), false);
            *slot = Some(m);
        }
    }
}

/// `adj[j][k] += f(k)` over the row-major elements of a `rows×cols` adjoint.
fn add_elementwise<T: Scalar>(
    adj: &mut Adjoints<T>,
    j: usize,
    rows: usize,
    cols: usize,
    f: impl Fn(usize) -> T,
) {
    match &mut adj[j] {
        Some(m) => {
            for (k, x) in m.data_mut().iter_mut().enumerate() {
                *x = *x + f(k);
            }
        }
        slot @ None => {
            let data = (0..rows * cols).map(f).collect();
            *slot =
                Some(Matrix::from_vec(rows, cols, data).expect("internal error: adjoint shape"));
        }
    }
}

/// Adds the contributions of node `i` (with adjoint `g`) to its operands' adjoints.
pub(crate) fn propagate<T: Scalar>(
    nodes: &[Node<T>],
    i: usize,
    g: &Matrix<T>,
    adj: &mut Adjoints<T>,
) -> Result<()> {
    let needs = |j: usize| nodes[j].requires_grad;
    let val = |j: usize| &nodes[j].value;
    let (gr, gc) = (g.rows(), g.cols());
    let gd = g.data();
    match &nodes[i].op {
        Op::Input | Op::Constant => {}
        &Op::MatMul { a, b, trans_a, trans_b } => {
            // C = op(A) op(B): d op(A) = G op(B)ᵀ, d op(B) = op(A)ᵀ G.
            let av = if trans_a { val(a).as_ref().t() } else { val(a).as_ref() };
            let bv = if trans_b { val(b).as_ref().t() } else { val(b).as_ref() };
            if needs(a) {
                if trans_a {
                    add_product(adj, a, bv, g.as_ref().t()); // dA = (G op(B)ᵀ)ᵀ = op(B) Gᵀ
                } else {
                    add_product(adj, a, g.as_ref(), bv.t());
                }
            }
            if needs(b) {
                if trans_b {
                    add_product(adj, b, g.as_ref().t(), av); // dB = (op(A)ᵀ G)ᵀ = Gᵀ op(A)
                } else {
                    add_product(adj, b, av.t(), g.as_ref());
                }
            }
        }
        &Op::Add(a, b) => {
            if needs(a) {
                add_elementwise(adj, a, gr, gc, |k| gd[k]);
            }
            if needs(b) {
                add_elementwise(adj, b, gr, gc, |k| gd[k]);
            }
        }
        &Op::Sub(a, b) => {
            if needs(a) {
                add_elementwise(adj, a, gr, gc, |k| gd[k]);
            }
            if needs(b) {
                add_elementwise(adj, b, gr, gc, |k| -gd[k]);
            }
        }
        &Op::Mul(a, b) => {
            let (ad, bd) = (val(a).data(), val(b).data());
            if needs(a) {
                add_elementwise(adj, a, gr, gc, |k| gd[k] * bd[k]);
            }
            if needs(b) {
                add_elementwise(adj, b, gr, gc, |k| gd[k] * ad[k]);
            }
        }
        &Op::Div(a, b) => {
            // c = a / b: dc/da = 1/b, dc/db = -c/b.
            let (bd, cd) = (val(b).data(), nodes[i].value.data());
            if needs(a) {
                add_elementwise(adj, a, gr, gc, |k| gd[k] / bd[k]);
            }
            if needs(b) {
                add_elementwise(adj, b, gr, gc, |k| -gd[k] * cd[k] / bd[k]);
            }
        }
        &Op::Affine { a, w, b } => {
            // S = A Wᵀ + 1 bᵀ: dA = G W, dW = Gᵀ A, db = column sums of G.
            if needs(a) {
                add_product(adj, a, g.as_ref(), val(w).as_ref());
            }
            if needs(w) {
                add_product(adj, w, g.as_ref().t(), val(a).as_ref());
            }
            if needs(b) {
                let col_sums: Vec<T> = (0..gc)
                    .map(|j| (0..gr).fold(T::zero(), |s, row| s + gd[row * gc + j]))
                    .collect();
                add_elementwise(adj, b, 1, gc, |k| col_sums[k]);
            }
        }
        &Op::AddRow(a, r) => {
            if needs(a) {
                add_elementwise(adj, a, gr, gc, |k| gd[k]);
            }
            if needs(r) {
                let col_sums: Vec<T> = (0..gc)
                    .map(|j| (0..gr).fold(T::zero(), |s, row| s + gd[row * gc + j]))
                    .collect();
                add_elementwise(adj, r, 1, gc, |k| col_sums[k]);
            }
        }
        &Op::Scale(a, c) => {
            if needs(a) {
                add_elementwise(adj, a, gr, gc, |k| gd[k] * c);
            }
        }
        &Op::AddScalar(a, _) => {
            if needs(a) {
                add_elementwise(adj, a, gr, gc, |k| gd[k]);
            }
        }
        &Op::Transpose(a) => {
            if needs(a) {
                // A is gc×gr; element (p, q) of A gets G(q, p).
                add_elementwise(adj, a, gc, gr, |k| gd[(k % gr) * gc + k / gr]);
            }
        }
        &Op::Sum(a) => {
            if needs(a) {
                let s = val(a).shape();
                add_elementwise(adj, a, s.rows, s.cols, |_| gd[0]);
            }
        }
        &Op::SumRows(a) => {
            if needs(a) {
                let s = val(a).shape();
                add_elementwise(adj, a, s.rows, s.cols, |k| gd[k / s.cols]);
            }
        }
        &Op::SumCols(a) => {
            if needs(a) {
                let s = val(a).shape();
                add_elementwise(adj, a, s.rows, s.cols, |k| gd[k % s.cols]);
            }
        }
        &Op::Unary(a, f) => {
            if needs(a) {
                let (xd, yd) = (val(a).data(), nodes[i].value.data());
                add_elementwise(adj, a, gr, gc, |k| gd[k] * f.derivative_with_output(xd[k], yd[k]));
            }
        }
        &Op::Powi(a, n) => {
            if needs(a) {
                let xd = val(a).data();
                let nn = T::from_f64(n as f64);
                add_elementwise(adj, a, gr, gc, |k| gd[k] * nn * xd[k].powi(n - 1));
            }
        }
        &Op::LogSumExp(a) => {
            if needs(a) {
                // ∂ lse_i / ∂ x_ij = exp(x_ij - lse_i) = softmax_ij.
                let (x, y) = (val(a), nodes[i].value.data());
                let c = x.cols();
                let xd = x.data();
                add_elementwise(adj, a, x.rows(), c, |k| gd[k / c] * (xd[k] - y[k / c]).exp());
            }
        }
        &Op::Softmax(a) => {
            if needs(a) {
                // dx = y ⊙ (g - Σ_j g_j y_j) per row.
                let y = nodes[i].value.data();
                let dots = row_dots(gd, y, gr, gc);
                add_elementwise(adj, a, gr, gc, |k| y[k] * (gd[k] - dots[k / gc]));
            }
        }
        &Op::LogSoftmax(a) => {
            if needs(a) {
                // dx = g - softmax ⊙ Σ_j g_j per row, softmax = exp(y).
                let y = nodes[i].value.data();
                let sums: Vec<T> = (0..gr)
                    .map(|r| gd[r * gc..(r + 1) * gc].iter().fold(T::zero(), |s, &x| s + x))
                    .collect();
                add_elementwise(adj, a, gr, gc, |k| gd[k] - y[k].exp() * sums[k / gc]);
            }
        }
        &Op::Slice { a, start } => {
            if needs(a) {
                // Touch only the sliced range: θ is sliced once per weight and bias, so a sweep over
                // all of θ per slice would cost O(layers · n).
                let s = val(a).shape();
                let slot = adj[a].get_or_insert_with(|| Matrix::zeros(s.rows, s.cols));
                for (x, &g) in slot.data_mut()[start..start + gd.len()].iter_mut().zip(gd) {
                    *x = *x + g;
                }
            }
        }
        &Op::Reshape(a) => {
            if needs(a) {
                let s = val(a).shape();
                add_elementwise(adj, a, s.rows, s.cols, |k| gd[k]);
            }
        }
        Op::Custom { op, inputs } => {
            let values: Vec<&Matrix<T>> = inputs.iter().map(|&j| val(j)).collect();
            let cotangents = op.vjp(&values, &nodes[i].value, g)?;
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
                if ct.shape() != val(j).shape() {
                    return Err(crate::AutodiffError::shape(
                        format!("{} (vjp cotangent vs input)", op.name()),
                        ct.shape(),
                        val(j).shape(),
                    ));
                }
                if needs(j) {
                    let cd = ct.data();
                    add_elementwise(adj, j, ct.rows(), ct.cols(), |k| cd[k]);
                }
            }
        }
    }
    Ok(())
}

fn row_dots<T: Scalar>(a: &[T], b: &[T], rows: usize, cols: usize) -> Vec<T> {
    (0..rows).map(|r| (r * cols..(r + 1) * cols).fold(T::zero(), |s, k| s + a[k] * b[k])).collect()
}

/// Row-wise softmax, for rules and checks that need it outside the tape.
#[allow(dead_code)]
pub(crate) fn softmax<T: Scalar>(a: &Matrix<T>) -> Matrix<T> {
    log_softmax(a).map(|x| x.exp())
}
