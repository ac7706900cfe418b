//! Examples live under `examples/`; this is what they share.

/// Sends log lines (the program's own, and the libraries': a collector that fails, a listener
/// out of file descriptors) to stderr, warnings and errors unless `RUST_LOG` says otherwise,
/// each written inside a call with its `trace_id` and `span_id`; through monkit's `log`
/// bridge, so info records also become events of recorded spans and go out over OTLP when
/// `OTEL_EXPORTER_OTLP_*` asks (`monkit_otlp::LogsBuilder::from_env`).
pub fn init_logging() {
    let stderr =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).build();
    // Info at least: the spans' events and the OTLP logs take what stderr leaves out.
    let level = stderr.filter().max(log::LevelFilter::Info);
    let _ = monkit::bridge::LogBridge::new(stderr)
        .max_level(level)
        .install();
}

/// Starts what the environment asks for: `None` when `from_env` found nothing to do, the
/// started thing otherwise, and on any configuration or start error a line on stderr
/// naming `program`, and exit status 2 (a service with a bad setting should not half-start).
pub fn start_from_env<B, T, E: std::fmt::Display>(
    program: &str,
    what: &str,
    from_env: Option<Result<B, E>>,
    start: impl FnOnce(B) -> Result<T, E>,
) -> Option<T> {
    let started = from_env?.and_then(start).unwrap_or_else(|e| {
        eprintln!("{program}: {e}");
        std::process::exit(2)
    });
    println!("{program}: {what}");
    Some(started)
}

/// The address variable `var` names (`host:port`), `default` when unset; on a bad value a
/// line on stderr naming `program` and the variable, and exit status 2.
pub fn addr_from_env(program: &str, var: &str, default: &str) -> std::net::SocketAddr {
    let vars = monkit::settings::Vars::env();
    let v = vars.string(var).unwrap_or_else(|| default.to_owned());
    v.trim().parse().unwrap_or_else(|_| {
        let e = monkit::settings::ConfigError::new(var, v, "an address such as 127.0.0.1:8080");
        eprintln!("{program}: {e}");
        std::process::exit(2)
    })
}
