//! The layers researchers expect: 2-D convolution (im2col on the tape) and layer normalization.
//!
//! - values: `conv2d` against a direct loop over an explicitly zero-padded image (1e-14
//!   relative); layer norm rows with zero mean and unit variance (`ε = 0`), or variance
//!   `σ²/(σ² + ε)`, to 1e-14;
//! - `J v`, `Jᵀ u` against central differences (1e-8 norm-wise relative, Richardson-extrapolated
//!   differences of `check`), the adjoint identity `⟨u, J v⟩ = ⟨Jᵀ u, v⟩` and the tangent sweep
//!   against the dual forward pass (1e-12);
//! - `H v` (forward-over-reverse) of a scalar through the op against central differences of the
//!   gradient (1e-8), and the dense Hessian from `H eⱼ` against forward-over-forward (1e-12);
//! - wrong shapes: errors naming the op and the shapes.

mod common;

use autodiff::check::{
    check_adjoint, check_hessian_vector_product, check_jacobian_vector_product,
    check_transpose_jacobian_vector_product, compare,
};
use autodiff::modes::{self, Function};
use autodiff::random::{random_matrix, random_vector};
use autodiff::{Conv2d, Matrix, Result, Scalar, Tape, Var};
use common::*;
use quickcheck::{QuickCheck, TestResult};

const FD_TOL: f64 = 1e-8;
const EXACT_TOL: f64 = 1e-12;

/// A geometry from four small numbers: 1-2 channels, 3-5 pixels a side, 1-3 kernels a side
/// (not square in general), stride 1-2, padding 0-1.
fn geometry(c: u8, h: u8, w: u8, k: u8) -> Conv2d {
    let (c, h, w) = (1 + c as usize % 2, 3 + h as usize % 3, 3 + w as usize % 3);
    let (kh, kw) = (1 + k as usize % 3, 1 + (k as usize / 3) % 3);
    let stride = 1 + (k as usize / 9) % 2;
    let padding = (k as usize / 18) % 2;
    Conv2d::new(c, h, w, (kh, kw), stride, padding).unwrap()
}

/// `y[n, f, oy, ox] = b_f + Σ K[f, c, i, j] x[n, c, oy·s + i − p, ox·s + j − p]` by building
/// the zero-padded image first and looping over it: no index table, no gather.
fn direct_convolution(
    x: &Matrix<f64>,
    kernel: &Matrix<f64>,
    bias: &[f64],
    g: &Conv2d,
) -> Matrix<f64> {
    let (c, h, w, p) = (g.channels(), g.height(), g.width(), g.padding());
    let (kh, kw, s) = (g.kernel_height(), g.kernel_width(), g.stride());
    let (ph, pw) = (h + 2 * p, w + 2 * p);
    let (oh, ow) = ((ph - kh) / s + 1, (pw - kw) / s + 1);
    let filters = kernel.rows();
    let mut out = Matrix::zeros(x.rows(), filters * oh * ow);
    for n in 0..x.rows() {
        let mut padded = vec![0.0; c * ph * pw];
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    padded[(ch * ph + y + p) * pw + xx + p] = x[(n, (ch * h + y) * w + xx)];
                }
            }
        }
        for f in 0..filters {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut sum = bias[f];
                    for ch in 0..c {
                        for i in 0..kh {
                            for j in 0..kw {
                                sum += kernel[(f, (ch * kh + i) * kw + j)]
                                    * padded[(ch * ph + oy * s + i) * pw + ox * s + j];
                            }
                        }
                    }
                    out[(n, (f * oh + oy) * ow + ox)] = sum;
                }
            }
        }
    }
    out
}

#[test]
fn conv2d_equals_a_direct_convolution_loop() {
    fn prop(c: u8, h: u8, w: u8, k: u8, filters: u8, seed: u64) -> TestResult {
        let g = geometry(c, h, w, k);
        let (batch, filters) = (2, 1 + filters as usize % 3);
        let mut rng = rng(seed);
        let x = random_matrix(batch, g.input_len(), &mut rng);
        let kernel = random_matrix(filters, g.patch_len(), &mut rng);
        let bias = random_vector(filters, &mut rng);
        let tape = Tape::<f64>::new();
        let y = tape
            .constant(x.clone())
            .conv2d(
                tape.input(kernel.clone()),
                tape.input(Matrix::from_vec(1, filters, bias.clone()).unwrap()),
                &g,
            )
            .unwrap()
            .value();
        let want = direct_convolution(&x, &kernel, &bias, &g);
        assert_eq!(y.shape(), want.shape(), "{g}");
        let rep =
            compare(&format!("conv2d vs direct loop, {g}"), y.data(), want.data(), 1e-14).unwrap();
        if rep.passed() {
            TestResult::passed()
        } else {
            TestResult::error(rep.to_string())
        }
    }
    QuickCheck::new().tests(60).quickcheck(prop as fn(u8, u8, u8, u8, u8, u64) -> TestResult);
}

/// im2col on its own: with a one-hot kernel (filter `q` picks patch element `q`) the
/// convolution returns every patch, so row `n·P + p` of im2col is column block `p` of the
/// direct loop's output, exactly.
#[test]
fn im2col_rows_are_the_patches_of_the_direct_loop() {
    let g = Conv2d::new(2, 4, 5, (2, 3), 2, 1).unwrap();
    let x = random_matrix(3, g.input_len(), &mut rng(4));
    let q = g.patch_len();
    let one_hot = Matrix::from_fn(q, q, |i, j| if i == j { 1.0 } else { 0.0 });
    let patches = direct_convolution(&x, &one_hot, &vec![0.0; q], &g);
    let tape = Tape::<f64>::new();
    let cols = tape.constant(x.clone()).im2col(&g).unwrap().value();
    let positions = g.positions();
    assert_eq!(cols.shape(), autodiff::Shape::new(3 * positions, q));
    for n in 0..3 {
        for p in 0..positions {
            for e in 0..q {
                assert_eq!(cols[(n * positions + p, e)], patches[(n, e * positions + p)]);
            }
        }
    }
    // Padding reads as zero: the first position's patch overhangs the top-left corner.
    assert_eq!(cols[(0, 0)], 0.0);
}

/// θ = [vec(x) (N × CHW), vec(K) (F × C·k_h·k_w), b (F)], output `conv2d(x, K, b)`: every
/// input of the op is differentiated.
struct ConvFn {
    g: Conv2d,
    batch: usize,
    filters: usize,
}

impl ConvFn {
    fn n(&self) -> usize {
        self.batch * self.g.input_len() + self.filters * (self.g.patch_len() + 1)
    }
}

impl Function for ConvFn {
    fn eval<'t, T: Scalar>(&self, _tape: &'t Tape<T>, theta: Var<'t, T>) -> Result<Var<'t, T>> {
        let x = theta.slice(0, self.batch, self.g.input_len())?;
        let k_start = self.batch * self.g.input_len();
        let kernel = theta.slice(k_start, self.filters, self.g.patch_len())?;
        let bias = theta.slice(k_start + self.filters * self.g.patch_len(), 1, self.filters)?;
        x.conv2d(kernel, bias, &self.g)
    }
}

/// θ = [vec(x) (N × n), γ (n), β (n)], output `layer_norm(x; γ, β, ε)`.
struct LayerNormFn {
    rows: usize,
    cols: usize,
    epsilon: f64,
}

impl Function for LayerNormFn {
    fn eval<'t, T: Scalar>(&self, _tape: &'t Tape<T>, theta: Var<'t, T>) -> Result<Var<'t, T>> {
        let (m, n) = (self.rows, self.cols);
        let x = theta.slice(0, m, n)?;
        x.layer_norm(theta.slice(m * n, 1, n)?, theta.slice(m * n + n, 1, n)?, self.epsilon)
    }
}

/// `Σ W ⊙ (y² + tanh y)` of an op's output `y`: a scalar with a Hessian that is not trivially
/// zero even for a linear op.
struct Weighted<'a, F> {
    inner: &'a F,
    weights: Matrix<f64>,
}

impl<F: Function> Function for Weighted<'_, F> {
    fn eval<'t, T: Scalar>(&self, tape: &'t Tape<T>, theta: Var<'t, T>) -> Result<Var<'t, T>> {
        let out = self.inner.eval(tape, theta)?;
        out.square()?.add(out.tanh()?)?.mul(tape.constant_f64(&self.weights))?.sum()
    }
}

/// Every product of `f` at a random point: first order against differences and each other,
/// second order against differences of the gradient and forward-over-forward.
fn check_products<F: Function>(
    f: &F,
    n: usize,
    seed: u64,
    ctx: &str,
) -> std::result::Result<(), String> {
    let mut rng = rng(seed);
    let theta = values_away_from_zero(n, 0.3, &mut rng);
    let v = random_vector(n, &mut rng);
    let out = modes::value(f, &theta).map_err(|e| e.to_string())?;
    let u = random_matrix(out.rows(), out.cols(), &mut rng);
    let mut reports = vec![
        check_jacobian_vector_product(f, &theta, &v, FD_TOL),
        check_transpose_jacobian_vector_product(f, &theta, &u, FD_TOL),
        check_adjoint(f, &theta, &u, &v, EXACT_TOL),
    ];
    // The tangent sweep over the recorded f64 tape against the dual forward pass.
    let tape = Tape::<f64>::new();
    let th = tape.input(Matrix::column(theta.clone()));
    let y = f.eval(&tape, th).map_err(|e| e.to_string())?;
    let sweep = tape.tangents([(th, Matrix::column(v.clone()))]).map_err(|e| e.to_string())?;
    let (_, jv) = modes::jacobian_vector_product(f, &theta, &v).map_err(|e| e.to_string())?;
    reports.push(compare(
        "tangent sweep vs dual J v",
        sweep.of_or_zeros(y).data(),
        jv.data(),
        EXACT_TOL,
    ));
    let weighted = Weighted { inner: f, weights: random_matrix(out.rows(), out.cols(), &mut rng) };
    reports.push(check_hessian_vector_product(&weighted, &theta, &v, FD_TOL));
    for rep in reports {
        let rep = rep.map_err(|e| format!("{ctx}: {e}"))?;
        if !rep.passed() {
            return Err(format!("{ctx}: {rep}"));
        }
    }
    let h = modes::dense_hessian(&weighted, &theta).map_err(|e| e.to_string())?;
    let h_ff = hessian_forward_over_forward(&weighted, &theta);
    let scale = max_abs(&h_ff).max(1e-300);
    let (diff, asym) = (max_abs_diff(&h, &h_ff) / scale, max_abs_diff(&h, &h.transpose()) / scale);
    if diff > EXACT_TOL || asym > EXACT_TOL {
        return Err(format!("{ctx}: dense H vs forward-over-forward {diff:e}, asymmetry {asym:e}"));
    }
    Ok(())
}

#[test]
fn conv2d_products_match_finite_differences_and_each_other() {
    fn prop(c: u8, k: u8, filters: u8, seed: u64) -> TestResult {
        // Small images (3×3 or 4×3): the forward-over-forward Hessian is n² dual² passes.
        let g = geometry(c % 2, 0, k % 2, k);
        let f = ConvFn { g, batch: 2, filters: 1 + filters as usize % 2 };
        match check_products(&f, f.n(), seed, &format!("conv2d {g}, {} filters", f.filters)) {
            Ok(()) => TestResult::passed(),
            Err(msg) => TestResult::error(msg),
        }
    }
    QuickCheck::new().tests(12).quickcheck(prop as fn(u8, u8, u8, u64) -> TestResult);
}

/// The pieces on their own: `im2col(x)` (θ = vec(x)), and the broadcasts `repeat_row` and
/// `repeat_column` (θ = a row or a column), each through every product check.
struct PieceFn {
    piece: Piece,
}

#[derive(Clone, Copy, Debug)]
enum Piece {
    Im2col(Conv2d),
    RepeatRow(usize, usize),
    RepeatColumn(usize, usize),
}

impl PieceFn {
    fn n(&self) -> usize {
        match self.piece {
            Piece::Im2col(g) => 2 * g.input_len(),
            Piece::RepeatRow(n, _) | Piece::RepeatColumn(n, _) => n,
        }
    }
}

impl Function for PieceFn {
    fn eval<'t, T: Scalar>(&self, _tape: &'t Tape<T>, theta: Var<'t, T>) -> Result<Var<'t, T>> {
        match self.piece {
            Piece::Im2col(g) => theta.slice(0, 2, g.input_len())?.im2col(&g),
            Piece::RepeatRow(n, m) => theta.slice(0, 1, n)?.repeat_row(m),
            Piece::RepeatColumn(_, m) => theta.repeat_column(m),
        }
    }
}

#[test]
fn im2col_and_broadcast_products_match_finite_differences_and_each_other() {
    fn prop(c: u8, k: u8, m: u8, seed: u64) -> TestResult {
        let (n, m) = (1 + c as usize % 4, 1 + m as usize % 3);
        let pieces = [
            Piece::Im2col(geometry(c % 2, 0, k % 2, k)),
            Piece::RepeatRow(n, m),
            Piece::RepeatColumn(n, m),
        ];
        for piece in pieces {
            let f = PieceFn { piece };
            if let Err(msg) = check_products(&f, f.n(), seed, &format!("{piece:?}")) {
                return TestResult::error(msg);
            }
        }
        TestResult::passed()
    }
    QuickCheck::new().tests(12).quickcheck(prop as fn(u8, u8, u8, u64) -> TestResult);
}

#[test]
fn layer_norm_products_match_finite_differences_and_each_other() {
    fn prop(rows: u8, cols: u8, seed: u64) -> TestResult {
        let f =
            // ε = 0.1 keeps the normalization moderately curved: with ε ≪ σ² and two nearly equal
        // features, x ↦ (x − μ)/σ bends on the scale of their difference and the differences'
        // truncation error, not the products, exceeds 1e-8 (the exact checks pass there too).
        LayerNormFn { rows: 1 + rows as usize % 3, cols: 2 + cols as usize % 4, epsilon: 0.1 };
        let n = f.rows * f.cols + 2 * f.cols;
        match check_products(&f, n, seed, &format!("layer_norm {}×{}", f.rows, f.cols)) {
            Ok(()) => TestResult::passed(),
            Err(msg) => TestResult::error(msg),
        }
    }
    QuickCheck::new().tests(30).quickcheck(prop as fn(u8, u8, u64) -> TestResult);
}

#[test]
fn layer_norm_rows_have_zero_mean_and_unit_variance() {
    let (m, n) = (4, 7);
    let x = random_matrix(m, n, &mut rng(9)).map(|v| 3.0 * v + 1.5);
    for epsilon in [0.0, 0.25] {
        let tape = Tape::<f64>::new();
        let ones = tape.constant(Matrix::filled(1, n, 1.0));
        let zeros = tape.constant(Matrix::zeros(1, n));
        let y = tape.constant(x.clone()).layer_norm(ones, zeros, epsilon).unwrap().value();
        for r in 0..m {
            let mean_x = x.row(r).iter().sum::<f64>() / n as f64;
            let var_x = x.row(r).iter().map(|v| (v - mean_x).powi(2)).sum::<f64>() / n as f64;
            let mean = y.row(r).iter().sum::<f64>() / n as f64;
            let var = y.row(r).iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            assert!(mean.abs() < 1e-14, "row {r}, ε {epsilon}: mean {mean:e}");
            let want = var_x / (var_x + epsilon);
            assert!(
                (var - want).abs() < 1e-14 * want,
                "row {r}, ε {epsilon}: variance {var} vs {want}"
            );
        }
    }
    // γ and β act per feature, after the normalization.
    let tape = Tape::<f64>::new();
    let gamma = Matrix::from_fn(1, n, |_, j| 0.5 + j as f64);
    let beta = Matrix::from_fn(1, n, |_, j| -(j as f64));
    let xv = tape.constant(x.clone());
    let plain = xv
        .layer_norm(
            tape.constant(Matrix::filled(1, n, 1.0)),
            tape.constant(Matrix::zeros(1, n)),
            0.1,
        )
        .unwrap()
        .value();
    let affine = xv
        .layer_norm(tape.constant(gamma.clone()), tape.constant(beta.clone()), 0.1)
        .unwrap()
        .value();
    for r in 0..m {
        for j in 0..n {
            let want = gamma[(0, j)] * plain[(r, j)] + beta[(0, j)];
            assert!((affine[(r, j)] - want).abs() < 1e-14 * (1.0 + want.abs()));
        }
    }
}

fn error_of(r: Result<Var<'_, f64>>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[test]
fn wrong_shapes_are_errors_naming_the_op_and_shapes() {
    let g = Conv2d::new(2, 4, 4, (3, 3), 1, 0).unwrap();
    let tape = Tape::<f64>::new();
    let x = tape.constant(Matrix::zeros(3, 31));
    let err = error_of(x.im2col(&g));
    assert!(err.contains("im2col") && err.contains("3×31") && err.contains("3×32"), "{err}");
    let x = tape.constant(Matrix::zeros(3, 32));
    let err =
        error_of(x.conv2d(tape.input(Matrix::zeros(4, 17)), tape.input(Matrix::zeros(1, 4)), &g));
    assert!(
        err.contains("conv2d (kernel") && err.contains("4×17") && err.contains("4×18"),
        "{err}"
    );
    let err =
        error_of(x.conv2d(tape.input(Matrix::zeros(4, 18)), tape.input(Matrix::zeros(1, 3)), &g));
    assert!(err.contains("conv2d (kernel vs bias)") && err.contains("1×3"), "{err}");

    let err = Conv2d::new(2, 4, 4, (0, 3), 1, 0).unwrap_err().to_string();
    assert!(err.contains("conv2d") && err.contains("kernel_height is zero"), "{err}");
    let err = Conv2d::new(1, 2, 2, (3, 3), 1, 0).unwrap_err().to_string();
    assert!(err.contains("larger than the padded image"), "{err}");
    let err = Conv2d::new(1, 2, 2, (1, 1), 0, 0).unwrap_err().to_string();
    assert!(err.contains("stride is zero"), "{err}");
    // The padding counts: a 3×3 window fits a 2×2 image padded by 1.
    assert!(Conv2d::new(1, 2, 2, (3, 3), 1, 1).is_ok());

    let y = tape.constant(Matrix::zeros(2, 5));
    let (ok, bad) = (tape.constant(Matrix::zeros(1, 5)), tape.constant(Matrix::zeros(1, 4)));
    let err = error_of(y.layer_norm(bad, ok, 1e-5));
    assert!(
        err.contains("layer_norm (input vs gamma") && err.contains("2×5") && err.contains("1×4"),
        "{err}"
    );
    let err = error_of(y.layer_norm(ok, bad, 1e-5));
    assert!(err.contains("layer_norm (input vs beta"), "{err}");
    let err = error_of(y.layer_norm(ok, ok, -1.0));
    assert!(err.contains("layer_norm") && err.contains("epsilon"), "{err}");
    let err = error_of(y.repeat_row(3));
    assert!(err.contains("repeat_row") && err.contains("2×5"), "{err}");
    let err = error_of(y.repeat_column(3));
    assert!(err.contains("repeat_column") && err.contains("2×5"), "{err}");
}
