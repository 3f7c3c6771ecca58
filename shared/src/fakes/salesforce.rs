//! The in-memory Salesforce: upserts into a map keyed by (object, external id), answers selects
//! with chosen rows, and can be told to fail chosen records or every call of a kind.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::standard_describe;
use crate::domain::Fields;
use crate::ports::*;

/// Salesforce fake: upserts into a map keyed by (object, external id) and can fail chosen records.
#[derive(Default)]
pub struct MemorySalesforce {
    pub records: Mutex<HashMap<(String, String), (String, Fields)>>,
    pub calls: Mutex<u64>,
    /// Bulk API jobs (`bulk_upsert`, `bulk_update`), each also counted in `calls` as the
    /// Collections calls it is made of here.
    pub bulk_jobs: Mutex<u64>,
    /// The next this many Bulk API calls answer that their job is still running, writing
    /// nothing yet (the call that finds it done writes).
    pub bulk_running: Mutex<u32>,
    /// Records whose external id equals this value fail with this message.
    pub reject: Mutex<Option<(String, String)>>,
    /// When set, every call fails with this (retryable) error.
    pub unavailable: Mutex<bool>,
    /// When set, every upsert is refused as a rate limit (HTTP 429) asking to wait this many ms.
    pub rate_limited: Mutex<Option<u64>>,
    /// Selects received, and the rows every select answers.
    /// A select whose conditions hold this value is refused as malformed (a value SOQL cannot take).
    pub refuse_value: Mutex<Option<String>>,
    /// When set, what every select after the first answers (a record created meanwhile).
    pub rows_after_first: Mutex<Option<Vec<Fields>>>,
    /// When set, every select fails as the session being refused (not retryable).
    pub selects_unauthorised: Mutex<bool>,
    /// When set, every select after the first times out (a transient fault).
    pub selects_time_out_after_first: Mutex<bool>,
    /// When set, every select fails as Salesforce being unavailable (a transient fault).
    pub selects_unavailable: Mutex<bool>,
    pub queries: Mutex<Vec<SfSelect>>,
    pub query_rows: Mutex<Vec<Fields>>,
}

impl MemorySalesforce {
    /// Counts a Bulk API job that has ended; `StillRunning` while `bulk_running` says so.
    fn bulk_done(&self) -> Result<(), ApiError> {
        let mut running = self.bulk_running.lock().unwrap();
        if *running > 0 {
            *running -= 1;
            return Err(ApiError::StillRunning {
                system: "Salesforce",
                job: "bulk job 7500000000000001".into(),
                message: "not complete yet".into(),
            });
        }
        *self.bulk_jobs.lock().unwrap() += 1;
        Ok(())
    }

    fn ok(id: String, created: bool) -> RecordResult {
        RecordResult {
            id: Some(id),
            success: true,
            created,
            errors: vec![],
            retryable: false,
            gone: false,
        }
    }
}

#[async_trait]
impl SalesforceApi for MemorySalesforce {
    async fn upsert(
        &self,
        object: &str,
        ext: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        *self.calls.lock().unwrap() += records.len().div_ceil(200) as u64;
        if *self.unavailable.lock().unwrap() {
            return Err(ApiError::Unavailable {
                system: "Salesforce",
                status: 503,
                message: "injected".into(),
                retry_after_ms: None,
            });
        }
        if let Some(wait) = *self.rate_limited.lock().unwrap() {
            return Err(ApiError::RateLimited {
                system: "Salesforce",
                status: 429,
                message: "injected".into(),
                retry_after_ms: Some(wait),
            });
        }
        let reject = self.reject.lock().unwrap().clone();
        let mut map = self.records.lock().unwrap();
        Ok(records
            .iter()
            .map(|r| {
                let key = r
                    .get(ext)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                if let Some((bad, message)) = &reject {
                    if *bad == key {
                        return RecordResult {
                            id: None,
                            success: false,
                            created: false,
                            errors: vec![message.clone()],
                            retryable: message.starts_with("UNABLE_TO_LOCK_ROW"),
                            gone: false,
                        };
                    }
                }
                let next_id = format!("001{:015}", map.len() + 1);
                let entry = map
                    .entry((object.into(), key))
                    .or_insert_with(|| (next_id, Fields::new()));
                let created = entry.1.is_empty();
                entry.1.extend(r.clone());
                RecordResult {
                    id: Some(entry.0.clone()),
                    success: true,
                    created,
                    errors: vec![],
                    retryable: false,
                    gone: false,
                }
            })
            .collect())
    }

    async fn create(
        &self,
        object: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        *self.calls.lock().unwrap() += records.len().div_ceil(200) as u64;
        let mut map = self.records.lock().unwrap();
        Ok(records
            .iter()
            .map(|r| {
                let id = format!("001{:015}", map.len() + 1);
                map.insert((object.into(), id.clone()), (id.clone(), r.clone()));
                Self::ok(id, true)
            })
            .collect())
    }

    async fn bulk_upsert(
        &self,
        object: &str,
        external_id_field: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        self.bulk_done()?;
        self.upsert(object, external_id_field, records).await
    }

    async fn bulk_update(
        &self,
        object: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        self.bulk_done()?;
        self.update(object, records).await
    }

    async fn update(
        &self,
        _object: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        *self.calls.lock().unwrap() += records.len().div_ceil(200) as u64;
        let mut map = self.records.lock().unwrap();
        Ok(records
            .iter()
            .map(|r| {
                let id = r.get("Id").and_then(|v| v.as_str()).unwrap_or_default();
                match map.values_mut().find(|(known, _)| known == id) {
                    Some(entry) => {
                        entry.1.extend(r.clone());
                        Self::ok(id.to_string(), false)
                    }
                    None => RecordResult {
                        id: None,
                        success: false,
                        created: false,
                        errors: vec![format!("ENTITY_IS_DELETED: no record {id}")],
                        retryable: false,
                        gone: true,
                    },
                }
            })
            .collect())
    }

    async fn describe(&self, object: &str) -> Result<crate::domain::ObjectSchema, ApiError> {
        standard_describe(crate::domain::System::Salesforce, object)
    }

    async fn select(&self, query: &SfSelect) -> Result<Vec<Fields>, ApiError> {
        *self.calls.lock().unwrap() += 1;
        self.queries.lock().unwrap().push(query.clone());
        if *self.selects_unauthorised.lock().unwrap() {
            return Err(ApiError::Auth {
                system: "Salesforce",
                message: "Session expired or invalid".into(),
            });
        }
        if *self.selects_unavailable.lock().unwrap() {
            return Err(ApiError::Unavailable {
                system: "Salesforce",
                status: 503,
                message: "injected".into(),
                retry_after_ms: None,
            });
        }
        let after_first = self.queries.lock().unwrap().len() > 1;
        if after_first && *self.selects_time_out_after_first.lock().unwrap() {
            return Err(ApiError::Timeout {
                system: "Salesforce",
                message: "operation timed out".into(),
            });
        }
        let later = self.rows_after_first.lock().unwrap().clone();
        if let (Some(rows), true) = (later, after_first) {
            return Ok(rows);
        }
        let refused = self.refuse_value.lock().unwrap().clone();
        let holds = |v: &String| refused.as_ref() == Some(v);
        if query
            .conditions
            .iter()
            .any(|(_, values)| values.iter().any(holds))
        {
            return Err(ApiError::Rejected {
                system: "Salesforce",
                status: 400,
                code: "MALFORMED_QUERY".into(),
                message: "unexpected token in the IN list".into(),
            });
        }
        Ok(self.query_rows.lock().unwrap().clone())
    }
}

/// A bulk read answers `query_rows` in sets of `max`, the locator being the offset; each call
/// counts as one.
#[async_trait]
impl SalesforceBulkRead for MemorySalesforce {
    async fn start_bulk_read(&self, select: &SfSelect) -> Result<BulkReadJob, ApiError> {
        *self.calls.lock().unwrap() += 1;
        self.queries.lock().unwrap().push(select.clone());
        Ok(BulkReadJob("750000000000001AAA".into()))
    }

    async fn bulk_read_set(
        &self,
        _job: &BulkReadJob,
        locator: Option<&str>,
        max: usize,
    ) -> Result<BulkSet, ApiError> {
        *self.calls.lock().unwrap() += 1;
        let rows = self.query_rows.lock().unwrap();
        let from: usize = locator.and_then(|l| l.parse().ok()).unwrap_or(0);
        let to = (from + max).min(rows.len());
        Ok(BulkSet {
            rows: rows[from.min(to)..to].to_vec().into(),
            next: (to < rows.len()).then(|| to.to_string()),
        })
    }
}
