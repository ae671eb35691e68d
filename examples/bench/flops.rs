//! Matrix-product FLOP counts of the workloads' ops.

use super::ops::Workload;

/// Matrix-product FLOPs of one forward pass, and of its first layer (whose input has no
/// tangent and needs no adjoint).
pub fn forward_flops(w: &Workload) -> (f64, f64) {
    mlp_forward_flops(w.mlp.sizes(), w.batch)
}

/// [`forward_flops`] of an MLP with layer sizes `s` on a batch of `batch` rows.
pub fn mlp_forward_flops(s: &[usize], batch: usize) -> (f64, f64) {
    let n = batch as f64;
    let total = s.windows(2).map(|p| 2.0 * n * p[0] as f64 * p[1] as f64).sum();
    (total, 2.0 * n * s[0] as f64 * s[1] as f64)
}

/// FLOPs per op, counting only matrix products (see the README's benchmark section).
pub fn op_flops(op: &str, f: f64, f1: f64) -> f64 {
    match op {
        "loss" => f,
        "gradient" | "jvp" | "vjp" => 3.0 * f - f1,
        "ggn" | "fisher" | "empirical_fisher" => 5.0 * f - 2.0 * f1,
        "ggn_repeated" => 4.0 * f - 2.0 * f1,
        // A dual forward (3 real products per layer, 2 in the first, whose input has no
        // tangent: 3F − F₁) and a dual backward: dA with 3 products per layer but the first
        // (3F − 3F₁), dW with only its 2 tangent products (the gradient, its primal part, is not
        // wanted) and 1 in the first layer (2F − F₁).
        "hvp" | "hvp_recorded_pass_dual" => 8.0 * f - 5.0 * f1,
        // The fused `H v` of a recorded pass (the forward values and the gradient's adjoints
        // reused): a tangent sweep (2F − F₁), a reverse sweep seeded with `H_L J v`, the `Cᵀ v`
        // and the activation-term seeds (2F − F₁: no adjoint for the first layer's input), the
        // `C v` outer products and the `Cᵀ v` seeds (F − F₁ each: none for the first layer).
        "hvp_recorded_pass" => 6.0 * f - 4.0 * f1,
        _ => f64::NAN,
    }
}
