//! The diagonal family of eqn 10: `θ_{k+1} = θ_k − α_k (B_k + λI)^{−ξ} g_k`, with `B_k` a
//! diagonal estimate of the empirical Fisher `F̄` from past gradients (Section 11.2).
//!
//! AdaGrad, RMSprop and Adam are configurations. Where λ goes: eqn 10 puts it inside the power,
//! `(u + λ)^{−ξ}`; the published Adam and RMSprop put their ε outside the root,
//! `1/(√u + ε)`. Both are offered ([`DampingPlacement`]); the named constructors use the
//! published (outside) form; set [`DiagonalParams::placement`] to `InsidePower` for the paper's.

use crate::error::{check_range, Result};
use crate::objective::Objective;
use crate::schedule::Schedule;
use crate::solver::{
    all_finite, loss_and_gradient, Rejection, RejectionCount, Solver, StepReport, Work,
};

/// How `B_k = diag(u_k)` is accumulated from the gradients `g_k`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Accumulation {
    /// `u_k = Σ_{j≤k} g_j ⊙ g_j` (AdaGrad).
    Sum,
    /// `u_k = β u_{k−1} + (1 − β) g_k ⊙ g_k` (RMSprop, Adam's second moment), `β ∈ [0, 1)`.
    ExponentialAverage(f64),
}

/// Where the damping enters (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DampingPlacement {
    /// `(u + λ)^{−ξ}`, eqn 10.
    InsidePower,
    /// `1 / (u^ξ + λ)`, the published Adam/RMSprop form.
    OutsidePower,
}

/// Settings of the eqn-10 family.
#[derive(Clone, Debug, PartialEq)]
pub struct DiagonalParams {
    /// `α_k`.
    pub schedule: Schedule,
    /// `λ ≥ 0`.
    pub lambda: f64,
    /// `ξ ∈ (0, 1]`.
    pub xi: f64,
    /// How `u_k` is built.
    pub accumulation: Accumulation,
    /// Where `λ` goes.
    pub placement: DampingPlacement,
    /// Momentum on the gradient, `m_k = β₁ m_{k−1} + (1 − β₁) g_k` (Adam), `β₁ ∈ [0, 1)`.
    pub momentum: f64,
    /// Adam's bias corrections `m/(1 − β₁ᵏ)`, `u/(1 − β₂ᵏ)`.
    pub bias_correction: bool,
}

impl DiagonalParams {
    /// AdaGrad (Duchi et al. 2011): sum of squares, `ξ = ½`, `λ = ε ≥ 0` outside the root.
    pub fn adagrad(alpha: f64, epsilon: f64) -> Result<Self> {
        Self::published("AdaGrad", alpha, epsilon)
    }

    /// RMSprop: exponential average with `β ∈ [0, 1)`, `ξ = ½`, `ε ≥ 0` outside the root.
    pub fn rmsprop(alpha: f64, beta: f64, epsilon: f64) -> Result<Self> {
        check_range("RMSprop", "beta", beta, 0.0, true, 1.0 - f64::EPSILON)?;
        Ok(DiagonalParams {
            accumulation: Accumulation::ExponentialAverage(beta),
            ..Self::published("RMSprop", alpha, epsilon)?
        })
    }

    /// Adam (Kingma & Ba): `β₁, β₂ ∈ [0, 1)`, `ε ≥ 0` outside the root, bias corrections.
    pub fn adam(alpha: f64, beta1: f64, beta2: f64, epsilon: f64) -> Result<Self> {
        check_range("Adam", "beta1", beta1, 0.0, true, 1.0 - f64::EPSILON)?;
        check_range("Adam", "beta2", beta2, 0.0, true, 1.0 - f64::EPSILON)?;
        Ok(DiagonalParams {
            accumulation: Accumulation::ExponentialAverage(beta2),
            momentum: beta1,
            bias_correction: true,
            ..Self::published("Adam", alpha, epsilon)?
        })
    }

    /// The published form shared by the named constructors, its settings checked under the
    /// method's own names (`epsilon`, not eqn 10's `lambda`).
    fn published(method: &str, alpha: f64, epsilon: f64) -> Result<Self> {
        check_range(method, "alpha", alpha, 0.0, false, f64::INFINITY)?;
        check_range(method, "epsilon", epsilon, 0.0, true, f64::INFINITY)?;
        Ok(DiagonalParams {
            schedule: Schedule::constant(alpha)?,
            lambda: epsilon,
            xi: 0.5,
            accumulation: Accumulation::Sum,
            placement: DampingPlacement::OutsidePower,
            momentum: 0.0,
            bias_correction: false,
        })
    }

    fn validate(&self) -> Result<()> {
        check_range("DiagonalMethod", "lambda", self.lambda, 0.0, true, f64::INFINITY)?;
        check_range("DiagonalMethod", "xi", self.xi, 0.0, false, 1.0)?;
        check_range("DiagonalMethod", "momentum", self.momentum, 0.0, true, 1.0 - f64::EPSILON)?;
        if let Accumulation::ExponentialAverage(b) = self.accumulation {
            check_range("DiagonalMethod", "beta", b, 0.0, true, 1.0 - f64::EPSILON)?;
        }
        Ok(())
    }
}

/// An eqn-10 optimizer. A step whose new θ would not be finite is rejected: θ, the
/// accumulators `u`, `m` and the step count stay as they were, and the report says
/// [`Rejection::NonFiniteStep`] (see [`crate::MAX_NON_FINITE_REJECTIONS`]).
#[derive(Clone, Debug)]
pub struct DiagonalMethod {
    params: DiagonalParams,
    name: String,
    u: Vec<f64>,
    m: Vec<f64>,
    k: usize,
    rejections: RejectionCount,
}

impl DiagonalMethod {
    /// Validates the settings (`λ ≥ 0`, `ξ ∈ (0, 1]`, `β`s in `[0, 1)`).
    pub fn new(name: &str, params: DiagonalParams) -> Result<Self> {
        params.validate()?;
        Ok(DiagonalMethod {
            params,
            name: name.into(),
            u: Vec::new(),
            m: Vec::new(),
            k: 0,
            rejections: RejectionCount::default(),
        })
    }
}

impl Solver for DiagonalMethod {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, theta: &mut [f64], objective: &mut dyn Objective) -> Result<StepReport> {
        let n = theta.len();
        let (loss, g) = loss_and_gradient(objective, theta, &format!("{}::step", self.name))?;
        if self.u.len() != n {
            self.u = vec![0.0; n];
            self.m = vec![0.0; n];
        }
        let p = &self.params;
        let k = self.k + 1;
        let (m_corr, u_corr) = match (p.bias_correction, p.accumulation) {
            (true, Accumulation::ExponentialAverage(b2)) => {
                (1.0 - p.momentum.powi(k as i32), 1.0 - b2.powi(k as i32))
            }
            _ => (1.0, 1.0),
        };
        let alpha = p.schedule.step_size(self.k);
        // The new state is built aside and committed only if the new θ is finite.
        let (mut u, mut m, mut trial) = (self.u.clone(), self.m.clone(), theta.to_vec());
        let mut step_sq = 0.0;
        for i in 0..n {
            u[i] = match p.accumulation {
                Accumulation::Sum => u[i] + g[i] * g[i],
                Accumulation::ExponentialAverage(b) => b * u[i] + (1.0 - b) * g[i] * g[i],
            };
            m[i] = p.momentum * m[i] + (1.0 - p.momentum) * g[i];
            let (mi, ui) = (m[i] / m_corr, u[i] / u_corr);
            let scale = match p.placement {
                DampingPlacement::InsidePower => (ui + p.lambda).powf(-p.xi),
                DampingPlacement::OutsidePower => 1.0 / (ui.powf(p.xi) + p.lambda),
            };
            let d = alpha * scale * mi;
            step_sq += d * d;
            trial[i] -= d;
        }
        let work = Work { gradients: 1, ..Work::default() };
        let report = if all_finite(&trial) {
            theta.copy_from_slice(&trial);
            (self.u, self.m, self.k) = (u, m, k);
            StepReport::basic(loss, alpha, step_sq.sqrt(), work)
        } else {
            let mut report = StepReport::basic(loss, 0.0, 0.0, work);
            report.rejected = Some(Rejection::NonFiniteStep);
            report
        };
        objective.next_batch();
        self.rejections.settle(&self.name, report)
    }
}

/// One step of the Section 11.1 iteration with the empirical Fisher of the example
/// `h(θ) = ½θ²` (`∇h = θ`, `F̄ = θ²`): `θ ← θ − α (θ²)^{−ξ} θ = (1 − α|θ|^{−2ξ}) θ`.
/// (The paper's middle expression has the exponent's sign flipped; this is its last form.)
pub fn empirical_fisher_example_step(theta: f64, alpha: f64, xi: f64) -> f64 {
    (1.0 - alpha * theta.abs().powf(-2.0 * xi)) * theta
}
