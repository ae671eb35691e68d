//! [`Ekfac`]: K-FAC's eigenbasis with re-estimated diagonal scalings (George et al. 2018).

use super::factors::layer_statistics;
use super::operator::{eigenbasis_apply, product, Layout};
use super::KfacKind;
use crate::error::{CurvatureError, Result};
use crate::model::Model;
use crate::operator::{check_apply_lengths, LinearOperator};
use crate::problem::ForwardPass;
use autodiff::linalg::symmetric_eigen;
use autodiff::{Matrix, Scalar};

#[derive(Clone, Debug)]
struct EkfacLayer {
    layout: Layout,
    q_g: Matrix<f64>,
    q_a: Matrix<f64>,
    /// `S`, `m_i × (m_{i-1}+1)`: the eigenbasis diagonal, entry `(r, c)` for `q_g[:, r] ⊗ q_a[:, c]`.
    scalings: Matrix<f64>,
}

/// EKFAC: per layer `(Q_G ⊗ Q_A) diag(S) (Q_G ⊗ Q_A)ᵀ`, with `Q_G`, `Q_A` the eigenvectors of
/// K-FAC's factors and `S = diag(Qᵀ B Q)` the exact block `B`'s diagonal in that basis:
/// `S_{rc} = (1/N) Σ_{n,k} w_{n,k} (q_{G,r}ᵀ g_{n,k})² (q_{A,c}ᵀ ā_n)²`. Among all matrices
/// diagonal in that basis (K-FAC is one) it is the closest to `B` in Frobenius norm.
#[derive(Clone, Debug)]
pub struct Ekfac {
    dim: usize,
    layers: Vec<EkfacLayer>,
}

impl<M: Model> ForwardPass<'_, M> {
    /// The EKFAC approximation at this pass, from the same statistics as
    /// [`kfac`](ForwardPass::kfac) with the same `kind`.
    pub fn ekfac(&self, kind: &KfacKind) -> Result<Ekfac> {
        let stats = layer_statistics(self, kind)?;
        let mut layers = Vec::with_capacity(stats.len());
        for s in &stats {
            let (eg, ea) =
                (symmetric_eigen(&s.output_factor())?, symmetric_eigen(&s.input_factor())?);
            // (Q_Aᵀ ā_n)², one row per example.
            let mut projected_inputs = product(s.inputs.as_ref(), ea.vectors.as_ref());
            projected_inputs.data_mut().iter_mut().for_each(|x| *x *= *x);
            let mut scalings = Matrix::zeros(s.m_out, s.m_in + 1);
            for o in &s.outputs {
                let mut projected = product(o.g.as_ref(), eg.vectors.as_ref());
                for r in 0..projected.rows() {
                    let w = o.weights[r];
                    projected.row_mut(r).iter_mut().for_each(|x| *x = w * *x * *x);
                }
                f64::gemm(
                    projected.as_ref().t(),
                    projected_inputs.as_ref(),
                    scalings.as_mut(),
                    true,
                );
            }
            let n = s.inputs.rows() as f64;
            scalings.data_mut().iter_mut().for_each(|x| *x /= n);
            layers.push(EkfacLayer {
                layout: Layout {
                    range: s.weights.start..s.weights.end + s.m_out,
                    m_out: s.m_out,
                    m_in: s.m_in,
                },
                q_g: eg.vectors,
                q_a: ea.vectors,
                scalings,
            });
        }
        Ok(Ekfac { dim: self.dim(), layers })
    }
}

impl Ekfac {
    /// `(EKFAC + λI)⁻¹ = Q diag(1/(S + λ)) Qᵀ` per layer (exact damping). Errors if `λ` is
    /// negative or not finite, or some `S + λ` is not positive.
    pub fn inverse(&self, lambda: f64) -> Result<EkfacInverse> {
        if !(lambda.is_finite() && lambda >= 0.0) {
            return Err(CurvatureError::invalid(
                "Ekfac::inverse",
                format!("damping λ must be finite and ≥ 0, got {lambda}"),
            ));
        }
        let mut layers = self.layers.clone();
        for (i, l) in layers.iter_mut().enumerate() {
            if let Some(bad) =
                l.scalings.data().iter().find(|s| (**s + lambda).is_nan() || **s + lambda <= 0.0)
            {
                return Err(CurvatureError::invalid(
                    "Ekfac::inverse",
                    format!(
                        "layer {}: a damped scaling S + λ is {:e}, not positive; raise λ",
                        i + 1,
                        bad + lambda
                    ),
                ));
            }
            l.scalings.data_mut().iter_mut().for_each(|s| *s = 1.0 / (*s + lambda));
        }
        Ok(EkfacInverse(Ekfac { dim: self.dim, layers }))
    }

    fn apply_layers(&self, op: &str, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply_lengths(op, self.dim, v, out)?;
        out.fill(0.0);
        for l in &self.layers {
            let x = l.layout.to_extended(&v[l.layout.range.clone()]);
            let y = eigenbasis_apply(&l.q_g, &l.q_a, &l.scalings, &x);
            l.layout.write_extended(&y, &mut out[l.layout.range.clone()]);
        }
        Ok(())
    }
}

impl LinearOperator for Ekfac {
    fn dim(&self) -> usize {
        self.dim
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.apply_layers("Ekfac::apply", v, out)
    }
}

/// `(EKFAC + λI)⁻¹`, from [`Ekfac::inverse`].
#[derive(Clone, Debug)]
pub struct EkfacInverse(Ekfac);

impl LinearOperator for EkfacInverse {
    fn dim(&self) -> usize {
        self.0.dim
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.0.apply_layers("EkfacInverse::apply", v, out)
    }
}
