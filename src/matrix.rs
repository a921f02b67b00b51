//! A row-major dense matrix on the host, the currency between the kernel and
//! prediction code, `.npy` files and faer.

use crate::error::{Error, Result};

/// Row-major `rows x cols` matrix. Its values always number `rows * cols`:
/// the constructors check it and the fields cannot be changed from outside.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix<T = f64> {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) data: Vec<T>,
}

impl<T> Matrix<T> {
    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values, row after row.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The values, mutably (their number cannot change).
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The values, row after row, by value.
    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// A borrowed view of the same values.
    pub fn view(&self) -> MatrixRef<'_, T> {
        MatrixRef {
            rows: self.rows,
            cols: self.cols,
            data: &self.data,
        }
    }
}

/// A borrowed row-major `rows x cols` matrix: values that live elsewhere
/// (another matrix, or an array handed over from Python), read in place.
#[derive(Debug, PartialEq)]
pub struct MatrixRef<'a, T = f64> {
    rows: usize,
    cols: usize,
    data: &'a [T],
}

impl<T> Clone for MatrixRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for MatrixRef<'_, T> {}

impl<'a, T> MatrixRef<'a, T> {
    /// Wraps borrowed values, checking their number.
    pub fn new(rows: usize, cols: usize, data: &'a [T]) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::shape(
                "matrix",
                format!("{} values for a {rows} x {cols} matrix", data.len()),
            ));
        }
        Ok(MatrixRef { rows, cols, data })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values, row after row.
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &'a [T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Where the first non-finite value sits, as `(row, column)`.
    pub fn first_non_finite(&self) -> Option<(usize, usize)>
    where
        T: Copy + Into<f64>,
    {
        let p = self.data.iter().position(|&v| !v.into().is_finite())?;
        Some((p / self.cols.max(1), p % self.cols.max(1)))
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Matrix<T>
    where
        T: Clone,
    {
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: self.data.to_vec(),
        }
    }
}

impl<T: Copy + Default> Matrix<T> {
    /// A zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![T::default(); rows * cols],
        }
    }

    /// Wraps data, checking its length.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::shape(
                "matrix",
                format!("{} values for a {rows} x {cols} matrix", data.len()),
            ));
        }
        Ok(Matrix { rows, cols, data })
    }

    /// Element `(i, j)`.
    pub fn at(&self, i: usize, j: usize) -> T {
        self.data[i * self.cols + j]
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

impl Matrix<f64> {
    /// Converts to f32.
    pub fn to_f32(&self) -> Matrix<f32> {
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: self.data.iter().map(|&v| v as f32).collect(),
        }
    }

    /// A faer copy.
    pub fn to_faer(&self) -> faer::Mat<f64> {
        faer::Mat::from_fn(self.rows, self.cols, |i, j| self.at(i, j))
    }

    /// From a faer matrix.
    pub fn from_faer(m: faer::MatRef<'_, f64>) -> Self {
        let (rows, cols) = (m.nrows(), m.ncols());
        let mut data = Vec::with_capacity(rows * cols);
        for i in 0..rows {
            for j in 0..cols {
                data.push(m[(i, j)]);
            }
        }
        Matrix { rows, cols, data }
    }

    /// Checks that every value is finite.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        match self.data.iter().position(|v| !v.is_finite()) {
            Some(p) => Err(Error::invalid(format!(
                "{what} has a non-finite value ({}) at row {}, column {}",
                self.data[p],
                p / self.cols.max(1),
                p % self.cols.max(1)
            ))),
            None => Ok(()),
        }
    }
}

impl Matrix<f32> {
    /// Converts to f64.
    pub fn to_f64(&self) -> Matrix<f64> {
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: self.data.iter().map(|&v| v as f64).collect(),
        }
    }
}
