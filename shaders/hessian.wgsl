// The kernels of Hessian-vector products and spectra: the tangents of
// backward steps along a direction (forward over reverse, Pearlmutter's
// R-operator) that are neither products nor sums, and the per-member dot
// products of the Lanczos vectors. The host prepends activation.wgsl.
// CPU twins: src/cpu/ops.rs (activation_tangent, layer_norm_tangent,
// softmax_tangent, row_dots).
//
// Bindings (group 0):
//   0: params  uniform (dynamic offset)  TangentParams
//   activation_tangent:  1: x, 2: dy, 3: rx, 4: rdy (read), 6: out
//   layer_norm_tangent:  1: y, 2: inv_std ([rows]), 3: dy, 4: rx, 5: rdy (read), 6: out
//   softmax_tangent:     1: f, 2: rf (read), 6: out
//   row_dots:            1: a [len, rows, cols], 2: x [len, cols] (read), 6: out [len, rows]

struct TangentParams {
    len: u32, rows: u32, cols: u32, _pad0: u32,
    pa: f32, pb: f32, scale: f32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: TangentParams;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read> in3: array<f32>;
@group(0) @binding(4) var<storage, read> in4: array<f32>;
@group(0) @binding(5) var<storage, read> in5: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

// out = rdy * act'(x) + dy * act''(x) * rx, over len values (grid stride).
@compute @workgroup_size(256)
fn activation_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += nwg.x * 256u) {
        let x = in1[i];
        out[i] = in4[i] * act_slope(ACT_CODE, x, p.pa, p.pb)
            + in2[i] * act_curvature(ACT_CODE, x, p.pa, p.pb) * in3[i];
    }
}

fn row_of(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}

// One invocation per row of cols values: the tangent of
// dx = s (dy - mean(dy) - y mean(dy y)) with ry = s (rx - mean(rx) - y mean(y rx))
// and Rs = -s^2 mean(y rx).
@compute @workgroup_size(64, 1, 1)
fn layer_norm_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_of(gid, nwg);
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let n = f32(p.cols);
    var m_dy = 0.0;
    var m_dyy = 0.0;
    var m_rdy = 0.0;
    var m_rdyy = 0.0;
    var m_yrx = 0.0;
    var m_rx = 0.0;
    var m_dyrx = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let y = in1[base + c];
        let dy = in3[base + c];
        let rx = in4[base + c];
        let rdy = in5[base + c];
        m_dy += dy;
        m_dyy += dy * y;
        m_rdy += rdy;
        m_rdyy += rdy * y;
        m_yrx += y * rx;
        m_rx += rx;
        m_dyrx += dy * rx;
    }
    m_dy /= n;
    m_dyy /= n;
    m_rdy /= n;
    m_rdyy /= n;
    m_yrx /= n;
    m_rx /= n;
    m_dyrx /= n;
    let s = in2[r];
    let m_dyry = s * (m_dyrx - m_dy * m_rx - m_dyy * m_yrx);
    for (var c = 0u; c < p.cols; c++) {
        let y = in1[base + c];
        let ry = s * (in4[base + c] - m_rx - y * m_yrx);
        let dx = s * (in3[base + c] - m_dy - y * m_dyy);
        out[base + c] = -s * m_yrx * dx
            + s * (in5[base + c] - m_rdy - ry * m_dyy - y * (m_rdyy + m_dyry));
    }
}

// One invocation per row of cols outputs: (p * rf - p (p . rf)) * scale with
// p = softmax(f) and scale = 1 / (rows per member).
@compute @workgroup_size(64, 1, 1)
fn softmax_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_of(gid, nwg);
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    var mx = in1[base];
    for (var c = 1u; c < p.cols; c++) {
        mx = max(mx, in1[base + c]);
    }
    var z = 0.0;
    var pr = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let e = exp(in1[base + c] - mx);
        z += e;
        pr += e * in2[base + c];
    }
    pr /= z;
    for (var c = 0u; c < p.cols; c++) {
        let q = exp(in1[base + c] - mx) / z;
        out[base + c] = q * (in2[base + c] - pr) * p.scale;
    }
}

var<workgroup> partial: array<f32, 256>;

// out[e, r] = scale * out[e, r] + sum_c a[e, r, c] x[e, c]: one workgroup per
// (r, e), 256 invocations striding along the row, then a tree reduction.
// scale == 0 never reads out.
@compute @workgroup_size(256)
fn row_dots(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wid.x;
    let e = wid.y;
    let row = (e * p.rows + r) * p.cols;
    let xb = e * p.cols;
    var acc = 0.0;
    for (var c = lid; c < p.cols; c += 256u) {
        acc = fma(in1[row + c], in2[xb + c], acc);
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let o = e * p.rows + r;
        if (p.scale == 0.0) {
            out[o] = partial[0];
        } else {
            out[o] = fma(p.scale, out[o], partial[0]);
        }
    }
}
