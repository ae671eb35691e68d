//! `check::check_custom_op` passes a right op and rejects each kind of wrong rule: a `vjp` off
//! by `1e-6` in one input's cotangent (the adjoint identity, round-off tier `1e-12`), a `jvp`
//! off by `1e-6` (central differences, tier `1e-8`, and `forward` on duals, `1e-12`), a
//! `forward` whose derivative is not the stated rules (differences and duals), an `f64` forward
//! that disagrees with a right forward on duals (differences only), and rules returning the
//! wrong number or shape of results (an error, not a panic).

use autodiff::check::check_custom_op;
use autodiff::random::random_matrix;
use autodiff::{AutodiffError, CustomOp, Dual, Matrix, Result, Scalar, Shape};
use rand::{rngs::StdRng, SeedableRng};

/// What is wrong with [`ProductPlusCube`].
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    /// `∂y/∂b`'s cotangent `ȳ ⊙ a` is off by a factor `1 + 1e-6`.
    Vjp,
    /// The tangent `ẏ` is off by a factor `1 + 1e-6`.
    Jvp,
    /// `forward` computes `a ⊙ b + a³ + 1e-6 a²`, which neither rule accounts for (on duals too).
    Forward,
    /// `vjp` returns one cotangent for two inputs.
    VjpCount,
    /// `jvp` returns a `1 × 1` tangent.
    JvpShape,
}

/// `y = a ⊙ b + a³` elementwise, for two inputs of one shape.
struct ProductPlusCube(Fault);

impl<T: Scalar> CustomOp<T> for ProductPlusCube {
    fn name(&self) -> &str {
        "product_plus_cube"
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        match inputs {
            [a, b] if a == b => Ok(*a),
            _ => Err(AutodiffError::invalid("product_plus_cube", "two inputs of one shape")),
        }
    }
    fn forward(&self, inputs: &[&Matrix<T>]) -> Result<Matrix<T>> {
        let (a, b) = (inputs[0], inputs[1]);
        let extra = if self.0 == Fault::Forward { T::from_f64(1e-6) } else { T::zero() };
        Ok(Matrix::from_fn(a.rows(), a.cols(), |i, j| {
            let x = a[(i, j)];
            x * b[(i, j)] + x * x * x + extra * x * x
        }))
    }
    fn transpose_jacobian_vector_product(
        &self,
        inputs: &[&Matrix<T>],
        _output: &Matrix<T>,
        cotangent: &Matrix<T>,
    ) -> Result<Vec<Matrix<T>>> {
        let (a, b) = (inputs[0], inputs[1]);
        let three = T::from_f64(3.0);
        let off = T::from_f64(if self.0 == Fault::Vjp { 1.0 + 1e-6 } else { 1.0 });
        let da = Matrix::from_fn(a.rows(), a.cols(), |i, j| {
            cotangent[(i, j)] * (b[(i, j)] + three * a[(i, j)] * a[(i, j)])
        });
        let db = Matrix::from_fn(a.rows(), a.cols(), |i, j| cotangent[(i, j)] * a[(i, j)] * off);
        Ok(if self.0 == Fault::VjpCount { vec![da] } else { vec![da, db] })
    }
    fn jacobian_vector_product(
        &self,
        inputs: &[&Matrix<T>],
        tangents: &[&Matrix<T>],
    ) -> Result<Matrix<T>> {
        let (a, b) = (inputs[0], inputs[1]);
        let (da, db) = (tangents[0], tangents[1]);
        if self.0 == Fault::JvpShape {
            return Ok(Matrix::zeros(1, 1));
        }
        let three = T::from_f64(3.0);
        let off = T::from_f64(if self.0 == Fault::Jvp { 1.0 + 1e-6 } else { 1.0 });
        Ok(Matrix::from_fn(a.rows(), a.cols(), |i, j| {
            let x = a[(i, j)];
            (da[(i, j)] * (b[(i, j)] + three * x * x) + x * db[(i, j)]) * off
        }))
    }
}

fn inputs() -> Vec<Matrix<f64>> {
    let mut rng = StdRng::seed_from_u64(11);
    vec![random_matrix(3, 4, &mut rng), random_matrix(3, 4, &mut rng)]
}

#[test]
fn a_right_op_passes_every_part() {
    for seed in 0..5 {
        let report = check_custom_op(&ProductPlusCube(Fault::None), &inputs(), 1e-8, seed).unwrap();
        report.assert_passed();
        assert!(report.max_rel_error < 1e-10, "{report}");
    }
}

#[test]
fn a_wrong_vjp_fails_the_adjoint_identity() {
    let report = check_custom_op(&ProductPlusCube(Fault::Vjp), &inputs(), 1e-8, 0).unwrap();
    assert!(!report.passed(), "{report}");
    assert!(report.check.contains("⟨ȳ, jvp⟩ vs ⟨vjp, ẋ⟩"), "{report}");
    assert!(report.max_rel_error > 1e-8, "{report}");
}

#[test]
fn a_wrong_jvp_fails_against_differences_and_duals() {
    let report = check_custom_op(&ProductPlusCube(Fault::Jvp), &inputs(), 1e-8, 0).unwrap();
    assert!(!report.passed(), "{report}");
    // Off by 1e-6 relative: the round-off-tier comparisons (duals, adjoint) fail by most.
    assert!((report.max_rel_error - 1e-6).abs() < 1e-7, "{report}");
    // With the tolerance above the error, the fault no longer shows against differences but
    // still does in the exact comparisons, which keep their 1e-12 tier.
    let loose = check_custom_op(&ProductPlusCube(Fault::Jvp), &inputs(), 1e-5, 0).unwrap();
    assert!(!loose.passed(), "{loose}");
    assert!(!loose.check.contains("central differences"), "{loose}");
}

#[test]
fn a_forward_the_rules_do_not_differentiate_fails_against_differences() {
    let report = check_custom_op(&ProductPlusCube(Fault::Forward), &inputs(), 1e-8, 0).unwrap();
    assert!(!report.passed(), "{report}");
    assert!(
        report.check.contains("central differences") || report.check.contains("duals"),
        "{report}"
    );
}

#[test]
fn rules_with_the_wrong_number_or_shape_of_results_are_errors() {
    let err = check_custom_op(&ProductPlusCube(Fault::VjpCount), &inputs(), 1e-8, 0).unwrap_err();
    assert!(err.to_string().contains("1 cotangents for 2 inputs"), "{err}");
    let err = check_custom_op(&ProductPlusCube(Fault::JvpShape), &inputs(), 1e-8, 0).unwrap_err();
    assert!(err.to_string().contains("jvp vs forward"), "{err}");
}

/// `y = x³` whose `f64` forward (a separate "fast path") computes `x³ + 1e-6 x²` while its
/// forward on duals and both rules are right: only the differences of the `f64` forward see it.
struct FastPathCube;

fn cube<T: Scalar>(x: &Matrix<T>) -> Matrix<T> {
    x.map(|v| v * v * v)
}

fn cube_tangent<T: Scalar>(x: &Matrix<T>, dx: &Matrix<T>) -> Matrix<T> {
    Matrix::from_fn(x.rows(), x.cols(), |i, j| {
        T::from_f64(3.0) * x[(i, j)] * x[(i, j)] * dx[(i, j)]
    })
}

fn one_input(inputs: &[Shape]) -> Result<Shape> {
    match inputs {
        [s] => Ok(*s),
        _ => Err(AutodiffError::invalid("fast_path_cube", "one input")),
    }
}

impl CustomOp<f64> for FastPathCube {
    fn name(&self) -> &str {
        "fast_path_cube"
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        one_input(inputs)
    }
    fn forward(&self, inputs: &[&Matrix<f64>]) -> Result<Matrix<f64>> {
        Ok(inputs[0].map(|v| v * v * v + 1e-6 * v * v))
    }
    fn transpose_jacobian_vector_product(
        &self,
        inputs: &[&Matrix<f64>],
        _: &Matrix<f64>,
        c: &Matrix<f64>,
    ) -> Result<Vec<Matrix<f64>>> {
        Ok(vec![cube_tangent(inputs[0], c)])
    }
    fn jacobian_vector_product(
        &self,
        inputs: &[&Matrix<f64>],
        tangents: &[&Matrix<f64>],
    ) -> Result<Matrix<f64>> {
        Ok(cube_tangent(inputs[0], tangents[0]))
    }
}

impl CustomOp<Dual<f64>> for FastPathCube {
    fn name(&self) -> &str {
        "fast_path_cube"
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        one_input(inputs)
    }
    fn forward(&self, inputs: &[&Matrix<Dual<f64>>]) -> Result<Matrix<Dual<f64>>> {
        Ok(cube(inputs[0]))
    }
    fn transpose_jacobian_vector_product(
        &self,
        inputs: &[&Matrix<Dual<f64>>],
        _: &Matrix<Dual<f64>>,
        c: &Matrix<Dual<f64>>,
    ) -> Result<Vec<Matrix<Dual<f64>>>> {
        Ok(vec![cube_tangent(inputs[0], c)])
    }
    fn jacobian_vector_product(
        &self,
        inputs: &[&Matrix<Dual<f64>>],
        tangents: &[&Matrix<Dual<f64>>],
    ) -> Result<Matrix<Dual<f64>>> {
        Ok(cube_tangent(inputs[0], tangents[0]))
    }
}

#[test]
fn an_f64_forward_that_disagrees_with_the_rules_fails_only_against_differences() {
    let x = inputs().swap_remove(0);
    let report = check_custom_op(&FastPathCube, &[x], 1e-8, 0).unwrap();
    assert!(!report.passed(), "{report}");
    assert!(report.check.contains("jvp vs central differences"), "{report}");
    assert!(report.max_rel_error > 1e-7, "{report}");
}
