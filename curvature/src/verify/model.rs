//! [`check_model`]: does a layered model's `forward_layers` say what its forward pass does?

use crate::error::{CurvatureError, Result};
use crate::model::{Model, Nonlinearity};
use crate::problem::Problem;
use autodiff::check::{central_difference, compare, compare_above, CheckReport};
use autodiff::dual::split;
use autodiff::random::random_matrix;
use autodiff::{Dual, Matrix, Tape};
use rand::{rngs::StdRng, SeedableRng};

/// Checks at θ the promises of [`Model::forward_layers`] that the products rely on, and
/// returns their worst with every check in [`parts`](CheckReport::parts), each naming its
/// layer (and, for a matrix, the example and unit):
///
/// - `forward` vs the last layer's `a`: values, and `J v` (a dual pass of `forward` vs the
///   tangent sweep through the layers) along a random `v`;
/// - per layer, `s = input · W_iᵀ + 1 b_iᵀ` with `W_i`, `b_i` read from θ at the declared
///   ranges: values, and tangents (`ṡ = i̇nput · W_iᵀ + input · V_iᵀ + v_b`), which fail when
///   `s` depends on θ other than through the declared `W_i`, `b_i` and `input`;
/// - per layer, `a = φ(s)` (the nonlinearity's `value`), `⟨c, ȧ⟩ = ⟨J_φᵀ c, ṡ⟩` (its `vjp`
///   against the tape's own rule), and `vjp` and `curvature_product` against central
///   differences of `value` and `vjp` at the layer's own `s` (so a wrong `φ'` or `φ''` of a
///   user's nonlinearity is caught here, not only as a wrong Hessian).
///
/// Layout problems are errors naming the layer: a range outside θ or of the wrong length
/// for the layer's shapes, or two of [`Model::parameter_blocks`] overlapping (block-diagonal
/// restrictions and the reports' block names assume disjoint blocks). Layers *sharing* weights
/// (equal or overlapping `weights` ranges) are allowed: the decomposition adds their
/// contributions, which is exact.
///
/// One tolerance serves all: the difference checks are the tightest (about `1e-8`); the rest
/// hold to round-off. A φ with a kink (relu) may fail the difference checks when some `s` lies
/// within `1e-3` of the kink. Errors for a model whose `forward_layers` returns `None`.
pub fn check_model<M: Model>(
    problem: &Problem<'_, M>,
    theta: &[f64],
    tolerance: f64,
) -> Result<CheckReport> {
    const OP: &str = "check_model";
    let n = problem.dim();
    if theta.len() != n {
        return Err(CurvatureError::length("check_model (θ)", n, theta.len()));
    }
    let blocks = check_blocks(problem.model)?;
    let pass = problem.at(theta)?;
    let layers = pass.layers(OP)?.to_vec();
    let mut rng = StdRng::seed_from_u64(0x18a);
    let v = random_matrix(n, 1, &mut rng).into_vec();
    let tangents = pass.theta_tangents(&v)?;
    let value = |i: usize| pass.node_var(i).value();
    let tangent = |i: usize| {
        let var = pass.node_var(i);
        tangents.of_or_zeros(var)
    };
    let mut parts = Vec::new();

    // forward vs the last layer's a: values and J v.
    let tape = Tape::<Dual<f64>>::new();
    let th = tape.input(Matrix::from_fn(n, 1, |i, _| Dual::new(theta[i], v[i])));
    let z = problem.model.forward(&tape, th, tape.constant_f64(problem.x))?;
    let (z_value, z_tangent) = split(&z.value());
    let last = &layers[layers.len() - 1];
    let layer_z = value(last.a);
    if z_value.shape() != layer_z.shape() {
        return Err(CurvatureError::Dimension {
            op: OP.into(),
            expected: format!(
                "forward's output and the last layer's a of one shape ({})",
                layer_z.shape()
            ),
            actual: z_value.shape().to_string(),
        });
    }
    parts.push(located(
        compare("forward vs last layer's a (values)", z_value.data(), layer_z.data(), tolerance)?,
        layer_z.cols(),
    ));
    parts.push(located(
        compare(
            "forward vs last layer's a (J v)",
            z_tangent.data(),
            tangent(last.a).data(),
            tolerance,
        )?,
        layer_z.cols(),
    ));

    for (index, l) in layers.iter().enumerate() {
        let i = index + 1;
        let name = format!("layer {i} ({})", l.activation.name());
        let (input, s, a) = (value(l.input), value(l.s), value(l.a));
        let (m_in, m_out, rows) = (input.cols(), s.cols(), s.rows());
        if l.weights.len() != m_out * m_in || l.weights.end > n {
            return Err(CurvatureError::invalid(
                OP,
                format!(
                    "layer {i}: weights {:?} must be {m_out}×{m_in} = {} entries inside θ (length {n}), from s {} and input {}",
                    l.weights, m_out * m_in, s.shape(), input.shape()
                ),
            ));
        }
        if l.biases.len() != m_out || l.biases.end > n {
            return Err(CurvatureError::invalid(
                OP,
                format!(
                    "layer {i}: biases {:?} must be {m_out} entries inside θ (length {n})",
                    l.biases
                ),
            ));
        }
        if a.shape() != s.shape() {
            return Err(CurvatureError::Dimension {
                op: format!("{OP} (layer {i}: a vs s)"),
                expected: s.shape().to_string(),
                actual: a.shape().to_string(),
            });
        }
        // The blocks' own names where a block is exactly the range (`W2` for a layer that
        // shares it), else `W{i}`, `b{i}`.
        let block_name = |range: &std::ops::Range<usize>, default: String| {
            blocks.iter().find(|b| b.range == *range).map_or(default, |b| b.name.clone())
        };
        let (w_name, b_name) =
            (block_name(&l.weights, format!("W{i}")), block_name(&l.biases, format!("b{i}")));
        // s = input Wᵀ + 1 bᵀ, and its tangent.
        let w = &theta[l.weights.clone()];
        let b = &theta[l.biases.clone()];
        let (vw, vb) = (&v[l.weights.clone()], &v[l.biases.clone()]);
        let (input_dot, s_dot, a_dot) = (tangent(l.input), tangent(l.s), tangent(l.a));
        let affine = |x: &Matrix<f64>, w: &[f64], b: &[f64]| {
            Matrix::from_fn(rows, m_out, |r, u| {
                b[u] + (0..m_in).map(|k| x[(r, k)] * w[u * m_in + k]).sum::<f64>()
            })
        };
        let s_ref = affine(&input, w, b);
        let zero_b = vec![0.0; m_out];
        let s_dot_ref = Matrix::from_fn(rows, m_out, |r, u| {
            affine(&input_dot, w, &zero_b)[(r, u)] + affine(&input, vw, vb)[(r, u)]
        });
        parts.push(located(
            compare(
                &format!("{name}: s = input·{w_name}ᵀ + {b_name} (values)"),
                s.data(),
                s_ref.data(),
                tolerance,
            )?,
            m_out,
        ));
        parts.push(located(
            compare(&format!("{name}: ṡ = i̇nput·{w_name}ᵀ + input·V_{{{w_name}}}ᵀ + v_{{{b_name}}} (tangents)"), s_dot.data(), s_dot_ref.data(), tolerance)?,
            m_out,
        ));

        parts.extend(nonlinearity_checks(
            &name,
            l.activation.as_ref(),
            (&s, &a),
            (&s_dot, &a_dot),
            &mut rng,
            tolerance,
        )?);
    }

    let worst = parts.iter().cloned().fold(None, |acc: Option<CheckReport>, p| match acc {
        None => Some(p),
        Some(a) => Some(a.worst(p)),
    });
    let mut report = worst.expect("at least the forward checks");
    report.check = format!("check_model (worst: {})", report.check);
    report.parts = parts;
    Ok(report)
}

/// `a = φ(s)`, the tape's `ȧ` against the nonlinearity's `vjp` (adjoint form), and `vjp` and
/// `curvature_product` against central differences of `value` and `vjp`, at the layer's `s`.
fn nonlinearity_checks(
    name: &str,
    phi: &dyn Nonlinearity,
    (s, a): (&Matrix<f64>, &Matrix<f64>),
    (s_dot, a_dot): (&Matrix<f64>, &Matrix<f64>),
    rng: &mut StdRng,
    tolerance: f64,
) -> Result<Vec<CheckReport>> {
    let (rows, m_out) = (s.rows(), s.cols());
    let mut checks = Vec::new();
    // a = φ(s), ȧ = J_φ ṡ (adjoint form), φ' and φ'' against differences.
    let mut a_ref = Matrix::zeros(rows, m_out);
    for r in 0..rows {
        phi.value(s.row(r), a_ref.row_mut(r));
    }
    checks.push(located(
        compare(&format!("{name}: a = φ(s)"), a.data(), a_ref.data(), tolerance)?,
        m_out,
    ));
    let c = random_matrix(rows, m_out, rng);
    let u = random_matrix(rows, m_out, rng);
    let w_dir = random_matrix(rows, m_out, rng);
    let mut vjp = Matrix::zeros(rows, m_out);
    for r in 0..rows {
        phi.transpose_jacobian_vector_product(s.row(r), c.row(r), vjp.row_mut(r));
    }
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
    let lhs = dot(c.data(), a_dot.data());
    let rhs = dot(vjp.data(), s_dot.data());
    let scale = c.data().iter().zip(a_dot.data()).map(|(p, q)| (p * q).abs()).sum::<f64>()
        + vjp.data().iter().zip(s_dot.data()).map(|(p, q)| (p * q).abs()).sum::<f64>();
    let mut adjoint =
        compare(&format!("{name}: ⟨c, ȧ⟩ (tape) vs ⟨J_φᵀ c, ṡ⟩ (vjp)"), &[lhs], &[rhs], tolerance)?;
    adjoint.max_rel_error = (lhs - rhs).abs() / scale.max(1e-300);
    checks.push(adjoint);

    // Per example n: d/dt c_nᵀ φ(s_n + t u_n) = ⟨vjp(s_n, c_n), u_n⟩ and
    // d/dt ⟨vjp(s_n + t u_n, c_n), w_n⟩ = ⟨curvature_product(s_n, c_n, u_n), w_n⟩.
    // The differences are Richardson-extrapolated (truncation O(h⁴)), so a small step costs
    // only rounding, about ε|g|/h for the differenced g: with h = ε^{1/3}·scale that is
    // ε^{2/3}|g|/scale. Errors are therefore measured against at least |g|/scale and
    // |g|/scale², the natural sizes of a first and second derivative of g (|g| summed in
    // absolute value), not against the derivatives alone, which are tiny where a unit saturates
    // (a softmax at 1 − 1e-5). A step of 1e-3·scale instead left a truncation error
    // of ~1e-7 where tanh bends sharply and |s| reached 12: a correct model failed at 1e-8.
    let scale = s.data().iter().fold(1.0_f64, |m, x| m.max(x.abs()));
    let h = f64::EPSILON.cbrt() * scale;
    let shifted = |t: f64, r: usize| -> Vec<f64> {
        s.row(r).iter().zip(u.row(r)).map(|(x, d)| x + t * d).collect()
    };
    let mut out = vec![0.0; m_out];
    let first_fd = central_difference(h, |t| {
        Ok((0..rows)
            .map(|r| {
                let mut val = vec![0.0; m_out];
                phi.value(&shifted(t, r), &mut val);
                dot(c.row(r), &val)
            })
            .collect())
    })?;
    let first: Vec<f64> = (0..rows).map(|r| dot(vjp.row(r), u.row(r))).collect();
    let g_size = (0..rows)
        .map(|r| {
            let mut val = vec![0.0; m_out];
            phi.value(s.row(r), &mut val);
            c.row(r).iter().zip(&val).map(|(p, q)| (p * q).abs()).sum::<f64>()
        })
        .fold(0.0_f64, f64::max);
    checks.push(located(
        compare_above(
            &format!("{name}: φ' (vjp) vs differences of φ"),
            &first,
            &first_fd,
            tolerance,
            g_size / scale,
        )?,
        1,
    ));
    let second_fd = central_difference(h, |t| {
        Ok((0..rows)
            .map(|r| {
                let mut g = vec![0.0; m_out];
                phi.transpose_jacobian_vector_product(&shifted(t, r), c.row(r), &mut g);
                dot(&g, w_dir.row(r))
            })
            .collect())
    })?;
    let second: Vec<f64> = (0..rows)
        .map(|r| {
            phi.curvature_product(s.row(r), c.row(r), u.row(r), &mut out);
            dot(&out, w_dir.row(r))
        })
        .collect();
    checks.push(located(
        compare_above(
            &format!("{name}: φ'' (curvature product) vs differences of φ'"),
            &second,
            &second_fd,
            tolerance,
            g_size / (scale * scale),
        )?,
        1,
    ));
    Ok(checks)
}

/// Names a batch matrix entry (`cols` units per example) as `example n, unit u`.
fn located(mut report: CheckReport, cols: usize) -> CheckReport {
    let cols = cols.max(1);
    report.location = Some(if cols == 1 {
        format!("example {}", report.at)
    } else {
        format!("example {}, unit {}", report.at / cols, report.at % cols)
    });
    report
}

/// `parameter_blocks` inside θ and pairwise disjoint.
fn check_blocks<M: Model>(model: &M) -> Result<Vec<crate::model::ParameterBlock>> {
    let n = model.num_params();
    let blocks = model.parameter_blocks();
    for (k, a) in blocks.iter().enumerate() {
        if a.range.end > n || a.range.start > a.range.end {
            return Err(CurvatureError::invalid(
                "check_model",
                format!("parameter block {} at {:?} is not inside θ (length {n})", a.name, a.range),
            ));
        }
        for b in &blocks[k + 1..] {
            if a.range.start < b.range.end && b.range.start < a.range.end {
                return Err(CurvatureError::invalid(
                    "check_model",
                    format!(
                        "parameter blocks {} {:?} and {} {:?} overlap (name a shared block once)",
                        a.name, a.range, b.name, b.range
                    ),
                ));
            }
        }
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::SquaredError;
    use crate::model::test_models::{Fault, SharedResidual};
    use crate::{Activation, Mlp};
    use autodiff::random::random_vector;

    fn run(fault: Fault) -> Result<CheckReport> {
        let mut rng = StdRng::seed_from_u64(7);
        let x = random_matrix(5, 3, &mut rng);
        let y = random_matrix(5, 2, &mut rng);
        let theta = random_vector(50, &mut rng);
        let model = SharedResidual::with(fault);
        let problem = Problem::new(&model, &SquaredError, &x, &y)?;
        check_model(&problem, &theta, 1e-8)
    }

    /// The failed part's name, for the planted faults below.
    fn failed_parts(report: &CheckReport) -> Vec<String> {
        report.parts.iter().filter(|p| !p.passed()).map(|p| p.check.clone()).collect()
    }

    #[test]
    fn a_correct_model_with_sharing_a_residual_and_a_custom_nonlinearity_passes() {
        let report = run(Fault::None).unwrap();
        report.assert_passed();
        // forward (2) + per layer: s values, s tangents, a = φ(s), adjoint, φ', φ'' (6 each).
        assert_eq!(report.parts.len(), 2 + 6 * 4, "{report}");
        let mut rng = StdRng::seed_from_u64(8);
        let mlp = Mlp::new(&[3, 4, 2], &[Activation::Softplus, Activation::Softmax]).unwrap();
        let x = random_matrix(4, 3, &mut rng);
        let y = Matrix::from_fn(4, 2, |i, j| if i % 2 == j { 1.0 } else { 0.0 });
        let problem = Problem::new(&mlp, &crate::loss::CategoricalProbabilities, &x, &y).unwrap();
        check_model(&problem, &random_vector(mlp.num_params(), &mut rng), 1e-8)
            .unwrap()
            .assert_passed();
    }

    #[test]
    fn forward_disagreeing_with_the_last_layer_is_caught() {
        let report = run(Fault::ForwardDiffers).unwrap();
        assert!(!report.passed());
        let failed = failed_parts(&report);
        assert!(
            failed.iter().any(|c| c.contains("forward vs last layer's a (values)")),
            "{report}"
        );
        assert!(failed.iter().all(|c| c.starts_with("forward")), "{report}");
    }

    #[test]
    fn a_declared_activation_that_is_not_the_recorded_one_is_caught_at_its_layer() {
        let report = run(Fault::WrongActivation).unwrap();
        let failed = failed_parts(&report);
        assert!(failed.contains(&"layer 2 (logistic): a = φ(s)".to_string()), "{report}");
        assert!(failed.iter().all(|c| c.starts_with("layer 2")), "{report}");
        assert!(report.to_string().contains("example "), "{report}");
    }

    #[test]
    fn a_wrong_weight_range_is_caught_at_its_layer() {
        let report = run(Fault::WrongWeights).unwrap();
        let failed = failed_parts(&report);
        assert!(
            failed.iter().any(|c| c.starts_with("layer 3 (s + sin s): s = input·W3ᵀ + b3")),
            "{report}"
        );
        assert!(failed.iter().all(|c| c.starts_with("layer 3")), "{report}");
    }

    #[test]
    fn a_wrong_second_derivative_of_a_users_nonlinearity_is_caught() {
        let report = run(Fault::WrongSecondDerivative).unwrap();
        let failed = failed_parts(&report);
        assert_eq!(
            failed,
            vec!["layer 3 (s + sin s): φ'' (curvature product) vs differences of φ'".to_string()],
            "{report}"
        );
    }

    #[test]
    fn overlapping_parameter_blocks_and_bad_ranges_are_errors() {
        let err = run(Fault::OverlappingBlocks).unwrap_err().to_string();
        assert!(err.contains("parameter blocks W2 16..32 and W3 16..32 overlap"), "{err}");
        let err = run(Fault::WeightsOutsideTheta).unwrap_err().to_string();
        assert!(err.contains("layer 3: weights 40..56 must be 4×4 = 16 entries inside θ"), "{err}");
        let mut rng = StdRng::seed_from_u64(9);
        let (x, y) = (random_matrix(2, 3, &mut rng), random_matrix(2, 2, &mut rng));
        let model = SharedResidual::default();
        let problem = Problem::new(&model, &SquaredError, &x, &y).unwrap();
        let err = check_model(&problem, &[0.0; 49], 1e-8).unwrap_err().to_string();
        assert!(err.contains("check_model (θ)"), "{err}");
    }
}
