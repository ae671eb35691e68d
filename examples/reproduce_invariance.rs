//! Reproduction: Parameterization invariance (Section 12): one-step discrepancy of natural gradient, GGN, Newton and gradient descent under affine and nonlinear reparameterizations, with its log-log slope (the paper predicts `α²`).
//!
//! `cargo run --release --example reproduce_invariance -- [--out DIR] [--seed N] [--quick]`
//! (the same as `cargo run --release --example reproduce -- --only invariance`).

fn main() {
    natgrad::reproduce::cli::main_with(&["invariance"]);
}
