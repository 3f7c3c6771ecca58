//! The emulator's own endpoints for tests and the local stack: dump, seed, a user's edits,
//! deletes, undeletes and merges, Outbound Message actions, call counts, faults and session
//! expiry.

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

/// `POST /__emulator/records/{object}/{id}/delete`: a Salesforce user deletes the record (to the
/// Recycle Bin; a change event says so).
pub(super) async fn user_delete(
    State(org): OrgState,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    found(delete_records(&org, &object, &[id], Author::Person) == 1)
}

/// `POST /__emulator/records/{object}/{id}/undelete`: a Salesforce user restores the record from
/// the Recycle Bin.
pub(super) async fn user_undelete(
    State(org): OrgState,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    found(undelete_record(&org, &object, &id))
}

#[derive(Deserialize)]
pub(super) struct MergeRequest {
    master: String,
    losers: Vec<String>,
}

/// `POST /__emulator/merge/{object}` with `{"master": Id, "losers": [Id, ...]}`: a Salesforce user
/// merges the losers into the master; answers how many were merged.
pub(super) async fn user_merge(
    State(org): OrgState,
    Path(object): Path<String>,
    Json(request): Json<MergeRequest>,
) -> Response {
    let merged = merge_records(&org, &object, &request.master, &request.losers);
    Json(json!({ "merged": merged })).into_response()
}

fn found(done: bool) -> Response {
    if done {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}
