//! Section 14 as code: the stochastic iteration of eqn 19,
//! `θ_{k+1} = θ_k − α_k B⁻¹ g_k`, `g_k = H*(θ_k − θ*) + ε_k`, `E ε = 0`, `Cov ε = Σ_g`,
//! on the quadratic `h(θ) = ½(θ − θ*)ᵀ H* (θ − θ*)`.
//!
//! - [`recursion`]: the exact evolution of `E[θ_k]`, `V_k = Var(θ_k)` and `E[h(θ_k)] − h(θ*)`
//!   (eqn 20), step by step, also for the averaged iterate `θ̄_k = (1/(k+1)) Σ_{i≤k} θ_i`;
//! - [`closed_form`]: Theorem 3's expressions, evaluated in the eigenbasis of `B⁻¹H*`, where
//!   the operators `Ψ_β` and `Ξ` act entry-wise;
//! - [`bounds`]: Theorem 5's `l(k) ≤ E[h(θ_k)] − h(θ*) ≤ u(k)` in both step-size regimes,
//!   Theorem 6's bound for the averaged iterate, and the noise constants of Section 14.2.1;
//! - [`simulate`]: a seeded Monte-Carlo run of eqn 19 with Gaussian noise and confidence
//!   intervals, to hold all of the above against;
//! - [`csv`]: sequences to CSV files for plotting elsewhere.
//!
//! Each theorem's hypotheses (`αλ₁(B⁻¹H*) ≤ 1`, `b = λ_n(B⁻¹H*) > ½`, `λ₁(B⁻¹H*) ≤ a + 1`,
//! `a ≥ 1`, SPD `B` and `H*`) are checked, and a violation is
//! [`OptimError::ConditionViolated`], never a number.
//!
//! Notation: `P = B⁻¹H*`, `U = B⁻¹Σ_g B⁻¹`, `Ψ_β(X) = (I − βP) X (I − βP)ᵀ`,
//! `Ξ(X) = PX + XPᵀ`, `λ₁ ≥ … ≥ λ_n` eigenvalues, `e_k = θ_k − θ*`. Slips of the paper's
//! text that matter here (Appendix B's `Ψ_β(X) = X − βΞ(X) + β²Ω(X)`, Section 14.3.1's
//! `n/(2(k+1))`) do not affect the statements implemented. Checked against the code, three more:
//! eqn 40's first inner sum runs to `j = k − i` (not `j = i`; Theorem 6 still holds);
//! Proposition 23's second inequality needs `b ≥ 3/2` (see [`bounds::theorem5`]); and Theorem
//! 3's remainder `E_k` shrinks like `k^{−min(2, 2b)}`, not `1/k²`, when `½ < b < 1`
//! (`tests/theory.rs` measures the rate).

pub mod bounds;
pub mod closed_form;
pub mod csv;
pub mod recursion;
pub mod simulate;

use crate::error::{OptimError, Result};
use crate::schedule::Schedule;
use autodiff::linalg::{cholesky, matmul, matvec, symmetric_eigen};
use autodiff::Matrix;

/// A quadratic problem with a fixed curvature matrix and gradient-noise covariance.
#[derive(Clone, Debug)]
pub struct QuadraticProblem {
    /// `H*` (SPD).
    pub h_star: Matrix<f64>,
    /// `θ*`.
    pub theta_star: Vec<f64>,
    /// `Σ_g` (symmetric PSD).
    pub sigma_g: Matrix<f64>,
    /// `B` (SPD).
    pub b: Matrix<f64>,
    /// `θ_0` (deterministic).
    pub theta0: Vec<f64>,
    pub(crate) basis: Eigenbasis,
}

/// `P = B⁻¹H* = W D W⁻¹` from the symmetric `S = L⁻¹H*L⁻ᵀ = Q D Qᵀ` (`B = LLᵀ`):
/// `W = L⁻ᵀQ`, `W⁻¹ = QᵀLᵀ`. In this basis `X̃ = W⁻¹XW⁻ᵀ`, `Ψ_β` multiplies entry `(i, j)` by
/// `(1 − βd_i)(1 − βd_j)` and `Ξ` by `d_i + d_j`.
#[derive(Clone, Debug)]
pub(crate) struct Eigenbasis {
    pub(crate) d: Vec<f64>,
    pub(crate) w: Matrix<f64>,
    pub(crate) w_inv: Matrix<f64>,
}

fn check_spd(name: &str, m: &Matrix<f64>, n: usize, allow_singular: bool) -> Result<()> {
    if m.rows() != n || m.cols() != n {
        return Err(OptimError::Dimension {
            op: format!("QuadraticProblem::new ({name} rows)"),
            expected: n,
            actual: m.rows(),
        });
    }
    let asym = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| (m[(i, j)] - m[(j, i)]).abs())
        .fold(0.0, f64::max);
    let scale = m.data().iter().fold(1e-300_f64, |a, x| a.max(x.abs()));
    if asym > 1e-12 * scale {
        return Err(OptimError::ConditionViolated {
            theorem: "Section 14".into(),
            condition: format!("a symmetric {name}"),
            value: asym,
        });
    }
    let lowest = symmetric_eigen(m)?.values[0];
    let ok = if allow_singular { lowest >= -1e-12 * scale } else { lowest > 0.0 };
    if !ok {
        let what = if allow_singular { "positive semi-definite" } else { "positive definite" };
        return Err(OptimError::ConditionViolated {
            theorem: "Section 14".into(),
            condition: format!("{name} {what} (smallest eigenvalue)"),
            value: lowest,
        });
    }
    Ok(())
}

/// The error for a schedule Section 14's theorems do not cover, `α_k = c/(k + 1)`
/// ([`Schedule::InverseTime`]); the exact recursion and the simulation take any schedule.
pub(crate) fn unsupported_schedule(theorem: &str, c: f64) -> OptimError {
    OptimError::InvalidParameter {
        solver: theorem.into(),
        parameter: "Schedule::InverseTime's c".into(),
        value: c,
        reason: "the theorems cover α_k = α (Schedule::Constant) and α_k = 1/(k + a + 1) with \
                 a ≥ 1 (Schedule::Shifted), not α_k = c/(k + 1)"
            .into(),
    }
}

fn lower_inverse(l: &Matrix<f64>) -> Matrix<f64> {
    let n = l.rows();
    let mut inv = Matrix::zeros(n, n);
    for j in 0..n {
        for i in j..n {
            let s: f64 = (j..i).map(|k| l[(i, k)] * inv[(k, j)]).sum();
            inv[(i, j)] = (if i == j { 1.0 } else { 0.0 } - s) / l[(i, i)];
        }
    }
    inv
}

impl QuadraticProblem {
    /// Checks shapes, symmetry, `H*` and `B` SPD and `Σ_g` PSD, and builds the eigenbasis.
    pub fn new(
        h_star: Matrix<f64>,
        theta_star: Vec<f64>,
        sigma_g: Matrix<f64>,
        b: Matrix<f64>,
        theta0: Vec<f64>,
    ) -> Result<Self> {
        let n = theta_star.len();
        if theta0.len() != n {
            return Err(OptimError::Dimension {
                op: "QuadraticProblem::new (θ_0)".into(),
                expected: n,
                actual: theta0.len(),
            });
        }
        check_spd("H*", &h_star, n, false)?;
        check_spd("B", &b, n, false)?;
        check_spd("Σ_g", &sigma_g, n, true)?;
        let l = cholesky(&b)?;
        let l_inv = lower_inverse(&l);
        let s = matmul(&matmul(&l_inv, &h_star)?, &l_inv.transpose())?;
        let eig = symmetric_eigen(&s)?;
        let w = matmul(&l_inv.transpose(), &eig.vectors)?;
        let w_inv = matmul(&eig.vectors.transpose(), &l.transpose())?;
        let basis = Eigenbasis { d: eig.values, w, w_inv };
        Ok(QuadraticProblem { h_star, theta_star, sigma_g, b, theta0, basis })
    }

    /// The dimension `n`.
    pub fn dim(&self) -> usize {
        self.theta_star.len()
    }

    /// Eigenvalues of `P = B⁻¹H*`, ascending (`λ_n` first).
    pub fn eigenvalues(&self) -> &[f64] {
        &self.basis.d
    }

    /// `h(θ) − h(θ*) = ½ eᵀH*e`, `e = θ − θ*`; a θ whose length is not `n` is an
    /// [`OptimError::Dimension`].
    pub fn excess(&self, theta: &[f64]) -> Result<f64> {
        if theta.len() != self.dim() {
            return Err(OptimError::Dimension {
                op: "QuadraticProblem::excess (θ vs θ*)".into(),
                expected: self.dim(),
                actual: theta.len(),
            });
        }
        let e: Vec<f64> = theta.iter().zip(&self.theta_star).map(|(a, b)| a - b).collect();
        Ok(0.5 * e.iter().zip(matvec(&self.h_star, &e)?).map(|(a, b)| a * b).sum::<f64>())
    }

    /// `B⁻¹` (dense).
    pub(crate) fn b_inverse(&self) -> Matrix<f64> {
        // B⁻¹ = W Wᵀ, since W⁻¹ B⁻¹ W⁻ᵀ = Qᵀ Lᵀ L⁻ᵀ L⁻¹ L Q = I.
        matmul(&self.basis.w, &self.basis.w.transpose()).expect("square")
    }

    /// `U = B⁻¹ Σ_g B⁻¹`.
    pub fn u(&self) -> Matrix<f64> {
        let bi = self.b_inverse();
        matmul(&matmul(&bi, &self.sigma_g).expect("square"), &bi).expect("square")
    }

    /// `X̃ = W⁻¹ X W⁻ᵀ`.
    pub(crate) fn in_basis(&self, x: &Matrix<f64>) -> Matrix<f64> {
        matmul(&matmul(&self.basis.w_inv, x).expect("square"), &self.basis.w_inv.transpose())
            .expect("square")
    }

    /// `X = W X̃ Wᵀ`.
    pub(crate) fn out_of_basis(&self, x: &Matrix<f64>) -> Matrix<f64> {
        matmul(&matmul(&self.basis.w, x).expect("square"), &self.basis.w.transpose())
            .expect("square")
    }

    /// `½ tr(H* X)`.
    pub(crate) fn half_trace_h(&self, x: &Matrix<f64>) -> f64 {
        let n = self.dim();
        0.5 * (0..n)
            .map(|i| (0..n).map(|j| self.h_star[(i, j)] * x[(j, i)]).sum::<f64>())
            .sum::<f64>()
    }

    /// Checks the hypotheses of Theorems 3 and 5 for `steps` (`strict` for Theorem 6's `<`):
    /// for [`Schedule::Constant`] `α`, `0 < α` and `αλ₁(P) ≤ 1`; for [`Schedule::Shifted`] `a`
    /// (`α_k = 1/(k + a + 1)`), `a ≥ 1`, `b = λ_n(P) > ½` and `λ₁(P) ≤ a + 1`. The theorems
    /// do not cover [`Schedule::InverseTime`] (`α_k = c/(k + 1)`): an
    /// [`OptimError::InvalidParameter`] naming the schedule.
    pub fn check_conditions(&self, theorem: &str, steps: Schedule, strict: bool) -> Result<()> {
        let (lambda_n, lambda_1) = (self.basis.d[0], self.basis.d[self.dim() - 1]);
        match steps {
            Schedule::Constant(alpha) => {
                let value = alpha * lambda_1;
                let ok = alpha > 0.0 && if strict { value < 1.0 } else { value <= 1.0 };
                if !ok {
                    let rel = if strict { "<" } else { "≤" };
                    return Err(OptimError::ConditionViolated {
                        theorem: theorem.into(),
                        condition: format!("0 < α and α λ₁(B⁻¹H*) {rel} 1"),
                        value,
                    });
                }
            }
            Schedule::Shifted(a) => {
                if a.is_nan() || a < 1.0 {
                    return Err(OptimError::ConditionViolated {
                        theorem: theorem.into(),
                        condition: "a ≥ 1".into(),
                        value: a,
                    });
                }
                if lambda_n.is_nan() || lambda_n <= 0.5 {
                    return Err(OptimError::ConditionViolated {
                        theorem: theorem.into(),
                        condition: "b = λ_n(B⁻¹H*) > ½".into(),
                        value: lambda_n,
                    });
                }
                if lambda_1.is_nan() || lambda_1 > a + 1.0 {
                    return Err(OptimError::ConditionViolated {
                        theorem: theorem.into(),
                        condition: "λ₁(B⁻¹H*) ≤ a + 1".into(),
                        value: lambda_1,
                    });
                }
            }
            Schedule::InverseTime(c) => return Err(unsupported_schedule(theorem, c)),
        }
        Ok(())
    }
}

/// `h(θ_k)` statistics per iteration, and the averaged iterate's.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    /// `E[h(θ_k)] − h(θ*)` for `k = 0..=K`.
    pub excess: Vec<f64>,
    /// `E[h(θ̄_k)] − h(θ*)`, `θ̄_k = (1/(k+1)) Σ_{i≤k} θ_i`.
    pub averaged_excess: Vec<f64>,
}
