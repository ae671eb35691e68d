//! Reproduction: Fisher vs GGN (Section 9.2): `F = G` for natural-parameter losses, the gaps otherwise, the indefinite `H_L` of the Gaussian with log-variance, and the Monte-Carlo Fisher's error against the number of samples.
//!
//! `cargo run --release --example reproduce_fisher_ggn -- [--out DIR] [--seed N] [--quick]`
//! (the same as `cargo run --release --example reproduce -- --only fisher_ggn`).

fn main() {
    natgrad::reproduce::cli::main_with(&["fisher_ggn"]);
}
