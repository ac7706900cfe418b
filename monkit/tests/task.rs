//! `#[monkit::task]` on every shape of function, and what each call records.

use monkit::{default_registry, ErrorKind, Func};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn func(full: &str) -> Func {
    default_registry()
        .func_by_name(full)
        .unwrap_or_else(|| panic!("{full} not registered; have {:?}", names()))
}

fn names() -> Vec<&'static str> {
    default_registry()
        .funcs()
        .iter()
        .map(|f| f.full_name())
        .collect()
}

#[derive(Debug)]
enum DbError {
    NotFound,
    Timeout,
}

impl ErrorKind for DbError {
    fn error_kind(&self) -> &'static str {
        match self {
            DbError::NotFound => "not_found",
            DbError::Timeout => "timeout",
        }
    }
}

#[derive(Debug)]
struct PlainError;

#[monkit::task]
fn lookup(id: u64) -> Result<u64, DbError> {
    match id {
        0 => Err(DbError::NotFound),
        1 => Err(DbError::Timeout),
        _ => Ok(id),
    }
}

#[monkit::task]
fn plain(fail: bool) -> Result<(), PlainError> {
    if fail {
        return Err(PlainError);
    }
    Ok(())
}

#[monkit::task]
fn io_fail() -> std::io::Result<()> {
    std::fs::read("/definitely/not/here")?;
    Ok(())
}

#[monkit::task]
fn parse_sum(a: &str, b: &str) -> Result<i64, std::num::ParseIntError> {
    Ok(a.parse::<i64>()? + b.parse::<i64>()?)
}

#[monkit::task]
fn boom(x: u32) -> u32 {
    if x > 0 {
        panic!("boom {x}");
    }
    x
}

#[monkit::task(name = "custom_name")]
fn renamed() {}

#[monkit::task]
fn generic<T: Clone + std::fmt::Debug, U>(t: &T, _u: U) -> T
where
    U: Into<u64>,
{
    t.clone()
}

#[monkit::task]
fn with_lifetime<'a>(s: &'a str, _other: &str) -> &'a str {
    &s[..1]
}

#[monkit::task]
fn impl_arg(it: impl IntoIterator<Item = u32>) -> u32 {
    it.into_iter().sum()
}

#[monkit::task]
fn impl_ret(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

struct Store {
    hits: u64,
}

impl Store {
    #[monkit::task]
    fn get(&self, k: &str) -> Option<Vec<u8>> {
        (k == "a").then(|| vec![1])
    }

    #[monkit::task]
    fn bump(&mut self) -> u64 {
        self.hits += 1;
        self.hits
    }

    #[monkit::task]
    fn into_hits(self) -> u64 {
        self.hits
    }
}

trait Kv {
    fn fetch(&self) -> u8;
}

impl Kv for Store {
    #[monkit::task]
    fn fetch(&self) -> u8 {
        7
    }
}

#[monkit::task]
fn never_called() {}

#[test]
fn listed_before_first_call_with_location() {
    let f = func("task.never_called");
    let loc = f.location().expect("location");
    assert_eq!(loc.module, "task");
    assert!(loc.file.ends_with("tests/task.rs"), "{}", loc.file);
    assert!(loc.line > 100 && loc.line < 200, "line {}", loc.line);
    let s = f.stats();
    assert_eq!((s.total(), s.current, s.highwater), (0, 0, 0));
    // Never-called methods are listed under their type too.
    assert!(names().contains(&"task.Store::into_hits"), "{:?}", names());
}

#[test]
fn errors_are_counted_by_kind() {
    assert!(lookup(0).is_err());
    assert!(lookup(1).is_err());
    assert!(lookup(1).is_err());
    assert_eq!(lookup(5).unwrap(), 5);
    let s = func("task.lookup").stats();
    assert_eq!(s.successes, 1);
    assert_eq!(s.errors_total, 3);
    assert_eq!(s.errors, vec![("not_found", 1), ("timeout", 2)]);
    assert_eq!(s.failures(), 3);
    assert_eq!(s.total(), 4);
    assert_eq!(s.success_times.count, 1);
    assert_eq!(s.failure_times.count, 3);

    // Without ErrorKind, the error's type name; io::Error by its io::ErrorKind; `?` works.
    plain(true).unwrap_err();
    plain(false).unwrap();
    assert_eq!(func("task.plain").stats().errors, vec![("PlainError", 1)]);
    io_fail().unwrap_err();
    assert_eq!(func("task.io_fail").stats().errors, vec![("not_found", 1)]);
    assert_eq!(parse_sum("1", "2").unwrap(), 3);
    parse_sum("1", "x").unwrap_err();
    let s = func("task.parse_sum").stats();
    assert_eq!((s.successes, s.errors), (1, vec![("ParseIntError", 1)]));
}

#[test]
fn panics_are_counted_and_continue() {
    let r = catch_unwind(|| boom(3));
    let msg = r.unwrap_err();
    assert_eq!(
        msg.downcast_ref::<String>().map(String::as_str),
        Some("boom 3")
    );
    assert_eq!(boom(0), 0);
    let s = func("task.boom").stats();
    assert_eq!(
        (s.panics, s.successes, s.errors_total, s.current),
        (1, 1, 0, 0)
    );
    assert_eq!(s.failures(), 1);
    assert_eq!(s.failure_times.count, 1);
    // The span context was restored by the unwinding guard.
    assert!(monkit::current_span().is_none());
}

#[test]
fn shapes_of_functions() {
    renamed();
    assert_eq!(func("task.custom_name").stats().successes, 1);
    assert_eq!(generic(&"x".to_string(), 3u8), "x");
    assert_eq!(generic(&5u8, 3u32), 5);
    assert_eq!(func("task.generic").stats().successes, 2);
    assert_eq!(with_lifetime("abc", "d"), "a");
    assert_eq!(impl_arg(vec![1, 2, 3]), 6);
    assert_eq!(impl_ret(3).count(), 3);
    assert_eq!(func("task.impl_ret").stats().successes, 1);

    let mut s = Store { hits: 0 };
    assert_eq!(s.get("a"), Some(vec![1]));
    assert_eq!(s.get("b"), None); // None is not an error
    assert_eq!(s.bump(), 1);
    assert_eq!(s.fetch(), 7);
    assert_eq!(s.into_hits(), 1);
    assert_eq!(func("task.Store::get").stats().successes, 2);
    assert_eq!(func("task.Store::bump").stats().successes, 1);
    assert_eq!(func("task.Store::into_hits").stats().successes, 1);
    assert_eq!(func("task.Store::fetch").stats().successes, 1);
}

#[monkit::task]
fn leaf() {}

#[monkit::task]
fn middle() {
    leaf();
}

#[monkit::task]
fn top() {
    middle();
    leaf();
}

#[monkit::task]
fn spawner() {
    let parent = monkit::current_span().expect("inside a task");
    std::thread::spawn(move || parent.in_scope(leaf_on_thread))
        .join()
        .unwrap();
}

#[monkit::task]
fn leaf_on_thread() {}

#[test]
fn parents_and_spans() {
    let ((), spans) = monkit::collect_trace(top);
    let top_f = func("task.top");
    let mid = func("task.middle");
    let leaf_f = func("task.leaf");
    assert!(top_f.stats().entry);
    assert!(!mid.stats().entry);
    assert_eq!(mid.stats().parents, vec![top_f.id()]);
    let mut lp = leaf_f.stats().parents;
    lp.sort();
    let mut want = vec![top_f.id(), mid.id()];
    want.sort();
    assert_eq!(lp, want);

    assert_eq!(spans.len(), 4, "{spans:#?}");
    let by_name = |n: &'static str| spans.iter().filter(move |s| s.start.name() == n);
    let t = by_name("top").next().unwrap();
    let m = by_name("middle").next().unwrap();
    assert_eq!(t.start.parent_id, None);
    assert_eq!(m.start.parent_id, Some(t.start.span_id));
    let leaf_parents: Vec<_> = by_name("leaf")
        .map(|s| s.start.parent_id.unwrap())
        .collect();
    assert!(leaf_parents.contains(&m.start.span_id) && leaf_parents.contains(&t.start.span_id));
    assert!(spans.iter().all(|s| s.start.trace_id == t.start.trace_id));
    assert!(spans
        .iter()
        .all(|s| s.finish_unix_ns >= s.start.start_unix_ns));
    assert!(t.start.start_unix_ns <= m.start.start_unix_ns && m.finish_unix_ns <= t.finish_unix_ns);

    // Across threads, with the span handed over explicitly.
    let ((), spans) = monkit::collect_trace(spawner);
    assert_eq!(
        func("task.leaf_on_thread").stats().parents,
        vec![func("task.spawner").id()]
    );
    let sp = spans.iter().find(|s| s.start.name() == "spawner").unwrap();
    let lt = spans
        .iter()
        .find(|s| s.start.name() == "leaf_on_thread")
        .unwrap();
    assert_eq!(lt.start.parent_id, Some(sp.start.span_id));
}

#[monkit::task]
fn annotated(n: u32) {
    monkit::annotate("n", n);
    monkit::annotate("kind", "test");
}

#[test]
fn annotations_on_recorded_spans() {
    let ((), spans) = monkit::collect_trace(|| annotated(4));
    assert_eq!(spans.len(), 1);
    assert_eq!(
        spans[0].annotations,
        vec![("n".into(), "4".into()), ("kind".into(), "test".into())]
    );
    assert_eq!(spans[0].outcome, monkit::Outcome::Ok);
    // Unrecorded: annotate is a no-op and nothing leaks.
    annotated(5);
}

#[monkit::task]
fn lookup2(id: u64) -> Result<u64, DbError> {
    ok_step(id)?;
    Err(DbError::NotFound)
}

#[monkit::task]
fn ok_step(id: u64) -> Result<u64, DbError> {
    Ok(id)
}

#[monkit::task]
fn boom2() {
    panic!("boom2")
}

#[test]
fn outcomes_on_spans() {
    let (_, spans) = monkit::collect_trace(|| {
        let _ = lookup2(0);
        let _ = catch_unwind(AssertUnwindSafe(boom2));
    });
    let spans: Vec<_> = spans
        .into_iter()
        .filter(|s| s.start.name() != "ok_step")
        .collect();
    let outcomes: Vec<_> = spans.iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        vec![monkit::Outcome::Error("not_found"), monkit::Outcome::Panic]
    );
}

#[test]
fn func_without_attribute() {
    static MON: monkit::Scope = monkit::scope!();
    let f = MON.func("closure_work");
    assert_eq!(f.task(|| 40 + 2), 42);
    let r: Result<(), std::io::Error> =
        f.task_result(|| Err(std::io::Error::from(std::io::ErrorKind::TimedOut)));
    assert!(r.is_err());
    {
        let _g = f.guard();
    }
    f.guard().fail("custom");
    let s = f.stats();
    assert_eq!(s.successes, 2);
    assert_eq!(s.errors, vec![("custom", 1), ("timed_out", 1)]);
    assert_eq!(f.full_name(), "task.closure_work");
}
