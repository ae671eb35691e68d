//! Section 12 (parameterization invariance) and Section 13 (the lower bound on `M(δ) − h`),
//! and the `verify` checks a researcher runs on a new loss, including that they catch a wrong one.

use autodiff::modes::Function;
use autodiff::random::{random_matrix, random_vector};
use autodiff::{Matrix, Result, Scalar, Tape, Var};
use curvature::loss::{self, PredictiveDistribution, SoftmaxCrossEntropy};
use curvature::reparam::Reparameterized;
use curvature::verify::{check_loss, check_reparameterization};
use curvature::{Activation, CurvatureKind, LinearOperator, Mlp, Problem};
use rand::{rngs::StdRng, SeedableRng};

/// Nonlinear ζ: θ = γ + 0.4 tanh(γ) ⊙ γ (elementwise), invertible and non-affine.
struct Nonlinear;
impl Function for Nonlinear {
    fn eval<'t, T: Scalar>(&self, _tape: &'t Tape<T>, gamma: Var<'t, T>) -> Result<Var<'t, T>> {
        gamma.add(gamma.tanh()?.mul(gamma)?.scale(0.4)?)
    }
}

/// Affine ζ: θ = A γ + c with a fixed random square A.
struct Affine {
    a: Matrix<f64>,
    c: Matrix<f64>,
}
impl Function for Affine {
    fn eval<'t, T: Scalar>(&self, tape: &'t Tape<T>, gamma: Var<'t, T>) -> Result<Var<'t, T>> {
        tape.constant_f64(&self.a).matmul(gamma)?.add(tape.constant_f64(&self.c))
    }
}

fn setup(seed: u64) -> (Mlp, Matrix<f64>, Matrix<f64>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mlp = Mlp::new(&[3, 4, 3], &[Activation::Tanh, Activation::Identity]).unwrap();
    let x = random_matrix(5, 3, &mut rng);
    let y = Matrix::from_fn(5, 3, |i, j| if (i + seed as usize) % 3 == j { 1.0 } else { 0.0 });
    let gamma: Vec<f64> =
        random_vector(mlp.num_params(), &mut rng).iter().map(|g| 0.6 * g).collect();
    (mlp, x, y, gamma)
}

#[test]
fn ggn_fisher_and_empirical_fisher_are_invariant_but_the_hessian_is_not() {
    let loss = SoftmaxCrossEntropy;
    for seed in 0..3 {
        let (mlp, x, y, gamma) = setup(seed);
        let theta_problem = Problem::new(&mlp, &loss, &x, &y).unwrap();
        let mut rng = StdRng::seed_from_u64(50 + seed);
        let n = mlp.num_params();
        let affine = Affine { a: random_matrix(n, n, &mut rng), c: random_matrix(n, 1, &mut rng) };
        let nonlinear = Nonlinear;
        let zeta_nl = Reparameterized::new(&mlp, &nonlinear, &gamma).unwrap();
        let gamma_problem = Problem::new(&zeta_nl, &loss, &x, &y).unwrap();
        for kind in [CurvatureKind::Ggn, CurvatureKind::Fisher, CurvatureKind::EmpiricalFisher] {
            let r = check_reparameterization(
                &theta_problem,
                &gamma_problem,
                &nonlinear,
                &gamma,
                &kind,
                1e-10,
            )
            .unwrap();
            assert!(r.passed(), "seed {seed}: {r}");
        }
        // The Hessian picks up Σ_j [∇h]_j H_{[ζ]_j} ≠ 0 under a nonlinear ζ away from a stationary point.
        let r = check_reparameterization(
            &theta_problem,
            &gamma_problem,
            &nonlinear,
            &gamma,
            &CurvatureKind::Hessian,
            1e-10,
        )
        .unwrap();
        assert!(
            r.max_rel_error > 1e-4,
            "seed {seed}: the Hessian looked invariant under a nonlinear ζ: {r}"
        );
        // Under an affine ζ the Hessian term vanishes and invariance holds for H too.
        let zeta_affine = Reparameterized::new(&mlp, &affine, &gamma).unwrap();
        let affine_problem = Problem::new(&zeta_affine, &loss, &x, &y).unwrap();
        for kind in [CurvatureKind::Hessian, CurvatureKind::Ggn] {
            let r = check_reparameterization(
                &theta_problem,
                &affine_problem,
                &affine,
                &gamma,
                &kind,
                1e-9,
            )
            .unwrap();
            assert!(r.passed(), "seed {seed}, affine: {r}");
        }
    }
}

#[test]
fn the_fisher_quadratic_model_never_falls_below_the_section_13_bound() {
    for (seed, name) in [
        (0, "softmax_cross_entropy"),
        (1, "squared_error"),
        (2, "bernoulli_logits"),
        (3, "gaussian_mean_logvar"),
    ] {
        let mut rng = StdRng::seed_from_u64(seed);
        let dist = loss::by_name(name).unwrap();
        let out = if name == "gaussian_mean_logvar" { 4 } else { 3 };
        let mlp = Mlp::new(&[3, 4, out], &[Activation::Tanh, Activation::Identity]).unwrap();
        let x = random_matrix(6, 3, &mut rng);
        let y = loss::sample_targets(dist.as_ref(), &random_matrix(6, out, &mut rng), &mut rng)
            .unwrap();
        let problem = Problem::new(&mlp, dist.as_ref(), &x, &y).unwrap();
        let theta = random_vector(mlp.num_params(), &mut rng);
        let pass = problem.at(&theta).unwrap();
        let bound = loss::section13_bound(dist.as_ref(), pass.output(), &y).unwrap();
        let f = pass.fisher();
        let g = pass.gradient().unwrap();
        let model_change = |delta: &[f64]| -> f64 {
            let mut fd = vec![0.0; delta.len()];
            f.apply(delta, &mut fd).unwrap();
            0.5 * delta.iter().zip(&fd).map(|(a, b)| a * b).sum::<f64>()
                + g.iter().zip(delta).map(|(a, b)| a * b).sum::<f64>()
        };
        for scale in [0.01, 0.3, 1.0, 10.0] {
            for _ in 0..20 {
                let delta: Vec<f64> =
                    random_vector(theta.len(), &mut rng).iter().map(|d| scale * d).collect();
                let m = model_change(&delta);
                assert!(
                    m >= bound - 1e-12 * bound.abs().max(1.0),
                    "{name}: M(δ) − h = {m} < bound {bound}"
                );
            }
        }
        // The natural-gradient step δ* = −F⁺∇h (here by damped dense solve) comes closest.
        let dense = f.to_dense().unwrap();
        let damped = Matrix::from_fn(dense.rows(), dense.cols(), |i, j| {
            dense[(i, j)] + if i == j { 1e-9 } else { 0.0 }
        });
        let step: Vec<f64> =
            autodiff::linalg::cholesky_solve(&damped, &g).unwrap().iter().map(|s| -s).collect();
        let best = model_change(&step);
        assert!(
            best >= bound - 1e-9 * bound.abs().max(1.0) && best < 0.0,
            "{name}: M(δ*) − h = {best}, bound {bound}"
        );
    }
}

/// A softmax cross-entropy whose H_L is off by 1%: `check_loss` must catch it.
struct WrongCurvature;
impl PredictiveDistribution for WrongCurvature {
    fn name(&self) -> &str {
        "wrong_curvature"
    }
    fn target_dim(&self, m: usize) -> curvature::error::Result<usize> {
        SoftmaxCrossEntropy.target_dim(m)
    }
    fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
        SoftmaxCrossEntropy.loss(z, y)
    }
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
        SoftmaxCrossEntropy.grad_z(z, y, out)
    }
    fn apply_h_l(&self, z: &[f64], y: &[f64], u: &[f64], out: &mut [f64]) {
        SoftmaxCrossEntropy.apply_h_l(z, y, u, out);
        out.iter_mut().for_each(|o| *o *= 1.01);
    }
    fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]) {
        SoftmaxCrossEntropy.apply_f_r(z, u, out)
    }
    fn sample(&self, z: &[f64], rng: &mut dyn rand::RngCore, y: &mut [f64]) {
        SoftmaxCrossEntropy.sample(z, rng, y)
    }
    fn is_natural_parameter(&self) -> bool {
        true
    }
}

#[test]
fn check_loss_passes_every_builtin_and_catches_a_wrong_hessian() {
    let mut rng = StdRng::seed_from_u64(8);
    // The Gaussians with two outputs per target (mean and precision or log-variance) need an
    // even output count; every other built-in takes one output per target component.
    const TWO_OUTPUTS_PER_TARGET: [&str; 2] = ["gaussian_natural", "gaussian_mean_logvar"];
    for paired in TWO_OUTPUTS_PER_TARGET {
        assert!(loss::NAMES.contains(&paired), "{paired} is not a built-in loss");
    }
    for name in loss::NAMES {
        let dist = loss::by_name(name).unwrap();
        let paired = TWO_OUTPUTS_PER_TARGET.contains(&name);
        let m = if paired { 4 } else { 3 };
        assert_eq!(dist.target_dim(m).unwrap(), if paired { m / 2 } else { m }, "{name}");
        let mut z = random_vector(m, &mut rng);
        if name == "categorical_probabilities" {
            let total: f64 = z.iter().map(|v| v.exp()).sum();
            z = z.iter().map(|v| v.exp() / total).collect();
        }
        if name == "gaussian_natural" {
            z[2] = 0.5 + z[2].abs();
            z[3] = 0.5 + z[3].abs();
        }
        let mut y = vec![0.0; dist.target_dim(m).unwrap()];
        dist.sample(&z, &mut rng, &mut y);
        let report = check_loss(dist.as_ref(), &z, &y, 1e-8, 20_000, 1).unwrap();
        assert!(report.passed(), "{report}");
    }
    let z = [0.3, -0.2, 0.9];
    let report = check_loss(&WrongCurvature, &z, &[0.0, 1.0, 0.0], 1e-8, 0, 1).unwrap();
    assert!(!report.passed(), "a 1% error in H_L passed: {report}");
}

#[test]
fn non_layered_models_get_whole_matrix_products_and_a_clear_error_for_the_decomposition() {
    let (mlp, x, y, gamma) = setup(5);
    let model = Reparameterized::new(&mlp, &Nonlinear, &gamma).unwrap();
    let problem = Problem::new(&model, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let pass = problem.at(&gamma).unwrap();
    // Whole-matrix products work: H = G + residual holds for a model that is not an Mlp.
    curvature::verify::check_ggn_residual_identity(&problem, &gamma, 1e-10)
        .unwrap()
        .assert_passed();
    let err = pass.c_vector_product(&gamma, None).unwrap_err();
    assert!(err.to_string().contains("needs a layered model"), "{err}");
}

#[test]
fn psd_check_fails_for_an_indefinite_loss_hessian_and_passes_for_the_fisher() {
    use curvature::verify::check_positive_semidefinite;
    let mut rng = StdRng::seed_from_u64(12);
    let mlp = Mlp::new(&[3, 4, 2], &[Activation::Tanh, Activation::Identity]).unwrap();
    let x = random_matrix(6, 3, &mut rng);
    // Targets far from the predictions make H_L of (μ, log σ²) indefinite (Section 9.2).
    let y = Matrix::from_fn(6, 1, |i, _| 3.0 + i as f64);
    let dist = loss::GaussianMeanLogVar;
    let problem = Problem::new(&mlp, &dist, &x, &y).unwrap();
    let pass = problem.at(&random_vector(mlp.num_params(), &mut rng)).unwrap();
    let ggn = check_positive_semidefinite(&pass.ggn(), 1e-10).unwrap();
    assert!(!ggn.passed(), "the GGN of an indefinite H_L passed a PSD check: {ggn}");
    check_positive_semidefinite(&pass.fisher(), 1e-10).unwrap().assert_passed();
}
