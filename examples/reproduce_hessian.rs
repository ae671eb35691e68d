//! Reproduction: Hessian decomposition (Sections 8, 8.1.2, 8.1.3): `H = Jᵀ H_L J + C + Cᵀ + activation term` per layer block on tanh, logistic and ReLU networks, with heat maps.
//!
//! `cargo run --release --example reproduce_hessian -- [--out DIR] [--seed N] [--quick]`
//! (the same as `cargo run --release --example reproduce -- --only hessian`).

fn main() {
    natgrad::reproduce::cli::main_with(&["hessian"]);
}
