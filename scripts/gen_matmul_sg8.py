#!/usr/bin/env python3
"""Writes the unrolled body of shaders/matmul_sg8.wgsl (WGSL has no macros).

    python3 scripts/gen_matmul_sg8.py > shaders/matmul_sg8.wgsl.new

Everything above the entry point is kept from the current file; the entry
point and store4 are generated for R = 32 rows per subgroup (16, 24, 40 and
48 were measured slower on lavapipe, see BENCHMARKS.md).
"""
import pathlib
import sys

R = 32
L = R // 8
here = pathlib.Path(__file__).resolve().parent.parent / "shaders" / "matmul_sg8.wgsl"
src = here.read_text()
head = src[: src.index("// Workgroup: WG_Y subgroups")]
out = []
o = out.append
o("// Workgroup: WG_Y subgroups of 8 lanes; subgroup y of row tile tm covers rows")
o(f"// (tm * WG_Y + y) * {R} .. +{R} and the 32 columns tn * 32 .. +32.")
o("@compute @workgroup_size(8, WG_Y, 1)")
o("fn matmul_sg8(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {")
o("    let e = wg.z;")
o("    let tm = select(wg.y, wg.x, WALK_M);")
o("    let tn = select(wg.x, wg.y, WALK_M);")
o(f"    let row0 = (tm * WG_Y + lid.y) * {R}u;")
o("    let col = tn * 32u + lid.x * 4u;")
o("    let abase = p.a_off + e * p.a_bs;")
o("    let mlast = p.m - 1u;")
o("    // A row-major: lane x loads row r0 + x of each group of 8 rows, 4 steps of k.")
o("    // TRANS_A (A stored k-major, m a multiple of 4): lane x loads rows")
o("    // r0 + 4 (x / 4) .. +4 at step x % 4 of k. anext: vec4s to the next 4 steps.")
o("    let ak = lid.x & 3u;")
o("    let ar = (lid.x >> 2u) * 4u;")
for l in range(L):
    o(f"    var aidx{l} = select((abase + min(row0 + {8*l}u + lid.x, mlast) * p.a_si) / 4u, "
      f"(abase + ak * p.a_sp + min(row0 + {8*l}u + ar, p.m - 4u)) / 4u, TRANS_A);")
o("    let anext = select(1u, p.a_sp, TRANS_A);")
o("    let colc = min(col, p.n - 4u);")
o("    // bstep: vec4s between the four rows loaded per step (of op(B), or of B")
o("    // itself with TRANS_B); bnext: vec4s to the next step.")
o("    var bidx = (p.b_off + e * p.b_bs + select(colc, colc * p.b_sj, TRANS_B)) / 4u;")
o("    let bstep = select(p.b_sp, p.b_sj, TRANS_B) / 4u;")
o("    let bnext = select(4u * bstep, 1u, TRANS_B);")
for r in range(R):
    o(f"    var acc{r} = vec4<f32>(0.0);")
o("    for (var kk = 0u; kk < p.k; kk += 4u) {")
for l in range(L):
    o(f"        let mine{l} = vec4<f32>(a[aidx{l}]);")
o("        // Rows kk..kk+3 of op(B) at columns col..col+3: four vec4 loads either")
o("        // way; with TRANS_B they are columns of the loaded rows of B.")
for j in range(4):
    step = "" if j == 0 else f" + {j}u * bstep"
    o(f"        var b{j} = vec4<f32>(b[bidx{step}]);")
o("        if (TRANS_B) {")
for j in range(4):
    o(f"            let w{j} = b{j};")
for j, c in enumerate("xyzw"):
    o(f"            b{j} = vec4<f32>(w0.{c}, w1.{c}, w2.{c}, w3.{c});")
o("        }")
o("        if (TRANS_A) {")
o("            // Lane 4 h + j holds rows 4 h .. 4 h + 3 (of each group of 8) at step j.")
for l in range(L):
    for h in range(2):
        for j in range(4):
            o(f"            let t{l}_{h}_{j} = subgroupBroadcast(mine{l}, {4*h + j}u);")
            for cc, c in enumerate("xyzw"):
                r = 8 * l + 4 * h + cc
                o(f"            acc{r} = fma(vec4<f32>(t{l}_{h}_{j}.{c}), b{j}, acc{r});")
o("        } else {")
for r in range(R):
    o(f"            let a{r} = subgroupBroadcast(mine{r // 8}, {r % 8}u);")
    for c, bb in zip("xyzw", ["b0", "b1", "b2", "b3"]):
        o(f"            acc{r} = fma(vec4<f32>(a{r}.{c}), {bb}, acc{r});")
o("        }")
for l in range(L):
    o(f"        aidx{l} += anext;")
o("        bidx += bnext;")
o("    }")
o("    if (col >= p.n) {")
o("        return;")
o("    }")
o("    let cbase = p.c_off + e * p.c_bs + col;")
o("    var bv = vec4<f32>(0.0);")
o("    if (EPILOGUE) {")
o("        bv = p.mult_b * bias[(p.bias_off + e * p.n + col) / 4u];")
o("    }")
for r in range(R):
    o(f"    store4(cbase, row0 + {r}u, acc{r}, bv);")
o("}")
o("")
tail = src[src.index("fn store4("):]
sys.stdout.write(head + "\n".join(out) + "\n" + tail)
