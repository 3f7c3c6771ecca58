//! Bulk API 2.0 ingest: create a job (`POST /jobs/ingest`), upload its CSV (`PUT
//! /jobs/ingest/{id}/batches`), close it (`PATCH` state `UploadComplete`), poll its state (`GET
//! /jobs/ingest/{id}`: `UploadComplete`, then `InProgress`, then `JobComplete`), and read
//! `successfulResults` (`sf__Id`, `sf__Created`, the row), `failedResults` (`sf__Id`, `sf__Error`,
//! the row) and `unprocessedrecords`. Rows are applied with the same checks as sObject
//! Collections, 200 at a time, and a row's outcome does not depend on the others.

// An axum Response is the natural early answer of each step of a handler.
#![allow(clippy::result_large_err)]

use super::collections::{apply, begin, keep, Op};
use super::*;

/// One ingest job.
#[derive(Clone, Debug)]
pub(super) struct IngestJob {
    id: String,
    object: String,
    operation: String,
    external_id_field: Option<String>,
    state: String,
    csv: String,
    /// Polls answered since the upload completed (the job finishes on the second, or
    /// `slow_polls` later).
    polls: u32,
    slow_polls: u32,
    successful: Vec<(String, bool, Record)>,
    failed: Vec<(String, String, Record)>,
    /// The header of the uploaded CSV, for the result files.
    columns: Vec<String>,
    /// Rows never processed because the job failed first.
    unprocessed: Vec<Record>,
    /// Why the job failed.
    error_message: String,
    /// Change events of the rows written, put on the bus once the job's state is answered.
    events: Vec<(String, Value)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateJob {
    object: String,
    operation: String,
    #[serde(default)]
    external_id_field_name: Option<String>,
}

pub(super) async fn create_job(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Json(body): Json<CreateJob>,
) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let mut org = lock(&org_arc);
    let used = org.used();
    if !org.objects.contains_key(body.object.as_str()) {
        let message = format!("sObject type '{}' is not supported.", body.object);
        return sf_error(StatusCode::BAD_REQUEST, "INVALIDENTITY", &message, used);
    }
    if !["insert", "update", "upsert"].contains(&body.operation.as_str()) {
        let message = format!("Invalid operation: {}", body.operation);
        return sf_error(StatusCode::BAD_REQUEST, "INVALIDJOB", &message, used);
    }
    org.seq += 1;
    org.stats.bulk_jobs += 1;
    let id = format!("7505g00000{:08}AAA", org.seq);
    let slow_polls = take_bulk_slowness(&mut org);
    let job = IngestJob {
        id: id.clone(),
        object: body.object,
        operation: body.operation,
        external_id_field: body.external_id_field_name,
        state: "Open".into(),
        csv: String::new(),
        polls: 0,
        slow_polls,
        successful: Vec::new(),
        failed: Vec::new(),
        columns: Vec::new(),
        unprocessed: Vec::new(),
        error_message: String::new(),
        events: Vec::new(),
    };
    let info = info(&job);
    org.ingest.insert(id, job);
    answer(StatusCode::OK, info, used)
}

pub(super) async fn upload(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((_ver, id)): Path<(String, String)>,
    body: String,
) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let mut org = lock(&org_arc);
    let used = org.used();
    let Some(job) = org.ingest.get_mut(&id) else {
        return not_found(used);
    };
    if job.state != "Open" {
        let message = format!("Job {id} is not open for uploads (state {})", job.state);
        return sf_error(StatusCode::CONFLICT, "INVALIDJOBSTATE", &message, used);
    }
    job.csv.push_str(&body);
    with_usage(StatusCode::CREATED.into_response(), used)
}

#[derive(Deserialize)]
pub(super) struct SetState {
    state: String,
}

pub(super) async fn set_state(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((_ver, id)): Path<(String, String)>,
    Json(body): Json<SetState>,
) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let mut org = lock(&org_arc);
    let used = org.used();
    let Some(job) = org.ingest.get_mut(&id) else {
        return not_found(used);
    };
    if !["UploadComplete", "Aborted"].contains(&body.state.as_str()) || job.state != "Open" {
        let message = format!(
            "Cannot change job {id} from {} to {}",
            job.state, body.state
        );
        return sf_error(StatusCode::BAD_REQUEST, "INVALIDJOBSTATE", &message, used);
    }
    job.state = body.state;
    let info = info(job);
    answer(StatusCode::OK, info, used)
}

pub(super) async fn job_info(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((_ver, id)): Path<(String, String)>,
) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let mut org = lock(&org_arc);
    org.stats.bulk_state_polls += 1;
    let used = org.used();
    let Some(job) = org.ingest.get(&id).cloned() else {
        return not_found(used);
    };
    let job = match job.state.as_str() {
        "UploadComplete" | "InProgress" if job.polls == 0 => {
            let mut job = job;
            job.state = "InProgress".into();
            job.polls = 1;
            job
        }
        "InProgress" if job.polls <= job.slow_polls => {
            let mut job = job;
            job.polls += 1;
            job
        }
        "InProgress" => process(&mut org, job),
        _ => job,
    };
    let mut job = job;
    let events = std::mem::take(&mut job.events);
    let info = info(&job);
    org.ingest.insert(id, job);
    drop(org);
    relay::spawn_events(&org_arc, events);
    answer(StatusCode::OK, info, used)
}

/// How many more polls a job created now stays in progress for (an injected fault, counted
/// down).
fn take_bulk_slowness(org: &mut Org) -> u32 {
    let Some(Fault::BulkSlow { polls, times }) = org.faults.front_mut() else {
        return 0;
    };
    let polls = *polls;
    *times = times.saturating_sub(1);
    if *times == 0 {
        org.faults.pop_front();
    }
    polls
}

/// Whether an injected fault fails this job after some rows (and counts it down): how many.
fn take_bulk_failure(org: &mut Org) -> Option<usize> {
    let Some(Fault::BulkFailAfter { rows, times }) = org.faults.front_mut() else {
        return None;
    };
    let rows = *rows;
    *times = times.saturating_sub(1);
    if *times == 0 {
        org.faults.pop_front();
    }
    Some(rows)
}

/// Applies every row of the job's CSV; the job becomes `JobComplete` (or `Failed` when the CSV
/// cannot be read, or when an injected fault stops it partway: the rest is left unprocessed).
fn process(org: &mut Org, mut job: IngestJob) -> IngestJob {
    let mut reader = csv::ReaderBuilder::new().from_reader(job.csv.as_bytes());
    let columns: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(_) => {
            job.state = "Failed".into();
            return job;
        }
    };
    let mut rows: Vec<Record> = reader
        .records()
        .filter_map(Result::ok)
        .map(|row| typed_row(org, &job.object, &columns, &row))
        .collect();
    let failure = take_bulk_failure(org);
    if let Some(after) = failure {
        job.unprocessed = rows.split_off(after.min(rows.len()));
        job.error_message = "InternalServerError : the job failed while processing".into();
    }
    let op = match (job.operation.as_str(), &job.external_id_field) {
        ("upsert", Some(field)) => Op::Upsert {
            object: job.object.clone(),
            ext_field: field.clone(),
        },
        ("update", _) => Op::Update,
        _ => Op::Create,
    };
    // One pass over every row: each is checked and applied on its own, as in a collection.
    for chunk in rows.chunks(rows.len().max(1)) {
        let values: Vec<Value> = chunk
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.insert("attributes".into(), json!({ "type": job.object }));
                Value::Object(r)
            })
            .collect();
        let applied = apply(org, &op, &job.object, &values, false);
        let (results, _, events) = keep(org, &job.object, applied);
        job.events.extend(events);
        for (row, result) in chunk.iter().zip(results) {
            if result["success"] == json!(true) {
                let id = result["id"].as_str().unwrap_or_default().to_string();
                job.successful
                    .push((id, result["created"] == json!(true), row.clone()));
            } else {
                let e = &result["errors"][0];
                let error = format!("{}:{}", text(&e["statusCode"]), text(&e["message"]));
                job.failed.push((String::new(), error, row.clone()));
            }
        }
    }
    job.columns = columns;
    job.state = if failure.is_some() {
        "Failed".into()
    } else {
        "JobComplete".into()
    };
    job
}

/// A CSV row as JSON values of the fields' types (empty cells are left out; `#N/A` is null).
fn typed_row(org: &Org, object: &str, columns: &[String], row: &csv::StringRecord) -> Record {
    let sobject = org.objects.get(object);
    let mut record = Record::new();
    for (name, cell) in columns.iter().zip(row.iter()) {
        if cell.is_empty() {
            continue;
        }
        let kind = sobject.and_then(|o| o.field(name)).map(|f| f.kind);
        let value = match (cell, kind) {
            ("#N/A", _) => Value::Null,
            (c, Some(FieldType::Currency | FieldType::Double)) => {
                c.parse::<f64>().map(|n| json!(n)).unwrap_or(json!(c))
            }
            (c, Some(FieldType::Int)) => c.parse::<i64>().map(|n| json!(n)).unwrap_or(json!(c)),
            (c, Some(FieldType::Boolean)) => json!(c.eq_ignore_ascii_case("true")),
            (c, _) => json!(c),
        };
        record.insert(name.clone(), value);
    }
    record
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// `successfulResults`, `failedResults` or `unprocessedrecords` of a job, as CSV.
pub(super) async fn results(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((_ver, id, which)): Path<(String, String, String)>,
) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let org = lock(&org_arc);
    let used = org.used();
    let Some(job) = org.ingest.get(&id) else {
        return not_found(used);
    };
    let Some(body) = result_file(job, &which) else {
        return not_found(used);
    };
    with_usage(
        (StatusCode::OK, [("content-type", "text/csv")], body).into_response(),
        used,
    )
}

/// The CSV of one of a job's result files, if `which` names one: Salesforce's own columns, then
/// the row as uploaded.
fn result_file(job: &IngestJob, which: &str) -> Option<String> {
    let (fixed, rows): ([&str; 2], Vec<([String; 2], &Record)>) = match which {
        "successfulResults" => (
            ["sf__Id", "sf__Created"],
            job.successful
                .iter()
                .map(|(id, created, row)| ([id.clone(), created.to_string()], row))
                .collect(),
        ),
        "failedResults" => (
            ["sf__Id", "sf__Error"],
            job.failed
                .iter()
                .map(|(id, error, row)| ([id.clone(), error.clone()], row))
                .collect(),
        ),
        "unprocessedrecords" => {
            let rows: Vec<([String; 2], &Record)> = job
                .unprocessed
                .iter()
                .map(|row| ([String::new(), String::new()], row))
                .collect();
            return csv_text(&[], &job.columns, &rows);
        }
        _ => return None,
    };
    csv_text(&fixed, &job.columns, &rows)
}

/// A CSV of `fixed` columns then `columns`, one line per row.
fn csv_text(fixed: &[&str], columns: &[String], rows: &[([String; 2], &Record)]) -> Option<String> {
    let cell = |r: &Record, c: &str| match r.get(c) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = fixed
        .iter()
        .map(|s| s.to_string())
        .chain(columns.iter().cloned());
    out.write_record(header).ok()?;
    for (values, row) in rows {
        let line = values
            .iter()
            .take(fixed.len())
            .cloned()
            .chain(columns.iter().map(|c| cell(row, c)));
        out.write_record(line).ok()?;
    }
    String::from_utf8(out.into_inner().ok()?).ok()
}

fn info(job: &IngestJob) -> Value {
    json!({
        "id": job.id,
        "operation": job.operation,
        "object": job.object,
        "externalIdFieldName": job.external_id_field,
        "state": job.state,
        "contentType": "CSV",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
        "apiVersion": 62.0,
        "numberRecordsProcessed": job.successful.len() + job.failed.len(),
        "numberRecordsFailed": job.failed.len(),
        "errorMessage": job.error_message,
    })
}
