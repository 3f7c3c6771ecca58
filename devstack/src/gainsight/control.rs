//! The object describe, and the emulator's own endpoints: dump, call counts, faults and rules.

use super::*;

/// The Data Management describe of one object: its fields with type, requiredness and whether
/// they can be written.
pub(super) async fn describe(
    State(tenant): TenantState,
    headers: HeaderMap,
    Path(object): Path<String>,
) -> Response {
    if let Err(r) = begin(&tenant, &headers) {
        return r;
    }
    let t = lock(&tenant);
    let Some((fields, _)) = t.objects.get(object.as_str()) else {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "GS_OBJECT_NOT_FOUND",
            &format!("Object {object} does not exist"),
        );
    };
    let fields: Vec<Value> = fields
        .iter()
        .map(|f| {
            json!({
                "fieldName": f.name,
                "label": f.name,
                "dataType": f.kind,
                "required": f.required,
                "readOnly": f.system,
                "formula": false,
                "richText": false,
            })
        })
        .collect();
    envelope_ok(json!([{ "objectName": object, "label": object, "fields": fields }]))
}

pub(super) async fn dump(State(tenant): TenantState, Path(object): Path<String>) -> Response {
    Json(
        lock(&tenant)
            .objects
            .get(object.as_str())
            .map(|o| o.1.clone())
            .unwrap_or_default(),
    )
    .into_response()
}

pub(super) async fn stats(State(tenant): TenantState) -> Response {
    Json(lock(&tenant).stats.clone()).into_response()
}

pub(super) async fn add_fault(State(tenant): TenantState, Json(fault): Json<Fault>) -> Response {
    lock(&tenant).faults.push_back(fault);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn add_rule(State(tenant): TenantState, Json(rule): Json<Rule>) -> Response {
    lock(&tenant).rules.push(rule);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /v1/ant/attachments/{id}`: an activity attachment's bytes.
pub(super) async fn download(
    State(tenant): TenantState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = begin(&tenant, &headers) {
        return r;
    }
    let t = lock(&tenant);
    match t.files.get(&id) {
        Some(bytes) => (StatusCode::OK, bytes.clone()).into_response(),
        None => envelope_error(
            StatusCode::NOT_FOUND,
            "GS_ATTACHMENT_NOT_FOUND",
            &format!("Attachment {id} does not exist"),
        ),
    }
}
