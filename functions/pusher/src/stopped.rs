//! Writes of stopped jobs (paused by an operator, deactivated after refused credentials) wait:
//! deferred through the writes queue (write backs and a load's staged writes too), none written
//! and none using up a delivery; and a
//! credential Salesforce or Gainsight refuses for good deactivates the job, so that the other
//! functions stop calling the APIs for it too.

use std::collections::BTreeMap;
use std::time::Duration;

use shared::domain::job_state::JobStatus;
use shared::domain::load::SideWriteMessage;
use shared::domain::push::{Pending, SideWrite};
use shared::domain::{LineOutcome, RunLine, Runs};
use shared::ports::{deactivate_jobs, JobStateCache};

use crate::hold::LastDeliveries;
use crate::Pusher;

/// How long a write of a stopped job waits before it is looked at again (at most the pusher's
/// deferral): a resumed job's writes go out within this.
pub const STOPPED_DELAY: Duration = Duration::from_secs(240);

impl Pusher {
    /// Reads which jobs are stopped from `states`.
    pub fn with_job_states(mut self, states: JobStateCache) -> Self {
        self.job_states = Some(states);
        self
    }

    /// The stopped jobs as of `now_ms` (none without job states).
    pub(crate) async fn stopped_jobs(&self, now_ms: i64) -> BTreeMap<String, JobStatus> {
        match &self.job_states {
            Some(states) => states.stopped(now_ms).await,
            None => BTreeMap::new(),
        }
    }

    /// Takes the writes of stopped jobs out of `batch` and defers them; the rest are returned.
    pub(crate) async fn hold_stopped(
        &self,
        batch: Vec<Pending>,
        (retry, runs, last): (&mut Vec<String>, &mut Runs, &mut LastDeliveries),
        now_ms: i64,
    ) -> Vec<Pending> {
        let stopped = self.stopped_jobs(now_ms).await;
        if stopped.is_empty() {
            return batch;
        }
        let mut held: BTreeMap<(String, String), Vec<Pending>> = BTreeMap::new();
        let mut going = Vec::with_capacity(batch.len());
        for p in batch {
            if stopped.contains_key(&p.command.job) {
                let group = (p.command.job.clone(), p.command.object.clone());
                held.entry(group).or_default().push(p);
            } else {
                going.push(p);
            }
        }
        for ((job, object), writes) in held {
            let why = format!("waiting: {}", stopped[&job].stopped_line(&job));
            let wait = Some(STOPPED_DELAY);
            self.defer(&object, writes, &why, wait, (retry, runs, last))
                .await;
        }
        going
    }

    /// Takes the write backs of stopped jobs out of `sides` (message id, write back) and sends
    /// each back to wait as a message of its own; the ids of the messages whose write back could
    /// not be sent back, to deliver again.
    pub(crate) async fn hold_stopped_sides(
        &self,
        sides: &mut Vec<(String, SideWrite)>,
        runs: &mut Runs,
        now_ms: i64,
    ) -> Vec<String> {
        let stopped = self.stopped_jobs(now_ms).await;
        let (held, going): (Vec<_>, Vec<_>) = std::mem::take(sides)
            .into_iter()
            .partition(|(_, side)| stopped.contains_key(&side.job));
        *sides = going;
        if held.is_empty() {
            return Vec::new();
        }
        let Some((queue, _)) = &self.deferral else {
            // No queue to wait in: SQS delivers them again.
            return held.into_iter().map(|(id, _)| id).collect();
        };
        let bodies: Vec<String> = (held.iter())
            .map(|(_, side)| {
                let message = SideWriteMessage {
                    side_write: side.clone(),
                };
                serde_json::to_string(&message).unwrap_or_default()
            })
            .collect();
        let wait = STOPPED_DELAY.min(self.deferral_delay(None));
        let sent = queue.send_later(&bodies, wait).await;
        let mut again = Vec::new();
        for ((id, side), result) in held.into_iter().zip(sent) {
            let why = format!("waiting: {}", stopped[&side.job].stopped_line(&side.job));
            let line = RunLine::new(side.ledger_key.to_string(), LineOutcome::Waiting);
            runs.line(Some(&side.job), line.message(why));
            if result.is_err() {
                again.push(id);
            }
        }
        again
    }

    /// Deactivates the jobs of `refused` (their credentials refused for good, as `why` says),
    /// so that no function calls the APIs for them until an operator reactivates them.
    pub(crate) async fn deactivate(&self, refused: &[Pending], why: &str) {
        if let Some(states) = &self.job_states {
            let jobs: Vec<&str> = refused.iter().map(|p| p.command.job.as_str()).collect();
            deactivate_jobs(states, &jobs, why, "pusher").await;
        }
    }
}
