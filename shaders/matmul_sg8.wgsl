// Subgroup variant of the batched product for adapters that run 8-lane subgroups
// (lavapipe on 256-bit SIMD). Same params as matmul.wgsl.
//
// Bindings (group 0):
//   0: params  uniform (dynamic offset)  MatmulParams
//   1: a       storage, read             array<Operand4>, row-major A, k a multiple of 4
//   2: b       storage, read             array<Operand4>, row-major B, n a multiple of 4
//                                        (Operand4: vec4<f32>, or vec4<f16> for f16 storage with
//                                        f32 accumulation; the host prepends its alias)
//   3: c       storage, read_write       array<vec4<f32>>, C
//   4: bias    storage, read             array<vec4<f32>>, bias[e, j] (EPILOGUE only; a dummy otherwise)
//   5: h       storage, read_write       array<vec4<f32>>, act(C)     (EPILOGUE only; a dummy otherwise)
//
// On lavapipe a load whose address differs between lanes costs one scalar load
// per lane and component, while values moved between lanes with
// subgroupBroadcast cost a register shuffle. So the 8 lanes of a subgroup load 8
// rows of A at once (one vec4 each: 4 steps of k) and pass them around; each lane
// then owns 4 columns of C (one vec4 of B per step of k) for all 8 rows:
// 128 multiply-adds per lane for 5 vector loads.
//
// The body is unrolled by scripts/gen_matmul_sg8.py; edit that and regenerate.

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<Operand4>;
@group(0) @binding(2) var<storage, read> b: array<Operand4>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
// Fused epilogue of a dense layer (EPILOGUE): C += mult_b * bias[e] (row
// broadcast), then h = act(C). The host prepends activation.wgsl.
@group(0) @binding(4) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> h: array<vec4<f32>>;
override EPILOGUE: bool = false;

// Tuned per adapter (src/gpu/tune.rs): subgroups per workgroup, and whether
// consecutive workgroups walk down the rows (a strip of B stays in cache) or
// along the columns.
override WG_Y: u32 = 8u;
override WALK_M: bool = true;
// B given transposed (op(B)[p, j] = B[j, p], rows of B contiguous, k a multiple
// of 4): the product of a layer's inputs with its weights needs no transposing copy.
override TRANS_B: bool = false;
// A given transposed (op(A)[i, p] = A[p, i], m a multiple of 4): the weight
// gradients (inputs^T times output gradients) need no transposing copy.
override TRANS_A: bool = false;

// Workgroup: WG_Y subgroups of 8 lanes; subgroup y of row tile tm covers rows
// (tm * WG_Y + y) * 32 .. +32 and the 32 columns tn * 32 .. +32.
@compute @workgroup_size(8, WG_Y, 1)
fn matmul_sg8(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let e = wg.z;
    let tm = select(wg.y, wg.x, WALK_M);
    let tn = select(wg.x, wg.y, WALK_M);
    let row0 = (tm * WG_Y + lid.y) * 32u;
    let col = tn * 32u + lid.x * 4u;
    let abase = p.a_off + e * p.a_bs;
    let mlast = p.m - 1u;
    // A row-major: lane x loads row r0 + x of each group of 8 rows, 4 steps of k.
    // TRANS_A (A stored k-major, m a multiple of 4): lane x loads rows
    // r0 + 4 (x / 4) .. +4 at step x % 4 of k. anext: vec4s to the next 4 steps.
    let ak = lid.x & 3u;
    let ar = (lid.x >> 2u) * 4u;
    var aidx0 = select((abase + min(row0 + 0u + lid.x, mlast) * p.a_si) / 4u, (abase + ak * p.a_sp + min(row0 + 0u + ar, p.m - 4u)) / 4u, TRANS_A);
    var aidx1 = select((abase + min(row0 + 8u + lid.x, mlast) * p.a_si) / 4u, (abase + ak * p.a_sp + min(row0 + 8u + ar, p.m - 4u)) / 4u, TRANS_A);
    var aidx2 = select((abase + min(row0 + 16u + lid.x, mlast) * p.a_si) / 4u, (abase + ak * p.a_sp + min(row0 + 16u + ar, p.m - 4u)) / 4u, TRANS_A);
    var aidx3 = select((abase + min(row0 + 24u + lid.x, mlast) * p.a_si) / 4u, (abase + ak * p.a_sp + min(row0 + 24u + ar, p.m - 4u)) / 4u, TRANS_A);
    let anext = select(1u, p.a_sp, TRANS_A);
    let colc = min(col, p.n - 4u);
    // bstep: vec4s between the four rows loaded per step (of op(B), or of B
    // itself with TRANS_B); bnext: vec4s to the next step.
    var bidx = (p.b_off + e * p.b_bs + select(colc, colc * p.b_sj, TRANS_B)) / 4u;
    let bstep = select(p.b_sp, p.b_sj, TRANS_B) / 4u;
    let bnext = select(4u * bstep, 1u, TRANS_B);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    var acc8 = vec4<f32>(0.0);
    var acc9 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc12 = vec4<f32>(0.0);
    var acc13 = vec4<f32>(0.0);
    var acc14 = vec4<f32>(0.0);
    var acc15 = vec4<f32>(0.0);
    var acc16 = vec4<f32>(0.0);
    var acc17 = vec4<f32>(0.0);
    var acc18 = vec4<f32>(0.0);
    var acc19 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0);
    var acc21 = vec4<f32>(0.0);
    var acc22 = vec4<f32>(0.0);
    var acc23 = vec4<f32>(0.0);
    var acc24 = vec4<f32>(0.0);
    var acc25 = vec4<f32>(0.0);
    var acc26 = vec4<f32>(0.0);
    var acc27 = vec4<f32>(0.0);
    var acc28 = vec4<f32>(0.0);
    var acc29 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0);
    var acc31 = vec4<f32>(0.0);
    for (var kk = 0u; kk < p.k; kk += 4u) {
        let mine0 = vec4<f32>(a[aidx0]);
        let mine1 = vec4<f32>(a[aidx1]);
        let mine2 = vec4<f32>(a[aidx2]);
        let mine3 = vec4<f32>(a[aidx3]);
        // Rows kk..kk+3 of op(B) at columns col..col+3: four vec4 loads either
        // way; with TRANS_B they are columns of the loaded rows of B.
        var b0 = vec4<f32>(b[bidx]);
        var b1 = vec4<f32>(b[bidx + 1u * bstep]);
        var b2 = vec4<f32>(b[bidx + 2u * bstep]);
        var b3 = vec4<f32>(b[bidx + 3u * bstep]);
        if (TRANS_B) {
            let w0 = b0;
            let w1 = b1;
            let w2 = b2;
            let w3 = b3;
            b0 = vec4<f32>(w0.x, w1.x, w2.x, w3.x);
            b1 = vec4<f32>(w0.y, w1.y, w2.y, w3.y);
            b2 = vec4<f32>(w0.z, w1.z, w2.z, w3.z);
            b3 = vec4<f32>(w0.w, w1.w, w2.w, w3.w);
        }
        if (TRANS_A) {
            // Lane 4 h + j holds rows 4 h .. 4 h + 3 (of each group of 8) at step j.
            let t0_0_0 = subgroupBroadcast(mine0, 0u);
            acc0 = fma(vec4<f32>(t0_0_0.x), b0, acc0);
            acc1 = fma(vec4<f32>(t0_0_0.y), b0, acc1);
            acc2 = fma(vec4<f32>(t0_0_0.z), b0, acc2);
            acc3 = fma(vec4<f32>(t0_0_0.w), b0, acc3);
            let t0_0_1 = subgroupBroadcast(mine0, 1u);
            acc0 = fma(vec4<f32>(t0_0_1.x), b1, acc0);
            acc1 = fma(vec4<f32>(t0_0_1.y), b1, acc1);
            acc2 = fma(vec4<f32>(t0_0_1.z), b1, acc2);
            acc3 = fma(vec4<f32>(t0_0_1.w), b1, acc3);
            let t0_0_2 = subgroupBroadcast(mine0, 2u);
            acc0 = fma(vec4<f32>(t0_0_2.x), b2, acc0);
            acc1 = fma(vec4<f32>(t0_0_2.y), b2, acc1);
            acc2 = fma(vec4<f32>(t0_0_2.z), b2, acc2);
            acc3 = fma(vec4<f32>(t0_0_2.w), b2, acc3);
            let t0_0_3 = subgroupBroadcast(mine0, 3u);
            acc0 = fma(vec4<f32>(t0_0_3.x), b3, acc0);
            acc1 = fma(vec4<f32>(t0_0_3.y), b3, acc1);
            acc2 = fma(vec4<f32>(t0_0_3.z), b3, acc2);
            acc3 = fma(vec4<f32>(t0_0_3.w), b3, acc3);
            let t0_1_0 = subgroupBroadcast(mine0, 4u);
            acc4 = fma(vec4<f32>(t0_1_0.x), b0, acc4);
            acc5 = fma(vec4<f32>(t0_1_0.y), b0, acc5);
            acc6 = fma(vec4<f32>(t0_1_0.z), b0, acc6);
            acc7 = fma(vec4<f32>(t0_1_0.w), b0, acc7);
            let t0_1_1 = subgroupBroadcast(mine0, 5u);
            acc4 = fma(vec4<f32>(t0_1_1.x), b1, acc4);
            acc5 = fma(vec4<f32>(t0_1_1.y), b1, acc5);
            acc6 = fma(vec4<f32>(t0_1_1.z), b1, acc6);
            acc7 = fma(vec4<f32>(t0_1_1.w), b1, acc7);
            let t0_1_2 = subgroupBroadcast(mine0, 6u);
            acc4 = fma(vec4<f32>(t0_1_2.x), b2, acc4);
            acc5 = fma(vec4<f32>(t0_1_2.y), b2, acc5);
            acc6 = fma(vec4<f32>(t0_1_2.z), b2, acc6);
            acc7 = fma(vec4<f32>(t0_1_2.w), b2, acc7);
            let t0_1_3 = subgroupBroadcast(mine0, 7u);
            acc4 = fma(vec4<f32>(t0_1_3.x), b3, acc4);
            acc5 = fma(vec4<f32>(t0_1_3.y), b3, acc5);
            acc6 = fma(vec4<f32>(t0_1_3.z), b3, acc6);
            acc7 = fma(vec4<f32>(t0_1_3.w), b3, acc7);
            let t1_0_0 = subgroupBroadcast(mine1, 0u);
            acc8 = fma(vec4<f32>(t1_0_0.x), b0, acc8);
            acc9 = fma(vec4<f32>(t1_0_0.y), b0, acc9);
            acc10 = fma(vec4<f32>(t1_0_0.z), b0, acc10);
            acc11 = fma(vec4<f32>(t1_0_0.w), b0, acc11);
            let t1_0_1 = subgroupBroadcast(mine1, 1u);
            acc8 = fma(vec4<f32>(t1_0_1.x), b1, acc8);
            acc9 = fma(vec4<f32>(t1_0_1.y), b1, acc9);
            acc10 = fma(vec4<f32>(t1_0_1.z), b1, acc10);
            acc11 = fma(vec4<f32>(t1_0_1.w), b1, acc11);
            let t1_0_2 = subgroupBroadcast(mine1, 2u);
            acc8 = fma(vec4<f32>(t1_0_2.x), b2, acc8);
            acc9 = fma(vec4<f32>(t1_0_2.y), b2, acc9);
            acc10 = fma(vec4<f32>(t1_0_2.z), b2, acc10);
            acc11 = fma(vec4<f32>(t1_0_2.w), b2, acc11);
            let t1_0_3 = subgroupBroadcast(mine1, 3u);
            acc8 = fma(vec4<f32>(t1_0_3.x), b3, acc8);
            acc9 = fma(vec4<f32>(t1_0_3.y), b3, acc9);
            acc10 = fma(vec4<f32>(t1_0_3.z), b3, acc10);
            acc11 = fma(vec4<f32>(t1_0_3.w), b3, acc11);
            let t1_1_0 = subgroupBroadcast(mine1, 4u);
            acc12 = fma(vec4<f32>(t1_1_0.x), b0, acc12);
            acc13 = fma(vec4<f32>(t1_1_0.y), b0, acc13);
            acc14 = fma(vec4<f32>(t1_1_0.z), b0, acc14);
            acc15 = fma(vec4<f32>(t1_1_0.w), b0, acc15);
            let t1_1_1 = subgroupBroadcast(mine1, 5u);
            acc12 = fma(vec4<f32>(t1_1_1.x), b1, acc12);
            acc13 = fma(vec4<f32>(t1_1_1.y), b1, acc13);
            acc14 = fma(vec4<f32>(t1_1_1.z), b1, acc14);
            acc15 = fma(vec4<f32>(t1_1_1.w), b1, acc15);
            let t1_1_2 = subgroupBroadcast(mine1, 6u);
            acc12 = fma(vec4<f32>(t1_1_2.x), b2, acc12);
            acc13 = fma(vec4<f32>(t1_1_2.y), b2, acc13);
            acc14 = fma(vec4<f32>(t1_1_2.z), b2, acc14);
            acc15 = fma(vec4<f32>(t1_1_2.w), b2, acc15);
            let t1_1_3 = subgroupBroadcast(mine1, 7u);
            acc12 = fma(vec4<f32>(t1_1_3.x), b3, acc12);
            acc13 = fma(vec4<f32>(t1_1_3.y), b3, acc13);
            acc14 = fma(vec4<f32>(t1_1_3.z), b3, acc14);
            acc15 = fma(vec4<f32>(t1_1_3.w), b3, acc15);
            let t2_0_0 = subgroupBroadcast(mine2, 0u);
            acc16 = fma(vec4<f32>(t2_0_0.x), b0, acc16);
            acc17 = fma(vec4<f32>(t2_0_0.y), b0, acc17);
            acc18 = fma(vec4<f32>(t2_0_0.z), b0, acc18);
            acc19 = fma(vec4<f32>(t2_0_0.w), b0, acc19);
            let t2_0_1 = subgroupBroadcast(mine2, 1u);
            acc16 = fma(vec4<f32>(t2_0_1.x), b1, acc16);
            acc17 = fma(vec4<f32>(t2_0_1.y), b1, acc17);
            acc18 = fma(vec4<f32>(t2_0_1.z), b1, acc18);
            acc19 = fma(vec4<f32>(t2_0_1.w), b1, acc19);
            let t2_0_2 = subgroupBroadcast(mine2, 2u);
            acc16 = fma(vec4<f32>(t2_0_2.x), b2, acc16);
            acc17 = fma(vec4<f32>(t2_0_2.y), b2, acc17);
            acc18 = fma(vec4<f32>(t2_0_2.z), b2, acc18);
            acc19 = fma(vec4<f32>(t2_0_2.w), b2, acc19);
            let t2_0_3 = subgroupBroadcast(mine2, 3u);
            acc16 = fma(vec4<f32>(t2_0_3.x), b3, acc16);
            acc17 = fma(vec4<f32>(t2_0_3.y), b3, acc17);
            acc18 = fma(vec4<f32>(t2_0_3.z), b3, acc18);
            acc19 = fma(vec4<f32>(t2_0_3.w), b3, acc19);
            let t2_1_0 = subgroupBroadcast(mine2, 4u);
            acc20 = fma(vec4<f32>(t2_1_0.x), b0, acc20);
            acc21 = fma(vec4<f32>(t2_1_0.y), b0, acc21);
            acc22 = fma(vec4<f32>(t2_1_0.z), b0, acc22);
            acc23 = fma(vec4<f32>(t2_1_0.w), b0, acc23);
            let t2_1_1 = subgroupBroadcast(mine2, 5u);
            acc20 = fma(vec4<f32>(t2_1_1.x), b1, acc20);
            acc21 = fma(vec4<f32>(t2_1_1.y), b1, acc21);
            acc22 = fma(vec4<f32>(t2_1_1.z), b1, acc22);
            acc23 = fma(vec4<f32>(t2_1_1.w), b1, acc23);
            let t2_1_2 = subgroupBroadcast(mine2, 6u);
            acc20 = fma(vec4<f32>(t2_1_2.x), b2, acc20);
            acc21 = fma(vec4<f32>(t2_1_2.y), b2, acc21);
            acc22 = fma(vec4<f32>(t2_1_2.z), b2, acc22);
            acc23 = fma(vec4<f32>(t2_1_2.w), b2, acc23);
            let t2_1_3 = subgroupBroadcast(mine2, 7u);
            acc20 = fma(vec4<f32>(t2_1_3.x), b3, acc20);
            acc21 = fma(vec4<f32>(t2_1_3.y), b3, acc21);
            acc22 = fma(vec4<f32>(t2_1_3.z), b3, acc22);
            acc23 = fma(vec4<f32>(t2_1_3.w), b3, acc23);
            let t3_0_0 = subgroupBroadcast(mine3, 0u);
            acc24 = fma(vec4<f32>(t3_0_0.x), b0, acc24);
            acc25 = fma(vec4<f32>(t3_0_0.y), b0, acc25);
            acc26 = fma(vec4<f32>(t3_0_0.z), b0, acc26);
            acc27 = fma(vec4<f32>(t3_0_0.w), b0, acc27);
            let t3_0_1 = subgroupBroadcast(mine3, 1u);
            acc24 = fma(vec4<f32>(t3_0_1.x), b1, acc24);
            acc25 = fma(vec4<f32>(t3_0_1.y), b1, acc25);
            acc26 = fma(vec4<f32>(t3_0_1.z), b1, acc26);
            acc27 = fma(vec4<f32>(t3_0_1.w), b1, acc27);
            let t3_0_2 = subgroupBroadcast(mine3, 2u);
            acc24 = fma(vec4<f32>(t3_0_2.x), b2, acc24);
            acc25 = fma(vec4<f32>(t3_0_2.y), b2, acc25);
            acc26 = fma(vec4<f32>(t3_0_2.z), b2, acc26);
            acc27 = fma(vec4<f32>(t3_0_2.w), b2, acc27);
            let t3_0_3 = subgroupBroadcast(mine3, 3u);
            acc24 = fma(vec4<f32>(t3_0_3.x), b3, acc24);
            acc25 = fma(vec4<f32>(t3_0_3.y), b3, acc25);
            acc26 = fma(vec4<f32>(t3_0_3.z), b3, acc26);
            acc27 = fma(vec4<f32>(t3_0_3.w), b3, acc27);
            let t3_1_0 = subgroupBroadcast(mine3, 4u);
            acc28 = fma(vec4<f32>(t3_1_0.x), b0, acc28);
            acc29 = fma(vec4<f32>(t3_1_0.y), b0, acc29);
            acc30 = fma(vec4<f32>(t3_1_0.z), b0, acc30);
            acc31 = fma(vec4<f32>(t3_1_0.w), b0, acc31);
            let t3_1_1 = subgroupBroadcast(mine3, 5u);
            acc28 = fma(vec4<f32>(t3_1_1.x), b1, acc28);
            acc29 = fma(vec4<f32>(t3_1_1.y), b1, acc29);
            acc30 = fma(vec4<f32>(t3_1_1.z), b1, acc30);
            acc31 = fma(vec4<f32>(t3_1_1.w), b1, acc31);
            let t3_1_2 = subgroupBroadcast(mine3, 6u);
            acc28 = fma(vec4<f32>(t3_1_2.x), b2, acc28);
            acc29 = fma(vec4<f32>(t3_1_2.y), b2, acc29);
            acc30 = fma(vec4<f32>(t3_1_2.z), b2, acc30);
            acc31 = fma(vec4<f32>(t3_1_2.w), b2, acc31);
            let t3_1_3 = subgroupBroadcast(mine3, 7u);
            acc28 = fma(vec4<f32>(t3_1_3.x), b3, acc28);
            acc29 = fma(vec4<f32>(t3_1_3.y), b3, acc29);
            acc30 = fma(vec4<f32>(t3_1_3.z), b3, acc30);
            acc31 = fma(vec4<f32>(t3_1_3.w), b3, acc31);
        } else {
            let a0 = subgroupBroadcast(mine0, 0u);
            acc0 = fma(vec4<f32>(a0.x), b0, acc0);
            acc0 = fma(vec4<f32>(a0.y), b1, acc0);
            acc0 = fma(vec4<f32>(a0.z), b2, acc0);
            acc0 = fma(vec4<f32>(a0.w), b3, acc0);
            let a1 = subgroupBroadcast(mine0, 1u);
            acc1 = fma(vec4<f32>(a1.x), b0, acc1);
            acc1 = fma(vec4<f32>(a1.y), b1, acc1);
            acc1 = fma(vec4<f32>(a1.z), b2, acc1);
            acc1 = fma(vec4<f32>(a1.w), b3, acc1);
            let a2 = subgroupBroadcast(mine0, 2u);
            acc2 = fma(vec4<f32>(a2.x), b0, acc2);
            acc2 = fma(vec4<f32>(a2.y), b1, acc2);
            acc2 = fma(vec4<f32>(a2.z), b2, acc2);
            acc2 = fma(vec4<f32>(a2.w), b3, acc2);
            let a3 = subgroupBroadcast(mine0, 3u);
            acc3 = fma(vec4<f32>(a3.x), b0, acc3);
            acc3 = fma(vec4<f32>(a3.y), b1, acc3);
            acc3 = fma(vec4<f32>(a3.z), b2, acc3);
            acc3 = fma(vec4<f32>(a3.w), b3, acc3);
            let a4 = subgroupBroadcast(mine0, 4u);
            acc4 = fma(vec4<f32>(a4.x), b0, acc4);
            acc4 = fma(vec4<f32>(a4.y), b1, acc4);
            acc4 = fma(vec4<f32>(a4.z), b2, acc4);
            acc4 = fma(vec4<f32>(a4.w), b3, acc4);
            let a5 = subgroupBroadcast(mine0, 5u);
            acc5 = fma(vec4<f32>(a5.x), b0, acc5);
            acc5 = fma(vec4<f32>(a5.y), b1, acc5);
            acc5 = fma(vec4<f32>(a5.z), b2, acc5);
            acc5 = fma(vec4<f32>(a5.w), b3, acc5);
            let a6 = subgroupBroadcast(mine0, 6u);
            acc6 = fma(vec4<f32>(a6.x), b0, acc6);
            acc6 = fma(vec4<f32>(a6.y), b1, acc6);
            acc6 = fma(vec4<f32>(a6.z), b2, acc6);
            acc6 = fma(vec4<f32>(a6.w), b3, acc6);
            let a7 = subgroupBroadcast(mine0, 7u);
            acc7 = fma(vec4<f32>(a7.x), b0, acc7);
            acc7 = fma(vec4<f32>(a7.y), b1, acc7);
            acc7 = fma(vec4<f32>(a7.z), b2, acc7);
            acc7 = fma(vec4<f32>(a7.w), b3, acc7);
            let a8 = subgroupBroadcast(mine1, 0u);
            acc8 = fma(vec4<f32>(a8.x), b0, acc8);
            acc8 = fma(vec4<f32>(a8.y), b1, acc8);
            acc8 = fma(vec4<f32>(a8.z), b2, acc8);
            acc8 = fma(vec4<f32>(a8.w), b3, acc8);
            let a9 = subgroupBroadcast(mine1, 1u);
            acc9 = fma(vec4<f32>(a9.x), b0, acc9);
            acc9 = fma(vec4<f32>(a9.y), b1, acc9);
            acc9 = fma(vec4<f32>(a9.z), b2, acc9);
            acc9 = fma(vec4<f32>(a9.w), b3, acc9);
            let a10 = subgroupBroadcast(mine1, 2u);
            acc10 = fma(vec4<f32>(a10.x), b0, acc10);
            acc10 = fma(vec4<f32>(a10.y), b1, acc10);
            acc10 = fma(vec4<f32>(a10.z), b2, acc10);
            acc10 = fma(vec4<f32>(a10.w), b3, acc10);
            let a11 = subgroupBroadcast(mine1, 3u);
            acc11 = fma(vec4<f32>(a11.x), b0, acc11);
            acc11 = fma(vec4<f32>(a11.y), b1, acc11);
            acc11 = fma(vec4<f32>(a11.z), b2, acc11);
            acc11 = fma(vec4<f32>(a11.w), b3, acc11);
            let a12 = subgroupBroadcast(mine1, 4u);
            acc12 = fma(vec4<f32>(a12.x), b0, acc12);
            acc12 = fma(vec4<f32>(a12.y), b1, acc12);
            acc12 = fma(vec4<f32>(a12.z), b2, acc12);
            acc12 = fma(vec4<f32>(a12.w), b3, acc12);
            let a13 = subgroupBroadcast(mine1, 5u);
            acc13 = fma(vec4<f32>(a13.x), b0, acc13);
            acc13 = fma(vec4<f32>(a13.y), b1, acc13);
            acc13 = fma(vec4<f32>(a13.z), b2, acc13);
            acc13 = fma(vec4<f32>(a13.w), b3, acc13);
            let a14 = subgroupBroadcast(mine1, 6u);
            acc14 = fma(vec4<f32>(a14.x), b0, acc14);
            acc14 = fma(vec4<f32>(a14.y), b1, acc14);
            acc14 = fma(vec4<f32>(a14.z), b2, acc14);
            acc14 = fma(vec4<f32>(a14.w), b3, acc14);
            let a15 = subgroupBroadcast(mine1, 7u);
            acc15 = fma(vec4<f32>(a15.x), b0, acc15);
            acc15 = fma(vec4<f32>(a15.y), b1, acc15);
            acc15 = fma(vec4<f32>(a15.z), b2, acc15);
            acc15 = fma(vec4<f32>(a15.w), b3, acc15);
            let a16 = subgroupBroadcast(mine2, 0u);
            acc16 = fma(vec4<f32>(a16.x), b0, acc16);
            acc16 = fma(vec4<f32>(a16.y), b1, acc16);
            acc16 = fma(vec4<f32>(a16.z), b2, acc16);
            acc16 = fma(vec4<f32>(a16.w), b3, acc16);
            let a17 = subgroupBroadcast(mine2, 1u);
            acc17 = fma(vec4<f32>(a17.x), b0, acc17);
            acc17 = fma(vec4<f32>(a17.y), b1, acc17);
            acc17 = fma(vec4<f32>(a17.z), b2, acc17);
            acc17 = fma(vec4<f32>(a17.w), b3, acc17);
            let a18 = subgroupBroadcast(mine2, 2u);
            acc18 = fma(vec4<f32>(a18.x), b0, acc18);
            acc18 = fma(vec4<f32>(a18.y), b1, acc18);
            acc18 = fma(vec4<f32>(a18.z), b2, acc18);
            acc18 = fma(vec4<f32>(a18.w), b3, acc18);
            let a19 = subgroupBroadcast(mine2, 3u);
            acc19 = fma(vec4<f32>(a19.x), b0, acc19);
            acc19 = fma(vec4<f32>(a19.y), b1, acc19);
            acc19 = fma(vec4<f32>(a19.z), b2, acc19);
            acc19 = fma(vec4<f32>(a19.w), b3, acc19);
            let a20 = subgroupBroadcast(mine2, 4u);
            acc20 = fma(vec4<f32>(a20.x), b0, acc20);
            acc20 = fma(vec4<f32>(a20.y), b1, acc20);
            acc20 = fma(vec4<f32>(a20.z), b2, acc20);
            acc20 = fma(vec4<f32>(a20.w), b3, acc20);
            let a21 = subgroupBroadcast(mine2, 5u);
            acc21 = fma(vec4<f32>(a21.x), b0, acc21);
            acc21 = fma(vec4<f32>(a21.y), b1, acc21);
            acc21 = fma(vec4<f32>(a21.z), b2, acc21);
            acc21 = fma(vec4<f32>(a21.w), b3, acc21);
            let a22 = subgroupBroadcast(mine2, 6u);
            acc22 = fma(vec4<f32>(a22.x), b0, acc22);
            acc22 = fma(vec4<f32>(a22.y), b1, acc22);
            acc22 = fma(vec4<f32>(a22.z), b2, acc22);
            acc22 = fma(vec4<f32>(a22.w), b3, acc22);
            let a23 = subgroupBroadcast(mine2, 7u);
            acc23 = fma(vec4<f32>(a23.x), b0, acc23);
            acc23 = fma(vec4<f32>(a23.y), b1, acc23);
            acc23 = fma(vec4<f32>(a23.z), b2, acc23);
            acc23 = fma(vec4<f32>(a23.w), b3, acc23);
            let a24 = subgroupBroadcast(mine3, 0u);
            acc24 = fma(vec4<f32>(a24.x), b0, acc24);
            acc24 = fma(vec4<f32>(a24.y), b1, acc24);
            acc24 = fma(vec4<f32>(a24.z), b2, acc24);
            acc24 = fma(vec4<f32>(a24.w), b3, acc24);
            let a25 = subgroupBroadcast(mine3, 1u);
            acc25 = fma(vec4<f32>(a25.x), b0, acc25);
            acc25 = fma(vec4<f32>(a25.y), b1, acc25);
            acc25 = fma(vec4<f32>(a25.z), b2, acc25);
            acc25 = fma(vec4<f32>(a25.w), b3, acc25);
            let a26 = subgroupBroadcast(mine3, 2u);
            acc26 = fma(vec4<f32>(a26.x), b0, acc26);
            acc26 = fma(vec4<f32>(a26.y), b1, acc26);
            acc26 = fma(vec4<f32>(a26.z), b2, acc26);
            acc26 = fma(vec4<f32>(a26.w), b3, acc26);
            let a27 = subgroupBroadcast(mine3, 3u);
            acc27 = fma(vec4<f32>(a27.x), b0, acc27);
            acc27 = fma(vec4<f32>(a27.y), b1, acc27);
            acc27 = fma(vec4<f32>(a27.z), b2, acc27);
            acc27 = fma(vec4<f32>(a27.w), b3, acc27);
            let a28 = subgroupBroadcast(mine3, 4u);
            acc28 = fma(vec4<f32>(a28.x), b0, acc28);
            acc28 = fma(vec4<f32>(a28.y), b1, acc28);
            acc28 = fma(vec4<f32>(a28.z), b2, acc28);
            acc28 = fma(vec4<f32>(a28.w), b3, acc28);
            let a29 = subgroupBroadcast(mine3, 5u);
            acc29 = fma(vec4<f32>(a29.x), b0, acc29);
            acc29 = fma(vec4<f32>(a29.y), b1, acc29);
            acc29 = fma(vec4<f32>(a29.z), b2, acc29);
            acc29 = fma(vec4<f32>(a29.w), b3, acc29);
            let a30 = subgroupBroadcast(mine3, 6u);
            acc30 = fma(vec4<f32>(a30.x), b0, acc30);
            acc30 = fma(vec4<f32>(a30.y), b1, acc30);
            acc30 = fma(vec4<f32>(a30.z), b2, acc30);
            acc30 = fma(vec4<f32>(a30.w), b3, acc30);
            let a31 = subgroupBroadcast(mine3, 7u);
            acc31 = fma(vec4<f32>(a31.x), b0, acc31);
            acc31 = fma(vec4<f32>(a31.y), b1, acc31);
            acc31 = fma(vec4<f32>(a31.z), b2, acc31);
            acc31 = fma(vec4<f32>(a31.w), b3, acc31);
        }
        aidx0 += anext;
        aidx1 += anext;
        aidx2 += anext;
        aidx3 += anext;
        bidx += bnext;
    }
    if (col >= p.n) {
        return;
    }
    let cbase = p.c_off + e * p.c_bs + col;
    var bv = vec4<f32>(0.0);
    if (EPILOGUE) {
        bv = p.mult_b * bias[(p.bias_off + e * p.n + col) / 4u];
    }
    store4(cbase, row0 + 0u, acc0, bv);
    store4(cbase, row0 + 1u, acc1, bv);
    store4(cbase, row0 + 2u, acc2, bv);
    store4(cbase, row0 + 3u, acc3, bv);
    store4(cbase, row0 + 4u, acc4, bv);
    store4(cbase, row0 + 5u, acc5, bv);
    store4(cbase, row0 + 6u, acc6, bv);
    store4(cbase, row0 + 7u, acc7, bv);
    store4(cbase, row0 + 8u, acc8, bv);
    store4(cbase, row0 + 9u, acc9, bv);
    store4(cbase, row0 + 10u, acc10, bv);
    store4(cbase, row0 + 11u, acc11, bv);
    store4(cbase, row0 + 12u, acc12, bv);
    store4(cbase, row0 + 13u, acc13, bv);
    store4(cbase, row0 + 14u, acc14, bv);
    store4(cbase, row0 + 15u, acc15, bv);
    store4(cbase, row0 + 16u, acc16, bv);
    store4(cbase, row0 + 17u, acc17, bv);
    store4(cbase, row0 + 18u, acc18, bv);
    store4(cbase, row0 + 19u, acc19, bv);
    store4(cbase, row0 + 20u, acc20, bv);
    store4(cbase, row0 + 21u, acc21, bv);
    store4(cbase, row0 + 22u, acc22, bv);
    store4(cbase, row0 + 23u, acc23, bv);
    store4(cbase, row0 + 24u, acc24, bv);
    store4(cbase, row0 + 25u, acc25, bv);
    store4(cbase, row0 + 26u, acc26, bv);
    store4(cbase, row0 + 27u, acc27, bv);
    store4(cbase, row0 + 28u, acc28, bv);
    store4(cbase, row0 + 29u, acc29, bv);
    store4(cbase, row0 + 30u, acc30, bv);
    store4(cbase, row0 + 31u, acc31, bv);
}

fn store4(cbase: u32, row: u32, v: vec4<f32>, bv: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    let idx = (cbase + row * p.n) / 4u;
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
