//! Every estimator on every curvature matrix of a small network, against its dense truth.

use super::*;
use crate::loss::SoftmaxCrossEntropy;
use crate::operator::FnOperator;
use crate::{Activation, CurvatureKind, Mlp, Problem};
use autodiff::linalg::symmetric_eigen;
use autodiff::Matrix;

/// `(name, dense matrix, eigenvalues ascending)` of H, G, F, MC-F, F̄, the eqn 6 residual and
/// the per-layer block diagonal of H, on a 3-5-3 tanh network (38 parameters), and a closure
/// running `check` on each operator.
fn for_every_kind(check: impl Fn(&str, &dyn LinearOperator, &Matrix<f64>, &[f64])) {
    let mlp = Mlp::new(&[3, 5, 3], &[Activation::Tanh, Activation::Identity]).unwrap();
    let x = Matrix::from_fn(6, 3, |i, j| ((i * 3 + j) as f64 * 0.7).sin());
    let y = Matrix::from_fn(6, 3, |i, j| f64::from((i + 1) % 3 == j));
    let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let theta: Vec<f64> = (0..mlp.num_params()).map(|k| (k as f64 * 1.3).cos()).collect();
    let pass = problem.at(&theta).unwrap();
    let n = pass.dim();
    let kinds = [
        ("H", CurvatureKind::Hessian),
        ("G", CurvatureKind::Ggn),
        ("F", CurvatureKind::Fisher),
        ("MC-F", CurvatureKind::MonteCarloFisher { samples: 2, seed: 9 }),
        ("F̄", CurvatureKind::EmpiricalFisher),
        ("block H", CurvatureKind::BlockDiagonal(Box::new(CurvatureKind::Hessian))),
    ];
    let residual = FnOperator::new(n, |v| pass.ggn_residual_vector_product(v)).symmetric();
    let mut operators: Vec<(&str, Box<dyn LinearOperator + '_>)> =
        kinds.iter().map(|(name, kind)| (*name, pass.operator(kind).unwrap())).collect();
    operators.push(("eqn 6 residual", Box::new(residual)));
    for (name, op) in &operators {
        let dense = op.to_dense().unwrap();
        let eigen = symmetric_eigen(&dense).unwrap();
        check(name, op.as_ref(), &dense, &eigen.values);
    }
}

#[test]
fn lanczos_with_all_steps_matches_dense_eigenvalues_for_every_kind() {
    for_every_kind(|name, op, _, values| {
        let n = values.len();
        let scale = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let top = lanczos(op, &LanczosParams::new(6, Which::LargestAlgebraic).steps(n)).unwrap();
        let bottom =
            lanczos(op, &LanczosParams::new(6, Which::SmallestAlgebraic).steps(n).seed(4)).unwrap();
        for (i, got) in top.values.iter().enumerate() {
            let want = values[n - 1 - i];
            assert!((got - want).abs() <= 1e-10 * scale, "{name} top {i}: {got} vs {want}");
        }
        for (i, got) in bottom.values.iter().enumerate() {
            assert!((got - values[i]).abs() <= 1e-10 * scale, "{name} bottom {i}: {got}");
        }
        for r in [&top, &bottom] {
            for (j, x) in r.vectors.iter().enumerate() {
                let mut ax = vec![0.0; n];
                op.apply(x, &mut ax).unwrap();
                let res: f64 = ax
                    .iter()
                    .zip(x)
                    .map(|(a, b)| (a - r.values[j] * b).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!(res <= 1e-9 * scale, "{name}: Ritz pair {j} has residual {res}");
                assert!(
                    r.residual_norms[j] <= 1e-9 * scale,
                    "{name}: reported {}",
                    r.residual_norms[j]
                );
            }
        }
    });
}

#[test]
fn hutch_plus_plus_with_3n_products_is_the_exact_trace_for_every_kind() {
    // ⌊m/3⌋ = n columns span everything A can reach, so the deflated remainder is zero.
    for_every_kind(|name, op, dense, values| {
        let n = values.len();
        let trace: f64 = (0..n).map(|i| dense[(i, i)]).sum();
        let scale: f64 = values.iter().map(|v| v.abs()).sum();
        let est = hutch_plus_plus_trace(op, 3 * n, 1).unwrap().estimate;
        assert!((est - trace).abs() <= 1e-10 * scale, "{name}: {est} vs {trace}");
    });
}

#[test]
fn stochastic_estimators_agree_with_the_dense_truth_for_every_kind() {
    for_every_kind(|name, op, dense, values| {
        let n = values.len();
        let trace: f64 = values.iter().sum();
        let frobenius: f64 = dense.data().iter().map(|x| x * x).sum();
        let diagonal_sq: f64 = (0..n).map(|i| dense[(i, i)].powi(2)).sum();
        // Hutchinson with 400 probes: within 5 closed-form standard errors of tr(A).
        let sd = (2.0 * (frobenius - diagonal_sq) / 400.0).sqrt();
        let h = hutchinson_trace(op, 400, 2).unwrap();
        assert!(
            (h.estimate - trace).abs() <= 5.0 * sd + 1e-12,
            "{name}: {} vs {trace}",
            h.estimate
        );
        // The diagonal estimate with the same probes sums to the same trace estimate.
        let diag = estimate_diagonal(op, 400, 2).unwrap();
        let sum: f64 = diag.iter().sum();
        assert!((sum - h.estimate).abs() <= 1e-10 * frobenius.sqrt() * n as f64, "{name}");
        // SLQ's tr(A) is Hutchinson's (Gauss quadrature is exact for degree 1), and its
        // nodes lie inside [λ_min, λ_max] (Ritz values interlace).
        let density = spectral_density(op, 10, 8, 2).unwrap();
        let h10 = hutchinson_trace(op, 10, 2).unwrap().estimate;
        assert!((density.trace_of(|t| t) - h10).abs() <= 1e-10 * frobenius.sqrt() * n as f64);
        let (lo, hi) = (values[0], values[n - 1]);
        let slack = 1e-10 * lo.abs().max(hi.abs());
        assert!(density.nodes.iter().all(|t| *t >= lo - slack && *t <= hi + slack), "{name}");
    });
}

/// Lanczos on the Hessian of a recorded pass (`problem.at(θ)?.hessian()`, what the docs and
/// the benchmark use) gives the same Ritz pairs as Lanczos on fresh passes
/// (`problem.hessian_vector_product(θ, ·)` per product): the pass changes the cost, not the
/// result. With the pass's dual `H v` the two are equal bit for bit; with its fused `H v`
/// (this MLP is layered) the sums run in another order, so they agree to 1e-12 relative.
#[test]
fn lanczos_on_a_recorded_pass_equals_lanczos_on_fresh_passes() {
    let mlp = Mlp::new(&[3, 5, 3], &[Activation::Tanh, Activation::Identity]).unwrap();
    let x = Matrix::from_fn(6, 3, |i, j| ((i * 3 + j) as f64 * 0.7).sin());
    let y = Matrix::from_fn(6, 3, |i, j| f64::from((i + 1) % 3 == j));
    let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let theta: Vec<f64> = (0..mlp.num_params()).map(|k| (k as f64 * 1.3).cos()).collect();
    let params = LanczosParams::new(4, Which::LargestMagnitude).steps(12).seed(5);
    let pass = problem.at(&theta).unwrap();
    let fresh_operator =
        FnOperator::new(theta.len(), |u| problem.hessian_vector_product(&theta, u)).symmetric();
    let fresh = lanczos(&fresh_operator, &params).unwrap();
    let dual_operator =
        FnOperator::new(theta.len(), |u| pass.dual_hessian_vector_product(u)).symmetric();
    let dual = lanczos(&dual_operator, &params).unwrap();
    assert_eq!(dual.values, fresh.values);
    assert_eq!(dual.vectors, fresh.vectors);
    assert_eq!(dual.residual_norms, fresh.residual_norms);
    assert_eq!(dual.ritz_values, fresh.ritz_values);
    let fused = lanczos(&pass.hessian(), &params).unwrap();
    let scale = fresh.values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    for (a, b) in fused.values.iter().zip(&fresh.values) {
        assert!((a - b).abs() <= 1e-12 * scale, "fused Ritz value {a} vs fresh {b}");
    }
    for (u, w) in fused.vectors.iter().zip(&fresh.vectors) {
        for (a, b) in u.iter().zip(w) {
            assert!((a - b).abs() <= 1e-10, "fused Ritz vector entry {a} vs fresh {b}");
        }
    }
}
