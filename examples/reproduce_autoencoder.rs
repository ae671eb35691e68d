//! Reproduction: Deep autoencoder training (Sections 10, 11.2): the 784-1000-500-250-30-250-500-1000-784 autoencoder on CURVES-style images (or IDX images with `--idx DIR`) with SGD + momentum, Adam, Hessian-free, damped natural gradient and K-FAC.
//!
//! `cargo run --release --example reproduce_autoencoder -- [--out DIR] [--seed N] [--quick] [--idx DIR]`
//! (the same as `cargo run --release --example reproduce -- --only autoencoder`).

fn main() {
    natgrad::reproduce::cli::main_with(&["autoencoder"]);
}
