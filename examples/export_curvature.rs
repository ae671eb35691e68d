//! Writes every curvature matrix of a small network to `.npy` files for numpy, with a manifest.
//!
//! `cargo run --release --example export_curvature -- --layers 4,5,3 --activations tanh,identity
//!  --loss softmax_cross_entropy --batch 8 --seed 0 --out out/curvature`
//!
//! `--model conv` exports a small convolutional network instead (curvature::model::ConvNet):
//! 2×5×5 images, 3 filters 3×3 with stride 1 and padding 1, the first `--activations` entry
//! after the convolution, layer normalization, and a dense layer to as many logits as the last
//! `--layers` width; `c.npy` and `activation_term.npy` (which need an MLP's layers) are left out.
//!
//! Files in `--out`: `manifest.json`, `theta.npy`, `x.npy`, `y.npy`, `loss.npy` (shape (1,)),
//! `gradient.npy`, and the n×n `hessian.npy`, `ggn.npy`, `fisher.npy`, `empirical_fisher.npy`,
//! `ggn_residual.npy` (eqn 6's second term), `c.npy`, `activation_term.npy` (Section 8.1.2).
//! `lanczos_hessian.npy` and `lanczos_ggn.npy` hold the top `--lanczos-k` (default 10, at most n) eigenvalues of H
//! and G, descending, from Lanczos with full reorthogonalization and n steps (round-off accurate),
//! to compare with `numpy.linalg.eigvalsh` of `hessian.npy` and `ggn.npy`.
//! `kfac.npy` is the K-FAC approximation of the GGN (block diagonal over layers,
//! `G_i ⊗ Ā_{i-1}` with type-2 factors, undamped; layout of `curvature::kfac`; MLP only).
//! The objective is the batch mean of L. Targets are drawn from the model's own predictive
//! distribution (one-hot rows for the categorical losses).

use autodiff::linalg::symmetric_eigen;
use autodiff::random::{random_vector, standard_normal};
use curvature::loss::{self, dense_h_l};
use curvature::model::ConvNet;
use curvature::npy::{write_matrix, write_vector};
use curvature::spectra::{lanczos, LanczosParams, Which};
use curvature::{Activation, FnOperator, LinearOperator, Mlp, Model, Problem};
use natgrad::cli::{self, Flag};
use rand::{rngs::StdRng, SeedableRng};
use std::path::PathBuf;

struct Args {
    model: String,
    layers: Vec<usize>,
    activations: Vec<Activation>,
    loss: String,
    batch: usize,
    seed: u64,
    out: PathBuf,
    lanczos_k: usize,
}

/// The flags, one line each (see `natgrad::cli`).
fn flags() -> Vec<Flag<Args>> {
    vec![
        Flag::value("--model", "mlp|conv", |a: &mut Args, v| {
            cli::one_of(v, &["mlp", "conv"]).map(|m| a.model = m)
        }),
        Flag::value("--layers", "W,W,…", |a, v| {
            cli::list(v, cli::positive).map(|l| a.layers = l)
        }),
        Flag::value("--activations", "NAME,…", |a, v| {
            cli::list(v, cli::parsed).map(|l| a.activations = l)
        }),
        Flag::value("--loss", "NAME", |a, v| {
            loss::by_name(v).map_err(|e| e.to_string())?;
            a.loss = v.into();
            Ok(())
        }),
        Flag::value("--batch", "N", |a, v| cli::positive(v).map(|n| a.batch = n)),
        Flag::value("--seed", "N", |a, v| cli::parsed(v).map(|n| a.seed = n)),
        Flag::value("--out", "DIR", |a, v| cli::parsed(v).map(|p| a.out = p)),
        Flag::value("--lanczos-k", "K", |a, v| cli::positive(v).map(|k| a.lanczos_k = k)),
    ]
}

fn defaults() -> Args {
    Args {
        model: "mlp".into(),
        layers: vec![4, 5, 3],
        activations: vec![Activation::Tanh, Activation::Identity],
        loss: "softmax_cross_entropy".into(),
        batch: 8,
        seed: 0,
        out: PathBuf::from("out/curvature"),
        lanczos_k: 10,
    }
}

/// Builds the model `--model` names, with its manifest entries, and exports it.
fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let list = |v: Vec<String>| v.join(", ");
    match a.model.as_str() {
        "mlp" => {
            let mlp = Mlp::new(&a.layers, &a.activations)?;
            let entries = format!(
                "\"layers\": [{}],\n  \"activations\": [{}],\n  \"parameter_layout\": \"{}\"",
                list(a.layers.iter().map(|l| l.to_string()).collect()),
                list(a.activations.iter().map(|x| format!("\"{x}\"")).collect()),
                mlp.describe_layout(),
            );
            export(a, &mlp, (mlp.input_dim(), mlp.output_dim()), true, &entries)
        }
        "conv" => {
            // A small fixed architecture; the output width and activation come from the flags.
            let geometry = autodiff::Conv2d::new(2, 5, 5, (3, 3), 1, 1)?;
            let outputs = *a.layers.last().ok_or("--layers is empty")?;
            let activation = *a.activations.first().ok_or("--activations is empty")?;
            let net = ConvNet::new(geometry, 3, activation, outputs)?.with_layer_norm(1e-5)?;
            let entries = format!(
                "\"architecture\": \"conv2d ({geometry}) with 3 filters, {activation}, layer norm (epsilon 1e-5), dense to {outputs} logits\",\n  \"parameter_layout\": \"{}\"",
                net.describe_layout(),
            );
            export(a, &net, (net.input_dim(), net.output_dim()), false, &entries)
        }
        other => Err(format!("--model: unknown model '{other}' (expected mlp or conv)").into()),
    }
}

/// Writes the files for `model`; `layered` adds the Section 8.1.2 terms (which need
/// [`Model::forward_layers`]).
fn export<M: Model>(
    a: &Args,
    model: &M,
    (input_dim, output_dim): (usize, usize),
    layered: bool,
    model_entries: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let dist = loss::by_name(&a.loss)?;
    dist.target_dim(output_dim)
        .map_err(|e| format!("loss {} does not fit {} outputs: {e}", a.loss, output_dim))?;
    let n = model.num_params();
    if n > 3000 {
        return Err(
            format!("{n} parameters: dense n×n matrices would be too large (limit 3000)").into()
        );
    }
    let mut rng = StdRng::seed_from_u64(a.seed);
    // An allocation the machine cannot make (say `--batch 1000000000`) is an error, not an abort.
    let mut x = autodiff::Matrix::try_zeros(a.batch, input_dim)
        .map_err(|e| format!("--batch {}: the inputs do not fit in memory: {e}", a.batch))?;
    x.data_mut().iter_mut().for_each(|v| *v = standard_normal(&mut rng));
    let theta: Vec<f64> = random_vector(n, &mut rng).iter().map(|t| 0.5 * t).collect();
    // Targets from the model's own predictive distribution at θ (valid for every loss).
    let z = {
        let tape = autodiff::Tape::<f64>::new();
        let th = tape.input(autodiff::Matrix::column(theta.clone()));
        let xv = tape.constant(x.clone());
        curvature::Model::forward(model, &tape, th, xv)?.value()
    };
    let y = loss::sample_targets(dist.as_ref(), &z, &mut rng)?;
    let problem = Problem::new(model, dist.as_ref(), &x, &y)?;
    let pass = problem.at(&theta)?;
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let path = |name: &str| a.out.join(name);
    write_vector(&path("theta.npy"), &theta)?;
    write_matrix(&path("x.npy"), &x)?;
    write_matrix(&path("y.npy"), &y)?;
    write_vector(&path("loss.npy"), &[pass.loss()?])?;
    write_vector(&path("gradient.npy"), &pass.gradient()?)?;
    let mut matrices: Vec<(&str, Box<dyn LinearOperator + '_>)> = vec![
        ("hessian", Box::new(pass.hessian())),
        ("ggn", Box::new(pass.ggn())),
        ("fisher", Box::new(pass.fisher())),
        ("empirical_fisher", Box::new(pass.empirical_fisher())),
        ("ggn_residual", Box::new(FnOperator::new(n, |v| pass.ggn_residual_vector_product(v)))),
    ];
    if layered {
        matrices.push(("c", Box::new(FnOperator::new(n, |v| pass.c_vector_product(v, None)))));
        matrices.push((
            "activation_term",
            Box::new(FnOperator::new(n, |v| pass.activation_term_vector_product(v, None))),
        ));
        // Block diagonal over layers, type-2 (H_L's eigen decomposition), undamped.
        matrices.push(("kfac", Box::new(pass.kfac(&curvature::kfac::KfacKind::Type2)?)));
    }
    for (name, op) in &matrices {
        write_matrix(&path(&format!("{name}.npy")), &op.to_dense()?)?;
    }
    // Top eigenvalues by Lanczos (n steps: every Ritz value converged), for an independent check.
    let lanczos_k = a.lanczos_k.min(n);
    let mut lanczos_files = Vec::new();
    for (name, op) in matrices.iter().filter(|(name, _)| ["hessian", "ggn"].contains(name)) {
        let params = LanczosParams::new(lanczos_k, Which::LargestAlgebraic).steps(n).seed(a.seed);
        let file = format!("lanczos_{name}.npy");
        write_vector(&path(&file), &lanczos(op.as_ref(), &params)?.values)?;
        lanczos_files.push(format!("\"{file}\""));
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
        "{{\n  \"model\": \"{}\",\n  {},\n  \"parameter_blocks\": [{}],\n  \"loss\": \"{}\",\n  \"natural_parameter\": {},\n  \"batch\": {},\n  \"seed\": {},\n  \"parameters\": {},\n  \"objective\": \"mean over the batch of L(y, f(x, theta))\",\n  \"targets\": \"sampled from the model's predictive distribution at theta\",\n  \"ggn_note\": \"{}\",\n  \"lanczos\": \"{}: the top {} eigenvalues, descending, Lanczos with full reorthogonalization and {} steps\",\n  \"files\": [\"theta.npy\", \"x.npy\", \"y.npy\", \"loss.npy\", \"gradient.npy\", {}, {}]\n}}\n",
        a.model,
        model_entries,
        list(
            model.parameter_blocks()
                .iter()
                .map(|b| format!(
                    "{{\"name\": \"{}\", \"layer\": {}, \"start\": {}, \"end\": {}}}",
                    b.name, b.layer, b.range.start, b.range.end
                ))
                .collect()
        ),
        a.loss,
        dist.is_natural_parameter(),
        a.batch,
        a.seed,
        n,
        ggn_note,
        lanczos_files.join(", ").replace('"', ""),
        lanczos_k,
        n,
        list(matrices.iter().map(|(name, _)| format!("\"{name}.npy\"")).collect()),
        list(lanczos_files.clone()),
    );
    std::fs::write(path("manifest.json"), manifest)?;
    println!("wrote {} matrices ({n}×{n}) and the manifest to {}", matrices.len(), a.out.display());
    Ok(())
}

fn main() {
    let args = cli::parse_env("export_curvature", &flags(), defaults());
    if let Err(e) = run(&args) {
        cli::fail("export_curvature", &e.to_string());
    }
}
