//! Reproduction: spectra of H, G, F and F̄ during the training of a small autoencoder (Section
//! 8.1): top and bottom Lanczos eigenvalues at checkpoints and the SLQ densities of H and G.
//!
//! `cargo run --release --example reproduce_spectra -- [--out DIR] [--seed N] [--quick]`
//! (the same as `cargo run --release --example reproduce -- --only spectra`).

fn main() {
    natgrad::reproduce::cli::main_with(&["spectra"]);
}
