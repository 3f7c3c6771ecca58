//! The tenant's API rate limit, as Gainsight's gateway enforces it: a fixed window of calls per
//! minute, `x-ratelimit-limit` and `x-ratelimit-remaining` on every answer, and a 429 with a
//! `Retry-After` of the seconds left in the window once it is used up.

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{envelope_error, lock, TenantState};

/// Calls allowed per window. Gainsight's general data APIs allow 100 a minute; tests shorten the
/// window so that a reset is seen without waiting a minute.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct RateLimit {
    pub calls: u32,
    #[serde(default = "minute_ms")]
    pub window_ms: u64,
}

fn minute_ms() -> u64 {
    60_000
}

/// The current window of a limited tenant.
pub(super) struct Window {
    pub(super) limit: RateLimit,
    started: Instant,
    used: u32,
}

impl Window {
    pub(super) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            started: Instant::now(),
            used: 0,
        }
    }

    /// Counts one call: `Ok(remaining)` when the window has room, `Err(seconds to wait)` when not.
    fn take(&mut self) -> Result<u32, u64> {
        let length = Duration::from_millis(self.limit.window_ms);
        if self.started.elapsed() >= length {
            self.started = Instant::now();
            self.used = 0;
        }
        if self.used >= self.limit.calls {
            let left = length.saturating_sub(self.started.elapsed());
            return Err(left.as_millis().div_ceil(1000).max(1) as u64);
        }
        self.used += 1;
        Ok(self.limit.calls - self.used)
    }
}

/// Middleware over the tenant's API routes: refuses calls over the limit and reports what is left.
pub(super) async fn enforce(State(tenant): TenantState, request: Request, next: Next) -> Response {
    let taken = {
        let mut t = lock(&tenant);
        match t.window.as_mut() {
            None => None,
            Some(window) => {
                let limit = window.limit.calls;
                let taken = window.take();
                if taken.is_err() {
                    t.stats.api_calls += 1;
                    t.stats.rate_limited_calls += 1;
                }
                Some((limit, taken))
            }
        }
    };
    let Some((limit, taken)) = taken else {
        return next.run(request).await;
    };
    let (mut response, remaining) = match taken {
        Ok(remaining) => (next.run(request).await, remaining),
        Err(wait_s) => {
            let mut refused = envelope_error(
                StatusCode::TOO_MANY_REQUESTS,
                "GS_RATE_LIMIT",
                "Rate limit exceeded",
            );
            refused
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(wait_s));
            (refused, 0)
        }
    };
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    response
}

/// `POST /__emulator/rate_limit`: limits the tenant's API calls from now on.
pub(super) async fn set(State(tenant): TenantState, Json(limit): Json<RateLimit>) -> Response {
    lock(&tenant).window = Some(Window::new(limit));
    StatusCode::NO_CONTENT.into_response()
}
