//! [`Kfac`]: the block-diagonal `G_i ⊗ Ā_{i-1}` operator, and its damped inverse [`KfacInverse`].

use super::factors::layer_statistics;
use super::KfacKind;
use crate::error::{CurvatureError, Result};
use crate::model::Model;
use crate::operator::{check_apply_lengths, LinearOperator};
use crate::problem::ForwardPass;
use autodiff::linalg::symmetric_eigen;
use autodiff::{MatRef, Matrix, Scalar};
use std::ops::Range;

/// `A B` for views (either may be a transpose).
pub(crate) fn product<T: Scalar>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> Matrix<T> {
    let mut c = Matrix::zeros(a.rows(), b.cols());
    T::gemm(a, b, c.as_mut(), false);
    c
}

/// `Q_G (scale ∘ (Q_Gᵀ X Q_A)) Q_Aᵀ`: a matrix diagonal in the basis `Q_G ⊗ Q_A`, applied to
/// `vec(X)` (row-major).
pub(crate) fn eigenbasis_apply(
    q_g: &Matrix<f64>,
    q_a: &Matrix<f64>,
    scale: &Matrix<f64>,
    x: &Matrix<f64>,
) -> Matrix<f64> {
    let mut z = product(product(q_g.as_ref().t(), x.as_ref()).as_ref(), q_a.as_ref());
    z.data_mut().iter_mut().zip(scale.data()).for_each(|(z, s)| *z *= s);
    product(product(q_g.as_ref(), z.as_ref()).as_ref(), q_a.as_ref().t())
}

/// One layer's Kronecker factors and where its parameters sit in θ.
#[derive(Clone, Debug, PartialEq)]
pub struct KfacLayer {
    /// Positions of `vec(W_i)` (row-major `m_i × m_{i-1}`) in θ.
    pub weights: Range<usize>,
    /// Positions of `b_i` in θ (right after the weights).
    pub biases: Range<usize>,
    /// The input-side factor `Ā_{i-1} = (1/N) Σ_n ā_n ā_nᵀ`, `(m_{i-1}+1) × (m_{i-1}+1)`, the
    /// bias column last.
    pub a: Matrix<f64>,
    /// The output-side factor `G_i`, `m_i × m_i`.
    pub g: Matrix<f64>,
}

impl KfacLayer {
    /// `m_i`.
    pub fn m_out(&self) -> usize {
        self.g.rows()
    }

    /// `m_{i-1}`.
    pub fn m_in(&self) -> usize {
        self.a.rows() - 1
    }

    /// All of the layer's positions in θ, `[vec(W_i), b_i]`.
    pub fn range(&self) -> Range<usize> {
        self.weights.start..self.biases.end
    }

    /// θ's layer block `[vec(W_i), b_i]` as the extended matrix `W̄ = [W | b]`
    /// (`m_i × (m_{i-1}+1)`): the permutation between θ's layout and the Kronecker layout.
    pub fn to_extended(&self, block: &[f64]) -> Matrix<f64> {
        self.layout().to_extended(block)
    }

    /// The inverse of [`to_extended`](Self::to_extended): writes `W̄` into θ's layer block.
    pub fn write_extended(&self, extended: &Matrix<f64>, block: &mut [f64]) {
        self.layout().write_extended(extended, block)
    }

    pub(crate) fn layout(&self) -> Layout {
        Layout { range: self.range(), m_out: self.m_out(), m_in: self.m_in() }
    }
}

/// Where a layer sits in θ and its shape: enough to permute between θ and `vec(W̄)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout {
    pub(crate) range: Range<usize>,
    pub(crate) m_out: usize,
    pub(crate) m_in: usize,
}

impl Layout {
    pub(crate) fn to_extended(&self, block: &[f64]) -> Matrix<f64> {
        let (m_out, m_in) = (self.m_out, self.m_in);
        Matrix::from_fn(m_out, m_in + 1, |r, c| {
            if c < m_in {
                block[r * m_in + c]
            } else {
                block[m_out * m_in + r]
            }
        })
    }

    pub(crate) fn write_extended(&self, extended: &Matrix<f64>, block: &mut [f64]) {
        let (m_out, m_in) = (self.m_out, self.m_in);
        for r in 0..m_out {
            let row = extended.row(r);
            block[r * m_in..(r + 1) * m_in].copy_from_slice(&row[..m_in]);
            block[m_out * m_in + r] = row[m_in];
        }
    }
}

/// The K-FAC approximation: block diagonal over layers, block `i` is `G_i ⊗ Ā_{i-1}` in the
/// layout of [`KfacLayer::to_extended`] (zero off the layers' blocks).
#[derive(Clone, Debug, PartialEq)]
pub struct Kfac {
    dim: usize,
    layers: Vec<KfacLayer>,
}

impl<M: Model> ForwardPass<'_, M> {
    /// The K-FAC approximation at this pass, with the `G` factors of `kind`; needs a layered
    /// model. Type-2 runs one reverse sweep per output dimension, the others one.
    pub fn kfac(&self, kind: &KfacKind) -> Result<Kfac> {
        let stats = layer_statistics(self, kind)?;
        let layers = stats
            .iter()
            .map(|s| KfacLayer {
                weights: s.weights.clone(),
                biases: s.weights.end..s.weights.end + s.m_out,
                a: s.input_factor(),
                g: s.output_factor(),
            })
            .collect();
        Ok(Kfac { dim: self.dim(), layers })
    }
}

impl Kfac {
    /// An operator from given factors (e.g. running averages), over θ of dimension `dim`.
    /// Errors if a layer's factors are not square, do not fit its ranges, or fall outside θ.
    pub fn from_layers(dim: usize, layers: Vec<KfacLayer>) -> Result<Self> {
        for (i, l) in layers.iter().enumerate() {
            let ok = l.a.rows() == l.a.cols()
                && l.g.rows() == l.g.cols()
                && l.a.rows() >= 1
                && l.weights.len() == l.m_out() * l.m_in()
                && l.biases.len() == l.m_out()
                && l.biases.start == l.weights.end
                && l.biases.end <= dim;
            if !ok {
                return Err(CurvatureError::Dimension {
                    op: "Kfac::from_layers".into(),
                    expected: format!(
                        "layer {i}: square factors fitting its ranges inside θ of length {dim}"
                    ),
                    actual: format!(
                        "Ā {}, G {}, weights {:?}, biases {:?}",
                        l.a.shape(),
                        l.g.shape(),
                        l.weights,
                        l.biases
                    ),
                });
            }
        }
        Ok(Kfac { dim, layers })
    }

    /// The layers' factors.
    pub fn layers(&self) -> &[KfacLayer] {
        &self.layers
    }

    /// The exponential moving average `self ← decay · self + (1 − decay) · other` of the
    /// factors (Martens & Grosse 2015, Section 5). Errors if the layouts differ or
    /// `decay ∉ [0, 1]`.
    pub fn blend(&mut self, other: &Kfac, decay: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&decay) {
            return Err(CurvatureError::invalid(
                "Kfac::blend",
                format!("decay must be in [0, 1], got {decay}"),
            ));
        }
        let same = self.dim == other.dim
            && self.layers.len() == other.layers.len()
            && self.layers.iter().zip(&other.layers).all(|(a, b)| {
                a.weights == b.weights && a.a.shape() == b.a.shape() && a.g.shape() == b.g.shape()
            });
        if !same {
            return Err(CurvatureError::invalid(
                "Kfac::blend",
                "the two approximations' layouts differ",
            ));
        }
        for (mine, theirs) in self.layers.iter_mut().zip(&other.layers) {
            for (x, y) in mine.a.data_mut().iter_mut().zip(theirs.a.data()) {
                *x = decay * *x + (1.0 - decay) * y;
            }
            for (x, y) in mine.g.data_mut().iter_mut().zip(theirs.g.data()) {
                *x = decay * *x + (1.0 - decay) * y;
            }
        }
        Ok(())
    }

    /// `(K + damping)⁻¹` as an operator (see [`KfacDamping`]). Errors if `λ` is negative or not
    /// finite, or a damped factor is not positive definite.
    pub fn inverse(&self, damping: KfacDamping) -> Result<KfacInverse> {
        let lambda = damping.lambda();
        if !(lambda.is_finite() && lambda >= 0.0) {
            return Err(CurvatureError::invalid(
                "Kfac::inverse",
                format!("damping λ must be finite and ≥ 0, got {lambda}"),
            ));
        }
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| Ok((l.layout(), layer_inverse(i + 1, l, damping)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(KfacInverse { dim: self.dim, layers, damping })
    }
}

impl LinearOperator for Kfac {
    fn dim(&self) -> usize {
        self.dim
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply_lengths("Kfac::apply", self.dim, v, out)?;
        out.fill(0.0);
        for l in &self.layers {
            let x = l.to_extended(&v[l.range()]);
            let y = product(product(l.g.as_ref(), x.as_ref()).as_ref(), l.a.as_ref());
            l.write_extended(&y, &mut out[l.range()]);
        }
        Ok(())
    }
}

/// How [`Kfac::inverse`] damps each block `G ⊗ Ā`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KfacDamping {
    /// Factored Tikhonov damping (Martens & Grosse 2015, Section 6.3):
    /// `(G + (√λ/π) I) ⊗ (Ā + π√λ I)` with `π = sqrt((tr Ā / dim Ā) / (tr G / dim G))`
    /// (π = 1 if a trace is zero); the inverse is the Kronecker product of the factors'
    /// inverses.
    Factored {
        /// `λ ≥ 0`.
        lambda: f64,
    },
    /// Exact damping `(G ⊗ Ā + λI)⁻¹ = (Q_G ⊗ Q_A) diag(1/(d_G d_Aᵀ + λ)) (Q_G ⊗ Q_A)ᵀ`
    /// through the factors' eigen decompositions.
    Exact {
        /// `λ ≥ 0`.
        lambda: f64,
    },
}

impl KfacDamping {
    /// `λ`.
    pub fn lambda(&self) -> f64 {
        match *self {
            KfacDamping::Factored { lambda } | KfacDamping::Exact { lambda } => lambda,
        }
    }
}

#[derive(Clone, Debug)]
enum LayerInverse {
    /// `(G + (√λ/π) I)⁻¹` and `(Ā + π√λ I)⁻¹`.
    Factored {
        g_inv: Matrix<f64>,
        a_inv: Matrix<f64>,
        /// The same in `f32`, when the products run in single precision.
        single: Option<(Matrix<f32>, Matrix<f32>)>,
    },
    /// Eigenbases and `1/(d_G d_Aᵀ + λ)`.
    Exact { q_g: Matrix<f64>, q_a: Matrix<f64>, scale: Matrix<f64> },
}

fn trace(m: &Matrix<f64>) -> f64 {
    (0..m.rows()).map(|i| m[(i, i)]).sum()
}

fn not_positive_definite(layer: usize, which: &str) -> CurvatureError {
    CurvatureError::invalid(
        "Kfac::inverse",
        format!("layer {layer}: the damped {which} is not positive definite; raise λ"),
    )
}

/// `(M + shift I)⁻¹` for symmetric `M` by Cholesky, `L⁻ᵀ L⁻¹` (the inverse of a triangular
/// matrix by substitution, the product by GEMM): about `n³` flops, so a 1000-wide layer's
/// factor is inverted in about a second. `None` unless `M + shift I` is positive definite.
fn spd_inverse(m: &Matrix<f64>, shift: f64) -> Option<Matrix<f64>> {
    let n = m.rows();
    let shifted = Matrix::from_fn(n, n, |i, j| m[(i, j)] + if i == j { shift } else { 0.0 });
    let l = autodiff::linalg::cholesky(&shifted).ok()?;
    // Column j of L⁻¹ solves L x = e_j; x is zero above j. Stored transposed (row j), so the
    // substitution reads contiguous rows of L and of the result.
    let mut inv_t = Matrix::zeros(n, n);
    for j in 0..n {
        let x = inv_t.row_mut(j);
        x[j] = 1.0 / l[(j, j)];
        for i in j + 1..n {
            let li = &l.row(i)[j..i];
            let s: f64 = li.iter().zip(&x[j..i]).map(|(a, b)| a * b).sum();
            x[i] = -s / l[(i, i)];
        }
    }
    // (L⁻¹)ᵀ L⁻¹ = inv_t · inv_tᵀ.
    Some(product(inv_t.as_ref(), inv_t.as_ref().t()))
}

fn layer_inverse(index: usize, l: &KfacLayer, damping: KfacDamping) -> Result<LayerInverse> {
    match damping {
        KfacDamping::Factored { lambda } => {
            let (ta, tg) = (trace(&l.a) / l.a.rows() as f64, trace(&l.g) / l.g.rows() as f64);
            let pi = if ta > 0.0 && tg > 0.0 { (ta / tg).sqrt() } else { 1.0 };
            let invert = |m: &Matrix<f64>, shift: f64, which: &str| {
                spd_inverse(m, shift).ok_or_else(|| not_positive_definite(index, which))
            };
            Ok(LayerInverse::Factored {
                g_inv: invert(&l.g, lambda.sqrt() / pi, "G factor")?,
                a_inv: invert(&l.a, pi * lambda.sqrt(), "Ā factor")?,
                single: None,
            })
        }
        KfacDamping::Exact { lambda } => {
            let (eg, ea) = (symmetric_eigen(&l.g)?, symmetric_eigen(&l.a)?);
            let scale = Matrix::from_fn(eg.values.len(), ea.values.len(), |r, c| {
                1.0 / (eg.values[r] * ea.values[c] + lambda)
            });
            if scale.data().iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                return Err(not_positive_definite(index, "block G ⊗ Ā + λI"));
            }
            Ok(LayerInverse::Exact { q_g: eg.vectors, q_a: ea.vectors, scale })
        }
    }
}

/// `(K + damping)⁻¹`, from [`Kfac::inverse`]; block diagonal like [`Kfac`] (zero off the
/// layers' blocks).
#[derive(Clone, Debug)]
pub struct KfacInverse {
    dim: usize,
    layers: Vec<(Layout, LayerInverse)>,
    damping: KfacDamping,
}

impl KfacInverse {
    /// The damping it was built with.
    pub fn damping(&self) -> KfacDamping {
        self.damping
    }

    /// Runs the two products per layer of factored damping in `f32` (single-precision GEMM, more
    /// than twice the `f64` rate on common CPUs), rounding the vector and the inverted factors to
    /// `f32`: results agree with the `f64` ones to about `1e-6` relative, ample for a
    /// preconditioner that is itself an approximation. Layers with exact damping stay `f64`.
    pub fn with_single_precision_products(mut self) -> Self {
        for (_, inverse) in &mut self.layers {
            if let LayerInverse::Factored { g_inv, a_inv, single } = inverse {
                *single = Some((g_inv.map(|v| v as f32), a_inv.map(|v| v as f32)));
            }
        }
        self
    }
}

impl LinearOperator for KfacInverse {
    fn dim(&self) -> usize {
        self.dim
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply_lengths("KfacInverse::apply", self.dim, v, out)?;
        out.fill(0.0);
        for (layout, inverse) in &self.layers {
            let x = layout.to_extended(&v[layout.range.clone()]);
            let y = match inverse {
                LayerInverse::Factored { single: Some((g32, a32)), .. } => {
                    let x32 = x.map(|v| v as f32);
                    let y32 = product(product(g32.as_ref(), x32.as_ref()).as_ref(), a32.as_ref());
                    y32.map(f64::from)
                }
                LayerInverse::Factored { g_inv, a_inv, .. } => {
                    product(product(g_inv.as_ref(), x.as_ref()).as_ref(), a_inv.as_ref())
                }
                LayerInverse::Exact { q_g, q_a, scale } => eigenbasis_apply(q_g, q_a, scale, &x),
            };
            layout.write_extended(&y, &mut out[layout.range.clone()]);
        }
        Ok(())
    }
}
