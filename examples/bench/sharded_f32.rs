//! The `f32` rows on t threads: the batch in row blocks, one scoped thread per block, each
//! block allocating from its own `BufferPool`, as `curvature::ShardedProblem` runs the `f64`
//! ops. Every quantity of [`tape_ops`] is a sum over examples scaled by the whole batch's
//! `1/N`, so the blocks' vectors add up (in block order) and their `J v` rows stack.

use super::ops::Workload;
use super::tape_ops;
use autodiff::{BufferPool, Matrix};
use curvature::{Mlp, Problem};
use std::hint::black_box;
use std::sync::Mutex;
use std::thread;

/// A batch's row blocks and their buffer pools.
pub struct Blocks {
    x: Vec<Matrix<f64>>,
    y: Vec<Matrix<f64>>,
    u: Vec<Matrix<f32>>,
    pools: Vec<Mutex<BufferPool>>,
}

fn rows_of<T: Copy>(m: &Matrix<T>, start: usize, count: usize) -> Matrix<T> {
    Matrix::from_fn(count, m.cols(), |i, j| m[(start + i, j)])
}

impl Blocks {
    /// `threads` blocks of rows of `x`, `y` and `u`, sizes differing by at most one.
    pub fn new(x: &Matrix<f64>, y: &Matrix<f64>, u: &Matrix<f32>, threads: usize) -> Self {
        let rows = x.rows();
        let blocks = threads.min(rows).max(1);
        let mut start = 0;
        let mut out = Blocks { x: vec![], y: vec![], u: vec![], pools: vec![] };
        for k in 0..blocks {
            let count = rows / blocks + usize::from(k < rows % blocks);
            out.x.push(rows_of(x, start, count));
            out.y.push(rows_of(y, start, count));
            out.u.push(rows_of(u, start, count));
            out.pools.push(Mutex::new(BufferPool::new()));
            start += count;
        }
        out
    }

    /// `f(k)` for every block `k`: block 0 on this thread, the others on scoped threads, each
    /// inside its pool's scope.
    fn each<R: Send>(&self, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
        let run = |k: usize| {
            let mut pool = self.pools[k].lock().unwrap_or_else(|e| e.into_inner());
            pool.scope(|| f(k))
        };
        thread::scope(|s| {
            let workers: Vec<_> = (1..self.x.len()).map(|k| s.spawn(move || run(k))).collect();
            let mut out = vec![run(0)];
            out.extend(workers.into_iter().map(|w| w.join().expect("bench: f32 block")));
            out
        })
    }
}

/// The blocks' vectors summed in block order.
fn sum(parts: Vec<Vec<f32>>) -> Vec<f32> {
    let mut parts = parts.into_iter();
    let mut total = parts.next().unwrap_or_default();
    for part in parts {
        total.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
    }
    total
}

/// The blocks' `J v` rows, stacked.
fn stack(parts: Vec<Matrix<f32>>) -> Matrix<f32> {
    let cols = parts.first().map_or(0, |p| p.cols());
    let data: Vec<f32> = parts.iter().flat_map(|p| p.data().iter().copied()).collect();
    Matrix::from_vec(data.len() / cols.max(1), cols, data).expect("bench: stacked J v")
}

/// The `f32` op on the blocks: its result flattened (the loss as one element).
pub fn run(
    w: &Workload,
    b: &Blocks,
    op: &str,
    theta: &[f64],
    v: &[f64],
    v32: &Matrix<f32>,
) -> Vec<f32> {
    let forward = |k: usize| tape_ops::Forward::<f32>::new(w, theta, &b.x[k]);
    match op {
        "loss" => vec![b.each(|k| tape_ops::loss::<f32>(w, theta, &b.x[k], &b.y[k])).iter().sum()],
        "gradient" => sum(b.each(|k| forward(k).gradient(w, &b.y[k]))),
        "jvp" => stack(b.each(|k| forward(k).jacobian_vector_product(v32))).into_vec(),
        "vjp" => sum(b.each(|k| forward(k).transpose_jacobian_vector_product(&b.u[k]))),
        "hvp" => {
            sum(b.each(|k| tape_ops::hessian_vector_product::<f32>(w, theta, v, &b.x[k], &b.y[k])))
        }
        "ggn" | "ggn_repeated" => sum(b.each(|k| forward(k).ggn(w, v32))),
        "empirical_fisher" => sum(b.each(|k| forward(k).empirical_fisher(w, &b.y[k], v32))),
        _ => Vec::new(),
    }
}

/// The `f32` op on the blocks as a closure to time, or `None` where there is no such op.
/// `ggn_repeated` records each block's forward pass once and reuses it.
pub fn closure<'a>(
    w: &'a Workload,
    b: &'a Blocks,
    op: &str,
    theta: &'a [f64],
    v: &'a [f64],
    v32: &'a Matrix<f32>,
) -> Option<Box<dyn FnMut() + 'a>> {
    match op {
        "ggn_repeated" => {
            let passes: Vec<Mutex<tape_ops::Forward<f32>>> =
                b.each(|k| Mutex::new(tape_ops::Forward::<f32>::new(w, theta, &b.x[k])));
            Some(Box::new(move || {
                let parts = b.each(|k| passes[k].lock().expect("bench: pass").ggn(w, v32));
                drop(black_box(sum(parts)));
            }))
        }
        "loss" | "gradient" | "jvp" | "vjp" | "hvp" | "ggn" | "empirical_fisher" => {
            let op = op.to_string();
            Some(Box::new(move || drop(black_box(run(w, b, &op, theta, v, v32)))))
        }
        _ => None,
    }
}

/// Every sharded `f32` op against `curvature`'s one-thread `f64` result, as
/// [`tape_ops::check`] does for the one-thread ones: the largest relative error.
pub fn check(
    w: &Workload,
    b: &Blocks,
    problem: &Problem<'_, Mlp>,
    (theta, v, u): (&[f64], &[f64], &Matrix<f64>),
    v32: &Matrix<f32>,
) -> f64 {
    let pass = problem.at(theta).expect("bench: f64 pass");
    let want: [(&str, Vec<f64>); 7] = [
        ("loss", vec![pass.loss().expect("bench")]),
        ("gradient", pass.gradient().expect("bench")),
        ("jvp", pass.jacobian_vector_product(v).expect("bench").into_vec()),
        ("vjp", pass.transpose_jacobian_vector_product(u).expect("bench")),
        ("hvp", pass.hessian_vector_product(v).expect("bench")),
        ("ggn", pass.ggn_vector_product(v).expect("bench")),
        ("empirical_fisher", pass.empirical_fisher_vector_product(v).expect("bench")),
    ];
    tape_ops::worst(want.iter().map(|(op, f64_result)| {
        let got = run(w, b, op, theta, v, v32);
        if got.len() != f64_result.len() {
            return f64::NAN;
        }
        tape_ops::relative_error(&got, f64_result)
    }))
}
