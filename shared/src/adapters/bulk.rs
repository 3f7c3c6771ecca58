//! Bulk API 2.0 ingest for large loads: one job per load (create, upload the CSV, close), its
//! state polled with backoff, then its results read back and matched to the records by external
//! ID, or by `Id` for an update (row order is not guaranteed). A load of N records costs four calls plus the polls:
//! `failedResults` is read only when the job reports failures, and an update by Id that
//! processed every record without failure reads no result file (three calls plus the polls). Bulk API 2.0 query for large
//! reads: one job, polled the same way, then its CSV results set by set by `Sforce-Locator`.
//!
//! Ingest jobs can be remembered by a digest of what they write: a writer that had to stop
//! while its job ran (a Lambda invocation's time is short; a job of many records can take
//! minutes) leaves it to the next writer of the same records to collect the job's results, so
//! no record is written twice.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::http::with_retries;
use super::salesforce::{Body, SalesforceClient};
use crate::domain::Fields;
use crate::ports::{
    ApiError, BulkJobKey, BulkJobs, BulkReadJob, BulkRows, BulkSet, RecordResult, SfSelect,
};

const SYSTEM: &str = "Salesforce";
/// First wait between state polls; it doubles up to `MAX_POLL_WAIT`.
const FIRST_POLL_WAIT: Duration = Duration::from_millis(200);
const MAX_POLL_WAIT: Duration = Duration::from_secs(10);
/// How long a call waits for a job unless told otherwise: a Lambda invocation's longest.
const MAX_WAIT: Duration = Duration::from_secs(900);

/// Where ingest jobs are remembered (none unless told), and how long one call waits for its
/// job.
pub struct IngestJobs {
    pub(super) jobs: Option<std::sync::Arc<dyn BulkJobs>>,
    pub(super) wait: Duration,
}

impl Default for IngestJobs {
    fn default() -> Self {
        Self {
            jobs: None,
            wait: MAX_WAIT,
        }
    }
}

/// What an ingest job does, and the column its results are matched back by.
#[derive(Clone, Copy, Debug)]
pub enum Ingest<'a> {
    /// Upsert on this external-ID field.
    Upsert { external_id_field: &'a str },
    /// Update by `Id`.
    Update,
}

impl Ingest<'_> {
    fn key_field(&self) -> &str {
        match self {
            Ingest::Upsert { external_id_field } => external_id_field,
            Ingest::Update => "Id",
        }
    }

    fn create(&self, object: &str) -> Value {
        let mut job = json!({"object": object, "contentType": "CSV", "lineEnding": "LF"});
        match self {
            Ingest::Upsert { external_id_field } => {
                job["operation"] = json!("upsert");
                job["externalIdFieldName"] = json!(external_id_field);
            }
            Ingest::Update => job["operation"] = json!("update"),
        }
        job
    }
}

impl SalesforceClient {
    /// Upserts `records` on `ext_field` through one Bulk API 2.0 ingest job; one result per
    /// record, in order (`ingest_job`).
    pub async fn bulk_upsert_job(
        &self,
        object: &str,
        ext_field: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        let ingest = Ingest::Upsert {
            external_id_field: ext_field,
        };
        self.ingest_job(object, ingest, records).await
    }

    /// Writes `records` through one Bulk API 2.0 ingest job; one result per record, in order,
    /// matched by the job's key column (the external id, or `Id`). A record whose key value
    /// appears in neither result file was not processed and is reported retryable. With jobs
    /// remembered (`with_bulk_jobs`), records a job was already submitted for collect that
    /// job's results, and a job still running after the client's wait is
    /// `ApiError::StillRunning`.
    pub async fn ingest_job(
        &self,
        object: &str,
        ingest: Ingest<'_>,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        let key_field = ingest.key_field();
        let key = job_key(object, &ingest, records);
        let (id, done) = match self.submitted(&key).await {
            Some(id) => match self.wait_ingest(&id).await {
                // Deleted since (Salesforce keeps a job a week): submitted again.
                Err(ApiError::Rejected { status: 404, .. }) => {
                    self.submit_and_wait(object, ingest, records, &key).await?
                }
                done => (id, done?),
            },
            None => self.submit_and_wait(object, ingest, records, &key).await?,
        };
        if every_update_done(&ingest, &done, records.len()) {
            return Ok(records.iter().map(updated).collect());
        }
        let path = format!("jobs/ingest/{id}");
        if done["state"] != "JobComplete" {
            // What a failed job left unprocessed is written again by a job of its own.
            self.forget(&key).await;
        }
        let mut outcome = self.outcomes(&path, &done, key_field).await?;
        if done["state"] != "JobComplete" {
            outcome.extend(self.unprocessed(&path, &done, key_field).await?);
        }
        Ok(records
            .iter()
            .map(|r| {
                let key = cell(r.get(key_field));
                outcome.remove(&key).unwrap_or_else(|| RecordResult {
                    id: None,
                    success: false,
                    created: false,
                    errors: vec![format!("not processed by bulk job {id}")],
                    retryable: true,
                    gone: false,
                })
            })
            .collect())
    }

    /// Creates the job, uploads the records, closes it (remembering it for `key` once it is
    /// Salesforce's to run) and waits for it: its id and final state.
    async fn submit_and_wait(
        &self,
        object: &str,
        ingest: Ingest<'_>,
        records: &[Fields],
        key: &BulkJobKey,
    ) -> Result<(String, Value), ApiError> {
        let job = self
            .json(
                reqwest::Method::POST,
                "jobs/ingest",
                Some(&ingest.create(object)),
            )
            .await?;
        let id = job["id"].as_str().unwrap_or_default().to_string();
        let csv = to_csv(records)?;
        let batches = format!("jobs/ingest/{id}/batches");
        with_retries(|| self.send(reqwest::Method::PUT, &batches, Some(Body::Csv(&csv)))).await?;
        drop(csv);
        let close = json!({"state": "UploadComplete"});
        let path = format!("jobs/ingest/{id}");
        self.json(reqwest::Method::PATCH, &path, Some(&close))
            .await?;
        self.remember(key, &id).await;
        let done = self.wait_ingest(&id).await?;
        Ok((id, done))
    }

    /// The job's final state, or `StillRunning` when it has not ended within the client's wait.
    async fn wait_ingest(&self, id: &str) -> Result<Value, ApiError> {
        let path = format!("jobs/ingest/{id}");
        match self.wait(&path, self.ingest.wait).await? {
            Some(done) => Ok(done),
            None => Err(ApiError::StillRunning {
                system: SYSTEM,
                job: format!("bulk job {id}"),
                message: format!(
                    "not complete after {} s; the same records written again collect its results",
                    self.ingest.wait.as_secs()
                ),
            }),
        }
    }

    /// The job remembered for `key`, if any (a store that cannot be read remembers none: the
    /// records are submitted again, as upserts and updates by Id may be).
    async fn submitted(&self, key: &BulkJobKey) -> Option<String> {
        let jobs = self.ingest.jobs.as_ref()?;
        match jobs.submitted(key).await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "could not read the bulk jobs submitted");
                None
            }
        }
    }

    async fn remember(&self, key: &BulkJobKey, id: &str) {
        let Some(jobs) = &self.ingest.jobs else {
            return;
        };
        if let Err(e) = jobs.remember(key, id, crate::time::now_ms()).await {
            tracing::warn!(key = %key, job = id, error = %e, "could not remember a bulk job");
        }
    }

    async fn forget(&self, key: &BulkJobKey) {
        let Some(jobs) = &self.ingest.jobs else {
            return;
        };
        if let Err(e) = jobs.forget(key).await {
            tracing::warn!(key = %key, error = %e, "could not forget a bulk job");
        }
    }

    /// Each processed record's result, by its external ID: the successful ones, and the failed
    /// ones when the job reports any.
    async fn outcomes(
        &self,
        path: &str,
        done: &Value,
        ext_field: &str,
    ) -> Result<HashMap<String, RecordResult>, ApiError> {
        let mut outcome: HashMap<String, RecordResult> = HashMap::new();
        let ok_path = format!("{path}/successfulResults");
        for [key, id, created] in self
            .picked(&ok_path, [ext_field, "sf__Id", "sf__Created"])
            .await?
        {
            let success = RecordResult {
                id,
                success: true,
                created: created.is_some_and(|c| c == "true"),
                errors: Vec::new(),
                retryable: false,
                gone: false,
            };
            outcome.insert(key.unwrap_or_default(), success);
        }
        if done["numberRecordsFailed"].as_u64().unwrap_or(0) > 0 {
            let failed_path = format!("{path}/failedResults");
            for [key, error] in self.picked(&failed_path, [ext_field, "sf__Error"]).await? {
                let error = error.unwrap_or_default();
                let failure = RecordResult {
                    id: None,
                    success: false,
                    created: false,
                    errors: vec![error.replacen(':', ": ", 1)],
                    retryable: false,
                    gone: false,
                };
                outcome.insert(key.unwrap_or_default(), failure);
            }
        }
        Ok(outcome)
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let bytes = with_retries(|| self.send(method.clone(), path, body.map(Body::Json))).await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Protocol {
            system: SYSTEM,
            message: format!("bulk job answer: {e}"),
        })
    }

    /// The records a job that failed or was aborted never processed, as retryable failures that
    /// say why (`unprocessedrecords`); what it did process has its results as usual.
    async fn unprocessed(
        &self,
        path: &str,
        done: &Value,
        ext_field: &str,
    ) -> Result<HashMap<String, RecordResult>, ApiError> {
        let why = format!(
            "not processed: bulk job {} ended {}: {}",
            done["id"].as_str().unwrap_or(path),
            done["state"].as_str().unwrap_or_default(),
            done["errorMessage"].as_str().unwrap_or("no reason given")
        );
        let rows = (self.picked(&format!("{path}/unprocessedrecords"), [ext_field])).await?;
        Ok(rows
            .into_iter()
            .map(|[key]| {
                let result = RecordResult {
                    id: None,
                    success: false,
                    created: false,
                    errors: vec![why.clone()],
                    retryable: true,
                    gone: false,
                };
                (key.unwrap_or_default(), result)
            })
            .collect())
    }

    /// Polls the job until it has ended (complete, failed or aborted), waiting longer each
    /// time: its state, or `None` when it has not ended within `within`.
    async fn wait(&self, path: &str, within: Duration) -> Result<Option<Value>, ApiError> {
        let started = tokio::time::Instant::now();
        let mut pause = FIRST_POLL_WAIT;
        loop {
            let job = self.json(reqwest::Method::GET, path, None).await?;
            match job["state"].as_str().unwrap_or_default() {
                "JobComplete" | "Failed" | "Aborted" => return Ok(Some(job)),
                _ => {}
            }
            let left = within.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(MAX_POLL_WAIT);
        }
    }

    /// A result file's rows, only the `wanted` columns of each, in that order (`None` for a
    /// column the file lacks): a result row repeats every column uploaded, and a job's results
    /// are held for all its records at once.
    async fn picked<const N: usize>(
        &self,
        path: &str,
        wanted: [&str; N],
    ) -> Result<Vec<[Option<String>; N]>, ApiError> {
        let bytes = with_retries(|| self.send(reqwest::Method::GET, path, None)).await?;
        picked_columns(&bytes, wanted)
    }
}

#[async_trait::async_trait]
impl crate::ports::SalesforceBulkRead for SalesforceClient {
    async fn start_bulk_read(&self, select: &SfSelect) -> Result<BulkReadJob, ApiError> {
        let operation = if select.include_deleted {
            "queryAll"
        } else {
            "query"
        };
        let create = json!({"operation": operation, "query": super::soql::soql(select)});
        let job = self
            .json(reqwest::Method::POST, "jobs/query", Some(&create))
            .await?;
        match job["id"].as_str() {
            Some(id) if !id.is_empty() => Ok(BulkReadJob(id.to_string())),
            _ => Err(ApiError::Protocol {
                system: SYSTEM,
                message: format!("the query job was created without an id: {job}"),
            }),
        }
    }

    async fn bulk_read_set(
        &self,
        job: &BulkReadJob,
        locator: Option<&str>,
        max: usize,
    ) -> Result<BulkSet, ApiError> {
        let path = format!("jobs/query/{}", job.0);
        if locator.is_none() {
            let done = self.wait(&path, MAX_WAIT).await?.ok_or(ApiError::Timeout {
                system: SYSTEM,
                message: format!(
                    "bulk query job {} not complete after {} s",
                    job.0,
                    MAX_WAIT.as_secs()
                ),
            })?;
            if done["state"] != "JobComplete" {
                return Err(ApiError::Protocol {
                    system: SYSTEM,
                    message: format!(
                        "bulk query job {} ended {}: {}",
                        job.0,
                        done["state"].as_str().unwrap_or_default(),
                        done["errorMessage"].as_str().unwrap_or("no reason given")
                    ),
                });
            }
        }
        let mut url = format!("{path}/results?maxRecords={}", max.max(1));
        if let Some(at) = locator {
            url.push_str(&format!("&locator={}", super::soql::urlencode(at)));
        }
        let (headers, bytes) =
            with_retries(|| self.send_answer(reqwest::Method::GET, &url, None)).await?;
        let next = (headers.get("sforce-locator"))
            .and_then(|v| v.to_str().ok())
            .filter(|l| !l.is_empty() && *l != "null")
            .map(str::to_string);
        Ok(BulkSet {
            rows: query_rows(bytes)?,
            next,
        })
    }
}

/// Whether an update by Id ended with every record processed and none failed: then each record's
/// result is known without reading `successfulResults` (its id is the record's own), a call
/// saved per job. Upserts still read it, for the ids of the records they created.
fn every_update_done(ingest: &Ingest<'_>, done: &Value, records: usize) -> bool {
    matches!(ingest, Ingest::Update)
        && done["state"] == "JobComplete"
        && done["numberRecordsFailed"].as_u64() == Some(0)
        && done["numberRecordsProcessed"].as_u64() == Some(records as u64)
}

/// The result of a record an update job processed without failure.
fn updated(record: &Fields) -> RecordResult {
    RecordResult {
        id: record.get("Id").and_then(Value::as_str).map(str::to_string),
        success: true,
        created: false,
        errors: Vec::new(),
        retryable: false,
        gone: false,
    }
}

/// A query job's CSV set as records, parsed as they are taken: every value text, an empty cell
/// null. A set without a header row is refused at once.
fn query_rows(bytes: Vec<u8>) -> Result<BulkRows, ApiError> {
    let mut reader = csv::Reader::from_reader(std::io::Cursor::new(bytes));
    let headers = reader.headers().cloned().map_err(protocol)?;
    let rows = reader.into_records().map(move |row| {
        let row = row.map_err(protocol)?;
        Ok((headers.iter().zip(row.iter()))
            .map(|(h, v)| {
                let value = if v.is_empty() {
                    Value::Null
                } else {
                    Value::String(v.to_string())
                };
                (h.to_string(), value)
            })
            .collect())
    });
    Ok(BulkRows::new(rows))
}

/// The `wanted` columns of each row of a CSV answer.
fn picked_columns<const N: usize>(
    bytes: &[u8],
    wanted: [&str; N],
) -> Result<Vec<[Option<String>; N]>, ApiError> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().map_err(protocol)?;
    let at = wanted.map(|w| headers.iter().position(|h| h == w));
    let (mut rows, mut record) = (Vec::new(), csv::StringRecord::new());
    while reader.read_record(&mut record).map_err(protocol)? {
        rows.push(at.map(|i| i.and_then(|i| record.get(i)).map(str::to_string)));
    }
    Ok(rows)
}

fn protocol(e: csv::Error) -> ApiError {
    ApiError::Protocol {
        system: SYSTEM,
        message: format!("bulk result file: {e}"),
    }
}

/// A value as a CSV cell: text as is, numbers and booleans as JSON writes them, null as `#N/A`
/// (which clears the field).
fn cell(value: Option<&Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::Null) => "#N/A".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Every field any of the records has, in order.
fn columns(records: &[Fields]) -> Vec<&String> {
    let mut columns: Vec<&String> = records.iter().flat_map(|r| r.keys()).collect();
    columns.sort();
    columns.dedup();
    columns
}

/// The digest of what a job writes: object, operation, columns and rows, the rows in any
/// order (a writer may gather the same records in another order).
fn job_key(object: &str, ingest: &Ingest<'_>, records: &[Fields]) -> BulkJobKey {
    use sha2::{Digest, Sha256};
    let columns = columns(records);
    let mut rows: Vec<[u8; 32]> = (records.iter())
        .map(|r| {
            let mut row = Sha256::new();
            for c in &columns {
                row.update(cell(r.get(c.as_str())).as_bytes());
                row.update([0x1f]);
            }
            row.finalize().into()
        })
        .collect();
    rows.sort_unstable();
    let mut job = Sha256::new();
    job.update(ingest.create(object).to_string().as_bytes());
    for c in &columns {
        job.update(c.as_bytes());
        job.update([0x1f]);
    }
    for row in &rows {
        job.update(row);
    }
    BulkJobKey::from_digest(hex::encode(job.finalize()))
}

/// The records as one CSV: a column for every field any record has.
fn to_csv(records: &[Fields]) -> Result<String, ApiError> {
    let columns = columns(records);
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&columns).map_err(protocol)?;
    for r in records {
        out.write_record(columns.iter().map(|c| cell(r.get(c.as_str()))))
            .map_err(protocol)?;
    }
    let bytes = out.into_inner().map_err(|e| ApiError::Protocol {
        system: SYSTEM,
        message: format!("bulk upload file: {e}"),
    })?;
    String::from_utf8(bytes).map_err(|e| ApiError::Protocol {
        system: SYSTEM,
        message: format!("bulk upload file: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_one_csv_with_every_column() {
        let records: Vec<Fields> = [
            json!({"Name": "A, Inc.", "Gainsight_Company_Id__c": "G1", "AnnualRevenue": 5}),
            json!({"Name": "B", "Gainsight_Company_Id__c": "G2", "Phone": null}),
        ]
        .into_iter()
        .filter_map(|v| v.as_object().cloned())
        .collect();
        assert_eq!(
            to_csv(&records).unwrap(),
            "AnnualRevenue,Gainsight_Company_Id__c,Name,Phone\n5,G1,\"A, Inc.\",\nB_ROW\n"
                .replace("B_ROW", ",G2,B,#N/A")
        );
    }

    #[test]
    fn a_result_file_keeps_only_the_columns_asked_for() {
        let file =
            b"sf__Id,sf__Created,Name,Gainsight_Company_Id__c\n001A,true,Acme,G1\n001B,false,,G2\n";
        let rows =
            picked_columns(file, ["Gainsight_Company_Id__c", "sf__Id", "sf__Error"]).unwrap();
        let some = |v: &str| Some(v.to_string());
        assert_eq!(
            rows,
            [
                [some("G1"), some("001A"), None],
                [some("G2"), some("001B"), None]
            ]
        );
        assert!(picked_columns(b"a,b\n1\n", ["a"]).is_err(), "a short row");
    }

    #[test]
    fn a_query_set_is_parsed_a_row_at_a_time_and_a_malformed_row_fails_in_its_place() {
        let set = b"Id,Name\n001A,Acme\n001B\n001C,\n".to_vec();
        let rows: Vec<Result<Fields, ApiError>> = query_rows(set).unwrap().collect();
        assert_eq!(rows.len(), 3);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(
            (&first["Id"], &first["Name"]),
            (&json!("001A"), &json!("Acme"))
        );
        assert!(
            matches!(&rows[1], Err(ApiError::Protocol { message, .. }) if message.contains("bulk result file")),
            "{:?}",
            rows[1]
        );
        assert_eq!(
            rows[2].as_ref().unwrap()["Name"],
            Value::Null,
            "an empty cell"
        );
    }
}
