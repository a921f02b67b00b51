//! What identifies the CPU backend's measured product rate in the cache:
//! the CPU model and the threads it runs on (the rate itself is
//! [`crate::rate`]'s, cached by [`crate::device::cpu_rate`]).

/// The CPU's model name (`/proc/cpuinfo` on Linux), else its architecture.
pub fn cpu_model() -> String {
    static MODEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find(|l| l.starts_with("model name"))
                        .and_then(|l| l.split_once(':'))
                        .map(|(_, v)| v.trim().to_string())
                })
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| std::env::consts::ARCH.to_string())
        })
        .clone()
}

/// The cache key of the CPU backend: the CPU model, the threads it runs on,
/// and this version of widenet.
pub fn key() -> String {
    format!(
        "cpu | {} | {} threads | widenet {}",
        cpu_model(),
        rayon::current_num_threads(),
        env!("CARGO_PKG_VERSION")
    )
}
