//! The Lanczos row: the top k = 20 eigenpairs of W2's Hessian from 24 Lanczos steps with full
//! reorthogonalization (`curvature::spectra::lanczos`) on the Hessian of one recorded pass
//! (`problem.at(θ)?.hessian()`, so the 24 products reuse θ's forward pass), the run including
//! building that pass. Timed as a ratio to one fresh `H v` (`problem.hessian_vector_product(θ,
//! v)`, the `hvp` row's op) over back-to-back pairs of 12 `H v`s and one Lanczos run. Target:
//! ≤ 25 fresh `H v`s of time. Also printed: the same ratio in units of the pass's own `H v`
//! (the products' share; the rest is the pass, the reorthogonalization (`O(m² n)`) and the
//! 24×24 tridiagonal eigenproblem), the 20-step run (the fewest steps for k = 20), how many
//! Ritz pairs converge at each, and the eigenvalues against Lanczos on fresh passes. A last
//! line times one `H v` on a recorded pass (fused for this layered MLP: a tangent and a reverse
//! sweep over the pass's tape) and the same pass's dual `H v`, each ÷ fresh `H v`, beside
//! their FLOP floors.

use curvature::spectra::{lanczos, Lanczos, LanczosParams, Which};
use curvature::{FnOperator, Mlp, Problem};
use std::hint::black_box;

/// Lanczos k, and its steps (= `H v` products).
const K: usize = 20;
const STEPS: usize = 24;
/// `H v`s timed in one pair against one Lanczos run.
const HV_PER_PAIR: usize = 12;

/// Lanczos on the Hessian of a pass recorded at θ, the pass built inside the run.
fn lanczos_on_recorded_pass(
    problem: &Problem<'_, Mlp>,
    theta: &[f64],
    params: &LanczosParams,
) -> Lanczos {
    let pass = problem.at(theta).expect("pass at θ on W2");
    let hessian = pass.hessian();
    lanczos(&hessian, params).expect("lanczos on W2")
}

/// The Ritz pairs with `‖H x − θ x‖ ≤ 1e-6 λ_max`, and the largest residual over `λ_max`.
fn converged(result: &Lanczos) -> (usize, f64) {
    let top = result.values[0].abs();
    let count = result.residual_norms.iter().filter(|&&r| r <= 1e-6 * top).count();
    (count, result.residual_norms.iter().fold(0.0_f64, |m, r| m.max(*r)) / top)
}

/// `HV_PER_PAIR ×` the median ratio of one Lanczos run (`steps` steps) to `HV_PER_PAIR` runs
/// of `product`, over `runs` back-to-back pairs: the run in units of one `product`.
fn ratio_to(
    runs: usize,
    product: &mut dyn FnMut(),
    problem: &Problem<'_, Mlp>,
    theta: &[f64],
    steps: usize,
) -> f64 {
    let params = LanczosParams::new(K, Which::LargestAlgebraic).steps(steps);
    // Each pair times HV_PER_PAIR products against one Lanczos run, so both sides of a pair
    // last long enough to see the same load.
    HV_PER_PAIR as f64
        * super::timing::paired_ratio(
            runs,
            &mut || {
                for _ in 0..HV_PER_PAIR {
                    product();
                }
            },
            &mut || drop(black_box(lanczos_on_recorded_pass(problem, theta, &params))),
        )
}

/// Prints the row and returns its JSON record.
pub fn lanczos_row(problem: &Problem<'_, Mlp>, theta: &[f64], v: &[f64], runs: usize) -> String {
    let params = LanczosParams::new(K, Which::LargestAlgebraic).steps(STEPS);
    let result = lanczos_on_recorded_pass(problem, theta, &params);
    let short = lanczos_on_recorded_pass(
        problem,
        theta,
        &LanczosParams::new(K, Which::LargestAlgebraic).steps(K),
    );
    // The same Lanczos on fresh passes (one per product): the recorded pass's `H v` differs
    // from a fresh one by round-off only.
    let fresh_operator =
        FnOperator::new(theta.len(), |u: &[f64]| problem.hessian_vector_product(theta, u))
            .symmetric();
    let fresh = lanczos(&fresh_operator, &params).expect("lanczos on W2 (fresh passes)");
    let difference =
        result.values.iter().zip(&fresh.values).map(|(a, b)| (a - b).abs()).fold(0.0_f64, f64::max)
            / result.values[0].abs();

    let mut fresh_product = || drop(black_box(problem.hessian_vector_product(theta, v)));
    let ratio = ratio_to(runs, &mut fresh_product, problem, theta, STEPS);
    let ratio_short = ratio_to(runs, &mut fresh_product, problem, theta, K);
    let pass = problem.at(theta).expect("pass at θ on W2");
    let mut pass_product = || drop(black_box(pass.hessian_vector_product(v)));
    let ratio_pass = ratio_to(runs, &mut pass_product, problem, theta, STEPS);
    // What Lanczos costs beyond its products: the same 24 steps on a diagonal operator of W2's
    // dimension (O(n) per product), in fresh `H v`s.
    let n = theta.len();
    let diagonal = FnOperator::new(n, |u: &[f64]| {
        Ok(u.iter().enumerate().map(|(i, x)| x * (1.0 + i as f64 / n as f64)).collect())
    })
    .symmetric();
    let bookkeeping = HV_PER_PAIR as f64
        * super::timing::paired_ratio(
            runs,
            &mut || {
                for _ in 0..HV_PER_PAIR {
                    fresh_product();
                }
            },
            &mut || drop(black_box(lanczos(&diagonal, &params))),
        );

    // `H v` on a recorded pass (fused for this layered MLP; the pass and its gradient's
    // adjoints computed once before timing) and the same pass's dual `H v`, each ÷ fresh `H v`.
    let mut pass_dual_product = || drop(black_box(pass.dual_hessian_vector_product(v)));
    let repeated = |product: &mut dyn FnMut()| {
        super::timing::paired_ratio(
            runs,
            &mut || {
                for _ in 0..HV_PER_PAIR {
                    fresh_product();
                }
            },
            &mut || {
                for _ in 0..HV_PER_PAIR {
                    product();
                }
            },
        )
    };
    let pass_over_fresh = repeated(&mut pass_product);
    let pass_dual_over_fresh = repeated(&mut pass_dual_product);
    let (f, f1) = super::flops::mlp_forward_flops(problem.model.sizes(), problem.x.rows());
    let floor = |op: &str| super::flops::op_flops(op, f, f1) / super::flops::op_flops("hvp", f, f1);

    let (converged_full, worst_full) = converged(&result);
    let (converged_short, worst_short) = converged(&short);
    println!(
        "lanczos k={K} ({STEPS} steps, H of one recorded pass, the pass included) ÷ fresh H v*: \
         {ratio:.2} (target ≤ 25); ÷ the pass's own H v*: {ratio_pass:.2}; λ_max {:.4e}, \
         {converged_full} of {K} Ritz pairs with ‖H x − θ x‖ ≤ 1e-6 λ_max, the largest \
         residual {worst_full:.1e} λ_max; eigenvalues against Lanczos on fresh passes: largest \
         difference {difference:.1e} λ_max",
        result.values[0],
    );
    println!(
        "lanczos k={K} ({K} steps, the same) ÷ fresh H v*: {ratio_short:.2}; {converged_short} \
         of {K} Ritz pairs converged, the largest residual {worst_short:.1e} λ_max; Lanczos \
         without its products ({STEPS} steps on a diagonal operator of the same dimension) ÷ \
         fresh H v*: {bookkeeping:.2}"
    );
    println!(
        "H v on a recorded pass (fused: one tangent + one reverse sweep over the pass's tape) ÷ \
         fresh H v*: {pass_over_fresh:.3} (FLOP floor 6F−4F₁ ÷ 8F−5F₁ = {:.3}); the same pass's \
         dual H v ÷ fresh H v*: {pass_dual_over_fresh:.3} (floor {:.3})",
        floor("hvp_recorded_pass"),
        floor("hvp_recorded_pass_dual"),
    );
    format!(
        "{{\"workload\":\"w2\",\"op\":\"hvp_recorded_pass\",\"threads\":1,\"paired_ratio_to_hvp\":{pass_over_fresh:e},\"dual_paired_ratio_to_hvp\":{pass_dual_over_fresh:e},\"flop_floor_ratio\":{:e}}},\n",
        floor("hvp_recorded_pass"),
    ) + &format!(
        "{{\"workload\":\"w2\",\"op\":\"lanczos_k20\",\"threads\":1,\"steps\":{STEPS},\"paired_ratio_to_hvp\":{ratio:e},\"paired_ratio_to_pass_hvp\":{ratio_pass:e},\"converged\":{converged_full},\"steps_20_paired_ratio_to_hvp\":{ratio_short:e},\"steps_20_converged\":{converged_short},\"bookkeeping_ratio_to_hvp\":{bookkeeping:e}}}"
    )
}
