//! The element type of every tape: [`Scalar`], and the scalar functions its defaults use
//! ([`sigmoid`], the product of dual matrices from their parts in `dual_parts`).
//!
//! Below [`dual`](crate::dual) and [`op`](crate::op): this module imports only the matrix views
//! and the kernels.

pub(crate) mod dual_parts;

use crate::matrix::{MatMut, MatRef};
use num_traits::Float;
use std::fmt::{Debug, Display};

/// A real number type on which a tape can run: `f64`, `f32`, or a dual number
/// [`Dual<T>`](crate::Dual) over one of them (and so, recursively, `Dual<Dual<f64>>`).
///
/// Besides [`Float`], a scalar chooses its own matrix-product kernel: `f64` and `f32` call
/// `matrixmultiply` (or, for small products, the direct kernel of [`crate::kernels::small_gemm`]), while a dual matrix is multiplied by three products of its real and
/// tangent parts, read in place as strided views of the same buffer.
pub trait Scalar: Float + Debug + Display + Default + Send + Sync + 'static {
    /// `C ← A B` (when `accumulate` is false) or `C ← C + A B` (when true), on strided views.
    ///
    /// The caller guarantees `A` is `m×k`, `B` is `k×n` and `C` is `m×n`; the views are
    /// checked by the tape before they get here, so a mismatch is an internal error.
    fn gemm(a: MatRef<'_, Self>, b: MatRef<'_, Self>, c: MatMut<'_, Self>, accumulate: bool);

    /// As [`gemm`](Scalar::gemm) where only the derivative part of `C` is wanted: for a dual
    /// number, `C.eps ← A.re B.eps + A.eps B.re` (added when `accumulate`) without the primal
    /// product `A.re B.re`, whose result would be thrown away. `C.re` is then left as it was
    /// when `accumulate`, and zeroed otherwise.
    ///
    /// A forward-over-reverse `H v` that does not want `∇h` runs its parameters' adjoint
    /// products this way ([`Tape::backward_tangents`](crate::Tape::backward_tangents)): one
    /// real product per layer less. The default (a scalar without a derivative part) is the
    /// whole product.
    fn gemm_tangent(
        a: MatRef<'_, Self>,
        b: MatRef<'_, Self>,
        c: MatMut<'_, Self>,
        accumulate: bool,
    ) {
        Self::gemm(a, b, c, accumulate);
    }

    /// Whether this value and every derivative part it carries are finite.
    fn is_all_finite(self) -> bool;

    /// The real (primal) part as an `f64`, through every level of dual nesting.
    fn primal_f64(self) -> f64;

    /// Converts a constant; exact for `f64`, rounded for `f32`, and a dual with zero tangent.
    fn from_f64(x: f64) -> Self;

    /// The product of dual matrices from their parts (`None` for a zero tangent):
    /// `C.re ← A.re B.re` and `C.eps ← A.re B.eps + A.eps B.re`, added to `C` when
    /// `accumulate`. What [`Dual`](crate::Dual)'s [`gemm`](Scalar::gemm) runs on its strided
    /// real and tangent parts.
    ///
    /// The default is two or three [`gemm`](Scalar::gemm)s; `f64` and `f32` compute small
    /// products in one fused pass ([`crate::kernels::small_gemm::gemm_dual`]).
    fn gemm_dual_parts(
        a: (MatRef<'_, Self>, Option<MatRef<'_, Self>>),
        b: (MatRef<'_, Self>, Option<MatRef<'_, Self>>),
        c: (MatMut<'_, Self>, MatMut<'_, Self>),
        accumulate: bool,
    ) {
        dual_parts::gemm_dual_by_products(a, b, c, accumulate);
    }

    /// `out[i] = tanh(x[i])` over a slice; panics if the lengths differ.
    ///
    /// The default is the per-element `tanh` (what dual numbers need: their derivative parts).
    /// `f64` and `f32` override it with the vectorized [`crate::kernels::fast_math`] version, within
    /// 2 ulp of libm.
    fn tanh_slice(x: &[Self], out: &mut [Self]) {
        assert_eq!(x.len(), out.len(), "tanh_slice: lengths differ");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v.tanh();
        }
    }

    /// `out[i] = exp(x[i])` over a slice; panics if the lengths differ.
    ///
    /// The default is the per-element `exp`; `f64` and `f32` override it with the vectorized
    /// [`crate::kernels::fast_math`] version, within 1 ulp of libm (the softmax of
    /// [`crate::op::softmax`] takes its exponentials here).
    fn exp_slice(x: &[Self], out: &mut [Self]) {
        assert_eq!(x.len(), out.len(), "exp_slice: lengths differ");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v.exp();
        }
    }

    /// `out[i] = 1 / (1 + e^{-x[i]})` over a slice; panics if the lengths differ.
    ///
    /// The default is the per-element [`sigmoid`]; `f64` and `f32`
    /// override it as for [`tanh_slice`](Scalar::tanh_slice).
    fn sigmoid_slice(x: &[Self], out: &mut [Self]) {
        assert_eq!(x.len(), out.len(), "sigmoid_slice: lengths differ");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = sigmoid(v);
        }
    }
}

/// The logistic sigmoid, evaluated without overflow on either side.
pub fn sigmoid<T: Scalar>(x: T) -> T {
    let one = T::one();
    if x >= T::zero() {
        one / (one + (-x).exp())
    } else {
        let e = x.exp();
        e / (one + e)
    }
}

fn check_gemm_shapes<T>(a: &MatRef<'_, T>, b: &MatRef<'_, T>, c: &MatMut<'_, T>) {
    assert!(
        a.cols() == b.rows() && c.rows() == a.rows() && c.cols() == b.cols(),
        "internal error: gemm shapes {}×{} · {}×{} → {}×{}",
        a.rows(),
        a.cols(),
        b.rows(),
        b.cols(),
        c.rows(),
        c.cols()
    );
}

macro_rules! impl_real_scalar {
    ($t:ty, $kernel:path, $exp:path, $tanh:path, $sigmoid:path) => {
        impl Scalar for $t {
            fn gemm(
                a: MatRef<'_, Self>,
                b: MatRef<'_, Self>,
                c: MatMut<'_, Self>,
                accumulate: bool,
            ) {
                check_gemm_shapes(&a, &b, &c);
                let (m, k, n) = (a.rows(), a.cols(), b.cols());
                if m == 0 || n == 0 {
                    return;
                }
                if m * k * n <= crate::kernels::small_gemm::SMALL_GEMM_MAX_WORK {
                    // Small products: packing would cost more than the arithmetic.
                    crate::kernels::small_gemm::gemm(a, b, c, accumulate);
                    return;
                }
                let beta = if accumulate { 1.0 } else { 0.0 };
                // SAFETY: the views were built from live buffers whose extents cover
                // every (row, col) index for the given strides (MatRef/MatMut invariant),
                // the shapes were checked above, and `c` is a unique borrow.
                unsafe {
                    $kernel(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        a.row_stride(),
                        a.col_stride(),
                        b.as_ptr(),
                        b.row_stride(),
                        b.col_stride(),
                        beta,
                        c.as_mut_ptr(),
                        c.row_stride(),
                        c.col_stride(),
                    );
                }
            }

            fn gemm_dual_parts(
                a: (MatRef<'_, Self>, Option<MatRef<'_, Self>>),
                b: (MatRef<'_, Self>, Option<MatRef<'_, Self>>),
                c: (MatMut<'_, Self>, MatMut<'_, Self>),
                accumulate: bool,
            ) {
                let (m, k, n) = (a.0.rows(), a.0.cols(), b.0.cols());
                if m * k * n <= crate::kernels::small_gemm::SMALL_GEMM_MAX_WORK {
                    crate::kernels::small_gemm::gemm_dual(a, b, c, accumulate);
                } else {
                    dual_parts::gemm_dual_by_products(a, b, c, accumulate);
                }
            }

            fn is_all_finite(self) -> bool {
                self.is_finite()
            }

            fn primal_f64(self) -> f64 {
                self as f64
            }

            fn from_f64(x: f64) -> Self {
                x as $t
            }

            fn exp_slice(x: &[Self], out: &mut [Self]) {
                $exp(x, out);
            }

            fn tanh_slice(x: &[Self], out: &mut [Self]) {
                $tanh(x, out);
            }

            fn sigmoid_slice(x: &[Self], out: &mut [Self]) {
                $sigmoid(x, out);
            }
        }
    };
}

impl_real_scalar!(
    f64,
    matrixmultiply::dgemm,
    crate::kernels::fast_math::exp_f64,
    crate::kernels::fast_math::tanh_f64,
    crate::kernels::fast_math::sigmoid_f64
);
impl_real_scalar!(
    f32,
    matrixmultiply::sgemm,
    crate::kernels::fast_math::exp_f32,
    crate::kernels::fast_math::tanh_f32,
    crate::kernels::fast_math::sigmoid_f32
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Matrix;

    /// Reference triple loop, the oracle for the kernel.
    fn naive(a: &Matrix<f64>, b: &Matrix<f64>) -> Matrix<f64> {
        Matrix::from_fn(a.rows(), b.cols(), |i, j| {
            (0..a.cols()).map(|l| a[(i, l)] * b[(l, j)]).sum()
        })
    }

    #[test]
    fn gemm_matches_triple_loop_including_transposed_views() {
        let a = Matrix::from_fn(5, 3, |i, j| (i as f64) - 0.5 * (j as f64) + 0.25);
        let b = Matrix::from_fn(3, 4, |i, j| 0.3 * (i as f64) * (j as f64) - 1.0);
        let mut c = Matrix::zeros(5, 4);
        f64::gemm(a.as_ref(), b.as_ref(), c.as_mut(), false);
        let want = naive(&a, &b);
        for (x, y) in c.data().iter().zip(want.data()) {
            assert!((x - y).abs() <= 1e-14 * (1.0 + y.abs()), "{x} vs {y}");
        }
        // Aᵀ-view times (A B): uses strides only, no copy.
        let mut d = Matrix::zeros(3, 4);
        f64::gemm(a.as_ref().t(), want.as_ref(), d.as_mut(), false);
        let want_d = naive(&a.transpose(), &want);
        for (x, y) in d.data().iter().zip(want_d.data()) {
            assert!((x - y).abs() <= 1e-13 * (1.0 + y.abs()), "{x} vs {y}");
        }
        // Accumulate adds.
        f64::gemm(a.as_ref().t(), want.as_ref(), d.as_mut(), true);
        for (x, y) in d.data().iter().zip(want_d.data()) {
            assert!((x - 2.0 * y).abs() <= 1e-13 * (1.0 + y.abs()), "{x} vs 2·{y}");
        }
    }
}
