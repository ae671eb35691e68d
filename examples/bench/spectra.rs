//! The Lanczos row: the top k = 20 eigenpairs of W2's Hessian from 24 Lanczos steps with full
//! reorthogonalization (`curvature::spectra::lanczos`), timed as a ratio to one `H v` (the
//! `hvp` row's op) over back-to-back pairs of 12 `H v`s and one Lanczos run. Target: ≤ 25 `H v`s of time; the 24 products set
//! the floor, the reorthogonalization (`O(m² n)`) and the 24×24 tridiagonal eigenproblem the rest.

use curvature::spectra::{lanczos, LanczosParams, Which};
use curvature::{FnOperator, Mlp, Problem};
use std::hint::black_box;

/// Lanczos k, and its steps (= `H v` products).
const K: usize = 20;
const STEPS: usize = 24;
/// `H v`s timed in one pair against one Lanczos run.
const HV_PER_PAIR: usize = 12;

/// Prints the row and returns its JSON record.
pub fn lanczos_row(problem: &Problem<'_, Mlp>, theta: &[f64], v: &[f64], runs: usize) -> String {
    let hessian =
        FnOperator::new(theta.len(), |u: &[f64]| problem.hessian_vector_product(theta, u))
            .symmetric();
    let params = LanczosParams::new(K, Which::LargestAlgebraic).steps(STEPS);
    let result = lanczos(&hessian, &params).expect("lanczos on W2");
    // Each pair times HV_PER_PAIR products against one Lanczos run, so both sides of a pair
    // last long enough to see the same load.
    let ratio = HV_PER_PAIR as f64
        * super::paired_ratio(
            runs,
            &mut || {
                for _ in 0..HV_PER_PAIR {
                    drop(black_box(problem.hessian_vector_product(theta, v)));
                }
            },
            &mut || drop(black_box(lanczos(&hessian, &params))),
        );
    let top = result.values[0].abs();
    let converged = result.residual_norms.iter().filter(|&&r| r <= 1e-6 * top).count();
    println!(
        "lanczos k={K} ({STEPS} steps, H) ÷ H v*: {ratio:.2} (target ≤ 25); λ_max {:.4e}, \
         {converged} of {K} Ritz pairs with ‖H x − θ x‖ ≤ 1e-6 λ_max, the largest residual {:.1e} λ_max",
        result.values[0],
        result.residual_norms.iter().fold(0.0_f64, |m, r| m.max(*r)) / top
    );
    format!(
        "{{\"workload\":\"w2\",\"op\":\"lanczos_k20\",\"threads\":1,\"steps\":{STEPS},\"paired_ratio_to_hvp\":{ratio:e}}}"
    )
}
