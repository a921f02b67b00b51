// Parameters shared by matmul.wgsl, matmul_vec4.wgsl and matmul_sg8.wgsl (the
// host prepends this file; its Rust twin is `MatmulParams` in src/gpu/matmul.rs).
// bias_off, code, mult_b, pa, pb, pc serve the fused dense-layer epilogue.
struct MatmulParams {
    m: u32, n: u32, k: u32, _pad0: u32,
    a_si: u32, a_sp: u32, b_sp: u32, b_sj: u32,
    a_off: u32, b_off: u32, c_off: u32, _pad1: u32,
    a_bs: u32, b_bs: u32, c_bs: u32, _pad2: u32,
    alpha: f32, beta: f32, bias_off: u32, _pad4: u32,
    code: u32, mult_b: f32, pa: f32, pb: f32,
    pc: f32, _pad5: u32, _pad6: u32, _pad7: u32,
}
