// Reductions over batched row-major matrices x[e, r, c] (len = batch * rows * cols).
//
// Bindings (group 0):
//   0: params  uniform (dynamic offset)  ReduceParams
//   1: x       storage, read
//   3: out     storage, read_write
// Sums accumulate in f32 with Kahan compensation, so that long rows lose no digits.

struct ReduceParams {
    batch: u32, rows: u32, cols: u32, off_x: u32,
    off_out: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: ReduceParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// out[e, c] = sum_r x[e, r, c]; invocation (c, e). Neighbouring lanes read
// neighbouring columns.
@compute @workgroup_size(64)
fn sum_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.y;
    for (var col = gid.x; col < p.cols; col += nwg.x * 64u) {
        var s = 0.0;
        var comp = 0.0;
        var idx = p.off_x + e * p.rows * p.cols + col;
        for (var r = 0u; r < p.rows; r++) {
            let y = x[idx] - comp;
            let t = s + y;
            comp = (t - s) - y;
            s = t;
            idx += p.cols;
        }
        out[p.off_out + e * p.cols + col] = s;
    }
}

// out[e, r] = sum_c x[e, r, c]; invocation (r, e).
@compute @workgroup_size(64)
fn sum_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.y;
    for (var row = gid.x; row < p.rows; row += nwg.x * 64u) {
        var s = 0.0;
        var comp = 0.0;
        let base = p.off_x + (e * p.rows + row) * p.cols;
        for (var col = 0u; col < p.cols; col++) {
            let y = x[base + col] - comp;
            let t = s + y;
            comp = (t - s) - y;
            s = t;
        }
        out[p.off_out + e * p.rows + row] = s;
    }
}
