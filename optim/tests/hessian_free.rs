//! Each feature of Hessian-free on its own, on quadratics with closed forms: CG-iterate
//! backtracking, the Levenberg-Marquardt rule for `λ` at `ρ = ¼` and `¾`, the warm start with
//! decay 0.95, and the diagonal preconditioner `(diag(B) + λ)^ξ`.

mod common;

use autodiff::Matrix;
use common::{diagonal, relative_difference, ModelMismatch};
use optim::cg::{CgParams, CgStop};
use optim::hessian_free::{HessianFree, HessianFreeParams};
use optim::{Objective, QuadraticObjective, Solver};

/// Settings with every feature but the one under test switched off: no preconditioner, CG run
/// to convergence (no progress test), `λ` as given.
fn plain(initial_lambda: f64) -> HessianFreeParams {
    HessianFreeParams {
        initial_lambda,
        preconditioner_exponent: None,
        cg: CgParams {
            max_iterations: 50,
            tolerance: 1e-12,
            progress_epsilon: None,
            store_iterates: true,
        },
        ..Default::default()
    }
}

/// `M⁻¹`-preconditioned CG's first iterate for `K x = rhs` from `x0`, written out:
/// `r = rhs − K x0`, `y = M⁻¹ r`, `x1 = x0 + (rᵀy / yᵀK y) y` (`M = I` when `m` is `None`).
fn first_cg_iterate(k: &Matrix<f64>, rhs: &[f64], x0: &[f64], m: Option<&[f64]>) -> Vec<f64> {
    let n = rhs.len();
    let times = |v: &[f64]| -> Vec<f64> {
        (0..n).map(|i| (0..n).map(|j| k[(i, j)] * v[j]).sum()).collect()
    };
    let kx0 = times(x0);
    let r: Vec<f64> = (0..n).map(|i| rhs[i] - kx0[i]).collect();
    let y: Vec<f64> = (0..n).map(|i| r[i] / m.map_or(1.0, |m| m[i])).collect();
    let ky = times(&y);
    let alpha =
        (0..n).map(|i| r[i] * y[i]).sum::<f64>() / (0..n).map(|i| y[i] * ky[i]).sum::<f64>();
    (0..n).map(|i| x0[i] + alpha * y[i]).collect()
}

#[test]
fn backtracking_picks_an_earlier_cg_iterate_when_its_loss_is_lower() {
    // h(θ) = 5‖θ‖² − (θ₁ + θ₂), but the curvature handed to CG is B = diag(1, 10) (λ = 0).
    // From θ = 0, CG on B δ = b takes two iterations: x₁ = (bᵀb / bᵀBb) b = (2/11)(1, 1) and
    // x₂ = B⁻¹b = (1, 0.1). h(x₁) = −4/121 < h(x₂) = 3.95: backtracking must keep x₁.
    let mut objective = ModelMismatch {
        a: diagonal(&[10.0, 10.0]),
        b: vec![1.0, 1.0],
        curvature: diagonal(&[1.0, 10.0]),
    };
    let mut solver = HessianFree::new(plain(0.0)).unwrap();
    let mut theta = [0.0, 0.0];
    let report = solver.step(&mut theta, &mut objective).unwrap();
    assert_eq!(report.cg_iterations, Some(2), "CG ran to x₂");
    assert_eq!(report.cg_stop, Some(CgStop::Converged));
    assert_eq!(report.step_size, 1.0, "x₁ passes Armijo as it is");
    let x1 = [2.0 / 11.0, 2.0 / 11.0];
    assert!(relative_difference(&theta, &x1) < 1e-14, "θ = {theta:?}, x₁ = {x1:?}");
    let new_loss = report.new_loss.unwrap();
    assert!((new_loss - (-4.0 / 121.0)).abs() < 1e-15, "h(x₁) = {new_loss}");

    // The same CG run on an objective that is its own model (A = B): the last iterate x₂ is the
    // minimizer and is kept.
    let mut objective = ModelMismatch {
        a: diagonal(&[1.0, 10.0]),
        b: vec![1.0, 1.0],
        curvature: diagonal(&[1.0, 10.0]),
    };
    let mut solver = HessianFree::new(plain(0.0)).unwrap();
    let mut theta = [0.0, 0.0];
    let report = solver.step(&mut theta, &mut objective).unwrap();
    assert_eq!(report.cg_iterations, Some(2));
    assert!(relative_difference(&theta, &[1.0, 0.1]) < 1e-14, "θ = {theta:?}");
}

#[test]
fn lambda_moves_with_the_reduction_ratio_on_both_sides_of_one_quarter_and_three_quarters() {
    // h(θ) = ½aθ² − θ with curvature β = 1 and λ = 1, from θ = 0: g = −1, δ = 1/(β + λ) = ½,
    // the undamped model predicts −(gδ + ½βδ²) = 3/8, the loss falls by δ − ½aδ² = ½ − a/8,
    // so ρ = (4 − a)/3, and a = 4 − 3ρ sets ρ.
    for (rho, lambda_after) in [(0.24, 1.5), (0.26, 1.0), (0.74, 1.0), (0.76, 2.0 / 3.0)] {
        let mut objective = ModelMismatch::scalar(4.0 - 3.0 * rho, 1.0, 1.0);
        let mut solver = HessianFree::new(plain(1.0)).unwrap();
        let mut theta = [0.0];
        let report = solver.step(&mut theta, &mut objective).unwrap();
        let measured = report.rho.unwrap();
        assert!((measured - rho).abs() < 1e-14, "ρ = {measured}, wanted {rho}");
        assert!((report.predicted_reduction.unwrap() - 0.375).abs() < 1e-15);
        assert_eq!(report.lambda, Some(1.0), "the step used the old λ");
        assert!(
            (solver.lambda() - lambda_after).abs() < 1e-15,
            "ρ = {rho}: λ = {}, wanted {lambda_after}",
            solver.lambda()
        );
        assert_eq!(theta, [0.5], "ρ = {rho}: the step is taken whatever λ does");
    }
}

#[test]
fn the_second_step_warm_starts_cg_from_the_previous_solution_times_the_decay() {
    // One CG iteration per step makes the start point visible in the step: the step is
    // x₁ = x₀ + α r₀ with x₀ = decay · (the previous step's CG solution).
    let a = Matrix::from_fn(2, 2, |i, j| [[3.0, 1.0], [1.0, 2.0]][i][j]);
    let b = vec![1.0, -1.0];
    let damped =
        |lambda: f64| Matrix::from_fn(2, 2, |i, j| a[(i, j)] + if i == j { lambda } else { 0.0 });
    let mut thetas = Vec::new();
    for decay in [0.95, 0.0] {
        let params = HessianFreeParams {
            warm_start_decay: decay,
            cg: CgParams { max_iterations: 1, ..plain(0.5).cg },
            ..plain(0.5)
        };
        let mut solver = HessianFree::new(params).unwrap();
        let mut objective = QuadraticObjective::new(a.clone(), b.clone()).unwrap();
        let mut theta = [0.0, 0.0];
        // Step 1 starts from 0: δ₁ = α b.
        let delta1 = first_cg_iterate(&damped(0.5), &b, &[0.0, 0.0], None);
        let report = solver.step(&mut theta, &mut objective).unwrap();
        assert_eq!(report.step_size, 1.0);
        assert!(relative_difference(&theta, &delta1) < 1e-14, "decay {decay}: step 1");
        // Step 2 starts from decay · δ₁, with the λ the first step's ρ left.
        let lambda = solver.lambda();
        let mut gradient = [0.0; 2];
        objective.loss_and_gradient(&theta, &mut gradient).unwrap();
        let rhs: Vec<f64> = gradient.iter().map(|g| -g).collect();
        let x0: Vec<f64> = delta1.iter().map(|d| decay * d).collect();
        let delta2 = first_cg_iterate(&damped(lambda), &rhs, &x0, None);
        let expected: Vec<f64> = theta.iter().zip(&delta2).map(|(t, d)| t + d).collect();
        let report = solver.step(&mut theta, &mut objective).unwrap();
        assert_eq!(report.step_size, 1.0);
        assert!(
            relative_difference(&theta, &expected) < 1e-14,
            "decay {decay}: θ₂ = {theta:?}, expected {expected:?}"
        );
        thetas.push(theta);
    }
    // The warm start makes a difference far above round-off.
    assert!(relative_difference(&thetas[0], &thetas[1]) > 1e-3, "{thetas:?}");
}

#[test]
fn the_preconditioner_is_the_damped_diagonal_to_the_power_xi() {
    // B = diag(1, 100), λ = 1, ξ = ½: random-sign products give a diagonal matrix's diagonal
    // exactly, so M = (diag(B) + λ)^½ = (√2, √101), and one CG iteration from 0 is
    // y = M⁻¹b, δ = (bᵀy / yᵀ(B + λI)y) y.
    let a = diagonal(&[1.0, 100.0]);
    let b = vec![1.0, 1.0];
    let m = [2.0_f64.sqrt(), 101.0_f64.sqrt()];
    let expected = first_cg_iterate(&diagonal(&[2.0, 101.0]), &b, &[0.0, 0.0], Some(&m));
    let unpreconditioned = first_cg_iterate(&diagonal(&[2.0, 101.0]), &b, &[0.0, 0.0], None);
    let params = HessianFreeParams {
        preconditioner_exponent: Some(0.5),
        cg: CgParams { max_iterations: 1, ..plain(1.0).cg },
        ..plain(1.0)
    };
    let mut solver = HessianFree::new(params).unwrap();
    let mut objective = QuadraticObjective::new(a, b).unwrap();
    let mut theta = [0.0, 0.0];
    let report = solver.step(&mut theta, &mut objective).unwrap();
    assert_eq!(report.step_size, 1.0);
    assert!(relative_difference(&theta, &expected) < 1e-14, "θ = {theta:?}, want {expected:?}");
    assert!(relative_difference(&theta, &unpreconditioned) > 1e-2, "the preconditioner matters");
}

#[test]
fn with_xi_one_the_preconditioner_makes_cg_on_a_diagonal_quadratic_converge_in_one_iteration() {
    // B = diag(1, 10², 10⁴) (condition number 10⁴), λ = 1: with M = diag(B) + λ exactly,
    // M⁻¹(B + λI) = I and CG ends in one iteration at (B + λI)⁻¹b; without it CG needs one
    // iteration per distinct eigenvalue.
    let entries = [1.0, 100.0, 10_000.0];
    let b = vec![1.0, 1.0, 1.0];
    let solution: Vec<f64> = entries.iter().zip(&b).map(|(e, b)| b / (e + 1.0)).collect();
    let mut iterations = Vec::new();
    for exponent in [Some(1.0), None] {
        let params = HessianFreeParams { preconditioner_exponent: exponent, ..plain(1.0) };
        let mut solver = HessianFree::new(params).unwrap();
        let mut objective = QuadraticObjective::new(diagonal(&entries), b.clone()).unwrap();
        let mut theta = [0.0; 3];
        let report = solver.step(&mut theta, &mut objective).unwrap();
        assert_eq!(report.cg_stop, Some(CgStop::Converged));
        assert!(relative_difference(&theta, &solution) < 1e-10, "{exponent:?}: θ = {theta:?}");
        iterations.push(report.cg_iterations.unwrap());
    }
    assert_eq!(iterations[0], 1, "preconditioned");
    assert!(iterations[1] >= 3, "unpreconditioned: {} iterations", iterations[1]);
}
