//! The small-product kernel for dual matrices, given by their real and tangent parts:
//! `C.re = A.re B.re` and `C.eps = A.re B.eps + A.eps B.re` in one pass over the blocks of `C`.
//!
//! Three real products would each pack their `B` (the parts of a dual matrix are stride-2
//! views, so always packed), walk `A` and run their own edge blocks; here each row of the packed
//! `B.re` and `B.eps` is loaded once per step of `l` and feeds all three. A block keeps two sets
//! of accumulators, so it has half the rows of the real kernel's (the registers are the limit).
//! `C.eps` sums its two products term by term in order of `l` rather than one product after
//! the other, so it may differ from three separate products in the last bits.
//!
//! On small products moving data costs as much as the arithmetic, so: a dual `C` with
//! contiguous rows is stored with both parts interleaved in registers (whole vectors, not one
//! scalar per part and element); a product with fewer than 4 columns (a network's output layer)
//! runs as `Cᵀ = Bᵀ Aᵀ`, whose rows are long enough to fill vector blocks; and the packing of the
//! stride-2 parts uses loops the compiler vectorizes (see `pack_b`).

use super::{pack_b, store_block, Path, STACK_PACK};
use crate::matrix::{MatMut, MatRef};
use num_traits::Float;
use std::mem::MaybeUninit;

/// `C.re ← A.re B.re` and `C.eps ← A.re B.eps + A.eps B.re` (added to `C` when `accumulate`),
/// any strides; a missing tangent part is zero and its product is skipped. `A` is `m×k`, `B`
/// is `k×n`, `C` is `m×n`, each part the shape of its real part (panics otherwise).
pub fn gemm_dual<T: Float>(
    a: (MatRef<'_, T>, Option<MatRef<'_, T>>),
    b: (MatRef<'_, T>, Option<MatRef<'_, T>>),
    c: (MatMut<'_, T>, MatMut<'_, T>),
    accumulate: bool,
) {
    let shape = |r: usize, k: usize| move |m: &MatRef<'_, T>| m.rows() == r && m.cols() == k;
    let (m, k, n) = (a.0.rows(), a.0.cols(), b.0.cols());
    assert!(
        b.0.rows() == k
            && a.1.as_ref().is_none_or(shape(m, k))
            && b.1.as_ref().is_none_or(shape(k, n))
            && (c.0.rows(), c.0.cols(), c.1.rows(), c.1.cols()) == (m, n, m, n),
        "small_gemm::gemm_dual: shapes {m}×{k} · {}×{n} → {}×{}",
        b.0.rows(),
        c.0.rows(),
        c.0.cols()
    );
    if m == 0 || n == 0 {
        return;
    }
    if n < 4 && m > n {
        // A few columns (a network's output layer): as `Cᵀ = Bᵀ Aᵀ`, whose `m` columns fill
        // whole vector blocks instead of padding `n` to a half block in each of `m/2` row
        // panels (W3's 32×20×3 output layer: 2 blocks of 3×16 instead of 16 of 2×4).
        let (a, b, c) = (transposed(b), transposed(a), (c.0.t(), c.1.t()));
        if std::mem::size_of::<T>() == 4 {
            dispatch::<T, 16, 8, 32, 16>(a, b, c, accumulate);
        } else {
            dispatch::<T, 8, 4, 16, 8>(a, b, c, accumulate);
        }
        return;
    }
    if std::mem::size_of::<T>() == 4 {
        dispatch::<T, 16, 8, 32, 16>(a, b, c, accumulate);
    } else {
        dispatch::<T, 8, 4, 16, 8>(a, b, c, accumulate);
    }
}

type Parts<'a, T> = (MatRef<'a, T>, Option<MatRef<'a, T>>);
type PartsMut<'a, T> = (MatMut<'a, T>, MatMut<'a, T>);

fn transposed<T>(p: Parts<'_, T>) -> Parts<'_, T> {
    (p.0.t(), p.1.map(|e| e.t()))
}

fn dispatch<T: Float, const NR: usize, const H: usize, const NR2: usize, const H2: usize>(
    a: Parts<'_, T>,
    b: Parts<'_, T>,
    c: PartsMut<'_, T>,
    accumulate: bool,
) {
    match Path::choose_dual(b.0.cols(), H2) {
        // SAFETY: `choose` saw the CPU support each path's features.
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => unsafe { dual_avx512::<T, NR2, H2>(a, b, c, accumulate) },
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => unsafe { dual_avx2::<T, NR, H>(a, b, c, accumulate) },
        _ => dual_impl::<T, 2, NR, H, false>(a, b, c, accumulate),
    }
}

/// Two rows per block with AVX2: 2 × 2 × 2 accumulator registers, 4 for `B`, 2 broadcasts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dual_avx2<T: Float, const NR: usize, const H: usize>(
    a: Parts<'_, T>,
    b: Parts<'_, T>,
    c: PartsMut<'_, T>,
    accumulate: bool,
) {
    dual_impl::<T, 2, NR, H, true>(a, b, c, accumulate);
}

/// Four rows per block with AVX-512's 32 registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dual_avx512<T: Float, const NR: usize, const H: usize>(
    a: Parts<'_, T>,
    b: Parts<'_, T>,
    c: PartsMut<'_, T>,
    accumulate: bool,
) {
    dual_impl::<T, 4, NR, H, true>(a, b, c, accumulate);
}

/// Base pointers and strides; both parts of `B` packed row-major with row stride `width`.
struct Operands<T> {
    a_re: *const T,
    a_eps: *const T,
    /// `(row, column)` strides of `A.re` and of `A.eps`.
    a_re_strides: (isize, isize),
    a_eps_strides: (isize, isize),
    b_re: *const T,
    b_eps: *const T,
    width: usize,
    c_re: *mut T,
    c_eps: *mut T,
    c_re_strides: (isize, isize),
    c_eps_strides: (isize, isize),
    k: usize,
    n: usize,
    accumulate: bool,
    /// `C`'s parts are the halves of contiguous duals: `c_eps = c_re + 1`, column strides 2.
    interleaved: bool,
}

#[inline(always)]
fn dual_impl<T: Float, const MR: usize, const NR: usize, const H: usize, const FMA: bool>(
    a: Parts<'_, T>,
    b: Parts<'_, T>,
    c: PartsMut<'_, T>,
    accumulate: bool,
) {
    let (m, k, n) = (a.0.rows(), a.0.cols(), b.0.cols());
    let width = n.div_ceil(H) * H;
    let (mut stack_re, mut stack_eps) =
        ([MaybeUninit::<T>::uninit(); STACK_PACK], [MaybeUninit::<T>::uninit(); STACK_PACK]);
    let (mut heap_re, mut heap_eps) = (Vec::new(), Vec::new());
    // Both parts copied, so they share the row stride `width`.
    let (b_re, _) = pack_b(b.0, width, true, &mut stack_re, &mut heap_re);
    let b_eps = b.1.map(|be| pack_b(be, width, true, &mut stack_eps, &mut heap_eps).0);
    let strides = |m: &MatRef<'_, T>| (m.row_stride(), m.col_stride());
    let ops = Operands {
        a_re: a.0.as_ptr(),
        a_eps: a.1.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
        a_re_strides: strides(&a.0),
        a_eps_strides: a.1.as_ref().map_or((0, 0), strides),
        b_re,
        b_eps: b_eps.unwrap_or(std::ptr::null()),
        width,
        c_re: c.0.as_mut_ptr(),
        c_eps: c.1.as_mut_ptr(),
        c_re_strides: (c.0.row_stride(), c.0.col_stride()),
        c_eps_strides: (c.1.row_stride(), c.1.col_stride()),
        k,
        n,
        accumulate,
        interleaved: c.1.as_mut_ptr() == c.0.as_mut_ptr().wrapping_add(1)
            && c.0.col_stride() == 2
            && (c.1.row_stride(), c.1.col_stride()) == (c.0.row_stride(), 2),
    };
    match (a.1.is_some(), b_eps.is_some()) {
        (true, true) => panels::<T, MR, NR, H, FMA, true, true>(&ops, m),
        (true, false) => panels::<T, MR, NR, H, FMA, true, false>(&ops, m),
        (false, true) => panels::<T, MR, NR, H, FMA, false, true>(&ops, m),
        (false, false) => panels::<T, MR, NR, H, FMA, false, false>(&ops, m),
    }
}

/// Every block of `C`: panels of `MR` rows, then the remaining rows.
#[inline(always)]
fn panels<
    T: Float,
    const MR: usize,
    const NR: usize,
    const H: usize,
    const FMA: bool,
    const AE: bool,
    const BE: bool,
>(
    ops: &Operands<T>,
    m: usize,
) {
    // SAFETY (all blocks): rows i..i+R are inside A and C, the block's columns inside the
    // padded parts of B, and `store_block` writes only columns below `n`.
    let mut i = 0;
    while i + MR <= m {
        unsafe { panel::<T, MR, NR, H, FMA, AE, BE>(ops, i) };
        i += MR;
    }
    match m - i {
        3 => unsafe { panel::<T, 3, NR, H, FMA, AE, BE>(ops, i) },
        2 => unsafe { panel::<T, 2, NR, H, FMA, AE, BE>(ops, i) },
        1 => unsafe { panel::<T, 1, NR, H, FMA, AE, BE>(ops, i) },
        _ => {}
    }
}

/// Rows `i0..i0+R`: full `NR`-wide blocks, then one `H`-wide block if the width needs it.
///
/// # Safety
/// As for [`block`].
#[inline(always)]
unsafe fn panel<
    T: Float,
    const R: usize,
    const NR: usize,
    const H: usize,
    const FMA: bool,
    const AE: bool,
    const BE: bool,
>(
    ops: &Operands<T>,
    i0: usize,
) {
    let mut j = 0;
    while j + NR <= ops.width {
        block::<T, R, NR, FMA, AE, BE>(ops, i0, j);
        j += NR;
    }
    if j < ops.width {
        block::<T, R, H, FMA, AE, BE>(ops, i0, j);
    }
}

#[inline(always)]
fn madd<T: Float, const FMA: bool>(x: T, y: T, acc: T) -> T {
    if FMA {
        x.mul_add(y, acc)
    } else {
        acc + x * y
    }
}

/// One `R×W` block of both parts of `C` at `(i0, j0)`, accumulated in registers over `k`.
///
/// # Safety
/// Rows `i0..i0+R` of the parts of `A` (`k` columns) and of `C` must be in bounds, and the
/// packed parts of `B` must hold `k` rows of `width ≥ j0 + W` elements.
#[inline(always)]
unsafe fn block<
    T: Float,
    const R: usize,
    const W: usize,
    const FMA: bool,
    const AE: bool,
    const BE: bool,
>(
    ops: &Operands<T>,
    i0: usize,
    j0: usize,
) {
    let mut re = [[T::zero(); W]; R];
    let mut eps = [[T::zero(); W]; R];
    let (rs, cs) = ops.a_re_strides;
    let (ers, ecs) = ops.a_eps_strides;
    let a_re = ops.a_re.offset(i0 as isize * rs);
    let a_eps = if AE { ops.a_eps.offset(i0 as isize * ers) } else { ops.a_eps };
    for l in 0..ops.k {
        let row = l * ops.width + j0;
        let b_re: [T; W] = *(ops.b_re.add(row) as *const [T; W]);
        let b_eps: [T; W] =
            if BE { *(ops.b_eps.add(row) as *const [T; W]) } else { [T::zero(); W] };
        for r in 0..R {
            let x = *a_re.offset(l as isize * cs + r as isize * rs);
            let y = if AE { *a_eps.offset(l as isize * ecs + r as isize * ers) } else { T::zero() };
            for t in 0..W {
                re[r][t] = madd::<T, FMA>(x, b_re[t], re[r][t]);
                if BE {
                    eps[r][t] = madd::<T, FMA>(x, b_eps[t], eps[r][t]);
                }
                if AE {
                    eps[r][t] = madd::<T, FMA>(y, b_re[t], eps[r][t]);
                }
            }
        }
    }
    // Copies, so that the stores' run-time indices leave the accumulators in registers.
    let (out_re, out_eps) = (re, eps);
    let (crs, ccs) = ops.c_re_strides;
    if ops.interleaved {
        store_interleaved(&out_re, &out_eps, ops.c_re, crs, i0, j0, ops.n, ops.accumulate);
        return;
    }
    store_block(&out_re, ops.c_re, crs, ccs, i0, j0, ops.n, ops.accumulate);
    let (ers, ecs) = ops.c_eps_strides;
    store_block(&out_eps, ops.c_eps, ers, ecs, i0, j0, ops.n, ops.accumulate);
}

/// Stores (or adds) both parts of an `R×W` block at `(i0, j0)` of a dual `C` whose rows are
/// contiguous duals (`C.eps` one element after `C.re`, both with column stride 2): a block row
/// is `2W` consecutive elements, written as whole vectors with the parts interleaved in
/// registers. Each part on its own is one scalar store per element, which took 12% of a
/// 10-20-20-3 MLP's `H v`.
///
/// # Safety
/// Rows `i0..i0+R` and columns `j0..min(j0+W, n)` of `C` must be in bounds.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn store_interleaved<T: Float, const R: usize, const W: usize>(
    re: &[[T; W]; R],
    eps: &[[T; W]; R],
    c: *mut T,
    crs: isize,
    i0: usize,
    j0: usize,
    n: usize,
    accumulate: bool,
) {
    let w = W.min(n - j0);
    for r in 0..R {
        let crow = c.offset((i0 + r) as isize * crs + 2 * j0 as isize);
        if w == W {
            let dst = &mut *(crow as *mut [[T; 2]; W]);
            if accumulate {
                for t in 0..W {
                    dst[t] = [dst[t][0] + re[r][t], dst[t][1] + eps[r][t]];
                }
            } else {
                for t in 0..W {
                    dst[t] = [re[r][t], eps[r][t]];
                }
            }
        } else {
            for t in 0..w {
                let dst = &mut *(crow.add(2 * t) as *mut [T; 2]);
                *dst = if accumulate {
                    [dst[0] + re[r][t], dst[1] + eps[r][t]]
                } else {
                    [re[r][t], eps[r][t]]
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dual::dual_matrix;
    use crate::{Dual, Matrix, Scalar};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random(rng: &mut StdRng, r: usize, c: usize) -> Matrix<f64> {
        Matrix::from_fn(r, c, |_, _| rng.random_range(-1.0..1.0))
    }

    /// Against a triple loop over dual numbers (the definition of the product), on the
    /// stride-2 parts of real dual matrices, transposed views (of `C` too: its parts are then
    /// not interleaved along rows, and take the per-part stores), missing tangents, and
    /// accumulation; 1e-14 of the magnitude sum.
    #[test]
    fn fused_dual_product_matches_the_dual_triple_loop() {
        let mut rng = StdRng::seed_from_u64(5);
        let dims = [1usize, 2, 3, 4, 5, 7, 8, 9, 16, 20, 24, 32];
        for trial in 0..800 {
            let pick = |rng: &mut StdRng| dims[rng.random_range(0..dims.len())];
            let (m, k, n) = (pick(&mut rng), pick(&mut rng), pick(&mut rng));
            let (ta, tb) = (trial & 1 == 1, trial & 2 == 2);
            let (a_tangent, b_tangent) = (trial & 4 == 0, trial & 8 == 0);
            let accumulate = trial & 16 == 16;
            let tc = trial & 32 == 32;
            let dual = |rng: &mut StdRng, r, c, tangent: bool| {
                let eps = if tangent { random(rng, r, c) } else { Matrix::zeros(r, c) };
                dual_matrix(&random(rng, r, c), &eps).unwrap()
            };
            // Stored transposed when the view is transposed, so the strides vary.
            let am =
                if ta { dual(&mut rng, k, m, a_tangent) } else { dual(&mut rng, m, k, a_tangent) };
            let bm =
                if tb { dual(&mut rng, n, k, b_tangent) } else { dual(&mut rng, k, n, b_tangent) };
            let av = if ta { am.as_ref().t() } else { am.as_ref() };
            let bv = if tb { bm.as_ref().t() } else { bm.as_ref() };
            let c0 = if tc { dual(&mut rng, n, m, true) } else { dual(&mut rng, m, n, true) };
            let at =
                |c: &Matrix<Dual<f64>>, i: usize, j: usize| if tc { c[(j, i)] } else { c[(i, j)] };
            let mut c = c0.clone();
            {
                let (a_re, a_eps) = crate::dual::gemm::parts(av);
                let (b_re, b_eps) = crate::dual::gemm::parts(bv);
                let mut cv = if tc { c.as_mut().t() } else { c.as_mut() };
                let (c_re, c_eps) = crate::dual::gemm::parts_mut(&mut cv);
                gemm_dual(
                    (a_re, a_tangent.then_some(a_eps)),
                    (b_re, b_tangent.then_some(b_eps)),
                    (c_re, c_eps),
                    accumulate,
                );
            }
            let ctx = format!(
                "{m}×{k}×{n} t=({ta},{tb},{tc}) tangents=({a_tangent},{b_tangent}) acc={accumulate}"
            );
            for i in 0..m {
                for j in 0..n {
                    let c0_ij = at(&c0, i, j);
                    let mut want = if accumulate { c0_ij } else { Dual::constant(0.0) };
                    let mut scale = if accumulate { c0_ij.re.abs() + c0_ij.eps.abs() } else { 0.0 };
                    for l in 0..k {
                        let (x, y) = (av.get(i, l), bv.get(l, j));
                        want += x * y;
                        scale += (x.re * y.re).abs() + (x.re * y.eps).abs() + (x.eps * y.re).abs();
                    }
                    let got = at(&c, i, j);
                    let tol = 1e-14 * scale.max(1e-300);
                    assert!(
                        (got.re - want.re).abs() <= tol && (got.eps - want.eps).abs() <= tol,
                        "{ctx} at ({i}, {j}): {got:?} vs {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn fused_dual_product_in_f32_matches_f64() {
        let mut rng = StdRng::seed_from_u64(9);
        let (m, k, n) = (7, 11, 20);
        let a = dual_matrix(&random(&mut rng, m, k), &random(&mut rng, m, k)).unwrap();
        let b = dual_matrix(&random(&mut rng, k, n), &random(&mut rng, k, n)).unwrap();
        let to32 = |d: &Matrix<Dual<f64>>| d.map(|x| Dual::new(x.re as f32, x.eps as f32));
        let (a32, b32) = (to32(&a), to32(&b));
        let mut c32 = Matrix::<Dual<f32>>::zeros(m, n);
        <Dual<f32> as Scalar>::gemm(a32.as_ref(), b32.as_ref(), c32.as_mut(), false);
        let back = |d: &Matrix<Dual<f32>>| d.map(|x| Dual::new(f64::from(x.re), f64::from(x.eps)));
        let mut want = Matrix::<Dual<f64>>::zeros(m, n);
        <Dual<f64> as Scalar>::gemm(back(&a32).as_ref(), back(&b32).as_ref(), want.as_mut(), false);
        for (x, y) in c32.data().iter().zip(want.data()) {
            assert!((f64::from(x.re) - y.re).abs() <= 1e-5 * k as f64, "{x:?} vs {y:?}");
            assert!((f64::from(x.eps) - y.eps).abs() <= 2e-5 * k as f64, "{x:?} vs {y:?}");
        }
    }
}
