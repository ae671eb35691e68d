//! A direct kernel for small real matrix products, where `matrixmultiply`'s packing and edge
//! handling cost more than the arithmetic (the 10-20-20-3 MLP's layers are 32×10×20 and smaller).
//!
//! The product is computed in `MR×NR` register blocks (and narrower ones at the edges): for each
//! block, a sum over `l` of a broadcast element of `A` times `NR` contiguous elements of `B`. `B` is read in place when its
//! rows are contiguous and `n` is a multiple of the narrow block width, and otherwise copied once into a
//! zero-padded row-major buffer, so any stride pattern (transposed views, the strided real and
//! tangent parts of a dual matrix) takes the same kernel. `A` and `C` are read and written
//! through their strides. Each element of `C` is a plain sum of products in order of `l`; on a
//! CPU with AVX2 and FMA the kernel is compiled for them and each step is a fused multiply-add
//! (one rounding instead of two, as `matrixmultiply` does on such CPUs). With AVX-512 the
//! blocks are twice as wide where they pad `C`'s rows no more than the AVX2 ones, and AVX2's
//! width with eight rows per block (AVX-512's 32 registers hold them) elsewhere.
//!
//! The accumulators of a block live in registers only if every index into them is known at
//! compile time once the loops are unrolled, so the stores read a copy (see `block`).

mod dual;

pub use dual::gemm_dual;

use crate::matrix::{MatMut, MatRef};
use num_traits::Float;
use std::mem::MaybeUninit;

/// Rows of `C` per register block.
const MR: usize = 4;

/// Elements of a packed copy of `B` kept on the stack (32 KiB of f64: a 64×64 `B`).
const STACK_PACK: usize = 4096;

/// Products with `m·k·n` at most this many multiply-adds take [`gemm`] in
/// [`Scalar::gemm`](crate::Scalar::gemm); larger ones go to `matrixmultiply`.
///
/// Chosen by `cargo run --release -p natgrad-autodiff --example small_gemm` on an AVX-512
/// machine (where `matrixmultiply` uses its AVX-512 kernel), three runs: the direct kernel
/// wins on all the 10-20-20-3 MLP's products (1.0–1.9×, 4.6× for 3×32×20, including the
/// stride-2 views of dual matrices) and on cubes up to `64³` (1.6× at `32³`, 1.2× at `64³`),
/// and loses from `96³` on (0.94×; 0.8× at 256×64×128).
pub const SMALL_GEMM_MAX_WORK: usize = 64 * 64 * 64;

/// `C ← A B` (or `C ← C + A B` when `accumulate`) by the direct small-matrix kernel, for any
/// strides; `A` is `m×k`, `B` is `k×n`, `C` is `m×n` (panics otherwise).
///
/// Exposed so the `small_gemm` example can time it against `matrixmultiply`;
/// [`Scalar::gemm`](crate::Scalar::gemm) picks between the two by size.
pub fn gemm<T: Float>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: MatMut<'_, T>, accumulate: bool) {
    assert!(
        a.cols() == b.rows() && c.rows() == a.rows() && c.cols() == b.cols(),
        "small_gemm: shapes {}×{} · {}×{} → {}×{}",
        a.rows(),
        a.cols(),
        b.rows(),
        b.cols(),
        c.rows(),
        c.cols()
    );
    // A block row is two vector registers (AVX: eight f64 or sixteen f32, AVX-512 twice
    // that); the tail block is one.
    if std::mem::size_of::<T>() == 4 {
        dispatch::<T, 16, 8, 32, 16>(a, b, c, accumulate);
    } else {
        dispatch::<T, 8, 4, 16, 8>(a, b, c, accumulate);
    }
}

fn dispatch<T: Float, const NR: usize, const H: usize, const NR2: usize, const H2: usize>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: MatMut<'_, T>,
    accumulate: bool,
) {
    match Path::choose(b.cols(), NR2, H2, H) {
        // SAFETY: `choose` saw the CPU support each path's features.
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => unsafe { gemm_avx512::<T, NR2, H2>(a, b, c, accumulate) },
        #[cfg(target_arch = "x86_64")]
        Path::Avx512Tall => unsafe { gemm_avx512_tall::<T, NR, H>(a, b, c, accumulate) },
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => unsafe { gemm_avx2::<T, NR, H>(a, b, c, accumulate) },
        _ => gemm_impl::<T, MR, NR, H, false>(a, b, c, accumulate),
    }
}

/// The instruction set a kernel runs with.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Path {
    Avx512,
    /// AVX2's block widths with AVX-512's registers (eight rows per block); real products only.
    Avx512Tall,
    Avx2,
    Baseline,
}

impl Path {
    /// For `n` columns of `C`, with AVX-512 blocks `wide` columns wide (tails `wide_half`) and
    /// AVX2 tails `half`: the wider blocks pay only when they pad C's rows no more than the
    /// narrower ones. At n = 32, 40, 48 the AVX-512 blocks run faster (see the `small_gemm`
    /// example); on the 10-20-20-3 MLP's products a same-process A/B of the two paths was
    /// mixed (AVX-512 0.88× on 32×20×20 with `Wᵀ` and on 20×32×10, but 1.19× on 20×32×20 and
    /// 2.6× on 3×32×20), so the rule stands. Otherwise, on an AVX-512 CPU, AVX2's widths with
    /// eight-row blocks (`Avx512Tall`): 0.78–0.91× the time of the AVX2 kernel on W3's
    /// 32×20×20, 20×32×20 and 20×32×10 products, about equal on 32×10×20 (interleaved in one
    /// process, medians of 51 runs of 2000 products).
    pub(super) fn choose(n: usize, wide: usize, wide_half: usize, half: usize) -> Path {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                let pads_no_more = n.div_ceil(wide_half) * wide_half == n.div_ceil(half) * half;
                return if n >= wide && pads_no_more { Path::Avx512 } else { Path::Avx512Tall };
            }
        }
        Path::avx2_or_baseline()
    }

    fn avx2_or_baseline() -> Path {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Path::Avx2;
            }
        }
        Path::Baseline
    }

    /// For the dual kernel: AVX-512 from `n ≥ wide_half` on, padding or not. Its blocks have
    /// four rows to AVX2's two (the registers allow no more), so each packed row of `B` feeds
    /// twice the multiply-adds; in same-process A/B runs on the 10-20-20-3 MLP's dual products
    /// that outweighed the padding on every shape with `n ≥ 8` (0.66–0.93× the time), save
    /// `k = 3` (1.04×).
    pub(super) fn choose_dual(n: usize, wide_half: usize) -> Path {
        #[cfg(target_arch = "x86_64")]
        {
            if n >= wide_half && std::is_x86_feature_detected!("avx512f") {
                return Path::Avx512;
            }
        }
        Path::avx2_or_baseline()
    }
}

/// The same kernel compiled for AVX2 with fused multiply-adds, so each `NR`-wide row of a block
/// is two vector registers and a step of `l` is one instruction per register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2<T: Float, const NR: usize, const H: usize>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: MatMut<'_, T>,
    accumulate: bool,
) {
    gemm_impl::<T, MR, NR, H, true>(a, b, c, accumulate);
}

/// The same kernel compiled for AVX-512: blocks twice as wide, each row two 512-bit registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gemm_avx512<T: Float, const NR: usize, const H: usize>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: MatMut<'_, T>,
    accumulate: bool,
) {
    gemm_impl::<T, MR, NR, H, true>(a, b, c, accumulate);
}

/// AVX2's block widths compiled for AVX-512, whose 32 registers hold blocks of eight rows:
/// each packed row of `B` then feeds twice the multiply-adds, without the padding of the wide
/// blocks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gemm_avx512_tall<T: Float, const NR: usize, const H: usize>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: MatMut<'_, T>,
    accumulate: bool,
) {
    gemm_impl::<T, 8, NR, H, true>(a, b, c, accumulate);
}

/// Strides and base pointers of the three operands, with `B` row-major (column stride 1).
#[derive(Clone, Copy)]
struct Operands<T> {
    a: *const T,
    ars: isize,
    acs: isize,
    b: *const T,
    brs: isize,
    c: *mut T,
    crs: isize,
    ccs: isize,
    k: usize,
    n: usize,
    accumulate: bool,
}

#[inline(always)]
fn gemm_impl<T: Float, const MR: usize, const NR: usize, const H: usize, const FMA: bool>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: MatMut<'_, T>,
    accumulate: bool,
) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    if m == 0 || n == 0 {
        return;
    }
    // Columns rounded up to whole half-blocks; the padding is computed but never stored.
    let width = n.div_ceil(H) * H;
    // The copy lives on the stack when it fits: a heap buffer per product costs a visible share
    // of a 32×20×20 product.
    let mut stack = [MaybeUninit::<T>::uninit(); STACK_PACK];
    let mut heap: Vec<T> = Vec::new();
    let (bp, brs) = pack_b(b, width, false, &mut stack, &mut heap);
    let ops = Operands {
        a: a.as_ptr(),
        ars: a.row_stride(),
        acs: a.col_stride(),
        b: bp,
        brs,
        c: c.as_mut_ptr(),
        crs: c.row_stride(),
        ccs: c.col_stride(),
        k,
        n,
        accumulate,
    };
    // SAFETY (all blocks): rows i..i+R are inside A and C, the block's columns inside the
    // (padded) B, and `block` stores only columns below `n` into C.
    let mut i = 0;
    while i + MR <= m {
        unsafe { row_panel::<T, MR, NR, H, FMA>(&ops, i, width) };
        i += MR;
    }
    if MR > 4 && m - i >= 4 {
        unsafe { row_panel::<T, 4, NR, H, FMA>(&ops, i, width) };
        i += 4;
    }
    match m - i {
        3 => unsafe { row_panel::<T, 3, NR, H, FMA>(&ops, i, width) },
        2 => unsafe { row_panel::<T, 2, NR, H, FMA>(&ops, i, width) },
        1 => unsafe { row_panel::<T, 1, NR, H, FMA>(&ops, i, width) },
        _ => {}
    }
}

/// `B` as row-major `k × width` (column stride 1) with its row stride: in place when it already
/// is and needs no padding (unless `copy`), else a zero-padded copy into `stack`, or `heap` when
/// it does not fit (k·n copies against m·k·n multiply-adds). The pointer is valid while `b`,
/// `stack` and `heap` are.
#[inline(always)]
fn pack_b<T: Float>(
    b: MatRef<'_, T>,
    width: usize,
    copy: bool,
    stack: &mut [MaybeUninit<T>; STACK_PACK],
    heap: &mut Vec<T>,
) -> (*const T, isize) {
    let (k, n) = (b.rows(), b.cols());
    if !copy && b.col_stride() == 1 && n == width {
        return (b.as_ptr(), b.row_stride());
    }
    let dst: *mut T = if k * width <= STACK_PACK {
        stack.as_mut_ptr().cast()
    } else {
        heap.reserve_exact(k * width);
        heap.as_mut_ptr()
    };
    let (rs, cs) = (b.row_stride(), b.col_stride());
    // SAFETY: `dst` has room for k·width elements, every one written below before the
    // kernel reads it; (l, j) is inside the k×n view for l < k, j < n.
    unsafe {
        if width > n {
            // One fill of the whole buffer: zeroing only each row's padding becomes a call to
            // `memset` per row, which cost more than the copy on W3's shapes.
            for i in 0..k * width {
                dst.add(i).write(T::zero());
            }
        }
        // Walk the source along its smaller stride: along columns for a transposed view (the
        // weights of `A Wᵀ`, row stride 1, or 2 for a dual part), along rows otherwise. The
        // common strides get loops the compiler can vectorize (constant strides).
        match (rs, cs) {
            (1, _) if n >= 4 && cs.unsigned_abs() > 1 => {
                pack_transposed::<T, 1>(b.as_ptr(), cs, k, n, dst, width)
            }
            (2, _) if n >= 4 && cs.unsigned_abs() > 2 => {
                pack_transposed::<T, 2>(b.as_ptr(), cs, k, n, dst, width)
            }
            (_, 2) => pack_rows::<T, 2>(b.as_ptr(), rs, k, n, dst, width),
            _ if rs.unsigned_abs() < cs.unsigned_abs() => {
                for j in 0..n {
                    let mut src = b.as_ptr().offset(j as isize * cs);
                    let mut out = dst.add(j);
                    for _ in 0..k {
                        out.write(*src);
                        src = src.offset(rs);
                        out = out.add(width);
                    }
                }
            }
            _ => {
                for l in 0..k {
                    let src = b.as_ptr().offset(l as isize * rs);
                    let out = dst.add(l * width);
                    for j in 0..n {
                        out.add(j).write(*src.offset(j as isize * cs));
                    }
                }
            }
        }
    }
    (dst.cast_const(), width as isize)
}

/// The copy of rows with column stride `S` (`S = 2`: a dual part, every other element) into
/// rows of `width` at `dst`; the constant stride lets the compiler deinterleave whole vectors.
///
/// # Safety
/// `src + l·rs + j·S` must be readable for `l < k`, `j < n`, and `dst` writable for `k·width`
/// elements with `width ≥ n`.
#[inline(always)]
unsafe fn pack_rows<T: Float, const S: usize>(
    src: *const T,
    rs: isize,
    k: usize,
    n: usize,
    dst: *mut T,
    width: usize,
) {
    for l in 0..k {
        let (row, out) = (src.offset(l as isize * rs), dst.add(l * width));
        for j in 0..n {
            out.add(j).write(*row.add(S * j));
        }
    }
}

/// The copy of a transposed view (`B = Wᵀ`: element `(l, j)` at `src + j·cs + l·S`, `S = 2` for
/// a dual part) into rows of `width` at `dst`, in 4×4 tiles: four loads along `l` from each of
/// four columns, four contiguous stores along `j`, so the transposition happens in registers
/// instead of one scalar store per element (which cost a `32×20×20` product `A Wᵀ` ~30% over
/// `A B`; the tiles take 0.87–0.96× the time of the whole product on W3's 20-column ones).
///
/// # Safety
/// `src + j·cs + l·S` must be readable for `j < n`, `l < k`, and `dst` writable for `k·width`
/// elements with `width ≥ n`.
#[inline(always)]
unsafe fn pack_transposed<T: Float, const S: usize>(
    src: *const T,
    cs: isize,
    k: usize,
    n: usize,
    dst: *mut T,
    width: usize,
) {
    let mut j = 0;
    while j + 4 <= n {
        let col: [*const T; 4] = std::array::from_fn(|t| src.offset((j + t) as isize * cs));
        let mut l = 0;
        while l + 4 <= k {
            // (One vector load per column when the elements are contiguous.)
            let tile: [[T; 4]; 4] = std::array::from_fn(|t| {
                if S == 1 {
                    (col[t].add(l) as *const [T; 4]).read_unaligned()
                } else {
                    std::array::from_fn(|u| *col[t].add((l + u) * S))
                }
            });
            for u in 0..4 {
                let row = [tile[0][u], tile[1][u], tile[2][u], tile[3][u]];
                (dst.add((l + u) * width + j) as *mut [T; 4]).write_unaligned(row);
            }
            l += 4;
        }
        for l in l..k {
            for t in 0..4 {
                dst.add(l * width + j + t).write(*col[t].add(l * S));
            }
        }
        j += 4;
    }
    for j in j..n {
        let col = src.offset(j as isize * cs);
        for l in 0..k {
            dst.add(l * width + j).write(*col.add(l * S));
        }
    }
}

/// Rows `i0..i0+R` of `C`: full `NR`-wide blocks, then one `H`-wide block if `width` needs it.
///
/// # Safety
/// As for [`block`], for every block of the panel.
#[inline(always)]
unsafe fn row_panel<T: Float, const R: usize, const NR: usize, const H: usize, const FMA: bool>(
    ops: &Operands<T>,
    i0: usize,
    width: usize,
) {
    let mut j = 0;
    while j + NR <= width {
        block::<T, R, NR, FMA>(ops, i0, j);
        j += NR;
    }
    if j < width {
        block::<T, R, H, FMA>(ops, i0, j);
    }
}

/// One `R×W` block of `C` at `(i0, j0)`, accumulated in registers over all of `k`.
///
/// # Safety
/// Rows `i0..i0+R` of `A` (`k` columns) and of `C` must be in bounds, as must `B`'s rows
/// `0..k` at columns `j0..j0+W` through `b + l·brs`.
#[inline(always)]
unsafe fn block<T: Float, const R: usize, const W: usize, const FMA: bool>(
    ops: &Operands<T>,
    i0: usize,
    j0: usize,
) {
    let mut acc = [[T::zero(); W]; R];
    let a0 = ops.a.offset(i0 as isize * ops.ars);
    let b0 = ops.b.add(j0);
    for l in 0..ops.k {
        let brow: [T; W] = *(b0.offset(l as isize * ops.brs) as *const [T; W]);
        let al = a0.offset(l as isize * ops.acs);
        for r in 0..R {
            let x = *al.offset(r as isize * ops.ars);
            for t in 0..W {
                acc[r][t] =
                    if FMA { x.mul_add(brow[t], acc[r][t]) } else { acc[r][t] + x * brow[t] };
            }
        }
    }
    // A copy, so that the stores' run-time indices do not touch `acc` (see `store_block`).
    let out = acc;
    store_block(&out, ops.c, ops.crs, ops.ccs, i0, j0, ops.n, ops.accumulate);
}

/// Stores (or adds, with `accumulate`) an `R×W` block at `(i0, j0)` of `C`, only its columns
/// below `n`.
///
/// The stores index by run-time values (the row, the edge width), so callers pass a copy of
/// their accumulators: any such index into the accumulators themselves would keep them in
/// memory through the whole `l` loop instead of in registers.
///
/// # Safety
/// Rows `i0..i0+R` and columns `j0..min(j0+W, n)` of `C` must be in bounds.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn store_block<T: Float, const R: usize, const W: usize>(
    out: &[[T; W]; R],
    c: *mut T,
    crs: isize,
    ccs: isize,
    i0: usize,
    j0: usize,
    n: usize,
    accumulate: bool,
) {
    let w = W.min(n - j0);
    for (r, row) in out.iter().enumerate() {
        let crow = c.offset((i0 + r) as isize * crs + j0 as isize * ccs);
        if ccs == 1 && w == W {
            // A whole contiguous block row: vector stores instead of W scalar ones, which
            // would cost as much as the block's arithmetic when k is small.
            let dst = &mut *(crow as *mut [T; W]);
            if accumulate {
                for t in 0..W {
                    dst[t] = dst[t] + row[t];
                }
            } else {
                *dst = *row;
            }
        } else {
            for (t, &x) in row.iter().enumerate().take(w) {
                let dst = crow.offset(t as isize * ccs);
                *dst = if accumulate { *dst + x } else { x };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Matrix;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// The oracle: a triple loop over element accessors.
    fn naive(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Matrix<f64> {
        Matrix::from_fn(a.rows(), b.cols(), |i, j| {
            (0..a.cols()).map(|l| a.get(i, l) * b.get(l, j)).sum()
        })
    }

    fn random(rng: &mut StdRng, r: usize, c: usize) -> Matrix<f64> {
        Matrix::from_fn(r, c, |_, _| rng.random_range(-1.0..1.0))
    }

    /// Relative error against the magnitude sum, so a cancelling sum is judged fairly.
    fn check(got: f64, want: f64, scale: f64, what: &str) {
        assert!((got - want).abs() <= 1e-14 * scale.max(1e-300), "{what}: {got} vs {want}");
    }

    #[test]
    fn small_gemm_matches_triple_loop_on_all_stride_patterns() {
        let mut rng = StdRng::seed_from_u64(7);
        // 16, 24, 32 and 48 columns take the AVX-512 blocks on a CPU with them, the rest AVX2.
        let dims = [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 20, 24, 32, 48];
        for trial in 0..600 {
            let m = dims[rng.random_range(0..dims.len())];
            let k = dims[rng.random_range(0..dims.len())];
            let n = dims[rng.random_range(0..dims.len())];
            let (ta, tb, tc) = (trial & 1 == 1, trial & 2 == 2, trial & 4 == 4);
            let accumulate = trial & 8 == 8;
            let am = if ta { random(&mut rng, k, m) } else { random(&mut rng, m, k) };
            let bm = if tb { random(&mut rng, n, k) } else { random(&mut rng, k, n) };
            let av = if ta { am.as_ref().t() } else { am.as_ref() };
            let bv = if tb { bm.as_ref().t() } else { bm.as_ref() };
            let c0 = if tc { random(&mut rng, n, m) } else { random(&mut rng, m, n) };
            // A NaN in C must be overwritten, not propagated, when not accumulating.
            let mut c = c0.map(|x| if accumulate { x } else { f64::NAN });
            let cv = if tc { c.as_mut().t() } else { c.as_mut() };
            gemm(av, bv, cv, accumulate);
            let want = naive(av, bv);
            let abs = |x: MatRef<'_, f64>| x.to_matrix().map(f64::abs);
            let scale = naive(abs(av).as_ref(), abs(bv).as_ref());
            for i in 0..m {
                for j in 0..n {
                    let (ci, c0i) =
                        if tc { (c[(j, i)], c0[(j, i)]) } else { (c[(i, j)], c0[(i, j)]) };
                    let (w, s) = if accumulate {
                        (c0i + want[(i, j)], c0i.abs() + scale[(i, j)])
                    } else {
                        (want[(i, j)], scale[(i, j)])
                    };
                    check(ci, w, s, &format!("{m}×{k}×{n} t=({ta},{tb},{tc}) acc={accumulate}"));
                }
            }
        }
    }

    /// Every kernel the CPU can run, called directly (`gemm` picks one per shape, so on an
    /// AVX-512 CPU it never runs the AVX2 one): row counts around the 4- and 8-row blocks,
    /// widths around the 4- and 8-column ones, transposed and strided operands.
    #[test]
    fn every_kernel_matches_the_triple_loop() {
        type Kernel = fn(MatRef<'_, f64>, MatRef<'_, f64>, MatMut<'_, f64>, bool);
        let mut kernels: Vec<(&str, Kernel)> =
            vec![("baseline", |a, b, c, acc| gemm_impl::<f64, MR, 8, 4, false>(a, b, c, acc))];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has AVX2 and FMA.
                kernels
                    .push(("avx2", |a, b, c, acc| unsafe { gemm_avx2::<f64, 8, 4>(a, b, c, acc) }));
            }
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                kernels.push(("avx512", |a, b, c, acc| unsafe {
                    gemm_avx512::<f64, 16, 8>(a, b, c, acc)
                }));
                kernels.push(("avx512 tall", |a, b, c, acc| unsafe {
                    gemm_avx512_tall::<f64, 8, 4>(a, b, c, acc)
                }));
            }
        }
        let mut rng = StdRng::seed_from_u64(17);
        for (name, kernel) in kernels {
            for (trial, m) in [1usize, 3, 4, 5, 7, 8, 9, 12, 13, 20, 32].into_iter().enumerate() {
                for (k, n) in
                    [(1usize, 1usize), (3, 4), (10, 20), (20, 3), (32, 10), (5, 24), (7, 33)]
                {
                    let (ta, tb, accumulate) =
                        (trial % 2 == 1, (trial + n) % 2 == 1, trial % 3 == 0);
                    let am = if ta { random(&mut rng, k, m) } else { random(&mut rng, m, k) };
                    let bm = if tb { random(&mut rng, n, k) } else { random(&mut rng, k, n) };
                    let av = if ta { am.as_ref().t() } else { am.as_ref() };
                    let bv = if tb { bm.as_ref().t() } else { bm.as_ref() };
                    let c0 = random(&mut rng, m, n);
                    let mut c = if accumulate { c0.clone() } else { c0.map(|_| f64::NAN) };
                    kernel(av, bv, c.as_mut(), accumulate);
                    let want = naive(av, bv);
                    for i in 0..m {
                        for j in 0..n {
                            let w = want[(i, j)] + if accumulate { c0[(i, j)] } else { 0.0 };
                            let what = format!("{name} {m}×{k}×{n} t=({ta},{tb}) acc={accumulate}");
                            check(c[(i, j)], w, k as f64 + 1.0, &what);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_packed_b_too_large_for_the_stack_takes_the_heap() {
        // 70×72 padded elements of a transposed B exceed STACK_PACK.
        let mut rng = StdRng::seed_from_u64(11);
        let (m, k, n) = (5usize, 70usize, 70usize);
        assert!(k * n.div_ceil(8) * 8 > STACK_PACK);
        let a = random(&mut rng, m, k);
        let bt = random(&mut rng, n, k);
        let mut c = Matrix::zeros(m, n);
        gemm(a.as_ref(), bt.as_ref().t(), c.as_mut(), false);
        let want = naive(a.as_ref(), bt.as_ref().t());
        for (x, y) in c.data().iter().zip(want.data()) {
            check(*x, *y, k as f64, "heap-packed B");
        }
    }

    #[test]
    fn small_gemm_f32_matches_f64() {
        let mut rng = StdRng::seed_from_u64(3);
        let (m, k, n) = (9, 11, 13);
        let a = random(&mut rng, m, k);
        let b = random(&mut rng, k, n);
        let (a32, b32) = (a.map(|x| x as f32), b.map(|x| x as f32));
        let mut c32 = Matrix::<f32>::zeros(m, n);
        gemm(a32.as_ref(), b32.as_ref(), c32.as_mut(), false);
        let want = naive(a32.map(f64::from).as_ref(), b32.map(f64::from).as_ref());
        for (x, y) in c32.data().iter().zip(want.data()) {
            assert!((f64::from(*x) - y).abs() <= 1e-5 * k as f64, "{x} vs {y}");
        }
    }
}
