//! Sizes computed from input use checked arithmetic (issue 17, item 1): a `rows × cols` that
//! overflows `usize`, or whose bytes overflow `isize::MAX`, is an error naming the shape, never
//! a wrapped product that happens to match a short buffer.

use autodiff::{AutodiffError, MatMut, MatRef, Matrix, Shape, Tape};

fn invalid(err: &AutodiffError, op: &str) -> bool {
    matches!(err, AutodiffError::InvalidArgument { op: o, .. } if o == op)
}

#[test]
fn from_vec_rejects_a_shape_whose_product_wraps_to_the_data_length() {
    // 2^32 · 2^32 wraps to 0 in 64 bits: an empty vector used to pass as that shape.
    let err = Matrix::<f64>::from_vec(1 << 32, 1 << 32, Vec::new()).unwrap_err();
    assert!(invalid(&err, "Matrix::from_vec"), "{err:?}");
    assert!(err.to_string().contains("4294967296×4294967296"), "{err}");
    // (2^63 + 1) · 2 wraps to 2, the length of this vector.
    let err = Matrix::from_vec((1 << 63) + 1, 2, vec![1.0, 2.0]).unwrap_err();
    assert!(invalid(&err, "Matrix::from_vec"), "{err:?}");
    // A product that fits usize but not isize::MAX bytes of f64.
    let err = Matrix::from_vec(1 << 31, 1 << 31, vec![0.0f64; 0]).unwrap_err();
    assert!(err.to_string().contains("larger than memory can hold"), "{err}");
    // The ordinary mismatch keeps its shape error.
    let err = Matrix::from_vec(2, 3, vec![0.0; 5]).unwrap_err();
    assert_eq!(err, AutodiffError::shape("Matrix::from_vec", Shape::new(2, 3), Shape::new(5, 1)));
}

#[test]
fn reshape_rejects_a_wrapping_shape() {
    let m = Matrix::from_vec(1, 2, vec![1.0, 2.0]).unwrap();
    let err = m.clone().reshape((1 << 63) + 1, 2).unwrap_err();
    assert!(invalid(&err, "Matrix::from_vec"), "{err:?}");
    assert_eq!(m.clone().reshape(2, 1).unwrap().shape(), Shape::new(2, 1));
    // On the tape too.
    let tape = Tape::<f64>::new();
    let a = tape.input(m);
    let err = a.reshape((1 << 63) + 1, 2).unwrap_err();
    assert!(
        matches!(err, AutodiffError::ShapeMismatch { ref op, .. } if op == "reshape"),
        "{err:?}"
    );
}

#[test]
fn slice_rejects_a_count_that_wraps() {
    let tape = Tape::<f64>::new();
    let theta = tape.input(Matrix::column(vec![1.0; 6]));
    // 2^32 · 2^32 elements from 0: the count wraps to 0 and used to pass as an empty slice.
    let err = theta.slice(0, 1 << 32, 1 << 32).unwrap_err();
    assert!(
        matches!(err, AutodiffError::SliceOutOfRange { start: 0, end: usize::MAX, len: 6, .. }),
        "{err:?}"
    );
    assert!(theta.slice(2, 2, 2).is_ok());
}

#[test]
fn views_reject_a_shape_that_wraps_to_the_slice_length() {
    let data = [1.0, 2.0];
    assert!(MatRef::from_slice(&data, (1 << 63) + 1, 2).is_none());
    assert!(MatRef::from_slice(&data, 1, 2).is_some());
    let mut data = [1.0, 2.0];
    assert!(MatMut::from_slice(&mut data, 2, (1 << 63) + 1).is_none());
}

#[test]
fn try_zeros_reports_sizes_that_cannot_exist_or_be_allocated() {
    // Overflowing: an error naming the shape.
    let err = Matrix::<f64>::try_zeros(usize::MAX, 2).unwrap_err();
    assert!(invalid(&err, "Matrix::try_filled"), "{err:?}");
    assert!(err.to_string().contains(&format!("{}×2", usize::MAX)), "{err}");
    // Representable but far beyond any memory (2^60 bytes): the allocator says no, and that is
    // an error rather than an abort.
    let err = Matrix::<f64>::try_zeros(1 << 30, 1 << 27).unwrap_err();
    assert!(invalid(&err, "Matrix::try_filled"), "{err:?}");
    let m = Matrix::try_filled(2, 3, 1.5).unwrap();
    assert_eq!(m.data(), &[1.5; 6]);
}

#[test]
fn infallible_constructors_panic_naming_the_shape_instead_of_wrapping() {
    for (rows, cols) in [(1usize << 32, 1usize << 32), (usize::MAX, 2)] {
        let msg = std::panic::catch_unwind(|| Matrix::<f64>::zeros(rows, cols))
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .expect("a panic with a message");
        assert!(msg.contains(&format!("Matrix::filled: a {rows}×{cols} matrix")), "{msg}");
        let msg = std::panic::catch_unwind(|| Matrix::<f64>::from_fn(rows, cols, |_, _| 0.0))
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .expect("a panic with a message");
        assert!(msg.contains("Matrix::from_fn"), "{msg}");
    }
}

#[test]
fn shape_len_saturates_and_checked_len_tells() {
    let s = Shape::new(1 << 32, 1 << 32);
    assert_eq!(s.len(), usize::MAX);
    assert_eq!(s.checked_len(), None);
    assert!(!s.is_empty());
    assert_eq!(Shape::new(3, 4).checked_len(), Some(12));
}
