//! Objectives with closed forms shared by the first-step tests of the solvers.

// Each test file uses a part of these helpers.
#![allow(dead_code)]

use autodiff::Matrix;
use curvature::{CurvatureKind, LinearOperator};
use optim::Objective;

/// `h(θ) = ½ θᵀ A θ − bᵀ θ` whose curvature matrix is a separate symmetric `B`: with `B ≠ A`
/// the solvers' quadratic model is wrong by a known amount, so the reduction ratio `ρ`, and
/// which CG iterate is best, have closed forms.
pub struct ModelMismatch {
    /// The objective's matrix `A`.
    pub a: Matrix<f64>,
    /// The linear term `b`.
    pub b: Vec<f64>,
    /// The curvature matrix `B` handed to the solver, whatever kind it asks for.
    pub curvature: Matrix<f64>,
}

impl ModelMismatch {
    /// The one-parameter case `h(θ) = ½ a θ² − b θ` with curvature `β`.
    pub fn scalar(a: f64, b: f64, beta: f64) -> Self {
        ModelMismatch {
            a: Matrix::filled(1, 1, a),
            b: vec![b],
            curvature: Matrix::filled(1, 1, beta),
        }
    }

    /// `A θ` written out (independent of the library's `matvec`).
    fn a_times(&self, theta: &[f64]) -> Vec<f64> {
        (0..self.b.len())
            .map(|i| (0..self.b.len()).map(|j| self.a[(i, j)] * theta[j]).sum())
            .collect()
    }
}

impl Objective for ModelMismatch {
    fn dim(&self) -> usize {
        self.b.len()
    }
    fn loss(&mut self, theta: &[f64]) -> optim::Result<f64> {
        let at = self.a_times(theta);
        Ok(theta.iter().zip(&at).zip(&self.b).map(|((t, a), b)| 0.5 * t * a - b * t).sum())
    }
    fn loss_and_gradient(&mut self, theta: &[f64], gradient: &mut [f64]) -> optim::Result<f64> {
        for ((g, a), b) in gradient.iter_mut().zip(self.a_times(theta)).zip(&self.b) {
            *g = a - b;
        }
        self.loss(theta)
    }
    fn curvature(
        &mut self,
        _theta: &[f64],
        _kind: &CurvatureKind,
    ) -> optim::Result<Box<dyn LinearOperator + '_>> {
        Ok(Box::new(&self.curvature))
    }
}

/// The diagonal matrix with `entries` on its diagonal.
pub fn diagonal(entries: &[f64]) -> Matrix<f64> {
    Matrix::from_fn(entries.len(), entries.len(), |i, j| if i == j { entries[i] } else { 0.0 })
}

/// `max_i |x_i − y_i| / max(1, max_i |y_i|)`.
pub fn relative_difference(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len());
    let scale = y.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    x.iter().zip(y).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs())) / scale
}
