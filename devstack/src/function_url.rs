//! Function URL emulator: an HTTP listener on 127.0.0.1 that turns each request into the payload a
//! Lambda Function URL delivers (payload format 2.0) and the handler's answer into the HTTP response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use http::{Request, StatusCode};

use crate::ServerHandle;

pub type Handler = Arc<
    dyn Fn(
            LambdaFunctionUrlRequest,
        ) -> Pin<Box<dyn Future<Output = LambdaFunctionUrlResponse> + Send>>
        + Send
        + Sync,
>;

/// Function URLs refuse payloads over 6 MB before the function runs.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

pub async fn serve(handler: Handler) -> std::io::Result<ServerHandle> {
    let router = axum::Router::new().fallback(invoke).with_state(handler);
    crate::serve(router).await
}

async fn invoke(State(handler): State<Handler>, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_PAYLOAD).await else {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
        );
    };
    let mut event = LambdaFunctionUrlRequest::default();
    event.version = Some("2.0".into());
    event.raw_path = Some(parts.uri.path().to_string());
    event.raw_query_string = Some(parts.uri.query().unwrap_or_default().to_string());
    event.headers = parts.headers.clone();
    event.query_string_parameters = parts
        .uri
        .query()
        .map(|q| url_pairs(q).into_iter().collect())
        .unwrap_or_default();
    event.request_context.http.method = Some(parts.method.as_str().to_string());
    event.request_context.http.path = Some(parts.uri.path().to_string());
    event.request_context.http.protocol = Some("HTTP/1.1".into());
    event.request_context.http.source_ip = Some("127.0.0.1".into());
    event.request_context.request_id = Some(uuid::Uuid::new_v4().to_string());
    if !bytes.is_empty() {
        match std::str::from_utf8(&bytes) {
            Ok(text) => event.body = Some(text.to_string()),
            Err(_) => {
                event.body = Some(base64::engine::general_purpose::STANDARD.encode(&bytes));
                event.is_base64_encoded = true;
            }
        }
    }
    let answer = handler(event).await;
    let mut builder = Response::builder().status(u16::try_from(answer.status_code).unwrap_or(500));
    for (name, value) in answer.headers.iter() {
        builder = builder.header(name, value);
    }
    builder
        .body(Body::from(answer.body.unwrap_or_default()))
        .unwrap_or_else(|_| plain(StatusCode::BAD_GATEWAY, "bad function response"))
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn plain(status: StatusCode, message: &str) -> Response {
    Response::builder()
        .status(status)
        .body(Body::from(message.to_string()))
        .unwrap_or_default()
}
