//! Eigenpairs of a symmetric tridiagonal matrix by the implicit QL method with Wilkinson shifts:
//! `O(m²)` for the values and `O(m³)` with vectors, a few sweeps per eigenvalue. Lanczos and
//! SLQ solve one such `m×m` problem per run (the dense Jacobi solver is far slower there).

use crate::error::{CurvatureError, Result};
use autodiff::Matrix;

/// Eigenvalues (ascending) and orthonormal eigenvectors (columns, same order) of the symmetric
/// tridiagonal matrix with diagonal `alpha` and off-diagonal `beta` (`beta.len() ≥ m − 1`;
/// entries past `m − 1` are ignored).
pub(crate) fn tridiagonal_eigen(alpha: &[f64], beta: &[f64]) -> Result<(Vec<f64>, Matrix<f64>)> {
    let n = alpha.len();
    let mut d = alpha.to_vec();
    // e[i] couples i and i+1; e[n-1] = 0 is workspace.
    let mut e: Vec<f64> = (0..n).map(|i| if i + 1 < n { beta[i] } else { 0.0 }).collect();
    let mut z = Matrix::from_fn(n, n, |i, j| f64::from(i == j));
    for l in 0..n {
        let mut iterations = 0;
        loop {
            // The first negligible coupling at or after l splits off an unreduced block l..=m.
            let mut m = l;
            while m + 1 < n && e[m].abs() > f64::EPSILON * (d[m].abs() + d[m + 1].abs()) {
                m += 1;
            }
            if m == l {
                break;
            }
            iterations += 1;
            if iterations > 60 {
                return Err(CurvatureError::invalid(
                    "tridiagonal_eigen",
                    format!("no convergence for eigenvalue {l} of a {n}×{n} tridiagonal"),
                ));
            }
            // Wilkinson shift from the leading 2×2 block, folded into g.
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0_f64, 1.0_f64, 0.0_f64);
            let mut deflated = false;
            // Chase the bulge from the bottom of the block up with Givens rotations.
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                for k in 0..n {
                    let (zi, zi1) = (z[(k, i)], z[(k, i + 1)]);
                    z[(k, i + 1)] = s * zi + c * zi1;
                    z[(k, i)] = c * zi - s * zi1;
                }
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[i].total_cmp(&d[j]));
    let values = order.iter().map(|&i| d[i]).collect();
    let vectors = Matrix::from_fn(n, n, |i, k| z[(i, order[k])]);
    Ok((values, vectors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use autodiff::linalg::symmetric_eigen;

    #[test]
    fn matches_the_dense_jacobi_solver_and_is_an_eigen_decomposition() {
        for (m, seed) in [(1, 0.0), (2, 1.0), (7, 2.0), (25, 3.0)] {
            let alpha: Vec<f64> = (0..m).map(|i| (1.7 * i as f64 + seed).sin() * 3.0).collect();
            // One exactly zero coupling (a split) when m is large enough.
            let beta: Vec<f64> =
                (0..m).map(|i| if i == 4 { 0.0 } else { (0.9 * i as f64 + seed).cos() }).collect();
            let t = Matrix::from_fn(m, m, |i, j| match i.abs_diff(j) {
                0 => alpha[i],
                1 => beta[i.min(j)],
                _ => 0.0,
            });
            let (values, vectors) = tridiagonal_eigen(&alpha, &beta).unwrap();
            let reference = symmetric_eigen(&t).unwrap();
            for (a, b) in values.iter().zip(&reference.values) {
                assert!((a - b).abs() < 1e-12, "m={m}: {values:?} vs {:?}", reference.values);
            }
            for k in 0..m {
                for i in 0..m {
                    let tv: f64 = (0..m).map(|j| t[(i, j)] * vectors[(j, k)]).sum();
                    assert!((tv - values[k] * vectors[(i, k)]).abs() < 1e-12, "T v ≠ λ v");
                }
                for l in 0..m {
                    let dot: f64 = (0..m).map(|i| vectors[(i, k)] * vectors[(i, l)]).sum();
                    assert!((dot - f64::from(k == l)).abs() < 1e-12, "not orthonormal");
                }
            }
        }
    }
}
