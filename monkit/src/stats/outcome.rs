//! How a call ended, and naming errors without allocating.

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Returned successfully.
    Ok,
    /// Returned an error of this kind.
    Error(&'static str),
    /// Panicked (the panic continued to unwind).
    Panic,
    /// A future dropped before it completed.
    Canceled,
}

impl Outcome {
    /// Whether the call failed (error, panic or cancellation).
    pub fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Ok)
    }

    /// What a failure is called where one name is wanted (an exporter's `error` tag): the
    /// error's kind, `panic` or `canceled`; `None` for a success.
    pub fn failure_kind(&self) -> Option<&'static str> {
        match self {
            Outcome::Ok => None,
            Outcome::Error(k) => Some(k),
            Outcome::Panic => Some("panic"),
            Outcome::Canceled => Some("canceled"),
        }
    }
}

/// Names the kind of an error, for the per-kind error counts of a function.
///
/// `#[monkit::task]` functions returning `Result<T, E>` count an `Err` under
/// `E::error_kind()` when `E` implements this trait, and under `E`'s short type name otherwise.
/// Implement it to name enum variants:
///
/// ```
/// enum DbError { NotFound, Timeout }
///
/// impl monkit::ErrorKind for DbError {
///     fn error_kind(&self) -> &'static str {
///         match self {
///             DbError::NotFound => "not_found",
///             DbError::Timeout => "timeout",
///         }
///     }
/// }
/// ```
pub trait ErrorKind {
    /// A short, stable name for this error's kind.
    fn error_kind(&self) -> &'static str;
}

impl ErrorKind for std::io::Error {
    fn error_kind(&self) -> &'static str {
        io_kind(self.kind())
    }
}

/// An `io::ErrorKind` as an error kind: its name in snake case (`not_found`, `timed_out`).
fn io_kind(k: std::io::ErrorKind) -> &'static str {
    use std::io::ErrorKind as K;
    match k {
        K::NotFound => "not_found",
        K::PermissionDenied => "permission_denied",
        K::ConnectionRefused => "connection_refused",
        K::ConnectionReset => "connection_reset",
        K::ConnectionAborted => "connection_aborted",
        K::NotConnected => "not_connected",
        K::AddrInUse => "addr_in_use",
        K::AddrNotAvailable => "addr_not_available",
        K::BrokenPipe => "broken_pipe",
        K::AlreadyExists => "already_exists",
        K::WouldBlock => "would_block",
        K::InvalidInput => "invalid_input",
        K::InvalidData => "invalid_data",
        K::TimedOut => "timed_out",
        K::WriteZero => "write_zero",
        K::Interrupted => "interrupted",
        K::Unsupported => "unsupported",
        K::UnexpectedEof => "unexpected_eof",
        K::OutOfMemory => "out_of_memory",
        _ => "io_error",
    }
}

/// A handler naming the kind of errors of types the program cannot implement [`ErrorKind`]
/// on (another crate's), as Go monkit's `AddErrorNameHandler`: `None` when it does not know
/// the error. See [`add_error_kind_handler`].
pub type KindHandler = fn(&(dyn std::error::Error + 'static)) -> Option<&'static str>;

static HANDLERS: std::sync::RwLock<Vec<KindHandler>> = std::sync::RwLock::new(Vec::new());
static ANY_HANDLER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Adds a handler that names error kinds, consulted for every error whose type has no
/// [`ErrorKind`] impl (and for each error of its source chain), before the built-ins.
///
/// ```
/// #[derive(Debug)]
/// struct Theirs(u16);
/// impl std::fmt::Display for Theirs {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "code {}", self.0) }
/// }
/// impl std::error::Error for Theirs {}
///
/// monkit::stats::add_error_kind_handler(|e| {
///     e.downcast_ref::<Theirs>().map(|t| if t.0 == 404 { "not_found" } else { "theirs" })
/// });
/// #[monkit::task]
/// fn call() -> Result<(), Theirs> { Err(Theirs(404)) }
/// let _ = call();
/// let f = monkit::default_registry().funcs().into_iter().find(|f| f.name().ends_with("call")).unwrap();
/// assert_eq!(f.stats().errors, vec![("not_found", 1)]);
/// ```
pub fn add_error_kind_handler(h: KindHandler) {
    HANDLERS.write().unwrap_or_else(|e| e.into_inner()).push(h);
    ANY_HANDLER.store(true, std::sync::atomic::Ordering::Release);
}

/// The kind of an error whose type has no [`ErrorKind`] impl, looked up in this order, for
/// the error and then each error of its source chain, the first answer winning: the handlers
/// added with [`add_error_kind_handler`] (in the order added), then the built-ins
/// (`std::io::Error` by its `io::ErrorKind`; with features, `hyper::Error` and `reqwest::Error`
/// by their cause, `tonic::Status` by its code, tokio's `Elapsed` as `timeout` and its
/// `JoinError` as `panic` or `canceled`). `None` when nothing knows it (the caller
/// then names it by its type).
pub fn error_kind_of(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut cur = Some(e);
    // A bounded walk: a source chain that loops cannot hang the call.
    for _ in 0..16 {
        let err = cur?;
        if ANY_HANDLER.load(std::sync::atomic::Ordering::Acquire) {
            let handlers = HANDLERS.read().unwrap_or_else(|e| e.into_inner());
            if let Some(k) = handlers.iter().find_map(|h| h(err)) {
                return Some(k);
            }
        }
        if let Some(k) = built_in_kind(err) {
            return Some(k);
        }
        cur = err.source();
    }
    None
}

fn built_in_kind(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return Some(io_kind(io.kind()));
    }
    #[cfg(feature = "hyper")]
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        return Some(if h.is_timeout() {
            "timeout"
        } else if h.is_parse() {
            "parse"
        } else if h.is_incomplete_message() {
            "incomplete_message"
        } else if h.is_canceled() {
            "canceled"
        } else if h.is_closed() {
            "closed"
        } else if h.is_body_write_aborted() {
            "body_write_aborted"
        } else if h.is_user() {
            "user"
        } else {
            "hyper_error"
        });
    }
    #[cfg(feature = "tokio")]
    if e.is::<tokio::time::error::Elapsed>() {
        return Some("timeout");
    }
    #[cfg(feature = "tokio")]
    if let Some(j) = e.downcast_ref::<tokio::task::JoinError>() {
        return Some(if j.is_panic() { "panic" } else { "canceled" });
    }
    #[cfg(feature = "tonic")]
    if let Some(s) = e.downcast_ref::<tonic::Status>() {
        return Some(grpc_kind(s.code()));
    }
    #[cfg(feature = "reqwest")]
    if let Some(r) = e.downcast_ref::<reqwest::Error>() {
        return Some(if r.is_timeout() {
            "timeout"
        } else if r.is_connect() {
            "connect"
        } else if let Some(s) = r.status() {
            match s.as_u16() {
                400..=499 => "http_4xx",
                _ => "http_5xx",
            }
        } else if r.is_redirect() {
            "redirect"
        } else if r.is_body() {
            "body"
        } else if r.is_decode() {
            "decode"
        } else if r.is_builder() {
            "builder"
        } else {
            "request"
        });
    }
    None
}

/// A gRPC status code as an error kind: its name in snake case (`5` is `not_found`, `14`
/// `unavailable`); a code outside the 17 the protocol defines is `unknown`, as gRPC reads it.
///
/// ```
/// assert_eq!(monkit::stats::grpc_code_kind(4), "deadline_exceeded");
/// assert_eq!(monkit::stats::grpc_code_kind(99), "unknown");
/// ```
pub fn grpc_code_kind(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "ok",
        "cancelled",
        "unknown",
        "invalid_argument",
        "deadline_exceeded",
        "not_found",
        "already_exists",
        "permission_denied",
        "resource_exhausted",
        "failed_precondition",
        "aborted",
        "out_of_range",
        "unimplemented",
        "internal",
        "unavailable",
        "data_loss",
        "unauthenticated",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|c| NAMES.get(c))
        .copied()
        .unwrap_or("unknown")
}

#[cfg(feature = "tonic")]
fn grpc_kind(c: tonic::Code) -> &'static str {
    grpc_code_kind(c as i32)
}

/// A `tonic::Status` names its kind by its gRPC code (feature `tonic`).
#[cfg(feature = "tonic")]
impl ErrorKind for tonic::Status {
    fn error_kind(&self) -> &'static str {
        grpc_kind(self.code())
    }
}

/// A boxed error names its kind by what it holds: see [`error_kind_of`].
macro_rules! dyn_error_kind {
    ($($t:ty),*) => {$(
        impl ErrorKind for $t {
            fn error_kind(&self) -> &'static str {
                error_kind_of(self).unwrap_or("error")
            }
        }
    )*};
}
dyn_error_kind!(
    dyn std::error::Error + 'static,
    dyn std::error::Error + Send + 'static,
    dyn std::error::Error + Send + Sync + 'static
);

impl<E: ErrorKind + ?Sized> ErrorKind for Box<E> {
    fn error_kind(&self) -> &'static str {
        (**self).error_kind()
    }
}

impl<E: ErrorKind + ?Sized> ErrorKind for &E {
    fn error_kind(&self) -> &'static str {
        (**self).error_kind()
    }
}

impl ErrorKind for std::fmt::Error {
    fn error_kind(&self) -> &'static str {
        "fmt::Error"
    }
}

/// The default kind of an error type that does not implement [`ErrorKind`] and that no
/// handler or built-in knows ([`error_kind_of`]): its type name without module path or
/// generic arguments (`my::DbError<T>` → `DbError`), but with its path when the name alone
/// is `Error` (`serde_json::error::Error`).
pub fn type_kind<E: ?Sized>() -> &'static str {
    short_type_name(std::any::type_name::<E>())
}

pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let mut t = full;
    loop {
        t = t.trim_start_matches('&').trim_start_matches("dyn ");
        // A tuple (axum's `(StatusCode, String)`) is named by its first element.
        if let Some(elems) = t.strip_prefix('(') {
            match crate::util::type_name::parts(elems).next().unwrap_or("") {
                "" => return "()",
                first => {
                    t = first;
                    continue;
                }
            }
        }
        // Drop generic arguments, then keep the last path segment.
        let (head, args) = match t.split_once('<') {
            Some((h, a)) => (h, Some(a)),
            None => (t, None),
        };
        let name = head.rsplit("::").next().unwrap_or(head);
        match (name, args) {
            // A smart pointer says nothing of the kind: name what it points to.
            ("Box" | "Arc" | "Rc", Some(inner)) => {
                t = inner.split([',', '+', '>']).next().unwrap_or(inner).trim()
            }
            _ if name.is_empty() => return full,
            // `Error` alone names nothing (serde_json's, sqlx's and a hundred crates' errors
            // are all called that): keep the path that says whose it is.
            ("Error", _) if head.contains("::") && !is_std(head) => return head,
            _ => return name,
        }
    }
}

fn is_std(path: &str) -> bool {
    ["core::", "std::", "alloc::"]
        .iter()
        .any(|root| path.starts_with(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever `type_name` prints, a kind comes out of it and nothing panics.
        #[test]
        fn any_type_name_makes_a_kind(s in "[a-zA-Z:<>(), &+\\[\\];]{0,40}") {
            let s: &'static str = Box::leak(s.into_boxed_str());
            let _ = short_type_name(s);
        }
    }

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("a::b::DbError"), "DbError");
        assert_eq!(short_type_name("a::b::Wrap<c::D>"), "Wrap");
        assert_eq!(
            short_type_name("alloc::boxed::Box<dyn core::error::Error + core::marker::Send>"),
            "Error"
        );
        assert_eq!(short_type_name("String"), "String");
        assert_eq!(
            short_type_name("&serde_json::error::Error"),
            "serde_json::error::Error"
        );
        assert_eq!(
            short_type_name("alloc::sync::Arc<sqlx_core::error::Error>"),
            "sqlx_core::error::Error"
        );
        assert_eq!(type_kind::<serde_json::Error>(), "serde_json::error::Error");
        assert_eq!(
            short_type_name("(http::status::StatusCode, alloc::string::String)"),
            "StatusCode"
        );
        assert_eq!(short_type_name("(alloc::vec::Vec<(u8, u8)>, u8)"), "Vec");
        assert_eq!(short_type_name("()"), "()");
        assert_eq!(type_kind::<&'static str>(), "str");
        assert_eq!(type_kind::<std::num::ParseIntError>(), "ParseIntError");
    }
}
