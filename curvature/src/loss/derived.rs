//! Losses derived on the tape: write `L(y, z)` once and get `∇_z L`, `H_L` and `F_R` exactly by
//! automatic differentiation, instead of deriving them by hand.
//!
//! A researcher implements [`TapeLoss`]: the loss of every row of a batch, `L(y_n, z_n)`, as a
//! column recorded on an autodiff [`Tape`], generic over the [`Scalar`] like a model. The
//! wrapper [`DerivedLoss`] then implements [`PredictiveDistribution`]:
//!
//! | quantity | how (one tape per batch, not per example) |
//! |---|---|
//! | `L`, `∇_z L` | `f64` tape, one reverse sweep seeded with ones on the loss column |
//! | `H_L u` | the same reverse sweep on a tape of duals `z + u ε` (forward-over-reverse) |
//! | `F_R u` | from a log-partition, see below |
//!
//! Because row `n` of the loss depends only on row `n` of `z`, the gradient of the summed loss
//! has `∇_z L(y_n, z_n)` in row `n` and its Hessian is block diagonal, so a whole batch costs one
//! forward and one reverse sweep. [`DerivedLoss`] checks that the loss really is row-wise (and
//! that its shapes fit) whenever it is asked its [`target_dim`](PredictiveDistribution::target_dim),
//! which every batch helper of [`crate::loss`] and [`crate::Problem`] does first: a mistake there
//! is a [`CurvatureError`], not a panic.
//!
//! **Where `F_R` comes from.** `F_R` is a property of the distribution `R_{y|z}`, not of `L`
//! alone, so it has to be given; it is never estimated by sampling (the sampled
//! `E[∇_z L ∇_z Lᵀ]` is what [`crate::verify::check_loss`] compares against). Three ways,
//! chosen by the constructor, so a loss without a Fisher does not compile:
//!
//! - [`DerivedLoss::natural`]: `z` is the natural parameter of an exponential family with
//!   log-partition `A` ([`LogPartition`]): `F_R = ∇²A(z)` by autodiff, and
//!   [`is_natural_parameter`](PredictiveDistribution::is_natural_parameter) is true, so `F = G`
//!   (Section 9.2). `check_loss` then also checks `F_R = H_L`.
//! - [`DerivedLoss::through_natural_parameter`]: `z` parameterizes an exponential family some
//!   other way, through a map `η(z)` to its natural parameter ([`NaturalParameterMap`]):
//!   `F_R = J_ηᵀ ∇²A(η) J_η` (the Fisher transforms as a metric), all three factors by autodiff.
//! - [`DerivedLoss::with_fisher`]: `F_R u` in closed form, for other families.
//!
//! Sampling `y ~ R_{y|z}` (for the Monte-Carlo Fisher and `check_loss`) is the user's
//! [`TapeLoss::sample`]; its random-number generator is [`rand::RngCore`], re-exported as
//! [`crate::rand`] so a user's crate can name the same version.
//!
//! The built-in losses keep their hand-written closed forms, which are faster; a derived loss
//! costs a few small tape sweeps per batch product.
//!
//! # Example: Poisson regression on the log-rate
//! ```
//! use autodiff::{Matrix, Scalar, Tape, Var};
//! use curvature::loss::{DerivedLoss, LogPartition, PredictiveDistribution, TapeLoss};
//! use curvature::rand::RngCore;
//!
//! /// y ~ Poisson(e^z): L = e^z − y z + ln y!, natural parameter z, A(z) = e^z.
//! struct Poisson;
//! impl TapeLoss for Poisson {
//!     fn name(&self) -> &str { "poisson_log_rate" }
//!     fn target_dim(&self, output_dim: usize) -> curvature::error::Result<usize> {
//!         Ok(output_dim)
//!     }
//!     fn loss_rows<'t, T: Scalar>(&self, tape: &'t Tape<T>, z: Var<'t, T>, y: &Matrix<f64>)
//!         -> autodiff::Result<Var<'t, T>> {
//!         // ln y! is a constant of the data (here the targets are small integers).
//!         let log_factorial = y.map(|t| (1..=t as u64).map(|k| (k as f64).ln()).sum::<f64>());
//!         z.exp()?.sub(z.mul(tape.constant_f64(y))?)?
//!             .add(tape.constant_f64(&log_factorial))?.sum_rows()
//!     }
//!     fn sample(&self, _z: &[f64], _rng: &mut dyn RngCore, y: &mut [f64]) {
//!         y.fill(1.0); // a real sampler draws Poisson(e^z); see examples/custom_loss.rs
//!     }
//! }
//! impl LogPartition for Poisson {
//!     fn log_partition<'t, T: Scalar>(&self, _tape: &'t Tape<T>, eta: Var<'t, T>)
//!         -> autodiff::Result<Var<'t, T>> {
//!         eta.exp()?.sum_rows()
//!     }
//! }
//!
//! let poisson = DerivedLoss::natural(Poisson);
//! let (z, y) = ([0.3], [2.0]);
//! let mut g = [0.0];
//! poisson.grad_z(&z, &y, &mut g);                          // e^z − y, by a reverse sweep
//! assert!((g[0] - (0.3f64.exp() - 2.0)).abs() < 1e-15);
//! let (mut h, mut f) = ([0.0], [0.0]);
//! poisson.apply_h_l(&z, &y, &[1.0], &mut h);               // e^z, forward-over-reverse
//! poisson.apply_f_r(&z, &[1.0], &mut f);                   // ∇²A = e^z
//! assert!((h[0] - 0.3f64.exp()).abs() < 1e-15 && (f[0] - h[0]).abs() < 1e-15);
//! assert!(poisson.is_natural_parameter());
//! ```

use super::{PredictiveDistribution, TargetIssue};
use crate::error::{CurvatureError, Result};
use autodiff::{Dual, Matrix, Scalar, Tape, Var};
use rand::RngCore;

/// A loss `L(y, z) = −log r(y|z)` written once on the tape, for every row of a batch.
///
/// Only the loss is written here; [`DerivedLoss`] derives its gradient and Hessian in `z`.
pub trait TapeLoss: Send + Sync {
    /// The name used in messages and manifests.
    fn name(&self) -> &str;

    /// The number of target columns for `output_dim` network outputs, or an error if this
    /// output size does not fit the distribution.
    fn target_dim(&self, output_dim: usize) -> Result<usize>;

    /// Checks that one row `z` is in the distribution's domain (default: any real vector).
    fn check_output(&self, z: &[f64]) -> Result<()> {
        let _ = z;
        Ok(())
    }

    /// Checks that one target row `y` is in the support of `R_{y|z}`; run by
    /// [`Problem::new`](crate::Problem::new) on every row through
    /// [`PredictiveDistribution::check_target`]. The default accepts any row; opt in with e.g.
    /// [`finite_target`](super::finite_target) or a rule of your own.
    fn check_target(&self, y: &[f64]) -> std::result::Result<(), TargetIssue> {
        let _ = y;
        Ok(())
    }

    /// Records `L(y_n, z_n)` for every row: `z` is the `N × m` input node of network outputs,
    /// `y` the `N × target_dim(m)` targets (enter them with [`Tape::constant_f64`]); returns an
    /// `N × 1` column. Row `n` of the result may depend only on row `n` of `z` (row-wise ops
    /// such as [`Var::sum_rows`], [`Var::log_sum_exp`] and elementwise ops; never a sum over
    /// the batch).
    fn loss_rows<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        z: Var<'t, T>,
        y: &Matrix<f64>,
    ) -> autodiff::Result<Var<'t, T>>;

    /// `y_out ← ỹ ~ R_{y|z}` for one row `z`.
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y_out: &mut [f64]);
}

/// The log-partition `A(η)` of an exponential family `r(y|η) = h(y) exp(⟨T(y), η⟩ − A(η))`,
/// for every row of a batch: its Hessian is the family's Fisher in `η`.
pub trait LogPartition: Send + Sync {
    /// Records `A(η_n)` for every row of the `N × p` node `eta`; returns an `N × 1` column
    /// (row-wise, as for [`TapeLoss::loss_rows`]).
    fn log_partition<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        eta: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>>;
}

/// The natural parameter `η(z)` of an exponential family parameterized by `z` some other way
/// (e.g. a Gaussian's `(μ, ln σ²)` ↦ `(μ/σ², 1/σ²)`).
///
/// # Example: an exponential distribution on its log-rate
/// `r(y|λ) = λ e^{−λy}` has natural parameter `η = −λ` (statistic `y`) and `A(η) = −ln(−η)`.
/// On the log-rate `z = ln λ`, `L = e^z y − z`, `η(z) = −e^z`, and
/// `F_R = J_η² ∇²A = e^{2z} / η² = 1`, while `H_L = y e^z`: `z` is not natural.
/// ```
/// use autodiff::{Matrix, Scalar, Tape, Var};
/// use curvature::loss::{DerivedLoss, LogPartition, NaturalParameterMap};
/// use curvature::loss::{PredictiveDistribution, TapeLoss};
/// use curvature::rand::{Rng, RngCore};
///
/// struct Exponential;
/// impl TapeLoss for Exponential {
///     fn name(&self) -> &str { "exponential_log_rate" }
///     fn target_dim(&self, m: usize) -> curvature::error::Result<usize> { Ok(m) }
///     fn loss_rows<'t, T: Scalar>(&self, tape: &'t Tape<T>, z: Var<'t, T>, y: &Matrix<f64>)
///         -> autodiff::Result<Var<'t, T>> {
///         z.exp()?.mul(tape.constant_f64(y))?.sub(z)?.sum_rows()
///     }
///     fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y: &mut [f64]) {
///         for (t, &v) in y.iter_mut().zip(z) {
///             *t = -(1.0 - rng.random::<f64>()).ln() / v.exp(); // inverse CDF
///         }
///     }
/// }
/// impl LogPartition for Exponential {
///     fn log_partition<'t, T: Scalar>(&self, _tape: &'t Tape<T>, eta: Var<'t, T>)
///         -> autodiff::Result<Var<'t, T>> {
///         eta.neg()?.ln()?.neg()?.sum_rows()
///     }
/// }
/// impl NaturalParameterMap for Exponential {
///     fn natural_parameter<'t, T: Scalar>(&self, _tape: &'t Tape<T>, z: Var<'t, T>)
///         -> autodiff::Result<Var<'t, T>> {
///         z.exp()?.neg()
///     }
/// }
///
/// let dist = DerivedLoss::through_natural_parameter(Exponential);
/// let (z, y) = ([0.7], [2.5]);
/// let (mut f, mut h) = ([0.0], [0.0]);
/// dist.apply_f_r(&z, &[1.0], &mut f);
/// dist.apply_h_l(&z, &y, &[1.0], &mut h);
/// assert!((f[0] - 1.0).abs() < 1e-14);
/// assert!((h[0] - 2.5 * 0.7f64.exp()).abs() < 1e-14);
/// assert!(!dist.is_natural_parameter());
/// curvature::verify::check_loss(&dist, &z, &y, 1e-8, 20_000, 0)?.assert_passed();
/// # Ok::<(), curvature::CurvatureError>(())
/// ```
pub trait NaturalParameterMap: LogPartition {
    /// Records `η(z_n)` for every row of the `N × m` node `z`; returns `N × p` (row-wise).
    fn natural_parameter<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        z: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>>;
}

/// How a [`DerivedLoss`] gets `F_R`: [`Natural`], [`ThroughNaturalParameter`] or
/// [`ClosedFormFisher`] (chosen by the [`DerivedLoss`] constructors).
pub trait FisherSource<L>: Send + Sync {
    /// Rows `F_R(z_n) u_n` of a batch (`z` and `u` of the same `N × m` shape).
    fn apply_f_r_rows(&self, loss: &L, z: &Matrix<f64>, u: &Matrix<f64>) -> Result<Matrix<f64>>;

    /// Whether `z` is the natural parameter (so `F_R = H_L`).
    fn is_natural_parameter(&self) -> bool;

    /// Checks the shapes and row-wise structure of what the source records, on a probe batch.
    fn probe(&self, loss: &L, z: &Matrix<f64>) -> Result<()>;
}

/// `z` is the natural parameter: `F_R = ∇²A(z)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Natural;

/// `z` maps to the natural parameter `η(z)`: `F_R = J_ηᵀ ∇²A(η) J_η`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThroughNaturalParameter;

/// `F_R u` in closed form, one row at a time: `f(z, u, out)` sets `out ← F_R(z) u`.
#[derive(Clone, Copy, Debug)]
pub struct ClosedFormFisher<F>(pub F);

/// A [`PredictiveDistribution`] whose `∇_z L` and `H_L` are derived by autodiff from a
/// [`TapeLoss`], and whose `F_R` comes from the [`FisherSource`] `S` (see the module docs).
///
/// The trait's methods cannot return errors; should the user's tape code fail at some point
/// where the probe of [`target_dim`](PredictiveDistribution::target_dim) succeeded (only a
/// value-dependent error can), they write NaN, which the finite checks downstream report. The
/// fallible versions are [`DerivedLoss::gradient_rows`], [`DerivedLoss::h_l_rows`] and
/// [`DerivedLoss::f_r_rows`].
#[derive(Clone, Copy, Debug)]
pub struct DerivedLoss<L, S> {
    loss: L,
    fisher: S,
}

impl<L: TapeLoss + LogPartition> DerivedLoss<L, Natural> {
    /// `z` is the natural parameter of the family with log-partition `A` (Section 9.2):
    /// `F_R = ∇²A(z)` and the Fisher equals the GGN.
    pub fn natural(loss: L) -> Self {
        DerivedLoss { loss, fisher: Natural }
    }
}

impl<L: TapeLoss + NaturalParameterMap> DerivedLoss<L, ThroughNaturalParameter> {
    /// `z` parameterizes the family through its natural parameter `η(z)`:
    /// `F_R = J_ηᵀ ∇²A(η) J_η`, and `z` is not natural.
    pub fn through_natural_parameter(loss: L) -> Self {
        DerivedLoss { loss, fisher: ThroughNaturalParameter }
    }
}

impl<L: TapeLoss, F> DerivedLoss<L, ClosedFormFisher<F>>
where
    F: Fn(&[f64], &[f64], &mut [f64]) + Send + Sync,
{
    /// `F_R u` given in closed form by `f(z, u, out)`; `z` is not claimed natural.
    pub fn with_fisher(loss: L, f: F) -> Self {
        DerivedLoss { loss, fisher: ClosedFormFisher(f) }
    }
}

impl<L: TapeLoss, S: FisherSource<L>> DerivedLoss<L, S> {
    /// The user's loss.
    pub fn tape_loss(&self) -> &L {
        &self.loss
    }

    /// Rows `L(y_n, z_n)` as an `N × 1` column.
    pub fn loss_column(&self, z: &Matrix<f64>, y: &Matrix<f64>) -> Result<Matrix<f64>> {
        let tape = Tape::<f64>::new();
        let out = self.loss.loss_rows(&tape, tape.input(z.clone()), y)?;
        expect_column(self.loss.name(), "loss_rows", out.shape(), z.rows())?;
        Ok(out.value())
    }

    /// Rows `∇_z L(y_n, z_n)`: one reverse sweep seeded with ones on the loss column.
    pub fn gradient_rows(&self, z: &Matrix<f64>, y: &Matrix<f64>) -> Result<Matrix<f64>> {
        let tape = Tape::<f64>::new();
        let zv = tape.input(z.clone());
        let out = self.loss.loss_rows(&tape, zv, y)?;
        expect_column(self.loss.name(), "loss_rows", out.shape(), z.rows())?;
        let grads = tape.backward(out, Matrix::filled(z.rows(), 1, 1.0))?;
        Ok(grads.wrt_or_zeros(zv))
    }

    /// Rows `H_L(y_n, z_n) u_n`: the reverse sweep on duals `z + u ε` (forward-over-reverse).
    pub fn h_l_rows(
        &self,
        z: &Matrix<f64>,
        y: &Matrix<f64>,
        u: &Matrix<f64>,
    ) -> Result<Matrix<f64>> {
        same_shape(self.loss.name(), "h_l_rows", z, u)?;
        let tape = Tape::<Dual<f64>>::new();
        let zv = tape.input(dual(z, u));
        let out = self.loss.loss_rows(&tape, zv, y)?;
        expect_column(self.loss.name(), "loss_rows", out.shape(), z.rows())?;
        let grads = tape.backward(out, Matrix::filled(z.rows(), 1, Dual::new(1.0, 0.0)))?;
        Ok(grads.wrt_or_zeros(zv).map(|d| d.eps))
    }

    /// Rows `F_R(z_n) u_n`, from the [`FisherSource`].
    pub fn f_r_rows(&self, z: &Matrix<f64>, u: &Matrix<f64>) -> Result<Matrix<f64>> {
        same_shape(self.loss.name(), "f_r_rows", z, u)?;
        self.fisher.apply_f_r_rows(&self.loss, z, u)
    }

    /// The checks run by [`target_dim`](PredictiveDistribution::target_dim) on a probe batch
    /// of two distinct rows: the loss is an `N × 1` column, and row 0 of it does not depend on
    /// row 1 of `z` (likewise for the Fisher source's tape code).
    fn probe(&self, output_dim: usize, target_dim: usize) -> Result<()> {
        // Positive values in (0, 1): inside the domain of the usual parameters (precisions,
        // probabilities), distinct per entry so a dependence across rows cannot cancel.
        let z = Matrix::from_fn(2, output_dim, |i, j| 0.3 + 0.2 * i as f64 + 0.05 * j as f64);
        let y = Matrix::from_fn(2, target_dim, |i, j| 0.4 + 0.1 * i as f64 + 0.03 * j as f64);
        let tape = Tape::<f64>::new();
        let zv = tape.input(z.clone());
        let out = self.loss.loss_rows(&tape, zv, &y)?;
        expect_column(self.loss.name(), "loss_rows", out.shape(), 2)?;
        let seed = Matrix::from_fn(2, 1, |i, _| if i == 0 { 1.0 } else { 0.0 });
        let g = tape.backward(out, seed)?.wrt_or_zeros(zv);
        rowwise(self.loss.name(), "loss_rows", g.row(1))?;
        self.fisher.probe(&self.loss, &z)
    }
}

impl<L: TapeLoss + LogPartition> FisherSource<L> for Natural {
    /// `∇²A(z) u` per row: the reverse sweep of `Σ_n A(z_n)` on duals `z + u ε`.
    fn apply_f_r_rows(&self, loss: &L, z: &Matrix<f64>, u: &Matrix<f64>) -> Result<Matrix<f64>> {
        hessian_of_log_partition(loss, z, u)
    }
    fn is_natural_parameter(&self) -> bool {
        true
    }
    fn probe(&self, loss: &L, z: &Matrix<f64>) -> Result<()> {
        probe_log_partition(loss, z)
    }
}

impl<L: TapeLoss + NaturalParameterMap> FisherSource<L> for ThroughNaturalParameter {
    /// `J_ηᵀ ∇²A(η) J_η u` per row: `J_η u` by a dual forward pass, `∇²A(η)` applied by
    /// forward-over-reverse, `J_ηᵀ` by a reverse sweep seeded on `η`.
    fn apply_f_r_rows(&self, loss: &L, z: &Matrix<f64>, u: &Matrix<f64>) -> Result<Matrix<f64>> {
        let tape = Tape::<Dual<f64>>::new();
        let eta_dual = loss.natural_parameter(&tape, tape.input(dual(z, u)))?.value();
        expect_rows(loss.name(), "natural_parameter", eta_dual.rows(), z.rows())?;
        let (eta, eta_tangent) = (eta_dual.map(|d| d.re), eta_dual.map(|d| d.eps));
        let w = hessian_of_log_partition(loss, &eta, &eta_tangent)?;
        let tape = Tape::<f64>::new();
        let zv = tape.input(z.clone());
        let eta_var = loss.natural_parameter(&tape, zv)?;
        let grads = tape.backward_with_seeds(&[(eta_var, &w)], autodiff::Retain::Inputs)?;
        Ok(grads.wrt_or_zeros(zv))
    }
    fn is_natural_parameter(&self) -> bool {
        false
    }
    fn probe(&self, loss: &L, z: &Matrix<f64>) -> Result<()> {
        let tape = Tape::<f64>::new();
        let zv = tape.input(z.clone());
        let eta = loss.natural_parameter(&tape, zv)?;
        expect_rows(loss.name(), "natural_parameter", eta.shape().rows, z.rows())?;
        let seed = Matrix::from_fn(2, eta.shape().cols, |i, _| if i == 0 { 1.0 } else { 0.0 });
        let g = tape.backward(eta, seed)?.wrt_or_zeros(zv);
        rowwise(loss.name(), "natural_parameter", g.row(1))?;
        probe_log_partition(loss, &eta.value())
    }
}

impl<L: TapeLoss, F> FisherSource<L> for ClosedFormFisher<F>
where
    F: Fn(&[f64], &[f64], &mut [f64]) + Send + Sync,
{
    fn apply_f_r_rows(&self, _loss: &L, z: &Matrix<f64>, u: &Matrix<f64>) -> Result<Matrix<f64>> {
        let mut out = Matrix::zeros(z.rows(), z.cols());
        for r in 0..z.rows() {
            (self.0)(z.row(r), u.row(r), out.row_mut(r));
        }
        Ok(out)
    }
    fn is_natural_parameter(&self) -> bool {
        false
    }
    fn probe(&self, _loss: &L, _z: &Matrix<f64>) -> Result<()> {
        Ok(())
    }
}

impl<L: TapeLoss, S: FisherSource<L>> PredictiveDistribution for DerivedLoss<L, S> {
    fn name(&self) -> &str {
        self.loss.name()
    }
    /// The user's `target_dim`, after checking the user's tape code on a probe batch.
    fn target_dim(&self, output_dim: usize) -> Result<usize> {
        let target = self.loss.target_dim(output_dim)?;
        self.probe(output_dim, target)?;
        Ok(target)
    }
    fn check_output(&self, z: &[f64]) -> Result<()> {
        self.loss.check_output(z)
    }
    fn check_target(&self, y: &[f64]) -> std::result::Result<(), TargetIssue> {
        self.loss.check_target(y)
    }
    fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
        self.loss_rows(&row(z), &row(y))
    }
    fn loss_rows(&self, z: &Matrix<f64>, y: &Matrix<f64>) -> f64 {
        self.loss_column(z, y).map_or(f64::NAN, |c| c.data().iter().sum())
    }
    fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
        write_or_nan(self.gradient_rows(&row(z), &row(y)), out);
    }
    fn grad_z_rows(&self, z: &Matrix<f64>, y: &Matrix<f64>, out: &mut Matrix<f64>) {
        write_or_nan(self.gradient_rows(z, y), out.data_mut());
    }
    fn apply_h_l(&self, z: &[f64], y: &[f64], u: &[f64], out: &mut [f64]) {
        write_or_nan(self.h_l_rows(&row(z), &row(y), &row(u)), out);
    }
    fn apply_h_l_rows(
        &self,
        z: &Matrix<f64>,
        y: &Matrix<f64>,
        u: &Matrix<f64>,
        out: &mut Matrix<f64>,
    ) {
        write_or_nan(self.h_l_rows(z, y, u), out.data_mut());
    }
    fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]) {
        write_or_nan(self.f_r_rows(&row(z), &row(u)), out);
    }
    fn apply_f_r_rows(&self, z: &Matrix<f64>, u: &Matrix<f64>, out: &mut Matrix<f64>) {
        write_or_nan(self.f_r_rows(z, u), out.data_mut());
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y_out: &mut [f64]) {
        self.loss.sample(z, rng, y_out);
    }
    fn is_natural_parameter(&self) -> bool {
        self.fisher.is_natural_parameter()
    }
}

/// `∇²A(η) u` per row, by the reverse sweep of `Σ_n A(η_n)` on duals `η + u ε`.
fn hessian_of_log_partition<L: TapeLoss + LogPartition>(
    loss: &L,
    eta: &Matrix<f64>,
    u: &Matrix<f64>,
) -> Result<Matrix<f64>> {
    let tape = Tape::<Dual<f64>>::new();
    let ev = tape.input(dual(eta, u));
    let a = loss.log_partition(&tape, ev)?;
    expect_column(loss.name(), "log_partition", a.shape(), eta.rows())?;
    let grads = tape.backward(a, Matrix::filled(eta.rows(), 1, Dual::new(1.0, 0.0)))?;
    Ok(grads.wrt_or_zeros(ev).map(|d| d.eps))
}

fn probe_log_partition<L: TapeLoss + LogPartition>(loss: &L, eta: &Matrix<f64>) -> Result<()> {
    let tape = Tape::<f64>::new();
    let ev = tape.input(eta.clone());
    let a = loss.log_partition(&tape, ev)?;
    expect_column(loss.name(), "log_partition", a.shape(), eta.rows())?;
    let seed = Matrix::from_fn(eta.rows(), 1, |i, _| if i == 0 { 1.0 } else { 0.0 });
    let g = tape.backward(a, seed)?.wrt_or_zeros(ev);
    rowwise(loss.name(), "log_partition", g.row(1))
}

fn dual(re: &Matrix<f64>, eps: &Matrix<f64>) -> Matrix<Dual<f64>> {
    Matrix::from_fn(re.rows(), re.cols(), |i, j| Dual::new(re[(i, j)], eps[(i, j)]))
}

fn row(v: &[f64]) -> Matrix<f64> {
    Matrix::row_vector(v.to_vec())
}

fn write_or_nan(result: Result<Matrix<f64>>, out: &mut [f64]) {
    match result {
        Ok(m) if m.len() == out.len() => out.copy_from_slice(m.data()),
        _ => out.fill(f64::NAN),
    }
}

fn expect_column(name: &str, what: &str, shape: autodiff::Shape, rows: usize) -> Result<()> {
    if shape.rows != rows || shape.cols != 1 {
        return Err(CurvatureError::Dimension {
            op: format!("{name}: {what}"),
            expected: format!("one value per row of the batch, a {rows}×1 column"),
            actual: shape.to_string(),
        });
    }
    Ok(())
}

fn expect_rows(name: &str, what: &str, actual: usize, rows: usize) -> Result<()> {
    if actual != rows {
        return Err(CurvatureError::Dimension {
            op: format!("{name}: {what}"),
            expected: format!("one row per row of the batch ({rows} rows)"),
            actual: format!("{actual} rows"),
        });
    }
    Ok(())
}

fn same_shape(name: &str, what: &str, z: &Matrix<f64>, u: &Matrix<f64>) -> Result<()> {
    if z.shape() != u.shape() {
        return Err(CurvatureError::Dimension {
            op: format!("{name}: {what}"),
            expected: format!("u of the outputs' shape {}", z.shape()),
            actual: u.shape().to_string(),
        });
    }
    Ok(())
}

/// Row 0's output must not depend on row 1's input: the batch products rely on it. A
/// non-finite entry (a probe value outside the user's domain, where a zero adjoint times a NaN
/// derivative is NaN) says nothing either way and is not reported.
fn rowwise(name: &str, what: &str, cross: &[f64]) -> Result<()> {
    if cross.iter().any(|&g| g.is_finite() && g != 0.0) {
        return Err(CurvatureError::invalid(
            format!("{name}: {what}"),
            "row 0 of the result depends on row 1 of the input; it must be computed row by \
             row (e.g. sum_rows, never sum or mean over the batch)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
