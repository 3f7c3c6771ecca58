//! Pusher function: consumes `writes`, batches commands per target object and key (200 a
//! Salesforce collection call, 50 a Gainsight call), reads per-record results and records them in
//! the ledger. A record the target rejects is marked error and does not fail its batch; only
//! retryable failures send messages back to the queue.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::StreamExt;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::adapters::AwsClients;
use shared::domain::{
    Fields, LedgerUpdate, LookupRequest, RecordKey, System, WriteCommand, WriteMode,
};
use shared::ports::{
    ApiError, GainsightApi, LedgerBatch, RecordResult, Retryable, SalesforceApi, SecretsError,
    StateStore,
};
use shared::resolve;

/// Table, queues, the Salesforce org and the Gainsight tenant.
pub type Config = shared::config::ApiConfig;

/// Ledger updates in flight at once per invocation.
const LEDGER_CONCURRENCY: usize = 16;

pub struct Pusher {
    store: Arc<dyn StateStore>,
    salesforce: Arc<dyn SalesforceApi>,
    gainsight: Arc<dyn GainsightApi>,
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
}

struct Pending {
    message_id: String,
    command: WriteCommand,
}

impl Pusher {
    pub fn new(
        store: Arc<dyn StateStore>,
        salesforce: Arc<dyn SalesforceApi>,
        gainsight: Arc<dyn GainsightApi>,
    ) -> Self {
        Self {
            store,
            salesforce,
            gainsight,
        }
    }

    /// Builds the ports on AWS; API secrets are decrypted here, once per cold start.
    pub async fn from_aws(config: &Config, clients: &AwsClients) -> Result<Self, SecretsError> {
        Ok(Self::new(
            Arc::new(clients.state_store(&config.aws)),
            Arc::new(clients.salesforce(&config.aws, &config.salesforce).await?),
            Arc::new(clients.gainsight(&config.aws, &config.gainsight).await?),
        ))
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_with_summary(event).await.0
    }

    pub async fn handle_with_summary(&self, event: SqsEvent) -> (SqsBatchResponse, Summary) {
        let mut summary = Summary::default();
        let mut retry: Vec<String> = Vec::new();

        // Parse, then keep only the newest command per target record: an older one in the same
        // batch would be overwritten anyway, and sending both costs a call slot and an ordering risk.
        let mut newest: HashMap<(System, String, RecordKey), Pending> = HashMap::new();
        for message in event.records {
            let id = message.message_id.clone().unwrap_or_default();
            let command = match message
                .body
                .as_deref()
                .map(serde_json::from_str::<WriteCommand>)
            {
                Some(Ok(c)) => c,
                other => {
                    tracing::error!(message_id = %id, error = ?other.and_then(|r| r.err()).map(|e| e.to_string()), "write message is not a valid write command");
                    retry.push(id);
                    continue;
                }
            };
            let (system, object, key) = command.record_identity();
            let identity = (system, object.to_string(), key.clone());
            match newest.get(&identity) {
                Some(kept) if kept.command.source_changed_at_ms > command.source_changed_at_ms => {
                    summary.superseded += 1;
                }
                _ => {
                    if newest
                        .insert(
                            identity,
                            Pending {
                                message_id: id,
                                command,
                            },
                        )
                        .is_some()
                    {
                        summary.superseded += 1;
                    }
                }
            }
        }

        // A concurrent invocation may already have written a newer change of the same record:
        // one batched ledger read per job tells, and older commands are dropped, not written.
        let mut by_job: HashMap<String, Vec<String>> = HashMap::new();
        for pending in newest.values() {
            by_job
                .entry(pending.command.job.clone())
                .or_default()
                .push(pending.command.gainsight_id.clone());
        }
        let written = LedgerBatch::read(self.store.as_ref(), &by_job).await;
        let mut fresh = Vec::with_capacity(newest.len());
        for pending in newest.into_values() {
            let cmd = &pending.command;
            if written.is_unreadable(&cmd.job) {
                retry.push(pending.message_id);
                continue;
            }
            match written
                .get(&cmd.job, &cmd.gainsight_id)
                .and_then(|r| r.changed_at(cmd.source))
            {
                Some(newer) if newer > cmd.source_changed_at_ms => {
                    summary.superseded += 1;
                    tracing::info!(job = %cmd.job, gainsight_id = %cmd.gainsight_id, "stale write dropped: a newer change was already written");
                }
                _ => fresh.push(pending),
            }
        }

        // Conflicts that only show now, settled by each field's rule before anything is written.
        // Writes back to the source side (GSID / Salesforce Id learnt, values restored after a
        // conflict) go out after the main writes, one call per object.
        let mut side_writes: BTreeMap<(System, String), Vec<Fields>> = BTreeMap::new();
        let (fresh, mut settled) = settle_conflicts(fresh, &written, &mut side_writes);

        // Group by (target, object, key field, mode) so each group is one API call per 200 / 50.
        type Group = (System, String, Option<String>, WriteMode);
        let mut groups: BTreeMap<Group, Vec<Pending>> = BTreeMap::new();
        for pending in fresh {
            let (system, object, field, mode) = pending.command.batch_key();
            groups
                .entry((system, object.to_string(), field.map(str::to_string), mode))
                .or_default()
                .push(pending);
        }

        for ((system, object, field, mode), mut batch) in groups {
            batch.sort_by(|a, b| a.message_id.cmp(&b.message_id));
            let outcome = match system {
                System::Salesforce => {
                    self.write_salesforce(&object, field.as_deref(), mode, &batch)
                        .await
                }
                System::Gainsight => {
                    self.write_gainsight(&object, field.as_deref(), mode, &batch)
                        .await
                }
            };
            match outcome {
                Ok(results) => settled.extend(batch.into_iter().zip(results)),
                Err(e) if e.is_retryable() => {
                    tracing::warn!(object = %object, records = batch.len(), error = %e, "write failed; messages go back to the queue");
                    retry.extend(batch.iter().map(|p| p.message_id.clone()));
                }
                Err(e) => {
                    tracing::error!(object = %object, records = batch.len(), error = %e, "write refused; records marked error");
                    let message = e.to_string();
                    settled.extend(batch.into_iter().map(|p| {
                        (
                            p,
                            Settled::Failed {
                                message: message.clone(),
                                retryable: false,
                            },
                        )
                    }));
                }
            }
        }

        // A record that just got its twin learns the twin's id: a Salesforce record its GSID, a
        // Gainsight record its Salesforce Id.
        let now = shared::time::now_ms();
        let mut ledger: Vec<(String, String, String, LedgerUpdate)> = Vec::new();
        let mut forget: Vec<(String, String)> = Vec::new();
        for (pending, outcome) in settled {
            let cmd = &pending.command;
            let update = match outcome {
                Settled::Synced { target_id } => {
                    summary.synced += 1;
                    tracing::info!(
                        job = %cmd.job, ledger_key = %cmd.gainsight_id, target = cmd.target.as_str(), target_id = ?target_id,
                        latency_ms = now - cmd.received_at_ms, "record synced"
                    );
                    let mut key = cmd.gainsight_id.clone();
                    if cmd.target == System::Gainsight {
                        if let (Some(gsid), true) = (&target_id, key.starts_with("sf:")) {
                            forget.push((cmd.job.clone(), key.clone()));
                            key = gsid.clone();
                        }
                    }
                    if let (Some(wb), Some(twin)) = (&cmd.writeback, &target_id) {
                        let mut record = Fields::new();
                        match (wb.system, cmd.target) {
                            (System::Salesforce, System::Gainsight) => {
                                if let Some(sfid) = &cmd.salesforce_id {
                                    record.insert("Id".into(), sfid.clone().into());
                                }
                            }
                            _ => {
                                record.insert("Gsid".into(), key.clone().into());
                            }
                        }
                        if record.len() == 1 {
                            record.insert(wb.field.clone(), twin.clone().into());
                            side_writes
                                .entry((wb.system, wb.object.clone()))
                                .or_default()
                                .push(record);
                        }
                    }
                    let mut fields = cmd.field_states.clone();
                    for state in fields.values_mut() {
                        state.synced_at_ms = now;
                    }
                    ledger.push((
                        pending.message_id.clone(),
                        cmd.job.clone(),
                        key,
                        LedgerUpdate::Synced {
                            salesforce_id: match cmd.target {
                                System::Salesforce => {
                                    target_id.or_else(|| cmd.salesforce_id.clone())
                                }
                                System::Gainsight => cmd.salesforce_id.clone(),
                            },
                            source: cmd.source,
                            source_changed_at_ms: cmd.source_changed_at_ms,
                            fields,
                        },
                    ));
                    continue;
                }
                Settled::Ignored { reason } => {
                    summary.ignored += 1;
                    tracing::info!(job = %cmd.job, ledger_key = %cmd.gainsight_id, reason = %reason, "write ignored");
                    LedgerUpdate::Ignored { reason }
                }
                Settled::Failed { message, retryable } => {
                    summary.failed_records += 1;
                    tracing::warn!(job = %cmd.job, ledger_key = %cmd.gainsight_id, error = %message, transient = retryable, "record failed");
                    if retryable {
                        // Visible as error now, retried through the queue; a later success clears
                        // it, and if the retries run out the ledger already tells why.
                        retry.push(pending.message_id.clone());
                    }
                    LedgerUpdate::Failed { message }
                }
            };
            ledger.push((
                pending.message_id.clone(),
                cmd.job.clone(),
                cmd.gainsight_id.clone(),
                update,
            ));
        }
        for ((system, object), records) in side_writes {
            // Not fatal: without it a later change still finds the record by another identifier
            // or the ledger, so a failed writeback costs a call, not correctness.
            let written = match system {
                System::Salesforce => self.salesforce.update(&object, &records).await,
                System::Gainsight => {
                    self.gainsight
                        .update(&object, &["Gsid".to_string()], &records)
                        .await
                }
            };
            match written {
                Ok(results) => {
                    for (record, r) in records.iter().zip(results).filter(|(_, r)| !r.success) {
                        tracing::warn!(object = %object, id = ?record.get("Id"), errors = ?r.errors, "write back to the source refused");
                    }
                }
                Err(e) => {
                    tracing::warn!(object = %object, error = %e, "write back to the source failed")
                }
            }
        }

        // Ledger writes are independent items: send them concurrently, not one round trip each.
        let store = &self.store;
        let failed_ledger: Vec<String> = futures_util::stream::iter(ledger)
            .map(|(message_id, job, key, update)| async move {
                match store.record(&job, &key, &update, now).await {
                    Ok(()) => None,
                    Err(e) => {
                        // The write is idempotent, so retrying it to get the ledger right is safe.
                        tracing::error!(job = %job, ledger_key = %key, error = %e, "ledger update failed; retrying the write");
                        Some(message_id)
                    }
                }
            })
            .buffer_unordered(LEDGER_CONCURRENCY)
            .filter_map(|failed| async move { failed })
            .collect()
            .await;
        retry.extend(failed_ledger);
        for (job, key) in forget {
            if let Err(e) = self.store.forget(&job, &key).await {
                tracing::warn!(job = %job, ledger_key = %key, error = %e, "placeholder ledger record not removed");
            }
        }
        let response = shared::lambda::batch_response(retry);
        summary.retried_messages = response.batch_item_failures.len();
        tracing::info!(
            synced = summary.synced,
            failed = summary.failed_records,
            ignored = summary.ignored,
            superseded = summary.superseded,
            retried = summary.retried_messages,
            "pusher batch done"
        );
        (response, summary)
    }

    /// Writes one group to Salesforce: upsert or create on the external id, update by Id (looking
    /// Ids up by external id first, in one query, when the job may only update).
    async fn write_salesforce(
        &self,
        object: &str,
        ext_field: Option<&str>,
        mode: WriteMode,
        batch: &[Pending],
    ) -> Result<Vec<Settled>, ApiError> {
        let records: Vec<Fields> = batch.iter().map(|p| p.command.fields.clone()).collect();
        match (ext_field, mode) {
            (Some(ext), WriteMode::Upsert) => Ok(settle_all(
                self.salesforce.upsert(object, ext, &records).await?,
            )),
            (Some(_), WriteMode::Create) => {
                Ok(settle_all(self.salesforce.create(object, &records).await?))
            }
            (Some(ext), WriteMode::Update) => {
                let ids = self
                    .find_keys(System::Salesforce, object, ext, "Id", batch)
                    .await?;
                let mut plan: Vec<Result<Fields, Settled>> = Vec::with_capacity(batch.len());
                for (p, mut fields) in batch.iter().zip(records) {
                    let value = key_value(&p.command.key).unwrap_or_default();
                    plan.push(match ids.get(std::slice::from_ref(&value)).map(Vec::as_slice) {
                        Some([id]) => {
                            fields.insert("Id".into(), id.clone().into());
                            Ok(fields)
                        }
                        Some(many) if many.len() > 1 => Err(Settled::Failed {
                            message: format!("{} {object} records have {ext} = {value:?}; cannot tell which to update", many.len()),
                            retryable: false,
                        }),
                        _ => Err(Settled::Ignored {
                            reason: format!("no {object} has {ext} = {value:?}; the job only updates on update events, it never creates"),
                        }),
                    });
                }
                let ready: Vec<Fields> = plan
                    .iter()
                    .filter_map(|p| p.as_ref().ok().cloned())
                    .collect();
                let results = if ready.is_empty() {
                    Vec::new()
                } else {
                    self.salesforce.update(object, &ready).await?
                };
                Ok(merge(plan, results))
            }
            (None, _) => {
                let records: Vec<Fields> = batch
                    .iter()
                    .zip(records)
                    .map(|(p, mut fields)| {
                        if let Some(id) = key_value(&p.command.key) {
                            fields.insert("Id".into(), id.into());
                        }
                        fields
                    })
                    .collect();
                Ok(settle_all(self.salesforce.update(object, &records).await?))
            }
        }
    }

    /// The `returns` field of the target records matching each command's key value, in one
    /// query per 200 keys.
    async fn find_keys(
        &self,
        system: System,
        object: &str,
        key_field: &str,
        returns: &str,
        batch: &[Pending],
    ) -> Result<BTreeMap<Vec<String>, Vec<String>>, ApiError> {
        let request = LookupRequest {
            job: batch
                .first()
                .map(|p| p.command.job.clone())
                .unwrap_or_default(),
            derived: 0,
            system,
            object: object.to_string(),
            match_fields: vec![key_field.to_string()],
            returns: returns.to_string(),
            tuples: batch
                .iter()
                .filter_map(|p| key_value(&p.command.key).map(|v| vec![v]))
                .collect(),
        };
        resolve::find(self.salesforce.as_ref(), self.gainsight.as_ref(), &request).await
    }

    /// Writes one group to Gainsight: update by GSID, or match on key fields (one query per group)
    /// and then update the matches and insert the rest, as the job's event action allows.
    async fn write_gainsight(
        &self,
        object: &str,
        key_field: Option<&str>,
        mode: WriteMode,
        batch: &[Pending],
    ) -> Result<Vec<Settled>, ApiError> {
        let Some(key_field) = key_field else {
            if mode == WriteMode::Create {
                return Ok(batch
                    .iter()
                    .map(|_| Settled::Failed {
                        message: format!(
                            "the {object} exists already; the job creates only, it never updates"
                        ),
                        retryable: false,
                    })
                    .collect());
            }
            let records: Vec<Fields> = batch
                .iter()
                .map(|p| with_gsid(&p.command.fields, key_value(&p.command.key)))
                .collect();
            return Ok(settle_all(
                self.gainsight
                    .update(object, &["Gsid".to_string()], &records)
                    .await?,
            ));
        };
        let gsids = self
            .find_keys(System::Gainsight, object, key_field, "Gsid", batch)
            .await?;
        // Per record: update this GSID, insert, or settle without a call.
        enum Plan {
            Update(Fields),
            Insert(Fields),
            Done(Settled),
        }
        let plans: Vec<Plan> = batch
            .iter()
            .map(|p| {
                let value = key_value(&p.command.key).unwrap_or_default();
                match (gsids.get(std::slice::from_ref(&value)).map(Vec::as_slice), mode) {
                    (Some(many), _) if many.len() > 1 => Plan::Done(Settled::Failed {
                        message: format!("{} {object} records have {key_field} = {value:?}; cannot tell which to write", many.len()),
                        retryable: false,
                    }),
                    (Some([_]), WriteMode::Create) => Plan::Done(Settled::Failed {
                        message: format!("a {object} with {key_field} = {value:?} exists already; the job creates only, it never updates"),
                        retryable: false,
                    }),
                    (Some([gsid]), _) => Plan::Update(with_gsid(&p.command.fields, Some(gsid.clone()))),
                    (_, WriteMode::Update) => Plan::Done(Settled::Ignored {
                        reason: format!("no {object} has {key_field} = {value:?}; the job only updates on update events, it never creates"),
                    }),
                    _ => Plan::Insert(p.command.fields.clone()),
                }
            })
            .collect();
        let updates: Vec<Fields> = plans
            .iter()
            .filter_map(|p| match p {
                Plan::Update(f) => Some(f.clone()),
                _ => None,
            })
            .collect();
        let inserts: Vec<Fields> = plans
            .iter()
            .filter_map(|p| match p {
                Plan::Insert(f) => Some(f.clone()),
                _ => None,
            })
            .collect();
        let mut updated = if updates.is_empty() {
            Vec::new()
        } else {
            self.gainsight
                .update(object, &["Gsid".to_string()], &updates)
                .await?
        }
        .into_iter()
        .zip(
            updates
                .iter()
                .map(|f| f.get("Gsid").and_then(|v| v.as_str()).map(str::to_string)),
        )
        .map(|(mut r, gsid)| {
            r.id = r.id.or(gsid);
            r
        });
        let mut inserted = if inserts.is_empty() {
            Vec::new()
        } else {
            self.gainsight.insert(object, &inserts).await?
        }
        .into_iter();
        Ok(plans
            .into_iter()
            .map(|p| {
                match p {
                    Plan::Update(_) => updated.next().map(Settled::from),
                    Plan::Insert(_) => inserted.next().map(Settled::from),
                    Plan::Done(s) => Some(s),
                }
                .unwrap_or(Settled::Failed {
                    message: "no result for this record".into(),
                    retryable: true,
                })
            })
            .collect())
    }
}

/// Settles bi-directional fields changed on both sides whose conflict the mapper could not see
/// (the other side's change was in flight then): between two commands of one pair in this batch,
/// and against the ledger as it is now. A losing field is dropped from its write; a command left
/// with nothing to write is settled as ignored; a side that wins after the other side's value
/// overwrote it gets its value restored (queued in `side_writes`).
fn settle_conflicts(
    fresh: Vec<Pending>,
    ledger: &LedgerBatch,
    side_writes: &mut BTreeMap<(System, String), Vec<Fields>>,
) -> (Vec<Pending>, Vec<(Pending, Settled)>) {
    let mut lost: Vec<(usize, String, String)> = Vec::new();
    let note = |key: &str, rule: shared::domain::ConflictRule, winner: System| {
        format!(
            "conflict on {key}: both sides changed it; {} keeps the {} value",
            rule.as_str(),
            winner.as_str()
        )
    };
    // Two opposite commands of one pair in this batch: neither is written yet.
    let mut pairs: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, p) in fresh.iter().enumerate() {
        if !p.command.conflicts.is_empty() {
            pairs
                .entry((p.command.job.as_str(), p.command.gainsight_id.as_str()))
                .or_default()
                .push(i);
        }
    }
    for members in pairs.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                let (a, b) = (&fresh[i].command, &fresh[j].command);
                if a.source == b.source {
                    continue;
                }
                for (key, conflict) in &a.conflicts {
                    let (Some(sa), Some(sb)) = (a.field_states.get(key), b.field_states.get(key))
                    else {
                        continue;
                    };
                    if !b.conflicts.contains_key(key) || sa.gainsight == sb.gainsight {
                        continue;
                    }
                    let a_wins = conflict.rule.source_wins(
                        a.source,
                        a.source_changed_at_ms,
                        b.source_changed_at_ms,
                    );
                    let (loser, winner) = if a_wins { (j, a.source) } else { (i, b.source) };
                    lost.push((loser, key.clone(), note(key, conflict.rule, winner)));
                }
            }
        }
    }
    // Against the ledger: the other side's value was synced onto this side after this change.
    for (i, p) in fresh.iter().enumerate() {
        let c = &p.command;
        let Some(record) = ledger.get(&c.job, &c.gainsight_id) else {
            continue;
        };
        for (key, conflict) in &c.conflicts {
            let (Some(last), Some(mine)) = (record.fields.get(key), c.field_states.get(key)) else {
                continue;
            };
            if lost.iter().any(|(l, k, _)| *l == i && k == key)
                || !last.both_changed(c.source, c.source_changed_at_ms, mine.hash_in(c.source))
            {
                continue;
            }
            if !conflict
                .rule
                .source_wins(c.source, c.source_changed_at_ms, last.changed_at_ms)
            {
                lost.push((i, key.clone(), note(key, conflict.rule, c.target)));
                continue;
            }
            tracing::info!(job = %c.job, ledger_key = %c.gainsight_id, field = %key, "{}", note(key, conflict.rule, c.source));
            let id = match c.source {
                System::Salesforce => c.salesforce_id.clone().map(|id| ("Id", id)),
                System::Gainsight => {
                    (!c.gainsight_id.starts_with("sf:")).then(|| ("Gsid", c.gainsight_id.clone()))
                }
            };
            if let Some((id_field, id)) = id {
                let mut record = Fields::new();
                record.insert(id_field.into(), id.into());
                record.insert(conflict.source_field.clone(), conflict.source_value.clone());
                side_writes
                    .entry((c.source, conflict.source_object.clone()))
                    .or_default()
                    .push(record);
            }
        }
    }
    let mut fresh = fresh;
    let mut notes: HashMap<usize, Vec<String>> = HashMap::new();
    let mut emptied = Vec::new();
    for (i, key, why) in lost {
        tracing::info!(job = %fresh[i].command.job, ledger_key = %fresh[i].command.gainsight_id, "{why}");
        if fresh[i].command.drop_field(&key) {
            emptied.push(i);
        }
        notes.entry(i).or_default().push(why);
    }
    let mut kept = Vec::with_capacity(fresh.len());
    let mut settled = Vec::new();
    for (i, p) in fresh.into_iter().enumerate() {
        if emptied.contains(&i) {
            let reason = notes.remove(&i).unwrap_or_default().join("; ");
            settled.push((p, Settled::Ignored { reason }));
        } else {
            kept.push(p);
        }
    }
    (kept, settled)
}

/// How one record's write ended.
enum Settled {
    Synced { target_id: Option<String> },
    Failed { message: String, retryable: bool },
    Ignored { reason: String },
}

impl From<RecordResult> for Settled {
    fn from(r: RecordResult) -> Self {
        if r.success {
            Settled::Synced { target_id: r.id }
        } else {
            Settled::Failed {
                message: if r.errors.is_empty() {
                    "refused without a message".into()
                } else {
                    r.errors.join("; ")
                },
                retryable: r.retryable,
            }
        }
    }
}

/// Puts each result of the records sent back in its record's place.
fn merge(plan: Vec<Result<Fields, Settled>>, results: Vec<RecordResult>) -> Vec<Settled> {
    let mut results = results.into_iter();
    plan.into_iter()
        .map(|p| match p {
            Ok(_) => results
                .next()
                .map(Settled::from)
                .unwrap_or(Settled::Failed {
                    message: "no result for this record".into(),
                    retryable: true,
                }),
            Err(settled) => settled,
        })
        .collect()
}

fn settle_all(results: Vec<RecordResult>) -> Vec<Settled> {
    results.into_iter().map(Settled::from).collect()
}

fn key_value(key: &RecordKey) -> Option<String> {
    match key {
        RecordKey::ExternalId { value, .. } | RecordKey::Id { value } => Some(value.clone()),
    }
}

fn with_gsid(fields: &Fields, gsid: Option<String>) -> Fields {
    let mut fields = fields.clone();
    if let Some(gsid) = gsid {
        fields.insert("Gsid".into(), gsid.into());
    }
    fields
}

#[cfg(test)]
mod tests;
