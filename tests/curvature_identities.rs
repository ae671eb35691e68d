//! The identities of the DESIGN math map, on random layered networks (quickcheck over depths,
//! widths, activations, losses, batches and seeds).
//!
//! Tiers: identities between exact computations hold to 1e-10 of the largest entry (dense
//! matrices of up to ~100 parameters built from products); finite differences to 1e-7.

use autodiff::linalg::symmetric_eigen;
use autodiff::random::{random_matrix, random_vector};
use autodiff::Matrix;
use curvature::loss::{self, PredictiveDistribution};
use curvature::operator::{dense_block, layer_blocks};
use curvature::{Activation, FnOperator, LinearOperator, Mlp, Problem};
use quickcheck::{QuickCheck, TestResult};
use rand::{rngs::StdRng, Rng, SeedableRng};

const EXACT: f64 = 1e-10;

struct Case {
    mlp: Mlp,
    loss: Box<dyn PredictiveDistribution>,
    x: Matrix<f64>,
    y: Matrix<f64>,
    theta: Vec<f64>,
    label: String,
}

const SMOOTH: [Activation; 4] =
    [Activation::Identity, Activation::Tanh, Activation::Logistic, Activation::Softplus];

/// A random network ending in an output layer that fits `loss_name`.
fn random_case(seed: u64, hidden: &[Activation], loss_name: &str) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let loss = loss::by_name(loss_name).expect("known loss");
    let out_dim = match loss_name {
        "gaussian_mean_logvar" | "gaussian_natural" => 2 * rng.random_range(1..=2),
        _ => rng.random_range(2..=3),
    };
    let mut sizes = vec![rng.random_range(1..=3)];
    for _ in hidden {
        sizes.push(rng.random_range(1..=3));
    }
    sizes.push(out_dim);
    // The output layer keeps z in the loss's domain: probabilities for the categorical on
    // probabilities, positive precisions for the natural Gaussian (softplus; any map is fine,
    // since the loss's z is what must be the natural parameter).
    let last = match loss_name {
        "categorical_probabilities" => Activation::Softmax,
        "gaussian_natural" => Activation::Softplus,
        _ => Activation::Identity,
    };
    let mut acts = hidden.to_vec();
    acts.push(last);
    let mlp = Mlp::new(&sizes, &acts).unwrap();
    let batch = rng.random_range(1..=4);
    let x = random_matrix(batch, sizes[0], &mut rng);
    let theta: Vec<f64> =
        random_vector(mlp.num_params(), &mut rng).iter().map(|t| 0.7 * t).collect();
    // Targets drawn from the model's own predictive distribution at a random output, so every
    // target is valid for its loss (one-hot rows, probabilities, reals).
    let z = random_matrix(batch, out_dim, &mut rng);
    let z = if last == Activation::Softplus {
        z.map(|v| 0.5 + v.abs())
    } else if last == Activation::Softmax {
        Matrix::from_fn(batch, out_dim, |i, j| {
            let total: f64 = z.row(i).iter().map(|v| v.exp()).sum();
            z[(i, j)].exp() / total
        })
    } else {
        z
    };
    let y = loss::sample_targets(loss.as_ref(), &z, &mut rng).unwrap();
    let label = format!(
        "seed {seed}, sizes {sizes:?}, activations {acts:?}, loss {loss_name}, batch {batch}"
    );
    Case { mlp, loss, x, y, theta, label }
}

fn max_abs(m: &Matrix<f64>) -> f64 {
    m.data().iter().fold(0.0_f64, |a, x| a.max(x.abs()))
}

fn rel_diff(a: &Matrix<f64>, b: &Matrix<f64>) -> f64 {
    let scale = max_abs(a).max(max_abs(b)).max(1e-300);
    a.data().iter().zip(b.data()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

fn add(ms: &[&Matrix<f64>]) -> Matrix<f64> {
    Matrix::from_fn(ms[0].rows(), ms[0].cols(), |i, j| ms.iter().map(|m| m[(i, j)]).sum())
}

fn pick_hidden(rng: &mut StdRng, depth: usize, pool: &[Activation]) -> Vec<Activation> {
    (0..depth).map(|_| pool[rng.random_range(0..pool.len())]).collect()
}

/// `H = G + residual` (eqn 6) and `H = G + C + Cᵀ + activation term` (Section 8.1.2), dense;
/// `H` symmetric; `C` zero in bias rows and block lower-triangular with zero diagonal blocks.
fn check_decomposition(case: &Case) -> Result<(), String> {
    let problem = Problem::new(&case.mlp, case.loss.as_ref(), &case.x, &case.y).unwrap();
    let pass = problem.at(&case.theta).unwrap();
    let n = case.mlp.num_params();
    // H from the dual pass of `forward` (independent of the layers and of the four terms); the
    // pass's own `hessian()` is fused (the sum of the four terms in one pair of sweeps).
    let h = FnOperator::new(n, |v| pass.dual_hessian_vector_product(v)).to_dense().unwrap();
    let fused = pass.hessian().to_dense().unwrap();
    let g = pass.ggn().to_dense().unwrap();
    let residual = FnOperator::new(n, |v| pass.ggn_residual_vector_product(v)).to_dense().unwrap();
    let c = FnOperator::new(n, |v| pass.c_vector_product(v, None)).to_dense().unwrap();
    let ct = FnOperator::new(n, |v| pass.c_transpose_vector_product(v, None)).to_dense().unwrap();
    let act =
        FnOperator::new(n, |v| pass.activation_term_vector_product(v, None)).to_dense().unwrap();
    let l = &case.label;
    let d = rel_diff(&h, &h.transpose());
    if d > EXACT {
        return Err(format!("{l}: H not symmetric ({d:e})"));
    }
    let d = rel_diff(&fused, &h);
    if d > EXACT {
        return Err(format!("{l}: fused H ≠ dual H ({d:e})"));
    }
    let d = rel_diff(&h, &add(&[&g, &residual]));
    if d > EXACT {
        return Err(format!("{l}: H ≠ G + residual ({d:e})"));
    }
    let d = rel_diff(&h, &add(&[&g, &c, &ct, &act]));
    if d > EXACT {
        return Err(format!("{l}: H ≠ G + C + Cᵀ + activation term ({d:e})"));
    }
    let d = rel_diff(&ct, &c.transpose());
    if d > EXACT {
        return Err(format!("{l}: Cᵀ product ≠ transpose of C ({d:e})"));
    }
    let scale = max_abs(&h).max(1e-300);
    for layer in 1..=case.mlp.num_layers() {
        for row in case.mlp.bias_range(layer) {
            if c.row(row).iter().any(|x| x.abs() > EXACT * scale) {
                return Err(format!("{l}: C has a non-zero bias row {row}"));
            }
        }
        let rows = case.mlp.weight_range(layer);
        for later in layer..=case.mlp.num_layers() {
            let block = dense_block(&c, rows.clone(), case.mlp.layer_range(later)).unwrap();
            if max_abs(&block) > EXACT * scale {
                return Err(format!("{l}: C block (W{layer}, layer {later}) is not zero"));
            }
        }
        let r = case.mlp.layer_range(layer);
        let c_plus_ct = add(&[&c, &ct]);
        if max_abs(&dense_block(&c_plus_ct, r.clone(), r).unwrap()) > EXACT * scale {
            return Err(format!("{l}: C + Cᵀ not zero on diagonal block {layer}"));
        }
    }
    Ok(())
}

#[test]
fn hessian_decomposes_into_ggn_cross_and_activation_terms() {
    fn prop(seed: u64, depth: u8, loss_pick: u8) -> TestResult {
        let losses = [
            "squared_error",
            "softmax_cross_entropy",
            "bernoulli_logits",
            "gaussian_mean_logvar",
            "categorical_probabilities",
        ];
        let mut rng = StdRng::seed_from_u64(seed);
        let hidden = pick_hidden(&mut rng, depth as usize % 3, &SMOOTH);
        let case = random_case(seed, &hidden, losses[loss_pick as usize % losses.len()]);
        match check_decomposition(&case) {
            Ok(()) => TestResult::passed(),
            Err(msg) => TestResult::error(msg),
        }
    }
    QuickCheck::new().tests(40).quickcheck(prop as fn(u64, u8, u8) -> TestResult);
}

#[test]
fn relu_networks_have_ggn_equal_to_hessian_on_diagonal_blocks() {
    // Botev et al. (cited in Section 8.1.3): C + Cᵀ vanishes on diagonal blocks and φ'' = 0.
    let mut max_off_block = 0.0_f64;
    for seed in 0..20 {
        let depth = 1 + seed as usize % 3;
        let case = random_case(seed, &vec![Activation::Relu; depth], "softmax_cross_entropy");
        let problem = Problem::new(&case.mlp, case.loss.as_ref(), &case.x, &case.y).unwrap();
        let pass = problem.at(&case.theta).unwrap();
        let h = pass.hessian().to_dense().unwrap();
        let g = pass.ggn().to_dense().unwrap();
        let scale = max_abs(&h).max(1e-300);
        for block in layer_blocks(&case.mlp) {
            let hb = dense_block(&h, block.clone(), block.clone()).unwrap();
            let gb = dense_block(&g, block.clone(), block.clone()).unwrap();
            let d = hb.data().iter().zip(gb.data()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(d <= EXACT * scale, "{}: block {block:?} differs by {d:e}", case.label);
        }
        // Off the diagonal blocks they differ in general (C ≠ 0 unless units are dead).
        max_off_block = max_off_block.max(rel_diff(&h, &g));
    }
    assert!(
        max_off_block > 1e-3,
        "H = G everywhere on every network: the check above proves nothing"
    );
}

#[test]
fn fisher_equals_ggn_exactly_for_natural_parameter_losses_only() {
    for (name, natural) in [
        ("squared_error", true),
        ("gaussian_natural", true),
        ("softmax_cross_entropy", true),
        ("bernoulli_logits", true),
        ("categorical_probabilities", false),
        ("gaussian_mean_logvar", false),
    ] {
        let mut worst = 0.0_f64;
        for seed in 0..6 {
            let case = random_case(seed, &[Activation::Tanh], name);
            assert_eq!(case.loss.is_natural_parameter(), natural, "{name}");
            let problem = Problem::new(&case.mlp, case.loss.as_ref(), &case.x, &case.y).unwrap();
            let pass = problem.at(&case.theta).unwrap();
            let f = pass.fisher().to_dense().unwrap();
            let g = pass.ggn().to_dense().unwrap();
            worst = worst.max(rel_diff(&f, &g));
        }
        if natural {
            assert!(worst <= EXACT, "{name}: F ≠ G by {worst:e}");
        } else {
            assert!(worst > 1e-3, "{name}: F = G to {worst:e}, but z is not a natural parameter");
        }
    }
}

fn min_eigenvalue_relative(m: &Matrix<f64>) -> f64 {
    let e = symmetric_eigen(m).unwrap();
    let scale = e.values.iter().fold(1e-300_f64, |a, x| a.max(x.abs()));
    e.values[0] / scale
}

#[test]
fn ggn_fisher_and_empirical_fishers_are_symmetric_psd() {
    for seed in 0..10 {
        let name = [
            "squared_error",
            "softmax_cross_entropy",
            "bernoulli_logits",
            "categorical_probabilities",
            "gaussian_natural",
        ][seed as usize % 5];
        let case = random_case(seed, &[Activation::Tanh, Activation::Logistic], name);
        let problem = Problem::new(&case.mlp, case.loss.as_ref(), &case.x, &case.y).unwrap();
        let pass = problem.at(&case.theta).unwrap();
        let ops: [(&str, Box<dyn LinearOperator + '_>); 4] = [
            ("GGN", Box::new(pass.ggn())),
            ("Fisher", Box::new(pass.fisher())),
            ("empirical Fisher", Box::new(pass.empirical_fisher())),
            ("MC Fisher", Box::new(pass.monte_carlo_fisher(3, seed).unwrap())),
        ];
        for (what, op) in ops {
            let m = op.to_dense().unwrap();
            assert!(rel_diff(&m, &m.transpose()) <= EXACT, "{}: {what} not symmetric", case.label);
            let lam = min_eigenvalue_relative(&m);
            assert!(lam >= -1e-10, "{}: {what} has relative eigenvalue {lam:e}", case.label);
        }
    }
}

/// `F̄ v = (1/N) Σ_n ∇L_n (∇L_nᵀ v)` against the per-example gradients `∇L_n`, each the
/// gradient of a one-example problem (a reverse sweep per example, independent of the cached
/// `∇_z h` the product reuses).
#[test]
fn empirical_fisher_product_equals_the_mean_of_per_example_gradient_outer_products() {
    fn prop(seed: u64, depth: u8, loss_pick: u8) -> TestResult {
        let losses =
            ["squared_error", "softmax_cross_entropy", "bernoulli_logits", "gaussian_mean_logvar"];
        let mut rng = StdRng::seed_from_u64(seed);
        let hidden = pick_hidden(&mut rng, depth as usize % 3, &SMOOTH);
        let case = random_case(seed, &hidden, losses[loss_pick as usize % losses.len()]);
        let v = random_vector(case.mlp.num_params(), &mut rng);
        let problem = Problem::new(&case.mlp, case.loss.as_ref(), &case.x, &case.y).unwrap();
        let got = problem.at(&case.theta).unwrap().empirical_fisher_vector_product(&v).unwrap();
        let n = case.x.rows();
        let mut want = vec![0.0; v.len()];
        for i in 0..n {
            let xi = Matrix::from_vec(1, case.x.cols(), case.x.row(i).to_vec()).unwrap();
            let yi = Matrix::from_vec(1, case.y.cols(), case.y.row(i).to_vec()).unwrap();
            let one = Problem::new(&case.mlp, case.loss.as_ref(), &xi, &yi).unwrap();
            let g = one.at(&case.theta).unwrap().gradient().unwrap();
            let c: f64 = g.iter().zip(&v).map(|(a, b)| a * b).sum();
            want.iter_mut().zip(&g).for_each(|(w, gk)| *w += c * gk / n as f64);
        }
        let scale = want.iter().fold(1e-300_f64, |a, x| a.max(x.abs()));
        let err = got.iter().zip(&want).fold(0.0_f64, |a, (p, q)| a.max((p - q).abs())) / scale;
        if err <= EXACT {
            TestResult::passed()
        } else {
            TestResult::error(format!("{}: F̄ v off by {err:e} of its largest entry", case.label))
        }
    }
    QuickCheck::new().tests(40).quickcheck(prop as fn(u64, u8, u8) -> TestResult);
}

#[test]
fn monte_carlo_fisher_converges_to_the_fisher() {
    // The MC estimate is an average of S i.i.d. PSD matrices with mean F, so its error falls
    // like 1/√S. Rare classes give the single-sample outer products heavy tails, so small S is
    // noisy: we compare S = 64 with S = 4096 (expected 8× smaller error; we require 3×), each
    // averaged over 8 seeds, and require S = 4096 to be within 3% of F (seen: about 0.9%).
    let case = random_case(3, &[Activation::Tanh], "softmax_cross_entropy");
    let problem = Problem::new(&case.mlp, case.loss.as_ref(), &case.x, &case.y).unwrap();
    let pass = problem.at(&case.theta).unwrap();
    let f = pass.fisher().to_dense().unwrap();
    let err = |samples: usize| -> f64 {
        let mc = |s: u64| pass.monte_carlo_fisher(samples, 100 + s).unwrap().to_dense().unwrap();
        (0..8u64).map(|s| rel_diff(&mc(s), &f)).sum::<f64>() / 8.0
    };
    let (small, large) = (err(64), err(4096));
    println!("MC Fisher relative error: S=64 {small:.3e}, S=4096 {large:.3e}");
    assert!(large < small / 3.0, "no 1/√S decrease: {small:e} → {large:e}");
    assert!(large < 0.03, "S = 4096 still {large:e} away");
}

#[test]
fn products_match_finite_differences_on_random_networks() {
    use curvature::verify::{
        check_adjoint, check_gradient, check_hessian_vector_product, check_jacobian_vector_product,
    };
    for seed in 0..12 {
        let mut rng = StdRng::seed_from_u64(seed);
        let pool =
            [Activation::Tanh, Activation::Logistic, Activation::Softplus, Activation::Identity];
        let hidden = pick_hidden(&mut rng, 1 + seed as usize % 3, &pool);
        let name = [
            "squared_error",
            "softmax_cross_entropy",
            "bernoulli_logits",
            "gaussian_mean_logvar",
            "categorical_probabilities",
            "gaussian_natural",
        ][seed as usize % 6];
        let case = random_case(seed, &hidden, name);
        let problem = Problem::new(&case.mlp, case.loss.as_ref(), &case.x, &case.y).unwrap();
        let v = random_vector(case.theta.len(), &mut rng);
        let u = random_matrix(
            case.x.rows(),
            case.y.cols().max(problem.at(&case.theta).unwrap().output().cols()),
            &mut rng,
        );
        let u = Matrix::from_fn(
            case.x.rows(),
            problem.at(&case.theta).unwrap().output().cols(),
            |i, j| u[(i, j)],
        );
        for report in [
            check_gradient(&problem, &case.theta, 1e-7).unwrap(),
            check_jacobian_vector_product(&problem, &case.theta, &v, 1e-7).unwrap(),
            check_hessian_vector_product(&problem, &case.theta, &v, 1e-7).unwrap(),
            check_adjoint(&problem, &case.theta, &u, &v, 1e-12).unwrap(),
        ] {
            assert!(report.passed(), "{}: {report}", case.label);
        }
        // H v from θ alone (no f64 pass) is the same product as from a recorded pass.
        let fresh = problem.hessian_vector_product(&case.theta, &v).unwrap();
        let cached = problem.at(&case.theta).unwrap().hessian_vector_product(&v).unwrap();
        let report =
            autodiff::check::compare("H v fresh vs cached", &fresh, &cached, 1e-13).unwrap();
        assert!(report.passed(), "{}: {report}", case.label);
    }
    let case = random_case(0, &[Activation::Tanh], "squared_error");
    let problem = Problem::new(&case.mlp, case.loss.as_ref(), &case.x, &case.y).unwrap();
    let err = problem.hessian_vector_product(&case.theta, &[1.0]).unwrap_err();
    assert!(err.to_string().contains("hessian_vector_product (v)"), "{err}");
}
