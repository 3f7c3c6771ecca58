//! Mapper function: consumes `changes`, applies each job's mapping, records ignored and rejected
//! changes in the ledger, and queues write commands on `writes`. One bad message fails only itself.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::adapters::AwsClients;
use shared::domain::waiting::WaitingChange;
use shared::domain::{
    ChangeEvent, Fields, Job, Jobs, LedgerBatch, LedgerKey, LedgerUpdate, LineOutcome, Lookups,
    MapOutcome, Mapper, RunFunction, RunLine, Runs, Schemas, System, WriteCommand,
};
use shared::lambda::{batch_seed, store_runs, Deadline};
use shared::participants::resolve;
use shared::ports::{
    GainsightApi, LedgerStore, LedgerWrite, PollTrigger, Queue, RunStore, SalesforceApi,
    WaitingStore,
};
use shared::resolve::{load_schemas, run_lookups, SchemaError};

mod give_up;
mod intake;
mod merges;
mod overflow;
mod pairs;
mod recheck;
mod reread;
mod stopped;
use give_up::{failing, Failures};
pub use stopped::{Stopped, STOPPED_DELAY};

/// Table, queues, the Salesforce org and the Gainsight tenant.
pub type Config = shared::config::ApiConfig;

/// The time a batch keeps, before its invocation's deadline, to record and send what it mapped:
/// lookups still running then are cut off and their changes tried again.
pub const DEADLINE_MARGIN_MS: i64 = 8_000;

/// Why the mapper cannot start: it fails fast rather than map against a job the systems refuse.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Secrets(#[from] shared::ports::SecretsError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

pub struct MapperFn {
    ledger: Arc<dyn LedgerStore>,
    runs: Arc<dyn RunStore>,
    writes: Arc<dyn Queue>,
    salesforce: Arc<dyn SalesforceApi>,
    gainsight: Arc<dyn GainsightApi>,
    jobs: Jobs,
    schemas: Schemas,
    /// Where a change whose lookup finds no parent waits for it (`domain::waiting`); without it
    /// such a change is tried again on each delivery and rejected on the last.
    waiting: Option<Arc<dyn WaitingStore>>,
    /// Deliveries of a change before SQS moves it to the dead-letter queue: on the last one, a
    /// lookup that still finds nothing rejects the change instead of trying it again.
    max_receives: u32,
    /// The Salesforce user the sync writes as: change events it committed are echoes.
    integration_user: Option<String>,
    /// Where a Change Data Capture overflow asks for the object's records to be read again.
    polls: Option<Arc<dyn PollTrigger>>,
    /// Which jobs are stopped, and where their changes wait; without it every job runs.
    stopped: Option<Stopped>,
}

/// Counts of one invocation, logged and returned for tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub writes: usize,
    pub ignored: usize,
    pub rejected: usize,
    /// Changes parked until the record they refer to syncs.
    pub waiting: usize,
    pub failed_messages: usize,
    /// Change events of the sync's own writes, dropped.
    pub echoes: usize,
}

impl MapperFn {
    /// Builds the mapper once the jobs have been checked against `schemas`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ledger: Arc<dyn LedgerStore>,
        runs: Arc<dyn RunStore>,
        writes: Arc<dyn Queue>,
        salesforce: Arc<dyn SalesforceApi>,
        gainsight: Arc<dyn GainsightApi>,
        jobs: Jobs,
        schemas: Schemas,
    ) -> Self {
        Self {
            ledger,
            runs,
            writes,
            salesforce,
            gainsight,
            jobs,
            schemas,
            waiting: None,
            max_receives: shared::config::DEFAULT_MAX_RECEIVES,
            integration_user: None,
            polls: None,
            stopped: None,
        }
    }

    /// Changes of the jobs `stopped` says are stopped wait in its queue.
    pub fn with_job_states(mut self, stopped: Stopped) -> Self {
        self.stopped = Some(stopped);
        self
    }

    /// Parks changes whose lookup finds no parent in `store` until the parent syncs.
    pub fn with_waiting(mut self, store: Arc<dyn WaitingStore>) -> Self {
        self.waiting = Some(store);
        self
    }

    /// Change events committed by `user` (the Salesforce user the sync writes as) are echoes.
    pub fn with_integration_user(mut self, user: Option<String>) -> Self {
        self.integration_user = user.filter(|u| !u.is_empty());
        self
    }

    /// Change Data Capture overflows ask `polls` to read the object again.
    pub fn with_polls(mut self, polls: Arc<dyn PollTrigger>) -> Self {
        self.polls = Some(polls);
        self
    }

    /// Changes are delivered at most `n` times before the dead-letter queue takes them.
    pub fn with_max_receives(mut self, n: u32) -> Self {
        self.max_receives = n.max(1);
        self
    }

    /// Cold start on AWS: decrypts the API secrets, describes every object the jobs use and checks
    /// the jobs against them (once; the describes are cached for the life of the process).
    pub async fn from_aws(
        config: &Config,
        clients: &AwsClients,
        jobs: Jobs,
    ) -> Result<Self, StartError> {
        let salesforce: Arc<dyn SalesforceApi> =
            Arc::new(clients.salesforce(&config.aws, &config.salesforce).await?);
        let gainsight: Arc<dyn GainsightApi> =
            Arc::new(clients.gainsight(&config.aws, &config.gainsight).await?);
        let schemas = load_schemas(&jobs, salesforce.as_ref(), gainsight.as_ref()).await?;
        let store = Arc::new(clients.state_store(&config.aws));
        Ok(Self::new(
            store.clone(),
            store.clone(),
            Arc::new(clients.queue(&config.aws.writes_queue_url)),
            salesforce,
            gainsight,
            jobs,
            schemas,
        )
        .with_waiting(store.clone())
        .with_job_states(Stopped {
            states: shared::ports::JobStateCache::new(store),
            changes: Arc::new(clients.queue(&config.aws.changes_queue_url)),
            delay: STOPPED_DELAY,
        }))
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_at(event, shared::time::now_ms()).await.0
    }

    /// Maps one batch as of `now_ms`, with no deadline.
    pub async fn handle_at(&self, event: SqsEvent, now_ms: i64) -> (SqsBatchResponse, Summary) {
        self.handle_at_by(event, now_ms, Deadline::NONE).await
    }

    /// Maps one batch as of `now_ms`: one ledger read per job, one lookup per derived mapping
    /// (cut off `DEADLINE_MARGIN_MS` before `deadline`, its changes then tried again), then
    /// every change, then one send of the write commands.
    pub async fn handle_at_by(
        &self,
        event: SqsEvent,
        now_ms: i64,
        deadline: Deadline,
    ) -> (SqsBatchResponse, Summary) {
        let mut summary = Summary::default();
        let mut runs = Runs::new(
            RunFunction::Mapper,
            "changes batch",
            now_ms,
            &batch_seed(&event),
        );
        let last = shared::lambda::last_deliveries(&event, self.max_receives);
        let intake = intake::read(event, self.integration_user.as_deref(), now_ms);
        let mut changes = intake.changes;
        let mut failed: Failures = intake.failed;
        summary.echoes = intake.echoes;
        failed.extend(self.hold_stopped(&mut changes, now_ms, &mut runs).await);
        failed.extend(self.overflow(intake.overflows, &mut runs).await);
        let on_last: Vec<(String, ChangeEvent)> = (changes.iter())
            .filter(|(id, _)| last.contains(id))
            .cloned()
            .collect();
        failed.extend(self.reread(&mut changes).await);
        failed.extend(self.key_by_pairs(&mut changes).await);
        changes.retain(|(id, _)| !failing(&failed, id));
        failed.extend(self.merges(&mut changes).await);
        changes.retain(|(id, _)| !failing(&failed, id));
        failed.extend(self.resolve_participants(&mut changes).await);
        // In change order, so that a change of a record meets the earlier ones of the batch as
        // writes on their way (see `LedgerBatch::note_mapped`).
        changes.sort_by_key(|(_, c)| c.occurred_at_ms);
        let lookups = self.run_lookups(&changes, deadline).await;
        for (job, why) in lookups.unauthorized() {
            self.deactivate(&[job.as_str()], why).await;
        }
        let pass = Pass {
            lookups: &lookups,
            last: &last,
            now_ms,
        };
        let mapped = self
            .map_twice(changes, &pass, &mut summary, &mut runs)
            .await;
        failed.extend(mapped.failed);
        let parked = mapped.parked;
        let context = (&last, now_ms, deadline);
        failed.extend(
            self.recheck_parked(parked, context, &mut summary, &mut runs)
                .await,
        );
        self.give_up(&failed, on_last, now_ms, &mut runs).await;
        store_runs(self.runs.as_ref(), runs).await;
        let response = shared::lambda::batch_response(failed.into_iter().map(|(id, _)| id));
        summary.failed_messages = response.batch_item_failures.len();
        tracing::info!(
            writes = summary.writes,
            ignored = summary.ignored,
            rejected = summary.rejected,
            waiting = summary.waiting,
            failed = summary.failed_messages,
            "mapper batch done"
        );
        (response, summary)
    }

    /// Maps `changes`; a change found in sync while another invocation queued the write of an
    /// earlier one is mapped again, once, against the ledger as it is now, and a second time
    /// goes back to the queue. Nothing is left superseded in the outcome.
    async fn map_twice(
        &self,
        mut changes: Vec<(String, ChangeEvent)>,
        pass: &Pass<'_>,
        summary: &mut Summary,
        runs: &mut Runs,
    ) -> BatchOutcome {
        let mut outcome = self.map_batch(&changes, pass, summary, runs).await;
        if outcome.superseded.is_empty() {
            return outcome;
        }
        let superseded = std::mem::take(&mut outcome.superseded);
        changes.retain(|(id, _)| superseded.contains(id));
        let again = self.map_batch(&changes, pass, summary, runs).await;
        let twice = again.superseded.into_iter().map(|id| {
            let why = "its ledger record changed while it was mapped, twice";
            (id, why.to_string())
        });
        outcome.failed.extend(again.failed.into_iter().chain(twice));
        outcome.parked.extend(again.parked);
        outcome
    }

    /// Maps `changes` against their ledger records read now, records what is ignored or
    /// rejected, notes the writes on their way and sends them: the ids of the messages to retry,
    /// those whose in-sync note no longer held (`StoreError::Superseded`), to map again, and the
    /// changes parked to wait for their parent.
    async fn map_batch(
        &self,
        changes: &[(String, ChangeEvent)],
        pass: &Pass<'_>,
        summary: &mut Summary,
        runs: &mut Runs,
    ) -> BatchOutcome {
        let mut failed = Vec::new();
        let mut ledgers = self.read_ledgers(changes).await;
        let mut outgoing: Vec<(String, String)> = Vec::new();
        let mut ledger: Vec<(String, LedgerWrite)> = Vec::new();
        let mut marks: Vec<(String, Mark)> = Vec::new();
        let mut parks: Vec<(String, WaitingChange)> = Vec::new();
        for (id, change) in changes {
            let (batch, last) = ((&ledgers, pass.lookups), pass.last.contains(id));
            match self.map_change(change, batch, (last, pass.now_ms), summary, runs) {
                Ok(mapped) => {
                    outgoing.extend(mapped.bodies.into_iter().map(|b| (id.clone(), b)));
                    ledger.extend(mapped.ledger.into_iter().map(|w| (id.clone(), w)));
                    for (job, (key, source, at)) in &mapped.marks {
                        ledgers.note_mapped(job, key, *source, *at);
                    }
                    marks.extend(mapped.marks.into_iter().map(|m| (id.clone(), m)));
                    parks.extend(mapped.parks.into_iter().map(|p| (id.clone(), p)));
                }
                Err(Retry(why)) => failed.push((id.clone(), why)),
            }
        }
        // A waiting change is parked before its record says it waits: a message whose parking
        // failed is retried whole.
        let unparked = self.park(&parks).await;
        ledger.retain(|(id, _)| !failing(&unparked, id));
        parks.retain(|(id, _)| !failing(&unparked, id));
        failed.extend(unparked);
        // Ignored and rejected changes are recorded, and writes about to go out noted on their
        // records, before any write goes out: a message whose record failed is retried whole,
        // its writes with it.
        let ((unrecorded, superseded), unmarked) =
            tokio::join!(self.record(ledger, pass.now_ms), self.mark(marks));
        outgoing.retain(|(id, _)| {
            !(failing(&unrecorded, id) || failing(&unmarked, id) || superseded.contains(id))
        });
        failed.extend(unrecorded.into_iter().chain(unmarked));
        failed.extend(self.send(outgoing).await);
        parks.retain(|(id, _)| !failing(&failed, id));
        BatchOutcome {
            failed,
            superseded,
            parked: parks,
        }
    }

    /// Timeline activities that arrived without their participants (through the webhook, in real
    /// time) get them here, in one query per entity for the whole batch; when that fails their
    /// messages are retried (and left out of this batch).
    async fn resolve_participants(&self, changes: &mut Vec<(String, ChangeEvent)>) -> Failures {
        let wanted: Vec<usize> = changes
            .iter()
            .enumerate()
            .filter(|(_, (_, c))| c.participants.is_none() && c.source == System::Gainsight)
            .filter(|(_, (_, c))| self.jobs.for_change(c).iter().any(|j| j.timeline.is_some()))
            .map(|(i, _)| i)
            .collect();
        if wanted.is_empty() {
            return Vec::new();
        }
        let activities: Vec<Fields> = wanted
            .iter()
            .map(|i| changes[*i].1.fields.clone())
            .collect();
        let gainsight = self.gainsight.as_ref();
        match resolve(&activities, &self.jobs, gainsight, self.ledger.as_ref()).await {
            Ok(resolved) => {
                for (i, participants) in wanted.into_iter().zip(resolved) {
                    changes[i].1.participants = Some(participants);
                }
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(activities = wanted.len(), error = %e, "participants not resolved; retrying the activities");
                let why = format!("the activity's participants could not be resolved: {e}");
                let retry: Failures = (wanted.iter())
                    .map(|i| (changes[*i].0.clone(), why.clone()))
                    .collect();
                changes.retain(|(id, _)| !failing(&retry, id));
                retry
            }
        }
    }

    /// One batched ledger read per job instead of one read per change.
    async fn read_ledgers(&self, changes: &[(String, ChangeEvent)]) -> LedgerBatch {
        let mut wanted: HashMap<String, Vec<LedgerKey>> = HashMap::new();
        for (_, change) in changes {
            for job in self.jobs.for_change(change) {
                if let Some(key) = Mapper::new(job, Some(&self.schemas)).ledger_key(change) {
                    wanted.entry(job.name.clone()).or_default().push(key);
                }
            }
        }
        LedgerBatch::read(self.ledger.as_ref(), &wanted).await
    }

    /// Derived lookups: one query per derived mapping for the whole batch. Those not done
    /// `DEADLINE_MARGIN_MS` before `deadline` count as failed: their changes are tried again
    /// while there is time to record the rest.
    async fn run_lookups(&self, changes: &[(String, ChangeEvent)], deadline: Deadline) -> Lookups {
        let requests = Lookups::requests(
            changes
                .iter()
                .flat_map(|(_, c)| self.jobs.for_change(c).into_iter().map(move |j| (j, c))),
            Some(&self.schemas),
        );
        let run = run_lookups(&requests, self.salesforce.as_ref(), self.gainsight.as_ref());
        let outcome = deadline.run(DEADLINE_MARGIN_MS, run).await.ok();
        outcome.unwrap_or_else(|| {
            tracing::warn!(
                lookups = requests.len(),
                "lookups cut off near the invocation's deadline; their changes are tried again"
            );
            let mut failed = Lookups::default();
            for r in &requests {
                failed.mark_failed(&r.job, r.derived, "cut off near the invocation's deadline");
            }
            failed
        })
    }

    /// Maps one change for every job reading its object: the write commands to queue and the
    /// ledger entries of ignored and rejected changes, or `Err` when the message must be retried.
    fn map_change(
        &self,
        change: &ChangeEvent,
        (ledgers, lookups): (&LedgerBatch, &Lookups),
        (last, now_ms): (bool, i64),
        summary: &mut Summary,
        runs: &mut Runs,
    ) -> Result<Mapped, Retry> {
        let mut mapped = Mapped::default();
        let mut result = Ok(());
        let mut matched = false;
        for job in self.jobs.for_change(change) {
            matched = true;
            if ledgers.is_unreadable(&job.name) {
                result = Err(Retry(format!(
                    "the ledger of job {} could not be read",
                    job.name
                )));
                continue;
            }
            let mapper = Mapper::new(job, Some(&self.schemas));
            let ledger = mapper
                .ledger_key(change)
                .and_then(|key| ledgers.get(&job.name, &key));
            let parks = self.waiting.is_some();
            let outcome = match mapper.map(change, ledger, lookups) {
                // Parked (see `settle`) whatever the delivery, when it has a key to wait under.
                waits @ MapOutcome::Unresolved { key: Some(_), .. } if parks => waits,
                unresolved @ MapOutcome::Unresolved { .. } if last => {
                    unresolved.rejected_at_last(self.max_receives)
                }
                outcome => outcome,
            };
            let context = Context {
                job,
                jobs: &self.jobs,
                change,
                ledgers,
                runs: &mut *runs,
                parks: parks.then_some(now_ms),
            };
            if let Err(retry) = settle(context, outcome, summary, &mut mapped) {
                result = Err(retry);
            }
        }
        if !matched {
            summary.ignored += 1;
            tracing::warn!(event_id = %change.event_id, object = %change.object, source = change.source.as_str(), "no job reads this object; change dropped");
        }
        result.map(|()| mapped)
    }

    /// Records the batch's ignored and rejected changes in as few requests as the store allows:
    /// the ids of the messages whose entries were not recorded, and of those whose entry no
    /// longer held (`LedgerUpdate::holds_on`).
    async fn record(
        &self,
        ledger: Vec<(String, LedgerWrite)>,
        now_ms: i64,
    ) -> (Failures, Vec<String>) {
        if ledger.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let writes: Vec<LedgerWrite> = ledger.iter().map(|(_, w)| w.clone()).collect();
        match self.ledger.record_many(&writes, now_ms).await {
            Ok(superseded) => {
                let ids = superseded.iter().filter_map(|i| ledger.get(*i));
                let ids = ids.map(|(id, _)| id.clone()).collect();
                (Vec::new(), ids)
            }
            Err(e) => {
                tracing::error!(records = writes.len(), error = %e, "ledger update failed; changes will be retried");
                let why = format!("the ledger could not be updated: {e}");
                let failed = ledger.into_iter().map(|(id, _)| (id, why.clone()));
                (failed.collect(), Vec::new())
            }
        }
    }

    /// Notes on each synced record that its change's write is on its way (see
    /// `LedgerRecord::mapped_at`), in one request per job and source for most batches; the ids
    /// of the messages whose notes were not written.
    async fn mark(&self, marks: Vec<(String, Mark)>) -> Failures {
        let mut by_job: HashMap<&str, Vec<&(String, Mark)>> = HashMap::new();
        for m in &marks {
            by_job.entry(m.1 .0.as_str()).or_default().push(m);
        }
        let mut failed = Vec::new();
        for (job, marks) in by_job {
            let notes: Vec<_> = marks.iter().map(|(_, m)| m.1.clone()).collect();
            if let Err(e) = self.ledger.mapped(job, &notes).await {
                tracing::error!(job, records = notes.len(), error = %e, "ledger not told of the writes queued; changes will be retried");
                let why = format!("the ledger could not note the writes queued: {e}");
                failed.extend(marks.iter().map(|(id, _)| (id.clone(), why.clone())));
            }
        }
        failed
    }

    /// Parks the batch's waiting changes in one request per 25; the ids of the messages whose
    /// changes were not parked.
    async fn park(&self, parks: &[(String, WaitingChange)]) -> Failures {
        let Some(store) = self.waiting.as_ref().filter(|_| !parks.is_empty()) else {
            return Vec::new();
        };
        let parked: Vec<WaitingChange> = parks.iter().map(|(_, p)| p.clone()).collect();
        match store.wait(&parked).await {
            Ok(()) => Vec::new(),
            Err(e) => {
                tracing::error!(changes = parked.len(), error = %e, "waiting changes not parked; they will be retried");
                let why = format!("the change could not be parked to wait for its parent: {e}");
                parks
                    .iter()
                    .map(|(id, _)| (id.clone(), why.clone()))
                    .collect()
            }
        }
    }

    /// Sends every write command; the ids of the messages whose commands were not queued.
    async fn send(&self, outgoing: Vec<(String, String)>) -> Failures {
        let bodies: Vec<String> = outgoing.iter().map(|(_, b)| b.clone()).collect();
        let results = self.writes.send(&bodies).await;
        let mut failed = Vec::new();
        for ((id, _), result) in outgoing.into_iter().zip(results) {
            if let Err(e) = result {
                tracing::error!(message_id = %id, error = %e, "write command not queued; change will be retried");
                failed.push((id, format!("the write could not be queued: {e}")));
            }
        }
        failed
    }
}

/// What mapping a batch came to.
struct BatchOutcome {
    /// Messages to retry, with why.
    failed: Failures,
    /// Messages whose in-sync note no longer held, to map again.
    superseded: Vec<String>,
    /// Changes parked to wait for their parent, with their messages.
    parked: Vec<(String, WaitingChange)>,
}

/// What one change maps to: write commands to queue, ledger entries to record, and notes of
/// the writes queued for synced records.
#[derive(Default)]
struct Mapped {
    bodies: Vec<String>,
    ledger: Vec<LedgerWrite>,
    marks: Vec<Mark>,
    /// Changes to park until their parent syncs.
    parks: Vec<WaitingChange>,
}

/// A job and the note that a record's write is on its way: ledger key, source, change time.
type Mark = (String, (LedgerKey, System, i64));

/// What every mapping pass over a batch shares: the lookups' results, the messages on their
/// last delivery, the time.
struct Pass<'a> {
    lookups: &'a Lookups,
    last: &'a std::collections::HashSet<String>,
    now_ms: i64,
}

/// One job's view of one change being settled.
struct Context<'a> {
    job: &'a Job,
    jobs: &'a Jobs,
    change: &'a ChangeEvent,
    ledgers: &'a LedgerBatch,
    runs: &'a mut Runs,
    /// The time, when changes waiting for a parent are parked (else they are retried).
    parks: Option<i64>,
}

/// Acts on one job's outcome: serialised commands, a ledger entry for an ignored or rejected
/// change, or `Err` to retry the message; each outcome goes into the job's run.
fn settle(
    mut cx: Context<'_>,
    outcome: MapOutcome,
    summary: &mut Summary,
    mapped: &mut Mapped,
) -> Result<(), Retry> {
    let (job, change) = (cx.job, cx.change);
    let run_job = Some(job.name.as_str());
    let target = job.object_in(change.source.other());
    cx.runs.objects(run_job, &change.object, Some(target));
    let (key, update) = match outcome {
        MapOutcome::Write(commands) => {
            summary.writes += commands.len();
            return queue(cx, &commands, mapped);
        }
        MapOutcome::Retry { reason } => {
            tracing::warn!(job = %job.name, event_id = %change.event_id, reason = %reason, "change retried");
            return Err(Retry(reason));
        }
        MapOutcome::Unresolved {
            key: Some(key),
            parent,
            reason,
        } if cx.parks.is_some() => {
            summary.waiting += 1;
            let waiting = wait_for_parent(&cx, (&key, parent), &reason, mapped);
            let line = RunLine::new(&change.record_id, LineOutcome::Waiting).message(&waiting);
            cx.runs.line(run_job, line);
            (Some(key), LedgerUpdate::Waiting { reason: waiting })
        }
        MapOutcome::Unresolved { reason, .. } => {
            let said = format!("{reason}; the change is tried again, as the record it refers to may not be synced yet");
            tracing::info!(job = %job.name, event_id = %change.event_id, reason = %said, "change tried again");
            let line = RunLine::new(&change.record_id, LineOutcome::Error).message(&said);
            cx.runs.line(run_job, line);
            return Err(Retry(said));
        }
        MapOutcome::Ignored { key, reason } => {
            ignored(&mut cx, summary, &reason);
            (key, LedgerUpdate::Ignored { reason })
        }
        MapOutcome::Presence {
            key,
            reason,
            side,
            presence,
        } => {
            ignored(&mut cx, summary, &reason);
            let update = LedgerUpdate::Presence {
                reason,
                side,
                presence,
            };
            (key, update)
        }
        MapOutcome::InSync { key, reason, seen } => {
            ignored(&mut cx, summary, &reason);
            (Some(key), LedgerUpdate::InSync { reason, seen })
        }
        MapOutcome::Rejected { key, reason } => {
            summary.rejected += 1;
            tracing::warn!(job = %job.name, event_id = %change.event_id, reason = %reason, "change rejected");
            let line = RunLine::new(&change.record_id, LineOutcome::Error).message(&reason);
            cx.runs.line(run_job, line);
            (key, LedgerUpdate::Failed { message: reason })
        }
    };
    if let Some(key) = key {
        let run = cx.runs.id_for(run_job).to_string();
        let write = LedgerWrite::new(&job.name, key, update, &run);
        let read = cx.ledgers.get(&job.name, &write.key);
        mapped.ledger.push(write.read_as(read));
    }
    Ok(())
}

/// Counts, logs and lines in the job's run a change that needs no write, and why.
fn ignored(cx: &mut Context<'_>, summary: &mut Summary, reason: &str) {
    summary.ignored += 1;
    let (job, change) = (cx.job, cx.change);
    tracing::info!(job = %job.name, event_id = %change.event_id, reason = %reason, "change ignored");
    let line = RunLine::new(&change.record_id, LineOutcome::Ignored).message(reason);
    cx.runs.line(Some(job.name.as_str()), line);
}

/// Parks a change until its parent syncs; what its ledger record and run line say meanwhile.
fn wait_for_parent(
    cx: &Context<'_>,
    (key, parent): (&LedgerKey, shared::domain::waiting::ParentRef),
    reason: &str,
    mapped: &mut Mapped,
) -> String {
    let (job, change) = (cx.job, cx.change);
    let now_ms = cx.parks.unwrap_or(change.received_at_ms);
    let parked = WaitingChange::new(&job.name, key.clone(), parent, change, reason, now_ms);
    let waiting = parked.waiting_message(cx.jobs);
    tracing::info!(job = %job.name, event_id = %change.event_id, parent = %parked.parent.key(), "change parked until its parent syncs");
    mapped.parks.push(parked);
    waiting
}

/// Serialises one change's commands for the writes queue, each a line of the job's run.
fn queue(cx: Context<'_>, commands: &[WriteCommand], mapped: &mut Mapped) -> Result<(), Retry> {
    let run_job = Some(cx.job.name.as_str());
    for cmd in commands {
        mapped.bodies.push(serialise(cx.job, cmd)?);
        // Only a synced pair's later change can find nothing changed behind this write.
        let synced = cx.ledgers.get(&cx.job.name, &cmd.ledger_key);
        if synced.is_some_and(|r| r.synced) {
            let note = (cmd.ledger_key.clone(), cmd.source, cmd.source_changed_at_ms);
            mapped.marks.push((cx.job.name.clone(), note));
        }
        let mut line = RunLine::new(&cx.change.record_id, LineOutcome::Queued)
            .target(cmd.salesforce_id.clone())
            .fields(cmd.fields.keys().cloned().collect());
        if cmd.fields.is_empty() && cmd.attachments.is_empty() {
            line = line.message(
                "no mapped field changed, but an earlier change of this record is still on its way: queued so that it does not land last",
            );
        }
        cx.runs.line(run_job, line);
    }
    Ok(())
}

/// The message must go back to the queue, for this reason.
struct Retry(String);

fn serialise(job: &Job, command: &WriteCommand) -> Result<String, Retry> {
    serde_json::to_string(command).map_err(|e| {
        tracing::error!(job = %job.name, error = %e, "write command does not serialise");
        Retry(format!("the write command does not serialise: {e}"))
    })
}

#[cfg(test)]
mod tests;
