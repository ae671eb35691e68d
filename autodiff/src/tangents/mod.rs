//! The tangent sweep: `J v` over an already-recorded tape, reusing its forward values.
//!
//! The forward rule of every op on tangents is `jvp`.

pub(crate) mod jvp;

use crate::error::{AutodiffError, Result};
use crate::matrix::Matrix;
use crate::scalar::Scalar;
use crate::tape::{Tape, Var};
use jvp::{tangent, TangentStore};
use std::borrow::Cow;

/// The tangents of every node computed by [`Tape::tangents`].
#[derive(Clone, Debug)]
pub struct Tangents<T> {
    tape_id: usize,
    tangents: TangentStore<T>,
}

impl<T: Scalar> Tangents<T> {
    /// The tangent of `var`, or `None` when it is zero (no seed reaches it).
    pub fn of(&self, var: Var<'_, T>) -> Option<&Matrix<T>> {
        if var.tape_id != self.tape_id {
            return None;
        }
        self.tangents.get(var.index).and_then(|t| t.as_ref())
    }

    /// Moves the tangent of `var` out (no copy); `None` as for [`of`](Self::of).
    pub fn take(&mut self, var: Var<'_, T>) -> Option<Matrix<T>> {
        if var.tape_id != self.tape_id {
            return None;
        }
        self.tangents.get_mut(var.index).and_then(|t| t.take())
    }

    /// The tangent of `var`, with zeros of its shape when no seed reaches it.
    pub fn of_or_zeros(&self, var: Var<'_, T>) -> Matrix<T> {
        self.of(var).cloned().unwrap_or_else(|| {
            let s = var.shape();
            Matrix::zeros(s.rows, s.cols)
        })
    }
}

impl<T: Scalar> Tape<T> {
    /// Pushes the tangents `seeds` (usually `v` on θ) forward through every recorded node,
    /// using the stored values: the forward-mode product `J v` of every node at once, at the
    /// cost of the tangent part of a dual forward pass (no primal recomputation).
    ///
    /// Seeds are taken by value: an owned matrix becomes the seeded node's tangent as it is,
    /// a reference (`&Matrix`) is copied. Every node's tangent is kept;
    /// [`tangents_of`](Self::tangents_of) keeps only those asked for.
    pub fn tangents<'v, 's, S: Into<Cow<'s, Matrix<T>>>>(
        &self,
        seeds: impl IntoIterator<Item = (Var<'v, T>, S)>,
    ) -> Result<Tangents<T>> {
        self.sweep(seeds, None)
    }

    /// As [`tangents`](Self::tangents), keeping only the tangents of `keep`: every other
    /// tangent is dropped after the last node that reads it, so the sweep holds about one
    /// layer's tangents at a time instead of all of them (and reuses their buffers).
    pub fn tangents_of<'v, 's, S: Into<Cow<'s, Matrix<T>>>>(
        &self,
        seeds: impl IntoIterator<Item = (Var<'v, T>, S)>,
        keep: &[Var<'_, T>],
    ) -> Result<Tangents<T>> {
        for var in keep {
            self.check_var("tangents_of (keep)", *var)?;
        }
        self.sweep(seeds, Some(keep))
    }

    fn sweep<'v, 's, S: Into<Cow<'s, Matrix<T>>>>(
        &self,
        seeds: impl IntoIterator<Item = (Var<'v, T>, S)>,
        keep: Option<&[Var<'_, T>]>,
    ) -> Result<Tangents<T>> {
        let nodes = self.nodes.borrow();
        let mut store: TangentStore<T> = (0..nodes.len()).map(|_| None).collect();
        let mut seeded = vec![false; nodes.len()];
        for (var, seed) in seeds {
            let seed: Cow<'_, Matrix<T>> = seed.into();
            self.check_var("tangents", var)?;
            let shape = nodes[var.index].shape;
            if seed.shape() != shape {
                return Err(AutodiffError::shape("tangents (seed vs node)", seed.shape(), shape));
            }
            // An owned seed is moved in (θ-sized: no copy of v per product).
            store[var.index] = Some(seed.into_owned());
            seeded[var.index] = true;
        }
        // The last node reading each node, for the nodes whose tangents may be dropped.
        let last_use = keep.map(|keep| {
            let mut last = vec![usize::MAX; nodes.len()];
            for (i, node) in nodes.iter().enumerate() {
                for j in node.op.operands() {
                    last[j] = i;
                }
            }
            for var in keep {
                last[var.index] = usize::MAX;
            }
            last
        });
        for i in 0..nodes.len() {
            if !seeded[i] {
                store[i] = tangent(&nodes, i, &store)?;
            }
            if let Some(last) = &last_use {
                for j in nodes[i].op.operands() {
                    if last[j] == i {
                        store[j] = None;
                    }
                }
            }
        }
        Ok(Tangents { tape_id: self.id, tangents: store })
    }

    /// A handle to node `index`, or `None` if the tape has no such node. Lets a struct that
    /// owns a tape keep plain indices and rebuild its variables on demand.
    pub fn var(&self, index: usize) -> Option<Var<'_, T>> {
        (index < self.len()).then_some(Var { tape: self, tape_id: self.id, index })
    }
}
