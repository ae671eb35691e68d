//! The K-FAC optimizer (Martens & Grosse 2015, Sections 5–7): Kronecker-factored curvature
//! statistics as exponential moving averages, their damped inverses refreshed every `T` steps,
//! and the step and momentum chosen from the exact quadratic model with exact `G v` products.
//!
//! One step at θ with gradient `g = ∇h`:
//! 1. the factors of [`KfacParams::kind`] on the curvature batch are blended into the running
//!    averages `Ā ← ε Ā + (1 − ε) Ā_new`, `G ← ε G + (1 − ε) G_new` (every
//!    [`KfacParams::statistics_period`] steps);
//! 2. every [`KfacParams::inverse_period`] steps `(K + damping)⁻¹` is recomputed with the current
//!    `λ` ([`curvature::kfac::Kfac::inverse`]);
//! 3. the proposal `Δ = −(K + damping)⁻¹ g`;
//! 4. `(α, μ)` minimize the exact model `M(δ) = gᵀδ + ½ δᵀ(B + λI)δ` over `δ = αΔ + μδ₀`
//!    (`δ₀` the previous update; Section 7), from the exact products `B Δ` and `B δ₀`
//!    ([`quadratic_model_step`]), `B` being [`KfacParams::model_curvature`];
//! 5. the trial `θ + δ` is evaluated; `ρ = (h(θ) − h(θ + δ)) / −M(δ)` adjusts `λ` by the
//!    Levenberg-Marquardt rule (Section 6.5). A non-finite trial loss, or a loss that rose, is
//!    rejected: θ is unchanged, the report says so, momentum restarts.

use crate::damping::{reduction_ratio, LevenbergMarquardt};
use crate::error::{check_range, OptimError, Result};
use crate::objective::Objective;
use crate::solver::{
    all_finite, loss_and_gradient, norm, Rejection, RejectionCount, Solver, StepReport, Work,
};
use autodiff::linalg::dot;
use curvature::kfac::{Kfac, KfacDamping, KfacInverse, KfacKind};
use curvature::{CurvatureKind, LinearOperator};

/// Settings of [`KroneckerFactored`].
#[derive(Clone, Debug, PartialEq)]
pub struct KfacParams {
    /// The output-side factors (Martens & Grosse use one Monte-Carlo sample).
    pub kind: KfacKind,
    /// The exact curvature `B` of the quadratic model (the GGN, or the Fisher).
    pub model_curvature: CurvatureKind,
    /// The moving-average decay `ε ∈ [0, 1)` of the factors (0.95).
    pub decay: f64,
    /// Recompute the factors' inverses every this many steps (`T`, e.g. 20).
    pub inverse_period: usize,
    /// Take new curvature statistics every this many steps (1: every step).
    pub statistics_period: usize,
    /// Initial damping `λ > 0`.
    pub lambda: f64,
    /// How the inverse is damped (factored π-damping as in the paper, or exact).
    pub exact_damping: bool,
    /// Choose a momentum coefficient `μ` on the previous update (Section 7); otherwise `μ = 0`.
    pub momentum: bool,
    /// Apply the factored inverse in `f32`
    /// ([`KfacInverse::with_single_precision_products`]): the proposal `Δ` agrees with the
    /// `f64` one to about `1e-6` relative, ample for a preconditioner that is itself an
    /// approximation, while `α`, `μ` and the reduction ratio still come from exact `f64`
    /// products. On W1 a step on unrefreshed factors costs 1.30 gradients this way against
    /// 1.51 in `f64` (whose inverse products alone put it at 1.58 by FLOP count). Off by default.
    pub single_precision_inverse: bool,
}

impl KfacParams {
    /// Martens & Grosse's choices: one Monte-Carlo sample, the GGN model, `ε = 0.95`, `T = 20`,
    /// statistics every step, factored damping, momentum; `λ` given.
    pub fn new(lambda: f64) -> Self {
        KfacParams {
            kind: KfacKind::MonteCarlo { seed: 0 },
            model_curvature: CurvatureKind::Ggn,
            decay: 0.95,
            inverse_period: 20,
            statistics_period: 1,
            lambda,
            exact_damping: false,
            momentum: true,
            single_precision_inverse: false,
        }
    }
}

/// The chosen step of the 2-D quadratic model (Section 7 of Martens & Grosse 2015).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelStep {
    /// Step size on the proposal `Δ`.
    pub alpha: f64,
    /// Momentum coefficient on the previous update `δ₀`.
    pub mu: f64,
    /// `M(αΔ + μδ₀)`, negative when the model predicts a decrease.
    pub model_value: f64,
}

/// Minimizes `M(αΔ + μδ₀) = gᵀδ + ½ δᵀ(B + λI)δ` over `(α, μ)` given the exact products
/// `bd = B Δ` and `bd0 = B δ₀`: the 2×2 system
/// `[ΔᵀB̂Δ, ΔᵀB̂δ₀; δ₀ᵀB̂Δ, δ₀ᵀB̂δ₀] (α, μ) = −(gᵀΔ, gᵀδ₀)` with `B̂ = B + λI`. Without `δ₀`,
/// or when the 2×2 matrix is not positive definite, `μ = 0` and `α = −gᵀΔ / ΔᵀB̂Δ`. Errors
/// when even `ΔᵀB̂Δ` is not positive (negative curvature along the proposal).
pub fn quadratic_model_step(
    g: &[f64],
    delta: &[f64],
    bd: &[f64],
    previous: Option<(&[f64], &[f64])>,
    lambda: f64,
) -> Result<ModelStep> {
    let n = g.len();
    for (name, v) in [("Δ", delta), ("B Δ", bd)] {
        if v.len() != n {
            return Err(OptimError::Dimension {
                op: format!("quadratic_model_step ({name})"),
                expected: n,
                actual: v.len(),
            });
        }
    }
    let a11 = dot(delta, bd) + lambda * dot(delta, delta);
    let b1 = dot(g, delta);
    if !(a11 > 0.0 && a11.is_finite()) {
        return Err(OptimError::NonFinite {
            op: "quadratic_model_step".into(),
            detail: format!("curvature along the proposal Δᵀ(B + λI)Δ = {a11:e} is not positive"),
        });
    }
    if let Some((d0, bd0)) = previous {
        if d0.len() != n || bd0.len() != n {
            return Err(OptimError::Dimension {
                op: "quadratic_model_step (δ₀)".into(),
                expected: n,
                actual: d0.len().min(bd0.len()),
            });
        }
        let a12 = dot(delta, bd0) + lambda * dot(delta, d0);
        let a22 = dot(d0, bd0) + lambda * dot(d0, d0);
        let b2 = dot(g, d0);
        let det = a11 * a22 - a12 * a12;
        // Positive definite with some margin, so the solve is well conditioned.
        if a22 > 0.0 && det > 1e-12 * a11 * a22 {
            let alpha = (-b1 * a22 + b2 * a12) / det;
            let mu = (-b2 * a11 + b1 * a12) / det;
            return Ok(ModelStep { alpha, mu, model_value: 0.5 * (alpha * b1 + mu * b2) });
        }
    }
    let alpha = -b1 / a11;
    Ok(ModelStep { alpha, mu: 0.0, model_value: 0.5 * alpha * b1 })
}

/// The K-FAC optimizer (see the module doc).
pub struct KroneckerFactored {
    params: KfacParams,
    lm: LevenbergMarquardt,
    factors: Option<Kfac>,
    inverse: Option<KfacInverse>,
    previous: Option<Vec<f64>>,
    k: usize,
    rejections: RejectionCount,
}

impl KroneckerFactored {
    /// Validates the settings: `λ > 0`, `ε ∈ [0, 1)`, periods ≥ 1.
    pub fn new(params: KfacParams) -> Result<Self> {
        check_range("KroneckerFactored", "lambda", params.lambda, 0.0, false, f64::INFINITY)?;
        check_range("KroneckerFactored", "decay", params.decay, 0.0, true, 1.0)?;
        if params.decay >= 1.0 {
            return Err(OptimError::invalid(
                "KroneckerFactored",
                "decay",
                params.decay,
                "must be below 1",
            ));
        }
        for (name, p) in [
            ("inverse_period", params.inverse_period),
            ("statistics_period", params.statistics_period),
        ] {
            if p == 0 {
                return Err(OptimError::invalid(
                    "KroneckerFactored",
                    name,
                    0.0,
                    "must be at least 1",
                ));
            }
        }
        let mut lm = LevenbergMarquardt::new(params.lambda)?;
        // Martens & Grosse's ω₁ = (19/20) per step.
        lm.decrease = 19.0 / 20.0;
        lm.increase = 20.0 / 19.0;
        Ok(KroneckerFactored {
            lm,
            params,
            factors: None,
            inverse: None,
            previous: None,
            k: 0,
            rejections: RejectionCount::default(),
        })
    }

    /// The current damping `λ`.
    pub fn lambda(&self) -> f64 {
        self.lm.lambda
    }

    /// The running-average factors, once the first step has taken statistics.
    pub fn factors(&self) -> Option<&Kfac> {
        self.factors.as_ref()
    }

    /// `Δ = −(K + damping)⁻¹ g` with the current inverse; refreshes statistics and the inverse
    /// when their periods say so.
    fn proposal(
        &mut self,
        theta: &[f64],
        g: &[f64],
        objective: &mut dyn Objective,
        work: &mut Work,
    ) -> Result<Vec<f64>> {
        if self.factors.is_none() || self.k.is_multiple_of(self.params.statistics_period) {
            let fresh = objective.kfac(theta, &self.params.kind)?;
            // A forward pass and one reverse sweep per output-side vector over the curvature
            // batch: counted as that many curvature products (4/3 of a gradient each on that
            // batch), an upper bound.
            work.curvature_products += match self.params.kind {
                KfacKind::Type2 => fresh.layers().last().map_or(1, |l| l.m_out()),
                _ => 1,
            };
            match &mut self.factors {
                Some(f) => f.blend(&fresh, self.params.decay)?,
                None => self.factors = Some(fresh),
            }
        }
        if self.inverse.is_none() || self.k.is_multiple_of(self.params.inverse_period) {
            let lambda = self.lm.lambda;
            let damping = if self.params.exact_damping {
                KfacDamping::Exact { lambda }
            } else {
                KfacDamping::Factored { lambda }
            };
            let factors = self.factors.as_ref().expect("factors were just set");
            let inverse = factors.inverse(damping)?;
            self.inverse = Some(if self.params.single_precision_inverse {
                inverse.with_single_precision_products()
            } else {
                inverse
            });
        }
        let inverse = self.inverse.as_ref().expect("inverse was just set");
        let mut delta = vec![0.0; g.len()];
        inverse.apply(g, &mut delta)?;
        delta.iter_mut().for_each(|d| *d = -*d);
        Ok(delta)
    }
}

impl Solver for KroneckerFactored {
    fn name(&self) -> &str {
        "K-FAC"
    }

    fn step(&mut self, theta: &mut [f64], objective: &mut dyn Objective) -> Result<StepReport> {
        let op = "KroneckerFactored::step";
        let n = theta.len();
        let (loss, g) = loss_and_gradient(objective, theta, op)?;
        let mut work = Work { gradients: 1, ..Work::default() };
        let delta = self.proposal(theta, &g, objective, &mut work)?;
        self.k += 1;
        if !all_finite(&delta) {
            // A non-finite proposal is a rejected step like any other (θ unchanged, λ raised).
            self.lm.update(f64::NAN);
            self.previous = None;
            let mut report = StepReport::basic(loss, 0.0, 0.0, work);
            report.lambda = Some(self.lm.lambda);
            report.rejected = Some(Rejection::NonFiniteStep);
            objective.next_batch();
            return self.rejections.settle("K-FAC", report);
        }
        let lambda = self.lm.lambda;
        let previous = if self.params.momentum { self.previous.take() } else { None };
        let (model, step) = {
            let b = objective.curvature(theta, &self.params.model_curvature)?;
            let mut bd = vec![0.0; n];
            b.apply(&delta, &mut bd)?;
            work.curvature_products += 1;
            let bd0 = match &previous {
                Some(d0) => {
                    let mut bd0 = vec![0.0; n];
                    b.apply(d0, &mut bd0)?;
                    work.curvature_products += 1;
                    Some(bd0)
                }
                None => None,
            };
            let prev = previous.as_deref().zip(bd0.as_deref());
            let model = quadratic_model_step(&g, &delta, &bd, prev, lambda)?;
            let mut step: Vec<f64> = delta.iter().map(|d| model.alpha * d).collect();
            if let Some(d0) = &previous {
                step.iter_mut().zip(d0).for_each(|(s, d)| *s += model.mu * d);
            }
            (model, step)
        };
        let mut report = StepReport::basic(loss, model.alpha, norm(&step), work);
        report.lambda = Some(lambda);
        if !all_finite(&step) {
            self.lm.update(f64::NAN);
            self.previous = None;
            report.step_size = 0.0;
            report.step_norm = 0.0;
            report.rejected = Some(Rejection::NonFiniteStep);
            objective.next_batch();
            return self.rejections.settle("K-FAC", report);
        }
        let candidate: Vec<f64> = theta.iter().zip(&step).map(|(t, s)| t + s).collect();
        let new_loss = objective.loss(&candidate)?;
        report.work.losses += 1;
        let predicted = -model.model_value;
        let actual = loss - new_loss;
        let rho = reduction_ratio(actual, predicted);
        self.lm.update(rho);
        report.new_loss = Some(new_loss);
        report.predicted_reduction = Some(predicted);
        report.actual_reduction = Some(actual);
        report.rho = Some(rho);
        if !(new_loss.is_finite() && new_loss <= loss) {
            // Rejected: θ unchanged, momentum restarts.
            report.step_size = 0.0;
            report.step_norm = 0.0;
            report.rejected = Some(if new_loss.is_finite() {
                Rejection::NoDecrease
            } else {
                Rejection::NonFiniteLoss
            });
            self.previous = None;
            objective.next_batch();
            return self.rejections.settle("K-FAC", report);
        }
        theta.copy_from_slice(&candidate);
        self.previous = Some(step);
        objective.next_batch();
        self.rejections.settle("K-FAC", report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::NetworkObjective;
    use autodiff::linalg::{identity, matmul, matvec};
    use autodiff::random::{random_matrix, random_vector};
    use autodiff::Matrix;
    use curvature::kfac::KfacLayer;
    use curvature::loss::SquaredError;
    use curvature::{Activation, Mlp};
    use rand::{rngs::StdRng, SeedableRng};

    /// `M(δ) = gᵀδ + ½ δᵀ(B + λI)δ` from the dense `B`.
    fn model(b: &Matrix<f64>, lambda: f64, g: &[f64], d: &[f64]) -> f64 {
        let bd = matvec(b, d).unwrap();
        dot(g, d) + 0.5 * (dot(d, &bd) + lambda * dot(d, d))
    }

    #[test]
    fn the_2d_model_step_minimizes_the_model() {
        let mut rng = StdRng::seed_from_u64(1);
        let x = random_matrix(6, 6, &mut rng);
        let b = matmul(&x, &x.transpose()).unwrap();
        let (g, delta, d0) =
            (random_vector(6, &mut rng), random_vector(6, &mut rng), random_vector(6, &mut rng));
        let lambda = 0.1;
        let (bd, bd0) = (matvec(&b, &delta).unwrap(), matvec(&b, &d0).unwrap());
        let s = quadratic_model_step(&g, &delta, &bd, Some((&d0, &bd0)), lambda).unwrap();
        let at = |a: f64, m: f64| {
            let d: Vec<f64> = delta.iter().zip(&d0).map(|(x, y)| a * x + m * y).collect();
            model(&b, lambda, &g, &d)
        };
        let best = at(s.alpha, s.mu);
        assert!((best - s.model_value).abs() < 1e-12 * best.abs(), "{best} vs {}", s.model_value);
        assert!(s.mu.abs() > 1e-3, "momentum should matter here, μ = {}", s.mu);
        // No point of a fine grid around (α, μ) is lower, and the central differences of M
        // in α and μ vanish there.
        for i in -20..=20 {
            for j in -20..=20 {
                let (a, m) = (s.alpha + 0.05 * i as f64, s.mu + 0.05 * j as f64);
                assert!(at(a, m) >= best - 1e-12, "M({a}, {m}) = {} below {best}", at(a, m));
            }
        }
        let h = 1e-4;
        let da = (at(s.alpha + h, s.mu) - at(s.alpha - h, s.mu)) / (2.0 * h);
        let dm = (at(s.alpha, s.mu + h) - at(s.alpha, s.mu - h)) / (2.0 * h);
        assert!(da.abs() < 1e-8 && dm.abs() < 1e-8, "gradient of M at the step: {da}, {dm}");
        // Without δ₀: the 1-D minimizer.
        let s1 = quadratic_model_step(&g, &delta, &bd, None, lambda).unwrap();
        let d1 = (at(s1.alpha + h, 0.0) - at(s1.alpha - h, 0.0)) / (2.0 * h);
        assert!(s1.mu == 0.0 && d1.abs() < 1e-8, "1-D step: dM/dα = {d1}");
        // Negative curvature along Δ is reported, not stepped on.
        let neg: Vec<f64> = bd.iter().zip(&delta).map(|(x, d)| -x - d).collect();
        assert!(quadratic_model_step(&g, &delta, &neg, None, 0.0).is_err());
    }

    #[test]
    fn kfac_decreases_the_loss_of_a_small_network() {
        let mut rng = StdRng::seed_from_u64(2);
        let mlp = Mlp::new(&[3, 6, 2], &[Activation::Tanh, Activation::Identity]).unwrap();
        let x = random_matrix(32, 3, &mut rng);
        let y = Matrix::from_fn(32, 2, |i, j| (x[(i, 0)] + (j as f64) * x[(i, 1)]).sin());
        let mut objective = NetworkObjective::full_batch(&mlp, &SquaredError, &x, &y).unwrap();
        for (kind, exact_damping) in
            [(KfacKind::Type2, true), (KfacKind::MonteCarlo { seed: 3 }, false)]
        {
            let mut theta: Vec<f64> =
                random_vector(mlp.num_params(), &mut StdRng::seed_from_u64(4))
                    .iter()
                    .map(|v| 0.5 * v)
                    .collect();
            let start = objective.loss(&theta).unwrap();
            let mut params = KfacParams::new(1.0);
            params.kind = kind.clone();
            params.exact_damping = exact_damping;
            params.inverse_period = 3;
            let mut solver = KroneckerFactored::new(params).unwrap();
            let mut last = start;
            for _ in 0..30 {
                let r = solver.step(&mut theta, &mut objective).unwrap();
                assert!(r.new_loss.is_some() && r.loss <= last + 1e-15, "{kind:?}: loss rose");
                last = objective.loss(&theta).unwrap();
            }
            assert!(last < 0.2 * start, "{kind:?}: loss {start} → {last}");
        }
    }

    /// With the inverse applied in `f32`, the first step (no momentum yet, the same factors)
    /// agrees with the `f64` one to the `f32` rounding of the proposal, and training still
    /// works; a step that ignored the setting would agree to the bit, which the test rejects.
    #[test]
    fn single_precision_inverse_products_change_the_step_only_by_rounding() {
        let mut rng = StdRng::seed_from_u64(5);
        let mlp = Mlp::new(&[3, 6, 2], &[Activation::Tanh, Activation::Identity]).unwrap();
        let x = random_matrix(32, 3, &mut rng);
        let y = Matrix::from_fn(32, 2, |i, j| (x[(i, 0)] - (j as f64) * x[(i, 2)]).cos());
        let mut objective = NetworkObjective::full_batch(&mlp, &SquaredError, &x, &y).unwrap();
        let theta0: Vec<f64> =
            random_vector(mlp.num_params(), &mut rng).iter().map(|v| 0.5 * v).collect();
        let step = |single: bool, objective: &mut NetworkObjective<'_, Mlp>| {
            let mut params = KfacParams::new(1.0);
            params.single_precision_inverse = single;
            let mut solver = KroneckerFactored::new(params).unwrap();
            let mut theta = theta0.clone();
            solver.step(&mut theta, objective).unwrap();
            theta.iter().zip(&theta0).map(|(t, t0)| t - t0).collect::<Vec<f64>>()
        };
        let (double, single) = (step(false, &mut objective), step(true, &mut objective));
        let difference: Vec<f64> = double.iter().zip(&single).map(|(a, b)| a - b).collect();
        let relative = norm(&difference) / norm(&double);
        assert!(relative < 1e-5 && relative > 0.0, "f32 vs f64 step: relative {relative:e}");
    }

    /// A one-layer "network" whose loss is NaN anywhere but at θ₀.
    struct NanAway {
        theta0: Vec<f64>,
    }

    impl Objective for NanAway {
        fn dim(&self) -> usize {
            2
        }
        fn loss(&mut self, theta: &[f64]) -> Result<f64> {
            Ok(if theta == self.theta0 { 0.5 * dot(theta, theta) } else { f64::NAN })
        }
        fn loss_and_gradient(&mut self, theta: &[f64], gradient: &mut [f64]) -> Result<f64> {
            gradient.copy_from_slice(theta);
            self.loss(theta)
        }
        fn curvature(
            &mut self,
            _theta: &[f64],
            _kind: &CurvatureKind,
        ) -> Result<Box<dyn LinearOperator + '_>> {
            Ok(Box::new(identity(2)))
        }
        fn kfac(&mut self, _theta: &[f64], _kind: &KfacKind) -> Result<Kfac> {
            let layer = KfacLayer { weights: 0..1, biases: 1..2, a: identity(2), g: identity(1) };
            Ok(Kfac::from_layers(2, vec![layer])?)
        }
    }

    #[test]
    fn a_non_finite_trial_loss_is_rejected_with_theta_unchanged() {
        let theta0 = vec![1.0, -2.0];
        let mut objective = NanAway { theta0: theta0.clone() };
        let mut solver = KroneckerFactored::new(KfacParams::new(0.5)).unwrap();
        let mut theta = theta0.clone();
        let r = solver.step(&mut theta, &mut objective).unwrap();
        assert_eq!(theta, theta0);
        assert!(r.new_loss.is_some_and(f64::is_nan) && r.step_norm == 0.0, "{r:?}");
        assert!(solver.lambda() > 0.5, "λ should rise after a failed step");
        // The proposal was the exact minimizer here: Δ = −(I + λ-damping)⁻¹ θ, α from the model.
        assert!(r.predicted_reduction.is_some_and(|p| p > 0.0));
        assert_eq!(r.rejected, Some(Rejection::NonFiniteLoss));
        // Every later step is rejected the same way, θ unchanged, until the bound, which is an
        // error naming the solver and the cause.
        for _ in 1..crate::MAX_NON_FINITE_REJECTIONS - 1 {
            let r = solver.step(&mut theta, &mut objective).unwrap();
            assert_eq!(r.rejected, Some(Rejection::NonFiniteLoss));
        }
        match solver.step(&mut theta, &mut objective) {
            Err(OptimError::RepeatedRejection { solver, cause, .. }) => {
                assert_eq!(solver, "K-FAC");
                assert_eq!(cause, Rejection::NonFiniteLoss);
            }
            other => panic!("expected RepeatedRejection, got {other:?}"),
        }
        assert_eq!(theta, theta0);
    }

    #[test]
    fn bad_settings_are_rejected() {
        let mut p = KfacParams::new(1.0);
        p.decay = 1.0;
        assert!(KroneckerFactored::new(p).is_err());
        let mut p = KfacParams::new(1.0);
        p.inverse_period = 0;
        assert!(KroneckerFactored::new(p).is_err());
        assert!(KroneckerFactored::new(KfacParams::new(0.0)).is_err());
        assert!(KroneckerFactored::new(KfacParams::new(f64::NAN)).is_err());
    }
}
