// Activation functions shared by elementwise.wgsl, the matrix kernels'
// epilogue and ntk.wgsl (prepended by the host). The codes ACT_* are
// constants the host writes from src/activation/mod.rs (`code`), their one
// source: identity, ABRelu(a, b), a*erf(b*x)+c, tanh, gelu (exact), sign, sigmoid.

// erf with about 1.5e-7 absolute error: Taylor series near 0 (where the
// rational form would lose relative accuracy), Abramowitz & Stegun 7.1.26 elsewhere.
fn erf_f32(x: f32) -> f32 {
    let ax = abs(x);
    if (ax < 0.5) {
        let x2 = x * x;
        return 1.1283791671 * x * (1.0 + x2 * (-0.333333333 + x2 * (0.1 + x2 * (-0.0238095238 + x2 * (0.00462962963 - x2 * 0.000757575758)))));
    }
    let t = 1.0 / (1.0 + 0.3275911 * ax);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - poly * exp(-ax * ax));
}

// The activation of the activation kernels and of the matrix kernels' fused
// epilogue, fixed when the pipeline is created (codes as above), so that the
// compiler keeps only its case: a uniform switch per value cost the sg8
// kernel's epilogue 0.7x its product on lavapipe.
override ACT_CODE: u32 = 0u;

fn act_value(code: u32, x: f32, pa: f32, pb: f32, pc: f32) -> f32 {
    switch code {
        case ACT_ABRELU: { return pa * min(x, 0.0) + pb * max(x, 0.0); }
        case ACT_ERF: { return pa * erf_f32(pb * x) + pc; }
        case ACT_TANH: { return tanh(clamp(x, -15.0, 15.0)); }
        case ACT_GELU: { return x * 0.5 * (1.0 + erf_f32(x * 0.70710678118)); }
        case ACT_SIGN: { return sign(x); }
        case ACT_SIGMOID: { return 1.0 / (1.0 + exp(-clamp(x, -80.0, 80.0))); }
        default: { return x; }
    }
}

fn act_slope(code: u32, x: f32, pa: f32, pb: f32) -> f32 {
    switch code {
        case ACT_ABRELU: { return select(pa, pb, x > 0.0); }
        case ACT_ERF: { return pa * pb * 1.1283791671 * exp(-(pb * x) * (pb * x)); }
        case ACT_TANH: { let t = tanh(clamp(x, -15.0, 15.0)); return 1.0 - t * t; }
        case ACT_GELU: { return 0.5 * (1.0 + erf_f32(x * 0.70710678118)) + x * 0.3989422804 * exp(-0.5 * x * x); }
        case ACT_SIGN: { return 0.0; }
        case ACT_SIGMOID: { let s = 1.0 / (1.0 + exp(-clamp(x, -80.0, 80.0))); return s * (1.0 - s); }
        default: { return 1.0; }
    }
}

// The second derivative (zero for ABRelu and sign, as autodiff takes it at
// their kinks): the Hessian-vector product's curvature term.
fn act_curvature(code: u32, x: f32, pa: f32, pb: f32) -> f32 {
    switch code {
        case ACT_ERF: { return -2.0 * pb * pb * x * act_slope(code, x, pa, pb); }
        case ACT_TANH: { let t = tanh(clamp(x, -15.0, 15.0)); return -2.0 * t * (1.0 - t * t); }
        case ACT_GELU: { return 0.3989422804 * exp(-0.5 * x * x) * (2.0 - x * x); }
        case ACT_SIGMOID: { let s = 1.0 / (1.0 + exp(-clamp(x, -80.0, 80.0))); return s * (1.0 - s) * (1.0 - 2.0 * s); }
        default: { return 0.0; }
    }
}
