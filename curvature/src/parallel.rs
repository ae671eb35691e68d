//! Data parallelism over the batch: [`ShardedProblem`] splits the examples into row blocks and
//! runs every product on one thread per block.
//!
//! Every quantity of Section 3 is a sum over examples, `h(θ) = (1/N) Σ_n L(y_n, f(x_n, θ))`, so
//! the gradient and the products `G v`, `F v`, `F̄ v`, `H v` of the whole batch are the sums of
//! those of the blocks weighted by `N_k / N` (each block averages over its own `N_k` rows);
//! `J v` stacks the blocks' rows and `Jᵀ u` adds the blocks' unweighted sums. The Monte-Carlo
//! Fisher's targets are drawn block after block from one generator, which is the whole batch's
//! draw, and block k reads its rows of them. The blocks share nothing but θ and the model, so
//! the threads never synchronise inside a pass, which is why this scales where a multithreaded
//! GEMM on a few hundred rows does not. [`ShardedPass`] implements [`CurvatureProducts`], so
//! its curvature matrices are [`CurvatureOperator`]s like a [`ForwardPass`]'s.
//!
//! ```
//! use autodiff::Matrix;
//! use curvature::loss::SquaredError;
//! use curvature::{Activation, Mlp, Problem, ShardedProblem};
//! let mlp = Mlp::new(&[2, 3, 1], &[Activation::Tanh, Activation::Identity])?;
//! let x = Matrix::from_fn(5, 2, |i, j| (i + 2 * j) as f64 * 0.1);
//! let y = Matrix::from_fn(5, 1, |i, _| i as f64 * 0.2);
//! let problem = Problem::new(&mlp, &SquaredError, &x, &y)?;
//! let theta = vec![0.1; mlp.num_params()];
//! let whole = problem.at(&theta)?.gradient()?;
//! let sharded = ShardedProblem::new(&problem, 2)?.at(&theta)?.gradient()?;
//! for (a, b) in whole.iter().zip(&sharded) {
//!     assert!((a - b).abs() <= 1e-15);
//! }
//! # Ok::<(), curvature::CurvatureError>(())
//! ```

use crate::checks::{check_finite, finite_checks_enabled, with_finite_checks};
use crate::error::{CurvatureError, Result};
use crate::loss::PredictiveDistribution;
use crate::model::Model;
use crate::operator::{layer_blocks, CurvatureKind, CurvatureOperator, LinearOperator};
use crate::problem::{ForwardPass, Problem};
use crate::products::{check_monte_carlo_targets, draw_monte_carlo_targets, CurvatureProducts};
use autodiff::{BufferPool, Matrix};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

/// A [`Problem`] whose batch is split into row blocks, one thread each.
pub struct ShardedProblem<'a, M: Model> {
    model: &'a M,
    loss: &'a dyn PredictiveDistribution,
    /// `(x, y)` row blocks, in order.
    blocks: Vec<(Matrix<f64>, Matrix<f64>)>,
    rows: usize,
    /// One pool per block: every pass of block k allocates from and frees into `pools[k]`, so
    /// a worker thread reuses the buffers of the last pass instead of faulting in fresh pages
    /// (see [`autodiff::buffers`]).
    pools: Vec<Mutex<BufferPool>>,
}

/// Below this many elements a weighted sum of the blocks' vectors runs on one thread (a
/// thread costs tens of microseconds; summing 2¹⁶ numbers costs about that).
const PARALLEL_SUM: usize = 1 << 16;

/// Row blocks of sizes differing by at most one.
fn block_sizes(rows: usize, blocks: usize) -> Vec<usize> {
    (0..blocks).map(|k| rows / blocks + usize::from(k < rows % blocks)).collect()
}

fn rows_of(m: &Matrix<f64>, start: usize, count: usize) -> Matrix<f64> {
    let c = m.cols();
    Matrix::from_vec(count, c, m.data()[start * c..(start + count) * c].to_vec())
        .expect("internal error: row block")
}

/// The value behind `mutex` (a block's pool or pass), even after a panic on another thread.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `f()` with `pool` as this thread's buffer pool.
fn in_pool<R>(pool: &Mutex<BufferPool>, f: impl FnOnce() -> R) -> R {
    lock(pool).scope(f)
}

/// `f` on every item, the first on this thread and the others on scoped threads; a panic in
/// a worker is resumed here. The workers take this thread's [finite checks](crate::checks)
/// setting.
fn parallel_map<I: Send, R: Send>(items: Vec<I>, f: impl Fn(I) -> R + Sync) -> Vec<R> {
    let checks = finite_checks_enabled();
    thread::scope(|s| {
        let mut items = items.into_iter();
        let first = items.next();
        let f = &f;
        let workers: Vec<_> =
            items.map(|item| s.spawn(move || with_finite_checks(checks, || f(item)))).collect();
        let mut out: Vec<R> = first.map(f).into_iter().collect();
        for w in workers {
            out.push(w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}

/// `Σ_k w_k r_k` of the blocks' vectors, written over the first block's buffer. The same
/// operations in the same order for every element (`w_0 r_0`, then `+ w_k r_k` for k = 1, 2,
/// …) whatever the split, so the result does not depend on the number of threads used here.
/// A θ-sized sum would be serial work between two parallel sweeps, so above `PARALLEL_SUM`
/// elements each block's thread sums one range of it.
fn weighted_sum(
    parts: Vec<Result<Vec<f64>>>,
    weights: &[f64],
    pools: &[Mutex<BufferPool>],
) -> Result<Vec<f64>> {
    let mut parts = parts.into_iter().collect::<Result<Vec<_>>>()?.into_iter();
    let Some(mut total) = parts.next() else { return Ok(Vec::new()) };
    let rest: Vec<Vec<f64>> = parts.collect();
    let n = total.len();
    if rest.iter().any(|p| p.len() != n) {
        return Err(CurvatureError::invalid("ShardedPass", "blocks returned different lengths"));
    }
    // Sums one range in cache-sized pieces: each piece stays in L1 across the k passes.
    let sum_range = |start: usize, out: &mut [f64]| {
        const PIECE: usize = 2048;
        for (p, piece) in out.chunks_mut(PIECE).enumerate() {
            let at = start + p * PIECE;
            piece.iter_mut().for_each(|t| *t *= weights[0]);
            for (part, &w) in rest.iter().zip(&weights[1..]) {
                let src = &part[at..at + piece.len()];
                piece.iter_mut().zip(src).for_each(|(t, x)| *t += w * x);
            }
        }
    };
    let threads = 1 + rest.len();
    if n < PARALLEL_SUM || threads == 1 {
        sum_range(0, &mut total);
    } else {
        let chunk = n.div_ceil(threads);
        let ranges: Vec<(usize, &mut [f64])> =
            total.chunks_mut(chunk).enumerate().map(|(c, out)| (c * chunk, out)).collect();
        parallel_map(ranges, |(start, out)| sum_range(start, out));
    }
    // The other blocks' vectors were allocated from their pools: hand them back.
    for (part, pool) in rest.into_iter().zip(pools.iter().skip(1)) {
        lock(pool).recycle(part);
    }
    Ok(total)
}

impl<'a, M: Model + Sync> ShardedProblem<'a, M> {
    /// Splits `problem`'s batch into `threads` row blocks (fewer if the batch has fewer rows),
    /// copying each block once. Errors if `threads` is zero.
    pub fn new(problem: &Problem<'a, M>, threads: usize) -> Result<Self> {
        Self::from_parts(problem.model, problem.loss, problem.x, problem.y, threads)
    }

    /// As [`new`](Self::new), from the parts of a problem: the batch is copied into the
    /// blocks, so it may be borrowed for less long than the model and the loss (a minibatch).
    pub fn from_parts(
        model: &'a M,
        loss: &'a dyn PredictiveDistribution,
        x: &Matrix<f64>,
        y: &Matrix<f64>,
        threads: usize,
    ) -> Result<Self> {
        Problem::new(model, loss, x, y)?;
        if threads == 0 {
            return Err(CurvatureError::invalid(
                "ShardedProblem::new",
                "threads must be at least 1",
            ));
        }
        let rows = x.rows();
        let mut start = 0;
        let blocks: Vec<_> = block_sizes(rows, threads.min(rows))
            .into_iter()
            .map(|count| {
                let block = (rows_of(x, start, count), rows_of(y, start, count));
                start += count;
                block
            })
            .collect();
        let pools = (0..blocks.len()).map(|_| Mutex::new(BufferPool::new())).collect();
        Ok(ShardedProblem { model, loss, blocks, rows, pools })
    }

    /// Uses `pools` as the blocks' buffer pools (from [`into_buffer_pools`](Self::into_buffer_pools)
    /// of an earlier problem), so a new batch reuses the buffers of the last one's passes;
    /// missing pools are made empty and extra ones dropped.
    pub fn with_buffer_pools(mut self, pools: Vec<BufferPool>) -> Self {
        let mut pools = pools.into_iter();
        for slot in &mut self.pools {
            *slot = Mutex::new(pools.next().unwrap_or_default());
        }
        self
    }

    /// The blocks' buffer pools, holding the buffers of the last passes.
    pub fn into_buffer_pools(self) -> Vec<BufferPool> {
        self.pools.into_iter().map(|p| p.into_inner().unwrap_or_else(|e| e.into_inner())).collect()
    }

    /// Bytes the blocks' pools hold between passes (freed with the problem).
    pub fn retained_bytes(&self) -> usize {
        self.pools.iter().map(|p| lock(p).retained_bytes()).sum()
    }

    /// The number of blocks (threads per product).
    pub fn threads(&self) -> usize {
        self.blocks.len()
    }

    /// The number of parameters `n`.
    pub fn dim(&self) -> usize {
        self.model.num_params()
    }

    fn problems(&self) -> Vec<Problem<'_, M>> {
        self.blocks
            .iter()
            .map(|(x, y)| Problem { model: self.model, loss: self.loss, x, y })
            .collect()
    }

    fn weights(&self) -> Vec<f64> {
        self.blocks.iter().map(|(x, _)| x.rows() as f64 / self.rows as f64).collect()
    }

    /// Records the forward pass of every block at θ, in parallel.
    pub fn at(&self, theta: &[f64]) -> Result<ShardedPass<'_, M>> {
        // One copy of θ for all blocks: a copy per block is θ-sized work that does not shrink
        // with the number of threads, and on a worker thread it writes fresh pages each time.
        // Checked once here, not once per block.
        check_finite(theta, 1, || "theta".into())?;
        let shared: Arc<[f64]> = Arc::from(theta);
        let items: Vec<_> = self.problems().into_iter().zip(&self.pools).collect();
        let passes = parallel_map(items, |(p, pool)| {
            in_pool(pool, || p.at_shared(Arc::clone(&shared)).map(Mutex::new))
        });
        let passes: Vec<Mutex<ForwardPass<'_, M>>> = passes.into_iter().collect::<Result<_>>()?;
        let output_cols = passes.first().map_or(0, |p| lock(p).output().cols());
        let mut start = 0;
        let first_rows = self
            .blocks
            .iter()
            .map(|(x, _)| {
                let block = (start, x.rows());
                start += x.rows();
                block
            })
            .collect();
        Ok(ShardedPass {
            passes,
            weights: self.weights(),
            first_rows,
            output_cols,
            model: self.model,
            loss: self.loss,
            pools: &self.pools,
        })
    }

    /// `H v` at θ from θ alone ([`Problem::hessian_vector_product`] on every block).
    pub fn hessian_vector_product(&self, theta: &[f64], v: &[f64]) -> Result<Vec<f64>> {
        let items: Vec<_> = self.problems().into_iter().zip(&self.pools).collect();
        let parts =
            parallel_map(items, |(p, pool)| in_pool(pool, || p.hessian_vector_product(theta, v)));
        weighted_sum(parts, &self.weights(), &self.pools)
    }
}

/// The forward passes of a [`ShardedProblem`]'s blocks at one θ; the products of
/// [`ForwardPass`] for the whole batch.
///
/// Each block's pass sits behind a mutex that only its own worker takes (a pass records on a
/// `RefCell` tape, so it may move between threads but not be shared), which makes the whole
/// sharded pass usable through `&self`.
pub struct ShardedPass<'p, M: Model> {
    passes: Vec<Mutex<ForwardPass<'p, M>>>,
    weights: Vec<f64>,
    /// Each block's first row in the batch and its number of rows (examples).
    first_rows: Vec<(usize, usize)>,
    /// The number of outputs per example `m`.
    output_cols: usize,
    model: &'p M,
    loss: &'p dyn PredictiveDistribution,
    pools: &'p [Mutex<BufferPool>],
}

/// Each block's tape is dropped into its pool, ready for the next pass.
impl<M: Model> Drop for ShardedPass<'_, M> {
    fn drop(&mut self) {
        for (pass, pool) in std::mem::take(&mut self.passes).into_iter().zip(self.pools) {
            in_pool(pool, || drop(pass));
        }
    }
}

impl<M: Model + Sync> ShardedPass<'_, M> {
    fn each<R: Send>(&self, f: impl Fn(&ForwardPass<'_, M>) -> R + Sync) -> Vec<R> {
        self.each_block(|_, p| f(p))
    }

    /// `f(k, block k's pass)` for every block, each on its own thread.
    fn each_block<R: Send>(&self, f: impl Fn(usize, &ForwardPass<'_, M>) -> R + Sync) -> Vec<R> {
        let items: Vec<_> = self.passes.iter().zip(self.pools).enumerate().collect();
        parallel_map(items, |(k, (p, pool))| in_pool(pool, || f(k, &lock(p))))
    }

    /// `Σ_k w_k f(block k)` for `op`. With the finite checks on, `v` (when the product has one)
    /// is checked once here and the sum once at the end, and the blocks run unchecked: a
    /// non-finite value in a block's part makes the sum non-finite at the same index (the
    /// weights are positive), and a sum of finite parts can still overflow.
    fn weighted(
        &self,
        op: &str,
        v: Option<&[f64]>,
        f: impl Fn(&ForwardPass<'_, M>) -> Result<Vec<f64>> + Sync,
    ) -> Result<Vec<f64>> {
        self.weighted_blocks(op, v, |_, p| f(p))
    }

    /// As [`weighted`](Self::weighted), with `f` told the block's index k.
    fn weighted_blocks(
        &self,
        op: &str,
        v: Option<&[f64]>,
        f: impl Fn(usize, &ForwardPass<'_, M>) -> Result<Vec<f64>> + Sync,
    ) -> Result<Vec<f64>> {
        if let Some(v) = v {
            if v.len() != self.dim() {
                return Err(CurvatureError::length(format!("{op} (v)"), self.dim(), v.len()));
            }
            check_finite(v, 1, || format!("v in {op}"))?;
        }
        let parts = self.each_block(|k, p| with_finite_checks(false, || f(k, p)));
        let total = weighted_sum(parts, &self.weights, self.pools)?;
        check_finite(&total, 1, || format!("result of {op}"))?;
        Ok(total)
    }

    fn output_rows(&self) -> Vec<usize> {
        self.each(|p| p.output().rows())
    }

    /// `h(θ)`.
    pub fn loss(&self) -> Result<f64> {
        let parts = self.each(|p| p.loss());
        parts.into_iter().zip(&self.weights).map(|(l, w)| Ok(w * l?)).sum()
    }

    /// `∇h(θ)` (eqn 1).
    pub fn gradient(&self) -> Result<Vec<f64>> {
        self.weighted("gradient", None, |p| p.gradient())
    }

    /// `J v`, the blocks' rows stacked in order.
    pub fn jacobian_vector_product(&self, v: &[f64]) -> Result<Matrix<f64>> {
        let parts = self.each(|p| p.jacobian_vector_product(v));
        let mut data = Vec::new();
        let mut cols = 0;
        for (part, pool) in parts.into_iter().zip(self.pools) {
            let part = part?;
            cols = part.cols();
            data.extend_from_slice(part.data());
            lock(pool).recycle(part.into_vec());
        }
        Ok(Matrix::from_vec(data.len() / cols.max(1), cols, data)?)
    }

    /// `Jᵀ u = Σ_n J_nᵀ u_n` for `u` of the whole output's shape.
    pub fn transpose_jacobian_vector_product(&self, u: &Matrix<f64>) -> Result<Vec<f64>> {
        let block_rows = self.output_rows();
        let rows: usize = block_rows.iter().sum();
        let cols = self.each(|p| p.output().cols())[0];
        if u.shape() != autodiff::Shape::new(rows, cols) {
            return Err(CurvatureError::Dimension {
                op: "transpose_jacobian_vector_product (u)".into(),
                expected: format!("the output's shape {rows}×{cols}"),
                actual: u.shape().to_string(),
            });
        }
        check_finite(u.data(), u.cols(), || "u in transpose_jacobian_vector_product".into())?;
        let mut start = 0;
        let blocks: Vec<Matrix<f64>> = block_rows
            .iter()
            .map(|&count| {
                let block = rows_of(u, start, count);
                start += count;
                block
            })
            .collect();
        let items: Vec<_> = self.passes.iter().zip(&blocks).zip(self.pools).collect();
        let parts = parallel_map(items, |((p, u), pool)| {
            in_pool(pool, || {
                with_finite_checks(false, || {
                    p.lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .transpose_jacobian_vector_product(u)
                })
            })
        });
        // As in `weighted`: u is checked once (naming its index in the whole batch), the blocks
        // run unchecked, and the sum is checked.
        let total = weighted_sum(parts, &vec![1.0; blocks.len()], self.pools)?;
        check_finite(&total, 1, || "result of transpose_jacobian_vector_product".into())?;
        Ok(total)
    }

    /// `G v` (eqn 5).
    pub fn ggn_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        self.weighted("ggn_vector_product", Some(v), |p| p.ggn_vector_product(v))
    }

    /// `F v` (eqn 7).
    pub fn fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        self.weighted("fisher_vector_product", Some(v), |p| p.fisher_vector_product(v))
    }

    /// `F̄ v` (Section 11).
    pub fn empirical_fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        self.weighted("empirical_fisher_vector_product", Some(v), |p| {
            p.empirical_fisher_vector_product(v)
        })
    }

    /// `H v` (eqn 6) over the recorded passes.
    pub fn hessian_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        self.weighted("hessian_vector_product", Some(v), |p| p.hessian_vector_product(v))
    }
}

impl<'p, M: Model + Sync> ShardedPass<'p, M> {
    /// The number of parameters `n`.
    pub fn dim(&self) -> usize {
        self.model.num_params()
    }

    /// The operator for `kind`, owning the passes: every [`CurvatureKind`], its products run
    /// block-parallel. The Monte-Carlo Fisher draws the same targets as a [`ForwardPass`] of
    /// the whole batch with the same seed (example by example in batch order, from one
    /// generator), so it is the same estimate up to the order of the sums.
    pub fn into_operator(self, kind: &CurvatureKind) -> Result<Box<dyn LinearOperator + 'p>>
    where
        M: 'p,
    {
        Ok(Box::new(CurvatureOperator::new(self, kind)?))
    }

    /// The operator for `kind`, borrowing the passes (as [`into_operator`](Self::into_operator)).
    pub fn operator(&self, kind: &CurvatureKind) -> Result<Box<dyn LinearOperator + '_>> {
        Ok(Box::new(CurvatureOperator::new(self, kind)?))
    }
}

/// The whole batch's products, each block's on its own thread, weighted by `N_k / N`.
impl<M: Model + Sync> CurvatureProducts for ShardedPass<'_, M> {
    fn dim(&self) -> usize {
        ShardedPass::dim(self)
    }
    fn loss(&self) -> Result<f64> {
        ShardedPass::loss(self)
    }
    fn gradient(&self) -> Result<Vec<f64>> {
        ShardedPass::gradient(self)
    }
    fn jacobian_vector_product(&self, v: &[f64]) -> Result<Matrix<f64>> {
        ShardedPass::jacobian_vector_product(self, v)
    }
    fn transpose_jacobian_vector_product(&self, u: &Matrix<f64>) -> Result<Vec<f64>> {
        ShardedPass::transpose_jacobian_vector_product(self, u)
    }
    fn ggn_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        ShardedPass::ggn_vector_product(self, v)
    }
    fn fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        ShardedPass::fisher_vector_product(self, v)
    }
    fn empirical_fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        ShardedPass::empirical_fisher_vector_product(self, v)
    }
    fn hessian_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        ShardedPass::hessian_vector_product(self, v)
    }

    /// The blocks' outputs sampled in order from one generator: the targets a [`ForwardPass`]
    /// of the whole batch draws with the same seed.
    fn monte_carlo_targets(&self, samples: usize, seed: u64) -> Result<Vec<Matrix<f64>>> {
        let passes: Vec<_> = self.passes.iter().map(lock).collect();
        let outputs: Vec<&Matrix<f64>> = passes.iter().map(|p| p.output()).collect();
        draw_monte_carlo_targets(self.loss, &outputs, samples, seed)
    }

    /// Block k reads its rows of the whole batch's targets.
    fn monte_carlo_fisher_vector_product(
        &self,
        targets: &[Matrix<f64>],
        v: &[f64],
    ) -> Result<Vec<f64>> {
        let op = "monte_carlo_fisher_vector_product";
        let rows = self.first_rows.last().map_or(0, |&(start, count)| start + count);
        check_monte_carlo_targets(self.loss, rows, self.output_cols, targets)?;
        self.weighted_blocks(op, Some(v), |k, p| {
            p.outer_product_vector_product(targets, self.first_rows[k].0, v)
        })
    }

    fn layer_blocks(&self) -> Vec<std::ops::Range<usize>> {
        layer_blocks(self.model)
    }

    /// Back into the first block's pool, which the next product's sum is written over.
    fn recycle(&self, product: Vec<f64>) {
        if let Some(pool) = self.pools.first() {
            lock(pool).recycle(product);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_rows_evenly() {
        assert_eq!(block_sizes(10, 3), vec![4, 3, 3]);
        assert_eq!(block_sizes(2, 2), vec![1, 1]);
        assert_eq!(block_sizes(7, 1), vec![7]);
    }

    /// Above `PARALLEL_SUM` the sum runs in ranges on several threads: every element must still
    /// be `w₀ a + w₁ b + w₂ c` in that order (exact equality), at the range seams included.
    #[test]
    fn the_parallel_weighted_sum_is_the_serial_one_exactly() {
        for n in [10, PARALLEL_SUM + 7] {
            let pools: Vec<_> = (0..3).map(|_| Mutex::new(BufferPool::new())).collect();
            // Each block's vector comes from its own pool, as a block's gradient does.
            let part = |k: usize| -> Vec<f64> {
                let f = |i, _| ((i * (k + 3)) % 97) as f64 / 7.0 - 6.0;
                in_pool(&pools[k], || Matrix::from_fn(n, 1, f).into_vec())
            };
            let (a, b, c) = (part(0), part(1), part(2));
            let w = [0.3, 0.45, 0.25];
            let expected: Vec<f64> =
                (0..n).map(|i| w[0] * a[i] + w[1] * b[i] + w[2] * c[i]).collect();
            let got = weighted_sum(vec![Ok(a), Ok(b), Ok(c)], &w, &pools).unwrap();
            let kept: usize = pools.iter().map(|p| lock(p).retained_bytes()).sum();
            assert_eq!(kept, if n * 8 >= 1024 { 2 * n * 8 } else { 0 }, "n = {n}");
            assert_eq!(got, expected, "n = {n}");
        }
        let pools: Vec<_> = (0..2).map(|_| Mutex::new(BufferPool::new())).collect();
        let err = weighted_sum(vec![Ok(vec![1.0; 3]), Ok(vec![1.0; 2])], &[0.5, 0.5], &pools);
        assert!(err.is_err());
    }

    /// The blocks run unchecked and the whole batch's `u`, `v` and sums are checked instead:
    /// a bad `u` is named by its index in the whole `u` (a block would name its own row), and a
    /// bad value in one block's part still makes the checked sum fail.
    #[test]
    fn sharded_products_check_the_whole_batch_once() {
        use crate::loss::SquaredError;
        use crate::{Activation, CurvatureError, Mlp};
        let mlp = Mlp::new(&[2, 3, 2], &[Activation::Tanh, Activation::Identity]).unwrap();
        let x = Matrix::from_fn(6, 2, |i, j| 0.3 * i as f64 - 0.2 * j as f64);
        let y = Matrix::from_fn(6, 2, |i, j| (i + j) as f64 / 10.0);
        let theta: Vec<f64> = (0..mlp.num_params()).map(|k| 0.1 * (k as f64).sin()).collect();
        let problem = Problem::new(&mlp, &SquaredError, &x, &y).unwrap();
        let sharded = ShardedProblem::new(&problem, 3).unwrap();
        let pass = sharded.at(&theta).unwrap();
        let named = |err: CurvatureError, name: &str, at: usize| matches!(err, CurvatureError::NonFinite { ref quantity, index, .. } if quantity == name && index == at);
        // Row 5, column 1 of u lies in the third block (its row 1).
        let mut u = Matrix::zeros(6, 2);
        u[(5, 1)] = f64::NAN;
        let err = pass.transpose_jacobian_vector_product(&u).unwrap_err();
        assert!(named(err, "u in transpose_jacobian_vector_product", 11));
        // A v whose values overflow the products (finite v, infinite result): caught on the sum.
        let v = vec![1e308; theta.len()];
        let err = pass.ggn_vector_product(&v).unwrap_err();
        assert!(
            matches!(err, CurvatureError::NonFinite { ref quantity, .. } if quantity == "result of ggn_vector_product"),
            "{err:?}"
        );
        let v = vec![f64::NAN; theta.len()];
        assert!(named(
            pass.fisher_vector_product(&v).unwrap_err(),
            "v in fisher_vector_product",
            0
        ));
        // A wrong length is still named as such, before the values.
        let err = pass.ggn_vector_product(&v[1..]).unwrap_err();
        assert!(!matches!(err, CurvatureError::NonFinite { .. }), "{err:?}");
    }
}
