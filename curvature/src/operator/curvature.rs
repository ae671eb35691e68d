//! The curvature matrices of a [`ForwardPass`] as [`LinearOperator`]s.

use super::{check_apply_lengths, BlockDiagonal, CurvatureKind, LinearOperator};
use crate::error::{CurvatureError, Result};
use crate::loss;
use crate::model::Model;
use crate::problem::ForwardPass;
use autodiff::Matrix;
use rand::{rngs::StdRng, SeedableRng};

#[derive(Clone, Debug)]
enum Which {
    Hessian,
    Ggn,
    Fisher,
    EmpiricalFisher,
    /// Sampled targets `ỹ`, one matrix per sample.
    MonteCarloFisher(Vec<Matrix<f64>>),
}

/// One curvature matrix at the θ and batch of a [`ForwardPass`], known through its products.
///
/// Built by [`ForwardPass::hessian`], [`ggn`](ForwardPass::ggn), [`fisher`](ForwardPass::fisher),
/// [`empirical_fisher`](ForwardPass::empirical_fisher),
/// [`monte_carlo_fisher`](ForwardPass::monte_carlo_fisher) or [`ForwardPass::operator`].
pub struct CurvatureOperator<'f, 'a, M: Model> {
    pass: PassRef<'f, 'a, M>,
    which: Which,
}

/// A borrowed pass, or one the operator owns (so an objective can hand out an operator that
/// outlives the call that made the pass).
enum PassRef<'f, 'a, M: Model> {
    Borrowed(&'f ForwardPass<'a, M>),
    Owned(Box<ForwardPass<'a, M>>),
}

impl<'a, M: Model> std::ops::Deref for PassRef<'_, 'a, M> {
    type Target = ForwardPass<'a, M>;
    fn deref(&self) -> &ForwardPass<'a, M> {
        match self {
            PassRef::Borrowed(p) => p,
            PassRef::Owned(p) => p,
        }
    }
}

impl<M: Model> LinearOperator for CurvatureOperator<'_, '_, M> {
    fn dim(&self) -> usize {
        self.pass.dim()
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply_lengths("CurvatureOperator::apply", self.dim(), v, out)?;
        let result = match &self.which {
            Which::Hessian => self.pass.hessian_vector_product(v)?,
            Which::Ggn => self.pass.ggn_vector_product(v)?,
            Which::Fisher => self.pass.fisher_vector_product(v)?,
            Which::EmpiricalFisher => self.pass.empirical_fisher_vector_product(v)?,
            Which::MonteCarloFisher(targets) => {
                let refs: Vec<&Matrix<f64>> = targets.iter().collect();
                self.pass.outer_product_vector_product(&refs, v)?
            }
        };
        out.copy_from_slice(&result);
        Ok(())
    }
}

impl<'a, M: Model> ForwardPass<'a, M> {
    fn curvature(&self, which: Which) -> CurvatureOperator<'_, 'a, M> {
        CurvatureOperator { pass: PassRef::Borrowed(self), which }
    }

    /// The Hessian `H` of `h` (eqn 6).
    pub fn hessian(&self) -> CurvatureOperator<'_, 'a, M> {
        self.curvature(Which::Hessian)
    }

    /// The GGN `G = mean Jᵀ H_L J` (eqn 5).
    pub fn ggn(&self) -> CurvatureOperator<'_, 'a, M> {
        self.curvature(Which::Ggn)
    }

    /// The Fisher `F = mean Jᵀ F_R J` (eqn 7).
    pub fn fisher(&self) -> CurvatureOperator<'_, 'a, M> {
        self.curvature(Which::Fisher)
    }

    /// The empirical Fisher `F̄ = mean ∇L_n ∇L_nᵀ` (Section 11).
    pub fn empirical_fisher(&self) -> CurvatureOperator<'_, 'a, M> {
        self.curvature(Which::EmpiricalFisher)
    }

    /// The Monte-Carlo Fisher `mean_n mean_s g̃_{ns} g̃_{ns}ᵀ`, `g̃_{ns} = J_nᵀ ∇_z L(ỹ_{ns}, z_n)`
    /// with `samples` targets `ỹ_{ns} ~ R_{y|z_n}` drawn once here from `seed` (Section 11.1), so
    /// the operator is one fixed symmetric PSD matrix, an unbiased estimate of `F`.
    pub fn monte_carlo_fisher(
        &self,
        samples: usize,
        seed: u64,
    ) -> Result<CurvatureOperator<'_, 'a, M>> {
        let targets = self.monte_carlo_targets(samples, seed)?;
        Ok(self.curvature(Which::MonteCarloFisher(targets)))
    }

    /// The operator for `kind`, owning this pass: for code that must return the operator
    /// from the function that built the pass (e.g. an optimizer's objective).
    pub fn into_operator(self, kind: &CurvatureKind) -> Result<Box<dyn LinearOperator + 'a>>
    where
        M: 'a,
    {
        let which = match kind {
            CurvatureKind::Hessian => Which::Hessian,
            CurvatureKind::Ggn => Which::Ggn,
            CurvatureKind::Fisher => Which::Fisher,
            CurvatureKind::EmpiricalFisher => Which::EmpiricalFisher,
            CurvatureKind::MonteCarloFisher { samples, seed } => {
                Which::MonteCarloFisher(self.monte_carlo_targets(*samples, *seed)?)
            }
            CurvatureKind::BlockDiagonal(inner) => {
                let blocks = layer_blocks(self.problem().model);
                return Ok(Box::new(BlockDiagonal::new(self.into_operator(inner)?, blocks)?));
            }
        };
        Ok(Box::new(CurvatureOperator { pass: PassRef::Owned(Box::new(self)), which }))
    }

    fn monte_carlo_targets(&self, samples: usize, seed: u64) -> Result<Vec<Matrix<f64>>> {
        if samples == 0 {
            return Err(CurvatureError::invalid("monte_carlo_fisher", "needs at least one sample"));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        (0..samples)
            .map(|_| loss::sample_targets(self.problem().loss, self.output(), &mut rng))
            .collect()
    }

    /// The operator for `kind`; block-diagonal kinds keep one block per layer
    /// ([`Model::parameter_blocks`] grouped by layer).
    pub fn operator(&self, kind: &CurvatureKind) -> Result<Box<dyn LinearOperator + '_>> {
        Ok(match kind {
            CurvatureKind::Hessian => Box::new(self.hessian()),
            CurvatureKind::Ggn => Box::new(self.ggn()),
            CurvatureKind::Fisher => Box::new(self.fisher()),
            CurvatureKind::EmpiricalFisher => Box::new(self.empirical_fisher()),
            CurvatureKind::MonteCarloFisher { samples, seed } => {
                Box::new(self.monte_carlo_fisher(*samples, *seed)?)
            }
            CurvatureKind::BlockDiagonal(inner) => {
                let blocks = layer_blocks(self.problem().model);
                Box::new(BlockDiagonal::new(self.operator(inner)?, blocks)?)
            }
        })
    }
}

/// One range of θ per layer (its `W_i` and `b_i` together), from [`Model::parameter_blocks`].
pub fn layer_blocks<M: Model + ?Sized>(model: &M) -> Vec<std::ops::Range<usize>> {
    let mut blocks: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    for b in model.parameter_blocks() {
        match blocks.last_mut() {
            Some((layer, range)) if *layer == b.layer && range.end == b.range.start => {
                range.end = b.range.end
            }
            _ => blocks.push((b.layer, b.range)),
        }
    }
    blocks.into_iter().map(|(_, r)| r).collect()
}
