//! The reverse sweep: seeds (cotangents) on any nodes in, adjoints out ([`Gradients`]).
//!
//! The sweep is here; the adjoint store it fills is `adjoints`, the reverse rule of every op
//! is `vjp`.

pub(crate) mod adjoints;
pub(crate) mod vjp;

use crate::dual::Dual;
use crate::error::{AutodiffError, Result};
use crate::matrix::Matrix;
use crate::op::Op;
use crate::scalar::Scalar;
use crate::tape::{Tape, Var};
use adjoints::{Adjoints, Sink, Spare, MAX_SPARE, MAX_SPARE_BYTES};
use std::borrow::{Borrow, Cow};
use vjp::propagate;

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
        self.reverse_sweep(seeds, retain, false)
    }

    /// The sweep; with `input_tangents_only`, products into the inputs' adjoints compute only
    /// their derivative parts ([`Scalar::gemm_tangent`]).
    fn reverse_sweep<S: Borrow<Matrix<T>>>(
        &self,
        seeds: &[(Var<'_, T>, S)],
        retain: Retain,
        input_tangents_only: bool,
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
                let mut sink = Sink {
                    nodes: &nodes,
                    adj: &mut adjoints,
                    redirect,
                    spare: &mut spare,
                    input_tangents_only,
                };
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
        spare.into_iter().for_each(crate::kernels::buffers::give);
        Ok(Gradients { tape_id: self.id, adjoints })
    }
}

impl<T: Scalar> Tape<Dual<T>> {
    /// A reverse sweep over a tape of dual numbers for a caller that wants only the tangent
    /// parts of the inputs' adjoints: the forward-over-reverse `H v` (Section 5, eqn 6) without
    /// the gradient `∇h` that the primal parts would carry.
    ///
    /// With `θ + v ε` on the tape and the seed `1 + 0 ε` on a scalar `h`, the adjoint of θ is
    /// `∇h + (H v) ε`. Its primal part is the gradient, which the sweep needs everywhere else
    /// (the tangent of `dA = G Bᵀ` reads `G.re`) but nowhere once it reaches θ: so each product
    /// into an input's adjoint (`dW = Gᵀ A` of a layer's weights) skips its primal product
    /// ([`Scalar::gemm_tangent`]): one real matrix product less per layer, so an MLP's `H v`
    /// costs `8F − 5F₁` product FLOPs instead of `9F − 5F₁` (`F` those of the forward pass,
    /// `F₁` its first layer's). The inputs' adjoints come back with zero primal parts; only
    /// they are kept, as with [`Retain::Inputs`].
    ///
    /// ```
    /// use autodiff::{Dual, Matrix, Tape};
    ///
    /// // h(θ) = Σ tanh(X θ)²: compare the tangent of the full sweep with this one.
    /// let x = Matrix::from_fn(4, 3, |i, j| (i as f64 - j as f64) * 0.3);
    /// let theta: Vec<Dual<f64>> =
    ///     [0.2, -0.4, 0.7].iter().zip([1.0, 0.5, -2.0]).map(|(&t, e)| Dual::new(t, e)).collect();
    /// let tape = Tape::<Dual<f64>>::new();
    /// let th = tape.input(Matrix::column(theta));
    /// let h = tape.constant_f64(&x).matmul(th)?.tanh()?.square()?.sum()?;
    /// let seed = || Matrix::filled(1, 1, Dual::new(1.0, 0.0));
    /// let full = tape.backward(h, seed())?.wrt_or_zeros(th);
    /// let tangent_only = tape.backward_tangents(&[(h, seed())])?.wrt_or_zeros(th);
    /// for (f, t) in full.data().iter().zip(tangent_only.data()) {
    ///     assert_eq!((t.re, t.eps), (0.0, f.eps));
    /// }
    /// # Ok::<(), autodiff::AutodiffError>(())
    /// ```
    pub fn backward_tangents<S: Borrow<Matrix<Dual<T>>>>(
        &self,
        seeds: &[(Var<'_, Dual<T>>, S)],
    ) -> Result<Gradients<Dual<T>>> {
        let mut gradients = self.reverse_sweep(seeds, Retain::Inputs, true)?;
        // The primal parts hold partial sums (contributions that are not products, and small
        // products that computed them anyway): clear them rather than leave a wrong gradient.
        for adjoint in gradients.adjoints.iter_mut().flatten() {
            adjoint.data_mut().iter_mut().for_each(|d| d.re = T::zero());
        }
        Ok(gradients)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Dual, Matrix, Result, Tape, Var};

    /// `h(θ)` reading θ every way a product can reach an input's adjoint: weight slices in
    /// `matmul_t`, `affine` and `t_matmul` (the view redirected into θ's adjoint), one weight
    /// in two products (the second accumulates), and θ itself as a matrix operand.
    fn objective<'t>(
        tape: &'t Tape<Dual<f64>>,
        theta: Var<'t, Dual<f64>>,
        (m, k, n): (usize, usize, usize),
    ) -> Result<Var<'t, Dual<f64>>> {
        let x = tape
            .constant_f64(&Matrix::from_fn(m, k, |i, j| ((i * 7 + j * 3) % 11) as f64 * 0.1 - 0.5));
        let w1 = theta.slice(0, n, k)?;
        let b1 = theta.slice(n * k, 1, n)?;
        let w2 = theta.slice(n * k + n, n, n)?;
        let s1 = x.affine(w1, b1)?.tanh()?;
        let s2 = s1.matmul_t(w2)?.sigmoid()?;
        let s3 = s2.t_matmul(s1)?.matmul(w2)?.square()?.sum()?;
        let s4 = x.matmul_t(w1)?.square()?.mean()?;
        let s5 = theta.slice(0, k, n)?.reshape(1, k * n)?.matmul(theta.slice(0, k * n, 1)?)?;
        s3.add(s4)?.add(s5)
    }

    fn both_sweeps((m, k, n): (usize, usize, usize)) -> (Matrix<Dual<f64>>, Matrix<Dual<f64>>) {
        let len = n * k + n + n * n;
        let theta = Matrix::from_fn(len, 1, |i, _| {
            Dual::new(((i * 13) % 17) as f64 * 0.02 - 0.15, ((i * 5) % 7) as f64 * 0.3 - 1.0)
        });
        let tape = Tape::<Dual<f64>>::new();
        let th = tape.input(theta);
        let h = objective(&tape, th, (m, k, n)).expect("objective");
        let seed = || Matrix::filled(1, 1, Dual::new(1.0, 0.0));
        let full = tape.backward(h, seed()).expect("full sweep").wrt_or_zeros(th);
        let tangents = tape.backward_tangents(&[(h, seed())]).expect("tangent sweep");
        (full, tangents.wrt_or_zeros(th))
    }

    /// The tangent-only sweep's `H v` is the full sweep's tangent bit for bit (the same
    /// products in the same order, less the primal ones), with zero primal parts: for small
    /// products (the fused kernel, which computes the primal part anyway) and large ones (two
    /// real products instead of three, written straight into the strided parts or, 520 rows
    /// deep in `dW = Gᵀ A`, through a buffer and added into θ's adjoint).
    #[test]
    fn tangent_sweep_gives_the_full_sweeps_tangents_without_the_gradient() {
        for shape in [(5, 4, 3), (70, 66, 64), (520, 30, 20)] {
            let large =
                shape.0 * shape.1 * shape.2 > crate::kernels::small_gemm::SMALL_GEMM_MAX_WORK;
            assert_eq!(large, shape.0 > 5, "shape {shape:?} is on the wrong side of the cutoff");
            let (full, tangents) = both_sweeps(shape);
            assert!(full.data().iter().any(|d| d.re != 0.0 && d.eps != 0.0));
            for (i, (f, t)) in full.data().iter().zip(tangents.data()).enumerate() {
                assert_eq!(t.eps.to_bits(), f.eps.to_bits(), "H v element {i}, shape {shape:?}");
                assert_eq!(t.re, 0.0, "primal part of element {i}, shape {shape:?}");
            }
        }
    }
}
