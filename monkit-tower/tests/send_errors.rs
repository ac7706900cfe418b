//! `ClientLayer::send` takes the error types real senders return, and still names each
//! failure's kind and keeps its text on the recorded span.

mod common;

use common::func;
use monkit::Registry;
use std::io;

/// Sends one request through `layer` whose sender fails with `e`; the function's errors.
async fn fail_with<E: std::fmt::Display + 'static>(
    reg: &Registry,
    e: E,
) -> Vec<(&'static str, u64)> {
    let layer = monkit_tower::ClientLayer::new(reg);
    let req = http::Request::get("http://peer.test/x").body(()).unwrap();
    let out: Result<http::Response<()>, E> = layer.send(req, |_| async move { Err(e) }).await;
    assert!(out.is_err());
    func(reg, "http_client", "GET peer.test")
        .unwrap()
        .stats()
        .errors
}

#[tokio::test]
async fn boxed_errors_are_named_by_their_chain() {
    let reg = Registry::new();
    let e: Box<dyn std::error::Error + Send + Sync> =
        Box::new(io::Error::from(io::ErrorKind::ConnectionRefused));
    assert_eq!(fail_with(&reg, e).await, vec![("connection_refused", 1)]);
}

#[tokio::test]
async fn a_string_is_an_error_with_its_text() {
    let reg = Registry::new();
    assert_eq!(
        fail_with(&reg, String::from("no route to peer")).await,
        vec![("error", 1)]
    );
    let reg = Registry::new();
    assert_eq!(fail_with(&reg, "refused").await, vec![("error", 1)]);
}

#[tokio::test]
async fn anyhow_is_named_by_its_type_and_by_its_chain_once_viewed() {
    let reg = Registry::new();
    let e = anyhow::Error::new(io::Error::from(io::ErrorKind::TimedOut)).context("calling peer");
    let by_type = fail_with(&reg, e).await;
    assert_eq!(by_type.len(), 1);
    assert_ne!(by_type[0].0, "timed_out", "{by_type:?}");
    monkit::stats::add_error_view::<anyhow::Error>(|e| e.as_ref());
    let reg = Registry::new();
    let e = anyhow::Error::new(io::Error::from(io::ErrorKind::TimedOut)).context("calling peer");
    assert_eq!(fail_with(&reg, e).await, vec![("timed_out", 1)]);
}

#[tokio::test]
async fn a_plain_io_error_still_reads_its_kind() {
    let reg = Registry::new();
    assert_eq!(
        fail_with(&reg, io::Error::from(io::ErrorKind::ConnectionReset)).await,
        vec![("connection_reset", 1)]
    );
}
