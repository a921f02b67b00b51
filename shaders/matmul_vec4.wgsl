// Operand4: vec4<f32>, or vec4<f16> for f16 storage (accumulation stays f32);
// the host prepends its alias.
//
// Register-blocked batched product for row-major A and B (the NN form) with k
// and n multiples of 4 (params as in matmul.wgsl).
//
// Bindings (group 0):
//   0: params  uniform (dynamic offset)  MatmulParams (matmul_params.wgsl)
//   1: a4      storage, read             array<Operand4>, A[i, p..p+4] = a4[(a_off + e*a_bs + i*a_si + p) / 4]
//   2: b       storage, read             array<Operand4>, B[p, j..j+4] = b[(b_off + e*b_bs + p*b_sp + j) / 4]
//   3: c       storage, read_write       array<vec4<f32>>, C[i, j..j+4] = c[(c_off + e*c_bs + i*n + j) / 4]
//
// Each invocation accumulates an 8 x 8 block of C (two vec4 per row) over steps
// of 4 in k: 8 vec4 loads of A and 8 of B feed 256 multiply-adds. A workgroup of
// 8 x WG_Y invocations covers a (8 WG_Y) x 64 tile. Requires k and n multiples of 4.

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a4: array<Operand4>;
@group(0) @binding(2) var<storage, read> b: array<Operand4>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
// Fused epilogue of a dense layer (EPILOGUE): C += mult_b * bias[e] (row
// broadcast), then h = act(C). The host prepends activation.wgsl.
@group(0) @binding(4) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> h: array<vec4<f32>>;
override EPILOGUE: bool = false;

// Tuned per adapter (src/gpu/tune.rs): rows of invocations per workgroup, and
// whether consecutive workgroups walk down the rows or along the columns.
override WG_Y: u32 = 8u;
override WALK_M: bool = false;

@compute @workgroup_size(8, WG_Y, 1)
fn matmul_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let e = wg.z;
    let tm = select(wg.y, wg.x, WALK_M);
    let tn = select(wg.x, wg.y, WALK_M);
    let row0 = (tm * WG_Y + lid.y) * 8u;
    let col = (tn * 8u + lid.x) * 8u;
    let mlast = p.m - 1u;
    let abase = (p.a_off + e * p.a_bs) / 4u;
    let astep = p.a_si / 4u;
    let ar0 = abase + min(row0 + 0u, mlast) * astep;
    let ar1 = abase + min(row0 + 1u, mlast) * astep;
    let ar2 = abase + min(row0 + 2u, mlast) * astep;
    let ar3 = abase + min(row0 + 3u, mlast) * astep;
    let ar4 = abase + min(row0 + 4u, mlast) * astep;
    let ar5 = abase + min(row0 + 5u, mlast) * astep;
    let ar6 = abase + min(row0 + 6u, mlast) * astep;
    let ar7 = abase + min(row0 + 7u, mlast) * astep;
    var bidx = (p.b_off + e * p.b_bs + min(col, p.n - 4u)) / 4u;
    var bidx1 = (p.b_off + e * p.b_bs + min(col + 4u, p.n - 4u)) / 4u;
    let bstep = p.b_sp / 4u;
    var c00 = vec4<f32>(0.0);
    var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0);
    var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0);
    var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0);
    var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0);
    var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0);
    var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0);
    var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0);
    var c71 = vec4<f32>(0.0);
    var ap = 0u;
    for (var kk = 0u; kk < p.k; kk += 4u) {
        let b00 = vec4<f32>(b[bidx]);
        let b01 = vec4<f32>(b[bidx1]);
        let b10 = vec4<f32>(b[bidx + 1u * bstep]);
        let b11 = vec4<f32>(b[bidx1 + 1u * bstep]);
        let b20 = vec4<f32>(b[bidx + 2u * bstep]);
        let b21 = vec4<f32>(b[bidx1 + 2u * bstep]);
        let b30 = vec4<f32>(b[bidx + 3u * bstep]);
        let b31 = vec4<f32>(b[bidx1 + 3u * bstep]);
        let av0 = vec4<f32>(a4[ar0 + ap]);
        c00 = fma(vec4<f32>(av0.x), b00, c00);
        c01 = fma(vec4<f32>(av0.x), b01, c01);
        c00 = fma(vec4<f32>(av0.y), b10, c00);
        c01 = fma(vec4<f32>(av0.y), b11, c01);
        c00 = fma(vec4<f32>(av0.z), b20, c00);
        c01 = fma(vec4<f32>(av0.z), b21, c01);
        c00 = fma(vec4<f32>(av0.w), b30, c00);
        c01 = fma(vec4<f32>(av0.w), b31, c01);
        let av1 = vec4<f32>(a4[ar1 + ap]);
        c10 = fma(vec4<f32>(av1.x), b00, c10);
        c11 = fma(vec4<f32>(av1.x), b01, c11);
        c10 = fma(vec4<f32>(av1.y), b10, c10);
        c11 = fma(vec4<f32>(av1.y), b11, c11);
        c10 = fma(vec4<f32>(av1.z), b20, c10);
        c11 = fma(vec4<f32>(av1.z), b21, c11);
        c10 = fma(vec4<f32>(av1.w), b30, c10);
        c11 = fma(vec4<f32>(av1.w), b31, c11);
        let av2 = vec4<f32>(a4[ar2 + ap]);
        c20 = fma(vec4<f32>(av2.x), b00, c20);
        c21 = fma(vec4<f32>(av2.x), b01, c21);
        c20 = fma(vec4<f32>(av2.y), b10, c20);
        c21 = fma(vec4<f32>(av2.y), b11, c21);
        c20 = fma(vec4<f32>(av2.z), b20, c20);
        c21 = fma(vec4<f32>(av2.z), b21, c21);
        c20 = fma(vec4<f32>(av2.w), b30, c20);
        c21 = fma(vec4<f32>(av2.w), b31, c21);
        let av3 = vec4<f32>(a4[ar3 + ap]);
        c30 = fma(vec4<f32>(av3.x), b00, c30);
        c31 = fma(vec4<f32>(av3.x), b01, c31);
        c30 = fma(vec4<f32>(av3.y), b10, c30);
        c31 = fma(vec4<f32>(av3.y), b11, c31);
        c30 = fma(vec4<f32>(av3.z), b20, c30);
        c31 = fma(vec4<f32>(av3.z), b21, c31);
        c30 = fma(vec4<f32>(av3.w), b30, c30);
        c31 = fma(vec4<f32>(av3.w), b31, c31);
        let av4 = vec4<f32>(a4[ar4 + ap]);
        c40 = fma(vec4<f32>(av4.x), b00, c40);
        c41 = fma(vec4<f32>(av4.x), b01, c41);
        c40 = fma(vec4<f32>(av4.y), b10, c40);
        c41 = fma(vec4<f32>(av4.y), b11, c41);
        c40 = fma(vec4<f32>(av4.z), b20, c40);
        c41 = fma(vec4<f32>(av4.z), b21, c41);
        c40 = fma(vec4<f32>(av4.w), b30, c40);
        c41 = fma(vec4<f32>(av4.w), b31, c41);
        let av5 = vec4<f32>(a4[ar5 + ap]);
        c50 = fma(vec4<f32>(av5.x), b00, c50);
        c51 = fma(vec4<f32>(av5.x), b01, c51);
        c50 = fma(vec4<f32>(av5.y), b10, c50);
        c51 = fma(vec4<f32>(av5.y), b11, c51);
        c50 = fma(vec4<f32>(av5.z), b20, c50);
        c51 = fma(vec4<f32>(av5.z), b21, c51);
        c50 = fma(vec4<f32>(av5.w), b30, c50);
        c51 = fma(vec4<f32>(av5.w), b31, c51);
        let av6 = vec4<f32>(a4[ar6 + ap]);
        c60 = fma(vec4<f32>(av6.x), b00, c60);
        c61 = fma(vec4<f32>(av6.x), b01, c61);
        c60 = fma(vec4<f32>(av6.y), b10, c60);
        c61 = fma(vec4<f32>(av6.y), b11, c61);
        c60 = fma(vec4<f32>(av6.z), b20, c60);
        c61 = fma(vec4<f32>(av6.z), b21, c61);
        c60 = fma(vec4<f32>(av6.w), b30, c60);
        c61 = fma(vec4<f32>(av6.w), b31, c61);
        let av7 = vec4<f32>(a4[ar7 + ap]);
        c70 = fma(vec4<f32>(av7.x), b00, c70);
        c71 = fma(vec4<f32>(av7.x), b01, c71);
        c70 = fma(vec4<f32>(av7.y), b10, c70);
        c71 = fma(vec4<f32>(av7.y), b11, c71);
        c70 = fma(vec4<f32>(av7.z), b20, c70);
        c71 = fma(vec4<f32>(av7.z), b21, c71);
        c70 = fma(vec4<f32>(av7.w), b30, c70);
        c71 = fma(vec4<f32>(av7.w), b31, c71);
        ap += 1u;
        bidx += 4u * bstep;
        bidx1 += 4u * bstep;
    }
    if (col >= p.n) {
        return;
    }
    let cbase = p.c_off + e * p.c_bs + col;
    var bv0 = vec4<f32>(0.0);
    var bv1 = vec4<f32>(0.0);
    if (EPILOGUE) {
        let bb = p.bias_off + e * p.n + col;
        bv0 = p.mult_b * bias[bb / 4u];
        if (col + 4u < p.n) {
            bv1 = p.mult_b * bias[bb / 4u + 1u];
        }
    }
    store4(cbase, row0 + 0u, 0u, c00, bv0);
    if (col + 4u < p.n) {
        store4(cbase, row0 + 0u, 4u, c01, bv1);
    }
    store4(cbase, row0 + 1u, 0u, c10, bv0);
    if (col + 4u < p.n) {
        store4(cbase, row0 + 1u, 4u, c11, bv1);
    }
    store4(cbase, row0 + 2u, 0u, c20, bv0);
    if (col + 4u < p.n) {
        store4(cbase, row0 + 2u, 4u, c21, bv1);
    }
    store4(cbase, row0 + 3u, 0u, c30, bv0);
    if (col + 4u < p.n) {
        store4(cbase, row0 + 3u, 4u, c31, bv1);
    }
    store4(cbase, row0 + 4u, 0u, c40, bv0);
    if (col + 4u < p.n) {
        store4(cbase, row0 + 4u, 4u, c41, bv1);
    }
    store4(cbase, row0 + 5u, 0u, c50, bv0);
    if (col + 4u < p.n) {
        store4(cbase, row0 + 5u, 4u, c51, bv1);
    }
    store4(cbase, row0 + 6u, 0u, c60, bv0);
    if (col + 4u < p.n) {
        store4(cbase, row0 + 6u, 4u, c61, bv1);
    }
    store4(cbase, row0 + 7u, 0u, c70, bv0);
    if (col + 4u < p.n) {
        store4(cbase, row0 + 7u, 4u, c71, bv1);
    }
}

fn store4(cbase: u32, row: u32, dc: u32, v: vec4<f32>, bv: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    let idx = (cbase + row * p.n + dc) / 4u;
    var out = p.alpha * v;
    if (p.beta != 0.0) {
        out += p.beta * c[idx];
    }
    out += bv;
    c[idx] = out;
    if (EPILOGUE) {
        h[idx] = vec4<f32>(
            act_value(ACT_CODE, out.x, p.pa, p.pb, p.pc),
            act_value(ACT_CODE, out.y, p.pa, p.pb, p.pc),
            act_value(ACT_CODE, out.z, p.pa, p.pb, p.pc),
            act_value(ACT_CODE, out.w, p.pa, p.pb, p.pc),
        );
    }
}
