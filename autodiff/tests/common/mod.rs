//! Shared pieces of the autodiff integration tests: a forward-over-forward dense Hessian
//! (an exact path independent of the tape's reverse sweep) and seeded data.

#![allow(dead_code)]

use autodiff::{modes::Function, Dual, Matrix, Tape};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// `∂²F/∂θᵢ∂θⱼ` for every pair by evaluating `F` on `Dual<Dual<f64>>` with `θ + eᵢ ε₁ + eⱼ ε₂`
/// and reading the `ε₁ε₂` part: forward-over-forward, no reverse sweep involved.
pub fn hessian_forward_over_forward<F: Function>(f: &F, theta: &[f64]) -> Matrix<f64> {
    let n = theta.len();
    Matrix::from_fn(n, n, |i, j| {
        let tape = Tape::<Dual<Dual<f64>>>::new();
        let th = theta
            .iter()
            .enumerate()
            .map(|(k, &t)| {
                let di = if k == i { 1.0 } else { 0.0 };
                let dj = if k == j { 1.0 } else { 0.0 };
                Dual::new(Dual::new(t, di), Dual::new(dj, 0.0))
            })
            .collect();
        let th = tape.input(Matrix::column(th));
        let out = f.eval(&tape, th).expect("eval");
        out.value()[(0, 0)].eps.eps
    })
}

/// Values in `±[margin, margin + 1.5)`: away from relu's kink and from zero divisors.
pub fn values_away_from_zero(n: usize, margin: f64, rng: &mut StdRng) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let x: f64 = rng.random_range(margin..margin + 1.5);
            if rng.random::<bool>() {
                x
            } else {
                -x
            }
        })
        .collect()
}

/// Values in `[lo, hi)`.
pub fn values_in(n: usize, lo: f64, hi: f64, rng: &mut StdRng) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// A seeded generator.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `max |a − b|` over entries.
pub fn max_abs_diff(a: &Matrix<f64>, b: &Matrix<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.data().iter().zip(b.data()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// `max |a|` over entries.
pub fn max_abs(a: &Matrix<f64>) -> f64 {
    a.data().iter().fold(0.0_f64, |m, x| m.max(x.abs()))
}
