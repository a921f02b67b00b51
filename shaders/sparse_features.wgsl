// Sparse synthetic features drawn on the device (the data of the toy models of
// superposition). CPU twin: src/cpu/ops.rs (sparse_features), hash:
// src/rng.rs (pcg_hash, draw_key, sparse_feature); the bits must agree.
//
// Bindings (group 0):
//   0: params    uniform (dynamic offset)  DrawParams
//   1: member    storage, read        member ids [members], u32 stored bit for bit in f32
//   2: sparsity  storage, read        probability of a zero [members]
//   3: x         storage, read_write  features [members, per] (a window of whole members)
//
// x[e, i] = 0 when unit(h) < sparsity[e], else unit(pcg(h)), with
// h = pcg(i ^ key), key = pcg(step ^ pcg(member[e] ^ pcg(seed))) and
// unit(h) = (h >> 8) * 2^-24 (exact in f32).

struct DrawParams {
    per: u32, member0: u32, off_x: u32, seed: u32,
    step: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: DrawParams;
@group(0) @binding(1) var<storage, read> member: array<f32>;
@group(0) @binding(2) var<storage, read> sparsity: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

// Jarzynski and Olano 2020, "Hash Functions for GPU Rendering": pcg.
fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn unit(h: u32) -> f32 {
    return f32(h >> 8u) * (1.0 / 16777216.0);
}

// One row of workgroups per member of the window (gid.y); a grid stride over its values.
@compute @workgroup_size(256)
fn sparse_features(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = p.member0 + gid.y;
    let key = pcg(p.step ^ pcg(bitcast<u32>(member[e]) ^ pcg(p.seed)));
    let s = sparsity[e];
    let base = p.off_x + gid.y * p.per;
    for (var i = gid.x; i < p.per; i += nwg.x * 256u) {
        let h = pcg(i ^ key);
        var v = 0.0;
        if (unit(h) >= s) {
            v = unit(pcg(h));
        }
        x[base + i] = v;
    }
}
