//! The emulator's own endpoints for tests and the local stack: dump, seed, user edits, Outbound
//! Message actions, call counts, faults and session expiry.

use super::*;

pub(super) async fn dump(State(org): OrgState, Path(object): Path<String>) -> Response {
    let org = lock(&org);
    Json(
        org.objects
            .get(object.as_str())
            .map(|o| o.records.clone())
            .unwrap_or_default(),
    )
    .into_response()
}

pub(super) async fn seed(
    State(org): OrgState,
    Path(object): Path<String>,
    Json(records): Json<Vec<Record>>,
) -> Response {
    Json(seed_records(&org, &object, records, true)).into_response()
}

pub(super) async fn user_edit(
    State(org): OrgState,
    Path((object, id)): Path<(String, String)>,
    Json(fields): Json<Record>,
) -> Response {
    if edit_record(&org, &object, &id, fields, true) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

pub(super) async fn add_outbound(
    State(org): OrgState,
    Json(message): Json<OutboundMessage>,
) -> Response {
    lock(&org).outbound.push(message);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn stats(State(org): OrgState) -> Response {
    Json(lock(&org).stats.clone()).into_response()
}

pub(super) async fn add_fault(State(org): OrgState, Json(fault): Json<Fault>) -> Response {
    lock(&org).faults.push_back(fault);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn expire(State(org): OrgState) -> Response {
    lock(&org).tokens.clear();
    StatusCode::NO_CONTENT.into_response()
}
