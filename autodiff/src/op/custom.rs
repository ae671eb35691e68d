//! [`CustomOp`]: how a user adds an op to the tape without touching this crate.

use crate::error::Result;
use crate::matrix::{Matrix, Shape};
use crate::scalar::Scalar;

/// A user-defined op with its forward, reverse (vjp) and forward-mode (jvp) rules.
///
/// Implement it generically, `impl<T: Scalar> CustomOp<T> for MyOp`, so that the same op runs
/// on `f64` (value, `Jᵀ u`), on `Dual<f64>` (`J v` by running `forward` on duals) and on a dual
/// tape (`H v` by running `vjp` on duals). The `jvp` rule states the tangent map explicitly; the
/// tape does not need it, but [`check_custom_op`](crate::check::check_custom_op) holds `forward`,
/// `vjp` and `jvp` against each other and against finite differences, so a wrong rule is caught
/// in the user's own test.
///
/// # Example
/// ```
/// use autodiff::{CustomOp, Matrix, Result, Scalar, Shape, AutodiffError};
///
/// /// y = x³ elementwise.
/// struct Cube;
/// impl<T: Scalar> CustomOp<T> for Cube {
///     fn name(&self) -> &str { "cube" }
///     fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
///         match inputs { [s] => Ok(*s), _ => Err(AutodiffError::invalid("cube", "takes one input")) }
///     }
///     fn forward(&self, inputs: &[&Matrix<T>]) -> Result<Matrix<T>> {
///         Ok(inputs[0].map(|x| x * x * x))
///     }
///     fn transpose_jacobian_vector_product(&self, inputs: &[&Matrix<T>], _output: &Matrix<T>, cotangent: &Matrix<T>) -> Result<Vec<Matrix<T>>> {
///         let three = T::from_f64(3.0);
///         let x = inputs[0];
///         Ok(vec![Matrix::from_fn(x.rows(), x.cols(), |i, j| cotangent[(i, j)] * three * x[(i, j)] * x[(i, j)])])
///     }
///     fn jacobian_vector_product(&self, inputs: &[&Matrix<T>], tangents: &[&Matrix<T>]) -> Result<Matrix<T>> {
///         let three = T::from_f64(3.0);
///         let x = inputs[0];
///         Ok(Matrix::from_fn(x.rows(), x.cols(), |i, j| tangents[0][(i, j)] * three * x[(i, j)] * x[(i, j)]))
///     }
/// }
///
/// let report = autodiff::check::check_custom_op(&Cube, &[Matrix::from_fn(2, 3, |i, j| 0.3 + i as f64 - 0.2 * j as f64)], 1e-8, 0).unwrap();
/// assert!(report.passed(), "{report}");
/// ```
pub trait CustomOp<T: Scalar>: Send + Sync {
    /// The op's name in error messages and check reports.
    fn name(&self) -> &str;

    /// The output shape for the given input shapes, or a shape error naming the op.
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape>;

    /// `y = f(x_1, …, x_k)`.
    fn forward(&self, inputs: &[&Matrix<T>]) -> Result<Matrix<T>>;

    /// The reverse rule: given the output cotangent `ȳ`, return `J_{x_i}ᵀ ȳ` for every input,
    /// each with its input's shape. `output` is `forward(inputs)`, passed to save recomputation.
    fn transpose_jacobian_vector_product(
        &self,
        inputs: &[&Matrix<T>],
        output: &Matrix<T>,
        cotangent: &Matrix<T>,
    ) -> Result<Vec<Matrix<T>>>;

    /// The forward rule: `ẏ = Σ_i J_{x_i} ẋ_i`, with the output's shape.
    fn jacobian_vector_product(
        &self,
        inputs: &[&Matrix<T>],
        tangents: &[&Matrix<T>],
    ) -> Result<Matrix<T>>;
}
