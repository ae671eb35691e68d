//! K-FAC and EKFAC against the exact curvature blocks built by the products (`ForwardPass::ggn`
//! and friends, materialized column by column): a reference computed another way.

use super::*;
use crate::loss::{self, by_name, PredictiveDistribution};
use crate::operator::{dense_block, layer_blocks, LinearOperator};
use crate::{Activation, Mlp, Problem};
use autodiff::linalg::symmetric_eigen;
use autodiff::random::random_matrix;
use autodiff::Matrix;
use rand::{rngs::StdRng, Rng, SeedableRng};

fn frobenius(a: &Matrix<f64>) -> f64 {
    a.data().iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `‖A − B‖_F / ‖B‖_F`.
fn relative_error(a: &Matrix<f64>, b: &Matrix<f64>) -> f64 {
    let diff = Matrix::from_fn(a.rows(), a.cols(), |i, j| a[(i, j)] - b[(i, j)]);
    frobenius(&diff) / frobenius(b).max(f64::MIN_POSITIVE)
}

fn theta_for(mlp: &Mlp, rng: &mut StdRng, scale: f64) -> Vec<f64> {
    (0..mlp.num_params()).map(|_| scale * rng.random_range(-1.0..1.0)).collect()
}

/// Per-layer relative errors of `approx` against `exact` (both dense).
fn block_errors(mlp: &Mlp, approx: &Matrix<f64>, exact: &Matrix<f64>) -> Vec<f64> {
    layer_blocks(mlp)
        .into_iter()
        .map(|r| {
            let a = dense_block(approx, r.clone(), r.clone()).unwrap();
            let b = dense_block(exact, r.clone(), r).unwrap();
            relative_error(&a, &b)
        })
        .collect()
}

/// Valid targets for any loss: drawn from `R_{y|z}` at the network's outputs.
fn sampled_targets(
    mlp: &Mlp,
    dist: &dyn PredictiveDistribution,
    x: &Matrix<f64>,
    theta: &[f64],
    seed: u64,
) -> Matrix<f64> {
    let outputs = crate::model::forward_values(mlp, theta, x).unwrap();
    loss::sample_targets(dist, &outputs, &mut StdRng::seed_from_u64(seed)).unwrap()
}

#[test]
fn permutation_between_theta_and_the_extended_matrix() {
    // W = [[1, 2], [3, 4]], b = [5, 6] in θ's layout.
    let layer =
        KfacLayer { weights: 0..4, biases: 4..6, a: Matrix::zeros(3, 3), g: Matrix::zeros(2, 2) };
    let block = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let x = layer.to_extended(&block);
    assert_eq!(x.data(), &[1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    let mut back = [0.0; 6];
    layer.write_extended(&x, &mut back);
    assert_eq!(back, block);
}

/// One example: K-FAC's mean of products is a product of means, so every block is exact,
/// for a deep linear network and for a tanh network alike.
#[test]
fn one_example_type2_blocks_equal_the_ggn_blocks() {
    let mut rng = StdRng::seed_from_u64(3);
    let cases = [
        (vec![3, 4, 3, 2], vec![Activation::Identity; 3], "squared_error"),
        (vec![3, 4, 3, 3], vec![Activation::Identity; 3], "softmax_cross_entropy"),
        (
            vec![2, 5, 4, 3],
            vec![Activation::Tanh, Activation::Tanh, Activation::Identity],
            "softmax_cross_entropy",
        ),
    ];
    for (sizes, activations, name) in cases {
        let mlp = Mlp::new(&sizes, &activations).unwrap();
        let dist = by_name(name).unwrap();
        let x = random_matrix(1, sizes[0], &mut rng);
        let theta = theta_for(&mlp, &mut rng, 0.8);
        let y = sampled_targets(&mlp, &*dist, &x, &theta, 1);
        let problem = Problem::new(&mlp, &*dist, &x, &y).unwrap();
        let pass = problem.at(&theta).unwrap();
        let kfac = pass.kfac(&KfacKind::Type2).unwrap().to_dense().unwrap();
        let ggn = pass.ggn().to_dense().unwrap();
        for (i, e) in block_errors(&mlp, &kfac, &ggn).iter().enumerate() {
            assert!(*e < 1e-12, "{name} {sizes:?}: layer {} relative error {e:e}", i + 1);
        }
        // The Monte-Carlo and empirical variants equal their exact counterparts too.
        let mc = pass.kfac(&KfacKind::MonteCarlo { seed: 9 }).unwrap().to_dense().unwrap();
        let mc_exact = pass.monte_carlo_fisher(1, 9).unwrap().to_dense().unwrap();
        let emp = pass.kfac(&KfacKind::Empirical).unwrap().to_dense().unwrap();
        let emp_exact = pass.empirical_fisher().to_dense().unwrap();
        for (i, (a, b)) in block_errors(&mlp, &mc, &mc_exact)
            .into_iter()
            .zip(block_errors(&mlp, &emp, &emp_exact))
            .enumerate()
        {
            assert!(a < 1e-12 && b < 1e-12, "{name}: layer {}: MC {a:e}, empirical {b:e}", i + 1);
        }
    }
}

/// One layer and one datum, every built-in loss (its `H_L` factored by eigenvalues, so
/// singular and indefinite `H_L` are exact too).
#[test]
fn one_layer_one_datum_type2_block_equals_the_ggn_block_for_every_loss() {
    let mut rng = StdRng::seed_from_u64(5);
    for name in loss::NAMES {
        let dist = by_name(name).unwrap();
        let (m, activation) = match name {
            "gaussian_natural" | "gaussian_mean_logvar" => (2, Activation::Identity),
            "categorical_probabilities" => (3, Activation::Softmax),
            _ => (3, Activation::Identity),
        };
        let mlp = Mlp::new(&[4, m], &[activation]).unwrap();
        let x = random_matrix(1, 4, &mut rng);
        // Small weights and unit biases keep the natural Gaussian's precision positive.
        let mut theta = theta_for(&mlp, &mut rng, 0.1);
        theta[mlp.bias_range(1)].iter_mut().for_each(|b| *b = 1.0);
        let y = sampled_targets(&mlp, &*dist, &x, &theta, 2);
        let pass = Problem::new(&mlp, &*dist, &x, &y).unwrap().at(&theta).unwrap();
        let kfac = pass.kfac(&KfacKind::Type2).unwrap().to_dense().unwrap();
        let ggn = pass.ggn().to_dense().unwrap();
        let e = relative_error(&kfac, &ggn);
        assert!(e < 1e-12, "{name}: relative error {e:e}");
    }
}

/// A tanh network on a batch: K-FAC is an approximation; its errors are reported, finite and
/// below 1, it is symmetric PSD, and EKFAC is never further from the exact blocks.
#[test]
fn batch_kfac_is_a_symmetric_psd_approximation_and_ekfac_is_closer() {
    let mut rng = StdRng::seed_from_u64(7);
    let mlp = Mlp::new(&[3, 5, 4, 3], &[Activation::Tanh, Activation::Tanh, Activation::Identity])
        .unwrap();
    let dist = by_name("softmax_cross_entropy").unwrap();
    let x = random_matrix(12, 3, &mut rng);
    let theta = theta_for(&mlp, &mut rng, 0.8);
    let y = sampled_targets(&mlp, &*dist, &x, &theta, 3);
    let pass = Problem::new(&mlp, &*dist, &x, &y).unwrap().at(&theta).unwrap();
    let kfac = pass.kfac(&KfacKind::Type2).unwrap().to_dense().unwrap();
    let ekfac = pass.ekfac(&KfacKind::Type2).unwrap().to_dense().unwrap();
    let ggn = pass.ggn().to_dense().unwrap();
    let kfac_errors = block_errors(&mlp, &kfac, &ggn);
    let ekfac_errors = block_errors(&mlp, &ekfac, &ggn);
    println!("K-FAC relative errors per layer: {kfac_errors:?}; EKFAC: {ekfac_errors:?}");
    for (i, (k, e)) in kfac_errors.iter().zip(&ekfac_errors).enumerate() {
        assert!(k.is_finite() && *k > 1e-6 && *k < 1.0, "layer {}: K-FAC error {k}", i + 1);
        assert!(*e <= k * (1.0 + 1e-10), "layer {}: EKFAC {e} above K-FAC {k}", i + 1);
    }
    let n = kfac.rows();
    let scale = frobenius(&kfac);
    for i in 0..n {
        for j in 0..i {
            assert!(
                (kfac[(i, j)] - kfac[(j, i)]).abs() <= 1e-14 * scale,
                "asymmetric at ({i}, {j})"
            );
        }
    }
    let lowest = symmetric_eigen(&kfac).unwrap().values[0];
    assert!(lowest >= -1e-12 * scale, "K-FAC has eigenvalue {lowest}");
    // Off the layers' blocks K-FAC is zero.
    let (r1, r2) = (mlp.layer_range(1), mlp.layer_range(2));
    assert!(dense_block(&kfac, r1, r2).unwrap().data().iter().all(|v| *v == 0.0));
}

fn apply(op: &dyn LinearOperator, v: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    op.apply(v, &mut out).unwrap();
    out
}

fn max_relative(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

/// The damped inverses undo their damped operators, built here independently: exact damping
/// `K + λI`, factored damping from the damped factors with π recomputed from the traces.
#[test]
fn inverses_times_their_damped_operators_are_the_identity() {
    let mut rng = StdRng::seed_from_u64(11);
    let mlp = Mlp::new(&[3, 4, 2], &[Activation::Tanh, Activation::Identity]).unwrap();
    let dist = by_name("squared_error").unwrap();
    let x = random_matrix(6, 3, &mut rng);
    let y = random_matrix(6, 2, &mut rng);
    let theta = theta_for(&mlp, &mut rng, 0.7);
    let pass = Problem::new(&mlp, &*dist, &x, &y).unwrap().at(&theta).unwrap();
    let kfac = pass.kfac(&KfacKind::Type2).unwrap();
    let lambda = 0.03;
    let v: Vec<f64> = (0..mlp.num_params()).map(|_| rng.random_range(-1.0..1.0)).collect();

    let exact = kfac.inverse(KfacDamping::Exact { lambda }).unwrap();
    let kv: Vec<f64> = apply(&kfac, &v).iter().zip(&v).map(|(a, b)| a + lambda * b).collect();
    let e = max_relative(&apply(&exact, &kv), &v);
    assert!(e < 1e-10, "exact damping: (K + λI)⁻¹ (K + λI) v off by {e:e}");

    let damped_layers = kfac
        .layers()
        .iter()
        .map(|l| {
            let tr =
                |m: &Matrix<f64>| (0..m.rows()).map(|i| m[(i, i)]).sum::<f64>() / m.rows() as f64;
            let pi = (tr(&l.a) / tr(&l.g)).sqrt();
            let shift = |m: &Matrix<f64>, s: f64| {
                Matrix::from_fn(m.rows(), m.cols(), |i, j| m[(i, j)] + if i == j { s } else { 0.0 })
            };
            KfacLayer {
                a: shift(&l.a, pi * lambda.sqrt()),
                g: shift(&l.g, lambda.sqrt() / pi),
                ..l.clone()
            }
        })
        .collect();
    let damped = Kfac::from_layers(mlp.num_params(), damped_layers).unwrap();
    let factored = kfac.inverse(KfacDamping::Factored { lambda }).unwrap();
    let e = max_relative(&apply(&factored, &apply(&damped, &v)), &v);
    assert!(e < 1e-10, "factored damping: inverse times damped factors off by {e:e}");
    // Single-precision products agree with the f64 ones to f32 round-off.
    let single = factored.clone().with_single_precision_products();
    let (want, got) = (apply(&factored, &v), apply(&single, &v));
    let e = max_relative(&got, &want);
    assert!(e < 1e-5 && e > 0.0, "f32 products off by {e:e}");

    // EKFAC's inverse against EKFAC + λI.
    let ekfac = pass.ekfac(&KfacKind::Type2).unwrap();
    let ev: Vec<f64> = apply(&ekfac, &v).iter().zip(&v).map(|(a, b)| a + lambda * b).collect();
    let e = max_relative(&apply(&ekfac.inverse(lambda).unwrap(), &ev), &v);
    assert!(e < 1e-10, "EKFAC: (E + λI)⁻¹ (E + λI) v off by {e:e}");

    assert!(kfac.inverse(KfacDamping::Exact { lambda: -1.0 }).is_err());
    assert!(ekfac.inverse(f64::NAN).is_err());
}

#[test]
fn blend_is_the_moving_average_of_the_factors_and_rejects_other_layouts() {
    let mut rng = StdRng::seed_from_u64(13);
    let mlp = Mlp::new(&[2, 3, 2], &[Activation::Tanh, Activation::Identity]).unwrap();
    let dist = by_name("squared_error").unwrap();
    let x = random_matrix(5, 2, &mut rng);
    let y = random_matrix(5, 2, &mut rng);
    let problem = Problem::new(&mlp, &*dist, &x, &y).unwrap();
    let k1 =
        problem.at(&theta_for(&mlp, &mut rng, 1.0)).unwrap().kfac(&KfacKind::Empirical).unwrap();
    let k2 =
        problem.at(&theta_for(&mlp, &mut rng, 1.0)).unwrap().kfac(&KfacKind::Empirical).unwrap();
    let mut avg = k1.clone();
    avg.blend(&k2, 0.25).unwrap();
    for (l, (a, b)) in avg.layers().iter().zip(k1.layers().iter().zip(k2.layers())) {
        for (i, v) in l.g.data().iter().enumerate() {
            assert!((v - (0.25 * a.g.data()[i] + 0.75 * b.g.data()[i])).abs() < 1e-15);
        }
        for (i, v) in l.a.data().iter().enumerate() {
            assert!((v - (0.25 * a.a.data()[i] + 0.75 * b.a.data()[i])).abs() < 1e-15);
        }
    }
    assert!(avg.blend(&k2, 1.5).is_err());
    let other = Mlp::new(&[2, 4, 2], &[Activation::Tanh, Activation::Identity]).unwrap();
    let problem = Problem::new(&other, &*dist, &x, &y).unwrap();
    let k3 =
        problem.at(&theta_for(&other, &mut rng, 1.0)).unwrap().kfac(&KfacKind::Empirical).unwrap();
    let err = avg.blend(&k3, 0.5).unwrap_err();
    assert!(err.to_string().contains("layouts differ"), "{err}");
}

/// EKFAC's error against the exact block is never above K-FAC's, over random shapes, seeds
/// and kinds (it is the best matrix diagonal in K-FAC's own eigenbasis).
#[test]
fn ekfac_is_never_further_than_kfac_from_the_exact_blocks() {
    fn property(seed: u64) -> bool {
        let mut rng = StdRng::seed_from_u64(seed);
        let sizes: Vec<usize> = (0..3).map(|_| rng.random_range(1..5)).collect();
        let mlp = Mlp::new(&sizes, &[Activation::Tanh, Activation::Identity]).unwrap();
        let dist = by_name("squared_error").unwrap();
        let rows = rng.random_range(2..9);
        let x = random_matrix(rows, sizes[0], &mut rng);
        let y = random_matrix(rows, sizes[2], &mut rng);
        let theta = theta_for(&mlp, &mut rng, 1.0);
        let pass = Problem::new(&mlp, &*dist, &x, &y).unwrap().at(&theta).unwrap();
        let (kind, exact) = if seed.is_multiple_of(2) {
            (KfacKind::Type2, pass.ggn().to_dense().unwrap())
        } else {
            (KfacKind::Empirical, pass.empirical_fisher().to_dense().unwrap())
        };
        let kfac = pass.kfac(&kind).unwrap().to_dense().unwrap();
        let ekfac = pass.ekfac(&kind).unwrap().to_dense().unwrap();
        block_errors(&mlp, &ekfac, &exact)
            .iter()
            .zip(block_errors(&mlp, &kfac, &exact))
            .all(|(e, k)| *e <= k * (1.0 + 1e-9) + 1e-13)
    }
    quickcheck::QuickCheck::new().tests(12).quickcheck(property as fn(u64) -> bool);
}

#[test]
fn singular_factors_without_damping_are_errors_naming_the_layer() {
    let layer =
        KfacLayer { weights: 0..2, biases: 2..3, a: Matrix::zeros(3, 3), g: Matrix::zeros(1, 1) };
    let kfac = Kfac::from_layers(3, vec![layer.clone()]).unwrap();
    for damping in [KfacDamping::Factored { lambda: 0.0 }, KfacDamping::Exact { lambda: 0.0 }] {
        let err = kfac.inverse(damping).unwrap_err().to_string();
        assert!(err.contains("layer 1") && err.contains("not positive definite"), "{err}");
    }
    assert!(kfac.inverse(KfacDamping::Factored { lambda: 1e-3 }).is_ok());
    // Ranges that do not fit the factors are rejected.
    assert!(Kfac::from_layers(3, vec![KfacLayer { weights: 0..1, ..layer.clone() }]).is_err());
    assert!(Kfac::from_layers(2, vec![layer]).is_err());
}
