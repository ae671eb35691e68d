//! Dense row-major matrices and strided views: [`Matrix`], [`MatRef`], [`MatMut`], [`Shape`].
//!
//! A batch is a matrix whose rows are examples; a scalar is a `1×1` matrix; a flat parameter
//! vector θ is an `n×1` matrix. Views carry a row and a column stride, so a transpose or the
//! real part of a dual matrix is a view of the same buffer, never a copy.

use crate::error::AutodiffError;
use crate::kernels::buffers;
/// The shape of a matrix (defined in [`crate::shape`], below the error type that prints it).
pub use crate::shape::Shape;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut};

/// A dense row-major matrix that owns its elements.
#[derive(Debug, PartialEq, Default)]
pub struct Matrix<T> {
    rows: usize,
    cols: usize,
    data: Vec<T>,
}

/// The number of elements of a `rows×cols` matrix of `T`, or an error naming `op` and the shape
/// if it overflows `usize` or its bytes overflow `isize::MAX` (the most one buffer can hold).
pub(crate) fn checked_size<T>(op: &str, rows: usize, cols: usize) -> Result<usize, AutodiffError> {
    let len = rows.checked_mul(cols);
    match len.and_then(|n| n.checked_mul(std::mem::size_of::<T>().max(1))) {
        Some(bytes) if bytes <= isize::MAX as usize => Ok(len.unwrap_or(0)),
        _ => Err(AutodiffError::invalid(
            op,
            format!(
                "a {rows}×{cols} matrix of {}-byte elements is larger than memory can hold",
                std::mem::size_of::<T>()
            ),
        )),
    }
}

/// [`checked_size`] for the constructors that return `Self`: a size that cannot exist is a bug
/// in the caller, reported with the shape instead of wrapping around.
fn size_or_panic<T>(op: &str, rows: usize, cols: usize) -> usize {
    checked_size::<T>(op, rows, cols).unwrap_or_else(|e| panic!("{e}"))
}

impl<T: Copy> Matrix<T> {
    /// A matrix from row-major data; errors if `data.len() != rows * cols`, or if `rows × cols`
    /// overflows (an error naming the shape, never a wrapped product that happens to match).
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Result<Self, AutodiffError> {
        let len = checked_size::<T>("Matrix::from_vec", rows, cols)?;
        if data.len() != len {
            return Err(AutodiffError::ShapeMismatch {
                op: "Matrix::from_vec".into(),
                lhs: Shape::new(rows, cols),
                rhs: Shape::new(data.len(), 1),
            });
        }
        Ok(Matrix { rows, cols, data })
    }

    /// A column vector (`n×1`) holding `data`.
    pub fn column(data: Vec<T>) -> Self {
        Matrix { rows: data.len(), cols: 1, data }
    }

    /// A row vector (`1×n`) holding `data`.
    pub fn row_vector(data: Vec<T>) -> Self {
        Matrix { rows: 1, cols: data.len(), data }
    }

    /// A matrix whose `(i, j)` element is `f(i, j)`.
    ///
    /// # Panics
    /// If `rows × cols` elements cannot exist (they overflow `usize` or `isize::MAX` bytes).
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> T) -> Self {
        let len = size_or_panic::<T>("Matrix::from_fn", rows, cols);
        let data = if cols == 1 {
            // A column (θ-sized, in `H v`): one counted loop rather than a push per element.
            buffers::collect(rows, (0..rows).map(|i| f(i, 0)))
        } else {
            let mut data = buffers::with_capacity(len);
            for i in 0..rows {
                data.extend((0..cols).map(|j| f(i, j)));
            }
            data
        };
        Matrix { rows, cols, data }
    }

    /// A matrix with every element equal to `value`.
    ///
    /// # Panics
    /// If `rows × cols` elements cannot exist (they overflow `usize` or `isize::MAX` bytes);
    /// [`try_filled`](Self::try_filled) is for sizes that come from input.
    pub fn filled(rows: usize, cols: usize, value: T) -> Self {
        let len = size_or_panic::<T>("Matrix::filled", rows, cols);
        Matrix { rows, cols, data: buffers::filled(len, value) }
    }

    /// As [`filled`](Self::filled), for sizes that come from input: an error naming the shape
    /// if `rows × cols` overflows, or if the allocator cannot provide the memory (instead of
    /// aborting the process).
    pub fn try_filled(rows: usize, cols: usize, value: T) -> Result<Self, AutodiffError> {
        let len = checked_size::<T>("Matrix::try_filled", rows, cols)?;
        let mut data = Vec::new();
        data.try_reserve_exact(len).map_err(|e| {
            AutodiffError::invalid("Matrix::try_filled", format!("a {rows}×{cols} matrix: {e}"))
        })?;
        data.resize(len, value);
        Ok(Matrix { rows, cols, data })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The shape `rows×cols`.
    pub fn shape(&self) -> Shape {
        Shape::new(self.rows, self.cols)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the matrix holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, mutably.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The elements in row-major order, by value.
    pub fn into_vec(mut self) -> Vec<T> {
        std::mem::take(&mut self.data)
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i` as a mutable slice.
    pub fn row_mut(&mut self, i: usize) -> &mut [T] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The same elements read as a `rows×cols` matrix (row-major order is kept).
    pub fn reshape(self, rows: usize, cols: usize) -> Result<Self, AutodiffError> {
        Matrix::from_vec(rows, cols, self.into_vec())
    }

    /// A new matrix holding the transpose.
    pub fn transpose(&self) -> Self {
        Matrix::from_fn(self.cols, self.rows, |i, j| self.data[j * self.cols + i])
    }

    /// Applies `f` to every element.
    pub fn map<U: Copy>(&self, f: impl FnMut(T) -> U) -> Matrix<U> {
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: buffers::collect(self.data.len(), self.data.iter().copied().map(f)),
        }
    }

    /// A read-only strided view of the whole matrix.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        MatRef {
            ptr: self.data.as_ptr(),
            rows: self.rows,
            cols: self.cols,
            row_stride: self.cols as isize,
            col_stride: 1,
            _marker: PhantomData,
        }
    }

    /// A mutable strided view of the whole matrix.
    pub fn as_mut(&mut self) -> MatMut<'_, T> {
        MatMut {
            ptr: self.data.as_mut_ptr(),
            rows: self.rows,
            cols: self.cols,
            row_stride: self.cols as isize,
            col_stride: 1,
            _marker: PhantomData,
        }
    }
}

impl<T: Copy + Default> Matrix<T> {
    /// A `rows×cols` matrix of zeros (`T::default()`).
    ///
    /// # Panics
    /// As [`filled`](Matrix::filled); [`try_zeros`](Self::try_zeros) is for sizes that come
    /// from input.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix::filled(rows, cols, T::default())
    }

    /// As [`zeros`](Self::zeros), with an error instead of a panic or an abort
    /// ([`try_filled`](Matrix::try_filled)).
    pub fn try_zeros(rows: usize, cols: usize) -> Result<Self, AutodiffError> {
        Matrix::try_filled(rows, cols, T::default())
    }
}

impl<T: Clone> Clone for Matrix<T> {
    fn clone(&self) -> Self {
        let mut data = buffers::with_capacity(self.data.len());
        data.extend_from_slice(&self.data);
        Matrix { rows: self.rows, cols: self.cols, data }
    }
}

/// Inside a [`BufferPool::scope`](crate::BufferPool::scope) the buffer goes back to the pool.
impl<T> Drop for Matrix<T> {
    fn drop(&mut self) {
        buffers::give(std::mem::take(&mut self.data));
    }
}

/// A seed given by value: an owned matrix is used as it is (no copy), e.g. by
/// [`Tape::tangents`](crate::Tape::tangents).
impl<T: Clone> From<Matrix<T>> for std::borrow::Cow<'_, Matrix<T>> {
    fn from(m: Matrix<T>) -> Self {
        std::borrow::Cow::Owned(m)
    }
}

/// A seed given by reference: copied where it must be owned.
impl<'a, T: Clone> From<&'a Matrix<T>> for std::borrow::Cow<'a, Matrix<T>> {
    fn from(m: &'a Matrix<T>) -> Self {
        std::borrow::Cow::Borrowed(m)
    }
}

impl<T> Index<(usize, usize)> for Matrix<T> {
    type Output = T;
    fn index(&self, (i, j): (usize, usize)) -> &T {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) out of {}×{}",
            self.rows,
            self.cols
        );
        &self.data[i * self.cols + j]
    }
}

impl<T> IndexMut<(usize, usize)> for Matrix<T> {
    fn index_mut(&mut self, (i, j): (usize, usize)) -> &mut T {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) out of {}×{}",
            self.rows,
            self.cols
        );
        &mut self.data[i * self.cols + j]
    }
}

/// A read-only strided view: element `(i, j)` is at `ptr + i·row_stride + j·col_stride`.
///
/// Invariant (upheld by every constructor): every such offset for `i < rows`, `j < cols`
/// lies inside one live allocation borrowed for `'a`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    ptr: *const T,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
    _marker: PhantomData<&'a T>,
}

// SAFETY: a MatRef is a shared borrow of `T`s.
unsafe impl<T: Sync> Send for MatRef<'_, T> {}
unsafe impl<T: Sync> Sync for MatRef<'_, T> {}

impl<'a, T> MatRef<'a, T> {
    /// Builds a view from raw parts.
    ///
    /// # Safety
    /// Every offset `i·row_stride + j·col_stride` (`i < rows`, `j < cols`) from `ptr` must lie
    /// inside one allocation that stays alive and unmutated for `'a`.
    pub unsafe fn from_raw_parts(
        ptr: *const T,
        rows: usize,
        cols: usize,
        row_stride: isize,
        col_stride: isize,
    ) -> Self {
        MatRef { ptr, rows, cols, row_stride, col_stride, _marker: PhantomData }
    }

    /// A view of a row-major slice as `rows×cols`; `None` if the length does not match.
    pub fn from_slice(data: &'a [T], rows: usize, cols: usize) -> Option<Self> {
        (rows.checked_mul(cols) == Some(data.len())).then_some(MatRef {
            ptr: data.as_ptr(),
            rows,
            cols,
            row_stride: cols as isize,
            col_stride: 1,
            _marker: PhantomData,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Distance in elements between rows.
    pub fn row_stride(&self) -> isize {
        self.row_stride
    }
    /// Distance in elements between columns.
    pub fn col_stride(&self) -> isize {
        self.col_stride
    }
    /// Pointer to element `(0, 0)`.
    pub fn as_ptr(&self) -> *const T {
        self.ptr
    }
    /// The shape `rows×cols`.
    pub fn shape(&self) -> Shape {
        Shape::new(self.rows, self.cols)
    }

    /// The transpose, as a view (strides swapped).
    pub fn t(self) -> Self {
        MatRef {
            ptr: self.ptr,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            _marker: PhantomData,
        }
    }

    /// Element `(i, j)`; panics when out of range.
    pub fn get(&self, i: usize, j: usize) -> T
    where
        T: Copy,
    {
        assert!(i < self.rows && j < self.cols, "index ({i}, {j}) out of {}", self.shape());
        // SAFETY: in range, by the struct invariant.
        unsafe { *self.ptr.offset(i as isize * self.row_stride + j as isize * self.col_stride) }
    }

    /// Copies the view into a new row-major matrix.
    pub fn to_matrix(&self) -> Matrix<T>
    where
        T: Copy,
    {
        Matrix::from_fn(self.rows, self.cols, |i, j| self.get(i, j))
    }
}

/// A mutable strided view; same layout rules as [`MatRef`], and a unique borrow.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    ptr: *mut T,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
    _marker: PhantomData<&'a mut T>,
}

// SAFETY: a MatMut is a unique borrow of `T`s.
unsafe impl<T: Send> Send for MatMut<'_, T> {}

impl<'a, T> MatMut<'a, T> {
    /// Builds a view from raw parts.
    ///
    /// # Safety
    /// As [`MatRef::from_raw_parts`], and no other live reference may alias these elements
    /// for `'a`; distinct `(i, j)` must map to distinct offsets.
    pub unsafe fn from_raw_parts(
        ptr: *mut T,
        rows: usize,
        cols: usize,
        row_stride: isize,
        col_stride: isize,
    ) -> Self {
        MatMut { ptr, rows, cols, row_stride, col_stride, _marker: PhantomData }
    }

    /// A mutable view of a row-major slice as `rows×cols`; `None` if the length does not match.
    pub fn from_slice(data: &'a mut [T], rows: usize, cols: usize) -> Option<Self> {
        (rows.checked_mul(cols) == Some(data.len())).then_some(MatMut {
            ptr: data.as_mut_ptr(),
            rows,
            cols,
            row_stride: cols as isize,
            col_stride: 1,
            _marker: PhantomData,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Distance in elements between rows.
    pub fn row_stride(&self) -> isize {
        self.row_stride
    }
    /// Distance in elements between columns.
    pub fn col_stride(&self) -> isize {
        self.col_stride
    }
    /// Pointer to element `(0, 0)`.
    pub fn as_mut_ptr(&self) -> *mut T {
        self.ptr
    }
    /// The shape `rows×cols`.
    pub fn shape(&self) -> Shape {
        Shape::new(self.rows, self.cols)
    }

    /// The transpose, as a view.
    pub fn t(self) -> Self {
        MatMut {
            ptr: self.ptr,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            _marker: PhantomData,
        }
    }

    /// A shorter-lived mutable view of the same elements (a reborrow).
    pub fn rb_mut(&mut self) -> MatMut<'_, T> {
        MatMut {
            ptr: self.ptr,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
            _marker: PhantomData,
        }
    }

    /// A read-only view of the same elements.
    pub fn rb(&self) -> MatRef<'_, T> {
        MatRef {
            ptr: self.ptr,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
            _marker: PhantomData,
        }
    }
}
