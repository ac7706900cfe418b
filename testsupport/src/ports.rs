//! Ports for the servers a test starts as child processes, which bind them later: a test
//! cannot hand them a bound socket. They are chosen below the kernel's ephemeral range
//! (32768 and up on Linux), where every `bind("127.0.0.1:0")` of this and every other test
//! lands, so no test's listener takes one in the meantime; and none is handed out twice in a
//! process. (A port from `bind(":0")`, released and bound again by a child, was seen taken by a
//! sink started between the two.)

use std::net::TcpListener;
use std::sync::Mutex;

static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());

const LOW: u16 = 20_000;
const SPAN: u64 = 12_000;

/// A loopback TCP port nobody listens on now, in 20000-31999.
pub fn free_port() -> u16 {
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    // Where this process starts looking: apart from the other test processes running now.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let start = u64::from(std::process::id()).wrapping_mul(7_919) ^ nanos;
    for i in 0..SPAN {
        let port = LOW + ((start + i * 1_009) % SPAN) as u16;
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free loopback port in {LOW}-{}", LOW as u64 + SPAN - 1);
}
