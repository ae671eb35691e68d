//! The row-wise softmax and its products, written once: the tape's softmax op (forward value,
//! reverse and tangent rules), the categorical loss on logits and the softmax activation of
//! the curvature crate all call these.
//!
//! Each function works on a row-major slice with `cols` columns, row by row:
//!
//! - [`softmax_rows`]: `p_j = e^{z_j − m} / Σ_k e^{z_k − m}` with `m = max_k z_k` (shifted so
//!   that no exponential overflows), the exponentials of the whole shifted slice by one
//!   [`Scalar::exp_slice`] (vectorized for `f64` and `f32`);
//! - [`softmax_jacobian_rows`]: `J u = p ⊙ (u − pᵀu)`, the product with the softmax Jacobian
//!   `J = diag(p) − p pᵀ` (symmetric, so also `Jᵀ g` and the categorical `F_R u`);
//! - [`softmax_second_rows`]: `ṗ ⊙ (c − cᵀp) − p (cᵀṗ)` with `ṗ = J u`, the derivative along
//!   `u` of `Jᵀ c` (the activation-curvature term of Section 8.1.2).
//!
//! Every sum runs over a row in order, starting from `−0` (the neutral element of `+`, as
//! `Iterator::sum` of `f64`).

use crate::scalar::Scalar;
use smallvec::SmallVec;

/// `a · b`, summed in order from `−0`.
pub fn dot<T: Scalar>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(-T::zero(), |s, (&x, &y)| s + x * y)
}

fn check(name: &str, len: usize, other: usize) {
    assert_eq!(len, other, "{name}: slices of {len} and {other} elements");
}

/// `out ← softmax` of every row of `z` (`cols` columns, row-major). Panics if the lengths
/// differ or `cols` does not divide them.
pub fn softmax_rows<T: Scalar>(z: &[T], cols: usize, out: &mut [T]) {
    check("softmax_rows", z.len(), out.len());
    if z.is_empty() {
        return;
    }
    assert!(
        cols > 0 && z.len().is_multiple_of(cols),
        "softmax_rows: {} elements in rows of {cols}",
        z.len()
    );
    // On the stack for a small batch of few classes (no allocation per product).
    let mut shifted: SmallVec<[T; 256]> = z.into();
    for row in shifted.chunks_mut(cols) {
        let max = row.iter().copied().fold(T::neg_infinity(), T::max);
        row.iter_mut().for_each(|v| *v = *v - max);
    }
    T::exp_slice(&shifted, out);
    for p in out.chunks_mut(cols) {
        let total = p.iter().fold(-T::zero(), |s, &x| s + x);
        p.iter_mut().for_each(|pk| *pk = *pk / total);
    }
}

/// The softmax of one row, allocated.
pub fn softmax<T: Scalar>(z: &[T]) -> Vec<T> {
    let mut p = vec![T::zero(); z.len()];
    softmax_rows(z, z.len(), &mut p);
    p
}

/// `p ← p ⊙ (u − pᵀu)` per row, in place, for `p` a softmax (rows of `cols` columns): the
/// softmax Jacobian `diag(p) − p pᵀ` times `u`. In place because the categorical loss forms
/// `p` in its output buffer; a caller that keeps `p` copies it first. Panics if the lengths
/// differ.
pub fn softmax_jacobian_rows<T: Scalar>(p: &mut [T], u: &[T], cols: usize) {
    check("softmax_jacobian_rows", p.len(), u.len());
    let cols = cols.max(1);
    for (p, u) in p.chunks_mut(cols).zip(u.chunks(cols)) {
        let pu = dot(p, u);
        for (pk, &uk) in p.iter_mut().zip(u) {
            *pk = *pk * (uk - pu);
        }
    }
}

/// `out ← ṗ ⊙ (c − cᵀp) − p (cᵀṗ)` per row, with `ṗ = p ⊙ (u − pᵀu)`: the derivative along
/// `u` of `Jᵀ c = p ⊙ (c − cᵀp)`, for `p` a softmax. Panics if the lengths differ.
pub fn softmax_second_rows<T: Scalar>(p: &[T], c: &[T], u: &[T], cols: usize, out: &mut [T]) {
    check("softmax_second_rows", p.len(), c.len());
    check("softmax_second_rows", p.len(), u.len());
    check("softmax_second_rows", p.len(), out.len());
    let cols = cols.max(1);
    let mut p_dot: SmallVec<[T; 64]> = SmallVec::from_elem(T::zero(), cols);
    let rows = p.chunks(cols).zip(c.chunks(cols)).zip(u.chunks(cols)).zip(out.chunks_mut(cols));
    for (((p, c), u), out) in rows {
        let p_dot = &mut p_dot[..p.len()];
        p_dot.copy_from_slice(p);
        softmax_jacobian_rows(p_dot, u, p.len());
        let (c_p, c_p_dot) = (dot(c, p), dot(c, p_dot));
        for k in 0..p.len() {
            out[k] = p_dot[k] * (c[k] - c_p) - p[k] * c_p_dot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dual;

    /// Logits with a spread of magnitudes, and rows that would overflow unshifted.
    fn logits() -> Vec<f64> {
        let mut z: Vec<f64> = (0..5 * 7).map(|i| ((i * 37) % 29) as f64 / 3.0 - 4.0).collect();
        z[7..14].iter_mut().for_each(|v| *v += 800.0);
        z
    }

    /// Against the per-element libm formula in long-hand (max, exponentials, one division
    /// each): within 4 ulp (the vectorized `exp` is within 1 ulp of libm's, and the sum and the
    /// division add at most a few roundings more); rows sum to 1, and no row overflows.
    #[test]
    fn softmax_rows_matches_the_libm_formula() {
        let (z, cols) = (logits(), 7);
        let mut p = vec![0.0; z.len()];
        softmax_rows(&z, cols, &mut p);
        for (r, row) in z.chunks(cols).enumerate() {
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
            let total: f64 = e.iter().sum();
            for (k, ek) in e.iter().enumerate() {
                let (got, want) = (p[r * cols + k], ek / total);
                assert!(
                    (got - want).abs() <= 4.0 * f64::EPSILON * want,
                    "[{r}, {k}] {got} vs {want}"
                );
            }
            let sum: f64 = p[r * cols..(r + 1) * cols].iter().sum();
            assert!((sum - 1.0).abs() < 1e-15, "row {r} sums to {sum}");
        }
        assert_eq!(softmax(&z[..cols]), p[..cols].to_vec());
    }

    /// `J u` and the second product against forward mode: the tangent of `softmax(z + t u)` is
    /// `J u` (exact, dual numbers), and the tangent of `Jᵀ c` along `u` is the second product.
    #[test]
    fn the_products_are_the_derivatives_of_the_softmax() {
        let (z, cols) = (logits(), 7);
        let u: Vec<f64> = (0..z.len()).map(|i| ((i * 11) % 7) as f64 / 5.0 - 0.6).collect();
        let c: Vec<f64> = (0..z.len()).map(|i| ((i * 5) % 9) as f64 / 4.0 - 1.0).collect();
        let zu: Vec<Dual<f64>> = z.iter().zip(&u).map(|(&v, &t)| Dual::new(v, t)).collect();
        let mut pd = vec![Dual::new(0.0, 0.0); z.len()];
        softmax_rows(&zu, cols, &mut pd);
        let p: Vec<f64> = pd.iter().map(|d| d.re).collect();
        let mut ju = p.clone();
        softmax_jacobian_rows(&mut ju, &u, cols);
        for k in 0..z.len() {
            let want = pd[k].eps;
            assert!(
                (ju[k] - want).abs() <= 1e-14 * (1.0 + want.abs()),
                "J u [{k}]: {} vs {want}",
                ju[k]
            );
        }
        // d/dt of p ⊙ (c − cᵀp) at p = softmax(z + t u), written out on the dual numbers.
        let mut jc = vec![Dual::new(0.0, 0.0); z.len()];
        for r in 0..z.len() / cols {
            let row = r * cols..(r + 1) * cols;
            let cp = row.clone().fold(Dual::new(0.0, 0.0), |s, j| s + pd[j] * Dual::new(c[j], 0.0));
            for k in row {
                jc[k] = pd[k] * (Dual::new(c[k], 0.0) - cp);
            }
        }
        let mut second = vec![0.0; z.len()];
        softmax_second_rows(&p, &c, &u, cols, &mut second);
        for k in 0..z.len() {
            let want = jc[k].eps;
            assert!(
                (second[k] - want).abs() <= 1e-14 * (1.0 + want.abs()),
                "second [{k}]: {} vs {want}",
                second[k]
            );
        }
    }
}
