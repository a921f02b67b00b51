//! criterion benchmark of the infinite-width kernels on the default device:
//! one tile pass (the Gram block and the whole layer recursion per entry,
//! `Backend::kernel_tile`), and the end-to-end NTK of a set with itself (tiles,
//! readback, placement in host memory), against the CPU backend's f64 kernels
//! on a smaller set as a same-run reference. Throughput is in kernel entries.
//! Run: `cargo bench --bench ntk`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use widenet::backend::{DIAG_CAPACITY, KernelTile, tile_side};
use widenet::kernel::{Want, kernels_device, kernels_f64};
use widenet::matrix::Matrix;
use widenet::{Arch, DeviceChoice, Mlp};

const D: usize = 64;
const DEPTH: usize = 3;

fn arch() -> Arch {
    Arch::mlp(&Mlp {
        depth: DEPTH,
        ..Mlp::default()
    })
}

fn points(n: usize) -> Matrix<f32> {
    let mut rng = widenet::rng::Rng::new(2);
    Matrix::from_vec(n, D, rng.normals_f32(n * D)).expect("points")
}

fn bench(c: &mut Criterion) {
    let dev = widenet::open(&DeviceChoice::Auto).expect("open device");
    let arch = arch();
    let mut g = c.benchmark_group(format!("ntk/{}", dev.info().name));
    g.sample_size(10);

    // One off-diagonal tile: rows and columns of different points.
    let program = arch.kernel_program(D).expect("program");
    let side = tile_side(program.slots);
    let x = points(2 * side);
    let x1 = dev.upload(&x.data()[..side * D]).expect("upload");
    let mut x2t = vec![0.0f32; D * side];
    for j in 0..side {
        for f in 0..D {
            x2t[f * side + j] = x.data()[(side + j) * D + f];
        }
    }
    let x2t = dev.upload(&x2t).expect("upload");
    let tile = KernelTile {
        program: &program,
        rows: side,
        cols: side,
        k: D,
        same_diag: false,
        want: Want::NTK,
    };
    let mut table = vec![0.0f32; DIAG_CAPACITY];
    for (l, layer) in table
        .chunks_mut(tile.table_stride())
        .take(DEPTH)
        .enumerate()
    {
        for (v, i) in layer.iter_mut().zip(0..) {
            let row = &x.data()[i * D..(i + 1) * D];
            let c0 = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / D as f64;
            *v = program.variances(c0)[l] as f32;
        }
    }
    let diag = dev.upload(&table).expect("upload");
    let mut nngp = dev.zeros(side * side).expect("alloc");
    let mut ntk = dev.zeros(side * side).expect("alloc");
    g.throughput(Throughput::Elements((side * side) as u64));
    g.bench_with_input(BenchmarkId::new("tile", side), &side, |b, _| {
        b.iter(|| {
            dev.kernel_tile(&tile, &x1, &x2t, &diag, &mut nngp, &mut ntk)
                .expect("tile");
            dev.sync().expect("sync");
        })
    });

    for n in [1000usize, 2000] {
        let x = points(n);
        g.throughput(Throughput::Elements((n * n) as u64));
        g.bench_with_input(BenchmarkId::new("end_to_end", n), &n, |b, _| {
            b.iter(|| {
                kernels_device(dev.as_ref(), &arch, &x, None, Want::NTK, |_, _| {}).expect("ntk")
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("ntk/cpu-f64");
    g.sample_size(10);
    let n = 200;
    let x = points(n);
    let x64 = Matrix::from_vec(n, D, x.data().iter().map(|&v| v as f64).collect()).expect("x");
    g.throughput(Throughput::Elements((n * n) as u64));
    g.bench_with_input(BenchmarkId::new("end_to_end", n), &n, |b, _| {
        b.iter(|| kernels_f64(&arch, &x64, None, Want::NTK).expect("ntk"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
