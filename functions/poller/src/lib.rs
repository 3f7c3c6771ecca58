//! Poller function: on an EventBridge schedule, reads the Gainsight records of a job changed since
//! the job's (timestamp, id) cursor, with an overlapping window, queues them as changes (dedup by
//! record version), and advances the cursor only after everything is queued.

use futures_util::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared::adapters::AwsClients;
use shared::domain::{ChangeEvent, ChangeOrigin, Jobs, Operation, System};
use shared::ports::{Cursor, GsQuery, SecretsError, SourcePorts};

/// Dedup-key requests in flight at once.
const STORE_CONCURRENCY: usize = 16;

/// Field Gainsight stamps on every modification (epoch ms in the data API).
pub const MODIFIED_FIELD: &str = "ModifiedDate";
/// Re-read this much before the cursor: late commits with older timestamps are not missed.
pub const OVERLAP_MS: i64 = 5 * 60 * 1000;

/// Table, queues and the Gainsight tenant.
pub type Config = shared::config::SourceConfig;

/// The constant input each schedule rule passes (see `infra/template.yaml`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollRequest {
    pub job: String,
    /// Backfill: start from this instant (epoch ms) instead of the cursor.
    #[serde(default)]
    pub since_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("no job named {0}")]
    UnknownJob(String),
    #[error(transparent)]
    Api(#[from] shared::ports::ApiError),
    #[error(transparent)]
    Store(#[from] shared::ports::StoreError),
    #[error("{failed} of {total} changes could not be queued; cursor not advanced")]
    Queue { failed: usize, total: usize },
}

pub struct Poller {
    ports: SourcePorts,
}

impl Poller {
    pub fn new(ports: SourcePorts) -> Self {
        Self { ports }
    }

    pub async fn from_aws(
        config: &Config,
        clients: &AwsClients,
        jobs: Jobs,
    ) -> Result<Self, SecretsError> {
        Ok(Self::new(clients.source_ports(config, jobs).await?))
    }

    pub async fn handle(&self, request: PollRequest) -> Result<Value, PollError> {
        self.handle_at(request, shared::time::now_ms()).await
    }

    pub async fn handle_at(&self, request: PollRequest, now_ms: i64) -> Result<Value, PollError> {
        let job = self
            .ports
            .jobs
            .get(&request.job)
            .ok_or_else(|| PollError::UnknownJob(request.job.clone()))?;
        let stream = "gainsight";
        let cursor = self.ports.store.cursor(&job.name, stream).await?;
        let from = match (request.since_ms, &cursor) {
            (Some(since), _) => since,
            (None, Some(c)) => c.timestamp_ms - OVERLAP_MS,
            (None, None) => now_ms - OVERLAP_MS,
        };
        let mut select: Vec<String> = vec![MODIFIED_FIELD.into()];
        select.extend(job.fields_read_from(System::Gainsight));
        select.sort();
        select.dedup();
        let query = GsQuery {
            select,
            conditions: vec![(MODIFIED_FIELD.into(), "GTE".into(), vec![json!(from)])],
            order_by: vec![
                (MODIFIED_FIELD.into(), true),
                (job.gainsight.id_field.clone(), true),
            ],
            limit: 0,
        };
        let records = self
            .ports
            .gainsight
            .query(&job.gainsight.object, &query)
            .await?;

        let mut changes = Vec::new();
        let mut newest = cursor.clone();
        for fields in records {
            let Some(id) = fields
                .get(&job.gainsight.id_field)
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            let Some(modified) = fields.get(MODIFIED_FIELD).and_then(Value::as_i64) else {
                continue;
            };
            let position = Cursor {
                timestamp_ms: modified,
                last_id: id.clone(),
            };
            if newest
                .as_ref()
                .is_none_or(|n| (n.timestamp_ms, &n.last_id) < (modified, &id))
            {
                newest = Some(position);
            }
            changes.push(ChangeEvent {
                // One id per record version: overlapping windows re-read it, the claim drops it.
                event_id: format!("poll/{}/{id}@{modified}", job.name),
                source: System::Gainsight,
                object: job.gainsight.object.clone(),
                record_id: id,
                operation: Operation::Updated,
                occurred_at_ms: modified,
                fields,
                changed_fields: None,
                origin: ChangeOrigin::Poller,
                received_at_ms: now_ms,
            });
        }

        // Claims and confirmations are independent items: keep a few in flight rather than paying
        // two sequential round trips per record of the window.
        let store = &self.ports.store;
        let claims: Vec<Result<Option<ChangeEvent>, shared::ports::StoreError>> =
            stream::iter(changes)
                .map(|change| async move {
                    let claim = store
                        .claim_event(&change.event_id, now_ms, 60_000, 7 * 86_400)
                        .await?;
                    Ok((claim == shared::ports::Claim::New).then_some(change))
                })
                .buffered(STORE_CONCURRENCY)
                .collect()
                .await;
        let fresh: Vec<ChangeEvent> = claims
            .into_iter()
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()?;
        let bodies: Vec<String> = fresh
            .iter()
            .map(|c| serde_json::to_string(c).unwrap_or_default())
            .collect();
        let results = self.ports.changes.send(&bodies).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        let settled: Vec<Result<(), shared::ports::StoreError>> =
            stream::iter(fresh.iter().zip(&results))
                .map(|(change, result)| async move {
                    match result {
                        Ok(()) => store.confirm_event(&change.event_id).await,
                        Err(_) => store.release_event(&change.event_id).await,
                    }
                })
                .buffer_unordered(STORE_CONCURRENCY)
                .collect()
                .await;
        settled.into_iter().collect::<Result<(), _>>()?;
        if failed > 0 {
            return Err(PollError::Queue {
                failed,
                total: bodies.len(),
            });
        }
        if let Some(c) = &newest {
            self.ports.store.put_cursor(&job.name, stream, c).await?;
        }
        tracing::info!(job = %job.name, queued = bodies.len(), from_ms = from, "poll done");
        Ok(
            json!({ "job": job.name, "queued": bodies.len(), "fromMs": from, "cursorMs": newest.map(|c| c.timestamp_ms) }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::fakes::{MemoryGainsight, MemoryQueue, MemoryStore};
    use std::sync::Arc;

    #[tokio::test]
    async fn queues_changed_records_once_and_advances_the_cursor() {
        let store = Arc::new(MemoryStore::default());
        let queue = Arc::new(MemoryQueue::default());
        let gs = Arc::new(MemoryGainsight::default());
        gs.records.lock().unwrap().insert(
            "Company".into(),
            vec![
                json!({"Gsid": "G1", "Name": "A", "ModifiedDate": 1_000})
                    .as_object()
                    .cloned()
                    .unwrap(),
                json!({"Gsid": "G2", "Name": "B", "ModifiedDate": 2_000})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ],
        );
        let poller = Poller::new(SourcePorts {
            store: store.clone(),
            changes: queue.clone(),
            gainsight: gs.clone(),
            jobs: Jobs::builtin(),
        });
        let request = PollRequest {
            job: "company_account".into(),
            since_ms: None,
        };
        let out = poller.handle_at(request.clone(), 10_000_000).await.unwrap();
        assert_eq!(out["queued"], 2);
        assert_eq!(
            store.cursors.lock().unwrap().values().next().unwrap(),
            &Cursor {
                timestamp_ms: 2_000,
                last_id: "G2".into()
            }
        );
        // The overlapping window re-reads both records; neither is queued again.
        let out = poller.handle_at(request, 10_000_001).await.unwrap();
        assert_eq!(out["queued"], 0);
        assert_eq!(queue.bodies().len(), 2);
        let (_, q) = gs.queries.lock().unwrap()[1].clone();
        assert_eq!(
            q.conditions[0].2[0],
            json!(2_000 - OVERLAP_MS),
            "second window starts before the cursor"
        );
    }

    #[tokio::test]
    async fn the_cursor_stays_when_queueing_fails() {
        let store = Arc::new(MemoryStore::default());
        let queue = Arc::new(MemoryQueue::default());
        *queue.fail_containing.lock().unwrap() = Some("G1".into());
        let gs = Arc::new(MemoryGainsight::default());
        gs.records.lock().unwrap().insert(
            "Company".into(),
            vec![json!({"Gsid": "G1", "ModifiedDate": 5})
                .as_object()
                .cloned()
                .unwrap()],
        );
        let poller = Poller::new(SourcePorts {
            store: store.clone(),
            changes: queue,
            gainsight: gs,
            jobs: Jobs::builtin(),
        });
        let err = poller
            .handle_at(
                PollRequest {
                    job: "company_account".into(),
                    since_ms: Some(0),
                },
                100,
            )
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            PollError::Queue {
                failed: 1,
                total: 1
            }
        ));
        assert!(store.cursors.lock().unwrap().is_empty());
        assert!(poller
            .handle_at(
                PollRequest {
                    job: "nope".into(),
                    since_ms: None
                },
                100
            )
            .await
            .is_err());
    }
}
