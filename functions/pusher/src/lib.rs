//! Pusher function: consumes `writes`, batches commands per target object and key (200 a
//! Salesforce collection call, 50 a Gainsight call), reads per-record results and records them in
//! the ledger. A record the target rejects is marked error and does not fail its batch; only
//! retryable failures send messages back to the queue.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::StreamExt;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::adapters::AwsClients;
use shared::config::{AwsResources, ConfigError, GainsightSettings, SalesforceSettings};
use shared::domain::{Fields, LedgerUpdate, RecordKey, System, WriteCommand};
use shared::ports::{
    ApiError, GainsightApi, LedgerBatch, RecordResult, Retryable, SalesforceApi, SecretsError,
    StateStore,
};

#[derive(Clone, Debug)]
pub struct Config {
    pub aws: AwsResources,
    pub salesforce: SalesforceSettings,
    pub gainsight: GainsightSettings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsResources::from_env()?,
            salesforce: SalesforceSettings::from_env()?,
            gainsight: GainsightSettings::from_env()?,
        })
    }
}

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
                .and_then(|r| r.source_changed_at_ms)
            {
                Some(newer) if newer > cmd.source_changed_at_ms => {
                    summary.superseded += 1;
                    tracing::info!(job = %cmd.job, gainsight_id = %cmd.gainsight_id, "stale write dropped: a newer change was already written");
                }
                _ => fresh.push(pending),
            }
        }

        // Group by (target, object, key field) so each group is one API call per 200 / 50 records.
        let mut groups: BTreeMap<(System, String, Option<String>), Vec<Pending>> = BTreeMap::new();
        for pending in fresh {
            let (system, object, field) = pending.command.batch_key();
            groups
                .entry((system, object.to_string(), field.map(str::to_string)))
                .or_default()
                .push(pending);
        }

        let mut ledger: Vec<(String, WriteCommand, LedgerUpdate)> = Vec::new();
        for ((system, object, field), mut batch) in groups {
            batch.sort_by(|a, b| a.message_id.cmp(&b.message_id));
            let records: Vec<Fields> = batch.iter().map(|p| p.command.fields.clone()).collect();
            let outcome = match (system, field.as_deref()) {
                (System::Salesforce, Some(ext)) => self.salesforce.upsert(&object, ext, &records).await,
                (System::Salesforce, None) => Err(ApiError::Rejected {
                    system: "Salesforce",
                    status: 0,
                    code: "UNSUPPORTED".into(),
                    message: "updates by Salesforce Id are not supported yet; map an external-ID identifier".into(),
                }),
                (System::Gainsight, _) => self.write_gainsight(&object, &batch).await,
            };
            match outcome {
                Ok(results) => {
                    for (pending, result) in batch.iter().zip(results) {
                        let update = settle(pending, Some(result), None, &mut summary, &mut retry);
                        ledger.push((pending.message_id.clone(), pending.command.clone(), update));
                    }
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(object = %object, records = batch.len(), error = %e, "write failed; messages go back to the queue");
                    retry.extend(batch.iter().map(|p| p.message_id.clone()));
                }
                Err(e) => {
                    tracing::error!(object = %object, records = batch.len(), error = %e, "write refused; records marked error");
                    let message = e.to_string();
                    for pending in &batch {
                        let update = settle(
                            pending,
                            None,
                            Some(message.clone()),
                            &mut summary,
                            &mut retry,
                        );
                        ledger.push((pending.message_id.clone(), pending.command.clone(), update));
                    }
                }
            }
        }

        // Ledger writes are independent items: send them concurrently, not one round trip each.
        let now = shared::time::now_ms();
        let store = &self.store;
        let failed_ledger: Vec<String> = futures_util::stream::iter(ledger)
            .map(|(message_id, cmd, update)| async move {
                match store.record(&cmd.job, &cmd.gainsight_id, &update, now).await {
                    Ok(()) => None,
                    Err(e) => {
                        // The write is idempotent (upsert), so retrying it to get the ledger right is safe.
                        tracing::error!(job = %cmd.job, gainsight_id = %cmd.gainsight_id, error = %e, "ledger update failed; retrying the write");
                        Some(message_id)
                    }
                }
            })
            .buffer_unordered(LEDGER_CONCURRENCY)
            .filter_map(|failed| async move { failed })
            .collect()
            .await;
        retry.extend(failed_ledger);
        let response = shared::lambda::batch_response(retry);
        summary.retried_messages = response.batch_item_failures.len();
        tracing::info!(
            synced = summary.synced,
            failed = summary.failed_records,
            superseded = summary.superseded,
            retried = summary.retried_messages,
            "pusher batch done"
        );
        (response, summary)
    }

    async fn write_gainsight(
        &self,
        object: &str,
        batch: &[Pending],
    ) -> Result<Vec<RecordResult>, ApiError> {
        // Gainsight updates match on key fields given in the query string; the GSID is the key.
        let records: Vec<Fields> = batch
            .iter()
            .map(|p| {
                let mut fields = p.command.fields.clone();
                if let RecordKey::Id { value } = &p.command.key {
                    fields.insert("Gsid".into(), value.clone().into());
                }
                fields
            })
            .collect();
        self.gainsight
            .update(object, &["Gsid".to_string()], &records)
            .await
    }
}

/// Decides the ledger update for one record's result (and whether its message is retried).
fn settle(
    pending: &Pending,
    result: Option<RecordResult>,
    refusal: Option<String>,
    summary: &mut Summary,
    retry: &mut Vec<String>,
) -> LedgerUpdate {
    let cmd = &pending.command;
    match result {
        Some(r) if r.success => {
            summary.synced += 1;
            tracing::info!(
                job = %cmd.job, gainsight_id = %cmd.gainsight_id, target_id = ?r.id, created = r.created,
                latency_ms = shared::time::now_ms() - cmd.received_at_ms, "record synced"
            );
            LedgerUpdate::Synced {
                salesforce_id: if cmd.target == System::Salesforce {
                    r.id
                } else {
                    None
                },
                values_hash: cmd.values_hash.clone(),
                source_changed_at_ms: cmd.source_changed_at_ms,
            }
        }
        other => {
            summary.failed_records += 1;
            let transient = other.as_ref().is_some_and(|r| r.retryable);
            let message = refusal
                .or_else(|| other.map(|r| r.errors.join("; ")))
                .unwrap_or_else(|| "no result for this record".into());
            tracing::warn!(job = %cmd.job, gainsight_id = %cmd.gainsight_id, error = %message, transient, "record failed");
            if transient {
                // Visible as error now, retried through the queue; a later success clears it,
                // and if the retries run out the ledger already tells why.
                retry.push(pending.message_id.clone());
            }
            LedgerUpdate::Failed { message }
        }
    }
}

#[cfg(test)]
mod tests;
