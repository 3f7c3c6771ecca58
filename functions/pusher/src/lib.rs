//! Pusher function: consumes `writes`, batches commands per target object and key (200 a
//! Salesforce collection call, 50 a Gainsight call), reads per-record results and records them in
//! the ledger. A record the target rejects is marked error and does not fail its batch; only
//! retryable failures send messages back to the queue. Each record is written under its lease
//! (`lease`). The rules it applies (newest command, stale drop, parked and unchanged fields,
//! conflicts, ledger effects) live in `shared::domain::push` and `shared::domain::lease`.

mod files;
mod fold;
mod gone;
mod hold;
mod lease;
mod loads;
mod sides;
mod write;

pub use files::Files;
mod stopped;
pub use hold::budgets_from_env;
use hold::LastDeliveries;
pub use stopped::STOPPED_DELAY;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::adapters::AwsClients;
use shared::domain::budget::Budget;
use shared::domain::load::{LoadId, WritesMessage};
use shared::domain::push::{
    drop_stale, folded_outcomes, ledger_effect, newest_per_record, nothing_to_write,
    recheck_unchanged, settle_conflicts, unpark, Fresh, LedgerEffect, Pending, SideWrite,
    WriteOutcome,
};
use shared::domain::waiting::{released_by, ParentKey};
use shared::domain::{
    DeadLetter, Jobs, LedgerBatch, LedgerKey, LineOutcome, RunFunction, RunLine, Runs, System,
    WriteCommand,
};
use shared::lambda::{batch_seed, parse_messages, store_runs, Deadline, Late};
use shared::ports::{
    GainsightApi, LeaseStore, LedgerStore, LedgerWrite, LoadStore, Queue, RunStore, SalesforceApi,
    SecretsError, WaitingStore,
};

/// Table, queues, the Salesforce org and the Gainsight tenant.
pub type Config = shared::config::ApiConfig;

pub use shared::domain::run::PAUSED;

/// How long writes the API budget defers wait before they are tried again (SQS's longest delay).
pub const DEFERRAL: Duration = Duration::from_secs(900);

/// The time a batch keeps, before its invocation's deadline, for what follows its writes (files,
/// the ledger, writebacks, replays, runs, leases): no write group starts later than this before
/// the deadline, and a call still running then is cut off and tried again.
pub const DEADLINE_MARGIN_MS: i64 = 15_000;

/// How long one Salesforce call waits for its Bulk API job: well within the function's 120 s,
/// which a load's flush also spends reading, leasing and recording its slice. A job still
/// running then is collected by the next flush of the same slice.
pub const BULK_WAIT: Duration = Duration::from_secs(45);

/// How soon a slice whose Bulk API job was still running is flushed again.
pub const BULK_RECHECK: Duration = Duration::from_secs(30);

/// The time of a batch and its invocation's deadline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub(crate) now_ms: i64,
    deadline: Deadline,
}

pub struct Pusher {
    ledger: Arc<dyn LedgerStore>,
    runs: Arc<dyn RunStore>,
    /// Record leases: one pusher at a time writes a record.
    leases: Arc<dyn LeaseStore>,
    salesforce: Arc<dyn SalesforceApi>,
    gainsight: Arc<dyn GainsightApi>,
    /// The jobs, for the id fields records are addressed by.
    jobs: Jobs,
    /// Attachments of Timeline activities; without them none are uploaded.
    files: Option<Files>,
    /// The share of the org's daily API allowance the pusher may use.
    budget: Budget,
    /// The share of Gainsight's calls per minute the pusher may use.
    gainsight_budget: Budget,
    /// Deliveries of a message before it goes to the dead-letter queue.
    max_receives: u32,
    /// Which jobs are stopped; without it every job runs.
    job_states: Option<shared::ports::JobStateCache>,
    /// Where writes deferred by the budget go back to (the writes queue), and after how long; a
    /// message sent again starts its receive count afresh, so a long deferral never reaches the
    /// dead-letter queue. Without it deferred messages come back after the visibility timeout.
    deferral: Option<(Arc<dyn Queue>, Duration)>,
    /// Where bulk loads are staged, and how long a load must be quiet before it is written;
    /// without it (or without the writes queue) every write goes out at once.
    loads: Option<(Arc<dyn LoadStore>, Duration)>,
    /// The most staged items one flush of a load writes (`load::FLUSH_SLICE`).
    flush_slice: usize,
    /// How soon a slice whose Bulk API job was still running is flushed again.
    bulk_recheck: Duration,
    /// Where changes wait for their parent, and the changes queue they are replayed on once the
    /// parent syncs (`domain::waiting`); without them nothing is replayed.
    replays: Option<(Arc<dyn WaitingStore>, Arc<dyn Queue>)>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub synced: usize,
    /// Records the target refused (final) or could not take yet (retried).
    pub failed_records: usize,
    pub superseded: usize,
    /// Writes the target had no record for (update-only jobs), logged as ignored.
    pub ignored: usize,
    pub retried_messages: usize,
    /// Waiting changes queued again because the record they waited for synced.
    pub replayed: usize,
}

/// A batch's messages, by kind.
struct Parsed {
    batch: Vec<Pending>,
    flushes: Vec<(String, LoadId)>,
    sides: Vec<(String, SideWrite)>,
    /// Messages that are none of them.
    failed: Vec<String>,
}

/// A ledger effect to apply, with the message and job it belongs to.
struct Effect {
    message_id: String,
    job: String,
    /// The run it belongs to.
    run: String,
    effect: LedgerEffect,
    /// The parents whose waiting changes this pair's sync releases.
    releases: Vec<ParentKey>,
    /// The bulk load of the write, if any: a write back that follows it may wait for the load.
    load: Option<shared::domain::load::LoadId>,
}

/// `effects` with, after each synced record whose attachments did not all go up, a second
/// effect marking its pair error (applied after the first: a record appears once per
/// transaction, so it goes in a later one).
fn with_unfinished(effects: Vec<Effect>, unfinished: Vec<files::Unfinished>) -> Vec<Effect> {
    if unfinished.is_empty() {
        return effects;
    }
    let mut all = Vec::with_capacity(effects.len() + unfinished.len());
    for e in effects {
        let key = &e.effect.key;
        let moved_from = e.effect.moved_from.as_ref();
        let undone = unfinished.iter().find(|u| {
            u.message_id == e.message_id
                && (&u.ledger_key == key || Some(&u.ledger_key) == moved_from)
        });
        let marked = undone.and_then(|u| {
            let effect = shared::domain::push::unfinished(&e.effect, u.message.clone())?;
            Some(Effect {
                message_id: e.message_id.clone(),
                job: e.job.clone(),
                run: e.run.clone(),
                effect,
                releases: Vec::new(),
                load: None,
            })
        });
        all.push(e);
        all.extend(marked);
    }
    all
}

impl Pusher {
    pub fn new(
        (ledger, runs, leases): (Arc<dyn LedgerStore>, Arc<dyn RunStore>, Arc<dyn LeaseStore>),
        salesforce: Arc<dyn SalesforceApi>,
        gainsight: Arc<dyn GainsightApi>,
        jobs: Jobs,
    ) -> Self {
        Self {
            ledger,
            runs,
            leases,
            salesforce,
            gainsight,
            jobs,
            files: None,
            budget: Budget::default(),
            gainsight_budget: Budget::default(),
            deferral: None,
            loads: None,
            flush_slice: shared::domain::load::FLUSH_SLICE,
            bulk_recheck: BULK_RECHECK,
            replays: None,
            max_receives: shared::config::DEFAULT_MAX_RECEIVES,
            job_states: None,
        }
    }

    /// Sends writes the budget defers back to `queue`, delivered again after `delay`.
    pub fn with_deferral(mut self, queue: Arc<dyn Queue>, delay: Duration) -> Self {
        self.deferral = Some((queue, delay));
        self
    }

    /// Stages the Salesforce upserts of bulk loads in `store` until a load has been quiet for
    /// `quiet`.
    pub fn with_loads(mut self, store: Arc<dyn LoadStore>, quiet: Duration) -> Self {
        self.loads = Some((store, quiet));
        self
    }

    /// Writes loads `n` staged items per flush (tests: slices small enough to see).
    pub fn with_flush_slice(mut self, n: usize) -> Self {
        self.flush_slice = n.max(1);
        self
    }

    /// How soon a slice whose Bulk API job was still running is flushed again (30 s unless
    /// told).
    pub fn with_bulk_recheck(mut self, recheck: Duration) -> Self {
        self.bulk_recheck = recheck;
        self
    }

    /// How long a load must be quiet before it is written, when loads are staged at all.
    pub fn with_load_quiet(mut self, quiet: Duration) -> Self {
        if let Some((_, q)) = &mut self.loads {
            *q = quiet;
        }
        self
    }

    /// Replays the changes waiting in `store` for a record this pusher syncs, on `changes`.
    pub fn with_replays(mut self, store: Arc<dyn WaitingStore>, changes: Arc<dyn Queue>) -> Self {
        self.replays = Some((store, changes));
        self
    }

    /// Messages are delivered at most `n` times before the dead-letter queue takes them.
    pub fn with_max_receives(mut self, n: u32) -> Self {
        self.max_receives = n.max(1);
        self
    }

    /// Stops writing to Salesforce at `salesforce` of the org's daily API allowance, and to
    /// Gainsight at `gainsight` of its calls per minute.
    pub fn with_budgets(mut self, (salesforce, gainsight): (Budget, Budget)) -> Self {
        self.budget = salesforce;
        self.gainsight_budget = gainsight;
        self
    }

    /// Uploads the attachments of Timeline activities through these ports.
    pub fn with_files(mut self, files: Files) -> Self {
        self.files = Some(files);
        self
    }

    /// Builds the ports on AWS; API secrets are decrypted here, once per cold start.
    pub async fn from_aws(
        config: &Config,
        clients: &AwsClients,
        jobs: Jobs,
    ) -> Result<Self, SecretsError> {
        Self::from_aws_waiting(config, clients, jobs, BULK_WAIT).await
    }

    /// As `from_aws`, each Salesforce call waiting at most `bulk_wait` for its Bulk API job.
    pub async fn from_aws_waiting(
        config: &Config,
        clients: &AwsClients,
        jobs: Jobs,
        bulk_wait: Duration,
    ) -> Result<Self, SecretsError> {
        let store = Arc::new(clients.state_store(&config.aws));
        let salesforce = clients.salesforce(&config.aws, &config.salesforce).await?;
        let salesforce = Arc::new(salesforce.with_bulk_jobs(store.clone(), bulk_wait));
        let gainsight = Arc::new(clients.gainsight(&config.aws, &config.gainsight).await?);
        let files = Files {
            download: gainsight.clone(),
            upload: salesforce.clone(),
        };
        let writes = Arc::new(clients.queue(&config.aws.writes_queue_url));
        let changes = Arc::new(clients.queue(&config.aws.changes_queue_url));
        let quiet = Duration::from_millis(shared::domain::load::QUIET_MS as u64);
        Ok(Self::new(
            (store.clone(), store.clone(), store.clone()),
            salesforce,
            gainsight,
            jobs,
        )
        .with_files(files)
        .with_deferral(writes, DEFERRAL)
        .with_loads(store.clone(), quiet)
        .with_job_states(shared::ports::JobStateCache::new(store.clone()))
        .with_replays(store, changes))
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_at(event, shared::time::now_ms()).await.0
    }

    /// Pushes one batch as of `now_ms`, with no deadline.
    pub async fn handle_at(&self, event: SqsEvent, now_ms: i64) -> (SqsBatchResponse, Summary) {
        self.handle_at_by(event, now_ms, Deadline::NONE).await
    }

    /// Pushes one batch as of `now_ms` in an invocation that must answer by `deadline`.
    pub async fn handle_at_by(
        &self,
        event: SqsEvent,
        now_ms: i64,
        deadline: Deadline,
    ) -> (SqsBatchResponse, Summary) {
        let clock = Clock { now_ms, deadline };
        self.handle_until(event, clock).await
    }

    async fn handle_until(&self, event: SqsEvent, clock: Clock) -> (SqsBatchResponse, Summary) {
        let now_ms = clock.now_ms;
        let mut summary = Summary::default();
        let mut runs = Runs::new(
            RunFunction::Pusher,
            "writes batch",
            now_ms,
            &batch_seed(&event),
        );
        let mut last =
            LastDeliveries::new(shared::lambda::last_deliveries(&event, self.max_receives));
        let Parsed {
            batch,
            flushes,
            sides,
            failed: mut retry,
        } = self.parse(event);
        let on_last: Vec<Pending> = (batch.iter())
            .filter(|p| last.contains(&p.message_id))
            .cloned()
            .collect();
        let folded = newest_per_record(batch);
        summary.superseded = folded.superseded;
        let batch = self
            .stage_loads(folded.kept, &mut retry, &mut runs, now_ms)
            .await;
        let batch = self
            .hold_stopped(batch, (&mut retry, &mut runs, &mut last), now_ms)
            .await;
        self.push(batch, &mut retry, &mut runs, &mut last, &mut summary, clock)
            .await;
        // Before the writes folded into them join them: those go wherever their newest goes.
        last.give_up_the_rest(&retry, &on_last, self.max_receives);
        self.record_gave_up(&mut last, &runs, now_ms).await;
        // A write that goes back takes the writes folded into it along.
        let also: Vec<String> = retry
            .iter()
            .filter_map(|id| folded.folded.get(id))
            .flatten()
            .map(|p| p.message_id.clone())
            .collect();
        retry.extend(also);
        self.record_folded(folded_outcomes(&folded.folded, &retry), &mut runs, now_ms)
            .await;
        let mut sides = sides;
        retry.extend(self.hold_stopped_sides(&mut sides, &mut runs, now_ms).await);
        retry.extend(
            self.side_messages(sides, last.ids(), &mut runs, now_ms)
                .await,
        );
        for (message_id, load) in flushes {
            if let Err(why) = self.flush_load(&load, &mut runs, &mut summary, clock).await {
                tracing::warn!(load = %load, reason = %why, "bulk load flush comes again");
                runs.fail(None, &why);
                retry.push(message_id);
            }
        }
        store_runs(self.runs.as_ref(), runs).await;
        let response = shared::lambda::batch_response(retry);
        summary.retried_messages = response.batch_item_failures.len();
        tracing::info!(
            synced = summary.synced,
            failed = summary.failed_records,
            ignored = summary.ignored,
            superseded = summary.superseded,
            retried = summary.retried_messages,
            replayed = summary.replayed,
            "pusher batch done"
        );
        (response, summary)
    }

    /// Writes `batch` (one write per record) under the records' leases: the records another
    /// pusher is writing wait, the rest are written, and the leases are given back once the
    /// ledger says what was written. Messages to try again are added to `retry`.
    async fn push(
        &self,
        batch: Vec<Pending>,
        retry: &mut Vec<String>,
        runs: &mut Runs,
        last: &mut LastDeliveries,
        summary: &mut Summary,
        clock: Clock,
    ) {
        let (batch, leases) = self.lease(batch, retry, runs, clock.now_ms).await;
        if !batch.is_empty() {
            self.push_leased(batch, (retry, runs), last, summary, clock)
                .await;
        }
        self.give_back(&leases).await;
    }

    /// Writes records this pusher holds the leases of, and records the outcomes: the ledger
    /// read, stale writes dropped, conflicts settled, each group written, files uploaded,
    /// sources written back and the ledger written.
    async fn push_leased(
        &self,
        batch: Vec<Pending>,
        (retry, runs): (&mut Vec<String>, &mut Runs),
        last: &mut LastDeliveries,
        summary: &mut Summary,
        clock: Clock,
    ) {
        let now_ms = clock.now_ms;
        let ledgers = self.read_ledgers(&batch).await;
        let batch = recheck_unchanged(unpark(batch, &ledgers), &ledgers);
        let Fresh {
            fresh,
            stale,
            unreadable,
        } = drop_stale(batch, &ledgers);
        for p in &stale {
            tracing::info!(job = %p.command.job, ledger_key = %p.command.ledger_key, "stale write dropped: a newer change from its source was already written or found in sync");
            let line = RunLine::new(source_id(&p.command), LineOutcome::Ignored)
                .message("stale: a newer change from the same source was already written, or found every value as last synced");
            runs.line(Some(&p.command.job), line);
        }
        summary.superseded += stale.len();
        retry.extend(unreadable.into_iter().map(|p| p.message_id));
        let (fresh, nothing) = nothing_to_write(fresh);
        for p in &nothing {
            tracing::info!(job = %p.0.command.job, ledger_key = %p.0.command.ledger_key, "nothing to write: the target already holds this change's values");
        }
        let settlement = settle_conflicts(fresh, &ledgers, &self.jobs);
        let mut settled = settlement.settled;
        settled.extend(nothing);
        settled.extend(
            self.write_groups(settlement.kept, (retry, runs), last, clock)
                .await,
        );
        self.record_gave_up(last, runs, now_ms).await;
        self.recreate_gone(&mut settled).await;
        let unfinished = match &self.files {
            Some(files) => files.upload_all(&mut settled, &ledgers, now_ms).await,
            None => Vec::new(),
        };
        let mut side_writes = settlement.restores;
        let effects = self.effects(settled, (&ledgers, &mut *last), now_ms, summary, runs);
        let effects = with_unfinished(effects, unfinished);
        let writebacks = effects.iter().filter_map(|e| {
            let side = e.effect.writeback.clone()?;
            Some((e.load.clone(), side))
        });
        side_writes.extend(self.stage_sides(writebacks.collect(), now_ms).await);
        retry.extend(
            effects
                .iter()
                .filter(|e| e.effect.retry)
                .map(|e| e.message_id.clone()),
        );
        let releases: Vec<ParentKey> = effects.iter().flat_map(|e| e.releases.clone()).collect();
        // The ledger (and any key move) first: once the source learns its twin's id, changes
        // keyed by the new GSID can be mapped, and their writes must find what this one wrote.
        retry.extend(self.record(effects, now_ms).await);
        let failed_sides = self.write_sides(side_writes).await;
        self.send_sides_alone(failed_sides, runs, now_ms).await;
        // Last, once the parents and the ids written back are there for the lookups (which read
        // the target system, so a ledger write tried again does not hold them back).
        summary.replayed += self.replay_waiting(&releases, runs).await;
    }

    /// Queues again the changes that waited for the records just synced, and takes them out of
    /// the waiting store; how many. Not fatal: a change not replayed now is found by the
    /// poller's re-check, and one replayed twice is mapped, then found in sync.
    pub(crate) async fn replay_waiting(&self, parents: &[ParentKey], runs: &mut Runs) -> usize {
        let Some((store, changes)) = self.replays.as_ref().filter(|_| !parents.is_empty()) else {
            return 0;
        };
        let waiting = match store.waiting_on(parents).await {
            Ok(waiting) if !waiting.is_empty() => waiting,
            Ok(_) => return 0,
            Err(e) => {
                tracing::warn!(parents = parents.len(), error = %e, "waiting changes not read; the poller's re-check will replay them");
                return 0;
            }
        };
        let sent = shared::enqueue::replay_waiting(changes.as_ref(), waiting).await;
        for w in &sent {
            let line = RunLine::new(&w.change.record_id, LineOutcome::Queued)
                .message(format!("replayed: {} has synced", w.parent));
            runs.line(Some(&w.job), line);
        }
        if let Err(e) = store.release(&sent).await {
            tracing::warn!(changes = sent.len(), error = %e, "replayed changes not taken out of the waiting store; the poller's re-check replays them again");
        }
        sent.len()
    }

    /// The batch's write commands, load flushes and writes back to sources; a message that is
    /// none of them, or a write that names no known job, fails alone.
    fn parse(&self, event: SqsEvent) -> Parsed {
        let (parsed, mut failed) = parse_messages::<WritesMessage>(event, "write command");
        let mut batch = Vec::with_capacity(parsed.len());
        let (mut flushes, mut sides) = (Vec::new(), Vec::new());
        for (message_id, message) in parsed {
            let command = match message {
                WritesMessage::Write(command) => *command,
                WritesMessage::Flush(flush) => {
                    flushes.push((message_id, flush.flush_load));
                    continue;
                }
                WritesMessage::Side(side) => {
                    sides.push((message_id, side.side_write));
                    continue;
                }
            };
            if self.jobs.get(&command.job).is_none() {
                tracing::error!(message_id = %message_id, job = %command.job, "write command names no deployed job");
                failed.push(message_id);
                continue;
            }
            batch.push(Pending {
                message_id,
                command,
            });
        }
        Parsed {
            batch,
            flushes,
            sides,
            failed,
        }
    }

    /// One batched ledger read per job: what was already written, for staleness and conflicts.
    async fn read_ledgers(&self, batch: &[Pending]) -> LedgerBatch {
        let mut by_job: HashMap<String, Vec<LedgerKey>> = HashMap::new();
        for p in batch {
            by_job
                .entry(p.command.job.clone())
                .or_default()
                .push(p.command.ledger_key.clone());
        }
        LedgerBatch::read(self.ledger.as_ref(), &by_job).await
    }

    /// Writes each group (target, object, key field, mode) in as few calls as the APIs allow.
    async fn write_groups(
        &self,
        kept: Vec<Pending>,
        (retry, runs): (&mut Vec<String>, &mut Runs),
        last: &mut LastDeliveries,
        clock: Clock,
    ) -> Vec<(Pending, WriteOutcome)> {
        type Group = (System, String, Option<String>, shared::domain::WriteMode);
        let mut groups: BTreeMap<Group, Vec<Pending>> = BTreeMap::new();
        for pending in kept {
            let (system, object, field, mode) = pending.command.batch_key();
            let group = (system, object.to_string(), field.map(str::to_string), mode);
            groups.entry(group).or_default().push(pending);
        }
        let mut settled = Vec::new();
        let mut salesforce_budget: Option<Result<(), String>> = None;
        for ((system, object, field, mode), batch) in groups {
            if let Err((why, wait)) = self.budget_allows(system, &mut salesforce_budget).await {
                self.defer(&object, batch, &why, wait, (retry, runs, last))
                    .await;
                continue;
            }
            let write = async {
                match system {
                    System::Salesforce => {
                        self.write_salesforce(&object, field.as_deref(), mode, &batch)
                            .await
                    }
                    System::Gainsight => {
                        self.write_gainsight(&object, field.as_deref(), mode, &batch)
                            .await
                    }
                }
            };
            let outcome = within(system, clock.deadline, write).await;
            match write::settle_group(&object, batch, outcome) {
                Ok(outcomes) => settled.extend(outcomes),
                Err(held) => {
                    let context = (object.as_str(), &mut *retry, &mut *runs);
                    self.hold(system, held, context, &mut *last).await;
                }
            }
        }
        settled
    }

    /// The ledger effect of every outcome, counted in the summary and logged.
    fn effects(
        &self,
        settled: Vec<(Pending, WriteOutcome)>,
        (ledgers, last): (&LedgerBatch, &mut LastDeliveries),
        now_ms: i64,
        summary: &mut Summary,
        runs: &mut Runs,
    ) -> Vec<Effect> {
        let mut effects = Vec::with_capacity(settled.len());
        for (pending, outcome) in settled {
            let cmd = &pending.command;
            let Some(job) = self.jobs.get(&cmd.job) else {
                continue;
            };
            log_outcome(cmd, &outcome, now_ms, summary);
            runs.objects(
                Some(&job.name),
                job.object_in(cmd.source),
                Some(&cmd.object),
            );
            runs.line(Some(&job.name), run_line(cmd, &outcome));
            let mut effect = ledger_effect(job, cmd, outcome, ledgers, now_ms);
            if effect.retry && last.contains(&pending.message_id) {
                // Failed for now on its last delivery: the ledger says it was given up.
                effect.update =
                    (effect.update).on_last_delivery(self.max_receives, DeadLetter::Writes);
                last.recorded(&pending.message_id);
            }
            let before = ledgers.get(&job.name, &cmd.ledger_key);
            let releases = released_by(
                &self.jobs,
                job,
                (&effect.key, before),
                &effect.update,
                (cmd.target, &cmd.fields),
            );
            effects.push(Effect {
                job: cmd.job.clone(),
                run: runs.id_for(Some(&job.name)).to_string(),
                effect,
                releases,
                load: cmd.load.clone(),
                message_id: pending.message_id,
            });
        }
        effects
    }

    /// Applies the ledger effects in as few requests as the store allows (one transaction per
    /// 100 records on DynamoDB); the ids of the messages to retry when that failed (the writes
    /// are idempotent, so writing them again to get the ledger right is safe).
    async fn record(&self, effects: Vec<Effect>, now_ms: i64) -> Vec<String> {
        let writes: Vec<LedgerWrite> = effects
            .iter()
            .map(|e| LedgerWrite {
                job: e.job.clone(),
                key: e.effect.key.clone(),
                update: e.effect.update.clone(),
                run: e.run.clone(),
                prior: e.effect.prior,
            })
            .collect();
        if let Err(err) = self.ledger.record_many(&writes, now_ms).await {
            tracing::error!(records = writes.len(), error = %err, "ledger update failed; retrying the writes");
            return effects.into_iter().map(|e| e.message_id).collect();
        }
        if let Err(err) = self.record_moves(&effects, now_ms).await {
            tracing::error!(error = %err, "ledger key moves not recorded; retrying the writes");
            return effects.into_iter().map(|e| e.message_id).collect();
        }
        Vec::new()
    }
}

impl Pusher {
    /// Notes the Salesforce Ids that now forward to their pair (a Salesforce-only pair moved to
    /// its new GSID, a Gainsight record's new Salesforce twin), one request per 12 (a
    /// placeholder deleted and a forwarding note put each).
    async fn record_moves(
        &self,
        effects: &[Effect],
        now_ms: i64,
    ) -> Result<(), shared::ports::StoreError> {
        let mut by_job: BTreeMap<&str, Vec<(LedgerKey, LedgerKey)>> = BTreeMap::new();
        for e in effects {
            if let Some(from) = &e.effect.moved_from {
                let moves = by_job.entry(e.job.as_str()).or_default();
                moves.push((from.clone(), e.effect.key.clone()));
            }
        }
        for (job, moves) in by_job {
            self.ledger.moved(job, &moves, now_ms).await?;
        }
        Ok(())
    }
}

/// `write`, if it can start and end within `budget_ms`: a write that cannot start, or is cut
/// off, is a timeout, tried again like a lost answer (the next delivery looks a created record
/// up by its key before writing it again).
async fn within<T>(
    system: System,
    deadline: Deadline,
    write: impl std::future::Future<Output = Result<T, shared::ports::ApiError>>,
) -> Result<T, shared::ports::ApiError> {
    let message = match deadline.run(DEADLINE_MARGIN_MS, write).await {
        Ok(outcome) => return outcome,
        Err(Late::NotStarted) => format!(
            "not started: the invocation had less than {} s left",
            DEADLINE_MARGIN_MS / 1000
        ),
        Err(Late::CutOff { after_ms }) => format!(
            "cut off after {after_ms} ms, {} s before the invocation's deadline",
            DEADLINE_MARGIN_MS / 1000
        ),
    };
    Err(shared::ports::ApiError::OutOfTime {
        system: system.label(),
        message,
    })
}

/// The id of the record where the change came from.
fn source_id(cmd: &WriteCommand) -> String {
    match (cmd.source, &cmd.ledger_key, &cmd.salesforce_id) {
        (System::Gainsight, LedgerKey::Gainsight(gsid), _) => gsid.clone(),
        (System::Salesforce, _, Some(id)) => id.clone(),
        (_, key, _) => key.to_string(),
    }
}

/// The run log's line for one record's outcome.
fn run_line(cmd: &WriteCommand, outcome: &WriteOutcome) -> RunLine {
    let fields = cmd.fields.keys().cloned().collect();
    match outcome {
        WriteOutcome::Synced { target_id } => {
            let line = RunLine::new(source_id(cmd), LineOutcome::Synced)
                .target(target_id.clone())
                .fields(fields);
            if cmd.skipped.is_empty() {
                line
            } else {
                line.message(cmd.skipped.join("; "))
            }
        }
        WriteOutcome::Ignored { reason } | WriteOutcome::Unmatched { reason } => {
            RunLine::new(source_id(cmd), LineOutcome::Ignored).message(reason)
        }
        WriteOutcome::Failed { message, .. } | WriteOutcome::Gone { message } => {
            RunLine::new(source_id(cmd), LineOutcome::Error)
                .fields(fields)
                .message(message)
        }
    }
}

fn log_outcome(cmd: &WriteCommand, outcome: &WriteOutcome, now_ms: i64, summary: &mut Summary) {
    let (job, key) = (&cmd.job, &cmd.ledger_key);
    match outcome {
        WriteOutcome::Synced { target_id } => {
            summary.synced += 1;
            tracing::info!(
                job = %job, ledger_key = %key, target = cmd.target.as_str(), target_id = ?target_id,
                latency_ms = now_ms - cmd.received_at_ms, "record synced"
            );
        }
        WriteOutcome::Ignored { reason } | WriteOutcome::Unmatched { reason } => {
            summary.ignored += 1;
            tracing::info!(job = %job, ledger_key = %key, reason = %reason, "write ignored");
        }
        WriteOutcome::Failed { message, retryable } => {
            summary.failed_records += 1;
            tracing::warn!(job = %job, ledger_key = %key, error = %message, transient = retryable, "record failed");
        }
        WriteOutcome::Gone { message } => {
            summary.failed_records += 1;
            tracing::warn!(job = %job, ledger_key = %key, error = %message, "the twin no longer exists");
        }
    }
}

#[cfg(test)]
mod tests;
