//! The `kfac` op (`--op kfac`, f64, one thread): one K-FAC step when the factors are not
//! refreshed, i.e. the gradient at θ and the proposal `Δ = −(K + damping)⁻¹ ∇h` through the
//! Kronecker-factored inverse (`G_i⁻¹ X Ā_i⁻¹` per layer), and the update `θ + Δ`. The factors
//! (one Monte-Carlo sample over the batch) and their factored-damping inverse are computed
//! once, before timing, as the optimizer does every `T` steps; their one-off cost is printed.
//! The exact 2-D quadratic model of the optimizer (two `G v` products) is not part of this
//! row: its cost is that of the `ggn` row, twice, on the curvature batch. `--op kfac32` runs the
//! inverse's products in `f32` (`KfacInverse::with_single_precision_products`): the FLOPs of
//! the `f64` products alone put that row at 1.58 gradients or more on W1.

use curvature::kfac::{KfacDamping, KfacKind};
use curvature::{LinearOperator, Mlp, Problem};
use std::hint::black_box;
use std::time::Instant;

/// The timed closure (see the module doc).
pub fn closure<'a>(
    problem: &'a Problem<'a, Mlp>,
    theta: &'a [f64],
    single_precision: bool,
) -> Box<dyn FnMut() + 'a> {
    let start = Instant::now();
    let kfac = problem.at(theta).and_then(|p| p.kfac(&KfacKind::MonteCarlo { seed: 0 }));
    let statistics = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut inverse = kfac.and_then(|k| k.inverse(KfacDamping::Factored { lambda: 1e-2 })).unwrap();
    if single_precision {
        inverse = inverse.with_single_precision_products();
    }
    println!(
        "kfac: one-off factor statistics {:.1} ms, factored-damping inverse {:.1} ms (not timed in the row)",
        statistics * 1e3,
        start.elapsed().as_secs_f64() * 1e3
    );
    let mut delta = vec![0.0; theta.len()];
    Box::new(move || {
        let g = problem.at(theta).unwrap().gradient().unwrap();
        inverse.apply(&g, &mut delta).unwrap();
        let next: Vec<f64> = theta.iter().zip(&delta).map(|(t, d)| t - d).collect();
        black_box(next);
    })
}
