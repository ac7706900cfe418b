//! A loopback HTTP sink for exporter tests: stores each POST's headers and body for the
//! official decoders, and answers as told (ok, 500, 503, slow). Not a collector.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const OK: u8 = 0;
pub const FAIL_500: u8 = 1;
pub const SLOW: u8 = 2;
pub const FAIL_503: u8 = 3;

/// One stored request: its headers (lower-cased names) and body.
pub type Stored = (Vec<(String, String)>, Vec<u8>);

/// A loopback HTTP sink: stores each POST's headers and body, answers as `mode` says.
pub struct Sink {
    pub url: String,
    pub got: Arc<Mutex<Vec<Stored>>>,
    pub mode: Arc<AtomicU8>,
}

pub fn sink(path: &str) -> Sink {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}{path}", l.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let mode = Arc::new(AtomicU8::new(OK));
    let (g, m) = (got.clone(), mode.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let (g, m) = (g.clone(), m.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = Vec::new();
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
                        if k == "content-length" {
                            len = v.parse().unwrap();
                        }
                        headers.push((k, v));
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let status = match m.load(Ordering::Relaxed) {
                        FAIL_500 => "500 Internal Server Error",
                        FAIL_503 => "503 Service Unavailable",
                        SLOW => {
                            std::thread::sleep(Duration::from_secs(3));
                            "200 OK"
                        }
                        _ => {
                            g.lock().unwrap().push((headers, body));
                            "200 OK"
                        }
                    };
                    let mut w = &s;
                    let _ = write!(w, "HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    Sink { url, got, mode }
}
