//! Matrix-product FLOP counts of the workloads' ops.

use super::ops::Workload;

/// Matrix-product FLOPs of one forward pass, and of its first layer (whose input has no
/// tangent and needs no adjoint).
pub fn forward_flops(w: &Workload) -> (f64, f64) {
    let s = w.mlp.sizes();
    let n = w.batch as f64;
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
        "hvp" => 8.0 * f - 5.0 * f1,
        _ => f64::NAN,
    }
}
