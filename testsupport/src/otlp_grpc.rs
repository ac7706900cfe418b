//! The OTLP/gRPC sink of the tests (`otlp_grpc_sink.py`: grpcio with the official OTLP service
//! classes), started with its arguments.

use crate::py_sink::PySink;
use std::ffi::OsStr;

/// Whether the sink's Python packages are there (one line naming them when not).
pub fn have_peers() -> bool {
    crate::peers::have_python(
        &[
            "grpc",
            "grpc_status",
            "opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc",
        ],
        "grpcio, grpcio-status and opentelemetry-proto (pip)",
    )
}

/// Starts the sink with `args` (see the script: `--tls`, `--client-ca`, `--push-back`).
pub fn sink<S: AsRef<OsStr>>(args: &[S]) -> PySink {
    let args: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    PySink::start("otlp_grpc_sink.py", &args)
}
