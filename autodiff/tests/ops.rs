//! Every built-in op: `J v` and `Jᵀ u` against central differences, the adjoint identity to
//! round-off, and `H v` against central differences and a forward-over-forward dense Hessian,
//! over random shapes and values (quickcheck).
//!
//! Tiers: finite differences 1e-8 (norm-wise relative); exact-vs-exact 1e-12.

mod common;

use autodiff::check::{
    check_adjoint, check_hessian_vector_product, check_jacobian_vector_product,
    check_transpose_jacobian_vector_product,
};
use autodiff::modes::{self, Function};
use autodiff::random::random_matrix;
use autodiff::{Matrix, Result, Scalar, Tape, UnaryFn, Var};
use common::*;
use quickcheck::{QuickCheck, TestResult};

const FD_TOL: f64 = 1e-8;
const EXACT_TOL: f64 = 1e-12;

#[derive(Clone, Copy, Debug)]
enum Case {
    MatMul,
    MatMulT,
    TMatMul,
    Add,
    Sub,
    Mul,
    Div,
    AddRow,
    Affine,
    Scale,
    AddScalar,
    Transpose,
    Sum,
    Mean,
    SumRows,
    MeanRows,
    SumCols,
    MeanCols,
    Unary(UnaryFn),
    Powi(i32),
    LogSumExp,
    Softmax,
    LogSoftmax,
    Slice,
    Reshape,
}

const CASES: [Case; 35] = [
    Case::MatMul,
    Case::MatMulT,
    Case::TMatMul,
    Case::Add,
    Case::Sub,
    Case::Mul,
    Case::Div,
    Case::AddRow,
    Case::Affine,
    Case::Scale,
    Case::AddScalar,
    Case::Transpose,
    Case::Sum,
    Case::Mean,
    Case::SumRows,
    Case::MeanRows,
    Case::SumCols,
    Case::MeanCols,
    Case::Unary(UnaryFn::Identity),
    Case::Unary(UnaryFn::Neg),
    Case::Unary(UnaryFn::Exp),
    Case::Unary(UnaryFn::Log),
    Case::Unary(UnaryFn::Tanh),
    Case::Unary(UnaryFn::Sigmoid),
    Case::Unary(UnaryFn::Relu),
    Case::Unary(UnaryFn::Softplus),
    Case::Unary(UnaryFn::Square),
    Case::Unary(UnaryFn::Sqrt),
    Case::Powi(3),
    Case::Powi(-2),
    Case::LogSumExp,
    Case::Softmax,
    Case::LogSoftmax,
    Case::Slice,
    Case::Reshape,
];

/// θ = [vec(A) (r×c), vec(B)], with B's shape chosen by the op.
struct OpFn {
    case: Case,
    r: usize,
    c: usize,
    k: usize,
}

impl OpFn {
    fn b_shape(&self) -> (usize, usize) {
        match self.case {
            Case::MatMul => (self.c, self.k),
            Case::MatMulT => (self.k, self.c),
            Case::TMatMul => (self.r, self.k),
            Case::Add | Case::Sub | Case::Mul | Case::Div => (self.r, self.c),
            Case::AddRow => (1, self.c),
            // W (k×c) followed by b (1×k), both in the second block of θ.
            Case::Affine => (self.k + 1, self.c.max(self.k)),
            _ => (0, 0),
        }
    }

    fn n(&self) -> usize {
        let (br, bc) = self.b_shape();
        self.r * self.c + br * bc
    }

    /// A point in the op's domain (positive for log/sqrt, away from zero for div/relu/powi).
    fn theta(&self, rng: &mut rand::rngs::StdRng) -> Vec<f64> {
        match self.case {
            Case::Unary(UnaryFn::Log) | Case::Unary(UnaryFn::Sqrt) => {
                values_in(self.n(), 0.5, 2.0, rng)
            }
            _ => values_away_from_zero(self.n(), 0.3, rng),
        }
    }
}

impl Function for OpFn {
    fn eval<'t, T: Scalar>(&self, _tape: &'t Tape<T>, theta: Var<'t, T>) -> Result<Var<'t, T>> {
        let (r, c) = (self.r, self.c);
        let a = theta.slice(0, r, c)?;
        let (br, bc) = self.b_shape();
        let b = || theta.slice(r * c, br, bc);
        match self.case {
            Case::MatMul => a.matmul(b()?),
            Case::MatMulT => a.matmul_t(b()?),
            Case::TMatMul => a.t_matmul(b()?),
            Case::Add => a.add(b()?),
            Case::Sub => a.sub(b()?),
            Case::Mul => a.mul(b()?),
            Case::Div => a.div(b()?),
            Case::AddRow => a.add_row(b()?),
            Case::Affine => {
                let w = theta.slice(r * c, self.k, c)?;
                let bias = theta.slice(r * c + self.k * c, 1, self.k)?;
                a.affine(w, bias)
            }
            Case::Scale => a.scale(-1.7),
            Case::AddScalar => a.add_scalar(0.9),
            Case::Transpose => a.transpose(),
            Case::Sum => a.sum(),
            Case::Mean => a.mean(),
            Case::SumRows => a.sum_rows(),
            Case::MeanRows => a.mean_rows(),
            Case::SumCols => a.sum_cols(),
            Case::MeanCols => a.mean_cols(),
            Case::Unary(f) => a.apply(f),
            Case::Powi(n) => a.powi(n),
            Case::LogSumExp => a.log_sum_exp(),
            Case::Softmax => a.softmax(),
            Case::LogSoftmax => a.log_softmax(),
            Case::Slice => a.slice(1.min(r * c - 1), 1, r * c - 1.min(r * c - 1)),
            Case::Reshape => a.reshape(c, r),
        }
    }
}

/// A scalar through the op: `Σ W ⊙ (op(θ)² + tanh(op(θ)))` with fixed weights `W`, so `H` is never trivially zero.
struct Weighted<'a> {
    inner: &'a OpFn,
    weights: Matrix<f64>,
}

impl Function for Weighted<'_> {
    fn eval<'t, T: Scalar>(&self, tape: &'t Tape<T>, theta: Var<'t, T>) -> Result<Var<'t, T>> {
        let out = self.inner.eval(tape, theta)?;
        // out² + tanh(out): linear ops and sqrt² still get a non-zero Hessian, and the square
        // keeps it O(1) where tanh saturates.
        out.square()?.add(out.tanh()?)?.mul(tape.constant_f64(&self.weights))?.sum()
    }
}

fn check_case(
    case: Case,
    r: usize,
    c: usize,
    k: usize,
    seed: u64,
) -> std::result::Result<(), String> {
    let f = OpFn { case, r, c, k };
    let mut rng = rng(seed);
    let theta = f.theta(&mut rng);
    let v = autodiff::random::random_vector(theta.len(), &mut rng);
    let out = modes::value(&f, &theta).map_err(|e| e.to_string())?;
    let u = random_matrix(out.rows(), out.cols(), &mut rng);
    let ctx = format!("{case:?} r={r} c={c} k={k} seed={seed}");
    let reports = [
        check_jacobian_vector_product(&f, &theta, &v, FD_TOL),
        check_transpose_jacobian_vector_product(&f, &theta, &u, FD_TOL),
        check_adjoint(&f, &theta, &u, &v, EXACT_TOL),
    ];
    for rep in reports {
        let rep = rep.map_err(|e| format!("{ctx}: {e}"))?;
        if !rep.passed() {
            return Err(format!("{ctx}: {rep}"));
        }
    }
    // The tangent sweep over the recorded f64 tape equals the dual forward pass (exact paths).
    let tape = Tape::<f64>::new();
    let th = tape.input(Matrix::column(theta.clone()));
    let y = f.eval(&tape, th).map_err(|e| e.to_string())?;
    let sweep = tape.tangents([(th, Matrix::column(v.clone()))]).map_err(|e| e.to_string())?;
    let (_, jv) = modes::jacobian_vector_product(&f, &theta, &v).map_err(|e| e.to_string())?;
    let rep = autodiff::check::compare(
        "tangent sweep vs dual J v",
        sweep.of_or_zeros(y).data(),
        jv.data(),
        EXACT_TOL,
    )
    .map_err(|e| e.to_string())?;
    if !rep.passed() {
        return Err(format!("{ctx}: {rep}"));
    }
    // Keeping only y's tangent gives the same bits, and θ's tangent is dropped after its use.
    let kept =
        tape.tangents_of([(th, &Matrix::column(v.clone()))], &[y]).map_err(|e| e.to_string())?;
    if kept.of_or_zeros(y).data() != sweep.of_or_zeros(y).data() {
        return Err(format!("{ctx}: tangents_of differs from tangents"));
    }
    if y.index() != th.index() && kept.of(th).is_some() {
        return Err(format!("{ctx}: tangents_of kept the seed's tangent"));
    }
    // Second order: H v against differences of the gradient, and the dense H from reverse-over-dual
    // sweeps against forward-over-forward, plus symmetry.
    let weights = random_matrix(out.rows(), out.cols(), &mut rng);
    let g = Weighted { inner: &f, weights };
    let rep =
        check_hessian_vector_product(&g, &theta, &v, FD_TOL).map_err(|e| format!("{ctx}: {e}"))?;
    if !rep.passed() {
        return Err(format!("{ctx}: {rep}"));
    }
    let h = modes::dense_hessian(&g, &theta).map_err(|e| e.to_string())?;
    let h_ff = hessian_forward_over_forward(&g, &theta);
    // Softmax's H entries are sums over rows of W_i φ''(p_i) ∂p ∂p + W_i φ'(p_i) ∂²p with every
    // term O(|W_i|) (p, ∂p, ∂²p are bounded), so two exact evaluation orders agree to ε Σ|W|,
    // not to ε max|H| when the terms cancel (seen: a 1×2 softmax at 1.6e-12 of max|H|). A wrong
    // rule is off by O(|W|), far above this floor.
    let term_scale = match case {
        Case::Softmax => g.weights.data().iter().map(|w| w.abs()).sum(),
        _ => 0.0,
    };
    let scale = max_abs(&h_ff).max(term_scale).max(1e-300);
    let diff = max_abs_diff(&h, &h_ff) / scale;
    let asym = max_abs_diff(&h, &h.transpose()) / scale;
    if diff > EXACT_TOL || asym > EXACT_TOL {
        return Err(format!("{ctx}: dense H vs forward-over-forward {diff:e}, asymmetry {asym:e}"));
    }
    Ok(())
}

#[test]
fn every_op_matches_finite_differences_and_adjoint_identity() {
    fn prop(r: u8, c: u8, k: u8, seed: u64) -> TestResult {
        let (r, c, k) = (1 + r as usize % 4, 1 + c as usize % 4, 1 + k as usize % 4);
        for case in CASES {
            if let Err(msg) = check_case(case, r, c, k, seed) {
                return TestResult::error(msg);
            }
        }
        TestResult::passed()
    }
    QuickCheck::new().tests(100).quickcheck(prop as fn(u8, u8, u8, u64) -> TestResult);
}

#[test]
fn a_wrong_rule_is_caught_by_the_checks() {
    // The checks must be able to fail: a function whose "J v" is off by construction.
    let f = OpFn { case: Case::Unary(UnaryFn::Tanh), r: 2, c: 2, k: 1 };
    let theta = [0.1, 0.2, 0.3, 0.4];
    let v = [1.0, 0.0, 0.0, 0.0];
    let (_, jv) = modes::jacobian_vector_product(&f, &theta, &v).unwrap();
    let mut wrong = jv.into_vec();
    wrong[0] *= 1.0 + 1e-6;
    let reference = autodiff::check::central_difference(1e-3, |t| {
        let th: Vec<f64> = theta.iter().zip(&v).map(|(a, b)| a + t * b).collect();
        Ok(modes::value(&f, &th)?.into_vec())
    })
    .unwrap();
    let rep = autodiff::check::compare("perturbed", &wrong, &reference, FD_TOL).unwrap();
    assert!(!rep.passed(), "a 1e-6 relative error passed a 1e-8 check: {rep}");
}

/// A case quickcheck found in CI: `H v` four orders below the gradient's natural scale, where
/// the central differences' rounding (1e-13 absolute) was 1.1e-8 of `H v` itself. The checks
/// now measure against at least that scale (`check::check_hessian_vector_product`).
#[test]
fn a_nearly_flat_direction_is_judged_at_the_resolution_of_differences() {
    check_case(Case::Mean, 3, 1, 1, 7015992939228614255).unwrap();
}
