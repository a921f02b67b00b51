//! What only the GPU backend has to get right, against the CPU twins in f64:
//! every matrix-product kernel and configuration the adapter offers (and
//! only those its subgroup size and features allow), fused dense layers on
//! each, operands split over binding windows, limits, timestamps and device
//! loss. Outputs are poisoned with NaN first. Tolerance: relative Frobenius
//! error 1e-5 (f32 accumulation over at most a few hundred terms stays near
//! 1e-6). The operations themselves, on both backends, are in
//! `conformance.rs`.

mod common;

use common::{gpu, gpu_with_config, gpu_with_kernel, has_feature, poisoned, randn, rel_err, wide};
use widenet::Activation;
use widenet::backend::{Backend, Batched, Matmul, Timing};
use widenet::cpu::ops;
use widenet::gpu::{GpuBackend, MatmulKernel, tune};

const TOL: f64 = 1e-5;

fn check_matmul(g: &dyn Backend, spec: Matmul, seed: u64) {
    let err = common::matmul_error(g, spec, seed);
    assert!(err < TOL, "{spec:?}: relative error {err}");
}

#[test]
fn every_matmul_kernel_on_aligned_shapes() {
    // Shapes whose k and n are multiples of 4 reach the vec4 and subgroup kernels
    // (directly for NN, after the transposing copy for NT, TN and TT).
    // Every configuration the autotune may choose (kernel, workgroup rows, walk order).
    let Some(g0) = gpu() else { return };
    let kernels = g0.matmul_kernels();
    assert!(kernels.contains(&MatmulKernel::Vec4));
    let configs = tune::candidates(&g0);
    assert!(configs.len() > kernels.len(), "{configs:?}");
    for c in configs {
        let Some(g) = gpu_with_config(c) else {
            panic!("configuration {c:?} listed but not usable")
        };
        let mut seed = 1000;
        for &(m, n, kk) in &[
            (1usize, 4usize, 4usize),
            (7, 8, 32),
            (33, 36, 36),
            (260, 260, 260),
            (300, 4, 8),
            (8, 300, 12),
            (530, 40, 12),
        ] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                seed += 1;
                let spec = Matmul::new(m, n, kk).trans(ta, tb);
                check_matmul(&g, spec, seed);
            }
        }
        for (ba, bb) in [(false, false), (true, false), (false, true)] {
            for (ta, tb) in [(false, false), (true, false), (false, true)] {
                seed += 1;
                let spec = Matmul::new(40, 24, 16)
                    .batch(3)
                    .broadcast(ba, bb)
                    .trans(ta, tb)
                    .scaled(0.5, -1.5);
                check_matmul(&g, spec, seed);
                let spec = Matmul::new(40, 24, 16)
                    .batch(3)
                    .broadcast(ba, bb)
                    .trans(ta, tb)
                    .scaled(2.0, 0.0);
                check_matmul(&g, spec, seed);
            }
        }
    }
}

#[test]
fn operands_above_the_binding_limit_are_split_or_refused() {
    let Some(g0) = gpu() else { return };
    let _ = g0;
    let Some(g) = gpu_with_kernel(MatmulKernel::Generic) else {
        return;
    };
    // 4 KiB per binding: a batch of 6 members of 24 x 20 (1920 bytes) must be
    // split into dispatches of 1 member, and flat arrays of 5000 elements into windows.
    widenet::testing::cap_binding_size(&g, 4096).unwrap();
    for (ta, tb) in [(false, false), (true, true)] {
        check_matmul(
            &g,
            Matmul::new(24, 20, 16)
                .batch(6)
                .trans(ta, tb)
                .scaled(1.0, 0.5),
            77,
        );
    }
    let x = randn(5, 5000);
    let mut want = wide(&x);
    ops::scale(&mut want, 3.0);
    let mut t = g.upload(&x).unwrap();
    g.scale(&mut t, 3.0).unwrap();
    assert!(rel_err(&g.read(&t).unwrap(), &want) < TOL);
    // The vec4 form of the activation gradient in windows (5000 = 4 x 1250)
    // and the scalar form (4999).
    for n in [5000usize, 4999] {
        let (z, dy) = (randn(11, n), randn(12, n));
        let mut want = vec![0.0; n];
        ops::activation_grad(Activation::Gelu, &wide(&z), &wide(&dy), &mut want);
        let mut dx = poisoned(&g, n);
        let (gz, gdy) = (g.upload(&z).unwrap(), g.upload(&dy).unwrap());
        g.activation_grad(Activation::Gelu, &gz, &gdy, &mut dx)
            .unwrap();
        assert!(rel_err(&g.read(&dx).unwrap(), &want) < TOL, "n={n}");
    }
    let s = Batched::new(7, 9, 30);
    let xs = randn(6, s.len());
    let mut want = vec![0.0; 7 * 30];
    ops::sum_cols(s, &wide(&xs), &mut want);
    let mut out = poisoned(&g, 7 * 30);
    g.sum_cols(s, &g.upload(&xs).unwrap(), &mut out).unwrap();
    assert!(rel_err(&g.read(&out).unwrap(), &want) < TOL);
    // One member larger than a binding cannot be split: a clear error names the limit.
    let a = g.upload(&randn(7, 40 * 40)).unwrap();
    let b = g.upload(&randn(8, 40 * 40)).unwrap();
    let mut c = g.zeros(40 * 40).unwrap();
    let err = g
        .matmul(&Matmul::new(40, 40, 40), &a, &b, &mut c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_storage_buffer_binding_size") && err.contains("4096"),
        "{err}"
    );
}

#[test]
fn a_buffer_larger_than_the_device_allows_is_refused_with_the_limit() {
    let Some(g) = gpu() else { return };
    let max = widenet::Backend::info(&*g).max_buffer_size;
    let err = g.zeros((max / 4 + 1) as usize).unwrap_err().to_string();
    assert!(
        err.contains("max_buffer_size") && err.contains(&max.to_string()),
        "{err}"
    );
}

#[test]
fn fused_dense_forward_on_every_kernel() {
    let Some(g0) = gpu() else { return };
    for k in tune::candidates(&g0) {
        let Some(g) = gpu_with_config(k) else {
            panic!("{k:?}")
        };
        for &(batch, m, n, kk, bcast) in &[
            (3usize, 33usize, 40usize, 12usize, true),
            (2, 300, 8, 16, false),
            (1, 7, 4, 4, true),
            (2, 5, 6, 3, false),
        ] {
            for act in [
                Activation::RELU,
                Activation::Gelu,
                Activation::Erf {
                    a: 1.5,
                    b: 0.5,
                    c: 0.1,
                },
            ] {
                let spec = Matmul::new(m, n, kk)
                    .batch(batch)
                    .trans(false, true)
                    .broadcast(bcast, false)
                    .scaled(0.7, 0.0);
                let (ez, eh) = common::dense_forward_errors(&g, spec, act);
                assert!(ez < TOL, "{k:?} {spec:?} z");
                assert!(eh < TOL, "{k:?} {spec:?} {act} h");
            }
        }
    }
}

#[test]
fn a_lost_device_gives_errors_not_hangs_or_panics() {
    let Some(_) = gpu() else { return };
    let Some(g) = gpu_with_kernel(MatmulKernel::Generic) else {
        return;
    };
    let a = g.upload(&[1.0; 16]).unwrap();
    let mut c = g.zeros(16).unwrap();
    widenet::testing::lose_device(&g).unwrap();
    let spec = Matmul::new(4, 4, 4);
    let results = [
        g.matmul(&spec, &a, &a, &mut c)
            .and_then(|_| g.sync())
            .map(|_| ()),
        g.read(&c).map(|_| ()),
        g.upload(&[1.0; 4]).and_then(|b| g.read(&b)).map(|_| ()),
    ];
    for r in &results {
        let e = r.as_ref().unwrap_err().to_string();
        assert!(e.contains("GPU error"), "{e}");
    }
}

/// Whether the adapter under test may run kernel `k`: the generic and vec4
/// kernels anywhere, the subgroup kernel only where every subgroup has
/// exactly 8 lanes (`matmul_sg8.wgsl` shares rows of A across 8 lanes; with
/// 4, as on SwiftShader, or a range, as on most GPUs, it would read the wrong
/// lanes), cooperative matrices where the adapter reports f32 tiles.
fn allowed(g: &GpuBackend, k: MatmulKernel) -> bool {
    let info = g.info();
    match k {
        MatmulKernel::Generic | MatmulKernel::Vec4 => true,
        MatmulKernel::Sg8 => info.subgroup && info.subgroup_sizes == (8, 8),
        MatmulKernel::Coop => g.coop_shape(false).is_some(),
    }
}

const KERNELS: [MatmulKernel; 4] = [
    MatmulKernel::Generic,
    MatmulKernel::Vec4,
    MatmulKernel::Sg8,
    MatmulKernel::Coop,
];

/// Products that reach a kernel directly (aligned) or through the transposing
/// copy or the generic fallback (odd shapes), and a fused dense layer.
fn check_kernel_products(g: &GpuBackend, k: MatmulKernel) {
    let mut seed = 2000;
    for (m, n, kk) in [
        (64, 64, 64),
        (48, 80, 32),
        (33, 36, 20),
        (7, 5, 3),
        (260, 40, 68),
    ] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            seed += 1;
            check_matmul(g, Matmul::new(m, n, kk).trans(ta, tb).batch(2), seed);
        }
    }
    let spec = Matmul::new(48, 32, 64)
        .batch(2)
        .trans(false, true)
        .scaled(0.7, 0.0);
    let (ez, eh) = common::dense_forward_errors(g, spec, Activation::Gelu);
    assert!(ez < TOL && eh < TOL, "{k:?}: dense layer {ez:e} {eh:e}");
}

#[test]
fn each_kernel_is_offered_and_forced_exactly_where_the_adapter_allows_it() {
    let Some(g0) = gpu() else { return };
    let info = g0.info();
    let offered = g0.matmul_kernels();
    for k in KERNELS {
        let ok = allowed(&g0, k);
        assert_eq!(offered.contains(&k), ok, "{k:?} on {info:?}");
        let g = common::open_test_gpu().unwrap();
        let forced = widenet::testing::set_matmul_kernel(&g, k);
        if ok {
            forced.unwrap();
            assert_eq!(g.matmul_plan().large.kernel, k);
            assert_eq!(g.matmul_plan().small.kernel, k);
            // The subgroup kernel's products are the next test's, the
            // cooperative matrices' are in gpu_coop.rs.
            if matches!(k, MatmulKernel::Generic | MatmulKernel::Vec4) {
                check_kernel_products(&g, k);
            }
        } else {
            let e = forced.unwrap_err().to_string();
            assert!(e.contains("not available"), "{k:?}: {e}");
        }
    }
}

#[test]
fn the_subgroup_kernel_runs_where_every_subgroup_has_8_lanes() {
    let Some(g0) = gpu() else { return };
    // CI lists subgroup8 in WIDENET_REQUIRE on lavapipe, so that a change
    // that loses the subgroup kernel there fails instead of testing less.
    let name = "the_subgroup_kernel_runs_where_every_subgroup_has_8_lanes";
    if !has_feature(name, "subgroup8", allowed(&g0, MatmulKernel::Sg8)) {
        return;
    }
    let Some(g) = gpu_with_kernel(MatmulKernel::Sg8) else {
        panic!("sg8 offered but not forced")
    };
    check_kernel_products(&g, MatmulKernel::Sg8);
}

#[test]
fn a_kernel_asked_for_at_open_is_used_only_where_the_adapter_allows_it() {
    let Some(g0) = gpu() else { return };
    for k in KERNELS {
        let mut opts = common::test_options();
        opts.matmul_kernel = Some(k);
        let g = GpuBackend::open(&common::test_choice(), &opts)
            .unwrap()
            .unwrap();
        let plan = g.matmul_plan();
        if allowed(&g0, k) {
            assert_eq!((plan.large.kernel, plan.small.kernel), (k, k), "{k:?}");
        } else {
            // Refused with a warning: the built-in plan, which the adapter runs.
            assert_ne!(plan.large.kernel, k, "{k:?}");
            assert!(g.matmul_kernels().contains(&plan.large.kernel));
            check_matmul(&g, Matmul::new(64, 64, 64), 3000);
        }
    }
}

#[test]
fn time_reads_the_device_clock_where_the_adapter_has_timestamps() {
    let Some(g) = gpu() else { return };
    let name = "time_reads_the_device_clock_where_the_adapter_has_timestamps";
    if !has_feature(name, "timestamp", g.has_timestamps()) {
        return;
    }
    let spec = Matmul::new(256, 256, 256);
    let a = g.upload(&randn(1, spec.a_len())).unwrap();
    let b = g.upload(&randn(2, spec.b_len())).unwrap();
    let mut c = g.zeros(spec.c_len()).unwrap();
    // A first product builds the pipeline, which a fast GPU's timestamps of
    // the work would otherwise set against in the wall clock (0.1 ms against
    // 0.37 s on an H200).
    g.matmul(&spec, &a, &b, &mut c).unwrap();
    g.sync().unwrap();
    let t = std::time::Instant::now();
    let (secs, timing) = g
        .time(&mut || {
            for _ in 0..3 {
                g.matmul(&spec, &a, &b, &mut c)?;
            }
            Ok(())
        })
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(timing, Timing::GpuTimestamp);
    // The device's span of the work lies within the wall clock around it:
    // a wrong timestamp period would put it orders of magnitude off.
    assert!(secs > 0.0 && secs <= wall, "device {secs} s, wall {wall} s");
    assert!(secs > 1e-3 * wall, "device {secs} s, wall {wall} s");
}
