//! `jobs pause|resume|reactivate` and the stopped jobs `status` shows: an operator's hand on
//! the stored job states every function honours.

use serde::Serialize;
use shared::domain::job_state::{JobCommand, JobState, JobStatus};
use shared::ports::{change_job_state, JobStateError, JobStates};

use crate::env::{not_found, usage, Env};

/// A stopped job as `status` shows it.
#[derive(Debug, Serialize)]
pub struct StoppedJob {
    pub job: String,
    pub state: JobState,
    pub by: String,
    pub since_ms: i64,
    pub why: String,
    /// How to start it again.
    pub next: String,
}

/// The jobs stopped now (only `job` when given).
pub async fn stopped(env: &Env, job: Option<&str>) -> anyhow::Result<Vec<StoppedJob>> {
    let states = env.store().job_states().await?;
    Ok(states
        .into_iter()
        .filter(|(name, status)| status.is_stopped() && job.is_none_or(|j| j == name))
        .map(|(name, status)| StoppedJob {
            next: status.what_to_do(&name),
            job: name,
            state: status.state,
            by: status.by,
            since_ms: status.at_ms,
            why: status.why,
        })
        .collect())
}

/// Who an operator is, as the state records it.
fn operator() -> String {
    std::env::var("SYNCCTL_OPERATOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "operator".into())
}

/// Applies `command` to `job` and says what it means.
pub async fn change(env: &Env, job: &str, command: JobCommand) -> anyhow::Result<()> {
    env.jobs.named(job).map_err(|e| not_found(e.to_string()))?;
    let store = env.store();
    let by = operator();
    let now = shared::time::now_ms();
    let changed = match change_job_state(&store, job, &command, (&by, now)).await {
        Ok(changed) => changed,
        Err(JobStateError::Refused(refused)) => return Err(usage(refused.to_string())),
        Err(JobStateError::Store(e)) => return Err(e.into()),
    };
    match changed {
        None => say!("job {job} was already stopped; nothing changed")?,
        Some(status) => say!("{}", said(job, &status))?,
    }
    Ok(())
}

fn said(job: &str, status: &JobStatus) -> String {
    let within = shared::ports::JOB_STATES_TTL_MS / 1000;
    match status.state {
        JobState::Paused => format!(
            "job {job} paused by {}: the poller, mapper, pusher and resync stop calling Salesforce and Gainsight for it within {within} s; its changes and writes wait (none is lost or dead-lettered) and flow once it is resumed: `syncctl jobs resume {job}`",
            status.by
        ),
        JobState::Active => format!(
            "job {job} {} by {}: the functions take it up again within {within} s; the changes and writes that waited flow within 4 minutes, and the next scheduled poll reads what changed meanwhile",
            status.why, status.by
        ),
        JobState::Deactivated => format!("job {job} deactivated by {}: {}", status.by, status.why),
    }
}

/// After new credentials are stored: reactivates the jobs that refused credentials stopped,
/// saying which.
pub async fn reactivate_deactivated(env: &Env) -> anyhow::Result<()> {
    let store = env.store();
    let states = store.job_states().await?;
    let by = operator();
    for (job, status) in states {
        if status.state != JobState::Deactivated {
            continue;
        }
        let now = shared::time::now_ms();
        if change_job_state(&store, &job, &JobCommand::Reactivate, (&by, now))
            .await?
            .is_some()
        {
            say!(
                "job {job} reactivated (it was deactivated since {}: {})",
                shared::time::rfc3339(status.at_ms),
                status.why
            )?;
        }
    }
    Ok(())
}
