//! The fused `H v` of a recorded pass (one tangent sweep and one reverse sweep over the pass's
//! tape, summing the Section 8.1.2 terms) against two references that share no code with it:
//! the dual `H v` (a dual forward of `forward` and a dual reverse sweep,
//! `ForwardPass::dual_hessian_vector_product`) and the dense Hessian of the whole objective
//! written on a tape and differentiated by `autodiff::modes::dense_hessian`.
//!
//! Tolerance: the fused and dual sums run in different orders, so they are not bit-identical;
//! they agree to `1e-12` of the largest entry of the dual `H v` (observed max printed by
//! `fused_hessian_vector_products_match_the_dual_pass_on_random_networks` with `--nocapture`).

use autodiff::modes::{dense_hessian, Function};
use autodiff::random::{random_matrix, random_vector};
use autodiff::{Matrix, Scalar, Tape, Var};
use curvature::loss::{self, PredictiveDistribution};
use curvature::{Activation, LinearOperator, Mlp, Model, Problem};
use quickcheck::{QuickCheck, TestResult};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::cell::Cell;

/// Fused against dual: `max |fused − dual| / max |dual|`.
const FUSED_VS_DUAL: f64 = 1e-12;
/// Against the dense autodiff Hessian (built from `n` dual products, summed in yet another
/// order).
const DENSE: f64 = 1e-11;

fn max_abs(values: &[f64]) -> f64 {
    values.iter().fold(0.0_f64, |m, x| m.max(x.abs()))
}

fn relative_difference(a: &[f64], b: &[f64]) -> f64 {
    let scale = max_abs(a).max(max_abs(b)).max(1e-300);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

const HIDDEN: [Activation; 5] = [
    Activation::Identity,
    Activation::Tanh,
    Activation::Logistic,
    Activation::Relu,
    Activation::Softplus,
];

/// A network, its loss, a batch `(x, y)`, θ and a description for failure messages.
struct Case {
    mlp: Mlp,
    loss: Box<dyn PredictiveDistribution>,
    x: Matrix<f64>,
    y: Matrix<f64>,
    theta: Vec<f64>,
    label: String,
}

/// A random MLP whose output layer fits `loss_name`, a batch with valid targets and θ.
fn random_case(rng: &mut StdRng, loss_name: &str) -> Case {
    let loss = loss::by_name(loss_name).expect("known loss");
    let out_dim = match loss_name {
        "gaussian_mean_logvar" | "gaussian_natural" => 2 * rng.random_range(1..=2),
        _ => rng.random_range(2..=3),
    };
    let depth = rng.random_range(0..=3);
    let mut sizes = vec![rng.random_range(1..=4)];
    let mut activations = Vec::new();
    for _ in 0..depth {
        sizes.push(rng.random_range(1..=4));
        activations.push(HIDDEN[rng.random_range(0..HIDDEN.len())]);
    }
    sizes.push(out_dim);
    activations.push(match loss_name {
        "categorical_probabilities" => Activation::Softmax,
        "gaussian_natural" => Activation::Softplus,
        _ => Activation::Identity,
    });
    let mlp = Mlp::new(&sizes, &activations).unwrap();
    let batch = rng.random_range(1..=5);
    let x = random_matrix(batch, sizes[0], rng);
    let theta: Vec<f64> = random_vector(mlp.num_params(), rng).iter().map(|t| 0.8 * t).collect();
    let z = random_matrix(batch, out_dim, rng);
    let z = match loss_name {
        "gaussian_natural" => z.map(|v| 0.5 + v.abs()),
        "categorical_probabilities" => Matrix::from_fn(batch, out_dim, |i, j| {
            let total: f64 = z.row(i).iter().map(|v| v.exp()).sum();
            z[(i, j)].exp() / total
        }),
        _ => z,
    };
    let y = loss::sample_targets(loss.as_ref(), &z, rng).unwrap();
    let label = format!("sizes {sizes:?}, activations {activations:?}, loss {loss_name}");
    Case { mlp, loss, x, y, theta, label }
}

/// Random MLPs (identity, tanh, logistic, ReLU, softplus hidden layers; softmax and softplus
/// output layers), every built-in loss, random batches, θ and `v`: fused `H v` equals the dual
/// `H v` to 1e-12 relative, and the pass's `hessian()` operator takes the fused path.
#[test]
fn fused_hessian_vector_products_match_the_dual_pass_on_random_networks() {
    thread_local!(static WORST: Cell<f64> = const { Cell::new(0.0) });
    fn prop(seed: u64, loss_pick: u8) -> TestResult {
        let mut rng = StdRng::seed_from_u64(seed);
        let loss_name = loss::NAMES[loss_pick as usize % loss::NAMES.len()];
        let Case { mlp, loss, x, y, theta, label } = random_case(&mut rng, loss_name);
        let problem = Problem::new(&mlp, loss.as_ref(), &x, &y).unwrap();
        let pass = problem.at(&theta).unwrap();
        for _ in 0..3 {
            let v = random_vector(theta.len(), &mut rng);
            let fused = pass.hessian_vector_product(&v).unwrap();
            let dual = pass.dual_hessian_vector_product(&v).unwrap();
            let mut through_operator = vec![0.0; v.len()];
            pass.hessian().apply(&v, &mut through_operator).unwrap();
            if through_operator != fused {
                return TestResult::error(format!("{label}: hessian() is not the fused H v"));
            }
            let d = relative_difference(&fused, &dual);
            WORST.with(|w| w.set(w.get().max(d)));
            if d > FUSED_VS_DUAL {
                return TestResult::error(format!("{label}: fused vs dual H v {d:e}"));
            }
        }
        TestResult::passed()
    }
    QuickCheck::new().tests(200).quickcheck(prop as fn(u64, u8) -> TestResult);
    println!("fused vs dual H v: worst relative difference {:e}", WORST.with(Cell::get));
}

/// Every loss with one fixed deep tanh/logistic/softplus/ReLU network: fused = dual for each
/// of the six built-in losses (the quickcheck above draws them at random; this names each).
#[test]
fn fused_hessian_vector_products_match_the_dual_pass_for_every_loss() {
    for (k, loss_name) in loss::NAMES.iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(100 + k as u64);
        let out_dim = if loss_name.starts_with("gaussian_m") || *loss_name == "gaussian_natural" {
            4
        } else {
            3
        };
        let last = match *loss_name {
            "categorical_probabilities" => Activation::Softmax,
            "gaussian_natural" => Activation::Softplus,
            _ => Activation::Identity,
        };
        let mlp = Mlp::new(
            &[3, 4, 5, 4, 3, out_dim],
            &[Activation::Tanh, Activation::Logistic, Activation::Softplus, Activation::Relu, last],
        )
        .unwrap();
        let x = random_matrix(6, 3, &mut rng);
        let z = Matrix::from_fn(6, out_dim, |i, j| 0.3 + 0.2 * ((i + 2 * j) as f64).sin().abs());
        let z = if last == Activation::Softmax {
            Matrix::from_fn(6, out_dim, |i, j| z[(i, j)] / z.row(i).iter().sum::<f64>())
        } else {
            z
        };
        let loss = loss::by_name(loss_name).unwrap();
        let y = loss::sample_targets(loss.as_ref(), &z, &mut rng).unwrap();
        let problem = Problem::new(&mlp, loss.as_ref(), &x, &y).unwrap();
        let theta: Vec<f64> =
            random_vector(mlp.num_params(), &mut rng).iter().map(|t| 0.8 * t).collect();
        let pass = problem.at(&theta).unwrap();
        let v = random_vector(theta.len(), &mut rng);
        let fused = pass.hessian_vector_product(&v).unwrap();
        let dual = pass.dual_hessian_vector_product(&v).unwrap();
        let d = relative_difference(&fused, &dual);
        assert!(d <= FUSED_VS_DUAL, "{loss_name}: fused vs dual H v {d:e}");
        // The fresh product (`Problem::hessian_vector_product`, dual, from θ alone) too.
        let fresh = problem.hessian_vector_product(&theta, &v).unwrap();
        let d = relative_difference(&fused, &fresh);
        assert!(d <= FUSED_VS_DUAL, "{loss_name}: fused vs fresh H v {d:e}");
    }
}

/// `½ mean ‖f(x_n, θ) − y_n‖²` or `mean −log softmax(f(x_n, θ))_{y_n}` written on the tape.
struct Objective<'a> {
    mlp: &'a Mlp,
    x: &'a Matrix<f64>,
    y: &'a Matrix<f64>,
    classify: bool,
}

impl Function for Objective<'_> {
    fn eval<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        theta: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        let x = tape.constant_f64(self.x);
        let y = tape.constant_f64(self.y);
        let z = self.mlp.forward(tape, theta, x)?;
        let scale = 1.0 / self.x.rows() as f64;
        if self.classify {
            z.log_softmax()?.mul(y)?.sum()?.scale(-scale)
        } else {
            z.sub(y)?.square()?.sum()?.scale(0.5 * scale)
        }
    }
}

/// The fused Hessian, column by column, equals the dense Hessian of the objective written on
/// the tape (autodiff's own dual Hessian-vector products, no `Problem`, no layers), for
/// squared error and softmax cross-entropy on tanh / logistic / softplus networks.
#[test]
fn fused_hessian_equals_the_dense_hessian_of_the_objective() {
    let mut rng = StdRng::seed_from_u64(7);
    for (activations, classify) in [
        ([Activation::Tanh, Activation::Logistic, Activation::Identity], false),
        ([Activation::Softplus, Activation::Tanh, Activation::Identity], true),
        ([Activation::Logistic, Activation::Softplus, Activation::Identity], true),
    ] {
        let mlp = Mlp::new(&[3, 4, 3, 3], &activations).unwrap();
        let x = random_matrix(5, 3, &mut rng);
        let y = if classify {
            Matrix::from_fn(5, 3, |i, j| f64::from(i % 3 == j))
        } else {
            random_matrix(5, 3, &mut rng)
        };
        let loss: &dyn PredictiveDistribution =
            if classify { &loss::SoftmaxCrossEntropy } else { &loss::SquaredError };
        let theta: Vec<f64> =
            random_vector(mlp.num_params(), &mut rng).iter().map(|t| 0.8 * t).collect();
        let reference =
            dense_hessian(&Objective { mlp: &mlp, x: &x, y: &y, classify }, &theta).unwrap();
        let problem = Problem::new(&mlp, loss, &x, &y).unwrap();
        let pass = problem.at(&theta).unwrap();
        let fused = pass.hessian().to_dense().unwrap();
        let d = relative_difference(fused.data(), reference.data());
        assert!(d <= DENSE, "{activations:?}, classify {classify}: fused vs dense H {d:e}");
    }
}
