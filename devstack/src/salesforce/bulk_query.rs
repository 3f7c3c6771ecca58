//! Bulk API 2.0 query: create a job (`POST /jobs/query` with `operation` `query` or `queryAll`
//! and a SOQL `query`: answered `UploadComplete`), poll its state (`GET /jobs/query/{id}`:
//! `InProgress`, then `JobComplete` with `numberRecordsProcessed`), and read its results as CSV
//! (`GET /jobs/query/{id}/results?locator=&maxRecords=`), set after set: each answer carries
//! `Sforce-NumberOfRecords` and `Sforce-Locator`, the locator of the next set or `null` after the
//! last. Results asked for before the job completes are a 412 `JOB_NOT_COMPLETE`.

use super::*;

/// Rows a results set holds when `maxRecords` is not given. Salesforce sizes its sets by bytes
/// and documents no row count; this is the emulator's choice.
const DEFAULT_SET: usize = 50_000;

/// One query job: the rows its query selected when it was created.
#[derive(Clone, Debug)]
pub(super) struct QueryJob {
    id: String,
    operation: String,
    object: String,
    state: String,
    /// The SELECT list, the header of every results set.
    columns: Vec<String>,
    rows: Vec<Record>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateQuery {
    operation: String,
    query: String,
    #[serde(default)]
    content_type: Option<String>,
}

pub(super) async fn create(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Json(body): Json<CreateQuery>,
) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let mut org = lock(&org_arc);
    let used = org.used();
    let endpoint = match body.operation.as_str() {
        "query" => query::Endpoint::Query,
        "queryAll" => query::Endpoint::QueryAll,
        other => {
            let message = format!("Invalid operation: {other}; use query or queryAll");
            return sf_error(StatusCode::BAD_REQUEST, "INVALIDJOB", &message, used);
        }
    };
    if body.content_type.as_deref().is_some_and(|c| c != "CSV") {
        let message = "contentType must be CSV";
        return sf_error(StatusCode::BAD_REQUEST, "INVALIDJOB", message, used);
    }
    let (columns, rows, object) = match select(&org, &body.query, endpoint) {
        Ok(selected) => selected,
        Err((code, message)) => return sf_error(StatusCode::BAD_REQUEST, code, &message, used),
    };
    org.seq += 1;
    org.stats.bulk_query_jobs += 1;
    let job = QueryJob {
        id: format!("7505g00001{:08}AAA", org.seq),
        operation: body.operation,
        object,
        state: "UploadComplete".into(),
        columns,
        rows,
    };
    let info = info(&job);
    org.query_jobs.insert(job.id.clone(), job);
    answer(StatusCode::OK, info, used)
}

/// The SELECT list, the rows and the object of a query.
type Selected = (Vec<String>, Vec<Record>, String);

/// What `soql` selects over what `endpoint` sees, or the error code and message.
fn select(
    org: &Org,
    soql: &str,
    endpoint: query::Endpoint,
) -> Result<Selected, (&'static str, String)> {
    let parsed = soql::parse(soql).map_err(|m| ("MALFORMED_QUERY", m))?;
    let Some(sobject) = org.objects.get(parsed.from.as_str()) else {
        let message = format!("sObject type '{}' is not supported.", parsed.from);
        return Err(("INVALID_TYPE", message));
    };
    let all: Vec<Record>;
    let records = match endpoint {
        query::Endpoint::Query => &sobject.records,
        query::Endpoint::QueryAll => {
            all = (sobject.records.iter())
                .chain(sobject.deleted.values())
                .cloned()
                .collect();
            &all
        }
    };
    let rows = soql::run(&parsed, records, |f| sobject.field(f).map(|d| d.kind))
        .map_err(|m| ("INVALID_FIELD", m))?;
    Ok((parsed.fields.clone(), rows, parsed.from))
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
    let Some(job) = org.query_jobs.get_mut(&id) else {
        return not_found(used);
    };
    // A job is seen in progress once, then complete.
    job.state = match job.state.as_str() {
        "UploadComplete" => "InProgress",
        _ => "JobComplete",
    }
    .into();
    let info = info(job);
    answer(StatusCode::OK, info, used)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResultsParams {
    locator: Option<String>,
    max_records: Option<usize>,
}

pub(super) async fn results(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((_ver, id)): Path<(String, String)>,
    Query(params): Query<ResultsParams>,
) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let org = lock(&org_arc);
    let used = org.used();
    let Some(job) = org.query_jobs.get(&id) else {
        return not_found(used);
    };
    if job.state != "JobComplete" {
        let message = format!(
            "can only download query results of successfully completed bulk job with status: JOB_COMPLETE. Current status: {}",
            job.state
        );
        return sf_error(
            StatusCode::PRECONDITION_FAILED,
            "JOB_NOT_COMPLETE",
            &message,
            used,
        );
    }
    let start = match params.locator.as_deref().map(decode_locator) {
        None => 0,
        Some(Some(start)) if start <= job.rows.len() => start,
        Some(_) => {
            let message = "invalid locator";
            return sf_error(StatusCode::BAD_REQUEST, "INVALIDLOCATOR", message, used);
        }
    };
    let size = params.max_records.unwrap_or(DEFAULT_SET).max(1);
    let end = (start + size).min(job.rows.len());
    let Some(body) = csv_set(&job.columns, &job.rows[start..end]) else {
        let message = "the results could not be written as CSV";
        return sf_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            message,
            used,
        );
    };
    let next = (end < job.rows.len()).then(|| encode_locator(end));
    let mut resp = (StatusCode::OK, [("content-type", "text/csv")], body).into_response();
    let h = resp.headers_mut();
    h.insert("sforce-numberofrecords", HeaderValue::from(end - start));
    let locator = next.unwrap_or_else(|| "null".into());
    if let Ok(v) = HeaderValue::from_str(&locator) {
        h.insert("sforce-locator", v);
    }
    with_usage(resp, used)
}

/// A locator is opaque to clients; here it is the next row's position, in base 36.
fn encode_locator(position: usize) -> String {
    let mut n = position;
    let mut digits = Vec::new();
    loop {
        digits.push(std::char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect::<String>().to_uppercase()
}

fn decode_locator(locator: &str) -> Option<usize> {
    usize::from_str_radix(locator, 36).ok()
}

/// Rows as CSV under `columns`: a null is an empty field, every value quoted as Salesforce does.
fn csv_set(columns: &[String], rows: &[Record]) -> Option<String> {
    let mut out = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    out.write_record(columns).ok()?;
    for row in rows {
        let cells = columns.iter().map(|c| {
            let value = (row.iter())
                .find(|(k, _)| k.eq_ignore_ascii_case(c))
                .map(|(_, v)| v);
            match value {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            }
        });
        out.write_record(cells).ok()?;
    }
    String::from_utf8(out.into_inner().ok()?).ok()
}

fn info(job: &QueryJob) -> Value {
    let done = job.state == "JobComplete";
    json!({
        "id": job.id,
        "operation": job.operation,
        "object": job.object,
        "createdById": "0055g000000persAAA",
        "state": job.state,
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": 62.0,
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
        "numberRecordsProcessed": if done { job.rows.len() } else { 0 },
        "retries": 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_round_trip() {
        for n in [0, 1, 35, 36, 50_000, 1_000_000] {
            assert_eq!(decode_locator(&encode_locator(n)), Some(n));
        }
        assert_eq!(decode_locator("not a locator!"), None);
    }

    #[test]
    fn a_set_quotes_values_and_leaves_nulls_empty() {
        let row: Record = serde_json::from_value(
            json!({"Id": "001A", "Name": "A, \"B\"", "AnnualRevenue": 12.5, "Phone": null}),
        )
        .unwrap();
        let cols = ["Id", "Name", "AnnualRevenue", "Phone"].map(String::from);
        let text = csv_set(&cols, &[row]).unwrap();
        assert_eq!(
            text,
            "\"Id\",\"Name\",\"AnnualRevenue\",\"Phone\"\n\"001A\",\"A, \"\"B\"\"\",\"12.5\",\"\"\n"
        );
    }
}
