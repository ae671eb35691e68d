//! A model, a loss and a batch ([`Problem`]), and the forward pass at one θ that every
//! curvature product reuses ([`ForwardPass`]).
//!
//! All products average over the batch like the objective `h(θ) = (1/N) Σ_n L(y_n, f(x_n, θ))`.
//!
//! | product | paper | passes (after the cached forward) |
//! |---|---|---|
//! | `∇h` | eqn 1 | 1 backward (cached) |
//! | `J v`, `Jᵀ u` | Sec 9.1 | 1 tangent sweep / 1 backward |
//! | `G v = mean Jᵀ H_L J v` | eqn 5 | tangent sweep + backward |
//! | `F v = mean Jᵀ F_R J v` | eqn 7 | tangent sweep + backward |
//! | MC Fisher, empirical Fisher `F̄ v` | Sec 11 | tangent sweep + backward |
//! | `H v` | eqn 6 | layered model: 1 tangent sweep + 1 backward (fused, Sec 8.1.2); otherwise 1 dual forward + 1 dual backward (fresh tape) |
//! | eqn 6 residual `Σ_j [∇_z L]_j H_{[f]_j} v` | eqn 6 | 1 dual forward + 1 dual backward |

use crate::checks::{check_finite, copy_checked, finite_checks_enabled};
use crate::error::{CurvatureError, Result};
use crate::loss::{self, PredictiveDistribution};
use crate::model::Model;
use crate::operator::layer_blocks;
use crate::products::{check_monte_carlo_targets, draw_monte_carlo_targets, CurvatureProducts};
use autodiff::dual::{dual_matrix, split};
use autodiff::{Dual, Gradients, Matrix, Retain, Tape, Var};
use std::cell::OnceCell;
use std::sync::Arc;

/// A model, a loss `L(y, z) = −log r(y|z)` and a batch `(x, y)` (all borrowed, so a problem is
/// cheap to copy): the objective
/// `h(θ) = (1/N) Σ_n L(y_n, f(x_n, θ))` of Section 3.
pub struct Problem<'a, M: Model> {
    /// The network `f`.
    pub model: &'a M,
    /// The predictive distribution `R_{y|z}`.
    pub loss: &'a dyn PredictiveDistribution,
    /// Inputs, one example per row (`N × m_0`).
    pub x: &'a Matrix<f64>,
    /// Targets, one example per row.
    pub y: &'a Matrix<f64>,
}

impl<M: Model> Clone for Problem<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: Model> Copy for Problem<'_, M> {}

impl<'a, M: Model> Problem<'a, M> {
    /// Errors if `x` and `y` have different numbers of rows, or the batch is empty; if `x` or
    /// `y` holds a NaN or an infinity ([`CurvatureError::NonFinite`], while the
    /// [finite checks](crate::checks) are on); and if a row of `y` is not a target of the loss
    /// ([`CurvatureError::InvalidTarget`], from
    /// [`PredictiveDistribution::check_target`], always checked).
    ///
    /// (A problem written as a struct literal skips these checks.)
    pub fn new(
        model: &'a M,
        loss: &'a dyn PredictiveDistribution,
        x: &'a Matrix<f64>,
        y: &'a Matrix<f64>,
    ) -> Result<Self> {
        if x.rows() != y.rows() || x.rows() == 0 {
            return Err(CurvatureError::Dimension {
                op: "Problem::new".into(),
                expected: "x and y with the same, non-zero number of rows".into(),
                actual: format!("x {}, y {}", x.shape(), y.shape()),
            });
        }
        check_finite(x.data(), x.cols(), || "x".into())?;
        check_finite(y.data(), y.cols(), || "y".into())?;
        loss::check_targets(loss, y)?;
        Ok(Problem { model, loss, x, y })
    }

    /// The number of parameters `n`.
    pub fn dim(&self) -> usize {
        self.model.num_params()
    }

    /// `H v` at θ (eqn 6) from θ alone: one forward pass on dual numbers `θ + v ε` and one
    /// reverse sweep over that dual tape, seeded at `z` with `∇_z h + (H_L J v)/N ε`, where
    /// `∇_z h` and `J v` are the two parts of the dual output. No `f64` forward pass is
    /// recorded, so at a new θ this is one forward pass cheaper than
    /// `problem.at(θ)?.hessian_vector_product(v)`.
    /// With the [finite checks](crate::checks) on, θ, `v` and the result are checked.
    pub fn hessian_vector_product(&self, theta: &[f64], v: &[f64]) -> Result<Vec<f64>> {
        let n = self.dim();
        if theta.len() != n {
            return Err(CurvatureError::length("hessian_vector_product (θ)", n, theta.len()));
        }
        if v.len() != n {
            return Err(CurvatureError::length("hessian_vector_product (v)", n, v.len()));
        }
        check_finite(theta, 1, || "theta".into())?;
        check_finite(v, 1, || "v in hessian_vector_product".into())?;
        let hv = dual_second_order_product(self, theta, v, None, true)?;
        check_result("hessian_vector_product", hv)
    }

    /// Runs the forward pass at θ and keeps it for the products. With the
    /// [finite checks](crate::checks) on (the default), a NaN or ±∞ in θ, or in the output `z`
    /// (an overflow inside the network), is a [`CurvatureError::NonFinite`]; every product of
    /// the pass then checks its `v` and its result the same way.
    pub fn at(&self, theta: &[f64]) -> Result<ForwardPass<'a, M>> {
        ForwardPass::new(*self, Theta::Copied(theta))
    }

    /// As [`at`](Self::at), with θ shared with other passes instead of copied onto this
    /// pass's tape ([`ShardedProblem`](crate::ShardedProblem)'s row blocks).
    pub(crate) fn at_shared(&self, theta: Arc<[f64]>) -> Result<ForwardPass<'a, M>> {
        ForwardPass::new(*self, Theta::Shared(theta))
    }
}

/// Where a forward pass gets θ from.
enum Theta<'s> {
    /// Copied onto the tape, which then holds the pass's only copy.
    Copied(&'s [f64]),
    /// Shared with the passes of the other row blocks of a batch (no copy).
    Shared(Arc<[f64]>),
}

impl Theta<'_> {
    fn len(&self) -> usize {
        match self {
            Theta::Copied(theta) => theta.len(),
            Theta::Shared(theta) => theta.len(),
        }
    }
}

/// Node indices of one layer on the cached tape.
#[derive(Clone, Debug)]
pub(crate) struct LayerNodes {
    pub(crate) input: usize,
    pub(crate) s: usize,
    pub(crate) a: usize,
    pub(crate) activation: Arc<dyn crate::model::Nonlinearity>,
    pub(crate) weights: std::ops::Range<usize>,
    pub(crate) biases: std::ops::Range<usize>,
}

/// The forward pass of a [`Problem`] at one θ, recorded once and reused by every product.
pub struct ForwardPass<'a, M: Model> {
    problem: Problem<'a, M>,
    /// Holds θ (as its input node: a copy, or shared by a sharded batch's passes), x, and
    /// every layer's values.
    tape: Tape<f64>,
    theta_node: usize,
    z_node: usize,
    layers: Option<Vec<LayerNodes>>,
    z: Matrix<f64>,
    /// `∇_z h`: rows `∇_z L(y_n, z_n) / N`; computed on first use (the loss, `J v` and `Jᵀ u`
    /// do not need it).
    g_z: OnceCell<Matrix<f64>>,
    /// The reverse sweep seeded with `∇_z h`, every adjoint retained (for the Section 8.1.2
    /// products); computed on first use.
    adjoints: OnceCell<Gradients<f64>>,
}

impl<'a, M: Model> ForwardPass<'a, M> {
    fn new(problem: Problem<'a, M>, theta: Theta<'_>) -> Result<Self> {
        let n = problem.dim();
        if theta.len() != n {
            return Err(CurvatureError::length("ForwardPass (θ)", n, theta.len()));
        }
        let tape = Tape::<f64>::new();
        let th = match theta {
            // θ is checked as it is copied onto the tape (one pass over it, not two).
            Theta::Copied(theta) => {
                tape.input(Matrix::column(copy_checked(theta, || "theta".into())?))
            }
            // `ShardedProblem::at` checked the shared θ once for all its blocks.
            Theta::Shared(theta) => tape.input_shared(theta, n, 1)?,
        };
        let x = tape.constant(problem.x.clone());
        let (z, layers) = match problem.model.forward_layers(&tape, th, x)? {
            Some(layers) => {
                let z = layers.last().map(|l| l.a).ok_or_else(|| {
                    CurvatureError::invalid("ForwardPass", "a layered model returned no layers")
                })?;
                let nodes = layers
                    .iter()
                    .map(|l| LayerNodes {
                        input: l.input.index(),
                        s: l.s.index(),
                        a: l.a.index(),
                        activation: l.activation.clone(),
                        weights: l.weights.clone(),
                        biases: l.biases.clone(),
                    })
                    .collect();
                (z, Some(nodes))
            }
            None => (problem.model.forward(&tape, th, x)?, None),
        };
        let z_value = z.value();
        // An overflow inside the network (finite θ and x, infinite z) is named here.
        check_finite(z_value.data(), z_value.cols(), || "output z".into())?;
        // Bad targets are reported here, so that `∇_z h` can be formed later without errors.
        loss::check_batch(problem.loss, "ForwardPass", &z_value, problem.y)?;
        let (theta_node, z_node) = (th.index(), z.index());
        Ok(ForwardPass {
            problem,
            tape,
            theta_node,
            z_node,
            layers,
            z: z_value,
            g_z: OnceCell::new(),
            adjoints: OnceCell::new(),
        })
    }

    fn node(&self, index: usize) -> Var<'_, f64> {
        self.tape.var(index).expect("internal error: cached node index")
    }

    /// Checks `v`'s length for `op`, and its values while the finite checks are on.
    pub(crate) fn check_input(&self, op: &str, v: &[f64]) -> Result<()> {
        self.check_length(op, v)?;
        check_finite(v, 1, || format!("v in {op}"))
    }

    /// Checks `v`'s length for `op`.
    fn check_length(&self, op: &str, v: &[f64]) -> Result<()> {
        if v.len() != self.dim() {
            return Err(CurvatureError::length(format!("{op} (v)"), self.dim(), v.len()));
        }
        Ok(())
    }

    /// The problem this pass belongs to.
    pub fn problem(&self) -> &Problem<'a, M> {
        &self.problem
    }

    /// θ (borrowed from the tape, which holds it; drop the borrow before calling a
    /// product).
    pub fn theta(&self) -> std::cell::Ref<'_, [f64]> {
        self.tape.value_ref(self.node(self.theta_node)).expect("internal error: θ node")
    }

    /// The number of parameters `n`.
    pub fn dim(&self) -> usize {
        self.problem.dim()
    }

    /// The network output `z = f(x, θ)` (`N × m_ℓ`).
    pub fn output(&self) -> &Matrix<f64> {
        &self.z
    }

    /// `∇_z h`, with rows `∇_z L(y_n, z_n) / N`.
    pub fn output_gradient(&self) -> &Matrix<f64> {
        self.g_z.get_or_init(|| {
            loss::loss_gradient(self.problem.loss, &self.z, self.problem.y)
                .expect("internal error: targets checked in ForwardPass::new")
        })
    }

    /// `h(θ) = (1/N) Σ_n L(y_n, z_n)`. While the [finite checks](crate::checks) are on, a
    /// non-finite loss from finite outputs (e.g. a Gaussian log-variance below −709, where
    /// `e^{−γ}` overflows) is a [`CurvatureError::NonFinite`] whose index is the first bad row.
    pub fn loss(&self) -> Result<f64> {
        let h = loss::mean_loss(self.problem.loss, &self.z, self.problem.y)?;
        if h.is_finite() || !finite_checks_enabled() {
            return Ok(h);
        }
        // The error path only: find the example to blame.
        let (z, y) = (&self.z, self.problem.y);
        let row = (0..z.rows())
            .find(|&r| !self.problem.loss.loss(z.row(r), y.row(r)).is_finite())
            .unwrap_or(0);
        Err(CurvatureError::NonFinite {
            quantity: "loss".into(),
            index: row,
            cols: 1,
            value: self.problem.loss.loss(z.row(row), y.row(row)),
        })
    }

    pub(crate) fn adjoints(&self) -> Result<&Gradients<f64>> {
        if let Some(g) = self.adjoints.get() {
            return Ok(g);
        }
        let grads = self.tape.backward_with_seeds(
            &[(self.node(self.z_node), self.output_gradient())],
            Retain::All,
        )?;
        Ok(self.adjoints.get_or_init(|| grads))
    }

    /// `∇h(θ) = mean Jᵀ ∇_z L` (eqn 1). Each call runs one reverse sweep over the recorded
    /// forward pass (which frees adjoints as it goes and adds the weights' adjoints straight
    /// into θ's), unless the Section 8.1.2 products already computed every adjoint.
    pub fn gradient(&self) -> Result<Vec<f64>> {
        let g = match self.adjoints.get() {
            Some(adjoints) => adjoints.wrt_or_zeros(self.node(self.theta_node)).into_vec(),
            None => self.backward_from(&[(self.z_node, self.output_gradient())])?,
        };
        check_result("gradient", g)
    }

    /// `J v` (`N × m_ℓ`, row n is `J_n v`), by a tangent sweep over the cached tape.
    pub fn jacobian_vector_product(&self, v: &[f64]) -> Result<Matrix<f64>> {
        let jv = self.checked_jacobian_vector_product("jacobian_vector_product", v)?;
        check_finite(jv.data(), jv.cols(), || "result of jacobian_vector_product".into())?;
        Ok(jv)
    }

    /// `J v` for `op`, with `v` checked as [`check_input`](Self::check_input) checks it: its
    /// values as they are copied into the tangent sweep (one pass over `v`, not two).
    fn checked_jacobian_vector_product(&self, op: &str, v: &[f64]) -> Result<Matrix<f64>> {
        self.check_length(op, v)?;
        let v = copy_checked(v, || format!("v in {op}"))?;
        let (theta, z) = (self.node(self.theta_node), self.node(self.z_node));
        let mut t = self.tape.tangents_of([(theta, Matrix::column(v))], &[z])?;
        Ok(t.take(z).unwrap_or_else(|| Matrix::zeros(self.z.rows(), self.z.cols())))
    }

    /// `Jᵀ u = Σ_n J_nᵀ u_n` for `u` of the output's shape, by one reverse sweep.
    pub fn transpose_jacobian_vector_product(&self, u: &Matrix<f64>) -> Result<Vec<f64>> {
        if u.shape() != self.z.shape() {
            return Err(CurvatureError::Dimension {
                op: "transpose_jacobian_vector_product (u)".into(),
                expected: format!("the output's shape {}", self.z.shape()),
                actual: u.shape().to_string(),
            });
        }
        check_finite(u.data(), u.cols(), || "u in transpose_jacobian_vector_product".into())?;
        let g = self.backward_from(&[(self.z_node, u)])?;
        check_result("transpose_jacobian_vector_product", g)
    }

    /// One reverse sweep with seeds on cached nodes; returns the adjoint of θ.
    pub(crate) fn backward_from(&self, seeds: &[(usize, &Matrix<f64>)]) -> Result<Vec<f64>> {
        let seeds: Vec<(Var<'_, f64>, &Matrix<f64>)> =
            seeds.iter().map(|(i, m)| (self.node(*i), *m)).collect();
        let mut g = self.tape.backward_with_seeds(&seeds, Retain::Inputs)?;
        let theta = self.node(self.theta_node);
        Ok(g.take(theta).map_or_else(|| vec![0.0; self.dim()], Matrix::into_vec))
    }

    /// The GGN product `G v = (1/N) Σ_n J_nᵀ H_L(z_n) J_n v` (eqn 5).
    pub fn ggn_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        let jv = self.checked_jacobian_vector_product("ggn_vector_product", v)?;
        let u = loss::apply_h_l_batch(self.problem.loss, &self.z, self.problem.y, &jv)?;
        check_result("ggn_vector_product", self.backward_from(&[(self.z_node, &u)])?)
    }

    /// The Fisher product `F v = (1/N) Σ_n J_nᵀ F_R(z_n) J_n v` (eqn 7), exact through `F_R`.
    pub fn fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        let jv = self.checked_jacobian_vector_product("fisher_vector_product", v)?;
        let u = loss::apply_f_r_batch(self.problem.loss, &self.z, &jv)?;
        check_result("fisher_vector_product", self.backward_from(&[(self.z_node, &u)])?)
    }

    /// `(1/(N S)) Σ_n Σ_s g_{ns} (g_{ns}ᵀ v)` with `g_{ns} = J_nᵀ ∇_z L(t_{ns}, z_n)` for the
    /// `S` target matrices `t_s`, from one `J v` and one reverse sweep: one Monte-Carlo Fisher
    /// sample with `t = ỹ ~ R_{y|z}`. This pass's example n is row `first_row + n` of every
    /// `t_s` (a row block of a sharded batch reads its rows of the whole batch's targets); the
    /// caller has checked the targets' shapes.
    pub(crate) fn outer_product_vector_product(
        &self,
        targets: &[Matrix<f64>],
        first_row: usize,
        v: &[f64],
    ) -> Result<Vec<f64>> {
        let jv = self.checked_jacobian_vector_product("monte_carlo_fisher", v)?;
        let (rows, cols) = (self.z.rows(), self.z.cols());
        let mut seed = Matrix::zeros(rows, cols);
        let mut g = vec![0.0; cols];
        let scale = 1.0 / (rows * targets.len().max(1)) as f64;
        for t in targets {
            for r in 0..rows {
                self.problem.loss.grad_z(self.z.row(r), t.row(first_row + r), &mut g);
                let c: f64 = g.iter().zip(jv.row(r)).map(|(a, b)| a * b).sum();
                for (s, gk) in seed.row_mut(r).iter_mut().zip(&g) {
                    *s += scale * c * gk;
                }
            }
        }
        check_result("monte_carlo_fisher", self.backward_from(&[(self.z_node, &seed)])?)
    }

    /// The empirical Fisher product `F̄ v = (1/N) Σ_n ∇L_n (∇L_nᵀ v)` over the training targets
    /// (Section 11), where `∇L_n` is example n's gradient.
    pub fn empirical_fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        // The per-example gradients are the cached `∇_z h` rows times N: `g_n = N ∇_z h_n`, so
        // the seed row `(1/N) (g_nᵀ J_n v) g_n` is `N (∇_z h_nᵀ J_n v) ∇_z h_n` (no second pass
        // over the loss).
        let jv = self.checked_jacobian_vector_product("empirical_fisher_vector_product", v)?;
        let (n, cols) = (self.z.rows() as f64, self.z.cols().max(1));
        let mut seed = self.output_gradient().clone();
        for (row, jv_row) in seed.data_mut().chunks_mut(cols).zip(jv.data().chunks(cols)) {
            let c: f64 = row.iter().zip(jv_row).map(|(a, b)| a * b).sum();
            row.iter_mut().for_each(|g| *g *= n * c);
        }
        let g = self.backward_from(&[(self.z_node, &seed)])?;
        check_result("empirical_fisher_vector_product", g)
    }

    /// `H v` for the objective (eqn 6), exact. For a layered model
    /// ([`Model::forward_layers`]) it is fused on the recorded pass: one tangent sweep and one
    /// reverse sweep over this pass's tape, reusing its forward values and the gradient's
    /// adjoints, summing the Section 8.1.2 terms `G v + C v + Cᵀ v +` activation term (about
    /// `6F − 4F₁` matrix-product FLOPs, `F` those of one forward pass and `F₁` its first
    /// layer's). It then trusts the layers as the other products do (see
    /// [`Model::forward_layers`]; [`verify::check_hessian_decomposition`](crate::verify::check_hessian_decomposition)
    /// compares it with the dual product). Otherwise, and for layers whose declared weights
    /// do not fit θ, it is [`dual_hessian_vector_product`](Self::dual_hessian_vector_product).
    pub fn hessian_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        match self.fused_hessian_vector_product(v) {
            Some(result) => result,
            None => self.dual_hessian_vector_product(v),
        }
    }

    /// `H v` for the objective (eqn 6) from `forward` alone, for any model: a forward pass on
    /// duals with tangent `v` and a reverse sweep over that dual tape, seeded at `z` with
    /// `∇_z h + (H_L J v)/N ε` (`∇_z h` cached by the pass). The reference for the fused
    /// [`hessian_vector_product`](Self::hessian_vector_product) of layered models (about
    /// `8F − 5F₁` matrix-product FLOPs).
    pub fn dual_hessian_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        self.second_order_product("hessian_vector_product", v, true)
    }

    /// The second term of eqn 6, `(1/N) Σ_n Σ_j [∇_z L_n]_j H_{[f]_j} v`: the Hessian-vector
    /// product of `θ ↦ (1/N) Σ_n ∇_z L_nᵀ f(x_n, θ)` with `∇_z L` held constant, so that
    /// `H = G + residual` can be checked with products computed independently.
    pub fn ggn_residual_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        self.second_order_product("ggn_residual_vector_product", v, false)
    }

    fn second_order_product(
        &self,
        op: &str,
        v: &[f64],
        with_loss_curvature: bool,
    ) -> Result<Vec<f64>> {
        self.check_input(op, v)?;
        let theta = self.theta().to_vec();
        let g_z = Some(self.output_gradient());
        check_result(
            op,
            dual_second_order_product(&self.problem, &theta, v, g_z, with_loss_curvature)?,
        )
    }

    pub(crate) fn layers(&self, op: &str) -> Result<&[LayerNodes]> {
        self.layers.as_deref().ok_or_else(|| {
            CurvatureError::invalid(
                op,
                "needs a layered model (Model::forward_layers returned None)",
            )
        })
    }

    pub(crate) fn node_var(&self, index: usize) -> Var<'_, f64> {
        self.node(index)
    }

    pub(crate) fn tape(&self) -> &Tape<f64> {
        &self.tape
    }

    pub(crate) fn theta_node(&self) -> usize {
        self.theta_node
    }

    /// The node of the output `z` on the cached tape.
    pub(crate) fn output_node(&self) -> usize {
        self.z_node
    }
}

impl<M: Model> CurvatureProducts for ForwardPass<'_, M> {
    fn dim(&self) -> usize {
        ForwardPass::dim(self)
    }
    fn loss(&self) -> Result<f64> {
        ForwardPass::loss(self)
    }
    fn gradient(&self) -> Result<Vec<f64>> {
        ForwardPass::gradient(self)
    }
    fn jacobian_vector_product(&self, v: &[f64]) -> Result<Matrix<f64>> {
        ForwardPass::jacobian_vector_product(self, v)
    }
    fn transpose_jacobian_vector_product(&self, u: &Matrix<f64>) -> Result<Vec<f64>> {
        ForwardPass::transpose_jacobian_vector_product(self, u)
    }
    fn ggn_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        ForwardPass::ggn_vector_product(self, v)
    }
    fn fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        ForwardPass::fisher_vector_product(self, v)
    }
    fn empirical_fisher_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        ForwardPass::empirical_fisher_vector_product(self, v)
    }
    fn hessian_vector_product(&self, v: &[f64]) -> Result<Vec<f64>> {
        ForwardPass::hessian_vector_product(self, v)
    }
    fn monte_carlo_targets(&self, samples: usize, seed: u64) -> Result<Vec<Matrix<f64>>> {
        draw_monte_carlo_targets(self.problem.loss, &[&self.z], samples, seed)
    }
    fn monte_carlo_fisher_vector_product(
        &self,
        targets: &[Matrix<f64>],
        v: &[f64],
    ) -> Result<Vec<f64>> {
        check_monte_carlo_targets(self.problem.loss, self.z.rows(), self.z.cols(), targets)?;
        self.outer_product_vector_product(targets, 0, v)
    }
    fn layer_blocks(&self) -> Vec<std::ops::Range<usize>> {
        layer_blocks(self.problem.model)
    }
}

/// `values`, or an error naming the first non-finite one as `result of {op}` (while the finite
/// checks are on).
pub(crate) fn check_result(op: &str, values: Vec<f64>) -> Result<Vec<f64>> {
    check_finite(&values, 1, || format!("result of {op}"))?;
    Ok(values)
}

/// The eqn-6 products by a dual forward pass and a dual reverse sweep: `H v` with the loss
/// curvature term, or the residual `Σ_j [∇_z L]_j H_{[f]_j} v` without it. `g_z` is `∇_z h` when
/// a recorded pass already has it; otherwise it comes from the dual output's primal part.
fn dual_second_order_product<M: Model>(
    problem: &Problem<'_, M>,
    theta: &[f64],
    v: &[f64],
    g_z: Option<&Matrix<f64>>,
    with_loss_curvature: bool,
) -> Result<Vec<f64>> {
    let tape = Tape::<Dual<f64>>::new();
    // (`from_fn` allocates through a caller's `BufferPool`, when there is one.)
    let th = tape.input(Matrix::from_fn(theta.len(), 1, |i, _| Dual::new(theta[i], v[i])));
    let x = tape.constant_f64(problem.x);
    let z = problem.model.forward(&tape, th, x)?;
    let (z_primal, z_tangent) = split(&z.value());
    let computed;
    let g_z = match g_z {
        Some(g) => g,
        None => {
            computed = loss::loss_gradient(problem.loss, &z_primal, problem.y)?;
            &computed
        }
    };
    let seed_tangent = if with_loss_curvature {
        loss::apply_h_l_batch(problem.loss, &z_primal, problem.y, &z_tangent)?
    } else {
        Matrix::zeros(z_primal.rows(), z_primal.cols())
    };
    let seed = dual_matrix(g_z, &seed_tangent)?;
    let mut grads = tape.backward_tangents(&[(z, seed)])?;
    Ok(match grads.take(th) {
        Some(adjoint) => adjoint.data().iter().map(|d| d.eps).collect(),
        None => vec![0.0; theta.len()],
    })
}
