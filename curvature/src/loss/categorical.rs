//! Categorical predictive distributions: on logits (softmax in the loss) and on probabilities
//! (softmax inside the network).

use super::PredictiveDistribution;
use crate::error::{CurvatureError, Result};
use autodiff::Matrix;
use rand::{Rng, RngCore};

/// Stable softmax of one row ([`autodiff::op::softmax::softmax`]).
pub(crate) fn softmax(z: &[f64]) -> Vec<f64> {
    autodiff::op::softmax::softmax(z)
}

/// `out ← softmax(z)` of one row, without allocating: the per-example products call it once
/// per row.
fn softmax_into(z: &[f64], out: &mut [f64]) {
    autodiff::op::softmax::softmax_rows(z, z.len(), out);
}

/// `out ← softmax` of every row of `z`, with one vectorized `exp` over the batch
/// ([`autodiff::op::softmax::softmax_rows`]).
fn softmax_rows(z: &Matrix<f64>, out: &mut Matrix<f64>) {
    autodiff::op::softmax::softmax_rows(z.data(), z.cols(), out.data_mut());
}

/// Rows `(Σ_j y_j) F_R u` (`y = None`: `F_R u`) with `F_R u = p ⊙ (u − pᵀu)`, from the
/// softmax of every row at once.
fn softmax_curvature_rows(
    z: &Matrix<f64>,
    y: Option<&Matrix<f64>>,
    u: &Matrix<f64>,
    out: &mut Matrix<f64>,
) {
    softmax_rows(z, out);
    let cols = z.cols();
    autodiff::op::softmax::softmax_jacobian_rows(out.data_mut(), u.data(), cols);
    if let Some(y) = y {
        let cols = cols.max(1);
        for (row, t) in out.data_mut().chunks_mut(cols).zip(y.data().chunks(cols)) {
            let total: f64 = t.iter().sum();
            row.iter_mut().for_each(|o| *o *= total);
        }
    }
}

/// Draws a category from probabilities `p` (normalized here) and writes a one-hot row.
fn sample_one_hot(p: &[f64], rng: &mut dyn RngCore, y: &mut [f64]) {
    let total: f64 = p.iter().sum();
    let mut u = rng.random::<f64>() * total;
    y.fill(0.0);
    let mut chosen = p.len() - 1;
    for (k, &pk) in p.iter().enumerate() {
        if u < pk {
            chosen = k;
            break;
        }
        u -= pk;
    }
    y[chosen] = 1.0;
}

/// `R_{y|z} = Categorical(softmax(z))` on logits: `L = −Σ_j y_j ln softmax(z)_j`,
/// `∇_z L = (Σ_j y_j) p − y`, `H_L = (Σ_j y_j)(diag(p) − p pᵀ)`, `F_R = diag(p) − p pᵀ` with
/// `p = softmax(z)`. Targets are one-hot (or probability) rows; for them `Σ y = 1` and
/// `F_R = H_L`: `z` is the natural parameter (Section 9.2).
#[derive(Clone, Copy, Debug, Default)]
pub struct SoftmaxCrossEntropy;

impl PredictiveDistribution for SoftmaxCrossEntropy {
    fn name(&self) -> &str {
        "softmax_cross_entropy"
    }
    fn target_dim(&self, output_dim: usize) -> Result<usize> {
        if output_dim < 2 {
            return Err(CurvatureError::invalid(
                "softmax_cross_entropy::target_dim",
                "needs at least 2 classes",
            ));
        }
        Ok(output_dim)
    }
    /// One-hot or probability rows ([`probability_target`](super::probability_target)).
    fn check_target(&self, y: &[f64]) -> std::result::Result<(), super::TargetIssue> {
        super::probability_target(y)
    }
    fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        // A zero target contributes nothing, even where `lse − v` overflows (logits ±1e308).
        y.iter().zip(z).map(|(t, v)| if *t == 0.0 { 0.0 } else { t * (lse - v) }).sum()
    }
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
        softmax_into(z, out);
        let total: f64 = y.iter().sum();
        for k in 0..z.len() {
            out[k] = total * out[k] - y[k];
        }
    }
    /// The softmax of every row at once (one vectorized `exp` over the batch), then
    /// `(Σ_j y_j) p − y`.
    fn grad_z_rows(&self, z: &Matrix<f64>, y: &Matrix<f64>, out: &mut Matrix<f64>) {
        softmax_rows(z, out);
        let cols = z.cols().max(1);
        for (p, t) in out.data_mut().chunks_mut(cols).zip(y.data().chunks(cols)) {
            let total: f64 = t.iter().sum();
            for (pk, tk) in p.iter_mut().zip(t) {
                *pk = total * *pk - tk;
            }
        }
    }
    fn apply_h_l(&self, z: &[f64], y: &[f64], u: &[f64], out: &mut [f64]) {
        let total: f64 = y.iter().sum();
        self.apply_f_r(z, u, out);
        out.iter_mut().for_each(|o| *o *= total);
    }
    /// From the softmax of every row at once, as [`grad_z_rows`](Self::grad_z_rows).
    fn apply_h_l_rows(
        &self,
        z: &Matrix<f64>,
        y: &Matrix<f64>,
        u: &Matrix<f64>,
        out: &mut Matrix<f64>,
    ) {
        softmax_curvature_rows(z, Some(y), u, out);
    }
    fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]) {
        softmax_into(z, out);
        autodiff::op::softmax::softmax_jacobian_rows(out, u, z.len());
    }
    /// From the softmax of every row at once, as [`grad_z_rows`](Self::grad_z_rows).
    fn apply_f_r_rows(&self, z: &Matrix<f64>, u: &Matrix<f64>, out: &mut Matrix<f64>) {
        softmax_curvature_rows(z, None, u, out);
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y: &mut [f64]) {
        sample_one_hot(&softmax(z), rng, y);
    }
    fn is_natural_parameter(&self) -> bool {
        true
    }
}

/// `R_{y|z} = Categorical(z)` with `z` the probabilities (a softmax inside `f`):
/// `L = −Σ_j y_j ln z_j`, `∇_z L = −y/z`, `H_L = diag(y/z²)`, and, treating `z` as free
/// coordinates, `F_R = E_y[(y/z)(y/z)ᵀ] = diag(1/z)` (`E_y[H_L]` too). `F_R ≠ H_L` at a given
/// target, so the Fisher and the GGN differ (Section 9.2). Outputs must be positive.
#[derive(Clone, Copy, Debug, Default)]
pub struct CategoricalProbabilities;

impl PredictiveDistribution for CategoricalProbabilities {
    fn name(&self) -> &str {
        "categorical_probabilities"
    }
    fn target_dim(&self, output_dim: usize) -> Result<usize> {
        if output_dim < 2 {
            return Err(CurvatureError::invalid(
                "categorical_probabilities::target_dim",
                "needs at least 2 classes",
            ));
        }
        Ok(output_dim)
    }
    fn check_output(&self, z: &[f64]) -> Result<()> {
        match z.iter().position(|&p| !(p > 0.0 && p.is_finite())) {
            Some(j) => Err(CurvatureError::invalid(
                "categorical_probabilities",
                format!("probabilities must be positive, got {} at output {j} (use a softmax last layer)", z[j]),
            )),
            None => Ok(()),
        }
    }
    /// One-hot or probability rows ([`probability_target`](super::probability_target)).
    fn check_target(&self, y: &[f64]) -> std::result::Result<(), super::TargetIssue> {
        super::probability_target(y)
    }
    fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
        -y.iter().zip(z).map(|(t, p)| if *t == 0.0 { 0.0 } else { t * p.ln() }).sum::<f64>()
    }
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
        for k in 0..z.len() {
            out[k] = -y[k] / z[k];
        }
    }
    fn apply_h_l(&self, z: &[f64], y: &[f64], u: &[f64], out: &mut [f64]) {
        for k in 0..z.len() {
            out[k] = y[k] / (z[k] * z[k]) * u[k];
        }
    }
    fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]) {
        for k in 0..z.len() {
            out[k] = u[k] / z[k];
        }
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y: &mut [f64]) {
        sample_one_hot(z, rng, y);
    }
    fn is_natural_parameter(&self) -> bool {
        false
    }
}
