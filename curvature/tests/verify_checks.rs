//! The dense-matrix checks of `curvature::verify` each reject a planted error, and the
//! operators' exact `diagonal()` and `Damped` match references built another way.
//!
//! - `check_symmetric`: passes for `G`, rejects `G` with one entry moved by `1e-6` (relative).
//! - `check_equal`: passes for one operator against itself, rejects two that differ in one
//!   entry by `1e-6` (relative) and reports that entry.
//! - `check_fisher_equals_ggn`: passes for the softmax (natural parameter), rejects a loss
//!   whose `F_R` differs from `H_L` by `1e-6` in one entry.
//! - `check_hessian_decomposition`: passes for a tanh MLP, rejects the same MLP whose layers
//!   declare a tanh with a `φ''` off by 1% (a wrong activation term).
//! - `diagonal()` of `H`, `G`, `F`, `F̄`, the block-diagonal `G` and `Damped` against the
//!   diagonals of dense matrices from `autodiff::modes` (dense Hessian of the objective, dense
//!   Jacobian with the softmax's `H_L = diag(p) − p pᵀ` spelled out), relative `1e-10`.
//! - `Damped`: `apply = B v + λ v`, dense `B + λI` (exact to round-off), a bad `λ` an error.

use autodiff::modes::{dense_hessian, dense_jacobian, Function};
use autodiff::random::{random_matrix, random_vector};
use autodiff::{Matrix, Scalar, Tape, Var};
use curvature::error::Result;
use curvature::loss::{self, PredictiveDistribution, SoftmaxCrossEntropy, TargetIssue};
use curvature::model::{LayerVars, Nonlinearity};
use curvature::{verify, Activation, CurvatureKind, Damped, LinearOperator, Mlp, Model, Problem};
use rand::{rngs::StdRng, RngCore, SeedableRng};
use std::sync::Arc;

/// A 3-4-3 tanh network with the softmax, a batch of 5 one-hot targets and θ.
fn setup(seed: u64) -> (Mlp, Matrix<f64>, Matrix<f64>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mlp = Mlp::new(&[3, 4, 3], &[Activation::Tanh, Activation::Identity]).unwrap();
    let x = random_matrix(5, 3, &mut rng);
    let y = loss::sample_targets(&SoftmaxCrossEntropy, &random_matrix(5, 3, &mut rng), &mut rng)
        .unwrap();
    let theta = random_vector(mlp.num_params(), &mut rng);
    (mlp, x, y, theta)
}

/// `op` with `B[row, column]` moved by `delta`.
struct OneEntryOff<Op> {
    op: Op,
    row: usize,
    column: usize,
    delta: f64,
}

impl<Op: LinearOperator> LinearOperator for OneEntryOff<Op> {
    fn dim(&self) -> usize {
        self.op.dim()
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.op.apply(v, out)?;
        out[self.row] += self.delta * v[self.column];
        Ok(())
    }
}

fn max_abs(m: &Matrix<f64>) -> f64 {
    m.data().iter().fold(0.0_f64, |a, v| a.max(v.abs()))
}

#[test]
fn check_symmetric_rejects_one_asymmetric_entry() {
    let (mlp, x, y, theta) = setup(0);
    let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let pass = problem.at(&theta).unwrap();
    let ggn = pass.ggn();
    verify::check_symmetric(&ggn, 1e-12).unwrap().assert_passed();
    let scale = max_abs(&ggn.to_dense().unwrap());
    let n = ggn.dim();
    let off = OneEntryOff { op: &ggn, row: 3, column: 20, delta: 1e-6 * scale };
    let report = verify::check_symmetric(&off, 1e-12).unwrap();
    assert!(!report.passed(), "{report}");
    // Entry (3, 20) against (20, 3): off by 1e-6 of the scale (which grew by at most 1e-6).
    assert!((report.max_rel_error - 1e-6).abs() < 1e-11, "{report}");
    assert!(report.at == 3 * n + 20 || report.at == 20 * n + 3, "{report}");
}

#[test]
fn check_equal_rejects_operators_differing_in_one_entry() {
    let (mlp, x, y, theta) = setup(1);
    let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let pass = problem.at(&theta).unwrap();
    let (h, n) = (pass.hessian(), pass.dim());
    verify::check_equal("H vs H", &h, &h, 0.0).unwrap().assert_passed();
    let scale = max_abs(&h.to_dense().unwrap());
    let off = OneEntryOff { op: &h, row: 30, column: 7, delta: 1e-6 * scale };
    let report = verify::check_equal("H vs H with one entry off", &h, &off, 1e-10).unwrap();
    assert!(!report.passed(), "{report}");
    assert_eq!(report.at, 30 * n + 7, "{report}");
    assert!((report.max_rel_error - 1e-6).abs() < 1e-11, "{report}");
    assert!(report.to_string().contains("one entry off"), "{report}");
    // A smaller change than the tolerance passes: the check measures, it does not just differ.
    let tiny = OneEntryOff { op: &h, row: 30, column: 7, delta: 1e-12 * scale };
    verify::check_equal("H vs H, 1e-12 off", &h, &tiny, 1e-10).unwrap().assert_passed();
}

/// The softmax with `F_R` off by `1e-6 u_0` in its first output: `F_R ≠ H_L`.
struct FisherOff;

impl PredictiveDistribution for FisherOff {
    fn name(&self) -> &str {
        "softmax with F_R off"
    }
    fn target_dim(&self, output_dim: usize) -> Result<usize> {
        SoftmaxCrossEntropy.target_dim(output_dim)
    }
    fn check_target(&self, y: &[f64]) -> std::result::Result<(), TargetIssue> {
        SoftmaxCrossEntropy.check_target(y)
    }
    fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
        SoftmaxCrossEntropy.loss(z, y)
    }
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
        SoftmaxCrossEntropy.grad_z(z, y, out)
    }
    fn apply_h_l(&self, z: &[f64], y: &[f64], u: &[f64], out: &mut [f64]) {
        SoftmaxCrossEntropy.apply_h_l(z, y, u, out)
    }
    fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]) {
        SoftmaxCrossEntropy.apply_f_r(z, u, out);
        out[0] += 1e-6 * u[0];
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y_out: &mut [f64]) {
        SoftmaxCrossEntropy.sample(z, rng, y_out)
    }
    fn is_natural_parameter(&self) -> bool {
        true
    }
}

#[test]
fn check_fisher_equals_ggn_rejects_a_loss_whose_fisher_is_not_its_hessian() {
    let (mlp, x, y, theta) = setup(2);
    let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
    verify::check_fisher_equals_ggn(&problem, &theta, 1e-12).unwrap().assert_passed();
    let wrong = Problem::new(&mlp, &FisherOff, &x, &y).unwrap();
    let report = verify::check_fisher_equals_ggn(&wrong, &theta, 1e-12).unwrap();
    assert!(!report.passed(), "{report}");
    assert!(report.max_rel_error > 1e-9, "{report}");
    // F − G = 1e-6 mean_n J_{0,n}ᵀ J_{0,n} (J_0: output 0's row of J), largest at the bias
    // b2[0] of that output, where ∂z_0/∂b2[0] = 1 for every example: exactly 1e-6 there.
    assert_eq!(report.location.as_deref(), Some("b2[0] × b2[0] (θ indices 28, 28)"));
    assert!((report.computed - report.reference - 1e-6).abs() < 1e-15, "{report}");
}

/// tanh with its declared `φ''` (the curvature product) 1% too large; value and `φ'` right.
#[derive(Debug)]
struct WrongTanh;

impl Nonlinearity for WrongTanh {
    fn name(&self) -> &str {
        "tanh with φ'' off by 1%"
    }
    fn value(&self, s: &[f64], out: &mut [f64]) {
        Activation::Tanh.value(s, out)
    }
    fn transpose_jacobian_vector_product(&self, s: &[f64], c: &[f64], out: &mut [f64]) {
        Activation::Tanh.transpose_jacobian_vector_product(s, c, out)
    }
    fn curvature_product(&self, s: &[f64], c: &[f64], u: &[f64], out: &mut [f64]) {
        Activation::Tanh.curvature_product(s, c, u, out);
        out.iter_mut().for_each(|o| *o *= 1.01);
    }
}

/// An MLP whose layers declare `declared` in place of their tanh: its forward pass is the
/// MLP's, so only the decomposition's activation term changes.
struct Misdeclared {
    mlp: Mlp,
    declared: Arc<dyn Nonlinearity>,
}

impl Model for Misdeclared {
    fn num_params(&self) -> usize {
        self.mlp.num_params()
    }
    fn forward<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        self.mlp.forward(tape, theta, x)
    }
    fn forward_layers<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Option<Vec<LayerVars<'t, T>>>> {
        let layers = self.mlp.forward_layers(tape, theta, x)?;
        Ok(layers.map(|layers| {
            layers
                .into_iter()
                .map(|mut l| {
                    if l.activation.name() == Activation::Tanh.name() {
                        l.activation = self.declared.clone();
                    }
                    l
                })
                .collect()
        }))
    }
    fn parameter_blocks(&self) -> Vec<curvature::model::ParameterBlock> {
        self.mlp.parameter_blocks()
    }
}

#[test]
fn check_hessian_decomposition_rejects_a_wrong_activation_term() {
    let (mlp, x, y, theta) = setup(3);
    let right = Misdeclared { mlp: mlp.clone(), declared: Arc::new(Activation::Tanh) };
    let problem = Problem::new(&right, &SoftmaxCrossEntropy, &x, &y).unwrap();
    verify::check_hessian_decomposition(&problem, &theta, 1e-10).unwrap().assert_passed();

    let wrong = Misdeclared { mlp, declared: Arc::new(WrongTanh) };
    let problem = Problem::new(&wrong, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let report = verify::check_hessian_decomposition(&problem, &theta, 1e-10).unwrap();
    assert!(!report.passed(), "{report}");
    assert!(report.max_rel_error > 1e-6, "{report}");
    // The activation term acts on s_1 = x W1ᵀ + b1: its error is in W1 and b1 only.
    let location = report.location.clone().unwrap();
    assert!(!location.contains("W2") && !location.contains("b2"), "{location}");
}

/// `h(θ) = −(1/N) Σ_n y_nᵀ log softmax(f(x_n, θ))` written on the tape.
struct Objective<'a> {
    mlp: &'a Mlp,
    x: &'a Matrix<f64>,
    y: &'a Matrix<f64>,
}

impl Function for Objective<'_> {
    fn eval<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        theta: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        let z = self.mlp.forward(tape, theta, tape.constant_f64(self.x))?;
        z.log_softmax()?.mul(tape.constant_f64(self.y))?.sum()?.scale(-1.0 / self.x.rows() as f64)
    }
}

/// `θ ↦ f(X, θ)` (the whole batch's outputs, row-major).
struct Outputs<'a> {
    mlp: &'a Mlp,
    x: &'a Matrix<f64>,
}

impl Function for Outputs<'_> {
    fn eval<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        theta: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        self.mlp.forward(tape, theta, tape.constant_f64(self.x))
    }
}

/// Reference diagonals of `H`, `G` (= `F` for the softmax) and `F̄`, from dense matrices:
/// the Hessian of the objective, and `J` with `H_L = diag(p) − p pᵀ` and `∇_z L = p − y`.
fn reference_diagonals(
    mlp: &Mlp,
    x: &Matrix<f64>,
    y: &Matrix<f64>,
    theta: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let h = dense_hessian(&Objective { mlp, x, y }, theta).unwrap();
    let outputs = Outputs { mlp, x };
    let j = dense_jacobian(&outputs, theta).unwrap();
    let z = autodiff::modes::value(&outputs, theta).unwrap();
    let (rows, m, n) = (z.rows(), z.cols(), theta.len());
    let (mut g, mut empirical) = (vec![0.0; n], vec![0.0; n]);
    for r in 0..rows {
        let top = z.row(r).iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let e: Vec<f64> = z.row(r).iter().map(|v| (v - top).exp()).collect();
        let total: f64 = e.iter().sum();
        let p: Vec<f64> = e.iter().map(|v| v / total).collect();
        for k in 0..n {
            let jk: Vec<f64> = (0..m).map(|a| j[(r * m + a, k)]).collect();
            // J_kᵀ (diag(p) − p pᵀ) J_k = Σ p_a J_a² − (Σ p_a J_a)².
            let mean: f64 = (0..m).map(|a| p[a] * jk[a]).sum();
            let second: f64 = (0..m).map(|a| p[a] * jk[a] * jk[a]).sum();
            g[k] += (second - mean * mean) / rows as f64;
            let grad: f64 = (0..m).map(|a| (p[a] - y[(r, a)]) * jk[a]).sum();
            empirical[k] += grad * grad / rows as f64;
        }
    }
    ((0..n).map(|k| h[(k, k)]).collect(), g, empirical)
}

fn assert_close(what: &str, computed: &[f64], reference: &[f64], tolerance: f64) {
    let report = autodiff::check::compare(what, computed, reference, tolerance).unwrap();
    report.assert_passed();
}

#[test]
fn exact_diagonals_match_the_dense_matrices_built_another_way() {
    for seed in 4..6 {
        let (mlp, x, y, theta) = setup(seed);
        let problem = Problem::new(&mlp, &SoftmaxCrossEntropy, &x, &y).unwrap();
        let pass = problem.at(&theta).unwrap();
        let (h, g, empirical) = reference_diagonals(&mlp, &x, &y, &theta);
        assert!(h.iter().zip(&g).any(|(a, b)| (a - b).abs() > 1e-3), "H = G on the diagonal");
        assert_close("diag H", &pass.hessian().diagonal().unwrap(), &h, 1e-10);
        assert_close("diag G", &pass.ggn().diagonal().unwrap(), &g, 1e-10);
        assert_close("diag F", &pass.fisher().diagonal().unwrap(), &g, 1e-10);
        assert_close("diag F̄", &pass.empirical_fisher().diagonal().unwrap(), &empirical, 1e-10);
        let blocks = pass.operator(&CurvatureKind::BlockDiagonal(Box::new(CurvatureKind::Ggn)));
        assert_close("diag block G", &blocks.unwrap().diagonal().unwrap(), &g, 1e-10);
        let lambda = 0.37;
        let damped = Damped::new(pass.ggn(), lambda).unwrap().diagonal().unwrap();
        let shifted: Vec<f64> = g.iter().map(|d| d + lambda).collect();
        assert_close("diag (G + λI)", &damped, &shifted, 1e-10);
        // And the diagonal of the operator's own dense matrix, entry for entry.
        let dense = pass.hessian().to_dense().unwrap();
        let diagonal = pass.hessian().diagonal().unwrap();
        assert!((0..dense.rows()).all(|k| dense[(k, k)] == diagonal[k]));
    }
}

#[test]
fn damped_adds_lambda_times_v_and_rejects_a_bad_lambda() {
    let mut rng = StdRng::seed_from_u64(9);
    let b = random_matrix(6, 6, &mut rng);
    let v = random_vector(6, &mut rng);
    let lambda = 0.25;
    let damped = Damped::new(&b, lambda).unwrap();
    assert_eq!(damped.dim(), 6);
    assert!(!damped.is_symmetric(), "a random matrix is not symmetric");
    let mut out = vec![0.0; 6];
    damped.apply(&v, &mut out).unwrap();
    // B v + λ v, written out.
    let expected: Vec<f64> =
        (0..6).map(|i| (0..6).map(|j| b[(i, j)] * v[j]).sum::<f64>() + lambda * v[i]).collect();
    assert_close("(B + λI) v", &out, &expected, 1e-15);
    let dense = damped.to_dense().unwrap();
    let b_plus = Matrix::from_fn(6, 6, |i, j| b[(i, j)] + if i == j { lambda } else { 0.0 });
    assert_close("dense B + λI", dense.data(), b_plus.data(), 1e-15);
    // λ = 0 is B itself.
    let undamped = Damped::new(&b, 0.0).unwrap().to_dense().unwrap();
    assert_eq!(undamped.data(), b.data());
    let symmetric = Matrix::from_fn(6, 6, |i, j| b[(i, j)] + b[(j, i)]);
    assert!(Damped::new(&symmetric, lambda).unwrap().is_symmetric());
    for bad in [-1e-12, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = Damped::new(&b, bad).unwrap_err();
        assert!(err.to_string().contains("damping λ"), "{bad}: {err}");
    }
    let mut short = vec![0.0; 5];
    assert!(damped.apply(&v, &mut short).is_err());
}
