//! Reproduction 2 (Section 9.2): `F = G` exactly when `z` is a natural parameter; the gap when
//! softmax sits inside `f`; the indefinite `H_L` of the Gaussian with log-variance; the
//! Monte-Carlo Fisher's error against the number of samples.

use super::{log_log_slope, save_csv, save_plot, Claim, Config, Error, Outcome};
use crate::plot::{LinePlot, Series};
use autodiff::linalg::symmetric_eigen;
use autodiff::random::{random_matrix, random_vector};
use autodiff::Matrix;
use curvature::loss::{self, dense_f_r, dense_h_l, GaussianMeanLogVar};
use curvature::{Activation, LinearOperator, Mlp, Problem};
use rand::{rngs::StdRng, SeedableRng};

fn rel_diff(a: &Matrix<f64>, b: &Matrix<f64>) -> f64 {
    let scale = a.data().iter().chain(b.data()).fold(1e-300_f64, |m, x| m.max(x.abs()));
    a.data().iter().zip(b.data()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

/// Runs the reproduction.
pub fn run(config: &Config) -> Result<Outcome, Error> {
    let mut out = Outcome::default();
    out.text("A 5-7-m tanh network on 12 examples; `F` and `G` are dense matrices from their products (`F` through `F_R`, `G` through `H_L`). Entries: max |F − G| / max |G|.");
    let mut table = String::from("| loss | natural | max rel. |F − G| |\n|---|---|---|\n");
    for (k, name) in loss::NAMES.iter().enumerate() {
        let dist = loss::by_name(name)?;
        let mut rng = StdRng::seed_from_u64(config.seed + 10 + k as u64);
        let out_dim = if name.starts_with("gaussian") { 4 } else { 3 };
        let last = match *name {
            "categorical_probabilities" => Activation::Softmax,
            "gaussian_natural" => Activation::Softplus,
            _ => Activation::Identity,
        };
        let mlp = Mlp::new(&[5, 7, out_dim], &[Activation::Tanh, last])?;
        let x = random_matrix(12, 5, &mut rng);
        let theta = random_vector(mlp.num_params(), &mut rng);
        let z = {
            let tape = autodiff::Tape::<f64>::new();
            let th = tape.input(Matrix::column(theta.clone()));
            curvature::Model::forward(&mlp, &tape, th, tape.constant(x.clone()))?.value()
        };
        let y = loss::sample_targets(dist.as_ref(), &z, &mut rng)?;
        let problem = Problem::new(&mlp, dist.as_ref(), &x, &y)?;
        let pass = problem.at(&theta)?;
        let gap = rel_diff(&pass.fisher().to_dense()?, &pass.ggn().to_dense()?);
        table.push_str(&format!("| {name} | {} | {gap:.2e} |\n", dist.is_natural_parameter()));
        let (paper, passed) = if dist.is_natural_parameter() {
            ("F = G", gap < 1e-10)
        } else {
            ("F ≠ G", gap > 1e-3)
        };
        out.claims.push(Claim::new(
            &format!("Fisher vs GGN, {name}"),
            "9.2",
            format!("max rel. |F − G| = {gap:.1e}"),
            paper,
            passed,
        ));
    }
    out.text(&table);
    // Section 9.2's example: H_L of the Gaussian with z = (μ, log σ²) at y = 2, μ = γ = 0.
    let h = dense_h_l(&GaussianMeanLogVar, &[0.0, 0.0], &[2.0]);
    let f = dense_f_r(&GaussianMeanLogVar, &[0.0, 0.0]);
    let (eh, ef) = (symmetric_eigen(&h)?.values, symmetric_eigen(&f)?.values);
    out.claims.push(Claim::new(
        "H_L indefinite for (μ, log σ²) at y = 2, μ = γ = 0",
        "9.2",
        format!(
            "H_L = [[{}, {}], [{}, {}]], eigenvalues {:.3}, {:.3}; F_R eigenvalues {:.2}, {:.2}",
            h[(0, 0)],
            h[(0, 1)],
            h[(1, 0)],
            h[(1, 1)],
            eh[0],
            eh[1],
            ef[0],
            ef[1]
        ),
        "H_L = [[1, 2], [2, 2]], indefinite; F_R PSD",
        h.data() == [1.0, 2.0, 2.0, 2.0] && eh[0] < 0.0 && ef[0] >= 0.0,
    ));
    // MC Fisher error against the number of samples.
    let mlp = Mlp::new(&[5, 7, 4], &[Activation::Tanh, Activation::Identity])?;
    let mut rng = StdRng::seed_from_u64(config.seed + 40);
    let x = random_matrix(12, 5, &mut rng);
    let y = loss::sample_targets(
        &loss::SoftmaxCrossEntropy,
        &random_matrix(12, 4, &mut rng),
        &mut rng,
    )?;
    let problem = Problem::new(&mlp, &loss::SoftmaxCrossEntropy, &x, &y)?;
    let theta = random_vector(mlp.num_params(), &mut rng);
    let pass = problem.at(&theta)?;
    let fisher = pass.fisher().to_dense()?;
    let max_log = if config.quick { 8 } else { 12 };
    let repeats = if config.quick { 4 } else { 8 };
    let mut points = Vec::new();
    for e in 0..=max_log {
        let s = 1usize << e;
        let err: f64 = (0..repeats)
            .map(|r| -> Result<f64, Error> {
                let mc = pass
                    .monte_carlo_fisher(s, config.seed + 1000 * e as u64 + r as u64)?
                    .to_dense()?;
                let d = Matrix::from_fn(mc.rows(), mc.cols(), |i, j| mc[(i, j)] - fisher[(i, j)]);
                Ok(d.data().iter().map(|v| v * v).sum::<f64>().sqrt()
                    / fisher.data().iter().map(|v| v * v).sum::<f64>().sqrt())
            })
            .sum::<Result<f64, Error>>()?
            / repeats as f64;
        points.push((s as f64, err));
    }
    let slope = log_log_slope(&points[2..]);
    let (xs, ys): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
    save_csv(config, "mc_fisher_error", &[("samples", &xs), ("relative_frobenius_error", &ys)])?;
    let reference: Vec<(f64, f64)> = xs.iter().map(|&s| (s, points[0].1 / s.sqrt())).collect();
    save_plot(
        config,
        &mut out,
        "mc_fisher_error",
        &LinePlot {
            title: "Monte-Carlo Fisher: relative error vs samples per example".into(),
            x_label: "samples S".into(),
            y_label: "‖F̃ − F‖_F / ‖F‖_F".into(),
            log_x: true,
            log_y: true,
            series: vec![
                Series::new("MC Fisher", points.clone()),
                Series::dashed("∝ 1/√S", reference),
            ],
        },
    )?;
    out.claims.push(Claim::new(
        "MC Fisher converges to F at rate 1/√S",
        "11.1",
        format!("log-log slope {slope:.2}"),
        "unbiased estimate; error ∝ S^(−1/2)",
        (slope + 0.5).abs() < 0.15,
    ));
    Ok(out)
}
