//! EventBridge schedules, fired locally: each schedule of the deployed template invokes its
//! function through the Lambda Invoke API asynchronously (as EventBridge does) with the rule's
//! constant input, at the rule's rate divided by a speed-up factor, so a scheduled sync can be
//! seen happening in minutes instead of hours.

use std::time::Duration;

use serde::Deserialize;

/// One schedule of the template, as `deploy.py` reports it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ScheduleSpec {
    pub rule: String,
    /// The logical id of the function it invokes.
    pub function: Option<String>,
    /// `rate(10 minutes)` or `cron(...)`.
    pub expression: Option<String>,
    /// The constant JSON the rule passes as the event.
    pub input: String,
}

/// The period of a `rate(N unit)` expression; `None` for cron (not fired locally) or nonsense.
pub fn rate_period(expression: &str) -> Option<Duration> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3_600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * seconds))
}

/// The running schedules; they stop when dropped.
pub struct Scheduler {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Scheduler {
    /// Fires every rate schedule of `specs` against the Lambda Invoke API at `lambda_url`, once
    /// per `period / speedup`, the first time after one period.
    pub fn start(specs: &[ScheduleSpec], lambda_url: &str, speedup: u32) -> Self {
        let mut tasks = Vec::new();
        for spec in specs {
            let (Some(function), Some(period)) = (
                spec.function.clone(),
                spec.expression.as_deref().and_then(rate_period),
            ) else {
                tracing::warn!(rule = %spec.rule, expression = ?spec.expression, "schedule not fired locally (only rate expressions are)");
                continue;
            };
            // Never more often than once a second, whatever the speed-up: a test that speeds a
            // 4-hour schedule up to seconds must not fire the 10-minute ones hundreds of times.
            let every = (period / speedup.max(1)).max(Duration::from_secs(1));
            let url = format!("{lambda_url}/2015-03-31/functions/{function}/invocations");
            let input = spec.input.clone();
            tasks.push(tokio::spawn(fire(url, input, every)));
        }
        Self { tasks }
    }
}

async fn fire(url: String, input: String, every: Duration) {
    let http = reqwest::Client::new();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticks.tick().await;
        let sent = http
            .post(&url)
            .header("x-amz-invocation-type", "Event")
            .header("content-type", "application/json")
            .body(input.clone())
            .send()
            .await;
        if let Err(e) = sent {
            tracing::warn!(url = %url, error = %e, "scheduled invocation not delivered");
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_become_periods_and_cron_is_left_out() {
        assert_eq!(
            rate_period("rate(10 minutes)"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            rate_period("rate(1 hour)"),
            Some(Duration::from_secs(3_600))
        );
        assert_eq!(
            rate_period("rate(4 hours)"),
            Some(Duration::from_secs(14_400))
        );
        assert_eq!(
            rate_period("rate(1 day)"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(rate_period("cron(0 12 * * ? *)"), None);
        assert_eq!(rate_period("rate(0 minutes)"), None);
        assert_eq!(rate_period("rate(5 fortnights)"), None);
    }
}
