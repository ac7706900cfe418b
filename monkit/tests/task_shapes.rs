//! `#[task]` on async functions of every shape a service writes: generic, taking `impl Trait`,
//! by-value `self`, a trait's `async fn`, borrowing arguments and `&self`, returning `impl
//! Trait`. Each keeps its signature's meaning (what it borrows, that its future is `Send`),
//! and is one call of a function named as written.

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

fn calls(name: &str) -> (u64, u64) {
    let s = default_registry()
        .func_by_name(&format!("task_shapes.{name}"))
        .unwrap_or_else(|| panic!("no function {name}"))
        .stats();
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
