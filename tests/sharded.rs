//! Data parallelism is exact: on random networks, losses, batch sizes and numbers of threads,
//! every product of a `ShardedProblem` equals the same product on the whole batch to round-off
//! (relative 1e-13; the blocks only change the order of the sums over examples).

use autodiff::random::{random_matrix, random_vector};
use autodiff::Matrix;
use curvature::{loss, Activation, Mlp, Problem, ShardedProblem};
use quickcheck::{QuickCheck, TestResult};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn close(what: &str, got: &[f64], want: &[f64]) -> Result<(), String> {
    let scale = want.iter().fold(1e-300_f64, |m, x| m.max(x.abs()));
    let err = got.iter().zip(want).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
    if got.len() != want.len() || err > 1e-13 * scale {
        return Err(format!(
            "{what}: error {err:e} (scale {scale:e}, lengths {} {})",
            got.len(),
            want.len()
        ));
    }
    Ok(())
}

fn check(seed: u64, threads: usize) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let name = ["squared_error", "softmax_cross_entropy", "bernoulli_logits"][seed as usize % 3];
    let loss = loss::by_name(name).unwrap();
    let sizes = [rng.random_range(1..=4), rng.random_range(1..=5), rng.random_range(2..=3)];
    let mlp = Mlp::new(&sizes, &[Activation::Tanh, Activation::Identity]).unwrap();
    let batch = rng.random_range(1..=9);
    let x = random_matrix(batch, sizes[0], &mut rng);
    let z = random_matrix(batch, sizes[2], &mut rng);
    let z = if name == "softmax_cross_entropy" { z } else { z.map(|v| v * 0.5) };
    let y = loss::sample_targets(loss.as_ref(), &z, &mut rng).unwrap();
    let theta = random_vector(mlp.num_params(), &mut rng);
    let v = random_vector(mlp.num_params(), &mut rng);
    let u = random_matrix(batch, sizes[2], &mut rng);
    let problem = Problem::new(&mlp, loss.as_ref(), &x, &y).unwrap();
    let sharded = ShardedProblem::new(&problem, threads).unwrap();
    if sharded.threads() != threads.min(batch) {
        return Err(format!("{} blocks for {threads} threads and {batch} rows", sharded.threads()));
    }
    let whole = problem.at(&theta).unwrap();
    let parts = sharded.at(&theta).unwrap();
    let e = |r: curvature::CurvatureError| r.to_string();
    close("loss", &[parts.loss().map_err(e)?], &[whole.loss().map_err(e)?])?;
    close("gradient", &parts.gradient().map_err(e)?, &whole.gradient().map_err(e)?)?;
    close(
        "J v",
        parts.jacobian_vector_product(&v).map_err(e)?.data(),
        whole.jacobian_vector_product(&v).map_err(e)?.data(),
    )?;
    close(
        "Jᵀ u",
        &parts.transpose_jacobian_vector_product(&u).map_err(e)?,
        &whole.transpose_jacobian_vector_product(&u).map_err(e)?,
    )?;
    close(
        "G v",
        &parts.ggn_vector_product(&v).map_err(e)?,
        &whole.ggn_vector_product(&v).map_err(e)?,
    )?;
    close(
        "F v",
        &parts.fisher_vector_product(&v).map_err(e)?,
        &whole.fisher_vector_product(&v).map_err(e)?,
    )?;
    close(
        "F̄ v",
        &parts.empirical_fisher_vector_product(&v).map_err(e)?,
        &whole.empirical_fisher_vector_product(&v).map_err(e)?,
    )?;
    let hv = whole.hessian_vector_product(&v).map_err(e)?;
    close("H v (passes)", &parts.hessian_vector_product(&v).map_err(e)?, &hv)?;
    close("H v (fresh)", &sharded.hessian_vector_product(&theta, &v).map_err(e)?, &hv)?;
    // The Monte-Carlo Fisher draws the whole batch's targets in batch order, so the sharded
    // operator is the same estimate as the whole batch's, not a different sample.
    let kind = curvature::CurvatureKind::MonteCarloFisher { samples: 2, seed };
    let apply = |op: Box<dyn curvature::LinearOperator + '_>| {
        let mut out = vec![0.0; v.len()];
        op.apply(&v, &mut out).map(|()| out)
    };
    close(
        "Monte-Carlo Fisher v",
        &apply(parts.operator(&kind).map_err(e)?).map_err(e)?,
        &apply(whole.operator(&kind).map_err(e)?).map_err(e)?,
    )?;
    Ok(())
}

#[test]
fn sharded_products_equal_whole_batch_products() {
    fn prop(seed: u64, threads: u8) -> TestResult {
        match check(seed, 1 + threads as usize % 4) {
            Ok(()) => TestResult::passed(),
            Err(msg) => TestResult::error(format!("seed {seed}, threads {threads}: {msg}")),
        }
    }
    QuickCheck::new().tests(60).quickcheck(prop as fn(u64, u8) -> TestResult);
}

#[test]
fn bad_shapes_and_thread_counts_are_errors() {
    let mlp = Mlp::new(&[2, 3, 2], &[Activation::Tanh, Activation::Identity]).unwrap();
    let x = Matrix::from_fn(4, 2, |i, j| (i * 2 + j) as f64 * 0.1);
    let y = Matrix::from_fn(4, 2, |i, j| (i + j) as f64);
    let sq = loss::SquaredError;
    let problem = Problem::new(&mlp, &sq, &x, &y).unwrap();
    let err = ShardedProblem::new(&problem, 0).err().expect("zero threads");
    assert!(err.to_string().contains("threads must be at least 1"), "{err}");
    let sharded = ShardedProblem::new(&problem, 2).unwrap();
    let theta = vec![0.1; mlp.num_params()];
    let err = sharded.at(&theta).unwrap().transpose_jacobian_vector_product(&Matrix::zeros(3, 2));
    let err = err.unwrap_err().to_string();
    assert!(err.contains("transpose_jacobian_vector_product (u)") && err.contains("4×2"), "{err}");
    assert!(sharded.at(&[1.0]).is_err());
    let kind = curvature::CurvatureKind::MonteCarloFisher { samples: 0, seed: 0 };
    let err = sharded.at(&theta).unwrap().into_operator(&kind).err().expect("zero samples");
    assert!(err.to_string().contains("needs at least one sample"), "{err}");
}

/// Every product of one pass at θ, in a fixed order.
fn all_products(sharded: &ShardedProblem<'_, Mlp>, theta: &[f64], v: &[f64]) -> Vec<Vec<f64>> {
    let pass = sharded.at(theta).unwrap();
    let u = Matrix::from_fn(pass.jacobian_vector_product(v).unwrap().rows(), 5, |i, j| {
        ((i * 5 + j) % 7) as f64 - 3.0
    });
    vec![
        vec![pass.loss().unwrap()],
        pass.gradient().unwrap(),
        pass.jacobian_vector_product(v).unwrap().into_vec(),
        pass.transpose_jacobian_vector_product(&u).unwrap(),
        pass.ggn_vector_product(v).unwrap(),
        pass.fisher_vector_product(v).unwrap(),
        pass.empirical_fisher_vector_product(v).unwrap(),
        pass.hessian_vector_product(v).unwrap(),
        sharded.hessian_vector_product(theta, v).unwrap(),
    ]
}

/// The blocks' buffer pools hand a pass the buffers of earlier passes, filled with their
/// values: every product must still be bit-for-bit what a problem that never recycled gives,
/// also after a pass at another θ and after the pools move to a new problem. Random layer
/// widths, batches (big enough that activations and adjoints are pooled, ≥ 1024 bytes), losses
/// and thread counts.
fn check_recycling(seed: u64, threads: usize) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let name = ["squared_error", "softmax_cross_entropy", "bernoulli_logits"][seed as usize % 3];
    let loss = loss::by_name(name).unwrap();
    let sizes = [rng.random_range(4..=16), rng.random_range(8..=40), 5];
    let mlp = Mlp::new(&sizes, &[Activation::Tanh, Activation::Identity]).unwrap();
    let batch = rng.random_range(40..=120);
    let x = random_matrix(batch, sizes[0], &mut rng);
    let z = random_matrix(batch, sizes[2], &mut rng).map(|v| v * 0.5);
    let y = loss::sample_targets(loss.as_ref(), &z, &mut rng).unwrap();
    let theta = random_vector(mlp.num_params(), &mut rng);
    let other = random_vector(mlp.num_params(), &mut rng);
    let v = random_vector(mlp.num_params(), &mut rng);
    let problem = Problem::new(&mlp, loss.as_ref(), &x, &y).unwrap();
    let fresh = || ShardedProblem::new(&problem, threads).unwrap();
    // A new problem per product set: its pools start empty, so nothing is recycled.
    let want = all_products(&fresh(), &theta, &v);
    let sharded = fresh();
    all_products(&sharded, &other, &v);
    if sharded.retained_bytes() == 0 {
        return Err("the pools kept nothing".into());
    }
    if all_products(&sharded, &theta, &v) != want {
        return Err("recycled buffers changed a product".into());
    }
    let moved = fresh().with_buffer_pools(sharded.into_buffer_pools());
    if moved.retained_bytes() == 0 || all_products(&moved, &theta, &v) != want {
        return Err("pools moved to a new problem changed a product".into());
    }
    Ok(())
}

#[test]
fn recycled_buffers_give_the_same_products_bit_for_bit() {
    fn prop(seed: u64, threads: u8) -> TestResult {
        match check_recycling(seed, 1 + threads as usize % 3) {
            Ok(()) => TestResult::passed(),
            Err(msg) => TestResult::error(format!("seed {seed}, threads {threads}: {msg}")),
        }
    }
    QuickCheck::new().tests(25).quickcheck(prop as fn(u64, u8) -> TestResult);
}
