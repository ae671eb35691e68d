//! [`Shape`]: the rows and columns of a matrix, the lowest module of the crate (the error type
//! and the matrices both name it).

use std::fmt;

/// The shape of a matrix, printed as `rows×cols` in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape {
    /// Number of rows (examples, for a batch).
    pub rows: usize,
    /// Number of columns (features).
    pub cols: usize,
}

impl Shape {
    /// A `rows×cols` shape.
    pub const fn new(rows: usize, cols: usize) -> Self {
        Shape { rows, cols }
    }

    /// Number of elements (saturating at `usize::MAX`: a shape too large to hold is never
    /// mistaken for a small one; [`checked_len`](Self::checked_len) tells the two apart).
    pub const fn len(&self) -> usize {
        self.rows.saturating_mul(self.cols)
    }

    /// Number of elements, or `None` if `rows × cols` overflows `usize`.
    pub const fn checked_len(&self) -> Option<usize> {
        self.rows.checked_mul(self.cols)
    }

    /// Whether the shape holds no element.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}", self.rows, self.cols)
    }
}
