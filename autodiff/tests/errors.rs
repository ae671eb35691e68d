//! Every user mistake returns the documented error, with the op and the shapes in the message.

use autodiff::{AutodiffError, CustomOp, Matrix, Result, Retain, Scalar, Shape, Tape};
use std::sync::Arc;

fn m(rows: usize, cols: usize) -> Matrix<f64> {
    Matrix::from_fn(rows, cols, |i, j| (i * cols + j) as f64 + 1.0)
}

#[test]
fn shape_mismatches_name_the_op_and_both_shapes() {
    let tape = Tape::<f64>::new();
    let a = tape.input(m(2, 3));
    let b = tape.input(m(2, 3));
    let err = a.matmul(b).unwrap_err();
    assert_eq!(
        err,
        AutodiffError::ShapeMismatch {
            op: "matmul".into(),
            lhs: Shape::new(2, 3),
            rhs: Shape::new(2, 3)
        }
    );
    assert_eq!(err.to_string(), "matmul: shape mismatch between 2×3 and 2×3");
    let c = tape.input(m(3, 2));
    assert!(matches!(a.add(c), Err(AutodiffError::ShapeMismatch { ref op, .. }) if op == "add"));
    assert!(matches!(a.mul(c), Err(AutodiffError::ShapeMismatch { ref op, .. }) if op == "mul"));
    assert!(
        matches!(a.add_row(c), Err(AutodiffError::ShapeMismatch { ref op, .. }) if op == "add_row")
    );
    assert!(
        matches!(a.reshape(4, 2), Err(AutodiffError::ShapeMismatch { ref op, .. }) if op == "reshape")
    );
    // A seed must have its node's shape.
    let err = tape.backward(a, m(3, 2)).unwrap_err();
    assert_eq!(err.to_string(), "backward (seed vs node): shape mismatch between 3×2 and 2×3");
    assert!(Matrix::from_vec(2, 2, vec![1.0; 3]).is_err());
}

#[test]
fn variables_from_another_tape_are_rejected() {
    let t1 = Tape::<f64>::new();
    let t2 = Tape::<f64>::new();
    let a = t1.input(m(2, 2));
    let b = t2.input(m(2, 2));
    assert_eq!(a.matmul(b).unwrap_err(), AutodiffError::ForeignVar { op: "matmul".into() });
    assert!(matches!(t1.backward(b, m(2, 2)), Err(AutodiffError::ForeignVar { .. })));
    assert!(matches!(t1.value(b), Err(AutodiffError::ForeignVar { .. })));
}

#[test]
fn slices_out_of_range_report_the_range_and_length() {
    let tape = Tape::<f64>::new();
    let theta = tape.input(m(10, 1));
    let err = theta.slice(8, 1, 3).unwrap_err();
    assert_eq!(
        err,
        AutodiffError::SliceOutOfRange { op: "slice".into(), start: 8, end: 11, len: 10 }
    );
    assert_eq!(err.to_string(), "slice: range 8..11 is out of range for 10 elements");
    assert!(theta.slice(0, 2, 5).is_ok());
}

#[test]
fn non_finite_values_are_reported_only_when_checks_are_on() {
    let tape = Tape::<f64>::new();
    let a = tape.input(Matrix::from_vec(1, 2, vec![1.0, -1.0]).unwrap());
    assert!(a.ln().is_ok(), "checks are off by default");
    tape.set_check_finite(true);
    let err = a.ln().unwrap_err();
    assert!(matches!(err, AutodiffError::NonFinite { ref op, node: 2 } if op == "log"), "{err:?}");
    // On the reverse sweep too: d sqrt(x)/dx is infinite at 0.
    let tape = Tape::<f64>::new();
    let x = tape.input(Matrix::from_vec(1, 1, vec![0.0]).unwrap());
    let y = x.sqrt().unwrap();
    tape.set_check_finite(true);
    let err = tape.backward(y, Matrix::filled(1, 1, 1.0)).unwrap_err();
    assert!(matches!(err, AutodiffError::NonFinite { .. }), "{err:?}");
}

/// An op whose vjp returns the wrong shape: the tape says so instead of panicking.
struct BadVjp;
impl<T: Scalar> CustomOp<T> for BadVjp {
    fn name(&self) -> &str {
        "bad_vjp"
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        Ok(inputs[0])
    }
    fn forward(&self, inputs: &[&Matrix<T>]) -> Result<Matrix<T>> {
        Ok(inputs[0].clone())
    }
    fn transpose_jacobian_vector_product(
        &self,
        _: &[&Matrix<T>],
        _: &Matrix<T>,
        _: &Matrix<T>,
    ) -> Result<Vec<Matrix<T>>> {
        Ok(vec![Matrix::zeros(1, 1)])
    }
    fn jacobian_vector_product(
        &self,
        _: &[&Matrix<T>],
        tangents: &[&Matrix<T>],
    ) -> Result<Matrix<T>> {
        Ok(tangents[0].clone())
    }
}

#[test]
fn custom_op_rule_errors_are_reported() {
    let tape = Tape::<f64>::new();
    let a = tape.input(m(2, 2));
    let y = a.custom(Arc::new(BadVjp), &[]).unwrap();
    let err = tape.backward_with_seeds(&[(y, m(2, 2))], Retain::Inputs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad_vjp (vjp cotangent vs input): shape mismatch between 1×1 and 2×2"
    );
}

#[test]
fn affine_checks_both_shapes_and_matches_matmul_plus_bias() {
    let tape = Tape::<f64>::new();
    let a = tape.input(m(2, 3));
    let w = tape.input(m(4, 3));
    let b = tape.input(m(1, 4));
    let fused = a.affine(w, b).unwrap().value();
    let separate = a.matmul_t(w).unwrap().add_row(b).unwrap().value();
    assert_eq!(fused, separate);
    let err = a.affine(tape.input(m(4, 2)), b).unwrap_err();
    assert_eq!(err.to_string(), "affine (input vs weights): shape mismatch between 2×3 and 4×2");
    let err = a.affine(w, tape.input(m(1, 3))).unwrap_err();
    assert_eq!(err.to_string(), "affine (weights vs bias): shape mismatch between 4×3 and 1×3");
}
