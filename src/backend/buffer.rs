//! Memory owned by a backend, opaque to its callers.

use std::any::Any;

/// A flat f32 array owned by a backend. Create it with
/// [`Backend::upload`](super::Backend::upload) or
/// [`Backend::zeros`](super::Backend::zeros) and read it back with
/// [`Backend::read`](super::Backend::read). What holds the values (host memory,
/// a device buffer) is the backend's business: a buffer made by one backend is
/// refused by another.
pub struct Buffer {
    len: usize,
    storage: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer").field("len", &self.len).finish()
    }
}

impl Buffer {
    /// Wraps a backend's storage of `len` values (for backend implementations).
    pub fn new(len: usize, storage: impl Any + Send + Sync) -> Self {
        Buffer {
            len,
            storage: Box::new(storage),
        }
    }

    /// Number of f32 elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The storage, if it is of type `T` (for backend implementations).
    pub fn storage<T: Any>(&self) -> Option<&T> {
        self.storage.downcast_ref()
    }

    /// The storage, mutably, if it is of type `T` (for backend implementations).
    pub fn storage_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.storage.downcast_mut()
    }
}

/// A read in flight, see [`Backend::read_begin`](super::Backend::read_begin).
pub struct ReadHandle(Inner);

enum Inner {
    Ready(Vec<f32>),
    Pending(Box<dyn Any + Send>),
}

impl std::fmt::Debug for ReadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Ready(v) => write!(f, "ReadHandle::Ready({} values)", v.len()),
            Inner::Pending(_) => write!(f, "ReadHandle::Pending"),
        }
    }
}

impl ReadHandle {
    /// A read whose values are already on the host.
    pub fn ready(values: Vec<f32>) -> Self {
        ReadHandle(Inner::Ready(values))
    }

    /// A read a backend will finish later (for backend implementations).
    pub fn pending(state: impl Any + Send) -> Self {
        ReadHandle(Inner::Pending(Box::new(state)))
    }

    /// The values if they are ready, else the backend's pending state.
    pub fn into_parts(self) -> Result<Vec<f32>, Box<dyn Any + Send>> {
        match self.0 {
            Inner::Ready(v) => Ok(v),
            Inner::Pending(p) => Err(p),
        }
    }
}
