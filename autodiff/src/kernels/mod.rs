//! The performance layer: kernels that know nothing of tapes, ops or derivative rules.
//!
//! - [`buffers`]: buffer recycling across passes ([`BufferPool`](buffers::BufferPool)) and the
//!   allocation helpers every matrix goes through;
//! - [`small_gemm`]: a direct kernel for small real (and fused dual) matrix products;
//! - [`fast_math`]: vectorized `tanh`, sigmoid, `exp` and softplus over slices.
//!
//! A kernel imports only [`matrix`](crate::matrix), [`shape`](crate::shape),
//! [`error`](crate::error) and other kernels (outside its tests); the test
//! `tests/module_graph.rs` checks it.

pub mod buffers;
pub mod fast_math;
pub mod small_gemm;
