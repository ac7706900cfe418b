//! The gRPC layers on a real tonic server and channel over loopback, with tonic-health's
//! service: a unary call that succeeds and one that fails with NOT_FOUND, a server stream whose
//! call lasts until its body ends, and the trace crossing in metadata.
#![cfg(feature = "grpc")]

mod common;

use common::{errors, eventually, func};

use monkit::Registry;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower_layer::Layer;

/// Every finished span of a registry.
#[derive(Default)]
struct Seen(Mutex<Vec<monkit::FinishedSpan>>);

impl monkit::SpanObserver for Seen {
    fn finish(&self, span: &monkit::FinishedSpan) {
        self.0.lock().unwrap().push(span.clone());
    }
}

struct Pair {
    reporter: tonic_health::server::HealthReporter,
    client: HealthClient<monkit_tower::GrpcClientService<tonic::transport::Channel>>,
}

async fn start(server_reg: &Registry, client_reg: &Registry) -> Pair {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>>()
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let layer = monkit_tower::GrpcServerLayer::new(server_reg);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(health)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap()
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let traced = monkit_tower::GrpcClientLayer::new(client_reg).layer(channel);
    Pair {
        reporter,
        client: HealthClient::new(traced),
    }
}

const CHECK: &str = "grpc.health.v1.Health/Check";
const WATCH: &str = "grpc.health.v1.Health/Watch";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_by_method_and_code() {
    let (server, client) = (Registry::new(), Registry::new());
    let mut p = start(&server, &client).await;
    let ok = p
        .client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(ok.into_inner().status, 1, "SERVING");
    let missing = p
        .client
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let s = func(&server, "grpc_server", CHECK).expect("server function");
    let c = func(&client, "grpc_client", CHECK).expect("client function");
    eventually("both calls ended", || {
        s.stats().current == 0 && s.stats().total() == 2 && c.stats().current == 0
    })
    .await;
    for f in [&s, &c] {
        assert_eq!(
            f.stats().successes,
            1,
            "{} {:?}",
            f.full_name(),
            f.stats().errors
        );
        assert_eq!(errors(f, "not_found"), 1, "{}", f.full_name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_lasts_until_its_body_ends() {
    let (server, client) = (Registry::new(), Registry::new());
    let mut p = start(&server, &client).await;
    let mut stream = p
        .client
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().status, 1);
    let s = func(&server, "grpc_server", WATCH).unwrap();
    let c = func(&client, "grpc_client", WATCH).unwrap();
    // Headers were sent long ago; the call runs while the stream is open.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!((s.stats().current, c.stats().current), (1, 1));
    p.reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    assert_eq!(stream.message().await.unwrap().unwrap().status, 2);
    // The client hangs up: both ends see the call end, the server's as canceled.
    drop(stream);
    eventually("the server's stream call ended", || s.stats().current == 0).await;
    assert_eq!(c.stats().current, 0);
    assert_eq!(errors(&s, "canceled") + errors(&s, "cancelled"), 1);
    let lasted = s.stats().failure_times;
    assert!(
        lasted.max >= 100_000_000.0,
        "the call lasted the stream: {lasted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_crosses_in_metadata() {
    let reg = Registry::new();
    reg.set_sampler(monkit::trace::Sampler::Always);
    let seen = Arc::new(Seen::default());
    let _observing = reg.observe(seen.clone());
    let mut p = start(&reg, &reg).await;
    p.client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    eventually("both spans finished", || seen.0.lock().unwrap().len() == 2).await;
    let spans = seen.0.lock().unwrap().clone();
    let names: Vec<&str> = spans.iter().map(|s| s.start.func.full_name()).collect();
    let client = spans
        .iter()
        .find(|s| s.start.func.full_name() == format!("grpc_client.{CHECK}"))
        .expect("client span");
    let server = spans
        .iter()
        .find(|s| s.start.func.full_name() == format!("grpc_server.{CHECK}"))
        .unwrap_or_else(|| panic!("server span, continued from the metadata: {names:?}"));
    assert_eq!(server.start.trace_id, client.start.trace_id);
    assert_eq!(server.start.parent_id, Some(client.start.span_id));
    let note = |s: &monkit::FinishedSpan, k: &str| {
        s.annotations
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(note(server, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(note(server, "rpc.method").as_deref(), Some("Check"));
    assert_eq!(note(client, "rpc.grpc.status_code").as_deref(), Some("0"));
}
