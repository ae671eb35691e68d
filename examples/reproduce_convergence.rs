//! Reproduction: Convergence theory (Section 14): exact `E[h(θ_k)]`, Theorem 5 and 6 bounds and Monte-Carlo curves for `B = H*` against `B = λ_n I`, constant and annealed steps, and the Section 14.2.1 noise constants.
//!
//! `cargo run --release --example reproduce_convergence -- [--out DIR] [--seed N] [--quick]`
//! (the same as `cargo run --release --example reproduce -- --only convergence`).

fn main() {
    natgrad::reproduce::cli::main_with(&["convergence"]);
}
