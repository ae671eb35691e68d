//! Losses derived on the tape ([`curvature::loss::DerivedLoss`]) against the hand-written
//! closed forms, on random networks (quickcheck over widths, depths, batches, losses and seeds):
//! the dense Hessian, GGN, Fisher, empirical and Monte-Carlo Fishers agree to 1e-10 of their
//! largest entry, and `F = G` for the natural parameters.

use autodiff::check::compare;
use autodiff::random::{random_matrix, random_vector};
use autodiff::{Matrix, Scalar, Tape, Var};
use curvature::loss::{
    self, BernoulliLogits, DerivedLoss, LogPartition, PredictiveDistribution, SoftmaxCrossEntropy,
    SquaredError, TapeLoss,
};
use curvature::rand::{rngs::StdRng, Rng, RngCore, SeedableRng};
use curvature::{verify, Activation, LinearOperator, Mlp, Problem};
use quickcheck::{QuickCheck, TestResult};

const EXACT: f64 = 1e-10;

/// A curvature matrix by name, with the closed form's and the derived loss's operators.
type Pair<'a> = (&'static str, Box<dyn LinearOperator + 'a>, Box<dyn LinearOperator + 'a>);

/// Three natural-parameter losses written on the tape: `L` and the log-partition `A`.
#[derive(Clone, Copy)]
enum Natural {
    SquaredError,
    SoftmaxCrossEntropy,
    BernoulliLogits,
}

impl Natural {
    fn closed_form(self) -> &'static dyn PredictiveDistribution {
        match self {
            Natural::SquaredError => &SquaredError,
            Natural::SoftmaxCrossEntropy => &SoftmaxCrossEntropy,
            Natural::BernoulliLogits => &BernoulliLogits,
        }
    }
}

impl TapeLoss for Natural {
    fn name(&self) -> &str {
        self.closed_form().name()
    }
    fn target_dim(&self, output_dim: usize) -> curvature::error::Result<usize> {
        self.closed_form().target_dim(output_dim)
    }
    fn loss_rows<'t, T: Scalar>(
        &self,
        tape: &'t Tape<T>,
        z: Var<'t, T>,
        y: &Matrix<f64>,
    ) -> autodiff::Result<Var<'t, T>> {
        let y = tape.constant_f64(y);
        match self {
            Natural::SquaredError => z.sub(y)?.square()?.sum_rows()?.scale(0.5),
            Natural::SoftmaxCrossEntropy => y.mul(z.log_softmax()?)?.sum_rows()?.neg(),
            Natural::BernoulliLogits => z.softplus()?.sub(y.mul(z)?)?.sum_rows(),
        }
    }
    fn sample(&self, z: &[f64], rng: &mut dyn RngCore, y_out: &mut [f64]) {
        self.closed_form().sample(z, rng, y_out)
    }
}

impl LogPartition for Natural {
    fn log_partition<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        eta: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        match self {
            Natural::SquaredError => eta.square()?.sum_rows()?.scale(0.5),
            Natural::SoftmaxCrossEntropy => eta.log_sum_exp(),
            Natural::BernoulliLogits => eta.softplus()?.sum_rows(),
        }
    }
}

fn check(seed: u64, depth: u8, pick: u8) -> Result<(), String> {
    let kind = [Natural::SquaredError, Natural::SoftmaxCrossEntropy, Natural::BernoulliLogits]
        [pick as usize % 3];
    let closed = kind.closed_form();
    let derived = DerivedLoss::natural(kind);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sizes = vec![rng.random_range(1..=3)];
    for _ in 0..depth % 3 {
        sizes.push(rng.random_range(1..=4));
    }
    let out_dim = rng.random_range(2..=4);
    sizes.push(out_dim);
    let mut acts = vec![Activation::Tanh; sizes.len() - 2];
    acts.push(Activation::Identity);
    let mlp = Mlp::new(&sizes, &acts).map_err(|e| e.to_string())?;
    let batch = rng.random_range(1..=5);
    let x = random_matrix(batch, sizes[0], &mut rng);
    let theta: Vec<f64> =
        random_vector(mlp.num_params(), &mut rng).iter().map(|t| 0.7 * t).collect();
    let z = random_matrix(batch, out_dim, &mut rng);
    let y = loss::sample_targets(closed, &z, &mut rng).map_err(|e| e.to_string())?;
    let label = format!("{} sizes {sizes:?} batch {batch}", closed.name());

    let p_closed = Problem::new(&mlp, closed, &x, &y).map_err(|e| e.to_string())?;
    let p_derived = Problem::new(&mlp, &derived, &x, &y).map_err(|e| e.to_string())?;
    let a = p_closed.at(&theta).map_err(|e| e.to_string())?;
    let b = p_derived.at(&theta).map_err(|e| e.to_string())?;
    let pairs: [Pair<'_>; 5] = [
        ("H", Box::new(a.hessian()), Box::new(b.hessian())),
        ("G", Box::new(a.ggn()), Box::new(b.ggn())),
        ("F", Box::new(a.fisher()), Box::new(b.fisher())),
        ("empirical F", Box::new(a.empirical_fisher()), Box::new(b.empirical_fisher())),
        (
            "MC Fisher",
            Box::new(a.monte_carlo_fisher(3, seed).map_err(|e| e.to_string())?),
            Box::new(b.monte_carlo_fisher(3, seed).map_err(|e| e.to_string())?),
        ),
    ];
    for (what, closed_op, derived_op) in pairs {
        let report = verify::check_equal(what, derived_op.as_ref(), closed_op.as_ref(), EXACT)
            .map_err(|e| e.to_string())?;
        if !report.passed() {
            return Err(format!("{label}: {report}"));
        }
    }
    let gradient = compare(
        "∇h",
        &b.gradient().map_err(|e| e.to_string())?,
        &a.gradient().map_err(|e| e.to_string())?,
        EXACT,
    )
    .map_err(|e| e.to_string())?;
    let fisher_ggn =
        verify::check_fisher_equals_ggn(&p_derived, &theta, EXACT).map_err(|e| e.to_string())?;
    for report in [gradient, fisher_ggn] {
        if !report.passed() {
            return Err(format!("{label}: {report}"));
        }
    }
    Ok(())
}

#[test]
fn derived_losses_give_the_closed_forms_curvature_on_random_networks() {
    fn prop(seed: u64, depth: u8, pick: u8) -> TestResult {
        match check(seed, depth, pick) {
            Ok(()) => TestResult::passed(),
            Err(msg) => TestResult::error(msg),
        }
    }
    QuickCheck::new().tests(40).quickcheck(prop as fn(u64, u8, u8) -> TestResult);
}
