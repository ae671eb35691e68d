//! The product of dual matrices as three real products on strided views of the same buffers.
//!
//! With `#[repr(C)]`, a `Dual<T>` matrix with strides `(rs, cs)` at pointer `p` holds its values
//! at `p as *const T` and its tangents at `(p as *const T) + 1`, both with strides
//! `(2rs, 2cs)`. Then `C = A B` is `C.re = A.re B.re`, `C.eps = A.re B.eps + A.eps B.re`.
//! A product whose operand has an all-zero tangent (data `x` in the first layer, or a constant
//! weight) skips the corresponding real product: a cheap scan saves a third of the work.

use super::Dual;
use crate::matrix::{MatMut, MatRef, Matrix};
use crate::scalar::Scalar;

pub(crate) fn parts<T>(m: MatRef<'_, Dual<T>>) -> (MatRef<'_, T>, MatRef<'_, T>) {
    let base = m.as_ptr() as *const T;
    // SAFETY: Dual<T> is repr(C) with two T fields, so element (i, j)'s re is at
    // base + 2(i·rs + j·cs) and its eps one T further, inside the same allocation.
    unsafe {
        (
            MatRef::from_raw_parts(
                base,
                m.rows(),
                m.cols(),
                2 * m.row_stride(),
                2 * m.col_stride(),
            ),
            MatRef::from_raw_parts(
                base.add(1),
                m.rows(),
                m.cols(),
                2 * m.row_stride(),
                2 * m.col_stride(),
            ),
        )
    }
}

pub(crate) fn parts_mut<'m, T>(m: &'m mut MatMut<'_, Dual<T>>) -> (MatMut<'m, T>, MatMut<'m, T>) {
    let base = m.as_mut_ptr() as *mut T;
    // SAFETY: as in `parts`; the two views interleave and never alias each other.
    unsafe {
        (
            MatMut::from_raw_parts(
                base,
                m.rows(),
                m.cols(),
                2 * m.row_stride(),
                2 * m.col_stride(),
            ),
            MatMut::from_raw_parts(
                base.add(1),
                m.rows(),
                m.cols(),
                2 * m.row_stride(),
                2 * m.col_stride(),
            ),
        )
    }
}

fn all_zero<T: Scalar>(m: &MatRef<'_, T>) -> bool {
    (0..m.rows()).all(|i| (0..m.cols()).all(|j| m.get(i, j).is_zero()))
}

fn zero_fill<T: Scalar>(m: &mut MatMut<'_, T>) {
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

pub(super) fn dual_gemm<T: Scalar>(
    a: MatRef<'_, Dual<T>>,
    b: MatRef<'_, Dual<T>>,
    mut c: MatMut<'_, Dual<T>>,
    accumulate: bool,
) {
    let (a_re, a_eps) = parts(a);
    let (b_re, b_eps) = parts(b);
    let (c_re, mut c_eps) = parts_mut(&mut c);
    let a_tangent = !all_zero(&a_eps);
    let b_tangent = !all_zero(&b_eps);
    if !a_tangent && !b_tangent {
        T::gemm(a_re, b_re, c_re, accumulate);
        if !accumulate {
            zero_fill(&mut c_eps);
        }
        return;
    }
    T::gemm_dual_parts(
        (a_re, a_tangent.then_some(a_eps)),
        (b_re, b_tangent.then_some(b_eps)),
        (c_re, c_eps),
        accumulate,
    );
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
fn products_through_buffer<T: Scalar>(
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
    let mut buffer = Matrix::from_vec(m, n, crate::buffers::filled(m * n, T::zero()))
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

/// `C.eps ← A.re B.eps + A.eps B.re` (added when `accumulate`) without the primal product: what
/// [`Scalar::gemm_tangent`] runs for a dual matrix. `C.re` is left as it was (zeroed when not
/// accumulating), except in a small product, which runs the fused kernel of [`dual_gemm`]
/// whole: there one pass over the blocks of `C` serves all three products, and the primal one
/// costs less than a second pass would.
pub(super) fn dual_gemm_tangent<T: Scalar>(
    a: MatRef<'_, Dual<T>>,
    b: MatRef<'_, Dual<T>>,
    mut c: MatMut<'_, Dual<T>>,
    accumulate: bool,
) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    if m * k * n <= crate::small_gemm::SMALL_GEMM_MAX_WORK {
        dual_gemm(a, b, c, accumulate);
        return;
    }
    let (a_re, a_eps) = parts(a);
    let (b_re, b_eps) = parts(b);
    let (mut c_re, c_eps) = parts_mut(&mut c);
    if !accumulate {
        zero_fill(&mut c_re);
    }
    let a_eps = (!all_zero(&a_eps)).then_some(a_eps);
    let b_eps = (!all_zero(&b_eps)).then_some(b_eps);
    products_through_buffer((a_re, a_eps), (b_re, b_eps), (None, c_eps), accumulate);
}
