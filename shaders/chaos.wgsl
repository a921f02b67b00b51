// Signal propagation at infinite width (Poole et al. 2016; Schoenholz et al.
// 2017, section 3) for one activation at many points, one invocation per
// point. The host prepends activation.wgsl (ACT_CODE picks the activation,
// NUMERIC = 1 computes every expectation by Gauss-Hermite quadrature). CPU
// twin, step for step in f64: src/chaos/fixed.rs and src/chaos/gauss.rs.
//
// For u ~ N(0, q): V(q) = E[phi(u)^2], V'(q), S(q) = E[phi'(u)^2]; for two
// pre-activations of variance q and correlation c: P(c) = E[phi(u1) phi(u2)]
// and P'(c) = E[phi'(u1) phi'(u2)]. Quadrature: 1-D sums over the rule for V,
// V' (= E[phi phi' u] / q, Stein's lemma) and S, and the Mehler series
// P(c) = sum_k a_k^2 c^k with a_k = sum_i T[i, k] phi(sqrt(2 q) x_i).
//
// Bindings (group 0):
//   0: params  uniform (dynamic offset)  ChaosParams
//   1: input   storage, read   fixed_points: [sw2, sb2] per point; critical: [sb2, lo, hi]
//   2: output  storage, write  fixed_points: [q*, c*, chi_1, xi_q, xi_c]; critical: [sw2]
//   3: rule    storage, read   nodes x_i (degree, ascending), weights w_i / sqrt(pi) (degree)
//   4: table   storage, read   T for the nodes x_i <= 0 (ceil(degree / 2) rows of
//                              terms / 4 vec4, terms a multiple of 4; the row of a
//                              middle node x = 0 halved): the nodes are symmetric and
//                              T[-x, k] = (-1)^k T[x, k], so a_k sums pairs.
// -1 marks a value that does not exist or is infinite.

struct ChaosParams {
    count: u32, degree: u32, terms: u32, _pad0: u32,
    pa: f32, pb: f32, pc: f32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: ChaosParams;
@group(0) @binding(1) var<storage, read> pts: array<f32>;
@group(0) @binding(2) var<storage, read_write> vals: array<f32>;
@group(0) @binding(3) var<storage, read> rule: array<f32>;
@group(0) @binding(4) var<storage, read> table: array<vec4<f32>>;

override NUMERIC: u32 = 0u;
// Mehler terms / 4, fixed per pipeline so that the loops over the
// coefficients unroll and the coefficients stay in registers.
override TERMS4: u32 = 15u;

const PI: f32 = 3.14159265358979;
const NONE: f32 = -1.0;
const MAX_ITERS: u32 = 64u;
const Q_ZERO: f32 = 1e-12;
const MAX_TERMS4: u32 = 50u;

// The Mehler coefficients a_k^2 at the current q, four per vector
// (quadrature only).
var<private> coef: array<vec4<f32>, MAX_TERMS4>;

fn phi(x: f32) -> f32 {
    return act_value(ACT_CODE, x, p.pa, p.pb, p.pc);
}

fn dphi(x: f32) -> f32 {
    return act_slope(ACT_CODE, x, p.pa, p.pb);
}

// (phi(x), phi'(x)), with one evaluation of tanh or the logistic function.
fn phi2(x: f32) -> vec2<f32> {
    if (ACT_CODE == ACT_TANH) {
        // Lavapipe's tanh loses relative accuracy near 0 (1% at 1e-6, as
        // (e^2x - 1) / (e^2x + 1)); Lambert's continued fraction there.
        let x2 = x * x;
        let cf = x / (1.0 + x2 / (3.0 + x2 / (5.0 + x2 / (7.0 + x2 / (9.0 + x2 / 11.0)))));
        let t = select(tanh(clamp(x, -15.0, 15.0)), cf, abs(x) < 0.5);
        return vec2<f32>(t, 1.0 - t * t);
    }
    if (ACT_CODE == ACT_SIGMOID) {
        let s = 1.0 / (1.0 + exp(-clamp(x, -80.0, 80.0)));
        return vec2<f32>(s, s * (1.0 - s));
    }
    return vec2<f32>(phi(x), dphi(x));
}

// (V(q), V'(q), S(q)) by quadrature in one pass.
fn moments(q: f32) -> vec3<f32> {
    let qc = max(q, Q_ZERO);
    let s = sqrt(2.0 * qc);
    var m = vec3<f32>(0.0);
    for (var i = 0u; i < p.degree; i++) {
        let u = s * node(i);
        let f = phi2(u);
        m += weight(i) * vec3<f32>(f.x * f.x, f.x * f.y * u, f.y * f.y);
    }
    return vec3<f32>(m.x, m.y / qc, m.z);
}

fn node(i: u32) -> f32 {
    return rule[i];
}

fn weight(i: u32) -> f32 {
    return rule[p.degree + i];
}

// (V(q), V'(q)).
fn len_map(q: f32) -> vec2<f32> {
    if (NUMERIC == 1u) {
        // At q below Q_ZERO, V(Q_ZERO) differs from V(q) by Q_ZERO V'.
        return moments(q).xy;
    }
    let a = p.pa;
    let b = p.pb;
    switch ACT_CODE {
        case ACT_ABRELU: {
            let k = (a * a + b * b) / 2.0;
            return vec2<f32>(k * q, k);
        }
        case ACT_ERF: {
            let t = q * b * b;
            let v = a * a * (2.0 / PI * atan2(t, sqrt(t + 0.25))) + p.pc * p.pc;
            return vec2<f32>(v, a * a * 4.0 * b * b / (PI * (1.0 + 2.0 * t) * sqrt(1.0 + 4.0 * t)));
        }
        case ACT_GELU: {
            let r = sqrt(1.0 + 2.0 * q);
            let q1 = q + 1.0;
            let v = ((q / (q1 * r) + atan2(q, r) / 2.0) / PI + 0.25) * q;
            let first = (2.0 * q * q1 * r - q * q * (r + q1 / r)) / (PI * q1 * q1 * r * r);
            let second = atan(q / r) / (2.0 * PI) + q / (2.0 * PI * r * q1);
            return vec2<f32>(v, first + second + 0.25);
        }
        case ACT_SIGN: {
            return vec2<f32>(select(0.0, 1.0, q != 0.0), 0.0);
        }
        default: {
            return vec2<f32>(q, 1.0);
        }
    }
}

// S(q) = E[phi'(u)^2], NONE where infinite.
fn slope_sq(q: f32) -> f32 {
    if (ACT_CODE == ACT_SIGN) {
        return NONE;
    }
    if (NUMERIC == 1u) {
        return moments(q).z;
    }
    let a = p.pa;
    let b = p.pb;
    switch ACT_CODE {
        case ACT_ABRELU: { return (a * a + b * b) / 2.0; }
        case ACT_ERF: { return a * a * b * b * 4.0 / PI / sqrt(1.0 + 4.0 * q * b * b); }
        case ACT_GELU: { return gelu_pair(q, 1.0).y; }
        default: { return 1.0; }
    }
}

// neural-tangents' GELU kernel of two variances q and correlation c: (P, P').
fn gelu_pair(q: f32, c: f32) -> vec2<f32> {
    let cov = c * q;
    let prod = q * q;
    let prod1 = (q + 1.0) * (q + 1.0);
    let delta_sq = max(prod1 - cov * cov, 0.0);
    let delta = sqrt(delta_sq);
    let angle = atan2(cov, delta);
    let v = ((cov * cov + prod * delta_sq) / (prod1 * delta) + cov * angle) / (2.0 * PI) + 0.25 * cov;
    let first = (1.0 / delta_sq + (1.0 - prod) / prod1 + 1.0) * cov / delta / (2.0 * PI);
    return vec2<f32>(v, first + 0.25 + angle / (2.0 * PI));
}

// Prepares P at variance q: the Mehler coefficients (quadrature only).
fn prepare_pair(q: f32) {
    if (NUMERIC == 0u) {
        return;
    }
    let t4 = TERMS4;
    for (var m = 0u; m < t4; m++) {
        coef[m] = vec4<f32>(0.0);
    }
    let s = sqrt(2.0 * max(q, 0.0));
    let half = (p.degree + 1u) / 2u;
    for (var i = 0u; i < half; i++) {
        let x = s * node(i);
        let f = phi2(x).x;
        let g = phi2(-x).x;
        let eo = vec4<f32>(f + g, f - g, f + g, f - g);
        let row = i * t4;
        for (var m = 0u; m < t4; m++) {
            coef[m] += table[row + m] * eo;
        }
    }
    for (var m = 0u; m < t4; m++) {
        coef[m] = coef[m] * coef[m];
    }
}

// (P(c), P'(c)) at the variance of the last prepare_pair; P' infinite for sign at c = 1.
fn pair(q: f32, c: f32) -> vec2<f32> {
    if (NUMERIC == 1u) {
        // P = sum_k A_k c^k and D = sum_k k A_k c^k, by Horner in c^4.
        let pw = vec4<f32>(1.0, c, c * c, c * c * c);
        let c4 = pw.w * c;
        var v = 0.0;
        var d = 0.0;
        for (var m = TERMS4; m > 0u; m--) {
            let a = coef[m - 1u];
            let k = vec4<f32>(f32(4u * (m - 1u))) + vec4<f32>(0.0, 1.0, 2.0, 3.0);
            v = v * c4 + dot(a, pw);
            d = d * c4 + dot(a * k, pw);
        }
        let slope = select(d / c, coef[0].y, c == 0.0);
        return vec2<f32>(v, slope / max(q, 1e-30));
    }
    let a = p.pa;
    let b = p.pb;
    let gap = max(1.0 - c * c, 0.0);
    switch ACT_CODE {
        case ACT_ABRELU: {
            let root = q * sqrt(gap);
            let angle = select(atan2(root, c * q), PI / 2.0, root == 0.0 && c * q == 0.0);
            let factor = (a - b) * (a - b) / (2.0 * PI);
            let dot = (a * a + b * b) / 2.0 - factor * angle;
            return vec2<f32>(factor * root + dot * c * q, dot);
        }
        case ACT_ERF: {
            let t = q * b * b;
            let qs = c * t;
            let root = sqrt(max((1.0 + 2.0 * t) * (1.0 + 2.0 * t) - 4.0 * qs * qs, 0.0));
            let qn = 2.0 / PI * atan2(2.0 * qs, root);
            return vec2<f32>(a * a * qn + p.pc * p.pc, a * a * b * b * 4.0 / PI / root);
        }
        case ACT_GELU: {
            return gelu_pair(q, c);
        }
        case ACT_SIGN: {
            let root = sqrt(gap);
            let angle = select(atan2(root, c), PI / 2.0, root == 0.0 && c == 0.0);
            return vec2<f32>(1.0 - 2.0 / PI * angle, 2.0 / (PI * q * root));
        }
        default: {
            return vec2<f32>(c * q, 1.0);
        }
    }
}

fn linear_gain() -> f32 {
    if (NUMERIC == 1u) {
        return NONE;
    }
    switch ACT_CODE {
        case ACT_ABRELU: { return (p.pa * p.pa + p.pb * p.pb) / 2.0; }
        case ACT_IDENTITY: { return 1.0; }
        default: { return NONE; }
    }
}

// g(q) = sw2 V(q) + sb2 - q and its slope.
fn g_len(q: f32, sw2: f32, sb2: f32) -> vec2<f32> {
    let l = len_map(q);
    return vec2<f32>(sw2 * l.x + sb2 - q, sw2 * l.y - 1.0);
}

// q*: the limit of the length map from q = 1, NONE where it grows without bound.
fn q_star(sw2: f32, sb2: f32) -> f32 {
    let k = linear_gain();
    if (k >= 0.0) {
        let slope = sw2 * k;
        return select(NONE, sb2 / (1.0 - slope), slope < 1.0);
    }
    let g1 = g_len(1.0, sw2, sb2).x;
    if (g1 == 0.0) {
        return 1.0;
    }
    var lo = 0.0;
    var hi = 1.0;
    if (g1 > 0.0) {
        lo = 1.0;
        hi = 4.0;
        loop {
            if (g_len(hi, sw2, sb2).x < 0.0) {
                break;
            }
            lo = hi;
            hi *= 4.0;
            if (hi > 1e15) {
                return NONE;
            }
        }
    }
    var x = hi;
    for (var it = 0u; it < MAX_ITERS; it++) {
        let g = g_len(x, sw2, sb2);
        if (g.x >= 0.0) {
            lo = x;
        } else {
            hi = x;
        }
        var nx = x - g.x / g.y;
        if (!(nx > lo && nx < hi)) {
            nx = 0.5 * (lo + hi);
        }
        let done = abs(nx - x) <= 4e-7 * abs(x) || hi - lo <= 4e-7 * hi;
        x = nx;
        if (done || hi <= Q_ZERO * 1e-3) {
            break;
        }
    }
    return select(x, 0.0, x < Q_ZERO);
}

fn depth_scale(slope: f32) -> f32 {
    if (slope < 0.0 || slope >= 1.0) {
        return NONE;
    }
    if (slope == 0.0) {
        return 0.0;
    }
    return -1.0 / log(slope);
}

fn chi1_of(sw2: f32, q: f32) -> f32 {
    let s = slope_sq(q);
    return select(sw2 * s, NONE, s < 0.0);
}

@compute @workgroup_size(64, 1, 1)
fn fixed_points(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.count) {
        return;
    }
    let sw2 = pts[2u * idx];
    let sb2 = pts[2u * idx + 1u];
    let o = 5u * idx;
    let q = q_star(sw2, sb2);
    if (q < 0.0) {
        for (var f = 0u; f < 5u; f++) {
            vals[o + f] = NONE;
        }
        return;
    }
    var chi1 = 0.0;
    var xi_q = 0.0;
    if (NUMERIC == 1u && ACT_CODE != ACT_SIGN) {
        let m = moments(q);
        chi1 = sw2 * m.z;
        xi_q = depth_scale(sw2 * m.y);
    } else {
        chi1 = chi1_of(sw2, q);
        xi_q = depth_scale(sw2 * len_map(q).y);
    }
    vals[o] = q;
    vals[o + 2u] = chi1;
    vals[o + 3u] = xi_q;
    if (q == 0.0) {
        vals[o + 1u] = NONE;
        vals[o + 4u] = select(depth_scale(chi1), NONE, chi1 < 0.0);
        return;
    }
    prepare_pair(q);
    let norm = sw2 * pair(q, 1.0).x + sb2;
    let ordered = chi1 >= 0.0 && chi1 <= 1.0;
    var c = 1.0;
    var chi_c = chi1;
    if (!ordered) {
        var lo = 0.0;
        var hi = 1.0;
        // P has non-negative Mehler coefficients, so h = C - c is convex on
        // [0, 1]: Newton from 0 rises monotonically to c*.
        c = 0.0;
        for (var it = 0u; it < MAX_ITERS; it++) {
            let pc = pair(q, c);
            let h = (sw2 * pc.x + sb2) / norm - c;
            let dh = sw2 * q * pc.y / norm - 1.0;
            if (h >= 0.0) {
                lo = c;
            } else {
                hi = c;
            }
            var nc = c - h / dh;
            if (!(nc > lo && nc < hi)) {
                nc = 0.5 * (lo + hi);
            }
            let done = abs(nc - c) <= 2e-7 || hi - lo <= 2e-7;
            c = nc;
            if (done || hi <= 1e-15) {
                break;
            }
        }
        chi_c = sw2 * q * pair(q, c).y / norm;
    }
    vals[o + 1u] = c;
    vals[o + 4u] = depth_scale(chi_c);
}

// Whether sw2 is on the chaotic side at sb2 (chi_1 > 1, or no q*).
fn chaotic(sw2: f32, sb2: f32) -> bool {
    let q = q_star(sw2, sb2);
    if (q < 0.0) {
        return true;
    }
    let c = chi1_of(sw2, q);
    return c < 0.0 || c > 1.0;
}

@compute @workgroup_size(64, 1, 1)
fn critical(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.count) {
        return;
    }
    let sb2 = pts[3u * idx];
    var a = pts[3u * idx + 1u];
    var b = pts[3u * idx + 2u];
    if (chaotic(a, sb2) || !chaotic(b, sb2)) {
        vals[idx] = NONE;
        return;
    }
    for (var it = 0u; it < 64u; it++) {
        let m = 0.5 * (a + b);
        if (m <= a || m >= b) {
            break;
        }
        if (chaotic(m, sb2)) {
            b = m;
        } else {
            a = m;
        }
    }
    vals[idx] = 0.5 * (a + b);
}
