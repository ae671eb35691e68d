//! Reproduction: The empirical Fisher failure (Section 11.1): the Fisher iteration converges linearly at rate `|1 − α|`; the `F̄^ξ` iteration with `ξ = 1` and a constant step does not.
//!
//! `cargo run --release --example reproduce_empirical_fisher -- [--out DIR] [--seed N] [--quick]`
//! (the same as `cargo run --release --example reproduce -- --only empirical_fisher`).

fn main() {
    natgrad::reproduce::cli::main_with(&["empirical_fisher"]);
}
