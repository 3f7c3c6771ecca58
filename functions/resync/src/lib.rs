//! Resync function, invoked by hand: re-queues the current state of chosen records (a list of
//! ids, or every ledger record with status `error`) as changes that bypass echo suppression, so
//! they are written again. A pair is read from Gainsight by its GSID; a Salesforce record that has
//! no Gainsight twin yet (ledger key `sf:{Id}`) is read from Salesforce.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared::adapters::salesforce::soql_quote;
use shared::adapters::AwsClients;
use shared::config::{ConfigError, SalesforceSettings, SourceConfig};
use shared::domain::{ChangeEvent, ChangeOrigin, Fields, Jobs, Operation, SyncStatus, System};
use shared::ports::{GsQuery, SalesforceApi, SecretsError, SourcePorts};

/// At most this many records per invocation (seed 000's per-event limit).
pub const MAX_RECORDS: usize = 50_000;

/// Table, queues, the Gainsight tenant and the Salesforce org.
#[derive(Clone, Debug)]
pub struct Config {
    pub source: SourceConfig,
    pub salesforce: SalesforceSettings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            source: SourceConfig::from_env()?,
            salesforce: SalesforceSettings::from_env()?,
        })
    }
}

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
    salesforce: Arc<dyn SalesforceApi>,
}

impl Resync {
    pub fn new(ports: SourcePorts, salesforce: Arc<dyn SalesforceApi>) -> Self {
        Self { ports, salesforce }
    }

    pub async fn from_aws(
        config: &Config,
        clients: &AwsClients,
        jobs: Jobs,
    ) -> Result<Self, SecretsError> {
        Ok(Self::new(
            clients.source_ports(&config.source, jobs).await?,
            Arc::new(
                clients
                    .salesforce(&config.source.aws, &config.salesforce)
                    .await?,
            ),
        ))
    }

    /// Salesforce records by Id, one SOQL query per 200 ids.
    async fn read_salesforce(
        &self,
        job: &shared::domain::Job,
        ids: &[String],
    ) -> Result<Vec<Fields>, ResyncError> {
        let mut select = job.fields_read_from(System::Salesforce);
        for f in ["CreatedDate", "LastModifiedDate"] {
            if !select.iter().any(|s| s == f) {
                select.push(f.into());
            }
        }
        let mut records = Vec::new();
        for chunk in ids.chunks(200) {
            let quoted: Vec<String> = chunk.iter().map(|i| soql_quote(i)).collect();
            let soql = format!(
                "SELECT {} FROM {} WHERE Id IN ({})",
                select.join(", "),
                job.salesforce.object,
                quoted.join(", ")
            );
            records.extend(self.salesforce.query(&soql).await?);
        }
        Ok(records)
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
        let run = format!("resync-{now_ms}");
        let (sf_keys, ids): (Vec<String>, Vec<String>) =
            ids.into_iter().partition(|id| id.starts_with("sf:"));
        let sf_ids: Vec<String> = sf_keys.iter().map(|k| k[3..].to_string()).collect();
        let from_salesforce = self.read_salesforce(job, &sf_ids).await?;
        let id_field = &job.gainsight.id_field;
        let select: Vec<String> = job.fields_read_from(System::Gainsight);
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
        let changes: Vec<ChangeEvent> = records
            .into_iter()
            .filter_map(|r| forced_change(job, System::Gainsight, r, &run, now_ms))
            .chain(
                from_salesforce
                    .into_iter()
                    .filter_map(|r| forced_change(job, System::Salesforce, r, &run, now_ms)),
            )
            .collect();
        let not_found = |source: System, wanted: &[String]| -> Vec<String> {
            wanted
                .iter()
                .filter(|id| {
                    !changes
                        .iter()
                        .any(|c| c.source == source && &c.record_id == *id)
                })
                .cloned()
                .collect()
        };
        let missing = not_found(System::Gainsight, &ids);
        let sf_missing = not_found(System::Salesforce, &sf_ids);
        let bodies: Vec<String> = changes
            .iter()
            .filter_map(|c| serde_json::to_string(c).ok())
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
        tracing::info!(job = %job.name, queued = bodies.len(), missing = missing.len(), "resync queued");
        Ok(json!({
            "job": job.name,
            "queued": bodies.len(),
            "notFoundInGainsight": missing,
            "notFoundInSalesforce": sf_missing,
        }))
    }
}

/// A record's current state as a change that bypasses echo suppression.
fn forced_change(
    job: &shared::domain::Job,
    source: System,
    fields: Fields,
    run: &str,
    now_ms: i64,
) -> Option<ChangeEvent> {
    let id = fields.get(job.id_field_in(source))?.as_str()?.to_string();
    Some(ChangeEvent {
        event_id: format!("{run}/{id}"),
        source,
        object: job.object_in(source).to_string(),
        record_id: id,
        operation: Operation::Updated,
        occurred_at_ms: now_ms,
        fields,
        changed_fields: None,
        origin: ChangeOrigin::Resync,
        received_at_ms: now_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::LedgerUpdate;
    use shared::fakes::{MemoryGainsight, MemoryQueue, MemorySalesforce, MemoryStore};
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
        store
            .record(
                "company_account",
                "sf:001000000000009AAA",
                &LedgerUpdate::Failed {
                    message: "y".into(),
                },
                1,
            )
            .await
            .unwrap();
        let sf = Arc::new(MemorySalesforce::default());
        *sf.query_rows.lock().unwrap() =
            vec![json!({"Id": "001000000000009AAA", "Name": "Born in SF"})
                .as_object()
                .cloned()
                .unwrap()];
        let resync = Resync::new(
            SourcePorts {
                store,
                changes: queue.clone(),
                gainsight: gs.clone(),
                jobs: Jobs::builtin(),
            },
            sf.clone(),
        );
        let out = resync
            .handle(ResyncRequest {
                job: "company_account".into(),
                gainsight_ids: vec!["G9".into()],
                status: Some(SyncStatus::Error),
            })
            .await
            .unwrap();
        assert_eq!(out["queued"], 2);
        assert_eq!(out["notFoundInGainsight"], json!(["G9"]));
        assert_eq!(out["notFoundInSalesforce"], json!([]));
        let changes: Vec<ChangeEvent> = queue
            .bodies()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect();
        assert!(changes.iter().all(|c| c.origin == ChangeOrigin::Resync));
        assert_eq!(
            changes.iter().map(|c| c.source).collect::<Vec<_>>(),
            vec![System::Gainsight, System::Salesforce]
        );
        // The Salesforce-born record is read from Salesforce by its Id, in one query.
        let soql = sf.queries.lock().unwrap().clone();
        assert_eq!(soql.len(), 1);
        assert!(
            soql[0].contains("FROM Account WHERE Id IN ('001000000000009AAA')"),
            "{}",
            soql[0]
        );
        let (_, query) = gs.queries.lock().unwrap()[0].clone();
        assert_eq!(
            query.conditions[0].2,
            vec![json!("G1"), json!("G9")],
            "one IN query for all ids"
        );
    }

    #[tokio::test]
    async fn refuses_requests_that_choose_nothing_or_an_unknown_job() {
        let resync = Resync::new(
            SourcePorts {
                store: Arc::new(MemoryStore::default()),
                changes: Arc::new(MemoryQueue::default()),
                gainsight: Arc::new(MemoryGainsight::default()),
                jobs: Jobs::builtin(),
            },
            Arc::new(MemorySalesforce::default()),
        );
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
