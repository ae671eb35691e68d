//! [`ConvNet`]: a small convolutional network (convolution → activation → optional layer
//! normalization → dense output layer), with its parameter layout and blocks.
//!
//! Every curvature product (`H v`, `G v`, `F v`, the empirical and Monte-Carlo Fisher, their
//! dense and block-diagonal forms) works for it as for any [`Model`]: the convolution and the
//! layer normalization are exact tape ops ([`autodiff::Var::conv2d`],
//! [`autodiff::Var::layer_norm`]). The per-layer decomposition of Section 8.1.2 does not: it
//! needs the layered form `s_i = W_i a_{i-1} + b_i` of [`Model::forward_layers`], which a
//! convolution followed by a normalization is not.

use super::{Activation, Model, ParameterBlock};
use crate::error::{CurvatureError, Result};
use autodiff::{Conv2d, Scalar, Tape, Var};
use std::ops::Range;

/// `z = W · LN_{γ,β}(φ(conv(x; K, c))) + b` on a batch of images, one `C×H×W` image per row
/// (channel-major, [`Conv2d`]), `F` filters and `m_out` outputs (logits: the output layer has
/// no activation; the loss supplies softmax and the like). Without layer normalization the
/// `LN` step is left out.
///
/// Parameter layout, `θ = [vec(K), c, γ, β, vec(W), b]`:
/// - `K`: `F × C·k_h·k_w` row-major (row `f` is filter `f`, channel-major like a patch);
/// - `c`: the `F` filter biases;
/// - `γ`, `β`: the layer norm's gain and shift, one per feature `F·P` (absent without it);
/// - `W`: `m_out × F·P` row-major over the channel-major features `[f·P + p]`; `b`: `m_out`.
///
/// ```
/// use autodiff::Conv2d;
/// use curvature::model::ConvNet;
/// use curvature::{Activation, Model};
/// // 1×5×5 images, 2 filters 3×3 (stride 1, padding 1: 25 positions), layer norm, 3 outputs.
/// let net = ConvNet::new(Conv2d::new(1, 5, 5, (3, 3), 1, 1)?, 2, Activation::Tanh, 3)?
///     .with_layer_norm(1e-5)?;
/// assert_eq!(net.features(), 50);
/// assert_eq!(net.num_params(), 2 * 9 + 2 + 2 * 50 + 3 * 50 + 3);
/// let names: Vec<String> = net.parameter_blocks().into_iter().map(|b| b.name).collect();
/// assert_eq!(names, ["kernel", "conv_bias", "gamma", "beta", "W", "b"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ConvNet {
    geometry: Conv2d,
    filters: usize,
    activation: Activation,
    layer_norm: Option<f64>,
    outputs: usize,
}

impl ConvNet {
    /// A network with `filters` convolution filters of the given geometry, an elementwise
    /// `activation` after the convolution, and a dense layer to `outputs` logits. Errors if
    /// `filters` or `outputs` is zero or the activation is softmax.
    pub fn new(
        geometry: Conv2d,
        filters: usize,
        activation: Activation,
        outputs: usize,
    ) -> Result<Self> {
        if filters == 0 || outputs == 0 {
            return Err(CurvatureError::invalid(
                "ConvNet::new",
                format!("needs at least one filter and one output, got {filters} and {outputs}"),
            ));
        }
        if activation.unary().is_none() {
            return Err(CurvatureError::invalid(
                "ConvNet::new",
                format!("the convolution's activation must be elementwise, got {activation}"),
            ));
        }
        Ok(ConvNet { geometry, filters, activation, layer_norm: None, outputs })
    }

    /// The same network with layer normalization (per example, over all `F·P` features, with
    /// `ε = epsilon`) between the activation and the dense layer. Errors unless `epsilon` is
    /// finite and positive (a positive `ε` keeps a constant row finite).
    pub fn with_layer_norm(self, epsilon: f64) -> Result<Self> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(CurvatureError::invalid(
                "ConvNet::with_layer_norm",
                format!("epsilon must be finite and positive, got {epsilon}"),
            ));
        }
        Ok(ConvNet { layer_norm: Some(epsilon), ..self })
    }

    /// The convolution's geometry.
    pub fn geometry(&self) -> &Conv2d {
        &self.geometry
    }

    /// The number of filters `F`.
    pub fn filters(&self) -> usize {
        self.filters
    }

    /// The activation after the convolution.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The layer norm's `ε`, if the network has one.
    pub fn layer_norm_epsilon(&self) -> Option<f64> {
        self.layer_norm
    }

    /// The width of an input row, `C·H·W`.
    pub fn input_dim(&self) -> usize {
        self.geometry.input_len()
    }

    /// The number of outputs `m_out`.
    pub fn output_dim(&self) -> usize {
        self.outputs
    }

    /// The features after the convolution, `F·P` (`P = H_out·W_out`).
    pub fn features(&self) -> usize {
        self.filters * self.geometry.positions()
    }

    /// Positions of `vec(K)` in θ.
    pub fn kernel_range(&self) -> Range<usize> {
        0..self.filters * self.geometry.patch_len()
    }

    /// Positions of the filter biases `c` in θ.
    pub fn conv_bias_range(&self) -> Range<usize> {
        let start = self.kernel_range().end;
        start..start + self.filters
    }

    /// Positions of the layer norm's `γ` and `β` in θ, if it has one.
    pub fn layer_norm_ranges(&self) -> Option<(Range<usize>, Range<usize>)> {
        self.layer_norm?;
        let (start, f) = (self.conv_bias_range().end, self.features());
        Some((start..start + f, start + f..start + 2 * f))
    }

    /// Positions of the dense layer's `vec(W)` in θ.
    pub fn dense_weight_range(&self) -> Range<usize> {
        let start = self.layer_norm_ranges().map_or(self.conv_bias_range().end, |(_, b)| b.end);
        start..start + self.outputs * self.features()
    }

    /// Positions of the dense layer's `b` in θ.
    pub fn dense_bias_range(&self) -> Range<usize> {
        let start = self.dense_weight_range().end;
        start..start + self.outputs
    }

    /// The architecture and layout in words, for manifests and docs.
    pub fn describe_layout(&self) -> String {
        let r = |r: Range<usize>| format!("[{}, {})", r.start, r.end);
        let (f, q, feat) = (self.filters, self.geometry.patch_len(), self.features());
        let norm = match (self.layer_norm, self.layer_norm_ranges()) {
            (Some(eps), Some((g, b))) => format!(
                " -> layer norm over {feat} features (epsilon {eps}); gamma ({feat}) at {}, beta ({feat}) at {}",
                r(g),
                r(b)
            ),
            _ => String::new(),
        };
        format!(
            "conv2d ({}; {f} filters, output channel-major {f}x{}x{}) -> {}{norm} -> dense to {} logits. theta: kernel ({f}x{q} row-major) at {}, conv_bias ({f}) at {}, W ({}x{feat} row-major) at {}, b ({}) at {}",
            self.geometry,
            self.geometry.output_height(),
            self.geometry.output_width(),
            self.activation,
            self.outputs,
            r(self.kernel_range()),
            r(self.conv_bias_range()),
            self.outputs,
            r(self.dense_weight_range()),
            self.outputs,
            r(self.dense_bias_range()),
        )
    }
}

impl Model for ConvNet {
    fn num_params(&self) -> usize {
        self.dense_bias_range().end
    }

    fn forward<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        let (f, feat) = (self.filters, self.features());
        let kernel = theta.slice(0, f, self.geometry.patch_len())?;
        let bias = theta.slice(self.conv_bias_range().start, 1, f)?;
        let mut a = self.activation.apply(x.conv2d(kernel, bias, &self.geometry)?)?;
        if let (Some(eps), Some((g, b))) = (self.layer_norm, self.layer_norm_ranges()) {
            a =
                a.layer_norm(theta.slice(g.start, 1, feat)?, theta.slice(b.start, 1, feat)?, eps)?;
        }
        let w = theta.slice(self.dense_weight_range().start, self.outputs, feat)?;
        a.affine(w, theta.slice(self.dense_bias_range().start, 1, self.outputs)?)
    }

    /// `kernel` and `conv_bias` (layer 1), `gamma` and `beta` (layer 2, with layer norm), `W`
    /// and `b` (the last layer): block-diagonal restrictions keep one block per layer.
    fn parameter_blocks(&self) -> Vec<ParameterBlock> {
        let block = |name: &str, layer, range| ParameterBlock { name: name.into(), layer, range };
        let mut blocks = vec![
            block("kernel", 1, self.kernel_range()),
            block("conv_bias", 1, self.conv_bias_range()),
        ];
        let mut layer = 2;
        if let Some((g, b)) = self.layer_norm_ranges() {
            blocks.push(block("gamma", 2, g));
            blocks.push(block("beta", 2, b));
            layer = 3;
        }
        blocks.push(block("W", layer, self.dense_weight_range()));
        blocks.push(block("b", layer, self.dense_bias_range()));
        blocks
    }
}

#[cfg(test)]
mod tests;
