//! The sObject Basic Information and sObject Rows resources: create one record
//! (`POST /sobjects/{object}`), retrieve, update and delete one by Id (`/sobjects/{object}/{id}`),
//! upsert one on an external ID (`PATCH /sobjects/{object}/{field}/{value}`); plus the versions
//! list (`GET /services/data/`), `GET /limits`, and Salesforce's JSON 404 for any other path.
//! Files go up as a ContentVersion with base64 `VersionData` (at most 37.5 MB of base64, as
//! Salesforce limits a non-multipart blob upload).

// An axum Response is the natural early answer of each step of a handler.
#![allow(clippy::result_large_err)]

use super::collections::{apply, begin, keep, Op};
use super::*;

/// The largest JSON body accepted: 37.5 MB of base64 plus the other fields.
pub(super) const MAX_BODY: usize = 40 * 1024 * 1024;
const MAX_BASE64: usize = 37_500_000;
/// The API versions the org answers, newest last.
const VERSIONS: [(&str, &str); 3] = [
    ("60.0", "Spring '24"),
    ("61.0", "Summer '24"),
    ("62.0", "Winter '25"),
];

type Answer = Result<Response, Response>;

/// `POST /sobjects/{object}`: 201 `{id, success, errors}`.
pub(super) async fn create_record(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((_ver, object)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let op = |org: &mut Org, record: Record, used: u64| {
        let too_big = record
            .get("VersionData")
            .and_then(Value::as_str)
            .is_some_and(|d| d.len() > MAX_BASE64);
        if too_big {
            let message =
                "VersionData: a non-multipart upload is limited to 37.5 MB of base64-encoded data";
            return Err(sf_error(
                StatusCode::BAD_REQUEST,
                "STRING_TOO_LONG",
                message,
                used,
            ));
        }
        org.stats.create_calls += 1;
        Ok((Op::Create, record))
    };
    write_one(&org_arc, &headers, &object, &body, op).await
}

/// `PATCH /sobjects/{object}/{id}`: 204, or 404 when there is no such record.
pub(super) async fn update_record(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((_ver, object, id)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let op = |org: &mut Org, mut record: Record, used: u64| {
        find(org, &object, &id).ok_or_else(|| not_found(used))?;
        org.stats.update_calls += 1;
        record.insert("Id".into(), Value::String(id.clone()));
        Ok((Op::Update, record))
    };
    write_one(&org_arc, &headers, &object, &body, op).await
}

/// `PATCH /sobjects/{object}/{field}/{value}`: 201 when created, 200 when updated.
pub(super) async fn upsert_record(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((_ver, object, field, value)): Path<(String, String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let op = |org: &mut Org, mut record: Record, _used: u64| {
        org.stats.upsert_calls += 1;
        record.insert(field.clone(), Value::String(value.clone()));
        let upsert = Op::Upsert {
            object: object.clone(),
            ext_field: field.clone(),
        };
        Ok((upsert, record))
    };
    write_one(&org_arc, &headers, &object, &body, op).await
}

/// One record written through the collections' checks; the answer in the sObject Rows shapes.
async fn write_one(
    org_arc: &Arc<Mutex<Org>>,
    headers: &HeaderMap,
    object: &str,
    body: &[u8],
    op: impl FnOnce(&mut Org, Record, u64) -> Result<(Op, Record), Response>,
) -> Response {
    if let Err(resp) = begin(org_arc, headers).await {
        return resp;
    }
    let mut org = lock(org_arc);
    let used = org.used();
    let mut notices = None;
    let answer = (|| -> Answer {
        let record = parse_record(&org, object, body, used)?;
        let (op, mut record) = op(&mut org, record, used)?;
        record.insert("attributes".into(), json!({ "type": object }));
        let applied = apply(&mut org, &op, object, &[Value::Object(record)], false);
        if applied.any_failed {
            let result = applied.results.first().cloned().unwrap_or(Value::Null);
            applied.undo(&mut org);
            return Err(save_failed(&result, used));
        }
        let (results, sends, events) = keep(&mut org, object, applied);
        notices = Some((sends, events));
        let result = results.into_iter().next().unwrap_or(Value::Null);
        Ok(saved(&op, &result, used))
    })();
    // The org's lock is released before the notices go out: sending them takes it again.
    drop(org);
    if let Some((sends, events)) = notices {
        spawn_outbound(org_arc, sends);
        relay::spawn_events(org_arc, events);
    }
    answer.unwrap_or_else(|e| e)
}

/// The request body as one record of a known object, or Salesforce's error.
fn parse_record(org: &Org, object: &str, body: &[u8], used: u64) -> Result<Record, Response> {
    if !org.objects.contains_key(object) {
        return Err(not_found(used));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(record)) => Ok(record),
        _ => Err(sf_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "The request body is not a JSON object",
            used,
        )),
    }
}

/// A write's success in the shape of its resource.
fn saved(op: &Op, result: &Value, used: u64) -> Response {
    let created = result["created"] == json!(true);
    let body = json!({ "id": result["id"], "success": true, "errors": [], "created": created });
    match op {
        Op::Update => with_usage(StatusCode::NO_CONTENT.into_response(), used),
        Op::Create => answer(StatusCode::CREATED, body, used),
        Op::Upsert { .. } if created => answer(StatusCode::CREATED, body, used),
        Op::Upsert { .. } => answer(StatusCode::OK, body, used),
    }
}

/// A refused write: 400 with `[{message, errorCode, fields}]`.
fn save_failed(result: &Value, used: u64) -> Response {
    let error = &result["errors"][0];
    let body = json!([{ "message": error["message"], "errorCode": error["statusCode"], "fields": error["fields"] }]);
    answer(StatusCode::BAD_REQUEST, body, used)
}

/// `GET /sobjects/{object}/{id}[?fields=A,B]`: the record with its `attributes`.
pub(super) async fn retrieve_record(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((ver, object, id)): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let org = lock(&org_arc);
    let used = org.used();
    let Some(record) = find(&org, &object, &id) else {
        return not_found(used);
    };
    let wanted: Option<Vec<&str>> = params
        .get("fields")
        .map(|f| f.split(',').map(str::trim).collect());
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({ "type": object, "url": format!("/services/data/{ver}/sobjects/{object}/{id}") }),
    );
    for (k, v) in record {
        if wanted
            .as_ref()
            .is_none_or(|w| w.iter().any(|f| f.eq_ignore_ascii_case(k)))
        {
            out.insert(k.clone(), v.clone());
        }
    }
    answer(StatusCode::OK, Value::Object(out), used)
}

/// `GET /sobjects/{object}/{field}/{value}`: the record whose external ID `field` is `value`.
pub(super) async fn retrieve_by_external_id(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((ver, object, field, value)): Path<(String, String, String, String)>,
    query: Query<HashMap<String, String>>,
) -> Response {
    let id = {
        let org = lock(&org_arc);
        org.objects.get(object.as_str()).and_then(|o| {
            o.records
                .iter()
                .find(|r| r.get(&field).and_then(Value::as_str) == Some(value.as_str()))
                .and_then(|r| r.get("Id").and_then(Value::as_str).map(str::to_string))
        })
    };
    // Unknown values fall through to the Id lookup, which answers Salesforce's 404.
    let id = id.unwrap_or(value);
    retrieve_record(State(org_arc), headers, Path((ver, object, id)), query).await
}

/// `DELETE /sobjects/{object}/{id}`: 204, or 404.
pub(super) async fn delete_record(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((_ver, object, id)): Path<(String, String, String)>,
) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let used = lock(&org_arc).used();
    if delete_records(&org_arc, &object, &[id], Author::IntegrationUser) == 0 {
        return not_found(used);
    }
    with_usage(StatusCode::NO_CONTENT.into_response(), used)
}

/// `GET /services/data/`: the API versions, no session needed.
pub(super) async fn versions() -> Response {
    let list: Vec<Value> = VERSIONS
        .iter()
        .map(|(v, label)| json!({ "version": v, "label": label, "url": format!("/services/data/v{v}") }))
        .collect();
    (StatusCode::OK, Json(Value::Array(list))).into_response()
}

/// `GET /limits`: the daily API allowance and what is left of it.
pub(super) async fn limits(State(org_arc): OrgState, headers: HeaderMap) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let mut org = lock(&org_arc);
    org.stats.limits_calls += 1;
    let used = org.used();
    let body = json!({
        "DailyApiRequests": { "Max": DAILY_LIMIT, "Remaining": DAILY_LIMIT.saturating_sub(used) },
        "DailyBulkV2QueryJobs": { "Max": 10_000, "Remaining": 10_000 },
        "DailyBulkApiBatches": { "Max": 15_000, "Remaining": 15_000 },
    });
    answer(StatusCode::OK, body, used)
}

/// Any other path: Salesforce's JSON 404.
pub(super) async fn no_such_resource() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!([{ "errorCode": "NOT_FOUND", "message": "The requested resource does not exist" }])),
    )
        .into_response()
}

fn find<'a>(org: &'a Org, object: &str, id: &str) -> Option<&'a Record> {
    org.objects
        .get(object)?
        .records
        .iter()
        .find(|r| r.get("Id").and_then(Value::as_str) == Some(id))
}
