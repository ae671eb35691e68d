//! Independent Bernoulli outputs on logits (sigmoid cross-entropy).

use super::PredictiveDistribution;
use crate::error::Result;
use autodiff::op::unary::sigmoid;
use autodiff::{fast_math, Matrix, UnaryFn};
use rand::{Rng, RngCore};

/// `R_{y|z} = Π_j Bernoulli(σ(z_j))`: `L = Σ_j softplus(z_j) − y_j z_j`, `∇_z L = σ(z) − y`,
/// `H_L = F_R = diag(σ(z)(1 − σ(z)))`: `z` is the natural parameter. Targets in `[0, 1]`
/// (the autoencoder's pixel intensities are allowed, not only `{0, 1}`).
#[derive(Clone, Copy, Debug, Default)]
pub struct BernoulliLogits;

impl PredictiveDistribution for BernoulliLogits {
    fn name(&self) -> &str {
        "bernoulli_logits"
    }
    fn target_dim(&self, output_dim: usize) -> Result<usize> {
        Ok(output_dim)
    }
    /// Every target in `[0, 1]` ([`unit_interval_target`](super::unit_interval_target)).
    fn check_target(&self, y: &[f64]) -> std::result::Result<(), super::TargetIssue> {
        super::unit_interval_target(y)
    }
    fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
        z.iter().zip(y).map(|(&v, &t)| UnaryFn::Softplus.value(v) - t * v).sum()
    }
    /// `Σ softplus(z) − y z` with the softplus vectorized over chunks of the batch
    /// ([`autodiff::fast_math::softplus_f64`], within 2 ulp of the libm formula).
    fn loss_rows(&self, z: &Matrix<f64>, y: &Matrix<f64>) -> f64 {
        const CHUNK: usize = 256;
        let mut softplus = [0.0; CHUNK];
        let mut total = 0.0;
        for (zc, yc) in z.data().chunks(CHUNK).zip(y.data().chunks(CHUNK)) {
            let sp = &mut softplus[..zc.len()];
            fast_math::softplus_f64(zc, sp);
            total += sp.iter().zip(zc).zip(yc).map(|((s, v), t)| s - t * v).sum::<f64>();
        }
        total
    }
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
        for k in 0..z.len() {
            out[k] = sigmoid(z[k]) - y[k];
        }
    }
    /// `σ(z) − y` with one vectorized sigmoid over the batch
    /// ([`autodiff::fast_math::sigmoid_f64`], within 2 ulp of the per-element formula).
    fn grad_z_rows(&self, z: &Matrix<f64>, y: &Matrix<f64>, out: &mut Matrix<f64>) {
        fast_math::sigmoid_f64(z.data(), out.data_mut());
        out.data_mut().iter_mut().zip(y.data()).for_each(|(o, t)| *o -= t);
    }
    fn apply_h_l(&self, z: &[f64], _y: &[f64], u: &[f64], out: &mut [f64]) {
        self.apply_f_r(z, u, out);
    }
    fn apply_h_l_rows(
        &self,
        z: &Matrix<f64>,
        _y: &Matrix<f64>,
        u: &Matrix<f64>,
        out: &mut Matrix<f64>,
    ) {
        self.apply_f_r_rows(z, u, out);
    }
    fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]) {
        for k in 0..z.len() {
            let s = sigmoid(z[k]);
            out[k] = s * (1.0 - s) * u[k];
        }
    }
    /// `σ(z)(1 − σ(z)) u` with one vectorized sigmoid over the batch.
    fn apply_f_r_rows(&self, z: &Matrix<f64>, u: &Matrix<f64>, out: &mut Matrix<f64>) {
        fast_math::sigmoid_f64(z.data(), out.data_mut());
        out.data_mut().iter_mut().zip(u.data()).for_each(|(o, &uk)| *o = *o * (1.0 - *o) * uk);
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y: &mut [f64]) {
        for (t, &v) in y.iter_mut().zip(z) {
            *t = if rng.random::<f64>() < sigmoid(v) { 1.0 } else { 0.0 };
        }
    }
    fn is_natural_parameter(&self) -> bool {
        true
    }
}
