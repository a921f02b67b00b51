//! criterion benchmark of one full-batch training step (forward, MSE loss,
//! backward, SGD update, all on the device) of an MLP ensemble on the default
//! device: one member alone, the same member batched 16 at a time, and the
//! CPU reference backend on the one-member step as a same-run reference.
//! Throughput is in members per step, so members per second compare directly.
//! Run: `cargo bench --bench train_step`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use widenet::backend::{Loss, Rule};
use widenet::matrix::Matrix;
use widenet::net::ensemble::Ensemble;
use widenet::net::params::Params;
use widenet::net::train::{Schedule, TrainConfig, Trainer};
use widenet::net::{MlpSpec, NetSpec};
use widenet::{Activation, Backend, DeviceChoice, Parameterization};

const WIDTH: usize = 256;
const DEPTH: usize = 3;
const POINTS: usize = 256;
const D_IN: usize = 16;

fn spec(ensemble: usize) -> NetSpec {
    MlpSpec {
        d_in: D_IN,
        width: WIDTH,
        depth: DEPTH,
        d_out: 1,
        activation: Activation::RELU,
        parameterization: Parameterization::Ntk,
        w_std: 1.4,
        b_std: 0.1,
        base_width: WIDTH,
        ensemble,
    }
    .net()
}

fn cfg() -> TrainConfig {
    TrainConfig {
        rule: Rule::Sgd,
        lr: vec![1e-3],
        steps: usize::MAX / 2,
        batch_size: None,
        loss: Loss::Mse,
        schedule: Schedule::Constant,
        log_every: usize::MAX / 2,
        seed: 0,
    }
}

fn step(c: &mut Criterion, group: &str, dev: &dyn Backend, members: &[usize]) {
    let mut rng = widenet::rng::Rng::new(3);
    let x = Matrix::from_vec(POINTS, D_IN, rng.normals_f32(POINTS * D_IN)).expect("x");
    let y = Matrix::from_vec(POINTS, 1, rng.normals_f32(POINTS)).expect("y");
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    for &e in members {
        let params = Params::init(&spec(e), 1).expect("init");
        let mut ens = Ensemble::new(dev, &params).expect("ensemble");
        let mut t = Trainer::new(&mut ens, &x, &y, &cfg()).expect("trainer");
        t.step().expect("warm-up step");
        dev.sync().expect("sync");
        g.throughput(Throughput::Elements(e as u64));
        g.bench_with_input(BenchmarkId::new("members", e), &e, |b, _| {
            b.iter(|| {
                t.step().expect("step");
                dev.sync().expect("sync");
            })
        });
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    let dev = widenet::open(&DeviceChoice::Auto).expect("open device");
    let name = format!("train_step/{}", dev.info().name);
    step(c, &name, dev.as_ref(), &[1, 16]);
    let cpu = widenet::cpu::CpuBackend;
    step(c, "train_step/cpu", &cpu, &[1]);
}

criterion_group!(benches, bench);
criterion_main!(benches);
