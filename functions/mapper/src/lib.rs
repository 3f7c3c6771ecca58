//! Mapper function: consumes `changes`, applies each job's mapping, records ignored and rejected
//! changes in the ledger, and queues write commands on `writes`. One bad message fails only itself.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::adapters::AwsClients;
use shared::config::{AwsResources, ConfigError};
use shared::domain::{ChangeEvent, Jobs, LedgerUpdate, MapOutcome, Mapper};
use shared::ports::{LedgerBatch, Queue, StateStore};

#[derive(Clone, Debug)]
pub struct Config {
    pub aws: AwsResources,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsResources::from_env()?,
        })
    }
}

pub struct MapperFn {
    store: Arc<dyn StateStore>,
    writes: Arc<dyn Queue>,
    jobs: Jobs,
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
    pub fn new(store: Arc<dyn StateStore>, writes: Arc<dyn Queue>, jobs: Jobs) -> Self {
        Self {
            store,
            writes,
            jobs,
        }
    }

    pub fn from_aws(config: &Config, clients: &AwsClients, jobs: Jobs) -> Self {
        Self::new(
            Arc::new(clients.state_store(&config.aws)),
            Arc::new(clients.queue(&config.aws.writes_queue_url)),
            jobs,
        )
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

        // One batched ledger read per job instead of one read per change.
        let mut wanted: HashMap<String, Vec<String>> = HashMap::new();
        for (_, change) in &changes {
            for job in self.jobs.for_source(change.source, &change.object) {
                if let Some(gsid) = Mapper::new(job).gainsight_id(change) {
                    wanted.entry(job.name.clone()).or_default().push(gsid);
                }
            }
        }
        let ledgers = LedgerBatch::read(self.store.as_ref(), &wanted).await;

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
                let mapper = Mapper::new(job);
                let ledger = mapper
                    .gainsight_id(change)
                    .and_then(|g| ledgers.get(&job.name, &g));
                let (gsid, update) = match mapper.map(change, ledger) {
                    MapOutcome::Write(cmd) => {
                        summary.writes += 1;
                        outgoing
                            .push((id.clone(), serde_json::to_string(&cmd).unwrap_or_default()));
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
                if let Some(gsid) = gsid {
                    if let Err(e) = self.store.record(&job.name, &gsid, &update, now).await {
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
