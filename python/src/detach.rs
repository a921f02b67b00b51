//! Running library work without the GIL, interruptibly. The work runs on a
//! worker thread; the calling thread waits for it with the GIL released and
//! wakes every 50 ms to let Python handle signals. On Ctrl-C it raises the
//! stop flag the work checks between tiles, rows or steps (and, for an
//! experiment, the library's interrupt request), waits for the work to wind
//! down, and raises `KeyboardInterrupt`.

use crate::errors::to_py;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How often the waiting thread looks at Python's signals.
const POLL: Duration = Duration::from_millis(50);

/// Runs `work` off the GIL; `on_interrupt` is called once if the user
/// interrupts (besides setting the stop flag handed to `work`).
pub fn run<T: Send>(
    py: Python<'_>,
    on_interrupt: fn(),
    work: impl FnOnce(&AtomicBool) -> widenet::Result<T> + Send,
) -> PyResult<T> {
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let stop = &stop;
        s.spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(stop)));
            let _ = tx.send(r);
        });
        let mut rx = rx;
        let mut interrupt: Option<PyErr> = None;
        loop {
            let (back, got) = py.detach(move || {
                let got = rx.recv_timeout(POLL);
                (rx, got)
            });
            rx = back;
            match got {
                Ok(Ok(result)) => {
                    return match (interrupt, result) {
                        (None, r) => r.map_err(to_py),
                        // The library's own message (an experiment's partial report) wins.
                        (Some(_), Err(e @ widenet::Error::Interrupted(_))) => Err(to_py(e)),
                        (Some(signal), _) => Err(signal),
                    };
                }
                Ok(Err(panic)) => {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    return Err(PyRuntimeError::new_err(format!(
                        "internal error in widenet (please report it): {what}"
                    )));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if interrupt.is_none() {
                        if let Err(e) = py.check_signals() {
                            stop.store(true, Ordering::Relaxed);
                            on_interrupt();
                            interrupt = Some(e);
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err(
                        "internal error in widenet: the worker ended without a result",
                    ));
                }
            }
        }
    })
}

/// No extra action on interrupt: the stop flag is enough.
pub fn nothing() {}
