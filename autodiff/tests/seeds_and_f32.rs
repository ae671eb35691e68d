//! Several seeds in one reverse sweep equal the sum of separate sweeps (exact, 1e-14), and the
//! same generic code runs on `f32` (gradient within f32 round-off of the f64 one, 1e-5).

use autodiff::random::random_matrix;
use autodiff::{Matrix, Retain, Scalar, Tape};
use rand::{rngs::StdRng, SeedableRng};

fn network<'t, T: Scalar>(
    tape: &'t Tape<T>,
    w: &Matrix<f64>,
    x: &Matrix<f64>,
) -> (autodiff::Var<'t, T>, autodiff::Var<'t, T>, autodiff::Var<'t, T>) {
    let wv = tape.input(w.map(T::from_f64));
    let h = tape.constant_f64(x).matmul_t(wv).unwrap().tanh().unwrap();
    let out = h.square().unwrap().sum().unwrap();
    (wv, h, out)
}

#[test]
fn seeds_on_intermediate_nodes_add_up_in_one_sweep() {
    let mut rng = StdRng::seed_from_u64(3);
    let (w, x) = (random_matrix(4, 3, &mut rng), random_matrix(5, 3, &mut rng));
    let seed_h = random_matrix(5, 4, &mut rng);
    let tape = Tape::<f64>::new();
    let (wv, h, out) = network(&tape, &w, &x);
    let both = tape
        .backward_with_seeds(
            &[(out, Matrix::filled(1, 1, 0.7)), (h, seed_h.clone())],
            Retain::Inputs,
        )
        .unwrap();
    let a = tape.backward_with_seeds(&[(out, Matrix::filled(1, 1, 0.7))], Retain::Inputs).unwrap();
    let b = tape.backward_with_seeds(&[(h, seed_h)], Retain::All).unwrap();
    for ((x, y), z) in both
        .wrt(wv)
        .unwrap()
        .data()
        .iter()
        .zip(a.wrt(wv).unwrap().data())
        .zip(b.wrt(wv).unwrap().data())
    {
        assert!((x - (y + z)).abs() <= 1e-14 * x.abs().max(1.0), "{x} vs {y} + {z}");
    }
    // Retain::All keeps the intermediate adjoint; Retain::Inputs does not.
    assert!(b.wrt(h).is_some() && a.wrt(h).is_none());
}

#[test]
fn the_same_code_runs_on_f32() {
    let mut rng = StdRng::seed_from_u64(4);
    let (w, x) = (random_matrix(4, 3, &mut rng), random_matrix(5, 3, &mut rng));
    let grad = |f32_mode: bool| -> Vec<f64> {
        if f32_mode {
            let tape = Tape::<f32>::new();
            let (wv, _, out) = network(&tape, &w, &x);
            tape.backward(out, Matrix::filled(1, 1, 1.0))
                .unwrap()
                .wrt(wv)
                .unwrap()
                .data()
                .iter()
                .map(|&v| v as f64)
                .collect()
        } else {
            let tape = Tape::<f64>::new();
            let (wv, _, out) = network(&tape, &w, &x);
            tape.backward(out, Matrix::filled(1, 1, 1.0)).unwrap().wrt(wv).unwrap().data().to_vec()
        }
    };
    let (g32, g64) = (grad(true), grad(false));
    let scale = g64.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    for (a, b) in g32.iter().zip(&g64) {
        assert!((a - b).abs() <= 1e-5 * scale, "f32 {a} vs f64 {b}");
    }
}
