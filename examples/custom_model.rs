//! Your own model through the public API: a residual network whose hidden weight matrix is
//! used by two layers, with a nonlinearity of your own (`φ(s) = s + sin s`). The example
//! checks it the way a researcher would before trusting its curvature — the layers against the
//! forward pass (`check_model`), the gradient and `H v` against differences, eqn 6, the full
//! Section 8.1.2 decomposition term by term, and `F = G` — then trains it by natural gradient
//! (damped GGN). Each check is printed with its error and tolerance; the exit code is non-zero
//! if any fails (or training does not reduce the loss).
//!
//! Run: `cargo run --release --example custom_model`

use autodiff::random::{random_matrix, random_vector};
use autodiff::{Matrix, Scalar, Tape, Var};
use curvature::loss::SquaredError;
use curvature::model::{Elementwise, LayerVars, Model, ParameterBlock};
use curvature::verify::{self, CheckReport};
use curvature::{Activation, CurvatureKind, Problem};
use optim::natural_gradient::{DirectionSolve, NaturalGradient, NaturalGradientParams};
use optim::schedule::Schedule;
use optim::{NetworkObjective, Solver};
use rand::{rngs::StdRng, SeedableRng};
use std::ops::Range;
use std::process::ExitCode;
use std::sync::Arc;

/// `φ(s) = s + sin s`: φ, φ', φ'' once, generic over the tape's scalar (so the same code
/// gives values, `J v` on duals and `H v` on a dual tape).
#[derive(Clone, Debug)]
struct SinPlus;

impl Elementwise for SinPlus {
    fn name(&self) -> &str {
        "s + sin s"
    }
    fn phi<T: Scalar>(&self, s: T) -> T {
        s + s.sin()
    }
    fn dphi<T: Scalar>(&self, s: T) -> T {
        T::one() + s.cos()
    }
    fn d2phi<T: Scalar>(&self, s: T) -> T {
        -s.sin()
    }
}

/// `a1 = tanh(x W1ᵀ + b1)`, `a2 = φ(a1 Wᵀ + b2)`, `a3 = φ((a2 + a1) Wᵀ + b3)` (a residual
/// connection, and the same `W` twice), `z = a3 W4ᵀ + b4`.
/// θ = `[W1 (h×d), b1, W (h×h), b2, b3, W4 (1×h), b4]`.
struct ResidualShared {
    input: usize,
    hidden: usize,
}

impl ResidualShared {
    /// The named blocks of θ, in order (`W` once, though two layers use it).
    fn layout(&self) -> Vec<(&'static str, usize, Range<usize>)> {
        let (d, h) = (self.input, self.hidden);
        let sizes = [("W1", 1, h * d), ("b1", 1, h), ("W", 2, h * h), ("b2", 2, h)];
        let sizes = sizes.into_iter().chain([("b3", 3, h), ("W4", 4, h), ("b4", 4, 1)]);
        let mut start = 0;
        sizes
            .map(|(name, layer, len)| {
                start += len;
                (name, layer, start - len..start)
            })
            .collect()
    }

    fn range(&self, name: &str) -> Range<usize> {
        self.layout().into_iter().find(|b| b.0 == name).map(|b| b.2).expect("a block of θ")
    }

    fn layers<'t, T: Scalar>(
        &self,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Vec<LayerVars<'t, T>>> {
        let (d, h) = (self.input, self.hidden);
        let slice = |name: &str, rows, cols| theta.slice(self.range(name).start, rows, cols);
        let (w1, b1, w) = (slice("W1", h, d)?, slice("b1", 1, h)?, slice("W", h, h)?);
        let (b2, b3) = (slice("b2", 1, h)?, slice("b3", 1, h)?);
        let (w4, b4) = (slice("W4", 1, h)?, slice("b4", 1, 1)?);
        let s1 = x.affine(w1, b1)?;
        let a1 = s1.tanh()?;
        let s2 = a1.affine(w, b2)?;
        let a2 = SinPlus.record(s2)?;
        let residual = a2.add(a1)?;
        let s3 = residual.affine(w, b3)?;
        let a3 = SinPlus.record(s3)?;
        let s4 = a3.affine(w4, b4)?;
        let phi: Arc<dyn curvature::model::Nonlinearity> = Arc::new(SinPlus);
        Ok(vec![
            LayerVars {
                input: x,
                s: s1,
                a: a1,
                activation: Activation::Tanh.into(),
                weights: self.range("W1"),
                biases: self.range("b1"),
            },
            LayerVars {
                input: a1,
                s: s2,
                a: a2,
                activation: phi.clone(),
                weights: self.range("W"),
                biases: self.range("b2"),
            },
            LayerVars {
                input: residual,
                s: s3,
                a: a3,
                activation: phi,
                weights: self.range("W"),
                biases: self.range("b3"),
            },
            LayerVars {
                input: a3,
                s: s4,
                a: s4,
                activation: Activation::Identity.into(),
                weights: self.range("W4"),
                biases: self.range("b4"),
            },
        ])
    }
}

impl Model for ResidualShared {
    fn num_params(&self) -> usize {
        self.range("b4").end
    }

    fn forward<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        Ok(self.layers(theta, x)?[3].a)
    }

    fn forward_layers<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Option<Vec<LayerVars<'t, T>>>> {
        self.layers(theta, x).map(Some)
    }

    fn parameter_blocks(&self) -> Vec<ParameterBlock> {
        self.layout()
            .into_iter()
            .map(|(name, layer, range)| ParameterBlock { name: name.into(), layer, range })
            .collect()
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("custom_model: a check FAILED");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("custom_model: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One line per check, and one per part (indented).
fn show(report: &CheckReport) -> bool {
    let line = |indent: &str, r: &CheckReport, ok: bool| {
        let status = if ok { "ok" } else { "FAILED" };
        println!(
            "{indent}{:<72} rel. error {:>9.2e} (tol {:.0e})  {status}",
            r.check, r.max_rel_error, r.tolerance
        );
        if !ok {
            println!("{indent}    worst entry: {}", r.location.as_deref().unwrap_or("-"));
        }
    };
    line("", report, report.passed());
    for part in &report.parts {
        line("    ", part, part.passed());
    }
    report.passed()
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(18);
    let model = ResidualShared { input: 3, hidden: 6 };
    let n = model.num_params();
    let batch = 32;
    // A smooth target to fit: y = sin(x₀ + ½x₁) − x₂²/2.
    let x = random_matrix(batch, 3, &mut rng);
    let y = Matrix::from_fn(batch, 1, |i, _| {
        (x[(i, 0)] + 0.5 * x[(i, 1)]).sin() - 0.5 * x[(i, 2)] * x[(i, 2)]
    });
    let problem = Problem::new(&model, &SquaredError, &x, &y)?;
    let mut theta: Vec<f64> = random_vector(n, &mut rng).iter().map(|t| 0.4 * t).collect();
    let v = random_vector(n, &mut rng);
    println!(
        "residual network 3 → 6 → 6 → 6 → 1 sharing W between layers 2 and 3, φ = s + sin s, \
         squared error, batch {batch}, n = {n} parameters\n"
    );

    let mut ok = true;
    ok &= show(&verify::check_model(&problem, &theta, 1e-8)?);
    ok &= show(&verify::check_gradient(&problem, &theta, 1e-8)?);
    ok &= show(&verify::check_hessian_vector_product(&problem, &theta, &v, 1e-8)?);
    ok &= show(&verify::check_ggn_residual_identity(&problem, &theta, 1e-10)?);
    ok &= show(&verify::check_hessian_decomposition(&problem, &theta, 1e-10)?);
    // Squared error: z is the natural parameter of N(z, I), so F = G (Section 9.2).
    ok &= show(&verify::check_fisher_equals_ggn(&problem, &theta, 1e-12)?);

    // Training: damped natural gradient with B = G, solved exactly (n is small), λ adapted.
    let mut objective = NetworkObjective::full_batch(&model, &SquaredError, &x, &y)?;
    let mut solver = NaturalGradient::new(NaturalGradientParams {
        kind: CurvatureKind::Ggn,
        schedule: Schedule::constant(1.0)?,
        lambda: 1.0,
        adapt_lambda: true,
        solve: DirectionSolve::Dense,
    })?;
    let start = problem.at(&theta)?.loss()?;
    println!("\nnatural gradient (GGN, dense solve, Levenberg-Marquardt λ):");
    for k in 0..30 {
        let report = solver.step(&mut theta, &mut objective)?;
        if k % 5 == 0 {
            println!("  step {k:>2}: loss {:.6e}, λ {:.2e}", report.loss, solver.lambda());
        }
    }
    let end = problem.at(&theta)?.loss()?;
    let trained = end < 0.1 * start;
    println!(
        "  loss {start:.6e} → {end:.6e} ({})",
        if trained { "reduced more than tenfold: ok" } else { "FAILED to reduce tenfold" }
    );
    ok &= trained;
    // The checks hold at the trained θ too.
    ok &= show(&verify::check_hessian_decomposition(&problem, &theta, 1e-10)?);
    Ok(ok)
}
