//! criterion benchmark of the batched f32 matrix product on the default device,
//! against the CPU reference backend as a same-run reference for small sizes.
//! Run: `cargo bench --bench matmul`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use widenet::DeviceChoice;
use widenet::backend::Matmul;

fn bench(c: &mut Criterion) {
    let dev = widenet::open(&DeviceChoice::Auto).expect("open device");
    let mut group = c.benchmark_group(format!("matmul/{}", dev.info().name));
    group.sample_size(10);
    for &s in &[256usize, 512, 1024] {
        let mut rng = widenet::rng::Rng::new(1);
        let a = dev.upload(&rng.normals_f32(s * s)).expect("upload");
        let b = dev.upload(&rng.normals_f32(s * s)).expect("upload");
        let mut out = dev.zeros(s * s).expect("alloc");
        let spec = Matmul::new(s, s, s);
        group.throughput(Throughput::Elements((2 * s * s * s) as u64));
        group.bench_with_input(BenchmarkId::new("nn", s), &s, |bch, _| {
            bch.iter(|| {
                dev.matmul(&spec, &a, &b, &mut out).expect("matmul");
                dev.sync().expect("sync");
            })
        });
        let spec_t = Matmul::new(s, s, s).trans(false, true);
        group.bench_with_input(BenchmarkId::new("nt", s), &s, |bch, _| {
            bch.iter(|| {
                dev.matmul(&spec_t, &a, &b, &mut out).expect("matmul");
                dev.sync().expect("sync");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
