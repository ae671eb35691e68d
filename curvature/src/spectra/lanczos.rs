//! The Lanczos method with full reorthogonalization: extreme eigenpairs of a symmetric operator
//! from `m` products, `A Q_m = Q_m T_m + β_m q_{m+1} e_mᵀ`, the eigenpairs `(θ, s)` of the small
//! tridiagonal `T_m` giving Ritz pairs `(θ, Q_m s)` with residual `‖A x − θ x‖ = |β_m s_m|`.
//!
//! Every new Lanczos vector is orthogonalized against all earlier ones twice, so the basis stays
//! orthonormal to round-off and no spurious copies of converged eigenvalues appear (the price:
//! `O(m² n)` flops besides the `m` products, small next to a curvature product). When `β_j`
//! vanishes the Krylov space is invariant (a breakdown): its Ritz values are exact eigenvalues,
//! and the iteration restarts from a fresh random vector orthogonal to the basis, so repeated
//! eigenvalues are found with their multiplicity; [`Lanczos::invariant_subspaces`] says how
//! often that happened.

use super::tridiagonal::tridiagonal_eigen;
use super::{check_nonempty, norm, orthogonalize_twice, rademacher};
use crate::error::{CurvatureError, Result};
use crate::operator::LinearOperator;
use rand::{rngs::StdRng, SeedableRng};

/// Which end of the spectrum [`lanczos`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The `k` largest eigenvalues, descending (the top of `H`'s or `G`'s spectrum).
    LargestAlgebraic,
    /// The `k` smallest eigenvalues, ascending (the most negative curvature of `H`).
    SmallestAlgebraic,
    /// The `k` eigenvalues largest in absolute value, by descending `|λ|`.
    LargestMagnitude,
}

/// Settings of [`lanczos`].
#[derive(Clone, Debug, PartialEq)]
pub struct LanczosParams {
    /// Eigenpairs wanted, `1 ≤ k ≤ n`.
    pub k: usize,
    /// Which end of the spectrum.
    pub which: Which,
    /// Lanczos steps `m` (= operator products), `k ≤ m ≤ n`; `m = n` gives every eigenvalue to
    /// round-off. Default `min(n, 2k + 10)`.
    pub steps: Option<usize>,
    /// Seed of the Rademacher start vector (and of restarts after a breakdown).
    pub seed: u64,
}

impl LanczosParams {
    /// `k` eigenpairs at the `which` end, default steps, seed 0.
    pub fn new(k: usize, which: Which) -> Self {
        LanczosParams { k, which, steps: None, seed: 0 }
    }

    /// Sets the number of Lanczos steps (operator products).
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = Some(steps);
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// The result of [`lanczos`]: `k` Ritz pairs and how far each is from an eigenpair.
#[derive(Clone, Debug)]
pub struct Lanczos {
    /// The `k` Ritz values, in the order of [`Which`].
    pub values: Vec<f64>,
    /// The unit Ritz vectors `x_i = Q_m s_i`, one per value.
    pub vectors: Vec<Vec<f64>>,
    /// `‖A x_i − θ_i x_i‖ = |β_m e_mᵀ s_i|`, one per value: a pair is an eigenpair of `A` to
    /// within this (and `θ_i` within it of an eigenvalue of `A`).
    pub residual_norms: Vec<f64>,
    /// Every Ritz value of `T_m`, ascending (both ends of the spectrum at once).
    pub ritz_values: Vec<f64>,
    /// Lanczos steps taken (= operator products).
    pub steps: usize,
    /// How often the Krylov space became invariant before `steps` (a breakdown, after which
    /// Lanczos restarted orthogonally): the Ritz values of such a space are exact eigenvalues.
    pub invariant_subspaces: usize,
}

/// The Lanczos tridiagonal `T_m` (diagonal `alpha`, off-diagonal `beta[..m-1]`), its basis
/// `Q_m`, and `beta[m-1] = β_m`, the norm of the part of `A q_m` outside the basis.
pub(crate) struct Tridiagonal {
    pub alpha: Vec<f64>,
    pub beta: Vec<f64>,
    pub basis: Vec<Vec<f64>>,
    pub invariant_subspaces: usize,
}

/// Runs `steps` Lanczos steps from the unit vector `start` with full reorthogonalization. On a
/// breakdown it restarts from a random vector orthogonal to the basis when `restart` is given,
/// and stops (with `β = 0`, so `T` is exact on the invariant space) when it is not.
pub(crate) fn tridiagonalize(
    a: &dyn LinearOperator,
    start: Vec<f64>,
    steps: usize,
    mut restart: Option<&mut StdRng>,
) -> Result<Tridiagonal> {
    let n = a.dim();
    let mut t = Tridiagonal {
        alpha: Vec::with_capacity(steps),
        beta: Vec::with_capacity(steps),
        basis: Vec::with_capacity(steps),
        invariant_subspaces: 0,
    };
    let mut q = start;
    let mut w = vec![0.0; n];
    // A running estimate of ‖A‖ (max row sum of |T|), the scale a breakdown is judged against.
    let mut scale = 0.0_f64;
    // Round-off left in w after reorthogonalizing against an invariant space is ~ε‖A‖√n.
    let tolerance = 64.0 * f64::EPSILON * (n as f64).sqrt();
    for j in 0..steps {
        a.apply(&q, &mut w)?;
        if let Some(previous) = t.basis.last() {
            let b = t.beta[j - 1];
            for (x, p) in w.iter_mut().zip(previous) {
                *x -= b * p;
            }
        }
        let alpha = super::dot(&q, &w);
        for (x, p) in w.iter_mut().zip(&q) {
            *x -= alpha * p;
        }
        t.basis.push(q);
        orthogonalize_twice(&t.basis, &mut w);
        let beta = norm(&w);
        scale = scale.max(alpha.abs() + beta + t.beta.last().copied().unwrap_or(0.0));
        t.alpha.push(alpha);
        let last = j + 1 == steps;
        if !(beta.is_finite() && alpha.is_finite()) {
            return Err(CurvatureError::invalid(
                "lanczos",
                format!("a product became non-finite at step {}", j + 1),
            ));
        }
        if beta > tolerance * scale {
            t.beta.push(beta);
            if last {
                break;
            }
            q = w.iter().map(|x| x / beta).collect();
            continue;
        }
        // Breakdown: span(Q) is invariant under A, so T's eigenvalues so far are exact.
        t.beta.push(0.0);
        if last {
            break;
        }
        let Some(rng) = restart.as_deref_mut() else { break };
        t.invariant_subspaces += 1;
        rademacher(rng, &mut w);
        orthogonalize_twice(&t.basis, &mut w);
        let length = norm(&w);
        // steps ≤ n, so a fresh Rademacher vector has a part outside span(Q) unless it is
        // (improbably) almost inside; try a few before giving up.
        let mut tries = 0;
        let mut length = length;
        while length < 1e-8 * (n as f64).sqrt() && tries < 8 {
            rademacher(rng, &mut w);
            orthogonalize_twice(&t.basis, &mut w);
            length = norm(&w);
            tries += 1;
        }
        if length < 1e-8 * (n as f64).sqrt() {
            break;
        }
        q = w.iter().map(|x| x / length).collect();
    }
    Ok(t)
}

/// The `k` Ritz pairs of `A` at the [`Which`] end after `m` Lanczos steps (`m` products) from a
/// seeded Rademacher start, with full reorthogonalization.
///
/// For a network's `H` (or `G`, `F`, …), pass the operator of a recorded pass,
/// `problem.at(&theta)?.hessian()` (see the [module example](super)): the forward pass at θ is
/// recorded once and every product reuses it.
///
/// Errors if the operator is not declared symmetric, has dimension 0, or if `k` or the steps
/// are out of range (`1 ≤ k ≤ m ≤ n`).
pub fn lanczos(a: &dyn LinearOperator, params: &LanczosParams) -> Result<Lanczos> {
    let n = check_nonempty("lanczos", a)?;
    if !a.is_symmetric() {
        return Err(CurvatureError::invalid(
            "lanczos",
            "the operator is not declared symmetric (FnOperator::symmetric declares it)",
        ));
    }
    let k = params.k;
    if k == 0 || k > n {
        return Err(CurvatureError::invalid(
            "lanczos",
            format!("k = {k} eigenpairs asked of a {n}×{n} operator (need 1 ≤ k ≤ {n})"),
        ));
    }
    let steps = params.steps.unwrap_or((2 * k + 10).min(n));
    if steps < k || steps > n {
        return Err(CurvatureError::invalid(
            "lanczos",
            format!("{steps} steps for k = {k} on dimension {n} (need k ≤ steps ≤ n)"),
        ));
    }
    let mut rng = StdRng::seed_from_u64(params.seed);
    let mut start = vec![0.0; n];
    rademacher(&mut rng, &mut start);
    let length = norm(&start);
    start.iter_mut().for_each(|x| *x /= length);
    let t = tridiagonalize(a, start, steps, Some(&mut rng))?;
    let m = t.alpha.len();
    if m < k {
        return Err(CurvatureError::invalid(
            "lanczos",
            format!("only {m} Lanczos vectors could be built for k = {k} (dimension {n})"),
        ));
    }
    let (values, s) = tridiagonal_eigen(&t.alpha, &t.beta)?;
    let beta_m = t.beta[m - 1];
    let mut order: Vec<usize> = (0..m).collect();
    match params.which {
        Which::LargestAlgebraic => order.reverse(),
        Which::SmallestAlgebraic => {}
        Which::LargestMagnitude => {
            order.sort_by(|&i, &j| values[j].abs().total_cmp(&values[i].abs()))
        }
    }
    order.truncate(k);
    // x_i = Q s_i, a block of θ at a time so each block of the basis is read from cache k times
    // (not from memory k times).
    let mut vectors = vec![vec![0.0; n]; k];
    for start in (0..n).step_by(1024) {
        let end = (start + 1024).min(n);
        for (x, &i) in vectors.iter_mut().zip(&order) {
            let x = &mut x[start..end];
            // Four basis vectors per sweep over the block of x.
            let quads = t.basis.len() / 4;
            for g in 0..quads {
                let j = 4 * g;
                let c = [s[(j, i)], s[(j + 1, i)], s[(j + 2, i)], s[(j + 3, i)]];
                let q = &t.basis[j..j + 4];
                let (q0, q1, q2, q3) =
                    (&q[0][start..end], &q[1][start..end], &q[2][start..end], &q[3][start..end]);
                for e in 0..x.len() {
                    x[e] += c[0] * q0[e] + c[1] * q1[e] + c[2] * q2[e] + c[3] * q3[e];
                }
            }
            for (j, q) in t.basis.iter().enumerate().skip(4 * quads) {
                let c = s[(j, i)];
                for (xe, qe) in x.iter_mut().zip(&q[start..end]) {
                    *xe += c * qe;
                }
            }
        }
    }
    Ok(Lanczos {
        values: order.iter().map(|&i| values[i]).collect(),
        vectors,
        residual_norms: order.iter().map(|&i| (beta_m * s[(m - 1, i)]).abs()).collect(),
        ritz_values: values.clone(),
        steps: m,
        invariant_subspaces: t.invariant_subspaces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectra::test_support::rotated_diagonal;
    use autodiff::Matrix;

    fn explicit_residual(a: &dyn LinearOperator, value: f64, x: &[f64]) -> f64 {
        let mut ax = vec![0.0; x.len()];
        a.apply(x, &mut ax).unwrap();
        ax.iter().zip(x).map(|(p, q)| (p - value * q).powi(2)).sum::<f64>().sqrt()
    }

    #[test]
    fn all_steps_give_every_eigenvalue_and_true_residuals() {
        let lambda: Vec<f64> = (0..30).map(|i| (i as f64 - 7.0) * 0.5 + 0.01 * i as f64).collect();
        let (op, _) = rotated_diagonal(lambda.clone());
        let mut sorted = lambda.clone();
        sorted.sort_by(f64::total_cmp);
        for which in [Which::LargestAlgebraic, Which::SmallestAlgebraic, Which::LargestMagnitude] {
            let r = lanczos(&op, &LanczosParams::new(5, which).steps(30).seed(3)).unwrap();
            let want: Vec<f64> = match which {
                Which::LargestAlgebraic => sorted.iter().rev().take(5).copied().collect(),
                Which::SmallestAlgebraic => sorted.iter().take(5).copied().collect(),
                Which::LargestMagnitude => {
                    let mut by_size = sorted.clone();
                    by_size.sort_by(|a, b| b.abs().total_cmp(&a.abs()));
                    by_size.into_iter().take(5).collect()
                }
            };
            for (got, want) in r.values.iter().zip(&want) {
                assert!((got - want).abs() < 1e-10 * 11.29, "{which:?}: {got} vs {want}");
            }
            for ((v, x), res) in r.values.iter().zip(&r.vectors).zip(&r.residual_norms) {
                let true_res = explicit_residual(&op, *v, x);
                assert!(true_res < 1e-10 * 11.29 && *res < 1e-10 * 11.29, "{true_res} {res}");
                assert!((norm(x) - 1.0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn reported_residuals_equal_explicit_ones_before_convergence() {
        // Few steps on a spread spectrum: pairs are not converged, and |β_m s_m| must still be
        // ‖A x − θ x‖ (the Lanczos relation), to round-off.
        let lambda: Vec<f64> = (0..60).map(|i| 1.0 / (1.0 + i as f64) - 0.2).collect();
        let (op, _) = rotated_diagonal(lambda);
        let r = lanczos(&op, &LanczosParams::new(4, Which::LargestAlgebraic).steps(8)).unwrap();
        assert!(r.residual_norms.iter().any(|&x| x > 1e-6), "{:?}", r.residual_norms);
        for ((v, x), res) in r.values.iter().zip(&r.vectors).zip(&r.residual_norms) {
            let true_res = explicit_residual(&op, *v, x);
            assert!((true_res - res).abs() < 1e-12, "{true_res} vs {res}");
        }
        // The top Ritz value of a Krylov space never exceeds λ_max and converges first.
        assert!(r.values[0] <= 0.8 + 1e-12 && r.values[0] > 0.8 - 1e-3, "{}", r.values[0]);
    }

    #[test]
    fn breakdown_restarts_and_finds_multiplicities() {
        // Eigenvalues 1 (×3), 2 (×2), 3: a Krylov space has dimension ≤ 3, so Lanczos breaks
        // down and must restart orthogonally to find all six with multiplicity.
        let (op, _) = rotated_diagonal(vec![1.0, 2.0, 1.0, 3.0, 2.0, 1.0]);
        let r = lanczos(&op, &LanczosParams::new(6, Which::SmallestAlgebraic).steps(6)).unwrap();
        assert!(r.invariant_subspaces >= 1, "no breakdown reported");
        let want = [1.0, 1.0, 1.0, 2.0, 2.0, 3.0];
        for (got, w) in r.values.iter().zip(&want) {
            assert!((got - w).abs() < 1e-12, "{:?}", r.values);
        }
        // The zero operator breaks down at once and every eigenvalue is 0.
        let zero = Matrix::zeros(4, 4);
        let r = lanczos(&zero, &LanczosParams::new(2, Which::LargestMagnitude).steps(4)).unwrap();
        assert_eq!(r.values, vec![0.0, 0.0]);
    }

    #[test]
    fn bad_requests_are_errors() {
        let a = Matrix::from_fn(3, 3, |i, j| (i + j) as f64);
        let bad = [
            LanczosParams::new(0, Which::LargestAlgebraic),
            LanczosParams::new(4, Which::LargestAlgebraic),
            LanczosParams::new(2, Which::LargestAlgebraic).steps(1),
            LanczosParams::new(2, Which::LargestAlgebraic).steps(4),
        ];
        for p in &bad {
            let e = lanczos(&a, p).unwrap_err().to_string();
            assert!(e.starts_with("lanczos:"), "{e}");
        }
        let empty = Matrix::zeros(0, 0);
        assert!(lanczos(&empty, &LanczosParams::new(1, Which::LargestAlgebraic)).is_err());
        let nonsymmetric = Matrix::from_fn(3, 3, |i, j| (i * 3 + j) as f64);
        let e = lanczos(&nonsymmetric, &LanczosParams::new(1, Which::LargestAlgebraic));
        assert!(e.unwrap_err().to_string().contains("symmetric"));
    }
}
