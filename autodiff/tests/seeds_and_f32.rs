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

/// A sweep that keeps only the inputs' adjoints hands the buffers of finished adjoints to new
/// ones (stale contents and all); one that keeps every adjoint never does. A chain of
/// same-shaped nodes makes every kind of new adjoint (a product's, an elementwise rule's, a
/// fused activation rule's, θ's own) take a used buffer, so any element one fails to overwrite
/// shows up as a difference (1e-14, relative).
#[test]
fn reusing_finished_adjoint_buffers_changes_no_gradient() {
    let mut rng = StdRng::seed_from_u64(9);
    // 12×5 adjoints: a finished one is large enough to become θ's (55 elements).
    let x = random_matrix(12, 5, &mut rng);
    let w = random_matrix(3, 5, &mut rng).map(|v| 3.0 * v);
    let theta = random_matrix(5 * 5 + 5 + 5 * 5, 1, &mut rng);
    let run = |retain: Retain| -> Vec<f64> {
        let tape = Tape::<f64>::new();
        let th = tape.input(theta.clone());
        let (w1, b1) = (th.slice(0, 5, 5).unwrap(), th.slice(25, 1, 5).unwrap());
        let w2 = th.slice(30, 5, 5).unwrap();
        let h = tape.constant(x.clone()).affine(w1, b1).unwrap().tanh().unwrap();
        let h = h.matmul_t(w2).unwrap().sigmoid().unwrap();
        let h = h.mul(h).unwrap().exp().unwrap().matmul_t(w1).unwrap().tanh().unwrap();
        // A residual branch: two adjoints live at once, so one buffer is spare after it joins.
        let h = h.sigmoid().unwrap().add(h).unwrap().tanh().unwrap();
        let out = h.matmul_t(tape.constant(w.clone())).unwrap().square().unwrap().sum().unwrap();
        let g = tape.backward_with_seeds(&[(out, Matrix::filled(1, 1, 1.0))], retain).unwrap();
        g.wrt(th).unwrap().data().to_vec()
    };
    let (kept, reused) = (run(Retain::All), run(Retain::Inputs));
    assert!(kept.iter().all(|v| v.is_finite() && *v != 0.0));
    for (k, (a, b)) in reused.iter().zip(&kept).enumerate() {
        assert!((a - b).abs() <= 1e-14 * b.abs().max(1.0), "[{k}]: {a} vs {b}");
    }
}
