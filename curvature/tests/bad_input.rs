//! Bad input to the curvature crate is a clear error (issue 17, items 1, 2, 3 and 7): sizes
//! whose arithmetic overflows, targets outside a loss's support, and NaN or ±∞ in θ, x, y, v
//! or in a loss or product computed from finite inputs. Each case asserts the error variant and
//! what it names; a quickcheck property feeds random shapes and values (NaN, ±∞, huge) to
//! `Problem::new`, `at` and the products and asserts Ok-with-finite-results or Err.

use autodiff::Matrix;
use curvature::checks::without_finite_checks;
use curvature::loss::{
    self, BernoulliLogits, CategoricalProbabilities, GaussianMeanLogVar, PredictiveDistribution,
    SoftmaxCrossEntropy, SquaredError, TargetIssue,
};
use curvature::{Activation, CurvatureError, Mlp, Problem, ShardedProblem};
use quickcheck::{QuickCheck, TestResult};
use rand::{rngs::StdRng, Rng, RngCore, SeedableRng};
use std::sync::atomic::{AtomicUsize, Ordering};

fn non_finite(err: &CurvatureError, quantity: &str, index: usize) -> bool {
    matches!(err, CurvatureError::NonFinite { quantity: q, index: i, .. } if q == quantity && *i == index)
}

fn invalid_target(err: &CurvatureError, row: usize, column: Option<usize>) -> bool {
    matches!(err, CurvatureError::InvalidTarget { row: r, column: c, .. } if *r == row && *c == column)
}

/// A 2-3-2 tanh network, a batch of 4 and a θ of its size.
fn setup() -> (Mlp, Matrix<f64>, Matrix<f64>, Vec<f64>) {
    let mlp = Mlp::new(&[2, 3, 2], &[Activation::Tanh, Activation::Identity]).unwrap();
    let x = Matrix::from_fn(4, 2, |i, j| 0.3 * i as f64 - 0.2 * j as f64);
    let y = Matrix::from_fn(4, 2, |i, j| if i % 2 == j { 1.0 } else { 0.0 });
    let theta = (0..mlp.num_params()).map(|k| 0.1 * (k as f64).sin()).collect();
    (mlp, x, y, theta)
}

// ---- 1. Size arithmetic -------------------------------------------------------------------

#[test]
fn widths_whose_parameter_count_overflows_are_an_error_naming_them() {
    // `--layers 4294967295,4294967296`: (2^32 − 1 + 1)·2^32 = 2^64 wrapped to 0 before.
    let err = Mlp::new(&[4294967295, 4294967296], &[Activation::Identity]).unwrap_err();
    assert!(matches!(err, CurvatureError::InvalidArgument { ref op, .. } if op == "Mlp::new"));
    let msg = err.to_string();
    assert!(msg.contains("[4294967295, 4294967296]") && msg.contains("more parameters"), "{msg}");
    // A count that fits usize but whose bytes do not fit isize (2^61 parameters = 2^64 bytes).
    let err = Mlp::new(&[(1 << 30) - 1, 1 << 31], &[Activation::Identity]).unwrap_err();
    assert!(err.to_string().contains("more parameters"), "{err}");
    // Just below the bound is a network (no allocation happens in `new`).
    let big = Mlp::new(&[(1 << 20) - 1, 1 << 20], &[Activation::Identity]).unwrap();
    assert_eq!(big.num_params(), 1 << 40);
}

// ---- 7. Misleading messages ---------------------------------------------------------------

#[test]
fn fewer_than_two_widths_say_a_network_needs_an_input_and_an_output() {
    for sizes in [&[][..], &[5][..]] {
        let err = Mlp::new(sizes, &[]).unwrap_err();
        assert!(matches!(err, CurvatureError::InvalidArgument { .. }));
        assert!(
            err.to_string().contains("needs at least an input and an output width"),
            "{sizes:?}: {err}"
        );
    }
    // The count message stays for a real mismatch.
    let err = Mlp::new(&[2, 3, 1], &[Activation::Tanh]).unwrap_err();
    assert!(err.to_string().contains("3 layer widths need 2 activations, got 1"), "{err}");
}

// ---- 2. Targets ---------------------------------------------------------------------------

#[test]
fn categorical_targets_must_be_probability_rows() {
    let (mlp, x, _, _) = setup();
    for dist in [&SoftmaxCrossEntropy as &dyn PredictiveDistribution, &CategoricalProbabilities] {
        let cases: [(&[f64], usize, Option<usize>, &str); 4] = [
            (&[1.5, -0.5], 2, Some(1), "negative"),
            (&[0.5, 0.4], 3, None, "sum to"),
            (&[1.0, 1.0], 1, None, "sum to"),
            (&[0.0, 1.0 + 2e-6], 0, None, "sum to"),
        ];
        for (row, at, column, words) in cases {
            let y = Matrix::from_fn(
                4,
                2,
                |i, j| if i == at { row[j] } else { (i % 2 == j) as u8 as f64 },
            );
            let err = Problem::new(&mlp, dist, &x, &y).err().unwrap();
            assert!(invalid_target(&err, at, column), "{}: {err:?}", dist.name());
            assert!(err.to_string().contains(words), "{err}");
            assert!(err.to_string().contains(dist.name()), "{err}");
        }
        // Within the stated tolerance, and soft labels, are accepted.
        let y = Matrix::from_fn(4, 2, |i, j| [[0.25, 0.75], [1.0 - 5e-7, 0.0]][i % 2][j]);
        assert!(Problem::new(&mlp, dist, &x, &y).is_ok());
        // NaN is caught by the finite check first, and by the target check when that is off.
        let y = Matrix::from_fn(4, 2, |i, j| if i == 2 && j == 0 { f64::NAN } else { 0.5 });
        let err = Problem::new(&mlp, dist, &x, &y).err().unwrap();
        assert!(non_finite(&err, "y", 4), "{err:?}");
        let err = without_finite_checks(|| Problem::new(&mlp, dist, &x, &y).err().unwrap());
        assert!(invalid_target(&err, 2, Some(0)), "{err:?}");
    }
}

#[test]
fn bernoulli_targets_must_lie_in_the_unit_interval() {
    let (mlp, x, _, _) = setup();
    for (bad, column) in [(1.5, 1), (-0.1, 0), (f64::INFINITY, 1)] {
        let y = Matrix::from_fn(4, 2, |i, j| if i == 3 && j == column { bad } else { 0.3 });
        let err = without_finite_checks(|| Problem::new(&mlp, &BernoulliLogits, &x, &y).err());
        let err = err.unwrap();
        assert!(invalid_target(&err, 3, Some(column)), "{err:?}");
        assert!(err.to_string().contains("outside [0, 1]"), "{err}");
    }
    let y = Matrix::from_fn(4, 2, |i, j| (i + j) as f64 / 5.0);
    assert!(Problem::new(&mlp, &BernoulliLogits, &x, &y).is_ok());
}

#[test]
fn gaussian_targets_must_be_finite_even_without_finite_checks() {
    let (mlp, x, _, _) = setup();
    let y = Matrix::from_fn(4, 2, |i, j| if i == 1 && j == 1 { f64::NEG_INFINITY } else { 0.0 });
    let err = without_finite_checks(|| Problem::new(&mlp, &SquaredError, &x, &y).err().unwrap());
    assert!(invalid_target(&err, 1, Some(1)), "{err:?}");
    let y1 = Matrix::from_fn(4, 1, |i, _| if i == 2 { f64::NAN } else { 0.0 });
    let err = without_finite_checks(|| Problem::new(&mlp, &GaussianMeanLogVar, &x, &y1).err());
    assert!(invalid_target(&err.unwrap(), 2, Some(0)));
}

/// A loss of one's own: accepts any target unless it opts in.
struct Halved(bool);

impl PredictiveDistribution for Halved {
    fn name(&self) -> &str {
        "halved"
    }
    fn target_dim(&self, output_dim: usize) -> curvature::error::Result<usize> {
        Ok(output_dim)
    }
    fn check_target(&self, y: &[f64]) -> Result<(), TargetIssue> {
        if self.0 && y.iter().any(|t| *t > 10.0) {
            return Err(TargetIssue::row("targets above 10"));
        }
        Ok(())
    }
    fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
        SquaredError.loss(z, y) / 2.0
    }
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
        SquaredError.grad_z(z, y, out);
        out.iter_mut().for_each(|o| *o /= 2.0);
    }
    fn apply_h_l(&self, z: &[f64], y: &[f64], u: &[f64], out: &mut [f64]) {
        SquaredError.apply_h_l(z, y, u, out);
        out.iter_mut().for_each(|o| *o /= 2.0);
    }
    fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]) {
        self.apply_h_l(z, z, u, out);
    }
    fn sample(&self, z: &[f64], _rng: &mut dyn RngCore, y: &mut [f64]) {
        y.copy_from_slice(z);
    }
    fn is_natural_parameter(&self) -> bool {
        true
    }
}

#[test]
fn a_users_own_loss_accepts_any_target_unless_it_opts_in() {
    let (mlp, x, _, _) = setup();
    let y = Matrix::from_fn(4, 2, |i, _| if i == 2 { 11.0 } else { 0.0 });
    assert!(Problem::new(&mlp, &Halved(false), &x, &y).is_ok());
    let err = Problem::new(&mlp, &Halved(true), &x, &y).err().unwrap();
    assert!(invalid_target(&err, 2, None), "{err:?}");
    assert_eq!(err.to_string(), "halved targets, row 2: targets above 10");
}

// ---- 3. Non-finite values -----------------------------------------------------------------

#[test]
fn non_finite_x_and_y_are_named_with_row_and_column() {
    let (mlp, x, y, _) = setup();
    let mut bad_x = x.clone();
    bad_x[(3, 1)] = f64::INFINITY;
    let err = Problem::new(&mlp, &SquaredError, &bad_x, &y).err().unwrap();
    assert!(non_finite(&err, "x", 7), "{err:?}");
    assert!(err.to_string().contains("x: non-finite value inf at row 3, column 1"), "{err}");
    let mut bad_y = y.clone();
    bad_y[(0, 1)] = f64::NAN;
    let err = Problem::new(&mlp, &SquaredError, &x, &bad_y).err().unwrap();
    assert!(non_finite(&err, "y", 1), "{err:?}");
}

#[test]
fn non_finite_theta_is_named_with_its_index() {
    let (mlp, x, y, mut theta) = setup();
    let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        theta[5] = bad;
        let err = problem.at(&theta).err().unwrap();
        assert!(non_finite(&err, "theta", 5), "{err:?}");
        let v = vec![1.0; theta.len()];
        let err = problem.hessian_vector_product(&theta, &v).unwrap_err();
        assert!(non_finite(&err, "theta", 5), "{err:?}");
        let sharded = ShardedProblem::new(&problem, 2).unwrap();
        assert!(non_finite(&sharded.at(&theta).err().unwrap(), "theta", 5));
        assert!(non_finite(&sharded.hessian_vector_product(&theta, &v).unwrap_err(), "theta", 5));
    }
}

#[test]
fn every_product_names_a_non_finite_v() {
    let (mlp, x, y, theta) = setup();
    let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let pass = problem.at(&theta).unwrap();
    let mut v = vec![0.5; theta.len()];
    // Two NaNs, one in each layer, so that every product (C v reads only layer 1, Cᵀ v only
    // layer 2) meets one; the error names the first.
    v[0] = f64::NAN;
    v[9] = f64::NAN;
    type Product<'p> = Box<dyn Fn(&[f64]) -> curvature::error::Result<Vec<f64>> + 'p>;
    let products: Vec<(&str, Product)> = vec![
        ("jacobian_vector_product", Box::new(|v| Ok(pass.jacobian_vector_product(v)?.into_vec()))),
        ("ggn_vector_product", Box::new(|v| pass.ggn_vector_product(v))),
        ("fisher_vector_product", Box::new(|v| pass.fisher_vector_product(v))),
        ("empirical_fisher_vector_product", Box::new(|v| pass.empirical_fisher_vector_product(v))),
        ("hessian_vector_product", Box::new(|v| pass.hessian_vector_product(v))),
        ("ggn_residual_vector_product", Box::new(|v| pass.ggn_residual_vector_product(v))),
        ("c_vector_product", Box::new(|v| pass.c_vector_product(v, None))),
        ("c_transpose_vector_product", Box::new(|v| pass.c_transpose_vector_product(v, None))),
        (
            "activation_term_vector_product",
            Box::new(|v| pass.activation_term_vector_product(v, None)),
        ),
    ];
    for (name, product) in &products {
        let err = product(&v).unwrap_err();
        assert!(non_finite(&err, &format!("v in {name}"), 0), "{name}: {err:?}");
        // Without the checks the NaN comes back as a value: the check is what catches it.
        let out = without_finite_checks(|| product(&v)).unwrap();
        assert!(out.iter().any(|x| x.is_nan()), "{name}");
    }
    let mut u = Matrix::zeros(4, 2);
    u[(2, 1)] = f64::INFINITY;
    let err = pass.transpose_jacobian_vector_product(&u).unwrap_err();
    assert!(non_finite(&err, "u in transpose_jacobian_vector_product", 5), "{err:?}");
    let err = problem.hessian_vector_product(&theta, &v).unwrap_err();
    assert!(non_finite(&err, "v in hessian_vector_product", 0), "{err:?}");
}

#[test]
fn sharded_products_check_like_the_whole_batch_and_pass_the_setting_to_their_threads() {
    let (mlp, x, y, theta) = setup();
    let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let sharded = ShardedProblem::new(&problem, 3).unwrap();
    let pass = sharded.at(&theta).unwrap();
    let mut v = vec![0.5; theta.len()];
    v[0] = f64::INFINITY;
    for (name, out) in [
        ("ggn_vector_product", pass.ggn_vector_product(&v)),
        ("fisher_vector_product", pass.fisher_vector_product(&v)),
        ("empirical_fisher_vector_product", pass.empirical_fisher_vector_product(&v)),
        ("hessian_vector_product", pass.hessian_vector_product(&v)),
    ] {
        assert!(non_finite(&out.unwrap_err(), &format!("v in {name}"), 0), "{name}");
    }
    assert!(non_finite(
        &pass.jacobian_vector_product(&v).unwrap_err(),
        "v in jacobian_vector_product",
        0
    ));
    // Off on the calling thread is off on every block's thread (3 blocks, 2 of them workers).
    let g = without_finite_checks(|| pass.ggn_vector_product(&v)).unwrap();
    assert!(g.iter().any(|x| !x.is_finite()));
    // And on again afterwards.
    assert!(pass.ggn_vector_product(&v).is_err());
}

#[test]
fn an_overflow_inside_the_network_names_the_output() {
    // Finite θ and x whose product overflows: the identity output is ±∞ (an infinite logit).
    let mlp = Mlp::new(&[1, 2], &[Activation::Identity]).unwrap();
    let x = Matrix::from_vec(2, 1, vec![1e300, 1.0]).unwrap();
    let y = Matrix::from_vec(2, 2, vec![1.0, 0.0, 0.0, 1.0]).unwrap();
    let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let err = problem.at(&[1e10, 1.0, 0.0, 0.0]).err().unwrap();
    assert!(non_finite(&err, "output z", 0), "{err:?}");
}

#[test]
fn large_finite_logits_give_finite_losses_and_products() {
    // z = (w x, −w x) = (±1e300): softmax saturates, and the zero target's term `0 · (lse − z)`
    // with `lse − z = 2e300`... and for 1e308, `lse − z` overflows to ∞; 0·∞ was NaN.
    let mlp = Mlp::new(&[1, 2], &[Activation::Identity]).unwrap();
    for scale in [1e300, 1e308] {
        let x = Matrix::from_vec(2, 1, vec![1.0, -1.0]).unwrap();
        let y = Matrix::from_vec(2, 2, vec![1.0, 0.0, 0.0, 1.0]).unwrap();
        let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
        let theta = [scale, -scale, 0.0, 0.0];
        let pass = problem.at(&theta).unwrap();
        // Both examples put all mass on their target's class: the loss is exactly 0.
        assert_eq!(pass.loss().unwrap(), 0.0);
        let g = pass.gradient().unwrap();
        assert!(g.iter().all(|x| *x == 0.0), "{g:?}");
        let gv = pass.ggn_vector_product(&[1.0, 0.5, 0.0, 1.0]).unwrap();
        assert!(gv.iter().all(|x| x.is_finite()), "{gv:?}");
    }
}

#[test]
fn a_log_variance_whose_exponential_overflows_is_a_loss_error_naming_the_row() {
    // z = (μ, γ) with γ = −1e4 on example 1: e^{−γ} overflows and L = ∞.
    let mlp = Mlp::new(&[1, 2], &[Activation::Identity]).unwrap();
    let x = Matrix::from_vec(3, 1, vec![0.0, 1.0, 0.0]).unwrap();
    let y = Matrix::from_vec(3, 1, vec![0.5, 0.5, 0.5]).unwrap();
    let problem = Problem::new(&mlp, &GaussianMeanLogVar, &x, &y).unwrap();
    let theta = [0.0, -1e4, 0.0, 0.0];
    let pass = problem.at(&theta).unwrap();
    let err = pass.loss().unwrap_err();
    assert!(non_finite(&err, "loss", 1), "{err:?}");
    assert!(matches!(err, CurvatureError::NonFinite { value, .. } if value == f64::INFINITY));
    let err = pass.gradient().unwrap_err();
    assert!(
        matches!(err, CurvatureError::NonFinite { ref quantity, .. } if quantity == "result of gradient")
    );
    // A log-variance of −700 is representable: finite.
    let pass = problem.at(&[0.0, -700.0, 0.0, 0.0]).unwrap();
    assert!(pass.loss().unwrap().is_finite());
}

// ---- the property -------------------------------------------------------------------------

/// A value drawn from a palette of the troublesome and the ordinary.
fn value(rng: &mut StdRng, wild: bool) -> f64 {
    if !wild || rng.random_bool(0.7) {
        return rng.random_range(-2.0..2.0);
    }
    const PALETTE: [f64; 10] = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e308,
        -1e308,
        1e154,
        f64::MIN_POSITIVE,
        5e-324,
        0.0,
        -0.0,
    ];
    PALETTE[rng.random_range(0..PALETTE.len())]
}

fn all_finite(values: &[f64]) -> bool {
    values.iter().all(|x| x.is_finite())
}

/// How often the property saw an Ok with finite numbers, and an early error: both must occur
/// often, or the property would be checking nothing.
static FINITE_RESULTS: AtomicUsize = AtomicUsize::new(0);
static ERRORS: AtomicUsize = AtomicUsize::new(0);

/// Random network, loss, batch, θ and v, each possibly holding NaN, ±∞ or huge values; every
/// call must be Err, or Ok with finite numbers (a panic fails the property).
fn property(seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let name = loss::NAMES[rng.random_range(0..loss::NAMES.len())];
    let dist = loss::by_name(name).unwrap();
    let hidden = [Activation::Tanh, Activation::Relu, Activation::Logistic][rng.random_range(0..3)];
    let last = if name == "categorical_probabilities" {
        Activation::Softmax
    } else {
        Activation::Identity
    };
    let outputs = 2 * rng.random_range(1..=2);
    let sizes = [rng.random_range(1..=3), rng.random_range(1..=4), outputs];
    let mlp = Mlp::new(&sizes, &[hidden, last]).map_err(|e| e.to_string())?;
    let rows = rng.random_range(1..=5);
    let target_cols = dist.target_dim(outputs).map_err(|e| e.to_string())?;
    let wild =
        [rng.random_bool(0.5), rng.random_bool(0.5), rng.random_bool(0.5), rng.random_bool(0.5)];
    let x = Matrix::from_fn(rows, sizes[0], |_, _| value(&mut rng, wild[0]));
    // Targets: valid for the loss, or drawn from the palette.
    let y = Matrix::from_fn(rows, target_cols, |i, j| match name {
        _ if wild[1] => value(&mut rng, true),
        "softmax_cross_entropy" | "categorical_probabilities" => {
            (i % target_cols == j) as u8 as f64
        }
        "bernoulli_logits" => rng.random_range(0.0..=1.0),
        _ => rng.random_range(-1.0..1.0),
    });
    let theta: Vec<f64> = (0..mlp.num_params()).map(|_| value(&mut rng, wild[2])).collect();
    let v: Vec<f64> = (0..mlp.num_params()).map(|_| value(&mut rng, wild[3])).collect();
    // With every input ordinary (inputs in [-2, 2], valid targets), every call must be Ok: a
    // check that fires on good input fails here. (Not for the natural Gaussian, whose outputs
    // must hold a positive precision, which a random network need not give.)
    let tame = !wild.iter().any(|w| *w) && name != "gaussian_natural";
    let Ok(problem) = Problem::new(&mlp, dist.as_ref(), &x, &y) else {
        ERRORS.fetch_add(1, Ordering::Relaxed);
        return if tame { Err(format!("{name} seed {seed}: Problem::new failed")) } else { Ok(()) };
    };
    let check = |what: &str, result: curvature::error::Result<Vec<f64>>| -> Result<(), String> {
        match result {
            Ok(values) if all_finite(&values) => {
                FINITE_RESULTS.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Ok(_) => {
                Err(format!("{name} {sizes:?} seed {seed}: {what} is Ok with a non-finite value"))
            }
            Err(e) if tame => {
                Err(format!("{name} {sizes:?} seed {seed}: {what} failed on good input: {e}"))
            }
            Err(_) => Ok(()),
        }
    };
    check("Problem::hessian_vector_product", problem.hessian_vector_product(&theta, &v))?;
    let pass = match problem.at(&theta) {
        Ok(pass) => pass,
        Err(e) => {
            ERRORS.fetch_add(1, Ordering::Relaxed);
            return check("Problem::at", Err(e));
        }
    };
    check("output z", Ok(pass.output().data().to_vec()))?;
    check("loss", pass.loss().map(|l| vec![l]))?;
    check("gradient", pass.gradient())?;
    check("J v", pass.jacobian_vector_product(&v).map(Matrix::into_vec))?;
    check("G v", pass.ggn_vector_product(&v))?;
    check("F v", pass.fisher_vector_product(&v))?;
    check("empirical F v", pass.empirical_fisher_vector_product(&v))?;
    check("H v", pass.hessian_vector_product(&v))?;
    let sharded = ShardedProblem::new(&problem, 2).map_err(|e| e.to_string())?;
    check("sharded G v", sharded.at(&theta).and_then(|pass| pass.ggn_vector_product(&v)))
}

/// Huge widths: `Mlp::new` is Ok exactly when the parameter count's bytes fit `isize`,
/// computed independently in 128-bit arithmetic.
fn huge_widths(seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    const WIDTHS: [usize; 6] = [1, 3, 1 << 20, (1 << 31) + 5, usize::MAX / 3, usize::MAX];
    let sizes: Vec<usize> =
        (0..rng.random_range(2..=4)).map(|_| WIDTHS[rng.random_range(0..6)]).collect();
    let acts = vec![Activation::Identity; sizes.len() - 1];
    // (w + 1)·w' < 2^128 fits a u128 (the sum of terms may not: checked), and 8·count bytes
    // fit isize exactly when count ≤ isize::MAX / 8.
    let count: Option<u128> = sizes.windows(2).try_fold(0u128, |total, w| {
        (w[0] as u128 + 1).checked_mul(w[1] as u128)?.checked_add(total)
    });
    let fits = count.is_some_and(|n| n <= isize::MAX as u128 / 8);
    match Mlp::new(&sizes, &acts) {
        Ok(mlp) if fits => {
            let n: u128 = sizes.windows(2).map(|w| (w[0] as u128 + 1) * w[1] as u128).sum();
            (mlp.num_params() as u128 == n).then_some(()).ok_or(format!("{sizes:?}: count"))
        }
        Err(CurvatureError::InvalidArgument { .. }) if !fits => Ok(()),
        other => Err(format!("{sizes:?}: fits {fits}, got {other:?}")),
    }
}

#[test]
fn random_bad_values_and_shapes_give_an_error_or_finite_results_never_a_panic() {
    QuickCheck::new().tests(300).quickcheck(
        (|seed: u64| {
            TestResult::from_bool(match property(seed) {
                Ok(()) => true,
                Err(e) => panic!("{e}"),
            })
        }) as fn(u64) -> TestResult,
    );
    let (finite, errors) = (FINITE_RESULTS.load(Ordering::Relaxed), ERRORS.load(Ordering::Relaxed));
    assert!(finite > 300 && errors > 50, "finite results {finite}, early errors {errors}");
    QuickCheck::new().tests(300).quickcheck(
        (|seed: u64| {
            TestResult::from_bool(match huge_widths(seed) {
                Ok(()) => true,
                Err(e) => panic!("{e}"),
            })
        }) as fn(u64) -> TestResult,
    );
}
