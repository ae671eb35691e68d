//! The Hessian's decompositions (eqn 6, Section 8.1.2) and `F = G` on dense matrices, with a
//! failed entry named by its parameter blocks and, for Section 8.1.2, each term against a
//! reference of its own.
//!
//! What they cannot catch is in the [`verify`](super) docs.

use crate::error::Result;
use crate::loss::dense_h_l;
use crate::model::{Model, ParameterBlock};
use crate::operator::{FnOperator, LinearOperator};
use crate::problem::Problem;
use autodiff::check::{compare, CheckReport};
use autodiff::dual::split;
use autodiff::{Dual, Matrix, Tape};

/// Names entry `k` of an `n × n` matrix (row-major) by the parameter blocks holding its row
/// and column: `W2[5] × b1[0] (θ indices 21, 12)`.
pub(crate) fn block_location(blocks: &[ParameterBlock], n: usize, k: usize) -> String {
    let name = |p: usize| match blocks.iter().find(|b| b.range.contains(&p)) {
        Some(b) => format!("{}[{}]", b.name, p - b.range.start),
        None => format!("θ[{p}]"),
    };
    let (i, j) = (k / n.max(1), k % n.max(1));
    format!("{} × {} (θ indices {i}, {j})", name(i), name(j))
}

/// [`compare`] of two `n × n` matrices, the worst entry named by `blocks`.
fn compare_dense(
    what: &str,
    computed: &Matrix<f64>,
    reference: &Matrix<f64>,
    blocks: &[ParameterBlock],
    tolerance: f64,
) -> Result<CheckReport> {
    let mut report = compare(what, computed.data(), reference.data(), tolerance)?;
    report.location = Some(block_location(blocks, computed.rows(), report.at));
    Ok(report)
}

fn add(a: &Matrix<f64>, b: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_fn(a.rows(), a.cols(), |i, j| a[(i, j)] + b[(i, j)])
}

/// `H = G + Σ_j [∇_z L]_j H_{[f]_j}` (eqn 6) at θ, the three computed by independent passes;
/// any model. Both sides use `H_L`: a wrong one is not caught ([`check_loss`](super::check_loss)).
pub fn check_ggn_residual_identity<M: Model>(
    problem: &Problem<'_, M>,
    theta: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    let pass = problem.at(theta)?;
    let n = pass.dim();
    let h = pass.hessian().to_dense()?;
    let residual = FnOperator::new(n, |v| pass.ggn_residual_vector_product(v)).to_dense()?;
    let rhs = add(&pass.ggn().to_dense()?, &residual);
    compare_dense("H vs G + eqn-6 residual", &h, &rhs, &problem.model.parameter_blocks(), tolerance)
}

/// `F = G` (Section 9.2) at θ: holds exactly when `z` is the natural parameter of the loss.
pub fn check_fisher_equals_ggn<M: Model>(
    problem: &Problem<'_, M>,
    theta: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    let pass = problem.at(theta)?;
    let (f, g) = (pass.fisher().to_dense()?, pass.ggn().to_dense()?);
    compare_dense("F vs G", &f, &g, &problem.model.parameter_blocks(), tolerance)
}

/// `H = G + C + Cᵀ + activation term` (Section 8.1.2) at θ, for a layered model: the whole
/// Hessian (`H v` by a dual pass of `forward`, [`dual_hessian_vector_product`](crate::ForwardPass::dual_hessian_vector_product)) against the sum of the four products, and in
/// [`parts`](CheckReport::parts) each term against a reference built another way (dense
/// Jacobians `J`, `J_{s_i}`, `J_{a_{i-1}}` by dual forward passes of `forward_layers`, one per
/// parameter, combined with `H_L`, `∇_{s_i}h` and `∇_{a_i}h` as the formulas say): `G`,
/// `C + Cᵀ`, the activation term. A failed entry is named by its parameter blocks.
///
/// The report fails if the whole comparison or any term does; when only the whole one
/// fails, the terms are right for the declared layers and the layers do not describe the
/// model (run [`check_model`](super::check_model)). A wrong `H_L` is not caught: both sides use it (see the [`verify`](super) docs).
/// Cost: the dense `n × n` terms and `n` extra dual forward passes: for small models.
pub fn check_hessian_decomposition<M: Model>(
    problem: &Problem<'_, M>,
    theta: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    let pass = problem.at(theta)?;
    let n = pass.dim();
    let blocks = problem.model.parameter_blocks();
    // The dual product reads `forward`, not the layers: the fused `H v` would be the sum of the
    // same four terms.
    let h = FnOperator::new(n, |v| pass.dual_hessian_vector_product(v)).to_dense()?;
    let g = pass.ggn().to_dense()?;
    let c = FnOperator::new(n, |v| pass.c_vector_product(v, None)).to_dense()?;
    let ct = FnOperator::new(n, |v| pass.c_transpose_vector_product(v, None)).to_dense()?;
    let act = FnOperator::new(n, |v| pass.activation_term_vector_product(v, None)).to_dense()?;
    let c_sym = add(&c, &ct);
    let sum = add(&add(&g, &c_sym), &act);
    let mut report =
        compare_dense("H vs G + C + Cᵀ + activation term", &h, &sum, &blocks, tolerance)?;

    let refs = term_references(problem, &pass, theta)?;
    report.parts = vec![
        compare_dense("G vs mean J_nᵀ H_L J_n (dense J)", &g, &refs.ggn, &blocks, tolerance)?,
        compare_dense(
            "C + Cᵀ vs Σ_i ∇_{s_i}h ⊗ J_{a_{i-1}} (dense J_{a_{i-1}}), symmetrized",
            &c_sym,
            &refs.c_sym,
            &blocks,
            tolerance,
        )?,
        compare_dense(
            "activation term vs Σ_i J_{s_i}ᵀ (∇_{a_i}h · ∇²φ_i) J_{s_i} (dense J_{s_i})",
            &act,
            &refs.activation,
            &blocks,
            tolerance,
        )?,
    ];
    Ok(report)
}

struct TermReferences {
    ggn: Matrix<f64>,
    c_sym: Matrix<f64>,
    activation: Matrix<f64>,
}

/// The dense terms from dense Jacobians of the layers' nodes (one dual forward pass of
/// `forward_layers` per parameter, sharing no code with the products' sweeps) and the cached
/// adjoints `∇_{s_i}h`, `∇_{a_i}h` (first-order, checked by `check_gradient`).
fn term_references<M: Model>(
    problem: &Problem<'_, M>,
    pass: &crate::problem::ForwardPass<'_, M>,
    theta: &[f64],
) -> Result<TermReferences> {
    let n = theta.len();
    let layers = pass.layers("check_hessian_decomposition")?;
    let adjoints = pass.adjoints()?;
    let value = |i: usize| pass.node_var(i).value();
    let adjoint = |i: usize| {
        let v = pass.node_var(i);
        adjoints.wrt(v).cloned().unwrap_or_else(|| Matrix::zeros(v.shape().rows, v.shape().cols))
    };
    // Column j of every Jacobian: the tangents of (z, s_i, input_i) along e_j.
    let (mut jz, mut js, mut jin) = (Vec::with_capacity(n), Vec::new(), Vec::new());
    js.resize_with(layers.len(), Vec::new);
    jin.resize_with(layers.len(), Vec::new);
    for j in 0..n {
        let tape = Tape::<Dual<f64>>::new();
        let th = tape.input(Matrix::from_fn(n, 1, |i, _| {
            Dual::new(theta[i], if i == j { 1.0 } else { 0.0 })
        }));
        let x = tape.constant_f64(problem.x);
        let dual_layers = problem.model.forward_layers(&tape, th, x)?.ok_or_else(|| {
            crate::CurvatureError::invalid(
                "check_hessian_decomposition",
                "forward_layers returned None on a dual tape but layers on an f64 tape",
            )
        })?;
        if dual_layers.len() != layers.len() {
            return Err(crate::CurvatureError::invalid(
                "check_hessian_decomposition",
                "forward_layers returned a different number of layers on a dual tape",
            ));
        }
        jz.push(split(&dual_layers[dual_layers.len() - 1].a.value()).1);
        for (i, l) in dual_layers.iter().enumerate() {
            js[i].push(split(&l.s.value()).1);
            jin[i].push(split(&l.input.value()).1);
        }
    }
    let z = pass.output();
    let rows = z.rows();
    // G = (1/N) Σ_n J_nᵀ H_L(z_n, y_n) J_n.
    let mut ggn = Matrix::zeros(n, n);
    for r in 0..rows {
        let h_l = dense_h_l(problem.loss, z.row(r), problem.y.row(r));
        let m = z.cols();
        for a in 0..n {
            for b in 0..n {
                let mut total = 0.0;
                for p in 0..m {
                    for q in 0..m {
                        total += jz[a][(r, p)] * h_l[(p, q)] * jz[b][(r, q)];
                    }
                }
                ggn[(a, b)] += total / rows as f64;
            }
        }
    }
    let mut c = Matrix::zeros(n, n);
    let mut activation = Matrix::zeros(n, n);
    for (i, l) in layers.iter().enumerate() {
        // C: row (W_i, unit u, input k) is Σ_n [∇_{s_i}h]_{n,u} [J_{a_{i-1}}]_{n,k}; rows of
        // a shared block add up.
        let g_s = adjoint(l.s);
        let m_in = pass.node_var(l.input).shape().cols;
        for (offset, p) in l.weights.clone().enumerate() {
            let (unit, k) = (offset / m_in, offset % m_in);
            for col in 0..n {
                c[(p, col)] += (0..rows).map(|r| g_s[(r, unit)] * jin[i][col][(r, k)]).sum::<f64>();
            }
        }
        if l.activation.is_identity() {
            continue;
        }
        // Activation term: Σ_n J_{s_i,n}ᵀ M_n J_{s_i,n}, M_n u = the nonlinearity's curvature
        // product at (s_n, ∇_{a_i}h_n).
        let (s, g_a) = (value(l.s), adjoint(l.a));
        let m = s.cols();
        let mut w = vec![0.0; m];
        for r in 0..rows {
            for b in 0..n {
                l.activation.curvature_product(s.row(r), g_a.row(r), js[i][b].row(r), &mut w);
                for a in 0..n {
                    activation[(a, b)] +=
                        js[i][a].row(r).iter().zip(&w).map(|(x, y)| x * y).sum::<f64>();
                }
            }
        }
    }
    let c_sym = add(&c, &c.transpose());
    Ok(TermReferences { ggn, c_sym, activation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::SquaredError;
    use crate::model::test_models::{Fault, SharedResidual};
    use autodiff::random::{random_matrix, random_vector};
    use rand::{rngs::StdRng, SeedableRng};

    fn run(fault: Fault) -> CheckReport {
        let mut rng = StdRng::seed_from_u64(3);
        let x = random_matrix(4, 3, &mut rng);
        let y = random_matrix(4, 2, &mut rng);
        let theta = random_vector(50, &mut rng);
        let model = SharedResidual::with(fault);
        let problem = Problem::new(&model, &SquaredError, &x, &y).unwrap();
        check_hessian_decomposition(&problem, &theta, 1e-10).unwrap()
    }

    #[test]
    fn every_term_matches_its_reference_for_a_shared_residual_model() {
        let report = run(Fault::None);
        report.assert_passed();
        assert_eq!(report.parts.len(), 3);
        assert!(report.parts.iter().all(|p| p.max_rel_error < 1e-12), "{report}");
    }

    /// A wrong φ'' moves the activation term and the whole sum, both by the same amount; the
    /// term's reference uses the same φ'' (the layer's declaration), so only the whole fails,
    /// and `check_model` is the check that names it.
    #[test]
    fn a_wrong_second_derivative_fails_the_whole_comparison_and_names_the_block_pair() {
        let report = run(Fault::WrongSecondDerivative);
        assert!(!report.passed(), "{report}");
        assert!(report.max_rel_error > report.tolerance);
        let location = report.location.clone().unwrap();
        // φ_3 acts on s_3 = r W2ᵀ + b3, so the activation term lives in the W1, b1, W2, b2,
        // b3 rows and columns, never in W4 or b4.
        assert!(
            location.contains(" × ") && !location.contains("W4") && !location.contains("b4"),
            "{location}"
        );
        assert!(report.to_string().contains(&location));
    }

    /// An undeclared product in the residual adds Hessian terms no layer accounts for: the
    /// whole comparison fails while each declared term still matches its reference.
    #[test]
    fn a_hidden_nonlinearity_fails_the_whole_but_not_the_terms() {
        let report = run(Fault::HiddenProduct);
        assert!(report.max_rel_error > 1e-6, "{report}");
        assert!(report.parts.iter().all(CheckReport::passed), "{report}");
        assert!(!report.passed());
    }

    #[test]
    fn block_locations_name_the_blocks_and_offsets() {
        let blocks = SharedResidual::default().parameter_blocks();
        assert_eq!(block_location(&blocks, 50, 21 * 50 + 12), "W2[5] × b1[0] (θ indices 21, 12)");
        assert_eq!(block_location(&blocks, 60, 55 * 60), "θ[55] × W1[0] (θ indices 55, 0)");
    }
}
