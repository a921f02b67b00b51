//! numpy arrays in and out. The Python half converts every input once to a
//! C-contiguous array of the dtype the path needs (no copy when it already
//! is one); here those arrays are read in place and results handed to numpy
//! without a copy.

use crate::errors::invalid;
use numpy::{
    Element, PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use widenet::matrix::MatrixRef;

/// Address of the last input matrix read in place (for the test that checks
/// that a C-contiguous float32 array is not copied).
static LAST_INPUT: AtomicUsize = AtomicUsize::new(0);

/// The address of the values of the last input matrix handed to the library.
#[pyfunction]
pub fn last_input_address() -> usize {
    LAST_INPUT.load(Ordering::Relaxed)
}

/// A 2-d array as a borrowed matrix (it must be C-contiguous).
pub fn view<'a, T: Element>(
    a: &'a PyReadonlyArray2<'_, T>,
    name: &str,
) -> PyResult<MatrixRef<'a, T>> {
    let (rows, cols) = (a.shape()[0], a.shape()[1]);
    let data = a
        .as_slice()
        .map_err(|_| invalid(format!("{name} must be C-contiguous")))?;
    LAST_INPUT.store(data.as_ptr() as usize, Ordering::Relaxed);
    MatrixRef::new(rows, cols, data).map_err(crate::errors::to_py)
}

/// A `[rows, cols]` numpy array that takes ownership of `v`.
pub fn matrix<'py, T: Element>(
    py: Python<'py>,
    v: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    PyArray1::from_vec(py, v).reshape([rows, cols])
}

/// A `[a, b, c]` numpy array that takes ownership of `v`.
pub fn cube<'py, T: Element>(
    py: Python<'py>,
    v: Vec<T>,
    shape: [usize; 3],
) -> PyResult<Bound<'py, PyArray3<T>>> {
    PyArray1::from_vec(py, v).reshape(shape)
}
