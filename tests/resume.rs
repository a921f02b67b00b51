//! Long sweeps keep their finished points: a resumed run recomputes only what
//! is missing and gives the same report; an interrupted run leaves a valid
//! partial report. (Its own test binary: the interrupt flag is process-wide.)

mod common;

use widenet::Error;
use widenet::experiments::compare::{CompareConfig, run};
use widenet::experiments::data::teacher;
use widenet::experiments::{OutDir, request_interrupt};

#[test]
fn resume_recomputes_only_missing_points_and_interrupts_leave_a_partial_report() {
    let dev: Box<dyn widenet::Backend> = match common::gpu() {
        Some(_) => Box::new(
            widenet::gpu::GpuBackend::open(&common::test_choice(), &common::test_options())
                .unwrap()
                .unwrap(),
        ),
        None => Box::new(widenet::cpu::CpuBackend),
    };
    let cfg = CompareConfig {
        seeds: 4,
        ..CompareConfig::quick()
    };
    let data = teacher(cfg.d_in, cfg.n_train, cfg.n_test, cfg.seed);
    let base = std::env::temp_dir().join(format!("widenet-resume-{}", std::process::id()));
    let a = OutDir::create(Some(&base.join("a")), "compare").unwrap();
    let full = run(dev.as_ref(), &cfg, &data, &a, true, false).unwrap();
    assert_eq!(full["interrupted"], false);

    // Drop the last width's point: a resumed run recomputes it alone and agrees.
    let last = cfg.widths[cfg.widths.len() - 1];
    std::fs::remove_file(a.file("points").join(format!("width-{last}.json"))).unwrap();
    let mut marker = full["widths"][0].clone();
    marker["marker"] = serde_json::json!("kept from the checkpoint");
    std::fs::write(
        a.file("points")
            .join(format!("width-{}.json", cfg.widths[0])),
        serde_json::to_string(&marker).unwrap(),
    )
    .unwrap();
    let resumed = run(dev.as_ref(), &cfg, &data, &a, true, true).unwrap();
    assert_eq!(
        resumed["widths"][0]["marker"], "kept from the checkpoint",
        "a finished point was recomputed"
    );
    assert_eq!(
        resumed["widths"][2], full["widths"][2],
        "the recomputed point differs"
    );
    assert_eq!(resumed["slopes"], full["slopes"]);

    // Resuming with another configuration is refused.
    let other = CompareConfig {
        steps: cfg.steps + 1,
        ..cfg.clone()
    };
    let err = run(dev.as_ref(), &other, &data, &a, true, true).unwrap_err();
    assert!(err.to_string().contains("another configuration"), "{err}");

    // Interrupted after the first width: a partial report, the error says where.
    let b = OutDir::create(Some(&base.join("b")), "compare").unwrap();
    std::fs::create_dir_all(b.file("points")).unwrap();
    std::fs::copy(
        a.file("points").join("config.json"),
        b.file("points").join("config.json"),
    )
    .unwrap();
    let first = cfg.widths[0];
    std::fs::write(
        b.file("points").join(format!("width-{first}.json")),
        serde_json::to_string(&full["widths"][0]).unwrap(),
    )
    .unwrap();
    request_interrupt();
    let err = run(dev.as_ref(), &cfg, &data, &b, true, true).unwrap_err();
    assert!(matches!(err, Error::Interrupted(_)), "{err}");
    let partial: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.file("report.json")).unwrap()).unwrap();
    assert_eq!(partial["interrupted"], true);
    assert_eq!(partial["widths"].as_array().unwrap().len(), 1);
    assert!(b.file("report.md").exists());
}
