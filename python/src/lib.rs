//! The native half of the `widenet` Python package: a thin layer over the
//! widenet library that converts numpy arrays, releases the GIL around real
//! work (on a worker thread, so that Ctrl-C reaches the interpreter) and maps
//! the library's errors onto Python exceptions in one place ([`errors`]).
//! The Python half (`widenet/`) gives it neural-tangents' names.

mod arrays;
/// The `widenet` command line itself (the binary's `src/cli/`, compiled into
/// the native module), so that `pip install` puts a `widenet` command on the
/// PATH that runs in-process: [`command::cli_main`].
#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../src/cli/mod.rs"]
mod cli;
mod command;
mod detach;
mod device;
mod errors;
mod experiments;
mod kernels;
mod nets;
mod peer;

use pyo3::prelude::*;

/// The module `widenet._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(device::devices, m)?)?;
    m.add_function(wrap_pyfunction!(device::device_info, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::check_arch, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::kernel_f64, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::kernel_f32, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::predict, m)?)?;
    m.add_function(wrap_pyfunction!(nets::init, m)?)?;
    m.add_function(wrap_pyfunction!(nets::forward, m)?)?;
    m.add_function(wrap_pyfunction!(nets::train, m)?)?;
    m.add_function(wrap_pyfunction!(nets::empirical, m)?)?;
    m.add_function(wrap_pyfunction!(nets::save, m)?)?;
    m.add_function(wrap_pyfunction!(nets::load, m)?)?;
    m.add_function(wrap_pyfunction!(experiments::experiment, m)?)?;
    m.add_function(wrap_pyfunction!(arrays::last_input_address, m)?)?;
    m.add_function(wrap_pyfunction!(errors::raise_library_error, m)?)?;
    m.add_function(wrap_pyfunction!(peer::bench_kernel_rust, m)?)?;
    m.add_function(wrap_pyfunction!(peer::bench_train_rust, m)?)?;
    m.add_function(wrap_pyfunction!(command::cli_main, m)?)?;
    Ok(())
}
