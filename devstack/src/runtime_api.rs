//! Lambda Runtime API emulator (`/2018-06-01/runtime/...`): runs a real function binary the way
//! Lambda does, handing it events through `invocation/next` and collecting its responses, so a
//! test proves a binary's `main` wiring, not only its handler.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::ServerHandle;

type Pending = HashMap<String, oneshot::Sender<Result<Value, Value>>>;

#[derive(Clone)]
struct Shared {
    queue: Arc<Mutex<mpsc::Receiver<(String, Value)>>>,
    pending: Arc<Mutex<Pending>>,
    init_error: Arc<Mutex<Option<Value>>>,
    /// When the function first asked for work: its initialisation (cold start) ended.
    first_next: Arc<std::sync::OnceLock<std::time::Instant>>,
    /// The function's timeout: each invocation's deadline is this long after it is handed out.
    timeout: Duration,
}

pub struct RuntimeApi {
    server: ServerHandle,
    submit: mpsc::Sender<(String, Value)>,
    shared: Shared,
}

impl RuntimeApi {
    /// A Runtime API for one function whose invocations may run for `timeout` (the template's
    /// `Timeout`, `Deployment::timeout`), as `lambda-runtime-deadline-ms` tells it.
    pub async fn start(timeout: Duration) -> std::io::Result<Self> {
        let (submit, queue) = mpsc::channel(64);
        let shared = Shared {
            queue: Arc::new(Mutex::new(queue)),
            pending: Arc::new(Mutex::new(HashMap::new())),
            init_error: Arc::new(Mutex::new(None)),
            first_next: Arc::new(std::sync::OnceLock::new()),
            timeout,
        };
        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        Ok(Self {
            server: crate::serve(router).await?,
            submit,
            shared,
        })
    }

    /// A command that runs the function binary `bin` against this Runtime API, with the
    /// environment Lambda gives every function (name, version, memory, log group and stream).
    pub fn command(
        &self,
        bin: impl AsRef<std::ffi::OsStr>,
        function_name: &str,
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(bin);
        command
            .env("AWS_LAMBDA_RUNTIME_API", self.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .kill_on_drop(true);
        command
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API` for the function process.
    pub fn address(&self) -> String {
        self.server.addr.to_string()
    }

    /// Invokes the function with `event`; `Err` carries the function's error payload.
    pub async fn invoke(
        &self,
        event: Value,
        timeout: Duration,
    ) -> anyhow::Result<Result<Value, Value>> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().await.insert(id.clone(), tx);
        self.submit.send((id, event)).await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_)) => anyhow::bail!("invocation dropped"),
            Err(_) => {
                let init = self.shared.init_error.lock().await.clone();
                anyhow::bail!("no response within {timeout:?}; init error: {init:?}")
            }
        }
    }

    /// When the function process first polled `invocation/next`, if it has.
    pub fn ready_at(&self) -> Option<std::time::Instant> {
        self.shared.first_next.get().copied()
    }
}

async fn next(State(shared): State<Shared>) -> Response {
    let _ = shared.first_next.set(std::time::Instant::now());
    let Some((id, event)) = shared.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d + shared.timeout).as_millis())
        .unwrap_or_default();
    let mut headers = HeaderMap::new();
    let set = |h: &mut HeaderMap, k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set(&mut headers, "lambda-runtime-aws-request-id", id);
    set(
        &mut headers,
        "lambda-runtime-deadline-ms",
        deadline.to_string(),
    );
    set(
        &mut headers,
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:local".into(),
    );
    set(
        &mut headers,
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
    );
    set(&mut headers, "content-type", "application/json".into());
    (StatusCode::OK, headers, event.to_string()).into_response()
}

async fn respond(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(
        &shared,
        &id,
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null)),
    )
    .await
}

async fn error(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(
        &shared,
        &id,
        Err(serde_json::from_slice(&body).unwrap_or(Value::Null)),
    )
    .await
}

async fn finish(shared: &Shared, id: &str, result: Result<Value, Value>) -> StatusCode {
    match shared.pending.lock().await.remove(id) {
        Some(tx) => {
            let _ = tx.send(result);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    *shared.init_error.lock().await = Some(serde_json::from_slice(&body).unwrap_or(Value::Null));
    StatusCode::ACCEPTED
}
