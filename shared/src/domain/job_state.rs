//! Whether a job runs: active, paused by an operator, or deactivated because Salesforce or
//! Gainsight refused its credentials for good, with who stopped it, when and why. Every function
//! asks before it calls an API for a job; the transitions an operator or a function may make are
//! the rules here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Active,
    /// Stopped by an operator (`syncctl jobs pause`) until resumed.
    Paused,
    /// Stopped by a function whose credentials were refused for good, until an operator stores
    /// new credentials or reactivates it after re-authorizing.
    Deactivated,
}

impl JobState {
    pub fn label(self) -> &'static str {
        match self {
            JobState::Active => "active",
            JobState::Paused => "paused",
            JobState::Deactivated => "deactivated",
        }
    }
}

/// A job's stored state and its last transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub state: JobState,
    /// Who made the last transition: an operator's name, or a function (`pusher`).
    pub by: String,
    pub at_ms: i64,
    pub why: String,
    /// Bumped by every transition: a write is conditional on the version read.
    pub version: u64,
}

impl JobStatus {
    /// The state of a job nothing was ever stored for.
    pub fn active() -> Self {
        Self {
            state: JobState::Active,
            by: String::new(),
            at_ms: 0,
            why: String::new(),
            version: 0,
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.state != JobState::Active
    }

    /// What a function says when it leaves `job`'s work for later.
    pub fn stopped_line(&self, job: &str) -> String {
        format!(
            "job {job} is {} since {} by {}: {}; {}",
            self.state.label(),
            crate::time::rfc3339(self.at_ms),
            self.by,
            self.why,
            self.what_to_do(job)
        )
    }

    /// How an operator starts it again.
    pub fn what_to_do(&self, job: &str) -> String {
        match self.state {
            JobState::Active => String::new(),
            JobState::Paused => format!("`syncctl jobs resume {job}` starts it again"),
            JobState::Deactivated => format!(
                "store the new credentials (`syncctl secrets put ...`), or re-authorize the connected app and run `syncctl jobs reactivate {job}`"
            ),
        }
    }
}

/// A transition asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobCommand {
    /// An operator stops the job.
    Pause { why: String },
    /// An operator starts a paused job again.
    Resume,
    /// A function's credentials were refused for good.
    Deactivate { why: String },
    /// An operator starts a deactivated job again (credentials fixed).
    Reactivate,
}

/// Why a transition was refused: names the state and what would work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("job {job} is {state}: {hint}")]
pub struct TransitionRefused {
    pub job: String,
    pub state: &'static str,
    pub hint: String,
}

/// What `current` becomes after `command`, made by `by` at `now_ms`. `Ok(None)`: nothing to
/// change (pausing a paused job, a deactivation of a stopped job keeps the first cause).
pub fn transition(
    job: &str,
    current: &JobStatus,
    command: &JobCommand,
    (by, now_ms): (&str, i64),
) -> Result<Option<JobStatus>, TransitionRefused> {
    use JobState::*;
    let next = |state, why: &str| JobStatus {
        state,
        by: by.to_string(),
        at_ms: now_ms,
        why: why.to_string(),
        version: current.version + 1,
    };
    let refused = |hint: String| TransitionRefused {
        job: job.to_string(),
        state: current.state.label(),
        hint,
    };
    match (current.state, command) {
        (Active, JobCommand::Pause { why }) => Ok(Some(next(Paused, why))),
        (Active, JobCommand::Deactivate { why }) => Ok(Some(next(Deactivated, why))),
        (Paused, JobCommand::Resume) => Ok(Some(next(Active, "resumed"))),
        (Deactivated, JobCommand::Reactivate) => Ok(Some(next(Active, "reactivated"))),
        (Paused, JobCommand::Pause { .. })
        | (Deactivated, JobCommand::Deactivate { .. })
        | (Paused, JobCommand::Deactivate { .. }) => Ok(None),
        (Active, JobCommand::Resume | JobCommand::Reactivate) => {
            Err(refused("nothing to start".into()))
        }
        (Paused, JobCommand::Reactivate) => Err(refused(format!(
            "it was paused by {}, not deactivated: `syncctl jobs resume {job}`",
            current.by
        ))),
        (Deactivated, JobCommand::Resume) => Err(refused(format!(
            "it was deactivated by {} ({}): re-authorize, then `syncctl jobs reactivate {job}`",
            current.by, current.why
        ))),
        (Deactivated, JobCommand::Pause { .. }) => Err(refused(format!(
            "it is already stopped; `syncctl jobs reactivate {job}` once the credentials are fixed"
        ))),
    }
}

/// The first stopped job among those `change` is for, with its status: a change for a stopped
/// job waits whole, even when another job of its object runs (it is one change to map).
pub fn stopped_job_of<'a>(
    jobs: &'a super::Jobs,
    change: &super::ChangeEvent,
    stopped: &'a BTreeMap<String, JobStatus>,
) -> Option<(&'a str, &'a JobStatus)> {
    if stopped.is_empty() {
        return None;
    }
    jobs.for_change(change)
        .into_iter()
        .find_map(|job| stopped.get_key_value(job.name.as_str()))
        .map(|(name, status)| (name.as_str(), status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(
        current: &JobStatus,
        command: JobCommand,
    ) -> Result<Option<JobStatus>, TransitionRefused> {
        transition(
            "company_account",
            current,
            &command,
            ("ops@example.com", 5_000),
        )
    }

    fn pause() -> JobCommand {
        JobCommand::Pause {
            why: "maintenance".into(),
        }
    }

    #[test]
    fn an_operator_pauses_and_resumes_a_job() {
        let paused = after(&JobStatus::active(), pause()).unwrap().unwrap();
        assert_eq!(
            (
                paused.state,
                paused.by.as_str(),
                paused.at_ms,
                paused.version
            ),
            (JobState::Paused, "ops@example.com", 5_000, 1)
        );
        assert!(paused.is_stopped());
        assert!(paused
            .stopped_line("company_account")
            .ends_with("by ops@example.com: maintenance; `syncctl jobs resume company_account` starts it again"));
        assert_eq!(after(&paused, pause()), Ok(None), "already paused");
        let resumed = after(&paused, JobCommand::Resume).unwrap().unwrap();
        assert_eq!((resumed.state, resumed.version), (JobState::Active, 2));
        assert!(!resumed.is_stopped());
    }

    #[test]
    fn a_deactivated_job_starts_again_only_by_reactivation() {
        let refused = JobCommand::Deactivate {
            why: "Salesforce refused the credentials: invalid_grant".into(),
        };
        let off = after(&JobStatus::active(), refused.clone())
            .unwrap()
            .unwrap();
        assert_eq!(off.state, JobState::Deactivated);
        assert_eq!(after(&off, refused), Ok(None), "the first cause stays");
        let resume = after(&off, JobCommand::Resume).unwrap_err();
        assert!(resume
            .to_string()
            .contains("syncctl jobs reactivate company_account"));
        assert!(after(&off, pause()).is_err());
        let on = after(&off, JobCommand::Reactivate).unwrap().unwrap();
        assert_eq!(on.state, JobState::Active);
    }

    #[test]
    fn a_change_waits_when_a_job_of_its_object_is_stopped() {
        let jobs = super::super::Jobs::builtin();
        let record = super::super::SourceRecord {
            source: super::super::System::Gainsight,
            object: "Company".into(),
            id: "1P02".into(),
            fields: Default::default(),
        };
        let change = super::super::ChangeEvent::pushed(
            record,
            "ev".into(),
            super::super::Operation::Updated,
            1,
            1,
        );
        let mut stopped = BTreeMap::new();
        assert_eq!(stopped_job_of(&jobs, &change, &stopped), None);
        let paused = after(&JobStatus::active(), pause()).unwrap().unwrap();
        stopped.insert("person_contact".to_string(), paused.clone());
        assert_eq!(
            stopped_job_of(&jobs, &change, &stopped),
            None,
            "another object's job"
        );
        stopped.insert("company_account".to_string(), paused.clone());
        assert_eq!(
            stopped_job_of(&jobs, &change, &stopped),
            Some(("company_account", &paused))
        );
    }

    #[test]
    fn nothing_starts_what_runs_and_a_pause_is_not_a_deactivation() {
        assert!(after(&JobStatus::active(), JobCommand::Resume).is_err());
        assert!(after(&JobStatus::active(), JobCommand::Reactivate).is_err());
        let paused = after(&JobStatus::active(), pause()).unwrap().unwrap();
        assert!(after(&paused, JobCommand::Reactivate)
            .unwrap_err()
            .to_string()
            .contains("syncctl jobs resume"));
        // A paused job calls no API, so nothing deactivates it; one that does keeps the pause.
        let deactivate = JobCommand::Deactivate { why: "x".into() };
        assert_eq!(after(&paused, deactivate), Ok(None));
    }
}
