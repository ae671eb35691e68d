//! A 3-layer tanh MLP with softmax cross-entropy: gradient, `J v`, `Jᵀ u` and `H v` checked
//! against central differences (tier 1e-8), the adjoint identity and a forward-over-forward
//! dense Hessian (tier 1e-12), and the closed-form output gradient `(softmax(z) − y)/N`.

mod common;

use autodiff::check::{
    check_adjoint, check_gradient, check_hessian_vector_product, check_jacobian_vector_product,
    check_transpose_jacobian_vector_product,
};
use autodiff::modes::{self, Function};
use autodiff::random::{random_matrix, random_vector};
use autodiff::{Matrix, Result, Scalar, Tape, Var};
use common::*;

/// Layers 4 → 5 → 6 → 3, θ = concat_i [W_i row-major (out×in), b_i].
struct Mlp {
    sizes: Vec<usize>,
    x: Matrix<f64>,
    y: Matrix<f64>,
    /// Output the logits instead of the loss (for `J v`, `Jᵀ u`).
    logits_only: bool,
}

impl Mlp {
    fn n_params(&self) -> usize {
        self.sizes.windows(2).map(|w| w[1] * w[0] + w[1]).sum()
    }
}

impl Function for Mlp {
    fn eval<'t, T: Scalar>(&self, tape: &'t Tape<T>, theta: Var<'t, T>) -> Result<Var<'t, T>> {
        let mut a = tape.constant_f64(&self.x);
        let mut offset = 0;
        let layers = self.sizes.len() - 1;
        for (i, w) in self.sizes.windows(2).enumerate() {
            let (m_in, m_out) = (w[0], w[1]);
            let weight = theta.slice(offset, m_out, m_in)?;
            offset += m_out * m_in;
            let bias = theta.slice(offset, 1, m_out)?;
            offset += m_out;
            let s = a.matmul_t(weight)?.add_row(bias)?;
            a = if i + 1 < layers { s.tanh()? } else { s };
        }
        if self.logits_only {
            return Ok(a);
        }
        // h = -(1/N) Σ_n Σ_j y_nj log softmax(z_n)_j
        let n = self.x.rows() as f64;
        a.log_softmax()?.mul(tape.constant_f64(&self.y))?.sum()?.scale(-1.0 / n)
    }
}

fn setup(seed: u64, logits_only: bool) -> (Mlp, Vec<f64>) {
    let mut rng = rng(seed);
    let batch = 7;
    let x = random_matrix(batch, 4, &mut rng);
    let y = Matrix::from_fn(batch, 3, |i, j| if (i + seed as usize) % 3 == j { 1.0 } else { 0.0 });
    let mlp = Mlp { sizes: vec![4, 5, 6, 3], x, y, logits_only };
    let theta: Vec<f64> = random_vector(mlp.n_params(), &mut rng).iter().map(|t| 0.5 * t).collect();
    (mlp, theta)
}

#[test]
fn gradient_and_hessian_vector_products_match_references() {
    for seed in 0..3 {
        let (mlp, theta) = setup(seed, false);
        let mut rng = rng(100 + seed);
        let v = random_vector(theta.len(), &mut rng);
        check_gradient(&mlp, &theta, 1e-8).unwrap().assert_passed();
        check_hessian_vector_product(&mlp, &theta, &v, 1e-8).unwrap().assert_passed();
        let h = modes::dense_hessian(&mlp, &theta).unwrap();
        let h_ff = hessian_forward_over_forward(&mlp, &theta);
        let scale = max_abs(&h_ff);
        assert!(max_abs_diff(&h, &h_ff) / scale < 1e-12, "seed {seed}: H vs forward-over-forward");
        assert!(max_abs_diff(&h, &h.transpose()) / scale < 1e-12, "seed {seed}: H not symmetric");
        // H v from one product equals the dense H times v.
        let (_, _, hv) = modes::hessian_vector_product(&mlp, &theta, &v).unwrap();
        let h_v = autodiff::linalg::matvec(&h, &v).unwrap();
        let rep = autodiff::check::compare("H v vs dense H · v", &hv, &h_v, 1e-12).unwrap();
        rep.assert_passed();
    }
}

#[test]
fn jacobian_products_match_references() {
    for seed in 0..3 {
        let (mlp, theta) = setup(seed, true);
        let mut rng = rng(200 + seed);
        let v = random_vector(theta.len(), &mut rng);
        let u = random_matrix(7, 3, &mut rng);
        check_jacobian_vector_product(&mlp, &theta, &v, 1e-8).unwrap().assert_passed();
        check_transpose_jacobian_vector_product(&mlp, &theta, &u, 1e-8).unwrap().assert_passed();
        check_adjoint(&mlp, &theta, &u, &v, 1e-12).unwrap().assert_passed();
        // Dense J from J eⱼ against dense J from rows Jᵀ eᵢ.
        let j = modes::dense_jacobian(&mlp, &theta).unwrap();
        let mut e = Matrix::zeros(7, 3);
        for row in 0..21 {
            e.data_mut()[row] = 1.0;
            let (_, jt_e) = modes::transpose_jacobian_vector_product(&mlp, &theta, &e).unwrap();
            e.data_mut()[row] = 0.0;
            let rep =
                autodiff::check::compare("J row from Jᵀ eᵢ", &jt_e, j.row(row), 1e-12).unwrap();
            rep.assert_passed();
        }
    }
}

#[test]
fn output_gradient_is_softmax_minus_targets_over_batch() {
    // Closed form: ∂h/∂z_n = (softmax(z_n) − y_n) / N for h the mean softmax cross-entropy.
    let (mlp, theta) = setup(4, true);
    let logits = modes::value(&mlp, &theta).unwrap();
    let tape = Tape::<f64>::new();
    let z = tape.input(logits.clone());
    let y = tape.constant_f64(&mlp.y);
    let loss = z.log_softmax().unwrap().mul(y).unwrap().sum().unwrap().scale(-1.0 / 7.0).unwrap();
    let g = tape.backward(loss, Matrix::filled(1, 1, 1.0)).unwrap();
    let gz = g.wrt(z).unwrap();
    for n in 0..7 {
        let row = logits.row(n);
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = row.iter().map(|v| (v - max).exp()).sum();
        for j in 0..3 {
            let p = (row[j] - max).exp() / total;
            let want = (p - mlp.y[(n, j)]) / 7.0;
            assert!((gz[(n, j)] - want).abs() < 1e-15, "({n}, {j}): {} vs {want}", gz[(n, j)]);
        }
    }
}
