//! Vectors in parameter space, one per member, on the device: the directions
//! of Hessian-vector products and the Lanczos vectors of the spectra. Every
//! operation is per member (each member has its own vector and its own
//! coefficients), batched over the members, so that nothing but the
//! per-member scalars ever comes back to the host.

use super::ensemble::Ensemble;
use crate::backend::{Backend, Batched, Buffer, Matmul};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// One vector per member in the space of an ensemble's parameters: a buffer
/// per parameter tensor, shaped like it (`[E, fan_out, fan_in]` per Dense
/// layer's weight, `[E, fan_out]` per bias), in the order of the parameter
/// file.
pub struct Direction {
    /// The tensors, in file order (each layer's weight, then its bias).
    pub(crate) t: Vec<Buffer>,
    /// Values per member of each tensor.
    pub(crate) sizes: Vec<usize>,
    /// Members.
    pub(crate) members: usize,
}

/// The per-member sizes of an ensemble's parameter tensors, in file order.
pub(crate) fn tensor_sizes(ens: &Ensemble<'_>) -> Vec<usize> {
    let mut v = Vec::new();
    for l in ens.dense_layers() {
        v.push(l.fan_in * l.fan_out);
        if l.dense.has_bias() {
            v.push(l.fan_out);
        }
    }
    v
}

impl Direction {
    /// Zeros, shaped like the parameters of `ens`.
    pub fn zeros(ens: &Ensemble<'_>) -> Result<Self> {
        let sizes = tensor_sizes(ens);
        let e = ens.spec.ensemble;
        Ok(Direction {
            t: sizes
                .iter()
                .map(|&n| ens.device().zeros(e * n))
                .collect::<Result<_>>()?,
            sizes,
            members: e,
        })
    }

    /// From host tensors (file order, all members, as [`Direction::read`] gives them).
    pub fn upload(ens: &Ensemble<'_>, tensors: &[Vec<f32>]) -> Result<Self> {
        let sizes = tensor_sizes(ens);
        let e = ens.spec.ensemble;
        if tensors.len() != sizes.len()
            || tensors.iter().zip(&sizes).any(|(t, &n)| t.len() != e * n)
        {
            return Err(Error::shape(
                "direction",
                format!(
                    "{} tensors do not match the {} parameter tensors of the ensemble",
                    tensors.len(),
                    sizes.len()
                ),
            ));
        }
        Ok(Direction {
            t: tensors
                .iter()
                .map(|v| ens.device().upload(v))
                .collect::<Result<_>>()?,
            sizes,
            members: e,
        })
    }

    /// Standard normal entries: member `e` draws its whole vector from
    /// stream `e` of `seed`, so that it does not depend on the ensemble's size.
    pub fn random(ens: &Ensemble<'_>, seed: u64) -> Result<Self> {
        Direction::drawn(ens, seed, |r| r.normal() as f32)
    }

    /// Entries +1 or -1 with equal odds (Rademacher), drawn as
    /// [`Direction::random`] draws.
    pub fn rademacher(ens: &Ensemble<'_>, seed: u64) -> Result<Self> {
        Direction::drawn(ens, seed, |r| if r.uniform() < 0.5 { -1.0 } else { 1.0 })
    }

    fn drawn(ens: &Ensemble<'_>, seed: u64, mut f: impl FnMut(&mut Rng) -> f32) -> Result<Self> {
        let sizes = tensor_sizes(ens);
        let e = ens.spec.ensemble;
        let mut host: Vec<Vec<f32>> = sizes.iter().map(|&n| Vec::with_capacity(e * n)).collect();
        for m in 0..e {
            let mut r = Rng::stream(seed, m as u64);
            for (h, &n) in host.iter_mut().zip(&sizes) {
                h.extend((0..n).map(|_| f(&mut r)));
            }
        }
        Direction::upload(ens, &host)
    }

    /// The tensors on the host (file order, all members).
    pub fn read(&self, dev: &dyn Backend) -> Result<Vec<Vec<f32>>> {
        self.t.iter().map(|b| dev.read(b)).collect()
    }

    /// Each member's vector on the host, flattened in file order.
    pub fn members(&self, dev: &dyn Backend) -> Result<Vec<Vec<f32>>> {
        let host = self.read(dev)?;
        Ok((0..self.members)
            .map(|e| {
                host.iter()
                    .zip(&self.sizes)
                    .flat_map(|(t, &n)| t[e * n..(e + 1) * n].iter().copied())
                    .collect()
            })
            .collect())
    }

    /// Values per member.
    pub fn len_per_member(&self) -> usize {
        self.sizes.iter().sum()
    }

    fn same_shape(&self, other: &Direction, op: &'static str) -> Result<()> {
        if self.sizes != other.sizes || self.members != other.members {
            return Err(Error::shape(op, "directions of different ensembles"));
        }
        Ok(())
    }

    /// `out[e] = a_e . b_e` for every member (`out` holds `E` values).
    pub fn dots(dev: &dyn Backend, a: &Direction, b: &Direction, out: &mut Buffer) -> Result<()> {
        a.same_shape(b, "dots")?;
        for (k, ((x, y), &n)) in a.t.iter().zip(&b.t).zip(&a.sizes).enumerate() {
            let beta = if k == 0 { 0.0 } else { 1.0 };
            dev.row_dots(Batched::new(a.members, 1, n), x, y, beta, out)?;
        }
        Ok(())
    }

    /// `out_e = alpha * coef[e] * a_e + beta * out_e` (`coef` holds `E` values).
    pub fn scale_members(
        dev: &dyn Backend,
        alpha: f32,
        coef: &Buffer,
        a: &Direction,
        beta: f32,
        out: &mut Direction,
    ) -> Result<()> {
        a.same_shape(out, "scale_members")?;
        for ((x, y), &n) in a.t.iter().zip(out.t.iter_mut()).zip(&a.sizes) {
            let spec = Matmul::new(1, n, 1).batch(a.members).scaled(alpha, beta);
            dev.matmul(&spec, coef, x, y)?;
        }
        Ok(())
    }

    /// A copy on the same device.
    pub fn clone_on(&self, dev: &dyn Backend) -> Result<Direction> {
        let mut t = Vec::with_capacity(self.t.len());
        for b in &self.t {
            let mut c = dev.zeros(b.len())?;
            dev.copy(b, &mut c)?;
            t.push(c);
        }
        Ok(Direction {
            t,
            sizes: self.sizes.clone(),
            members: self.members,
        })
    }

    /// `self = src`.
    pub fn copy_from(&mut self, dev: &dyn Backend, src: &Direction) -> Result<()> {
        src.same_shape(self, "copy")?;
        for (s, d) in src.t.iter().zip(self.t.iter_mut()) {
            dev.copy(s, d)?;
        }
        Ok(())
    }
}
