//! The `widenet` command line: argument definitions and the subcommands
//! (`cli/`), on top of the library, which knows nothing of it.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_headless_drivers();
    env_logger::Builder::from_env(env_logger::Env::default().filter_or("WIDENET_LOG", "warn"))
        .init();
    cli::run()
}

/// Mesa prints "XDG_RUNTIME_DIR is invalid or not set" on every start of a
/// headless process; point the variable at a private folder when it is unset.
fn quiet_headless_drivers() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("widenet-runtime-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}
