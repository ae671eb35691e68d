//! `DistributedProblem` over K in-process ranks ([`LocalGroup`]) against the whole batch on one
//! [`Problem`]: the weighting by `N_r / N`, the all-reduce and the collective errors, without
//! MPI. The same checks under `mpirun` are the `distributed_check` example.

use super::*;
use crate::loss;
use crate::model::{Activation, Mlp};
use crate::{Problem, ShardedProblem};
use autodiff::random::{random_matrix, random_vector};
use rand::{rngs::StdRng, SeedableRng};
use std::thread;

/// `f(rank's communicator)` on `size` threads, results in rank order.
fn on_ranks<R: Send>(size: usize, f: impl Fn(&LocalGroup) -> R + Sync) -> Vec<R> {
    let group = LocalGroup::new(size).unwrap();
    thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = group.into_iter().map(|c| s.spawn(move || f(&c))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn rows(m: &Matrix<f64>, range: Range<usize>) -> Matrix<f64> {
    Matrix::from_fn(range.len(), m.cols(), |i, j| m[(range.start + i, j)])
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    let scale = want.iter().fold(1e-300_f64, |m, x| m.max(x.abs()));
    let err = got.iter().zip(want).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    assert!(err <= 1e-12 * scale, "{what}: error {err:e} at scale {scale:e}");
}

struct Setup {
    mlp: Mlp,
    x: Matrix<f64>,
    y: Matrix<f64>,
    theta: Vec<f64>,
    v: Vec<f64>,
}

fn setup(batch: usize) -> Setup {
    let mut rng = StdRng::seed_from_u64(7);
    let mlp = Mlp::new(&[3, 5, 4], &[Activation::Tanh, Activation::Identity]).unwrap();
    let x = random_matrix(batch, 3, &mut rng);
    let z = random_matrix(batch, 4, &mut rng);
    let y = loss::sample_targets(&loss::SoftmaxCrossEntropy, &z, &mut rng).unwrap();
    let theta = random_vector(mlp.num_params(), &mut rng);
    let v = random_vector(mlp.num_params(), &mut rng);
    Setup { mlp, x, y, theta, v }
}

/// Every product on 3 ranks with uneven shards (11 = 4 + 4 + 3 rows; one thread inside each
/// rank, a plain `Problem`, and two, a `ShardedProblem`) equals the whole batch's on one
/// `Problem` to 1e-12, and is bitwise the same on every rank (the solvers' iterates stay
/// identical only then).
#[test]
fn products_on_uneven_shards_equal_the_whole_batch() {
    for threads in [1, 2] {
        products_on_uneven_shards_equal_the_whole_batch_with(threads);
    }
}

fn products_on_uneven_shards_equal_the_whole_batch_with(threads: usize) {
    let s = setup(11);
    let loss = &loss::SoftmaxCrossEntropy;
    let whole = Problem::new(&s.mlp, loss, &s.x, &s.y).unwrap();
    let pass = whole.at(&s.theta).unwrap();
    let apply = |op: Box<dyn LinearOperator + '_>| {
        let mut out = vec![0.0; s.v.len()];
        op.apply(&s.v, &mut out).unwrap();
        out
    };
    let block_ggn = CurvatureKind::BlockDiagonal(Box::new(CurvatureKind::Ggn));
    let want: Vec<(&str, Vec<f64>)> = vec![
        ("loss", vec![pass.loss().unwrap()]),
        ("gradient", pass.gradient().unwrap()),
        ("G v", pass.ggn_vector_product(&s.v).unwrap()),
        ("F v", pass.fisher_vector_product(&s.v).unwrap()),
        ("F̄ v", pass.empirical_fisher_vector_product(&s.v).unwrap()),
        ("H v", pass.hessian_vector_product(&s.v).unwrap()),
        ("H v from θ", whole.hessian_vector_product(&s.theta, &s.v).unwrap()),
        ("operator G", apply(pass.operator(&CurvatureKind::Ggn).unwrap())),
        ("operator block G", apply(pass.operator(&block_ggn).unwrap())),
    ];
    let got = on_ranks(3, |c| {
        let range = shard_range(11, c.rank(), c.size());
        let (x, y) = (rows(&s.x, range.clone()), rows(&s.y, range));
        let problem = DistributedProblem::new(&s.mlp, loss, &x, &y, threads, c).unwrap();
        assert_eq!((problem.local_rows(), problem.global_rows()), ([4, 4, 3][c.rank()], 11));
        let pass = problem.at(&s.theta).unwrap();
        let (l, g) = pass.loss_and_gradient().unwrap();
        assert_eq!(l, pass.loss().unwrap());
        assert_eq!(g, pass.gradient().unwrap());
        let apply = |op: Box<dyn LinearOperator + '_>| {
            let mut out = vec![0.0; s.v.len()];
            op.apply(&s.v, &mut out).unwrap();
            out
        };
        vec![
            vec![l],
            g,
            pass.ggn_vector_product(&s.v).unwrap(),
            pass.fisher_vector_product(&s.v).unwrap(),
            pass.empirical_fisher_vector_product(&s.v).unwrap(),
            pass.hessian_vector_product(&s.v).unwrap(),
            problem.hessian_vector_product(&s.theta, &s.v).unwrap(),
            apply(problem.operator(&s.theta, &CurvatureKind::Ggn).unwrap()),
            apply(problem.operator(&s.theta, &block_ggn).unwrap()),
        ]
    });
    for rank in &got {
        assert_eq!(rank, &got[0], "ranks disagree ({threads} thread(s) per rank)");
        for ((what, want), got) in want.iter().zip(rank) {
            assert_close(&format!("{what} ({threads} thread(s) per rank)"), got, want);
        }
    }
}

/// A rank on one thread runs a plain `Problem` on its shard; the results are the same bits as
/// a one-block `ShardedProblem` of the shard (the earlier path), weighted and summed the same
/// way over 2 ranks.
#[test]
fn one_thread_per_rank_gives_the_bits_of_a_one_block_sharded_problem() {
    let s = setup(9);
    let loss = &loss::SoftmaxCrossEntropy;
    let block_ggn = CurvatureKind::BlockDiagonal(Box::new(CurvatureKind::Ggn));
    let results = on_ranks(2, |c| {
        let range = shard_range(9, c.rank(), c.size());
        let weight = range.len() as f64 / 9.0;
        let (x, y) = (rows(&s.x, range.clone()), rows(&s.y, range));
        let problem = DistributedProblem::new(&s.mlp, loss, &x, &y, 1, c).unwrap();
        let pass = problem.at(&s.theta).unwrap();
        let mut operator_product = vec![0.0; s.v.len()];
        let operator = problem.operator(&s.theta, &block_ggn).unwrap();
        operator.apply(&s.v, &mut operator_product).unwrap();
        let got = vec![
            vec![pass.loss().unwrap()],
            pass.gradient().unwrap(),
            pass.ggn_vector_product(&s.v).unwrap(),
            pass.fisher_vector_product(&s.v).unwrap(),
            pass.empirical_fisher_vector_product(&s.v).unwrap(),
            pass.hessian_vector_product(&s.v).unwrap(),
            problem.hessian_vector_product(&s.theta, &s.v).unwrap(),
            operator_product,
        ];
        // The earlier path: a one-block ShardedProblem, `N_r/N` times its part, summed.
        let sharded = ShardedProblem::from_parts(&s.mlp, loss, &x, &y, 1).unwrap();
        let sharded_pass = sharded.at(&s.theta).unwrap();
        let mut operator_product = vec![0.0; s.v.len()];
        let operator = sharded.at(&s.theta).unwrap().into_operator(&block_ggn).unwrap();
        operator.apply(&s.v, &mut operator_product).unwrap();
        let parts = vec![
            vec![sharded_pass.loss().unwrap()],
            sharded_pass.gradient().unwrap(),
            sharded_pass.ggn_vector_product(&s.v).unwrap(),
            sharded_pass.fisher_vector_product(&s.v).unwrap(),
            sharded_pass.empirical_fisher_vector_product(&s.v).unwrap(),
            sharded_pass.hessian_vector_product(&s.v).unwrap(),
            sharded.hessian_vector_product(&s.theta, &s.v).unwrap(),
            operator_product,
        ];
        let want: Vec<Vec<f64>> = parts
            .into_iter()
            .map(|mut part| {
                part.iter_mut().for_each(|p| *p *= weight);
                c.all_reduce_sum(&mut part).unwrap();
                part
            })
            .collect();
        (got, want)
    });
    for (got, want) in &results {
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(g), bits(w), "quantity {k}");
        }
    }
}

/// A communicator that records the length of every all-reduce it passes on.
struct Recording<'c> {
    inner: &'c LocalGroup,
    lengths: std::cell::RefCell<Vec<usize>>,
}

impl Communicator for Recording<'_> {
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<()> {
        self.lengths.borrow_mut().push(values.len());
        self.inner.all_reduce_sum(values)
    }
}

/// What each call sends: the flag (1 float; with the loss, 2) first, then the `n` floats of
/// the product, and nothing of `n` floats when a rank's part failed.
#[test]
fn the_flag_goes_first_and_a_failure_sends_no_vector() {
    let s = setup(8);
    let loss = &loss::SoftmaxCrossEntropy;
    let n = s.mlp.num_params();
    let lengths = on_ranks(2, |c| {
        let recording = Recording { inner: c, lengths: Default::default() };
        let range = shard_range(8, c.rank(), c.size());
        let (x, y) = (rows(&s.x, range.clone()), rows(&s.y, range));
        let problem = DistributedProblem::new(&s.mlp, loss, &x, &y, 1, &recording).unwrap();
        let taken = || std::mem::take(&mut *recording.lengths.borrow_mut());
        taken();
        let pass = problem.at(&s.theta).unwrap();
        let mut out = vec![0.0; n];
        pass.loss().unwrap();
        let loss_lengths = taken();
        pass.loss_and_gradient().unwrap();
        let both_lengths = taken();
        pass.ggn_vector_product(&s.v).unwrap();
        let product_lengths = taken();
        let operator = problem.operator(&s.theta, &CurvatureKind::Ggn).unwrap();
        operator.apply(&s.v, &mut out).unwrap();
        let operator_lengths = taken();
        // A NaN in rank 1's θ: its pass fails, and every rank stops after the flag.
        let mut theta = s.theta.clone();
        if c.rank() == 1 {
            theta[0] = f64::NAN;
        }
        let failing = problem.at(&theta).unwrap();
        assert!(failing.gradient().is_err());
        assert!(failing.loss_and_gradient().is_err());
        let failing_operator = problem.operator(&theta, &CurvatureKind::Ggn).unwrap();
        assert!(failing_operator.apply(&s.v, &mut out).is_err());
        let failure_lengths = taken();
        [loss_lengths, both_lengths, product_lengths, operator_lengths, failure_lengths]
    });
    for rank in &lengths {
        assert_eq!(rank[0], vec![2], "loss");
        assert_eq!(rank[1], vec![2, n], "loss and gradient");
        assert_eq!(rank[2], vec![1, n], "G v");
        assert_eq!(rank[3], vec![1, n], "operator");
        assert_eq!(rank[4], vec![1, 2, 1], "failures: the flag alone");
    }
}

/// The Monte-Carlo Fisher on 3 ranks is the one-process Monte-Carlo Fisher of the same shards
/// drawn from the same per-rank seeds, weighted by `N_r / N`; on one rank it is the unsharded
/// estimator itself (rank 0 keeps the seed).
#[test]
fn monte_carlo_fisher_uses_the_documented_per_rank_seeds() {
    let s = setup(10);
    let loss = &loss::SoftmaxCrossEntropy;
    let kind = |seed| CurvatureKind::MonteCarloFisher { samples: 2, seed };
    let mut want = vec![0.0; s.v.len()];
    for rank in 0..3 {
        let range = shard_range(10, rank, 3);
        let weight = range.len() as f64 / 10.0;
        let (x, y) = (rows(&s.x, range.clone()), rows(&s.y, range));
        let shard = Problem::new(&s.mlp, loss, &x, &y).unwrap().at(&s.theta).unwrap();
        let mut part = vec![0.0; s.v.len()];
        let op = shard.operator(&kind(monte_carlo_seed(5, rank))).unwrap();
        op.apply(&s.v, &mut part).unwrap();
        want.iter_mut().zip(&part).for_each(|(w, p)| *w += weight * p);
    }
    let got = on_ranks(3, |c| {
        let range = shard_range(10, c.rank(), c.size());
        let (x, y) = (rows(&s.x, range.clone()), rows(&s.y, range));
        let problem = DistributedProblem::new(&s.mlp, loss, &x, &y, 1, c).unwrap();
        let mut out = vec![0.0; s.v.len()];
        problem.operator(&s.theta, &kind(5)).unwrap().apply(&s.v, &mut out).unwrap();
        out
    });
    for rank in &got {
        assert_close("MC Fisher (3 ranks)", rank, &want);
    }
    // Distinct seeds per rank: the same seed everywhere would give another matrix.
    assert_ne!(monte_carlo_seed(5, 1), monte_carlo_seed(5, 2));
    assert_eq!(monte_carlo_seed(5, 0), 5);
    let whole = Problem::new(&s.mlp, loss, &s.x, &s.y).unwrap().at(&s.theta).unwrap();
    let mut alone = vec![0.0; s.v.len()];
    whole.operator(&kind(5)).unwrap().apply(&s.v, &mut alone).unwrap();
    let problem = DistributedProblem::new(&s.mlp, loss, &s.x, &s.y, 1, &SingleProcess).unwrap();
    let mut one = vec![0.0; s.v.len()];
    problem.operator(&s.theta, &kind(5)).unwrap().apply(&s.v, &mut one).unwrap();
    assert_close("MC Fisher (1 rank)", &one, &alone);
}

/// A rank whose part fails (a NaN in rank 1's θ, which its finite check refuses) makes every
/// rank return an error from the same call, naming the failing rank there, instead of the others
/// waiting for it.
#[test]
fn a_failing_rank_fails_every_rank() {
    let s = setup(9);
    let loss = &loss::SoftmaxCrossEntropy;
    let errors = on_ranks(3, |c| {
        let range = shard_range(9, c.rank(), c.size());
        let (x, y) = (rows(&s.x, range.clone()), rows(&s.y, range));
        let mut theta = s.theta.clone();
        if c.rank() == 1 {
            theta[2] = f64::NAN;
        }
        let problem = DistributedProblem::new(&s.mlp, loss, &x, &y, 1, c).unwrap();
        let pass = problem.at(&theta).unwrap();
        let gradient = pass.gradient().unwrap_err().to_string();
        let operator = problem.operator(&theta, &CurvatureKind::Ggn).unwrap();
        let mut out = vec![0.0; s.v.len()];
        let product = operator.apply(&s.v, &mut out).unwrap_err().to_string();
        (gradient, product)
    });
    for (rank, (gradient, product)) in errors.iter().enumerate() {
        for e in [gradient, product] {
            if rank == 1 {
                assert!(e.contains("rank 1 of 3 failed") && e.contains("theta"), "{e}");
            } else {
                assert!(e.contains("1 of 3 ranks failed"), "{e}");
            }
        }
    }
    // Targets of the wrong width on rank 1 are refused on every rank at construction.
    let errors = on_ranks(3, |c| {
        let range = shard_range(9, c.rank(), c.size());
        let (x, mut y) = (rows(&s.x, range.clone()), rows(&s.y, range));
        if c.rank() == 1 {
            y = Matrix::zeros(y.rows(), y.cols() + 1);
        }
        DistributedProblem::new(&s.mlp, loss, &x, &y, 1, c).err().map(|e| e.to_string())
    });
    assert!(errors[0].as_deref().is_some_and(|e| e.contains("1 of 3 ranks failed")), "{errors:?}");
    assert!(errors[1].as_deref().is_some_and(|e| e.contains("rank 1 of 3 failed")), "{errors:?}");
    // An empty shard is refused on every rank at construction.
    let errors = on_ranks(2, |c| {
        let range = if c.rank() == 0 { 0..9 } else { 9..9 };
        let (x, y) = (rows(&s.x, range.clone()), rows(&s.y, range));
        DistributedProblem::new(&s.mlp, loss, &x, &y, 1, c).err().map(|e| e.to_string())
    });
    assert!(errors[0].as_deref().is_some_and(|e| e.contains("1 of 2 ranks failed")), "{errors:?}");
    assert!(errors[1].as_deref().is_some_and(|e| e.contains("rank 1 of 2 failed")), "{errors:?}");
}

#[test]
fn shards_are_contiguous_uneven_and_cover_the_rows() {
    let ranges: Vec<_> = (0..3).map(|r| shard_range(10, r, 3)).collect();
    assert_eq!(ranges, vec![0..4, 4..7, 7..10]);
    assert_eq!(shard_range(5, 0, 1), 0..5);
    assert_eq!(shard_range(2, 2, 3), 2..2);
}

/// θ checks: identical values on every rank give 0 everywhere; one changed entry on one rank
/// (even +0.0 against −0.0) is seen by every rank.
#[test]
fn differences_from_rank_zero_sees_one_changed_bit_anywhere() {
    let counts = on_ranks(3, |c| {
        let same = [1.5, 0.0, -2.0];
        let mut changed = same;
        if c.rank() == 2 {
            changed[1] = -0.0;
        }
        (
            differences_from_rank_zero(&same, c).unwrap(),
            differences_from_rank_zero(&changed, c).unwrap(),
        )
    });
    assert_eq!(counts, vec![(0, 1); 3]);
}
