//! Mapper function: consumes `changes`, applies each job's mapping, records ignored and rejected
//! changes in the ledger, and queues write commands on `writes`. One bad message fails only itself.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::adapters::AwsClients;
use shared::domain::{ChangeEvent, Jobs, LedgerUpdate, Lookups, MapOutcome, Mapper, Schemas};
use shared::ports::{GainsightApi, LedgerBatch, Queue, SalesforceApi, StateStore};
use shared::resolve::{load_schemas, run_lookups, SchemaError};

/// Table, queues, the Salesforce org and the Gainsight tenant.
pub type Config = shared::config::ApiConfig;

/// Why the mapper cannot start: it fails fast rather than map against a job the systems refuse.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Secrets(#[from] shared::ports::SecretsError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

pub struct MapperFn {
    store: Arc<dyn StateStore>,
    writes: Arc<dyn Queue>,
    salesforce: Arc<dyn SalesforceApi>,
    gainsight: Arc<dyn GainsightApi>,
    jobs: Jobs,
    schemas: Schemas,
}

/// Counts of one invocation, logged and returned for tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub writes: usize,
    pub ignored: usize,
    pub rejected: usize,
    pub failed_messages: usize,
}

impl MapperFn {
    /// Builds the mapper once the jobs have been checked against `schemas`.
    pub fn new(
        store: Arc<dyn StateStore>,
        writes: Arc<dyn Queue>,
        salesforce: Arc<dyn SalesforceApi>,
        gainsight: Arc<dyn GainsightApi>,
        jobs: Jobs,
        schemas: Schemas,
    ) -> Self {
        Self {
            store,
            writes,
            salesforce,
            gainsight,
            jobs,
            schemas,
        }
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
        Ok(Self::new(
            Arc::new(clients.state_store(&config.aws)),
            Arc::new(clients.queue(&config.aws.writes_queue_url)),
            salesforce,
            gainsight,
            jobs,
            schemas,
        ))
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_with_summary(event).await.0
    }

    pub async fn handle_with_summary(&self, event: SqsEvent) -> (SqsBatchResponse, Summary) {
        let mut summary = Summary::default();
        let mut failed: Vec<String> = Vec::new();
        let mut changes: Vec<(String, ChangeEvent)> = Vec::new();
        for message in event.records {
            let id = message.message_id.clone().unwrap_or_default();
            match message
                .body
                .as_deref()
                .map(serde_json::from_str::<ChangeEvent>)
            {
                Some(Ok(change)) => changes.push((id, change)),
                Some(Err(e)) => {
                    tracing::error!(message_id = %id, error = %e, "change message is not a valid change event");
                    failed.push(id);
                }
                None => {
                    tracing::error!(message_id = %id, "change message has no body");
                    failed.push(id);
                }
            }
        }

        let schemas = Some(&self.schemas);
        // One batched ledger read per job instead of one read per change.
        let mut wanted: HashMap<String, Vec<String>> = HashMap::new();
        for (_, change) in &changes {
            for job in self.jobs.for_source(change.source, &change.object) {
                if let Some(key) = Mapper::new(job, schemas).ledger_key(change) {
                    wanted.entry(job.name.clone()).or_default().push(key);
                }
            }
        }
        let ledgers = LedgerBatch::read(self.store.as_ref(), &wanted).await;

        // Derived lookups: one query per derived mapping for the whole batch.
        let requests = Lookups::requests(
            changes.iter().flat_map(|(_, c)| {
                self.jobs
                    .for_source(c.source, &c.object)
                    .map(move |j| (j, c))
            }),
            schemas,
        );
        let lookups =
            run_lookups(&requests, self.salesforce.as_ref(), self.gainsight.as_ref()).await;

        let mut outgoing: Vec<(String, String)> = Vec::new();
        let now = shared::time::now_ms();
        for (id, change) in &changes {
            let mut ok = true;
            let mut matched = false;
            for job in self.jobs.for_source(change.source, &change.object) {
                matched = true;
                if ledgers.is_unreadable(&job.name) {
                    ok = false;
                    continue;
                }
                let mapper = Mapper::new(job, schemas);
                let ledger = mapper
                    .ledger_key(change)
                    .and_then(|key| ledgers.get(&job.name, &key));
                let (key, update) = match mapper.map(change, ledger, &lookups) {
                    MapOutcome::Write(commands) => {
                        summary.writes += commands.len();
                        for cmd in commands {
                            match serde_json::to_string(&cmd) {
                                Ok(body) => outgoing.push((id.clone(), body)),
                                Err(e) => {
                                    tracing::error!(job = %job.name, error = %e, "write command does not serialise");
                                    ok = false;
                                }
                            }
                        }
                        continue;
                    }
                    MapOutcome::Retry { reason } => {
                        tracing::warn!(job = %job.name, event_id = %change.event_id, reason = %reason, "change retried");
                        ok = false;
                        continue;
                    }
                    MapOutcome::Ignored {
                        gainsight_id,
                        reason,
                    } => {
                        summary.ignored += 1;
                        tracing::info!(job = %job.name, event_id = %change.event_id, reason = %reason, "change ignored");
                        (gainsight_id, LedgerUpdate::Ignored { reason })
                    }
                    MapOutcome::Rejected {
                        gainsight_id,
                        reason,
                    } => {
                        summary.rejected += 1;
                        tracing::warn!(job = %job.name, event_id = %change.event_id, reason = %reason, "change rejected");
                        (gainsight_id, LedgerUpdate::Failed { message: reason })
                    }
                };
                if let Some(key) = key {
                    if let Err(e) = self.store.record(&job.name, &key, &update, now).await {
                        tracing::error!(job = %job.name, error = %e, "ledger update failed; change will be retried");
                        ok = false;
                    }
                }
            }
            if !matched {
                summary.ignored += 1;
                tracing::warn!(event_id = %change.event_id, object = %change.object, source = change.source.as_str(), "no job reads this object; change dropped");
            }
            if !ok {
                failed.push(id.clone());
            }
        }

        let bodies: Vec<String> = outgoing.iter().map(|(_, b)| b.clone()).collect();
        for ((id, _), result) in outgoing.iter().zip(self.writes.send(&bodies).await) {
            if let Err(e) = result {
                tracing::error!(message_id = %id, error = %e, "write command not queued; change will be retried");
                failed.push(id.clone());
            }
        }

        let response = shared::lambda::batch_response(failed);
        summary.failed_messages = response.batch_item_failures.len();
        tracing::info!(
            writes = summary.writes,
            ignored = summary.ignored,
            rejected = summary.rejected,
            failed = summary.failed_messages,
            "mapper batch done"
        );
        (response, summary)
    }
}

#[cfg(test)]
mod tests;
