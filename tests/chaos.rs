//! The edge-of-chaos theory: fixed points against closed forms and an
//! independent integration, quadrature against closed forms, the critical
//! line, and the device against the f64 CPU twin.

mod common;

use widenet::activation::Activation;
use widenet::chaos::{self, Axis, Expectations};

const ERF: Activation = Activation::Erf {
    a: 1.0,
    b: 1.0,
    c: 0.0,
};

/// `E[f(z)]`, `z ~ N(0, 1)`, by composite Simpson on [-12, 12] (20,000
/// panels): independent of the Gauss-Hermite rules under test.
fn simpson(f: impl Fn(f64) -> f64) -> f64 {
    let n = 20_000;
    let (a, b) = (-12.0f64, 12.0f64);
    let h = (b - a) / n as f64;
    let g = |z: f64| f(z) * (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let mut s = g(a) + g(b);
    for i in 1..n {
        s += g(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

#[test]
fn erf_fixed_point_solves_its_closed_form() {
    // q* = sw2 (2/pi) asin(2q / (1 + 2q)) + sb2, by the closed form and by
    // forced quadrature.
    for &(sw2, sb2) in &[(1.7, 0.3), (3.2, 0.05), (0.8, 0.4)] {
        for quadrature in [false, true] {
            let e = Expectations::new(ERF, 120, quadrature);
            let q = chaos::q_star(&e, sw2, sb2).expect("erf has a fixed point");
            let map = sw2 * 2.0 / std::f64::consts::PI * (2.0 * q / (1.0 + 2.0 * q)).asin() + sb2;
            assert!(
                (map - q).abs() < 1e-10,
                "sw2 {sw2} sb2 {sb2} quadrature {quadrature}: q* {q}, map {map}"
            );
        }
    }
}

#[test]
fn tanh_at_zero_bias_is_critical_at_unit_weight_variance() {
    let e = Expectations::new(Activation::Tanh, 120, false);
    let w = chaos::critical_sw2(&e, 0.0, 0.5, 4.0).expect("a critical point");
    assert!((w - 1.0).abs() < 1e-6, "critical sw2 {w}");
    // Below it the signal dies (q* = 0) and chi_1 = sw2 tanh'(0)^2 = sw2.
    let p = chaos::point(&e, 0.8, 0.0);
    assert_eq!(p.q_star, Some(0.0));
    assert!((p.chi1.unwrap() - 0.8).abs() < 1e-12);
    assert!((p.xi_c.unwrap() + 1.0 / 0.8f64.ln()).abs() < 1e-9);
    // Above it q* > 0 and, tanh being odd with no bias, c* = 0.
    let p = chaos::point(&e, 2.0, 0.0);
    assert!(p.q_star.unwrap() > 0.1);
    assert!(p.c_star.unwrap().abs() < 1e-12, "{:?}", p.c_star);
}

#[test]
fn relu_chi1_is_half_the_weight_variance_and_no_fixed_point_beyond_two() {
    let e = Expectations::new(Activation::RELU, 120, false);
    for &sw2 in &[0.5, 1.0, 1.5, 1.99] {
        let p = chaos::point(&e, sw2, 0.2);
        assert!((p.chi1.unwrap() - sw2 / 2.0).abs() < 1e-12, "sw2 {sw2}");
        assert!((p.q_star.unwrap() - 0.2 / (1.0 - sw2 / 2.0)).abs() < 1e-12);
        assert_eq!(p.c_star, Some(1.0), "ordered: c* = 1");
    }
    for &sw2 in &[2.0, 3.0] {
        assert_eq!(chaos::point(&e, sw2, 0.2), chaos::Point::default());
    }
}

#[test]
fn quadrature_matches_the_closed_forms() {
    for act in [
        ERF,
        Activation::Gelu,
        Activation::Erf {
            a: 1.5,
            b: 0.6,
            c: 0.1,
        },
    ] {
        let closed = Expectations::new(act, 120, false);
        let numeric = Expectations::new(act, 120, true);
        for &(sw2, sb2) in &[(1.2, 0.1), (2.5, 0.3), (3.5, 0.02), (0.9, 0.5)] {
            let a = chaos::point(&closed, sw2, sb2);
            let b = chaos::point(&numeric, sw2, sb2);
            let pairs = [
                ("q*", a.q_star, b.q_star, 1e-9),
                ("c*", a.c_star, b.c_star, 1e-7),
                ("chi1", a.chi1, b.chi1, 1e-9),
                ("xi_q", a.xi_q, b.xi_q, 1e-6),
                ("xi_c", a.xi_c, b.xi_c, 1e-5),
            ];
            for (name, x, y, tol) in pairs {
                // GELU has no fixed point from sw2 = 2 on: both must say so.
                let (Some(x), Some(y)) = (x, y) else {
                    assert_eq!(
                        (x, y, act, sw2 >= 2.0),
                        (None, None, Activation::Gelu, true)
                    );
                    continue;
                };
                assert!(
                    (x - y).abs() <= tol * x.abs().max(1.0),
                    "{act} sw2 {sw2} sb2 {sb2} {name}: closed {x} quadrature {y}"
                );
            }
        }
    }
}

#[test]
fn tanh_fixed_point_and_chi1_match_an_independent_integration() {
    // Points off any grid of the experiments; Simpson's rule instead of
    // Gauss-Hermite, and a plain fixed-point iteration instead of Newton.
    // Gauss-Hermite converges slowly for tanh as q* grows (its poles at
    // i pi / 2 come closer relative to the Gaussian's width): 120 nodes give
    // chi_1 to 1e-7 up to q* = 2 and to 5e-6 at q* = 3.6 (sw2 = 3.9), 200
    // nodes to 1e-7 there.
    for &(sw2, sb2, degree) in &[(1.37, 0.021, 120), (2.61, 0.33, 120), (3.9, 0.47, 200)] {
        let e = Expectations::new(Activation::Tanh, degree, false);
        let mut q = 1.0f64;
        for _ in 0..2000 {
            let s = q.sqrt();
            q = sw2 * simpson(|z| (s * z).tanh().powi(2)) + sb2;
        }
        let s = q.sqrt();
        let chi = sw2 * simpson(|z| (1.0 - (s * z).tanh().powi(2)).powi(2));
        let p = chaos::point(&e, sw2, sb2);
        assert!(
            (p.q_star.unwrap() - q).abs() < 1e-7 * q,
            "q*: {:?} vs {q}",
            p.q_star
        );
        assert!(
            (p.chi1.unwrap() - chi).abs() < 1e-7,
            "chi1: {:?} vs {chi}",
            p.chi1
        );
    }
}

backend_tests! {
    fn critical_line_has_chi1_one(dev: &dyn Backend) {
        let sb2 = [0.0, 0.05, 0.2, 0.5];
        for act in [Activation::Tanh, ERF] {
            let line = chaos::critical_line(dev, act, false, 120, &sb2, 0.5, 4.0).unwrap();
            let e = Expectations::new(act, 120, false);
            for (b, w) in sb2.iter().zip(&line) {
                let w = w.unwrap_or_else(|| panic!("{act}: no critical point at sb2 {b}"));
                let chi = chaos::chi1(&e, w, *b).unwrap();
                assert!((chi - 1.0).abs() < 1e-6, "{act} sb2 {b}: chi1({w}) = {chi}");
            }
        }
        // ReLU: chi_1 = sw2 / 2 crosses 1 at 2 whatever the bias.
        let line = chaos::critical_line(dev, Activation::RELU, false, 120, &[0.1], 0.5, 4.0).unwrap();
        assert!((line[0].unwrap() - 2.0).abs() < 1e-6, "{:?}", line);
    }
}

#[test]
fn device_grid_matches_the_cpu_twin() {
    let Some(g) = common::gpu() else { return };
    let cpu = widenet::cpu::CpuBackend;
    // Not through sw2 = 1 at sb2 = 0, where tanh's q* = 0 is approached as
    // -2 q^2 and f32 stops at q ~ 1e-8 (its rounding of the map).
    let sw2 = Axis {
        lo: 0.5,
        hi: 4.0,
        n: 14,
    };
    let sb2 = Axis {
        lo: 0.0,
        hi: 0.5,
        n: 6,
    };
    for act in [
        Activation::Tanh,
        Activation::RELU,
        ERF,
        Activation::Gelu,
        Activation::Sigmoid,
        Activation::Sign,
    ] {
        let d = chaos::theory_grid(g.as_ref(), act, false, 120, &sw2, &sb2).unwrap();
        let c = chaos::theory_grid(&cpu, act, false, 120, &sw2, &sb2).unwrap();
        let fields = [
            ("q*", &d.q_star, &c.q_star),
            ("c*", &d.c_star, &c.c_star),
            ("chi1", &d.chi1, &c.chi1),
            ("xi_q", &d.xi_q, &c.xi_q),
            ("xi_c", &d.xi_c, &c.xi_c),
        ];
        for (name, dv, cv) in fields {
            for i in 0..sb2.n {
                for j in 0..sw2.n {
                    let (x, y) = (dv[i][j], cv[i][j]);
                    let at = format!("{act} {name} at sb2 {} sw2 {}", d.sb2[i], d.sw2[j]);
                    match (x, y) {
                        (Some(x), Some(y)) => {
                            // Depth scales compared as 1/xi = -ln(chi).
                            let (x, y) = if name.starts_with("xi") {
                                (1.0 / x.max(1e-30), 1.0 / y.max(1e-30))
                            } else {
                                (x, y)
                            };
                            assert!(
                                (x - y).abs() <= 2e-4 * y.abs().max(1.0),
                                "{at}: device {x} cpu {y}"
                            );
                        }
                        (None, None) => {}
                        _ => panic!("{at}: device {x:?} cpu {y:?}"),
                    }
                }
            }
        }
    }
}

#[test]
fn finite_network_lengths_follow_the_map_within_monte_carlo_error() {
    use widenet::experiments::chaos::propagation::{input_pair, measure, members, theory};
    // 16 tanh networks of width 256 and depth 8 at one point of the chaotic
    // phase, as one ensemble; q_l per layer against the iterated length map.
    let cpu = widenet::cpu::CpuBackend;
    let (sw2, sb2, depth, seeds) = (2.5, 0.1, 8, 16);
    let p = members(
        Activation::Tanh,
        256,
        depth,
        32,
        1,
        &[(sw2, sb2)],
        None,
        seeds,
        7,
    )
    .unwrap();
    let x = input_pair(32, 1.0, 0.5, 7);
    let (q, c) = measure(&cpu, &p, &x).unwrap();
    let (tq, tc) = theory(Activation::Tanh, sw2, sb2, 1.0, 0.5, depth);
    for l in 0..depth {
        for (name, m, t) in [("q", &q, tq[l]), ("c", &c, tc[l])] {
            let v: Vec<f64> = m.iter().map(|r| r[l]).collect();
            let mean = v.iter().sum::<f64>() / seeds as f64;
            let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (seeds - 1) as f64;
            let se = (var / seeds as f64).sqrt();
            // Four standard errors; the finite-width bias (order 1/256) is
            // far below one.
            assert!(
                (mean - t).abs() < 4.0 * se,
                "{name}_{} = {mean} ± {se}, map {t}",
                l + 1
            );
            assert!(
                se < 0.05 * t.abs().max(0.1),
                "{name}_{}: se {se} too large to test",
                l + 1
            );
        }
    }
}

#[test]
fn a_small_run_writes_its_grid_and_shows_the_gap_shrink_with_width() {
    use widenet::experiments::OutDir;
    use widenet::experiments::chaos::{ChaosConfig, run};
    let cpu = widenet::cpu::CpuBackend;
    let dir = std::env::temp_dir().join(format!("widenet-chaos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = ChaosConfig {
        sw2: Axis {
            lo: 0.5,
            hi: 4.0,
            n: 9,
        },
        sb2: Axis {
            lo: 0.0,
            hi: 0.5,
            n: 5,
        },
        prop_depth: 12,
        widths: vec![16, 256],
        seeds: 3,
        train_sw2: Axis {
            lo: 1.0,
            hi: 2.0,
            n: 2,
        },
        depths: vec![2, 40],
        train_width: 16,
        steps: 100,
        n_train: 64,
        threshold: 0.65,
        ..ChaosConfig::quick()
    };
    let out = OutDir::create(Some(&dir), "chaos").unwrap();
    let r = run(&cpu, &cfg, None, &out, false, true).unwrap();
    let g = &r["grid"];
    assert_eq!(g["sw2"].as_array().unwrap().len(), 9);
    assert_eq!(g["sb2"].as_array().unwrap().len(), 5);
    for key in ["q_star", "c_star", "chi1", "xi_q", "xi_c"] {
        let rows = g[key].as_array().unwrap();
        assert_eq!(rows.len(), 5, "{key}");
        assert!(
            rows.iter().all(|r| r.as_array().unwrap().len() == 9),
            "{key}"
        );
    }
    // tanh at sigma_b^2 = 0 is critical at sigma_w^2 = 1.
    let crit = g["critical"]["sw2"][0].as_f64().unwrap();
    assert!((crit - 1.0).abs() < 1e-6, "critical sw2 at sb2 = 0: {crit}");
    // The gap to the maps shrinks from width 16 to 256 (16 times wider:
    // about 4 times smaller by Monte Carlo; asked for 2).
    let gq: Vec<f64> = r["propagation"]["gap_q"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(gq[1] < 0.5 * gq[0], "q gap against width: {gq:?}");
    // No network deeper than 6 xi_c trains (sigma_w^2 = 1 at depth 40, in
    // the ordered phase, is beyond it: chance accuracy, 0.5); shallow ones
    // do (0.72 to 0.77 after 100 steps, above the threshold of 0.65).
    let t = &r["trainability"];
    assert!(t["beyond_6xi_c"]["cells"].as_u64().unwrap() >= 1, "{t}");
    assert_eq!(t["beyond_6xi_c"]["trainable"].as_u64(), Some(0), "{t}");
    assert!(t["within_6xi_c"]["trainable"].as_u64().unwrap() >= 1, "{t}");
    for f in [
        "report.json",
        "report.md",
        "phase_xi_c.png",
        "q_depth.svg",
        "trainability.png",
        "gradients.png",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
