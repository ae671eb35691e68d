//! The Hessian decomposition of Section 8.1.2, as products:
//! `H = Jᵀ H_L J + C + Cᵀ + Σ_i Σ_j [∇_{a_i} L]_j J_{s_i}ᵀ H_{[φ_i(s_i)]_j} J_{s_i}` (batch-averaged).
//!
//! For `s_i = W_i a_{i-1} + b_i`, the cross term `C` collects the second derivatives of the
//! bilinear map `(W_i, a_{i-1}) ↦ W_i a_{i-1}`: `vᵀ C w = Σ_i ∇_{s_i}Lᵀ V_{W_i} (J_{a_{i-1}} w)`,
//! so block row `W_i` of `C w` is `∇_{s_i}L ⊗ J_{a_{i-1}} w` (an `m_i × m_{i-1}` outer product
//! in our row-major layout), bias rows are zero, and since `a_{i-1}` depends only on layers
//! below `i`, `C` is block lower-triangular with zero diagonal blocks.
//!
//! The same formulas hold for any layered model whose only nonlinear ops are the layers'
//! `s_i = W_i a_{i-1} + b_i` and `a_i = φ_i(s_i)`, with the input `a_{i-1}` any node (a residual
//! sum, say) and a weight block used by several layers: θ ↦ (W_1, …, W_ℓ) is then a linear
//! selection `P`, every term is `Pᵀ (term in the W_i) P`, and the block rows of layers sharing
//! `W` add up in `W`'s positions of θ (lower-triangularity is lost; the sum is still exact).
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
use crate::model::Model;
use crate::problem::{check_result, ForwardPass};
use autodiff::{Matrix, Scalar};

impl<M: Model> ForwardPass<'_, M> {
    fn layer_selected(layer: Option<usize>, i: usize) -> bool {
        layer.is_none_or(|l| l == i)
    }

    /// The layers, each weight range inside θ and `m_i × m_{i-1}` long (an error naming the
    /// layer otherwise, rather than a slice panic in the products).
    fn checked_layers(&self, op: &str) -> Result<&[crate::problem::LayerNodes]> {
        let layers = self.layers(op)?;
        for (i, l) in layers.iter().enumerate() {
            let (m_out, m_in) =
                (self.node_var(l.s).shape().cols, self.node_var(l.input).shape().cols);
            if l.weights.end > self.dim() || l.weights.len() != m_out * m_in {
                return Err(crate::CurvatureError::invalid(
                    op,
                    format!(
                        "layer {}: weights {:?} must be {m_out}×{m_in} = {} entries inside θ (length {})",
                        i + 1,
                        l.weights,
                        m_out * m_in,
                        self.dim()
                    ),
                ));
            }
        }
        Ok(layers)
    }

    pub(crate) fn theta_tangents(&self, v: &[f64]) -> Result<autodiff::Tangents<f64>> {
        let th = self.node_var(self.theta_node());
        Ok(self.tape().tangents([(th, Matrix::column(v.to_vec()))])?)
    }

    /// `C v` (Section 8.1.2): block row `W_i` is `∇_{s_i}h ⊗ J_{a_{i-1}} v`, summed over the
    /// batch; only layer `i`'s block row when `layer = Some(i)` (1-based).
    pub fn c_vector_product(&self, v: &[f64], layer: Option<usize>) -> Result<Vec<f64>> {
        let layers = self.checked_layers("c_vector_product")?;
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
            // Added, not copied: a weight block used by several layers (weight sharing) gets
            // the sum of their block rows, as the chain rule through θ ↦ (W_i, W_j) gives.
            for (o, c) in out[l.weights.clone()].iter_mut().zip(block.data()) {
                *o += c;
            }
        }
        check_result("c_vector_product", out)
    }

    /// `Cᵀ v`: one reverse sweep with seeds `∇_{s_i}h · V_{W_i}` on the `a_{i-1}` nodes.
    pub fn c_transpose_vector_product(&self, v: &[f64], layer: Option<usize>) -> Result<Vec<f64>> {
        let layers = self.checked_layers("c_transpose_vector_product")?;
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
        let layers = self.checked_layers("activation_term_vector_product")?;
        self.check_input("activation_term_vector_product", v)?;
        let adjoints = self.adjoints()?;
        let tangents = self.theta_tangents(v)?;
        let mut seeds = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            if !Self::layer_selected(layer, i + 1) || l.activation.is_identity() {
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

impl<M: Model> ForwardPass<'_, M> {
    /// `H v` on the recorded pass of a layered model, fused (Section 8.1.2; Pearlmutter 1994):
    /// `H v = Jᵀ H_L J v + C v + Cᵀ v + Σ_i J_{s_i}ᵀ (∇_{a_i}h · ∇²φ_i) J_{s_i} v`, all four
    /// terms from one tangent sweep and one reverse sweep over the recorded `f64` tape.
    ///
    /// The tangent sweep is the R-op forward `ṡ_i = W_i ȧ_{i-1} + V_i a_{i-1} + v_{b_i}`,
    /// `ȧ_i = φ_i'(s_i) ṡ_i`, reusing the recorded `s_i`, `a_i`; the reverse sweep is seeded with
    /// `H_L J v / N` at `z`, `∇_{s_i}h · V_i` at each `a_{i-1}` that depends on θ (`Cᵀ v`) and
    /// `∇_{a_i}h ⊙ φ_i''(s_i) ⊙ ṡ_i` at each `s_i` (the activation term, `φ_i''` from the recorded
    /// `a_i` where it can: [`Nonlinearity::curvature_product_with_output`](crate::model::Nonlinearity::curvature_product_with_output)), where `∇_{s_i}h` and
    /// `∇_{a_i}h` are the adjoints of the gradient's reverse sweep, cached by the pass. `C v`
    /// adds the outer products `∇_{s_i}hᵀ ȧ_{i-1}` into `W_i`'s rows.
    ///
    /// Cost per product, with `F` the matrix products of one forward pass and `F₁` its first
    /// layer's: tangent sweep `2F − F₁`, reverse sweep `2F − F₁`, `C v` and the `Cᵀ v` seeds
    /// `F − F₁` each: `6F − 4F₁` (against `≈ 8F − 5F₁` for a dual forward and dual backward).
    ///
    /// `None` when the fused path does not apply (a model without layers, or layers that fail
    /// the checks of the Section 8.1.2 products); the caller then takes the dual path.
    pub(crate) fn fused_hessian_vector_product(&self, v: &[f64]) -> Option<Result<Vec<f64>>> {
        let layers = self.checked_layers("hessian_vector_product").ok()?;
        Some(self.fused_hessian_vector_product_on(layers, v))
    }

    fn fused_hessian_vector_product_on(
        &self,
        layers: &[crate::problem::LayerNodes],
        v: &[f64],
    ) -> Result<Vec<f64>> {
        let op = "hessian_vector_product";
        self.check_input(op, v)?;
        let adjoints = self.adjoints()?;
        let z = self.node_var(self.output_node());
        let mut keep = vec![z];
        for l in layers {
            keep.push(self.node_var(l.input));
            keep.push(self.node_var(l.s));
        }
        let th = self.node_var(self.theta_node());
        let tangents = self.tape().tangents_of([(th, Matrix::column(v.to_vec()))], &keep)?;
        let mut out = vec![0.0; self.dim()];
        let mut seeds: Vec<(usize, Matrix<f64>)> = Vec::with_capacity(2 * layers.len() + 1);
        // Jᵀ H_L J v: the loss curvature seed at z.
        if let Some(z_dot) = tangents.of(z) {
            let problem = self.problem();
            let u = crate::loss::apply_h_l_batch(problem.loss, self.output(), problem.y, z_dot)?;
            seeds.push((self.output_node(), u));
        }
        for l in layers {
            let input = self.node_var(l.input);
            let g_s = adjoints.wrt(self.node_var(l.s));
            // An input that does not depend on θ (x for the first layer) has no tangent: no
            // C v block and no Cᵀ v seed (its adjoint would reach no parameter).
            if let (Some(g_s), Some(a_dot)) = (g_s, tangents.of(input)) {
                let m_in = input.shape().cols;
                // C v: W_i's block row `∇_{s_i}hᵀ ȧ_{i-1}`, added (shared weights sum).
                let mut block = Matrix::zeros(g_s.cols(), m_in);
                f64::gemm(g_s.as_ref().t(), a_dot.as_ref(), block.as_mut(), false);
                for (o, c) in out[l.weights.clone()].iter_mut().zip(block.data()) {
                    *o += c;
                }
                // Cᵀ v: seed `∇_{s_i}h · V_i` on a_{i-1}.
                let w = Matrix::from_vec(g_s.cols(), m_in, v[l.weights.clone()].to_vec())?;
                let mut seed = Matrix::zeros(g_s.rows(), m_in);
                f64::gemm(g_s.as_ref(), w.as_ref(), seed.as_mut(), false);
                seeds.push((l.input, seed));
            }
            // The activation term: seed `∇_{a_i}h ⊙ φ_i''(s_i) ⊙ ṡ_i` (per example) on s_i.
            if l.activation.is_identity() {
                continue;
            }
            let (Some(s_dot), Some(g_a)) =
                (tangents.of(self.node_var(l.s)), adjoints.wrt(self.node_var(l.a)))
            else {
                continue;
            };
            let s_var = self.node_var(l.s);
            let (rows, cols) = (s_var.shape().rows, s_var.shape().cols);
            let s_values = self.tape().value_ref(s_var)?;
            let a_values = self.tape().value_ref(self.node_var(l.a))?;
            let mut seed = Matrix::zeros(rows, cols);
            for r in 0..rows {
                let row = r * cols..(r + 1) * cols;
                l.activation.curvature_product_with_output(
                    &s_values[row.clone()],
                    &a_values[row],
                    g_a.row(r),
                    s_dot.row(r),
                    seed.row_mut(r),
                );
            }
            seeds.push((l.s, seed));
        }
        drop(tangents);
        let seeds: Vec<(usize, &Matrix<f64>)> = seeds.iter().map(|(i, m)| (*i, m)).collect();
        let back = self.backward_from(&seeds)?;
        out.iter_mut().zip(&back).for_each(|(o, b)| *o += b);
        check_result(op, out)
    }
}

#[cfg(test)]
mod tests {
    use crate::loss::SquaredError;
    use crate::model::test_models::{Fault, SharedResidual, SquaredErrorObjective};
    use crate::operator::{FnOperator, LinearOperator};
    use crate::Problem;
    use autodiff::random::{random_matrix, random_vector};
    use autodiff::Matrix;
    use rand::{rngs::StdRng, SeedableRng};

    fn max_rel_diff(a: &Matrix<f64>, b: &Matrix<f64>) -> f64 {
        let scale = a.data().iter().chain(b.data()).fold(1e-300_f64, |m, x| m.max(x.abs()));
        a.data().iter().zip(b.data()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
    }

    /// `W2` feeds two layers (one of them after a residual connection): `G + C + Cᵀ +
    /// activation term`, each product summing the two layers' contributions in `W2`'s rows,
    /// equals the dense Hessian of the same objective written on the tape with its loss and
    /// differentiated by `autodiff::modes::dense_hessian` (no `Problem`, no decomposition).
    #[test]
    fn decomposition_with_a_shared_weight_block_and_a_residual_matches_the_dense_hessian() {
        let mut rng = StdRng::seed_from_u64(18);
        let x = random_matrix(5, 3, &mut rng);
        let y = random_matrix(5, 2, &mut rng);
        let theta: Vec<f64> = random_vector(50, &mut rng).iter().map(|t| 0.8 * t).collect();
        let model = SharedResidual::default();
        let reference = autodiff::modes::dense_hessian(
            &SquaredErrorObjective { model: &model, x: &x, y: &y },
            &theta,
        )
        .unwrap();
        let problem = Problem::new(&model, &SquaredError, &x, &y).unwrap();
        let pass = problem.at(&theta).unwrap();
        let n = 50;
        let dense = |f: &dyn Fn(&[f64]) -> crate::error::Result<Vec<f64>>| {
            FnOperator::new(n, f).to_dense().unwrap()
        };
        let g = pass.ggn().to_dense().unwrap();
        let c = dense(&|v| pass.c_vector_product(v, None));
        let ct = dense(&|v| pass.c_transpose_vector_product(v, None));
        let act = dense(&|v| pass.activation_term_vector_product(v, None));
        let sum = Matrix::from_fn(n, n, |i, j| g[(i, j)] + c[(i, j)] + ct[(i, j)] + act[(i, j)]);
        let d = max_rel_diff(&sum, &reference);
        assert!(d < 1e-12, "G + C + Cᵀ + activation term vs dense Hessian: {d:e}");
        // Cᵀ's product is the transpose of C's (both sum over the two uses of W2).
        let d = max_rel_diff(&ct, &c.transpose());
        assert!(d < 1e-12, "Cᵀ vs transpose of C: {d:e}");
        // The per-layer block rows add up to the whole product.
        let v = random_vector(n, &mut rng);
        let whole = pass.c_vector_product(&v, None).unwrap();
        let mut by_layer = vec![0.0; n];
        for layer in 1..=4 {
            let part = pass.c_vector_product(&v, Some(layer)).unwrap();
            by_layer.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
        }
        let d = max_rel_diff(&Matrix::column(whole), &Matrix::column(by_layer));
        assert!(d < 1e-14, "Σ_i C_i v vs C v: {d:e}");
    }

    /// The fused `H v` of a recorded pass on the same shared-weight residual model: its dense
    /// matrix equals the dense Hessian of the objective on the tape (1e-12 of the largest
    /// entry), and each product equals the pass's dual `H v` (1e-12 relative).
    #[test]
    fn fused_hessian_with_a_shared_weight_block_and_a_residual_matches_the_dense_hessian() {
        let mut rng = StdRng::seed_from_u64(19);
        let x = random_matrix(5, 3, &mut rng);
        let y = random_matrix(5, 2, &mut rng);
        let theta: Vec<f64> = random_vector(50, &mut rng).iter().map(|t| 0.8 * t).collect();
        let model = SharedResidual::default();
        let reference = autodiff::modes::dense_hessian(
            &SquaredErrorObjective { model: &model, x: &x, y: &y },
            &theta,
        )
        .unwrap();
        let problem = Problem::new(&model, &SquaredError, &x, &y).unwrap();
        let pass = problem.at(&theta).unwrap();
        let fused = FnOperator::new(50, |v| pass.hessian_vector_product(v)).to_dense().unwrap();
        let d = max_rel_diff(&fused, &reference);
        assert!(d < 1e-12, "fused H vs dense Hessian: {d:e}");
        let v = random_vector(50, &mut rng);
        let d = max_rel_diff(
            &Matrix::column(pass.hessian_vector_product(&v).unwrap()),
            &Matrix::column(pass.dual_hessian_vector_product(&v).unwrap()),
        );
        assert!(d < 1e-12, "fused vs dual H v: {d:e}");
    }

    /// A layer whose declared weights run past θ is an error naming it, not a slice panic;
    /// `H v` then takes the dual path (it reads `forward`, not the layers) and still works.
    #[test]
    fn weights_outside_theta_are_an_error_naming_the_layer() {
        let mut rng = StdRng::seed_from_u64(5);
        let (x, y) = (random_matrix(2, 3, &mut rng), random_matrix(2, 2, &mut rng));
        let model = SharedResidual::with(Fault::WeightsOutsideTheta);
        let problem = Problem::new(&model, &SquaredError, &x, &y).unwrap();
        let pass = problem.at(&random_vector(50, &mut rng)).unwrap();
        let v = vec![1.0; 50];
        for err in [
            pass.c_vector_product(&v, None).unwrap_err(),
            pass.c_transpose_vector_product(&v, None).unwrap_err(),
            pass.activation_term_vector_product(&v, None).unwrap_err(),
        ] {
            let text = err.to_string();
            assert!(
                text.contains(
                    "layer 3: weights 40..56 must be 4×4 = 16 entries inside θ (length 50)"
                ),
                "{text}"
            );
        }
        let hv = pass.hessian_vector_product(&v).unwrap();
        assert_eq!(hv, pass.dual_hessian_vector_product(&v).unwrap());
    }
}
