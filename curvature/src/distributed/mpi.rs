//! [`MpiWorld`]: the [`Communicator`] of all the processes `mpirun` started (rsmpi over the
//! system's MPI, Open MPI on Debian), behind the `mpi` cargo feature.

use super::Communicator;
use crate::error::{CurvatureError, Result};
use ::mpi::collective::SystemOperation;
use ::mpi::datatype::Equivalence;
use ::mpi::environment::Universe;
use ::mpi::raw::AsRaw;
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::{Communicator as _, CommunicatorCollectives as _};
use std::cell::RefCell;
use std::ffi::c_void;

/// Open MPI's `MPI_IN_PLACE`: `#define MPI_IN_PLACE ((void *) 1)` in its `mpi.h` (every release
/// from 1.x to 5.x; Debian's 4.1 included). rsmpi exposes no in-place constant, so this is
/// used only when [`MpiWorld::initialize`] finds the library is Open MPI; other MPIs (MPICH's
/// sentinel is `(void *) -1`) take the copying path.
const OPEN_MPI_IN_PLACE: *const c_void = std::ptr::without_provenance(1);

/// `MPI_COMM_WORLD`, initialized by [`initialize`](Self::initialize) and finalized on drop.
///
/// MPI reports communication failures by ending the job (its default error handler): a rank
/// that dies makes `mpirun` stop the others and exit non-zero, so no rank waits forever.
pub struct MpiWorld {
    // Dropped before the universe, which finalizes MPI.
    world: SimpleCommunicator,
    /// Whether [`all_reduce_sum`](Communicator::all_reduce_sum) sums in place
    /// (`MPI_IN_PLACE`, Open MPI) rather than through [`send`](Self::send).
    in_place: bool,
    /// The copying path's send buffer, kept between calls: a fresh θ-sized buffer each time
    /// would fault in its pages again.
    send: RefCell<Vec<f64>>,
    _universe: Universe,
}

impl MpiWorld {
    /// Initializes MPI. Errors if it already is (MPI is initialized once per process).
    pub fn initialize() -> Result<Self> {
        let universe = ::mpi::initialize().ok_or_else(|| {
            CurvatureError::invalid("MpiWorld::initialize", "MPI is already initialized")
        })?;
        let in_place = ::mpi::environment::library_version()
            .is_ok_and(|version| version.starts_with("Open MPI"));
        Ok(MpiWorld {
            world: universe.world(),
            in_place,
            send: RefCell::new(Vec::new()),
            _universe: universe,
        })
    }

    /// Ends every rank of the job with `code` (`MPI_Abort`): for an error one rank cannot
    /// report collectively.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    /// Waits until every rank has called it (`MPI_Barrier`).
    pub fn barrier(&self) {
        self.world.barrier();
    }

    /// Whether [`all_reduce_sum`](Communicator::all_reduce_sum) sums in place (`MPI_IN_PLACE`,
    /// with Open MPI) instead of copying `values` into a send buffer first.
    pub fn sums_in_place(&self) -> bool {
        self.in_place
    }

    /// `values ← Σ_ranks values` through a copy: `values` is copied into a send buffer kept
    /// between calls and `MPI_Allreduce` writes the sum back into `values`. The path
    /// [`all_reduce_sum`](Communicator::all_reduce_sum) takes when the MPI library is not
    /// Open MPI; public so that the two can be compared (they give the same bits).
    pub fn all_reduce_sum_copying(&self, values: &mut [f64]) -> Result<()> {
        check_count("MpiWorld::all_reduce_sum_copying", values.len())?;
        let mut send = self.send.borrow_mut();
        send.clear();
        send.extend_from_slice(values);
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }
}

/// MPI counts are C `int`s.
fn check_count(op: &str, count: usize) -> Result<i32> {
    i32::try_from(count).map_err(|_| {
        CurvatureError::invalid(op, format!("{count} values exceed MPI's count limit {}", i32::MAX))
    })
}

impl Communicator for MpiWorld {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    /// `MPI_Allreduce` with `MPI_SUM` on doubles, in place (`MPI_IN_PLACE` as the send buffer)
    /// with Open MPI, else through [`all_reduce_sum_copying`](MpiWorld::all_reduce_sum_copying).
    /// Open MPI's algorithms hand every rank the same bits (pairwise sums are commutative in
    /// IEEE arithmetic, and the ring algorithm reduces each piece once and broadcasts it); the
    /// `distributed_check` example checks that θ stays bitwise identical on every rank.
    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<()> {
        let op = "MpiWorld::all_reduce_sum";
        let count = check_count(op, values.len())?;
        if !self.in_place {
            return self.all_reduce_sum_copying(values);
        }
        // SAFETY: `in_place` holds only when the library in this process is Open MPI, whose
        // `MPI_IN_PLACE` is `(void *) 1`; with it as the send buffer, MPI reads this rank's
        // contribution from the receive buffer and overwrites it with the sum (MPI 3.1,
        // §5.9.6). The receive buffer is `values`: `count` = `values.len()` valid, initialized
        // doubles that we borrow mutably for the whole (blocking) call, so nothing else reads
        // or writes them meanwhile. The datatype (`MPI_DOUBLE` for f64), the operation
        // (`MPI_SUM`) and the communicator are rsmpi's live handles.
        let status = unsafe {
            ::mpi::ffi::MPI_Allreduce(
                OPEN_MPI_IN_PLACE,
                values.as_mut_ptr().cast::<c_void>(),
                count,
                f64::equivalent_datatype().as_raw(),
                SystemOperation::sum().as_raw(),
                self.world.as_raw(),
            )
        };
        // With MPI's default error handler a failure ends the job before this returns; this
        // is for a handler that returns codes.
        if status != ::mpi::ffi::MPI_SUCCESS as i32 {
            return Err(CurvatureError::invalid(op, format!("MPI_Allreduce returned {status}")));
        }
        Ok(())
    }
}
