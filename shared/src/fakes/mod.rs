//! In-memory fakes of the ports, for fast unit tests of the functions. They keep what they are given
//! and can be told to fail, so tests can assert on state and on error paths.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};

use crate::domain::lease::RecordLease;
use crate::domain::load::{LoadId, LoadState, Staged};
use crate::domain::waiting::WaitingChange;
use crate::domain::{
    Fields, LedgerKey, LedgerRecord, Run, RunId, SyncStatus, System, WriteCommand,
};
use crate::ports::*;
use crate::secret::Secret;

mod bulk_jobs;
mod first_loads;
mod queue;
mod salesforce;
mod waiting;

pub use bulk_jobs::MemoryBulkJobs;
pub use queue::MemoryQueue;
pub use salesforce::MemorySalesforce;

#[derive(Default)]
pub struct MemoryStore {
    pub events: Mutex<HashMap<String, (bool, i64)>>,
    pub ledger: Mutex<HashMap<(String, LedgerKey), LedgerRecord>>,
    pub cursors: Mutex<HashMap<(String, String), Cursor>>,
    /// Runs as written, in order (a run written twice appears twice; the last one counts).
    pub runs: Mutex<Vec<Run>>,
    /// How many times `put_runs` was called (a function writes its runs once per invocation).
    pub run_writes: Mutex<usize>,
    /// When set, every call fails with `StoreError::Unavailable`.
    pub fail: Mutex<bool>,
    /// Bulk loads: their state, claim lease, and staged writes by (job, ledger key).
    pub loads: Mutex<HashMap<LoadId, MemoryLoad>>,
    /// Salesforce-only ledger keys that moved to a GSID, by (job, key moved from).
    pub moves: Mutex<HashMap<(String, LedgerKey), LedgerKey>>,
    /// Record leases, with the time each holds until.
    pub leases: Mutex<HashMap<RecordLease, i64>>,
    /// Leases taken over the store's life, and leases refused because another held them.
    pub lease_counts: Mutex<(usize, usize)>,
    /// Run once on the ledger just before the next ledger write: what a concurrent invocation
    /// wrote between a function's read and its write.
    pub meanwhile: Mutex<Option<Meanwhile>>,
    /// Parked changes by (parent key, slot).
    pub waiting: Mutex<std::collections::BTreeMap<(String, String), WaitingChange>>,
    /// How many times `waiting_on` was asked (a DynamoDB query per parent in production).
    pub waiting_reads: Mutex<usize>,
    /// How many times `moves_of` was asked (a BatchGetItem in production).
    pub move_reads: Mutex<usize>,
    /// First loads by job, with their chunks of steps.
    pub first_loads: Mutex<HashMap<String, FirstLoadEntry>>,
    /// Chunks stored for loads (by job and run) not begun yet.
    pub first_load_chunks: Mutex<HashMap<(String, String), Chunks>>,
    /// Job states by job, and how many times they were read.
    pub job_states: Mutex<std::collections::BTreeMap<String, crate::domain::job_state::JobStatus>>,
    pub job_state_reads: Mutex<usize>,
}

/// A load's chunks of steps.
pub type Chunks = Vec<Vec<crate::domain::first_load::steps::Step>>;

/// A job's first load and its chunks of steps.
pub type FirstLoadEntry = (crate::domain::first_load::steps::FirstLoad, Chunks);

/// A change to the ledger made by someone else (see `MemoryStore::meanwhile`).
pub type Meanwhile = Box<dyn FnOnce(&mut HashMap<(String, LedgerKey), LedgerRecord>) + Send>;

#[derive(Default, Clone)]
pub struct MemoryLoad {
    pub state: LoadState,
    pub lease_until_ms: i64,
    /// Staged writes by job, ledger key and event id.
    pub writes: std::collections::BTreeMap<(String, String, String), WriteCommand>,
    /// Staged write backs by their stage key.
    pub sides: std::collections::BTreeMap<String, crate::domain::push::SideWrite>,
}

#[async_trait]
impl LoadStore for MemoryStore {
    async fn stage(
        &self,
        load: &LoadId,
        writes: &[WriteCommand],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.check()?;
        let mut loads = self.loads.lock().unwrap();
        let entry = loads.entry(load.clone()).or_default();
        for w in writes {
            let key = (w.job.clone(), w.ledger_key.to_string(), w.event_id.clone());
            entry.writes.insert(key, w.clone());
        }
        entry.state.last_staged_ms = now_ms;
        entry.state.flushed = false;
        Ok(())
    }

    async fn load_state(&self, load: &LoadId) -> Result<Option<LoadState>, StoreError> {
        self.check()?;
        Ok(self.loads.lock().unwrap().get(load).map(|l| l.state))
    }

    async fn claim_load(
        &self,
        load: &LoadId,
        (quiet_before_ms, now_ms, lease_ms): (i64, i64, i64),
    ) -> Result<bool, StoreError> {
        self.check()?;
        let mut loads = self.loads.lock().unwrap();
        let Some(entry) = loads.get_mut(load) else {
            return Ok(false);
        };
        let free = !entry.state.flushed
            && entry.state.last_staged_ms <= quiet_before_ms
            && entry.lease_until_ms < now_ms;
        if free {
            entry.lease_until_ms = now_ms + lease_ms;
        }
        Ok(free)
    }

    async fn stage_sides(
        &self,
        load: &LoadId,
        sides: &[crate::domain::push::SideWrite],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.check()?;
        let mut loads = self.loads.lock().unwrap();
        let entry = loads.entry(load.clone()).or_default();
        for side in sides {
            entry.sides.insert(side.stage_key(), side.clone());
        }
        entry.state.last_staged_ms = now_ms;
        entry.state.flushed = false;
        Ok(())
    }

    async fn staged(&self, load: &LoadId, most: usize) -> Result<Staged, StoreError> {
        self.check()?;
        let loads = self.loads.lock().unwrap();
        let Some(l) = loads.get(load) else {
            return Ok(Staged::default());
        };
        let mut writes: Vec<WriteCommand> = Vec::new();
        for ((job, key, _), w) in &l.writes {
            let last = writes.last().map(|w| (&w.job, w.ledger_key.to_string()));
            if writes.len() >= most.max(1) && last != Some((job, key.clone())) {
                break;
            }
            writes.push(w.clone());
        }
        let sides = match writes.is_empty() {
            true => l.sides.values().take(most.max(1)).cloned().collect(),
            false => Vec::new(),
        };
        Ok(Staged { writes, sides })
    }

    async fn finish_load(
        &self,
        load: &LoadId,
        through_ms: i64,
        written: &Staged,
    ) -> Result<(), StoreError> {
        self.check()?;
        if let Some(entry) = self.loads.lock().unwrap().get_mut(load) {
            for w in &written.writes {
                let key = (w.job.clone(), w.ledger_key.to_string(), w.event_id.clone());
                entry.writes.remove(&key);
            }
            for side in &written.sides {
                entry.sides.remove(&side.stage_key());
            }
            if written.is_empty() {
                entry.state.flushed = entry.state.last_staged_ms == through_ms;
            }
            entry.lease_until_ms = 0;
        }
        Ok(())
    }

    async fn release_load(&self, load: &LoadId) -> Result<(), StoreError> {
        self.check()?;
        if let Some(entry) = self.loads.lock().unwrap().get_mut(load) {
            entry.lease_until_ms = 0;
        }
        Ok(())
    }
}

impl MemoryStore {
    fn check(&self) -> Result<(), StoreError> {
        if *self.fail.lock().unwrap() {
            Err(StoreError::Unavailable("injected".into()))
        } else {
            Ok(())
        }
    }

    /// Every run written so far, as the JSON lines `syncctl logs` would download.
    pub fn run_log(&self) -> String {
        let runs = self.runs.lock().unwrap();
        runs.iter().map(|r| r.json_lines()).collect()
    }

    /// The ledger record of `job` under `key` as written (`G1`, or `sf:001...`).
    pub fn ledger_of(&self, job: &str, key: &str) -> Option<LedgerRecord> {
        let key: LedgerKey = key.parse().ok()?;
        self.ledger
            .lock()
            .unwrap()
            .get(&(job.to_string(), key))
            .cloned()
    }

    fn records_where(
        &self,
        keep: impl Fn(&LedgerRecord) -> bool,
        limit: usize,
    ) -> Vec<LedgerRecord> {
        let mut out: Vec<_> = self
            .ledger
            .lock()
            .unwrap()
            .values()
            .filter(|r| keep(r))
            .cloned()
            .collect();
        // In the table's sort-key order.
        out.sort_by_key(|r| r.key.to_string());
        out.truncate(limit);
        out
    }
}

#[async_trait]
impl LeaseStore for MemoryStore {
    async fn take_leases(
        &self,
        leases: &[RecordLease],
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<bool>, StoreError> {
        self.check()?;
        let mut held = self.leases.lock().unwrap();
        let mut counts = self.lease_counts.lock().unwrap();
        Ok(leases
            .iter()
            .map(|lease| {
                let free = held.get(lease).is_none_or(|until| *until < now_ms);
                if free {
                    held.insert(lease.clone(), until_ms);
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
                free
            })
            .collect())
    }

    async fn release_leases(&self, leases: &[RecordLease]) -> Result<(), StoreError> {
        self.check()?;
        let mut held = self.leases.lock().unwrap();
        for lease in leases {
            held.remove(lease);
        }
        Ok(())
    }
}

#[async_trait]
impl DedupStore for MemoryStore {
    async fn claim_event(
        &self,
        event_id: &str,
        now_ms: i64,
        reclaim_after_ms: i64,
        _ttl_s: i64,
    ) -> Result<Claim, StoreError> {
        self.check()?;
        let mut events = self.events.lock().unwrap();
        match events.get(event_id) {
            Some((true, _)) => Ok(Claim::Duplicate),
            Some((false, at)) if now_ms - at <= reclaim_after_ms => Ok(Claim::Pending),
            _ => {
                events.insert(event_id.into(), (false, now_ms));
                Ok(Claim::New)
            }
        }
    }

    async fn confirm_event(&self, event_id: &str) -> Result<(), StoreError> {
        self.check()?;
        if let Some(e) = self.events.lock().unwrap().get_mut(event_id) {
            e.0 = true;
        }
        Ok(())
    }

    async fn confirm_events_with_runs(
        &self,
        event_ids: &[String],
        claimed_at_ms: i64,
        ttl_s: i64,
        runs: &[Run],
    ) -> Result<(), StoreError> {
        self.confirm_events(event_ids, claimed_at_ms, ttl_s).await?;
        self.put_runs(runs).await
    }

    async fn release_event(&self, event_id: &str) -> Result<(), StoreError> {
        self.check()?;
        self.events.lock().unwrap().remove(event_id);
        Ok(())
    }
}

#[async_trait]
impl LedgerStore for MemoryStore {
    async fn ledger(&self, job: &str, key: &LedgerKey) -> Result<Option<LedgerRecord>, StoreError> {
        self.check()?;
        let ledger = self.ledger.lock().unwrap();
        Ok(ledger.get(&(job.to_string(), key.clone())).cloned())
    }

    async fn ledgers(
        &self,
        job: &str,
        keys: &[LedgerKey],
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        self.check()?;
        let ledger = self.ledger.lock().unwrap();
        Ok(keys
            .iter()
            .filter_map(|k| ledger.get(&(job.to_string(), k.clone())).cloned())
            .collect())
    }

    async fn record(&self, write: &LedgerWrite, at_ms: i64) -> Result<(), StoreError> {
        self.check()?;
        let mut ledger = self.ledger.lock().unwrap();
        if let Some(meanwhile) = self.meanwhile.lock().unwrap().take() {
            meanwhile(&mut ledger);
        }
        let id = (write.job.clone(), write.key.clone());
        if !write.update.holds_on(ledger.get(&id)) {
            return Err(StoreError::Superseded(format!(
                "{}/{}",
                write.job, write.key
            )));
        }
        ledger
            .entry(id)
            .or_insert_with(|| LedgerRecord::new(write.job.clone(), write.key.clone()))
            .apply(&write.update, at_ms, &write.run);
        Ok(())
    }

    async fn moved(
        &self,
        job: &str,
        moves: &[(LedgerKey, LedgerKey)],
        _at_ms: i64,
    ) -> Result<(), StoreError> {
        self.check()?;
        let mut ledger = self.ledger.lock().unwrap();
        let mut moved = self.moves.lock().unwrap();
        for (from, to) in moves {
            ledger.remove(&(job.to_string(), from.clone()));
            moved.insert((job.to_string(), from.clone()), to.clone());
        }
        Ok(())
    }

    async fn mapped(
        &self,
        job: &str,
        marks: &[(LedgerKey, System, i64)],
    ) -> Result<(), StoreError> {
        self.check()?;
        let mut ledger = self.ledger.lock().unwrap();
        for (key, source, at_ms) in marks {
            if let Some(record) = ledger.get_mut(&(job.to_string(), key.clone())) {
                record.mapped(*source, *at_ms);
            }
        }
        Ok(())
    }

    async fn moves_of(
        &self,
        job: &str,
        keys: &[LedgerKey],
    ) -> Result<HashMap<LedgerKey, LedgerKey>, StoreError> {
        self.check()?;
        *self.move_reads.lock().unwrap() += 1;
        let moved = self.moves.lock().unwrap();
        Ok(keys
            .iter()
            .filter_map(|k| Some((k.clone(), moved.get(&(job.to_string(), k.clone()))?.clone())))
            .collect())
    }

    async fn list(
        &self,
        job: &str,
        start: Option<&LedgerKey>,
        limit: usize,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        self.check()?;
        Ok(self.records_where(|r| r.job == job && after(r, start), limit))
    }

    async fn by_status(
        &self,
        job: &str,
        status: SyncStatus,
        start: Option<&LedgerKey>,
        limit: usize,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        self.check()?;
        Ok(self.records_where(
            |r| r.job == job && r.has_status(status) && after(r, start),
            limit,
        ))
    }

    async fn key_of_salesforce_id(
        &self,
        job: &str,
        salesforce_id: &str,
    ) -> Result<Option<LedgerKey>, StoreError> {
        self.check()?;
        Ok(self
            .records_where(
                |r| r.job == job && r.salesforce_id.as_deref() == Some(salesforce_id),
                1,
            )
            .pop()
            .map(|r| r.key))
    }
}

/// Whether `r` comes after the page boundary `start` in key order.
fn after(r: &LedgerRecord, start: Option<&LedgerKey>) -> bool {
    start.is_none_or(|k| r.key.to_string() > k.to_string())
}

#[async_trait]
impl RunStore for MemoryStore {
    async fn put_runs(&self, runs: &[Run]) -> Result<(), StoreError> {
        self.check()?;
        *self.run_writes.lock().unwrap() += 1;
        self.runs.lock().unwrap().extend(runs.iter().cloned());
        Ok(())
    }

    async fn run(&self, id: &RunId) -> Result<Option<Run>, StoreError> {
        self.check()?;
        let runs = self.runs.lock().unwrap();
        Ok(runs.iter().rev().find(|r| &r.id == id).cloned())
    }

    async fn runs(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Run>, StoreError> {
        self.check()?;
        let mut out: Vec<Run> = self
            .runs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| (from_ms..=to_ms).contains(&r.started_at_ms))
            .map(|r| Run {
                log: Vec::new(),
                ..r.clone()
            })
            .collect();
        out.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(out)
    }
}

#[async_trait]
impl crate::ports::JobStates for MemoryStore {
    async fn job_states(
        &self,
    ) -> Result<std::collections::BTreeMap<String, crate::domain::job_state::JobStatus>, StoreError>
    {
        self.check()?;
        *self.job_state_reads.lock().unwrap() += 1;
        Ok(self.job_states.lock().unwrap().clone())
    }

    async fn put_job_state(
        &self,
        job: &str,
        status: &crate::domain::job_state::JobStatus,
    ) -> Result<(), StoreError> {
        self.check()?;
        let mut states = self.job_states.lock().unwrap();
        let stored = states.get(job).map_or(0, |s| s.version);
        if stored + 1 != status.version {
            return Err(StoreError::Conflict(format!(
                "job {job}'s state changed since it was read"
            )));
        }
        states.insert(job.to_string(), status.clone());
        Ok(())
    }
}

#[async_trait]
impl CursorStore for MemoryStore {
    async fn cursor(&self, job: &str, stream: &str) -> Result<Option<Cursor>, StoreError> {
        self.check()?;
        Ok(self
            .cursors
            .lock()
            .unwrap()
            .get(&(job.into(), stream.into()))
            .cloned())
    }

    async fn put_cursor(&self, job: &str, stream: &str, cursor: &Cursor) -> Result<(), StoreError> {
        self.check()?;
        self.cursors
            .lock()
            .unwrap()
            .insert((job.into(), stream.into()), cursor.clone());
        Ok(())
    }
}

#[derive(Default)]
pub struct MemorySecrets {
    pub values: Mutex<HashMap<String, Secret>>,
    /// How many times `get` was called.
    pub reads: std::sync::atomic::AtomicUsize,
}

impl MemorySecrets {
    /// How many times a secret was read.
    pub fn gets(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl Secrets for MemorySecrets {
    async fn get(&self, name: &str) -> Result<Secret, SecretsError> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.values
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .ok_or_else(|| SecretsError::NotFound(name.into()))
    }

    async fn put(&self, name: &str, plaintext: &Secret) -> Result<(), SecretsError> {
        self.values
            .lock()
            .unwrap()
            .insert(name.into(), plaintext.clone());
        Ok(())
    }
}

/// Gainsight fake: a fixed set of records per object, returned by every query.
#[derive(Default)]
pub struct MemoryGainsight {
    pub records: Mutex<HashMap<String, Vec<Fields>>>,
    pub queries: Mutex<Vec<(String, GsQuery)>>,
    /// Every record an update call was given, with its object.
    pub updates: Mutex<Vec<(String, Fields)>>,
    /// The rate-limit window's usage the fake reports.
    pub window: Mutex<Option<crate::domain::budget::WindowUsage>>,
    /// When set, every update call fails as Gainsight being unavailable (retryable).
    pub updates_unavailable: Mutex<bool>,
}

#[async_trait]
impl GainsightApi for MemoryGainsight {
    fn window_usage(&self) -> Option<crate::domain::budget::WindowUsage> {
        *self.window.lock().unwrap()
    }

    async fn query(&self, object: &str, query: &GsQuery) -> Result<Vec<Fields>, ApiError> {
        self.queries
            .lock()
            .unwrap()
            .push((object.into(), query.clone()));
        let all = self.records.lock().unwrap();
        let records = all.get(object).map_or(&[][..], Vec::as_slice);
        // Conditions and limits are the caller's to check here; paging skips what was read.
        Ok(records.iter().skip(query.offset).cloned().collect())
    }

    async fn describe(&self, object: &str) -> Result<crate::domain::ObjectSchema, ApiError> {
        standard_describe(crate::domain::System::Gainsight, object)
    }

    async fn insert(
        &self,
        object: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        let mut all = self.records.lock().unwrap();
        let stored = all.entry(object.into()).or_default();
        let mut ids = Vec::new();
        for r in records {
            let id = format!("1P{:016}", stored.len() + 1);
            let mut r = r.clone();
            r.insert("Gsid".into(), id.clone().into());
            stored.push(r);
            ids.push(id);
        }
        Ok(ids
            .into_iter()
            .map(|id| RecordResult {
                id: Some(id),
                success: true,
                created: true,
                errors: vec![],
                retryable: false,
                gone: false,
            })
            .collect())
    }

    async fn update(
        &self,
        object: &str,
        _keys: &[String],
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        if *self.updates_unavailable.lock().unwrap() {
            return Err(ApiError::Unavailable {
                system: "Gainsight",
                status: 503,
                message: "injected".into(),
                retry_after_ms: None,
            });
        }
        self.updates
            .lock()
            .unwrap()
            .extend(records.iter().map(|r| (object.to_string(), r.clone())));
        Ok(records
            .iter()
            .map(|_| RecordResult {
                id: None,
                success: true,
                created: false,
                errors: vec![],
                retryable: false,
                gone: false,
            })
            .collect())
    }
}

/// The standard objects' describe, as both fakes answer it.
fn standard_describe(
    system: crate::domain::System,
    object: &str,
) -> Result<crate::domain::ObjectSchema, ApiError> {
    crate::domain::schema::standard_schemas()
        .get(system, object)
        .cloned()
        .ok_or_else(|| ApiError::Rejected {
            system: if system == crate::domain::System::Salesforce {
                "Salesforce"
            } else {
                "Gainsight"
            },
            status: 404,
            code: "NOT_FOUND".into(),
            message: format!("no object {object}"),
        })
}

/// An SQS event with one message per `(message id, body)`, each a copy of the first record of the
/// `fixture` event JSON (so attributes, ARN and region are real-looking).
pub fn sqs_event<I: ToString>(
    fixture: &str,
    messages: impl IntoIterator<Item = (I, String)>,
) -> SqsEvent {
    let template: SqsEvent = serde_json::from_str(fixture).expect("SQS event fixture parses");
    let first: SqsMessage = template.records.into_iter().next().unwrap_or_default();
    let mut event = SqsEvent::default();
    event.records = messages
        .into_iter()
        .map(|(id, body)| {
            let mut m = first.clone();
            m.message_id = Some(id.to_string());
            m.body = Some(body);
            m
        })
        .collect();
    event
}

/// The message ids a partial batch response sends back, for assertions.
pub fn failed_ids(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

/// Starts the function binary `bin` as Lambda would, with no configuration: it must stop before
/// it asks for an invocation (nothing listens at its Runtime API address) and name `variable`,
/// the first setting it reads, on its standard error.
pub async fn assert_fails_fast_naming(bin: &str, variable: &str) {
    let out = tokio::process::Command::new(bin)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .await
        .expect("the binary starts");
    assert!(!out.status.success(), "{bin} must stop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(variable), "{bin}: {stderr}");
}
