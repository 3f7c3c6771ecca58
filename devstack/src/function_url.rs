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

/// Serves `handler` at a Function URL with no concurrency of its own reserved.
pub async fn serve(handler: Handler) -> std::io::Result<ServerHandle> {
    serve_reserved(handler, None).await
}

/// Serves `handler`, when the function's concurrency is reserved at `n`, as Lambda does: at most
/// `n` requests at once and `10 × n` started a second (a function URL's request rate is ten
/// times its reserved concurrency); a request beyond either is answered 429 before the function
/// runs.
pub async fn serve_reserved(
    handler: Handler,
    reserved: Option<usize>,
) -> std::io::Result<ServerHandle> {
    let slots = reserved.map(|n| {
        let rate = RateWindow::new(10 * n);
        Arc::new((
            Arc::new(tokio::sync::Semaphore::new(n)),
            std::sync::Mutex::new(rate),
        ))
    });
    let router = axum::Router::new()
        .fallback(invoke)
        .with_state((handler, slots));
    crate::serve(router).await
}

/// Requests started in the current second, at most `per_second`.
#[derive(Debug)]
struct RateWindow {
    per_second: usize,
    started: Option<std::time::Instant>,
    count: usize,
}

impl RateWindow {
    fn new(per_second: usize) -> Self {
        Self {
            per_second,
            started: None,
            count: 0,
        }
    }

    /// Whether a request starting at `now` is within the rate (and counts it if so).
    fn admit(&mut self, now: std::time::Instant) -> bool {
        let fresh = self
            .started
            .is_none_or(|at| now.duration_since(at) >= std::time::Duration::from_secs(1));
        if fresh {
            self.started = Some(now);
            self.count = 0;
        }
        if self.count >= self.per_second {
            return false;
        }
        self.count += 1;
        true
    }
}

/// Lambda's answer to a Function URL request beyond the function's reserved concurrency. The
/// status is documented (429, `TooManyRequestsException`); the body's wording is assumed.
const THROTTLED: &str = r#"{"Message":"Rate Exceeded."}"#;

/// The reserved concurrency's slots and its request rate, when reserved.
type Slots = Option<Arc<(Arc<tokio::sync::Semaphore>, std::sync::Mutex<RateWindow>)>>;

/// A slot for a request now, or `Err` when it is beyond the reserved concurrency or rate.
fn admit(
    slots: &(Arc<tokio::sync::Semaphore>, std::sync::Mutex<RateWindow>),
) -> Result<tokio::sync::OwnedSemaphorePermit, ()> {
    let slot = slots.0.clone().try_acquire_owned().map_err(|_| ())?;
    let within = slots
        .1
        .lock()
        .map(|mut w| w.admit(std::time::Instant::now()));
    within.unwrap_or(false).then_some(slot).ok_or(())
}

async fn invoke(
    State((handler, slots)): State<(Handler, Slots)>,
    request: Request<Body>,
) -> Response {
    // Held until the function has answered.
    let _slot = match slots.as_deref().map(admit) {
        Some(Err(())) => {
            let mut throttled = plain(StatusCode::TOO_MANY_REQUESTS, THROTTLED);
            throttled.headers_mut().insert(
                "x-amzn-errortype",
                http::HeaderValue::from_static("TooManyRequestsException"),
            );
            return throttled;
        }
        Some(Ok(slot)) => Some(slot),
        None => None,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_ten_requests_a_second_start_per_reserved_slot() {
        let mut window = RateWindow::new(10);
        let start = std::time::Instant::now();
        let at = |ms| start + std::time::Duration::from_millis(ms);
        assert!((0..10).all(|i| window.admit(at(i * 50))));
        assert!(!window.admit(at(999)), "the eleventh in the same second");
        assert!(window.admit(at(1_000)), "a new second");
        assert_eq!(window.count, 1);
    }

    /// Two requests held by a function whose concurrency is reserved at 2: a third is throttled
    /// before the function runs, and once one has answered the next is served.
    #[tokio::test]
    async fn requests_beyond_the_reserved_concurrency_are_throttled_before_the_function_runs() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (g, r) = (gate.clone(), ran.clone());
        let handler: Handler = Arc::new(move |_request| {
            let (gate, ran) = (g.clone(), r.clone());
            Box::pin(async move {
                ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _open = gate.acquire().await;
                let mut answer = LambdaFunctionUrlResponse::default();
                answer.status_code = 200;
                answer
            })
        });
        let server = serve_reserved(handler, Some(2)).await.unwrap();
        let client = reqwest::Client::new();
        let call = || client.post(format!("{}/gainsight", server.url())).send();
        let held: Vec<_> = (0..2).map(|_| tokio::spawn(call())).collect();
        while ran.load(std::sync::atomic::Ordering::SeqCst) < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let throttled = call().await.unwrap();
        assert_eq!(throttled.status(), 429);
        let kind = throttled.headers()["x-amzn-errortype"].clone();
        assert_eq!(kind, "TooManyRequestsException");
        assert_eq!(throttled.text().await.unwrap(), THROTTLED);
        assert_eq!(
            ran.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "the function never ran"
        );
        gate.add_permits(3);
        for h in held {
            assert_eq!(h.await.unwrap().unwrap().status(), 200);
        }
        assert_eq!(call().await.unwrap().status(), 200);
    }
}
