//! What the tests and benchmarks of every crate of the workspace share: the real peers they
//! drive (and the line that names a missing one), ports for child processes, sinks that store
//! what an exporter sent for the official decoders, certificates, a browser, instruction
//! counts. Not published.

// tokio leaves its network out when built for loom models (`--cfg loom`).
#[cfg(not(loom))]
pub mod h2;
pub mod icount;
pub mod otlp;
pub mod otlp_grpc;
pub mod peers;
pub mod pki;
pub mod ports;
pub mod py_sink;
pub mod rotel;
pub mod sink;
pub mod totals;
pub mod webdriver;

/// The folder of the scripts beside this crate's sources (`otlp_grpc_sink.py`, ...).
pub fn scripts() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}
