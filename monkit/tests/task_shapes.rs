//! `#[task]` on async functions of every shape a service writes: generic, taking `impl Trait`,
//! by-value `self`, a trait's `async fn`, borrowing arguments and `&self`, returning `impl
//! Trait`, in an `impl<'a>`, with arguments the body never names. Each keeps its signature's
//! meaning (what it borrows, that its future is `Send`, how long its arguments live), and is
//! one call of a function named as written.

// The expansion must not draw lints onto the user's code.
#![deny(unused_braces, unused_mut, unused_variables, unused_parens)]

use monkit::default_registry;
use std::fmt::Display;

#[monkit::task]
async fn generic<T: Clone + Send>(x: T) -> T {
    tokio::task::yield_now().await;
    x.clone()
}

#[monkit::task]
async fn into_text(x: impl Into<String>) -> Result<usize, std::fmt::Error> {
    let s: String = x.into();
    if s.is_empty() {
        return Err(std::fmt::Error);
    }
    Ok(s.len())
}

#[monkit::task]
async fn borrowing(a: &str, b: &[u8]) -> usize {
    tokio::task::yield_now().await;
    a.len() + b.len()
}

#[monkit::task]
async fn opaque() -> impl Display {
    7
}

// One line each, as rustfmt leaves a body with `fn_single_line`: a block in our block there
// draws `unused_braces`.
#[monkit::task(args)]
#[rustfmt::skip]
async fn one_line(x: u64) -> u64 { x + 1 }

#[monkit::task(args)]
#[rustfmt::skip]
fn one_line_sync(x: u64) -> impl Display { x + 1 }

struct Shop(u32);

impl Shop {
    #[monkit::task]
    async fn consume(self) -> u32 {
        self.0
    }

    #[monkit::task]
    async fn look(&self, extra: u32) -> u32 {
        tokio::task::yield_now().await;
        self.0 + extra
    }
}

trait Handler {
    async fn handle(self, n: u32) -> u32;
}

struct Doubler;

impl Handler for Doubler {
    #[monkit::task]
    async fn handle(self, n: u32) -> u32 {
        n * 2
    }
}

fn assert_send<F: std::future::Future + Send>(f: F) -> F {
    f
}

fn stats(name: &str) -> monkit::registry::FuncStats {
    default_registry()
        .func_by_name(&format!("task_shapes.{name}"))
        .unwrap_or_else(|| panic!("no function {name}"))
        .stats()
}

fn calls(name: &str) -> (u64, u64) {
    let s = stats(name);
    (s.successes, s.errors_total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_is_one_call_and_keeps_its_signature() {
    assert_eq!(assert_send(generic(String::from("x"))).await, "x");
    assert_eq!(into_text("abc").await, Ok(3));
    assert!(into_text("").await.is_err());
    let owned = String::from("hello");
    let n = assert_send(borrowing(&owned, b"xy")).await;
    assert_eq!(n, 7);
    assert_eq!(opaque().await.to_string(), "7");
    assert_eq!(
        one_line(1).await + 1,
        one_line_sync(2).to_string().parse::<u64>().unwrap()
    );
    assert_eq!(Shop(3).consume().await, 3);
    let shop = Shop(4);
    assert_eq!(assert_send(shop.look(1)).await, 5);
    assert_eq!(Doubler.handle(21).await, 42);
    // A spawned task needs a 'static, Send future: one with no borrowed arguments is.
    assert_eq!(tokio::spawn(generic(5u8)).await.unwrap(), 5);

    assert_eq!(calls("generic"), (2, 0));
    assert_eq!(calls("into_text"), (1, 1));
    assert_eq!(calls("borrowing"), (1, 0));
    assert_eq!(calls("opaque"), (1, 0));
    assert_eq!(calls("Shop::consume"), (1, 0));
    assert_eq!(calls("Shop::look"), (1, 0));
    assert_eq!(calls("Doubler::handle"), (1, 0));
    // Nothing starts before the first poll: a future made and dropped unpolled is no call.
    drop(generic(1u32));
    assert_eq!(calls("generic"), (2, 0));
}

/// A type whose lifetime a signature may leave unwritten.
struct Holder<'a>(&'a str);

/// Lifetimes the signature does not show: those of an `impl<'a>`, carried by `self` and
/// `Self`. Each must compile as the plain `async fn` does.
#[monkit::task]
async fn written(h: Holder<'_>, r: std::cell::Ref<'_, u32>) -> usize {
    h.0.len() + *r as usize
}

#[allow(clippy::needless_lifetimes)]
impl<'a> Holder<'a> {
    #[monkit::task]
    async fn into_len(self) -> usize {
        tokio::task::yield_now().await;
        self.0.len()
    }

    #[monkit::task]
    async fn longer(a: Self, b: Holder<'a>) -> Self {
        if a.0.len() >= b.0.len() {
            a
        } else {
            b
        }
    }
}

/// Owned std types, the function's own type parameters and `impl Trait` of them.
#[monkit::task]
async fn owned<T: Into<u64> + Send>(
    a: T,
    b: Vec<Option<String>>,
    c: (u8, [u16; 2]),
    d: Box<dyn Fn(u32) -> u32 + Send>,
    e: impl IntoIterator<Item = u64> + Send,
) -> u64 {
    tokio::task::yield_now().await;
    a.into() + b.len() as u64 + u64::from(c.0) + u64::from(d(1)) + e.into_iter().sum::<u64>()
}

#[tokio::test]
async fn lifetimes_of_an_impl_and_owned_types_are_calls_too() {
    let text = String::from("four");
    let cell = std::cell::RefCell::new(3);
    assert_eq!(written(Holder(&text), cell.borrow()).await, 7);
    assert_eq!(Holder(&text).into_len().await, 4);
    assert_eq!(Holder::longer(Holder("ab"), Holder(&text)).await.0, "four");
    let n = owned(2u8, vec![None], (3, [0, 0]), Box::new(|x| x + 1), [10, 20]);
    assert_eq!(assert_send(n).await, 38);
    assert_eq!(
        tokio::spawn(owned(1u32, vec![], (0, [0, 0]), Box::new(|x| x), vec![]))
            .await
            .unwrap(),
        2
    );

    assert_eq!(calls("written"), (1, 0));
    assert_eq!(calls("Holder::into_len"), (1, 0));
    assert_eq!(calls("Holder::longer"), (1, 0));
    assert_eq!(calls("owned"), (2, 0));
}

/// Counts its drops, to see when an argument goes.
struct Permit(&'static std::sync::atomic::AtomicU32);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

static DROPS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Arguments the body never names, a `mut` one and a pattern: as in a plain `async fn`, each
/// lives as long as the future.
#[monkit::task]
async fn holding(_permit: Permit, _: Permit, mut n: u64, (a, b): (u64, u64)) -> u64 {
    tokio::task::yield_now().await;
    n += a + b;
    n
}

#[tokio::test]
async fn unnamed_arguments_live_as_long_as_the_future() {
    use std::future::Future;
    use std::sync::atomic::Ordering::SeqCst;
    let f = holding(Permit(&DROPS), Permit(&DROPS), 1, (2, 3));
    assert_eq!(
        DROPS.load(SeqCst),
        0,
        "made, not yet polled: nothing dropped"
    );
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::noop();
    let polled = f.as_mut().poll(&mut std::task::Context::from_waker(waker));
    assert!(polled.is_pending());
    assert_eq!(
        DROPS.load(SeqCst),
        0,
        "suspended: the permits are still held"
    );
    assert_eq!(f.await, 6);
    assert_eq!(DROPS.load(SeqCst), 2);
    assert_eq!(calls("holding"), (1, 0));
}

/// Another attribute macro below `#[task]` sees the `async fn` it expects.
#[monkit::task]
#[tokio::test]
async fn a_test_that_is_a_task() {
    tokio::task::yield_now().await;
    let current = monkit::trace::current_span().expect("the test runs as a call");
    assert_ne!(current.trace_id(), 0);
}

/// A service trait as `#[async_trait]` (and tonic's re-export of it) writes one.
#[async_trait::async_trait]
trait Store {
    async fn get(&self, key: u64) -> Result<u64, std::io::Error>;
}

struct Slow;

#[async_trait::async_trait]
impl Store for Slow {
    #[monkit::task]
    async fn get(&self, key: u64) -> Result<u64, std::io::Error> {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        if key == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no key 0",
            ));
        }
        Ok(key * 10)
    }
}

/// Inside `#[async_trait]` the method is already a `fn` boxing its future when `#[task]` sees
/// it: the call is still the whole future, with its outcome, not the boxing.
#[tokio::test]
async fn an_async_trait_method_is_timed_to_its_end() {
    let store: Box<dyn Store + Send + Sync> = Box::new(Slow);
    assert_eq!(store.get(4).await.unwrap(), 40);
    assert!(store.get(0).await.is_err());
    let s = stats("Slow::get");
    assert_eq!((s.successes, s.errors_total), (1, 1));
    assert_eq!(s.errors, vec![("not_found", 1)]);
    let took = s.success_times.min;
    assert!(took >= 30e6, "timed to the future's end: {took} ns");
}

/// Methods of impls for types named outside the module: std's, a tuple, a box of a local type.
trait Size {
    fn size(&self) -> usize;
}

impl<T> Size for Vec<T> {
    #[monkit::task]
    fn size(&self) -> usize {
        self.len()
    }
}

impl Size for (u8, u8) {
    #[monkit::task]
    fn size(&self) -> usize {
        2
    }
}

impl Size for Box<Slow> {
    #[monkit::task]
    fn size(&self) -> usize {
        1
    }
}

#[test]
fn methods_are_named_by_their_short_self_type() {
    assert_eq!(
        vec![1u8, 2, 3].size() + (1u8, 2u8).size() + Box::new(Slow).size(),
        6
    );
    for name in ["Vec::size", "(u8, u8)::size", "Box<Slow>::size"] {
        assert_eq!(calls(name), (1, 0), "{name}");
    }
}

/// A `fn` returning a boxed future behind an alias: the call is the future too.
#[monkit::task]
fn boxed(key: u64) -> futures::future::BoxFuture<'static, Result<u64, std::io::Error>> {
    Box::pin(async move {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if key == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"));
        }
        Ok(key)
    })
}

#[tokio::test]
async fn a_boxed_future_is_timed_to_its_end() {
    assert_eq!(boxed(3).await.unwrap(), 3);
    assert!(boxed(0).await.is_err());
    let s = stats("boxed");
    assert_eq!(s.errors, vec![("timed_out", 1)]);
    assert!(s.success_times.min >= 20e6, "{}", s.success_times.min);
}

/// A trait that declares its future `Send`, and an impl writing the future out: the call is
/// the future.
trait Fetch {
    fn fetch(
        &self,
        key: u64,
    ) -> impl std::future::Future<Output = Result<u64, std::io::Error>> + Send;
}

struct Remote;

impl Fetch for Remote {
    #[monkit::task]
    fn fetch(
        &self,
        key: u64,
    ) -> impl std::future::Future<Output = Result<u64, std::io::Error>> + Send {
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if key == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
            }
            Ok(key + 1)
        }
    }
}

#[tokio::test]
async fn a_written_out_future_is_timed_to_its_end() {
    assert_eq!(tokio::spawn(Remote.fetch(1)).await.unwrap().unwrap(), 2);
    assert!(Remote.fetch(0).await.is_err());
    let s = stats("Remote::fetch");
    assert_eq!(s.errors, vec![("connection_reset", 1)]);
    assert!(s.success_times.min >= 20e6, "{}", s.success_times.min);
}

/// `Result<impl Trait, E>`, axum's `Result<impl IntoResponse, AppError>`: an `Err` is an error
/// of its kind, `?` converts as in the plain function.
#[monkit::task]
async fn opaque_ok(s: String) -> Result<impl Display, std::num::ParseIntError> {
    tokio::task::yield_now().await;
    let n: u32 = s.parse()?;
    Ok(n * 2)
}

#[monkit::task]
fn opaque_iter(s: &str) -> Result<impl Iterator<Item = u32>, std::num::ParseIntError> {
    let n: u32 = s.parse()?;
    Ok((0..n).map(|i| i * 10))
}

#[tokio::test]
async fn an_err_beside_impl_trait_is_an_error() {
    assert_eq!(opaque_ok("21".into()).await.unwrap().to_string(), "42");
    assert!(opaque_ok("x".into()).await.is_err());
    assert_eq!(opaque_iter("3").unwrap().sum::<u32>(), 30);
    assert!(opaque_iter("-").is_err());
    for name in ["opaque_ok", "opaque_iter"] {
        let s = stats(name);
        assert_eq!((s.successes, s.errors_total), (1, 1), "{name}");
        assert_eq!(s.errors, vec![("ParseIntError", 1)], "{name}");
    }
}

/// `-> !`, a loop that only ends by panicking: it compiles, and its panic is counted.
#[monkit::task]
fn serve_forever(n: u64) -> ! {
    panic!("stopped after {n}")
}

#[monkit::task]
async fn serve_forever_async(n: u64) -> ! {
    tokio::task::yield_now().await;
    panic!("stopped after {n}")
}

#[tokio::test]
async fn a_never_returning_call_counts_its_panic() {
    assert!(std::panic::catch_unwind(|| serve_forever(1)).is_err());
    assert!(tokio::spawn(serve_forever_async(2))
        .await
        .unwrap_err()
        .is_panic());
    for name in ["serve_forever", "serve_forever_async"] {
        let s = stats(name);
        assert_eq!((s.successes, s.panics), (0, 1), "{name}");
    }
}

#[monkit::task]
unsafe fn raw_read(p: *const u32) -> u32 {
    *p
}
#[monkit::task]
async unsafe fn raw_read_async(p: *const u32) -> u32 {
    *p
}
#[monkit::task]
extern "C" fn c_abi(x: u32) -> u32 {
    x + 1
}
#[monkit::task]
fn const_generic<const N: usize>() -> usize {
    N
}
struct Pinned(u32);
impl Pinned {
    #[monkit::task]
    fn pinned(self: std::pin::Pin<&mut Self>) -> u32 {
        self.get_mut().0
    }
}
/// `unsafe`, `extern "C"`, const generics and a pinned receiver keep compiling and counting.
#[test]
fn unusual_signatures_are_calls() {
    let v = 5u32;
    assert_eq!(unsafe { raw_read(&v) }, 5);
    let _f = unsafe { raw_read_async(&v) };
    assert_eq!(c_abi(1), 2);
    assert_eq!(const_generic::<3>(), 3);
    let mut p = Pinned(4);
    assert_eq!(std::pin::Pin::new(&mut p).pinned(), 4);
    for name in ["raw_read", "c_abi", "const_generic", "Pinned::pinned"] {
        assert_eq!(calls(name), (1, 0), "{name}");
    }
}

/// A client method that clones what its future needs, then returns the future: the call is
/// the future, and what comes before it runs when the method is called.
struct Client {
    base: String,
}

impl Client {
    #[monkit::task]
    fn get(
        &self,
        key: u64,
    ) -> impl std::future::Future<Output = Result<String, std::io::Error>> + Send + 'static {
        let base = self.base.clone();
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if key == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
            }
            Ok(format!("{base}/{key}"))
        }
    }
}

#[tokio::test]
async fn a_future_made_after_some_statements_is_timed_to_its_end() {
    let client = Client {
        base: "http://x".into(),
    };
    let fut = client.get(7);
    drop(client);
    assert_eq!(tokio::spawn(fut).await.unwrap().unwrap(), "http://x/7");
    let client = Client {
        base: String::new(),
    };
    assert!(client.get(0).await.is_err());
    let s = stats("Client::get");
    assert_eq!(s.errors, vec![("not_found", 1)]);
    assert_eq!(s.successes, 1);
    assert!(s.success_times.min >= 20e6, "{}", s.success_times.min);
}
