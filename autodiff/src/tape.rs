//! The tape (a Wengert list of matrix-valued nodes) and [`Var`], a handle to one of its nodes.
//!
//! Nodes are pushed in evaluation order, so insertion order is a topological order and the
//! reverse sweep is one backward loop ([`Tape::backward_with_seeds`]). A node holds its value;
//! ops hold only node indices, so a tape over [`Dual`](crate::Dual) values records the same
//! graph as one over `f64`, and the reverse sweep over it computes `H v` exactly.

use crate::error::{AutodiffError, Result};
use crate::matrix::{MatRef, Matrix, Shape};
use crate::op::Op;
use crate::scalar::Scalar;
use std::borrow::Cow;
use std::cell::{Cell, Ref, RefCell};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

static NEXT_TAPE_ID: AtomicUsize = AtomicUsize::new(0);

pub(crate) struct Node<T: Scalar> {
    pub(crate) op: Op<T>,
    /// Where the node's elements live. Read them through [`data`], [`view`] or [`value`],
    /// which resolve views and shared buffers.
    pub(crate) value: Storage<T>,
    pub(crate) shape: Shape,
    /// Whether any [`Op::Input`] leaf reaches this node; the sweep skips nodes that are not.
    pub(crate) requires_grad: bool,
}

/// The elements of a node.
pub(crate) enum Storage<T> {
    /// The node's own buffer (every op's result).
    Owned(Matrix<T>),
    /// A leaf's buffer shared with other tapes ([`Tape::input_shared`]): the row blocks of a
    /// data-parallel batch record at one θ without a copy of θ each.
    Shared(Arc<[T]>),
    /// No value of its own: a view ([`Op::Slice`]) that reads its operand's buffer, so
    /// slicing the weights of a layer out of θ costs no copy.
    View,
}

impl<T: Scalar> Node<T> {
    /// Whether the node is a view into an operand's buffer (no value of its own).
    pub(crate) fn is_view(&self) -> bool {
        matches!(self.value, Storage::View)
    }
}

/// The row-major elements of node `i`, resolving views without copying.
pub(crate) fn data<T: Scalar>(nodes: &[Node<T>], i: usize) -> &[T] {
    match (&nodes[i].value, &nodes[i].op) {
        (Storage::Owned(m), _) => m.data(),
        (Storage::Shared(d), _) => d,
        (Storage::View, &Op::Slice { a, start }) => {
            &data(nodes, a)[start..start + nodes[i].shape.len()]
        }
        (Storage::View, op) => {
            unreachable!("internal error: node {i} ({}) has no value", op.name())
        }
    }
}

/// Node `i` as a matrix view (no copy, also for views).
pub(crate) fn view<T: Scalar>(nodes: &[Node<T>], i: usize) -> MatRef<'_, T> {
    let s = nodes[i].shape;
    MatRef::from_slice(data(nodes, i), s.rows, s.cols).expect("internal error: view extent")
}

/// Node `i` as a matrix: borrowed when it owns its value, a copy otherwise. For the rules
/// that are not on a hot path; products read [`view`] instead.
pub(crate) fn value<T: Scalar>(nodes: &[Node<T>], i: usize) -> Cow<'_, Matrix<T>> {
    match &nodes[i].value {
        Storage::Owned(m) => Cow::Borrowed(m),
        Storage::Shared(_) | Storage::View => Cow::Owned(view(nodes, i).to_matrix()),
    }
}

/// A recording of matrix operations over the scalar `T`.
///
/// ```
/// use autodiff::{Matrix, Tape};
/// let tape = Tape::<f64>::new();
/// let w = tape.input(Matrix::from_vec(2, 2, vec![1.0, 2.0, 3.0, 4.0])?);
/// let x = tape.constant(Matrix::from_vec(1, 2, vec![1.0, -1.0])?);
/// let loss = x.matmul_t(w)?.square()?.sum()?; // ‖x Wᵀ‖²
/// let grads = tape.backward(loss, Matrix::filled(1, 1, 1.0))?;
/// // ∂/∂W ‖W xᵀ‖² = 2 (W xᵀ) x, with W xᵀ = (-1, -1).
/// assert_eq!(grads.wrt(w).unwrap().data(), &[-2.0, 2.0, -2.0, 2.0]);
/// # Ok::<(), autodiff::AutodiffError>(())
/// ```
pub struct Tape<T: Scalar> {
    pub(crate) id: usize,
    pub(crate) nodes: RefCell<Vec<Node<T>>>,
    check_finite: Cell<bool>,
}

impl<T: Scalar> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Scalar> fmt::Debug for Tape<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tape {{ id: {}, nodes: {} }}", self.id, self.len())
    }
}

impl<T: Scalar> Tape<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Tape {
            id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed),
            // Room for a few-layer model without regrowing (each growth moves every node).
            nodes: RefCell::new(Vec::with_capacity(16)),
            check_finite: Cell::new(false),
        }
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// Whether nothing is recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When on, every op checks its result (both parts of a dual) for NaN and infinity and
    /// returns [`AutodiffError::NonFinite`] naming the op and node; the reverse sweep checks
    /// each adjoint it produces the same way. Off by default (it costs one pass over each result).
    pub fn set_check_finite(&self, on: bool) {
        self.check_finite.set(on);
    }

    /// A leaf whose adjoint the reverse sweep computes (parameters θ).
    pub fn input(&self, value: Matrix<T>) -> Var<'_, T> {
        self.push_unchecked(Op::Input, value, true)
    }

    /// A `rows×cols` leaf like [`input`](Self::input) over a buffer shared with other tapes,
    /// without copying it: the row blocks of a data-parallel batch, one tape per thread, all
    /// record at the same θ (for a model with millions of parameters a copy each costs more
    /// than the speedup of the second thread can spare). Errors if `data` does not hold
    /// `rows·cols` elements.
    ///
    /// ```
    /// use autodiff::{Matrix, Tape};
    /// use std::sync::Arc;
    /// let theta: Arc<[f64]> = Arc::from(vec![1.0, 2.0]);
    /// let tape = Tape::<f64>::new();
    /// let w = tape.input_shared(Arc::clone(&theta), 1, 2)?;
    /// let loss = w.square()?.sum()?;
    /// let grads = tape.backward(loss, Matrix::filled(1, 1, 1.0))?;
    /// assert_eq!(grads.wrt(w).unwrap().data(), &[2.0, 4.0]);
    /// # Ok::<(), autodiff::AutodiffError>(())
    /// ```
    pub fn input_shared(&self, data: Arc<[T]>, rows: usize, cols: usize) -> Result<Var<'_, T>> {
        let shape = Shape::new(rows, cols);
        if data.len() != shape.len() {
            return Err(AutodiffError::invalid(
                "input_shared",
                format!(
                    "the buffer holds {} elements, a {shape} leaf needs {}",
                    data.len(),
                    shape.len()
                ),
            ));
        }
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node {
            op: Op::Input,
            value: Storage::Shared(data),
            shape,
            requires_grad: true,
        });
        Ok(Var { tape: self, tape_id: self.id, index: nodes.len() - 1 })
    }

    /// A leaf with no adjoint (data, targets, fixed weights).
    pub fn constant(&self, value: Matrix<T>) -> Var<'_, T> {
        self.push_unchecked(Op::Constant, value, false)
    }

    /// A constant from `f64` data, converted with [`Scalar::from_f64`] (a dual gets zero tangent).
    pub fn constant_f64(&self, value: &Matrix<f64>) -> Var<'_, T> {
        self.constant(value.map(T::from_f64))
    }

    /// A copy of the value of node `var`.
    pub fn value(&self, var: Var<'_, T>) -> Result<Matrix<T>> {
        self.check_var("value", var)?;
        Ok(value(&self.nodes.borrow(), var.index).into_owned())
    }

    /// Borrows the row-major elements of node `var` (no copy, also for a slice, which is a
    /// view). Holding the borrow while recording panics, so keep it short.
    pub fn value_ref(&self, var: Var<'_, T>) -> Result<Ref<'_, [T]>> {
        self.check_var("value_ref", var)?;
        Ok(Ref::map(self.nodes.borrow(), |nodes| data(nodes, var.index)))
    }

    /// The shape of node `var`.
    pub(crate) fn shape_of(&self, index: usize) -> Shape {
        self.nodes.borrow()[index].shape
    }

    pub(crate) fn check_var(&self, op: &str, var: Var<'_, T>) -> Result<()> {
        if var.tape_id != self.id {
            return Err(AutodiffError::ForeignVar { op: op.to_string() });
        }
        Ok(())
    }

    fn push_unchecked(&self, op: Op<T>, value: Matrix<T>, requires_grad: bool) -> Var<'_, T> {
        let mut nodes = self.nodes.borrow_mut();
        let shape = value.shape();
        nodes.push(Node { op, value: Storage::Owned(value), shape, requires_grad });
        Var { tape: self, tape_id: self.id, index: nodes.len() - 1 }
    }

    /// Records a view node (no value of its own; see [`Node::value`]).
    pub(crate) fn push_view(&self, op: Op<T>, shape: Shape) -> Var<'_, T> {
        let mut nodes = self.nodes.borrow_mut();
        let requires_grad = op.operands().iter().any(|&i| nodes[i].requires_grad);
        nodes.push(Node { op, value: Storage::View, shape, requires_grad });
        Var { tape: self, tape_id: self.id, index: nodes.len() - 1 }
    }

    /// Records an op whose value was computed by the caller; checks finiteness if asked.
    pub(crate) fn push(&self, op: Op<T>, value: Matrix<T>) -> Result<Var<'_, T>> {
        if self.check_finite.get() && !value.data().iter().all(|x| x.is_all_finite()) {
            return Err(AutodiffError::NonFinite { op: op.name(), node: self.len() });
        }
        let requires_grad = {
            let nodes = self.nodes.borrow();
            op.operands().iter().any(|&i| nodes[i].requires_grad)
        };
        Ok(self.push_unchecked(op, value, requires_grad))
    }

    pub(crate) fn checks_finite(&self) -> bool {
        self.check_finite.get()
    }
}

/// A handle to a node of a [`Tape`]: cheap to copy, valid as long as the tape.
///
/// Ops are methods on `Var` (see [`crate::var`]) and return `Result<Var>`, since every op
/// checks its operands' shapes and tape.
#[derive(Clone, Copy)]
pub struct Var<'t, T: Scalar> {
    pub(crate) tape: &'t Tape<T>,
    pub(crate) tape_id: usize,
    pub(crate) index: usize,
}

impl<T: Scalar> fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Var {{ tape: {}, node: {}, shape: {} }}", self.tape_id, self.index, self.shape())
    }
}

impl<'t, T: Scalar> Var<'t, T> {
    /// The node's index on its tape (its position in evaluation order).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The tape this variable lives on.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// The node's shape.
    pub fn shape(&self) -> Shape {
        self.tape.shape_of(self.index)
    }

    /// A copy of the node's value.
    pub fn value(&self) -> Matrix<T> {
        value(&self.tape.nodes.borrow(), self.index).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backward::Retain;
    use crate::random::random_matrix;
    use crate::Dual;
    use rand::{rngs::StdRng, SeedableRng};

    /// A two-layer map of θ's slices (views of the leaf), so that every read of the leaf
    /// (products, a view of a view, the tangent sweep, θ's adjoint) goes through its storage.
    fn record<'t, T: Scalar>(th: Var<'t, T>, x: &Matrix<f64>) -> Var<'t, T> {
        let (w1, b1) = (th.slice(0, 4, 3).unwrap(), th.slice(12, 1, 4).unwrap());
        let w2 = th.slice(16, 8, 1).unwrap().slice(2, 2, 2).unwrap();
        let h = th.tape().constant_f64(x).affine(w1, b1).unwrap().tanh().unwrap();
        h.slice(0, 5, 2).unwrap().matmul_t(w2).unwrap().sigmoid().unwrap().square().unwrap()
    }

    fn dual(theta: &[f64], v: &[f64]) -> Vec<Dual<f64>> {
        theta.iter().zip(v).map(|(&t, &e)| Dual::new(t, e)).collect()
    }

    /// The same arithmetic on the same elements: a shared leaf gives bit-identical values,
    /// adjoints (both retain modes, f64 and dual, i.e. `∇h` and `H v`) and tangents (`J v`).
    #[test]
    fn a_shared_input_records_exactly_like_an_owned_one() {
        let mut rng = StdRng::seed_from_u64(21);
        let x = random_matrix(6, 3, &mut rng);
        let theta = random_matrix(24, 1, &mut rng).into_vec();
        let v = random_matrix(24, 1, &mut rng).into_vec();
        fn run<T: Scalar>(theta: Vec<T>, x: &Matrix<f64>, shared: bool, retain: Retain) -> Vec<T> {
            let tape = Tape::<T>::new();
            let th = if shared {
                tape.input_shared(Arc::from(theta), 24, 1).unwrap()
            } else {
                tape.input(Matrix::column(theta))
            };
            let out = record(th, x);
            let seed = out.value().map(|_| T::from_f64(1.0));
            let g = tape.backward_with_seeds(&[(out, seed)], retain).unwrap();
            let mut all = out.value().into_vec();
            all.extend_from_slice(g.wrt(th).unwrap().data());
            all
        }
        for retain in [Retain::Inputs, Retain::All] {
            assert_eq!(run(theta.clone(), &x, true, retain), run(theta.clone(), &x, false, retain));
            let (s, o) =
                (run(dual(&theta, &v), &x, true, retain), run(dual(&theta, &v), &x, false, retain));
            assert!(s.iter().zip(&o).all(|(a, b)| a.re == b.re && a.eps == b.eps));
        }
        let jvp = |shared: bool| {
            let tape = Tape::<f64>::new();
            let th = if shared {
                tape.input_shared(Arc::from(theta.clone()), 24, 1).unwrap()
            } else {
                tape.input(Matrix::column(theta.clone()))
            };
            let out = record(th, &x);
            let t = tape.tangents([(th, Matrix::column(v.clone()))]).unwrap();
            t.of(out).unwrap().clone().into_vec()
        };
        let owned = jvp(false);
        assert!(owned.iter().all(|t| *t != 0.0));
        assert_eq!(jvp(true), owned);
    }

    #[test]
    fn a_shared_input_is_released_with_the_tape_and_checks_its_length() {
        let data: Arc<[f64]> = Arc::from(vec![1.0; 6]);
        {
            let tape = Tape::<f64>::new();
            let th = tape.input_shared(Arc::clone(&data), 2, 3).unwrap();
            assert_eq!(th.shape(), Shape::new(2, 3));
            assert_eq!(Arc::strong_count(&data), 2);
            let err = tape.input_shared(Arc::clone(&data), 4, 2).unwrap_err().to_string();
            assert!(err.contains("input_shared") && err.contains("6 elements"), "{err}");
            assert!(err.contains("4×2"), "{err}");
        }
        assert_eq!(Arc::strong_count(&data), 1);
    }
}
