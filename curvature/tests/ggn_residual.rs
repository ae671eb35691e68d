//! The eqn-6 residual `R = (1/N) Σ_n Σ_j [∇_z L_n]_j H_{[f]_j}` against a reference that shares
//! no code with the residual product (`verify::check_ggn_residual`): the dense Hessian of
//! `θ ↦ (1/N) Σ_n g_nᵀ f(x_n, θ)` with `g_n = ∇_z L` held constant, by `autodiff::modes`.
//!
//! Both sides are exact, so the tier is round-off: `1e-10` norm-wise relative (the observed
//! error is below `1e-13`). Each model's residual is asserted to be far from zero, so a check
//! of two zero matrices cannot pass for it; wrong residual operators (the Hessian, the GGN, the
//! residual with one entry off by `1e-6` relative, the residual scaled by `1 + 1e-8`) are
//! rejected.

use autodiff::random::{random_matrix, random_vector};
use autodiff::{Matrix, Scalar, Tape, Var};
use curvature::loss::{self, SoftmaxCrossEntropy, SquaredError};
use curvature::{verify, Activation, FnOperator, LinearOperator, Mlp, Model, Problem};
use rand::{rngs::StdRng, SeedableRng};

const EXACT: f64 = 1e-10;

/// A model that is not layered: `z = tanh(x Aᵀ) ⊙ (x Bᵀ) + c`, with `A`, `B` (`m × d`) and
/// `c` (`1 × m`) in θ. Its outputs are products of parameters, so each `H_{[f]_j}` has
/// off-diagonal `A × B` blocks besides the tanh curvature in `A`.
struct GatedProduct {
    inputs: usize,
    outputs: usize,
}

impl Model for GatedProduct {
    fn num_params(&self) -> usize {
        2 * self.outputs * self.inputs + self.outputs
    }

    fn forward<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        let (m, d) = (self.outputs, self.inputs);
        let a = theta.slice(0, m, d)?;
        let b = theta.slice(m * d, m, d)?;
        let c = theta.slice(2 * m * d, 1, m)?;
        x.matmul_t(a)?.tanh()?.mul(x.matmul_t(b)?)?.add_row(c)
    }
}

/// The largest magnitude of the pass's residual as a dense matrix.
fn residual_scale<M: Model>(problem: &Problem<'_, M>, theta: &[f64]) -> f64 {
    let pass = problem.at(theta).unwrap();
    let residual =
        FnOperator::new(pass.dim(), |v| pass.ggn_residual_vector_product(v)).to_dense().unwrap();
    residual.data().iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

fn mlp_problem_parts(seed: u64) -> (Mlp, Matrix<f64>, Matrix<f64>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mlp = Mlp::new(&[3, 4, 3], &[Activation::Tanh, Activation::Identity]).unwrap();
    let x = random_matrix(5, 3, &mut rng);
    let y = loss::sample_targets(&SoftmaxCrossEntropy, &random_matrix(5, 3, &mut rng), &mut rng)
        .unwrap();
    let theta = random_vector(mlp.num_params(), &mut rng);
    (mlp, x, y, theta)
}

#[test]
fn the_residual_of_a_tanh_mlp_matches_the_hessian_of_the_weighted_outputs() {
    for seed in 0..3 {
        let (mlp, x, y, theta) = mlp_problem_parts(seed);
        let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
        assert!(residual_scale(&problem, &theta) > 1e-3, "the residual is nearly zero");
        let report = verify::check_ggn_residual(&problem, &theta, EXACT).unwrap();
        report.assert_passed();
        assert!(report.max_rel_error < 1e-13, "{report}");
        assert!(report.location.as_deref().is_some_and(|l| l.contains(" × ")), "{report}");
    }
}

#[test]
fn the_residual_of_a_non_layered_product_model_matches_the_reference() {
    let mut rng = StdRng::seed_from_u64(7);
    let model = GatedProduct { inputs: 3, outputs: 2 };
    let x = random_matrix(6, 3, &mut rng);
    // Targets away from the outputs, so that `∇_z L = z − y` weighs every H_{[f]_j}.
    let y = random_matrix(6, 2, &mut rng);
    let theta = random_vector(model.num_params(), &mut rng);
    let problem = Problem::new(&model, &SquaredError, &x, &y).unwrap();
    assert!(residual_scale(&problem, &theta) > 1e-2, "the residual is nearly zero");
    let report = verify::check_ggn_residual(&problem, &theta, EXACT).unwrap();
    report.assert_passed();
    assert!(report.max_rel_error < 1e-13, "{report}");
    // The residual is the part of H that G misses: H − G equals it, by products that do not
    // touch the residual's code path.
    let pass = problem.at(&theta).unwrap();
    let h_minus_g = FnOperator::new(pass.dim(), |v| {
        let (h, g) = (pass.hessian_vector_product(v)?, pass.ggn_vector_product(v)?);
        Ok(h.iter().zip(&g).map(|(a, b)| a - b).collect())
    });
    verify::check_ggn_residual_operator(&problem, &theta, &h_minus_g, EXACT)
        .unwrap()
        .assert_passed();
}

/// The residual with `B[row, column]` moved by `delta` times the residual's largest magnitude.
struct OneEntryOff<'p, Op> {
    op: &'p Op,
    row: usize,
    column: usize,
    delta: f64,
}

impl<Op: LinearOperator> LinearOperator for OneEntryOff<'_, Op> {
    fn dim(&self) -> usize {
        self.op.dim()
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) -> curvature::error::Result<()> {
        self.op.apply(v, out)?;
        out[self.row] += self.delta * v[self.column];
        Ok(())
    }
}

#[test]
fn wrong_residual_operators_are_rejected() {
    let (mlp, x, y, theta) = mlp_problem_parts(1);
    let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let pass = problem.at(&theta).unwrap();
    let n = pass.dim();
    let residual = FnOperator::new(n, |v| pass.ggn_residual_vector_product(v));
    verify::check_ggn_residual_operator(&problem, &theta, &residual, EXACT)
        .unwrap()
        .assert_passed();

    // H (= G + R) and G in place of R.
    for (what, wrong) in [("H", pass.hessian()), ("G", pass.ggn())] {
        let report = verify::check_ggn_residual_operator(&problem, &theta, &wrong, EXACT).unwrap();
        assert!(!report.passed(), "{what} passed as the residual: {report}");
        assert!(report.max_rel_error > 1e-3, "{report}");
    }

    // One entry off by 1e-6 of the residual's scale, in W2 × b1 (θ indices 21, 12 of the
    // 3-4-3 network: W1 0..12, b1 12..16, W2 16..28, b2 28..31): rejected and named.
    let scale = residual_scale(&problem, &theta);
    let off = OneEntryOff { op: &residual, row: 21, column: 12, delta: 1e-6 * scale };
    let report = verify::check_ggn_residual_operator(&problem, &theta, &off, EXACT).unwrap();
    assert!(!report.passed(), "{report}");
    assert!((report.max_rel_error - 1e-6).abs() < 1e-9, "{report}");
    assert_eq!(report.location.as_deref(), Some("W2[5] × b1[0] (θ indices 21, 12)"));

    // The whole residual scaled by 1 + 1e-8: below differences' resolution, above round-off.
    let scaled = FnOperator::new(n, |v| {
        Ok(pass.ggn_residual_vector_product(v)?.iter().map(|r| r * (1.0 + 1e-8)).collect())
    });
    let report = verify::check_ggn_residual_operator(&problem, &theta, &scaled, EXACT).unwrap();
    assert!(!report.passed(), "{report}");
}

#[test]
fn bad_input_is_an_error() {
    let (mlp, x, y, theta) = mlp_problem_parts(2);
    let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let err = verify::check_ggn_residual(&problem, &theta[1..], EXACT).unwrap_err();
    assert!(err.to_string().contains("θ"), "{err}");
    let small = Matrix::<f64>::zeros(3, 3);
    let err = verify::check_ggn_residual_operator(&problem, &theta, &small, EXACT).unwrap_err();
    assert!(err.to_string().contains("operator"), "{err}");
}
