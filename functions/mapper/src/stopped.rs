//! Changes for a stopped job (paused by an operator, deactivated after refused credentials)
//! wait: they are sent back to `changes` as fresh messages, delivered again `Stopped::delay`
//! later, so none calls an API for the job and none reaches the dead-letter queue however long
//! the job stays stopped; once it runs again they are mapped as they come back.

use std::sync::Arc;
use std::time::Duration;

use shared::domain::job_state::stopped_job_of;
use shared::domain::{ChangeEvent, LineOutcome, RunLine, Runs};
use shared::ports::{JobStateCache, Queue};

use crate::give_up::Failures;
use crate::MapperFn;

/// How long a change for a stopped job waits before it is looked at again: a resumed job's
/// changes flow within this.
pub const STOPPED_DELAY: Duration = Duration::from_secs(240);

/// Where the mapper learns which jobs are stopped, the queue their changes wait in, and for how
/// long each time (`STOPPED_DELAY` in production).
pub struct Stopped {
    pub states: JobStateCache,
    pub changes: Arc<dyn Queue>,
    pub delay: Duration,
}

impl MapperFn {
    /// Takes the changes of stopped jobs out of `changes` and sends them back to wait; a
    /// message whose changes could not be sent back is tried again.
    pub(crate) async fn hold_stopped(
        &self,
        changes: &mut Vec<(String, ChangeEvent)>,
        now_ms: i64,
        runs: &mut Runs,
    ) -> Failures {
        let Some(stopped) = &self.stopped else {
            return Failures::new();
        };
        let states = stopped.states.stopped(now_ms).await;
        if states.is_empty() {
            return Failures::new();
        }
        let mut held: Vec<(String, String)> = Vec::new();
        changes.retain(|(id, change)| {
            let Some((job, status)) = stopped_job_of(&self.jobs, change, &states) else {
                return true;
            };
            let said = format!(
                "waiting: {}; the change is looked at again every {} s",
                status.stopped_line(job),
                stopped.delay.as_secs()
            );
            let line = RunLine::new(&change.record_id, LineOutcome::Waiting).message(said);
            if let Some(j) = self.jobs.get(job) {
                runs.objects(
                    Some(job),
                    j.object_in(change.source),
                    Some(j.object_in(change.source.other())),
                );
            }
            runs.line(Some(job), line);
            // A change serialises as the sync's own message (the webhook's and the poller's).
            let body = serde_json::to_string(change).unwrap_or_default();
            held.push((id.clone(), body));
            false
        });
        if held.is_empty() {
            return Failures::new();
        }
        tracing::info!(
            changes = held.len(),
            "changes of stopped jobs sent back to wait"
        );
        let bodies: Vec<String> = held.iter().map(|(_, b)| b.clone()).collect();
        let sent = stopped.changes.send_later(&bodies, stopped.delay).await;
        let mut failed = Failures::new();
        for ((id, _), result) in held.into_iter().zip(sent) {
            if let Err(e) = result {
                failed.push((
                    id,
                    format!("the change of a stopped job could not be sent back to wait: {e}"),
                ));
            }
        }
        failed
    }

    /// Deactivates `jobs`, refused our credentials for good (`why`): from the next delivery on,
    /// their changes wait instead of failing until the dead-letter queue.
    pub(crate) async fn deactivate(&self, jobs: &[&str], why: &str) {
        if let (Some(stopped), false) = (&self.stopped, jobs.is_empty()) {
            let why = format!("{why}; the job is deactivated and its changes wait");
            shared::ports::deactivate_jobs(&stopped.states, jobs, &why, "mapper").await;
        }
    }

    /// Changes of stopped jobs wait `delay` each time (tests: seconds, not minutes).
    pub fn with_stopped_delay(mut self, delay: Duration) -> Self {
        if let Some(stopped) = &mut self.stopped {
            stopped.delay = delay;
        }
        self
    }
}
