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
// times the schedule's factor at this step. A dispatch covers the members
// `member0 ..` of a window of whole members (bound where the first wanted value
// sits at index `shift`, the same in all four tensors): row y of workgroups
// updates member `member0 + y`, so that the member's step size and alive flag
// are one load for the whole workgroup (per-lane addresses cost a scalar load
// per lane on lavapipe) and a frozen member's workgroups stop at once.

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

// The step size of the workgroup row's member (0 when it is frozen), and where
// its values start.
fn member_step(y: u32) -> f32 {
    let e = p.member0 + y;
    return select(0.0, lr[e] * p.scale, alive[e] > 0.5);
}

fn member_base(y: u32) -> u32 {
    return p.shift + y * p.member_len;
}

// param -= step * grad
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s = member_step(gid.y);
    if (s == 0.0) {
        return;
    }
    let base = member_base(gid.y);
    for (var i = gid.x; i < p.member_len; i += nwg.x * 256u) {
        param[base + i] -= s * grad[base + i];
    }
}

// m = mu m + grad; param -= step * m   (heavy ball)
@compute @workgroup_size(256)
fn momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s = member_step(gid.y);
    if (s == 0.0) {
        return;
    }
    let base = member_base(gid.y);
    for (var i = gid.x; i < p.member_len; i += nwg.x * 256u) {
        let mi = p.mu * m[base + i] + grad[base + i];
        m[base + i] = mi;
        param[base + i] -= s * mi;
    }
}

// Adam (Kingma & Ba 2015): bias corrections bc1 = 1 - b1^t, bc2 = 1 - b2^t.
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s = member_step(gid.y);
    if (s == 0.0) {
        return;
    }
    let base = member_base(gid.y);
    for (var i = gid.x; i < p.member_len; i += nwg.x * 256u) {
        let g = grad[base + i];
        let mi = p.b1 * m[base + i] + (1.0 - p.b1) * g;
        let vi = p.b2 * v[base + i] + (1.0 - p.b2) * g * g;
        m[base + i] = mi;
        v[base + i] = vi;
        param[base + i] -= s * (mi / p.bc1) / (sqrt(vi / p.bc2) + p.eps);
    }
}

// Vector forms for tensors whose members hold a multiple of 4 values:
// member_len and shift then count vec4s (on lavapipe each storage access whose
// address differs between lanes costs one scalar access per lane: vec4
// quarters that). Same slots, as arrays of vec4.
@group(0) @binding(1) var<storage, read> grad4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> param4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> v4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn sgd4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s = member_step(gid.y);
    if (s == 0.0) {
        return;
    }
    let base = member_base(gid.y);
    for (var i = gid.x; i < p.member_len; i += nwg.x * 256u) {
        param4[base + i] -= s * grad4[base + i];
    }
}

@compute @workgroup_size(256)
fn momentum4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s = member_step(gid.y);
    if (s == 0.0) {
        return;
    }
    let base = member_base(gid.y);
    for (var i = gid.x; i < p.member_len; i += nwg.x * 256u) {
        let mi = p.mu * m4[base + i] + grad4[base + i];
        m4[base + i] = mi;
        param4[base + i] -= s * mi;
    }
}

@compute @workgroup_size(256)
fn adam4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s = member_step(gid.y);
    if (s == 0.0) {
        return;
    }
    let base = member_base(gid.y);
    for (var i = gid.x; i < p.member_len; i += nwg.x * 256u) {
        let g = grad4[base + i];
        let mi = p.b1 * m4[base + i] + (1.0 - p.b1) * g;
        let vi = p.b2 * v4[base + i] + (1.0 - p.b2) * g * g;
        m4[base + i] = mi;
        v4[base + i] = vi;
        param4[base + i] -= s * (mi / p.bc1) / (sqrt(vi / p.bc2) + p.eps);
    }
}
