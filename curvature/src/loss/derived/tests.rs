//! The derived path against the hand-written closed forms of every built-in loss written again
//! on the tape (1e-12, both exact), against central differences of the user's `L` (through
//! `check_loss`, 1e-8), whole-network products, and its errors for malformed tape code.

use super::*;
use crate::loss::{
    apply_f_r_batch, apply_h_l_batch, by_name, dense_f_r, dense_h_l, loss_gradient, mean_loss,
    sample_targets, GaussianMeanLogVar,
};
use crate::verify::{check_fisher_equals_ggn, check_loss};
use crate::{Activation, Mlp, Problem};
use autodiff::check::compare;
use autodiff::random::{random_matrix, random_vector};
use rand::{rngs::StdRng, SeedableRng};

/// The built-in losses, written once more as their `L` and log-partition on the tape.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    SquaredError,
    GaussianNatural,
    GaussianMeanLogVar,
    SoftmaxCrossEntropy,
    BernoulliLogits,
}

const KINDS: [(Kind, &str); 5] = [
    (Kind::SquaredError, "squared_error"),
    (Kind::GaussianNatural, "gaussian_natural"),
    (Kind::GaussianMeanLogVar, "gaussian_mean_logvar"),
    (Kind::SoftmaxCrossEntropy, "softmax_cross_entropy"),
    (Kind::BernoulliLogits, "bernoulli_logits"),
];

struct OnTape {
    kind: Kind,
    builtin: Box<dyn PredictiveDistribution>,
}

fn on_tape(kind: Kind) -> OnTape {
    let name = KINDS.iter().find(|(k, _)| *k == kind).unwrap().1;
    OnTape { kind, builtin: by_name(name).unwrap() }
}

/// Columns `0..d` (`first`) or `d..2d` of an `N × 2d` node, by a product with a selector
/// (the tape has no column slice).
fn half<'t, T: Scalar>(
    tape: &'t Tape<T>,
    z: Var<'t, T>,
    first: bool,
) -> autodiff::Result<Var<'t, T>> {
    let m = z.shape().cols;
    let d = m / 2;
    let offset = if first { 0 } else { d };
    let select = Matrix::from_fn(m, d, |i, j| if i == j + offset { 1.0 } else { 0.0 });
    z.matmul(tape.constant_f64(&select))
}

/// `[a, b]` side by side, for `N × d` nodes `a` and `b`.
fn concat<'t, T: Scalar>(
    tape: &'t Tape<T>,
    a: Var<'t, T>,
    b: Var<'t, T>,
) -> autodiff::Result<Var<'t, T>> {
    let d = a.shape().cols;
    let place =
        |offset: usize| Matrix::from_fn(d, 2 * d, |i, j| if j == i + offset { 1.0 } else { 0.0 });
    a.matmul(tape.constant_f64(&place(0)))?.add(b.matmul(tape.constant_f64(&place(d)))?)
}

/// The Gaussian log-partition in natural parameters, `η₁²/(2η₂) − ½ ln η₂` per dimension.
fn gaussian_log_partition<'t, T: Scalar>(
    tape: &'t Tape<T>,
    eta: Var<'t, T>,
) -> autodiff::Result<Var<'t, T>> {
    let (e1, e2) = (half(tape, eta, true)?, half(tape, eta, false)?);
    e1.square()?.div(e2)?.scale(0.5)?.sub(e2.ln()?.scale(0.5)?)?.sum_rows()
}

impl TapeLoss for OnTape {
    fn name(&self) -> &str {
        self.builtin.name()
    }
    fn target_dim(&self, output_dim: usize) -> Result<usize> {
        self.builtin.target_dim(output_dim)
    }
    fn check_output(&self, z: &[f64]) -> Result<()> {
        self.builtin.check_output(z)
    }
    fn loss_rows<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        z: Var<'t, T>,
        y: &Matrix<f64>,
    ) -> autodiff::Result<Var<'t, T>> {
        let yv = tape.constant_f64(y);
        match self.kind {
            Kind::SquaredError => z.sub(yv)?.square()?.sum_rows()?.scale(0.5),
            Kind::GaussianNatural => {
                let (e1, e2) = (half(tape, z, true)?, half(tape, z, false)?);
                let y_squared = tape.constant_f64(&y.map(|t| 0.5 * t * t));
                gaussian_log_partition(tape, z)?
                    .sub(e1.mul(yv)?.sum_rows()?)?
                    .add(e2.mul(y_squared)?.sum_rows()?)
            }
            Kind::GaussianMeanLogVar => {
                let (mu, gamma) = (half(tape, z, true)?, half(tape, z, false)?);
                let r = yv.sub(mu)?;
                r.square()?.mul(gamma.neg()?.exp()?)?.add(gamma)?.sum_rows()?.scale(0.5)
            }
            Kind::SoftmaxCrossEntropy => yv.mul(z.log_softmax()?)?.sum_rows()?.neg(),
            Kind::BernoulliLogits => z.softplus()?.sub(yv.mul(z)?)?.sum_rows(),
        }
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y_out: &mut [f64]) {
        self.builtin.sample(z, rng, y_out)
    }
}

impl LogPartition for OnTape {
    fn log_partition<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        eta: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        match self.kind {
            Kind::SquaredError => eta.square()?.sum_rows()?.scale(0.5),
            Kind::GaussianNatural | Kind::GaussianMeanLogVar => gaussian_log_partition(tape, eta),
            Kind::SoftmaxCrossEntropy => eta.log_sum_exp(),
            Kind::BernoulliLogits => eta.softplus()?.sum_rows(),
        }
    }
}

impl NaturalParameterMap for OnTape {
    /// `(μ, γ) ↦ (μ e^{−γ}, e^{−γ})` for the mean and log-variance; the identity otherwise.
    fn natural_parameter<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        z: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        if self.kind != Kind::GaussianMeanLogVar {
            return Ok(z);
        }
        let (mu, gamma) = (half(tape, z, true)?, half(tape, z, false)?);
        let precision = gamma.neg()?.exp()?;
        concat(tape, mu.mul(precision)?, precision)
    }
}

/// The derived distribution for `kind`: natural where the built-in is, through `η(z)` for the
/// mean and log-variance.
fn derived(kind: Kind) -> Box<dyn PredictiveDistribution> {
    if kind == Kind::GaussianMeanLogVar {
        Box::new(DerivedLoss::through_natural_parameter(on_tape(kind)))
    } else {
        Box::new(DerivedLoss::natural(on_tape(kind)))
    }
}

fn output_dim(kind: Kind) -> usize {
    match kind {
        Kind::GaussianNatural | Kind::GaussianMeanLogVar => 4,
        _ => 3,
    }
}

/// A batch of valid outputs (positive precisions) and targets sampled from them.
fn batch(kind: Kind, rows: usize, seed: u64) -> (Matrix<f64>, Matrix<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let m = output_dim(kind);
    let mut z = random_matrix(rows, m, &mut rng);
    if kind == Kind::GaussianNatural {
        for r in 0..rows {
            for j in m / 2..m {
                z[(r, j)] = 0.5 + z[(r, j)].abs();
            }
        }
    }
    let dist = on_tape(kind).builtin;
    let mut y = Matrix::zeros(rows, dist.target_dim(m).unwrap());
    for r in 0..rows {
        dist.sample(z.row(r), &mut rng, y.row_mut(r));
    }
    (z, y)
}

#[test]
fn derived_gradient_hessian_and_fisher_match_every_closed_form() {
    for (kind, name) in KINDS {
        let closed = on_tape(kind).builtin;
        let tape = derived(kind);
        assert_eq!(tape.is_natural_parameter(), closed.is_natural_parameter(), "{name}");
        for seed in 0..4 {
            let (z, y) = batch(kind, 1, seed);
            let (z, y) = (z.row(0), y.row(0));
            let m = z.len();
            let l = compare(&format!("{name} L"), &[tape.loss(z, y)], &[closed.loss(z, y)], 1e-12);
            l.unwrap().assert_passed();
            let (mut g, mut g_closed) = (vec![0.0; m], vec![0.0; m]);
            tape.grad_z(z, y, &mut g);
            closed.grad_z(z, y, &mut g_closed);
            compare(&format!("{name} ∇_z L"), &g, &g_closed, 1e-12).unwrap().assert_passed();
            let (h, h_closed) = (dense_h_l(tape.as_ref(), z, y), dense_h_l(closed.as_ref(), z, y));
            compare(&format!("{name} H_L"), h.data(), h_closed.data(), 1e-12)
                .unwrap()
                .assert_passed();
            let (f, f_closed) = (dense_f_r(tape.as_ref(), z), dense_f_r(closed.as_ref(), z));
            compare(&format!("{name} F_R"), f.data(), f_closed.data(), 1e-12)
                .unwrap()
                .assert_passed();
        }
    }
}

#[test]
fn batch_rows_match_the_closed_forms_row_by_row() {
    for (kind, name) in KINDS {
        let closed = on_tape(kind).builtin;
        let tape = derived(kind);
        let (z, y) = batch(kind, 7, 11);
        let u = random_matrix(7, z.cols(), &mut StdRng::seed_from_u64(12));
        let pairs = [
            (loss_gradient(tape.as_ref(), &z, &y), loss_gradient(closed.as_ref(), &z, &y)),
            (
                apply_h_l_batch(tape.as_ref(), &z, &y, &u),
                apply_h_l_batch(closed.as_ref(), &z, &y, &u),
            ),
            (apply_f_r_batch(tape.as_ref(), &z, &u), apply_f_r_batch(closed.as_ref(), &z, &u)),
        ];
        for (what, (a, b)) in ["∇_z h", "H_L u", "F_R u"].iter().zip(pairs) {
            compare(&format!("{name} rows {what}"), a.unwrap().data(), b.unwrap().data(), 1e-12)
                .unwrap()
                .assert_passed();
        }
        let (l, l_closed) = (mean_loss(tape.as_ref(), &z, &y), mean_loss(closed.as_ref(), &z, &y));
        compare(&format!("{name} h"), &[l.unwrap()], &[l_closed.unwrap()], 1e-12)
            .unwrap()
            .assert_passed();
    }
}

/// `check_loss` on the derived losses: `∇_z L` and `H_L` against central differences of the
/// user's own `L` (an independent reference), `F_R` against sampling, and `F_R = H_L` where
/// natural.
#[test]
fn derived_losses_pass_check_loss() {
    for (kind, _) in KINDS {
        let (z, y) = batch(kind, 1, 21);
        check_loss(derived(kind).as_ref(), z.row(0), y.row(0), 1e-8, 20_000, 3)
            .unwrap()
            .assert_passed();
    }
}

#[test]
fn whole_network_products_agree_with_the_closed_forms() {
    let mut rng = StdRng::seed_from_u64(31);
    for (kind, name) in KINDS {
        let m = output_dim(kind);
        // A softplus output keeps the natural Gaussian's precisions positive.
        let last =
            if kind == Kind::GaussianNatural { Activation::Softplus } else { Activation::Identity };
        let mlp = Mlp::new(&[3, 5, m], &[Activation::Tanh, last]).unwrap();
        let x = random_matrix(6, 3, &mut rng);
        let theta: Vec<f64> =
            random_vector(mlp.num_params(), &mut rng).iter().map(|t| 0.5 * t).collect();
        let closed = on_tape(kind).builtin;
        let tape = derived(kind);
        // Targets drawn from the model's own predictions at θ.
        let outputs = crate::model::forward_values(&mlp, &theta, &x).unwrap();
        let y = sample_targets(closed.as_ref(), &outputs, &mut rng).unwrap();
        let p_closed = Problem::new(&mlp, closed.as_ref(), &x, &y).unwrap();
        let p_tape = Problem::new(&mlp, tape.as_ref(), &x, &y).unwrap();
        let (a, b) = (p_closed.at(&theta).unwrap(), p_tape.at(&theta).unwrap());
        let v = random_vector(mlp.num_params(), &mut rng);
        let products = [
            ("∇h", b.gradient().unwrap(), a.gradient().unwrap()),
            ("G v", b.ggn_vector_product(&v).unwrap(), a.ggn_vector_product(&v).unwrap()),
            ("F v", b.fisher_vector_product(&v).unwrap(), a.fisher_vector_product(&v).unwrap()),
            ("H v", b.hessian_vector_product(&v).unwrap(), a.hessian_vector_product(&v).unwrap()),
        ];
        for (what, derived_product, closed_product) in products {
            compare(&format!("{name} {what}"), &derived_product, &closed_product, 1e-12)
                .unwrap()
                .assert_passed();
        }
        if tape.is_natural_parameter() {
            check_fisher_equals_ggn(&p_tape, &theta, 1e-12).unwrap().assert_passed();
        }
    }
}

/// The mean and log-variance with `F_R` given in closed form, `diag(e^{−γ}, ½)`, agrees with
/// the one derived through `η(z)`.
#[test]
fn closed_form_fisher_agrees_with_the_one_through_the_natural_parameter() {
    let closed_form = DerivedLoss::with_fisher(
        on_tape(Kind::GaussianMeanLogVar),
        |z: &[f64], u: &[f64], out: &mut [f64]| {
            let d = z.len() / 2;
            for j in 0..d {
                out[j] = (-z[d + j]).exp() * u[j];
                out[d + j] = 0.5 * u[d + j];
            }
        },
    );
    let through = DerivedLoss::through_natural_parameter(on_tape(Kind::GaussianMeanLogVar));
    let (z, _) = batch(Kind::GaussianMeanLogVar, 5, 41);
    let u = random_matrix(5, 4, &mut StdRng::seed_from_u64(42));
    let (a, b) = (closed_form.f_r_rows(&z, &u).unwrap(), through.f_r_rows(&z, &u).unwrap());
    compare("F_R u closed form vs J_ηᵀ ∇²A J_η u", a.data(), b.data(), 1e-12)
        .unwrap()
        .assert_passed();
    assert!(!closed_form.is_natural_parameter() && !through.is_natural_parameter());
}

/// A loss that wrongly claims its `z` is natural: `check_loss` must fail it, on the new
/// `F_R = H_L` check alone (no sampling).
#[test]
fn check_loss_catches_a_wrong_natural_parameter_claim() {
    struct ClaimsNatural;
    impl PredictiveDistribution for ClaimsNatural {
        fn name(&self) -> &str {
            "mean_logvar_claiming_natural"
        }
        fn target_dim(&self, m: usize) -> Result<usize> {
            GaussianMeanLogVar.target_dim(m)
        }
        fn loss(&self, z: &[f64], y: &[f64]) -> f64 {
            GaussianMeanLogVar.loss(z, y)
        }
        fn grad_z(&self, z: &[f64], y: &[f64], out: &mut [f64]) {
            GaussianMeanLogVar.grad_z(z, y, out)
        }
        fn apply_h_l(&self, z: &[f64], y: &[f64], u: &[f64], out: &mut [f64]) {
            GaussianMeanLogVar.apply_h_l(z, y, u, out)
        }
        fn apply_f_r(&self, z: &[f64], u: &[f64], out: &mut [f64]) {
            GaussianMeanLogVar.apply_f_r(z, u, out)
        }
        fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y: &mut [f64]) {
            GaussianMeanLogVar.sample(z, rng, y)
        }
        fn is_natural_parameter(&self) -> bool {
            true
        }
    }
    let (z, y) = ([0.2, -0.3, 0.1, 0.4], [1.5, -0.7]);
    check_loss(&GaussianMeanLogVar, &z, &y, 1e-8, 0, 1).unwrap().assert_passed();
    let report = check_loss(&ClaimsNatural, &z, &y, 1e-8, 0, 1).unwrap();
    assert!(!report.passed() && report.check.contains("F_R vs H_L"), "{report}");

    // A derived loss whose log-partition is off by a factor 2 (A = ‖z‖² for L = ½‖z − y‖²).
    struct WrongPartition;
    impl TapeLoss for WrongPartition {
        fn name(&self) -> &str {
            "squared_error_wrong_partition"
        }
        fn target_dim(&self, m: usize) -> Result<usize> {
            Ok(m)
        }
        fn loss_rows<'t, T: Scalar>(
            &self,
            tape: &'t Tape<T>,
            z: Var<'t, T>,
            y: &Matrix<f64>,
        ) -> autodiff::Result<Var<'t, T>> {
            z.sub(tape.constant_f64(y))?.square()?.sum_rows()?.scale(0.5)
        }
        fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y: &mut [f64]) {
            crate::loss::SquaredError.sample(z, rng, y)
        }
    }
    impl LogPartition for WrongPartition {
        fn log_partition<'t, T: Scalar>(
            &self,
            _tape: &'t Tape<T>,
            eta: Var<'t, T>,
        ) -> autodiff::Result<Var<'t, T>> {
            eta.square()?.sum_rows()
        }
    }
    let report = check_loss(&DerivedLoss::natural(WrongPartition), &z, &z, 1e-8, 0, 1).unwrap();
    assert!(!report.passed() && report.check.contains("F_R vs H_L"), "{report}");
}

/// Tape code that does not return one loss per row, or mixes rows, is an error from every
/// batch helper, never a panic or a silently wrong product.
#[test]
fn malformed_tape_code_is_a_clear_error() {
    /// `how`: 0 sums over the batch (1×1), 1 centers each column over the batch.
    struct Malformed(u8);
    impl TapeLoss for Malformed {
        fn name(&self) -> &str {
            "malformed"
        }
        fn target_dim(&self, m: usize) -> Result<usize> {
            Ok(m)
        }
        fn loss_rows<'t, T: Scalar>(
            &self,
            tape: &'t Tape<T>,
            z: Var<'t, T>,
            y: &Matrix<f64>,
        ) -> autodiff::Result<Var<'t, T>> {
            let r = z.sub(tape.constant_f64(y))?;
            match self.0 {
                0 => r.square()?.sum(),
                _ => {
                    let ones = tape.constant_f64(&Matrix::filled(z.shape().rows, 1, 1.0));
                    r.sub(ones.matmul(r.mean_cols()?)?)?.square()?.sum_rows()
                }
            }
        }
        fn sample(&self, _z: &[f64], _rng: &mut dyn RngCore, y: &mut [f64]) {
            y.fill(0.0)
        }
    }
    impl LogPartition for Malformed {
        fn log_partition<'t, T: Scalar>(
            &self,
            _tape: &'t Tape<T>,
            eta: Var<'t, T>,
        ) -> autodiff::Result<Var<'t, T>> {
            eta.square()?.sum_rows()
        }
    }
    let z = Matrix::from_fn(3, 2, |i, j| i as f64 - j as f64);
    let sum = DerivedLoss::natural(Malformed(0));
    let err = mean_loss(&sum, &z, &z).unwrap_err().to_string();
    assert!(err.contains("malformed: loss_rows") && err.contains("2×1"), "{err}");
    let err = loss_gradient(&sum, &z, &z).unwrap_err().to_string();
    assert!(err.contains("2×1 column"), "{err}");
    let mixed = DerivedLoss::natural(Malformed(1));
    let err = apply_h_l_batch(&mixed, &z, &z, &z).unwrap_err().to_string();
    assert!(err.contains("row 0 of the result depends on row 1"), "{err}");
    // The fallible batch methods check u's shape.
    let good = DerivedLoss::natural(on_tape(Kind::BernoulliLogits));
    let err = good.h_l_rows(&z, &z, &Matrix::zeros(3, 1)).unwrap_err().to_string();
    assert!(err.contains("u of the outputs' shape 3×2"), "{err}");
}

/// The probe's values (in (0, 1)) lie outside this family's domain (`η = −λ < 0`), where the
/// square root below has a NaN derivative: the NaNs must not be taken for a dependence across
/// rows, and real outputs work.
#[test]
fn a_domain_excluding_the_probe_values_is_not_an_error() {
    /// An exponential distribution on its natural parameter `η = −λ`: `L = −η y − ln(−η)`,
    /// with `ln(−η)` written as `2 ln √(−η)`.
    struct NegativeRate;
    impl TapeLoss for NegativeRate {
        fn name(&self) -> &str {
            "exponential_natural"
        }
        fn target_dim(&self, m: usize) -> Result<usize> {
            Ok(m)
        }
        fn loss_rows<'t, T: Scalar>(
            &self,
            tape: &'t Tape<T>,
            z: Var<'t, T>,
            y: &Matrix<f64>,
        ) -> autodiff::Result<Var<'t, T>> {
            z.mul(tape.constant_f64(y))?.add(z.neg()?.sqrt()?.ln()?.scale(2.0)?)?.sum_rows()?.neg()
        }
        fn sample(&self, z: &[f64], _rng: &mut dyn RngCore, y: &mut [f64]) {
            y.iter_mut().zip(z).for_each(|(t, &v)| *t = -1.0 / v);
        }
    }
    impl LogPartition for NegativeRate {
        fn log_partition<'t, T: Scalar>(
            &self,
            _tape: &'t Tape<T>,
            eta: Var<'t, T>,
        ) -> autodiff::Result<Var<'t, T>> {
            eta.neg()?.sqrt()?.ln()?.scale(-2.0)?.sum_rows()
        }
    }
    let dist = DerivedLoss::natural(NegativeRate);
    let z = Matrix::from_fn(3, 2, |i, j| -0.5 - i as f64 - 0.3 * j as f64);
    let u = Matrix::filled(3, 2, 1.0);
    // F_R = ∇²A = 1/η² (and H_L the same).
    let f = apply_f_r_batch(&dist, &z, &u).unwrap();
    let expected: Vec<f64> = z.data().iter().map(|e| 1.0 / (3.0 * e * e)).collect();
    compare("F_R = 1/η²", f.data(), &expected, 1e-14).unwrap().assert_passed();
    let h = apply_h_l_batch(&dist, &z, &z, &u).unwrap();
    compare("H_L = 1/η²", h.data(), &expected, 1e-14).unwrap().assert_passed();
}
