//! The curvature matrices of any [`CurvatureProducts`] (a [`ForwardPass`], a
//! [`ShardedPass`](crate::ShardedPass)) as [`LinearOperator`]s: [`CurvatureOperator`], with the
//! one dispatch over [`CurvatureKind`].

use super::block::{apply_blocks, check_blocks};
use super::{check_apply_lengths, CurvatureKind, LinearOperator};
use crate::error::Result;
use crate::model::Model;
use crate::problem::ForwardPass;
use crate::products::CurvatureProducts;
use std::ops::Range;

/// `v ↦ B v` on a pass `P`, chosen once from a [`CurvatureKind`] by [`product`].
type Product<P> = Box<dyn Fn(&P, &[f64]) -> Result<Vec<f64>>>;

/// One range of θ per layer, sorted.
type LayerBlocks = Vec<Range<usize>>;

/// One curvature matrix `B` (a [`CurvatureKind`]) at the θ and batch of a pass, known through
/// its products: `apply` runs the pass's product for `B` ([`CurvatureProducts`]).
///
/// `P` is the pass itself (the operator owns it, e.g. for an objective that returns the
/// operator from the function that recorded the pass) or a reference to it. The Monte-Carlo
/// Fisher's targets are drawn once, when the operator is built, so the operator is one fixed
/// symmetric matrix; the block-diagonal kinds keep one block per layer
/// ([`CurvatureProducts::layer_blocks`]).
///
/// Built by [`CurvatureOperator::new`], or by [`ForwardPass::hessian`],
/// [`ggn`](ForwardPass::ggn), [`fisher`](ForwardPass::fisher),
/// [`empirical_fisher`](ForwardPass::empirical_fisher),
/// [`monte_carlo_fisher`](ForwardPass::monte_carlo_fisher), [`ForwardPass::operator`],
/// [`ForwardPass::into_operator`] and the same on a [`ShardedPass`](crate::ShardedPass).
pub struct CurvatureOperator<P: CurvatureProducts> {
    pass: P,
    kind: CurvatureKind,
    product: Product<P>,
    /// The layer blocks, for a block-diagonal kind.
    blocks: Option<LayerBlocks>,
}

impl<P: CurvatureProducts> CurvatureOperator<P> {
    /// The matrix of `kind` on `pass`. Errors if `kind` is a Monte-Carlo Fisher with zero
    /// samples, or its targets cannot be drawn.
    pub fn new(pass: P, kind: &CurvatureKind) -> Result<Self> {
        let (product, blocks) = product(&pass, kind)?;
        Ok(CurvatureOperator { pass, kind: kind.clone(), product, blocks })
    }

    /// Which matrix this is.
    pub fn kind(&self) -> &CurvatureKind {
        &self.kind
    }

    /// The pass the products run on.
    pub fn pass(&self) -> &P {
        &self.pass
    }

    /// The pass, given back.
    pub fn into_pass(self) -> P {
        self.pass
    }
}

/// The one dispatch over [`CurvatureKind`]: the product `v ↦ B v` of `kind` on a pass like
/// `pass`, with a Monte-Carlo kind's targets drawn here, once, and the layer blocks of a
/// block-diagonal kind. (The restriction to the same blocks is idempotent, so a block-diagonal
/// kind of a block-diagonal kind is the one restriction.)
fn product<P: CurvatureProducts>(
    pass: &P,
    kind: &CurvatureKind,
) -> Result<(Product<P>, Option<LayerBlocks>)> {
    let product: Product<P> = match kind {
        CurvatureKind::Hessian => Box::new(|p: &P, v: &[f64]| p.hessian_vector_product(v)),
        CurvatureKind::Ggn => Box::new(|p: &P, v: &[f64]| p.ggn_vector_product(v)),
        CurvatureKind::Fisher => Box::new(|p: &P, v: &[f64]| p.fisher_vector_product(v)),
        CurvatureKind::EmpiricalFisher => {
            Box::new(|p: &P, v: &[f64]| p.empirical_fisher_vector_product(v))
        }
        CurvatureKind::MonteCarloFisher { samples, seed } => {
            let targets = pass.monte_carlo_targets(*samples, *seed)?;
            Box::new(move |p: &P, v: &[f64]| p.monte_carlo_fisher_vector_product(&targets, v))
        }
        CurvatureKind::BlockDiagonal(inner) => {
            let (inner, _) = product(pass, inner)?;
            return Ok((inner, Some(check_blocks(pass.dim(), pass.layer_blocks())?)));
        }
    };
    Ok((product, None))
}

impl<P: CurvatureProducts> LinearOperator for CurvatureOperator<P> {
    fn dim(&self) -> usize {
        self.pass.dim()
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply_lengths("CurvatureOperator::apply", self.dim(), v, out)?;
        let apply = |v: &[f64], out: &mut [f64]| {
            let result = (self.product)(&self.pass, v)?;
            out.copy_from_slice(&result);
            self.pass.recycle(result);
            Ok(())
        };
        match &self.blocks {
            Some(blocks) => apply_blocks(blocks, v, out, apply),
            None => apply(v, out),
        }
    }
}

impl<'a, M: Model> ForwardPass<'a, M> {
    /// The operator of a kind that draws nothing, borrowing this pass.
    fn curvature(&self, kind: CurvatureKind) -> CurvatureOperator<&Self> {
        CurvatureOperator::new(self, &kind)
            .expect("internal error: only the Monte-Carlo Fisher's sampling can fail")
    }

    /// The Hessian `H` of `h` (eqn 6).
    pub fn hessian(&self) -> CurvatureOperator<&Self> {
        self.curvature(CurvatureKind::Hessian)
    }

    /// The GGN `G = mean Jᵀ H_L J` (eqn 5).
    pub fn ggn(&self) -> CurvatureOperator<&Self> {
        self.curvature(CurvatureKind::Ggn)
    }

    /// The Fisher `F = mean Jᵀ F_R J` (eqn 7).
    pub fn fisher(&self) -> CurvatureOperator<&Self> {
        self.curvature(CurvatureKind::Fisher)
    }

    /// The empirical Fisher `F̄ = mean ∇L_n ∇L_nᵀ` (Section 11).
    pub fn empirical_fisher(&self) -> CurvatureOperator<&Self> {
        self.curvature(CurvatureKind::EmpiricalFisher)
    }

    /// The Monte-Carlo Fisher `mean_n mean_s g̃_{ns} g̃_{ns}ᵀ`, `g̃_{ns} = J_nᵀ ∇_z L(ỹ_{ns}, z_n)`
    /// with `samples` targets `ỹ_{ns} ~ R_{y|z_n}` drawn once here from `seed` (Section 11.1), so
    /// the operator is one fixed symmetric PSD matrix, an unbiased estimate of `F`.
    pub fn monte_carlo_fisher(
        &self,
        samples: usize,
        seed: u64,
    ) -> Result<CurvatureOperator<&Self>> {
        CurvatureOperator::new(self, &CurvatureKind::MonteCarloFisher { samples, seed })
    }

    /// The operator for `kind`, owning this pass: for code that must return the operator
    /// from the function that built the pass (e.g. an optimizer's objective).
    pub fn into_operator(self, kind: &CurvatureKind) -> Result<Box<dyn LinearOperator + 'a>>
    where
        M: 'a,
    {
        Ok(Box::new(CurvatureOperator::new(self, kind)?))
    }

    /// The operator for `kind`; block-diagonal kinds keep one block per layer
    /// ([`Model::parameter_blocks`] grouped by layer).
    pub fn operator(&self, kind: &CurvatureKind) -> Result<Box<dyn LinearOperator + '_>> {
        Ok(Box::new(CurvatureOperator::new(self, kind)?))
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
