//! The descriptor of [`Backend::tied_gradients`](super::Backend::tied_gradients):
//! the tied-weight toy model of superposition's draw, forward and backward
//! passes in one operation, for backends that fuse them.

use super::{Buffer, Draw};

/// One gradient evaluation of `E` tied models `x' = act(W^T W x + b)` on a
/// fresh batch of sparse features, as `experiments::superposition::model`
/// composes it from products and elementwise operations.
#[derive(Clone, Copy)]
pub struct TiedOp<'a> {
    /// Members `E`.
    pub members: usize,
    /// Draws per member `B`.
    pub batch: usize,
    /// Features `n`.
    pub features: usize,
    /// Hidden dimensions `m`.
    pub hidden: usize,
    /// ReLU output (else the identity).
    pub relu: bool,
    /// Which draw of [`Backend::sparse_features`](super::Backend::sparse_features).
    pub draw: Draw,
    /// Weights `[E, m, n]`.
    pub w: &'a Buffer,
    /// Biases `[E, n]`.
    pub b: &'a Buffer,
    /// Member ids (u32 bit for bit, see [`super::index_bits`]) `[E]`.
    pub ids: &'a Buffer,
    /// Sparsities `[E]`.
    pub sparsity: &'a Buffer,
    /// The loss's weight of each feature, `2 I_{e,i} / (B n)`, `[E, n]`: the
    /// loss is `1/2 sum_{r, i} weight_{e,i} (x'_{r,i} - x_{r,i})^2`.
    pub weight: &'a Buffer,
}

impl TiedOp<'_> {
    /// Checks every length against the shape, and that a member's draws fit
    /// the 32-bit counter of [`crate::rng::sparse_feature`].
    pub(crate) fn check(
        &self,
        dw: usize,
        db: usize,
        loss: Option<usize>,
    ) -> crate::error::Result<()> {
        let (e, n, m) = (self.members, self.features, self.hidden);
        let mut pairs = vec![
            ("w", self.w.len(), e * m * n),
            ("b", self.b.len(), e * n),
            ("ids", self.ids.len(), e),
            ("sparsity", self.sparsity.len(), e),
            ("weight", self.weight.len(), e * n),
            ("dw", dw, e * m * n),
            ("db", db, e * n),
        ];
        if let Some(l) = loss {
            pairs.push(("loss", l, e));
        }
        super::check_len("tied_gradients", &pairs)?;
        super::check_sparse_features(
            super::Batched::new(e, self.batch, n),
            e,
            e,
            e * self.batch * n,
        )
    }
}
