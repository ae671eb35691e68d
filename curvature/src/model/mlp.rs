//! [`Mlp`]: the layered network of Section 2, with its parameter layout.

use super::{Activation, LayerVars, Model, ParameterBlock};
use crate::error::{CurvatureError, Result};
use autodiff::{Scalar, Tape, Var};
use std::ops::Range;

/// A layered network `s_i = W_i a_{i-1} + b_i`, `a_i = φ_i(s_i)`, `a_0 = x`, `z = a_ℓ`
/// (Section 2), applied to a batch whose rows are examples.
///
/// Parameter layout (fixed, used everywhere): `θ = concat_{i=1..ℓ} [vec(W_i), b_i]` with
/// `W_i` stored row-major as `m_i × m_{i-1}` (row `r` holds the weights into unit `r`).
///
/// ```
/// use curvature::{Activation, Mlp};
/// let mlp = Mlp::new(&[4, 5, 3], &[Activation::Tanh, Activation::Identity])?;
/// assert_eq!(mlp.num_params(), 5 * 4 + 5 + 3 * 5 + 3);
/// assert_eq!(mlp.weight_range(2), 25..40);
/// # Ok::<(), curvature::CurvatureError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    sizes: Vec<usize>,
    activations: Vec<Activation>,
}

impl Mlp {
    /// A network with layer widths `sizes = [m_0, …, m_ℓ]` and one activation per layer.
    /// Errors if there are fewer than two widths (an input and an output), the counts do not
    /// match, a width is zero, softmax is not last, or the parameter count `Σ m_i (m_{i-1} + 1)`
    /// (or its size in bytes as `f64`s) overflows (`isize::MAX` bytes, the most one buffer can
    /// hold).
    pub fn new(sizes: &[usize], activations: &[Activation]) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(CurvatureError::invalid(
                "Mlp::new",
                format!(
                    "a network needs at least an input and an output width, got {} width{} {sizes:?}",
                    sizes.len(),
                    if sizes.len() == 1 { "" } else { "s" }
                ),
            ));
        }
        if activations.len() != sizes.len() - 1 {
            return Err(CurvatureError::invalid(
                "Mlp::new",
                format!(
                    "{} layer widths need {} activations, got {}",
                    sizes.len(),
                    sizes.len().saturating_sub(1),
                    activations.len()
                ),
            ));
        }
        if let Some(i) = sizes.iter().position(|&m| m == 0) {
            return Err(CurvatureError::invalid("Mlp::new", format!("layer width {i} is zero")));
        }
        if let Some(i) =
            activations[..activations.len() - 1].iter().position(|&a| a == Activation::Softmax)
        {
            return Err(CurvatureError::invalid(
                "Mlp::new",
                format!("softmax may only be the last activation, found at layer {}", i + 1),
            ));
        }
        // num_params and the ranges use plain arithmetic: this bound makes that exact.
        let params = sizes.windows(2).try_fold(0usize, |total, w| {
            w[0].checked_add(1)?.checked_mul(w[1])?.checked_add(total)
        });
        match params.and_then(|n| n.checked_mul(std::mem::size_of::<f64>())) {
            Some(b) if b <= isize::MAX as usize => {}
            _ => {
                return Err(CurvatureError::invalid(
                    "Mlp::new",
                    format!(
                        "widths {sizes:?} give more parameters than fit in memory \
                         (Σ m_i (m_(i-1) + 1) f64s overflow {} bytes)",
                        isize::MAX
                    ),
                ))
            }
        }
        Ok(Mlp { sizes: sizes.to_vec(), activations: activations.to_vec() })
    }

    /// The widths `[m_0, …, m_ℓ]`.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The activations `[φ_1, …, φ_ℓ]`.
    pub fn activations(&self) -> &[Activation] {
        &self.activations
    }

    /// The number of layers `ℓ`.
    pub fn num_layers(&self) -> usize {
        self.activations.len()
    }

    /// The input width `m_0`.
    pub fn input_dim(&self) -> usize {
        self.sizes[0]
    }

    /// The output width `m_ℓ`.
    pub fn output_dim(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    /// The number of parameters `Σ_i m_i (m_{i-1} + 1)`.
    pub fn num_params(&self) -> usize {
        self.sizes.windows(2).map(|w| w[1] * (w[0] + 1)).sum()
    }

    fn layer_start(&self, layer: usize) -> usize {
        self.sizes.windows(2).take(layer - 1).map(|w| w[1] * (w[0] + 1)).sum()
    }

    /// Positions of `vec(W_i)` in θ (`layer` is 1-based, `1 ≤ layer ≤ ℓ`).
    pub fn weight_range(&self, layer: usize) -> Range<usize> {
        let start = self.layer_start(layer);
        start..start + self.sizes[layer] * self.sizes[layer - 1]
    }

    /// Positions of `b_i` in θ (`layer` is 1-based).
    pub fn bias_range(&self, layer: usize) -> Range<usize> {
        let start = self.weight_range(layer).end;
        start..start + self.sizes[layer]
    }

    /// Positions of all of layer `i`'s parameters, `[vec(W_i), b_i]`.
    pub fn layer_range(&self, layer: usize) -> Range<usize> {
        self.weight_range(layer).start..self.bias_range(layer).end
    }

    /// The layout in words, for manifests and docs.
    pub fn describe_layout(&self) -> String {
        let parts: Vec<String> = (1..=self.num_layers())
            .map(|i| {
                let (w, b) = (self.weight_range(i), self.bias_range(i));
                format!(
                    "W{i} ({}x{} row-major) at [{}, {}), b{i} ({}) at [{}, {})",
                    self.sizes[i],
                    self.sizes[i - 1],
                    w.start,
                    w.end,
                    self.sizes[i],
                    b.start,
                    b.end
                )
            })
            .collect();
        format!(
            "theta = concat over layers of [W_i row-major (m_i x m_(i-1)), b_i]: {}",
            parts.join("; ")
        )
    }

    fn record<'t, T: Scalar>(
        &self,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Vec<LayerVars<'t, T>>> {
        let mut a = x;
        let mut layers = Vec::with_capacity(self.num_layers());
        for (i, &activation) in self.activations.iter().enumerate() {
            let layer = i + 1;
            let (m_out, m_in) = (self.sizes[layer], self.sizes[layer - 1]);
            let w = theta.slice(self.weight_range(layer).start, m_out, m_in)?;
            let b = theta.slice(self.bias_range(layer).start, 1, m_out)?;
            let s = a.affine(w, b)?;
            let out = activation.apply(s)?;
            layers.push(LayerVars {
                input: a,
                s,
                a: out,
                activation: activation.into(),
                weights: self.weight_range(layer),
                biases: self.bias_range(layer),
            });
            a = out;
        }
        Ok(layers)
    }
}

impl Model for Mlp {
    fn num_params(&self) -> usize {
        Mlp::num_params(self)
    }

    fn forward<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Var<'t, T>> {
        let layers = self.record(theta, x)?;
        Ok(layers[layers.len() - 1].a)
    }

    fn forward_layers<'t, T: Scalar>(
        &self,
        _tape: &'t Tape<T>,
        theta: Var<'t, T>,
        x: Var<'t, T>,
    ) -> autodiff::Result<Option<Vec<LayerVars<'t, T>>>> {
        self.record(theta, x).map(Some)
    }

    fn parameter_blocks(&self) -> Vec<ParameterBlock> {
        (1..=self.num_layers())
            .flat_map(|i| {
                [
                    ParameterBlock { name: format!("W{i}"), layer: i, range: self.weight_range(i) },
                    ParameterBlock { name: format!("b{i}"), layer: i, range: self.bias_range(i) },
                ]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_contiguous_and_covers_theta() {
        let mlp =
            Mlp::new(&[3, 4, 2, 5], &[Activation::Tanh, Activation::Relu, Activation::Softmax])
                .unwrap();
        let blocks = mlp.parameter_blocks();
        assert_eq!(blocks.len(), 6);
        assert_eq!(blocks[0].range, 0..12);
        assert_eq!(blocks[1].range, 12..16);
        assert_eq!(blocks[2].range, 16..24);
        let mut next = 0;
        for b in &blocks {
            assert_eq!(b.range.start, next, "{} not contiguous", b.name);
            next = b.range.end;
        }
        assert_eq!(next, mlp.num_params());
        assert_eq!(mlp.num_params(), 4 * 4 + 2 * 5 + 5 * 3);
    }

    #[test]
    fn bad_architectures_are_errors() {
        assert!(Mlp::new(&[3, 4], &[]).is_err());
        assert!(Mlp::new(&[3, 0, 2], &[Activation::Tanh, Activation::Tanh]).is_err());
        let err = Mlp::new(&[3, 4, 2], &[Activation::Softmax, Activation::Tanh]).unwrap_err();
        assert!(err.to_string().contains("softmax may only be the last"), "{err}");
    }
}
