// LayerNorm over each row of `cols` values (neural-tangents' stax.LayerNorm,
// axis -1): y = (x - mean) / sqrt(eps + var), var the biased variance, and its
// backward pass dx = s (dy - mean(dy) - y mean(dy y)) with s = 1 / sqrt(eps + var).
// One invocation per row (rows of all members one after another).
// CPU twin: src/cpu/ops.rs (layer_norm, layer_norm_grad).
//
// Bindings (group 0):
//   0: params   uniform (dynamic offset)  NormParams
//   forward:  1: x read, 2: y write, 3: inv_std write ([rows])
//   backward: 1: y read, 2: inv_std read, 3: dy read, 4: dx write

struct NormParams {
    rows: u32, cols: u32, eps: f32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: NormParams;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read_write> io2: array<f32>;
@group(0) @binding(3) var<storage, read_write> io3: array<f32>;
@group(0) @binding(4) var<storage, read_write> out4: array<f32>;

fn row_of(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}

@compute @workgroup_size(64, 1, 1)
fn layer_norm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_of(gid, nwg);
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let n = f32(p.cols);
    var sum = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        sum += in1[base + c];
    }
    let mean = sum / n;
    var sq = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let v = in1[base + c] - mean;
        sq += v * v;
    }
    let s = inverseSqrt(sq / n + p.eps);
    for (var c = 0u; c < p.cols; c++) {
        io2[base + c] = (in1[base + c] - mean) * s;
    }
    io3[r] = s;
}

@compute @workgroup_size(64, 1, 1)
fn layer_norm_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_of(gid, nwg);
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let n = f32(p.cols);
    var mdy = 0.0;
    var mdyy = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let dy = io3[base + c];
        mdy += dy;
        mdyy += dy * in1[base + c];
    }
    mdy /= n;
    mdyy /= n;
    let s = io2[r];
    for (var c = 0u; c < p.cols; c++) {
        out4[base + c] = s * (io3[base + c] - mdy - in1[base + c] * mdyy);
    }
}
