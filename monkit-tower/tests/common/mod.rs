//! What the layer tests read back from a registry.
#![allow(dead_code)]

use monkit::{Func, Registry};
use std::time::Duration;

/// The function `scope.name` of `reg`, once a call made it.
pub fn func(reg: &Registry, scope: &str, name: &str) -> Option<Func> {
    reg.funcs()
        .into_iter()
        .find(|f| f.scope() == scope && f.name() == name)
}

/// The count of error kind `kind` in `f`'s stats.
pub fn errors(f: &Func, kind: &str) -> u64 {
    f.stats()
        .errors
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |e| e.1)
}

/// Waits until `f` holds, or fails after 5 s.
pub async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}
