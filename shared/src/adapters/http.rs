//! HTTP plumbing shared by the Gainsight and Salesforce clients: one tuned reqwest client, status
//! classification and bounded retries of the retryable failures.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};

use crate::ports::{ApiError, Retryable};

/// One client per cold start: connection pooling across invocations.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
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
        }
    }
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
        },
        401 => ApiError::Auth { system, message },
        500..=599 => ApiError::Unavailable {
            system,
            status,
            message,
        },
        _ => ApiError::Rejected {
            system,
            status,
            code,
            message,
        },
    }
}

/// Retries `op` on retryable errors: 3 more tries, 200 ms doubling to 2 s, with jitter. What is
/// still failing after that goes back to the queue, whose redrive policy bounds the total.
pub(crate) async fn with_retries<T, F, Fut>(op: F) -> Result<T, ApiError>
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
    .when(|e: &ApiError| e.is_retryable())
    .await
}
