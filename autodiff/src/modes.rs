//! The derivative modes, from one model definition generic over the scalar ([`Function`]).
//!
//! | product | how | cost |
//! |---|---|---|
//! | value, `Jᵀ u` ([`transpose_jacobian_vector_product`], [`gradient`]) | `f64` tape, one reverse sweep seeded with `u` | 1 forward + 1 backward |
//! | `J v` ([`jacobian_vector_product`]) | forward on [`Dual<f64>`] with `θ + v ε`; no reverse sweep | 1 dual forward |
//! | `H v` ([`hessian_vector_product`]) | reverse sweep over a `Dual<f64>` tape (forward-over-reverse) | 1 dual forward + 1 dual backward |
//! | dense `J`, `H` | column by column from `J eⱼ`, `H eⱼ` | n products |
//!
//! All are exact up to round-off: no finite differences anywhere.

use crate::backward::Retain;
use crate::dual::Dual;
use crate::error::{AutodiffError, Result};
use crate::matrix::{Matrix, Shape};
use crate::scalar::Scalar;
use crate::tape::{Tape, Var};

/// A function `θ ↦ F(θ)` of a flat parameter vector, written once for every scalar type.
///
/// `theta` arrives as an `n×1` input; data the function closes over enters the tape as
/// constants (e.g. [`Tape::constant_f64`]). The output may have any shape; [`gradient`] and
/// [`hessian_vector_product`] need a `1×1` output.
///
/// ```
/// use autodiff::{modes, Function, Matrix, Result, Scalar, Tape, Var};
///
/// /// F(θ) = Σ tanh(X θ), with X a fixed 3×2 matrix.
/// struct Model { x: Matrix<f64> }
/// impl Function for Model {
///     fn eval<'t, T: Scalar>(&self, tape: &'t Tape<T>, theta: Var<'t, T>) -> Result<Var<'t, T>> {
///         tape.constant_f64(&self.x).matmul(theta)?.tanh()?.sum()
///     }
/// }
/// let model = Model { x: Matrix::from_fn(3, 2, |i, j| (i + 2 * j) as f64 * 0.1) };
/// let (value, grad, hv) = modes::hessian_vector_product(&model, &[0.5, -0.3], &[1.0, 0.0])?;
/// assert_eq!(grad.len(), 2);
/// # Ok::<(), autodiff::AutodiffError>(())
/// ```
pub trait Function {
    /// Records `F(θ)` on `tape` and returns its output node.
    fn eval<'t, T: Scalar>(&self, tape: &'t Tape<T>, theta: Var<'t, T>) -> Result<Var<'t, T>>;
}

fn check_len(op: &str, expected: usize, v: &[f64]) -> Result<()> {
    if v.len() != expected {
        return Err(AutodiffError::shape(op, Shape::new(expected, 1), Shape::new(v.len(), 1)));
    }
    Ok(())
}

fn require_scalar(op: &str, shape: Shape) -> Result<()> {
    if shape != Shape::new(1, 1) {
        return Err(AutodiffError::shape(op, shape, Shape::new(1, 1)));
    }
    Ok(())
}

/// `F(θ)`.
pub fn value<F: Function>(f: &F, theta: &[f64]) -> Result<Matrix<f64>> {
    let tape = Tape::<f64>::new();
    let th = tape.input(Matrix::column(theta.to_vec()));
    let out = f.eval(&tape, th)?;
    Ok(out.value())
}

/// `(F(θ), J v)`: one forward pass on dual numbers with tangent `v` on θ.
pub fn jacobian_vector_product<F: Function>(
    f: &F,
    theta: &[f64],
    v: &[f64],
) -> Result<(Matrix<f64>, Matrix<f64>)> {
    check_len("jacobian_vector_product (v vs θ)", theta.len(), v)?;
    let tape = Tape::<Dual<f64>>::new();
    let dual_theta = theta.iter().zip(v).map(|(&t, &e)| Dual::new(t, e)).collect();
    let th = tape.input(Matrix::column(dual_theta));
    let out = f.eval(&tape, th)?.value();
    Ok((out.map(|d| d.re), out.map(|d| d.eps)))
}

/// `(F(θ), Jᵀ u)`: one forward and one reverse sweep seeded with `u` (the output's shape).
pub fn transpose_jacobian_vector_product<F: Function>(
    f: &F,
    theta: &[f64],
    u: &Matrix<f64>,
) -> Result<(Matrix<f64>, Vec<f64>)> {
    let tape = Tape::<f64>::new();
    let th = tape.input(Matrix::column(theta.to_vec()));
    let out = f.eval(&tape, th)?;
    if u.shape() != out.shape() {
        return Err(AutodiffError::shape(
            "transpose_jacobian_vector_product (u vs output)",
            u.shape(),
            out.shape(),
        ));
    }
    let grads = tape.backward_with_seeds(&[(out, u.clone())], Retain::Inputs)?;
    Ok((out.value(), grads.wrt_or_zeros(th).into_vec()))
}

/// `(F(θ), ∇F(θ))` for a scalar (`1×1`) output.
pub fn gradient<F: Function>(f: &F, theta: &[f64]) -> Result<(f64, Vec<f64>)> {
    let tape = Tape::<f64>::new();
    let th = tape.input(Matrix::column(theta.to_vec()));
    let out = f.eval(&tape, th)?;
    require_scalar("gradient (output must be 1×1)", out.shape())?;
    let grads = tape.backward(out, Matrix::filled(1, 1, 1.0))?;
    Ok((out.value()[(0, 0)], grads.wrt_or_zeros(th).into_vec()))
}

/// `(F(θ), ∇F(θ), ∇²F(θ) v)` for a scalar output, by forward-over-reverse: the reverse sweep
/// runs on a tape of duals whose tangent is `v`, so the tangent of the gradient is `H v`.
pub fn hessian_vector_product<F: Function>(
    f: &F,
    theta: &[f64],
    v: &[f64],
) -> Result<(f64, Vec<f64>, Vec<f64>)> {
    check_len("hessian_vector_product (v vs θ)", theta.len(), v)?;
    let tape = Tape::<Dual<f64>>::new();
    let dual_theta = theta.iter().zip(v).map(|(&t, &e)| Dual::new(t, e)).collect();
    let th = tape.input(Matrix::column(dual_theta));
    let out = f.eval(&tape, th)?;
    require_scalar("hessian_vector_product (output must be 1×1)", out.shape())?;
    let grads = tape.backward(out, Matrix::filled(1, 1, Dual::new(1.0, 0.0)))?;
    let g = grads.wrt_or_zeros(th);
    Ok((
        out.value()[(0, 0)].re,
        g.data().iter().map(|d| d.re).collect(),
        g.data().iter().map(|d| d.eps).collect(),
    ))
}

/// The dense Jacobian of `vec(F)` (row-major flattening of the output) in θ, built from the `n`
/// products `J eⱼ`; shape `len(F) × n`.
pub fn dense_jacobian<F: Function>(f: &F, theta: &[f64]) -> Result<Matrix<f64>> {
    let n = theta.len();
    let mut e = vec![0.0; n];
    let mut columns = Vec::with_capacity(n);
    for j in 0..n {
        e[j] = 1.0;
        columns.push(jacobian_vector_product(f, theta, &e)?.1.into_vec());
        e[j] = 0.0;
    }
    let m = columns.first().map_or(0, Vec::len);
    Ok(Matrix::from_fn(m, n, |i, j| columns[j][i]))
}

/// The dense Hessian of a scalar `F`, built from the `n` products `H eⱼ` (column `j` is `H eⱼ`;
/// no symmetrization, so a test can check symmetry).
pub fn dense_hessian<F: Function>(f: &F, theta: &[f64]) -> Result<Matrix<f64>> {
    let n = theta.len();
    let mut e = vec![0.0; n];
    let mut columns = Vec::with_capacity(n);
    for j in 0..n {
        e[j] = 1.0;
        columns.push(hessian_vector_product(f, theta, &e)?.2);
        e[j] = 0.0;
    }
    Ok(Matrix::from_fn(n, n, |i, j| columns[j][i]))
}
