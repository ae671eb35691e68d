//! Block-diagonal restrictions and dense blocks of curvature matrices.

use super::{check_apply_lengths, LinearOperator};
use crate::error::{CurvatureError, Result};
use autodiff::Matrix;
use std::ops::Range;

/// The block-diagonal restriction of `B` to the given blocks of θ: `B_{kk}` on each block,
/// zero elsewhere (positions in no block map to zero). One product with `B` per block.
pub struct BlockDiagonal<Op> {
    op: Op,
    blocks: Vec<Range<usize>>,
}

impl<Op: LinearOperator> BlockDiagonal<Op> {
    /// Errors if a block is empty, out of range, or overlaps another.
    pub fn new(op: Op, blocks: Vec<Range<usize>>) -> Result<Self> {
        let blocks = check_blocks(op.dim(), blocks)?;
        Ok(BlockDiagonal { op, blocks })
    }

    /// The blocks.
    pub fn blocks(&self) -> &[Range<usize>] {
        &self.blocks
    }
}

/// `blocks` sorted by their start; errors if a block is empty, out of `0..n`, or overlaps
/// another.
pub(crate) fn check_blocks(n: usize, mut blocks: Vec<Range<usize>>) -> Result<Vec<Range<usize>>> {
    blocks.sort_by_key(|r| r.start);
    let mut end = 0;
    for b in &blocks {
        if b.start >= b.end || b.end > n || b.start < end {
            return Err(CurvatureError::invalid(
                "BlockDiagonal::new",
                format!(
                    "block {}..{} is empty, overlaps another, or exceeds dimension {n}",
                    b.start, b.end
                ),
            ));
        }
        end = b.end;
    }
    Ok(blocks)
}

/// `out ← diag(B_kk) v` for the checked `blocks`, where `apply(w, product)` writes `B w` into
/// `product`: one product per block, with `v` restricted to the block (zero elsewhere), of
/// which the block's entries are kept; entries in no block are zero.
pub(crate) fn apply_blocks(
    blocks: &[Range<usize>],
    v: &[f64],
    out: &mut [f64],
    mut apply: impl FnMut(&[f64], &mut [f64]) -> Result<()>,
) -> Result<()> {
    out.fill(0.0);
    let mut restricted = vec![0.0; v.len()];
    let mut product = vec![0.0; v.len()];
    for b in blocks {
        restricted.fill(0.0);
        restricted[b.clone()].copy_from_slice(&v[b.clone()]);
        apply(&restricted, &mut product)?;
        out[b.clone()].copy_from_slice(&product[b.clone()]);
    }
    Ok(())
}

impl<Op: LinearOperator> LinearOperator for BlockDiagonal<Op> {
    fn dim(&self) -> usize {
        self.op.dim()
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_apply_lengths("BlockDiagonal::apply", self.dim(), v, out)?;
        apply_blocks(&self.blocks, v, out, |w, product| self.op.apply(w, product))
    }

    fn is_symmetric(&self) -> bool {
        self.op.is_symmetric()
    }
}

/// The dense block `B[rows, cols]` of a dense matrix.
pub fn dense_block(
    matrix: &Matrix<f64>,
    rows: Range<usize>,
    cols: Range<usize>,
) -> Result<Matrix<f64>> {
    if rows.end > matrix.rows()
        || cols.end > matrix.cols()
        || rows.start > rows.end
        || cols.start > cols.end
    {
        return Err(CurvatureError::Dimension {
            op: "dense_block".into(),
            expected: format!("ranges inside {}", matrix.shape()),
            actual: format!("rows {rows:?}, cols {cols:?}"),
        });
    }
    Ok(Matrix::from_fn(rows.len(), cols.len(), |i, j| matrix[(rows.start + i, cols.start + j)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_diagonal_keeps_exactly_the_diagonal_blocks() {
        let a = Matrix::from_fn(5, 5, |i, j| (1 + i * 5 + j) as f64);
        let bd = BlockDiagonal::new(a.clone(), vec![3..5, 0..2]).unwrap();
        let dense = bd.to_dense().unwrap();
        for i in 0..5 {
            for j in 0..5 {
                let same_block = (i < 2 && j < 2) || (i >= 3 && j >= 3);
                let want = if same_block { a[(i, j)] } else { 0.0 };
                assert_eq!(dense[(i, j)], want, "({i}, {j})");
            }
        }
        assert!(BlockDiagonal::new(a.clone(), vec![0..3, 2..4]).is_err(), "overlap accepted");
        assert!(
            BlockDiagonal::new(a, vec![Range { start: 0, end: 6 }]).is_err(),
            "out of range accepted"
        );
    }
}
