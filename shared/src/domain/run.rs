//! Runs ("execution activities"): what one invocation of a function did for one job, with a
//! per-record log, so an operator can answer "what happened to this batch?" without reading logs.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// At most this many log lines are kept per run (stored in parts of at most 350 KB each); the
/// rest are counted in `Run::lines_dropped`. A pusher batch is at most 1,000 records, a resync
/// page 2,000.
pub const MAX_LOG_LINES: usize = 20_000;

/// The function a run belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunFunction {
    Webhook,
    Poller,
    Mapper,
    Pusher,
    Resync,
}

impl RunFunction {
    pub const ALL: [RunFunction; 5] = [
        RunFunction::Webhook,
        RunFunction::Poller,
        RunFunction::Mapper,
        RunFunction::Pusher,
        RunFunction::Resync,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunFunction::Webhook => "webhook",
            RunFunction::Poller => "poller",
            RunFunction::Mapper => "mapper",
            RunFunction::Pusher => "pusher",
            RunFunction::Resync => "resync",
        }
    }
}

/// A run id: `{started epoch ms}-{function}-{nonce}`, e.g. `1764113894123-pusher-a3f9c2`. The
/// start time in it is what finds the run without a scan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId {
    pub started_ms: i64,
    pub function: RunFunction,
    pub nonce: String,
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Thirteen digits (every instant from 2001 to 2286 has them): text order is time order.
        write!(
            f,
            "{:013}-{}-{}",
            self.started_ms,
            self.function.as_str(),
            self.nonce
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0:?} is not a run id: expected <epoch ms>-<function>-<nonce>, e.g. 1764113894123-pusher-a3f9c2")]
pub struct BadRunId(pub String);

impl FromStr for RunId {
    type Err = BadRunId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadRunId(s.to_string());
        let mut parts = s.splitn(3, '-');
        let started_ms = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let function = parts
            .next()
            .and_then(|p| RunFunction::ALL.into_iter().find(|f| f.as_str() == p))
            .ok_or_else(bad)?;
        let nonce = parts
            .next()
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric()))
            .ok_or_else(bad)?;
        Ok(RunId {
            started_ms,
            function,
            nonce: nonce.to_string(),
        })
    }
}

impl Serialize for RunId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A run's status, from its counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    InProgress,
    Success,
    PartialSuccess,
    Failed,
    Ignored,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::InProgress,
        RunStatus::Success,
        RunStatus::PartialSuccess,
        RunStatus::Failed,
        RunStatus::Ignored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::InProgress => "in_progress",
            RunStatus::Success => "success",
            RunStatus::PartialSuccess => "partial_success",
            RunStatus::Failed => "failed",
            RunStatus::Ignored => "ignored",
        }
    }

    /// A finished run's status: a technical error fails it whole; otherwise successes and
    /// failures together are a partial success, and a run with neither only ignored records.
    pub fn of(succeeded: u64, failed: u64, technical_error: bool) -> Self {
        match (succeeded, failed) {
            _ if technical_error => RunStatus::Failed,
            (0, 0) => RunStatus::Ignored,
            (_, 0) => RunStatus::Success,
            (0, _) => RunStatus::Failed,
            _ => RunStatus::PartialSuccess,
        }
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown run status {s:?}: expected in_progress, success, partial_success, failed or ignored")
            })
    }
}

/// What a run did with one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineOutcome {
    /// Queued for the next stage (webhook, poller, resync, mapper).
    Queued,
    /// Written to the target system.
    Synced,
    /// Refused by the target or by the mapping.
    Error,
    /// Deliberately not written (an echo, a stale change, an event action set to ignore).
    Ignored,
    /// Already queued once (a redelivery).
    Duplicate,
    /// Parked until the record it refers to syncs (`domain::waiting`); counted with the ignored.
    Waiting,
}

impl LineOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LineOutcome::Queued => "queued",
            LineOutcome::Synced => "synced",
            LineOutcome::Error => "error",
            LineOutcome::Ignored => "ignored",
            LineOutcome::Duplicate => "duplicate",
            LineOutcome::Waiting => "waiting",
        }
    }
}

/// One record's line in a run's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLine {
    /// The record's id where the change came from.
    pub record: String,
    /// Its id in the other system, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub outcome: LineOutcome,
    /// Fields written (or to be written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunLine {
    pub fn new(record: impl Into<String>, outcome: LineOutcome) -> Self {
        Self {
            record: record.into(),
            target: None,
            outcome,
            fields: Vec::new(),
            message: None,
        }
    }

    pub fn target(mut self, target: Option<String>) -> Self {
        self.target = target;
        self
    }

    pub fn fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// How a run's error starts when its job's writes were refused credentials for good (the job is
/// then deactivated, see `job_state`).
pub const PAUSED: &str = "paused: ";

/// One run: a function's work for one job in one invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    /// The job, when the work belongs to one (a webhook delivery is not yet mapped to jobs).
    pub job: Option<String>,
    /// What started it: `gainsight webhook`, `changes batch`, `resync`, ...
    pub event: String,
    pub source_object: Option<String>,
    pub destination_object: Option<String>,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub status: RunStatus,
    pub succeeded: u64,
    pub failed: u64,
    pub ignored: u64,
    pub log: Vec<RunLine>,
    /// Lines beyond `MAX_LOG_LINES`, counted but not kept.
    pub lines_dropped: u64,
    /// The technical error that stopped the run, if one did.
    pub error: Option<String>,
}

impl Run {
    fn new(id: RunId, job: Option<String>, event: &str) -> Self {
        Self {
            started_at_ms: id.started_ms,
            id,
            job,
            event: event.to_string(),
            source_object: None,
            destination_object: None,
            ended_at_ms: None,
            status: RunStatus::InProgress,
            succeeded: 0,
            failed: 0,
            ignored: 0,
            log: Vec::new(),
            lines_dropped: 0,
            error: None,
        }
    }

    fn push(&mut self, line: RunLine) {
        match line.outcome {
            LineOutcome::Queued | LineOutcome::Synced => self.succeeded += 1,
            LineOutcome::Error => self.failed += 1,
            LineOutcome::Ignored | LineOutcome::Duplicate | LineOutcome::Waiting => {
                self.ignored += 1
            }
        }
        if self.log.len() < MAX_LOG_LINES {
            self.log.push(line);
        } else {
            self.lines_dropped += 1;
        }
    }

    /// The downloadable log: one JSON object per record, and last the run's technical error
    /// (`null` when there was none) with its status and counts.
    pub fn json_lines(&self) -> String {
        let mut out = String::new();
        for line in &self.log {
            if let Ok(text) = serde_json::to_string(line) {
                out.push_str(&text);
                out.push('\n');
            }
        }
        let last = serde_json::json!({
            "run": self.id,
            "status": self.status,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "ignored": self.ignored,
            "linesDropped": self.lines_dropped,
            "error": self.error,
        });
        out.push_str(&last.to_string());
        out.push('\n');
        out
    }
}

/// The id of the run of `job` in the invocation `seed` names.
fn run_id(seed: &str, started_ms: i64, function: RunFunction, job: Option<&str>) -> RunId {
    let mut h = fnv::FnvHasher::default();
    (seed, job).hash(&mut h);
    RunId {
        started_ms,
        function,
        nonce: format!("{:06x}", h.finish() & 0xff_ffff),
    }
}

/// The runs of one invocation, one per job, collected as the handler works and written once at
/// its end.
#[derive(Debug)]
pub struct Runs {
    function: RunFunction,
    event: String,
    started_ms: i64,
    seed: String,
    by_job: BTreeMap<Option<String>, Run>,
}

impl Runs {
    /// `seed` makes the ids of two invocations started in the same millisecond differ (the SQS
    /// message ids of a batch, the request of a resync).
    pub fn new(function: RunFunction, event: &str, started_ms: i64, seed: &str) -> Self {
        Self {
            function,
            event: event.to_string(),
            started_ms,
            seed: seed.to_string(),
            by_job: BTreeMap::new(),
        }
    }

    /// The id of this invocation's run for `job` (stable: asked twice, the same id; a resumed
    /// run keeps its own).
    pub fn id_for(&self, job: Option<&str>) -> RunId {
        match self.by_job.get(&job.map(str::to_string)) {
            Some(run) => run.id.clone(),
            None => run_id(&self.seed, self.started_ms, self.function, job),
        }
    }

    /// `job`'s run, started on first use (its id is worked out only then).
    fn run(&mut self, job: Option<&str>) -> &mut Run {
        match self.by_job.entry(job.map(str::to_string)) {
            Entry::Occupied(run) => run.into_mut(),
            Entry::Vacant(slot) => {
                let id = run_id(&self.seed, self.started_ms, self.function, job);
                let key = slot.key().clone();
                slot.insert(Run::new(id, key, &self.event))
            }
        }
    }

    /// Names the objects `job`'s run reads and writes (once: handlers call it per record, and a
    /// run's objects do not change within it).
    pub fn objects(&mut self, job: Option<&str>, source: &str, destination: Option<&str>) {
        let run = self.run(job);
        if run.source_object.is_none() {
            run.source_object = Some(source.to_string());
            run.destination_object = destination.map(str::to_string);
        }
    }

    pub fn line(&mut self, job: Option<&str>, line: RunLine) {
        self.run(job).push(line);
    }

    /// Records the technical error that stopped `job`'s run.
    pub fn fail(&mut self, job: Option<&str>, error: impl Into<String>) {
        self.run(job).error = Some(error.into());
    }

    pub fn is_empty(&self) -> bool {
        self.by_job.is_empty()
    }

    /// Continues `run`, started by an earlier invocation: its counts and log carry on, and it keeps
    /// its id and start (a resync done a page per invocation is one run).
    pub fn resume(function: RunFunction, run: Run) -> Self {
        let mut runs = Runs::new(function, &run.event, run.started_at_ms, "");
        let job = run.job.clone();
        runs.by_job.insert(job, run);
        runs
    }

    /// The runs as they stand, still `in_progress`: the work goes on in another invocation.
    pub fn pause(self) -> Vec<Run> {
        self.by_job
            .into_values()
            .map(|mut run| {
                run.status = RunStatus::InProgress;
                run.ended_at_ms = None;
                run
            })
            .collect()
    }

    /// Moves the runs out, leaving none (the same invocation, nothing recorded).
    pub fn take(&mut self) -> Runs {
        Runs {
            function: self.function,
            event: self.event.clone(),
            started_ms: self.started_ms,
            seed: self.seed.clone(),
            by_job: std::mem::take(&mut self.by_job),
        }
    }

    /// The runs, ended at `ended_ms` (never before they started), each with its status.
    pub fn finish(self, ended_ms: i64) -> Vec<Run> {
        let ended_ms = ended_ms.max(self.started_ms);
        self.by_job
            .into_values()
            .map(|mut run| {
                run.ended_at_ms = Some(ended_ms);
                run.status = RunStatus::of(run.succeeded, run.failed, run.error.is_some());
                run
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_round_trip_and_bad_ones_say_what_is_expected() {
        let id: RunId = "1764113894123-pusher-a3f9c2".parse().unwrap();
        assert_eq!(id.function, RunFunction::Pusher);
        assert_eq!(id.started_ms, 1764113894123);
        assert_eq!(id.to_string(), "1764113894123-pusher-a3f9c2");
        for bad in ["", "x-pusher-1", "1-lambda-1", "1-pusher-", "1-pusher-a/b"] {
            let err = bad.parse::<RunId>().unwrap_err().to_string();
            assert!(err.contains("<epoch ms>-<function>-<nonce>"), "{err}");
        }
    }

    #[test]
    fn status_follows_the_counts() {
        assert_eq!(RunStatus::of(3, 0, false), RunStatus::Success);
        assert_eq!(RunStatus::of(3, 1, false), RunStatus::PartialSuccess);
        assert_eq!(RunStatus::of(0, 2, false), RunStatus::Failed);
        assert_eq!(RunStatus::of(0, 0, false), RunStatus::Ignored);
        assert_eq!(RunStatus::of(5, 0, true), RunStatus::Failed);
    }

    #[test]
    fn one_run_per_job_with_counts_and_the_error_on_the_last_log_line() {
        let mut runs = Runs::new(RunFunction::Pusher, "writes batch", 1_000, "m1,m2");
        let a = runs.id_for(Some("company_account"));
        assert_eq!(a, runs.id_for(Some("company_account")), "stable");
        assert_ne!(a, runs.id_for(Some("person_contact")));
        runs.objects(Some("company_account"), "Company", Some("Account"));
        runs.line(
            Some("company_account"),
            RunLine::new("G1", LineOutcome::Synced).fields(vec!["Name".into()]),
        );
        runs.line(
            Some("company_account"),
            RunLine::new("G2", LineOutcome::Error)
                .message("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: bad value"),
        );
        runs.line(
            Some("person_contact"),
            RunLine::new("P1", LineOutcome::Ignored),
        );
        runs.fail(Some("person_contact"), "Salesforce unavailable (HTTP 503)");
        let done = runs.finish(2_000);
        assert_eq!(done.len(), 2);
        let company = &done[0];
        assert_eq!(company.id, a);
        assert_eq!(
            (
                company.status,
                company.succeeded,
                company.failed,
                company.ignored
            ),
            (RunStatus::PartialSuccess, 1, 1, 0)
        );
        assert_eq!(done[1].status, RunStatus::Failed);
        let lines: Vec<serde_json::Value> = done[1]
            .json_lines()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["record"], "P1");
        assert_eq!(
            lines.last().unwrap()["error"],
            "Salesforce unavailable (HTTP 503)"
        );
    }

    #[test]
    fn a_run_paused_and_resumed_is_one_run() {
        let mut first = Runs::new(RunFunction::Resync, "resync", 100, "req");
        first.line(Some("j"), RunLine::new("G1", LineOutcome::Queued));
        let id = first.id_for(Some("j"));
        let paused = first.pause().remove(0);
        assert_eq!(
            (paused.status, paused.ended_at_ms),
            (RunStatus::InProgress, None)
        );
        let mut second = Runs::resume(RunFunction::Resync, paused);
        assert_eq!(second.id_for(Some("j")), id, "the same run");
        second.line(Some("j"), RunLine::new("G2", LineOutcome::Error));
        let done = second.finish(300).remove(0);
        assert_eq!(done.id, id);
        assert_eq!((done.started_at_ms, done.ended_at_ms), (100, Some(300)));
        assert_eq!((done.succeeded, done.failed, done.log.len()), (1, 1, 2));
        assert_eq!(done.status, RunStatus::PartialSuccess);
    }

    #[test]
    fn the_log_is_capped_and_the_rest_counted() {
        let mut runs = Runs::new(RunFunction::Poller, "schedule", 1, "s");
        for i in 0..MAX_LOG_LINES + 5 {
            runs.line(
                Some("j"),
                RunLine::new(format!("G{i}"), LineOutcome::Queued),
            );
        }
        let run = runs.finish(2).remove(0);
        assert_eq!(
            (run.log.len(), run.lines_dropped, run.succeeded),
            (MAX_LOG_LINES, 5, MAX_LOG_LINES as u64 + 5)
        );
    }
}
