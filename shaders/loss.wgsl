// Losses of an ensemble's outputs f[e, r, c] against shared targets y[r, c], their
// gradients, and the divergence mark. CPU twins: src/cpu/ops.rs (loss_grad,
// mark_diverged).
//
// Bindings (group 0):
//   0: params  uniform (dynamic offset)  LossParams
//   1: f       storage, read        outputs [members, rows, cols]      (loss_grad)
//                                   per-member loss [members]          (mark_diverged)
//   2: y       storage, read        targets [rows, cols]               (loss_grad)
//   3: df      storage, read_write  dL/df [members, rows, cols]        (loss_grad)
//                                   alive [members], 1 or 0            (mark_diverged)
//   4: row     storage, read_write  loss of each row [members, rows]   (loss_grad)
//                                   step of divergence [members], -1 while alive (mark_diverged)
//
// mse:  L = 1/(2N) sum (f - y)^2 with N = rows * cols, dL/df = (f - y) / N.
// xent: L = 1/rows sum_r (logsumexp(f_r) - y_r . f_r) for rows y_r summing to 1,
//       dL/df = (softmax(f_r) - y_r) / rows.

struct LossParams {
    members: u32, rows: u32, cols: u32, kind: u32,
    step: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: LossParams;
@group(0) @binding(1) var<storage, read> f: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> df: array<f32>;
@group(0) @binding(4) var<storage, read_write> row: array<f32>;

// One invocation per (row, member).
@compute @workgroup_size(64)
fn loss_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    let e = gid.y;
    if (r >= p.rows || e >= p.members) {
        return;
    }
    let base = (e * p.rows + r) * p.cols;
    let ybase = r * p.cols;
    if (p.kind == 0u) {
        let inv_n = 1.0 / f32(p.rows * p.cols);
        var s = 0.0;
        for (var c = 0u; c < p.cols; c++) {
            let d = f[base + c] - y[ybase + c];
            df[base + c] = d * inv_n;
            s += d * d;
        }
        row[e * p.rows + r] = 0.5 * s * inv_n;
        return;
    }
    let inv_rows = 1.0 / f32(p.rows);
    var mx = f[base];
    for (var c = 1u; c < p.cols; c++) {
        mx = max(mx, f[base + c]);
    }
    var z = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        z += exp(f[base + c] - mx);
    }
    let lse = mx + log(z);
    var s = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let fc = f[base + c];
        s += y[ybase + c] * (lse - fc);
        df[base + c] = (exp(fc - lse) - y[ybase + c]) * inv_rows;
    }
    row[e * p.rows + r] = s * inv_rows;
}

// A member whose loss is not finite stops: alive = 0, and the step is recorded.
@compute @workgroup_size(64)
fn mark_diverged(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    if (e >= p.members) {
        return;
    }
    let l = f[e];
    // NaN fails every comparison; infinity exceeds the largest f32.
    let finite = (l == l) && abs(l) <= 3.4028235e38;
    if (df[e] > 0.5 && !finite) {
        df[e] = 0.0;
        row[e] = f32(p.step);
    }
}
