//! Lambda `Invoke` API emulator (`POST /2015-03-31/functions/{name}/invocations`), so the AWS
//! SDK's Lambda client (`AWS_ENDPOINT_URL_LAMBDA`) can invoke the functions the local stack runs
//! in-process, the way an operator's CLI invokes them in AWS. Answers as Lambda does: the payload
//! with 200 for `RequestResponse`, 202 for `Event`, a function error as 200 with
//! `X-Amz-Function-Error: Unhandled` and `{"errorMessage", "errorType"}`, and an unknown function
//! as 404 `ResourceNotFoundException`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{json, Value};

use crate::ServerHandle;

/// A function's handler: its event in, its result or its error message out.
pub type Handler =
    Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Result<Value, String>> + Send>> + Send + Sync>;

/// The largest synchronous request payload Lambda accepts.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// Serves `functions` (by name) on an ephemeral 127.0.0.1 port.
pub async fn serve(functions: HashMap<String, Handler>) -> std::io::Result<ServerHandle> {
    let router = axum::Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .with_state(Arc::new(functions));
    crate::serve(router).await
}

async fn invoke(
    State(functions): State<Arc<HashMap<String, Handler>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A name, a partial ARN or a full ARN: the function name is the last segment.
    let short = name.rsplit(':').next().unwrap_or(&name).to_string();
    let Some(handler) = functions.get(&short).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: arn:aws:lambda:us-east-1:123456789012:function:{short}"),
        );
    };
    let event = match event_of(&body) {
        Ok(event) => event,
        Err(refusal) => return refusal,
    };
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    if kind == "Event" {
        tokio::spawn(async move {
            if let Err(e) = handler(event).await {
                tracing::warn!(function = %short, error = %e, "asynchronous invocation failed");
            }
        });
        return StatusCode::ACCEPTED.into_response();
    }
    answer(handler(event).await)
}

/// The request's event, or Lambda's refusal of the payload.
#[allow(clippy::result_large_err)] // an axum Response is the natural early answer of a handler
fn event_of(body: &[u8]) -> Result<Value, Response> {
    if body.len() > MAX_PAYLOAD {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
        ));
    }
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json",
        )
    })
}

/// A synchronous invocation's answer: the payload, or the function's error as Lambda reports it.
fn answer(result: Result<Value, String>) -> Response {
    match result {
        Ok(payload) => (
            StatusCode::OK,
            [("x-amz-executed-version", "$LATEST")],
            payload.to_string(),
        )
            .into_response(),
        Err(message) => {
            let body = json!({"errorMessage": message, "errorType": "HandlerError"});
            (
                StatusCode::OK,
                [
                    ("x-amz-function-error", "Unhandled"),
                    ("x-amz-executed-version", "$LATEST"),
                ],
                body.to_string(),
            )
                .into_response()
        }
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"Type": "User", "message": message});
    (
        status,
        [("x-amzn-errortype", kind.to_string())],
        body.to_string(),
    )
        .into_response()
}
