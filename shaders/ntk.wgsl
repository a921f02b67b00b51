// The infinite-width layer recursion of a fully connected network, 4 entries
// of a row per invocation (vec4 loads and stores: on lavapipe every storage
// access costs a scalar operation per lane). The host prepends activation.wgsl.
// CPU twin: src/kernel/recursion.rs.
//
// The Gram tile q0 = x1 . x2 / d_in comes from the matrix product (binding 1).
// (A variant that fused the subgroup product of matmul_sg8.wgsl with the
// recursion ran slower on lavapipe: register pressure.)
//
// Bindings (group 0):
//   0: params  uniform (dynamic offset)  NtkParams
//   1: a       storage, read        Gram [rows, cols]
//   2: diag    uniform, 64 KiB      variance entering activation l: d(l*stride + i) for x1_i,
//                                   d(l*stride + cols_at + j) for x2_j, cols_at a multiple of 4
//                                   (16384 values at most; a uniform buffer because lavapipe
//                                   gathers from those in one vector op)
//   3: nngp    storage, read_write  [rows, cols]
//   4: ntk     storage, read_write  [rows, cols]
// cols is a multiple of 4.
//
// flags: 1 write nngp, 2 write ntk, 8 the tile is on the diagonal of a kernel
// of a set with itself (entry (i, i) pairs a point with itself: its
// differences c1 c2 - q^2 are known exactly).

// Specialization constants (one pipeline per activation, depth and parameterization).
override CODE: u32 = 1u;
override DEPTH: u32 = 1u;
override STANDARD: bool = false;

struct NtkParams {
    rows: u32, cols: u32, _k: u32, flags: u32,
    stride: u32, cols_at: u32, _pad2: u32, _pad3: u32,
    w_var: f32, b_var: f32, d_in: f32, width: f32,
    pa: f32, pb: f32, pc: f32, _inv_d: f32,
}

@group(0) @binding(0) var<uniform> p: NtkParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> diag: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read_write> out_nngp: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out_ntk: array<vec4<f32>>;

fn d(k: u32) -> f32 {
    return diag[k >> 2u][k & 3u];
}

const PI: f32 = 3.14159265358979;

// atan2 for the recursion: one division and a polynomial (lavapipe's
// built-in atan2 costs about a quarter of the whole pass). The ratio of the
// smaller to the larger magnitude t in [0, 1] gives atan(t) = t P(t^2), P of
// degree 8 fitted to relative error on [0, 1]: at most 1e-7 absolute in f32,
// about one rounding of pi/2. Then the octant fix-ups. (0, 0) gives NaN.
fn atan2_poly(y: vec4<f32>, x: vec4<f32>) -> vec4<f32> {
    let ax = abs(x);
    let ay = abs(y);
    let t = min(ax, ay) / max(ax, ay);
    let s = t * t;
    var r = vec4<f32>(0.0028509411);
    r = r * s - 0.016072635;
    r = r * s + 0.042697694;
    r = r * s - 0.07504788;
    r = r * s + 0.10641152;
    r = r * s - 0.14203696;
    r = r * s + 0.19992626;
    r = r * s - 0.33333075;
    r = (r * s + 1.0) * t;
    r = select(r, PI / 2.0 - r, ay > ax);
    r = select(r, PI - r, x < vec4<f32>(0.0));
    return select(r, -r, y < vec4<f32>(0.0));
}

// atan2 with neural-tangents' value pi/2 at (0, 0).
fn atan2_fill(y: vec4<f32>, x: vec4<f32>) -> vec4<f32> {
    return select(atan2_poly(y, x), vec4<f32>(PI / 2.0), y == vec4<f32>(0.0) & x == vec4<f32>(0.0));
}

struct Pair {
    q: vec4<f32>,
    dot: vec4<f32>,
}

// q' = E[phi(u) phi(v)] and dot with Theta' = Theta * dot, for 4 entries.
// `same` marks entries pairing a point with itself (c1 == c2 == q exactly).
fn act_pair(q: vec4<f32>, c1: f32, c2: vec4<f32>, same: vec4<bool>) -> Pair {
    let zero = vec4<f32>(0.0);
    switch CODE {
        case 1u: {
            let a = p.pa;
            let b = p.pb;
            let gap = select(max(c1 * c2 - q * q, zero), zero, same);
            let root = sqrt(gap);
            let angle = atan2_fill(root, q);
            let factor = (a - b) * (a - b) / (2.0 * PI);
            let dot = vec4<f32>((a * a + b * b) / 2.0) - factor * angle;
            return Pair(factor * root + dot * q, dot);
        }
        case 2u: {
            let b2 = p.pb * p.pb;
            let qs = q * b2;
            let general = max((1.0 + 2.0 * c1 * b2) * (1.0 + 2.0 * c2 * b2) - 4.0 * qs * qs, zero);
            let gap = select(general, 1.0 + 4.0 * qs, same);
            let root = sqrt(gap);
            let qn = 2.0 / PI * atan2_poly(2.0 * qs, root);
            let a2 = p.pa * p.pa;
            return Pair(a2 * qn + p.pc * p.pc, a2 * b2 * 4.0 / PI / root);
        }
        case 4u: {
            let prod = c1 * c2;
            let prod1 = (c1 + 1.0) * (c2 + 1.0);
            let delta_sq = select(max(prod1 - q * q, zero), 2.0 * q + 1.0, same);
            let delta = sqrt(delta_sq);
            let angle = atan2_poly(q, delta);
            let qn = ((q * q + prod * delta_sq) / (prod1 * delta) + q * angle) / (2.0 * PI) + 0.25 * q;
            let first = (1.0 / delta_sq + (1.0 - prod) / prod1 + 1.0) * q / delta / (2.0 * PI);
            return Pair(qn, first + 0.25 + angle / (2.0 * PI));
        }
        case 5u: {
            let gap = select(max(c1 * c2 - q * q, zero), zero, same);
            return Pair(1.0 - 2.0 / PI * atan2_fill(sqrt(gap), q), zero);
        }
        default: {
            return Pair(q, vec4<f32>(1.0));
        }
    }
}

// Dense layer on (q, Theta).
fn dense(fan_in: f32, q: vec4<f32>, theta: vec4<f32>) -> Pair {
    let qn = p.w_var * q + p.b_var;
    if (STANDARD) {
        return Pair(qn, fan_in * q + p.w_var * theta + 1.0);
    }
    return Pair(qn, qn + p.w_var * theta);
}

// The whole recursion for entries (i, j0..j0+3) from their input covariances,
// stored at vec4 index `idx` of the outputs.
fn finish(q0: vec4<f32>, i: u32, j0: u32, idx: u32) {
    let diag_tile = (p.flags & 8u) != 0u;
    let same = vec4<bool>(diag_tile) & (vec4<u32>(i) == vec4<u32>(j0, j0 + 1u, j0 + 2u, j0 + 3u));
    var q = q0;
    var theta = vec4<f32>(0.0);
    for (var l = 0u; l < DEPTH; l++) {
        let fan_in = select(p.width, p.d_in, l == 0u);
        let dn = dense(fan_in, q, theta);
        let c1 = d(l * p.stride + i);
        let c2 = diag[(l * p.stride + p.cols_at + j0) >> 2u];
        let r = act_pair(select(dn.q, vec4<f32>(c1), same), c1, c2, same);
        q = r.q;
        theta = dn.dot * r.dot;
    }
    let out = dense(select(p.width, p.d_in, DEPTH == 0u), q, theta);
    if ((p.flags & 1u) != 0u) {
        out_nngp[idx] = out.q;
    }
    if ((p.flags & 2u) != 0u) {
        out_ntk[idx] = out.dot;
    }
}

// Rows per invocation: fewer, longer workgroups (lavapipe pays per workgroup).
const ROWS: u32 = 16u;

@compute @workgroup_size(64, 1, 1)
fn ntk_tile(@builtin(global_invocation_id) gid: vec3<u32>) {
    let jv = gid.x;
    let cols4 = p.cols / 4u;
    let i0 = gid.y * ROWS;
    // On a diagonal tile only entries on and above the diagonal are used
    // (the host mirrors them): a group whose columns all lie left of its
    // first row has nothing to do.
    if (jv >= cols4 || ((p.flags & 8u) != 0u && (jv | 63u) * 4u + 3u < i0)) {
        return;
    }
    let rows = min(ROWS, p.rows - i0);
    for (var r = 0u; r < rows; r++) {
        let i = i0 + r;
        let idx = i * cols4 + jv;
        finish(a[idx], i, jv * 4u, idx);
    }
}
