//! A short differential check on every adapter wgpu finds (on a CPU-only
//! machine: lavapipe over Vulkan and llvmpipe over GL), so that no backend
//! goes untested. The full suites run on the default adapter.

mod common;

use widenet::Activation;
use widenet::backend::{Backend, Matmul};
use widenet::cpu::ops;
use widenet::gpu::{GpuBackend, enumerate};
use widenet::kernel::{Want, kernels_device, kernels_f64};
use widenet::{Arch, DeviceChoice};

#[test]
fn every_adapter_computes_products_activations_and_kernels() {
    if common::gpu().is_none() {
        return;
    }
    let adapters = enumerate();
    assert!(!adapters.is_empty());
    for (_, info) in adapters {
        let name = format!("{} ({})", info.name, info.backend);
        let g = GpuBackend::open(
            &DeviceChoice::Gpu(Some(info.index)),
            &common::test_options(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: not opened"));
        eprintln!("short check on {name}");
        for (m, n, k, ta, tb) in [
            (33, 40, 17, false, false),
            (64, 64, 64, false, true),
            (9, 12, 28, true, false),
        ] {
            let spec = Matmul::new(m, n, k).trans(ta, tb).batch(2);
            let a = common::randn(1, spec.a_len());
            let b = common::randn(2, spec.b_len());
            let mut want = vec![0.0; spec.c_len()];
            ops::matmul(&spec, &common::wide(&a), &common::wide(&b), &mut want);
            let mut c = common::poisoned(&g, spec.c_len());
            g.matmul(
                &spec,
                &g.upload(&a).unwrap(),
                &g.upload(&b).unwrap(),
                &mut c,
            )
            .unwrap();
            let e = common::rel_err(&g.read(&c).unwrap(), &want);
            assert!(e < 1e-5, "{name}: matmul {spec:?}: {e}");
        }
        let x = common::randn(3, 300);
        let act = Activation::Gelu;
        let mut want = vec![0.0; 300];
        ops::activation(act, &common::wide(&x), &mut want);
        let mut y = common::poisoned(&g, 300);
        g.activation(act, &g.upload(&x).unwrap(), &mut y).unwrap();
        assert!(
            common::rel_err(&g.read(&y).unwrap(), &want) < 1e-5,
            "{name}: gelu"
        );

        let arch = Arch::parse(
            "Dense(64, W_std=1.3, b_std=0.1), Residual(Relu, Dense(64, W_std=1.3, b_std=0.1)), LayerNorm, Erf, Dense(1, W_std=1.3, b_std=0.1)",
        )
        .unwrap();
        let pts =
            widenet::matrix::Matrix::from_vec(30, 5, common::wide(&common::randn(4, 150))).unwrap();
        let want = kernels_f64(&arch, &pts, None, Want::NTK)
            .unwrap()
            .ntk
            .unwrap();
        let got = kernels_device(&g, &arch, &pts.to_f32(), None, Want::NTK, |_, _| {})
            .unwrap()
            .ntk
            .unwrap();
        let e = common::rel_err(got.data(), want.data());
        assert!(e < 1e-4, "{name}: ntk {e}");
    }
}
