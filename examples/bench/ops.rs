//! The workloads and the ops being timed: each op of each dtype as a closure.

use super::{kfac_step, sharded_f32, tape_ops};
use autodiff::{BufferPool, Matrix};
use curvature::{Activation, Mlp, Problem, ShardedProblem};
use std::hint::black_box;

pub struct Workload {
    pub name: &'static str,
    pub mlp: Mlp,
    pub batch: usize,
    pub bernoulli: bool,
}

pub fn workloads() -> Vec<Workload> {
    use Activation::{Identity as I, Logistic as L, Tanh as T};
    vec![
        Workload {
            name: "w1",
            mlp: Mlp::new(
                &[784, 1000, 500, 250, 30, 250, 500, 1000, 784],
                &[L, L, L, I, L, L, L, I],
            )
            .unwrap(),
            batch: 1000,
            bernoulli: true,
        },
        Workload {
            name: "w2",
            mlp: Mlp::new(&[64, 128, 128, 10], &[T, T, I]).unwrap(),
            batch: 256,
            bernoulli: false,
        },
        Workload {
            name: "w3",
            mlp: Mlp::new(&[10, 20, 20, 3], &[T, T, I]).unwrap(),
            batch: 32,
            bernoulli: false,
        },
    ]
}

/// Everything one op's timing needs.
pub struct Inputs<'a> {
    pub w: &'a Workload,
    pub problem: Problem<'a, Mlp>,
    pub theta: &'a [f64],
    pub v: &'a [f64],
    pub u: &'a Matrix<f64>,
    pub x: &'a Matrix<f64>,
    pub y: &'a Matrix<f64>,
    /// `v` and `u` rounded to `f32`, for the `f32` ops.
    pub v32: Matrix<f32>,
    pub u32: Matrix<f32>,
}

/// One op as a closure to time, or `None` where the combination is not benchmarked. With
/// `sharded` (or `blocks`, for `f32`), the ops run on its row blocks, one thread each, each
/// block allocating from its own `BufferPool`; on one thread they run in a `BufferPool` of the
/// closure's, kept from call to call, as `optim`'s `NetworkObjective` runs them: without one,
/// glibc hands the big buffers of a W1 pass back to the kernel when they are freed, and the next
/// call faults them in afresh (~200 MB per W1 `H v`, 5–9% of its time in `perf`).
pub fn op_closure<'a>(
    inp: &'a Inputs<'a>,
    sharded: Option<&'a ShardedProblem<'a, Mlp>>,
    blocks: Option<&'a sharded_f32::Blocks>,
    op: &str,
    dtype: &str,
) -> Option<Box<dyn FnMut() + 'a>> {
    let mut run = unpooled_op_closure(inp, sharded, blocks, op, dtype)?;
    if sharded.is_some() || blocks.is_some() {
        return Some(run);
    }
    let mut pool = BufferPool::new();
    Some(Box::new(move || pool.scope(&mut run)))
}

/// [`op_closure`] without the one-thread pool.
pub fn unpooled_op_closure<'a>(
    inp: &'a Inputs<'a>,
    sharded: Option<&'a ShardedProblem<'a, Mlp>>,
    blocks: Option<&'a sharded_f32::Blocks>,
    op: &str,
    dtype: &str,
) -> Option<Box<dyn FnMut() + 'a>> {
    let (problem, theta, v, u) = (&inp.problem, inp.theta, inp.v, inp.u);
    let (w, x, y) = (inp.w, inp.x, inp.y);
    if op == "kfac" || op == "kfac32" {
        let single = op == "kfac32";
        return (dtype == "f64" && sharded.is_none())
            .then(|| kfac_step::closure(problem, theta, single));
    }
    // The f64 ops of a `Problem` and of a `ShardedProblem`: the same methods on two types.
    macro_rules! f64_ops {
        ($p:expr) => {{
            let p = $p;
            let run: Box<dyn FnMut() + 'a> = match op {
                "loss" => Box::new(move || drop(black_box(p.at(theta).unwrap().loss()))),
                "gradient" => Box::new(move || drop(black_box(p.at(theta).unwrap().gradient()))),
                "jvp" => Box::new(move || {
                    drop(black_box(p.at(theta).unwrap().jacobian_vector_product(v)))
                }),
                "vjp" => Box::new(move || {
                    drop(black_box(p.at(theta).unwrap().transpose_jacobian_vector_product(u)))
                }),
                "hvp" => Box::new(move || drop(black_box(p.hessian_vector_product(theta, v)))),
                "ggn" => {
                    Box::new(move || drop(black_box(p.at(theta).unwrap().ggn_vector_product(v))))
                }
                "fisher" => {
                    Box::new(move || drop(black_box(p.at(theta).unwrap().fisher_vector_product(v))))
                }
                "empirical_fisher" => Box::new(move || {
                    drop(black_box(p.at(theta).unwrap().empirical_fisher_vector_product(v)))
                }),
                "ggn_repeated" => {
                    let pass = p.at(theta).unwrap();
                    Box::new(move || drop(black_box(pass.ggn_vector_product(v))))
                }
                _ => return None,
            };
            run
        }};
    }
    if dtype == "f64" {
        return Some(match sharded {
            Some(sh) => f64_ops!(sh),
            None => f64_ops!(problem),
        });
    }
    if let Some(b) = blocks {
        return (dtype == "f32")
            .then(|| sharded_f32::closure(w, b, op, theta, v, &inp.v32))
            .flatten();
    }
    Some(match (dtype, op) {
        ("f32", "loss") => Box::new(move || {
            black_box(tape_ops::loss::<f32>(w, theta, x, y));
        }),
        ("f32", "gradient") => Box::new(move || {
            drop(black_box(tape_ops::Forward::<f32>::new(w, theta, x).gradient(w, y)))
        }),
        ("f32", "jvp") => Box::new(move || {
            drop(black_box(
                tape_ops::Forward::<f32>::new(w, theta, x).jacobian_vector_product(&inp.v32),
            ))
        }),
        ("f32", "vjp") => Box::new(move || {
            drop(black_box(
                tape_ops::Forward::<f32>::new(w, theta, x)
                    .transpose_jacobian_vector_product(&inp.u32),
            ))
        }),
        ("f32", "hvp") => Box::new(move || {
            drop(black_box(tape_ops::hessian_vector_product::<f32>(w, theta, v, x, y)))
        }),
        ("f32", "ggn") => Box::new(move || {
            drop(black_box(tape_ops::Forward::<f32>::new(w, theta, x).ggn(w, &inp.v32)))
        }),
        ("f32", "empirical_fisher") => Box::new(move || {
            let pass = tape_ops::Forward::<f32>::new(w, theta, x);
            drop(black_box(pass.empirical_fisher(w, y, &inp.v32)))
        }),
        ("f32", "ggn_repeated") => {
            let pass = tape_ops::Forward::<f32>::new(w, theta, x);
            Box::new(move || drop(black_box(pass.ggn(w, &inp.v32))))
        }
        _ => return None,
    })
}
