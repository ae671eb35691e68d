//! [`ConvNet`]'s layout, and its curvature against independent references: the Hessian
//! assembled from `H eⱼ` against central differences of the gradient (1e-9 norm-wise
//! relative, Richardson-extrapolated; 2e-12 observed), `J v` against differences (1e-8) and the adjoint
//! identity (1e-12), `H = G + residual` (eqn 6, 1e-10), G symmetric PSD, `F = G` for softmax
//! cross-entropy on logits (Section 9.2, 1e-12), and the block-diagonal restriction keeping
//! exactly the per-layer blocks.

use super::*;
use crate::loss::{self, SoftmaxCrossEntropy};
use crate::operator::{layer_blocks, LinearOperator};
use crate::{verify, CurvatureKind, Problem};
use autodiff::check::{central_difference, compare};
use autodiff::random::{random_matrix, random_vector};
use autodiff::Matrix;
use rand::{rngs::StdRng, SeedableRng};

/// 1×3×3 images, 2 filters 2×2 with stride 2 and padding 1 (2×2 positions), tanh, layer norm,
/// 3 logits: 8 + 2 + 2·8 + 3·8 + 3 = 53 parameters (the dense eigen-decomposition of the PSD
/// check is cubic in n).
fn small_net(layer_norm: bool) -> ConvNet {
    let g = Conv2d::new(1, 3, 3, (2, 2), 2, 1).unwrap();
    let net = ConvNet::new(g, 2, Activation::Tanh, 3).unwrap();
    if layer_norm {
        net.with_layer_norm(1e-2).unwrap()
    } else {
        net
    }
}

/// A batch with targets drawn from the model's own softmax at θ.
fn data(net: &ConvNet, seed: u64) -> (Matrix<f64>, Matrix<f64>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = random_matrix(5, net.input_dim(), &mut rng);
    let theta: Vec<f64> =
        random_vector(net.num_params(), &mut rng).iter().map(|t| 0.5 * t).collect();
    let tape = autodiff::Tape::<f64>::new();
    let th = tape.input(Matrix::column(theta.clone()));
    let z = net.forward(&tape, th, tape.constant(x.clone())).unwrap().value();
    let y = loss::sample_targets(&SoftmaxCrossEntropy, &z, &mut rng).unwrap();
    (x, y, theta)
}

#[test]
fn layout_is_contiguous_and_covers_theta() {
    for layer_norm in [false, true] {
        let net = small_net(layer_norm);
        let blocks = net.parameter_blocks();
        let mut next = 0;
        for b in &blocks {
            assert_eq!(b.range.start, next, "{} not contiguous", b.name);
            next = b.range.end;
        }
        assert_eq!(next, net.num_params());
        let want = 8 + 2 + if layer_norm { 16 } else { 0 } + 24 + 3;
        assert_eq!(net.num_params(), want);
        assert_eq!(layer_blocks(&net).len(), if layer_norm { 3 } else { 2 });
        assert!(net.describe_layout().contains("kernel (2x4 row-major) at [0, 8)"));
    }
}

#[test]
fn bad_configurations_are_errors() {
    let g = Conv2d::new(1, 4, 4, (2, 2), 1, 0).unwrap();
    let err = ConvNet::new(g, 0, Activation::Tanh, 3).unwrap_err().to_string();
    assert!(err.contains("ConvNet::new") && err.contains("one filter"), "{err}");
    let err = ConvNet::new(g, 2, Activation::Softmax, 3).unwrap_err().to_string();
    assert!(err.contains("elementwise"), "{err}");
    let err = ConvNet::new(g, 2, Activation::Tanh, 3).unwrap().with_layer_norm(0.0).unwrap_err();
    assert!(err.to_string().contains("epsilon"), "{err}");
    // A batch of the wrong width: the convolution names itself and the shapes.
    let net = small_net(true);
    let x = Matrix::zeros(2, 15);
    let y = Matrix::from_fn(2, 3, |_, j| if j == 0 { 1.0 } else { 0.0 });
    let problem = Problem::new(&net, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let err = problem.at(&vec![0.1; net.num_params()]).err().expect("wrong width").to_string();
    assert!(err.contains("im2col") && err.contains("2×15") && err.contains("2×9"), "{err}");
}

#[test]
fn hessian_from_products_matches_differences_of_the_gradient() {
    let net = small_net(true);
    let (x, y, theta) = data(&net, 3);
    let problem = Problem::new(&net, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let h = problem.at(&theta).unwrap().hessian().to_dense().unwrap();
    let n = net.num_params();
    let mut e = vec![0.0; n];
    let mut reference = Matrix::zeros(n, n);
    for j in 0..n {
        e[j] = 1.0;
        let column = central_difference(1e-3, |t| {
            let shifted: Vec<f64> = theta.iter().zip(&e).map(|(a, b)| a + t * b).collect();
            Ok(problem.at(&shifted).and_then(|p| p.gradient()).unwrap())
        })
        .unwrap();
        e[j] = 0.0;
        for (i, d) in column.into_iter().enumerate() {
            reference[(i, j)] = d;
        }
    }
    compare("H (columns H e_j) vs differences of the gradient", h.data(), reference.data(), 1e-9)
        .unwrap()
        .assert_passed();
    let asym = compare("H vs Hᵀ", h.data(), h.transpose().data(), 1e-12).unwrap();
    asym.assert_passed();
}

#[test]
fn first_order_products_and_eqn_6_hold() {
    for layer_norm in [false, true] {
        let net = small_net(layer_norm);
        let (x, y, theta) = data(&net, 11);
        let problem = Problem::new(&net, &SoftmaxCrossEntropy, &x, &y).unwrap();
        let mut rng = StdRng::seed_from_u64(12);
        let v = random_vector(net.num_params(), &mut rng);
        let u = random_matrix(x.rows(), 3, &mut rng);
        verify::check_jacobian_vector_product(&problem, &theta, &v, 1e-8).unwrap().assert_passed();
        verify::check_adjoint(&problem, &theta, &u, &v, 1e-12).unwrap().assert_passed();
        verify::check_ggn_residual_identity(&problem, &theta, 1e-10).unwrap().assert_passed();
    }
}

#[test]
fn ggn_is_symmetric_psd_and_equals_the_fisher() {
    let net = small_net(true);
    let (x, y, theta) = data(&net, 5);
    let problem = Problem::new(&net, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let pass = problem.at(&theta).unwrap();
    verify::check_symmetric(&pass.ggn(), 1e-12).unwrap().assert_passed();
    verify::check_positive_semidefinite(&pass.ggn(), 1e-12).unwrap().assert_passed();
    verify::check_fisher_equals_ggn(&problem, &theta, 1e-12).unwrap().assert_passed();
    // The GGN of a conv net with more parameters than outputs·batch is singular, and not 0.
    let g = pass.ggn().to_dense().unwrap();
    assert!(g.data().iter().any(|v| v.abs() > 1e-6));
}

#[test]
fn block_diagonal_ggn_keeps_exactly_the_layer_blocks() {
    let net = small_net(true);
    let (x, y, theta) = data(&net, 7);
    let problem = Problem::new(&net, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let pass = problem.at(&theta).unwrap();
    let full = pass.ggn().to_dense().unwrap();
    let kind = CurvatureKind::BlockDiagonal(Box::new(CurvatureKind::Ggn));
    let blocked = pass.operator(&kind).unwrap().to_dense().unwrap();
    let ranges = layer_blocks(&net);
    let block_of = |i: usize| ranges.iter().position(|r| r.contains(&i)).unwrap();
    let n = net.num_params();
    let want =
        Matrix::from_fn(n, n, |i, j| if block_of(i) == block_of(j) { full[(i, j)] } else { 0.0 });
    compare("block-diagonal G", blocked.data(), want.data(), 1e-12).unwrap().assert_passed();
    // The restriction removed something: the conv and dense blocks are coupled in G.
    assert!(full.data().iter().zip(blocked.data()).any(|(a, b)| (a - b).abs() > 1e-6));
}

/// The batch split over threads (row blocks of images) gives the same products: the
/// convolution's gathers and the layer norm act per row, so the blocks only reorder sums.
#[test]
fn sharded_products_equal_the_whole_batch() {
    let net = small_net(true);
    let (x, y, theta) = data(&net, 13);
    let problem = Problem::new(&net, &SoftmaxCrossEntropy, &x, &y).unwrap();
    let sharded = crate::ShardedProblem::new(&problem, 2).unwrap();
    let v = random_vector(net.num_params(), &mut StdRng::seed_from_u64(14));
    let (whole, split) = (problem.at(&theta).unwrap(), sharded.at(&theta).unwrap());
    let pairs = [
        ("gradient", whole.gradient().unwrap(), split.gradient().unwrap()),
        (
            "H v",
            whole.hessian_vector_product(&v).unwrap(),
            split.hessian_vector_product(&v).unwrap(),
        ),
        ("G v", whole.ggn_vector_product(&v).unwrap(), split.ggn_vector_product(&v).unwrap()),
    ];
    for (what, a, b) in pairs {
        compare(&format!("sharded {what}"), &b, &a, 1e-12).unwrap().assert_passed();
    }
}
