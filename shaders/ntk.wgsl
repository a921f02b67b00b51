// The infinite-width recursion of an architecture for every entry of a kernel
// tile, 4 entries of a row per invocation (vec4 loads and stores: on lavapipe
// every storage access costs a scalar operation per lane). The host prepends
// activation.wgsl and appends `fn recursion`, generated from the
// architecture's list of layer updates (src/gpu/ntk.rs); the updates
// themselves are the functions below. CPU twin: src/arch/program.rs.
//
// The Gram tile q0 = x1 . x2 / d_in comes from the matrix product (binding 1).
//
// Bindings (group 0):
//   0: params  uniform (dynamic offset)  NtkParams
//   1: a       storage, read        Gram [rows, cols]
//   2: diag    uniform, 64 KiB      variance entering slot s: d(s*stride + i) for x1_i,
//                                   d(s*stride + cols_at + j) for x2_j, cols_at a multiple of 4
//                                   (DIAG_VEC4 vec4 values, written by the host from
//                                   DIAG_CAPACITY; a uniform buffer because lavapipe
//                                   gathers from those in one vector op)
//   3: nngp    storage, read_write  [rows, cols]
//   4: ntk     storage, read_write  [rows, cols]
//   5: rule    uniform              the Gauss-Hermite rule of the quadrature activations:
//                                   GH_DEG nodes, then (from vec4 GH_VEC4 / 2) the weights
// cols is a multiple of 4.
//
// flags: 1 write nngp, 2 write ntk, 8 the tile is on the diagonal of a kernel
// of a set with itself (entry (i, i) pairs a point with itself: its
// differences c1 c2 - q^2 are known exactly).

struct NtkParams {
    rows: u32, cols: u32, flags: u32, stride: u32,
    cols_at: u32, _pad1: u32, _pad2: u32, _pad3: u32,
}

@group(0) @binding(0) var<uniform> p: NtkParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> diag: array<vec4<f32>, DIAG_VEC4>;
@group(0) @binding(3) var<storage, read_write> out_nngp: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out_ntk: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> rule: array<vec4<f32>, GH_VEC4>;

fn gh_x(i: u32) -> f32 {
    return rule[i >> 2u][i & 3u];
}

fn gh_w(i: u32) -> f32 {
    let k = i + GH_VEC4 * 2u;
    return rule[k >> 2u][k & 3u];
}

fn d(k: u32) -> f32 {
    return diag[k >> 2u][k & 3u];
}

// The variances of slot s: (row i's, the four columns' from j0).
fn row_var(s: u32, i: u32) -> f32 {
    return d(s * p.stride + i);
}

fn col_var(s: u32, j0: u32) -> vec4<f32> {
    return diag[(s * p.stride + p.cols_at + j0) >> 2u];
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

// The state of four entries: covariance q and NTK t.
struct State {
    q: vec4<f32>,
    t: vec4<f32>,
}

// Dense, ntk parameterization: q <- W^2 q + b^2, Theta <- q + W^2 Theta.
fn dense_ntk(s: State, w2: f32, b2: f32) -> State {
    let q = w2 * s.q + b2;
    return State(q, q + w2 * s.t);
}

// Dense, standard parameterization: Theta <- fan_in q + W^2 Theta (+ 1 with a bias).
fn dense_standard(s: State, w2: f32, b2: f32, fan_in: f32, bias: f32) -> State {
    return State(w2 * s.q + b2, fan_in * s.q + w2 * s.t + bias);
}

// LayerNorm: both kernels over sqrt((eps + c1)(eps + c2)).
fn layer_norm(s: State, slot: u32, i: u32, j0: u32, same: vec4<bool>, eps: f32) -> State {
    let c1 = row_var(slot, i) + eps;
    let c2 = col_var(slot, j0) + eps;
    let f = inverseSqrt(c1 * c2);
    return State(select(s.q * f, vec4<f32>((c1 - eps) / c1), same), s.t * f);
}

// ABRelu(a, b) (ReLU, leaky ReLU, abs): the arc-cosine kernel of degree 1.
fn act_abrelu(s: State, c1: f32, c2: vec4<f32>, same: vec4<bool>, a: f32, b: f32) -> State {
    let zero = vec4<f32>(0.0);
    let gap = select(max(c1 * c2 - s.q * s.q, zero), zero, same);
    let root = sqrt(gap);
    let angle = atan2_fill(root, s.q);
    let factor = (a - b) * (a - b) / (2.0 * PI);
    let dot = vec4<f32>((a * a + b * b) / 2.0) - factor * angle;
    return State(factor * root + dot * s.q, s.t * dot);
}

// a erf(b x) + c (Williams 1997).
fn act_erf(s: State, c1: f32, c2: vec4<f32>, same: vec4<bool>, a: f32, b: f32, c: f32) -> State {
    let b2 = b * b;
    let qs = s.q * b2;
    let general = max((1.0 + 2.0 * c1 * b2) * (1.0 + 2.0 * c2 * b2) - 4.0 * qs * qs, vec4<f32>(0.0));
    let gap = select(general, 1.0 + 4.0 * qs, same);
    let root = sqrt(gap);
    let qn = 2.0 / PI * atan2_poly(2.0 * qs, root);
    let a2 = a * a;
    return State(a2 * qn + c * c, s.t * (a2 * b2 * 4.0 / PI / root));
}

// GELU, exact (Tsuchida et al. 2020).
fn act_gelu(s: State, c1: f32, c2: vec4<f32>, same: vec4<bool>) -> State {
    let q = s.q;
    let prod = c1 * c2;
    let prod1 = (c1 + 1.0) * (c2 + 1.0);
    let delta_sq = select(max(prod1 - q * q, vec4<f32>(0.0)), 2.0 * q + 1.0, same);
    let delta = sqrt(delta_sq);
    let angle = atan2_poly(q, delta);
    let qn = ((q * q + prod * delta_sq) / (prod1 * delta) + q * angle) / (2.0 * PI) + 0.25 * q;
    let first = (1.0 / delta_sq + (1.0 - prod) / prod1 + 1.0) * q / delta / (2.0 * PI);
    return State(qn, s.t * (first + 0.25 + angle / (2.0 * PI)));
}

// sign: the arc-cosine kernel of degree 0; its derivative is zero.
fn act_sign(s: State, c1: f32, c2: vec4<f32>, same: vec4<bool>) -> State {
    let zero = vec4<f32>(0.0);
    let gap = select(max(c1 * c2 - s.q * s.q, zero), zero, same);
    return State(1.0 - 2.0 / PI * atan2_fill(sqrt(gap), s.q), zero);
}

// The activations without a closed form on four values at once, and their
// derivatives (codes as in activation.wgsl).
fn numeric4(code: u32, v: vec4<f32>) -> vec4<f32> {
    if (code == ACT_SIGMOID) {
        return 1.0 / (1.0 + exp(-clamp(v, vec4<f32>(-80.0), vec4<f32>(80.0))));
    }
    return tanh(clamp(v, vec4<f32>(-15.0), vec4<f32>(15.0)));
}

fn numeric_slope4(code: u32, v: vec4<f32>) -> vec4<f32> {
    let f = numeric4(code, v);
    if (code == ACT_SIGMOID) {
        return f * (1.0 - f);
    }
    return 1.0 - f * f;
}

// An activation without a closed form, by Gauss-Hermite quadrature of degree
// GH_DEG over the rule's nodes and weights (binding 5), as
// neural-tangents' ElementwiseNumerical writes it:
// u = sqrt(2 c1) x, v = q / sqrt(c1 / 2) x + sqrt(2 (c2 - q^2 / c1)) y.
fn act_numeric(s: State, c1: f32, c2: vec4<f32>, same: vec4<bool>, code: u32) -> State {
    let q = select(s.q, vec4<f32>(c1), same);
    let su = sqrt(2.0 * max(c1, 0.0));
    let sv1 = q / sqrt(max(c1 / 2.0, 1e-30));
    let sv2 = sqrt(max(2.0 * (c2 - q * q / c1), vec4<f32>(0.0)));
    var nngp = vec4<f32>(0.0);
    var dot = vec4<f32>(0.0);
    for (var i = 0u; i < GH_DEG; i++) {
        let x = gh_x(i);
        let u = vec4<f32>(su * x);
        let fu = numeric4(code, u).x;
        let du = numeric_slope4(code, u).x;
        let base = sv1 * x;
        var fi = vec4<f32>(0.0);
        var di = vec4<f32>(0.0);
        for (var j = 0u; j < GH_DEG; j++) {
            let v = base + sv2 * gh_x(j);
            let f = numeric4(code, v);
            let w = gh_w(j);
            fi += w * f;
            di += w * select(1.0 - f * f, f * (1.0 - f), code == ACT_SIGMOID);
        }
        nngp += gh_w(i) * fu * fi;
        dot += gh_w(i) * du * di;
    }
    return State(nngp / PI, s.t * (dot / PI));
}

// Rows per invocation (ROWS, written by the host from src/gpu/ntk.rs): fewer,
// longer workgroups (lavapipe pays per workgroup).

@compute @workgroup_size(64, 1, 1)
fn ntk_tile(@builtin(global_invocation_id) gid: vec3<u32>) {
    let jv = gid.x;
    let cols4 = p.cols / 4u;
    let i0 = gid.y * ROWS;
    let diag_tile = (p.flags & 8u) != 0u;
    // On a diagonal tile only entries on and above the diagonal are used
    // (the host mirrors them): a group whose columns all lie left of its
    // first row has nothing to do.
    if (jv >= cols4 || (diag_tile && (jv | 63u) * 4u + 3u < i0)) {
        return;
    }
    let rows = min(ROWS, p.rows - i0);
    let j0 = jv * 4u;
    for (var r = 0u; r < rows; r++) {
        let i = i0 + r;
        let idx = i * cols4 + jv;
        let same = vec4<bool>(diag_tile) & (vec4<u32>(i) == vec4<u32>(j0, j0 + 1u, j0 + 2u, j0 + 3u));
        let out = recursion(State(a[idx], vec4<f32>(0.0)), i, j0, same);
        if ((p.flags & 1u) != 0u) {
            out_nngp[idx] = out.q;
        }
        if ((p.flags & 2u) != 0u) {
            out_ntk[idx] = out.t;
        }
    }
}
