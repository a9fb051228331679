//! Helpers shared by the coordinator's integration tests: an executor and client settings.
#![allow(dead_code)]

use coord::client::ClientConfig;
use glommio::{LocalExecutorBuilder, Placement};

/// Runs `f` on a fresh glommio executor with 1 MiB of io memory (the default memlock limit is
/// 8 MiB), and waits for it.
pub fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1024 * 1024)
        .spawn(f)
        .expect("spawn executor")
        .join()
        .expect("executor panicked");
}

/// A client configuration for one server with the given session timeout.
pub fn cfg(addr: &str, session_ms: u64) -> ClientConfig {
    let mut c = ClientConfig::new(vec![addr.to_string()]);
    c.session_timeout_ms = session_ms;
    c.request_timeout_ms = 5_000;
    c
}
