// Batched matrix product C[e] = alpha * op(A[e]) * op(B[e]) + beta * C[e].
//
// Bindings (group 0):
//   0: params  uniform (dynamic offset)  MatmulParams
//   1: a       storage, read             op(A)[i, p] = a[a_off + e*a_bs + i*a_si + p*a_sp]
//   2: b       storage, read             op(B)[p, j] = b[b_off + e*b_bs + p*b_sp + j*b_sj]
//   3: c       storage, read_write       C[i, j]     = c[c_off + e*c_bs + i*n + j]
// The entry point `transpose` uses bindings 0, 1 and 3.
//
// Layout of the work: a workgroup of 8 x 8 invocations covers a 32 x 32 tile of C.
// Invocation (x, y) owns rows row0 .. row0+3 and the columns col0 + 8*q, q = 0..3,
// so the 8 neighbouring invocations that a SIMD group runs together (lavapipe: 8
// lanes of 256 bits) read 8 neighbouring elements of a row of B: one vector load,
// not a gather. The values of A are the same for the 8 lanes. Strides make every
// transpose form the same kernel; B with b_sj == 1 is the fast case (the host
// transposes B first when it is not).
// Any m, n, k: loads are clamped into the matrix, stores are guarded.

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(8, 8, 1)
fn matmul(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let e = wg.z;
    let row0 = wg.y * 32u + lid.y * 4u;
    let col0 = wg.x * 32u + lid.x;
    let mlast = p.m - 1u;
    let nlast = p.n - 1u;

    let abase = p.a_off + e * p.a_bs;
    let a0 = abase + min(row0, mlast) * p.a_si;
    let a1 = abase + min(row0 + 1u, mlast) * p.a_si;
    let a2 = abase + min(row0 + 2u, mlast) * p.a_si;
    let a3 = abase + min(row0 + 3u, mlast) * p.a_si;

    let bbase = p.b_off + e * p.b_bs;
    let b0 = bbase + min(col0, nlast) * p.b_sj;
    let b1 = bbase + min(col0 + 8u, nlast) * p.b_sj;
    let b2 = bbase + min(col0 + 16u, nlast) * p.b_sj;
    let b3 = bbase + min(col0 + 24u, nlast) * p.b_sj;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var ap = 0u;
    var bp = 0u;
    for (var kk = 0u; kk < p.k; kk++) {
        let bv = vec4<f32>(b[b0 + bp], b[b1 + bp], b[b2 + bp], b[b3 + bp]);
        acc0 = fma(vec4<f32>(a[a0 + ap]), bv, acc0);
        acc1 = fma(vec4<f32>(a[a1 + ap]), bv, acc1);
        acc2 = fma(vec4<f32>(a[a2 + ap]), bv, acc2);
        acc3 = fma(vec4<f32>(a[a3 + ap]), bv, acc3);
        ap += p.a_sp;
        bp += p.b_sp;
    }

    let cbase = p.c_off + e * p.c_bs;
    store_row(cbase, row0, col0, acc0);
    store_row(cbase, row0 + 1u, col0, acc1);
    store_row(cbase, row0 + 2u, col0, acc2);
    store_row(cbase, row0 + 3u, col0, acc3);
}

fn store_row(cbase: u32, row: u32, col0: u32, v: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    let r = cbase + row * p.n;
    for (var q = 0u; q < 4u; q++) {
        let col = col0 + 8u * q;
        if (col < p.n) {
            var out = p.alpha * v[q];
            if (p.beta != 0.0) {
                out += p.beta * c[r + col];
            }
            c[r + col] = out;
        }
    }
}

// Batched transpose: c[e, j, i] = a[e, i, j] for a source of p.m rows and p.n
// columns (uses a_off, a_bs, c_off, c_bs of the same params; bindings 1 and 3).
// Each invocation writes one element; neighbouring invocations write
// neighbouring elements of a row of the destination.
@compute @workgroup_size(8, 8, 1)
fn transpose(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x; // column of the destination = row of the source
    let j = gid.y; // row of the destination = column of the source
    if (i >= p.m || j >= p.n) {
        return;
    }
    c[p.c_off + gid.z * p.c_bs + j * p.m + i] = a[p.a_off + gid.z * p.a_bs + i * p.n + j];
}

// Thin products (fewer than 4 rows or 4 columns of C: matrix-vector products
// such as a readout layer's), where the 32 x 32 tiles above would leave most
// invocations idle. One invocation per element of C; the 8 lanes of a SIMD
// group run along the longer side of C (LANES_ON_ROWS when that is m), so that
// they share one operand's value and read neighbouring values of the other.
override LANES_ON_ROWS: bool = false;

@compute @workgroup_size(64, 1, 1)
fn matmul_thin(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = select(gid.y, gid.x, LANES_ON_ROWS);
    let j = select(gid.x, gid.y, LANES_ON_ROWS);
    if (i >= p.m || j >= p.n) {
        return;
    }
    let e = gid.z;
    var ai = p.a_off + e * p.a_bs + i * p.a_si;
    var bj = p.b_off + e * p.b_bs + j * p.b_sj;
    var acc = 0.0;
    for (var kk = 0u; kk < p.k; kk++) {
        acc = fma(a[ai], b[bj], acc);
        ai += p.a_sp;
        bj += p.b_sp;
    }
    let idx = p.c_off + e * p.c_bs + i * p.n + j;
    var out = p.alpha * acc;
    if (p.beta != 0.0) {
        out += p.beta * c[idx];
    }
    c[idx] = out;
}
