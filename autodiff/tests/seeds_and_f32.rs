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

/// Slices of θ are views: their adjoints go straight into θ's in a sweep that keeps only the
/// inputs' adjoints, and are formed separately under `Retain::All`. Both must agree with each
/// other to round-off and with the gradient through explicit copies (a slice of a slice, a
/// slice feeding an elementwise op and a product, and a seed placed on a slice itself).
#[test]
fn slices_are_views_with_the_same_adjoints_as_copies() {
    let mut rng = StdRng::seed_from_u64(5);
    let theta = random_matrix(30, 1, &mut rng);
    let x = random_matrix(4, 3, &mut rng);
    let seed_w = random_matrix(2, 3, &mut rng);
    // `copy` rebuilds each slice from a constant matrix of ones (so no view is involved):
    // slice(start, r, c) = reshape of the product of a selection matrix with θ.
    let run = |retain: Retain, copy: bool| -> Vec<f64> {
        let tape = Tape::<f64>::new();
        let th = tape.input(theta.clone());
        let slice = |start: usize, r: usize, c: usize| {
            if copy {
                let select =
                    Matrix::from_fn(r * c, 30, |i, j| if j == start + i { 1.0 } else { 0.0 });
                tape.constant(select).matmul(th).unwrap().reshape(r, c).unwrap()
            } else {
                th.slice(start, r, c).unwrap()
            }
        };
        let w = slice(2, 2, 3);
        let inner =
            if copy { slice(10, 1, 2) } else { th.slice(8, 6, 1).unwrap().slice(2, 1, 2).unwrap() };
        let b = slice(20, 1, 2);
        let s = tape.constant(x.clone()).affine(w, b).unwrap().tanh().unwrap();
        let out =
            s.mul(s).unwrap().sum().unwrap().add(inner.exp().unwrap().sum().unwrap()).unwrap();
        let g = tape
            .backward_with_seeds(&[(out, Matrix::filled(1, 1, 1.0)), (w, seed_w.clone())], retain)
            .unwrap();
        g.wrt(th).unwrap().data().to_vec()
    };
    let reference = run(Retain::All, true);
    for (retain, copy) in [(Retain::Inputs, false), (Retain::All, false), (Retain::Inputs, true)] {
        let got = run(retain, copy);
        for (k, (a, b)) in got.iter().zip(&reference).enumerate() {
            assert!(
                (a - b).abs() <= 1e-14 * b.abs().max(1.0),
                "{retain:?} copy={copy} [{k}]: {a} vs {b}"
            );
        }
    }
    // The seed on the slice shows up in θ's adjoint: untouched entries stay exactly zero.
    assert_eq!(reference[0], 0.0);
    assert!(reference[2] != 0.0 && reference[10] != 0.0 && reference[20] != 0.0);
}
