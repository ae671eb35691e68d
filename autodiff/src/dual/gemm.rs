//! The product of dual matrices as three real products on strided views of the same buffers.
//!
//! With `#[repr(C)]`, a `Dual<T>` matrix with strides `(rs, cs)` at pointer `p` holds its values
//! at `p as *const T` and its tangents at `(p as *const T) + 1`, both with strides
//! `(2rs, 2cs)`. Then `C = A B` is `C.re = A.re B.re`, `C.eps = A.re B.eps + A.eps B.re`.
//! A product whose operand has an all-zero tangent (data `x` in the first layer, or a constant
//! weight) skips the corresponding real product: a cheap scan saves a third of the work.
//!
//! Here the split of a dual matrix into its parts; the real products from the parts are in
//! `scalar::dual_parts`, below this module ([`Scalar::gemm_dual_parts`]'s default uses them).

use super::Dual;
use crate::matrix::{MatMut, MatRef};
use crate::scalar::dual_parts::{all_zero, products_through_buffer, zero_fill};
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
    if m * k * n <= crate::kernels::small_gemm::SMALL_GEMM_MAX_WORK {
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
