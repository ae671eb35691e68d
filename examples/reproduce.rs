//! Reproduces the paper's claims (Martens, JMLR 2020), all six reproductions or a subset:
//! prints a table (claim, section, measured, paper, pass/fail), writes `report.md` with SVG
//! figures and CSV numbers to the output directory, and exits non-zero if any claim fails.
//! Each reproduction is also its own example, `reproduce_<name>`.
//!
//! `cargo run --release --example reproduce -- [--only hessian,fisher_ggn,empirical_fisher,
//! invariance,convergence,autoencoder] [--out out/reproduce] [--seed 0] [--quick] [--idx DIR]`

fn main() {
    natgrad::reproduce::cli::main_with(&[]);
}
