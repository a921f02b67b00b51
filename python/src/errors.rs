//! The one place where the library's errors become Python exceptions: bad
//! input is a `ValueError`, a device failure a `RuntimeError`, a stopped run
//! a `KeyboardInterrupt`, always with the library's message.

use pyo3::PyErr;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use widenet::Error;

/// The Python exception for a library error.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Invalid(_)
        | Error::Shape { .. }
        | Error::NoDevice(_)
        | Error::Numerical(_)
        | Error::File { .. }
        | Error::Io { .. } => PyValueError::new_err(msg),
        Error::Interrupted(_) | Error::Cancelled => PyKeyboardInterrupt::new_err(msg),
        // Device failures, and any kind of error a later version adds.
        _ => PyRuntimeError::new_err(msg),
    }
}

/// A `ValueError` with this message.
pub fn invalid(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// Converts a library result.
pub trait OrPy<T> {
    /// The value, or the library's error as a Python exception.
    fn or_py(self) -> pyo3::PyResult<T>;
}

impl<T> OrPy<T> for widenet::Result<T> {
    fn or_py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}

/// Raises the exception a library error of kind `kind` becomes (for the test
/// of this mapping: device failures cannot be provoked on demand).
#[pyo3::pyfunction]
pub fn raise_library_error(kind: &str) -> pyo3::PyResult<()> {
    let e = match kind {
        "invalid" => Error::invalid("bad value"),
        "shape" => Error::shape("kernel", "x1 has 3 features but x2 has 4"),
        "no-device" => Error::NoDevice("nosuch".into()),
        "numerical" => Error::Numerical("not positive definite".into()),
        "file" => Error::file("p.safetensors", "not a valid safetensors file"),
        "device-limit" => Error::DeviceLimit {
            op: "matmul",
            what: "max_storage_buffer_binding_size",
            needed: 1 << 40,
            limit: 1 << 27,
            device: "test".into(),
        },
        "gpu" => Error::Gpu {
            op: "train",
            message: "device lost".into(),
        },
        "cancelled" => Error::Cancelled,
        "interrupted" => Error::Interrupted("runs/x".into()),
        other => return Err(invalid(format!("unknown error kind '{other}'"))),
    };
    Err(to_py(e))
}
