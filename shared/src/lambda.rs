//! Lambda event helpers shared by the SQS-triggered functions.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::de::DeserializeOwned;

use crate::domain::{Run, Runs};
use crate::ports::RunStore;

/// The messages of `event` whose body parses as a `T` (a `what`), with their message ids, and the
/// ids of those that do not: each bad message fails alone, logged with why.
pub fn parse_messages<T: DeserializeOwned>(
    event: SqsEvent,
    what: &str,
) -> (Vec<(String, T)>, Vec<String>) {
    let mut parsed = Vec::with_capacity(event.records.len());
    let mut failed = Vec::new();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        match message.body.as_deref().map(serde_json::from_str::<T>) {
            Some(Ok(value)) => parsed.push((id, value)),
            Some(Err(e)) => {
                tracing::error!(message_id = %id, error = %e, "message is not a valid {what}");
                failed.push(id);
            }
            None => {
                tracing::error!(message_id = %id, "message has no body; expected a {what}");
                failed.push(id);
            }
        }
    }
    (parsed, failed)
}

/// The ids of the messages on their last allowed delivery: received `max_receives` times or more
/// (SQS's `ApproximateReceiveCount`), so a failure now sends them to the dead-letter queue.
pub fn last_deliveries(event: &SqsEvent, max_receives: u32) -> std::collections::HashSet<String> {
    event
        .records
        .iter()
        .filter(|m| {
            m.attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse::<u32>().ok())
                .is_some_and(|c| c >= max_receives)
        })
        .filter_map(|m| m.message_id.clone())
        .collect()
}

/// A partial batch response naming the messages to retry (each once, in id order); every other
/// message is deleted.
pub fn batch_response(failed_message_ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let unique: std::collections::BTreeSet<String> = failed_message_ids.into_iter().collect();
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = unique
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// The seed of a batch's run ids: its message ids, so two batches started in the same
/// millisecond get different runs.
pub fn batch_seed(event: &SqsEvent) -> String {
    event
        .records
        .iter()
        .filter_map(|m| m.message_id.as_deref())
        .collect::<Vec<_>>()
        .join(",")
}

/// When an invocation must have answered (epoch ms, as Lambda's context gives it): a step that
/// would run past it is not started, or is cut off, while there is time to record the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline(i64);

impl Deadline {
    /// No deadline (tests, and callers outside Lambda).
    pub const NONE: Self = Self(i64::MAX);

    /// The deadline of Lambda's context.
    pub fn at_ms(epoch_ms: u64) -> Self {
        Self(i64::try_from(epoch_ms).unwrap_or(i64::MAX))
    }

    /// `ms` from now.
    pub fn in_ms(ms: i64) -> Self {
        Self(crate::time::now_ms().saturating_add(ms))
    }

    /// How long a step may still take, as of now, leaving `margin_ms` before the deadline; zero
    /// or less: none may start.
    pub fn budget_ms(self, margin_ms: i64) -> i64 {
        self.0
            .saturating_sub(crate::time::now_ms())
            .saturating_sub(margin_ms)
    }

    /// Whether less than `margin_ms` is left.
    pub fn is_near(self, margin_ms: i64) -> bool {
        self.budget_ms(margin_ms) <= 0
    }

    /// `step`, if it can start and end leaving `margin_ms` before the deadline.
    pub async fn run<T>(
        self,
        margin_ms: i64,
        step: impl std::future::Future<Output = T>,
    ) -> Result<T, Late> {
        let budget_ms = self.budget_ms(margin_ms);
        if budget_ms <= 0 {
            return Err(Late::NotStarted);
        }
        let budget = std::time::Duration::from_millis(budget_ms as u64);
        tokio::time::timeout(budget, step)
            .await
            .map_err(|_| Late::CutOff {
                after_ms: budget_ms,
            })
    }
}

/// Why a step did not end within its invocation's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Late {
    /// Too little time was left to start it.
    NotStarted,
    /// It was still running when its time ran out.
    CutOff { after_ms: i64 },
}

/// How many times a run write is tried before its runs are given up.
const RUN_WRITE_TRIES: usize = 3;

/// Ends `runs` now and stores them in one request, tried again on a transient failure. A run
/// that still cannot be stored is logged and dropped: the work it describes is done, and
/// redoing it for its record would be worse.
pub async fn store_runs(store: &dyn RunStore, runs: Runs) -> Vec<Run> {
    use crate::ports::Retryable as _;
    let done = runs.finish(crate::time::now_ms());
    if done.is_empty() {
        return done;
    }
    for attempt in 1..=RUN_WRITE_TRIES {
        match store.put_runs(&done).await {
            Ok(()) => break,
            Err(e) if e.is_retryable() && attempt < RUN_WRITE_TRIES => {
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt as u64)).await;
            }
            Err(e) => {
                let ids: Vec<String> = done.iter().map(|r| r.id.to_string()).collect();
                tracing::warn!(runs = ?ids, error = %e, attempts = attempt, "runs not stored");
                break;
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_message_fails_alone() {
        let mut event = SqsEvent::default();
        for (id, body) in [("1", Some("5")), ("2", Some("nope")), ("3", None)] {
            let mut m = aws_lambda_events::event::sqs::SqsMessage::default();
            m.message_id = Some(id.into());
            m.body = body.map(str::to_string);
            event.records.push(m);
        }
        let (ok, failed) = parse_messages::<i64>(event, "number");
        assert_eq!(ok, vec![("1".to_string(), 5)]);
        assert_eq!(failed, ["2", "3"]);
    }

    #[test]
    fn names_each_failed_message_once() {
        let r = batch_response(["b".to_string(), "a".into(), "b".into()]);
        let ids: Vec<_> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, vec!["a", "b"]);
    }

    /// A run store that is unavailable for its first `failures` writes.
    struct Flaky {
        failures: std::sync::Mutex<usize>,
        written: std::sync::Mutex<Vec<Run>>,
    }

    #[async_trait::async_trait]
    impl RunStore for Flaky {
        async fn put_runs(&self, runs: &[Run]) -> Result<(), crate::ports::StoreError> {
            let mut failures = self.failures.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Err(crate::ports::StoreError::Unavailable("throttled".into()));
            }
            self.written.lock().unwrap().extend_from_slice(runs);
            Ok(())
        }
        async fn run(
            &self,
            _: &crate::domain::RunId,
        ) -> Result<Option<Run>, crate::ports::StoreError> {
            Ok(None)
        }
        async fn runs(&self, _: i64, _: i64) -> Result<Vec<Run>, crate::ports::StoreError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn a_run_write_that_fails_for_a_moment_is_tried_again() {
        use crate::domain::{LineOutcome, RunFunction, RunLine};
        let store = Flaky {
            failures: std::sync::Mutex::new(RUN_WRITE_TRIES - 1),
            written: Default::default(),
        };
        let mut runs = Runs::new(RunFunction::Mapper, "changes batch", 1_000, "seed");
        runs.line(Some("j"), RunLine::new("R1", LineOutcome::Error));
        let done = store_runs(&store, runs).await;
        assert_eq!(done.len(), 1);
        assert_eq!(
            *store.written.lock().unwrap(),
            done,
            "written on the last try"
        );
    }
}

#[cfg(test)]
mod deadline_tests {
    use super::Deadline;

    #[test]
    fn a_deadline_leaves_its_margin() {
        assert!(Deadline::in_ms(5_000).is_near(10_000));
        assert!(!Deadline::in_ms(60_000).is_near(10_000));
        assert!(Deadline::in_ms(60_000).budget_ms(10_000) <= 50_000);
        assert!(!Deadline::NONE.is_near(i64::MAX / 2));
        assert_eq!(Deadline::at_ms(u64::MAX), Deadline::NONE);
    }
}
