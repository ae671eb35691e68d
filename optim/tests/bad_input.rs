//! Bad input and bad steps (issue 17, items 4, 5 and 7): every solver keeps its last good iterate
//! and says why; CG and the quadratic objective refuse what they cannot handle. Each test
//! asserts the error variant or the reported rejection, not merely the absence of a panic.

use autodiff::linalg::{identity, matmul};
use autodiff::random::random_matrix;
use autodiff::Matrix;
use curvature::{CurvatureKind, LinearOperator};
use optim::cg::{conjugate_gradient, CgParams, CgStop};
use optim::diagonal::{DiagonalMethod, DiagonalParams};
use optim::hessian_free::{HessianFree, HessianFreeParams};
use optim::natural_gradient::{DirectionSolve, NaturalGradient, NaturalGradientParams};
use optim::schedule::Schedule;
use optim::sgd::GradientDescent;
use optim::{
    Objective, OptimError, QuadraticObjective, Rejection, Solver, MAX_NON_FINITE_REJECTIONS,
};
use rand::{rngs::StdRng, SeedableRng};

/// A toy objective: `loss` and `gradient` given as functions, a fixed curvature matrix.
struct Toy {
    loss: fn(&[f64]) -> f64,
    gradient: fn(&[f64]) -> Vec<f64>,
    curvature: Matrix<f64>,
}

impl Objective for Toy {
    fn dim(&self) -> usize {
        self.curvature.rows()
    }
    fn loss(&mut self, theta: &[f64]) -> optim::Result<f64> {
        Ok((self.loss)(theta))
    }
    fn loss_and_gradient(&mut self, theta: &[f64], g: &mut [f64]) -> optim::Result<f64> {
        g.copy_from_slice(&(self.gradient)(theta));
        Ok((self.loss)(theta))
    }
    fn curvature(
        &mut self,
        _theta: &[f64],
        _kind: &CurvatureKind,
    ) -> optim::Result<Box<dyn LinearOperator + '_>> {
        Ok(Box::new(&self.curvature))
    }
}

/// `h(θ) = Σθ`: finite everywhere it is finite, gradient 1, so a huge step overflows θ.
fn linear(n: usize) -> Toy {
    Toy { loss: |t| t.iter().sum(), gradient: |t| vec![1.0; t.len()], curvature: identity(n) }
}

/// `h(θ) = ½‖θ‖²` at the starting point θ = (1, 1) and NaN anywhere else (think of a loss
/// evaluated outside its domain): every trial step has a NaN loss.
fn poisoned() -> Toy {
    Toy {
        loss: |t| if t == [1.0, 1.0] { 0.5 * (t[0] * t[0] + t[1] * t[1]) } else { f64::NAN },
        gradient: |t| t.to_vec(),
        curvature: identity(2),
    }
}

/// Steps until the solver errors, checking that each report before the error is the rejection
/// `cause` with θ unchanged; returns the error and the reports' `λ`s.
fn step_until_error(
    solver: &mut dyn Solver,
    objective: &mut dyn Objective,
    theta: &mut [f64],
    cause: Rejection,
) -> (OptimError, Vec<Option<f64>>) {
    let start = theta.to_vec();
    let mut lambdas = Vec::new();
    for k in 0..MAX_NON_FINITE_REJECTIONS {
        match solver.step(theta, objective) {
            Ok(report) => {
                assert_eq!(report.rejected, Some(cause), "{}: step {k}", solver.name());
                assert_eq!(report.step_norm, 0.0, "{}: step {k}", solver.name());
                assert_eq!(report.step_size, 0.0, "{}: step {k}", solver.name());
                lambdas.push(report.lambda);
            }
            Err(e) => {
                assert_eq!(k + 1, MAX_NON_FINITE_REJECTIONS, "{}: early error {e}", solver.name());
                assert_eq!(theta, start.as_slice(), "{}: θ changed", solver.name());
                return (e, lambdas);
            }
        }
        assert_eq!(theta, start.as_slice(), "{}: θ changed at step {k}", solver.name());
    }
    panic!("{}: no error after {MAX_NON_FINITE_REJECTIONS} rejections", solver.name());
}

fn assert_repeated(error: OptimError, solver: &str, cause: Rejection) {
    match error {
        OptimError::RepeatedRejection { solver: s, rejections, cause: c } => {
            assert_eq!((s.as_str(), rejections, c), (solver, MAX_NON_FINITE_REJECTIONS, cause));
        }
        other => panic!("{solver}: expected RepeatedRejection, got {other:?}"),
    }
}

#[test]
fn sgd_rejects_an_overflowing_step_and_errors_after_the_bound() {
    // α g = 1e308 from θ = −1e308 overflows to −∞ (the old code wrote θ = −∞ and returned Ok).
    let mut solver = GradientDescent::new(Schedule::constant(1e308).unwrap(), 0.5).unwrap();
    let mut theta = [-1e308, 0.0];
    let (error, _) =
        step_until_error(&mut solver, &mut linear(2), &mut theta, Rejection::NonFiniteStep);
    assert_repeated(error, "SGD with momentum", Rejection::NonFiniteStep);
}

#[test]
fn sgd_accepts_again_after_a_rejection_and_its_velocity_was_not_poisoned() {
    // One overflowing step, then finite ones: the velocity kept from before the rejection is 0,
    // so the next accepted step from θ is exactly −α g (with the new α).
    let mut solver = GradientDescent::new(Schedule::inverse_time(1e308).unwrap(), 0.9).unwrap();
    let mut theta = [-1e308];
    let report = solver.step(&mut theta, &mut linear(1)).unwrap();
    assert_eq!(report.rejected, Some(Rejection::NonFiniteStep));
    theta[0] = 0.0;
    let report = solver.step(&mut theta, &mut linear(1)).unwrap();
    assert_eq!(report.rejected, None);
    assert_eq!(theta[0], -1e308 / 2.0, "α_1 = c/2, v = 0 − α_1 · 1");
}

#[test]
fn adam_rejects_an_overflowing_step_and_keeps_its_state() {
    let params = DiagonalParams::adam(1e308, 0.9, 0.999, 1e-8).unwrap();
    let mut solver = DiagonalMethod::new("Adam", params.clone()).unwrap();
    let mut theta = [-1e308];
    let (error, _) =
        step_until_error(&mut solver, &mut linear(1), &mut theta, Rejection::NonFiniteStep);
    assert_repeated(error, "Adam", Rejection::NonFiniteStep);
    // The rejected steps left u, m and k alone: from θ = 0 the next step is Adam's first,
    // −α m̂/(√û + ε) with m̂ = û = 1, the same as a fresh solver's.
    let mut fresh = DiagonalMethod::new("Adam", params).unwrap();
    let (mut a, mut b) = ([0.0], [0.0]);
    solver.step(&mut a, &mut linear(1)).unwrap();
    fresh.step(&mut b, &mut linear(1)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[0], -1e308 / (1.0 + 1e-8));
}

#[test]
fn natural_gradient_without_adaptation_rejects_a_nan_loss() {
    // The old code committed θ + αδ without looking at h there.
    for solve in [DirectionSolve::Dense, DirectionSolve::ConjugateGradient(CgParams::default())] {
        let mut solver = NaturalGradient::new(NaturalGradientParams {
            kind: CurvatureKind::Fisher,
            schedule: Schedule::constant(0.5).unwrap(),
            lambda: 0.0,
            adapt_lambda: false,
            solve,
        })
        .unwrap();
        let mut theta = [1.0, 1.0];
        let (error, _) =
            step_until_error(&mut solver, &mut poisoned(), &mut theta, Rejection::NonFiniteLoss);
        assert_repeated(error, "natural gradient (Fisher)", Rejection::NonFiniteLoss);
    }
}

#[test]
fn natural_gradient_with_adaptation_raises_lambda_on_a_nan_loss_until_the_bound() {
    let mut solver = NaturalGradient::new(NaturalGradientParams {
        kind: CurvatureKind::Ggn,
        schedule: Schedule::constant(1.0).unwrap(),
        lambda: 1.0,
        adapt_lambda: true,
        solve: DirectionSolve::Dense,
    })
    .unwrap();
    let mut theta = [1.0, 1.0];
    let (error, lambdas) =
        step_until_error(&mut solver, &mut poisoned(), &mut theta, Rejection::NonFiniteLoss);
    assert_repeated(error, "natural gradient (Ggn)", Rejection::NonFiniteLoss);
    let expected: Vec<Option<f64>> =
        (0..MAX_NON_FINITE_REJECTIONS as i32 - 1).map(|k| Some(1.5f64.powi(k))).collect();
    assert_eq!(lambdas, expected, "λ rises by the LM factor 3/2 per rejection");
}

#[test]
fn natural_gradient_rejects_a_non_finite_direction() {
    // A NaN curvature matrix: CG breaks down; the old code returned NonFinite at once, now the
    // step is a reported rejection and the bound applies.
    let mut objective = Toy {
        loss: |t| 0.5 * t.iter().map(|v| v * v).sum::<f64>(),
        gradient: |t| t.to_vec(),
        curvature: Matrix::filled(2, 2, f64::NAN),
    };
    let mut solver = NaturalGradient::new(NaturalGradientParams {
        kind: CurvatureKind::Ggn,
        schedule: Schedule::constant(1.0).unwrap(),
        lambda: 0.0,
        adapt_lambda: false,
        solve: DirectionSolve::ConjugateGradient(CgParams::default()),
    })
    .unwrap();
    let mut theta = [1.0, 2.0];
    let (error, _) =
        step_until_error(&mut solver, &mut objective, &mut theta, Rejection::NonFiniteStep);
    assert_repeated(error, "natural gradient (Ggn)", Rejection::NonFiniteStep);
}

#[test]
fn hessian_free_rejects_nan_steps_with_step_size_zero_and_bounds_lambda() {
    // The old code returned Ok with step size 1 forever while λ grew by 3/2 per call.
    let mut solver =
        HessianFree::new(HessianFreeParams { preconditioner_exponent: None, ..Default::default() })
            .unwrap();
    let mut theta = [1.0, 1.0];
    let (error, lambdas) =
        step_until_error(&mut solver, &mut poisoned(), &mut theta, Rejection::NonFiniteLoss);
    assert_repeated(error, "Hessian-free", Rejection::NonFiniteLoss);
    let expected: Vec<Option<f64>> =
        (0..MAX_NON_FINITE_REJECTIONS as i32 - 1).map(|k| Some(1.5f64.powi(k))).collect();
    assert_eq!(lambdas, expected);
    assert_eq!(solver.lambda(), 1.5f64.powi(MAX_NON_FINITE_REJECTIONS as i32));
}

#[test]
fn hessian_free_backtracks_past_a_nan_last_iterate() {
    // h = ½θᵀAθ with A = diag(1, 100), NaN within 1e-6 of its minimizer 0: CG reaches 0 at its
    // last iterate, whose loss is NaN; the first, θ + x₁ ≈ (0.99, 0.0), is fine and is taken
    // (the old code gave up at the NaN and rejected the step).
    let mut objective = Toy {
        loss: |t| {
            if t[0].abs().max(t[1].abs()) >= 1e-6 {
                0.5 * (t[0] * t[0] + 100.0 * t[1] * t[1])
            } else {
                f64::NAN
            }
        },
        gradient: |t| vec![t[0], 100.0 * t[1]],
        curvature: Matrix::from_fn(2, 2, |i, j| if i == j { [1.0, 100.0][i] } else { 0.0 }),
    };
    let mut solver = HessianFree::new(HessianFreeParams {
        initial_lambda: 0.0,
        preconditioner_exponent: None,
        ..Default::default()
    })
    .unwrap();
    let mut theta = [1.0, 1.0];
    let report = solver.step(&mut theta, &mut objective).unwrap();
    assert_eq!(report.rejected, None);
    assert!(report.new_loss.unwrap().is_finite() && report.new_loss.unwrap() < 1.0, "{report:?}");
    assert!(theta[0] > 0.9 && theta[1].abs() < 0.1, "θ = {theta:?}");
}

#[test]
fn cg_refuses_a_non_finite_x0_or_b() {
    let a = identity(3);
    let nan_x0 =
        conjugate_gradient(&a, &[1.0; 3], &[0.0, f64::NAN, 0.0], None, &CgParams::default());
    match nan_x0 {
        Err(OptimError::NonFinite { op, detail }) => {
            assert_eq!((op.as_str(), detail.as_str()), ("conjugate_gradient", "x0[1] = NaN"))
        }
        other => panic!("expected NonFinite for x0, got {other:?}"),
    }
    let inf_b =
        conjugate_gradient(&a, &[1.0, 1.0, f64::INFINITY], &[0.0; 3], None, &CgParams::default());
    match inf_b {
        Err(OptimError::NonFinite { detail, .. }) => assert_eq!(detail, "b[2] = inf"),
        other => panic!("expected NonFinite for b, got {other:?}"),
    }
}

/// `φ(x) = ½xᵀAx − bᵀx`, computed directly.
fn model(a: &Matrix<f64>, b: &[f64], x: &[f64]) -> f64 {
    let n = b.len();
    let quad: f64 = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| x[i] * a[(i, j)] * x[j])
        .sum();
    0.5 * quad - b.iter().zip(x).map(|(p, q)| p * q).sum::<f64>()
}

#[test]
fn cg_reports_a_non_symmetric_operator_instead_of_running_away() {
    // A = I + 2(R − Rᵀ) + 0.3R for a random R: far from symmetric. Without the check CG ran its
    // 100 iterations to an iterate with max|x| ≈ 290 and ‖b − Ax‖ ≈ 2.7e3 (‖b‖ ≈ 2.8), labelled
    // MaxIterations; with it, CG stops at the first rise of φ and keeps the iterate before it.
    let n = 8;
    let r = random_matrix(n, n, &mut StdRng::seed_from_u64(0));
    let a = Matrix::from_fn(n, n, |i, j| {
        f64::from(u8::from(i == j)) + 2.0 * (r[(i, j)] - r[(j, i)]) + 0.3 * r[(i, j)]
    });
    let b = vec![1.0; n];
    let params = CgParams { max_iterations: 100, progress_epsilon: None, ..Default::default() };
    let info = conjugate_gradient(&a, &b, &vec![0.0; n], None, &params).unwrap();
    let CgStop::ModelIncreased { increase } = info.stop else {
        panic!("stop was {:?}, x = {:?}", info.stop, info.x)
    };
    assert!(increase > 0.0);
    // The kept iterate is the one before the rise: its φ, computed directly, is the last
    // recorded one and below φ(x0) = 0.
    let phi = model(&a, &b, &info.x);
    let last = *info.model_values.last().unwrap();
    assert!((phi - last).abs() <= 1e-12 * (1.0 + phi.abs()), "φ = {phi}, recorded {last}");
    assert!(phi < 0.0, "φ = {phi}");
    assert!(info.x.iter().all(|v| v.abs() < 10.0), "x = {:?}", info.x);
}

#[test]
fn cg_stops_on_a_runaway_residual_instead_of_reporting_negative_curvature() {
    // A = [[1, 1e8], [0, 1]]: the old code took a second step to x ≈ (−0.67, 6.7e7) with
    // ‖b − Ax‖ ≈ 6.7e15 and returned it labelled NegativeCurvature (pᵀAp ≈ −3.7e47 at the
    // next direction). Now CG keeps the first iterate, x₁ = α b with α = bᵀb / bᵀAb.
    let a = Matrix::from_fn(2, 2, |i, j| [[1.0, 1e8], [0.0, 1.0]][i][j]);
    let b = [1.0, 1.0];
    let params = CgParams { max_iterations: 100, progress_epsilon: None, ..Default::default() };
    let info = conjugate_gradient(&a, &b, &[0.0; 2], None, &params).unwrap();
    let CgStop::ResidualGrowth { factor } = info.stop else {
        panic!("stop was {:?}, x = {:?}", info.stop, info.x)
    };
    assert!(factor > optim::cg::RESIDUAL_GROWTH_LIMIT);
    assert_eq!(info.iterations, 1);
    let alpha = 2.0 / (2.0 + 1e8);
    for x in &info.x {
        assert!((x - alpha).abs() <= 1e-15 * alpha, "x = {:?}", info.x);
    }
    assert!(info.residual_norm < 2.0, "‖r‖ = {}", info.residual_norm);
}

#[test]
fn cg_still_converges_on_ill_conditioned_symmetric_systems() {
    // The rise test must not fire on round-off: X Xᵀ + 1e-4 I (condition number about 1e6),
    // solved to a relative residual of 1e-10.
    let x = random_matrix(40, 40, &mut StdRng::seed_from_u64(7));
    let mut a = matmul(&x, &x.transpose()).unwrap();
    for i in 0..40 {
        a[(i, i)] += 1e-4;
    }
    let b = vec![1.0; 40];
    let params = CgParams { max_iterations: 2000, progress_epsilon: None, ..Default::default() };
    let info = conjugate_gradient(&a, &b, &[0.0; 40], None, &params).unwrap();
    assert_eq!(info.stop, CgStop::Converged);
}

#[test]
fn quadratic_objective_refuses_non_symmetric_and_non_finite_matrices() {
    let a = Matrix::from_fn(3, 3, |i, j| {
        if i == j {
            2.0
        } else if (i, j) == (0, 2) {
            0.5
        } else {
            0.0
        }
    });
    match QuadraticObjective::new(a, vec![0.0; 3]) {
        Err(OptimError::NotSymmetric { i, j, a_ij, a_ji, .. }) => {
            assert_eq!((i.min(j), i.max(j)), (0, 2));
            assert_eq!((a_ij - a_ji).abs(), 0.5);
        }
        other => panic!("expected NotSymmetric, got {other:?}"),
    }
    let mut nan = identity(2);
    nan[(1, 0)] = f64::NAN;
    match QuadraticObjective::new(nan, vec![0.0; 2]) {
        Err(OptimError::NonFinite { detail, .. }) => assert_eq!(detail, "A[1][0] = NaN"),
        other => panic!("expected NonFinite for A, got {other:?}"),
    }
    match QuadraticObjective::new(identity(2), vec![0.0, f64::NEG_INFINITY]) {
        Err(OptimError::NonFinite { detail, .. }) => assert_eq!(detail, "b[1] = -inf"),
        other => panic!("expected NonFinite for b, got {other:?}"),
    }
    match QuadraticObjective::new(Matrix::filled(2, 3, 1.0), vec![0.0; 2]) {
        Err(OptimError::Dimension { expected, actual, .. }) => {
            assert_eq!((expected, actual), (2, 3))
        }
        other => panic!("expected Dimension, got {other:?}"),
    }
    // A product X Xᵀ (symmetric up to round-off) is accepted.
    let x = random_matrix(30, 30, &mut StdRng::seed_from_u64(3));
    assert!(QuadraticObjective::new(matmul(&x, &x.transpose()).unwrap(), vec![0.0; 30]).is_ok());
}

#[test]
fn named_diagonal_methods_report_their_own_setting_names() {
    let cases = [
        (DiagonalParams::adam(1e-3, 0.9, 0.999, -1e-8), "Adam", "epsilon"),
        (DiagonalParams::adam(1e-3, 1.0, 0.999, 1e-8), "Adam", "beta1"),
        (DiagonalParams::adam(1e-3, 0.9, -0.1, 1e-8), "Adam", "beta2"),
        (DiagonalParams::adam(0.0, 0.9, 0.999, 1e-8), "Adam", "alpha"),
        (DiagonalParams::rmsprop(1e-3, 1.5, 1e-8), "RMSprop", "beta"),
        (DiagonalParams::rmsprop(1e-3, 0.9, f64::NAN), "RMSprop", "epsilon"),
        (DiagonalParams::adagrad(1e-3, -1.0), "AdaGrad", "epsilon"),
    ];
    for (result, solver, parameter) in cases {
        match result {
            Err(OptimError::InvalidParameter { solver: s, parameter: p, .. }) => {
                assert_eq!((s.as_str(), p.as_str()), (solver, parameter))
            }
            other => panic!("{solver} {parameter}: expected InvalidParameter, got {other:?}"),
        }
    }
}
