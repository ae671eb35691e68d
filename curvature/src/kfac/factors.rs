//! The per-layer statistics K-FAC and EKFAC are built from: the extended layer inputs `ā_n` and
//! the weighted output-side vectors `g_{n,k}`, read off reverse sweeps over a recorded pass.

use super::KfacKind;
use crate::error::{CurvatureError, Result};
use crate::loss;
use crate::model::Model;
use crate::problem::ForwardPass;
use autodiff::linalg::symmetric_eigen;
use autodiff::{Matrix, Retain, Scalar};
use rand::{rngs::StdRng, SeedableRng};
use std::ops::Range;

/// One reverse sweep's vectors at `s_i`: row `n` is `g_{n,k}`, weighted by `weights[n]`.
pub(crate) struct OutputVectors {
    pub(crate) weights: Vec<f64>,
    pub(crate) g: Matrix<f64>,
}

/// What one layer's factors are made of.
pub(crate) struct LayerStatistics {
    /// Positions of `vec(W_i)` in θ.
    pub(crate) weights: Range<usize>,
    /// `m_i`.
    pub(crate) m_out: usize,
    /// `m_{i-1}`.
    pub(crate) m_in: usize,
    /// `N × (m_{i-1}+1)`: row `n` is `ā_n = [a_{i-1,n}; 1]`.
    pub(crate) inputs: Matrix<f64>,
    /// One entry per reverse sweep.
    pub(crate) outputs: Vec<OutputVectors>,
}

impl LayerStatistics {
    /// `Ā = (1/N) Σ_n ā_n ā_nᵀ`.
    pub(crate) fn input_factor(&self) -> Matrix<f64> {
        let n = self.inputs.rows() as f64;
        let k = self.inputs.cols();
        let mut a = Matrix::zeros(k, k);
        f64::gemm(self.inputs.as_ref().t(), self.inputs.as_ref(), a.as_mut(), false);
        a.data_mut().iter_mut().for_each(|v| *v /= n);
        a
    }

    /// `G = (1/N) Σ_{n,k} w_{n,k} g_{n,k} g_{n,k}ᵀ`.
    pub(crate) fn output_factor(&self) -> Matrix<f64> {
        let n = self.inputs.rows() as f64;
        let mut g = Matrix::zeros(self.m_out, self.m_out);
        for o in &self.outputs {
            let weighted =
                Matrix::from_fn(o.g.rows(), o.g.cols(), |r, c| o.weights[r] * o.g[(r, c)]);
            f64::gemm(weighted.as_ref().t(), o.g.as_ref(), g.as_mut(), true);
        }
        g.data_mut().iter_mut().for_each(|v| *v /= n);
        g
    }
}

/// The statistics of every layer of `pass`, for the output-side vectors of `kind`.
pub(crate) fn layer_statistics<M: Model>(
    pass: &ForwardPass<'_, M>,
    kind: &KfacKind,
) -> Result<Vec<LayerStatistics>> {
    let op = "kfac";
    let layers = pass.layers(op)?.to_vec();
    let z_node = layers
        .last()
        .map(|l| l.a)
        .ok_or_else(|| CurvatureError::invalid(op, "a layered model returned no layers"))?;
    let problem = pass.problem();
    let (dist, y) = (problem.loss, problem.y);
    let z = pass.output();
    let (rows, cols) = (z.rows(), z.cols());
    // Each seed on z (one row per example) with the weight of each row.
    let seeds: Vec<(Matrix<f64>, Vec<f64>)> = match kind {
        KfacKind::Type2 => {
            let mut seeds: Vec<(Matrix<f64>, Vec<f64>)> =
                (0..cols).map(|_| (Matrix::zeros(rows, cols), vec![0.0; rows])).collect();
            for r in 0..rows {
                let h = loss::dense_h_l(dist, z.row(r), y.row(r));
                let eigen = symmetric_eigen(&h)?;
                for (k, (seed, weights)) in seeds.iter_mut().enumerate() {
                    weights[r] = eigen.values[k];
                    for (c, s) in seed.row_mut(r).iter_mut().enumerate() {
                        *s = eigen.vectors[(c, k)];
                    }
                }
            }
            seeds
        }
        KfacKind::MonteCarlo { seed } => {
            let mut rng = StdRng::seed_from_u64(*seed);
            let targets = loss::sample_targets(dist, z, &mut rng)?;
            let mut g = Matrix::zeros(rows, cols);
            dist.grad_z_rows(z, &targets, &mut g);
            vec![(g, vec![1.0; rows])]
        }
        KfacKind::Empirical => {
            let mut g = Matrix::zeros(rows, cols);
            dist.grad_z_rows(z, y, &mut g);
            vec![(g, vec![1.0; rows])]
        }
    };
    let mut stats: Vec<LayerStatistics> = layers
        .iter()
        .map(|l| {
            let input = pass.node_var(l.input).value();
            let (m_in, m_out) = (input.cols(), pass.node_var(l.s).shape().cols);
            let inputs =
                Matrix::from_fn(rows, m_in + 1, |r, c| if c < m_in { input[(r, c)] } else { 1.0 });
            LayerStatistics { weights: l.weights.clone(), m_out, m_in, inputs, outputs: Vec::new() }
        })
        .collect();
    for (seed, weights) in seeds {
        let grads =
            pass.tape().backward_with_seeds(&[(pass.node_var(z_node), &seed)], Retain::All)?;
        for (l, s) in layers.iter().zip(stats.iter_mut()) {
            let g = grads.wrt_or_zeros(pass.node_var(l.s));
            s.outputs.push(OutputVectors { weights: weights.clone(), g });
        }
    }
    Ok(stats)
}
