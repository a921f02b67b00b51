//! `widenet._native.cli_main(argv)`: the `widenet` command line, run in
//! this process, for the console script `widenet` of the Python package.

use pyo3::prelude::*;

/// Runs the command line `argv` (the program's name first) as the
/// `widenet` binary would and returns its exit status. The interpreter's
/// lock is released meanwhile; clap's own exits (`--help`, a misspelt flag)
/// end the process as the binary's do.
#[pyfunction]
pub fn cli_main(py: Python<'_>, argv: Vec<String>) -> u8 {
    // The binary's logger: warnings by default, `WIDENET_LOG` to change it.
    let _ =
        env_logger::Builder::from_env(env_logger::Env::default().filter_or("WIDENET_LOG", "warn"))
            .try_init();
    py.detach(|| super::cli::run_with(argv))
}
