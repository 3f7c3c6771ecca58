//! Change Data Capture overflows (`GAP_OVERFLOW`: too many changes in one transaction for
//! events): each job reading the object has the poller read its Salesforce records changed since
//! the overflow's commit, as a backfill does.

use shared::domain::{LineOutcome, RunLine, Runs, System};

use crate::give_up::Failures;
use crate::MapperFn;

impl MapperFn {
    /// Asks for a poll per job reading each overflowed object; the messages whose poll could not
    /// be asked for are tried again.
    pub(crate) async fn overflow(
        &self,
        overflows: Vec<(String, String, i64)>,
        runs: &mut Runs,
    ) -> Failures {
        let mut failed = Failures::new();
        for (id, object, since_ms) in overflows {
            let jobs: Vec<String> = (self.jobs.for_source(System::Salesforce, &object))
                .map(|j| j.name.clone())
                .collect();
            let Some(polls) = &self.polls else {
                let why = format!("{object} changes overflowed Change Data Capture, and no poller is configured (POLLER_FUNCTION) to read them");
                tracing::error!(message_id = %id, object = %object, "{why}");
                failed.push((id, why));
                continue;
            };
            for job in jobs {
                match polls.poll_since(&job, System::Salesforce, since_ms).await {
                    Ok(()) => {
                        let said = format!(
                            "{object} changes overflowed Change Data Capture: the poller reads the {object} records changed since {}",
                            shared::time::rfc3339(since_ms)
                        );
                        tracing::warn!(job = %job, object = %object, since_ms, "{said}");
                        let line = RunLine::new(format!("{object} overflow"), LineOutcome::Queued);
                        runs.line(Some(&job), line.message(said));
                    }
                    Err(e) => failed.push((id.clone(), e.to_string())),
                }
            }
        }
        failed
    }
}
