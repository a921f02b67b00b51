//! The two costs of a learning curve's spectrum, and how they grow with the
//! pool size M: the pool's kernel on the default device (f32, tiled) and its
//! eigendecomposition in f64 (faer, eigenvectors included, then the target's
//! weights), on the default `learning-curves` task (sphere in R^3, the
//! default architecture). The
//! growth is the log-log slope between successive sizes (theory: 2 for the
//! kernel, 3 for the eigendecomposition), and the eigendecomposition is
//! quoted as a ratio to the kernel of the same size, measured in the same run.
//! Sizes up to 2048 are timed three times (median), larger ones once.
//! Run: `cargo bench --bench spectrum [-- 512,1024,2048,4096]`.

use std::time::Instant;
use widenet::experiments::learning_curves::{LearningCurvesConfig, spectrum::pool_spectrum};
use widenet::experiments::task::Task;
use widenet::kernel::{Want, kernels_device};
use widenet::stats::median;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_else(|| vec![512, 1024, 2048, 4096]);
    let dev = widenet::open(&widenet::DeviceChoice::Auto).expect("open device");
    let cfg = LearningCurvesConfig::default();
    println!("device: {}", dev.describe());
    println!("| M | kernel (s) | eigendecomposition (s) | eigen / kernel |");
    println!("|---|---|---|---|");
    let mut rows = Vec::new();
    for &m in &sizes {
        let task = Task::build(&cfg.source, m, 1, 0).expect("task");
        let (mut tk, mut te) = (Vec::new(), Vec::new());
        for _ in 0..if m <= 2048 { 3 } else { 1 } {
            let t = Instant::now();
            let k = kernels_device(
                dev.as_ref(),
                &cfg.arch,
                &task.pool_x,
                None,
                Want::NTK,
                |_, _| {},
            )
            .expect("kernel")
            .ntk
            .expect("ntk");
            tk.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let (ev, _) = pool_spectrum(&k, &task.pool_y).expect("spectrum");
            te.push(t.elapsed().as_secs_f64());
            assert!(ev[0] > 0.0);
        }
        let (k, e) = (median(tk), median(te));
        println!("| {m} | {k:.3} | {e:.3} | {:.1} |", e / k);
        rows.push((m as f64, k, e));
    }
    for w in rows.windows(2) {
        let g = (w[1].0 / w[0].0).ln();
        println!(
            "growth {} -> {}: kernel M^{:.2}, eigendecomposition M^{:.2}",
            w[0].0,
            w[1].0,
            (w[1].1 / w[0].1).ln() / g,
            (w[1].2 / w[0].2).ln() / g
        );
    }
}
