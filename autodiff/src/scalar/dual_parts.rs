//! The product of dual matrices from their real and tangent parts, as two or three real
//! products: `C.re ← A.re B.re`, `C.eps ← A.re B.eps + A.eps B.re`.
//!
//! Here, below [`Dual`](crate::Dual), because it needs only [`Scalar::gemm`] on the parts
//! (strided views of one buffer, see `dual::gemm`): [`Scalar::gemm_dual_parts`]'s default and
//! the large `f64`/`f32` products call it, and the dual matrix product builds on it.

use crate::kernels::buffers;
use crate::matrix::{MatMut, MatRef, Matrix};
use crate::scalar::Scalar;

pub(crate) fn all_zero<T: Scalar>(m: &MatRef<'_, T>) -> bool {
    (0..m.rows()).all(|i| (0..m.cols()).all(|j| m.get(i, j).is_zero()))
}

pub(crate) fn zero_fill<T: Scalar>(m: &mut MatMut<'_, T>) {
    for i in 0..m.rows() {
        for j in 0..m.cols() {
            // SAFETY: in range by the view's invariant.
            unsafe {
                *m.as_mut_ptr().offset(i as isize * m.row_stride() + j as isize * m.col_stride()) =
                    T::zero();
            }
        }
    }
}

/// `C.re ← A.re B.re`, `C.eps ← A.re B.eps + A.eps B.re` (added when `accumulate`) as three
/// (or two) real products: the default of [`Scalar::gemm_dual_parts`].
pub(crate) fn gemm_dual_by_products<T: Scalar>(
    a: (MatRef<'_, T>, Option<MatRef<'_, T>>),
    b: (MatRef<'_, T>, Option<MatRef<'_, T>>),
    c: (MatMut<'_, T>, MatMut<'_, T>),
    accumulate: bool,
) {
    products_through_buffer(a, b, (Some(c.0), c.1), accumulate);
}

/// The products of [`gemm_dual_by_products`] (without the primal one when `c.0` is `None`),
/// each into one contiguous buffer that is then copied (or added) into its part of `C`.
///
/// A dual matrix's parts are stride-2 views, and a product into such a `C` gathers and
/// scatters each element of `C` at every block update of the kernel: in `perf annotate` of
/// three products into the parts of a 1000×1000 dual `C`, the kernel's scalar loads of `C`
/// took 15% of its time. The copy is one pass over `C` per part, against `2k` flops per
/// element for each product. The sums are the same as into `C` directly when not
/// accumulating; when accumulating, `C + (A B)` instead of adding block by block.
pub(crate) fn products_through_buffer<T: Scalar>(
    a: (MatRef<'_, T>, Option<MatRef<'_, T>>),
    b: (MatRef<'_, T>, Option<MatRef<'_, T>>),
    c: (Option<MatMut<'_, T>>, MatMut<'_, T>),
    accumulate: bool,
) {
    let (c_re, mut c_eps) = c;
    let (m, k, n) = (c_eps.rows(), a.0.cols(), c_eps.cols());
    if k < MIN_DEPTH_FOR_BUFFER {
        return products_in_place(a, b, (c_re, c_eps), accumulate);
    }
    let mut buffer = Matrix::from_vec(m, n, buffers::filled(m * n, T::zero()))
        .expect("internal error: product buffer");
    if let Some(mut c_re) = c_re {
        T::gemm(a.0, b.0, buffer.as_mut(), false);
        store(&mut c_re, &buffer, accumulate);
    }
    if tangent_products(a, b, buffer.as_mut(), false) {
        store(&mut c_eps, &buffer, accumulate);
    } else if !accumulate {
        zero_fill(&mut c_eps);
    }
}

/// `C ← A.re B.eps + A.eps B.re`, added to `C` when `accumulate`, skipping a missing tangent;
/// whether anything was written (`accumulate`, or a tangent present).
fn tangent_products<T: Scalar>(
    a: (MatRef<'_, T>, Option<MatRef<'_, T>>),
    b: (MatRef<'_, T>, Option<MatRef<'_, T>>),
    mut c: MatMut<'_, T>,
    accumulate: bool,
) -> bool {
    let mut written = accumulate;
    if let Some(b_eps) = b.1 {
        T::gemm(a.0, b_eps, c.rb_mut(), written);
        written = true;
    }
    if let Some(a_eps) = a.1 {
        T::gemm(a_eps, b.0, c.rb_mut(), written);
        written = true;
    }
    written
}

/// Below this depth `matrixmultiply` updates each block of `C` once or twice per product
/// (its `f64` kernels take `k` in steps of 256), no more often than the buffer's copy would
/// touch it: W2's 64- to 256-deep products ran 1.02–1.06× slower through the buffer.
const MIN_DEPTH_FOR_BUFFER: usize = 512;

/// [`products_through_buffer`] straight into the strided parts of `C`.
fn products_in_place<T: Scalar>(
    a: (MatRef<'_, T>, Option<MatRef<'_, T>>),
    b: (MatRef<'_, T>, Option<MatRef<'_, T>>),
    c: (Option<MatMut<'_, T>>, MatMut<'_, T>),
    accumulate: bool,
) {
    let (c_re, mut c_eps) = c;
    if let Some(c_re) = c_re {
        T::gemm(a.0, b.0, c_re, accumulate);
    }
    if !tangent_products(a, b, c_eps.rb_mut(), accumulate) {
        zero_fill(&mut c_eps);
    }
}

/// `C ← B` (or `C ← C + B` when `accumulate`) for a strided `C` and a row-major `B`.
fn store<T: Scalar>(c: &mut MatMut<'_, T>, b: &Matrix<T>, accumulate: bool) {
    let (rs, cs) = (c.row_stride(), c.col_stride());
    for (i, row) in b.data().chunks_exact(b.cols().max(1)).enumerate() {
        for (j, &x) in row.iter().enumerate() {
            // SAFETY: (i, j) is inside `C`, whose shape is `B`'s.
            unsafe {
                let p = c.as_mut_ptr().offset(i as isize * rs + j as isize * cs);
                *p = if accumulate { *p + x } else { x };
            }
        }
    }
}
