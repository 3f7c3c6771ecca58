//! Ports: the small async traits the functions depend on. Adapters implement them on AWS and HTTP;
//! `fakes` implements them in memory for unit tests.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use crate::domain::timeline::Attachment;
use crate::domain::waiting::{ParentKey, WaitingChange};

pub use crate::domain::Prior;
use crate::domain::{
    Fields, LedgerBatch, LedgerKey, LedgerRecord, LedgerUpdate, ObjectSchema, Run, RunId,
    SyncStatus, System,
};
use crate::secret::Secret;

mod bulk_jobs;
mod bulk_read;
mod job_states;
mod query;
pub use bulk_jobs::{BulkJobKey, BulkJobs};
pub use bulk_read::{BulkReadJob, BulkRows, BulkSet, SalesforceBulkRead};
pub use job_states::{
    change_job_state, deactivate_jobs, JobStateCache, JobStateError, JobStates, JOB_STATES_TTL_MS,
};
pub use query::{GsCondition, GsOperator, GsQuery, SfAfter, SfSelect};

/// Whether an error is worth retrying (the message goes back to the queue) or final.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    #[error("state store rejected the request: {0}")]
    Rejected(String),
    #[error("concurrent update of {0}; retry")]
    Conflict(String),
    /// The update no longer holds on the record as it is now (`LedgerUpdate::holds_on`): the
    /// change it came from is mapped again.
    #[error("ledger record {0} changed since the change was mapped; mapping it again")]
    Superseded(String),
    #[error("corrupt item {key}: {message}")]
    Corrupt { key: String, message: String },
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Conflict(_) | StoreError::Superseded(_)
        )
    }
}

/// Outcome of claiming an event id for processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// First time seen (or an earlier claim was abandoned): process it.
    New,
    /// Already queued: drop this delivery.
    Duplicate,
    /// Claimed by another delivery that has not said yet whether it queued it (it is in flight,
    /// or it crashed and its claim is handed out again after the reclaim delay): answer so that
    /// the sender retries, as acknowledging would lose the change if that delivery fails.
    Pending,
}

/// A (timestamp, id) cursor: everything up to and including it has been queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub timestamp_ms: i64,
    pub last_id: String,
}

/// Event dedup claims (DynamoDB in production): a change is queued once however often it is
/// delivered.
#[async_trait]
pub trait DedupStore: Send + Sync {
    /// Claims `event_id`. A claim that was never confirmed for `reclaim_after_ms` is handed out
    /// again, so a crash between claim and enqueue cannot lose the event.
    async fn claim_event(
        &self,
        event_id: &str,
        now_ms: i64,
        reclaim_after_ms: i64,
        ttl_s: i64,
    ) -> Result<Claim, StoreError>;
    /// Marks a claimed event as safely queued.
    async fn confirm_event(&self, event_id: &str) -> Result<(), StoreError>;
    /// Gives a claim back after a failure to enqueue, so a retry is processed.
    async fn release_event(&self, event_id: &str) -> Result<(), StoreError>;

    /// Claims many events; one result per id, in order. Adapters claim them in few requests.
    async fn claim_events(
        &self,
        event_ids: &[String],
        now_ms: i64,
        reclaim_after_ms: i64,
        ttl_s: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut claims = Vec::with_capacity(event_ids.len());
        for id in event_ids {
            claims.push(
                self.claim_event(id, now_ms, reclaim_after_ms, ttl_s)
                    .await?,
            );
        }
        Ok(claims)
    }

    /// Marks claimed events as queued (`claimed_at_ms`, `ttl_s`: as they were claimed).
    async fn confirm_events(
        &self,
        event_ids: &[String],
        _claimed_at_ms: i64,
        _ttl_s: i64,
    ) -> Result<(), StoreError> {
        for id in event_ids {
            self.confirm_event(id).await?;
        }
        Ok(())
    }

    /// Marks claimed events as queued and stores the runs that queued them, together (the
    /// adapter writes both in one request, so a webhook delivery's run costs no write of its own).
    async fn confirm_events_with_runs(
        &self,
        event_ids: &[String],
        claimed_at_ms: i64,
        ttl_s: i64,
        runs: &[Run],
    ) -> Result<(), StoreError>;

    /// Gives claims back.
    async fn release_events(&self, event_ids: &[String]) -> Result<(), StoreError> {
        for id in event_ids {
            self.release_event(id).await?;
        }
        Ok(())
    }
}

/// A ledger write's result as applied (`true`) or not applied because it no longer held
/// (`false`, `StoreError::Superseded`); any other error stays one.
pub fn applied(result: Result<(), StoreError>) -> Result<bool, StoreError> {
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::Superseded(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The sync ledger (DynamoDB in production): one record per record pair and job.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    async fn ledger(&self, job: &str, key: &LedgerKey) -> Result<Option<LedgerRecord>, StoreError>;
    /// Batched read of many ledger records of one job; absent ones are left out.
    async fn ledgers(&self, job: &str, keys: &[LedgerKey])
        -> Result<Vec<LedgerRecord>, StoreError>;
    /// Applies one update to its ledger record (created if absent), adding it to the record's
    /// history; `StoreError::Superseded` when the update no longer holds on the record.
    async fn record(&self, write: &LedgerWrite, at_ms: i64) -> Result<(), StoreError>;
    /// Applies many updates (adapters: in few requests); each is applied exactly as `record`
    /// applies it. Answers the positions in `writes` of those not applied because they no
    /// longer held (`StoreError::Superseded`); every other write was applied.
    async fn record_many(
        &self,
        writes: &[LedgerWrite],
        at_ms: i64,
    ) -> Result<Vec<usize>, StoreError> {
        let mut superseded = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            if !applied(self.record(w, at_ms).await)? {
                superseded.push(i);
            }
        }
        Ok(superseded)
    }
    /// Notes on `job`'s records already in the ledger that the write of a change from a source
    /// made at a time was queued (`(key, source, at_ms)`; see `LedgerRecord::mapped_at`). Kept
    /// only where newer than the note there; neither a new version nor a history entry.
    async fn mapped(&self, job: &str, marks: &[(LedgerKey, System, i64)])
        -> Result<(), StoreError>;
    /// Records that Salesforce-only pairs got their GSID (`(from, to)`, noted at `at_ms`): each
    /// placeholder record, if any, is deleted and a forwarding note left in its place, so a write
    /// mapped before the move and still keyed `from` finds the pair under `to`.
    async fn moved(
        &self,
        job: &str,
        moves: &[(LedgerKey, LedgerKey)],
        at_ms: i64,
    ) -> Result<(), StoreError>;
    /// Where those of `keys` that moved went, by the key they moved from.
    async fn moves_of(
        &self,
        job: &str,
        keys: &[LedgerKey],
    ) -> Result<HashMap<LedgerKey, LedgerKey>, StoreError>;
    /// Ledger records of `job` in key order, from after `start` (a key of the previous page), up
    /// to `limit`.
    async fn list(
        &self,
        job: &str,
        start: Option<&LedgerKey>,
        limit: usize,
    ) -> Result<Vec<LedgerRecord>, StoreError>;
    /// Ledger records of `job` carrying `status`, in key order from after `start`, up to `limit`.
    async fn by_status(
        &self,
        job: &str,
        status: SyncStatus,
        start: Option<&LedgerKey>,
        limit: usize,
    ) -> Result<Vec<LedgerRecord>, StoreError>;
    /// The key of the ledger record of `job` whose Salesforce id is `salesforce_id` (an index
    /// read, without the record).
    async fn key_of_salesforce_id(
        &self,
        job: &str,
        salesforce_id: &str,
    ) -> Result<Option<LedgerKey>, StoreError>;
    /// The ledger record of `job` whose Salesforce id is `salesforce_id`.
    async fn by_salesforce_id(
        &self,
        job: &str,
        salesforce_id: &str,
    ) -> Result<Option<LedgerRecord>, StoreError> {
        match self.key_of_salesforce_id(job, salesforce_id).await? {
            Some(key) => self.ledger(job, &key).await,
            None => Ok(None),
        }
    }
}

/// One ledger update of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerWrite {
    pub job: String,
    pub key: LedgerKey,
    pub update: LedgerUpdate,
    /// The run that made it (linked from the record's history).
    pub run: String,
    pub prior: Prior,
}

impl LedgerWrite {
    /// An update of a record not read before.
    pub fn new(job: &str, key: LedgerKey, update: LedgerUpdate, run: &str) -> Self {
        Self {
            job: job.to_string(),
            key,
            update,
            run: run.to_string(),
            prior: Prior::Unread,
        }
    }

    /// The same update, knowing the record as the batch read it (`None`: absent).
    pub fn read_as(mut self, record: Option<&LedgerRecord>) -> Self {
        self.prior = Prior::of(record);
        self
    }
}

/// Applies `writes` as `record_many` does, and for each link among them (`LedgerUpdate::Imported`:
/// an import's row, a first load's link) leaves the forwarding note from its Salesforce Id to the
/// pair. A change from Salesforce names only the record's Id when the record does not carry the
/// GSID, and the note is how the mapper finds the pair; without it the change looks like a new
/// record and creates a second twin. Answers as `record_many`.
pub async fn record_links(
    store: &dyn LedgerStore,
    writes: &[LedgerWrite],
    at_ms: i64,
) -> Result<Vec<usize>, StoreError> {
    let superseded = store.record_many(writes, at_ms).await?;
    let mut notes: BTreeMap<&str, Vec<(LedgerKey, LedgerKey)>> = BTreeMap::new();
    for w in writes {
        if let LedgerUpdate::Imported { salesforce_id, .. } = &w.update {
            let from = LedgerKey::SalesforceOnly(salesforce_id.clone());
            notes.entry(&w.job).or_default().push((from, w.key.clone()));
        }
    }
    for (job, moves) in notes {
        store.moved(job, &moves, at_ms).await?;
    }
    Ok(superseded)
}

/// Runs, the execution activities of the functions (DynamoDB in production, with a TTL).
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Stores the runs of one invocation in one request.
    async fn put_runs(&self, runs: &[Run]) -> Result<(), StoreError>;
    /// One run with its log.
    async fn run(&self, id: &RunId) -> Result<Option<Run>, StoreError>;
    /// Runs started in `[from_ms, to_ms]`, newest first, without their logs.
    async fn runs(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Run>, StoreError>;
}

/// Writes of bulk loads, staged until the load is quiet (DynamoDB in production, with a TTL).
#[async_trait]
pub trait LoadStore: Send + Sync {
    /// Stages `writes` under `load` (each change's write an item of its own; the same change
    /// staged again replaces itself) and notes that the load grew at `now_ms` and is unwritten;
    /// the writes are stored before the note, so whoever sees the note sees them.
    async fn stage(
        &self,
        load: &crate::domain::load::LoadId,
        writes: &[crate::domain::WriteCommand],
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// What is known of `load`; `None` when nothing was staged under it.
    async fn load_state(
        &self,
        load: &crate::domain::load::LoadId,
    ) -> Result<Option<crate::domain::load::LoadState>, StoreError>;
    /// Claims the load for the one flush that writes it: `true` when it is unwritten, has not
    /// grown since `quiet_before_ms`, and no other flush holds it (a claim lapses at
    /// `now_ms + lease_ms`, so a flush that died is taken over).
    async fn claim_load(
        &self,
        load: &crate::domain::load::LoadId,
        (quiet_before_ms, now_ms, lease_ms): (i64, i64, i64),
    ) -> Result<bool, StoreError>;
    /// Stages `sides`, write backs that followed writes of `load` (each an item of its own; the
    /// same write back staged again replaces itself), and notes that the load grew at `now_ms`,
    /// as `stage` does.
    async fn stage_sides(
        &self,
        load: &crate::domain::load::LoadId,
        sides: &[crate::domain::push::SideWrite],
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// The next slice of what is staged under `load`: its writes first, at most `most` of them
    /// in the order of their keys (job, ledger key, change), taking every write of the slice's
    /// last record so that no record's writes are split between slices; once no write is left,
    /// its write backs, at most `most`. Empty when nothing is left.
    async fn staged(
        &self,
        load: &crate::domain::load::LoadId,
        most: usize,
    ) -> Result<crate::domain::load::Staged, StoreError>;
    /// Takes `written` (a slice as `staged` gave it) out of `load` and gives the flush's claim
    /// back; when `written` is empty (nothing was left), marks the load written unless it grew
    /// since `through_ms` (its last growth when the flush claimed it). A write staged meanwhile
    /// is a staged item of its own, kept for the next flush.
    async fn finish_load(
        &self,
        load: &crate::domain::load::LoadId,
        through_ms: i64,
        written: &crate::domain::load::Staged,
    ) -> Result<(), StoreError>;
    /// Gives the flush's claim on `load` back and takes nothing out: a flush that must wait
    /// (for a Bulk API job still running) lets the next flush take the same slice.
    async fn release_load(&self, load: &crate::domain::load::LoadId) -> Result<(), StoreError>;
}

/// First loads (`domain::first_load::steps`; DynamoDB in production): per job, the load in
/// progress or the last one, and its steps in chunks.
#[async_trait]
pub trait FirstLoadStore: Send + Sync {
    /// The job's load in progress, or its last one.
    async fn first_load(
        &self,
        job: &str,
    ) -> Result<Option<crate::domain::first_load::steps::FirstLoad>, StoreError>;
    /// Stores chunk `index` of `load`'s steps; a load's chunks are stored before it begins, so
    /// whoever reads the load finds them.
    async fn put_first_load_chunk(
        &self,
        load: &crate::domain::first_load::steps::FirstLoad,
        index: usize,
        steps: &[crate::domain::first_load::steps::Step],
    ) -> Result<(), StoreError>;
    /// Stores `load`, its chunks stored already: `false` (nothing replaced) when the job has a
    /// load in progress under another run, which another invocation began meanwhile.
    async fn begin_first_load(
        &self,
        load: &crate::domain::first_load::steps::FirstLoad,
    ) -> Result<bool, StoreError>;
    /// The steps of chunk `index` of the load of `job` whose run is `run`.
    async fn first_load_chunk(
        &self,
        job: &str,
        run: &str,
        index: usize,
    ) -> Result<Vec<crate::domain::first_load::steps::Step>, StoreError>;
    /// Moves the load's checkpoint from `done` to `done + 1` (and its state to `state`), only while
    /// it is that run's, in progress and at `done`: `false` when another invocation moved it, or
    /// it was cancelled, meanwhile.
    async fn advance_first_load(
        &self,
        job: &str,
        run: &str,
        (done, state): (usize, crate::domain::first_load::steps::FirstLoadState),
    ) -> Result<bool, StoreError>;
    /// Marks the job's load in progress cancelled: `false` when none was in progress.
    async fn cancel_first_load(&self, job: &str) -> Result<bool, StoreError>;
}

/// Changes parked until the record they refer to is synced (`domain::waiting`; DynamoDB in
/// production, filed under the parent).
#[async_trait]
pub trait WaitingStore: Send + Sync {
    /// Files each change under its parent; a change parked again takes its slot anew.
    async fn wait(&self, parked: &[WaitingChange]) -> Result<(), StoreError>;
    /// Every change parked under any of `parents`, in slot order.
    async fn waiting_on(&self, parents: &[ParentKey]) -> Result<Vec<WaitingChange>, StoreError>;
    /// Every change `job` has parked, for the poller's sweep.
    async fn waiting_in(&self, job: &str) -> Result<Vec<WaitingChange>, StoreError>;
    /// Takes these changes out, each only while it is as read (`filed_at_ms`): one parked
    /// again since stays.
    async fn release(&self, parked: &[WaitingChange]) -> Result<(), StoreError>;
}

/// Record leases (DynamoDB in production): one pusher at a time writes a record pair.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes each lease no one else holds as of `now_ms`, until `until_ms`; one answer per lease,
    /// in order, `true` when taken. A lease past its time is free whoever took it.
    async fn take_leases(
        &self,
        leases: &[crate::domain::lease::RecordLease],
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<bool>, StoreError>;
    /// Gives back leases this pusher took.
    async fn release_leases(
        &self,
        leases: &[crate::domain::lease::RecordLease],
    ) -> Result<(), StoreError>;
}

/// Poll cursors (DynamoDB in production), one per job and stream.
#[async_trait]
pub trait CursorStore: Send + Sync {
    async fn cursor(&self, job: &str, stream: &str) -> Result<Option<Cursor>, StoreError>;
    async fn put_cursor(&self, job: &str, stream: &str, cursor: &Cursor) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("queue refused the message: {0}")]
    Rejected(String),
}

impl Retryable for QueueError {
    fn is_retryable(&self) -> bool {
        matches!(self, QueueError::Unavailable(_))
    }
}

/// SQS in production.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends every body; the result has one entry per body, in order.
    async fn send(&self, bodies: &[String]) -> Vec<Result<(), QueueError>>;
    /// Sends every body to be delivered no sooner than `delay` from now (SQS: at most 15 minutes).
    async fn send_later(
        &self,
        bodies: &[String],
        delay: std::time::Duration,
    ) -> Vec<Result<(), QueueError>> {
        let _ = delay;
        self.send(bodies).await
    }
}

/// Why a poll could not be asked for.
#[derive(Debug, thiserror::Error)]
#[error("the poller could not be invoked: {0}")]
pub struct TriggerError(pub String);

/// Asks for a job's records in one system changed since an instant to be read again (the
/// poller, invoked without waiting for it).
#[async_trait]
pub trait PollTrigger: Send + Sync {
    async fn poll_since(
        &self,
        job: &str,
        system: crate::domain::System,
        since_ms: i64,
    ) -> Result<(), TriggerError>;
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {0} is not stored; put it first (syncctl put-secret / devstack)")]
    NotFound(String),
    #[error("secret {name} cannot be decrypted: {message}")]
    Decrypt { name: String, message: String },
    #[error("secrets store unavailable: {0}")]
    Unavailable(String),
}

impl Retryable for SecretsError {
    fn is_retryable(&self) -> bool {
        matches!(self, SecretsError::Unavailable(_))
    }
}

/// KMS ciphertext kept in the state table in production.
#[async_trait]
pub trait Secrets: Send + Sync {
    async fn get(&self, name: &str) -> Result<Secret, SecretsError>;
    async fn put(&self, name: &str, plaintext: &Secret) -> Result<(), SecretsError>;
}

/// Errors of the Gainsight and Salesforce APIs, classified for retry.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{system} rate limit hit (HTTP {status}): {message}")]
    RateLimited {
        system: &'static str,
        status: u16,
        message: String,
        /// How long the system asked us to wait (its `Retry-After`), when it said.
        retry_after_ms: Option<u64>,
    },
    #[error("{system} unavailable (HTTP {status}): {message}")]
    Unavailable {
        system: &'static str,
        status: u16,
        message: String,
        /// How long the system asked us to wait (a 503's `Retry-After`), when it said.
        retry_after_ms: Option<u64>,
    },
    #[error("{system} did not answer in time: {message}")]
    Timeout {
        system: &'static str,
        message: String,
    },
    #[error("{system} authentication failed: {message}")]
    Auth {
        system: &'static str,
        message: String,
    },
    #[error("{system} refused the request (HTTP {status} {code}): {message}")]
    Rejected {
        system: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// A Bulk API job still running when its writer could wait no longer: the same records
    /// written again collect its results instead of submitting them again.
    #[error("{system} is still processing {job}: {message}")]
    StillRunning {
        system: &'static str,
        job: String,
        message: String,
    },
    /// A write call the invocation's deadline cut off or left unstarted: what it writes is made
    /// again by a later invocation (a bulk load keeps the slice staged, so a Bulk API job it
    /// submitted is collected, not written again record by record).
    #[error("{system} write not completed in this invocation: {message}")]
    OutOfTime {
        system: &'static str,
        message: String,
    },
    #[error("{system} answered something unexpected: {message}")]
    Protocol {
        system: &'static str,
        message: String,
    },
}

impl Retryable for ApiError {
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. }
                | ApiError::Unavailable { .. }
                | ApiError::Timeout { .. }
                | ApiError::StillRunning { .. }
                | ApiError::OutOfTime { .. }
        )
    }
}

impl ApiError {
    /// The error with the wait its response asked for (`Retry-After`), kept by the kinds a wait
    /// can clear: rate limits and unavailability.
    pub fn with_retry_after(mut self, wait: Option<u64>) -> Self {
        if let ApiError::RateLimited { retry_after_ms, .. }
        | ApiError::Unavailable { retry_after_ms, .. } = &mut self
        {
            *retry_after_ms = wait.or(*retry_after_ms);
        }
        self
    }

    /// The wait a rate-limited or unavailable system asked for (its `Retry-After`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ApiError::RateLimited {
                retry_after_ms: Some(ms),
                ..
            }
            | ApiError::Unavailable {
                retry_after_ms: Some(ms),
                ..
            } => Some(std::time::Duration::from_millis(*ms)),
            _ => None,
        }
    }
}

/// Files attached to Timeline activities, read from Gainsight.
#[async_trait]
pub trait ActivityFiles: Send + Sync {
    async fn download(&self, attachment: &Attachment) -> Result<Vec<u8>, ApiError>;
}

/// Files uploaded to Salesforce, each published to (and so linked with) one record.
#[async_trait]
pub trait FileUploads: Send + Sync {
    /// Uploads `bytes` as a new file on record `link_to`, marked with its attachment's id; the
    /// new ContentVersion's Id.
    async fn upload(
        &self,
        file: &Attachment,
        bytes: &[u8],
        link_to: &str,
    ) -> Result<String, ApiError>;
    /// The files already published to `records`: `(record, attachment id, ContentVersion Id)`
    /// for each file an upload marked (one query per 200 records).
    async fn published(
        &self,
        records: &[String],
    ) -> Result<Vec<(String, String, String)>, ApiError>;
}

/// Per-record result of a write, in the order of the records sent.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordResult {
    pub id: Option<String>,
    pub success: bool,
    pub created: bool,
    /// `CODE: message` of each error, as the target reported it.
    pub errors: Vec<String>,
    /// The failure is transient for this record (e.g. Salesforce's UNABLE_TO_LOCK_ROW): worth
    /// trying again rather than marking final.
    pub retryable: bool,
    /// The record addressed does not exist there (any more): deleted, or never there.
    pub gone: bool,
}

impl RecordResult {
    /// A record the target did not write, with why, transient or not.
    pub fn failed(error: String, retryable: bool) -> Self {
        Self {
            id: None,
            success: false,
            created: false,
            errors: vec![error],
            retryable,
            gone: false,
        }
    }
}

#[async_trait]
pub trait GainsightApi: Send + Sync {
    /// All records matching `query` (pages through `limit`/`offset`).
    async fn query(&self, object: &str, query: &GsQuery) -> Result<Vec<Fields>, ApiError>;
    /// Inserts up to 50 records a call (chunked here).
    async fn insert(&self, object: &str, records: &[Fields])
        -> Result<Vec<RecordResult>, ApiError>;
    /// Updates records matched on `keys` (chunked to 50 a call).
    async fn update(
        &self,
        object: &str,
        keys: &[String],
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError>;
    /// The object's describe, as the domain's schema.
    async fn describe(&self, object: &str) -> Result<ObjectSchema, ApiError>;
    /// The rate-limit window's usage as Gainsight's last answer reported it; `None` before any
    /// call, or when Gainsight does not say.
    fn window_usage(&self) -> Option<crate::domain::budget::WindowUsage> {
        None
    }
}

#[async_trait]
pub trait SalesforceApi: Send + Sync {
    /// Upserts on an external-ID field with sObject Collections (200 records a call, chunked here);
    /// `allOrNone` is false so one bad record never fails the others.
    async fn upsert(
        &self,
        object: &str,
        external_id_field: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError>;
    /// Creates records with sObject Collections (200 a call); results in order.
    async fn create(&self, object: &str, records: &[Fields])
        -> Result<Vec<RecordResult>, ApiError>;
    /// Updates records by their `Id` with sObject Collections (200 a call).
    async fn update(&self, object: &str, records: &[Fields])
        -> Result<Vec<RecordResult>, ApiError>;
    /// `sobjects/{object}/describe`, as the domain's schema.
    async fn describe(&self, object: &str) -> Result<ObjectSchema, ApiError>;
    /// Reads the records `query` selects, following `nextRecordsUrl` to the end.
    async fn select(&self, query: &SfSelect) -> Result<Vec<Fields>, ApiError>;
    /// Upserts a large load through Bulk API 2.0 (one ingest job); by default, through `upsert`.
    async fn bulk_upsert(
        &self,
        object: &str,
        external_id_field: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        self.upsert(object, external_id_field, records).await
    }
    /// Updates a large load by `Id` through Bulk API 2.0 (one ingest job); by default, through
    /// `update`.
    async fn bulk_update(
        &self,
        object: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        self.update(object, records).await
    }
    /// The org's daily API usage as its last answer reported it; `None` before any call.
    fn api_usage(&self) -> Option<crate::domain::budget::ApiUsage> {
        None
    }
    /// Asks the org for its daily API usage now (`/limits`, itself one call).
    async fn refresh_api_usage(&self) -> Result<Option<crate::domain::budget::ApiUsage>, ApiError> {
        Ok(self.api_usage())
    }
}

impl LedgerBatch {
    /// Reads the ledger records of `wanted` (job -> ledger keys), one `ledgers` call per job; a
    /// job whose read fails is marked unreadable, so its messages are retried.
    pub async fn read(
        store: &dyn LedgerStore,
        wanted: &std::collections::HashMap<String, Vec<LedgerKey>>,
    ) -> Self {
        let mut batch = Self::default();
        for (job, keys) in wanted {
            match store.ledgers(job, keys).await {
                Ok(records) => batch.extend(records),
                Err(e) => {
                    tracing::warn!(job = %job, error = %e, "ledger read failed; the job's messages will be retried");
                    batch.mark_unreadable(job);
                }
            }
        }
        batch
    }
}

/// The ports every function that reads a source and queues changes needs (poller, resync).
#[derive(Clone)]
pub struct SourcePorts {
    pub changes: std::sync::Arc<dyn Queue>,
    pub gainsight: std::sync::Arc<dyn GainsightApi>,
    pub jobs: crate::domain::Jobs,
}
