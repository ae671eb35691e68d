//! A `NetworkObjective` on several threads (row blocks of the batch) is the same objective:
//! loss, gradient and every sharded curvature operator equal the one-thread ones to round-off
//! (relative 1e-13), minibatches included; Hessian-free steps stay on the same trajectory.

use autodiff::random::{random_matrix, random_vector};
use autodiff::Matrix;
use curvature::loss::SoftmaxCrossEntropy;
use curvature::{Activation, CurvatureKind, Mlp};
use optim::hessian_free::{HessianFree, HessianFreeParams};
use optim::{NetworkObjective, Objective, Solver};
use rand::{rngs::StdRng, SeedableRng};

fn data() -> (Mlp, Matrix<f64>, Matrix<f64>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(11);
    let mlp = Mlp::new(&[3, 6, 4], &[Activation::Tanh, Activation::Identity]).unwrap();
    // 200 rows: three blocks of ≥ 64 rows for the full batch, two for minibatches of 150 and
    // curvature batches of 130.
    let x = random_matrix(200, 3, &mut rng);
    let y = Matrix::from_fn(200, 4, |i, j| if (i * 7) % 4 == j { 1.0 } else { 0.0 });
    let theta = random_vector(mlp.num_params(), &mut rng);
    (mlp, x, y, theta)
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-300_f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0.0_f64, |m, (p, q)| m.max((p - q).abs())) / scale
}

/// Every curvature kind but the sampled one.
fn exact_kinds() -> Vec<CurvatureKind> {
    vec![
        CurvatureKind::Hessian,
        CurvatureKind::Ggn,
        CurvatureKind::Fisher,
        CurvatureKind::EmpiricalFisher,
        CurvatureKind::BlockDiagonal(Box::new(CurvatureKind::Ggn)),
    ]
}

#[test]
fn threads_give_the_same_objective_and_curvature() {
    let (mlp, x, y, theta) = data();
    let loss = SoftmaxCrossEntropy;
    let v = random_vector(theta.len(), &mut StdRng::seed_from_u64(12));
    for minibatch in [false, true] {
        let make = |threads: usize| {
            let o = if minibatch {
                NetworkObjective::minibatches(&mlp, &loss, &x, &y, 150, 130, 5).unwrap()
            } else {
                NetworkObjective::full_batch(&mlp, &loss, &x, &y).unwrap()
            };
            o.with_threads(threads).unwrap()
        };
        let (mut one, mut three) = (make(1), make(3));
        let (mut g1, mut g3) = (vec![0.0; theta.len()], vec![0.0; theta.len()]);
        let l1 = one.loss_and_gradient(&theta, &mut g1).unwrap();
        let l3 = three.loss_and_gradient(&theta, &mut g3).unwrap();
        assert!(((l1 - l3) / l1).abs() <= 1e-13, "loss {l1} vs {l3}");
        assert!(max_rel(&g3, &g1) <= 1e-13, "gradient off by {:e}", max_rel(&g3, &g1));
        assert!(((three.loss(&theta).unwrap() - l1) / l1).abs() <= 1e-13);
        let monte_carlo = CurvatureKind::MonteCarloFisher { samples: 2, seed: 3 };
        for kind in exact_kinds().into_iter().chain([monte_carlo]) {
            let (mut b1, mut b3) = (vec![0.0; theta.len()], vec![0.0; theta.len()]);
            one.curvature(&theta, &kind).unwrap().apply(&v, &mut b1).unwrap();
            three.curvature(&theta, &kind).unwrap().apply(&v, &mut b3).unwrap();
            let err = max_rel(&b3, &b1);
            assert!(err <= 1e-13, "{kind:?} (minibatch {minibatch}): off by {err:e}");
        }
    }
    let err = NetworkObjective::full_batch(&mlp, &loss, &x, &y).unwrap().with_threads(0);
    assert!(err.err().unwrap().to_string().contains("threads"));
}

#[test]
fn hessian_free_follows_the_same_trajectory_on_two_threads() {
    let (mlp, x, y, theta0) = data();
    let loss = SoftmaxCrossEntropy;
    let run = |threads: usize| {
        let mut objective = NetworkObjective::full_batch(&mlp, &loss, &x, &y)
            .unwrap()
            .with_threads(threads)
            .unwrap();
        let mut hf = HessianFree::new(HessianFreeParams::default()).unwrap();
        let mut theta = theta0.clone();
        for _ in 0..5 {
            hf.step(&mut theta, &mut objective).unwrap();
        }
        (objective.loss(&theta).unwrap(), theta)
    };
    let (l1, t1) = run(1);
    let (l2, t2) = run(2);
    assert!(
        l1 < 0.9
            * NetworkObjective::full_batch(&mlp, &loss, &x, &y).unwrap().loss(&theta0).unwrap()
    );
    assert!(((l1 - l2) / l1).abs() <= 1e-9, "{l1} vs {l2}");
    assert!(max_rel(&t2, &t1) <= 1e-8, "θ off by {:e}", max_rel(&t2, &t1));
}

/// On one thread the objective runs the same passes as a plain `Problem`, inside the buffer
/// pool it keeps between calls (its curvature as one row block): every number equal to the
/// bit, on the first call and on the later ones that reuse the pool's buffers.
#[test]
fn one_thread_objective_is_the_plain_problem_to_the_bit() {
    let (mlp, x, y, theta) = data();
    let loss = SoftmaxCrossEntropy;
    let v = random_vector(theta.len(), &mut StdRng::seed_from_u64(13));
    let problem = curvature::Problem::new(&mlp, &loss, &x, &y).unwrap();
    let pass = problem.at(&theta).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut objective = NetworkObjective::full_batch(&mlp, &loss, &x, &y).unwrap();
    for call in 0..3 {
        let mut g = vec![0.0; theta.len()];
        let l = objective.loss_and_gradient(&theta, &mut g).unwrap();
        assert_eq!(l.to_bits(), pass.loss().unwrap().to_bits(), "loss, call {call}");
        assert_eq!(bits(&g), bits(&pass.gradient().unwrap()), "gradient, call {call}");
        assert_eq!(objective.loss(&theta).unwrap().to_bits(), l.to_bits());
        for kind in exact_kinds() {
            let mut want = vec![0.0; theta.len()];
            pass.operator(&kind).unwrap().apply(&v, &mut want).unwrap();
            let mut got = vec![0.0; theta.len()];
            objective.curvature(&theta, &kind).unwrap().apply(&v, &mut got).unwrap();
            assert_eq!(bits(&got), bits(&want), "{kind:?}, call {call}");
        }
    }
}
