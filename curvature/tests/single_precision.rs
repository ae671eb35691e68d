//! `J v` and `H v` of a model run in `f32` (the same generic model code on an `f32` tape, a
//! `Dual<f32>` forward pass and a `Dual<f32>` reverse sweep) against the `f64` products of
//! `curvature` and against central differences of the `f64` forward pass and gradient.
//!
//! Tolerance: norm-wise relative `1e-5` (the largest error over the largest reference
//! magnitude). `f32` rounds at `6e-8`; through a 3-6-2 tanh network, a batch of 8 and the loss
//! the errors observed are below `1e-6`, so the bound leaves a margin of 10 and still catches an
//! error of `1e-4` in one of the `f32` kernels. The differences (Richardson-extrapolated
//! central differences in `f64`) are accurate to about `1e-10`, far inside that tolerance.

use autodiff::check::{central_difference, compare, CheckReport};
use autodiff::random::{random_matrix, random_vector};
use autodiff::{Dual, Matrix, Tape};
use curvature::loss::SquaredError;
use curvature::{Activation, Mlp, Model, Problem};
use rand::{rngs::StdRng, SeedableRng};

const SINGLE: f64 = 1e-5;

struct Setup {
    mlp: Mlp,
    x: Matrix<f64>,
    y: Matrix<f64>,
    theta: Vec<f64>,
    v: Vec<f64>,
}

fn setup(seed: u64) -> Setup {
    let mut rng = StdRng::seed_from_u64(seed);
    let mlp = Mlp::new(&[3, 6, 2], &[Activation::Tanh, Activation::Identity]).unwrap();
    let x = random_matrix(8, 3, &mut rng);
    let y = random_matrix(8, 2, &mut rng);
    let theta = random_vector(mlp.num_params(), &mut rng);
    let v = random_vector(mlp.num_params(), &mut rng);
    Setup { mlp, x, y, theta, v }
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

fn widen(values: impl IntoIterator<Item = f32>) -> Vec<f64> {
    values.into_iter().map(f64::from).collect()
}

/// `J v` by a tangent sweep over an `f32` tape.
fn jacobian_vector_product_f32_tape(s: &Setup) -> Vec<f64> {
    let tape = Tape::<f32>::new();
    let theta = tape.input(Matrix::column(to_f32(&s.theta)));
    let z = s.mlp.forward(&tape, theta, tape.constant_f64(&s.x)).unwrap();
    let mut tangents = tape.tangents_of([(theta, Matrix::column(to_f32(&s.v)))], &[z]).unwrap();
    widen(tangents.take(z).unwrap().into_vec())
}

/// `J v` as the tangent part of a forward pass on `Dual<f32>`.
fn jacobian_vector_product_f32_dual(s: &Setup) -> Vec<f64> {
    let tape = Tape::<Dual<f32>>::new();
    let duals = s.theta.iter().zip(&s.v).map(|(&t, &d)| Dual::new(t as f32, d as f32)).collect();
    let theta = tape.input(Matrix::column(duals));
    let z = s.mlp.forward(&tape, theta, tape.constant_f64(&s.x)).unwrap();
    widen(z.value().data().iter().map(|d| d.eps))
}

/// `H v` of `h(θ) = (1/N) Σ_n ½‖f(x_n, θ) − y_n‖²` (the squared error, written on the tape) by
/// a reverse sweep over a `Dual<f32>` tape; also returns `h` for a consistency check.
fn hessian_vector_product_f32(s: &Setup) -> (f64, Vec<f64>) {
    let tape = Tape::<Dual<f32>>::new();
    let duals = s.theta.iter().zip(&s.v).map(|(&t, &d)| Dual::new(t as f32, d as f32)).collect();
    let theta = tape.input(Matrix::column(duals));
    let z = s.mlp.forward(&tape, theta, tape.constant_f64(&s.x)).unwrap();
    let residual = z.sub(tape.constant_f64(&s.y)).unwrap();
    let h = residual.square().unwrap().sum().unwrap().scale(0.5 / s.x.rows() as f64).unwrap();
    let seed = Matrix::filled(1, 1, Dual::new(1.0_f32, 0.0));
    let mut adjoints = tape.backward_tangents(&[(h, seed)]).unwrap();
    let hv = widen(adjoints.take(theta).unwrap().data().iter().map(|d| d.eps));
    (f64::from(h.value()[(0, 0)].re), hv)
}

fn check(what: &str, computed: &[f64], reference: &[f64]) -> CheckReport {
    let report = compare(what, computed, reference, SINGLE).unwrap();
    report.assert_passed();
    // Not bit-identical to f64: the products really ran in single precision.
    assert!(report.max_rel_error > 0.0, "{report}");
    report
}

#[test]
fn f32_jacobian_vector_products_match_f64_and_differences() {
    for seed in 0..3 {
        let s = setup(seed);
        let problem = Problem::new(&s.mlp, &SquaredError, &s.x, &s.y).unwrap();
        let f64_jv = problem.at(&s.theta).unwrap().jacobian_vector_product(&s.v).unwrap();
        let differences = central_difference(1e-3, |t| {
            let shifted: Vec<f64> = s.theta.iter().zip(&s.v).map(|(a, b)| a + t * b).collect();
            Ok(curvature::model::forward_values(&s.mlp, &shifted, &s.x).unwrap().into_vec())
        })
        .unwrap();
        // The differences themselves against the f64 product: a tier far below SINGLE.
        compare("f64 J v vs differences", f64_jv.data(), &differences, 1e-8)
            .unwrap()
            .assert_passed();
        for (what, jv) in [
            ("f32 tape", jacobian_vector_product_f32_tape(&s)),
            ("Dual<f32> forward", jacobian_vector_product_f32_dual(&s)),
        ] {
            check(&format!("J v, {what} vs f64"), &jv, f64_jv.data());
            check(&format!("J v, {what} vs differences"), &jv, &differences);
        }
    }
}

#[test]
fn f32_hessian_vector_products_match_f64_and_differences() {
    for seed in 0..3 {
        let s = setup(seed);
        let problem = Problem::new(&s.mlp, &SquaredError, &s.x, &s.y).unwrap();
        let pass = problem.at(&s.theta).unwrap();
        let f64_hv = pass.hessian_vector_product(&s.v).unwrap();
        let differences = central_difference(1e-3, |t| {
            let shifted: Vec<f64> = s.theta.iter().zip(&s.v).map(|(a, b)| a + t * b).collect();
            Ok(problem.at(&shifted).unwrap().gradient().unwrap())
        })
        .unwrap();
        compare("f64 H v vs differences of the gradient", &f64_hv, &differences, 1e-8)
            .unwrap()
            .assert_passed();
        let (loss, hv) = hessian_vector_product_f32(&s);
        // The tape's objective is the problem's (½‖z − y‖², averaged), to f32 round-off.
        let f64_loss = pass.loss().unwrap();
        assert!((loss - f64_loss).abs() <= SINGLE * f64_loss.abs(), "{loss} vs {f64_loss}");
        check("H v, Dual<f32> sweep vs f64", &hv, &f64_hv);
        check("H v, Dual<f32> sweep vs differences", &hv, &differences);
    }
}
