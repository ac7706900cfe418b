//! The tavern's activity workers, over gRPC: a workflow schedules an activity on the queue
//! (`dispatch`), a worker long-polls the queue (`tavern.v1.Worker/Poll`), runs the activity
//! under the trace context the task carries, and reports back (`Worker/Complete`), the way
//! Cadence and Temporal workers talk to their frontend. Both ends are instrumented by
//! monkit-tower's gRPC layers, so one request's trace runs from the HTTP call through the
//! workflow, over gRPC into the worker's activity, and back.
//!
//! The messages match `proto/tavern.proto` field for field (prost derives them here, so the
//! build needs no protoc); build.rs generates the service and client code.

use crate::activities::{self, ActivityError};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// `tavern.v1.PollRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PollRequest {
    #[prost(string, tag = "1")]
    pub worker: String,
    #[prost(uint32, tag = "2")]
    pub wait_ms: u32,
}

/// `tavern.v1.ActivityTask`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActivityTask {
    #[prost(string, tag = "1")]
    pub task_id: String,
    #[prost(string, tag = "2")]
    pub activity: String,
    #[prost(string, tag = "3")]
    pub input: String,
    #[prost(map = "string, string", tag = "4")]
    pub headers: HashMap<String, String>,
}

/// `tavern.v1.ActivityResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActivityResult {
    #[prost(string, tag = "1")]
    pub task_id: String,
    #[prost(string, tag = "2")]
    pub output: String,
    #[prost(string, tag = "3")]
    pub error: String,
}

/// `tavern.v1.Ack`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ack {}

include!(concat!(env!("OUT_DIR"), "/tavern.v1.Worker.rs"));

/// The longest a poll waits for a task.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How long a workflow waits for a worker to finish its activity.
const ACTIVITY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most tasks waiting for a worker; past it, scheduling fails as `transient`.
const MAX_QUEUED: usize = 1024;

/// The frontend's side: tasks waiting for a worker, workflows waiting for their results.
#[derive(Default)]
pub struct Queue {
    tasks: Mutex<VecDeque<ActivityTask>>,
    arrived: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<ActivityResult>>>,
    next_id: AtomicU64,
}

impl Queue {
    /// Schedules `activity` for a worker and waits for its result. The task carries this
    /// span's trace context, so the worker's run is a child of it.
    #[monkit::task]
    pub async fn dispatch(&self, activity: &str, input: &str) -> Result<String, ActivityError> {
        let task_id = format!("t{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut headers = HashMap::new();
        if let Some(here) = monkit::current_span() {
            monkit::propagation::inject(&mut headers, here, false);
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut tasks = self.tasks.lock().unwrap();
            if tasks.len() >= MAX_QUEUED {
                return Err(ActivityError::Transient);
            }
            self.waiting.lock().unwrap().insert(task_id.clone(), tx);
            tasks.push_back(ActivityTask {
                task_id: task_id.clone(),
                activity: activity.to_owned(),
                input: input.to_owned(),
                headers,
            });
            // Through the `metrics` facade, as a library would record: monkit-metrics puts
            // these in scope `tavern` beside the rest.
            metrics::gauge!("tavern.queue_depth").set(tasks.len() as f64);
        }
        metrics::counter!("tavern.tasks_scheduled", "activity" => activity.to_owned()).increment(1);
        self.arrived.notify_one();
        let result = tokio::time::timeout(ACTIVITY_TIMEOUT, rx).await;
        self.waiting.lock().unwrap().remove(&task_id);
        self.tasks.lock().unwrap().retain(|t| t.task_id != task_id);
        match result {
            Ok(Ok(r)) if r.error.is_empty() => Ok(r.output),
            Ok(Ok(r)) => Err(ActivityError::from_kind(&r.error)),
            // No worker finished it in time: the workflow may retry.
            _ => Err(ActivityError::Transient),
        }
    }
}

#[tonic::async_trait]
impl worker_server::Worker for Arc<Queue> {
    async fn poll(
        &self,
        request: tonic::Request<PollRequest>,
    ) -> Result<tonic::Response<ActivityTask>, tonic::Status> {
        let wait = Duration::from_millis(request.get_ref().wait_ms.into()).min(MAX_WAIT);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.arrived.notified();
            let next = {
                let mut tasks = self.tasks.lock().unwrap();
                let t = tasks.pop_front();
                metrics::gauge!("tavern.queue_depth").set(tasks.len() as f64);
                t
            };
            if let Some(t) = next {
                return Ok(tonic::Response::new(t));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(tonic::Response::new(ActivityTask::default()));
            }
        }
    }

    #[monkit::task]
    async fn complete(
        &self,
        request: tonic::Request<ActivityResult>,
    ) -> Result<tonic::Response<Ack>, tonic::Status> {
        let r = request.into_inner();
        let waiter = self.waiting.lock().unwrap().remove(&r.task_id);
        match waiter {
            Some(w) => {
                let _ = w.send(r);
                Ok(tonic::Response::new(Ack {}))
            }
            None => {
                // The id is the caller's: echo a bounded part of it, never all of it.
                let id: String = r.task_id.chars().take(64).collect();
                let more = if id.len() < r.task_id.len() {
                    "..."
                } else {
                    ""
                };
                Err(tonic::Status::not_found(format!(
                    "no task {id:?}{more} is waiting for a result"
                )))
            }
        }
    }
}

type Client =
    worker_client::WorkerClient<monkit_tower::GrpcClientService<tonic::transport::Channel>>;

/// Runs one task: the activity, then its report, both in the trace the task came with.
#[monkit::task]
async fn execute(client: &mut Client, task: ActivityTask) -> Result<(), tonic::Status> {
    let result = match task.activity.as_str() {
        "greet_customer" => activities::greet_customer(&task.input).await,
        _ => Err(ActivityError::BadInput),
    };
    let (output, error) = match result {
        Ok(o) => (o, String::new()),
        Err(e) => (String::new(), monkit::ErrorKind::error_kind(&e).to_owned()),
    };
    client
        .complete(ActivityResult {
            task_id: task.task_id,
            output,
            error,
        })
        .await?;
    Ok(())
}

/// A worker: polls the frontend at `addr` for tasks until the process ends.
pub async fn run(addr: std::net::SocketAddr, name: String) {
    use monkit::trace::InSpanExt;
    let channel = match tonic::transport::Endpoint::from_shared(format!("http://{addr}")) {
        Ok(e) => e.connect_lazy(),
        Err(e) => {
            eprintln!("tavern worker: bad frontend address {addr}: {e}");
            return;
        }
    };
    let traced = tower_layer::Layer::layer(
        &monkit_tower::GrpcClientLayer::new(monkit::default_registry()),
        channel,
    );
    let mut client = worker_client::WorkerClient::new(traced);
    loop {
        let polled = client
            .poll(PollRequest {
                worker: name.clone(),
                wait_ms: 5_000,
            })
            .await;
        match polled {
            Ok(task) => {
                let task = task.into_inner();
                if task.task_id.is_empty() {
                    continue;
                }
                let parent = monkit::propagation::extract(&task.headers).map(|i| i.parent());
                let _ = execute(&mut client, task).in_span_opt(parent).await;
            }
            // The frontend is not up yet, or going away: try again shortly.
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
