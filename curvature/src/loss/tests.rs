//! Every built-in distribution against finite differences, exact expectations and sampling.
//! Tiers: finite differences 1e-8 (norm-wise relative, Richardson-extrapolated central
//! differences); exact identities 1e-12; Monte-Carlo estimates within 5 standard errors.

use super::*;
use autodiff::check::{central_difference, compare};
use autodiff::linalg::symmetric_eigen;
use autodiff::random::random_vector;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// A valid output row for each distribution (positive precisions, probabilities on the simplex).
fn random_output(name: &str, m: usize, rng: &mut StdRng) -> Vec<f64> {
    let z = random_vector(m, rng);
    match name {
        "gaussian_natural" => {
            let d = m / 2;
            (0..m).map(|k| if k < d { z[k] } else { 0.5 + z[k].abs() }).collect()
        }
        "categorical_probabilities" => categorical::softmax(&z),
        _ => z,
    }
}

fn output_dim(name: &str) -> usize {
    if name.starts_with("gaussian_") && name != "gaussian_mean_only" {
        4
    } else {
        3
    }
}

fn setup(name: &str, seed: u64) -> (Box<dyn PredictiveDistribution>, Vec<f64>, Vec<f64>) {
    let dist = by_name(name).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let m = output_dim(name);
    let z = random_output(name, m, &mut rng);
    let mut y = vec![0.0; dist.target_dim(m).unwrap()];
    dist.sample(&z, &mut rng, &mut y);
    (dist, z, y)
}

fn along(z: &[f64], u: &[f64], t: f64) -> Vec<f64> {
    z.iter().zip(u).map(|(a, b)| a + t * b).collect()
}

#[test]
fn gradients_and_hessians_match_finite_differences() {
    for name in NAMES {
        for seed in 0..5 {
            let (dist, z, y) = setup(name, seed);
            let m = z.len();
            let mut grad = vec![0.0; m];
            dist.grad_z(&z, &y, &mut grad);
            let mut fd = Vec::new();
            for j in 0..m {
                let e: Vec<f64> = (0..m).map(|k| if k == j { 1.0 } else { 0.0 }).collect();
                // Small steps keep probabilities and precisions inside their domains.
                fd.push(
                    central_difference(1e-4, |t| Ok(vec![dist.loss(&along(&z, &e, t), &y)]))
                        .unwrap()[0],
                );
            }
            compare(&format!("{name} ∇_z L"), &grad, &fd, 1e-8).unwrap().assert_passed();
            let u = random_vector(m, &mut StdRng::seed_from_u64(seed + 50));
            let mut hu = vec![0.0; m];
            dist.apply_h_l(&z, &y, &u, &mut hu);
            let fd = central_difference(1e-4, |t| {
                let mut g = vec![0.0; m];
                dist.grad_z(&along(&z, &u, t), &y, &mut g);
                Ok(g)
            })
            .unwrap();
            compare(&format!("{name} H_L u"), &hu, &fd, 1e-8).unwrap().assert_passed();
            let h = dense_h_l(dist.as_ref(), &z, &y);
            assert!(
                compare("H_L symmetric", h.data(), h.transpose().data(), 1e-14).unwrap().passed(),
                "{name}"
            );
            let f = dense_f_r(dist.as_ref(), &z);
            assert!(
                compare("F_R symmetric", f.data(), f.transpose().data(), 1e-14).unwrap().passed(),
                "{name}"
            );
            let lam = symmetric_eigen(&f).unwrap().values[0];
            assert!(lam >= -1e-14, "{name}: F_R has eigenvalue {lam}");
        }
    }
}

/// `E_y[g gᵀ]` with `g = ∇_z log r(y|z)`, summed exactly over the outcomes of a categorical.
fn exact_fisher_categorical(
    dist: &dyn PredictiveDistribution,
    z: &[f64],
    probs: &[f64],
) -> Matrix<f64> {
    let m = z.len();
    let mut f = Matrix::zeros(m, m);
    for (k, &pk) in probs.iter().enumerate() {
        let y: Vec<f64> = (0..probs.len()).map(|j| if j == k { 1.0 } else { 0.0 }).collect();
        let mut g = vec![0.0; m];
        dist.grad_z(z, &y, &mut g);
        for i in 0..m {
            for j in 0..m {
                f[(i, j)] += pk * g[i] * g[j];
            }
        }
    }
    f
}

#[test]
fn fisher_matches_its_definition_by_exact_enumeration() {
    for seed in 0..5 {
        let (dist, z, _) = setup("softmax_cross_entropy", seed);
        let f = exact_fisher_categorical(dist.as_ref(), &z, &categorical::softmax(&z));
        compare("softmax F_R", dense_f_r(dist.as_ref(), &z).data(), f.data(), 1e-12)
            .unwrap()
            .assert_passed();
        let (dist, z, _) = setup("categorical_probabilities", seed);
        let f = exact_fisher_categorical(dist.as_ref(), &z, &z);
        compare("categorical F_R", dense_f_r(dist.as_ref(), &z).data(), f.data(), 1e-12)
            .unwrap()
            .assert_passed();
        // Bernoulli: independent outputs, enumerate each y_j ∈ {0, 1}.
        let (dist, z, _) = setup("bernoulli_logits", seed);
        let m = z.len();
        let mut f = Matrix::zeros(m, m);
        for mask in 0..(1 << m) {
            let y: Vec<f64> = (0..m).map(|j| ((mask >> j) & 1) as f64).collect();
            let p: f64 = (0..m)
                .map(|j| {
                    let s = 1.0 / (1.0 + (-z[j]).exp());
                    if y[j] == 1.0 {
                        s
                    } else {
                        1.0 - s
                    }
                })
                .product();
            let mut g = vec![0.0; m];
            dist.grad_z(&z, &y, &mut g);
            for i in 0..m {
                for j in 0..m {
                    f[(i, j)] += p * g[i] * g[j];
                }
            }
        }
        compare("bernoulli F_R", dense_f_r(dist.as_ref(), &z).data(), f.data(), 1e-12)
            .unwrap()
            .assert_passed();
    }
}

#[test]
fn gaussian_fishers_match_sampled_outer_products_and_expected_hessians() {
    for name in ["squared_error", "gaussian_natural", "gaussian_mean_logvar"] {
        let (dist, z, _) = setup(name, 11);
        let m = z.len();
        let mut rng = StdRng::seed_from_u64(99);
        let samples = 200_000;
        let mut sum: Matrix<f64> = Matrix::zeros(m, m);
        let mut sum_sq: Matrix<f64> = Matrix::zeros(m, m);
        let mut h_sum: Matrix<f64> = Matrix::zeros(m, m);
        let mut y = vec![0.0; dist.target_dim(m).unwrap()];
        let mut g = vec![0.0; m];
        for _ in 0..samples {
            dist.sample(&z, &mut rng, &mut y);
            dist.grad_z(&z, &y, &mut g);
            let h = dense_h_l(dist.as_ref(), &z, &y);
            for i in 0..m {
                for j in 0..m {
                    let x = g[i] * g[j];
                    sum[(i, j)] += x;
                    sum_sq[(i, j)] += x * x;
                    h_sum[(i, j)] += h[(i, j)];
                }
            }
        }
        let f = dense_f_r(dist.as_ref(), &z);
        for i in 0..m {
            for j in 0..m {
                let n = samples as f64;
                let mean = sum[(i, j)] / n;
                let se = ((sum_sq[(i, j)] / n - mean * mean) / n).sqrt();
                assert!(
                    (mean - f[(i, j)]).abs() <= 5.0 * se + 1e-12,
                    "{name} F_R[{i},{j}]: {} vs sampled {mean} ± {se}",
                    f[(i, j)]
                );
                // E_y[H_L] = F_R (the information identity); H_L is linear in y and y², so
                // its sample mean converges at the same rate: allow 5 standard errors of g gᵀ.
                let h_mean = h_sum[(i, j)] / n;
                assert!(
                    (h_mean - f[(i, j)]).abs() <= 5.0 * se + 1e-12,
                    "{name} E[H_L][{i},{j}] = {h_mean} vs {}",
                    f[(i, j)]
                );
            }
        }
    }
}

#[test]
fn samples_have_the_right_moments() {
    let mut rng = StdRng::seed_from_u64(5);
    let n = 100_000;
    let z = [0.7, -0.4, 0.2, 1.5]; // μ = (0.7, −0.4), γ = (0.2, 1.5)
    let dist = GaussianMeanLogVar;
    let (mut s, mut s2) = ([0.0; 2], [0.0; 2]);
    let mut y = [0.0; 2];
    for _ in 0..n {
        dist.sample(&z, &mut rng, &mut y);
        for j in 0..2 {
            s[j] += y[j];
            s2[j] += y[j] * y[j];
        }
    }
    for j in 0..2 {
        let mean = s[j] / n as f64;
        let var = s2[j] / n as f64 - mean * mean;
        let sigma2 = f64::exp(z[2 + j]);
        assert!((mean - z[j]).abs() < 5.0 * (sigma2 / n as f64).sqrt(), "mean {j}: {mean}");
        assert!(
            (var - sigma2).abs() < 5.0 * sigma2 * (2.0 / n as f64).sqrt(),
            "variance {j}: {var} vs {sigma2}"
        );
    }
    // Categorical frequencies.
    let p = [0.2, 0.5, 0.3];
    let mut counts = [0.0; 3];
    let mut y = [0.0; 3];
    for _ in 0..n {
        CategoricalProbabilities.sample(&p, &mut rng, &mut y);
        for k in 0..3 {
            counts[k] += y[k];
        }
        assert_eq!(y.iter().sum::<f64>(), 1.0, "one-hot");
    }
    for k in 0..3 {
        let freq = counts[k] / n as f64;
        assert!(
            (freq - p[k]).abs() < 5.0 * (p[k] * (1.0 - p[k]) / n as f64).sqrt(),
            "class {k}: {freq}"
        );
    }
}

#[test]
fn natural_parameters_have_fisher_equal_to_loss_hessian() {
    for name in NAMES {
        let mut worst = 0.0_f64;
        for seed in 0..5 {
            let (dist, z, y) = setup(name, seed);
            let h = dense_h_l(dist.as_ref(), &z, &y);
            let f = dense_f_r(dist.as_ref(), &z);
            worst =
                worst.max(compare("F_R vs H_L", f.data(), h.data(), 0.0).unwrap().max_rel_error);
        }
        let dist = by_name(name).unwrap();
        if dist.is_natural_parameter() {
            assert!(worst <= 1e-12, "{name}: natural but F_R ≠ H_L ({worst:e})");
        } else {
            assert!(worst > 1e-2, "{name}: not natural yet F_R = H_L to {worst:e}");
        }
    }
}

#[test]
fn mean_logvar_hessian_is_indefinite_where_the_paper_says() {
    let (z, y) = ([0.0, 0.0], [2.0]);
    let h = dense_h_l(&GaussianMeanLogVar, &z, &y);
    assert_eq!(h.data(), &[1.0, 2.0, 2.0, 2.0]);
    let eig = symmetric_eigen(&h).unwrap();
    // Eigenvalues of [[1, 2], [2, 2]]: (3 ± √17)/2.
    assert!((eig.values[0] - (3.0 - 17f64.sqrt()) / 2.0).abs() < 1e-14 && eig.values[0] < 0.0);
    let f = dense_f_r(&GaussianMeanLogVar, &z);
    assert_eq!(f.data(), &[1.0, 0.0, 0.0, 0.5]);
}

#[test]
fn batch_helpers_reject_bad_shapes_and_domains() {
    let z = Matrix::zeros(3, 4);
    let y = Matrix::zeros(3, 3);
    let err = mean_loss(&SquaredError, &z, &y).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mean_loss (squared_error): expected targets of shape 3×4 for outputs 3×4, got 3×3"
    );
    assert!(
        loss_gradient(&GaussianMeanLogVar, &Matrix::zeros(2, 3), &Matrix::zeros(2, 1)).is_err(),
        "odd output accepted"
    );
    let u = Matrix::zeros(2, 4);
    assert!(apply_f_r_batch(&SquaredError, &z, &u).is_err());
    let negative = Matrix::from_vec(1, 2, vec![0.5, -1.0]).unwrap();
    let err = loss_gradient(&GaussianNatural, &negative, &Matrix::zeros(1, 1)).unwrap_err();
    assert!(err.to_string().contains("precision η₂ must be positive"), "{err}");
    assert!(by_name("hinge")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
        .contains("unknown loss 'hinge'"));
}

#[test]
fn section13_bound_for_squared_error_is_half_mean_squared_residual() {
    // F_R = I, so the bound is −(1/2N) Σ ‖y − z‖².
    let z = Matrix::from_vec(2, 2, vec![0.5, -1.0, 2.0, 0.0]).unwrap();
    let y = Matrix::from_vec(2, 2, vec![1.0, 1.0, -1.0, 0.5]).unwrap();
    let want = -(0.25 + 4.0 + 9.0 + 0.25) / 4.0;
    let got = section13_bound(&SquaredError, &z, &y).unwrap();
    assert!((got - want).abs() < 1e-14, "{got} vs {want}");
}

/// Every loss's batch methods (`loss_rows`, `grad_z_rows`, `apply_h_l_rows`, `apply_f_r_rows`:
/// overridden by the logit losses to vectorize `exp`, the sigmoid and the softplus over the
/// batch, the per-row loop otherwise) against its per-row methods, which the tests above hold
/// to finite differences. The summed loss agrees to 1e-14 of `Σ (1 + |z|) · (1 + max |y|)`.
/// Logits up to ±700 (an unshifted `exp` overflows) and probability targets for the two logit
/// losses; agreement to 1e-14 of the row's scale `(1 + Σ y)(1 + max |u|)`, a few ulp of either.
#[test]
fn batch_methods_equal_the_per_row_ones_for_every_loss() {
    for name in NAMES {
        let spreads: &[f64] = if name.ends_with("_logits") || name == "softmax_cross_entropy" {
            &[1.0, 40.0, 700.0]
        } else {
            &[1.0]
        };
        for (case, &spread) in spreads.iter().enumerate() {
            let dist = by_name(name).unwrap();
            let mut rng = StdRng::seed_from_u64(70 + case as u64);
            let (rows, m) = (33, output_dim(name));
            let mut z = Matrix::zeros(rows, m);
            let mut y = Matrix::zeros(rows, dist.target_dim(m).unwrap());
            for r in 0..rows {
                let row = random_output(name, m, &mut rng);
                let row: Vec<f64> =
                    if spread == 1.0 { row } else { row.iter().map(|v| spread * v).collect() };
                z.row_mut(r).copy_from_slice(&row);
                dist.sample(&row, &mut rng, y.row_mut(r));
                if r % 2 == 1 && spreads.len() > 1 {
                    // Probability targets: Σ y ≠ 1 separates H_L from F_R for the softmax.
                    y.row_mut(r).iter_mut().for_each(|t| *t = 0.5 * rng.random::<f64>());
                }
            }
            let u = Matrix::from_fn(rows, m, |_, _| 2.0 * rng.random::<f64>() - 1.0);
            let (mut g, mut hu, mut fu) =
                (Matrix::zeros(rows, m), Matrix::zeros(rows, m), Matrix::zeros(rows, m));
            dist.grad_z_rows(&z, &y, &mut g);
            dist.apply_h_l_rows(&z, &y, &u, &mut hu);
            dist.apply_f_r_rows(&z, &u, &mut fu);
            let per_row: f64 = (0..rows).map(|r| dist.loss(z.row(r), y.row(r))).sum();
            let size: f64 = z.data().iter().map(|v| 1.0 + v.abs()).sum::<f64>()
                * (1.0 + y.data().iter().fold(0.0_f64, |a, t| a.max(t.abs())));
            let summed = dist.loss_rows(&z, &y);
            assert!(
                (summed - per_row).abs() <= 1e-14 * size,
                "{name} (spread {spread}) Σ L: {summed} vs {per_row}"
            );
            for r in 0..rows {
                let (zr, yr, ur) = (z.row(r), y.row(r), u.row(r));
                let mut want = vec![vec![0.0; m]; 3];
                dist.grad_z(zr, yr, &mut want[0]);
                dist.apply_h_l(zr, yr, ur, &mut want[1]);
                dist.apply_f_r(zr, ur, &mut want[2]);
                let total: f64 = yr.iter().map(|t| t.abs()).sum();
                let scale = (1.0 + total) * (1.0 + ur.iter().fold(0.0_f64, |a, v| a.max(v.abs())));
                for (what, got, want) in
                    [("∇_z L", g.row(r), &want[0]), ("H_L u", hu.row(r), &want[1])]
                        .into_iter()
                        .chain([("F_R u", fu.row(r), &want[2])])
                {
                    for (a, b) in got.iter().zip(want) {
                        assert!(
                            a.is_finite() && (a - b).abs() <= 1e-14 * scale,
                            "{name} (spread {spread}) {what}, row {r}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}
