// Batched product on cooperative matrices (tensor cores, simdgroup matrices):
// wgpu's experimental `wgpu_cooperative_matrix` extension, on adapters with
// Features::EXPERIMENTAL_COOPERATIVE_MATRIX. The host prepends the `enable`
// lines and, for the tile size T (8 or 16) and operand type the adapter
// reports (f32, or f16 with f32 accumulation):
//   alias Operand = f32 | f16;
//   alias TileA = coop_matTxT<Operand, A>;
//   alias TileB = coop_matTxT<Operand, B>;
//   alias TileC = coop_matTxT<f32, C>;
//   const T: u32 = 8u | 16u;
// then activation.wgsl and matmul_params.wgsl.
//
// Bindings (group 0), row-major A and B (the NN form) with m, n and k
// multiples of T:
//   0: params  uniform (dynamic offset)  MatmulParams (matmul_params.wgsl)
//   1: a       storage, read             array<Operand>, A[i, p] = a[a_off + e*a_bs + i*a_si + p]
//   2: b       storage, read             array<Operand>, B[p, j] = b[b_off + e*b_bs + p*b_sp + j]
//   3: c       storage, read_write       array<f32>,     C[i, j] = c[c_off + e*c_bs + i*n + j]
//   4: bias, 5: h                        the fused dense-layer epilogue, as in matmul_vec4.wgsl
//
// A workgroup is one subgroup (WG lanes, the adapter's largest subgroup size;
// where a driver runs smaller subgroups, each of them computes the same tiles
// and stores the same values). It accumulates a 2T x 2T block of C as four
// T x T accumulators over steps of T in k: two tiles of A and two of B feed
// four multiply-adds. Cooperative operations need control flow uniform across
// the subgroup, so nothing before the last loop depends on the lane: where m
// or n is not a multiple of 2T, the second row (column) of tiles of the last
// block is recomputed from the rows (columns) before it and not written.
// The accumulators go through workgroup memory, where each lane applies
// alpha, beta and the epilogue to its entries.

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<Operand>;
@group(0) @binding(2) var<storage, read> b: array<Operand>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> h: array<f32>;
override EPILOGUE: bool = false;

override WG: u32 = 32u;
override WALK_M: bool = true;

var<workgroup> stage: array<f32, 4u * T * T>;

@compute @workgroup_size(WG, 1, 1)
fn matmul_coop(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let e = wg.z;
    let tm = select(wg.y, wg.x, WALK_M);
    let tn = select(wg.x, wg.y, WALK_M);
    let row0 = tm * 2u * T;
    let col0 = tn * 2u * T;
    // The second tile row and column, kept inside C (m and n are multiples of T).
    let row1 = min(row0 + T, p.m - T);
    let col1 = min(col0 + T, p.n - T);
    let sa = p.a_si;
    let sb = p.b_sp;
    let abase = p.a_off + e * p.a_bs;
    let bbase = p.b_off + e * p.b_bs;
    let ia0 = abase + row0 * sa;
    let ia1 = abase + row1 * sa;
    var acc00 = TileC();
    var acc01 = TileC();
    var acc10 = TileC();
    var acc11 = TileC();
    for (var kk = 0u; kk < p.k; kk += T) {
        let pa0 = ia0 + kk;
        let pa1 = ia1 + kk;
        let pb = bbase + kk * sb;
        let pb0 = pb + col0;
        let pb1 = pb + col1;
        let a0 = coopLoadT<TileA>(&a[pa0], sa);
        let a1 = coopLoadT<TileA>(&a[pa1], sa);
        let b0 = coopLoadT<TileB>(&b[pb0], sb);
        let b1 = coopLoadT<TileB>(&b[pb1], sb);
        acc00 = coopMultiplyAdd(a0, b0, acc00);
        acc01 = coopMultiplyAdd(a0, b1, acc01);
        acc10 = coopMultiplyAdd(a1, b0, acc10);
        acc11 = coopMultiplyAdd(a1, b1, acc11);
    }
    let tt = T * T;
    let s1 = tt;
    let s2 = 2u * tt;
    let s3 = 3u * tt;
    let st = T;
    coopStoreT(acc00, &stage[0], st);
    coopStoreT(acc01, &stage[s1], st);
    coopStoreT(acc10, &stage[s2], st);
    coopStoreT(acc11, &stage[s3], st);
    workgroupBarrier();
    let cbase = p.c_off + e * p.c_bs;
    let second_row = row0 + T < p.m;
    let second_col = col0 + T < p.n;
    for (var s = lane; s < 4u * tt; s += WG) {
        let q = s / tt;
        let r = (s % tt) / T;
        let j = s % T;
        if ((q >= 2u && !second_row) || (q % 2u == 1u && !second_col)) {
            continue;
        }
        let row = select(row0, row1, q >= 2u) + r;
        let col = select(col0, col1, q % 2u == 1u) + j;
        let idx = cbase + row * p.n + col;
        var out = p.alpha * stage[s];
        if (p.beta != 0.0) {
            out += p.beta * c[idx];
        }
        if (EPILOGUE) {
            out += p.mult_b * bias[p.bias_off + e * p.n + col];
        }
        c[idx] = out;
        if (EPILOGUE) {
            h[idx] = act_value(ACT_CODE, out, p.pa, p.pb, p.pc);
        }
    }
}
