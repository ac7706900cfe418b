//! The console at `/` of the vlite example, in a real headless Chromium: the table holds the
//! numbers `/funcs/json` holds, sorting and filtering work and survive the page's refresh,
//! "trace next call" shows the SVG of a proxied request in place, the running spans show as a
//! tree, and with JavaScript off the page is still the plain table. Its HTML is checked by the
//! W3C Nu validator. Screenshots of each view go to `target/console-screenshots/` (kept out of
//! the repository).

mod common;
use monkit_testsupport::webdriver;

use common::{example, get, peers};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use webdriver::Browser;

/// A vlite (the shared starter) that has already served some traffic: ten greetings and
/// five failures; its proxy as a URL.
struct Vlite {
    proxy: String,
    mon: String,
    _vlite: common::Vlite,
}

fn vlite() -> Vlite {
    let started = common::vlite(None, &[], None);
    let v = Vlite {
        proxy: format!("http://{}", started.proxy),
        mon: started.mon.clone(),
        _vlite: started,
    };
    for _ in 0..10 {
        get(&format!("{}/hello", v.proxy));
    }
    for _ in 0..5 {
        get(&format!("{}/fail", v.proxy));
    }
    v
}

/// Clicks "Trace next call" of the proxy's handler, sends `url` requests until `shown` (a
/// script) returns something, and returns that.
fn trace_handle_while(b: &Browser, url: &str, shown: &str) -> Value {
    b.run(
        "document.querySelector('#funcs tbody tr[data-full=\"vlite.Proxy::handle\"] a.trace:not(.recent)').click();",
        json!([]),
    );
    b.wait_until(
        "the watcher is waiting",
        Duration::from_secs(5),
        "return document.getElementById('trace-status').textContent.indexOf('Waiting') === 0;",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, url) = (stop.clone(), url.to_owned());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                get(&url);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let got = b.wait_until("the trace in place", Duration::from_secs(20), shown);
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    got
}

fn have_browser() -> bool {
    peers::have("chromium", "chromium") && peers::have("chromedriver", "chromium-driver")
}

fn shots() -> PathBuf {
    let dir = example("vlite")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every row of the table as the page shows it: the function's full name, whether it is
/// shown, and each cell's `data-v` (null for text cells).
const ROWS: &str = r#"
return Array.from(document.querySelectorAll('#funcs tbody tr')).map(function (r) {
  return { full: r.getAttribute('data-full'), hidden: r.hidden,
           v: Array.from(r.cells).map(function (c) { return c.getAttribute('data-v'); }) };
});"#;

fn rows(b: &Browser) -> Vec<Value> {
    b.run(ROWS, json!([])).as_array().unwrap().clone()
}

fn click_header(b: &Browser, label: &str, nth: usize) {
    b.run(
        "var a = arguments; var hs = Array.from(document.querySelectorAll('#funcs thead th button')).filter(function (x) { return x.textContent.trim() === a[0]; }); hs[a[1]].click();",
        json!([label, nth]),
    );
}

fn column(rows: &[Value], col: usize) -> Vec<Option<f64>> {
    rows.iter()
        .filter(|r| r["hidden"] == false)
        .map(|r| r["v"][col].as_str().and_then(|s| s.parse().ok()))
        .collect()
}

fn quantile(f: &Value, times: &str, q: &str) -> Option<f64> {
    f[times]["quantiles"][q].as_f64()
}

#[test]
fn console_in_a_real_browser() {
    if !have_browser() {
        return;
    }
    let v = vlite();
    let shots = shots();
    let b = Browser::start(true);
    b.goto(&format!("{}/", v.mon));
    b.wait_until(
        "the script set the table up",
        Duration::from_secs(10),
        "return !document.querySelector('.tools').hidden && document.querySelectorAll('#funcs thead th button').length === 15;",
    );

    b.screenshot(&shots.join("1-table.png"));
    // The numbers are /funcs/json's: read just after the page's own refresh from it (no
    // traffic meanwhile; only the rate moves, with the clock).
    b.wait_until(
        "the page refreshed itself",
        Duration::from_secs(15),
        "return document.getElementById('status').textContent.indexOf('updated') >= 0;",
    );
    let shown = rows(&b);
    let funcs: Vec<Value> = serde_json::from_str(&get(&format!("{}/funcs/json", v.mon))).unwrap();
    assert_eq!(shown.len(), funcs.len());
    for f in &funcs {
        let full = f["full_name"].as_str().unwrap();
        let r = shown
            .iter()
            .find(|r| r["full"] == full)
            .unwrap_or_else(|| panic!("{full} not in the table"));
        let cell = |i: usize| r["v"][i].as_str().and_then(|s| s.parse::<f64>().ok());
        assert_eq!(cell(4), f["current"].as_f64(), "{full} current");
        assert_eq!(cell(5), f["highwater"].as_f64(), "{full} highwater");
        assert_eq!(
            cell(6),
            Some(f["errors_total"].as_f64().unwrap() + f["panics"].as_f64().unwrap()),
            "{full} errors"
        );
        let (rate, want) = (cell(3).unwrap(), f["calls_per_second"].as_f64().unwrap());
        assert!(
            (rate - want).abs() <= want * 0.1 + 1e-9,
            "{full} rate {rate} vs {want}"
        );
        for (i, (times, q)) in [
            ("success_times", "0.50"),
            ("success_times", "0.90"),
            ("success_times", "0.99"),
            ("failure_times", "0.50"),
            ("failure_times", "0.90"),
            ("failure_times", "0.99"),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(cell(9 + i), quantile(f, times, q), "{full} {times} {q}");
        }
        // Async functions: the busy share and slow polls, as /funcs/json has them.
        match f.get("slow_polls") {
            Some(slow) => {
                assert_eq!(cell(8), slow.as_f64(), "{full} slow polls");
                let wall = f["success_times"]["sum"].as_f64().unwrap()
                    + f["failure_times"]["sum"].as_f64().unwrap();
                let busy = f["busy"].as_f64().unwrap();
                let share = cell(7).expect("an async function has a busy share");
                assert!((0.0..=1.0).contains(&share), "{full} busy {share}");
                if wall > 0.0 {
                    assert!(
                        (share - (busy / wall).min(1.0)).abs() < 0.01,
                        "{full} busy {share}"
                    );
                }
            }
            None => assert_eq!((cell(7), cell(8)), (None, None), "{full} is sync"),
        }
    }
    let failing = shown
        .iter()
        .find(|r| r["full"] == "http_server.GET /fail")
        .expect("the failing route is listed");
    assert_eq!(failing["v"][6], "5", "five failed requests");

    // Sorting: the success p50 column, largest first, then smallest first; empty cells last.
    click_header(&b, "p50", 0);
    let p50 = column(&rows(&b), 9);
    let filled: Vec<f64> = p50.iter().flatten().copied().collect();
    assert!(filled.windows(2).all(|w| w[0] >= w[1]), "{p50:?}");
    assert!(p50.iter().skip_while(|v| v.is_some()).all(|v| v.is_none()));
    click_header(&b, "p50", 0);
    let p50 = column(&rows(&b), 9);
    let filled: Vec<f64> = p50.iter().flatten().copied().collect();
    assert!(filled.windows(2).all(|w| w[0] <= w[1]), "{p50:?}");
    assert_eq!(
        b.run(
            "return document.querySelectorAll('#funcs thead th[aria-sort]').length",
            json!([])
        ),
        1
    );
    // The objectives panel: vlite's proxy objective, success and latency, its budget eaten by
    // the failing route (refreshed with the rest).
    assert_eq!(
        b.run(
            "return Array.from(document.querySelectorAll('#slo tbody tr')).map(function (r) { return r.getAttribute('data-objective') + '/' + r.getAttribute('data-sli'); }).join(',')",
            json!([])
        ),
        "proxy/success,proxy/latency"
    );
    let budget = b.run(
        "return parseFloat(document.querySelector('#slo tr[data-sli=success] td.budget').getAttribute('data-v'))",
        json!([]),
    );
    assert!(
        budget.as_f64().unwrap() < 1.0,
        "the failures ate some: {budget}"
    );
    // Slow polls, most first; sync functions (no polls) last.
    click_header(&b, "Slow polls", 0);
    let slow = column(&rows(&b), 8);
    let filled: Vec<f64> = slow.iter().flatten().copied().collect();
    assert!(!filled.is_empty(), "vlite has async functions");
    assert!(filled.windows(2).all(|w| w[0] >= w[1]), "{slow:?}");
    assert!(slow.iter().skip_while(|v| v.is_some()).all(|v| v.is_none()));

    // Errors, most first.
    click_header(&b, "Errors", 0);
    let errs = column(&rows(&b), 6);
    assert!(errs.windows(2).all(|w| w[0] >= w[1]), "{errs:?}");
    // Filtering by a text box, then a refresh from the JSON pages keeps both.
    b.run(
        "var f = document.getElementById('filter'); f.value = 'vlite'; f.dispatchEvent(new Event('input'));",
        json!([]),
    );
    let want: usize = funcs
        .iter()
        .filter(|f| {
            let hay = format!(
                "{} {}",
                f["full_name"].as_str().unwrap(),
                f["package"].as_str().unwrap()
            );
            hay.to_lowercase().contains("vlite")
        })
        .count();
    let visible = |b: &Browser| {
        rows(b)
            .into_iter()
            .filter(|r| r["hidden"] == false)
            .map(|r| r["full"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let before = visible(&b);
    assert_eq!(before.len(), want, "{before:?}");
    assert!(before.len() < funcs.len());
    assert!(before.iter().all(|n| n.contains("vlite")), "{before:?}");
    b.run(
        "document.getElementById('status').textContent = 'waiting';",
        json!([]),
    );
    b.wait_until(
        "the page refreshed itself again",
        Duration::from_secs(15),
        "return document.getElementById('status').textContent.indexOf('updated') >= 0;",
    );
    assert_eq!(visible(&b), before, "filter or sort lost on refresh");
    assert_eq!(
        b.run(
            "return document.getElementById('filter').value + '|' + document.querySelector('#funcs thead th[aria-sort]').textContent",
            json!([])
        ),
        "vlite|Errors"
    );
    b.screenshot(&shots.join("2-filtered-sorted.png"));

    // Callers and callees, then "trace next call" on the handler, answered by a proxied
    // request made while the watcher waits.
    let detail = b.run(
        "var r = document.querySelector('#funcs tbody tr[data-full=\"vlite.Proxy::handle\"]'); r.querySelector('details').open = true; return r.querySelector('.detail').textContent;",
        json!([]),
    );
    let detail = detail.as_str().unwrap();
    assert!(detail.contains("http_server.GET /hello"), "{detail}");
    assert!(detail.contains("vlite.Proxy::forward"), "{detail}");
    let header = trace_handle_while(
        &b,
        &format!("{}/hello", v.proxy),
        "var t = document.querySelector('#trace-view svg text.header'); return t ? t.textContent : null;",
    );
    let header = header.as_str().unwrap();
    assert!(header.starts_with("trace "), "{header}");
    assert!(header.contains("vlite.Proxy::handle"), "{header}");
    assert!(header.contains(" spans"), "{header}");
    let labels = b.run(
        "return Array.from(document.querySelectorAll('#trace-view svg text.label')).map(function (t) { return t.textContent; }).join('\\n');",
        json!([]),
    );
    assert!(
        labels.as_str().unwrap().contains("vlite.Proxy::forward"),
        "{labels}"
    );
    assert!(!b
        .run(
            "return document.getElementById('trace-view').innerHTML",
            json!([])
        )
        .as_str()
        .unwrap()
        .contains("0.000"));
    b.screenshot(&shots.join("3-trace.png"));

    // The slowest recent call, held by the flight recorder: opened at once, no waiting.
    b.run(
        "document.querySelector('#funcs tbody tr[data-full=\"vlite.Proxy::handle\"] a.trace.recent').click();",
        json!([]),
    );
    // Its trace as held: the outermost held call of that trace, with the handler inside.
    let held = b.wait_until(
        "the held call in place",
        Duration::from_secs(5),
        "var s = document.getElementById('trace-status').textContent; var t = document.querySelector('#trace-view svg text.header'); return s.indexOf('Trace of') === 0 && t ? Array.from(document.querySelectorAll('#trace-view svg text.label')).map(function (l) { return l.textContent; }).join('\\n') : null;",
    );
    assert!(
        held.as_str().unwrap().contains("vlite.Proxy::handle"),
        "{held}"
    );

    // Cancel: a watcher on a function nobody calls, canceled from the page.
    b.run(
        "var r = document.querySelector('#funcs tbody tr[data-full=\"vlite.route_of\"]'); r.querySelector('details').open = true; r.querySelector('a.trace:not(.recent)').click();",
        json!([]),
    );
    b.wait_until(
        "the second watcher is waiting",
        Duration::from_secs(5),
        "return document.getElementById('trace-status').textContent.indexOf('Waiting') === 0;",
    );
    b.run(
        "document.getElementById('trace-cancel').click();",
        json!([]),
    );
    assert_eq!(
        b.run(
            "return document.getElementById('trace-status').textContent",
            json!([])
        ),
        "Canceled."
    );

    // The running spans as a tree, longest-running first: slow requests in flight.
    let stop = Arc::new(AtomicBool::new(false));
    let slow: Vec<_> = (0..6)
        .map(|_| {
            let (stop, url) = (stop.clone(), format!("{}/slow", v.proxy));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    get(&url);
                }
            })
        })
        .collect();
    let mut tree = Value::Null;
    for _ in 0..50 {
        b.goto(&format!("{}/", v.mon));
        tree = b.run(
            "return Array.from(document.querySelectorAll('#ps > ul > li')).map(function (li) { return li.querySelector('.el').textContent + ' ' + li.querySelector('.fn').textContent; });",
            json!([]),
        );
        if tree.as_array().is_some_and(|t| !t.is_empty())
            && b.run(
                "return document.querySelectorAll('#ps li details').length",
                json!([]),
            ) != 0
        {
            break;
        }
    }
    b.screenshot(&shots.join("4-running.png"));
    stop.store(true, Ordering::Relaxed);
    for t in slow {
        t.join().unwrap();
    }
    assert!(
        tree.as_array().is_some_and(|t| !t.is_empty()),
        "no running spans shown: {tree}"
    );
    let roots = b.run(
        "return Array.from(document.querySelectorAll('#ps > ul > li > details > summary .el, #ps > ul > li.leaf .el')).length",
        json!([]),
    );
    assert!(roots.as_u64().unwrap() >= 1);
    drop(b);

    // JavaScript off: the same table, plain, every trace link a plain link.
    let plain = Browser::start(false);
    plain.goto(&format!("{}/", v.mon));
    assert_eq!(
        plain.run("return 1", json!([])),
        1,
        "WebDriver's own scripts still run"
    );
    let funcs: Vec<Value> = serde_json::from_str(&get(&format!("{}/funcs/json", v.mon))).unwrap();
    assert_eq!(rows(&plain).len(), funcs.len());
    assert_eq!(
        plain.run("return document.querySelector('.tools').hidden", json!([])),
        true,
        "the filter box (which needs the script) stays hidden"
    );
    assert_eq!(
        plain.run(
            "return document.querySelectorAll('#funcs thead th button').length",
            json!([])
        ),
        0,
        "the page's script did not run"
    );
    let href = plain.run(
        "return document.querySelector('#funcs tbody tr[data-full=\"vlite.Proxy::handle\"] a.trace:not(.recent)').getAttribute('href')",
        json!([]),
    );
    let href = href.as_str().unwrap();
    assert!(href.starts_with("/trace/svg?regex="), "{href}");
    plain.screenshot(&shots.join("5-no-javascript.png"));
    eprintln!("screenshots in {}", shots.display());
}

/// The W3C Nu checker (npm `vnu-jar`, run by Debian's Java) finds no error in the page.
#[test]
fn console_html_validates() {
    let jar = std::env::var_os("MONKIT_VNU_JAR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            shots()
                .parent()
                .unwrap()
                .join("peers/node_modules/vnu-jar/build/dist/vnu.jar")
        });
    if !peers::have("java", "default-jre-headless") {
        return;
    }
    if !jar.is_file() {
        let line = format!(
            "peer missing: {} not found; `npm install --prefix target/peers vnu-jar` (scripts/test-all.sh does)",
            jar.display()
        );
        assert!(
            std::env::var("MONKIT_REQUIRE_PEERS").as_deref() != Ok("1"),
            "{line}"
        );
        eprintln!("SKIPPED {line}");
        return;
    }
    let v = vlite();
    // A page with running spans and every kind of row.
    let page = get(&format!("{}/", v.mon));
    let file = shots().join("console.html");
    std::fs::write(&file, &page).unwrap();
    let out = Command::new("java")
        .arg("-jar")
        .arg(&jar)
        .args(["--errors-only", "--format", "text"])
        .arg(&file)
        .output()
        .expect("java runs");
    assert!(
        out.status.success(),
        "the Nu checker found errors:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A trace of many small calls of one function, captured from the console: the calls are one
/// labelled band, every span is in the picture, clicking the band shows them, and the view
/// zooms with the wheel and pans by dragging.
#[test]
fn trace_bands_open_and_the_view_zooms() {
    if !have_browser() {
        return;
    }
    let v = vlite();
    let shots = shots();
    let b = Browser::start(true);
    b.goto(&format!("{}/", v.mon));
    b.wait_until(
        "the script set the table up",
        Duration::from_secs(10),
        "return !document.querySelector('.tools').hidden;",
    );
    b.run(
        "document.querySelector('#funcs tbody tr[data-full=\"vlite.Proxy::handle\"] details').open = true;",
        json!([]),
    );
    let label = trace_handle_while(
        &b,
        &format!("{}/batch", v.proxy),
        "var t = document.querySelector('#trace-view svg g.band text.label'); return t ? t.textContent : null;",
    );
    let label = label.as_str().unwrap();
    assert!(
        label.starts_with("×60 calls of vlite.lookup_item, "),
        "{label}"
    );
    // Every span of the trace is in the picture: as many bars as the header counts.
    let counted = b.run(
        "var svg = document.querySelector('#trace-view svg'); var h = svg.querySelector('text.header').textContent; return [svg.querySelectorAll('rect.span').length, parseInt(h.split(' · ')[3], 10), svg.querySelectorAll('g[data-member][visibility=\"hidden\"]').length];",
        json!([]),
    );
    assert_eq!(counted[0], counted[1], "bars and header: {counted}");
    assert!(counted[2].as_u64().unwrap() >= 60, "{counted}");
    b.screenshot(&shots.join("4-band.png"));
    // Opened: the members show, and the picture grows to hold them.
    let opened = b.run(
        "var svg = document.querySelector('#trace-view svg'); var h0 = svg.getAttribute('height'); svg.querySelector('g.band').dispatchEvent(new MouseEvent('click', {bubbles: true})); return [h0, svg.getAttribute('height'), svg.querySelectorAll('g[data-member][visibility=\"visible\"]').length];",
        json!([]),
    );
    let h0: f64 = opened[0].as_str().unwrap().parse().unwrap();
    let h1: f64 = opened[1].as_str().unwrap().parse().unwrap();
    assert!(h1 > h0, "{opened}");
    assert!(opened[2].as_u64().unwrap() >= 60, "{opened}");
    b.screenshot(&shots.join("5-band-open.png"));
    // The wheel zooms in around the pointer; a drag pans.
    let zoom = b.run(
        "var svg = document.querySelector('#trace-view svg'); var r = svg.getBoundingClientRect(); var w0 = svg.viewBox.baseVal.width; svg.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: r.left + r.width / 2, clientY: r.top + 30, bubbles: true, cancelable: true})); var w1 = svg.viewBox.baseVal.width; var x1 = svg.viewBox.baseVal.x; svg.dispatchEvent(new MouseEvent('mousedown', {clientX: r.left + 300, clientY: r.top + 30, bubbles: true})); svg.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + 200, clientY: r.top + 30, bubbles: true})); window.dispatchEvent(new MouseEvent('mouseup', {bubbles: true})); return [w0, w1, x1, svg.viewBox.baseVal.x];",
        json!([]),
    );
    let f = |i: usize| zoom[i].as_f64().unwrap();
    assert!(f(1) < f(0), "zoomed in: {zoom}");
    assert!(f(3) > f(2), "panned right: {zoom}");
    b.screenshot(&shots.join("6-zoomed.png"));
}
