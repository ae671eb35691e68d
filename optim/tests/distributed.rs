//! Solvers run unchanged on a `DistributedObjective`: on 3 in-process ranks with uneven shards
//! (`LocalGroup`, no MPI), Hessian-free and natural gradient by CG keep θ bitwise identical on
//! every rank and follow the one-process full-batch trajectory to round-off. The same check
//! under `mpirun -np 2/3` is the root package's `distributed_check` example.

use autodiff::random::{random_matrix, random_vector};
use autodiff::Matrix;
use curvature::distributed::{differences_from_rank_zero, shard_range, Communicator, LocalGroup};
use curvature::loss::SoftmaxCrossEntropy;
use curvature::{Activation, CurvatureKind, Mlp};
use optim::cg::CgParams;
use optim::hessian_free::{HessianFree, HessianFreeParams};
use optim::natural_gradient::{DirectionSolve, NaturalGradient, NaturalGradientParams};
use optim::schedule::Schedule;
use optim::{DistributedObjective, NetworkObjective, Objective, Solver};
use rand::{rngs::StdRng, SeedableRng};
use std::thread;

fn data() -> (Mlp, Matrix<f64>, Matrix<f64>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(21);
    let mlp = Mlp::new(&[3, 6, 4], &[Activation::Tanh, Activation::Identity]).unwrap();
    let x = random_matrix(100, 3, &mut rng);
    let y = Matrix::from_fn(100, 4, |i, j| if (i * 7) % 4 == j { 1.0 } else { 0.0 });
    let theta = random_vector(mlp.num_params(), &mut rng);
    (mlp, x, y, theta)
}

fn rows(m: &Matrix<f64>, range: std::ops::Range<usize>) -> Matrix<f64> {
    Matrix::from_fn(range.len(), m.cols(), |i, j| m[(range.start + i, j)])
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-300_f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0.0_f64, |m, (p, q)| m.max((p - q).abs())) / scale
}

fn solvers() -> Vec<Box<dyn Solver>> {
    let cg = CgParams { max_iterations: 20, ..CgParams::default() };
    vec![
        Box::new(HessianFree::new(HessianFreeParams::default()).unwrap()),
        Box::new(
            NaturalGradient::new(NaturalGradientParams {
                kind: CurvatureKind::Fisher,
                schedule: Schedule::constant(1.0).unwrap(),
                lambda: 1.0,
                adapt_lambda: true,
                solve: DirectionSolve::ConjugateGradient(cg),
            })
            .unwrap(),
        ),
    ]
}

#[test]
fn solvers_keep_theta_identical_on_every_rank_and_match_one_process() {
    let (mlp, x, y, theta0) = data();
    let loss = SoftmaxCrossEntropy;
    for (index, mut alone) in solvers().into_iter().enumerate() {
        let mut objective = NetworkObjective::full_batch(&mlp, &loss, &x, &y).unwrap();
        let mut want = theta0.clone();
        let start = objective.loss(&want).unwrap();
        for _ in 0..4 {
            alone.step(&mut want, &mut objective).unwrap();
        }
        let end = objective.loss(&want).unwrap();
        assert!(end < 0.9 * start, "solver {index} did not train: {start} → {end}");
        let group = LocalGroup::new(3).unwrap();
        let results: Vec<(Vec<f64>, usize)> = thread::scope(|s| {
            let handles: Vec<_> = group
                .into_iter()
                .map(|c| {
                    let (mlp, loss, x, y, theta0) = (&mlp, &loss, &x, &y, &theta0);
                    s.spawn(move || {
                        let range = shard_range(100, c.rank(), c.size());
                        let (x, y) = (rows(x, range.clone()), rows(y, range));
                        let mut objective =
                            DistributedObjective::new(mlp, loss, &x, &y, 1, &c).unwrap();
                        let mut solver = solvers().swap_remove(index);
                        let mut theta = theta0.clone();
                        for _ in 0..4 {
                            solver.step(&mut theta, &mut objective).unwrap();
                        }
                        let differences = differences_from_rank_zero(&theta, &c).unwrap();
                        (theta, differences)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (rank, (theta, differences)) in results.iter().enumerate() {
            assert_eq!(*differences, 0, "solver {index}: θ differs between ranks");
            assert_eq!(theta, &results[0].0, "solver {index}: rank {rank}");
            let err = max_rel(theta, &want);
            assert!(err <= 1e-8, "solver {index}: θ off the one-process run by {err:e}");
        }
    }
}
