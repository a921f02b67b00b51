use widenet::activation::Activation;
use widenet::chaos::{self, Axis};
fn main() {
    let dev = widenet::open(&widenet::DeviceChoice::Gpu(None)).unwrap();
    let sw2 = Axis {
        lo: 0.5,
        hi: 4.0,
        n: 128,
    };
    let sb2 = Axis {
        lo: 0.0,
        hi: 0.5,
        n: 128,
    };
    for act in [
        Activation::Tanh,
        Activation::Erf {
            a: 1.0,
            b: 1.0,
            c: 0.0,
        },
    ] {
        for quad in [false, true] {
            let _ = chaos::theory_grid(
                dev.as_ref(),
                act,
                quad,
                120,
                &Axis {
                    lo: 0.5,
                    hi: 4.0,
                    n: 2,
                },
                &Axis {
                    lo: 0.0,
                    hi: 0.5,
                    n: 2,
                },
            )
            .unwrap();
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t = std::time::Instant::now();
                let _g = chaos::theory_grid(dev.as_ref(), act, quad, 120, &sw2, &sb2).unwrap();
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!("{act} quad {quad} grid min of 3 {best:.3} s");
        }
    }
}
