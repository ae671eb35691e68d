//! [`Communicator`]: the one collective a data-parallel product needs (a sum over ranks), and
//! two implementations that need no MPI: [`SingleProcess`] and [`LocalGroup`] (K ranks as K
//! threads of one process, for tests and for trying the distributed code on one machine).

use crate::error::{CurvatureError, Result};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// A group of ranks that can add vectors element-wise (`MPI_Allreduce` with `MPI_SUM`).
///
/// Every rank must make the same calls in the same order with vectors of the same length, as
/// with MPI collectives. The result must be bitwise the same on every rank: the solvers run the
/// same CG iterations on every rank only if every rank sees the same products.
pub trait Communicator {
    /// This rank, in `0..size()`.
    fn rank(&self) -> usize;

    /// The number of ranks.
    fn size(&self) -> usize;

    /// `values ← Σ_ranks values`, on every rank. Errors if a rank has left the group or the
    /// ranks passed different lengths.
    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<()>;
}

/// One rank alone: the sum over ranks is the value itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Communicator for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _values: &mut [f64]) -> Result<()> {
        Ok(())
    }
}

/// K ranks as K threads of one process: [`LocalGroup::new`] returns one handle per rank, to
/// be moved to its thread. Sums are taken in rank order, once, and handed to every rank, so
/// every rank sees the same bits.
///
/// A rank whose handle is dropped has left: every all-reduce still waiting, and every later
/// one, fails on the other ranks instead of waiting for it (as `mpirun` ends the job when a
/// rank dies). A rank that waits longer than the timeout (default 10 minutes) fails too.
pub struct LocalGroup {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
    timeout: Duration,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// Each rank's contribution to the pending sum.
    parts: Vec<Option<Vec<f64>>>,
    /// The last completed sum (or why it failed), read by the ranks that waited for it.
    result: std::result::Result<Vec<f64>, String>,
    /// Completed sums so far.
    generation: u64,
    /// Ranks whose handle was dropped.
    departed: Vec<usize>,
}

impl LocalGroup {
    /// One handle per rank, `0..size`. Errors if `size` is zero.
    pub fn new(size: usize) -> Result<Vec<LocalGroup>> {
        if size == 0 {
            return Err(CurvatureError::invalid("LocalGroup::new", "needs at least one rank"));
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                parts: vec![None; size],
                result: Ok(Vec::new()),
                generation: 0,
                departed: Vec::new(),
            }),
            changed: Condvar::new(),
        });
        Ok((0..size)
            .map(|rank| LocalGroup {
                rank,
                size,
                shared: Arc::clone(&shared),
                timeout: Duration::from_secs(600),
            })
            .collect())
    }

    /// How long an all-reduce waits for the other ranks before failing.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Communicator for LocalGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<()> {
        let op = "LocalGroup::all_reduce_sum";
        let mut state = self.lock();
        if !state.departed.is_empty() {
            return Err(CurvatureError::invalid(
                op,
                format!(
                    "rank(s) {:?} left the group; rank {} cannot sum",
                    state.departed, self.rank
                ),
            ));
        }
        let generation = state.generation;
        state.parts[self.rank] = Some(values.to_vec());
        if state.parts.iter().all(Option::is_some) {
            // The last rank to arrive adds the parts in rank order, once for everyone.
            let parts: Vec<Vec<f64>> = state.parts.iter_mut().filter_map(Option::take).collect();
            state.result = if parts.iter().any(|p| p.len() != values.len()) {
                let lengths: Vec<usize> = parts.iter().map(Vec::len).collect();
                Err(format!("the ranks passed different lengths {lengths:?}"))
            } else {
                let mut sum = parts[0].clone();
                for part in &parts[1..] {
                    sum.iter_mut().zip(part).for_each(|(s, p)| *s += p);
                }
                Ok(sum)
            };
            state.generation += 1;
            self.shared.changed.notify_all();
        } else {
            let (waited, timeout) = self
                .shared
                .changed
                .wait_timeout_while(state, self.timeout, |s| {
                    s.generation == generation && s.departed.is_empty()
                })
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state = waited;
            if state.generation == generation {
                let why = if timeout.timed_out() {
                    format!("waited {:?} for the other ranks", self.timeout)
                } else {
                    format!("rank(s) {:?} left the group", state.departed)
                };
                return Err(CurvatureError::invalid(op, format!("rank {}: {why}", self.rank)));
            }
        }
        match &state.result {
            Ok(sum) => {
                values.copy_from_slice(sum);
                Ok(())
            }
            Err(why) => Err(CurvatureError::invalid(op, why.clone())),
        }
    }
}

impl Drop for LocalGroup {
    fn drop(&mut self) {
        let rank = self.rank;
        let mut state = self.lock();
        state.departed.push(rank);
        self.shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn every_rank_gets_the_sum_in_rank_order() {
        let group = LocalGroup::new(3).unwrap();
        let results: Vec<Vec<f64>> = thread::scope(|s| {
            let handles: Vec<_> = group
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        let mut out = Vec::new();
                        for round in 0..50 {
                            // 0.1 + 0.2 + 0.3 in rank order differs from other orders in the
                            // last bit, so a sum taken in another order would show.
                            let x = [0.1, 0.2, 0.3][c.rank()] * (round + 1) as f64;
                            let mut v = [x, c.rank() as f64];
                            c.all_reduce_sum(&mut v).unwrap();
                            out.extend_from_slice(&v);
                        }
                        out
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for round in 0..50 {
            let r = (round + 1) as f64;
            let want = 0.1 * r + 0.2 * r + 0.3 * r;
            for rank in &results {
                assert_eq!(rank[2 * round], want);
                assert_eq!(rank[2 * round + 1], 3.0);
            }
        }
    }

    #[test]
    fn a_rank_that_leaves_makes_the_others_fail_not_wait() {
        let mut group = LocalGroup::new(2).unwrap();
        let leaver = group.pop().unwrap();
        let stayer = group.pop().unwrap();
        let waiter = thread::spawn(move || {
            let mut v = [1.0];
            stayer.all_reduce_sum(&mut v).map(|_| v[0])
        });
        thread::sleep(Duration::from_millis(20));
        drop(leaver);
        let err = waiter.join().unwrap().unwrap_err().to_string();
        assert!(err.contains("rank(s) [1] left the group"), "{err}");
    }

    #[test]
    fn mismatched_lengths_and_timeouts_are_errors() {
        let group = LocalGroup::new(2).unwrap();
        let errors: Vec<String> = thread::scope(|s| {
            let handles: Vec<_> = group
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        let mut v = vec![1.0; 1 + c.rank()];
                        c.all_reduce_sum(&mut v).unwrap_err().to_string()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(errors.iter().all(|e| e.contains("different lengths [1, 2]")), "{errors:?}");
        let mut group = LocalGroup::new(2).unwrap();
        let _silent = group.pop();
        let alone = group.pop().unwrap().with_timeout(Duration::from_millis(10));
        let err = alone.all_reduce_sum(&mut [1.0]).unwrap_err().to_string();
        assert!(err.contains("waited"), "{err}");
        assert!(LocalGroup::new(0).is_err());
        let mut v = [2.5];
        SingleProcess.all_reduce_sum(&mut v).unwrap();
        assert_eq!((v[0], SingleProcess.rank(), SingleProcess.size()), (2.5, 0, 1));
    }
}
