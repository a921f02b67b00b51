//! Descriptions of batched matrix products and batched matrices.

use crate::error::{Error, Result};

/// A batched matrix product `C[e] = alpha * op(A[e]) * op(B[e]) + beta * C[e]`.
///
/// Every operand is row-major and the members of the batch are stored one after
/// another. `op(A)` is `m x k`: A is stored `[m, k]`, or `[k, m]` when `trans_a`.
/// `op(B)` is `k x n`: B is stored `[k, n]`, or `[n, k]` when `trans_b`. C is
/// `[m, n]`. A broadcast operand holds one member, used for every `e`. With
/// `beta == 0` the old contents of C are never read (they may be NaN).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Matmul {
    /// Members of the batch.
    pub batch: usize,
    /// Rows of `op(A)` and C.
    pub m: usize,
    /// Columns of `op(B)` and C.
    pub n: usize,
    /// Columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
    /// A is stored transposed, `[k, m]`.
    pub trans_a: bool,
    /// B is stored transposed, `[n, k]`.
    pub trans_b: bool,
    /// A holds one member, used for every member.
    pub broadcast_a: bool,
    /// B holds one member, used for every member.
    pub broadcast_b: bool,
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of C's old contents (0: never read).
    pub beta: f32,
}

impl Matmul {
    /// A plain `C = A * B` for one member.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Matmul {
            batch: 1,
            m,
            n,
            k,
            trans_a: false,
            trans_b: false,
            broadcast_a: false,
            broadcast_b: false,
            alpha: 1.0,
            beta: 0.0,
        }
    }

    /// Sets the batch size.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// Sets the transpose flags.
    pub fn trans(mut self, a: bool, b: bool) -> Self {
        self.trans_a = a;
        self.trans_b = b;
        self
    }

    /// Sets the broadcast flags.
    pub fn broadcast(mut self, a: bool, b: bool) -> Self {
        self.broadcast_a = a;
        self.broadcast_b = b;
        self
    }

    /// Sets `alpha` and `beta`.
    pub fn scaled(mut self, alpha: f32, beta: f32) -> Self {
        self.alpha = alpha;
        self.beta = beta;
        self
    }

    /// Elements of A as stored (all members).
    pub fn a_len(&self) -> usize {
        self.m * self.k * if self.broadcast_a { 1 } else { self.batch }
    }

    /// Elements of B as stored (all members).
    pub fn b_len(&self) -> usize {
        self.k * self.n * if self.broadcast_b { 1 } else { self.batch }
    }

    /// Elements of C.
    pub fn c_len(&self) -> usize {
        self.m * self.n * self.batch
    }

    /// Strides of A as (row i of op(A), column p of op(A)).
    pub(crate) fn a_strides(&self) -> (usize, usize) {
        if self.trans_a {
            (1, self.m)
        } else {
            (self.k, 1)
        }
    }

    /// Strides of B as (row p of op(B), column j of op(B)).
    pub(crate) fn b_strides(&self) -> (usize, usize) {
        if self.trans_b {
            (1, self.k)
        } else {
            (self.n, 1)
        }
    }

    /// Checks the buffers against the shapes.
    pub fn check(&self, a: usize, b: usize, c: usize) -> Result<()> {
        if self.batch == 0 || self.m == 0 || self.n == 0 {
            return Err(Error::shape("matmul", format!("empty product {self:?}")));
        }
        for (name, have, want) in [
            ("A", a, self.a_len()),
            ("B", b, self.b_len()),
            ("C", c, self.c_len()),
        ] {
            if have != want {
                return Err(Error::shape(
                    "matmul",
                    format!(
                        "operand {name} has {have} elements but batch={} m={} n={} k={} needs {want}",
                        self.batch, self.m, self.n, self.k
                    ),
                ));
            }
        }
        if !self.alpha.is_finite() || !self.beta.is_finite() {
            return Err(Error::invalid("matmul: alpha and beta must be finite"));
        }
        Ok(())
    }
}

/// Shape of a batch of row-major matrices `[batch, rows, cols]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batched {
    /// Members of the batch.
    pub batch: usize,
    /// Rows of each matrix.
    pub rows: usize,
    /// Columns of each matrix.
    pub cols: usize,
}

impl Batched {
    /// `[batch, rows, cols]`.
    pub fn new(batch: usize, rows: usize, cols: usize) -> Self {
        Batched { batch, rows, cols }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.batch * self.rows * self.cols
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
