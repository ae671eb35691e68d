//! Hessian-free training of the deep autoencoder over MPI ranks, and the speed-up of 2 ranks.
//!
//! ```text
//! mpirun -np 2 cargo run --release --features mpi --example distributed_hf
//! mpirun -np 2 cargo run --release --features mpi --example distributed_hf -- --bench
//! ```
//! (as root, Open MPI also needs `--allow-run-as-root`; with more ranks than cores,
//! `--oversubscribe`).
//!
//! **Training** (default): the 784-1000-500-250-30-250-500-1000-784 autoencoder (W1) on
//! `--examples N` CURVES-style images (default 1000; or the IDX image file `--idx FILE`), each
//! rank holding its contiguous shard of the rows; `--iterations K` Hessian-free steps (default
//! 3) with at most `--cg M` CG iterations each (default 10); rank 0 prints each step, and every
//! rank checks at the end that θ is the same on every rank.
//!
//! **`--bench`**: the gradient (forward and reverse pass) and `G v` (on a recorded pass) of W1
//! on a batch of `--examples` (default 1000), one thread per rank. Each of `--repeats R`
//! rounds (default 5) times, in turn, rank 0 computing the whole batch alone while the other
//! ranks wait, then all ranks computing their shards and all-reducing; the medians over the
//! rounds are compared. Interleaving the two puts both under the same load on a shared machine.
//! It also times one all-reduce of the `n + 1` floats a product sends.

use autodiff::random::random_vector;
use autodiff::Matrix;
use curvature::distributed::mpi::MpiWorld;
use curvature::distributed::{
    differences_from_rank_zero, shard_range, Communicator, DistributedProblem,
};
use curvature::loss::BernoulliLogits;
use curvature::{Activation, Mlp, Problem};
use optim::hessian_free::{HessianFree, HessianFreeParams};
use optim::{DistributedObjective, Objective, Solver};
use rand::{rngs::StdRng, SeedableRng};
use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

struct Options {
    bench: bool,
    examples: usize,
    iterations: usize,
    cg: usize,
    repeats: usize,
    idx: Option<PathBuf>,
}

fn options() -> Result<Options, Box<dyn Error>> {
    let mut o =
        Options { bench: false, examples: 1000, iterations: 3, cg: 10, repeats: 5, idx: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--bench" => o.bench = true,
            "--examples" => o.examples = value("--examples")?.parse()?,
            "--iterations" => o.iterations = value("--iterations")?.parse()?,
            "--cg" => o.cg = value("--cg")?.parse()?,
            "--repeats" => o.repeats = value("--repeats")?.parse()?,
            "--idx" => o.idx = Some(value("--idx")?.into()),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if o.examples == 0 || o.repeats == 0 {
        return Err("--examples and --repeats must be positive".into());
    }
    Ok(o)
}

/// W1: the autoencoder of Hinton & Salakhutdinov (logistic units, linear code).
fn w1() -> Result<Mlp, Box<dyn Error>> {
    use Activation::{Identity as I, Logistic as L};
    Ok(Mlp::new(&[784, 1000, 500, 250, 30, 250, 500, 1000, 784], &[L, L, L, I, L, L, L, I])?)
}

/// This rank's rows: of the IDX file, or of `examples` CURVES images (made on every rank from
/// one seed, so the shards partition one data set).
fn shard(world: &MpiWorld, o: &Options) -> Result<Matrix<f64>, Box<dyn Error>> {
    if let Some(path) = &o.idx {
        return Ok(natgrad::data::read_idx_images_shard(path, world.rank(), world.size())?);
    }
    let range = shard_range(o.examples, world.rank(), world.size());
    let all = natgrad::data::curves(range.end, 1);
    Ok(Matrix::from_fn(range.len(), all.cols(), |i, j| all[(range.start + i, j)]))
}

fn initial_theta(mlp: &Mlp) -> Vec<f64> {
    // Small random weights (the same on every rank: one seed).
    random_vector(mlp.num_params(), &mut StdRng::seed_from_u64(7))
        .iter()
        .map(|t| 0.05 * t)
        .collect()
}

fn train(world: &MpiWorld, o: &Options) -> Result<(), Box<dyn Error>> {
    let mlp = w1()?;
    let x = shard(world, o)?;
    let mut objective = DistributedObjective::new(&mlp, &BernoulliLogits, &x, &x, 1, world)?;
    let mut params = HessianFreeParams::default();
    params.cg.max_iterations = o.cg;
    let mut hf = HessianFree::new(params)?;
    let mut theta = initial_theta(&mlp);
    if world.rank() == 0 {
        let n = objective.problem().global_rows();
        println!(
            "W1 autoencoder, {n} examples over {} rank(s); h(θ₀) = {:.4}",
            world.size(),
            objective.loss(&theta)?
        );
    } else {
        objective.loss(&theta)?;
    }
    for k in 1..=o.iterations {
        let start = Instant::now();
        let report = hf.step(&mut theta, &mut objective)?;
        if world.rank() == 0 {
            println!(
                "step {k}: h = {:.4} → {:.4}, CG {} iterations, λ = {:.3e}, {:.2} s",
                report.loss,
                report.new_loss.unwrap_or(report.loss),
                report.cg_iterations.unwrap_or(0),
                hf.lambda(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    let differing = differences_from_rank_zero(&theta, world)?;
    if differing != 0 {
        return Err(format!("θ differs between ranks in {differing} entries").into());
    }
    if world.rank() == 0 {
        println!(
            "θ is identical on all {} rank(s); final h = {:.4}",
            world.size(),
            objective.loss(&theta)?
        );
    } else {
        objective.loss(&theta)?;
    }
    Ok(())
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Seconds `f` takes on this rank.
fn seconds<R>(f: impl FnOnce() -> R) -> (f64, R) {
    let start = Instant::now();
    let r = f();
    (start.elapsed().as_secs_f64(), r)
}

fn bench(world: &MpiWorld, o: &Options) -> Result<(), Box<dyn Error>> {
    let mlp = w1()?;
    let n = mlp.num_params();
    let all = natgrad::data::curves(o.examples, 1);
    let range = shard_range(o.examples, world.rank(), world.size());
    let x = Matrix::from_fn(range.len(), all.cols(), |i, j| all[(range.start + i, j)]);
    let theta = initial_theta(&mlp);
    let v = random_vector(n, &mut StdRng::seed_from_u64(8));
    let whole = Problem::new(&mlp, &BernoulliLogits, &all, &all)?;
    let distributed = DistributedProblem::new(&mlp, &BernoulliLogits, &x, &x, 1, world)?;
    let (mut one, mut many, mut one_gv, mut many_gv, mut reduce) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..o.repeats {
        // Rank 0 alone on the whole batch; the others wait at the barrier.
        world.barrier();
        if world.rank() == 0 {
            let (t, g) = seconds(|| whole.at(&theta).and_then(|p| p.gradient()));
            g?;
            one.push(t);
            let pass = whole.at(&theta)?;
            let (t, gv) = seconds(|| pass.ggn_vector_product(&v));
            gv?;
            one_gv.push(t);
        }
        // Every rank on its shard, with the all-reduce.
        world.barrier();
        let (t, g) = seconds(|| distributed.at(&theta).and_then(|p| p.gradient()));
        g?;
        many.push(t);
        let pass = distributed.at(&theta)?;
        world.barrier();
        let (t, gv) = seconds(|| pass.ggn_vector_product(&v));
        gv?;
        many_gv.push(t);
        let mut buffer = vec![1.0; n + 1];
        world.barrier();
        let (t, r) = seconds(|| world.all_reduce_sum(&mut buffer));
        r?;
        reduce.push(t);
    }
    if world.rank() == 0 {
        let p = world.size();
        let (g1, gp, v1, vp) = (median(one), median(many), median(one_gv), median(many_gv));
        println!(
            "W1 ({n} parameters), batch {}, {p} rank(s), one thread each; medians of {} rounds:",
            o.examples, o.repeats
        );
        println!("gradient: 1 rank {g1:.3} s, {p} ranks {gp:.3} s: speed-up {:.2}x", g1 / gp);
        println!("G v:      1 rank {v1:.3} s, {p} ranks {vp:.3} s: speed-up {:.2}x", v1 / vp);
        println!(
            "one all-reduce of n + 1 = {} floats ({:.1} MB), as each product sends: {:.1} ms",
            n + 1,
            (n + 1) as f64 * 8.0 / 1e6,
            median(reduce) * 1e3
        );
    }
    Ok(())
}

fn main() {
    let world = match MpiWorld::initialize() {
        Ok(world) => world,
        Err(e) => {
            eprintln!("distributed_hf: {e}");
            std::process::exit(2);
        }
    };
    let result =
        options().and_then(|o| if o.bench { bench(&world, &o) } else { train(&world, &o) });
    if let Err(e) = result {
        eprintln!("distributed_hf, rank {} of {}: {e}", world.rank(), world.size());
        world.abort(1);
    }
}
