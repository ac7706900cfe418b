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
        use std::io::ErrorKind as K;
        match self.kind() {
            K::NotFound => "NotFound",
            K::PermissionDenied => "PermissionDenied",
            K::ConnectionRefused => "ConnectionRefused",
            K::ConnectionReset => "ConnectionReset",
            K::ConnectionAborted => "ConnectionAborted",
            K::NotConnected => "NotConnected",
            K::AddrInUse => "AddrInUse",
            K::AddrNotAvailable => "AddrNotAvailable",
            K::BrokenPipe => "BrokenPipe",
            K::AlreadyExists => "AlreadyExists",
            K::WouldBlock => "WouldBlock",
            K::InvalidInput => "InvalidInput",
            K::InvalidData => "InvalidData",
            K::TimedOut => "TimedOut",
            K::WriteZero => "WriteZero",
            K::Interrupted => "Interrupted",
            K::Unsupported => "Unsupported",
            K::UnexpectedEof => "UnexpectedEof",
            K::OutOfMemory => "OutOfMemory",
            _ => "io::Error",
        }
    }
}

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

/// The default kind of an error type that does not implement [`ErrorKind`]: its type name
/// without module path or generic arguments (`my::DbError<T>` → `DbError`).
pub fn type_kind<E: ?Sized>() -> &'static str {
    short_type_name(std::any::type_name::<E>())
}

pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let mut t = full;
    loop {
        t = t.trim_start_matches('&').trim_start_matches("dyn ");
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
            _ => return name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("a::b::DbError"), "DbError");
        assert_eq!(short_type_name("a::b::Wrap<c::D>"), "Wrap");
        assert_eq!(
            short_type_name("alloc::boxed::Box<dyn core::error::Error + core::marker::Send>"),
            "Error"
        );
        assert_eq!(short_type_name("String"), "String");
        assert_eq!(type_kind::<std::num::ParseIntError>(), "ParseIntError");
    }
}
