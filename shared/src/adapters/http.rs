//! HTTP plumbing shared by the Gainsight and Salesforce clients: one tuned reqwest client, status
//! classification and bounded retries of the retryable failures.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};

use crate::ports::{ApiError, Retryable};

/// How long one request may take before it fails as a timeout (and is retried).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// One client per cold start: connection pooling across invocations.
pub(crate) fn client() -> reqwest::Client {
    client_with_timeout(REQUEST_TIMEOUT)
}

/// A client whose requests give up after `timeout`.
pub(crate) fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
        .expect("a TLS client builds with the compiled-in roots")
}

/// Transport failures: timeouts are their own kind; everything else is "unavailable".
pub(crate) fn transport(system: &'static str, err: reqwest::Error) -> ApiError {
    if err.is_timeout() {
        ApiError::Timeout {
            system,
            message: err.to_string(),
        }
    } else {
        ApiError::Unavailable {
            system,
            status: 0,
            message: err.to_string(),
            retry_after_ms: None,
        }
    }
}

/// The `Retry-After` of a response, in seconds as Gainsight and Salesforce send it.
/// Characters of an error answer that is not the API's own JSON kept in the error: an HTML page
/// from a proxy or a maintenance window says what it is in its first lines, and the error is
/// kept in the ledger, the runs and the logs.
const EXCERPT_CHARS: usize = 300;

/// An error answer's body as text for an error message: its first characters, control
/// characters as spaces, and how long it was when cut.
pub(crate) fn body_excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut excerpt: String = (text.chars().take(EXCERPT_CHARS))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > EXCERPT_CHARS {
        excerpt.push_str(&format!("… ({} bytes in all)", bytes.len()));
    }
    excerpt
}

pub(crate) fn retry_after_ms(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let seconds: f64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (seconds >= 0.0).then_some((seconds * 1000.0) as u64)
}

/// Classifies a non-success status by what a retry can achieve.
pub(crate) fn status_error(
    system: &'static str,
    status: u16,
    code: String,
    message: String,
) -> ApiError {
    match status {
        429 => ApiError::RateLimited {
            system,
            status,
            message,
            retry_after_ms: None,
        },
        401 => ApiError::Auth { system, message },
        500..=599 => ApiError::Unavailable {
            system,
            status,
            message,
            retry_after_ms: None,
        },
        _ => ApiError::Rejected {
            system,
            status,
            code,
            message,
        },
    }
}

/// A rate limit's wait is honoured up to this long; a longer one fails the call (retried later by
/// the queue or the next schedule) rather than hold a Lambda invocation.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);

/// Retries `op` on retryable errors: 3 more tries, 200 ms doubling to 2 s, with jitter; after a
/// rate limit (HTTP 429) or an outage (503) at least as long as the system's `Retry-After` asked.
/// What is still failing after that goes back to the queue, whose redrive policy bounds the total.
pub(crate) async fn with_retries<T, F, Fut>(op: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    retry_when(op, |e| e.is_retryable()).await
}

/// Retries a create (which must not be applied twice) only after failures that prove it was
/// not applied: a rate limit refuses before doing anything, while an outage, a timeout or a
/// dropped connection may come after the record was created. Those go back to the queue, whose
/// next delivery looks for the record before creating it.
pub(crate) async fn with_create_retries<T, F, Fut>(op: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    retry_when(op, |e| matches!(e, ApiError::RateLimited { .. })).await
}

async fn retry_when<T, F, Fut>(op: F, worth_it: fn(&ApiError) -> bool) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    op.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(3)
            .with_jitter(),
    )
    .when(|e: &ApiError| worth_it(e) && e.retry_after().is_none_or(|w| w <= MAX_RETRY_AFTER))
    .adjust(|e: &ApiError, backoff| backoff.map(|d| e.retry_after().map_or(d, |w| w.max(d))))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_page_is_kept_as_its_first_characters() {
        let page = format!(
            "<html>\n<title>502 Bad Gateway</title>{}</html>",
            "x".repeat(10_000)
        );
        let excerpt = body_excerpt(page.as_bytes());
        assert!(
            excerpt.starts_with("<html> <title>502 Bad Gateway</title>"),
            "{excerpt}"
        );
        assert!(
            excerpt.ends_with(&format!("… ({} bytes in all)", page.len())),
            "{excerpt}"
        );
        assert!(excerpt.chars().count() < 330);
        assert_eq!(body_excerpt(b"short"), "short");
    }
}
