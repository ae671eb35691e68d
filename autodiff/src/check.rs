//! Finite-difference and adjoint checks with a report of the worst discrepancy: the same checks
//! this crate's tests use, offered for users' functions and custom ops.
//!
//! Tolerance tiers (STYLE.md): comparisons of two exact paths (the adjoint identity
//! `⟨u, J v⟩ = ⟨Jᵀ u, v⟩`, dense matrices built two ways) hold to round-off, about `1e-12`;
//! comparisons with finite differences hold to about `1e-8`. The differences here are central
//! differences with one Richardson extrapolation, `R = (4 D(h/2) − D(h)) / 3`, whose truncation
//! error is `O(h⁴)`; with `h = 1e-3` (relative to the scale of θ and v) both truncation and
//! round-off stay near `1e-11` for smooth functions of moderate curvature.

use crate::dual::Dual;
use crate::error::{AutodiffError, Result};
use crate::matrix::Matrix;
use crate::modes::{self, Function};
use crate::op::CustomOp;
use crate::random::random_matrix;
use rand::{rngs::StdRng, SeedableRng};
use std::fmt;

/// The outcome of a check: the largest relative discrepancy and where it was.
///
/// The error at index `i` is `|computed_i − reference_i| / scale`, where `scale` is the largest
/// magnitude in either vector (at least `1e-300`): a norm-wise relative error, which does not
/// blow up at entries that are zero by cancellation.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CheckReport {
    /// What was checked, e.g. `"J v vs central differences"`.
    pub check: String,
    /// The largest relative error found.
    pub max_rel_error: f64,
    /// The flat index where it occurred.
    pub at: usize,
    /// The computed value there.
    pub computed: f64,
    /// The reference value there.
    pub reference: f64,
    /// The tolerance the check was run with.
    pub tolerance: f64,
    /// Where `at` is, in words, when the checker knows the layout: e.g. `W2 × b1, row 3,
    /// column 0 inside the blocks` for an entry of a dense curvature matrix (set by
    /// `curvature::verify` from the model's parameter blocks). Printed instead of the index.
    pub location: Option<String>,
    /// Sub-checks reported along with this one (e.g. each term of a decomposition against
    /// its own reference), printed below it. [`passed`](Self::passed) requires them to pass.
    pub parts: Vec<CheckReport>,
}

impl CheckReport {
    /// Whether `max_rel_error ≤ tolerance` and every part passed (a NaN anywhere fails).
    pub fn passed(&self) -> bool {
        self.max_rel_error <= self.tolerance && self.parts.iter().all(CheckReport::passed)
    }

    /// Panics with the full report unless the check passed; for use in `#[test]`s.
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "check failed: {self}");
    }

    /// The worse of two reports (a failed one first, then the larger relative error).
    pub fn worst(self, other: CheckReport) -> CheckReport {
        let key = |r: &CheckReport| (!r.passed(), r.max_rel_error / r.tolerance);
        let (a, b) = (key(&self), key(&other));
        if b.0 && !a.0 || (a.0 == b.0 && b.1 > a.1) || b.1.is_nan() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let own = self.max_rel_error <= self.tolerance;
        write!(f, "{}: max relative error {:.3e} at ", self.check, self.max_rel_error)?;
        match &self.location {
            Some(location) => write!(f, "{location}")?,
            None => write!(f, "index {}", self.at)?,
        }
        write!(
            f,
            " (computed {:.15e}, reference {:.15e}), tolerance {:.1e} — {}",
            self.computed,
            self.reference,
            self.tolerance,
            if own { "passed" } else { "FAILED" }
        )?;
        for part in &self.parts {
            // Indent nested parts with their parent.
            let text = part.to_string().replace('\n', "\n    ");
            write!(f, "\n  - {text}")?;
        }
        Ok(())
    }
}

/// Compares two vectors norm-wise (see [`CheckReport`]); lengths must agree.
pub fn compare(
    check: &str,
    computed: &[f64],
    reference: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    compare_above(check, computed, reference, tolerance, 0.0)
}

/// As [`compare`], with the scale at least `floor`: for a finite-difference reference, the size
/// below which its rounding noise is not negligible.
pub fn compare_above(
    check: &str,
    computed: &[f64],
    reference: &[f64],
    tolerance: f64,
    floor: f64,
) -> Result<CheckReport> {
    if computed.len() != reference.len() {
        return Err(AutodiffError::shape(
            format!("compare ({check})"),
            crate::Shape::new(computed.len(), 1),
            crate::Shape::new(reference.len(), 1),
        ));
    }
    let scale = computed.iter().chain(reference).fold(floor.max(1e-300), |m, x| m.max(x.abs()));
    let mut report = CheckReport {
        check: check.to_string(),
        max_rel_error: 0.0,
        at: 0,
        computed: computed.first().copied().unwrap_or(0.0),
        reference: reference.first().copied().unwrap_or(0.0),
        tolerance,
        location: None,
        parts: Vec::new(),
    };
    for (i, (&c, &r)) in computed.iter().zip(reference).enumerate() {
        let err = (c - r).abs() / scale;
        if err > report.max_rel_error || err.is_nan() {
            report.max_rel_error = if err.is_nan() { f64::NAN } else { err };
            report.at = i;
            report.computed = c;
            report.reference = r;
            if err.is_nan() {
                break;
            }
        }
    }
    Ok(report)
}

/// The Richardson-extrapolated central difference of `g` at `t = 0`, for a vector-valued `g(t)`.
pub fn central_difference(h: f64, mut g: impl FnMut(f64) -> Result<Vec<f64>>) -> Result<Vec<f64>> {
    let mut d = |h: f64| -> Result<Vec<f64>> {
        let (plus, minus) = (g(h)?, g(-h)?);
        Ok(plus.iter().zip(&minus).map(|(p, m)| (p - m) / (2.0 * h)).collect())
    };
    let (coarse, fine) = (d(h)?, d(h / 2.0)?);
    Ok(fine.iter().zip(&coarse).map(|(f, c)| (4.0 * f - c) / 3.0).collect())
}

fn step_along(theta: &[f64], v: &[f64]) -> f64 {
    let theta_scale = theta.iter().fold(1.0_f64, |m, x| m.max(x.abs()));
    let v_scale = v.iter().fold(1e-300_f64, |m, x| m.max(x.abs()));
    1e-3 * theta_scale / v_scale
}

/// `‖g‖∞ ‖v‖∞ / max(1, ‖θ‖∞)`: the size a directional derivative of `g` along `v` has when `g`
/// changes by its own size over the scale of θ. The central differences of [`step_along`]
/// carry a rounding error of about `10³ ε` times this (`ε ‖g‖ / h`), so checks measure their
/// error against at least this scale: a derivative many orders below it (a nearly flat
/// direction) is compared at the resolution differences can give, not by its own size.
fn natural_scale(g: &[f64], theta: &[f64], v: &[f64]) -> f64 {
    let g_scale = g.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    let theta_scale = theta.iter().fold(1.0_f64, |m, x| m.max(x.abs()));
    let v_scale = v.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    g_scale * v_scale / theta_scale
}

fn shifted(theta: &[f64], v: &[f64], t: f64) -> Vec<f64> {
    theta.iter().zip(v).map(|(a, b)| a + t * b).collect()
}

/// `J v` from [`modes::jacobian_vector_product`] against central differences of `F` along `v`, the error measured
/// against the largest entry or, if larger, `‖F‖∞ ‖v‖∞ / max(1, ‖θ‖∞)`.
pub fn check_jacobian_vector_product<F: Function>(
    f: &F,
    theta: &[f64],
    v: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    let (value, jv) = modes::jacobian_vector_product(f, theta, v)?;
    let reference = central_difference(step_along(theta, v), |t| {
        Ok(modes::value(f, &shifted(theta, v, t))?.into_vec())
    })?;
    let floor = natural_scale(value.data(), theta, v);
    compare_above("J v vs central differences", jv.data(), &reference, tolerance, floor)
}

/// `Jᵀ u` from [`modes::transpose_jacobian_vector_product`] against central differences of `⟨u, F(θ)⟩` along each `eⱼ`.
pub fn check_transpose_jacobian_vector_product<F: Function>(
    f: &F,
    theta: &[f64],
    u: &Matrix<f64>,
    tolerance: f64,
) -> Result<CheckReport> {
    let (_, jtu) = modes::transpose_jacobian_vector_product(f, theta, u)?;
    let reference = coordinate_differences(theta, |th| {
        let out = modes::value(f, th)?;
        Ok(out.data().iter().zip(u.data()).map(|(a, b)| a * b).sum())
    })?;
    compare("Jᵀ u vs central differences", &jtu, &reference, tolerance)
}

/// The gradient of a scalar `F` from [`modes::gradient`] against central differences.
pub fn check_gradient<F: Function>(f: &F, theta: &[f64], tolerance: f64) -> Result<CheckReport> {
    let (_, grad) = modes::gradient(f, theta)?;
    let reference = coordinate_differences(theta, |th| Ok(modes::value(f, th)?[(0, 0)]))?;
    compare("gradient vs central differences", &grad, &reference, tolerance)
}

/// `H v` from [`modes::hessian_vector_product`] against central differences of the gradient along `v`, the error
/// measured against the largest entry or, if larger, `‖∇F‖∞ ‖v‖∞ / max(1, ‖θ‖∞)` (below which
/// the differences are rounding noise; see `natural_scale`).
pub fn check_hessian_vector_product<F: Function>(
    f: &F,
    theta: &[f64],
    v: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    let (_, grad, hv) = modes::hessian_vector_product(f, theta, v)?;
    let reference = central_difference(step_along(theta, v), |t| {
        Ok(modes::gradient(f, &shifted(theta, v, t))?.1)
    })?;
    let floor = natural_scale(&grad, theta, v);
    compare_above("H v vs central differences of the gradient", &hv, &reference, tolerance, floor)
}

/// The adjoint identity `⟨u, J v⟩ = ⟨Jᵀ u, v⟩`, two exact paths, relative to `Σ |u_i (J v)_i|`.
pub fn check_adjoint<F: Function>(
    f: &F,
    theta: &[f64],
    u: &Matrix<f64>,
    v: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    let (_, jv) = modes::jacobian_vector_product(f, theta, v)?;
    let (_, jtu) = modes::transpose_jacobian_vector_product(f, theta, u)?;
    Ok(adjoint_report("⟨u, J v⟩ vs ⟨Jᵀ u, v⟩", u.data(), jv.data(), &jtu, v, tolerance))
}

fn adjoint_report(
    check: &str,
    u: &[f64],
    jv: &[f64],
    jtu: &[f64],
    v: &[f64],
    tolerance: f64,
) -> CheckReport {
    let lhs: f64 = u.iter().zip(jv).map(|(a, b)| a * b).sum();
    let rhs: f64 = jtu.iter().zip(v).map(|(a, b)| a * b).sum();
    let scale = u.iter().zip(jv).map(|(a, b)| (a * b).abs()).sum::<f64>()
        + jtu.iter().zip(v).map(|(a, b)| (a * b).abs()).sum::<f64>();
    CheckReport {
        check: check.to_string(),
        max_rel_error: (lhs - rhs).abs() / scale.max(1e-300),
        at: 0,
        computed: rhs,
        reference: lhs,
        tolerance,
        location: None,
        parts: Vec::new(),
    }
}

fn coordinate_differences(
    theta: &[f64],
    mut g: impl FnMut(&[f64]) -> Result<f64>,
) -> Result<Vec<f64>> {
    let scale = theta.iter().fold(1.0_f64, |m, x| m.max(x.abs()));
    let mut th = theta.to_vec();
    (0..theta.len())
        .map(|j| {
            let d = central_difference(1e-3 * scale, |t| {
                th[j] = theta[j] + t;
                let r = g(&th);
                th[j] = theta[j];
                Ok(vec![r?])
            })?;
            Ok(d[0])
        })
        .collect()
}

/// Checks a [`CustomOp`]'s three rules at the given inputs, with random tangents and cotangent
/// from `seed`: `jvp` against central differences of `forward` (tier `tolerance`), `jvp`
/// against `forward` run on dual numbers, and `vjp` against `jvp` by the adjoint identity
/// (both round-off tier, `1e-12`). Returns the worst of the three.
pub fn check_custom_op<Op>(
    op: &Op,
    inputs: &[Matrix<f64>],
    tolerance: f64,
    seed: u64,
) -> Result<CheckReport>
where
    Op: CustomOp<f64> + CustomOp<Dual<f64>>,
{
    let mut rng = StdRng::seed_from_u64(seed);
    let tangents: Vec<Matrix<f64>> =
        inputs.iter().map(|x| random_matrix(x.rows(), x.cols(), &mut rng)).collect();
    let refs: Vec<&Matrix<f64>> = inputs.iter().collect();
    let trefs: Vec<&Matrix<f64>> = tangents.iter().collect();
    let output = CustomOp::<f64>::forward(op, &refs)?;
    let jv = CustomOp::<f64>::jacobian_vector_product(op, &refs, &trefs)?;
    if jv.shape() != output.shape() {
        return Err(AutodiffError::shape(
            format!("{} (jvp vs forward)", CustomOp::<f64>::name(op)),
            jv.shape(),
            output.shape(),
        ));
    }
    let scale = inputs.iter().flat_map(|x| x.data()).fold(1.0_f64, |m, x| m.max(x.abs()));
    let fd = central_difference(1e-3 * scale, |t| {
        let shifted: Vec<Matrix<f64>> = inputs
            .iter()
            .zip(&tangents)
            .map(|(x, d)| Matrix::from_fn(x.rows(), x.cols(), |i, j| x[(i, j)] + t * d[(i, j)]))
            .collect();
        let r: Vec<&Matrix<f64>> = shifted.iter().collect();
        Ok(CustomOp::<f64>::forward(op, &r)?.into_vec())
    })?;
    let name = CustomOp::<f64>::name(op).to_string();
    let by_fd = compare(&format!("{name}: jvp vs central differences"), jv.data(), &fd, tolerance)?;

    let duals: Vec<Matrix<Dual<f64>>> = inputs
        .iter()
        .zip(&tangents)
        .map(|(x, d)| Matrix::from_fn(x.rows(), x.cols(), |i, j| Dual::new(x[(i, j)], d[(i, j)])))
        .collect();
    let drefs: Vec<&Matrix<Dual<f64>>> = duals.iter().collect();
    let dual_out = CustomOp::<Dual<f64>>::forward(op, &drefs)?;
    let dual_tangent: Vec<f64> = dual_out.data().iter().map(|d| d.eps).collect();
    let by_dual =
        compare(&format!("{name}: jvp vs forward on duals"), jv.data(), &dual_tangent, 1e-12)?;

    let cotangent = random_matrix(output.rows(), output.cols(), &mut rng);
    let vjps = CustomOp::<f64>::transpose_jacobian_vector_product(op, &refs, &output, &cotangent)?;
    if vjps.len() != inputs.len() {
        return Err(AutodiffError::invalid(
            name,
            format!("vjp returned {} cotangents for {} inputs", vjps.len(), inputs.len()),
        ));
    }
    let flat_vjp: Vec<f64> = vjps.iter().flat_map(|m| m.data().iter().copied()).collect();
    let flat_tangent: Vec<f64> = tangents.iter().flat_map(|m| m.data().iter().copied()).collect();
    if flat_vjp.len() != flat_tangent.len() {
        return Err(AutodiffError::invalid(name, "vjp cotangent shapes do not match the inputs"));
    }
    let by_adjoint = adjoint_report(
        &format!("{name}: ⟨ȳ, jvp⟩ vs ⟨vjp, ẋ⟩"),
        cotangent.data(),
        jv.data(),
        &flat_vjp,
        &flat_tangent,
        1e-12,
    );
    Ok(by_fd.worst(by_dual).worst(by_adjoint))
}
