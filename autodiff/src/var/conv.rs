//! 2-D convolution on a batch of images: [`Conv2d`] (the geometry), [`Var::im2col`] and
//! [`Var::conv2d`].
//!
//! An image is one row of the batch matrix, `C×H×W` flattened channel-major (`x[c·H·W + y·W +
//! x]`), so a batch of `N` images is `N × CHW` like any other layer input. The convolution is
//! the usual lowering to a matrix product:
//!
//! 1. `im2col` gathers every `C×k_h×k_w` patch into a row: `(N·P) × (C·k_h·k_w)` for `P =
//!    H_out·W_out` output positions, zero where a patch overhangs the zero padding;
//! 2. one [`affine`](Var::affine) node multiplies by the kernel matrix `K` (`F × C·k_h·k_w`,
//!    row `f` is filter `f` flattened like a patch) and adds the bias `b` (`1×F`);
//! 3. a second gather reorders the `(N·P) × F` result to `N × F·P`, channel-major rows again,
//!    so convolutions stack.
//!
//! Both gathers are linear moves of elements whose adjoint is the scatter-add (col2im), so
//! `J v`, `Jᵀ u` and (on a dual tape) `H v` through a convolution are exact, and all of its
//! FLOPs are in the one matrix product. Stride and symmetric zero padding are supported;
//! dilation and groups are not. The gathers read through index tables of one `usize` per
//! output element, built per recording: as much memory again as the patch matrix of `f64`.

use super::gather::ZERO;
use crate::error::{AutodiffError, Result};
use crate::matrix::Shape;
use crate::scalar::Scalar;
use crate::tape::Var;
use std::sync::Arc;

/// The geometry of a 2-D convolution: input image `channels × height × width`, a
/// `kernel_height × kernel_width` window moved by `stride` in both directions over the image
/// with `padding` zeros added on every side.
///
/// The output is `H_out × W_out` per filter, `H_out = (height + 2·padding − kernel_height) /
/// stride + 1` (floor), likewise `W_out`.
///
/// ```
/// use autodiff::Conv2d;
/// // 3 channels of 8×8, a 3×3 window, stride 2, padding 1.
/// let g = Conv2d::new(3, 8, 8, (3, 3), 2, 1)?;
/// assert_eq!((g.output_height(), g.output_width()), (4, 4));
/// assert_eq!((g.input_len(), g.patch_len(), g.positions()), (192, 27, 16));
/// # Ok::<(), autodiff::AutodiffError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2d {
    channels: usize,
    height: usize,
    width: usize,
    kernel_height: usize,
    kernel_width: usize,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// The geometry of a convolution of `channels × height × width` images with a
    /// `kernel_height × kernel_width` window moved by `stride` (at least 1), over the image
    /// with `padding` zeros added on each side. Errors (op `conv2d`) if a size or the stride
    /// is zero, or the window is larger than the padded image.
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        (kernel_height, kernel_width): (usize, usize),
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let g = Conv2d { channels, height, width, kernel_height, kernel_width, stride, padding };
        let sizes = [
            ("channels", channels),
            ("height", height),
            ("width", width),
            ("kernel_height", kernel_height),
            ("kernel_width", kernel_width),
            ("stride", stride),
        ];
        if let Some((what, _)) = sizes.iter().find(|(_, s)| *s == 0) {
            return Err(AutodiffError::invalid("conv2d", format!("{what} is zero in {g}")));
        }
        if kernel_height > height + 2 * padding || kernel_width > width + 2 * padding {
            return Err(AutodiffError::invalid(
                "conv2d",
                format!("the kernel is larger than the padded image in {g}"),
            ));
        }
        Ok(g)
    }

    /// Input channels `C`.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Input height `H`.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Input width `W`.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Window height `k_h`.
    pub fn kernel_height(&self) -> usize {
        self.kernel_height
    }
    /// Window width `k_w`.
    pub fn kernel_width(&self) -> usize {
        self.kernel_width
    }
    /// Step of the window.
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// Zeros on each side.
    pub fn padding(&self) -> usize {
        self.padding
    }

    /// `H_out`.
    pub fn output_height(&self) -> usize {
        (self.height + 2 * self.padding - self.kernel_height) / self.stride + 1
    }

    /// `W_out`.
    pub fn output_width(&self) -> usize {
        (self.width + 2 * self.padding - self.kernel_width) / self.stride + 1
    }

    /// Output positions per filter, `P = H_out·W_out`.
    pub fn positions(&self) -> usize {
        self.output_height() * self.output_width()
    }

    /// Elements of one image, `C·H·W` (the width of a batch row).
    pub fn input_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Elements of one patch, `C·k_h·k_w` (the width of the kernel matrix).
    pub fn patch_len(&self) -> usize {
        self.channels * self.kernel_height * self.kernel_width
    }

    /// Row `n·P + p`, column `(c, i, j)` of im2col reads image `n`, channel `c`, pixel
    /// `(y_p·stride + i − padding, x_p·stride + j − padding)`, or a padding zero.
    fn im2col_index(&self, batch: usize) -> Arc<[usize]> {
        let (ow, positions, patch) = (self.output_width(), self.positions(), self.patch_len());
        let (kh, kw, pad) = (self.kernel_height, self.kernel_width, self.padding);
        let mut index = Vec::with_capacity(batch * positions * patch);
        for n in 0..batch {
            for p in 0..positions {
                let (oy, ox) = (p / ow, p % ow);
                for c in 0..self.channels {
                    for i in 0..kh {
                        for j in 0..kw {
                            // Coordinates in the padded image, shifted back by the padding.
                            let (y, x) = (oy * self.stride + i, ox * self.stride + j);
                            let inside = y >= pad
                                && x >= pad
                                && y - pad < self.height
                                && x - pad < self.width;
                            index.push(if inside {
                                n * self.input_len()
                                    + (c * self.height + y - pad) * self.width
                                    + (x - pad)
                            } else {
                                ZERO
                            });
                        }
                    }
                }
            }
        }
        index.into()
    }
}

impl std::fmt::Display for Conv2d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{}x{} image, {}x{} kernel, stride {}, padding {}",
            self.channels,
            self.height,
            self.width,
            self.kernel_height,
            self.kernel_width,
            self.stride,
            self.padding
        )
    }
}

impl<'t, T: Scalar> Var<'t, T> {
    /// The patches of a batch of images as rows: `self` is `N × C·H·W` (one channel-major image
    /// per row), the result `(N·P) × (C·k_h·k_w)` with row `n·P + p` the patch under output
    /// position `p` of image `n` (positions row-major over `H_out × W_out`), flattened
    /// channel-major like the image; padding reads as zero.
    ///
    /// A pure gather: its adjoint is col2im (each patch element's adjoint added back to the
    /// pixel it came from), its tangent the im2col of the tangent.
    pub fn im2col(self, geometry: &Conv2d) -> Result<Var<'t, T>> {
        let s = self.shape();
        if s.cols != geometry.input_len() {
            return Err(AutodiffError::shape(
                format!("im2col (batch rows vs one {geometry})"),
                s,
                Shape::new(s.rows, geometry.input_len()),
            ));
        }
        let shape = Shape::new(s.rows * geometry.positions(), geometry.patch_len());
        self.gather("im2col", geometry.im2col_index(s.rows), shape)
    }

    /// The convolution of a batch of images with `F` filters: `self` is `N × C·H·W`,
    /// `kernel` is `F × C·k_h·k_w` (row `f` is filter `f`, flattened channel-major like a
    /// patch), `bias` is `1×F`; the result is `N × F·P`, channel-major (`[n, f·P + p]`), so
    /// it can feed another convolution. It is cross-correlation, as in every deep-learning
    /// library: `y[n, f, p] = b_f + Σ_{c,i,j} K[f, (c, i, j)] · x[n, c, y_p·s + i − pad, x_p·s + j − pad]`.
    ///
    /// Recorded as [`im2col`](Self::im2col), one [`affine`](Self::affine) node and a gather
    /// back to channel-major rows.
    ///
    /// ```
    /// use autodiff::{Conv2d, Matrix, Tape};
    /// // One 1×3×3 image, one 2×2 filter of ones: each output is a sum of four pixels.
    /// let g = Conv2d::new(1, 3, 3, (2, 2), 1, 0)?;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(Matrix::from_fn(1, 9, |_, k| k as f64));
    /// let k = tape.input(Matrix::filled(1, 4, 1.0));
    /// let b = tape.input(Matrix::filled(1, 1, 0.5));
    /// let y = x.conv2d(k, b, &g)?;
    /// assert_eq!(y.value().data(), &[8.5, 12.5, 20.5, 24.5]);
    /// # Ok::<(), autodiff::AutodiffError>(())
    /// ```
    pub fn conv2d(
        self,
        kernel: Var<'t, T>,
        bias: Var<'t, T>,
        geometry: &Conv2d,
    ) -> Result<Var<'t, T>> {
        self.tape.check_var("conv2d", kernel)?;
        self.tape.check_var("conv2d", bias)?;
        let (sk, sb) = (kernel.shape(), bias.shape());
        if sk.cols != geometry.patch_len() {
            return Err(AutodiffError::shape(
                format!("conv2d (kernel vs C·k_h·k_w of {geometry})"),
                sk,
                Shape::new(sk.rows, geometry.patch_len()),
            ));
        }
        if sb.rows != 1 || sb.cols != sk.rows {
            return Err(AutodiffError::shape("conv2d (kernel vs bias)", sk, sb));
        }
        let batch = self.shape().rows;
        let (filters, positions) = (sk.rows, geometry.positions());
        let patches = self.im2col(geometry)?;
        let by_position = patches.affine(kernel, bias)?; // (N·P) × F
                                                         // [n, f·P + p] ← [(n·P + p), f].
        let index: Arc<[usize]> = (0..batch * filters * positions)
            .map(|k| {
                let (n, r) = (k / (filters * positions), k % (filters * positions));
                let (f, p) = (r / positions, r % positions);
                (n * positions + p) * filters + f
            })
            .collect();
        by_position.gather("conv2d", index, Shape::new(batch, filters * positions))
    }
}
