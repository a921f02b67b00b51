//! Errors of the widenet library: every failure is a value that names the
//! operation, the shapes and the limit involved.

use std::path::PathBuf;

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in widenet. More kinds may be added: match
/// with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller passed something that cannot be computed (bad shape, bad value).
    #[error("invalid input: {0}")]
    Invalid(String),

    /// Shapes of operands do not agree.
    #[error("shape mismatch in {op}: {detail}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// What does not agree.
        detail: String,
    },

    /// A problem exceeds a device limit and cannot be split.
    #[error(
        "{op} needs {needed} bytes in one binding but the device '{device}' allows at most {limit} bytes ({what})"
    )]
    DeviceLimit {
        /// The operation.
        op: &'static str,
        /// The limit's name in wgpu.
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// The device's limit.
        limit: u64,
        /// The device's name.
        device: String,
    },

    /// No adapter matched the request.
    #[error("no device matches '{0}'; run `widenet devices` to list them")]
    NoDevice(String),

    /// The GPU reported an error (validation, out of memory, device lost).
    #[error("GPU error during {op}: {message}")]
    Gpu {
        /// The operation.
        op: &'static str,
        /// The device's message.
        message: String,
    },

    /// A numerical failure (for example a kernel matrix that is not positive definite).
    #[error("{0}")]
    Numerical(String),

    /// The user interrupted a long run; what was finished has been written.
    #[error(
        "interrupted; the finished points and a partial report are in {0} (resume from it to continue)"
    )]
    Interrupted(String),

    /// The caller asked a long computation to stop (a stop flag set from
    /// another thread, see [`crate::kernel::Control`]); nothing was returned.
    #[error("stopped before the end, as the caller asked")]
    Cancelled,

    /// The operating system refused to read or write a file; the source
    /// error is kept.
    #[error("{path}: cannot {op}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was tried (`read`, `write`, ...).
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A file's contents are not what was expected.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// Shorthand for [`Error::Shape`].
    pub fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        Error::Shape {
            op,
            detail: detail.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// Shorthand for [`Error::File`].
    pub fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::File {
            path: path.into(),
            message: message.to_string(),
        }
    }
}
