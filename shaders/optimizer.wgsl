// Parameter updates of an ensemble: every member has its own learning rate and
// an alive flag (a diverged member is frozen). param, grad, m and v hold
// `members * member_len` values, member after member. CPU twin: src/cpu/ops.rs (update).
//
// Bindings (group 0):
//   0: params  uniform (dynamic offset)  OptParams
//   1: grad    storage, read
//   2: lr      storage, read        [members] learning rate of each member
//   3: param   storage, read_write
//   4: m       storage, read_write  momentum buffer / Adam first moment   (momentum, adam)
//   5: v       storage, read_write  Adam second moment                     (adam)
//   6: alive   storage, read        [members], 1 or 0
//
// The step size of member e is lr[e] * scale, scale = the layer's multiplier
// times the schedule's factor at this step. A dispatch covers `len` values from
// member `member0` on; the tensors are bound at a window whose first wanted
// value sits at index `shift` (the same in all four).

struct OptParams {
    len: u32, member_len: u32, member0: u32, shift: u32,
    scale: f32, mu: f32, b1: f32, b2: f32,
    eps: f32, bc1: f32, bc2: f32, _pad2: f32,
}

@group(0) @binding(0) var<uniform> p: OptParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> lr: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
@group(0) @binding(6) var<storage, read> alive: array<f32>;

fn step_of(i: u32) -> f32 {
    let e = p.member0 + i / p.member_len;
    return select(0.0, lr[e] * p.scale, alive[e] > 0.5);
}

// param -= step * grad
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += nwg.x * 256u) {
        let s = step_of(i);
        if (s != 0.0) {
            param[p.shift + i] -= s * grad[p.shift + i];
        }
    }
}

// m = mu m + grad; param -= step * m   (heavy ball)
@compute @workgroup_size(256)
fn momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += nwg.x * 256u) {
        let s = step_of(i);
        if (s != 0.0) {
            let mi = p.mu * m[p.shift + i] + grad[p.shift + i];
            m[p.shift + i] = mi;
            param[p.shift + i] -= s * mi;
        }
    }
}

// Adam (Kingma & Ba 2015): bias corrections bc1 = 1 - b1^t, bc2 = 1 - b2^t.
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += nwg.x * 256u) {
        let s = step_of(i);
        if (s != 0.0) {
            let g = grad[p.shift + i];
            let mi = p.b1 * m[p.shift + i] + (1.0 - p.b1) * g;
            let vi = p.b2 * v[p.shift + i] + (1.0 - p.b2) * g * g;
            m[p.shift + i] = mi;
            v[p.shift + i] = vi;
            param[p.shift + i] -= s * (mi / p.bc1) / (sqrt(vi / p.bc2) + p.eps);
        }
    }
}

// Vector forms for tensors whose members hold a multiple of 4 values: len,
// member_len and shift then count vec4s, and a vec4 never straddles two
// members (on lavapipe each storage access whose address differs between lanes
// costs one scalar access per lane: vec4 quarters that). Same slots, as arrays
// of vec4.
@group(0) @binding(1) var<storage, read> grad4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> param4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> v4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn sgd4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += nwg.x * 256u) {
        let s = step_of(i);
        if (s != 0.0) {
            param4[p.shift + i] -= s * grad4[p.shift + i];
        }
    }
}

@compute @workgroup_size(256)
fn momentum4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += nwg.x * 256u) {
        let s = step_of(i);
        if (s != 0.0) {
            let mi = p.mu * m4[p.shift + i] + grad4[p.shift + i];
            m4[p.shift + i] = mi;
            param4[p.shift + i] -= s * mi;
        }
    }
}

@compute @workgroup_size(256)
fn adam4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += nwg.x * 256u) {
        let s = step_of(i);
        if (s != 0.0) {
            let g = grad4[p.shift + i];
            let mi = p.b1 * m4[p.shift + i] + (1.0 - p.b1) * g;
            let vi = p.b2 * v4[p.shift + i] + (1.0 - p.b2) * g * g;
            m4[p.shift + i] = mi;
            v4[p.shift + i] = vi;
            param4[p.shift + i] -= s * (mi / p.bc1) / (sqrt(vi / p.bc2) + p.eps);
        }
    }
}
