//! Resync function, invoked by hand: re-queues the current Gainsight state of chosen records (a
//! list of ids, or every ledger record with status `error`) as changes that bypass echo
//! suppression, so they are written again.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared::adapters::AwsClients;
use shared::domain::{ChangeEvent, ChangeOrigin, Jobs, Operation, SyncStatus, System};
use shared::ports::{GsQuery, SecretsError, SourcePorts};

/// At most this many records per invocation (seed 000's per-event limit).
pub const MAX_RECORDS: usize = 50_000;

/// Table, queues and the Gainsight tenant.
pub type Config = shared::config::SourceConfig;

/// What to resync: `{"job": "...", "gainsightIds": [...]}` or `{"job": "...", "status": "error"}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResyncRequest {
    pub job: String,
    #[serde(default)]
    pub gainsight_ids: Vec<String>,
    #[serde(default)]
    pub status: Option<SyncStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResyncError {
    #[error("no job named {0}")]
    UnknownJob(String),
    #[error("say what to resync: gainsightIds or status")]
    NothingChosen,
    #[error("{0} records chosen; at most {MAX_RECORDS} per invocation")]
    TooMany(usize),
    #[error(transparent)]
    Api(#[from] shared::ports::ApiError),
    #[error(transparent)]
    Store(#[from] shared::ports::StoreError),
    #[error("{0} changes could not be queued; invoke again")]
    Queue(usize),
}

pub struct Resync {
    ports: SourcePorts,
}

impl Resync {
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

    pub async fn handle(&self, request: ResyncRequest) -> Result<Value, ResyncError> {
        let now_ms = shared::time::now_ms();
        let job = self
            .ports
            .jobs
            .get(&request.job)
            .ok_or_else(|| ResyncError::UnknownJob(request.job.clone()))?;
        let mut ids = request.gainsight_ids.clone();
        if let Some(status) = request.status {
            ids.extend(
                self.ports
                    .store
                    .by_status(&job.name, status, MAX_RECORDS + 1)
                    .await?
                    .into_iter()
                    .map(|r| r.gainsight_id),
            );
        }
        ids.sort();
        ids.dedup();
        if ids.is_empty() && request.status.is_none() {
            return Err(ResyncError::NothingChosen);
        }
        if ids.len() > MAX_RECORDS {
            return Err(ResyncError::TooMany(ids.len()));
        }
        let id_field = &job.gainsight.id_field;
        let mut select: Vec<String> = job.fields_read_from(System::Gainsight);
        select.sort();
        select.dedup();
        // One query per 500 ids (an IN list), never one per record.
        let mut records = Vec::new();
        for chunk in ids.chunks(500) {
            let query = GsQuery {
                select: select.clone(),
                conditions: vec![(
                    id_field.clone(),
                    "IN".into(),
                    chunk.iter().map(|i| json!(i)).collect(),
                )],
                order_by: vec![],
                limit: 0,
            };
            records.extend(
                self.ports
                    .gainsight
                    .query(&job.gainsight.object, &query)
                    .await?,
            );
        }
        let run = format!("resync-{now_ms}");
        let mut found = Vec::new();
        let bodies: Vec<String> = records
            .into_iter()
            .filter_map(|fields| {
                let id = fields.get(id_field)?.as_str()?.to_string();
                found.push(id.clone());
                serde_json::to_string(&ChangeEvent {
                    event_id: format!("{run}/{id}"),
                    source: System::Gainsight,
                    object: job.gainsight.object.clone(),
                    record_id: id,
                    operation: Operation::Updated,
                    occurred_at_ms: now_ms,
                    fields,
                    changed_fields: None,
                    origin: ChangeOrigin::Resync,
                    received_at_ms: now_ms,
                })
                .ok()
            })
            .collect();
        let failed = self
            .ports
            .changes
            .send(&bodies)
            .await
            .into_iter()
            .filter(Result::is_err)
            .count();
        if failed > 0 {
            return Err(ResyncError::Queue(failed));
        }
        let missing: Vec<&String> = ids.iter().filter(|id| !found.contains(id)).collect();
        tracing::info!(job = %job.name, queued = bodies.len(), missing = missing.len(), "resync queued");
        Ok(json!({ "job": job.name, "queued": bodies.len(), "notFoundInGainsight": missing }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::LedgerUpdate;
    use shared::fakes::{MemoryGainsight, MemoryQueue, MemoryStore};
    use shared::ports::StateStore;
    use std::sync::Arc;

    #[tokio::test]
    async fn requeues_error_records_as_forced_changes() {
        let store = Arc::new(MemoryStore::default());
        store
            .record(
                "company_account",
                "G1",
                &LedgerUpdate::Failed {
                    message: "x".into(),
                },
                1,
            )
            .await
            .unwrap();
        let queue = Arc::new(MemoryQueue::default());
        let gs = Arc::new(MemoryGainsight::default());
        gs.records.lock().unwrap().insert(
            "Company".into(),
            vec![json!({"Gsid": "G1", "Name": "A"})
                .as_object()
                .cloned()
                .unwrap()],
        );
        let resync = Resync::new(SourcePorts {
            store,
            changes: queue.clone(),
            gainsight: gs.clone(),
            jobs: Jobs::builtin(),
        });
        let out = resync
            .handle(ResyncRequest {
                job: "company_account".into(),
                gainsight_ids: vec!["G9".into()],
                status: Some(SyncStatus::Error),
            })
            .await
            .unwrap();
        assert_eq!(out["queued"], 1);
        assert_eq!(out["notFoundInGainsight"], json!(["G9"]));
        let change: ChangeEvent = serde_json::from_str(&queue.bodies()[0]).unwrap();
        assert_eq!(change.origin, ChangeOrigin::Resync);
        let (_, query) = gs.queries.lock().unwrap()[0].clone();
        assert_eq!(
            query.conditions[0].2,
            vec![json!("G1"), json!("G9")],
            "one IN query for all ids"
        );
    }

    #[tokio::test]
    async fn refuses_requests_that_choose_nothing_or_an_unknown_job() {
        let resync = Resync::new(SourcePorts {
            store: Arc::new(MemoryStore::default()),
            changes: Arc::new(MemoryQueue::default()),
            gainsight: Arc::new(MemoryGainsight::default()),
            jobs: Jobs::builtin(),
        });
        let none = ResyncRequest {
            job: "company_account".into(),
            gainsight_ids: vec![],
            status: None,
        };
        assert!(matches!(
            resync.handle(none).await,
            Err(ResyncError::NothingChosen)
        ));
        let bad = ResyncRequest {
            job: "nope".into(),
            gainsight_ids: vec!["G".into()],
            status: None,
        };
        assert!(matches!(
            resync.handle(bad).await,
            Err(ResyncError::UnknownJob(_))
        ));
    }
}
