//! The distributed products under MPI, checked: run under `mpirun -np K` (K = 1, 2, 3, …),
//! every rank holds its shard of the batch (uneven for K = 2 and 3; one thread inside each rank,
//! then two) and compares every all-reduced quantity against the whole batch computed alone on
//! that rank (relative ≤ 1e-12), checks that every rank holds the same bits (and that the
//! in-place all-reduce gives the copying one's), trains a few Hessian-free and natural-gradient
//! (CG) steps on IDX images sharded by rank and checks θ is identical on every rank and on the
//! one-process trajectory. Exits non-zero on every rank if any check fails.
//!
//! ```text
//! cargo build --release --features mpi --example distributed_check
//! mpirun --allow-run-as-root --oversubscribe -np 3 target/release/examples/distributed_check
//! ```
//!
//! Fault injection: with `NATGRAD_FAULT_RANK=r`, rank r exits with status 3 after the first
//! all-reduce (no MPI_Finalize), or is killed by SIGABRT with `NATGRAD_FAULT_KIND=abort`;
//! `mpirun` must then end every rank and exit non-zero.

use autodiff::random::{random_matrix, random_vector};
use autodiff::Matrix;
use curvature::distributed::mpi::MpiWorld;
use curvature::distributed::{
    differences_from_rank_zero, monte_carlo_seed, shard_range, Communicator, DistributedProblem,
};
use curvature::{loss, Activation, CurvatureKind, LinearOperator, Mlp, Problem};
use natgrad::data::{read_idx_images, read_idx_images_shard};
use optim::cg::CgParams;
use optim::hessian_free::{HessianFree, HessianFreeParams};
use optim::natural_gradient::{DirectionSolve, NaturalGradient, NaturalGradientParams};
use optim::schedule::Schedule;
use optim::{DistributedObjective, NetworkObjective, Objective, Solver};
use rand::{rngs::StdRng, SeedableRng};
use std::error::Error;

type Failures = Vec<String>;

/// Solvers with their names.
type NamedSolvers = Vec<(&'static str, Box<dyn Solver>)>;

/// The examples of the products check: odd so that 2 and 3 ranks get uneven shards.
const BATCH: usize = 23;

fn rows(m: &Matrix<f64>, range: std::ops::Range<usize>) -> Matrix<f64> {
    Matrix::from_fn(range.len(), m.cols(), |i, j| m[(range.start + i, j)])
}

fn compare(failures: &mut Failures, what: &str, got: &[f64], want: &[f64], tolerance: f64) {
    let scale = want.iter().fold(1e-300_f64, |m, x| m.max(x.abs()));
    let err = got.iter().zip(want).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs())) / scale;
    if got.len() != want.len() || err.is_nan() || err > tolerance {
        failures.push(format!("{what}: relative error {err:e} > {tolerance:e}"));
    }
}

fn apply(op: &dyn LinearOperator, v: &[f64]) -> Result<Vec<f64>, Box<dyn Error>> {
    let mut out = vec![0.0; v.len()];
    op.apply(v, &mut out)?;
    Ok(out)
}

/// Every product of one loss on this rank's shard, on `threads` threads inside the rank,
/// against the whole batch.
fn check_products(
    world: &MpiWorld,
    name: &str,
    threads: usize,
    failures: &mut Failures,
) -> Result<usize, Box<dyn Error>> {
    let name = &format!("{name} ({threads} thread(s) per rank)");
    let mut rng = StdRng::seed_from_u64(17);
    let loss = loss::by_name(name.split(' ').next().unwrap_or_default())?;
    let mlp =
        Mlp::new(&[5, 7, 6, 4], &[Activation::Tanh, Activation::Logistic, Activation::Identity])?;
    let x = random_matrix(BATCH, 5, &mut rng);
    let z = random_matrix(BATCH, 4, &mut rng).map(|v| 0.5 * v);
    let y = loss::sample_targets(loss.as_ref(), &z, &mut rng)?;
    let theta = random_vector(mlp.num_params(), &mut rng);
    let v = random_vector(mlp.num_params(), &mut rng);
    let range = shard_range(BATCH, world.rank(), world.size());
    let (x_local, y_local) = (rows(&x, range.clone()), rows(&y, range));

    let whole = Problem::new(&mlp, loss.as_ref(), &x, &y)?;
    let reference = whole.at(&theta)?;
    let distributed =
        DistributedProblem::new(&mlp, loss.as_ref(), &x_local, &y_local, threads, world)?;
    if distributed.global_rows() != BATCH {
        failures.push(format!("{name}: global rows {} ≠ {BATCH}", distributed.global_rows()));
    }
    let pass = distributed.at(&theta)?;
    let (loss_value, gradient) = pass.loss_and_gradient()?;
    let mut results: Vec<(String, Vec<f64>, Vec<f64>)> = vec![
        ("loss".into(), vec![pass.loss()?], vec![reference.loss()?]),
        ("loss (with ∇h)".into(), vec![loss_value], vec![reference.loss()?]),
        ("∇h (with loss)".into(), gradient, reference.gradient()?),
        ("∇h".into(), pass.gradient()?, reference.gradient()?),
        ("G v".into(), pass.ggn_vector_product(&v)?, reference.ggn_vector_product(&v)?),
        ("F v".into(), pass.fisher_vector_product(&v)?, reference.fisher_vector_product(&v)?),
        (
            "F̄ v".into(),
            pass.empirical_fisher_vector_product(&v)?,
            reference.empirical_fisher_vector_product(&v)?,
        ),
        ("H v".into(), pass.hessian_vector_product(&v)?, reference.hessian_vector_product(&v)?),
        (
            "H v from θ".into(),
            distributed.hessian_vector_product(&theta, &v)?,
            whole.hessian_vector_product(&theta, &v)?,
        ),
    ];
    let kinds = [
        CurvatureKind::Hessian,
        CurvatureKind::Ggn,
        CurvatureKind::Fisher,
        CurvatureKind::EmpiricalFisher,
        CurvatureKind::BlockDiagonal(Box::new(CurvatureKind::Fisher)),
    ];
    for kind in &kinds {
        let got = apply(&*distributed.operator(&theta, kind)?, &v)?;
        results.push((format!("operator {kind:?}"), got, apply(&*reference.operator(kind)?, &v)?));
    }
    // The Monte-Carlo Fisher: against the one-process estimator of the same shards drawn from
    // the same per-rank seeds (monte_carlo_seed), weighted N_r / N.
    let kind = |seed| CurvatureKind::MonteCarloFisher { samples: 3, seed };
    let mut want = vec![0.0; v.len()];
    for rank in 0..world.size() {
        let range = shard_range(BATCH, rank, world.size());
        let weight = range.len() as f64 / BATCH as f64;
        let (xs, ys) = (rows(&x, range.clone()), rows(&y, range));
        let shard = Problem::new(&mlp, loss.as_ref(), &xs, &ys)?.at(&theta)?;
        let part = apply(&*shard.operator(&kind(monte_carlo_seed(9, rank)))?, &v)?;
        want.iter_mut().zip(&part).for_each(|(w, p)| *w += weight * p);
    }
    results.push(("MC Fisher".into(), apply(&*distributed.operator(&theta, &kind(9))?, &v)?, want));

    for (what, got, want) in &results {
        compare(failures, &format!("{name}: {what}"), got, want, 1e-12);
        let differing = differences_from_rank_zero(got, world)?;
        if differing != 0 {
            failures.push(format!("{name}: {what}: {differing} entries differ between ranks"));
        }
    }
    Ok(2 * results.len() + 1)
}

/// IDX images (4×4, 23 of them) written by rank 0, read back sharded by rank; then Hessian-free
/// and natural gradient (CG on the Fisher) train a small autoencoder on the shards.
fn check_training(world: &MpiWorld, failures: &mut Failures) -> Result<usize, Box<dyn Error>> {
    // One path for the whole job: rank 0's process id, sent to every rank.
    let mut id = [if world.rank() == 0 { f64::from(std::process::id()) } else { 0.0 }];
    world.all_reduce_sum(&mut id)?;
    let path = std::env::temp_dir().join(format!("natgrad-distributed-check-{}.idx", id[0]));
    if world.rank() == 0 {
        let mut bytes = vec![0, 0, 8, 3];
        for d in [BATCH as u32, 4, 4] {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend((0..BATCH * 16).map(|i| ((i * 37 + i / 16 * 11) % 256) as u8));
        std::fs::write(&path, bytes)?;
    }
    world.barrier();
    let images = read_idx_images(&path)?;
    let shard = read_idx_images_shard(&path, world.rank(), world.size())?;
    world.barrier();
    if world.rank() == 0 {
        std::fs::remove_file(&path)?;
    }
    let mut checks = 1;
    let mine = rows(&images, shard_range(BATCH, world.rank(), world.size()));
    if shard != mine {
        failures.push(format!("IDX shard of rank {} is not its rows of the file", world.rank()));
    }

    let mlp = Mlp::new(
        &[16, 6, 3, 6, 16],
        &[Activation::Logistic, Activation::Identity, Activation::Logistic, Activation::Identity],
    )?;
    let loss = loss::BernoulliLogits;
    let theta0 = random_vector(mlp.num_params(), &mut StdRng::seed_from_u64(3))
        .iter()
        .map(|t| 0.3 * t)
        .collect::<Vec<_>>();
    let solvers = || -> Result<NamedSolvers, Box<dyn Error>> {
        Ok(vec![
            ("Hessian-free", Box::new(HessianFree::new(HessianFreeParams::default())?)),
            (
                "natural gradient (CG)",
                Box::new(NaturalGradient::new(NaturalGradientParams {
                    kind: CurvatureKind::Fisher,
                    schedule: Schedule::constant(1.0)?,
                    lambda: 1.0,
                    adapt_lambda: true,
                    solve: DirectionSolve::ConjugateGradient(CgParams {
                        max_iterations: 20,
                        ..CgParams::default()
                    }),
                })?),
            ),
        ])
    };
    for ((name, mut solver), (_, mut alone)) in solvers()?.into_iter().zip(solvers()?) {
        let mut objective = DistributedObjective::new(&mlp, &loss, &shard, &shard, 1, world)?;
        let mut whole = NetworkObjective::full_batch(&mlp, &loss, &images, &images)?;
        let (mut theta, mut want) = (theta0.clone(), theta0.clone());
        let start = objective.loss(&theta)?;
        for _ in 0..4 {
            solver.step(&mut theta, &mut objective)?;
            alone.step(&mut want, &mut whole)?;
        }
        let end = objective.loss(&theta)?;
        if end.is_nan() || end >= start {
            failures.push(format!("{name}: the loss went from {start} to {end}"));
        }
        let differing = differences_from_rank_zero(&theta, world)?;
        if differing != 0 {
            failures.push(format!("{name}: θ differs between ranks in {differing} entries"));
        }
        compare(failures, &format!("{name}: θ against one process"), &theta, &want, 1e-8);
        if world.rank() == 0 {
            println!("{name}: loss {start:.12} → {end:.12} in 4 steps, θ identical on every rank");
        }
        checks += 3;
    }
    Ok(checks)
}

/// The in-place all-reduce (`MPI_IN_PLACE`, with Open MPI) against the copying one: the same
/// bits on every rank, and the exact sum where it is exact (small integers).
fn check_all_reduce(world: &MpiWorld, failures: &mut Failures) -> Result<usize, Box<dyn Error>> {
    let (rank, size) = (world.rank(), world.size());
    // 100 000 values: large enough for Open MPI's segmented (ring) algorithms.
    let len = 100_000;
    let mut rng = StdRng::seed_from_u64(11 + rank as u64);
    let values = random_vector(len, &mut rng);
    let (mut in_place, mut copied) = (values.clone(), values);
    world.all_reduce_sum(&mut in_place)?;
    world.all_reduce_sum_copying(&mut copied)?;
    let differing = in_place.iter().zip(&copied).filter(|(a, b)| a.to_bits() != b.to_bits());
    let differing = differing.count();
    if differing != 0 {
        failures.push(format!("all-reduce: in place and copying differ in {differing} entries"));
    }
    if differences_from_rank_zero(&in_place, world)? != 0 {
        failures.push("all-reduce: the in-place sums differ between ranks".into());
    }
    let mut integers: Vec<f64> = (0..len).map(|i| ((i % 7) * (rank + 1)) as f64).collect();
    world.all_reduce_sum(&mut integers)?;
    let ranks = (size * (size + 1) / 2) as f64;
    if integers.iter().enumerate().any(|(i, &x)| x != (i % 7) as f64 * ranks) {
        failures.push("all-reduce: the in-place sum of integers is wrong".into());
    }
    if rank == 0 && failures.is_empty() {
        let how = if world.sums_in_place() { "in place" } else { "through a copy" };
        println!("all-reduce: {how}, the same bits as through a copy");
    }
    Ok(3)
}

fn run(world: &MpiWorld) -> Result<(), Box<dyn Error>> {
    let fault = std::env::var("NATGRAD_FAULT_RANK").ok().and_then(|r| r.parse::<usize>().ok());
    let mut failures = Failures::new();
    let mut checks = check_all_reduce(world, &mut failures)?;
    for (k, name) in
        ["softmax_cross_entropy", "bernoulli_logits", "squared_error"].iter().enumerate()
    {
        for threads in [1, 2] {
            checks += check_products(world, name, threads, &mut failures)?;
        }
        if k == 0 && fault == Some(world.rank()) {
            if std::env::var("NATGRAD_FAULT_KIND").as_deref() == Ok("abort") {
                eprintln!("rank {}: aborting mid-run (NATGRAD_FAULT_RANK)", world.rank());
                std::process::abort();
            }
            eprintln!("rank {}: exiting with status 3 mid-run (NATGRAD_FAULT_RANK)", world.rank());
            std::process::exit(3);
        }
    }
    checks += check_training(world, &mut failures)?;
    for f in &failures {
        eprintln!("rank {}: FAILED {f}", world.rank());
    }
    let mut failed = [failures.len() as f64];
    world.all_reduce_sum(&mut failed)?;
    if failed[0] > 0.0 {
        return Err(format!("{} check(s) failed over {} ranks", failed[0], world.size()).into());
    }
    if world.rank() == 0 {
        let (np, sizes) =
            (world.size(), (0..world.size()).map(|r| shard_range(BATCH, r, world.size()).len()));
        let sizes: Vec<usize> = sizes.collect();
        println!("distributed_check: {checks} checks on each of {np} rank(s) (shards {sizes:?}): all passed");
    }
    Ok(())
}

fn main() {
    let world = match MpiWorld::initialize() {
        Ok(world) => world,
        Err(e) => {
            eprintln!("distributed_check: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&world) {
        eprintln!("distributed_check, rank {} of {}: {e}", world.rank(), world.size());
        // Ends every rank, whatever the others are doing: no rank waits for this one.
        world.abort(1);
    }
}
