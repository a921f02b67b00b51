// Elementwise kernels: activations forward and backward, scale, axpy, product, bias add.
// The host prepends activation.wgsl.
//
// Bindings (group 0), the same for every entry point (each uses a subset):
//   0: params  uniform (dynamic offset)  EwParams
//   1: in0     storage, read
//   2: in1     storage, read
//   3: out     storage, read_write
// Each entry point loops with a grid stride, so any length fits in one dispatch.

struct EwParams {
    len: u32, off0: u32, off1: u32, off_out: u32,
    code: u32, rows: u32, cols: u32, _pad0: u32,
    alpha: f32, pa: f32, pb: f32, pc: f32,
}

@group(0) @binding(0) var<uniform> p: EwParams;
@group(0) @binding(1) var<storage, read> in0: array<f32>;
@group(0) @binding(2) var<storage, read> in1: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn stride(nwg: vec3<u32>) -> u32 {
    return nwg.x * 256u;
}

// out = act(in0)
@compute @workgroup_size(256)
fn act_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(nwg)) {
        out[p.off_out + i] = act_value(ACT_CODE, in0[p.off0 + i], p.pa, p.pb, p.pc);
    }
}

// out = in1 * act'(in0)   (in0: pre-activation, in1: gradient of the output)
@compute @workgroup_size(256)
fn act_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(nwg)) {
        out[p.off_out + i] = in1[p.off1 + i] * act_slope(ACT_CODE, in0[p.off0 + i], p.pa, p.pb);
    }
}

// out *= alpha
@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(nwg)) {
        out[p.off_out + i] = p.alpha * out[p.off_out + i];
    }
}

// out += alpha * in0
@compute @workgroup_size(256)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(nwg)) {
        out[p.off_out + i] = fma(p.alpha, in0[p.off0 + i], out[p.off_out + i]);
    }
}

// out = in0 * in1
@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(nwg)) {
        out[p.off_out + i] = in0[p.off0 + i] * in1[p.off1 + i];
    }
}

// out[e, r, c] += alpha * in0[e, c] for len = batch * rows * cols elements
@compute @workgroup_size(256)
fn bias_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let per = p.rows * p.cols;
    for (var i = gid.x; i < p.len; i += stride(nwg)) {
        let e = i / per;
        let col = i % p.cols;
        out[p.off_out + i] += p.alpha * in0[p.off0 + e * p.cols + col];
    }
}

// out[r, c] = in0[idx[r], c] for rows r of a [rows, cols] output; the row
// indices are u32 stored bit for bit in in1 (len = rows * cols).
@compute @workgroup_size(256)
fn gather_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(nwg)) {
        let r = i / p.cols;
        let src = bitcast<u32>(in1[p.off1 + r]);
        out[p.off_out + i] = in0[p.off0 + src * p.cols + i % p.cols];
    }
}

// Vector forms of the hot flat kernels, for lengths and offsets that are
// multiples of 4 (on lavapipe every storage access whose address differs
// between lanes costs one scalar access per lane: vec4 quarters that). They
// bind the same slots as arrays of vec4.
@group(0) @binding(1) var<storage, read> in0v: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> in1v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> outv: array<vec4<f32>>;

// out = in1 * act'(in0), 4 values per step; len, off0, off1, off_out in vec4s.
@compute @workgroup_size(256)
fn act_backward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(nwg)) {
        let z = in0v[p.off0 + i];
        let s = vec4<f32>(
            act_slope(ACT_CODE, z.x, p.pa, p.pb),
            act_slope(ACT_CODE, z.y, p.pa, p.pb),
            act_slope(ACT_CODE, z.z, p.pa, p.pb),
            act_slope(ACT_CODE, z.w, p.pa, p.pb),
        );
        outv[p.off_out + i] = in1v[p.off1 + i] * s;
    }
}
