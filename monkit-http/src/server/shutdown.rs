//! Leaving with nothing lost: wait for the signal a service manager sends, then send what
//! every exporter and push reporter still holds before the program exits.

use std::time::Duration;

/// Waits for SIGTERM or SIGINT (Ctrl-C), then sends what every installed exporter and push
/// reporter holds and stops them ([`monkit::export::shutdown_all`]), all within one
/// `MONKIT_SHUTDOWN_TIMEOUT` (5 s by default) however many there are and however dead their
/// collectors, and returns, for the program to exit; their handles' drops then return at once.
/// A second signal while it flushes exits the process at once (status 130). Spans finished
/// before the signal are sent.
///
/// ```no_run
/// # async fn serve() {}
/// # async fn demo() {
/// tokio::select! {
///     _ = serve() => {}
///     _ = monkit_http::until_shutdown() => {}
/// }
/// # }
/// ```
pub async fn until_shutdown() {
    first_signal().await;
    // From here a second signal means "now".
    tokio::spawn(async {
        first_signal().await;
        std::process::exit(130);
    });
    let vars = monkit::settings::Vars::env();
    let timeout = monkit::export::shutdown_timeout(&vars).unwrap_or_else(|e| {
        log::warn!("monkit-http: {e}; flushing for 5 s");
        Duration::from_secs(5)
    });
    let done = tokio::task::spawn_blocking(move || monkit::export::shutdown_all(timeout))
        .await
        .unwrap_or(false);
    if !done {
        log::warn!("monkit-http: shutdown: not everything was sent within {timeout:?}");
    }
}

#[cfg(unix)]
async fn first_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn first_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
