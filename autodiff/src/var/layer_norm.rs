//! Layer normalization of each row, [`Var::layer_norm`], composed from primitive tape ops.
//!
//! Composing it (row means, [`repeat_column`](Var::repeat_column), `sqrt`, elementwise
//! division, [`repeat_row`](Var::repeat_row)) instead of writing a fused rule makes every
//! product through it exact with nothing new to get wrong: the reverse rules of the pieces are
//! generic over the scalar, so on a [`Dual`](crate::Dual) tape the reverse sweep
//! differentiates itself and forward-over-reverse `H v` includes the second derivatives of the
//! normalization (through the mean, the variance and `1/√·`). The price is a few `N×n`
//! intermediate nodes where a fused op would keep two `N×1` statistics.

use crate::error::{AutodiffError, Result};
use crate::matrix::Shape;
use crate::scalar::Scalar;
use crate::tape::Var;

impl<'t, T: Scalar> Var<'t, T> {
    /// Layer normalization over the features of each row (Ba, Kiros & Hinton 2016):
    /// `y = γ ⊙ (x − μ) / √(σ² + ε) + β` with `μ`, `σ²` the mean and (biased, `1/n`) variance
    /// of the row's `n` features; `gamma` and `beta` are `1×n` rows (from θ, usually) applied
    /// to every row. `epsilon` must be finite and `≥ 0`; with `ε = 0` a constant row divides
    /// by zero.
    ///
    /// ```
    /// use autodiff::{Matrix, Tape};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.input(Matrix::from_vec(1, 4, vec![1.0, 2.0, 3.0, 6.0])?);
    /// let gamma = tape.constant(Matrix::filled(1, 4, 1.0));
    /// let beta = tape.constant(Matrix::filled(1, 4, 0.0));
    /// let y = x.layer_norm(gamma, beta, 0.0)?.value();
    /// let mean = y.data().iter().sum::<f64>() / 4.0;
    /// let var = y.data().iter().map(|v| v * v).sum::<f64>() / 4.0;
    /// assert!(mean.abs() < 1e-14 && (var - 1.0).abs() < 1e-14);
    /// # Ok::<(), autodiff::AutodiffError>(())
    /// ```
    pub fn layer_norm(
        self,
        gamma: Var<'t, T>,
        beta: Var<'t, T>,
        epsilon: f64,
    ) -> Result<Var<'t, T>> {
        self.tape.check_var("layer_norm", gamma)?;
        self.tape.check_var("layer_norm", beta)?;
        let s = self.shape();
        let (m, n) = (s.rows, s.cols);
        if n == 0 {
            return Err(AutodiffError::invalid(
                "layer_norm",
                format!("a {s} input has no features"),
            ));
        }
        for (what, p) in [("gamma", gamma), ("beta", beta)] {
            if p.shape() != Shape::new(1, n) {
                return Err(AutodiffError::shape(
                    format!("layer_norm (input vs {what}, which must be 1×n)"),
                    s,
                    p.shape(),
                ));
            }
        }
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(AutodiffError::invalid(
                "layer_norm",
                format!("epsilon must be finite and non-negative, got {epsilon}"),
            ));
        }
        let mean = self.mean_rows()?;
        let centered = self.sub(mean.repeat_column(n)?)?;
        let variance = centered.square()?.mean_rows()?;
        let deviation = variance.add_scalar(epsilon)?.sqrt()?;
        let normalized = centered.div(deviation.repeat_column(n)?)?;
        normalized.mul(gamma.repeat_row(m)?)?.add_row(beta)
    }
}
