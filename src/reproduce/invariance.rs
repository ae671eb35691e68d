//! Reproduction 4 (Section 12): natural gradient and GGN steps are invariant to the
//! parameterization to first order (exactly under an affine `ζ`); their one-step discrepancy
//! under a nonlinear `ζ` shrinks like `α²`, while gradient descent's shrinks only like `α`, and
//! Newton with the Hessian is invariant only under affine `ζ`.

use super::{log_log_slope, save_csv, save_plot, Claim, Config, Error, Outcome};
use crate::plot::{LinePlot, Series};
use autodiff::linalg::symmetric_eigen;
use autodiff::modes::{self, Function};
use autodiff::random::{random_matrix, random_vector};
use autodiff::{Matrix, Scalar, Tape, Var};
use curvature::loss::{self, GaussianMeanLogVar};
use curvature::reparam::Reparameterized;
use curvature::{Activation, CurvatureKind, Mlp, Model, Problem};
use rand::{rngs::StdRng, SeedableRng};

/// Enough examples that `F` and `G` have full rank (`N(m − 1) ≥ n`).
const EXAMPLES: usize = 40;

/// Nonlinear ζ: `θ = γ + 0.4 tanh(γ) ⊙ γ`.
struct Nonlinear;
impl Function for Nonlinear {
    fn eval<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        g: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        g.add(g.tanh()?.mul(g)?.scale(0.4)?)
    }
}

/// Affine ζ: `θ = A γ + c`.
struct Affine {
    a: Matrix<f64>,
    c: Matrix<f64>,
}
impl Function for Affine {
    fn eval<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        g: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        tape.constant_f64(&self.a).matmul(g)?.add(tape.constant_f64(&self.c))
    }
}

#[derive(Clone, Copy)]
enum Method {
    Gradient,
    Kind(&'static str, fn() -> CurvatureKind),
}

const METHODS: [(&str, Method); 4] = [
    ("natural gradient (Fisher)", Method::Kind("fisher", || CurvatureKind::Fisher)),
    ("GGN", Method::Kind("ggn", || CurvatureKind::Ggn)),
    ("Newton (Hessian)", Method::Kind("hessian", || CurvatureKind::Hessian)),
    ("gradient descent", Method::Gradient),
];

/// `δ = −B⁺ ∇h` (pseudo-inverse by eigen decomposition, so an indefinite Hessian works too).
fn direction<M: Model>(
    problem: &Problem<'_, M>,
    point: &[f64],
    method: Method,
) -> Result<Vec<f64>, Error> {
    let pass = problem.at(point)?;
    let g = pass.gradient()?;
    Ok(match method {
        Method::Gradient => g.iter().map(|v| -v).collect(),
        Method::Kind(_, kind) => {
            let b = pass.operator(&kind())?.to_dense()?;
            let e = symmetric_eigen(&b)?;
            let scale = e.values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            let pinv = e.reconstruct_with(|l| if l.abs() > 1e-10 * scale { 1.0 / l } else { 0.0 });
            autodiff::linalg::matvec(&pinv, &g)?.iter().map(|v| -v).collect()
        }
    })
}

fn step(x: &[f64], d: &[f64], alpha: f64) -> Vec<f64> {
    x.iter().zip(d).map(|(a, b)| a + alpha * b).collect()
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt()
}

/// The network, data and starting point shared by every method and ζ.
struct Setup<'a> {
    mlp: &'a Mlp,
    x: &'a Matrix<f64>,
    y: &'a Matrix<f64>,
    gamma0: &'a [f64],
}

/// `‖ζ(γ₀ + α δ_γ) − (θ₀ + α δ_θ)‖` for step lengths `‖α δ_θ‖ = lengths`, `θ₀ = ζ(γ₀)`.
fn one_step_discrepancies<Z: Function>(
    s: &Setup<'_>,
    zeta: &Z,
    method: Method,
    lengths: &[f64],
) -> Result<Vec<f64>, Error> {
    let theta_problem = Problem::new(s.mlp, &GaussianMeanLogVar, s.x, s.y)?;
    let model = Reparameterized::new(s.mlp, zeta, s.gamma0)?;
    let gamma_problem = Problem::new(&model, &GaussianMeanLogVar, s.x, s.y)?;
    let theta0 = modes::value(zeta, s.gamma0)?.into_vec();
    let (dt, dg) =
        (direction(&theta_problem, &theta0, method)?, direction(&gamma_problem, s.gamma0, method)?);
    let norm = distance(&dt, &vec![0.0; dt.len()]);
    lengths
        .iter()
        .map(|&l| {
            let a = l / norm;
            Ok(distance(
                &modes::value(zeta, &step(s.gamma0, &dg, a))?.into_vec(),
                &step(&theta0, &dt, a),
            ))
        })
        .collect()
}

/// Runs the reproduction.
pub fn run(config: &Config) -> Result<Outcome, Error> {
    let mut out = Outcome::default();
    let mut rng = StdRng::seed_from_u64(config.seed + 70);
    let mlp = Mlp::new(&[3, 4, 4], &[Activation::Tanh, Activation::Identity])?;
    let n = mlp.num_params();
    let x = random_matrix(EXAMPLES, 3, &mut rng);
    let z = random_matrix(EXAMPLES, 4, &mut rng);
    let y = loss::sample_targets(&GaussianMeanLogVar, &z, &mut rng)?;
    let gamma0: Vec<f64> = random_vector(n, &mut rng).iter().map(|v| 0.8 * v).collect();
    let affine = Affine {
        a: Matrix::from_fn(
            n,
            n,
            |i, j| if i == j { 1.0 } else { 0.0 } + 0.3 * random_matrix(1, 1, &mut rng)[(0, 0)],
        ),
        c: random_matrix(n, 1, &mut rng),
    };
    out.text(&format!("A 3-4-4 tanh network whose outputs are the mean and log-variance of two Gaussians (`gaussian_mean_logvar`, so F ≠ G and the GGN is indefinite), {n} parameters, {EXAMPLES} examples, so that F, G and H are non-singular: with a singular matrix (a softmax output has one null direction per unit below it) the minimum-norm step is not invariant (Section 13). θ = ζ(γ) with a nonlinear ζ (θ = γ + 0.4 tanh(γ) ⊙ γ) and an affine one (θ = Aγ + c). One step of each method from θ₀ = ζ(γ₀) in θ and from γ₀ in γ; the discrepancy is ‖ζ(γ₁) − θ₁‖. Directions use the exact pseudo-inverse of B (no damping, which would break invariance)."));
    // Step lengths ‖α δ_θ‖ from 1e-4 to 1e-1: α is scaled per method so every method is
    // probed in the regime where a Taylor expansion in α describes the step.
    let setup = Setup { mlp: &mlp, x: &x, y: &y, gamma0: &gamma0 };
    let lengths: Vec<f64> = (0..9).map(|k| 10f64.powf(-4.0 + 0.375 * k as f64)).collect();
    let mut series = Vec::new();
    let mut csv_cols: Vec<(String, Vec<f64>)> = vec![("step_length".into(), lengths.clone())];
    for (zeta_name, nonlinear) in [("nonlinear", true), ("affine", false)] {
        for (name, method) in METHODS {
            let discrepancy = if nonlinear {
                one_step_discrepancies(&setup, &Nonlinear, method, &lengths)?
            } else {
                one_step_discrepancies(&setup, &affine, method, &lengths)?
            };
            let points: Vec<(f64, f64)> =
                lengths.iter().copied().zip(discrepancy.iter().copied()).collect();
            csv_cols.push((format!("{zeta_name} {name}"), discrepancy.clone()));
            if nonlinear {
                let slope = log_log_slope(&points);
                let (paper, expected) = match method {
                    Method::Kind("fisher", _) | Method::Kind("ggn", _) => {
                        ("O(α²): invariant to first order", 2.0)
                    }
                    _ => ("O(α): not invariant", 1.0),
                };
                out.claims.push(Claim::new(
                    &format!("{name}, nonlinear ζ: one-step discrepancy"),
                    "12",
                    format!("log-log slope {slope:.2}"),
                    paper,
                    (slope - expected).abs() < 0.2,
                ));
                series.push(Series::new(&format!("{name} (slope {slope:.2})"), points));
            } else {
                let worst =
                    discrepancy.iter().zip(&lengths).map(|(d, l)| d / l).fold(0.0, f64::max);
                let invariant = !matches!(method, Method::Gradient);
                out.claims.push(Claim::new(
                    &format!("{name}, affine ζ"),
                    "12.1",
                    format!("max discrepancy / ‖α δ‖ = {worst:.1e}"),
                    if invariant { "exactly invariant" } else { "not invariant" },
                    if invariant { worst < 1e-6 } else { worst > 1e-3 },
                ));
            }
        }
    }
    let cols: Vec<(&str, &[f64])> =
        csv_cols.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    save_csv(config, "invariance_discrepancy", &cols)?;
    save_plot(
        config,
        &mut out,
        "invariance",
        &LinePlot {
            title: "Section 12: one-step discrepancy ‖ζ(γ₁) − θ₁‖ under a nonlinear ζ".into(),
            x_label: "step length ‖α δ_θ‖ (α ∝ length)".into(),
            y_label: "discrepancy".into(),
            log_x: true,
            log_y: true,
            series,
        },
    )?;
    Ok(out)
}
