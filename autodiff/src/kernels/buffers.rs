//! Buffer recycling across passes: [`BufferPool`].
//!
//! Every op allocates its result, and a pass frees them all when its tape is dropped. The
//! allocator usually hands the same memory back on the next pass, but not always: glibc gives
//! each thread other than the main one an arena that returns an emptied heap to the kernel, so
//! a worker thread running the same pass again faults in (and the kernel zeroes) its whole
//! working set every time. On the 2.8-million-parameter autoencoder that is ~90 MB per pass
//! and ~10% of a 2-thread gradient.
//!
//! A [`BufferPool`] keeps those buffers instead. Inside [`BufferPool::scope`], matrices that
//! this crate allocates take a buffer of exactly their size from the pool when it holds one,
//! and matrices dropped give their buffer back; outside any scope nothing changes. The pool
//! is a value owned by its user (`curvature::ShardedProblem` keeps one per row block), so the
//! memory it retains is freed when it is dropped or [`cleared`](BufferPool::clear), and is
//! bounded by [`BufferPool::with_limit`]. Contents are never reused: a recycled buffer is
//! written in full (zeros, or the op's values) before it is read, exactly as a fresh one.
//!
//! ```
//! use autodiff::{BufferPool, Matrix};
//! let mut pool = BufferPool::new();
//! let first = pool.scope(|| Matrix::<f64>::zeros(64, 64).data().as_ptr() as usize);
//! // The 64×64 buffer was dropped inside the scope, so the pool holds it...
//! assert_eq!(pool.retained_bytes(), 64 * 64 * 8);
//! // ...and the next matrix of that size gets it back, zero-filled.
//! let m = pool.scope(|| Matrix::<f64>::zeros(64, 64));
//! assert_eq!(m.data().as_ptr() as usize, first);
//! assert!(m.data().iter().all(|&x| x == 0.0));
//! assert_eq!(pool.retained_bytes(), 0);
//! ```

use std::alloc::Layout;
use std::cell::{Cell, RefCell};
use std::mem::{needs_drop, size_of, ManuallyDrop};
use std::ptr::NonNull;

/// Buffers smaller than this are left to the allocator, whose per-thread caches serve them
/// faster than a pool lookup (glibc's cache holds chunks up to 1032 bytes).
pub const MIN_POOLED_BYTES: usize = 1024;

/// Buffers of one layout (byte size and alignment) that the pool owns.
struct Bucket {
    layout: Layout,
    blocks: Vec<NonNull<u8>>,
    /// Buffers of this layout handed out in a scope (from the pool or, when it had none, from
    /// the allocator) and not yet given back: the pool keeps a returned buffer only in place
    /// of one of these, so buffers that were never lent (a caller's own vectors dropped in a
    /// scope) are freed rather than piling up, and the pool holds at most what was in use.
    lent: usize,
}

/// Freed matrix buffers kept for the next pass; see the [module docs](self).
pub struct BufferPool {
    buckets: Vec<Bucket>,
    retained: usize,
    limit: usize,
    reused: usize,
}

// SAFETY: the pool owns its blocks outright (no other pointer to them exists while they are in
// the pool), so moving it to another thread moves that ownership, as a `Vec<Vec<u8>>` would.
unsafe impl Send for BufferPool {}

impl Default for BufferPool {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("retained_bytes", &self.retained)
            .field("limit", &self.limit)
            .field("reused", &self.reused)
            .finish()
    }
}

thread_local! {
    /// The pool of the innermost [`BufferPool::scope`] running on this thread.
    static CURRENT: RefCell<Option<BufferPool>> = const { RefCell::new(None) };
    /// Whether `CURRENT` holds a pool: a plain flag, so that allocations outside any scope
    /// (the common case) cost one thread-local load, not a lookup of a value with a destructor.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

impl BufferPool {
    /// An empty pool without a limit on what it retains.
    pub fn new() -> Self {
        Self::with_limit(usize::MAX)
    }

    /// An empty pool that retains at most `limit` bytes; a buffer given back beyond that is
    /// freed.
    pub fn with_limit(limit: usize) -> Self {
        BufferPool { buckets: Vec::new(), retained: 0, limit, reused: 0 }
    }

    /// Bytes of the buffers the pool holds now.
    pub fn retained_bytes(&self) -> usize {
        self.retained
    }

    /// How many allocations the pool has served from its buffers since it was made.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// Frees every buffer the pool holds.
    pub fn clear(&mut self) {
        for bucket in &mut self.buckets {
            for block in bucket.blocks.drain(..) {
                // SAFETY: every block was allocated by the global allocator with this layout
                // (it came from a `Vec` with exactly this capacity) and is owned by the pool.
                unsafe { std::alloc::dealloc(block.as_ptr(), bucket.layout) };
            }
        }
        self.retained = 0;
    }

    /// Runs `f` with this pool as the current thread's: matrices allocated by this crate's
    /// ops inside `f` take buffers from it, and matrices dropped inside `f` give theirs back.
    /// Scopes nest (the innermost pool is current); the pool is restored if `f` panics.
    pub fn scope<R>(&mut self, f: impl FnOnce() -> R) -> R {
        struct Restore<'a> {
            pool: &'a mut BufferPool,
            previous: Option<BufferPool>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let previous = self.previous.take();
                let active = previous.is_some();
                if let Ok(mine) = CURRENT.try_with(|c| c.replace(previous)) {
                    *self.pool = mine.unwrap_or_default();
                }
                let _ = ACTIVE.try_with(|a| a.set(active));
            }
        }
        let mine = std::mem::take(self);
        let previous = CURRENT.with(|c| c.replace(Some(mine)));
        ACTIVE.with(|a| a.set(true));
        let _restore = Restore { pool: self, previous };
        f()
    }

    /// Gives `buffer` back to the pool, for vectors that leave a scope as plain `Vec`s (such as
    /// a block's gradient once it has been summed). It is kept only in place of a buffer of
    /// its layout that the pool lent out in a scope, and within the limit; otherwise (and for
    /// small buffers or element types with a destructor) it is freed.
    pub fn recycle<T>(&mut self, buffer: Vec<T>) {
        let Some(layout) = pooled_layout::<T>(buffer.capacity()) else { return };
        if self.retained.saturating_add(layout.size()) > self.limit {
            return;
        }
        let Some(bucket) = self.buckets.iter_mut().find(|b| b.layout == layout && b.lent > 0)
        else {
            return;
        };
        let mut buffer = ManuallyDrop::new(buffer);
        // SAFETY: a `Vec`'s pointer is non-null, and with a nonzero capacity it owns an
        // allocation of `layout` (`pooled_layout` checked the capacity and the element size).
        let block = unsafe { NonNull::new_unchecked(buffer.as_mut_ptr().cast::<u8>()) };
        bucket.blocks.push(block);
        bucket.lent -= 1;
        self.retained += layout.size();
    }

    /// An empty vector with capacity exactly `capacity`, from the pool if it holds a buffer of
    /// that layout; either way the buffer the caller ends up with counts as lent.
    fn take<T>(&mut self, capacity: usize) -> Option<Vec<T>> {
        let layout = pooled_layout::<T>(capacity)?;
        let bucket = match self.buckets.iter().position(|b| b.layout == layout) {
            Some(i) => &mut self.buckets[i],
            None => {
                self.buckets.push(Bucket { layout, blocks: Vec::new(), lent: 0 });
                self.buckets.last_mut().expect("just pushed")
            }
        };
        bucket.lent += 1;
        let block = bucket.blocks.pop()?;
        self.retained -= layout.size();
        self.reused += 1;
        // SAFETY: `block` was allocated by the global allocator with `layout`, which is
        // `Layout::array::<T>(capacity)` (same size and alignment), and the pool owned it; the
        // vector starts empty, so no element is read before it is written.
        Some(unsafe { Vec::from_raw_parts(block.as_ptr().cast::<T>(), 0, capacity) })
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The allocation layout of a `Vec<T>` of this capacity, if such buffers are pooled: plain
/// data (no destructor, nonzero size) of at least [`MIN_POOLED_BYTES`].
fn pooled_layout<T>(capacity: usize) -> Option<Layout> {
    if needs_drop::<T>() || size_of::<T>() == 0 {
        return None;
    }
    let layout = Layout::array::<T>(capacity).ok()?;
    (layout.size() >= MIN_POOLED_BYTES).then_some(layout)
}

/// Whether a scope is running on this thread.
#[inline]
fn active() -> bool {
    ACTIVE.try_with(Cell::get).unwrap_or(false)
}

/// An empty vector with capacity exactly `capacity`: from the current scope's pool when it
/// has one, else from the allocator.
pub(crate) fn with_capacity<T>(capacity: usize) -> Vec<T> {
    if active() && pooled_layout::<T>(capacity).is_some() {
        let pooled = CURRENT
            .try_with(|c| c.borrow_mut().as_mut().and_then(|pool| pool.take(capacity)))
            .ok()
            .flatten();
        if let Some(v) = pooled {
            return v;
        }
    }
    Vec::with_capacity(capacity)
}

/// `len` copies of `value`, in a buffer from [`with_capacity`].
///
/// An element wider than a word (a dual number) is written by copying the filled prefix onto
/// the rest, doubling it (`memcpy`): `resize` stores such an element one field at a time, one
/// scalar store per field, which took 2.4% of a 10-20-20-3 MLP's `H v` in zeroing its `tanh`
/// outputs alone. Scalars keep `resize`, which the compiler turns into `memset` for zeros.
pub(crate) fn filled<T: Copy>(len: usize, value: T) -> Vec<T> {
    let mut v = with_capacity(len);
    if std::mem::size_of::<T>() <= 8 || len < 16 {
        v.resize(len, value);
        return v;
    }
    v.resize(8, value);
    while v.len() < len {
        let n = v.len().min(len - v.len());
        v.extend_from_within(..n);
    }
    v
}

/// The elements of `iter` (exactly `len` of them expected), in a buffer from
/// [`with_capacity`]. Inlined, so that the loop is compiled with the caller's vector width.
#[inline(always)]
pub(crate) fn collect<T>(len: usize, iter: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut v = with_capacity(len);
    v.extend(iter);
    v
}

/// Gives `buffer` to the current scope's pool, or frees it outside a scope.
pub(crate) fn give<T>(buffer: Vec<T>) {
    if !active() || pooled_layout::<T>(buffer.capacity()).is_none() {
        return;
    }
    let mut buffer = Some(buffer);
    let _ = CURRENT.try_with(|c| {
        if let Ok(mut current) = c.try_borrow_mut() {
            if let (Some(pool), Some(b)) = (current.as_mut(), buffer.take()) {
                pool.recycle(b);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dual::Dual;
    use crate::Matrix;

    fn address<T>(m: &Matrix<T>) -> usize
    where
        T: Copy,
    {
        m.data().as_ptr() as usize
    }

    #[test]
    fn outside_a_scope_nothing_is_kept() {
        let mut pool = BufferPool::new();
        drop(Matrix::<f64>::zeros(100, 100));
        assert_eq!(pool.retained_bytes(), 0);
        pool.scope(|| drop(Matrix::<f64>::zeros(100, 100)));
        assert_eq!(pool.retained_bytes(), 80_000);
        // A matrix made in the scope but dropped after it goes back to the allocator.
        let kept = pool.scope(|| Matrix::<f64>::zeros(10, 10));
        drop(kept);
        assert_eq!(pool.retained_bytes(), 80_000);
    }

    #[test]
    fn a_recycled_buffer_is_rewritten_in_full() {
        let mut pool = BufferPool::new();
        let (a, b) = pool.scope(|| {
            let m = Matrix::filled(30, 20, 7.5f64);
            let a = address(&m);
            drop(m);
            let z = Matrix::<f64>::zeros(30, 20);
            assert!(z.data().iter().all(|&x| x == 0.0), "recycled zeros hold old values");
            let f = Matrix::from_fn(20, 30, |i, j| (i * 30 + j) as f64);
            assert_eq!(f.data()[599], 599.0);
            let b = address(&z);
            (a, b)
        });
        assert_eq!(a, b, "the second 30×20 matrix did not reuse the first's buffer");
        assert_eq!(pool.reused(), 1);
    }

    #[test]
    fn a_fill_writes_every_element_at_every_length() {
        // Duals take the doubling copy, scalars `resize`; lengths around each boundary, and a
        // pooled buffer that held other values first.
        let mut pool = BufferPool::new();
        pool.scope(|| {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 640, 703, 1000] {
                give(filled(len, Dual::new(-1.0f64, 9.0)));
                let d = filled(len, Dual::new(0.25f64, -3.0));
                assert_eq!(d.len(), len);
                assert!(d.iter().all(|x| x.re == 0.25 && x.eps == -3.0), "len {len}");
                let s = filled(len, 1.5f64);
                assert!(s.len() == len && s.iter().all(|&x| x == 1.5), "len {len}");
            }
        });
        assert!(pool.reused() > 0);
    }

    #[test]
    fn buffers_are_matched_by_bytes_and_alignment_across_element_types() {
        let mut pool = BufferPool::new();
        pool.scope(|| {
            // 128 f64 and 64 dual numbers are both 1024 bytes aligned to 8.
            let m = Matrix::<f64>::zeros(128, 1);
            let a = address(&m);
            drop(m);
            let d = Matrix::<Dual<f64>>::zeros(64, 1);
            assert_eq!(address(&d), a);
            assert!(d.data().iter().all(|x| x.re == 0.0 && x.eps == 0.0));
            // A different size is a miss.
            drop(d);
            let other = Matrix::<f64>::zeros(129, 1);
            assert_ne!(address(&other), a);
        });
        assert_eq!(pool.reused(), 1);
    }

    #[test]
    fn only_buffers_the_pool_lent_are_kept() {
        let mut pool = BufferPool::new();
        pool.scope(|| {
            // The caller's own vector, dropped in the scope: freed, or a loop that copies its
            // input in every pass would grow the pool without bound.
            drop(Matrix::from_vec(32, 32, vec![1.0f64; 1024]).unwrap());
        });
        pool.recycle(vec![0.0f64; 1024]);
        assert_eq!(pool.retained_bytes(), 0);
        // Lent in one scope, given back through `recycle` after it: kept.
        let v = pool.scope(|| Matrix::<f64>::zeros(32, 32).into_vec());
        pool.recycle(v);
        assert_eq!(pool.retained_bytes(), 8192);
        // Lent once, so a second buffer of that layout is not kept.
        pool.recycle(vec![0.0f64; 1024]);
        assert_eq!(pool.retained_bytes(), 8192);
    }

    #[test]
    fn small_buffers_and_the_limit_are_left_to_the_allocator() {
        let mut pool = BufferPool::with_limit(3000);
        pool.scope(|| {
            drop(Matrix::<f64>::zeros(10, 10)); // 800 bytes: below MIN_POOLED_BYTES
            drop(Matrix::<f64>::zeros(16, 16)); // 2048 bytes: kept
            drop(Matrix::<f64>::zeros(16, 17)); // 2176 more would pass the limit: freed
        });
        assert_eq!(pool.retained_bytes(), 2048);
        pool.clear();
        assert_eq!(pool.retained_bytes(), 0);
    }

    #[test]
    fn scopes_nest_and_survive_a_panic() {
        let (mut outer, mut inner) = (BufferPool::new(), BufferPool::new());
        outer.scope(|| {
            inner.scope(|| drop(Matrix::<f64>::zeros(40, 40)));
            drop(Matrix::<f64>::zeros(50, 50));
        });
        assert_eq!((outer.retained_bytes(), inner.retained_bytes()), (20_000, 12_800));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            inner.scope(|| {
                drop(Matrix::<f64>::zeros(60, 60));
                panic!("inside a scope")
            })
        }));
        assert!(caught.is_err());
        assert_eq!(inner.retained_bytes(), 12_800 + 28_800, "the pool was lost in the panic");
        drop(Matrix::<f64>::zeros(40, 40));
        assert_eq!(inner.retained_bytes(), 41_600, "the scope stayed current after the panic");
    }

    #[test]
    fn a_pool_moves_to_another_thread() {
        let mut pool = BufferPool::new();
        pool.scope(|| drop(Matrix::<f64>::zeros(32, 32)));
        let pool = std::thread::spawn(move || {
            let mut pool = pool;
            let m = pool.scope(|| Matrix::<f64>::zeros(32, 32));
            assert_eq!(pool.reused(), 1);
            drop(m);
            pool
        })
        .join()
        .unwrap();
        assert_eq!(pool.retained_bytes(), 0);
    }
}
