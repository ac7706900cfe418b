//! monkit for the stacks Rust services run on: tower layers that make every request one call
//! of a monkit function, with the caller's trace continued and the callee's injected.
//!
//! | | server | client |
//! |---|---|---|
//! | HTTP (axum, hyper, anything tower) | [`ServerLayer`]: `METHOD route` in `http_server` | [`ClientLayer`]: `METHOD host` in `http_client` |
//! | gRPC (tonic), feature `grpc` | `GrpcServerLayer`: `package.Service/Method` in `grpc_server` | `GrpcClientLayer`: the same in `grpc_client` |
//! | reqwest, feature `reqwest` | | `ReqwestMiddleware` |
//!
//! ```
//! use axum::{routing::get, Router};
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "ann" }))
//!     .layer(monkit_tower::ServerLayer::new(monkit::default_registry()));
//! # let _ = app;
//! ```
//!
//! Every layer names its functions from a bounded set (route templates, standard methods,
//! gRPC method names, capped per scope), so what clients send cannot grow the function table.
//! Trace context is W3C Trace Context (`traceparent`, `tracestate`), W3C Baggage and B3, read
//! and written through [`monkit::propagation`], which also carries it in gRPC metadata
//! (`tonic::metadata::MetadataMap`, feature `grpc`).
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod client;
#[cfg(feature = "grpc")]
mod grpc;
mod names;
#[cfg(feature = "reqwest")]
mod reqwest;
mod server;

/// Polls `inner` with `call`'s span current (as is, when the call has ended): what every
/// layer's future does on each poll.
fn poll_entered<F: std::future::Future>(
    call: &mut Option<monkit::OpenCall>,
    inner: std::pin::Pin<&mut F>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<F::Output> {
    match call.as_mut() {
        Some(c) => c.enter(|| inner.poll(cx)),
        None => inner.poll(cx),
    }
}

pub use client::{BoxError, ClientFuture, ClientLayer, ClientRoute, ClientService};
#[cfg(feature = "grpc")]
pub use grpc::{
    grpc_method, GrpcBody, GrpcClientLayer, GrpcClientService, GrpcFuture, GrpcServerLayer,
    GrpcServerService,
};
pub use names::{default_route, method_name, MAX_NAMES};
#[cfg(feature = "reqwest")]
pub use reqwest::ReqwestMiddleware;
pub use server::{ServerFuture, ServerLayer, ServerService};
