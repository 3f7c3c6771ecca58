//! Bulk API 2.0 ingest for large loads: one job per load (create, upload the CSV, close), its
//! state polled with backoff, then its results read back and matched to the records by external
//! ID, or by `Id` for an update (row order is not guaranteed). A load of N records costs four calls plus the polls:
//! `failedResults` is read only when the job reports failures. Bulk API 2.0 query for large
//! reads: one job, polled the same way, then its CSV results set by set by `Sforce-Locator`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::http::with_retries;
use super::salesforce::{Body, SalesforceClient};
use crate::domain::Fields;
use crate::ports::{ApiError, BulkReadJob, BulkSet, RecordResult, SfSelect};

const SYSTEM: &str = "Salesforce";
/// First wait between state polls; it doubles up to `MAX_POLL_WAIT`.
const FIRST_POLL_WAIT: Duration = Duration::from_millis(200);
const MAX_POLL_WAIT: Duration = Duration::from_secs(10);
/// Polls before giving up on a job (about 15 minutes at the longest wait).
const MAX_POLLS: u32 = 100;

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
    /// appears in neither result file was not processed and is reported retryable.
    pub async fn ingest_job(
        &self,
        object: &str,
        ingest: Ingest<'_>,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        let key_field = ingest.key_field();
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
        let close = json!({"state": "UploadComplete"});
        let path = format!("jobs/ingest/{id}");
        self.json(reqwest::Method::PATCH, &path, Some(&close))
            .await?;
        let done = self.wait(&path).await?;
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

    /// Each processed record's result, by its external ID: the successful ones, and the failed
    /// ones when the job reports any.
    async fn outcomes(
        &self,
        path: &str,
        done: &Value,
        ext_field: &str,
    ) -> Result<HashMap<String, RecordResult>, ApiError> {
        let mut outcome: HashMap<String, RecordResult> = HashMap::new();
        let ok = self.csv(&format!("{path}/successfulResults")).await?;
        for row in ok {
            let success = RecordResult {
                id: row.get("sf__Id").cloned(),
                success: true,
                created: row.get("sf__Created").is_some_and(|c| c == "true"),
                errors: Vec::new(),
                retryable: false,
                gone: false,
            };
            outcome.insert(row.get(ext_field).cloned().unwrap_or_default(), success);
        }
        if done["numberRecordsFailed"].as_u64().unwrap_or(0) > 0 {
            for row in self.csv(&format!("{path}/failedResults")).await? {
                let error = row.get("sf__Error").cloned().unwrap_or_default();
                let failure = RecordResult {
                    id: None,
                    success: false,
                    created: false,
                    errors: vec![error.replacen(':', ": ", 1)],
                    retryable: false,
                    gone: false,
                };
                outcome.insert(row.get(ext_field).cloned().unwrap_or_default(), failure);
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
        let rows = self.csv(&format!("{path}/unprocessedrecords")).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let result = RecordResult {
                    id: None,
                    success: false,
                    created: false,
                    errors: vec![why.clone()],
                    retryable: true,
                    gone: false,
                };
                (row.get(ext_field).cloned().unwrap_or_default(), result)
            })
            .collect())
    }

    /// Polls the job until it has ended (complete, failed or aborted), waiting longer each time.
    async fn wait(&self, path: &str) -> Result<Value, ApiError> {
        let mut pause = FIRST_POLL_WAIT;
        for _ in 0..MAX_POLLS {
            let job = self.json(reqwest::Method::GET, path, None).await?;
            match job["state"].as_str().unwrap_or_default() {
                "JobComplete" | "Failed" | "Aborted" => return Ok(job),
                _ => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL_WAIT);
        }
        Err(ApiError::Timeout {
            system: SYSTEM,
            message: format!("bulk job {path} not complete after {MAX_POLLS} polls"),
        })
    }

    /// A result file's rows, by column.
    async fn csv(&self, path: &str) -> Result<Vec<HashMap<String, String>>, ApiError> {
        let bytes = with_retries(|| self.send(reqwest::Method::GET, path, None)).await?;
        csv_rows(&bytes, str::to_string)
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
            let done = self.wait(&path).await?;
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
            rows: query_rows(&bytes)?,
            next,
        })
    }
}

/// A query job's CSV set as records: every value text, an empty cell null.
fn query_rows(bytes: &[u8]) -> Result<Vec<Fields>, ApiError> {
    csv_rows(bytes, |v| {
        if v.is_empty() {
            Value::Null
        } else {
            Value::String(v.to_string())
        }
    })
}

/// The rows of a CSV answer, each cell under its column's name as `cell` makes it.
fn csv_rows<T, R: FromIterator<(String, T)>>(
    bytes: &[u8],
    cell: impl Fn(&str) -> T,
) -> Result<Vec<R>, ApiError> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().cloned().map_err(protocol)?;
    reader
        .records()
        .map(|row| {
            let row = row.map_err(protocol)?;
            Ok((headers.iter().zip(row.iter()))
                .map(|(h, v)| (h.to_string(), cell(v)))
                .collect())
        })
        .collect()
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

/// The records as one CSV: a column for every field any record has.
fn to_csv(records: &[Fields]) -> Result<String, ApiError> {
    let mut columns: Vec<&String> = records.iter().flat_map(|r| r.keys()).collect();
    columns.sort();
    columns.dedup();
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
}
