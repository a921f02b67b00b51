//! widenet trains wide neural networks with WGSL compute shaders through
//! wgpu, on any GPU (and on the CPU), and compares them with their
//! infinite-width limits, the NNGP and the NTK, with exactly the conventions
//! of neural-tangents.
//!
//! The library in five steps:
//!
//! 1. **Open a device** with [`open`]: a [`Backend`] on a wgpu adapter or the CPU.
//! 2. **Describe a network** as an [`Arch`]: neural-tangents' `stax` layers
//!    (Dense, nonlinearities, Residual, LayerNorm), from JSON, a short string
//!    or the [`Mlp`] shorthand.
//! 3. **Compute its infinite-width kernels** with [`kernels_f64`] (exact,
//!    f64) or [`kernels_device`] (f32, tiled, any number of points), and
//!    **predict** with [`predict`].
//! 4. **Build and train a finite ensemble** of the same architecture:
//!    [`Params::init`], [`Ensemble`], [`train`].
//! 5. **Read results** back: parameters, losses, empirical kernels
//!    ([`net::empirical`]).
//!
//! ```
//! use widenet::prelude::*;
//!
//! let dev = widenet::open(&DeviceChoice::Cpu)?;
//! let arch = Arch::parse("Dense(256, W_std=1.5, b_std=0.1), Relu, Dense(1)")?;
//! let x = Matrix::from_vec(4, 3, (0..12).map(|v| v as f32 / 6.0 - 1.0).collect())?;
//! let y = Matrix::from_vec(4, 1, vec![0.5, -0.2, 0.1, 0.3])?;
//!
//! // The infinite-width NTK of the training points, on the device.
//! let k = widenet::kernels_device(dev.as_ref(), &arch, &x, None, Want::NTK, |_, _| {})?;
//! let ntk = k.ntk.expect("asked for");
//! assert!(ntk.at(0, 0) > 0.0);
//!
//! // Eight networks of that architecture, trained together by gradient descent.
//! let spec = NetSpec { arch, d_in: 3, ensemble: 8, parameterization: None, base_width: 64 };
//! let mut ens = Ensemble::new(dev.as_ref(), &Params::init(&spec, 0)?)?;
//! let log = widenet::train(&mut ens, &x, &y, &TrainConfig::gd(0.5, 50), |_, _| {})?;
//! assert!(log.final_loss.iter().all(|l| *l < 0.05));
//! # Ok::<(), widenet::Error>(())
//! ```
#![warn(missing_docs)]

pub mod activation;
pub mod arch;
pub mod atomic;
pub mod backend;
pub mod chaos;
pub mod cpu;
pub mod device;
pub mod eigenlearning;
pub mod error;
#[cfg(feature = "experiments")]
pub mod experiments;
pub mod gpu;
pub mod kernel;
pub mod matrix;
pub mod net;
pub mod npy;
pub mod npy_rows;
pub mod predict;
pub mod quadrature;
pub mod rate;
pub mod rng;
pub mod stats;

#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod testing;

pub use activation::Activation;
pub use arch::{Arch, Mlp, Parameterization};
pub use backend::{Backend, DeviceChoice, DeviceInfo};
pub use device::{AutoChoice, open, open_auto, open_with};
pub use error::{Error, Result};
pub use gpu::GpuOptions;
pub use kernel::{Kernels, Want, kernels_device, kernels_f64};
pub use matrix::Matrix;
pub use net::train::{TrainConfig, TrainLog, train};
pub use net::{Ensemble, NetSpec, Params};

/// The names most programs use.
pub mod prelude {
    pub use crate::activation::Activation;
    pub use crate::arch::{Arch, Mlp, Parameterization};
    pub use crate::backend::{Backend, DeviceChoice};
    pub use crate::kernel::{Want, kernels_device, kernels_f64};
    pub use crate::matrix::Matrix;
    pub use crate::net::train::{TrainConfig, train};
    pub use crate::net::{Ensemble, NetSpec, Params};
    pub use crate::{Error, Result};
}

/// The README's Rust code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
