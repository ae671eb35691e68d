//! The reverse sweep: seeds (cotangents) on any nodes in, adjoints out ([`Gradients`]).

use crate::error::{AutodiffError, Result};
use crate::matrix::Matrix;
use crate::op::vjp::{propagate, Adjoints, Sink, Spare, MAX_SPARE, MAX_SPARE_BYTES};
use crate::op::Op;
use crate::scalar::Scalar;
use crate::tape::{Tape, Var};
use std::borrow::{Borrow, Cow};

/// Which adjoints a sweep keeps in its [`Gradients`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Retain {
    /// Only those of [`Tape::input`] leaves (the cheapest in memory).
    #[default]
    Inputs,
    /// Every node's adjoint, e.g. `∇_{s_i} L` on the pre-activations, as the Section 8.1.2
    /// products need.
    All,
}

/// The adjoints computed by one reverse sweep, indexed by the variables of its tape.
#[derive(Clone, Debug)]
pub struct Gradients<T> {
    tape_id: usize,
    adjoints: Adjoints<T>,
}

impl<T: Scalar> Gradients<T> {
    /// The adjoint of `var`, or `None` if no seed reaches it (or it was not retained, or `var`
    /// is from another tape).
    pub fn wrt(&self, var: Var<'_, T>) -> Option<&Matrix<T>> {
        if var.tape_id != self.tape_id {
            return None;
        }
        self.adjoints.get(var.index).and_then(|a| a.as_ref())
    }

    /// Moves the adjoint of `var` out (no copy); `None` as for [`wrt`](Self::wrt).
    pub fn take(&mut self, var: Var<'_, T>) -> Option<Matrix<T>> {
        if var.tape_id != self.tape_id {
            return None;
        }
        self.adjoints.get_mut(var.index).and_then(|a| a.take())
    }

    /// The adjoint of `var`, with zeros of its shape when no seed reaches it.
    pub fn wrt_or_zeros(&self, var: Var<'_, T>) -> Matrix<T> {
        self.wrt(var).cloned().unwrap_or_else(|| {
            let s = var.shape();
            Matrix::zeros(s.rows, s.cols)
        })
    }
}

fn add_into<T: Scalar>(a: &mut Matrix<T>, b: &Matrix<T>) {
    for (x, &y) in a.data_mut().iter_mut().zip(b.data()) {
        *x = *x + y;
    }
}

impl<T: Scalar> Tape<T> {
    /// One reverse sweep with the cotangent `seed` on `output` (`Jᵀ u` for `u = seed`).
    pub fn backward(&self, output: Var<'_, T>, seed: Matrix<T>) -> Result<Gradients<T>> {
        self.backward_with_seeds(&[(output, seed)], Retain::Inputs)
    }

    /// One reverse sweep with cotangents on several nodes at once: the adjoint of every node is
    /// the sum over seeds of `(∂ seeded node / ∂ node)ᵀ seed`.
    ///
    /// Seeds on intermediate nodes are what the `Cᵀ v` and activation-term products of
    /// Section 8.1.2 need. A seed must have its node's shape.
    ///
    /// Seeds may be owned matrices or references (`&Matrix`); they are read in place.
    pub fn backward_with_seeds<S: Borrow<Matrix<T>>>(
        &self,
        seeds: &[(Var<'_, T>, S)],
        retain: Retain,
    ) -> Result<Gradients<T>> {
        let nodes = self.nodes.borrow();
        let mut adjoints: Adjoints<T> = (0..nodes.len()).map(|_| None).collect();
        let mut spare = Spare::new();
        // Seeds are read in place (no copy of a batch-sized cotangent); a node's seeds are
        // summed with the contributions it receives from later nodes when it is reached.
        let mut last = 0;
        for (var, seed) in seeds {
            let seed = seed.borrow();
            self.check_var("backward", *var)?;
            let shape = nodes[var.index].shape;
            if seed.shape() != shape {
                return Err(AutodiffError::shape("backward (seed vs node)", seed.shape(), shape));
            }
            last = last.max(var.index + 1);
        }
        for i in (0..last).rev() {
            let mut own = seeds.iter().filter(|(v, _)| v.index == i).map(|(_, s)| s.borrow());
            let g: Cow<'_, Matrix<T>> = match (adjoints[i].take(), own.next()) {
                (None, None) => continue,
                (Some(g), None) => Cow::Owned(g),
                (None, Some(s)) => Cow::Borrowed(s),
                (Some(mut g), Some(s)) => {
                    add_into(&mut g, s);
                    Cow::Owned(g)
                }
            };
            // A node seeded twice: sum the rest.
            let g = own.fold(g, |mut g, s| {
                add_into(g.to_mut(), s);
                g
            });
            if self.checks_finite() && !g.data().iter().all(|x| x.is_all_finite()) {
                return Err(AutodiffError::NonFinite {
                    op: format!("backward through {}", nodes[i].op.name()),
                    node: i,
                });
            }
            if nodes[i].requires_grad {
                let redirect = retain == Retain::Inputs;
                let mut sink =
                    Sink { nodes: &nodes, adj: &mut adjoints, redirect, spare: &mut spare };
                propagate(&mut sink, i, &g)?;
            }
            let keep = match retain {
                Retain::All => true,
                Retain::Inputs => matches!(nodes[i].op, Op::Input),
            };
            if keep {
                adjoints[i] = Some(g.into_owned());
            } else if let Cow::Owned(g) = g {
                let bytes = std::mem::size_of_val(g.data());
                if spare.len() < MAX_SPARE && bytes <= MAX_SPARE_BYTES {
                    spare.push(g.into_vec());
                }
            }
        }
        // The spares are plain vectors: give them to the current pool (if any) like matrices.
        spare.into_iter().for_each(crate::buffers::give);
        Ok(Gradients { tape_id: self.id, adjoints })
    }
}
