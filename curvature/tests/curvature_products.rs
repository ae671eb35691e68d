//! One products trait, one curvature operator: for every [`CurvatureKind`], the generic
//! [`CurvatureOperator`] on a [`ForwardPass`] and on a [`ShardedPass`] (2 threads, uneven row
//! blocks) agree with each other and with a dense matrix built another way, and the
//! [`CurvatureProducts`] of the two passes agree product by product.
//!
//! The references share no code with the passes: `z`, the dense Jacobian `J` and the dense
//! Hessian come from `autodiff::modes` (dual numbers on a fresh tape, the objective written on
//! the tape with its loss), and the loss's `∇_z L`, `H_L` and `F_R` are written out here in
//! closed form for `GaussianMeanLogVar` (chosen because its `H`, `G`, `F`, `F̄` and Monte-Carlo
//! Fisher all differ, so two kinds swapped cannot pass). Tolerance: the largest entry-wise
//! difference over the largest entry of the reference, at most 1e-10 (f64).

use autodiff::modes::{self, Function};
use autodiff::{Matrix, Scalar, Tape, Var};
use curvature::loss::{GaussianMeanLogVar, PredictiveDistribution};
use curvature::rand::{rngs::StdRng, Rng, SeedableRng};
use curvature::{
    Activation, CurvatureError, CurvatureKind, CurvatureOperator, CurvatureProducts,
    LinearOperator, Mlp, Model, Problem, ShardedProblem,
};

const TOLERANCE: f64 = 1e-10;

/// Outputs per example: `d` means then `d` log-variances.
const D: usize = 2;

/// `max |a − b| / max |b|` (0 when both are zero).
fn relative(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    if diff == 0.0 {
        0.0
    } else {
        diff / scale
    }
}

fn assert_close(what: &str, a: &[f64], b: &[f64]) {
    let r = relative(a, b);
    assert!(r <= TOLERANCE, "{what}: relative difference {r:e} > {TOLERANCE:e}");
}

/// A 3-6-4 tanh network (`n = 52`), 7 examples (row blocks of 4 and 3), θ and targets.
struct Setup {
    mlp: Mlp,
    x: Matrix<f64>,
    y: Matrix<f64>,
    theta: Vec<f64>,
}

fn setup() -> Setup {
    let mlp = Mlp::new(&[3, 6, 2 * D], &[Activation::Tanh, Activation::Identity]).unwrap();
    let mut rng = StdRng::seed_from_u64(21);
    let x = Matrix::from_fn(7, 3, |_, _| rng.random_range(-1.0..1.0));
    let y = Matrix::from_fn(7, D, |_, _| rng.random_range(-1.5..1.5));
    let theta = (0..mlp.num_params()).map(|_| rng.random_range(-0.6..0.6)).collect();
    Setup { mlp, x, y, theta }
}

/// The network alone, `θ ↦ z = f(x, θ)`.
struct Network<'a> {
    mlp: &'a Mlp,
    x: &'a Matrix<f64>,
}

impl Function for Network<'_> {
    fn eval<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        theta: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        let x = tape.constant_f64(self.x);
        self.mlp.forward(tape, theta, x)
    }
}

/// The objective on the tape: `h(θ) = (1/N) Σ_n Σ_j ½ (y_nj − μ_nj)² e^{−γ_nj} + ½ γ_nj` with
/// `μ = z S_μ`, `γ = z S_γ` (constant column selections).
struct Objective<'a> {
    network: Network<'a>,
    y: &'a Matrix<f64>,
}

impl Function for Objective<'_> {
    fn eval<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        theta: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        let z = self.network.eval(tape, theta)?;
        let select = |offset: usize| {
            tape.constant_f64(&Matrix::from_fn(2 * D, D, |i, j| {
                f64::from(u8::from(i == j + offset))
            }))
        };
        let mu = z.matmul(select(0))?;
        let gamma = z.matmul(select(D))?;
        let residual = tape.constant_f64(self.y).sub(mu)?;
        let fit = residual.square()?.mul(gamma.neg()?.exp()?)?;
        let rows = self.y.rows() as f64;
        fit.add(gamma)?.sum()?.scale(0.5 / rows)
    }
}

/// The dense matrices of every kind, built from `autodiff::modes` and closed forms.
struct References {
    hessian: Matrix<f64>,
    ggn: Matrix<f64>,
    fisher: Matrix<f64>,
    empirical_fisher: Matrix<f64>,
    /// Per example, its `J_n` (`2D × n`).
    jacobians: Vec<Matrix<f64>>,
    z: Matrix<f64>,
}

/// `∇_z L(t, z)` for GaussianMeanLogVar, written out: `[−r e^{−γ}, ½ − ½ r² e^{−γ}]`, `r = t − μ`.
fn output_gradient(z: &[f64], t: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; 2 * D];
    for j in 0..D {
        let (r, w) = (t[j] - z[j], (-z[D + j]).exp());
        g[j] = -r * w;
        g[D + j] = 0.5 - 0.5 * r * r * w;
    }
    g
}

/// `Σ_n J_nᵀ B_n J_n / N` for the per-example `2D × 2D` matrices `B_n`.
fn sandwich(jacobians: &[Matrix<f64>], b: impl Fn(usize) -> Matrix<f64>) -> Matrix<f64> {
    let n = jacobians[0].cols();
    let mut total = Matrix::zeros(n, n);
    let rows = jacobians.len() as f64;
    for (e, j) in jacobians.iter().enumerate() {
        let b = b(e);
        for p in 0..n {
            for q in 0..n {
                let mut s = 0.0;
                for a in 0..2 * D {
                    for c in 0..2 * D {
                        s += j[(a, p)] * b[(a, c)] * j[(c, q)];
                    }
                }
                total[(p, q)] += s / rows;
            }
        }
    }
    total
}

/// `(1/(N S)) Σ_n Σ_s g̃ g̃ᵀ`, `g̃ = J_nᵀ ∇_z L(t_{ns}, z_n)`, for target matrices `t_s`.
fn outer_products(references: &References, targets: &[Matrix<f64>]) -> Matrix<f64> {
    let count = targets.len() as f64;
    sandwich(&references.jacobians, |e| {
        let mut b = Matrix::zeros(2 * D, 2 * D);
        for t in targets {
            let g = output_gradient(references.z.row(e), t.row(e));
            for a in 0..2 * D {
                for c in 0..2 * D {
                    b[(a, c)] += g[a] * g[c] / count;
                }
            }
        }
        b
    })
}

fn references(s: &Setup) -> References {
    let network = Network { mlp: &s.mlp, x: &s.x };
    let z = modes::value(&network, &s.theta).unwrap();
    let jacobian = modes::dense_jacobian(&network, &s.theta).unwrap();
    let n = s.theta.len();
    let jacobians: Vec<Matrix<f64>> = (0..z.rows())
        .map(|e| Matrix::from_fn(2 * D, n, |a, p| jacobian[(e * 2 * D + a, p)]))
        .collect();
    let hessian = modes::dense_hessian(&Objective { network, y: &s.y }, &s.theta).unwrap();
    let ggn = sandwich(&jacobians, |e| {
        let (zr, t) = (z.row(e), s.y.row(e));
        let mut b = Matrix::zeros(2 * D, 2 * D);
        for j in 0..D {
            let (r, w) = (t[j] - zr[j], (-zr[D + j]).exp());
            b[(j, j)] = w;
            b[(j, D + j)] = r * w;
            b[(D + j, j)] = r * w;
            b[(D + j, D + j)] = 0.5 * r * r * w;
        }
        b
    });
    let fisher = sandwich(&jacobians, |e| {
        let mut b = Matrix::zeros(2 * D, 2 * D);
        for j in 0..D {
            b[(j, j)] = (-z.row(e)[D + j]).exp();
            b[(D + j, D + j)] = 0.5;
        }
        b
    });
    let mut references =
        References { hessian, ggn, fisher, empirical_fisher: Matrix::zeros(0, 0), jacobians, z };
    references.empirical_fisher = outer_products(&references, std::slice::from_ref(&s.y));
    references
}

/// Monte-Carlo targets drawn here: sample by sample, example by example, from one generator.
fn monte_carlo_targets(z: &Matrix<f64>, samples: usize, seed: u64) -> Vec<Matrix<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..samples)
        .map(|_| {
            let mut t = Matrix::zeros(z.rows(), D);
            for e in 0..z.rows() {
                GaussianMeanLogVar.sample(z.row(e), &mut rng, t.row_mut(e));
            }
            t
        })
        .collect()
}

/// `dense` with the entries outside the layers' diagonal blocks set to zero.
fn block_diagonal(mlp: &Mlp, dense: &Matrix<f64>) -> Matrix<f64> {
    let layer = |k: usize| {
        (1..=mlp.num_layers())
            .position(|i| mlp.weight_range(i).start <= k && k < mlp.bias_range(i).end)
            .expect("every parameter is in a layer")
    };
    Matrix::from_fn(dense.rows(), dense.cols(), |p, q| {
        if layer(p) == layer(q) {
            dense[(p, q)]
        } else {
            0.0
        }
    })
}

const SAMPLES: usize = 3;
const SEED: u64 = 2020;

fn kinds() -> Vec<CurvatureKind> {
    let plain = vec![
        CurvatureKind::Hessian,
        CurvatureKind::Ggn,
        CurvatureKind::Fisher,
        CurvatureKind::EmpiricalFisher,
        CurvatureKind::MonteCarloFisher { samples: SAMPLES, seed: SEED },
    ];
    let blocked = plain.iter().map(|k| CurvatureKind::BlockDiagonal(Box::new(k.clone())));
    plain.clone().into_iter().chain(blocked).collect()
}

fn reference_of(s: &Setup, r: &References, kind: &CurvatureKind) -> Matrix<f64> {
    match kind {
        CurvatureKind::Hessian => r.hessian.clone(),
        CurvatureKind::Ggn => r.ggn.clone(),
        CurvatureKind::Fisher => r.fisher.clone(),
        CurvatureKind::EmpiricalFisher => r.empirical_fisher.clone(),
        CurvatureKind::MonteCarloFisher { samples, seed } => {
            outer_products(r, &monte_carlo_targets(&r.z, *samples, *seed))
        }
        CurvatureKind::BlockDiagonal(inner) => block_diagonal(&s.mlp, &reference_of(s, r, inner)),
        other => panic!("no reference for {other:?}"),
    }
}

fn dense<P: CurvatureProducts>(pass: P, kind: &CurvatureKind) -> Matrix<f64> {
    CurvatureOperator::new(pass, kind).unwrap().to_dense().unwrap()
}

/// The references themselves hang together: the Hessian is symmetric, the MC Fisher differs
/// from the Fisher and the GGN from the Fisher (so a swapped pair of kinds cannot pass).
#[test]
fn the_references_are_distinct_matrices() {
    let s = setup();
    let r = references(&s);
    let h = r.hessian.data();
    assert_close("H vs Hᵀ", h, r.hessian.transpose().data());
    let all: Vec<(String, Matrix<f64>)> =
        kinds().iter().take(5).map(|k| (format!("{k:?}"), reference_of(&s, &r, k))).collect();
    for (i, (a, ma)) in all.iter().enumerate() {
        for (b, mb) in &all[i + 1..] {
            let d = relative(ma.data(), mb.data());
            assert!(d > 1e-3, "{a} and {b} are too close ({d:e}) to tell apart");
        }
    }
}

/// Every kind, on a pass and on a 2-thread sharded pass, against its dense reference; the
/// operators own or borrow the pass alike.
#[test]
fn every_kind_on_both_passes_matches_its_dense_reference() {
    let s = setup();
    let r = references(&s);
    let problem = Problem::new(&s.mlp, &GaussianMeanLogVar, &s.x, &s.y).unwrap();
    let sharded = ShardedProblem::new(&problem, 2).unwrap();
    assert_eq!(sharded.threads(), 2);
    let pass = problem.at(&s.theta).unwrap();
    let sharded_pass = sharded.at(&s.theta).unwrap();
    for kind in kinds() {
        let want = reference_of(&s, &r, &kind);
        let whole = dense(&pass, &kind);
        let split = dense(&sharded_pass, &kind);
        assert_close(&format!("{kind:?}: ForwardPass vs reference"), whole.data(), want.data());
        assert_close(&format!("{kind:?}: ShardedPass vs reference"), split.data(), want.data());
        assert_close(&format!("{kind:?}: ShardedPass vs ForwardPass"), split.data(), whole.data());
        // The boxed constructors are the same operator.
        let boxed = pass.operator(&kind).unwrap().to_dense().unwrap();
        assert_eq!(boxed.data(), whole.data(), "{kind:?}: ForwardPass::operator");
        let boxed = sharded_pass.operator(&kind).unwrap().to_dense().unwrap();
        assert_eq!(boxed.data(), split.data(), "{kind:?}: ShardedPass::operator");
    }
    // Owning the pass (the optimizer's objective does) gives the same matrix.
    let kind = CurvatureKind::BlockDiagonal(Box::new(CurvatureKind::Hessian));
    let owned = sharded.at(&s.theta).unwrap().into_operator(&kind).unwrap().to_dense().unwrap();
    assert_close("owned sharded block H", owned.data(), reference_of(&s, &r, &kind).data());
    let owned = problem.at(&s.theta).unwrap().into_operator(&kind).unwrap().to_dense().unwrap();
    assert_close("owned block H", owned.data(), reference_of(&s, &r, &kind).data());
}

/// The named constructors are the kinds they name.
#[test]
fn the_named_constructors_build_their_kinds() {
    let s = setup();
    let r = references(&s);
    let problem = Problem::new(&s.mlp, &GaussianMeanLogVar, &s.x, &s.y).unwrap();
    let pass = problem.at(&s.theta).unwrap();
    let named: Vec<(CurvatureOperator<_>, CurvatureKind)> = vec![
        (pass.hessian(), CurvatureKind::Hessian),
        (pass.ggn(), CurvatureKind::Ggn),
        (pass.fisher(), CurvatureKind::Fisher),
        (pass.empirical_fisher(), CurvatureKind::EmpiricalFisher),
        (
            pass.monte_carlo_fisher(SAMPLES, SEED).unwrap(),
            CurvatureKind::MonteCarloFisher { samples: SAMPLES, seed: SEED },
        ),
    ];
    for (operator, kind) in named {
        assert_eq!(operator.kind(), &kind);
        let got = operator.to_dense().unwrap();
        assert_close(&format!("{kind:?}"), got.data(), reference_of(&s, &r, &kind).data());
    }
}

/// The trait's products of the two passes agree, and match the references.
#[test]
fn the_products_agree_across_the_two_passes() {
    let s = setup();
    let r = references(&s);
    let problem = Problem::new(&s.mlp, &GaussianMeanLogVar, &s.x, &s.y).unwrap();
    let sharded = ShardedProblem::new(&problem, 2).unwrap();
    let whole = problem.at(&s.theta).unwrap();
    let split = sharded.at(&s.theta).unwrap();
    let n = s.theta.len();
    let mut rng = StdRng::seed_from_u64(5);
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let u = Matrix::from_fn(7, 2 * D, |_, _| rng.random_range(-1.0..1.0));
    let matvec = |m: &Matrix<f64>, v: &[f64]| -> Vec<f64> {
        (0..m.rows()).map(|i| m.row(i).iter().zip(v).map(|(a, b)| a * b).sum()).collect()
    };
    let stacked_jacobian =
        Matrix::from_fn(7 * 2 * D, n, |row, p| r.jacobians[row / (2 * D)][(row % (2 * D), p)]);

    // The trait is object safe: one list runs every product on both passes.
    let passes: [(&str, &dyn CurvatureProducts); 2] =
        [("ForwardPass", &whole), ("ShardedPass", &split)];
    let targets = monte_carlo_targets(&r.z, SAMPLES, SEED);
    let mut results: Vec<Vec<Vec<f64>>> = Vec::new();
    for (name, pass) in passes {
        assert_eq!(pass.dim(), n);
        let loss = pass.loss().unwrap();
        let gradient = pass.gradient().unwrap();
        let jv = pass.jacobian_vector_product(&v).unwrap();
        let jtu = pass.transpose_jacobian_vector_product(&u).unwrap();
        let drawn = pass.monte_carlo_targets(SAMPLES, SEED).unwrap();
        assert_eq!(drawn.len(), SAMPLES);
        for (got, want) in drawn.iter().zip(&targets) {
            assert_close(&format!("{name}: Monte-Carlo targets"), got.data(), want.data());
        }
        let products = vec![
            vec![loss],
            gradient,
            jv.into_vec(),
            jtu,
            pass.ggn_vector_product(&v).unwrap(),
            pass.fisher_vector_product(&v).unwrap(),
            pass.empirical_fisher_vector_product(&v).unwrap(),
            pass.hessian_vector_product(&v).unwrap(),
            pass.monte_carlo_fisher_vector_product(&targets, &v).unwrap(),
        ];
        let want = [
            vec![reference_loss(&s, &r.z)],
            matvec(&stacked_jacobian.transpose(), &gradient_seed(&s, &r.z)),
            matvec(&stacked_jacobian, &v),
            matvec(&stacked_jacobian.transpose(), u.data()),
            matvec(&r.ggn, &v),
            matvec(&r.fisher, &v),
            matvec(&r.empirical_fisher, &v),
            matvec(&r.hessian, &v),
            matvec(&outer_products(&r, &targets), &v),
        ];
        let names = ["h", "∇h", "J v", "Jᵀ u", "G v", "F v", "F̄ v", "H v", "MC Fisher v"];
        for ((got, want), what) in products.iter().zip(&want).zip(names) {
            assert_close(&format!("{name}: {what}"), got, want);
        }
        let blocks: Vec<_> = (1..=s.mlp.num_layers())
            .map(|i| s.mlp.weight_range(i).start..s.mlp.bias_range(i).end)
            .collect();
        assert_eq!(pass.layer_blocks(), blocks, "{name}: layer blocks");
        results.push(products);
    }
    for (a, b) in results[0].iter().zip(&results[1]) {
        assert_close("ShardedPass vs ForwardPass", b, a);
    }
}

/// `h` from the closed form, for the check of `loss`.
fn reference_loss(s: &Setup, z: &Matrix<f64>) -> f64 {
    let mut total = 0.0;
    for e in 0..z.rows() {
        for j in 0..D {
            let (r, g) = (s.y.row(e)[j] - z.row(e)[j], z.row(e)[D + j]);
            total += 0.5 * r * r * (-g).exp() + 0.5 * g;
        }
    }
    total / z.rows() as f64
}

/// `∇_z h` stacked (row n is `∇_z L(y_n, z_n) / N`), so that `∇h = Jᵀ ∇_z h`.
fn gradient_seed(s: &Setup, z: &Matrix<f64>) -> Vec<f64> {
    let rows = z.rows() as f64;
    (0..z.rows()).flat_map(|e| output_gradient(z.row(e), s.y.row(e))).map(|g| g / rows).collect()
}

/// Bad Monte-Carlo input is an error on both passes, never a panic.
#[test]
fn bad_monte_carlo_input_is_an_error_on_both_passes() {
    let s = setup();
    let problem = Problem::new(&s.mlp, &GaussianMeanLogVar, &s.x, &s.y).unwrap();
    let sharded = ShardedProblem::new(&problem, 2).unwrap();
    let whole = problem.at(&s.theta).unwrap();
    let split = sharded.at(&s.theta).unwrap();
    let v = vec![0.5; s.theta.len()];
    let passes: [(&str, &dyn CurvatureProducts); 2] =
        [("ForwardPass", &whole), ("ShardedPass", &split)];
    for (name, pass) in passes {
        let err = pass.monte_carlo_targets(0, 1).unwrap_err();
        assert!(err.to_string().contains("at least one sample"), "{name}: {err}");
        let err =
            CurvatureOperator::new(pass, &CurvatureKind::MonteCarloFisher { samples: 0, seed: 1 });
        assert!(err.is_err(), "{name}: zero samples accepted by the operator");
        let err = pass.monte_carlo_fisher_vector_product(&[], &v).unwrap_err();
        assert!(err.to_string().contains("at least one target matrix"), "{name}: {err}");
        // Too few rows (the batch has 7), then the wrong number of columns (the loss has D).
        for (rows, cols) in [(6, D), (7, D + 1)] {
            let targets = [Matrix::zeros(7, D), Matrix::zeros(rows, cols)];
            let err = pass.monte_carlo_fisher_vector_product(&targets, &v).unwrap_err();
            assert!(
                matches!(&err, CurvatureError::Dimension { op, expected, .. } if op.contains("targets[1]") && expected == "7×2"),
                "{name}: {err:?}"
            );
        }
        let err = pass.monte_carlo_fisher_vector_product(&[Matrix::zeros(7, D)], &v[1..]);
        assert!(err.is_err(), "{name}: short v accepted");
    }
}
