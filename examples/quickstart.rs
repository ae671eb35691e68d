//! Quickstart: a small tanh MLP with softmax cross-entropy; prints the loss, the gradient norm,
//! and `J v`, `Jᵀ u`, `H v`, `G v` each beside an independent check, and exits non-zero if a
//! check fails.
//!
//! Run: `cargo run --release --example quickstart` (it takes no flags: any argument is an error,
//! exit status 2).

use autodiff::random::{random_matrix, random_vector};
use curvature::loss::SoftmaxCrossEntropy;
use curvature::verify::{self, CheckReport};
use curvature::{Activation, LinearOperator, Mlp, Problem};
use natgrad::cli::{self, Flag};
use rand::{rngs::StdRng, SeedableRng};
use std::process::ExitCode;

fn main() -> ExitCode {
    // No flags yet (a new one is a line in this table, see `natgrad::cli`); anything given is an
    // error rather than silently ignored.
    let flags: [Flag<()>; 0] = [];
    cli::parse_env("quickstart", &flags, ());
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("quickstart: a check FAILED");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("quickstart: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn line(what: &str, value: f64, report: &CheckReport) -> bool {
    println!(
        "{what:<34} {value:>14.6e}   {:<44} rel. error {:>9.2e} (tol {:.0e})  {}",
        report.check,
        report.max_rel_error,
        report.tolerance,
        if report.passed() { "ok" } else { "FAILED" }
    );
    report.passed()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(0);
    let (batch, sizes) = (16, [10, 20, 20, 3]);
    let mlp = Mlp::new(&sizes, &[Activation::Tanh, Activation::Tanh, Activation::Identity])?;
    let x = random_matrix(batch, sizes[0], &mut rng);
    let y = autodiff::Matrix::from_fn(batch, 3, |i, j| if i % 3 == j { 1.0 } else { 0.0 });
    let loss = SoftmaxCrossEntropy;
    let problem = Problem::new(&mlp, &loss, &x, &y)?;
    let theta: Vec<f64> =
        random_vector(mlp.num_params(), &mut rng).iter().map(|t| 0.3 * t).collect();
    let v = random_vector(theta.len(), &mut rng);
    let u = random_matrix(batch, 3, &mut rng);

    let pass = problem.at(&theta)?;
    let gradient = pass.gradient()?;
    println!(
        "MLP {sizes:?}, tanh, softmax cross-entropy, batch {batch}, n = {} parameters",
        theta.len()
    );
    println!("loss h(θ) = {:.12}", pass.loss()?);
    let mut ok = true;
    ok &= line(
        "gradient norm ‖∇h‖",
        norm(&gradient),
        &verify::check_gradient(&problem, &theta, 1e-8)?,
    );
    let jv = pass.jacobian_vector_product(&v)?;
    ok &= line(
        "‖J v‖",
        norm(jv.data()),
        &verify::check_jacobian_vector_product(&problem, &theta, &v, 1e-8)?,
    );
    let jtu = pass.transpose_jacobian_vector_product(&u)?;
    ok &= line("‖Jᵀ u‖", norm(&jtu), &verify::check_adjoint(&problem, &theta, &u, &v, 1e-12)?);
    let hv = pass.hessian_vector_product(&v)?;
    ok &= line(
        "‖H v‖",
        norm(&hv),
        &verify::check_hessian_vector_product(&problem, &theta, &v, 1e-8)?,
    );
    // G v against the dense GGN built from per-example Jacobians... here: G v vs H v − residual v (eqn 6).
    let gv = pass.ggn_vector_product(&v)?;
    let residual = pass.ggn_residual_vector_product(&v)?;
    let h_minus_r: Vec<f64> = hv.iter().zip(&residual).map(|(a, b)| a - b).collect();
    let report = autodiff::check::compare("G v vs H v − eqn-6 residual v", &gv, &h_minus_r, 1e-10)?;
    ok &= line("‖G v‖", norm(&gv), &report);
    let dense_symmetric = {
        let g = pass.ggn().to_dense()?;
        let asym = (0..g.rows())
            .flat_map(|i| (0..g.cols()).map(move |j| (i, j)))
            .map(|(i, j)| (g[(i, j)] - g[(j, i)]).abs())
            .fold(0.0, f64::max);
        println!("dense GGN {}×{}: max |G − Gᵀ| = {asym:.2e}", g.rows(), g.cols());
        asym <= 1e-12
    };
    ok &= dense_symmetric;
    println!("{}", if ok { "all checks passed" } else { "SOME CHECKS FAILED" });
    Ok(ok)
}
