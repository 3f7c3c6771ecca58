//! The stored state of each job (active, paused, deactivated), and a short-lived cache of it
//! that functions ask before calling an API for a job.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::StoreError;
use crate::domain::job_state::JobStatus;

/// Job states (DynamoDB in production: one item holds every job's, so one read answers all).
#[async_trait]
pub trait JobStates: Send + Sync {
    /// Every job's stored status; a job absent here is active.
    async fn job_states(&self) -> Result<BTreeMap<String, JobStatus>, StoreError>;
    /// Stores `status` for `job` if its stored version is still `status.version - 1` (absent
    /// counts as version 0); `StoreError::Conflict` when another transition came first.
    async fn put_job_state(&self, job: &str, status: &JobStatus) -> Result<(), StoreError>;
}

/// How long a function trusts a read of the job states: a pause takes effect within this.
pub const JOB_STATES_TTL_MS: i64 = 10_000;

/// The job states as last read, read again when older than `JOB_STATES_TTL_MS`: at most one read
/// per warm function every ten seconds, however many changes it handles.
pub struct JobStateCache {
    store: Arc<dyn JobStates>,
    cached: Mutex<Option<(BTreeMap<String, JobStatus>, i64)>>,
}

impl JobStateCache {
    pub fn new(store: Arc<dyn JobStates>) -> Self {
        Self {
            store,
            cached: Mutex::new(None),
        }
    }

    /// The stopped jobs as of `now_ms`, by name. A read that fails leaves the jobs as last
    /// known (active if never read): a store that is down stops nothing, and the functions'
    /// own writes to it fail and are retried anyway.
    pub async fn stopped(&self, now_ms: i64) -> BTreeMap<String, JobStatus> {
        let fresh = self
            .cached
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|(_, at)| now_ms - at < JOB_STATES_TTL_MS);
        let states = match fresh {
            Some((states, _)) => states,
            None => match self.store.job_states().await {
                Ok(states) => {
                    if let Ok(mut cached) = self.cached.lock() {
                        *cached = Some((states.clone(), now_ms));
                    }
                    states
                }
                Err(e) => {
                    tracing::warn!(error = %e, "job states not read; using the last known");
                    let last = self.cached.lock().ok().and_then(|c| c.clone());
                    last.map(|(states, _)| states).unwrap_or_default()
                }
            },
        };
        states.into_iter().filter(|(_, s)| s.is_stopped()).collect()
    }

    /// Forgets the last read, so the next question reads the store (after this function
    /// changed a state itself).
    pub fn forget(&self) {
        if let Ok(mut cached) = self.cached.lock() {
            *cached = None;
        }
    }

    pub fn store(&self) -> &Arc<dyn JobStates> {
        &self.store
    }
}

/// Why a job's state was not changed.
#[derive(Debug, thiserror::Error)]
pub enum JobStateError {
    #[error(transparent)]
    Refused(#[from] crate::domain::job_state::TransitionRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `command` to `job`'s stored state as `by` at `now_ms`: read, the domain's transition,
/// a write conditional on the version read (read again and tried once more if another
/// transition came first). The new status, or `None` when nothing changed.
pub async fn change_job_state(
    store: &dyn JobStates,
    job: &str,
    command: &crate::domain::job_state::JobCommand,
    (by, now_ms): (&str, i64),
) -> Result<Option<JobStatus>, JobStateError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let states = store.job_states().await?;
        let current = states.get(job).cloned().unwrap_or_else(JobStatus::active);
        let Some(next) =
            crate::domain::job_state::transition(job, &current, command, (by, now_ms))?
        else {
            return Ok(None);
        };
        match store.put_job_state(job, &next).await {
            Ok(()) => return Ok(Some(next)),
            Err(StoreError::Conflict(_)) if attempts < 2 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Deactivates `jobs` because their credentials were refused for good (`why`), as `by` (a
/// function), and forgets `cache`'s read so that the next question sees it. Each job is logged
/// once per transition as "job deactivated", which the template's alarm counts; a job whose
/// state could not be written is logged and waits anyway (its calls keep being refused).
pub async fn deactivate_jobs(cache: &JobStateCache, jobs: &[&str], why: &str, by: &str) {
    let command = crate::domain::job_state::JobCommand::Deactivate {
        why: why.to_string(),
    };
    let now_ms = crate::time::now_ms();
    let mut jobs = jobs.to_vec();
    jobs.sort_unstable();
    jobs.dedup();
    for job in jobs {
        match change_job_state(cache.store().as_ref(), job, &command, (by, now_ms)).await {
            Ok(Some(_)) => tracing::error!(job = %job, by = %by, reason = %why, "job deactivated"),
            Ok(None) => {}
            Err(e) => tracing::error!(job = %job, error = %e, "job not deactivated"),
        }
    }
    cache.forget();
}
