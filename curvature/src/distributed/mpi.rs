//! [`MpiWorld`]: the [`Communicator`] of all the processes `mpirun` started (rsmpi over the
//! system's MPI, Open MPI on Debian), behind the `mpi` cargo feature.

use super::Communicator;
use crate::error::{CurvatureError, Result};
use ::mpi::collective::SystemOperation;
use ::mpi::environment::Universe;
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::{Communicator as _, CommunicatorCollectives as _};
use std::cell::RefCell;

/// `MPI_COMM_WORLD`, initialized by [`initialize`](Self::initialize) and finalized on drop.
///
/// MPI reports communication failures by ending the job (its default error handler): a rank
/// that dies makes `mpirun` stop the others and exit non-zero, so no rank waits forever.
pub struct MpiWorld {
    // Dropped before the universe, which finalizes MPI.
    world: SimpleCommunicator,
    /// The send buffer, kept between calls: a fresh θ-sized buffer each time would fault in
    /// its pages again (MPI_IN_PLACE is not in rsmpi's safe API).
    send: RefCell<Vec<f64>>,
    _universe: Universe,
}

impl MpiWorld {
    /// Initializes MPI. Errors if it already is (MPI is initialized once per process).
    pub fn initialize() -> Result<Self> {
        let universe = ::mpi::initialize().ok_or_else(|| {
            CurvatureError::invalid("MpiWorld::initialize", "MPI is already initialized")
        })?;
        Ok(MpiWorld {
            world: universe.world(),
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
}

impl Communicator for MpiWorld {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    /// `MPI_Allreduce` with `MPI_SUM` on doubles. Open MPI's algorithms hand every rank the same
    /// bits (pairwise sums are commutative in IEEE arithmetic, and the ring algorithm reduces
    /// each piece once and broadcasts it); the `distributed_check` example checks that θ stays
    /// bitwise identical on every rank.
    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<()> {
        if values.len() > i32::MAX as usize {
            return Err(CurvatureError::invalid(
                "MpiWorld::all_reduce_sum",
                format!("{} values exceed MPI's count limit {}", values.len(), i32::MAX),
            ));
        }
        let mut send = self.send.borrow_mut();
        send.clear();
        send.extend_from_slice(values);
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }
}
