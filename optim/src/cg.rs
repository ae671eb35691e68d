//! Preconditioned conjugate gradient for `A x = b` that stops and reports on negative curvature,
//! breakdown, or a rise of its quadratic model or a runaway residual (a non-symmetric `A`),
//! keeping the last good iterate (as Hessian-free needs). A non-finite `x0` or `b` is an error.

use crate::error::{check_range, OptimError, Result};
use curvature::LinearOperator;

/// Why CG stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CgStop {
    /// `‖r‖ ≤ tolerance · ‖b‖`.
    Converged,
    /// Martens (2010)'s relative-progress test on the quadratic model `φ(x) = ½xᵀAx − bᵀx`:
    /// `φ_i < 0` and `(φ_i − φ_{i−k}) / φ_i < k ε` with `k = max(10, i/10)`.
    Stalled,
    /// The iteration limit was reached.
    MaxIterations,
    /// A direction with `pᵀ A p ≤ 0` was met: `A` is not positive definite along `p`.
    NegativeCurvature {
        /// The curvature `pᵀ A p` found.
        p_a_p: f64,
    },
    /// A NaN or infinity appeared (in `A p` or the residual).
    Breakdown,
    /// The model `φ` rose by `increase` in one iteration. For a symmetric `A` each CG step lowers
    /// `φ` by `½ α rᵀM⁻¹r > 0`, so a rise beyond round-off ([`MODEL_RISE_TOLERANCE`]) means `A`
    /// is not symmetric: CG's directions are no longer conjugate and its iterates can grow
    /// without bound (often until a `pᵀAp ≤ 0` that is not negative curvature at all). The
    /// iterate before the rise is kept.
    ModelIncreased {
        /// `φ_i − φ_{i−1} > 0`.
        increase: f64,
    },
    /// The residual grew past [`RESIDUAL_GROWTH_LIMIT`] times its start in one iteration's
    /// update (`A` not symmetric, or numerically singular); the iterate before is kept.
    ResidualGrowth {
        /// `‖r_i‖_{M⁻¹} / ‖r_0‖_{M⁻¹}` of the refused iterate.
        factor: f64,
    },
}

/// The rise of `φ` in one iteration that [`CgStop::ModelIncreased`] tolerates, relative to
/// `½ Σ_j |x_j (b_j + r_j)|` (the size of the terms whose sum is `φ`), as round-off.
pub const MODEL_RISE_TOLERANCE: f64 = 1e-6;

/// The growth of the residual, `‖r_i‖_{M⁻¹} / ‖r_0‖_{M⁻¹}`, past which CG stops with
/// [`CgStop::ResidualGrowth`]. For a symmetric positive-definite `A`, CG keeps this ratio below
/// `√κ` (κ the condition number of `M^{−½} A M^{−½}`), so 1e8 means κ > 1e16, beyond what f64
/// CG resolves: `A` is not symmetric, or numerically singular.
pub const RESIDUAL_GROWTH_LIMIT: f64 = 1e8;

/// Settings of [`conjugate_gradient`].
#[derive(Clone, Debug, PartialEq)]
pub struct CgParams {
    /// Iteration limit (> 0).
    pub max_iterations: usize,
    /// Relative residual tolerance (≥ 0).
    pub tolerance: f64,
    /// `ε` of the relative-progress test, or `None` to disable it.
    pub progress_epsilon: Option<f64>,
    /// Store iterates at iterations `⌈γ^j⌉` (γ = 1.3, as in Martens 2010) for backtracking.
    pub store_iterates: bool,
}

impl Default for CgParams {
    fn default() -> Self {
        CgParams {
            max_iterations: 250,
            tolerance: 1e-10,
            progress_epsilon: Some(5e-4),
            store_iterates: false,
        }
    }
}

impl CgParams {
    /// Validates the settings.
    pub fn validate(&self) -> Result<()> {
        if self.max_iterations == 0 {
            return Err(OptimError::invalid(
                "conjugate_gradient",
                "max_iterations",
                0.0,
                "must be at least 1",
            ));
        }
        check_range("conjugate_gradient", "tolerance", self.tolerance, 0.0, true, f64::INFINITY)?;
        if let Some(e) = self.progress_epsilon {
            check_range("conjugate_gradient", "progress_epsilon", e, 0.0, false, f64::INFINITY)?;
        }
        Ok(())
    }
}

/// The outcome of CG.
#[derive(Clone, Debug, PartialEq)]
pub struct CgInfo {
    /// The last good iterate.
    pub x: Vec<f64>,
    /// Iterations taken.
    pub iterations: usize,
    /// `‖b − A x‖` at `x`.
    pub residual_norm: f64,
    /// Why CG stopped.
    pub stop: CgStop,
    /// The quadratic model `φ(x_i) = ½x_iᵀAx_i − bᵀx_i` after each iteration (index 0 = x0).
    pub model_values: Vec<f64>,
    /// Stored `(iteration, x_i)` pairs for backtracking (when asked), the final one included.
    pub iterates: Vec<(usize, Vec<f64>)>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `A x = b` from `x0` by (preconditioned) conjugate gradient. `preconditioner` is the
/// diagonal `M` (positive) of `M⁻¹`-preconditioning. Negative curvature, breakdown, a rise of `φ`
/// and a runaway residual are not errors: CG stops, keeps the last good iterate and says why in [`CgInfo::stop`].
/// A NaN or infinite entry in `x0` or `b` is [`OptimError::NonFinite`].
pub fn conjugate_gradient(
    a: &dyn LinearOperator,
    b: &[f64],
    x0: &[f64],
    preconditioner: Option<&[f64]>,
    params: &CgParams,
) -> Result<CgInfo> {
    params.validate()?;
    let n = a.dim();
    for (what, len) in [
        ("b", b.len()),
        ("x0", x0.len()),
        ("preconditioner", preconditioner.map_or(n, |p| p.len())),
    ] {
        if len != n {
            return Err(OptimError::Dimension {
                op: format!("conjugate_gradient ({what})"),
                expected: n,
                actual: len,
            });
        }
    }
    if let Some(m) = preconditioner {
        if let Some(v) = m.iter().find(|v| !(**v > 0.0 && v.is_finite())) {
            return Err(OptimError::invalid(
                "conjugate_gradient",
                "preconditioner entry",
                *v,
                "must be positive and finite",
            ));
        }
    }
    for (what, v) in [("b", b), ("x0", x0)] {
        if let Some(j) = v.iter().position(|e| !e.is_finite()) {
            return Err(OptimError::NonFinite {
                op: "conjugate_gradient".into(),
                detail: format!("{what}[{j}] = {}", v[j]),
            });
        }
    }
    let apply_m_inv = |r: &[f64]| -> Vec<f64> {
        match preconditioner {
            Some(m) => r.iter().zip(m).map(|(x, d)| x / d).collect(),
            None => r.to_vec(),
        }
    };
    let mut x = x0.to_vec();
    let mut ax = vec![0.0; n];
    a.apply(&x, &mut ax)?;
    let mut r: Vec<f64> = b.iter().zip(&ax).map(|(bi, a)| bi - a).collect();
    // φ(x) = ½xᵀAx − bᵀx = −½xᵀ(b + r), and the size of its terms (for the round-off bound).
    let model = |x: &[f64], r: &[f64]| {
        let terms = x.iter().zip(b.iter().zip(r)).map(|(xi, (bi, ri))| xi * (bi + ri));
        terms.fold((0.0, 0.0), |(sum, size), t| (sum - 0.5 * t, size + 0.5 * t.abs()))
    };
    let (phi0, mut phi_size) = model(&x, &r);
    let mut model_values = vec![phi0];
    let b_norm = dot(b, b).sqrt().max(1e-300);
    let mut y = apply_m_inv(&r);
    let mut p = y.clone();
    let mut ry = dot(&r, &y);
    let ry0 = ry;
    let mut iterates = Vec::new();
    let mut next_store = 1.0_f64;
    let mut ap = vec![0.0; n];
    let mut stop = CgStop::MaxIterations;
    let mut iterations = 0;
    if dot(&r, &r).sqrt() <= params.tolerance * b_norm {
        stop = CgStop::Converged;
    } else {
        for i in 1..=params.max_iterations {
            a.apply(&p, &mut ap)?;
            let pap = dot(&p, &ap);
            if !pap.is_finite() || ap.iter().any(|v| !v.is_finite()) {
                stop = CgStop::Breakdown;
                break;
            }
            if pap <= 0.0 {
                stop = CgStop::NegativeCurvature { p_a_p: pap };
                break;
            }
            let alpha = ry / pap;
            let x_new: Vec<f64> = x.iter().zip(&p).map(|(xi, pi)| xi + alpha * pi).collect();
            let r_new: Vec<f64> = r.iter().zip(&ap).map(|(ri, api)| ri - alpha * api).collect();
            if x_new.iter().chain(&r_new).any(|v| !v.is_finite()) {
                stop = CgStop::Breakdown;
                break;
            }
            let y_new = apply_m_inv(&r_new);
            let ry_new = dot(&r_new, &y_new);
            let factor = (ry_new / ry0).sqrt();
            if factor > RESIDUAL_GROWTH_LIMIT {
                stop = CgStop::ResidualGrowth { factor };
                break;
            }
            let (phi, size) = model(&x_new, &r_new);
            let increase = phi - model_values[model_values.len() - 1];
            if increase > MODEL_RISE_TOLERANCE * size.max(phi_size) {
                stop = CgStop::ModelIncreased { increase };
                break;
            }
            x = x_new;
            r = r_new;
            phi_size = size;
            iterations = i;
            model_values.push(phi);
            if params.store_iterates && i as f64 >= next_store {
                iterates.push((i, x.clone()));
                while next_store <= i as f64 {
                    next_store = (next_store * 1.3).ceil();
                }
            }
            if dot(&r, &r).sqrt() <= params.tolerance * b_norm {
                stop = CgStop::Converged;
                break;
            }
            if let Some(eps) = params.progress_epsilon {
                let k = 10.max(i / 10);
                if i > k && phi < 0.0 && (phi - model_values[i - k]) / phi < k as f64 * eps {
                    stop = CgStop::Stalled;
                    break;
                }
            }
            y = y_new;
            let beta = ry_new / ry;
            ry = ry_new;
            for (pi, yi) in p.iter_mut().zip(&y) {
                *pi = yi + beta * *pi;
            }
        }
    }
    if params.store_iterates && iterates.last().is_none_or(|(i, _)| *i != iterations) {
        iterates.push((iterations, x.clone()));
    }
    Ok(CgInfo { residual_norm: dot(&r, &r).sqrt(), x, iterations, stop, model_values, iterates })
}

#[cfg(test)]
mod tests {
    use super::*;
    use autodiff::linalg::{matmul, matvec};
    use autodiff::random::{random_matrix, random_vector};
    use autodiff::Matrix;
    use rand::{rngs::StdRng, SeedableRng};

    fn spd(n: usize, seed: u64) -> Matrix<f64> {
        let x = random_matrix(n, n, &mut StdRng::seed_from_u64(seed));
        let mut a = matmul(&x, &x.transpose()).unwrap();
        for i in 0..n {
            a[(i, i)] += 0.1;
        }
        a
    }

    #[test]
    fn solves_spd_systems_to_tolerance_with_and_without_preconditioner() {
        for seed in 0..5 {
            let a = spd(30, seed);
            let b = random_vector(30, &mut StdRng::seed_from_u64(seed + 100));
            let diag: Vec<f64> = (0..30).map(|i| a[(i, i)]).collect();
            for pre in [None, Some(diag.as_slice())] {
                let params = CgParams {
                    max_iterations: 500,
                    tolerance: 1e-10,
                    progress_epsilon: None,
                    ..Default::default()
                };
                let info = conjugate_gradient(&a, &b, &vec![0.0; 30], pre, &params).unwrap();
                assert_eq!(info.stop, CgStop::Converged, "seed {seed}");
                // Independent check of the residual.
                let ax = matvec(&a, &info.x).unwrap();
                let res: f64 = ax.iter().zip(&b).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt();
                let bn: f64 = b.iter().map(|v| v * v).sum::<f64>().sqrt();
                assert!(res <= 1e-10 * bn * 1.0001, "seed {seed}: ‖Ax − b‖ = {res:e}");
                // φ decreases monotonically (CG minimizes it over growing Krylov spaces).
                assert!(info.model_values.windows(2).all(|w| w[1] <= w[0] + 1e-12));
            }
        }
    }

    #[test]
    fn reports_negative_curvature_and_keeps_the_last_good_iterate() {
        // diag(1, 2, −1): the first directions see positive curvature; eventually p has a
        // component along e3 with pᵀAp ≤ 0.
        let a = Matrix::from_fn(3, 3, |i, j| if i == j { [1.0, 2.0, -1.0][i] } else { 0.0 });
        let b = [1.0, 1.0, 1.0];
        let info = conjugate_gradient(&a, &b, &[0.0; 3], None, &CgParams::default()).unwrap();
        let CgStop::NegativeCurvature { p_a_p } = info.stop else {
            panic!("stop was {:?}", info.stop)
        };
        assert!(p_a_p <= 0.0);
        assert!(info.x.iter().all(|v| v.is_finite()));
        assert!(
            *info.model_values.last().unwrap() <= 0.0,
            "kept iterate should not be worse than x0 = 0"
        );
    }

    #[test]
    fn breakdown_on_nan_and_bad_settings_are_errors() {
        let a = Matrix::from_fn(2, 2, |i, j| if i == j { f64::NAN } else { 0.0 });
        let info = conjugate_gradient(&a, &[1.0, 1.0], &[0.0, 0.0], None, &CgParams::default());
        // x0 = 0 gives r = b; A p is NaN → Breakdown with x = x0.
        let info = info.unwrap();
        assert_eq!(info.stop, CgStop::Breakdown);
        assert_eq!(info.x, vec![0.0, 0.0]);
        let eye = autodiff::linalg::identity(2);
        let bad = CgParams { max_iterations: 0, ..Default::default() };
        assert!(conjugate_gradient(&eye, &[1.0, 0.0], &[0.0, 0.0], None, &bad).is_err());
        let bad = CgParams { tolerance: -1.0, ..Default::default() };
        assert!(conjugate_gradient(&eye, &[1.0, 0.0], &[0.0, 0.0], None, &bad).is_err());
        assert!(conjugate_gradient(
            &eye,
            &[1.0, 0.0],
            &[0.0, 0.0],
            Some(&[1.0, 0.0]),
            &CgParams::default()
        )
        .is_err());
        assert!(conjugate_gradient(&eye, &[1.0], &[0.0, 0.0], None, &CgParams::default()).is_err());
    }
}
