//! What a failed call's error said, on its recorded span: bounded, for sync and async calls,
//! in the trace pages, and switched off for programs whose errors may hold secrets.

#[derive(Debug)]
struct Fire(String);

impl std::fmt::Display for Fire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "disk on fire: {}", self.0)
    }
}

impl monkit::ErrorKind for Fire {
    fn error_kind(&self) -> &'static str {
        "fire"
    }
}

#[monkit::task]
fn burn(what: &str) -> Result<(), Fire> {
    Err(Fire(what.to_owned()))
}

#[monkit::task]
async fn burn_later(what: &str) -> Result<u8, std::io::Error> {
    Err(std::io::Error::other(format!("later: {what}")))
}

#[monkit::task]
fn fine() -> Result<u8, Fire> {
    Ok(1)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn recorded_spans_carry_the_error_text() {
    let (_, spans) = monkit::collect_trace(|| burn("sda1"));
    assert_eq!(spans[0].outcome, monkit::Outcome::Error("fire"));
    assert_eq!(spans[0].error.as_deref(), Some("disk on fire: sda1"));

    let (_, spans) = monkit::collect_trace(|| block_on(burn_later("sdb")));
    assert_eq!(spans[0].error.as_deref(), Some("later: sdb"));

    // A success says nothing.
    let (_, spans) = monkit::collect_trace(fine);
    assert_eq!(spans[0].error, None);

    // Bounded, cut on a character boundary.
    let long = "é".repeat(400);
    let (_, spans) = monkit::collect_trace(|| burn(&long));
    let text = spans[0].error.as_deref().unwrap();
    assert!(
        text.len() <= monkit::trace::MAX_ERROR_TEXT,
        "{}",
        text.len()
    );
    assert!(text.starts_with("disk on fire: é"));

    // In the trace page's JSON and the SVG's tooltip.
    let (_, spans) = monkit::collect_trace(|| burn("<sdc>"));
    let json = monkit::render::trace::json(&spans);
    assert_eq!(json[0]["error_text"], "disk on fire: <sdc>");
    let svg = monkit::render::trace::svg(&spans);
    assert!(svg.contains("Error: disk on fire: &lt;sdc&gt;"), "{svg}");

    // Switched off: no text, the kind still counted.
    monkit::default_registry().set_error_text(false);
    let (_, spans) = monkit::collect_trace(|| burn("secret"));
    monkit::default_registry().set_error_text(true);
    assert_eq!(spans[0].outcome, monkit::Outcome::Error("fire"));
    assert_eq!(spans[0].error, None);
}
