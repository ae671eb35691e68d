//! Section 14: Theorem 3's closed forms against the exact recursion, the Monte-Carlo simulator
//! against both, Theorems 5 and 6 against the exact expectations, hypotheses, Section 14.2.1.

use autodiff::random::random_vector;
use autodiff::Matrix;
use optim::schedule::Schedule;
use optim::theory::bounds::{noise_constants, theorem5, theorem6};
use optim::theory::closed_form::{mean, variance_constant, variance_decaying_leading};
use optim::theory::recursion::exact;
use optim::theory::simulate::{matrix_with_spectrum, simulate};
use optim::theory::QuadraticProblem;
use optim::OptimError;
use rand::{rngs::StdRng, Rng, SeedableRng};

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = a.iter().chain(b).fold(1e-300_f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

/// A random problem; `b_scale` rescales B so that P = B⁻¹H* has λ_n(P) = `lambda_n` when given.
fn problem(seed: u64, n: usize, lambda_n: Option<f64>) -> QuadraticProblem {
    let mut rng = StdRng::seed_from_u64(seed);
    let h_spec: Vec<f64> = (0..n).map(|_| rng.random_range(0.1..10.0)).collect();
    let b_spec: Vec<f64> = (0..n).map(|_| rng.random_range(0.5..2.0)).collect();
    let s_spec: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..1.0)).collect();
    let h = matrix_with_spectrum(&h_spec, seed + 1).unwrap();
    let mut b = matrix_with_spectrum(&b_spec, seed + 2).unwrap();
    let sigma = matrix_with_spectrum(&s_spec, seed + 3).unwrap();
    let theta_star = random_vector(n, &mut rng);
    let theta0 = random_vector(n, &mut rng);
    if let Some(target) = lambda_n {
        let p = QuadraticProblem::new(
            h.clone(),
            theta_star.clone(),
            sigma.clone(),
            b.clone(),
            theta0.clone(),
        )
        .unwrap();
        let s = p.eigenvalues()[0] / target; // P ← P·target/λ_n by B ← B·λ_n/target
        b = b.map(|x| x * s);
    }
    QuadraticProblem::new(h, theta_star, sigma, b, theta0).unwrap()
}

fn lambda_1(p: &QuadraticProblem) -> f64 {
    *p.eigenvalues().last().unwrap()
}

#[test]
fn theorem3_closed_forms_match_the_exact_recursion() {
    for seed in 0..5 {
        let p = problem(seed, 5, None);
        let alpha = 0.7 / lambda_1(&p);
        let (moments, _) = exact(&p, Schedule::Constant(alpha), 60).unwrap();
        for k in [0, 1, 7, 30, 60] {
            let m = mean(&p, Schedule::Constant(alpha), k).unwrap();
            assert!(rel(&m, &moments[k].mean) < 1e-10, "seed {seed}, k {k}: mean");
            let v = variance_constant(&p, alpha, k).unwrap();
            assert!(
                rel(v.data(), moments[k].variance.data()) < 1e-10,
                "seed {seed}, k {k}: variance"
            );
        }
        // Decaying steps: the mean is exact. V_k's leading term (1/(k+a))(Ξ − I)⁻¹(U) leaves a
        // remainder E_k that the paper says shrinks as 1/k². Measured: it shrinks as
        // k^{−min(2, 2b)}, b = λ_n(B⁻¹H*) — the transient (1 − α_j d_i)-products decay like
        // k^{−(d_i + d_j)} — so for ½ < b < 1 it is slower than 1/k². We check the measured rate:
        // (k + a)·‖V_k − leading‖ shrinks by 2^{−(min(2, 2b) − 1)} when k doubles.
        for lambda_n in [0.6, 0.8, 1.5, 2.5] {
            let p = problem(seed, 4, Some(lambda_n));
            let a = (lambda_1(&p) - 1.0).max(1.0);
            let steps = Schedule::Shifted(a);
            let (moments, _) = exact(&p, steps, 1600).unwrap();
            for k in [0, 5, 100] {
                assert!(
                    rel(&mean(&p, steps, k).unwrap(), &moments[k].mean) < 1e-10,
                    "seed {seed}, k {k}: mean"
                );
            }
            let gap = |k: usize| {
                let lead = variance_decaying_leading(&p, a, k).unwrap();
                let diff = lead
                    .data()
                    .iter()
                    .zip(moments[k].variance.data())
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max);
                diff * (k as f64 + a)
            };
            let (g1, g2) = (gap(800), gap(1600));
            let expected = 2f64.powf(-((2.0 * lambda_n).min(2.0) - 1.0));
            // For b < 1 the slow transient dominates and the ratio sits at its rate; for b ≥ 1 the
            // 1/k² part may still be mixed with faster terms, so the ratio is at most ½.
            let ok = if lambda_n < 1.0 {
                (g2 / g1 - expected).abs() < 0.06
            } else {
                g2 / g1 < expected + 0.06
            };
            assert!(ok, "seed {seed}, b = {lambda_n}: ratio {} vs {expected}", g2 / g1);
        }
    }
}

#[test]
fn monte_carlo_matches_the_exact_expectation_within_its_confidence_interval() {
    let p = problem(11, 3, Some(0.8));
    for steps in
        [Schedule::Constant(0.5 / lambda_1(&p)), Schedule::Shifted((lambda_1(&p) - 1.0).max(1.0))]
    {
        let (_, exact_traj) = exact(&p, steps, 40).unwrap();
        let mc = simulate(&p, steps, 40, 4000, 5).unwrap();
        for k in [0, 1, 5, 20, 40] {
            let (m, se) = (mc.mean[k], mc.standard_error[k]);
            assert!(
                (m - exact_traj.excess[k]).abs() <= 4.0 * se + 1e-12,
                "{steps:?} k {k}: MC {m} ± {se} vs exact {}",
                exact_traj.excess[k]
            );
            let (m, se) = (mc.averaged_mean[k], mc.averaged_standard_error[k]);
            assert!(
                (m - exact_traj.averaged_excess[k]).abs() <= 4.0 * se + 1e-12,
                "{steps:?} averaged k {k}"
            );
        }
    }
}

#[test]
fn theorem5_bounds_hold_at_every_iteration_in_both_regimes() {
    for seed in 0..20 {
        let p = problem(100 + seed, 4, Some(0.55 + 0.1 * (seed % 5) as f64));
        let mut rng = StdRng::seed_from_u64(seed);
        let alpha = rng.random_range(0.1..1.0) / lambda_1(&p);
        let a = (lambda_1(&p) - 1.0).max(1.0) + rng.random_range(0.0..3.0);
        for steps in [Schedule::Constant(alpha), Schedule::Shifted(a)] {
            let (_, traj) = exact(&p, steps, 300).unwrap();
            let bounds = theorem5(&p, steps, 300).unwrap();
            for (k, ((l, u), e)) in bounds.iter().zip(&traj.excess).enumerate() {
                let tol = 1e-12 * e.abs().max(1.0);
                assert!(
                    *l <= e + tol && *e <= u + tol,
                    "seed {seed} {steps:?} k {k}: {l} ≤ {e} ≤ {u} fails"
                );
            }
        }
    }
}

#[test]
fn theorem6_bounds_the_averaged_iterate() {
    for seed in 0..20 {
        let p = problem(200 + seed, 4, None);
        let alpha = (0.2 + 0.04 * seed as f64) / lambda_1(&p);
        let (_, traj) = exact(&p, Schedule::Constant(alpha), 300).unwrap();
        let bound = theorem6(&p, alpha, 300).unwrap();
        for (k, (b, e)) in bound.iter().zip(&traj.averaged_excess).enumerate() {
            assert!(*e <= b * (1.0 + 1e-12), "seed {seed} k {k}: E[h(θ̄_k)] − h* = {e} > bound {b}");
        }
    }
}

#[test]
fn violated_hypotheses_are_errors_on_the_right_side_of_each_boundary() {
    let p = problem(7, 3, Some(0.8));
    let l1 = lambda_1(&p);
    assert!(theorem5(&p, Schedule::Constant(0.999 / l1), 3).is_ok());
    let err = theorem5(&p, Schedule::Constant(1.001 / l1), 3).unwrap_err();
    assert!(matches!(err, OptimError::ConditionViolated { .. }), "{err}");
    assert!(theorem6(&p, 0.999 / l1, 3).is_ok());
    assert!(
        theorem6(&p, 1.0 / l1 * (1.0 + 1e-12), 3).is_err(),
        "Theorem 6 needs α λ₁ < 1 strictly"
    );
    let a_ok = (l1 - 1.0).max(1.0);
    assert!(theorem5(&p, Schedule::Shifted(a_ok), 3).is_ok());
    assert!(theorem5(&p, Schedule::Shifted(0.99), 3).is_err(), "a < 1 accepted");
    let below_half = problem(7, 3, Some(0.49));
    let a = (lambda_1(&below_half) - 1.0).max(1.0);
    let err = theorem5(&below_half, Schedule::Shifted(a), 3).unwrap_err();
    assert!(err.to_string().contains("b = λ_n(B⁻¹H*) > ½"), "{err}");
    let above_half = problem(7, 3, Some(0.51));
    assert!(
        theorem5(&above_half, Schedule::Shifted((lambda_1(&above_half) - 1.0).max(1.0)), 3).is_ok()
    );
    // λ₁(P) ≤ a + 1.
    let wide = problem(8, 3, Some(0.8));
    let too_small_a = (lambda_1(&wide) - 1.0) * 0.9;
    if too_small_a >= 1.0 {
        assert!(theorem5(&wide, Schedule::Shifted(too_small_a), 3).is_err());
    }
    // Non-SPD inputs.
    let eye = Matrix::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.0 });
    let bad = Matrix::from_vec(2, 2, vec![1.0, 0.0, 0.0, -1.0]).unwrap();
    assert!(
        QuadraticProblem::new(bad, vec![0.0; 2], eye.clone(), eye.clone(), vec![1.0; 2]).is_err()
    );
}

#[test]
fn section_14_2_1_noise_constants() {
    // Realizable case Σ_g = H*, B = H*: Theorem 5's constant ¼ tr((B⁻¹ − ½H*⁻¹)⁻¹U) equals n/2.
    let h = matrix_with_spectrum(&[1.0, 3.0, 10.0], 4).unwrap();
    let p =
        QuadraticProblem::new(h.clone(), vec![0.0; 3], h.clone(), h.clone(), vec![1.0; 3]).unwrap();
    let k = 200_000;
    let bounds = theorem5(&p, Schedule::Shifted(1.0), k).unwrap();
    // u(k)·(k + a) → tr(TU)/4 = n/2 (the other terms are O(1/k)).
    let limit = bounds[k].1 * (k as f64 + 1.0);
    assert!((limit - 1.5).abs() < 1e-3, "{limit}");
    // The paper's inequalities on random spectra: ¼ tr(H)/λ_n ≤ first-order constant, n/2 ≤ 2·it.
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..100 {
        let n = rng.random_range(1..20);
        let spec: Vec<f64> = (0..n).map(|_| rng.random_range(0.01..100.0)).collect();
        let (second, first) = noise_constants(&spec);
        let lambda_n = spec.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(0.25 * spec.iter().sum::<f64>() / lambda_n <= first * (1.0 + 1e-12));
        assert!(second <= 2.0 * first * (1.0 + 1e-12));
    }
    // λ_i = n − i + 1: the first-order constant grows like n² (Ω(n²/k) noise), the second n/2.
    let (s100, f100) = noise_constants(&(1..=100).map(|i| i as f64).collect::<Vec<_>>());
    let (_, f200) = noise_constants(&(1..=200).map(|i| i as f64).collect::<Vec<_>>());
    assert_eq!(s100, 50.0);
    assert!((f200 / f100 - 4.0).abs() < 0.1, "ratio {}", f200 / f100);
}

#[test]
fn noiseless_newton_step_reaches_the_minimizer_exactly() {
    let h = matrix_with_spectrum(&[0.5, 2.0, 7.0], 9).unwrap();
    let zero = Matrix::zeros(3, 3);
    let p = QuadraticProblem::new(h.clone(), vec![1.0, -2.0, 0.5], zero, h.clone(), vec![0.0; 3])
        .unwrap();
    let (moments, traj) = exact(&p, Schedule::Constant(1.0), 2).unwrap();
    assert!(rel(&moments[1].mean, &[1.0, -2.0, 0.5]) < 1e-12);
    assert!(traj.excess[1] < 1e-24 && traj.excess[0] > 0.1);
}

/// `excess` is `½ eᵀH*e` on a θ of length `n` and a shape error on any other length (it used
/// to read a wrong-length θ as 0).
#[test]
fn excess_is_half_the_h_star_norm_and_rejects_a_wrong_length() {
    let h = Matrix::from_vec(2, 2, vec![2.0, 1.0, 1.0, 3.0]).unwrap();
    let eye = Matrix::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.0 });
    let p = QuadraticProblem::new(h, vec![1.0, -1.0], eye.clone(), eye, vec![0.0, 0.0]).unwrap();
    // e = (1, 2): ½ (2·1 + 2·1·1·2 + 3·4) = ½ · 18 = 9, exact in f64.
    assert_eq!(p.excess(&[2.0, 1.0]).unwrap(), 9.0);
    for wrong in [&[2.0][..], &[2.0, 1.0, 0.0][..], &[][..]] {
        let err = p.excess(wrong).unwrap_err();
        assert_eq!(
            err,
            OptimError::Dimension {
                op: "QuadraticProblem::excess (θ vs θ*)".into(),
                expected: 2,
                actual: wrong.len(),
            }
        );
        assert_eq!(
            err.to_string(),
            format!("QuadraticProblem::excess (θ vs θ*): expected length 2, got {}", wrong.len())
        );
    }
}

/// One step-size type: the exact recursion, the closed-form mean and the simulator take any
/// [`Schedule`]; the theorems' bounds name the schedule they do not cover.
#[test]
fn theory_takes_a_schedule_and_names_the_one_its_theorems_do_not_cover() {
    let p = problem(3, 3, Some(0.8));
    // α_k = 1/(k + 1) twice: InverseTime(1) and Shifted(0) give the same steps bit for bit.
    let (by_inverse_time, traj_inverse_time) = exact(&p, Schedule::InverseTime(1.0), 20).unwrap();
    let (by_shifted, traj_shifted) = exact(&p, Schedule::Shifted(0.0), 20).unwrap();
    assert_eq!(traj_inverse_time, traj_shifted);
    for k in [1, 7, 20] {
        assert_eq!(by_inverse_time[k].mean, by_shifted[k].mean);
        let m = mean(&p, Schedule::InverseTime(0.5), k).unwrap();
        let (moments, _) = exact(&p, Schedule::InverseTime(0.5), k).unwrap();
        assert!(rel(&m, &moments[k].mean) < 1e-12, "k {k}: closed-form mean vs recursion");
    }
    assert!(simulate(&p, Schedule::InverseTime(0.5), 5, 4, 1).is_ok());
    for schedule in [Schedule::InverseTime(0.5), Schedule::InverseTime(1.0)] {
        let err = theorem5(&p, schedule, 3).unwrap_err();
        assert!(matches!(err, OptimError::InvalidParameter { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with("Theorem 5: Schedule::InverseTime's c = ")
                && text.contains("not α_k = c/(k + 1)"),
            "{text}"
        );
        let err = p.check_conditions("Theorem 3", schedule, false).unwrap_err();
        assert!(err.to_string().starts_with("Theorem 3: Schedule::InverseTime"), "{err}");
    }
}
