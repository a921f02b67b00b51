// The infinite-width layer recursion, one invocation per kernel entry.
// The host prepends activation.wgsl (for the codes). CPU twin: src/kernel/recursion.rs.
//
// Bindings (group 0):
//   0: params  uniform (dynamic offset)  NtkParams
//   1: gram    storage, read        q0[i, j] = x1_i . x2_j / d_in, rows x cols
//   2: diag    storage, read        variance entering activation l: diag[l*(rows+cols) + i] for x1_i,
//                                   diag[l*(rows+cols) + rows + j] for x2_j
//   3: nngp    storage, read_write  rows x cols
//   4: ntk     storage, read_write  rows x cols
//
// flags: 1 write nngp, 2 write ntk, 4 standard parameterization, 8 the tile is
// on the diagonal of a kernel of a set with itself (entry (i, i) pairs a point
// with itself: its differences c1 c2 - q^2 are exactly known).

struct NtkParams {
    rows: u32, cols: u32, depth: u32, flags: u32,
    code: u32, _pad0: u32, _pad1: u32, _pad2: u32,
    w_var: f32, b_var: f32, d_in: f32, width: f32,
    pa: f32, pb: f32, pc: f32, _pad3: f32,
}

@group(0) @binding(0) var<uniform> p: NtkParams;
@group(0) @binding(1) var<storage, read> gram: array<f32>;
@group(0) @binding(2) var<storage, read> diag: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_nngp: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_ntk: array<f32>;

const PI: f32 = 3.14159265358979;

fn atan2_fill(y: f32, x: f32) -> f32 {
    if (y == 0.0 && x == 0.0) {
        return PI / 2.0;
    }
    return atan2(y, x);
}

// (q', dot): q' = E[phi(u) phi(v)], Theta' = Theta * dot.
fn act_pair(q: f32, c1: f32, c2: f32, same: bool) -> vec2<f32> {
    switch p.code {
        case 1u: {
            let a = p.pa;
            let b = p.pb;
            var gap = 0.0;
            if (!same) {
                gap = max(c1 * c2 - q * q, 0.0);
            }
            let root = sqrt(gap);
            let angle = atan2_fill(root, q);
            let factor = (a - b) * (a - b) / (2.0 * PI);
            let dot = (a * a + b * b) / 2.0 - factor * angle;
            return vec2<f32>(factor * root + dot * q, dot);
        }
        case 2u: {
            let b2 = p.pb * p.pb;
            let qs = q * b2;
            var gap = 1.0 + 4.0 * qs;
            if (!same) {
                gap = max((1.0 + 2.0 * c1 * b2) * (1.0 + 2.0 * c2 * b2) - 4.0 * qs * qs, 0.0);
            }
            let root = sqrt(gap);
            let qn = 2.0 / PI * atan2(2.0 * qs, root);
            let a2 = p.pa * p.pa;
            return vec2<f32>(a2 * qn + p.pc * p.pc, a2 * b2 * 4.0 / PI / root);
        }
        case 4u: {
            let prod = c1 * c2;
            let prod1 = (c1 + 1.0) * (c2 + 1.0);
            var delta_sq = 2.0 * q + 1.0;
            if (!same) {
                delta_sq = max(prod1 - q * q, 0.0);
            }
            let delta = sqrt(delta_sq);
            let angle = atan2(q, delta);
            let qn = ((q * q + prod * delta_sq) / (prod1 * delta) + q * angle) / (2.0 * PI) + 0.25 * q;
            let first = (1.0 / delta_sq + (1.0 - prod) / prod1 + 1.0) * q / delta / (2.0 * PI);
            return vec2<f32>(qn, first + 0.25 + angle / (2.0 * PI));
        }
        case 5u: {
            var gap = 0.0;
            if (!same) {
                gap = max(c1 * c2 - q * q, 0.0);
            }
            return vec2<f32>(1.0 - 2.0 / PI * atan2_fill(sqrt(gap), q), 0.0);
        }
        default: {
            return vec2<f32>(q, 1.0);
        }
    }
}

// Dense layer: returns (q', Theta').
fn dense(fan_in: f32, q: f32, theta: f32) -> vec2<f32> {
    let qn = p.w_var * q + p.b_var;
    if ((p.flags & 4u) != 0u) {
        return vec2<f32>(qn, fan_in * q + p.w_var * theta + 1.0);
    }
    return vec2<f32>(qn, qn + p.w_var * theta);
}

@compute @workgroup_size(64, 1, 1)
fn ntk_tile(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let i = gid.y;
    if (j >= p.cols || i >= p.rows) {
        return;
    }
    let same = (p.flags & 8u) != 0u && i == j;
    let stride = p.rows + p.cols;
    var q = gram[i * p.cols + j];
    var theta = 0.0;
    for (var l = 0u; l < p.depth; l++) {
        let fan_in = select(p.width, p.d_in, l == 0u);
        let qt = dense(fan_in, q, theta);
        let c1 = diag[l * stride + i];
        let c2 = diag[l * stride + p.rows + j];
        var qq = qt.x;
        if (same) {
            qq = c1;
        }
        let r = act_pair(qq, c1, c2, same);
        q = r.x;
        theta = qt.y * r.y;
    }
    let out = dense(select(p.width, p.d_in, p.depth == 0u), q, theta);
    let idx = i * p.cols + j;
    if ((p.flags & 1u) != 0u) {
        out_nngp[idx] = out.x;
    }
    if ((p.flags & 2u) != 0u) {
        out_ntk[idx] = out.y;
    }
}
