//! [`Objective`]: what a solver needs from a problem — the loss, the gradient and curvature
//! products on the current (mini)batch — and two implementations: a quadratic, and a network
//! with a loss ([`NetworkObjective`], minibatches drawn from a seeded generator).

use crate::error::{OptimError, Result};
use autodiff::linalg::{dot, matvec};
use autodiff::BufferPool;
use autodiff::Matrix;
use curvature::kfac::{Kfac, KfacKind};
use curvature::loss::PredictiveDistribution;
use curvature::{CurvatureKind, LinearOperator, Model, Problem, ShardedProblem};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};

/// A differentiable objective `h(θ)` with curvature products.
pub trait Objective {
    /// The number of parameters.
    fn dim(&self) -> usize;

    /// `h(θ)` on the current batch.
    fn loss(&mut self, theta: &[f64]) -> Result<f64>;

    /// `h(θ)` and `gradient ← ∇h(θ)` on the current batch.
    fn loss_and_gradient(&mut self, theta: &[f64], gradient: &mut [f64]) -> Result<f64>;

    /// The curvature matrix of `kind` at θ on the current curvature batch.
    fn curvature(
        &mut self,
        theta: &[f64],
        kind: &CurvatureKind,
    ) -> Result<Box<dyn LinearOperator + '_>>;

    /// Moves to the next minibatch (gradient and curvature batches); a no-op for full batches.
    fn next_batch(&mut self) {}

    /// The K-FAC factors of `kind` at θ on the current curvature batch ([`curvature::kfac`]),
    /// for [`crate::kfac::KroneckerFactored`]. The default errors: only a layered network has them.
    fn kfac(&mut self, theta: &[f64], kind: &KfacKind) -> Result<Kfac> {
        let _ = (theta, kind);
        Err(curvature::CurvatureError::invalid(
            "Objective::kfac",
            "this objective has no layered network to take Kronecker factors from",
        )
        .into())
    }
}

/// The relative asymmetry [`QuadraticObjective::new`] accepts: `|A_ij − A_ji| ≤ 1e-12 · max|A|`,
/// room for the round-off of a matrix built as a product (`XXᵀ`) and no more.
pub const SYMMETRY_TOLERANCE: f64 = 1e-12;

/// `h(θ) = ½ θᵀ A θ − bᵀ θ` with symmetric `A`; every curvature kind is `A` (the quadratic is
/// its own model, so Hessian, GGN and Fisher coincide).
#[derive(Clone, Debug)]
pub struct QuadraticObjective {
    a: Matrix<f64>,
    b: Vec<f64>,
}

impl QuadraticObjective {
    /// Errors unless `A` is square, `b` fits, every entry is finite
    /// ([`OptimError::NonFinite`]) and `A` is symmetric: `|A_ij − A_ji| ≤ SYMMETRY_TOLERANCE ·
    /// max|A|` ([`OptimError::NotSymmetric`], naming the worst pair). A non-symmetric `A` would
    /// make `h`'s Hessian `½(A + Aᵀ)` differ from the operator the solvers are given.
    pub fn new(a: Matrix<f64>, b: Vec<f64>) -> Result<Self> {
        let op = "QuadraticObjective::new";
        if a.rows() != a.cols() || b.len() != a.rows() {
            return Err(OptimError::Dimension {
                op: op.into(),
                expected: a.rows(),
                actual: if a.rows() != a.cols() { a.cols() } else { b.len() },
            });
        }
        let n = a.rows();
        let entries = (0..n).flat_map(|i| (0..n).map(move |j| (i, j)));
        if let Some((i, j)) = entries.clone().find(|&(i, j)| !a[(i, j)].is_finite()) {
            let detail = format!("A[{i}][{j}] = {}", a[(i, j)]);
            return Err(OptimError::NonFinite { op: op.into(), detail });
        }
        if let Some(j) = b.iter().position(|v| !v.is_finite()) {
            return Err(OptimError::NonFinite {
                op: op.into(),
                detail: format!("b[{j}] = {}", b[j]),
            });
        }
        let largest = entries.clone().map(|(i, j)| a[(i, j)].abs()).fold(0.0, f64::max);
        let asymmetry = |&(i, j): &(usize, usize)| (a[(i, j)] - a[(j, i)]).abs();
        if let Some((i, j)) = entries.max_by(|p, q| asymmetry(p).total_cmp(&asymmetry(q))) {
            if asymmetry(&(i, j)) > SYMMETRY_TOLERANCE * largest {
                return Err(OptimError::NotSymmetric {
                    op: op.into(),
                    rows: n,
                    i,
                    j,
                    a_ij: a[(i, j)],
                    a_ji: a[(j, i)],
                    tolerance: SYMMETRY_TOLERANCE,
                });
            }
        }
        Ok(QuadraticObjective { a, b })
    }

    /// The matrix `A`.
    pub fn matrix(&self) -> &Matrix<f64> {
        &self.a
    }
}

impl Objective for QuadraticObjective {
    fn dim(&self) -> usize {
        self.b.len()
    }
    fn loss(&mut self, theta: &[f64]) -> Result<f64> {
        let at = matvec(&self.a, theta)?;
        Ok(0.5 * dot(theta, &at) - dot(&self.b, theta))
    }
    fn loss_and_gradient(&mut self, theta: &[f64], gradient: &mut [f64]) -> Result<f64> {
        let at = matvec(&self.a, theta)?;
        for ((g, a), b) in gradient.iter_mut().zip(&at).zip(&self.b) {
            *g = a - b;
        }
        Ok(0.5 * dot(theta, &at) - dot(&self.b, theta))
    }
    fn curvature(
        &mut self,
        _theta: &[f64],
        _kind: &CurvatureKind,
    ) -> Result<Box<dyn LinearOperator + '_>> {
        Ok(Box::new(&self.a))
    }
}

/// The fewest rows a thread's block gets in [`NetworkObjective::with_threads`].
pub const MIN_ROWS_PER_THREAD: usize = 64;

/// Threads for a batch of `rows` rows: at most `threads`, each with at least
/// [`MIN_ROWS_PER_THREAD`] rows.
fn threads_for(threads: usize, rows: usize) -> usize {
    threads.min(rows / MIN_ROWS_PER_THREAD).max(1)
}

/// A network and a loss over a data set, with minibatches: `h(θ)` is the mean loss over the
/// current gradient batch; curvature uses a separate (usually smaller) batch, as HF does.
pub struct NetworkObjective<'a, M: Model> {
    model: &'a M,
    loss: &'a dyn PredictiveDistribution,
    x: &'a Matrix<f64>,
    y: &'a Matrix<f64>,
    batch: Option<(Matrix<f64>, Matrix<f64>)>,
    curvature_batch: Option<(Matrix<f64>, Matrix<f64>)>,
    batch_size: usize,
    curvature_batch_size: usize,
    order: Vec<usize>,
    cursor: usize,
    rng: StdRng,
    threads: usize,
    /// The curvature batch in row blocks (one block on one thread), rebuilt on each curvature
    /// call and kept here because the operator borrows it.
    shards: Option<ShardedProblem<'a, M>>,
    /// The row blocks' buffer pools (the first also serves the one-thread loss and gradient),
    /// handed from one pass to the next so every call reuses the buffers of the last: glibc
    /// hands a freed pass's big buffers back to the kernel, on a worker thread always and on
    /// the main one too for W1's dual buffers, and the next pass faults them in afresh (5–9%
    /// of a one-thread autoencoder `H v`).
    pools: Vec<BufferPool>,
}

impl<'a, M: Model> NetworkObjective<'a, M> {
    /// The full-batch objective over all of `(x, y)`.
    pub fn full_batch(
        model: &'a M,
        loss: &'a dyn PredictiveDistribution,
        x: &'a Matrix<f64>,
        y: &'a Matrix<f64>,
    ) -> Result<Self> {
        Problem::new(model, loss, x, y)?;
        let n = x.rows();
        Ok(NetworkObjective {
            model,
            loss,
            x,
            y,
            batch: None,
            curvature_batch: None,
            batch_size: n,
            curvature_batch_size: n,
            order: (0..n).collect(),
            cursor: 0,
            rng: StdRng::seed_from_u64(0),
            threads: 1,
            shards: None,
            pools: Vec::new(),
        })
    }

    /// Minibatches of `batch_size` examples for the loss and gradient and the first
    /// `curvature_batch_size` of them for curvature, reshuffled each epoch from `seed`.
    pub fn minibatches(
        model: &'a M,
        loss: &'a dyn PredictiveDistribution,
        x: &'a Matrix<f64>,
        y: &'a Matrix<f64>,
        batch_size: usize,
        curvature_batch_size: usize,
        seed: u64,
    ) -> Result<Self> {
        let mut objective = Self::full_batch(model, loss, x, y)?;
        let n = x.rows();
        if batch_size == 0
            || batch_size > n
            || curvature_batch_size == 0
            || curvature_batch_size > batch_size
        {
            return Err(OptimError::invalid(
                "NetworkObjective::minibatches",
                "batch_size",
                batch_size as f64,
                "needs 0 < curvature_batch_size ≤ batch_size ≤ number of examples",
            ));
        }
        objective.batch_size = batch_size;
        objective.curvature_batch_size = curvature_batch_size;
        objective.rng = StdRng::seed_from_u64(seed);
        objective.order.shuffle(&mut objective.rng);
        objective.advance();
        Ok(objective)
    }

    /// Runs the loss, the gradient and the curvature products on up to `threads` threads, one
    /// per row block of the batch ([`ShardedProblem`]); results equal the one-thread ones to
    /// round-off. Each block keeps at least [`MIN_ROWS_PER_THREAD`] rows: with fewer, every
    /// block streams all the weights through a thin matrix product, which is bound by memory
    /// bandwidth and does not get faster on more threads. The Monte-Carlo Fisher stays on one
    /// thread. Errors if `threads` is zero.
    pub fn with_threads(mut self, threads: usize) -> Result<Self> {
        if threads == 0 {
            return Err(OptimError::invalid(
                "NetworkObjective::with_threads",
                "threads",
                0.0,
                "needs at least one thread",
            ));
        }
        self.threads = threads;
        Ok(self)
    }

    /// Moves to the next minibatch (a no-op for the full batch).
    fn advance(&mut self) {
        let n = self.x.rows();
        if self.batch_size == n {
            return;
        }
        if self.cursor + self.batch_size > n {
            self.order.shuffle(&mut self.rng);
            self.cursor = 0;
        }
        let rows = &self.order[self.cursor..self.cursor + self.batch_size];
        self.cursor += self.batch_size;
        self.batch = Some((Self::rows(self.x, rows), Self::rows(self.y, rows)));
        let c = &rows[..self.curvature_batch_size];
        self.curvature_batch = Some((Self::rows(self.x, c), Self::rows(self.y, c)));
    }

    fn rows(source: &Matrix<f64>, rows: &[usize]) -> Matrix<f64> {
        Matrix::from_fn(rows.len(), source.cols(), |i, j| source[(rows[i], j)])
    }

    fn gradient_batch(&self) -> (&Matrix<f64>, &Matrix<f64>) {
        match &self.batch {
            Some((x, y)) => (x, y),
            None => (self.x, self.y),
        }
    }

    fn problem(&self) -> Problem<'_, M> {
        let (x, y) = self.gradient_batch();
        Problem { model: self.model, loss: self.loss, x, y }
    }
}

/// The pool of the first row block (the only one on one thread), created on first use.
fn first_pool(pools: &mut Vec<BufferPool>) -> &mut BufferPool {
    if pools.is_empty() {
        pools.push(BufferPool::new());
    }
    &mut pools[0]
}

impl<M: Model + Sync> Objective for NetworkObjective<'_, M> {
    fn dim(&self) -> usize {
        self.model.num_params()
    }

    fn loss(&mut self, theta: &[f64]) -> Result<f64> {
        let mut pools = std::mem::take(&mut self.pools);
        let problem = self.problem();
        let threads = threads_for(self.threads, problem.x.rows());
        if threads > 1 {
            let sharded = ShardedProblem::new(&problem, threads)?.with_buffer_pools(pools);
            let loss = sharded.at(theta).and_then(|pass| pass.loss());
            self.pools = sharded.into_buffer_pools();
            return Ok(loss?);
        }
        let loss = first_pool(&mut pools).scope(|| problem.at(theta)?.loss());
        self.pools = pools;
        Ok(loss?)
    }

    fn loss_and_gradient(&mut self, theta: &[f64], gradient: &mut [f64]) -> Result<f64> {
        let mut pools = std::mem::take(&mut self.pools);
        let problem = self.problem();
        let threads = threads_for(self.threads, problem.x.rows());
        let loss = if threads > 1 {
            let sharded = ShardedProblem::new(&problem, threads)?.with_buffer_pools(pools);
            let loss = sharded.at(theta).and_then(|pass| {
                gradient.copy_from_slice(&pass.gradient()?);
                pass.loss()
            });
            self.pools = sharded.into_buffer_pools();
            loss
        } else {
            let loss = first_pool(&mut pools).scope(|| {
                let pass = problem.at(theta)?;
                gradient.copy_from_slice(&pass.gradient()?);
                pass.loss()
            });
            self.pools = pools;
            loss
        };
        Ok(loss?)
    }

    fn curvature(
        &mut self,
        theta: &[f64],
        kind: &CurvatureKind,
    ) -> Result<Box<dyn LinearOperator + '_>> {
        let monte_carlo = |k: &CurvatureKind| matches!(k, CurvatureKind::MonteCarloFisher { .. });
        let sharded_kind = match kind {
            CurvatureKind::BlockDiagonal(inner) => !monte_carlo(inner),
            other => !monte_carlo(other),
        };
        let (x, y) = match (&self.curvature_batch, &self.batch) {
            (Some((x, y)), _) | (None, Some((x, y))) => (x, y),
            (None, None) => (self.x, self.y),
        };
        let threads = threads_for(self.threads, x.rows());
        // One block on one thread too: its pool keeps the products' buffers from call to call.
        if sharded_kind {
            if let Some(previous) = self.shards.take() {
                self.pools = previous.into_buffer_pools();
            }
            let shards = ShardedProblem::from_parts(self.model, self.loss, x, y, threads)?
                .with_buffer_pools(std::mem::take(&mut self.pools));
            let shards = self.shards.insert(shards);
            return Ok(shards.at(theta)?.into_operator(kind)?);
        }
        let problem = Problem { model: self.model, loss: self.loss, x, y };
        Ok(problem.at(theta)?.into_operator(kind)?)
    }

    fn kfac(&mut self, theta: &[f64], kind: &KfacKind) -> Result<Kfac> {
        // One thread: the statistics are a few reverse sweeps over the curvature batch.
        let (x, y) = match (&self.curvature_batch, &self.batch) {
            (Some((x, y)), _) | (None, Some((x, y))) => (x, y),
            (None, None) => (self.x, self.y),
        };
        let problem = Problem { model: self.model, loss: self.loss, x, y };
        let mut pools = std::mem::take(&mut self.pools);
        let kfac = first_pool(&mut pools).scope(|| problem.at(theta)?.kfac(kind));
        self.pools = pools;
        Ok(kfac?)
    }

    fn next_batch(&mut self) {
        self.advance();
    }
}
