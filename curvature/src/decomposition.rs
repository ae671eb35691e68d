//! The Hessian decomposition of Section 8.1.2, as products:
//! `H = Jᵀ H_L J + C + Cᵀ + Σ_i Σ_j [∇_{a_i} L]_j J_{s_i}ᵀ H_{[φ_i(s_i)]_j} J_{s_i}` (batch-averaged).
//!
//! For `s_i = W_i a_{i-1} + b_i`, the cross term `C` collects the second derivatives of the
//! bilinear map `(W_i, a_{i-1}) ↦ W_i a_{i-1}`: `vᵀ C w = Σ_i ∇_{s_i}Lᵀ V_{W_i} (J_{a_{i-1}} w)`,
//! so block row `W_i` of `C w` is `∇_{s_i}L ⊗ J_{a_{i-1}} w` (an `m_i × m_{i-1}` outer product
//! in our row-major layout), bias rows are zero, and since `a_{i-1}` depends only on layers
//! below `i`, `C` is block lower-triangular with zero diagonal blocks.
//!
//! Correction to the paper's text: it prints the last block row as `J_{a_ℓ} ⊗ ∇_{s_{ℓ-1}}L`;
//! from the derivation above block row `i` pairs `a_{i-1}` with `s_i`, so the last one is
//! `J_{a_{ℓ-1}} ⊗ ∇_{s_ℓ}L`. Its Kronecker order assumes column-stacked `vec(W)`; with
//! row-major `W` the factors swap. The tests check the corrected form against the Hessian.
//!
//! Costs: `C v` is one tangent sweep and an outer product per layer; `Cᵀ v` and the activation
//! term are one tangent sweep (activation term only) and one reverse sweep with seeds on the
//! `a_{i-1}` (resp. `s_i`) nodes. All reuse the reverse sweep of `∇h` cached by the pass.

use crate::error::Result;
use crate::model::{Activation, Model};
use crate::problem::{check_result, ForwardPass};
use autodiff::{Matrix, Scalar};

impl<M: Model> ForwardPass<'_, M> {
    fn layer_selected(layer: Option<usize>, i: usize) -> bool {
        layer.is_none_or(|l| l == i)
    }

    fn theta_tangents(&self, v: &[f64]) -> Result<autodiff::Tangents<f64>> {
        let th = self.node_var(self.theta_node());
        Ok(self.tape().tangents([(th, Matrix::column(v.to_vec()))])?)
    }

    /// `C v` (Section 8.1.2): block row `W_i` is `∇_{s_i}h ⊗ J_{a_{i-1}} v`, summed over the
    /// batch; only layer `i`'s block row when `layer = Some(i)` (1-based).
    pub fn c_vector_product(&self, v: &[f64], layer: Option<usize>) -> Result<Vec<f64>> {
        let layers = self.layers("c_vector_product")?;
        self.check_input("c_vector_product", v)?;
        let adjoints = self.adjoints()?;
        let tangents = self.theta_tangents(v)?;
        let mut out = vec![0.0; self.dim()];
        for (i, l) in layers.iter().enumerate() {
            if !Self::layer_selected(layer, i + 1) {
                continue;
            }
            let (Some(a_dot), Some(g_s)) =
                (tangents.of(self.node_var(l.input)), adjoints.wrt(self.node_var(l.s)))
            else {
                continue;
            };
            let mut block = Matrix::zeros(g_s.cols(), a_dot.cols());
            f64::gemm(g_s.as_ref().t(), a_dot.as_ref(), block.as_mut(), false);
            out[l.weights.clone()].copy_from_slice(block.data());
        }
        check_result("c_vector_product", out)
    }

    /// `Cᵀ v`: one reverse sweep with seeds `∇_{s_i}h · V_{W_i}` on the `a_{i-1}` nodes.
    pub fn c_transpose_vector_product(&self, v: &[f64], layer: Option<usize>) -> Result<Vec<f64>> {
        let layers = self.layers("c_transpose_vector_product")?;
        self.check_input("c_transpose_vector_product", v)?;
        let adjoints = self.adjoints()?;
        let mut seeds = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            if !Self::layer_selected(layer, i + 1) {
                continue;
            }
            let Some(g_s) = adjoints.wrt(self.node_var(l.s)) else { continue };
            let m_in = self.node_var(l.input).shape().cols;
            let w = Matrix::from_vec(g_s.cols(), m_in, v[l.weights.clone()].to_vec())?;
            let mut seed = Matrix::zeros(g_s.rows(), m_in);
            f64::gemm(g_s.as_ref(), w.as_ref(), seed.as_mut(), false);
            seeds.push((l.input, seed));
        }
        let seeds: Vec<(usize, &Matrix<f64>)> = seeds.iter().map(|(i, m)| (*i, m)).collect();
        check_result("c_transpose_vector_product", self.backward_from(&seeds)?)
    }

    /// The activation-curvature term `Σ_i J_{s_i}ᵀ (Σ_j [∇_{a_i}h]_j H_{[φ_i(s_i)]_j}) J_{s_i} v`
    /// (only layer `i` when `layer = Some(i)`): a tangent sweep for `J_{s_i} v`, the per-example
    /// curvature product of φ_i, and one reverse sweep with seeds on the `s_i` nodes.
    pub fn activation_term_vector_product(
        &self,
        v: &[f64],
        layer: Option<usize>,
    ) -> Result<Vec<f64>> {
        let layers = self.layers("activation_term_vector_product")?;
        self.check_input("activation_term_vector_product", v)?;
        let adjoints = self.adjoints()?;
        let tangents = self.theta_tangents(v)?;
        let mut seeds = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            if !Self::layer_selected(layer, i + 1) || l.activation == Activation::Identity {
                continue;
            }
            let (Some(s_dot), Some(g_a)) =
                (tangents.of(self.node_var(l.s)), adjoints.wrt(self.node_var(l.a)))
            else {
                continue;
            };
            let s_val = self.node_var(l.s).value();
            let mut seed = Matrix::zeros(s_val.rows(), s_val.cols());
            for r in 0..s_val.rows() {
                l.activation.curvature_product(
                    s_val.row(r),
                    g_a.row(r),
                    s_dot.row(r),
                    seed.row_mut(r),
                );
            }
            seeds.push((l.s, seed));
        }
        let seeds: Vec<(usize, &Matrix<f64>)> = seeds.iter().map(|(i, m)| (*i, m)).collect();
        check_result("activation_term_vector_product", self.backward_from(&seeds)?)
    }
}
