//! One record created through `POST /services/data/vXX.X/sobjects/{object}`: how files are
//! uploaded as a ContentVersion with base64 `VersionData` in JSON (at most 37.5 MB of base64, as
//! Salesforce limits a non-multipart blob upload), linked to a record by `FirstPublishLocationId`.

use super::collections::{apply, begin, Op};
use super::*;

/// The largest JSON body accepted: 37.5 MB of base64 plus the other fields.
pub(super) const MAX_BODY: usize = 40 * 1024 * 1024;
const MAX_BASE64: usize = 37_500_000;

pub(super) async fn create_record(
    State(org_arc): OrgState,
    headers: HeaderMap,
    Path((_ver, object)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let mut org = lock(&org_arc);
    org.stats.create_calls += 1;
    let used = org.stats.api_calls;
    let Ok(Value::Object(mut record)) = serde_json::from_slice::<Value>(&body) else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "The request body is not a JSON object",
            used,
        );
    };
    if !org.objects.contains_key(object.as_str()) {
        let message = format!("The requested resource does not exist: sobjects/{object}");
        return sf_error(StatusCode::NOT_FOUND, "NOT_FOUND", &message, used);
    }
    let too_big = record
        .get("VersionData")
        .and_then(Value::as_str)
        .is_some_and(|d| d.len() > MAX_BASE64);
    if too_big {
        let message =
            "VersionData: a non-multipart upload is limited to 37.5 MB of base64-encoded data";
        return sf_error(StatusCode::BAD_REQUEST, "STRING_TOO_LONG", message, used);
    }
    record.insert("attributes".into(), json!({ "type": object }));
    let applied = apply(
        &mut org,
        &Op::Create,
        &object,
        &[Value::Object(record)],
        false,
    );
    let result = applied.results.into_iter().next().unwrap_or(Value::Null);
    if applied.any_failed {
        let error = &result["errors"][0];
        let body = json!([{ "message": error["message"], "errorCode": error["statusCode"], "fields": error["fields"] }]);
        return answer(StatusCode::BAD_REQUEST, body, used);
    }
    if let Some(o) = org.objects.get_mut(object.as_str()) {
        o.records = applied.staged;
    }
    org.stats.records_created += 1;
    let body = json!({ "id": result["id"], "success": true, "errors": [] });
    answer(StatusCode::CREATED, body, used)
}

/// A JSON answer with the org's API usage header.
fn answer(status: StatusCode, body: Value, used: u64) -> Response {
    let mut resp = (status, Json(body)).into_response();
    let (k, v) = limit_header(used);
    resp.headers_mut().insert(k, v);
    resp
}
