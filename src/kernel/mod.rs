//! Infinite-width kernels (NNGP and NTK) of fully connected networks, exactly
//! as neural-tangents' `stax.serial(Dense, activation, ..., Dense(1))` defines
//! them, in f64 on the CPU or in f32 on any backend (tiled, so that memory
//! stays bounded whatever the number of points).

pub mod recursion;

use crate::activation::Activation;
use crate::backend::{Backend, Matmul};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use std::collections::HashMap;

/// How a Dense layer scales its weights (neural-tangents' `parameterization`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parameterization {
    /// `W_std / sqrt(fan_in) * W x + b_std * b` with standard normal `W`, `b`.
    Ntk,
    /// `W x + b` with `W ~ N(0, W_std^2 / fan_in)`, `b ~ N(0, b_std^2)`; its NTK
    /// depends on the finite widths.
    Standard,
}

impl Parameterization {
    /// Parses `ntk` or `standard`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ntk" => Ok(Parameterization::Ntk),
            "standard" | "sp" => Ok(Parameterization::Standard),
            _ => Err(Error::invalid(format!(
                "unknown parameterization '{s}' for kernels (expected ntk or standard)"
            ))),
        }
    }
}

/// A fully connected architecture: `depth` times (Dense(width) then
/// activation), then a Dense(1) readout, all with the same `W_std`, `b_std`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Architecture {
    pub depth: usize,
    pub activation: Activation,
    pub w_std: f64,
    pub b_std: f64,
    pub parameterization: Parameterization,
    /// Hidden width (only the `standard` NTK depends on it).
    pub width: usize,
    /// Input dimension.
    pub d_in: usize,
}

impl Architecture {
    /// Checks that the kernels of this architecture can be computed.
    pub fn validate(&self) -> Result<()> {
        if !self.activation.has_kernel() {
            return Err(Error::invalid(format!(
                "activation '{}' has no closed-form infinite-width kernel (use relu, leaky-relu, abs, abrelu, erf, gelu, sign or identity)",
                self.activation
            )));
        }
        if !(self.w_std.is_finite() && self.b_std.is_finite())
            || self.w_std < 0.0
            || self.b_std < 0.0
        {
            return Err(Error::invalid(format!(
                "--w-std and --b-std must be finite and non-negative (got {} and {})",
                self.w_std, self.b_std
            )));
        }
        if self.width == 0 {
            return Err(Error::invalid("--width must be at least 1"));
        }
        if self.d_in == 0 {
            return Err(Error::invalid("inputs must have at least one feature"));
        }
        Ok(())
    }
}

/// Which kernels to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    pub nngp: bool,
    pub ntk: bool,
}

impl Want {
    pub const BOTH: Want = Want {
        nngp: true,
        ntk: true,
    };
    pub const NNGP: Want = Want {
        nngp: true,
        ntk: false,
    };
    pub const NTK: Want = Want {
        nngp: false,
        ntk: true,
    };
}

/// The kernels asked for, `rows x cols` (x1 by x2).
#[derive(Clone, Debug)]
pub struct Kernels<T> {
    pub nngp: Option<Matrix<T>>,
    pub ntk: Option<Matrix<T>>,
}

fn check_inputs<T>(arch: &Architecture, x1: &Matrix<T>, x2: Option<&Matrix<T>>) -> Result<()> {
    arch.validate()?;
    if x1.rows == 0 {
        return Err(Error::invalid("x1 holds no point"));
    }
    if x1.cols != arch.d_in {
        return Err(Error::shape(
            "kernel",
            format!(
                "x1 has {} features but the architecture expects d_in = {}",
                x1.cols, arch.d_in
            ),
        ));
    }
    if let Some(x2) = x2 {
        if x2.rows == 0 {
            return Err(Error::invalid("x2 holds no point"));
        }
        if x2.cols != x1.cols {
            return Err(Error::shape(
                "kernel",
                format!("x1 has {} features but x2 has {}", x1.cols, x2.cols),
            ));
        }
    }
    Ok(())
}

fn sq_norms(x: &Matrix<f64>) -> Vec<f64> {
    (0..x.rows)
        .map(|i| x.row(i).iter().map(|v| v * v).sum::<f64>() / x.cols as f64)
        .collect()
}

/// The kernels in f64 on the CPU (the exact reference). `x2 = None` means x1 with itself.
pub fn kernels_f64(
    arch: &Architecture,
    x1: &Matrix<f64>,
    x2: Option<&Matrix<f64>>,
    want: Want,
) -> Result<Kernels<f64>> {
    check_inputs(arch, x1, x2)?;
    x1.check_finite("x1")?;
    if let Some(x2) = x2 {
        x2.check_finite("x2")?;
    }
    let same = x2.is_none();
    let x2m = x2.unwrap_or(x1);
    let t1: Vec<Vec<f64>> = sq_norms(x1)
        .into_iter()
        .map(|c| recursion::diag_table(arch, c))
        .collect();
    let t2: Vec<Vec<f64>> = if same {
        t1.clone()
    } else {
        sq_norms(x2m)
            .into_iter()
            .map(|c| recursion::diag_table(arch, c))
            .collect()
    };
    let (n1, n2) = (x1.rows, x2m.rows);
    let mut nngp = Matrix::zeros(n1, n2);
    let mut ntk = Matrix::zeros(n1, n2);
    let d = x1.cols as f64;
    for i in 0..n1 {
        for j in 0..n2 {
            if same && j < i {
                nngp.data[i * n2 + j] = nngp.data[j * n2 + i];
                ntk.data[i * n2 + j] = ntk.data[j * n2 + i];
                continue;
            }
            let q0 = x1
                .row(i)
                .iter()
                .zip(x2m.row(j))
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / d;
            let (q, t) = recursion::entry(arch, q0, &t1[i], &t2[j], same && i == j);
            nngp.data[i * n2 + j] = q;
            ntk.data[i * n2 + j] = t;
        }
    }
    Ok(Kernels {
        nngp: want.nngp.then_some(nngp),
        ntk: want.ntk.then_some(ntk),
    })
}

/// One tile of the layer recursion for [`Backend::kernel_tile`].
#[derive(Clone, Copy, Debug)]
pub struct KernelTile {
    pub arch: Architecture,
    pub rows: usize,
    pub cols: usize,
    /// The tile sits on the diagonal of a kernel of a set with itself: entry
    /// (i, i) pairs a point with itself.
    pub same_diag: bool,
    pub want: Want,
}

/// Tile side used by [`kernels_device`]; a tile's buffers stay at or under
/// `TILE^2 * 4` bytes (16 MiB), far below every adapter's binding limit.
pub const TILE: usize = 2048;

/// The kernels in f32 on a backend, tile by tile: the Gram block through the
/// matrix product, then one pass of the layer recursion per entry. For a set
/// with itself only the tiles on and above the diagonal are computed.
pub fn kernels_device(
    dev: &dyn Backend,
    arch: &Architecture,
    x1: &Matrix<f32>,
    x2: Option<&Matrix<f32>>,
    want: Want,
    mut progress: impl FnMut(usize, usize),
) -> Result<Kernels<f32>> {
    check_inputs(arch, x1, x2)?;
    for (name, x) in [("x1", Some(x1)), ("x2", x2)] {
        if let Some(x) = x {
            if let Some(p) = x.data.iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(format!(
                    "{name} has a non-finite value at row {}, column {}",
                    p / x.cols,
                    p % x.cols
                )));
            }
        }
    }
    let same = x2.is_none();
    let x2m = x2.unwrap_or(x1);
    let (n1, n2, d) = (x1.rows, x2m.rows, x1.cols);
    let norms = |x: &Matrix<f32>| -> Vec<Vec<f64>> {
        (0..x.rows)
            .map(|i| {
                let c = x.row(i).iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64;
                recursion::diag_table(arch, c)
            })
            .collect()
    };
    let t1 = norms(x1);
    let t2 = if same { t1.clone() } else { norms(x2m) };
    let blocks = |n: usize| -> Vec<(usize, usize)> {
        (0..n).step_by(TILE).map(|s| (s, TILE.min(n - s))).collect()
    };
    let (rb, cb) = (blocks(n1), blocks(n2));
    let upload_blocks = |x: &Matrix<f32>, bl: &[(usize, usize)]| -> Result<Vec<crate::Buffer>> {
        bl.iter()
            .map(|&(s, n)| dev.upload(&x.data[s * d..(s + n) * d]))
            .collect()
    };
    let xb1 = upload_blocks(x1, &rb)?;
    let xb2 = if same {
        Vec::new()
    } else {
        upload_blocks(x2m, &cb)?
    };
    let mut nngp = want.nngp.then(|| Matrix::<f32>::zeros(n1, n2));
    let mut ntk = want.ntk.then(|| Matrix::<f32>::zeros(n1, n2));
    let mut bufs: HashMap<(usize, usize), (crate::Buffer, crate::Buffer, crate::Buffer)> =
        HashMap::new();
    let tiles: Vec<(usize, usize)> = (0..rb.len())
        .flat_map(|bi| (0..cb.len()).map(move |bj| (bi, bj)))
        .filter(|&(bi, bj)| !same || bj >= bi)
        .collect();
    let total = tiles.len();
    for (done, &(bi, bj)) in tiles.iter().enumerate() {
        let ((r0, r), (c0, c)) = (rb[bi], cb[bj]);
        if !bufs.contains_key(&(r, c)) {
            bufs.insert(
                (r, c),
                (dev.zeros(r * c)?, dev.zeros(r * c)?, dev.zeros(r * c)?),
            );
        }
        let Some((gram, bn, bt)) = bufs.get_mut(&(r, c)) else {
            return Err(Error::invalid("internal: tile buffers missing"));
        };
        let right = if same { &xb1[bj] } else { &xb2[bj] };
        let spec = Matmul::new(r, c, d)
            .trans(false, true)
            .scaled(1.0 / d as f32, 0.0);
        dev.matmul(&spec, &xb1[bi], right, gram)?;
        let mut table = Vec::with_capacity(arch.depth * (r + c));
        for l in 0..arch.depth {
            table.extend((r0..r0 + r).map(|i| t1[i][l] as f32));
            table.extend((c0..c0 + c).map(|j| t2[j][l] as f32));
        }
        let diag = dev.upload(if table.is_empty() { &[0.0] } else { &table })?;
        let tile = KernelTile {
            arch: *arch,
            rows: r,
            cols: c,
            same_diag: same && bi == bj,
            want,
        };
        dev.kernel_tile(&tile, gram, &diag, bn, bt)?;
        for (out, buf) in [(&mut nngp, &*bn), (&mut ntk, &*bt)] {
            if let Some(m) = out.as_mut() {
                let v = dev.read(buf)?;
                for i in 0..r {
                    m.data[(r0 + i) * n2 + c0..(r0 + i) * n2 + c0 + c]
                        .copy_from_slice(&v[i * c..(i + 1) * c]);
                    if same && bi != bj {
                        for j in 0..c {
                            m.data[(c0 + j) * n2 + r0 + i] = v[i * c + j];
                        }
                    }
                }
            }
        }
        progress(done + 1, total);
    }
    Ok(Kernels { nngp, ntk })
}
