//! Error kinds of types a program cannot implement `ErrorKind` on: io errors by their kind,
//! boxed and chained errors by what they hold, kind handlers, and the type name last.

#[cfg(feature = "reqwest")]
use monkit_testsupport::ports;

use monkit::stats::add_error_kind_handler;
use std::io;

#[derive(Debug)]
struct Wrapper(io::Error);
impl std::fmt::Display for Wrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("wrapped")
    }
}
impl std::error::Error for Wrapper {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[derive(Debug)]
struct Unknown;
impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unknown")
    }
}
impl std::error::Error for Unknown {}

#[derive(Debug)]
struct Coded(u16);
impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code {}", self.0)
    }
}
impl std::error::Error for Coded {}

#[monkit::task]
fn io_fail() -> Result<(), io::Error> {
    Err(io::Error::from(io::ErrorKind::ConnectionRefused))
}

#[monkit::task]
fn boxed_fail() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err(Box::new(io::Error::from(io::ErrorKind::TimedOut)))
}

#[monkit::task]
fn chained_fail() -> Result<(), Wrapper> {
    Err(Wrapper(io::Error::from(io::ErrorKind::NotFound)))
}

#[monkit::task]
fn unknown_fail() -> Result<(), Unknown> {
    Err(Unknown)
}

#[monkit::task]
fn coded_fail() -> Result<(), Coded> {
    Err(Coded(503))
}

/// With no feature of monkit's: `anyhow::Error` derefs to `dyn Error`, and its chain names it.
#[monkit::task]
fn anyhow_fail() -> anyhow::Result<()> {
    Err(anyhow::Error::new(io::Error::from(io::ErrorKind::PermissionDenied)).context("opening"))
}

fn kinds(name: &str) -> Vec<(&'static str, u64)> {
    monkit::default_registry()
        .funcs()
        .into_iter()
        .find(|f| f.name() == name)
        .unwrap()
        .stats()
        .errors
}

#[test]
fn foreign_errors_are_named_by_what_they_are() {
    add_error_kind_handler(|e| {
        e.downcast_ref::<Coded>().map(|c| {
            if c.0 >= 500 {
                "server_error"
            } else {
                "client_error"
            }
        })
    });
    let _ = io_fail();
    let _ = boxed_fail();
    let _ = chained_fail();
    let _ = unknown_fail();
    let _ = coded_fail();
    assert_eq!(kinds("io_fail"), vec![("connection_refused", 1)]);
    assert_eq!(kinds("boxed_fail"), vec![("timed_out", 1)]);
    assert_eq!(kinds("chained_fail"), vec![("not_found", 1)]);
    assert_eq!(kinds("unknown_fail"), vec![("Unknown", 1)]);
    assert_eq!(kinds("coded_fail"), vec![("server_error", 1)]);
    {
        let _ = anyhow_fail();
        assert_eq!(kinds("anyhow_fail"), vec![("permission_denied", 1)]);
    }
}

#[cfg(feature = "tonic")]
#[monkit::task]
fn grpc_fail() -> Result<(), tonic::Status> {
    Err(tonic::Status::unavailable("the worker is gone"))
}

#[cfg(feature = "reqwest")]
#[monkit::task]
async fn fetch_closed(url: &str) -> Result<String, reqwest::Error> {
    reqwest::get(url).await?.text().await
}

#[cfg(feature = "tonic")]
#[test]
fn grpc_statuses_by_their_code() {
    let _ = grpc_fail();
    assert_eq!(kinds("grpc_fail"), vec![("unavailable", 1)]);
}

#[cfg(feature = "reqwest")]
#[test]
fn reqwest_errors_by_their_cause() {
    // A port nobody listens on: the connection is refused.
    let port = ports::free_port();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(fetch_closed(&format!("http://127.0.0.1:{port}/")));
    assert!(r.is_err());
    assert_eq!(kinds("fetch_closed"), vec![("connect", 1)]);
}

/// A crate's error called just `Error` is named by its path: `Error` alone says nothing.
#[monkit::task]
fn json_fail() -> Result<u32, serde_json::Error> {
    serde_json::from_str("{")
}

#[test]
fn an_error_called_error_is_named_by_its_path() {
    let _ = json_fail();
    assert_eq!(kinds("json_fail"), vec![("serde_json::error::Error", 1)]);
}

#[cfg(feature = "tokio")]
#[monkit::task]
async fn too_slow() -> Result<(), tokio::time::error::Elapsed> {
    let never = std::future::pending::<()>();
    tokio::time::timeout(std::time::Duration::from_millis(1), never).await
}

#[cfg(feature = "tokio")]
#[monkit::task]
async fn joined(panics: bool) -> Result<(), tokio::task::JoinError> {
    let task = tokio::spawn(async move {
        assert!(!panics, "the spawned task fails");
        std::future::pending::<()>().await
    });
    if !panics {
        task.abort();
    }
    task.await
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_timeouts_and_join_errors_by_what_happened() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(too_slow().await.is_err());
        assert!(joined(true).await.unwrap_err().is_panic());
        assert!(joined(false).await.unwrap_err().is_cancelled());
    });
    assert_eq!(kinds("too_slow"), vec![("timeout", 1)]);
    let mut j = kinds("joined");
    j.sort();
    assert_eq!(j, vec![("canceled", 1), ("panic", 1)]);
}

/// An error of a tuple, as axum handlers return `(StatusCode, String)`: named by its first
/// element.
#[monkit::task]
fn tuple_fail() -> Result<(), (std::num::ParseIntError, String)> {
    let e = "x".parse::<u8>().unwrap_err();
    Err((e, "not a number".into()))
}

#[test]
fn a_tuple_error_is_named_by_its_first_element() {
    let _ = tuple_fail();
    assert_eq!(kinds("tuple_fail"), vec![("ParseIntError", 1)]);
}
