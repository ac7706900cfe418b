//! An error of any type seen as `&dyn Error`, where its type allows, so that code generic over
//! an error type with no `Error` bound (a client's sender returning `Box<dyn Error>`,
//! `anyhow::Error` or `String`) can still name its kind by its chain. Rust cannot ask "is this
//! `E` an `Error`?" of a generic type, so the answer is looked up by the value's type: the
//! boxed errors and `std::io::Error` always, the crates of the core's features with them, and
//! any type a program adds with [`add_error_view`].

use std::any::{Any, TypeId};
use std::error::Error;
use std::sync::RwLock;

type View = Box<dyn for<'a> Fn(&'a dyn Any) -> Option<&'a (dyn Error + 'static)> + Send + Sync>;

static VIEWS: RwLock<Vec<(TypeId, View)>> = RwLock::new(Vec::new());

/// Lets [`error_view`] see a `T` as the error `view` gives, for a type that is no
/// `std::error::Error` itself but holds one (`anyhow::Error`) or one of a program's own
/// errors used where no `Error` bound is known.
///
/// ```
/// #[derive(Debug)]
/// struct Wrapped(std::io::Error);
/// monkit::stats::add_error_view::<Wrapped>(|w| &w.0);
/// let e = Wrapped(std::io::Error::from(std::io::ErrorKind::TimedOut));
/// assert_eq!(monkit::stats::kind_of_any(&e), "timed_out");
/// ```
pub fn add_error_view<T: 'static>(view: fn(&T) -> &(dyn Error + 'static)) {
    let f: View = Box::new(move |a: &dyn Any| a.downcast_ref::<T>().map(view));
    VIEWS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push((TypeId::of::<T>(), f));
}

/// `e` as an error, when its type is one the core knows (boxed errors, `std::io::Error`,
/// and with features `hyper::Error`, `reqwest::Error`, `tonic::Status`, tokio's `Elapsed`
/// and `JoinError`) or one added with [`add_error_view`].
pub fn error_view(e: &dyn Any) -> Option<&(dyn Error + 'static)> {
    macro_rules! as_is {
        ($($t:ty),* $(,)?) => {$(
            if let Some(x) = e.downcast_ref::<$t>() {
                return Some(x);
            }
        )*};
    }
    if let Some(b) = e.downcast_ref::<Box<dyn Error + Send + Sync>>() {
        return Some(&**b);
    }
    if let Some(b) = e.downcast_ref::<Box<dyn Error + Send>>() {
        return Some(&**b);
    }
    if let Some(b) = e.downcast_ref::<Box<dyn Error>>() {
        return Some(&**b);
    }
    as_is!(std::io::Error);
    #[cfg(feature = "hyper")]
    as_is!(hyper::Error);
    #[cfg(feature = "reqwest")]
    as_is!(reqwest::Error);
    #[cfg(feature = "tonic")]
    as_is!(tonic::Status);
    #[cfg(feature = "tokio")]
    as_is!(tokio::time::error::Elapsed, tokio::task::JoinError);
    let id = e.type_id();
    let views = VIEWS.read().unwrap_or_else(|e| e.into_inner());
    views
        .iter()
        .filter(|(t, _)| *t == id)
        .find_map(|(_, v)| v(e))
}

/// The kind of an error of any type: by its chain when [`error_view`] sees it as an error
/// (see [`error_kind_of`](super::error_kind_of)), `error` for a bare message (`String`,
/// `&str`), else its type's name.
///
/// ```
/// let boxed: Box<dyn std::error::Error + Send + Sync> =
///     Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
/// assert_eq!(monkit::stats::kind_of_any(&boxed), "connection_refused");
/// assert_eq!(monkit::stats::kind_of_any(&String::from("no route")), "error");
/// ```
pub fn kind_of_any<E: 'static>(e: &E) -> &'static str {
    let any: &dyn Any = e;
    if let Some(err) = error_view(any) {
        return super::error_kind_of(err).unwrap_or_else(super::type_kind::<E>);
    }
    if any.is::<String>() || any.is::<&'static str>() {
        return "error";
    }
    super::type_kind::<E>()
}
