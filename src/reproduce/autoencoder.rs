//! Reproduction 6 (Sections 10, 11.2): the deep autoencoder 784-1000-500-250-30-250-500-1000-784
//! (logistic units, linear 30-unit code, sigmoid cross-entropy on the output logits) trained on
//! CURVES-style images with SGD with momentum, Adam, Hessian-free on the GGN, damped natural
//! gradient (GGN, CG, Levenberg-Marquardt) and K-FAC (Martens & Grosse 2015: Monte-Carlo
//! factors, step and momentum from the exact 2-D quadratic model), compared at equal
//! gradient-equivalent passes.

use super::{save_csv, save_plot, Claim, Config, Error, Outcome};
use crate::data::{curves, read_idx_images};
use crate::plot::{LinePlot, Series};
use autodiff::random::standard_normal;
use autodiff::Matrix;
use curvature::loss::BernoulliLogits;
use curvature::{Activation, CurvatureKind, Mlp, Problem};
use optim::cg::CgParams;
use optim::diagonal::{DiagonalMethod, DiagonalParams};
use optim::hessian_free::{HessianFree, HessianFreeParams};
use optim::kfac::{KfacParams, KroneckerFactored};
use optim::natural_gradient::{DirectionSolve, NaturalGradient, NaturalGradientParams};
use optim::schedule::Schedule;
use optim::sgd::GradientDescent;
use optim::{NetworkObjective, Solver, Work};
use rand::{rngs::StdRng, SeedableRng};
use std::time::Instant;

/// The autoencoder of Hinton & Salakhutdinov (2006) and Martens (2010).
pub fn autoencoder() -> Result<Mlp, Error> {
    use Activation::{Identity as I, Logistic as L};
    Ok(Mlp::new(&[784, 1000, 500, 250, 30, 250, 500, 1000, 784], &[L, L, L, I, L, L, L, I])?)
}

/// Gaussian weights scaled by `1/√fan_in`, zero biases.
pub fn initialize(mlp: &Mlp, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut theta = vec![0.0; mlp.num_params()];
    for layer in 1..=mlp.num_layers() {
        let fan_in = mlp.sizes()[layer - 1] as f64;
        for w in &mut theta[mlp.weight_range(layer)] {
            *w = standard_normal(&mut rng) / fan_in.sqrt();
        }
    }
    theta
}

/// Mean over images of the squared reconstruction error `Σ_pixels (σ(z) − x)²`.
fn reconstruction_error(mlp: &Mlp, theta: &[f64], x: &Matrix<f64>) -> Result<f64, Error> {
    let problem = Problem::new(mlp, &BernoulliLogits, x, x)?;
    let z = problem.at(theta)?.output().clone();
    let total: f64 =
        z.data().iter().zip(x.data()).map(|(v, t)| (1.0 / (1.0 + (-v).exp()) - t).powi(2)).sum();
    Ok(total / x.rows() as f64)
}

struct Run {
    name: String,
    /// (iteration, passes, seconds, error)
    history: Vec<(f64, f64, f64, f64)>,
}

/// Runs the reproduction.
pub fn run(config: &Config) -> Result<Outcome, Error> {
    let mut out = Outcome::default();
    let (n, budget) = if config.quick { (100, 16.0) } else { (300, 80.0) };
    let (x, source) = match &config.idx_dir {
        Some(dir) => {
            let path = ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"]
                .iter()
                .map(|f| dir.join(f))
                .find(|p| p.exists())
                .ok_or_else(|| format!("{}: no train-images-idx3-ubyte[.gz]", dir.display()))?;
            let all = read_idx_images(&path)?;
            let rows = n.min(all.rows());
            (
                Matrix::from_fn(rows, all.cols(), |i, j| all[(i, j)]),
                format!("the first {rows} images of {}", path.display()),
            )
        }
        None => (
            curves(n, config.seed + 6),
            format!("{n} CURVES-style images (seed {})", config.seed + 6),
        ),
    };
    let mlp = autoencoder()?;
    let theta0 = initialize(&mlp, config.seed + 7);
    let initial_error = reconstruction_error(&mlp, &theta0, &x)?;
    out.text(&format!("Data: {source}. {} parameters. Each method gets {budget} gradient-equivalent passes (a full-data gradient = 1, a loss = ⅓, a GGN product = 4/3, scaled by the fraction of the data each touches; curvature uses a quarter of the data). Error: mean over images of Σ(σ(z) − x)² (initial {initial_error:.2}).", mlp.num_params()));
    // Minibatches of half the data for SGD and Adam; curvature on a quarter for HF, NG and K-FAC.
    let (batch, curvature_batch) = ((n / 2).max(1), (n / 4).max(1));
    let methods: Vec<(&str, Box<dyn Solver>, bool)> = vec![
        (
            "SGD with momentum",
            Box::new(GradientDescent::new(Schedule::constant(0.05)?, 0.9)?),
            true,
        ),
        (
            "Adam",
            Box::new(DiagonalMethod::new("Adam", DiagonalParams::adam(1e-3, 0.9, 0.999, 1e-8)?)?),
            true,
        ),
        (
            "Hessian-free (GGN)",
            Box::new(HessianFree::new(HessianFreeParams {
                initial_lambda: 10.0,
                ..Default::default()
            })?),
            false,
        ),
        (
            "natural gradient (GGN, CG, LM)",
            Box::new(NaturalGradient::new(NaturalGradientParams {
                kind: CurvatureKind::Ggn,
                schedule: Schedule::constant(1.0)?,
                lambda: 10.0,
                adapt_lambda: true,
                solve: DirectionSolve::ConjugateGradient(CgParams {
                    max_iterations: 10,
                    tolerance: 1e-6,
                    progress_epsilon: None,
                    store_iterates: false,
                }),
            })?),
            false,
        ),
        (
            // One Monte-Carlo sample for the factors, inverses every 5 steps (10 in a quick run,
            // which takes about 8 steps: one refresh of a few seconds), step and momentum from
            // the exact 2-D model on the GGN.
            "K-FAC (MC, 2-D model)",
            Box::new(KroneckerFactored::new(KfacParams {
                inverse_period: if config.quick { 10 } else { 5 },
                ..KfacParams::new(10.0)
            })?),
            false,
        ),
    ];
    let mut runs = Vec::new();
    for (name, mut solver, minibatch) in methods {
        let mut objective = if minibatch {
            NetworkObjective::minibatches(
                &mlp,
                &BernoulliLogits,
                &x,
                &x,
                batch,
                batch,
                config.seed,
            )?
            .with_threads(config.threads)?
        } else {
            NetworkObjective::minibatches(
                &mlp,
                &BernoulliLogits,
                &x,
                &x,
                n,
                curvature_batch,
                config.seed,
            )?
            .with_threads(config.threads)?
        };
        let mut theta = theta0.clone();
        // Passes in units of full-data gradients: a minibatch step costs batch/n of a full one.
        let mut passes = 0.0;
        let start = Instant::now();
        let mut history = vec![(0.0, 0.0, 0.0, initial_error)];
        let mut k = 0;
        let mut excluded = 0.0;
        while passes < budget {
            let report = solver.step(&mut theta, &mut objective)?;
            let w: Work = report.work;
            let data_fraction = if minibatch { batch as f64 / n as f64 } else { 1.0 };
            // HF and NG compute curvature on a `batch`-sized subset: their products cost batch/n.
            let curvature_fraction = curvature_batch as f64 / n as f64;
            passes += data_fraction * (w.gradients as f64 + w.losses as f64 / 3.0)
                + curvature_fraction * 4.0 * w.curvature_products as f64 / 3.0;
            k += 1;
            // The error is measured on all the data (a forward pass not counted as work, nor in
            // the seconds); for the cheap first-order steps every 4th step suffices.
            if !minibatch || k % 4 == 0 || passes >= budget {
                let seconds = start.elapsed().as_secs_f64() - excluded;
                let t = Instant::now();
                history.push((k as f64, passes, seconds, reconstruction_error(&mlp, &theta, &x)?));
                excluded += t.elapsed().as_secs_f64();
            }
        }
        eprintln!(
            "    {name}: {k} iterations, error {:.3}",
            history.last().map(|h| h.3).unwrap_or(f64::NAN)
        );
        runs.push(Run { name: name.to_string(), history });
    }
    let mut table = String::from(
        "| method | iterations | passes | seconds | final error |\n|---|---|---|---|---|\n",
    );
    for r in &runs {
        let last = r.history.last().copied().unwrap_or_default();
        table.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} | {:.3} |\n",
            r.name, last.0, last.1, last.2, last.3
        ));
        let cols: Vec<Vec<f64>> =
            (0..4).map(|c| r.history.iter().map(|h| [h.0, h.1, h.2, h.3][c]).collect()).collect();
        save_csv(
            config,
            &format!(
                "autoencoder_{}",
                r.name.split_whitespace().next().unwrap_or("run").to_lowercase().replace('-', "_")
            ),
            &[
                ("iteration", &cols[0]),
                ("passes", &cols[1]),
                ("seconds", &cols[2]),
                ("error", &cols[3]),
            ],
        )?;
    }
    out.text(&table);
    for (axis, idx, log_x) in
        [("iterations", 0, true), ("gradient-equivalent passes", 1, false), ("seconds", 2, false)]
    {
        let series = runs
            .iter()
            .map(|r| {
                Series::new(
                    &r.name,
                    r.history
                        .iter()
                        .map(|h| ([h.0, h.1, h.2][idx] + if log_x { 1.0 } else { 0.0 }, h.3))
                        .collect(),
                )
            })
            .collect();
        save_plot(
            config,
            &mut out,
            &format!("autoencoder_{}", axis.split_whitespace().next().unwrap_or("x")),
            &LinePlot {
                title: format!("Deep autoencoder: training error against {axis}"),
                x_label: if log_x { format!("{axis} + 1") } else { axis.to_string() },
                y_label: "squared reconstruction error".into(),
                log_x,
                log_y: true,
                series,
            },
        )?;
    }
    let final_of = |i: usize| runs[i].history.last().map(|h| h.3).unwrap_or(f64::NAN);
    for r in &runs {
        let last = r.history.last().map(|h| h.3).unwrap_or(f64::NAN);
        out.claims.push(Claim::new(
            &format!("{} reduces the training error", r.name),
            "10",
            format!("{initial_error:.2} → {last:.2}"),
            "training makes progress",
            last < initial_error,
        ));
    }
    if config.quick {
        out.text("Quick mode: a budget this small ends on the plateau where every method has learned the mean image, so the comparison between methods is checked only in the full run.");
        return Ok(out);
    }
    out.claims.push(Claim::new(
        "HF beats SGD with momentum at equal passes",
        "10, 11.2 (Martens 2010)",
        format!("HF {:.3} vs SGD {:.3}", final_of(2), final_of(0)),
        "second-order methods train deep autoencoders faster",
        final_of(2) < final_of(0),
    ));
    Ok(out)
}
