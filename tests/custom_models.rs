//! Researchers' own layered models (quickcheck over architectures and seeds): networks of one
//! width whose hidden layers may reuse an earlier layer's weight block, add a residual
//! connection, and use a user-defined nonlinearity. For each, `check_model` passes and
//! `H = G + C + Cᵀ + activation term` holds term by term (`check_hessian_decomposition`, whose
//! reference `H` comes from a dual pass that shares no code with the decomposition), and the
//! pass's fused `H v` equals its dual `H v`.

use autodiff::random::{random_matrix, random_vector};
use autodiff::{Matrix, Scalar, Tape, Var};
use curvature::loss::{PredictiveDistribution, SoftmaxCrossEntropy, SquaredError};
use curvature::model::{Elementwise, LayerVars, Model, Nonlinearity};
use curvature::{verify, Activation, Problem};
use quickcheck::{QuickCheck, TestResult};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::ops::Range;
use std::sync::Arc;

/// `φ(s) = s + sin s`.
#[derive(Clone, Debug)]
struct SinPlus;

impl Elementwise for SinPlus {
    fn name(&self) -> &str {
        "s + sin s"
    }
    fn phi<T: Scalar>(&self, s: T) -> T {
        s + s.sin()
    }
    fn dphi<T: Scalar>(&self, s: T) -> T {
        T::one() + s.cos()
    }
    fn d2phi<T: Scalar>(&self, s: T) -> T {
        -s.sin()
    }
}

/// A hidden layer: its φ (`None` for [`SinPlus`]), which earlier hidden layer's weights it
/// reuses (if any), and whether its input is the previous output plus the one before.
#[derive(Clone, Debug)]
struct Hidden {
    activation: Option<Activation>,
    shares_with: Option<usize>,
    residual: bool,
}

/// `x (N×w) → hidden layers of width w → output (m_out)`; θ holds each hidden layer's own
/// `W` (unless shared) and `b`, then the output `W`, `b`.
#[derive(Debug)]
struct Tied {
    width: usize,
    out: usize,
    hidden: Vec<Hidden>,
    weights: Vec<Range<usize>>,
    biases: Vec<Range<usize>>,
    n: usize,
}

impl Tied {
    fn new(width: usize, out: usize, hidden: Vec<Hidden>) -> Self {
        let (mut weights, mut biases, mut next): (Vec<Range<usize>>, Vec<Range<usize>>, usize) =
            (Vec::new(), Vec::new(), 0);
        let mut take = |len: usize| {
            next += len;
            next - len..next
        };
        for h in &hidden {
            let w = match h.shares_with {
                Some(j) => weights[j].clone(),
                None => take(width * width),
            };
            weights.push(w);
            biases.push(take(width));
        }
        weights.push(take(out * width));
        biases.push(take(out));
        Tied { width, out, hidden, weights, biases, n: next }
    }

    fn layers<'t, T: Scalar>(
        &self,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Vec<LayerVars<'t, T>>> {
        let w = self.width;
        let mut layers: Vec<LayerVars<'t, T>> = Vec::new();
        let (mut previous, mut before) = (x, x);
        for (i, h) in self.hidden.iter().enumerate() {
            let input = if h.residual { previous.add(before)? } else { previous };
            let weights = theta.slice(self.weights[i].start, w, w)?;
            let s = input.affine(weights, theta.slice(self.biases[i].start, 1, w)?)?;
            let (a, activation): (_, Arc<dyn Nonlinearity>) = match h.activation {
                Some(act) => (act.apply(s)?, act.into()),
                None => (SinPlus.record(s)?, Arc::new(SinPlus)),
            };
            layers.push(LayerVars {
                input,
                s,
                a,
                activation,
                weights: self.weights[i].clone(),
                biases: self.biases[i].clone(),
            });
            (before, previous) = (previous, a);
        }
        let last = self.hidden.len();
        let weights = theta.slice(self.weights[last].start, self.out, w)?;
        let s = previous.affine(weights, theta.slice(self.biases[last].start, 1, self.out)?)?;
        layers.push(LayerVars {
            input: previous,
            s,
            a: s,
            activation: Activation::Identity.into(),
            weights: self.weights[last].clone(),
            biases: self.biases[last].clone(),
        });
        Ok(layers)
    }
}

impl Model for Tied {
    fn num_params(&self) -> usize {
        self.n
    }
    fn forward<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        Ok(self.layers(theta, x)?.last().expect("an output layer").a)
    }
    fn forward_layers<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Option<Vec<LayerVars<'t, T>>>> {
        self.layers(theta, x).map(Some)
    }
}

#[test]
fn tied_residual_networks_with_a_users_nonlinearity_decompose_exactly() {
    fn prop(seed: u64) -> TestResult {
        let mut rng = StdRng::seed_from_u64(seed);
        let (width, out) = (rng.random_range(1..=3), rng.random_range(2..=3));
        let pool =
            [None, Some(Activation::Tanh), Some(Activation::Logistic), Some(Activation::Softplus)];
        let depth = rng.random_range(1..=3);
        let hidden: Vec<Hidden> = (0..depth)
            .map(|i| Hidden {
                activation: pool[rng.random_range(0..pool.len())],
                shares_with: (i > 0 && rng.random_bool(0.6)).then(|| rng.random_range(0..i)),
                residual: i > 0 && rng.random_bool(0.5),
            })
            .collect();
        let model = Tied::new(width, out, hidden);
        let batch = rng.random_range(1..=4);
        let x = random_matrix(batch, width, &mut rng);
        let theta: Vec<f64> = random_vector(model.n, &mut rng).iter().map(|t| 0.8 * t).collect();
        let classify = rng.random_bool(0.5);
        let (loss, y): (&dyn PredictiveDistribution, Matrix<f64>) = if classify {
            let y =
                Matrix::from_fn(
                    batch,
                    out,
                    |i, j| if (i + seed as usize) % out == j { 1.0 } else { 0.0 },
                );
            (&SoftmaxCrossEntropy, y)
        } else {
            (&SquaredError, random_matrix(batch, out, &mut rng))
        };
        let problem = Problem::new(&model, loss, &x, &y).unwrap();
        // A softmax saturated to within 1e-6 of one class has H_L entries of that size computed
        // from differences of O(1) probabilities: two exact evaluations of G then agree only to
        // ~1e-16/1e-6 relative, outside the 1e-10 asked here (the closed-form H_L is exact to
        // round-off in absolute terms, not relative to its tiny entries). Such draws (residual
        // softplus chains can reach logits of 20+) are discarded, not checked loosely.
        if classify {
            let z = problem.at(&theta).unwrap().output().clone();
            let saturated = (0..batch).any(|i| {
                let row = z.row(i);
                let top = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                row.iter().map(|v| (v - top).exp()).sum::<f64>() - 1.0 < 1e-6
            });
            if saturated {
                return TestResult::discard();
            }
        }
        let label = format!("seed {seed}: {model:?}, loss {}", loss.name());
        let model_report = verify::check_model(&problem, &theta, 1e-8).unwrap();
        if !model_report.passed() {
            return TestResult::error(format!("{label}\n{model_report}"));
        }
        let report = verify::check_hessian_decomposition(&problem, &theta, 1e-10).unwrap();
        if !report.passed() {
            return TestResult::error(format!("{label}\n{report}"));
        }
        // The pass's fused `H v` (tangent + reverse sweep over the recorded tape, shared
        // weights and residual inputs included) against its dual `H v`, to 1e-12 relative.
        let pass = problem.at(&theta).unwrap();
        for _ in 0..2 {
            let v = random_vector(model.n, &mut rng);
            let fused = pass.hessian_vector_product(&v).unwrap();
            let dual = pass.dual_hessian_vector_product(&v).unwrap();
            let scale = dual.iter().chain(&fused).fold(1e-300_f64, |m, x| m.max(x.abs()));
            let d = fused.iter().zip(&dual).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            if d > 1e-12 * scale {
                return TestResult::error(format!("{label}: fused vs dual H v {:e}", d / scale));
            }
        }
        TestResult::passed()
    }
    QuickCheck::new().tests(40).quickcheck(prop as fn(u64) -> TestResult);
}
