//! The benchmark's ops for any scalar type, written on `autodiff` directly (the `curvature`
//! crate is `f64` by design): what the `f32` rows time.
//!
//! Each op records the forward pass on a fresh tape, as the `f64` rows do through
//! `Problem::at`, except `ggn_repeated`, which reuses one. The products are those of
//! `curvature`, with the two benchmark losses' closed forms written here for any scalar (as
//! `curvature`'s `PredictiveDistribution`s give them in `f64`): the gradient and `Jᵀ u` by a
//! reverse sweep seeded at `z` (with `∇_z h` for the gradient), `J v` by a tangent sweep, `H v`
//! by a reverse sweep over dual numbers with the loss on the tape, `G v = Jᵀ (H_L J v) / N`, and
//! the empirical Fisher `F̄ v = Σ_n J_nᵀ g_n (g_nᵀ J_n v) / N`. `F v` equals `G v` for both
//! losses (natural parameters, Section 9.2), so it has no `f32` row. [`check`] compares every
//! op with the `f64` one before anything is timed.

use super::ops::Workload;
use autodiff::{Dual, Matrix, Retain, Scalar, Tape, Var};
use curvature::{Model, Problem};
use std::hint::black_box;

/// The mean loss `h` of a workload on the tape of `z`.
fn mean_loss<'t, T: Scalar>(
    w: &Workload,
    z: Var<'t, T>,
    y: Var<'t, T>,
) -> autodiff::Result<Var<'t, T>> {
    let scale = 1.0 / w.batch as f64;
    if w.bernoulli {
        // Σ softplus(z) − y z, averaged.
        z.softplus()?.sub(z.mul(y)?)?.sum()?.scale(scale)
    } else {
        z.log_softmax()?.mul(y)?.sum()?.scale(-scale)
    }
}

/// A forward pass at θ on a tape over `T`: the tape, θ's node and the output `z`.
pub struct Forward<T: Scalar> {
    tape: Tape<T>,
    theta: usize,
    z: usize,
}

impl<T: Scalar> Forward<T> {
    pub fn new(w: &Workload, theta: &[f64], x: &Matrix<f64>) -> Self {
        let tape = Tape::<T>::new();
        let th = tape.input(Matrix::column(theta.iter().map(|&v| T::from_f64(v)).collect()));
        let xv = tape.constant_f64(x);
        let z = w.mlp.forward(&tape, th, xv).expect("bench: forward").index();
        let theta = th.index();
        Forward { tape, theta, z }
    }

    fn var(&self, i: usize) -> Var<'_, T> {
        self.tape.var(i).expect("bench: node")
    }

    /// `J v` (the output's shape).
    pub fn jacobian_vector_product(&self, v: &Matrix<T>) -> Matrix<T> {
        let (th, z) = (self.var(self.theta), self.var(self.z));
        let mut t = self.tape.tangents_of([(th, v)], &[z]).expect("bench: J v");
        t.take(z).expect("bench: J v reaches z")
    }

    /// `Jᵀ u` (θ's length).
    pub fn transpose_jacobian_vector_product(&self, u: &Matrix<T>) -> Vec<T> {
        let (th, z) = (self.var(self.theta), self.var(self.z));
        let mut g = self.tape.backward_with_seeds(&[(z, u)], Retain::Inputs).expect("bench: Jᵀ u");
        g.take(th).expect("bench: Jᵀ u reaches θ").into_vec()
    }

    /// The predictive probabilities at `z`: the logistic sigmoid of each output (Bernoulli
    /// logits) or the softmax of each row.
    fn probabilities(&self, w: &Workload) -> Matrix<T> {
        let z = self.var(self.z).value();
        let mut p = z.clone();
        if w.bernoulli {
            T::sigmoid_slice(z.data(), p.data_mut());
        } else {
            let cols = z.cols();
            for row in p.data_mut().chunks_mut(cols) {
                let max = row.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
                row.iter_mut().for_each(|x| *x = (*x - max).exp());
                let total = row.iter().fold(T::zero(), |s, &x| s + x);
                row.iter_mut().for_each(|x| *x = *x / total);
            }
        }
        p
    }

    /// `∇_z h`: rows `(p_n − y_n) / N` for both losses (one-hot `y` for the softmax).
    fn output_gradient(&self, w: &Workload, y: &Matrix<f64>) -> Matrix<T> {
        let n = T::from_f64(w.batch as f64);
        let mut g = self.probabilities(w);
        for (g, &y) in g.data_mut().iter_mut().zip(y.data()) {
            *g = (*g - T::from_f64(y)) / n;
        }
        g
    }

    /// Rows `H_L(z_n) u_n / N`: `σ(1 − σ) ⊙ u` (Bernoulli), `p ⊙ u − p (pᵀ u)` (softmax).
    fn loss_curvature(&self, w: &Workload, u: &Matrix<T>) -> Matrix<T> {
        let n = T::from_f64(w.batch as f64);
        let p = self.probabilities(w);
        let mut out = u.clone();
        if w.bernoulli {
            for ((o, &p), &u) in out.data_mut().iter_mut().zip(p.data()).zip(u.data()) {
                *o = p * (T::one() - p) * u / n;
            }
        } else {
            let cols = u.cols();
            let rows = out.data_mut().chunks_mut(cols).zip(p.data().chunks(cols));
            for ((o, p), u) in rows.zip(u.data().chunks(cols)) {
                let pu = p.iter().zip(u).fold(T::zero(), |s, (&a, &b)| s + a * b);
                for ((o, &p), &u) in o.iter_mut().zip(p).zip(u) {
                    *o = p * (u - pu) / n;
                }
            }
        }
        out
    }

    /// `∇h`: the reverse sweep seeded at `z` with `∇_z h`.
    pub fn gradient(&self, w: &Workload, y: &Matrix<f64>) -> Vec<T> {
        self.transpose_jacobian_vector_product(&self.output_gradient(w, y))
    }

    /// `G v = Jᵀ H_L J v / N`.
    pub fn ggn(&self, w: &Workload, v: &Matrix<T>) -> Vec<T> {
        let jv = self.jacobian_vector_product(v);
        self.transpose_jacobian_vector_product(&self.loss_curvature(w, &jv))
    }

    /// `F̄ v = Σ_n J_nᵀ g_n (g_nᵀ (J v)_n) / N` with `g_n = N (∇_z h)_n`.
    pub fn empirical_fisher(&self, w: &Workload, y: &Matrix<f64>, v: &Matrix<T>) -> Vec<T> {
        let jv = self.jacobian_vector_product(v);
        let gz = self.output_gradient(w, y);
        let n = T::from_f64(w.batch as f64);
        let mut u = gz.clone();
        for r in 0..u.rows() {
            let dot = (0..u.cols()).fold(T::zero(), |s, k| s + gz[(r, k)] * jv[(r, k)]);
            for k in 0..u.cols() {
                u[(r, k)] = gz[(r, k)] * dot * n;
            }
        }
        self.transpose_jacobian_vector_product(&u)
    }
}

/// `h(θ)` by one forward pass.
pub fn loss<T: Scalar>(w: &Workload, theta: &[f64], x: &Matrix<f64>, y: &Matrix<f64>) -> T {
    let tape = Tape::<T>::new();
    let th = tape.input(Matrix::column(theta.iter().map(|&v| T::from_f64(v)).collect()));
    let z = w.mlp.forward(&tape, th, tape.constant_f64(x)).expect("bench: forward");
    let h = mean_loss(w, z, tape.constant_f64(y)).expect("bench: loss");
    h.value()[(0, 0)]
}

/// `H v` by one forward and one reverse sweep on a tape of `θ + v ε` over `Dual<T>` (the
/// sweep that skips `∇h`, as `curvature` runs it).
pub fn hessian_vector_product<T: Scalar>(
    w: &Workload,
    theta: &[f64],
    v: &[f64],
    x: &Matrix<f64>,
    y: &Matrix<f64>,
) -> Vec<T> {
    let tape = Tape::<Dual<T>>::new();
    let th = tape.input(Matrix::column(
        theta.iter().zip(v).map(|(&t, &d)| Dual::new(T::from_f64(t), T::from_f64(d))).collect(),
    ));
    let z = w.mlp.forward(&tape, th, tape.constant_f64(x)).expect("bench: forward");
    let h = mean_loss(w, z, tape.constant_f64(y)).expect("bench: loss");
    let seed = Matrix::filled(1, 1, Dual::from_f64(1.0));
    let mut g = tape.backward_tangents(&[(h, seed)]).expect("bench: H v");
    g.take(th).expect("bench: H v").data().iter().map(|d| d.eps).collect()
}

/// The largest of `errors`, NaN if any is (`f64::max` would drop a NaN).
pub fn worst(errors: impl IntoIterator<Item = f64>) -> f64 {
    errors.into_iter().fold(0.0, |m, e| if m.is_nan() || e.is_nan() { f64::NAN } else { m.max(e) })
}

/// Relative error `‖a − b‖∞ / ‖b‖∞` of an `f32` result against the `f64` one (NaN if either
/// holds a NaN).
pub fn relative_error(a: &[f32], b: &[f64]) -> f64 {
    let scale = worst(b.iter().map(|x| x.abs())).max(f64::MIN_POSITIVE);
    worst(a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - y).abs())) / scale
}

/// Every `f32` op against `curvature`'s `f64` result at the same θ, `v` and `u`: the largest
/// relative error (`‖·‖∞`), which the benchmark requires to be below `1e-3` (f32 rounding over
/// these depths is ~1e-6) before it times anything, so a row never times a wrong product.
pub fn check(
    w: &Workload,
    problem: &Problem<'_, curvature::Mlp>,
    (theta, v, u): (&[f64], &[f64], &Matrix<f64>),
) -> f64 {
    let (x, y) = (problem.x, problem.y);
    let pass = problem.at(theta).expect("bench: f64 pass");
    let forward = Forward::<f32>::new(w, theta, x);
    let v32 = Matrix::column(v.iter().map(|&a| a as f32).collect());
    let u32 = u.map(|a| a as f32);
    let mut errors = vec![
        relative_error(&[loss::<f32>(w, theta, x, y)], &[pass.loss().expect("bench")]),
        relative_error(&forward.gradient(w, y), &pass.gradient().expect("bench")),
        relative_error(
            forward.jacobian_vector_product(&v32).data(),
            pass.jacobian_vector_product(v).expect("bench").data(),
        ),
        relative_error(
            &forward.transpose_jacobian_vector_product(&u32),
            &pass.transpose_jacobian_vector_product(u).expect("bench"),
        ),
        relative_error(
            &hessian_vector_product::<f32>(w, theta, v, x, y),
            &pass.hessian_vector_product(v).expect("bench"),
        ),
        relative_error(&forward.ggn(w, &v32), &pass.ggn_vector_product(v).expect("bench")),
    ];
    let efv = pass.empirical_fisher_vector_product(v).expect("bench");
    errors.push(relative_error(&forward.empirical_fisher(w, y, &v32), &efv));
    black_box(&errors);
    worst(errors)
}
