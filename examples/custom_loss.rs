//! A researcher's own loss, written once on the tape: Poisson regression on the log-rate.
//!
//! `cargo run --release --example custom_loss`
//!
//! `y ~ Poisson(λ = e^z)` per output, so `L(y, z) = e^z − y z + ln y!`. The log-rate `z` is the
//! natural parameter of the Poisson family with log-partition `A(z) = e^z`, so `F_R = ∇²A = H_L`
//! and the Fisher of the network equals its GGN (Section 9.2). Only `L` and `A` are written
//! below; `∇_z L`, `H_L` and `F_R` come from autodiff ([`curvature::loss::DerivedLoss`]).
//!
//! Checks, each printed with its error and tolerance (the program exits with status 1 if one
//! fails):
//! 1. `check_loss` on the derived loss at a few `(z, y)`: `∇_z L` and `H_L` against central
//!    differences of `L`, `F_R` against the sampled `E[∇L ∇Lᵀ]`, and `F_R = H_L` (natural);
//! 2. the derived `∇_z L`, `H_L`, `F_R` against the hand-written closed forms `e^z − y`, `e^z`;
//! 3. on a small MLP: `F = G` for the derived loss, and its `∇h`, `G v`, `F v`, `H v` against
//!    the same products with the closed-form loss.

use autodiff::check::{compare, CheckReport};
use autodiff::random::{random_matrix, random_vector};
use autodiff::{Matrix, Scalar, Tape, Var};
use curvature::error::Result;
use curvature::loss::{
    dense_f_r, dense_h_l, DerivedLoss, LogPartition, PredictiveDistribution, TapeLoss, TargetIssue,
};
use curvature::rand::{rngs::StdRng, Rng, RngCore, SeedableRng};
use curvature::{verify, Activation, CurvatureError, Mlp, Problem};

/// `ln y!` for a count `y` (targets are non-negative integers).
fn log_factorial(y: f64) -> f64 {
    (2..=y.round().max(0.0) as u64).map(|k| (k as f64).ln()).sum()
}

/// One Poisson(λ) draw. Poisson variables add (`Poisson(a) + Poisson(b) = Poisson(a + b)`), so a
/// large λ is split into pieces of at most 16, each drawn by inverting its cumulative
/// distribution: exact, and `e^{−λ}` never underflows.
fn poisson(lambda: f64, rng: &mut dyn RngCore) -> f64 {
    let pieces = (lambda / 16.0).ceil().max(1.0);
    let piece = lambda / pieces;
    let mut total = 0.0;
    for _ in 0..pieces as usize {
        let (mut k, mut p) = (0.0, (-piece).exp());
        let (mut cumulative, u) = (p, rng.random::<f64>());
        while u > cumulative && p > 0.0 {
            k += 1.0;
            p *= piece / k;
            cumulative += p;
        }
        total += k;
    }
    total
}

/// Poisson regression on the log-rate, written once on the tape.
struct Poisson;

impl TapeLoss for Poisson {
    fn name(&self) -> &str {
        "poisson_log_rate"
    }
    fn target_dim(&self, output_dim: usize) -> Result<usize> {
        Ok(output_dim)
    }
    /// Counts: finite, non-negative whole numbers (`Problem::new` names the first bad row).
    fn check_target(&self, y: &[f64]) -> std::result::Result<(), TargetIssue> {
        match y.iter().position(|t| !(t.is_finite() && *t >= 0.0 && t.fract() == 0.0)) {
            Some(c) => Err(TargetIssue::at(c, format!("{} is not a count", y[c]))),
            None => Ok(()),
        }
    }
    /// `L(y_n, z_n) = Σ_j e^{z_j} − y_j z_j + ln y_j!` for every row.
    fn loss_rows<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        z: Var<'t, T>,
        y: &Matrix<f64>,
    ) -> autodiff::Result<Var<'t, T>> {
        let log_factorials = tape.constant_f64(&y.map(log_factorial));
        z.exp()?.sub(z.mul(tape.constant_f64(y))?)?.add(log_factorials)?.sum_rows()
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y_out: &mut [f64]) {
        for (y, &rate) in y_out.iter_mut().zip(z) {
            *y = poisson(rate.exp(), rng);
        }
    }
}

impl LogPartition for Poisson {
    /// `A(z) = Σ_j e^{z_j}`.
    fn log_partition<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        eta: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        eta.exp()?.sum_rows()
    }
}

/// The same distribution with its derivatives by hand: `∇_z L = e^z − y`, `H_L = F_R = diag(e^z)`.
struct ClosedFormPoisson;

impl PredictiveDistribution for ClosedFormPoisson {
    fn name(&self) -> &str {
        "poisson_log_rate (closed form)"
    }
    fn target_dim(&self, output_dim: usize) -> Result<usize> {
        Ok(output_dim)
    }
    fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
        z.iter().zip(y).map(|(&v, &t)| v.exp() - t * v + log_factorial(t)).sum()
    }
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
        for ((o, &v), &t) in out.iter_mut().zip(z).zip(y) {
            *o = v.exp() - t;
        }
    }
    fn apply_h_l(&self, z: &[f64], _y: &[f64], u: &[f64], out: &mut [f64]) {
        self.apply_f_r(z, u, out);
    }
    fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]) {
        for ((o, &v), &w) in out.iter_mut().zip(z).zip(u) {
            *o = v.exp() * w;
        }
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y_out: &mut [f64]) {
        Poisson.sample(z, rng, y_out);
    }
    fn is_natural_parameter(&self) -> bool {
        true
    }
}

/// Prints a check and counts it.
fn record(report: CheckReport, failures: &mut usize) {
    println!("{report}");
    if !report.passed() {
        *failures += 1;
    }
}

fn run() -> Result<usize> {
    let derived = DerivedLoss::natural(Poisson);
    let mut rng = StdRng::seed_from_u64(7);
    let mut failures = 0;

    println!(
        "1. check_loss on the derived loss, the worst of its checks (finite differences 1e-8,"
    );
    println!("   sampled Fisher within 5 standard errors, F_R = H_L 1e-10)");
    for point in 0..3 {
        let z = random_vector(2, &mut rng);
        let mut y = vec![0.0; 2];
        derived.sample(&z, &mut rng, &mut y);
        record(verify::check_loss(&derived, &z, &y, 1e-8, 20_000, point)?, &mut failures);
    }

    println!("\n2. derived vs hand-written closed form (relative 1e-12)");
    let z = random_vector(3, &mut rng);
    let y = [0.0, 2.0, 5.0];
    let (mut g, mut g_closed) = (vec![0.0; 3], vec![0.0; 3]);
    derived.grad_z(&z, &y, &mut g);
    ClosedFormPoisson.grad_z(&z, &y, &mut g_closed);
    record(compare("∇_z L", &g, &g_closed, 1e-12)?, &mut failures);
    let (h, h_closed) = (dense_h_l(&derived, &z, &y), dense_h_l(&ClosedFormPoisson, &z, &y));
    record(compare("H_L", h.data(), h_closed.data(), 1e-12)?, &mut failures);
    let (f, f_closed) = (dense_f_r(&derived, &z), dense_f_r(&ClosedFormPoisson, &z));
    record(compare("F_R", f.data(), f_closed.data(), 1e-12)?, &mut failures);
    // Natural parameter: the F_R derived from A and the H_L derived from L agree.
    record(compare("F_R = ∇²A vs H_L = ∇²L (derived)", f.data(), h.data(), 1e-12)?, &mut failures);

    println!("\n3. a 3-8-2 tanh MLP on 32 examples of Poisson counts (relative 1e-12)");
    let mlp = Mlp::new(&[3, 8, 2], &[Activation::Tanh, Activation::Identity])?;
    let x = random_matrix(32, 3, &mut rng);
    let theta: Vec<f64> =
        random_vector(mlp.num_params(), &mut rng).iter().map(|t| 0.5 * t).collect();
    // Counts drawn from the network's own rates at θ.
    let rates =
        Problem::new(&mlp, &derived, &x, &Matrix::zeros(32, 2))?.at(&theta)?.output().clone();
    let counts = curvature::loss::sample_targets(&derived, &rates, &mut rng)?;
    let derived_problem = Problem::new(&mlp, &derived, &x, &counts)?;
    let pass = derived_problem.at(&theta)?;
    let closed_problem = Problem::new(&mlp, &ClosedFormPoisson, &x, &counts)?;
    let closed = closed_problem.at(&theta)?;
    record(verify::check_fisher_equals_ggn(&derived_problem, &theta, 1e-12)?, &mut failures);
    let v = random_vector(mlp.num_params(), &mut rng);
    let products = [
        ("∇h derived vs closed form", pass.gradient()?, closed.gradient()?),
        (
            "G v derived vs closed form",
            pass.ggn_vector_product(&v)?,
            closed.ggn_vector_product(&v)?,
        ),
        (
            "F v derived vs closed form",
            pass.fisher_vector_product(&v)?,
            closed.fisher_vector_product(&v)?,
        ),
        (
            "H v derived vs closed form",
            pass.hessian_vector_product(&v)?,
            closed.hessian_vector_product(&v)?,
        ),
    ];
    for (what, a, b) in products {
        record(compare(what, &a, &b, 1e-12)?, &mut failures);
    }
    // The loss's own target rule reaches Problem::new through DerivedLoss: 2.5 is no count.
    let mut bad_counts = counts.clone();
    bad_counts[(7, 1)] = 2.5;
    match Problem::new(&mlp, &derived, &x, &bad_counts) {
        Err(CurvatureError::InvalidTarget { row: 7, column: Some(1), .. }) => {
            println!("  ok    a count of 2.5 in row 7 is refused by Problem::new")
        }
        other => {
            println!("  FAIL  a count of 2.5 in row 7 was not refused: {:?}", other.err());
            failures += 1;
        }
    }
    Ok(failures)
}

fn main() {
    match run() {
        Ok(0) => println!("\nall checks passed"),
        Ok(failures) => {
            eprintln!("\n{failures} check(s) FAILED");
            std::process::exit(1);
        }
        Err(e) => {
            let e: CurvatureError = e;
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
