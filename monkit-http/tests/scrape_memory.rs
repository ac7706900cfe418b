//! Scrapes do not amplify memory: 16 clients scraping /metrics at once at 10,000 functions
//! cost about one rendering, not sixteen, and the memory comes back afterwards.
//!
//! Alone in its own test binary, so the process's memory is this test's. Linux only (reads
//! `/proc/self/status`).

use std::io::Read;
use std::time::{Duration, Instant};

const FUNCS: usize = 10_000;
const SCRAPERS: usize = 16;

/// A field of /proc/self/status, in bytes.
fn status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Reads the whole body and throws it away, so the clients hold no copies.
fn scrape(url: &str) -> usize {
    let r = ureq::get(url).call().unwrap();
    assert_eq!(r.status(), 200);
    let mut reader = r.into_reader();
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0;
    loop {
        match reader.read(&mut buf).unwrap() {
            0 => return n,
            k => n += k,
        }
    }
}

fn mb(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

#[test]
fn concurrent_scrapes_share_one_rendering() {
    if status_kb("VmHWM:").is_none() {
        eprintln!("SKIPPED: no /proc/self/status on this system");
        return;
    }
    let reg = monkit::Registry::new();
    for s in 0..10 {
        let scope = reg.scope(&format!("service{s}"));
        for i in 0..FUNCS / 10 {
            let f = scope.func(&format!("handler_number_{i:04}"));
            for _ in 0..3 {
                f.task(|| std::hint::black_box(i));
            }
            let _ = f.task_result(|| Err::<(), _>(std::io::Error::other("x")));
        }
    }
    let srv = monkit_http::serve(reg.clone(), "127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", srv.local_addr());
    let page = scrape(&url) as u64;
    assert!(page > 5 << 20, "a large page: {page} bytes");
    std::thread::sleep(Duration::from_millis(200));
    let idle = status_kb("VmRSS:").unwrap();
    // Reset the peak so it measures the concurrent scrapes only.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();

    std::thread::scope(|s| {
        let clients: Vec<_> = (0..SCRAPERS).map(|_| s.spawn(|| scrape(&url))).collect();
        for c in clients {
            assert_eq!(
                c.join().unwrap() as u64,
                page,
                "every scrape the whole page"
            );
        }
    });
    let peak = status_kb("VmHWM:").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut retained = status_kb("VmRSS:").unwrap();
    while retained > idle + page && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        retained = status_kb("VmRSS:").unwrap();
    }
    eprintln!(
        "{FUNCS} functions, page {:.1} MB: idle RSS {:.1} MB, peak during {SCRAPERS} scrapes {:.1} MB, after {:.1} MB",
        mb(page),
        mb(idle),
        mb(peak),
        mb(retained)
    );
    assert!(
        peak < idle + 4 * page,
        "peak {:.1} MB over idle {:.1} MB + 4 pages of {:.1} MB",
        mb(peak),
        mb(idle),
        mb(page)
    );
    assert!(
        retained <= idle + page,
        "{:.1} MB held after the scrapes, idle was {:.1} MB",
        mb(retained),
        mb(idle)
    );
}
