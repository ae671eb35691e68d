//! Spectra and stochastic estimators of any symmetric [`LinearOperator`]: Lanczos eigenpairs
//! ([`lanczos`](mod@lanczos)), stochastic Lanczos quadrature spectral densities ([`slq`]), Hutchinson and
//! Hutch++ traces ([`trace`]) and Hutchinson diagonals ([`diagonal`]). What PyHessian and
//! curvlinops compute, here for every curvature matrix of the paper (`H`, `G`, `F`, the MC
//! Fisher, `F̄`, the eqn 6 residual) and every block restriction, through products only.
//!
//! Every estimator is seeded (`u64`) and draws Rademacher probes (entries ±1, `E[u uᵀ] = I`);
//! the same seed gives the same probes in every estimator, so Hutchinson's trace and SLQ's
//! `tr f(A)` for a polynomial `f` of low degree agree to round-off (Gauss quadrature is exact).
//!
//! # Example: the top of a network's Hessian
//! Run the estimators on an operator of a recorded pass: [`Problem::at`](crate::Problem::at)
//! records the forward pass at θ once, and its [`hessian`](crate::ForwardPass::hessian) (or
//! [`ggn`](crate::ForwardPass::ggn), [`fisher`](crate::ForwardPass::fisher), …) is a symmetric
//! [`LinearOperator`] whose products all reuse it.
//! ```
//! use curvature::loss::SoftmaxCrossEntropy;
//! use curvature::spectra::{lanczos, LanczosParams, Which};
//! use curvature::{Activation, Mlp, Problem};
//! use autodiff::Matrix;
//!
//! let mlp = Mlp::new(&[3, 5, 3], &[Activation::Tanh, Activation::Identity])?;
//! let x = Matrix::from_fn(6, 3, |i, j| ((i * 3 + j) as f64 * 0.7).sin());
//! let y = Matrix::from_fn(6, 3, |i, j| f64::from((i + 1) % 3 == j));
//! let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y)?;
//! let theta: Vec<f64> = (0..mlp.num_params()).map(|k| (k as f64 * 1.3).cos()).collect();
//!
//! let pass = problem.at(&theta)?;
//! let top = lanczos(&pass.hessian(), &LanczosParams::new(3, Which::LargestAlgebraic))?;
//! let bottom = lanczos(&pass.hessian(), &LanczosParams::new(1, Which::SmallestAlgebraic))?;
//! assert!(top.values[0] >= top.values[1] && top.values[1] >= top.values[2]);
//! assert!(bottom.values[0] <= top.values[2]);
//! // Each Ritz pair comes with its residual ‖H x − θ x‖ (how close it is to an eigenpair).
//! assert_eq!(top.residual_norms.len(), 3);
//! # Ok::<(), curvature::CurvatureError>(())
//! ```
//!
//! # Example: any symmetric operator
//! ```
//! use curvature::spectra::{hutchinson_trace, lanczos, LanczosParams, Which};
//! use autodiff::Matrix;
//!
//! let a = Matrix::from_fn(6, 6, |i, j| if i == j { i as f64 - 1.0 } else { 0.1 });
//! let top = lanczos(&a, &LanczosParams::new(2, Which::LargestAlgebraic).steps(6))?;
//! let bottom = lanczos(&a, &LanczosParams::new(1, Which::SmallestAlgebraic).steps(6))?;
//! assert!(top.values[0] > top.values[1] && bottom.values[0] < 0.0); // one negative eigenvalue
//! let trace = hutchinson_trace(&a, 100, 0)?;
//! assert!((trace.estimate - 9.0).abs() < 1.0);
//! # Ok::<(), curvature::CurvatureError>(())
//! ```

pub mod diagonal;
pub mod lanczos;
pub mod slq;
pub mod trace;
mod tridiagonal;

pub use diagonal::estimate_diagonal;
pub use lanczos::{lanczos, Lanczos, LanczosParams, Which};
pub use slq::{spectral_density, SpectralDensity};
pub use trace::{hutch_plus_plus_trace, hutchinson_trace, TraceEstimate};

use crate::error::{CurvatureError, Result};
use crate::operator::LinearOperator;
use rand::{rngs::StdRng, Rng};

/// Fills `u` with a Rademacher probe (entries ±1, each with probability ½).
pub(crate) fn rademacher(rng: &mut StdRng, u: &mut [f64]) {
    for x in u.iter_mut() {
        *x = if rng.random::<bool>() { 1.0 } else { -1.0 };
    }
}

/// Errors unless the operator has at least one dimension.
pub(crate) fn check_nonempty(op: &str, a: &dyn LinearOperator) -> Result<usize> {
    let n = a.dim();
    if n == 0 {
        return Err(CurvatureError::invalid(op, "the operator has dimension 0"));
    }
    Ok(n)
}

/// `aᵀ b` with four accumulators (so the loop vectorizes; the sum order differs from a plain
/// left-to-right sum only by round-off).
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4.remainder().iter().zip(b4.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a4.zip(b4) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

pub(crate) fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// Elements per block of the orthogonalization: a block of `w` stays in L1 while every basis
/// vector streams past it once.
const BLOCK: usize = 1024;

/// One classical Gram-Schmidt pass `w ← w − Q (Qᵀ w)`, each basis vector read twice in all.
fn project_out(basis: &[Vec<f64>], w: &mut [f64], coefficients: &mut Vec<f64>) {
    coefficients.clear();
    coefficients.resize(basis.len(), 0.0);
    for (start, block) in w.chunks(BLOCK).enumerate().map(|(b, c)| (b * BLOCK, c)) {
        let end = start + block.len();
        // Four basis vectors at a time share each load of w.
        let mut quads = basis.chunks_exact(4);
        let mut c = 0;
        for q in quads.by_ref() {
            let (q0, q1, q2, q3) =
                (&q[0][start..end], &q[1][start..end], &q[2][start..end], &q[3][start..end]);
            let mut acc = [0.0; 4];
            for e in 0..block.len() {
                let x = block[e];
                acc[0] += q0[e] * x;
                acc[1] += q1[e] * x;
                acc[2] += q2[e] * x;
                acc[3] += q3[e] * x;
            }
            for l in 0..4 {
                coefficients[c + l] += acc[l];
            }
            c += 4;
        }
        for q in quads.remainder() {
            coefficients[c] += dot(&q[start..end], block);
            c += 1;
        }
    }
    for (start, block) in w.chunks_mut(BLOCK).enumerate().map(|(b, c)| (b * BLOCK, c)) {
        let end = start + block.len();
        let mut quads = basis.chunks_exact(4).zip(coefficients.chunks_exact(4));
        for (q, h) in quads.by_ref() {
            let (q0, q1, q2, q3) =
                (&q[0][start..end], &q[1][start..end], &q[2][start..end], &q[3][start..end]);
            for e in 0..block.len() {
                block[e] -= h[0] * q0[e] + h[1] * q1[e] + h[2] * q2[e] + h[3] * q3[e];
            }
        }
        let done = 4 * (basis.len() / 4);
        for (q, h) in basis[done..].iter().zip(&coefficients[done..]) {
            for (x, y) in block.iter_mut().zip(&q[start..end]) {
                *x -= h * y;
            }
        }
    }
}

/// Orthogonalizes `w` against an orthonormal set by classical Gram-Schmidt, repeated once when
/// the first pass removed much of `w` (`‖w'‖ < ‖w‖/√2`): Kahan and Parlett's "twice is enough",
/// which leaves `w` orthogonal to the set to round-off. In Lanczos the first pass only removes
/// round-off unless the Krylov space is (nearly) invariant, so one pass is the usual cost.
pub(crate) fn orthogonalize_twice(basis: &[Vec<f64>], w: &mut [f64]) {
    let mut coefficients = Vec::with_capacity(basis.len());
    let before = norm(w);
    project_out(basis, w, &mut coefficients);
    if norm(w) < std::f64::consts::FRAC_1_SQRT_2 * before {
        project_out(basis, w, &mut coefficients);
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Operators with a known spectrum, cheap to apply, for the estimators' rate tests.
    use crate::error::Result;
    use crate::operator::FnOperator;

    /// `A = Q diag(λ) Qᵀ` with `Q = H₁ H₂` two Householder reflections `I − 2 u uᵀ` (unit `u`
    /// from a fixed formula), so `A` is dense and a product costs `O(n)`; its eigenvalues are `λ`.
    /// Returns the operator and its dense matrix.
    pub fn rotated_diagonal(
        lambda: Vec<f64>,
    ) -> (impl crate::LinearOperator, autodiff::Matrix<f64>) {
        let n = lambda.len();
        let unit = |phase: f64| {
            let u: Vec<f64> = (0..n).map(|i| (1.3 * i as f64 + phase).sin() + 0.2).collect();
            let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt();
            u.into_iter().map(|x| x / norm).collect::<Vec<f64>>()
        };
        let (u1, u2) = (unit(0.4), unit(2.1));
        let reflect = |u: &[f64], v: &mut [f64]| {
            let c = 2.0 * super::dot(u, v);
            for (x, y) in v.iter_mut().zip(u) {
                *x -= c * y;
            }
        };
        // A v = H₁ H₂ Λ H₂ H₁ v.
        let apply = move |v: &[f64]| -> Result<Vec<f64>> {
            let mut w = v.to_vec();
            reflect(&u1, &mut w);
            reflect(&u2, &mut w);
            for (x, l) in w.iter_mut().zip(&lambda) {
                *x *= l;
            }
            reflect(&u2, &mut w);
            reflect(&u1, &mut w);
            Ok(w)
        };
        let op = FnOperator::new(n, apply).symmetric();
        let a = crate::LinearOperator::to_dense(&op).unwrap();
        (op, a)
    }

    /// Root mean square of `errors`.
    pub fn rms(errors: &[f64]) -> f64 {
        (errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt()
    }

    /// Least-squares slope of `log y` on `log x`.
    pub fn log_log_slope(points: &[(f64, f64)]) -> f64 {
        let pts: Vec<(f64, f64)> = points.iter().map(|(x, y)| (x.ln(), y.ln())).collect();
        let n = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
        let sxx: f64 = pts.iter().map(|(x, _)| (x - mx).powi(2)).sum();
        sxy / sxx
    }
}

#[cfg(test)]
mod tests;
