//! Writes every curvature matrix of a small network to `.npy` files for numpy, with a manifest.
//!
//! `cargo run --release --example export_curvature -- --layers 4,5,3 --activations tanh,identity
//!  --loss softmax_cross_entropy --batch 8 --seed 0 --out out/curvature`
//!
//! Files in `--out`: `manifest.json`, `theta.npy`, `x.npy`, `y.npy`, `loss.npy` (shape (1,)),
//! `gradient.npy`, and the n×n `hessian.npy`, `ggn.npy`, `fisher.npy`, `empirical_fisher.npy`,
//! `ggn_residual.npy` (eqn 6's second term), `c.npy`, `activation_term.npy` (Section 8.1.2), and `kfac.npy`: the K-FAC approximation of the
//! GGN (block diagonal over layers, `G_i ⊗ Ā_{i-1}` with type-2 factors, undamped; layout of
//! `curvature::kfac`).
//! The objective is the batch mean of L. Targets are drawn from the model's own predictive
//! distribution (one-hot rows for the categorical losses).

use autodiff::linalg::symmetric_eigen;
use autodiff::random::{random_matrix, random_vector};
use curvature::loss::{self, dense_h_l};
use curvature::npy::{write_matrix, write_vector};
use curvature::{Activation, FnOperator, LinearOperator, Mlp, Problem};
use rand::{rngs::StdRng, SeedableRng};
use std::path::PathBuf;

struct Args {
    layers: Vec<usize>,
    activations: Vec<Activation>,
    loss: String,
    batch: usize,
    seed: u64,
    out: PathBuf,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        layers: vec![4, 5, 3],
        activations: vec![Activation::Tanh, Activation::Identity],
        loss: "softmax_cross_entropy".into(),
        batch: 8,
        seed: 0,
        out: PathBuf::from("out/curvature"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--layers" => {
                a.layers = value.split(',').map(|s| s.trim().parse().map_err(|_| format!("--layers: '{s}' is not a width"))).collect::<Result<_, _>>()?
            }
            "--activations" => {
                a.activations = value.split(',').map(|s| s.trim().parse::<Activation>().map_err(|e| e.to_string())).collect::<Result<_, _>>()?
            }
            "--loss" => a.loss = value,
            "--batch" => a.batch = value.parse().map_err(|_| format!("--batch: '{value}' is not a count"))?,
            "--seed" => a.seed = value.parse().map_err(|_| format!("--seed: '{value}' is not a number"))?,
            "--out" => a.out = PathBuf::from(value),
            other => return Err(format!("unknown flag {other} (expected --layers, --activations, --loss, --batch, --seed, --out)")),
        }
    }
    if a.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    Ok(a)
}

fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let mlp = Mlp::new(&a.layers, &a.activations)?;
    let dist = loss::by_name(&a.loss)?;
    dist.target_dim(mlp.output_dim())
        .map_err(|e| format!("loss {} does not fit {} outputs: {e}", a.loss, mlp.output_dim()))?;
    let n = mlp.num_params();
    if n > 3000 {
        return Err(
            format!("{n} parameters: dense n×n matrices would be too large (limit 3000)").into()
        );
    }
    let mut rng = StdRng::seed_from_u64(a.seed);
    let x = random_matrix(a.batch, mlp.input_dim(), &mut rng);
    let theta: Vec<f64> = random_vector(n, &mut rng).iter().map(|t| 0.5 * t).collect();
    // Targets from the model's own predictive distribution at θ (valid for every loss).
    let z = {
        let tape = autodiff::Tape::<f64>::new();
        let th = tape.input(autodiff::Matrix::column(theta.clone()));
        let xv = tape.constant(x.clone());
        curvature::Model::forward(&mlp, &tape, th, xv)?.value()
    };
    let y = loss::sample_targets(dist.as_ref(), &z, &mut rng)?;
    let problem = Problem::new(&mlp, dist.as_ref(), &x, &y)?;
    let pass = problem.at(&theta)?;
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let path = |name: &str| a.out.join(name);
    write_vector(&path("theta.npy"), &theta)?;
    write_matrix(&path("x.npy"), &x)?;
    write_matrix(&path("y.npy"), &y)?;
    write_vector(&path("loss.npy"), &[pass.loss()?])?;
    write_vector(&path("gradient.npy"), &pass.gradient()?)?;
    let matrices: Vec<(&str, Box<dyn LinearOperator + '_>)> = vec![
        ("hessian", Box::new(pass.hessian())),
        ("ggn", Box::new(pass.ggn())),
        ("fisher", Box::new(pass.fisher())),
        ("empirical_fisher", Box::new(pass.empirical_fisher())),
        ("ggn_residual", Box::new(FnOperator::new(n, |v| pass.ggn_residual_vector_product(v)))),
        ("c", Box::new(FnOperator::new(n, |v| pass.c_vector_product(v, None)))),
        (
            "activation_term",
            Box::new(FnOperator::new(n, |v| pass.activation_term_vector_product(v, None))),
        ),
        // Block diagonal over layers, type-2 (H_L's eigen decomposition), undamped.
        ("kfac", Box::new(pass.kfac(&curvature::kfac::KfacKind::Type2)?)),
    ];
    for (name, op) in &matrices {
        write_matrix(&path(&format!("{name}.npy")), &op.to_dense()?)?;
    }
    // Where the GGN is not a Gauss-Newton matrix in Schraudolph's sense: H_L indefinite.
    let mut indefinite = 0;
    for r in 0..a.batch {
        let h = dense_h_l(dist.as_ref(), pass.output().row(r), y.row(r));
        if symmetric_eigen(&h)?.values[0] < -1e-12 {
            indefinite += 1;
        }
    }
    let ggn_note = if indefinite > 0 {
        format!("H_L is indefinite at {indefinite} of {} examples: ggn.npy holds J^T H_L J anyway, which is not PSD (the GGN of eqn 5 assumes L convex in z)", a.batch)
    } else {
        "H_L is PSD at every example: ggn.npy is the GGN of eqn 5".into()
    };
    let list = |v: Vec<String>| v.join(", ");
    let manifest = format!(
        "{{\n  \"layers\": [{}],\n  \"activations\": [{}],\n  \"loss\": \"{}\",\n  \"natural_parameter\": {},\n  \"batch\": {},\n  \"seed\": {},\n  \"parameters\": {},\n  \"parameter_layout\": \"{}\",\n  \"objective\": \"mean over the batch of L(y, f(x, theta))\",\n  \"targets\": \"sampled from the model's predictive distribution at theta\",\n  \"ggn_note\": \"{}\",\n  \"files\": [\"theta.npy\", \"x.npy\", \"y.npy\", \"loss.npy\", \"gradient.npy\", {}]\n}}\n",
        list(a.layers.iter().map(|l| l.to_string()).collect()),
        list(a.activations.iter().map(|x| format!("\"{x}\"")).collect()),
        a.loss,
        dist.is_natural_parameter(),
        a.batch,
        a.seed,
        n,
        mlp.describe_layout(),
        ggn_note,
        list(matrices.iter().map(|(name, _)| format!("\"{name}.npy\"")).collect()),
    );
    std::fs::write(path("manifest.json"), manifest)?;
    println!("wrote {} matrices ({n}×{n}) and the manifest to {}", matrices.len(), a.out.display());
    Ok(())
}

fn main() {
    let result = parse().map_err(|e| e.into()).and_then(|a| run(&a));
    if let Err(e) = result {
        eprintln!("export_curvature: {e}");
        std::process::exit(2);
    }
}
