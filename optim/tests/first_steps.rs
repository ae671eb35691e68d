//! The first steps of Adam, SGD with momentum and natural gradient with an adapted `λ`, against
//! values worked out by hand on one- and two-parameter quadratics.

mod common;

use common::{diagonal, ModelMismatch};
use curvature::CurvatureKind;
use optim::diagonal::{DiagonalMethod, DiagonalParams};
use optim::natural_gradient::{DirectionSolve, NaturalGradient, NaturalGradientParams};
use optim::schedule::Schedule;
use optim::sgd::GradientDescent;
use optim::{QuadraticObjective, Rejection, Solver};

#[test]
fn adam_first_two_steps_match_the_hand_computed_values_with_bias_correction() {
    // h(θ) = ½‖θ‖² (g = θ) from θ = (1, −4); α = 0.1, β₁ = 0.9, β₂ = 0.999, ε = 0.
    // Step 1: m = 0.1 g, u = 0.001 g², and the corrections 1 − β₁ = 0.1, 1 − β₂ = 0.001 undo
    // the averaging: the step is α g/|g| = 0.1 sign(g), so θ₁ = (0.9, −3.9).
    // Step 2 (g = θ₁): m = 0.9·m + 0.1·g, u = 0.999·u + 0.001·g², corrections 1 − 0.9² = 0.19
    // and 1 − 0.999² = 0.001999:
    //   θ₂[0] = 0.9 − 0.1·(0.18/0.19)/√(0.001809/0.001999)  = 0.80041222767124…
    //   θ₂[1] = −3.9 + 0.1·(0.75/0.19)/√(0.031194/0.001999).
    let mut objective = QuadraticObjective::new(diagonal(&[1.0, 1.0]), vec![0.0, 0.0]).unwrap();
    let mut adam =
        DiagonalMethod::new("Adam", DiagonalParams::adam(0.1, 0.9, 0.999, 0.0).unwrap()).unwrap();
    let mut theta = [1.0, -4.0];
    adam.step(&mut theta, &mut objective).unwrap();
    assert!((theta[0] - 0.9).abs() < 1e-15 && (theta[1] + 3.9).abs() < 1e-15, "θ₁ = {theta:?}");
    adam.step(&mut theta, &mut objective).unwrap();
    let second = [
        0.9 - 0.1 * (0.18 / 0.19) / (0.001809_f64 / 0.001999).sqrt(),
        -3.9 + 0.1 * (0.75 / 0.19) / (0.031194_f64 / 0.001999).sqrt(),
    ];
    assert!((second[0] - 0.800_412_227_671_246_9).abs() < 1e-15);
    for i in 0..2 {
        assert!(
            (theta[i] - second[i]).abs() <= 1e-14 * second[i].abs(),
            "θ₂[{i}] = {}, by hand {}",
            theta[i],
            second[i]
        );
    }
}

#[test]
fn adam_puts_epsilon_outside_the_square_root() {
    // h(θ) = ½θ², θ = 1, α = 0.1, ε = 0.5: the bias-corrected m̂ = 1, û = 1, and the step is
    // α m̂ / (√û + ε) = 0.1/1.5, not α m̂ / √(û + ε) = 0.1/√1.5.
    let mut objective = QuadraticObjective::new(diagonal(&[1.0]), vec![0.0]).unwrap();
    let mut adam =
        DiagonalMethod::new("Adam", DiagonalParams::adam(0.1, 0.9, 0.999, 0.5).unwrap()).unwrap();
    let mut theta = [1.0];
    adam.step(&mut theta, &mut objective).unwrap();
    assert!((theta[0] - (1.0 - 0.1 / 1.5)).abs() < 1e-15, "θ₁ = {}", theta[0]);
}

#[test]
fn momentum_first_three_steps_match_the_hand_computed_values() {
    // h(θ) = θ² − θ (g = 2θ − 1) from θ = 1, α = 0.1, μ = 0.9; v ← μv − αg, θ ← θ + v:
    //   g = 1     v = −0.1                   θ = 0.9
    //   g = 0.8   v = −0.09 − 0.08 = −0.17   θ = 0.73
    //   g = 0.46  v = −0.153 − 0.046 = −0.199 θ = 0.531
    let mut objective = QuadraticObjective::new(diagonal(&[2.0]), vec![1.0]).unwrap();
    let mut solver = GradientDescent::new(Schedule::constant(0.1).unwrap(), 0.9).unwrap();
    let mut theta = [1.0];
    for (expected_theta, expected_velocity) in [(0.9, 0.1), (0.73, 0.17), (0.531, 0.199)] {
        let report = solver.step(&mut theta, &mut objective).unwrap();
        assert!(
            (theta[0] - expected_theta).abs() < 1e-15,
            "θ = {}, by hand {expected_theta}",
            theta[0]
        );
        assert!((report.step_norm - expected_velocity).abs() < 1e-15, "‖v‖ = {}", report.step_norm);
    }
    // μ = 0 is plain gradient descent: θ = 1 − 0.1·1 = 0.9, then 0.9 − 0.1·0.8 = 0.82.
    let mut solver = GradientDescent::new(Schedule::constant(0.1).unwrap(), 0.0).unwrap();
    let mut theta = [1.0];
    solver.step(&mut theta, &mut objective).unwrap();
    solver.step(&mut theta, &mut objective).unwrap();
    assert!((theta[0] - 0.82).abs() < 1e-15, "θ = {}", theta[0]);
}

fn natural_gradient(alpha: f64, adapt_lambda: bool) -> NaturalGradient {
    NaturalGradient::new(NaturalGradientParams {
        kind: CurvatureKind::Ggn,
        schedule: Schedule::constant(alpha).unwrap(),
        lambda: 1.0,
        adapt_lambda,
        solve: DirectionSolve::Dense,
    })
    .unwrap()
}

#[test]
fn natural_gradient_adapts_lambda_from_the_reduction_ratio() {
    // h(θ) = ½aθ² − θ with curvature B = 1 and λ = 1, from θ = 0, α = 1: δ = −g/(B + λ) = ½,
    // predicted reduction −(gδ + ½Bδ²) = 3/8, actual ½ − a/8, so ρ = (4 − a)/3.
    for (rho, lambda_after) in [(0.24, 1.5), (0.26, 1.0), (0.74, 1.0), (0.76, 2.0 / 3.0)] {
        let mut objective = ModelMismatch::scalar(4.0 - 3.0 * rho, 1.0, 1.0);
        let mut solver = natural_gradient(1.0, true);
        let mut theta = [0.0];
        let report = solver.step(&mut theta, &mut objective).unwrap();
        assert!((report.rho.unwrap() - rho).abs() < 1e-14, "ρ = {:?}, wanted {rho}", report.rho);
        assert!((report.predicted_reduction.unwrap() - 0.375).abs() < 1e-15);
        assert!(
            (solver.lambda() - lambda_after).abs() < 1e-15,
            "ρ = {rho}: λ = {}",
            solver.lambda()
        );
        assert!(
            (theta[0] - 0.5).abs() < 1e-15,
            "ρ = {rho}: a decrease is accepted, θ = {}",
            theta[0]
        );
        assert_eq!(report.rejected, None);
    }
    // α enters the prediction: α = ½, a = 1 (the model is exact): the step αδ = ¼ is predicted
    // to gain −(α gδ + ½α²Bδ²) = 7/32 and gains ¼ − 1/32 = 7/32, so ρ = 1 and λ falls.
    let mut objective = ModelMismatch::scalar(1.0, 1.0, 1.0);
    let mut solver = natural_gradient(0.5, true);
    let mut theta = [0.0];
    let report = solver.step(&mut theta, &mut objective).unwrap();
    assert!((report.predicted_reduction.unwrap() - 7.0 / 32.0).abs() < 1e-15);
    assert!((report.rho.unwrap() - 1.0).abs() < 1e-14);
    assert!((solver.lambda() - 2.0 / 3.0).abs() < 1e-15);
    assert!((theta[0] - 0.25).abs() < 1e-15, "θ = {}", theta[0]);
}

#[test]
fn natural_gradient_with_adapted_lambda_rejects_a_step_that_raises_the_loss() {
    // a = 5: h(½) = 5/8 − ½ = 1/8 > h(0) = 0, ρ = −⅓. Adapted: the step is refused, θ stays,
    // λ rises to 3/2. Not adapted: the step is taken and λ stays 1.
    let mut objective = ModelMismatch::scalar(5.0, 1.0, 1.0);
    let mut solver = natural_gradient(1.0, true);
    let mut theta = [0.0];
    let report = solver.step(&mut theta, &mut objective).unwrap();
    assert_eq!(report.rejected, Some(Rejection::NoDecrease));
    assert!((report.rho.unwrap() + 1.0 / 3.0).abs() < 1e-14, "ρ = {:?}", report.rho);
    assert_eq!(theta, [0.0]);
    assert_eq!(solver.lambda(), 1.5);

    let mut solver = natural_gradient(1.0, false);
    let mut theta = [0.0];
    let report = solver.step(&mut theta, &mut objective).unwrap();
    assert_eq!(report.rejected, None);
    assert_eq!(report.rho, None, "ρ needs the extra product, skipped when λ is fixed");
    assert!((theta[0] - 0.5).abs() < 1e-15, "θ = {}", theta[0]);
    assert_eq!(solver.lambda(), 1.0);
}
