//! The reverse rule of every built-in op: given the adjoint `ḡ` of a node, add `J_{x}ᵀ ḡ` into
//! the adjoint of each operand `x` that needs one.
//!
//! The rules are plain functions generic over the scalar: run on a tape of dual numbers they
//! differentiate themselves, which is how the sweep over a `Dual<f64>` tape yields `H v`.

use super::{log_softmax, Op, UnaryFn};
use crate::buffers;
use crate::error::Result;
use crate::matrix::{MatMut, MatRef, Matrix};
use crate::scalar::Scalar;
use crate::tape::{self, Node};
use smallvec::SmallVec;

/// Adjoint storage: one optional matrix per node, created on first contribution.
pub(crate) type Adjoints<T> = Vec<Option<Matrix<T>>>;

/// Where the contributions to adjoints go. With `redirect` (a sweep that keeps only the
/// inputs' adjoints), a view's adjoint is never formed: its contributions are added straight
/// into the range of the adjoint of the node it views (θ's, for the weights of a layer).
pub(crate) struct Sink<'s, T: Scalar> {
    pub(crate) nodes: &'s [Node<T>],
    pub(crate) adj: &'s mut Adjoints<T>,
    pub(crate) redirect: bool,
    /// Buffers of adjoints the sweep has finished with, for new adjoints to reuse: on a small
    /// model an allocation and a zero fill per adjoint are a visible share of the sweep.
    pub(crate) spare: &'s mut Spare<T>,
    /// Only the derivative parts of the inputs' adjoints are wanted (`H v` without `∇h`): a
    /// product into an input's adjoint runs as [`Scalar::gemm_tangent`].
    pub(crate) input_tangents_only: bool,
}

/// How many finished adjoints' buffers a sweep keeps for reuse (an MLP's sweep needs two at a
/// time: the adjoint being propagated and the one it produces).
pub(crate) const MAX_SPARE: usize = 4;

/// Only buffers up to this many bytes are kept: above it an allocation is noise beside the
/// work that fills the adjoint, and stale large buffers would raise the sweep's peak memory.
pub(crate) const MAX_SPARE_BYTES: usize = 64 * 1024;

/// The finished adjoints' buffers of one sweep (inline: the pool itself allocates nothing).
pub(crate) type Spare<T> = SmallVec<[Vec<T>; MAX_SPARE]>;

/// A spare buffer of `len` elements for a new adjoint, if one is large enough. With `zeroed`
/// it is cleared; without, its contents are stale and the caller must overwrite every element.
/// Without a spare, callers allocate as they would have: zeroed only where they accumulate
/// (a new `f64` buffer comes zeroed from the allocator's fresh pages; a second pass over a
/// θ-sized one would be a memset of θ), and by `collect` where they overwrite.
fn take_spare<T: Scalar>(spare: &mut Spare<T>, len: usize, zeroed: bool) -> Option<Vec<T>> {
    let p = spare.iter().position(|b| b.capacity() >= len)?;
    let mut b = spare.swap_remove(p);
    if zeroed {
        b.clear();
    }
    b.resize(len, T::zero());
    Some(b)
}

impl<T: Scalar> Sink<'_, T> {
    /// `(slot, offset)` receiving node `j`'s adjoint when it is redirected.
    fn target(&self, j: usize) -> Option<(usize, usize)> {
        if !self.redirect || !self.nodes[j].is_view() {
            return None;
        }
        let (mut root, mut offset) = (j, 0);
        while let (true, &Op::Slice { a, start }) =
            (self.nodes[root].is_view(), &self.nodes[root].op)
        {
            root = a;
            offset += start;
        }
        Some((root, offset))
    }

    /// Elements `offset..offset + len` of slot `root`'s adjoint, zero-filled on first use.
    fn region(&mut self, root: usize, offset: usize, len: usize) -> &mut [T] {
        let s = self.nodes[root].shape;
        let m = self.adj[root].get_or_insert_with(|| {
            let b = take_spare(self.spare, s.len(), true)
                .unwrap_or_else(|| buffers::filled(s.len(), T::zero()));
            Matrix::from_vec(s.rows, s.cols, b).expect("internal error: adjoint shape")
        });
        &mut m.data_mut()[offset..offset + len]
    }

    /// `adj[j] += a · b` (matrix product of views), allocating the slot on first use.
    fn product(&mut self, j: usize, a: MatRef<'_, T>, b: MatRef<'_, T>) {
        let (rows, cols) = (a.rows(), b.cols());
        let target = self.target(j);
        // A product whose result only ever reaches an input's adjoint.
        let gemm: fn(MatRef<'_, T>, MatRef<'_, T>, MatMut<'_, T>, bool) = if self
            .input_tangents_only
            && matches!(self.nodes[target.map_or(j, |t| t.0)].op, Op::Input)
        {
            T::gemm_tangent
        } else {
            T::gemm
        };
        if let Some((root, offset)) = target {
            let region = self.region(root, offset, rows * cols);
            let c = MatMut::from_slice(region, rows, cols).expect("internal error: view adjoint");
            gemm(a, b, c, true);
            return;
        }
        match &mut self.adj[j] {
            Some(m) => gemm(a, b, m.as_mut(), true),
            slot @ None => {
                let len = rows * cols;
                let buffer = take_spare(self.spare, len, false)
                    .unwrap_or_else(|| buffers::filled(len, T::zero()));
                let mut m = Matrix::from_vec(rows, cols, buffer).expect("internal error: adjoint");
                gemm(a, b, m.as_mut(), false);
                *slot = Some(m);
            }
        }
    }

    /// `adj[j][k] += f(k)` over the row-major elements of a `rows×cols` adjoint.
    fn elementwise(&mut self, j: usize, rows: usize, cols: usize, f: impl Fn(usize) -> T) {
        if let Some((root, offset)) = self.target(j) {
            for (k, x) in self.region(root, offset, rows * cols).iter_mut().enumerate() {
                *x = *x + f(k);
            }
            return;
        }
        match &mut self.adj[j] {
            Some(m) => {
                for (k, x) in m.data_mut().iter_mut().enumerate() {
                    *x = *x + f(k);
                }
            }
            slot @ None => {
                let data = match take_spare(self.spare, rows * cols, false) {
                    Some(mut data) => {
                        data.iter_mut().enumerate().for_each(|(k, x)| *x = f(k));
                        data
                    }
                    None => buffers::collect(rows * cols, (0..rows * cols).map(f)),
                };
                *slot = Some(
                    Matrix::from_vec(rows, cols, data).expect("internal error: adjoint shape"),
                );
            }
        }
    }

    /// `adj[j][k] += f(g[k], y[k])` over `rows×cols` elements: `elementwise` for the common
    /// activations, written over zipped slices (no indices) so that it vectorizes.
    fn elementwise_zip(
        &mut self,
        j: usize,
        (rows, cols): (usize, usize),
        g: &[T],
        y: &[T],
        f: impl Fn(T, T) -> T,
    ) {
        // Compiled for the wider vectors too: over dual numbers the baseline build moves one
        // 16-byte dual at a time (3% of a 10-20-20-3 MLP's `H v`). Elementwise, so every path
        // gives the same bits.
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                return unsafe { self.elementwise_zip_avx512(j, (rows, cols), g, y, f) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                return unsafe { self.elementwise_zip_avx2(j, (rows, cols), g, y, f) };
            }
        }
        self.elementwise_zip_impl(j, (rows, cols), g, y, f);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn elementwise_zip_avx512(
        &mut self,
        j: usize,
        shape: (usize, usize),
        g: &[T],
        y: &[T],
        f: impl Fn(T, T) -> T,
    ) {
        self.elementwise_zip_impl(j, shape, g, y, f);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn elementwise_zip_avx2(
        &mut self,
        j: usize,
        shape: (usize, usize),
        g: &[T],
        y: &[T],
        f: impl Fn(T, T) -> T,
    ) {
        self.elementwise_zip_impl(j, shape, g, y, f);
    }

    #[inline(always)]
    fn elementwise_zip_impl(
        &mut self,
        j: usize,
        (rows, cols): (usize, usize),
        g: &[T],
        y: &[T],
        f: impl Fn(T, T) -> T,
    ) {
        let add = |dst: &mut [T]| {
            for ((x, &g), &y) in dst.iter_mut().zip(g).zip(y) {
                *x = *x + f(g, y);
            }
        };
        if let Some((root, offset)) = self.target(j) {
            add(self.region(root, offset, rows * cols));
            return;
        }
        match &mut self.adj[j] {
            Some(m) => add(m.data_mut()),
            slot @ None => {
                let data = match take_spare(self.spare, rows * cols, false) {
                    Some(mut data) => {
                        for ((x, &g), &y) in data.iter_mut().zip(g).zip(y) {
                            *x = f(g, y);
                        }
                        data
                    }
                    None => buffers::collect(rows * cols, g.iter().zip(y).map(|(&g, &y)| f(g, y))),
                };
                *slot = Some(
                    Matrix::from_vec(rows, cols, data).expect("internal error: adjoint shape"),
                );
            }
        }
    }
}

/// Adds the contributions of node `i` (with adjoint `g`) to its operands' adjoints.
pub(crate) fn propagate<T: Scalar>(sink: &mut Sink<'_, T>, i: usize, g: &Matrix<T>) -> Result<()> {
    let nodes = sink.nodes;
    let needs = |j: usize| nodes[j].requires_grad;
    let val = |j: usize| tape::value(nodes, j);
    let mat = |j: usize, transpose: bool| {
        let v = tape::view(nodes, j);
        if transpose {
            v.t()
        } else {
            v
        }
    };
    let (gr, gc) = (g.rows(), g.cols());
    let gd = g.data();
    match &nodes[i].op {
        Op::Input | Op::Constant => {}
        &Op::MatMul { a, b, trans_a, trans_b } => {
            // C = op(A) op(B): d op(A) = G op(B)ᵀ, d op(B) = op(A)ᵀ G.
            let (av, bv) = (mat(a, trans_a), mat(b, trans_b));
            if needs(a) {
                if trans_a {
                    sink.product(a, bv, g.as_ref().t()); // dA = (G op(B)ᵀ)ᵀ = op(B) Gᵀ
                } else {
                    sink.product(a, g.as_ref(), bv.t());
                }
            }
            if needs(b) {
                if trans_b {
                    sink.product(b, g.as_ref().t(), av); // dB = (op(A)ᵀ G)ᵀ = Gᵀ op(A)
                } else {
                    sink.product(b, av.t(), g.as_ref());
                }
            }
        }
        &Op::Add(a, b) => {
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k]);
            }
            if needs(b) {
                sink.elementwise(b, gr, gc, |k| gd[k]);
            }
        }
        &Op::Sub(a, b) => {
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k]);
            }
            if needs(b) {
                sink.elementwise(b, gr, gc, |k| -gd[k]);
            }
        }
        &Op::Mul(a, b) => {
            let (ad, bd) = (tape::data(nodes, a), tape::data(nodes, b));
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k] * bd[k]);
            }
            if needs(b) {
                sink.elementwise(b, gr, gc, |k| gd[k] * ad[k]);
            }
        }
        &Op::Div(a, b) => {
            // c = a / b: dc/da = 1/b, dc/db = -c/b.
            let (bd, cd) = (tape::data(nodes, b), tape::data(nodes, i));
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k] / bd[k]);
            }
            if needs(b) {
                sink.elementwise(b, gr, gc, |k| -gd[k] * cd[k] / bd[k]);
            }
        }
        &Op::Affine { a, w, b } => {
            // S = A Wᵀ + 1 bᵀ: dA = G W, dW = Gᵀ A, db = column sums of G.
            if needs(a) {
                sink.product(a, g.as_ref(), mat(w, false));
            }
            if needs(w) {
                sink.product(w, g.as_ref().t(), mat(a, false));
            }
            if needs(b) {
                let col_sums = column_sums(gd, gc);
                sink.elementwise(b, 1, gc, |k| col_sums[k]);
            }
        }
        &Op::AddRow(a, r) => {
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k]);
            }
            if needs(r) {
                let col_sums = column_sums(gd, gc);
                sink.elementwise(r, 1, gc, |k| col_sums[k]);
            }
        }
        &Op::Scale(a, c) => {
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k] * c);
            }
        }
        &Op::AddScalar(a, _) => {
            if needs(a) {
                sink.elementwise(a, gr, gc, |k| gd[k]);
            }
        }
        &Op::Transpose(a) => {
            if needs(a) {
                // A is gc×gr; element (p, q) of A gets G(q, p).
                sink.elementwise(a, gc, gr, |k| gd[(k % gr) * gc + k / gr]);
            }
        }
        &Op::Sum(a) => {
            if needs(a) {
                let s = nodes[a].shape;
                sink.elementwise(a, s.rows, s.cols, |_| gd[0]);
            }
        }
        &Op::SumRows(a) => {
            if needs(a) {
                let s = nodes[a].shape;
                sink.elementwise(a, s.rows, s.cols, |k| gd[k / s.cols]);
            }
        }
        &Op::SumCols(a) => {
            if needs(a) {
                let s = nodes[a].shape;
                sink.elementwise(a, s.rows, s.cols, |k| gd[k % s.cols]);
            }
        }
        &Op::Unary(a, f) => {
            if needs(a) {
                let (xd, yd) = (tape::data(nodes, a), tape::data(nodes, i));
                // Match once, outside the loop, so the common activations vectorise.
                let shape = (gr, gc);
                match f {
                    UnaryFn::Tanh => {
                        sink.elementwise_zip(a, shape, gd, yd, |g, y| g * (T::one() - y * y))
                    }
                    UnaryFn::Sigmoid => {
                        sink.elementwise_zip(a, shape, gd, yd, |g, y| g * y * (T::one() - y))
                    }
                    UnaryFn::Identity => sink.elementwise_zip(a, shape, gd, yd, |g, _| g),
                    _ => sink
                        .elementwise(a, gr, gc, |k| gd[k] * f.derivative_with_output(xd[k], yd[k])),
                }
            }
        }
        &Op::Powi(a, n) => {
            if needs(a) {
                let xd = tape::data(nodes, a);
                let nn = T::from_f64(n as f64);
                sink.elementwise(a, gr, gc, |k| gd[k] * nn * xd[k].powi(n - 1));
            }
        }
        &Op::LogSumExp(a) => {
            if needs(a) {
                // ∂ lse_i / ∂ x_ij = exp(x_ij - lse_i) = softmax_ij.
                let (x, y) = (val(a), tape::data(nodes, i));
                let c = x.cols();
                let xd = x.data();
                sink.elementwise(a, x.rows(), c, |k| gd[k / c] * (xd[k] - y[k / c]).exp());
            }
        }
        &Op::Softmax(a) => {
            if needs(a) {
                // dx = y ⊙ (g - Σ_j g_j y_j) per row.
                let y = tape::data(nodes, i);
                let dots = row_dots(gd, y, gr, gc);
                sink.elementwise(a, gr, gc, |k| y[k] * (gd[k] - dots[k / gc]));
            }
        }
        &Op::LogSoftmax(a) => {
            if needs(a) {
                // dx = g - softmax ⊙ Σ_j g_j per row, softmax = exp(y).
                let y = tape::data(nodes, i);
                let sums: Vec<T> = (0..gr)
                    .map(|r| gd[r * gc..(r + 1) * gc].iter().fold(T::zero(), |s, &x| s + x))
                    .collect();
                sink.elementwise(a, gr, gc, |k| gd[k] - y[k].exp() * sums[k / gc]);
            }
        }
        &Op::Slice { a, start } => {
            if needs(a) {
                // Touch only the sliced range: θ is sliced once per weight and bias, so a sweep over
                // all of θ per slice would cost O(layers · n).
                let (root, offset) = sink.target(a).unwrap_or((a, 0));
                for (x, &g) in sink.region(root, offset + start, gd.len()).iter_mut().zip(gd) {
                    *x = *x + g;
                }
            }
        }
        &Op::Reshape(a) => {
            if needs(a) {
                let s = nodes[a].shape;
                sink.elementwise(a, s.rows, s.cols, |k| gd[k]);
            }
        }
        Op::Gather { a, index, .. } => {
            if needs(*a) {
                // col2im: each output adjoint goes back to the element it was read from.
                let s = nodes[*a].shape;
                let back = super::gather::scatter_add(gd, index, s.len());
                sink.elementwise(*a, s.rows, s.cols, |k| back[k]);
            }
        }
        Op::Custom { op, inputs } => {
            let owned: Vec<_> = inputs.iter().map(|&j| val(j)).collect();
            let values: Vec<&Matrix<T>> = owned.iter().map(|c| c.as_ref()).collect();
            let cotangents = op.transpose_jacobian_vector_product(&values, &val(i), g)?;
            if cotangents.len() != inputs.len() {
                return Err(crate::AutodiffError::invalid(
                    op.name(),
                    format!(
                        "vjp returned {} cotangents for {} inputs",
                        cotangents.len(),
                        inputs.len()
                    ),
                ));
            }
            for (&j, ct) in inputs.iter().zip(&cotangents) {
                if ct.shape() != nodes[j].shape {
                    return Err(crate::AutodiffError::shape(
                        format!("{} (vjp cotangent vs input)", op.name()),
                        ct.shape(),
                        nodes[j].shape,
                    ));
                }
                if needs(j) {
                    let cd = ct.data();
                    sink.elementwise(j, ct.rows(), ct.cols(), |k| cd[k]);
                }
            }
        }
    }
    Ok(())
}

/// Column sums of a row-major matrix with `cols` columns, each accumulated row by row in
/// order; on the stack up to 32 columns (a small layer's bias costs no allocation). Columns
/// are summed in blocks of 8, 4, 2 and 1 whose partial sums stay in registers (summing
/// straight into the result kept every partial sum in memory, a load and a store per element:
/// 4% of a W3 `H v`, whose dual sums are 16 bytes each).
fn column_sums<T: Scalar>(data: &[T], cols: usize) -> SmallVec<[T; 32]> {
    /// Appends the sums of columns `j..j + W` (a width known at compile time, so that the
    /// accumulators are registers).
    #[inline(always)]
    fn block<T: Scalar, const W: usize>(
        data: &[T],
        cols: usize,
        j: usize,
        sums: &mut SmallVec<[T; 32]>,
    ) {
        let mut acc = [T::zero(); W];
        for row in data.chunks_exact(cols) {
            let row: &[T; W] = row[j..j + W].try_into().expect("block within the row");
            for t in 0..W {
                acc[t] = acc[t] + row[t];
            }
        }
        sums.extend_from_slice(&acc);
    }
    let mut sums = SmallVec::with_capacity(cols);
    if cols == 0 {
        return sums;
    }
    let mut j = 0;
    while j + 8 <= cols {
        block::<T, 8>(data, cols, j, &mut sums);
        j += 8;
    }
    for w in [4, 2, 1] {
        if cols - j >= w {
            match w {
                4 => block::<T, 4>(data, cols, j, &mut sums),
                2 => block::<T, 2>(data, cols, j, &mut sums),
                _ => block::<T, 1>(data, cols, j, &mut sums),
            }
            j += w;
        }
    }
    sums
}

fn row_dots<T: Scalar>(a: &[T], b: &[T], rows: usize, cols: usize) -> Vec<T> {
    (0..rows).map(|r| (r * cols..(r + 1) * cols).fold(T::zero(), |s, k| s + a[k] * b[k])).collect()
}

/// Row-wise softmax, for rules and checks that need it outside the tape.
#[allow(dead_code)]
pub(crate) fn softmax<T: Scalar>(a: &Matrix<T>) -> Matrix<T> {
    log_softmax(a).map(|x| x.exp())
}

#[cfg(test)]
mod tests {
    use super::column_sums;
    use crate::Dual;

    /// Every width around the eight-column blocks, and one past the inline 32: each sum equals
    /// the row-by-row sum exactly (same order), for reals and for dual numbers.
    #[test]
    fn column_sums_are_the_row_by_row_sums() {
        for cols in [0, 1, 7, 8, 9, 16, 20, 33] {
            let rows = 5;
            let data: Vec<f64> =
                (0..rows * cols).map(|i| ((i * 37) % 23) as f64 / 7.0 - 1.5).collect();
            let want: Vec<f64> =
                (0..cols).map(|j| (0..rows).fold(0.0, |s, r| s + data[r * cols + j])).collect();
            assert_eq!(column_sums(&data, cols).to_vec(), want, "{cols} columns");
            let dual: Vec<Dual<f64>> = data.iter().map(|&x| Dual::new(x, 2.0 * x + 1.0)).collect();
            let got = column_sums(&dual, cols);
            for (j, d) in got.iter().enumerate() {
                let eps = (0..rows).fold(0.0, |s, r| s + dual[r * cols + j].eps);
                assert_eq!((d.re, d.eps), (want[j], eps), "{cols} columns, dual [{j}]");
            }
            assert_eq!(got.len(), cols);
        }
    }
}
