//! Pushes to a real carbon (Debian's graphite-carbon) on a loopback port, then reads the
//! whisper files it wrote back with whisper-fetch: the values the program recorded.

use monkit_testsupport::peers;
use monkit_testsupport::ports;
use ports::free_port;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A carbon-cache in the foreground with its own directory; killed on drop.
struct Carbon {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Drop for Carbon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn carbon() -> Option<Carbon> {
    if !peers::have("carbon-cache", "graphite-carbon")
        || !peers::have("whisper-fetch", "python3-whisper")
    {
        return None;
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("monkit-carbon-{}-{port}", std::process::id()));
    std::fs::create_dir_all(dir.join("whisper")).unwrap();
    std::fs::create_dir_all(dir.join("log")).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("carbon.conf"),
        format!(
            "[cache]\nSTORAGE_DIR = {d}\nLOCAL_DATA_DIR = {d}/whisper\nWHITELISTS_DIR = {d}\n\
             CONF_DIR = {d}\nLOG_DIR = {d}/log\nPID_DIR = {d}\nUSER =\nMAX_CACHE_SIZE = inf\n\
             MAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\n\
             LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {port}\n\
             ENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\n\
             PICKLE_RECEIVER_PORT = {}\nCACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = {}\n\
             LOG_UPDATES = False\nLOG_CREATES = False\nWHISPER_AUTOFLUSH = True\nENABLE_TAGS = False\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("storage-schemas.conf"),
        "[all]\npattern = .*\nretentions = 1s:1h\n",
    )
    .unwrap();
    std::fs::write(dir.join("storage-aggregation.conf"), "").unwrap();
    let child = Command::new("carbon-cache")
        .arg(format!("--config={}", dir.join("carbon.conf").display()))
        .arg(format!("--pidfile={}", dir.join("carbon.pid").display()))
        .arg(format!("--logdir={}", dir.join("log").display()))
        .arg("--nodaemon")
        .arg("start")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("carbon-cache is installed");
    let c = Carbon { port, dir, child };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "carbon never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(c)
}

/// The non-empty values of a whisper file over the last minute, via whisper-fetch.
fn fetch(file: &Path) -> Vec<f64> {
    let from = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 60;
    let out = Command::new("whisper-fetch")
        .arg(format!("--from={from}"))
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

#[test]
fn a_real_carbon_stores_what_the_program_recorded() {
    let Some(c) = carbon() else { return };
    let reg = monkit::Registry::new();
    let scope = reg.scope("shop::web");
    scope.meter("orders").mark(42);
    scope.counter_with("queue", &[("queue", "email")]).inc(7);
    let f = scope.func("checkout");
    for _ in 0..5 {
        f.task(|| ());
    }
    let reporter = monkit_graphite::Builder::new(&format!("127.0.0.1:{}", c.port))
        .prefix("tests.monkit")
        .interval(Duration::from_millis(300))
        .install(&reg)
        .unwrap();

    let root = c.dir.join("whisper/tests/monkit/shop__web");
    let files = [
        (root.join("orders/total.wsp"), 42.0),
        (root.join("queue/queue_email/value.wsp"), 7.0),
        (root.join("queue/queue_email/high.wsp"), 7.0),
        (root.join("function/name_checkout/successes.wsp"), 5.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    for (file, want) in &files {
        loop {
            if file.exists() {
                let got = fetch(file);
                if !got.is_empty() {
                    assert!(got.iter().all(|v| v == want), "{}: {got:?}", file.display());
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} never written; whisper tree: {:?}",
                file.display(),
                std::fs::read_dir(c.dir.join("whisper")).map(|d| d.count())
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Carbon going away costs counted failures, not a blocked program.
    drop(c);
    let t = Instant::now();
    for _ in 0..1000 {
        f.task(|| ());
    }
    assert!(t.elapsed() < Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(1500));
    let mut failed = 0.0;
    reg.stats(|k, field, v| {
        if k.measurement == "pushes_failed" && field == "total" {
            failed = v;
        }
    });
    assert!(failed >= 1.0, "failed pushes counted");
    reporter.shutdown(std::time::Duration::from_secs(5));
}
