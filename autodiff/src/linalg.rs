//! Small dense linear algebra on `Matrix<f64>`: Cholesky, solves, a symmetric eigen
//! decomposition, and products.
//!
//! It lives in the lowest crate because both `curvature` (PSD checks, dense curvature) and
//! `optim` (dense natural-gradient steps, the Section 14 theory) need it. It is written for the
//! sizes a researcher materializes densely (up to a few thousand), not as a LAPACK replacement.

use crate::error::{AutodiffError, Result};
use crate::matrix::{Matrix, Shape};
use crate::scalar::Scalar;

fn require_square(op: &str, a: &Matrix<f64>) -> Result<usize> {
    if a.rows() != a.cols() {
        return Err(AutodiffError::shape(op, a.shape(), Shape::new(a.rows(), a.rows())));
    }
    Ok(a.rows())
}

/// `A B` through the crate's GEMM kernel; errors on mismatched inner dimensions.
pub fn matmul(a: &Matrix<f64>, b: &Matrix<f64>) -> Result<Matrix<f64>> {
    if a.cols() != b.rows() {
        return Err(AutodiffError::shape("linalg::matmul", a.shape(), b.shape()));
    }
    let mut c = Matrix::zeros(a.rows(), b.cols());
    f64::gemm(a.as_ref(), b.as_ref(), c.as_mut(), false);
    Ok(c)
}

/// `A v` for a vector `v`.
pub fn matvec(a: &Matrix<f64>, v: &[f64]) -> Result<Vec<f64>> {
    if a.cols() != v.len() {
        return Err(AutodiffError::shape("linalg::matvec", a.shape(), Shape::new(v.len(), 1)));
    }
    Ok((0..a.rows()).map(|i| dot(a.row(i), v)).collect())
}

/// `⟨a, b⟩`.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The Euclidean norm `‖a‖`.
pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// The `n×n` identity.
pub fn identity(n: usize) -> Matrix<f64> {
    Matrix::from_fn(n, n, |i, j| if i == j { 1.0 } else { 0.0 })
}

/// The lower-triangular Cholesky factor `L` with `A = L Lᵀ`.
///
/// Errors with [`AutodiffError::InvalidArgument`] if `A` is not square or not (numerically)
/// positive definite; the message names the pivot that failed.
pub fn cholesky(a: &Matrix<f64>) -> Result<Matrix<f64>> {
    let n = require_square("linalg::cholesky", a)?;
    let mut l = Matrix::zeros(n, n);
    for j in 0..n {
        let mut d = a[(j, j)];
        for k in 0..j {
            d -= l[(j, k)] * l[(j, k)];
        }
        if !(d > 0.0 && d.is_finite()) {
            return Err(AutodiffError::invalid(
                "linalg::cholesky",
                format!("matrix is not positive definite (pivot {j} is {d:e})"),
            ));
        }
        let d = d.sqrt();
        l[(j, j)] = d;
        for i in j + 1..n {
            let mut s = a[(i, j)];
            for k in 0..j {
                s -= l[(i, k)] * l[(j, k)];
            }
            l[(i, j)] = s / d;
        }
    }
    Ok(l)
}

/// Solves `A x = b` for symmetric positive definite `A` by Cholesky.
pub fn cholesky_solve(a: &Matrix<f64>, b: &[f64]) -> Result<Vec<f64>> {
    let l = cholesky(a)?;
    if b.len() != l.rows() {
        return Err(AutodiffError::shape(
            "linalg::cholesky_solve",
            a.shape(),
            Shape::new(b.len(), 1),
        ));
    }
    let n = l.rows();
    // Forward substitution L y = b, then back substitution Lᵀ x = y.
    let mut x = b.to_vec();
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[(i, k)] * x[k]).sum();
        x[i] = (x[i] - s) / l[(i, i)];
    }
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[(k, i)] * x[k]).sum();
        x[i] = (x[i] - s) / l[(i, i)];
    }
    Ok(x)
}

/// A symmetric eigen decomposition `A = V diag(λ) Vᵀ`, eigenvalues ascending.
#[derive(Clone, Debug)]
pub struct SymmetricEigen {
    /// Eigenvalues `λ_1 ≤ … ≤ λ_n`.
    pub values: Vec<f64>,
    /// Orthonormal eigenvectors as the columns of `V`, in the order of `values`.
    pub vectors: Matrix<f64>,
}

impl SymmetricEigen {
    /// `V f(Λ) Vᵀ`: a spectral function of the matrix (inverse, square root, powers).
    pub fn reconstruct_with(&self, f: impl Fn(f64) -> f64) -> Matrix<f64> {
        let n = self.values.len();
        let v = &self.vectors;
        let fl: Vec<f64> = self.values.iter().map(|&l| f(l)).collect();
        Matrix::from_fn(n, n, |i, j| (0..n).map(|k| v[(i, k)] * fl[k] * v[(j, k)]).sum())
    }
}

/// Eigen decomposition of a symmetric matrix by cyclic Jacobi rotations.
///
/// Accurate to a few ulps of `‖A‖` for the small dense matrices it is meant for. Only the
/// lower triangle's symmetry is assumed, not checked: the input is symmetrized as `(A + Aᵀ)/2`.
pub fn symmetric_eigen(a: &Matrix<f64>) -> Result<SymmetricEigen> {
    let n = require_square("linalg::symmetric_eigen", a)?;
    let mut m = Matrix::from_fn(n, n, |i, j| 0.5 * (a[(i, j)] + a[(j, i)]));
    if m.data().iter().any(|x| !x.is_finite()) {
        return Err(AutodiffError::invalid(
            "linalg::symmetric_eigen",
            "matrix has non-finite entries",
        ));
    }
    let mut v = identity(n);
    for sweep in 0..100 {
        let off: f64 =
            (0..n).flat_map(|i| (0..i).map(move |j| (i, j))).map(|(i, j)| m[(i, j)].powi(2)).sum();
        let total: f64 = m.data().iter().map(|x| x * x).sum();
        if off <= f64::EPSILON.powi(2) * total * 1e-2 || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[(p, q)];
                // An entry below the rounding of both diagonal entries is set to zero (after the
                // first sweeps, as in the classic cyclic Jacobi): rotating it changes only the
                // rounding, and without this the off-diagonal mass stalls at round-off and every
                // call ran all 100 sweeps.
                let g = 100.0 * apq.abs();
                let (app, aqq) = (m[(p, p)].abs(), m[(q, q)].abs());
                if sweep > 3 && app + g == app && aqq + g == aqq {
                    m[(p, q)] = 0.0;
                    m[(q, p)] = 0.0;
                    continue;
                }
                if apq == 0.0 {
                    continue;
                }
                // Rotation angle that zeroes m[p][q] (stable form of tan(2φ) = 2apq/(aqq-app)).
                let theta = (m[(q, q)] - m[(p, p)]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[(k, p)], m[(k, q)]);
                    m[(k, p)] = c * mkp - s * mkq;
                    m[(k, q)] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[(p, k)], m[(q, k)]);
                    m[(p, k)] = c * mpk - s * mqk;
                    m[(q, k)] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[(k, p)], v[(k, q)]);
                    v[(k, p)] = c * vkp - s * vkq;
                    v[(k, q)] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[(i, i)].total_cmp(&m[(j, j)]));
    let values = order.iter().map(|&i| m[(i, i)]).collect();
    let vectors = Matrix::from_fn(n, n, |i, k| v[(i, order[k])]);
    Ok(SymmetricEigen { values, vectors })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::random_matrix;
    use rand::{rngs::StdRng, SeedableRng};

    fn spd(n: usize, rng: &mut StdRng) -> Matrix<f64> {
        let x = random_matrix(n, n, rng);
        let mut a = matmul(&x, &x.transpose()).unwrap();
        for i in 0..n {
            a[(i, i)] += 0.5;
        }
        a
    }

    fn max_abs_diff(a: &Matrix<f64>, b: &Matrix<f64>) -> f64 {
        a.data().iter().zip(b.data()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn cholesky_reconstructs_and_solves() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = spd(7, &mut rng);
        let l = cholesky(&a).unwrap();
        let llt = matmul(&l, &l.transpose()).unwrap();
        assert!(max_abs_diff(&a, &llt) < 1e-12, "A ≠ L Lᵀ");
        let b: Vec<f64> = (0..7).map(|i| i as f64 - 3.0).collect();
        let x = cholesky_solve(&a, &b).unwrap();
        let ax = matvec(&a, &x).unwrap();
        for (u, w) in ax.iter().zip(&b) {
            assert!((u - w).abs() < 1e-10, "A x = {u} vs b = {w}");
        }
    }

    #[test]
    fn cholesky_rejects_indefinite_and_nonsquare() {
        let a = Matrix::from_vec(2, 2, vec![1.0, 2.0, 2.0, 1.0]).unwrap();
        assert!(matches!(cholesky(&a), Err(AutodiffError::InvalidArgument { .. })));
        let b = Matrix::<f64>::zeros(2, 3);
        assert!(matches!(cholesky(&b), Err(AutodiffError::ShapeMismatch { .. })));
    }

    #[test]
    fn symmetric_eigen_reconstructs_with_orthonormal_vectors() {
        let mut rng = StdRng::seed_from_u64(2);
        let x = random_matrix(9, 9, &mut rng);
        let a = Matrix::from_fn(9, 9, |i, j| x[(i, j)] + x[(j, i)]);
        let e = symmetric_eigen(&a).unwrap();
        assert!(max_abs_diff(&a, &e.reconstruct_with(|l| l)) < 1e-12);
        let vtv = matmul(&e.vectors.transpose(), &e.vectors).unwrap();
        assert!(max_abs_diff(&vtv, &identity(9)) < 1e-12);
        assert!(e.values.windows(2).all(|w| w[0] <= w[1]));
        // Closed form: [[2, 1], [1, 2]] has eigenvalues 1 and 3.
        let b = Matrix::from_vec(2, 2, vec![2.0, 1.0, 1.0, 2.0]).unwrap();
        let eb = symmetric_eigen(&b).unwrap();
        assert!((eb.values[0] - 1.0).abs() < 1e-15 && (eb.values[1] - 3.0).abs() < 1e-15);
    }
}
