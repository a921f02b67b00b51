//! The infinite-width recursion of a kernel tile in f32 on the CPU, the twin
//! of `shaders/ntk.wgsl`: the Gram tile through the matrix product, then
//! each layer's update applied to a block of [`LANES`] entries of a row at
//! a time (loops the compiler vectorizes; with AVX2 and FMA where the CPU
//! has them), rows spread over the cores. The closed-form activations are
//! the f32 formulas of the shader (the same polynomial `atan2`); the
//! quadrature ones (tanh, sigmoid) sum the degree-120 rule in f32
//! (`quadrature.rs`), vectorized over its nodes.

use super::products;
use crate::activation::Activation;
use crate::arch::{KernelOp, Parameterization};
use crate::backend::{KernelTile, Matmul};
use rayon::prelude::*;
use std::f32::consts::PI;

/// Entries of a row updated together.
pub const LANES: usize = 64;

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 8;

/// One layer update, with its constants in f32.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// `q <- w2 q + b2`; Theta as the parameterization says.
    Dense {
        w2: f32,
        b2: f32,
        /// `Some((fan_in, bias))` in the standard parameterization.
        standard: Option<(f32, f32)>,
    },
    Act {
        act: Activation,
        slot: usize,
    },
    Norm {
        eps: f32,
        slot: usize,
    },
    Push,
    Pop,
}

fn compile(ops: &[KernelOp]) -> Vec<Op> {
    ops.iter()
        .filter_map(|op| {
            Some(match *op {
                KernelOp::Dense { dense, fan_in } => {
                    let bias = if dense.has_bias() { 1.0 } else { 0.0 };
                    Op::Dense {
                        w2: (dense.w_std * dense.w_std) as f32,
                        b2: dense.b_std.map_or(0.0, |b| b * b) as f32,
                        standard: (dense.parameterization == Parameterization::Standard)
                            .then_some((fan_in as f32, bias)),
                    }
                }
                KernelOp::Activation {
                    act: Activation::Identity,
                    ..
                } => return None,
                KernelOp::Activation { act, slot } => Op::Act { act, slot },
                KernelOp::LayerNorm { eps, slot } => Op::Norm {
                    eps: eps as f32,
                    slot,
                },
                KernelOp::Push => Op::Push,
                KernelOp::PopAdd => Op::Pop,
            })
        })
        .collect()
}

/// What every row of a tile shares.
struct Ctx<'a> {
    ops: &'a [Op],
    tile: &'a KernelTile<'a>,
    diag: &'a [f32],
    gram: &'a [f32],
}

/// One kernel tile (the buffers already checked by `check_tile`).
pub(crate) fn kernel_tile(
    t: &KernelTile<'_>,
    x1: &[f32],
    x2t: &[f32],
    diag: &[f32],
    nngp: &mut [f32],
    ntk: &mut [f32],
) {
    let (rows, cols) = (t.rows, t.cols);
    let mut gram = vec![0.0f32; rows * cols];
    let spec = Matmul::new(rows, cols, t.k).scaled(1.0 / t.program.d_in as f32, 0.0);
    products::matmul(&spec, x1, x2t, &mut gram);
    let ops = compile(&t.program.ops);
    let ctx = Ctx {
        ops: &ops,
        tile: t,
        diag,
        gram: &gram,
    };
    let block = ROWS_PER_TASK * cols;
    nngp.par_chunks_mut(block)
        .zip(ntk.par_chunks_mut(block))
        .enumerate()
        .for_each(|(b, (q, th))| rows_dispatch(&ctx, b * ROWS_PER_TASK, q, th));
}

/// [`rows_body`] compiled for the best instruction set the CPU has.
fn rows_dispatch(ctx: &Ctx<'_>, r0: usize, q: &mut [f32], t: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { rows_avx2(ctx, r0, q, t) };
        return;
    }
    rows_body(ctx, r0, q, t);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn rows_avx2(ctx: &Ctx<'_>, r0: usize, q: &mut [f32], t: &mut [f32]) {
    rows_body(ctx, r0, q, t);
}

/// The rows from `r0` whose outputs are `out_q`, `out_t` (whole rows).
#[inline(always)]
fn rows_body(ctx: &Ctx<'_>, r0: usize, out_q: &mut [f32], out_t: &mut [f32]) {
    let tile = ctx.tile;
    let cols = tile.cols;
    let mut stack = vec![([0.0f32; LANES], [0.0f32; LANES]); tile.program.max_stack];
    for (r, (oq, ot)) in out_q
        .chunks_exact_mut(cols)
        .zip(out_t.chunks_exact_mut(cols))
        .enumerate()
    {
        let i = r0 + r;
        // On a diagonal tile only entries on and above the diagonal are
        // used (the caller mirrors them): start at the block holding (i, i).
        let first = if tile.same_diag { i / LANES * LANES } else { 0 };
        for j0 in (first..cols).step_by(LANES) {
            let len = LANES.min(cols - j0);
            let same = (tile.same_diag && i >= j0 && i < j0 + len).then(|| i - j0);
            let mut q = [0.0f32; LANES];
            let mut th = [0.0f32; LANES];
            q[..len].copy_from_slice(&ctx.gram[i * cols + j0..i * cols + j0 + len]);
            block(ctx, i, j0, len, same, &mut q, &mut th, &mut stack);
            if tile.want.nngp {
                oq[j0..j0 + len].copy_from_slice(&q[..len]);
            }
            if tile.want.ntk {
                ot[j0..j0 + len].copy_from_slice(&th[..len]);
            }
        }
    }
}

type Lanes = [f32; LANES];

/// Every layer update on the entries `(i, j0 .. j0 + len)`; `same` is the
/// lane pairing a point with itself, if any.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block(
    ctx: &Ctx<'_>,
    i: usize,
    j0: usize,
    len: usize,
    same: Option<usize>,
    q: &mut Lanes,
    t: &mut Lanes,
    stack: &mut [(Lanes, Lanes)],
) {
    let tile = ctx.tile;
    let stride = tile.table_stride();
    let cols_at = tile.table_cols_at();
    let mut depth = 0;
    for op in ctx.ops {
        match *op {
            Op::Dense { w2, b2, standard } => match standard {
                None => {
                    for l in 0..len {
                        let qn = w2 * q[l] + b2;
                        t[l] = qn + w2 * t[l];
                        q[l] = qn;
                    }
                }
                Some((fan_in, bias)) => {
                    for l in 0..len {
                        t[l] = fan_in * q[l] + w2 * t[l] + bias;
                        q[l] = w2 * q[l] + b2;
                    }
                }
            },
            Op::Act { act, slot } => {
                let c1 = ctx.diag[slot * stride + i];
                let at = slot * stride + cols_at + j0;
                let c2 = &ctx.diag[at..at + len];
                activation(act, c1, c2, same, &mut q[..len], &mut t[..len]);
            }
            Op::Norm { eps, slot } => {
                let c1 = ctx.diag[slot * stride + i] + eps;
                let at = slot * stride + cols_at + j0;
                let c2 = &ctx.diag[at..at + len];
                for l in 0..len {
                    let f = 1.0 / (c1 * (c2[l] + eps)).sqrt();
                    q[l] *= f;
                    t[l] *= f;
                }
                if let Some(l) = same {
                    q[l] = (c1 - eps) / c1;
                }
            }
            Op::Push => {
                stack[depth] = (*q, *t);
                depth += 1;
            }
            Op::Pop => {
                depth -= 1;
                let (sq, st) = &stack[depth];
                for l in 0..len {
                    q[l] += sq[l];
                    t[l] += st[l];
                }
            }
        }
    }
}

/// An activation's update on a block: `q <- pair(q)`, `Theta <- Theta * dot`.
#[inline(always)]
fn activation(
    act: Activation,
    c1: f32,
    c2: &[f32],
    same: Option<usize>,
    q: &mut [f32],
    t: &mut [f32],
) {
    match act {
        Activation::AbRelu { a, b } => {
            let (a, b) = (a as f32, b as f32);
            let factor = (a - b) * (a - b) / (2.0 * PI);
            let half = (a * a + b * b) / 2.0;
            lanes(c1, c2, same, q, t, |q, c1, c2, same| {
                let gap = if same {
                    0.0
                } else {
                    (c1 * c2 - q * q).max(0.0)
                };
                let root = gap.sqrt();
                let dot = half - factor * atan2_fill(root, q);
                (factor * root + dot * q, dot)
            });
        }
        Activation::Erf { a, b, c } => {
            let (a2, b2, c2c) = ((a * a) as f32, (b * b) as f32, (c * c) as f32);
            lanes(c1, c2, same, q, t, |q, c1, c2, same| {
                let qs = q * b2;
                let gap = if same {
                    1.0 + 4.0 * qs
                } else {
                    ((1.0 + 2.0 * c1 * b2) * (1.0 + 2.0 * c2 * b2) - 4.0 * qs * qs).max(0.0)
                };
                let root = gap.sqrt();
                let qn = 2.0 / PI * atan2_poly(2.0 * qs, root);
                (a2 * qn + c2c, a2 * b2 * 4.0 / PI / root)
            });
        }
        Activation::Gelu => lanes(c1, c2, same, q, t, |q, c1, c2, same| {
            let prod = c1 * c2;
            let prod1 = (c1 + 1.0) * (c2 + 1.0);
            let delta_sq = if same {
                2.0 * q + 1.0
            } else {
                (prod1 - q * q).max(0.0)
            };
            let delta = delta_sq.sqrt();
            let angle = atan2_poly(q, delta);
            let qn =
                ((q * q + prod * delta_sq) / (prod1 * delta) + q * angle) / (2.0 * PI) + 0.25 * q;
            let first = (1.0 / delta_sq + (1.0 - prod) / prod1 + 1.0) * q / delta / (2.0 * PI);
            (qn, first + 0.25 + angle / (2.0 * PI))
        }),
        Activation::Sign => lanes(c1, c2, same, q, t, |q, c1, c2, same| {
            let gap = if same {
                0.0
            } else {
                (c1 * c2 - q * q).max(0.0)
            };
            (1.0 - 2.0 / PI * atan2_fill(gap.sqrt(), q), 0.0)
        }),
        Activation::Identity => {}
        Activation::Tanh | Activation::Sigmoid => {
            for l in 0..q.len() {
                let (qn, dot) = super::quadrature::pair(act, q[l], c1, c2[l], same == Some(l));
                q[l] = qn;
                t[l] *= dot;
            }
        }
    }
}

/// `f(q, c1, c2, same) = (q', dot)` on every lane (as a different point),
/// then on the lane `same` again from its state before, with `q = c1`.
#[inline(always)]
fn lanes(
    c1: f32,
    c2: &[f32],
    same: Option<usize>,
    q: &mut [f32],
    t: &mut [f32],
    f: impl Fn(f32, f32, f32, bool) -> (f32, f32),
) {
    let before = same.map(|l| t[l]);
    for ((qv, tv), &c2v) in q.iter_mut().zip(t.iter_mut()).zip(c2) {
        let (qn, dot) = f(*qv, c1, c2v, false);
        *qv = qn;
        *tv *= dot;
    }
    if let (Some(l), Some(t0)) = (same, before) {
        let (qn, dot) = f(c1, c1, c2[l], true);
        q[l] = qn;
        t[l] = t0 * dot;
    }
}

/// `atan2` as the shader computes it: the ratio of the smaller to the larger
/// magnitude `t` in [0, 1], `atan(t) = t P(t^2)` with P of degree 8 (at most
/// 1e-7 absolute), then the octant fix-ups; (0, 0) gives NaN.
#[inline(always)]
fn atan2_poly(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    let t = ax.min(ay) / ax.max(ay);
    let s = t * t;
    let mut r = 0.002_850_941_1f32;
    r = r * s - 0.016_072_635;
    r = r * s + 0.042_697_694;
    r = r * s - 0.075_047_88;
    r = r * s + 0.106_411_52;
    r = r * s - 0.142_036_96;
    r = r * s + 0.199_926_26;
    r = r * s - 0.333_330_75;
    r = (r * s + 1.0) * t;
    let r = if ay > ax { PI / 2.0 - r } else { r };
    let r = if x < 0.0 { PI - r } else { r };
    if y < 0.0 { -r } else { r }
}

/// `atan2` with neural-tangents' value pi/2 at (0, 0).
#[inline(always)]
fn atan2_fill(y: f32, x: f32) -> f32 {
    if y == 0.0 && x == 0.0 {
        PI / 2.0
    } else {
        atan2_poly(y, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One unit in the last place of `v` in f32.
    fn ulp(v: f64) -> f64 {
        2f64.powi(v.abs().log2().floor() as i32 - 23)
    }

    #[test]
    fn polynomial_atan2_is_within_1e7_and_one_rounding_of_the_library() {
        // The polynomial is within 1e-7 of atan on [0, 1]; the octant
        // fix-ups (pi/2 - r, pi - r) round once more, to the result's ulp
        // (2.4e-7 near pi), so no f32 atan2 can promise less than that.
        let mut worst = 0.0f64;
        for i in 0..400 {
            for j in 0..400 {
                let y = (i as f32 - 200.0) / 37.0;
                let x = (j as f32 - 200.0) / 41.0;
                if x == 0.0 && y == 0.0 {
                    continue;
                }
                let want = f64::from(y).atan2(f64::from(x));
                let e = (f64::from(atan2_poly(y, x)) - want).abs();
                assert!(e <= 1e-7 + ulp(want), "atan2({y}, {x}): off by {e:e}");
                worst = worst.max(e / (1e-7 + ulp(want)));
            }
        }
        // On [0, 1] itself, no fix-up: the polynomial's own error.
        for k in 0..=10_000 {
            let t = k as f32 / 10_000.0;
            let e = (f64::from(atan2_poly(t, 1.0)) - f64::from(t).atan()).abs();
            assert!(e <= 1e-7, "atan({t}): off by {e:e}");
        }
        assert!(worst > 0.0);
        assert_eq!(atan2_fill(0.0, 0.0), PI / 2.0);
    }
}
