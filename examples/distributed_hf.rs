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
//! rounds (default 5) times, in turn: rank 0 computing the whole batch alone while the other
//! ranks wait; every rank computing its shard with no communication (the compute the ranks
//! split; the slowest rank's time); every rank computing its shard and all-reducing
//! (`DistributedProblem`, with the time spent inside its all-reduces); and the all-reduce of
//! the `n` floats a product sends alone, in place and through a copy, and of the 1-float
//! flag. The medians over the rounds are compared: interleaving puts all of them under the
//! same load on a shared machine.

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
use std::cell::Cell;
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

/// The world, adding up the seconds spent in its all-reduces (waiting for the other ranks
/// included): the communication inside a product.
struct Timed<'w> {
    world: &'w MpiWorld,
    spent: Cell<f64>,
}

impl Timed<'_> {
    /// The seconds spent in all-reduces since the last call.
    fn take(&self) -> f64 {
        self.spent.replace(0.0)
    }
}

impl Communicator for Timed<'_> {
    fn rank(&self) -> usize {
        self.world.rank()
    }
    fn size(&self) -> usize {
        self.world.size()
    }
    fn all_reduce_sum(&self, values: &mut [f64]) -> curvature::error::Result<()> {
        let (t, r) = seconds(|| self.world.all_reduce_sum(values));
        self.spent.set(self.spent.get() + t);
        r
    }
}

/// Per round, the largest of every rank's `times` (the slowest rank decides when a product
/// is done): every rank's times, all-reduced.
fn slowest_rank(world: &MpiWorld, times: &[f64]) -> Result<Vec<f64>, Box<dyn Error>> {
    let (rank, size, rounds) = (world.rank(), world.size(), times.len());
    let mut all = vec![0.0; rounds * size];
    all[rank * rounds..(rank + 1) * rounds].copy_from_slice(times);
    world.all_reduce_sum(&mut all)?;
    Ok((0..rounds).map(|k| (0..size).map(|r| all[r * rounds + k]).fold(0.0, f64::max)).collect())
}

/// The medians of the bench's rounds, each round's timings taken back to back (interleaved)
/// so that all see the same load.
#[derive(Default)]
struct Rounds {
    /// Rank 0 on the whole batch (the others waiting): gradient, `G v`.
    one_gradient: Vec<f64>,
    one_ggn: Vec<f64>,
    /// Every rank on its shard with no communication (the slowest rank's time).
    compute_gradient: Vec<f64>,
    compute_ggn: Vec<f64>,
    /// Every rank on its shard, all-reduced (`DistributedProblem`), and the part of it spent
    /// in all-reduces.
    many_gradient: Vec<f64>,
    many_ggn: Vec<f64>,
    reduce_in_gradient: Vec<f64>,
    reduce_in_ggn: Vec<f64>,
    /// One all-reduce of `n` floats alone: in place, and through a copy; of the 1-float flag.
    reduce_in_place: Vec<f64>,
    reduce_copying: Vec<f64>,
    reduce_flag: Vec<f64>,
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
    let shard = Problem::new(&mlp, &BernoulliLogits, &x, &x)?;
    let timed = Timed { world, spent: Cell::new(0.0) };
    let distributed = DistributedProblem::new(&mlp, &BernoulliLogits, &x, &x, 1, &timed)?;
    let mut r = Rounds::default();
    let mut buffer = vec![1.0; n];
    for _ in 0..o.repeats {
        // Rank 0 alone on the whole batch; the others wait at the barrier.
        world.barrier();
        if world.rank() == 0 {
            let (t, g) = seconds(|| whole.at(&theta).and_then(|p| p.gradient()));
            g?;
            r.one_gradient.push(t);
            let pass = whole.at(&theta)?;
            let (t, gv) = seconds(|| pass.ggn_vector_product(&v));
            gv?;
            r.one_ggn.push(t);
        }
        // Every rank on its shard, no communication: the compute the ranks split.
        world.barrier();
        let (t, g) = seconds(|| shard.at(&theta).and_then(|p| p.gradient()));
        g?;
        r.compute_gradient.push(t);
        let pass = shard.at(&theta)?;
        world.barrier();
        let (t, gv) = seconds(|| pass.ggn_vector_product(&v));
        gv?;
        r.compute_ggn.push(t);
        drop(pass);
        // Every rank on its shard, with the all-reduces.
        world.barrier();
        timed.take();
        let (t, g) = seconds(|| distributed.at(&theta).and_then(|p| p.gradient()));
        g?;
        r.many_gradient.push(t);
        r.reduce_in_gradient.push(timed.take());
        let pass = distributed.at(&theta)?;
        world.barrier();
        timed.take();
        let (t, gv) = seconds(|| pass.ggn_vector_product(&v));
        gv?;
        r.many_ggn.push(t);
        r.reduce_in_ggn.push(timed.take());
        drop(pass);
        // The all-reduces alone.
        world.barrier();
        let (t, result) = seconds(|| world.all_reduce_sum(&mut buffer));
        result?;
        r.reduce_in_place.push(t);
        world.barrier();
        let (t, result) = seconds(|| world.all_reduce_sum_copying(&mut buffer));
        result?;
        r.reduce_copying.push(t);
        world.barrier();
        let (t, result) = seconds(|| world.all_reduce_sum(&mut [0.0]));
        result?;
        r.reduce_flag.push(t);
    }
    let compute_gradient = median(slowest_rank(world, &r.compute_gradient)?);
    let compute_ggn = median(slowest_rank(world, &r.compute_ggn)?);
    if world.rank() == 0 {
        let p = world.size();
        println!(
            "W1 ({n} parameters), batch {}, {p} rank(s), one thread each, all-reduce {}; \
             medians of {} interleaved rounds:",
            o.examples,
            if world.sums_in_place() { "in place" } else { "through a copy" },
            o.repeats
        );
        println!(
            "          1 rank    {p} ranks   speed-up | compute alone (slowest rank)  | \
             all-reduces inside"
        );
        for (name, one, many, compute, reduce) in [
            (
                "gradient",
                &r.one_gradient,
                &r.many_gradient,
                compute_gradient,
                &r.reduce_in_gradient,
            ),
            ("G v     ", &r.one_ggn, &r.many_ggn, compute_ggn, &r.reduce_in_ggn),
        ] {
            let (one, many, reduce) =
                (median(one.clone()), median(many.clone()), median(reduce.clone()));
            println!(
                "{name}  {one:.3} s   {many:.3} s   {:.2}x    | {compute:.3} s: would be {:.2}x | \
                 {:.1} ms ({:.0}% of the {p}-rank time)",
                one / many,
                one / compute,
                reduce * 1e3,
                100.0 * reduce / many
            );
        }
        let (in_place, copying) = (median(r.reduce_in_place), median(r.reduce_copying));
        println!(
            "one all-reduce of n = {n} floats ({:.1} MB) alone: {:.1} ms ({}), {:.1} ms through \
             a copy ({:.2}x); of the 1-float flag: {:.0} µs",
            n as f64 * 8.0 / 1e6,
            in_place * 1e3,
            if world.sums_in_place() { "in place" } else { "also through a copy" },
            copying * 1e3,
            copying / in_place,
            median(r.reduce_flag) * 1e6
        );
        if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
            println!("load average at the end: {}", load.trim());
        }
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
