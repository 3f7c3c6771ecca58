//! Resync function, invoked by hand: re-queues the current state of chosen records (a list of
//! ids, or every ledger record with status `error`) as changes that bypass echo suppression, so
//! they are written again. A pair is read from Gainsight by its GSID; a Salesforce record that has
//! no Gainsight twin yet is read from Salesforce by its Id.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::adapters::AwsClients;
use shared::config::{ConfigError, SalesforceSettings, SourceConfig};
use shared::domain::{ChangeEvent, Fields, Job, Jobs, LedgerKey, SourceRecord, SyncStatus, System};
use shared::ports::{
    GsCondition, GsOperator, GsQuery, LedgerStore, SalesforceApi, SecretsError, SfSelect,
    SourcePorts,
};

/// At most this many records per invocation (the same limit as one webhook request).
pub const MAX_RECORDS: usize = 50_000;
/// Ids per Gainsight `IN` query.
const GAINSIGHT_IDS_PER_QUERY: usize = 500;
/// Ids per Salesforce query: keeps the statement far below its length limit.
const SALESFORCE_IDS_PER_QUERY: usize = 200;

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

/// What to resync: `{"job": "...", "gainsightIds": [...]}` (ledger keys: GSIDs, or `sf:{Id}` for
/// a Salesforce record without a Gainsight twin) or `{"job": "...", "status": "error"}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResyncRequest {
    pub job: String,
    #[serde(default)]
    pub gainsight_ids: Vec<LedgerKey>,
    #[serde(default)]
    pub status: Option<SyncStatus>,
}

/// What one resync queued, and what it could not find.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResyncReport {
    pub job: String,
    pub queued: usize,
    pub not_found_in_gainsight: Vec<String>,
    pub not_found_in_salesforce: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResyncError {
    #[error(transparent)]
    UnknownJob(#[from] shared::domain::UnknownJob),
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
    ledger: Arc<dyn LedgerStore>,
    salesforce: Arc<dyn SalesforceApi>,
}

impl Resync {
    pub fn new(
        ports: SourcePorts,
        ledger: Arc<dyn LedgerStore>,
        salesforce: Arc<dyn SalesforceApi>,
    ) -> Self {
        Self {
            ports,
            ledger,
            salesforce,
        }
    }

    pub async fn from_aws(
        config: &Config,
        clients: &AwsClients,
        jobs: Jobs,
    ) -> Result<Self, SecretsError> {
        let aws = &config.source.aws;
        Ok(Self::new(
            clients.source_ports(&config.source, jobs).await?,
            Arc::new(clients.state_store(aws)),
            Arc::new(clients.salesforce(aws, &config.salesforce).await?),
        ))
    }

    pub async fn handle(&self, request: ResyncRequest) -> Result<ResyncReport, ResyncError> {
        self.handle_at(request, shared::time::now_ms()).await
    }

    /// Reads the chosen records where they live and queues them as forced changes.
    pub async fn handle_at(
        &self,
        request: ResyncRequest,
        now_ms: i64,
    ) -> Result<ResyncReport, ResyncError> {
        let job = self.ports.jobs.named(&request.job)?;
        let keys = self.chosen(job, &request).await?;
        let gsids: Vec<String> = keys
            .iter()
            .filter_map(|k| k.gainsight_id())
            .map(str::to_string)
            .collect();
        let sfids: Vec<String> = keys
            .iter()
            .filter_map(|k| k.salesforce_only_id())
            .map(str::to_string)
            .collect();
        let run = format!("resync-{now_ms}");
        let mut changes = self.read_gainsight(job, &gsids).await?;
        changes.extend(self.read_salesforce(job, &sfids).await?);
        let changes: Vec<ChangeEvent> = changes
            .into_iter()
            .map(|record| ChangeEvent::forced(record, &run, now_ms))
            .collect();
        let report = ResyncReport {
            job: job.name.clone(),
            queued: changes.len(),
            not_found_in_gainsight: not_found(&changes, System::Gainsight, gsids),
            not_found_in_salesforce: not_found(&changes, System::Salesforce, sfids),
        };
        self.send(&changes).await?;
        tracing::info!(job = %job.name, queued = report.queued, missing = report.not_found_in_gainsight.len(), "resync queued");
        Ok(report)
    }

    /// The ledger keys asked for, plus those carrying the asked status, each once.
    async fn chosen(
        &self,
        job: &Job,
        request: &ResyncRequest,
    ) -> Result<Vec<LedgerKey>, ResyncError> {
        let mut keys = request.gainsight_ids.clone();
        if let Some(status) = request.status {
            let records = self
                .ledger
                .by_status(&job.name, status, MAX_RECORDS + 1)
                .await?;
            keys.extend(records.into_iter().map(|r| r.key));
        }
        keys.sort();
        keys.dedup();
        if keys.is_empty() && request.status.is_none() {
            return Err(ResyncError::NothingChosen);
        }
        if keys.len() > MAX_RECORDS {
            return Err(ResyncError::TooMany(keys.len()));
        }
        Ok(keys)
    }

    /// Gainsight records by GSID, one `IN` query per 500 ids (never one per record).
    async fn read_gainsight(
        &self,
        job: &Job,
        ids: &[String],
    ) -> Result<Vec<SourceRecord>, ResyncError> {
        let mut records = Vec::new();
        for chunk in ids.chunks(GAINSIGHT_IDS_PER_QUERY) {
            let values = chunk.iter().map(|i| json!(i)).collect();
            let query = GsQuery {
                select: job.fields_read_from(System::Gainsight),
                conditions: vec![GsCondition::new(
                    &job.gainsight.id_field,
                    GsOperator::In,
                    values,
                )],
                order_by: vec![],
                limit: 0,
            };
            let rows = self
                .ports
                .gainsight
                .query(&job.gainsight.object, &query)
                .await?;
            records.extend(
                rows.into_iter()
                    .filter_map(|r| source_record(job, System::Gainsight, r)),
            );
        }
        Ok(records)
    }

    /// Salesforce records by Id, one query per 200 ids.
    async fn read_salesforce(
        &self,
        job: &Job,
        ids: &[String],
    ) -> Result<Vec<SourceRecord>, ResyncError> {
        let mut fields = job.fields_read_from(System::Salesforce);
        for f in ["CreatedDate", "LastModifiedDate"] {
            if !fields.iter().any(|s| s == f) {
                fields.push(f.into());
            }
        }
        let mut records = Vec::new();
        for chunk in ids.chunks(SALESFORCE_IDS_PER_QUERY) {
            let select = SfSelect {
                object: job.salesforce.object.clone(),
                fields: fields.clone(),
                conditions: vec![(job.salesforce.id_field.clone(), chunk.to_vec())],
                order_by: vec![],
            };
            let rows = self.salesforce.select(&select).await?;
            records.extend(
                rows.into_iter()
                    .filter_map(|r| source_record(job, System::Salesforce, r)),
            );
        }
        Ok(records)
    }

    async fn send(&self, changes: &[ChangeEvent]) -> Result<(), ResyncError> {
        let bodies: Vec<String> = changes
            .iter()
            .filter_map(|c| serde_json::to_string(c).ok())
            .collect();
        let results = self.ports.changes.send(&bodies).await;
        match results.into_iter().filter(Result::is_err).count() {
            0 => Ok(()),
            failed => Err(ResyncError::Queue(failed)),
        }
    }
}

/// A row read from `source` as the job's record there, if it carries its id.
fn source_record(job: &Job, source: System, fields: Fields) -> Option<SourceRecord> {
    let id = fields.get(job.id_field_in(source))?.as_str()?.to_string();
    Some(SourceRecord {
        source,
        object: job.object_in(source).to_string(),
        id,
        fields,
    })
}

/// The ids in `wanted` no change from `source` was made for.
fn not_found(changes: &[ChangeEvent], source: System, wanted: Vec<String>) -> Vec<String> {
    wanted
        .into_iter()
        .filter(|id| {
            !changes
                .iter()
                .any(|c| c.source == source && &c.record_id == id)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::ChangeOrigin;
    use shared::domain::LedgerUpdate;
    use shared::fakes::{MemoryGainsight, MemoryQueue, MemorySalesforce, MemoryStore};
    use shared::ports::LedgerStore;
    use std::sync::Arc;

    #[tokio::test]
    async fn requeues_error_records_as_forced_changes() {
        let store = Arc::new(MemoryStore::default());
        store
            .record(
                "company_account",
                &LedgerKey::Gainsight("G1".into()),
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
                &LedgerKey::SalesforceOnly("001000000000009AAA".into()),
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
                changes: queue.clone(),
                gainsight: gs.clone(),
                jobs: Jobs::builtin(),
            },
            store,
            sf.clone(),
        );
        let out = resync
            .handle(ResyncRequest {
                job: "company_account".into(),
                gainsight_ids: vec![LedgerKey::Gainsight("G9".into())],
                status: Some(SyncStatus::Error),
            })
            .await
            .unwrap();
        assert_eq!(out.queued, 2);
        assert_eq!(out.not_found_in_gainsight, ["G9"]);
        assert!(out.not_found_in_salesforce.is_empty());
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
        let selects = sf.queries.lock().unwrap().clone();
        assert_eq!(selects.len(), 1);
        assert_eq!(selects[0].object, "Account");
        assert_eq!(
            selects[0].conditions,
            [("Id".to_string(), vec!["001000000000009AAA".to_string()])]
        );
        let (_, query) = gs.queries.lock().unwrap()[0].clone();
        assert_eq!(
            query.conditions[0].values,
            vec![json!("G1"), json!("G9")],
            "one IN query for all ids"
        );
    }

    #[tokio::test]
    async fn refuses_requests_that_choose_nothing_or_an_unknown_job() {
        let resync = Resync::new(
            SourcePorts {
                changes: Arc::new(MemoryQueue::default()),
                gainsight: Arc::new(MemoryGainsight::default()),
                jobs: Jobs::builtin(),
            },
            Arc::new(MemoryStore::default()),
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
            gainsight_ids: vec![LedgerKey::Gainsight("G".into())],
            status: None,
        };
        assert!(matches!(
            resync.handle(bad).await,
            Err(ResyncError::UnknownJob(_))
        ));
    }
}
