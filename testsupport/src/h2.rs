//! HTTP/2 clients that stop reading: connections that open no receive window (and answer the
//! server's PINGs, as every h2 client does while it is driven) asking for responses they never
//! read. What a server must bound in bytes and time.

use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Duration;

/// Stalled connections: their drivers (they end when the server closes the connection), the
/// status each request got, and what keeps them open (dropping it lets them go).
pub struct Stalled {
    pub drivers: Vec<tokio::task::JoinHandle<Result<(), h2::Error>>>,
    pub statuses: Vec<u16>,
    pub held: (Vec<h2::client::SendRequest<Bytes>>, Vec<h2::RecvStream>),
}

/// Opens `conns` connections to `addr` with a receive window of 0 and sends `per_conn`
/// `GET path` on each; waits for every answer's head (heads are not flow-controlled).
pub async fn stalled_gets(addr: SocketAddr, conns: usize, per_conn: usize, path: &str) -> Stalled {
    let mut drivers = Vec::new();
    let mut pending = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..conns {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, conn) = h2::client::Builder::new()
            .initial_window_size(0)
            .handshake::<_, Bytes>(tcp)
            .await
            .unwrap();
        drivers.push(tokio::spawn(conn));
        let mut client = client.ready().await.unwrap();
        for _ in 0..per_conn {
            let req = http::Request::get(format!("http://{addr}{path}"))
                .body(())
                .unwrap();
            let (resp, _) = client.send_request(req, true).unwrap();
            pending.push(resp);
            client = client.ready().await.unwrap();
        }
        clients.push(client);
    }
    let mut statuses = Vec::new();
    let mut bodies = Vec::new();
    for resp in pending {
        let r = tokio::time::timeout(Duration::from_secs(20), resp).await;
        let r = r.expect("every answer's head arrives").unwrap();
        statuses.push(r.status().as_u16());
        // Never read, so never a window opened.
        bodies.push(r.into_body());
    }
    Stalled {
        drivers,
        statuses,
        held: (clients, bodies),
    }
}

/// Waits until the server has closed every stalled connection, at most `within` each.
pub async fn closed(
    drivers: Vec<tokio::task::JoinHandle<Result<(), h2::Error>>>,
    within: Duration,
) {
    for d in drivers {
        let _ = tokio::time::timeout(within, d)
            .await
            .expect("the server closed the connection");
    }
}
