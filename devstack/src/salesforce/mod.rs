//! Salesforce emulator, written from the public REST API contract: OAuth 2.0 client-credentials
//! token endpoint, sObject describe, sObject Collections (create, update by Id, upsert on an
//! external ID; 200 records, per-record results, allOrNone), SOQL query with nextRecordsUrl paging,
//! Bulk API 2.0 ingest and query jobs, Salesforce's error body (`[{"message","errorCode"}]`), the `Sforce-Limit-Info` header, and
//! switches to inject faults (error statuses, row locks, expired sessions, delays). Like a Flow's
//! Outbound Message action, it posts a SOAP `notifications` message for every created or edited
//! record of a configured object, retrying until the listener answers `Ack` true. Tests read its
//! records and call counts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::ServerHandle;

mod api;
mod bulk;
mod bulk_query;
mod collections;
mod control;
mod dates;
mod jwt;
pub use jwt::certificate_of;
mod org;
mod outbound;
mod query;
mod relay;
mod schema;
mod sobject;
pub mod soql;

use api::*;
use collections::*;
use control::*;
use dates::*;
pub use dates::{parse_datetime_ms, sf_datetime};
use org::*;
use outbound::*;
use query::*;
pub use relay::Relay;
use schema::*;
pub use schema::{FieldDef, FieldType};

pub type Record = Map<String, Value>;

/// Daily API request allowance reported in `Sforce-Limit-Info`.
pub const DAILY_LIMIT: u64 = 15_000;
/// Records per sObject Collections request.
pub const COLLECTION_LIMIT: usize = 200;
/// Records per query page.
pub const QUERY_BATCH: usize = 2000;

/// A fault to inject into the next API calls (token requests are not affected unless said).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer `status` with Salesforce's error body, `times` times; with a `Retry-After` header
    /// of `retry_after` seconds when set.
    Status {
        status: u16,
        error_code: String,
        message: String,
        times: u32,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Fail every record of the next `times` collection calls with UNABLE_TO_LOCK_ROW.
    LockRows { times: u32 },
    /// Wait `ms` before answering the next `times` calls (client timeouts).
    Delay { ms: u64, times: u32 },
    /// The next `times` Bulk API ingest jobs fail after processing `rows` rows; the rest are
    /// left in `unprocessedrecords`.
    BulkFailAfter { rows: usize, times: u32 },
    /// The next `times` Bulk API ingest jobs stay `InProgress` for `polls` more state polls
    /// before they are processed (a job of many records, or an org busy with other jobs).
    BulkSlow { polls: u32, times: u32 },
}

impl Fault {
    /// `status` with Salesforce's error body `code`, `times` times, without a `Retry-After`.
    pub fn status(status: u16, code: &str, message: &str, times: u32) -> Self {
        Fault::Status {
            status,
            error_code: code.into(),
            message: message.into(),
            times,
            retry_after: None,
        }
    }

    /// The status fault, answered with a `Retry-After` of `seconds` (other faults unchanged).
    pub fn with_retry_after(mut self, seconds: Option<u64>) -> Self {
        if let Fault::Status { retry_after, .. } = &mut self {
            *retry_after = seconds;
        }
        self
    }
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub token_requests: u64,
    /// Every API request under /services/data, whatever its outcome.
    pub api_calls: u64,
    pub upsert_calls: u64,
    pub query_calls: u64,
    pub describe_calls: u64,
    /// `GET /limits`: a client asking how much of the daily allowance is left.
    pub limits_calls: u64,
    pub records_created: u64,
    pub records_updated: u64,
    pub create_calls: u64,
    pub update_calls: u64,
    /// Bulk API 2.0: ingest jobs created, and polls of their state.
    pub bulk_jobs: u64,
    pub bulk_state_polls: u64,
    /// Bulk API 2.0 query jobs created.
    pub bulk_query_jobs: u64,
    /// Outbound messages acknowledged, and delivery attempts that were not.
    pub outbound_acked: u64,
    pub outbound_failures: u64,
    /// Outbound messages dropped unacknowledged after 24 hours of attempts, as Salesforce drops
    /// them.
    pub outbound_given_up: u64,
}

/// An Outbound Message action: which object's changes go where, with which fields.
#[derive(Clone, Debug, Deserialize)]
pub struct OutboundMessage {
    pub object: String,
    pub url: String,
    /// Fields sent in each notification's sObject (`Id` is always sent).
    pub fields: Vec<String>,
    /// The workflow rule's criterion `$User.Username <> <integration user>`: changes the
    /// integration user makes through the API send no message (their echo never leaves the org).
    #[serde(default)]
    pub skip_integration_user: bool,
}

/// Who made a change: the integration user through the API, or a person in the org.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Author {
    IntegrationUser,
    Person,
}

/// The integration user the Connected App runs as (the token's `id` names it).
pub const INTEGRATION_USER_ID: &str = "0055g000000emulAAA";
/// The person editing records in the org's UI.
pub const PERSON_USER_ID: &str = "0055g000000persAAA";

impl Author {
    pub fn user_id(self) -> &'static str {
        match self {
            Author::IntegrationUser => INTEGRATION_USER_ID,
            Author::Person => PERSON_USER_ID,
        }
    }
}

/// The Organization Id the emulated org puts in every Outbound Message.
pub const ORGANIZATION_ID: &str = "00D5g00000EMUL8AAA";

struct SObject {
    prefix: &'static str,
    fields: Vec<FieldDef>,
    records: Vec<Record>,
    /// The records deleted, by Id: in the Recycle Bin, where an update by Id is refused with
    /// `ENTITY_IS_DELETED`, until undeleted.
    deleted: HashMap<String, Record>,
}

impl SObject {
    /// Moves record `id` to the Recycle Bin; false if there is no such record.
    fn delete(&mut self, id: &str) -> bool {
        let Some(at) =
            (self.records.iter()).position(|r| r.get("Id").and_then(Value::as_str) == Some(id))
        else {
            return false;
        };
        let mut record = self.records.remove(at);
        record.insert("IsDeleted".into(), Value::Bool(true));
        self.deleted.insert(id.to_string(), record);
        true
    }

    /// Restores record `id` from the Recycle Bin; false if it is not there.
    fn undelete(&mut self, id: &str) -> bool {
        let Some(mut record) = self.deleted.remove(id) else {
            return false;
        };
        record.insert("IsDeleted".into(), Value::Bool(false));
        self.records.push(record);
        true
    }

    fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

struct Org {
    client_id: String,
    client_secret: String,
    /// The JWT bearer flow's user and the app's certificate (RSAPublicKey DER).
    username: String,
    jwt_public_key: Option<Vec<u8>>,
    /// The refresh token a user's consent issued to the app, until revoked.
    refresh_token: Option<String>,
    instance_url: String,
    objects: BTreeMap<&'static str, SObject>,
    tokens: Vec<String>,
    seq: u64,
    stats: Stats,
    faults: VecDeque<Fault>,
    /// Faults at chosen rates (soak tests), and how many were injected.
    rates: crate::chaos::FaultRates,
    fault_counts: crate::chaos::FaultCounts,
    cursors: HashMap<String, (Vec<Record>, (String, query::Endpoint))>,
    clock_ms: Option<i64>,
    outbound: Vec<OutboundMessage>,
    /// Calls other integrations made today, added to ours in the usage the org reports.
    usage_offset: u64,
    /// Bulk API 2.0 ingest jobs, by id.
    ingest: HashMap<String, bulk::IngestJob>,
    /// Bulk API 2.0 query jobs, by id.
    query_jobs: HashMap<String, bulk_query::QueryJob>,
    /// Change Data Capture through Event Relay, when a relay is set.
    relay: relay::RelayState,
}

/// Options of an emulated org.
#[derive(Clone, Debug)]
pub struct Options {
    pub client_id: String,
    pub client_secret: String,
    /// The user the JWT bearer flow runs as (`sub`).
    pub username: String,
    /// The Connected App's certificate for the JWT bearer flow: an RSAPublicKey in DER.
    pub jwt_public_key: Option<Vec<u8>>,
    /// A refresh token the app holds for the refresh token flow.
    pub refresh_token: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            client_id: "3MVG9emulator.consumer.key".into(),
            client_secret: "emulator-consumer-secret".into(),
            username: "integration@sync.example".into(),
            jwt_public_key: None,
            refresh_token: None,
        }
    }
}

#[derive(Clone)]
pub struct SalesforceEmulator {
    org: Arc<Mutex<Org>>,
    server: Arc<ServerHandle>,
}

impl SalesforceEmulator {
    pub async fn start(options: Options) -> std::io::Result<Self> {
        let (listener, addr) = crate::bind_local().await?;
        let org = Arc::new(Mutex::new(Org {
            client_id: options.client_id,
            client_secret: options.client_secret,
            username: options.username,
            jwt_public_key: options.jwt_public_key,
            refresh_token: options.refresh_token,
            instance_url: format!("http://{addr}"),
            objects: standard_objects()
                .into_iter()
                .map(|(name, prefix, fields)| {
                    (
                        name,
                        SObject {
                            prefix,
                            fields,
                            records: vec![],
                            deleted: Default::default(),
                        },
                    )
                })
                .collect(),
            tokens: vec![],
            seq: 0,
            stats: Stats::default(),
            faults: VecDeque::new(),
            rates: Default::default(),
            fault_counts: Default::default(),
            cursors: HashMap::new(),
            clock_ms: None,
            outbound: Vec::new(),
            usage_offset: 0,
            ingest: HashMap::new(),
            query_jobs: HashMap::new(),
            relay: Default::default(),
        }));
        let router = routes(org.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            org,
            server: Arc::new(ServerHandle { addr, task }),
        })
    }

    /// Login host and instance URL (the emulator serves both).
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn client_id(&self) -> String {
        self.lock().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.lock().client_secret.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Org> {
        self.org.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn records(&self, object: &str) -> Vec<Record> {
        self.lock()
            .objects
            .get(object)
            .map(|o| o.records.clone())
            .unwrap_or_default()
    }

    /// How many records `object` holds, without copying them.
    pub fn count(&self, object: &str) -> usize {
        self.lock()
            .objects
            .get(object)
            .map_or(0, |o| o.records.len())
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Injects faults at these rates into every API call from now on.
    pub fn set_fault_rates(&self, rates: crate::chaos::FaultRates) {
        self.lock().rates = rates;
    }

    /// The faults injected at their rates so far.
    pub fn fault_counts(&self) -> crate::chaos::FaultCounts {
        self.lock().fault_counts
    }

    /// Faults injected and not yet used up.
    pub fn pending_faults(&self) -> usize {
        self.lock().faults.len()
    }

    /// Invalidates every issued token, as a session timeout or a revoked app would.
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Inserts records as a Salesforce user would; returns their Ids.
    pub fn seed(&self, object: &str, records: Vec<Record>) -> Vec<String> {
        seed_records(&self.org, object, records, true)
    }

    /// Inserts records as data that was there before the sync: no Outbound Message, no change
    /// event. Their Ids.
    pub fn seed_quietly(&self, object: &str, records: Vec<Record>) -> Vec<String> {
        seed_records(&self.org, object, records, false)
    }

    /// Edits a record as a Salesforce user would (fires Outbound Messages); false if absent.
    pub fn edit(&self, object: &str, id: &str, fields: Record) -> bool {
        edit_record(&self.org, object, id, fields, true)
    }

    /// Deletes a record as a Salesforce user would: it goes to the Recycle Bin, where queries
    /// no longer find it, an update by its Id is refused (`ENTITY_IS_DELETED: entity is
    /// deleted`) and an upsert on an external id it held creates another; false if absent.
    pub fn delete(&self, object: &str, id: &str) -> bool {
        delete_records(&self.org, object, &[id.to_string()], Author::Person) == 1
    }

    /// Sets `fields` on every record of `ids` in one transaction, as a person's data load does;
    /// how many there were.
    pub fn edit_all(&self, object: &str, ids: &[String], fields: Record) -> usize {
        edit_records(&self.org, object, ids, &fields)
    }

    /// Restores a deleted record from the Recycle Bin as a Salesforce user would; false if it
    /// is not there.
    pub fn undelete(&self, object: &str, id: &str) -> bool {
        undelete_record(&self.org, object, id)
    }

    /// Merges `losers` into `master` as a Salesforce user would: the losers are deleted with
    /// `MasterRecordId` set to the master (found by `queryAll`), and the master is updated.
    pub fn merge(&self, object: &str, master: &str, losers: &[String]) -> usize {
        merge_records(&self.org, object, master, losers)
    }

    /// Puts a change event on `relay.bus` for every later change of the org's records.
    pub fn relay_to(&self, relay: relay::Relay) {
        self.lock().relay.relay = Some(relay);
    }

    /// The next `n` change events are sent as gap events (`GAP_UPDATE`...: no values).
    pub fn gap_next(&self, n: u32) {
        self.lock().relay.gaps = n;
    }

    /// The next `n` change events are each sent as a `GAP_OVERFLOW` of their object.
    pub fn overflow_next(&self, n: u32) {
        self.lock().relay.overflows = n;
    }

    /// Puts the last `n` change events on the bus again, as a relay resumed with
    /// `ReplayRecovery: EARLIEST` does; how many there were.
    pub fn resend_last(&self, n: usize) -> usize {
        let events: Vec<(String, Value)> = {
            let org = self.lock();
            let sent = &org.relay.sent;
            sent.iter()
                .skip(sent.len().saturating_sub(n))
                .cloned()
                .collect()
        };
        let count = events.len();
        relay::spawn_events(&self.org, events);
        count
    }

    /// Change events put on the bus so far.
    pub fn change_events_published(&self) -> u64 {
        self.lock().relay.published
    }

    /// Creates records as a person's data load with workflow bypassed: no Outbound Message.
    pub fn load_without_workflow(&self, object: &str, records: Vec<Record>) -> Vec<String> {
        seed_records(&self.org, object, records, false)
    }

    /// Edits a record as a person's data load with workflow bypassed: no Outbound Message.
    pub fn edit_without_workflow(&self, object: &str, id: &str, fields: Record) -> bool {
        edit_record(&self.org, object, id, fields, false)
    }

    /// Gives the Connected App a new consumer secret (an admin rotated it in Setup): requests
    /// with the old one are refused with `invalid_client`.
    pub fn set_client_secret(&self, secret: &str) {
        self.lock().client_secret = secret.to_string();
    }

    /// Revokes the app's refresh token (a user or admin did, in Setup): the next refresh is
    /// refused with `invalid_grant`.
    pub fn revoke_refresh_token(&self) {
        self.lock().refresh_token = None;
    }

    /// Makes the org's daily API usage `used` calls (as if other integrations had made the rest),
    /// whatever this emulator counted; `stats()` still counts only the calls it served.
    pub fn set_api_usage(&self, used: u64) {
        let mut org = self.lock();
        org.usage_offset = used.saturating_sub(org.stats.api_calls);
    }

    /// Sends an Outbound Message for every later create or edit of `message.object`.
    pub fn add_outbound(&self, message: OutboundMessage) {
        self.lock().outbound.push(message);
    }
}

fn limit_header(used: u64) -> (&'static str, HeaderValue) {
    (
        "sforce-limit-info",
        HeaderValue::from_str(&format!("api-usage={used}/{DAILY_LIMIT}"))
            .unwrap_or(HeaderValue::from_static("")),
    )
}

fn sf_error(status: StatusCode, code: &str, message: &str, used: u64) -> Response {
    let mut resp = (
        status,
        Json(json!([{ "message": message, "errorCode": code }])),
    )
        .into_response();
    let (k, v) = limit_header(used);
    resp.headers_mut().insert(k, v);
    resp
}

fn ok_json(body: Value, used: u64) -> Response {
    answer(StatusCode::OK, body, used)
}

/// Salesforce's 404 for a resource (a record, a job) that does not exist.
fn not_found(used: u64) -> Response {
    sf_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
        used,
    )
}

/// A JSON answer with the org's API usage header.
fn answer(status: StatusCode, body: Value, used: u64) -> Response {
    with_usage((status, Json(body)).into_response(), used)
}

/// `resp` with the org's API usage header (`Sforce-Limit-Info`).
fn with_usage(mut resp: Response, used: u64) -> Response {
    let (k, v) = limit_header(used);
    resp.headers_mut().insert(k, v);
    resp
}

/// The org's REST, Bulk, OAuth and control resources; anything else is Salesforce's JSON 404.
fn routes(org: Arc<Mutex<Org>>) -> axum::Router {
    axum::Router::new()
        .route(
            "/services/data/{ver}/sobjects/{object}/describe",
            get(describe),
        )
        .route(
            "/services/data/{ver}/composite/sobjects/{object}/{field}",
            patch(upsert),
        )
        .route(
            "/services/data/{ver}/composite/sobjects",
            post(create).patch(update),
        )
        .route(
            "/services/data/{ver}/sobjects/{object}",
            post(sobject::create_record)
                .layer(axum::extract::DefaultBodyLimit::max(sobject::MAX_BODY)),
        )
        .route(
            "/services/data/{ver}/sobjects/{object}/",
            post(sobject::create_record)
                .layer(axum::extract::DefaultBodyLimit::max(sobject::MAX_BODY)),
        )
        .route(
            "/services/data/{ver}/sobjects/{object}/{id}",
            get(sobject::retrieve_record)
                .patch(sobject::update_record)
                .delete(sobject::delete_record),
        )
        .route(
            "/services/data/{ver}/sobjects/{object}/{field}/{value}",
            patch(sobject::upsert_record).get(sobject::retrieve_by_external_id),
        )
        .route("/services/data", get(sobject::versions))
        .route("/services/data/", get(sobject::versions))
        .route("/services/data/{ver}/jobs/query", post(bulk_query::create))
        .route("/services/data/{ver}/jobs/query/", post(bulk_query::create))
        .route(
            "/services/data/{ver}/jobs/query/{id}",
            get(bulk_query::job_info),
        )
        .route(
            "/services/data/{ver}/jobs/query/{id}/results",
            get(bulk_query::results),
        )
        .route("/services/data/{ver}/jobs/ingest", post(bulk::create_job))
        .route("/services/data/{ver}/jobs/ingest/", post(bulk::create_job))
        .route(
            "/services/data/{ver}/jobs/ingest/{id}",
            get(bulk::job_info).patch(bulk::set_state),
        )
        .route(
            "/services/data/{ver}/jobs/ingest/{id}/batches",
            axum::routing::put(bulk::upload)
                .layer(axum::extract::DefaultBodyLimit::max(150 * 1024 * 1024)),
        )
        .route(
            "/services/data/{ver}/jobs/ingest/{id}/{which}",
            get(bulk::results),
        )
        .route("/services/data/{ver}/limits", get(sobject::limits))
        .route("/services/data/{ver}/limits/", get(sobject::limits))
        .route("/services/data/{ver}/query", get(query))
        // Client libraries ask for `query/?q=...`; Salesforce answers it like `query?q=...`.
        .route("/services/data/{ver}/query/", get(query))
        .route("/services/data/{ver}/query/{locator}", get(query_more))
        .route("/services/data/{ver}/queryAll", get(query_all))
        .route("/services/data/{ver}/queryAll/", get(query_all))
        .route("/services/data/{ver}/queryAll/{locator}", get(query_more))
        .route_layer(axum::middleware::from_fn_with_state(org.clone(), chaos))
        .route("/services/oauth2/token", post(token))
        .merge(control_routes())
        .fallback(sobject::no_such_resource)
        .with_state(org)
}

/// The emulator's own endpoints (seeding, a person's edits, faults, counts): outside the chaos
/// layer, so that a test's set-up never meets an injected fault.
fn control_routes() -> axum::Router<Arc<Mutex<Org>>> {
    axum::Router::new()
        .route("/__emulator/fault-rates", post(set_rates))
        .route("/__emulator/records/{object}", get(dump).post(seed))
        .route("/__emulator/records/{object}/{id}", patch(user_edit))
        .route(
            "/__emulator/records/{object}/{id}/delete",
            post(user_delete),
        )
        .route(
            "/__emulator/records/{object}/{id}/undelete",
            post(user_undelete),
        )
        .route("/__emulator/merge/{object}", post(user_merge))
        .route("/__emulator/outbound", post(add_outbound))
        .route("/__emulator/stats", get(stats))
        .route("/__emulator/faults", post(add_fault))
        .route("/__emulator/expire-tokens", post(expire))
}

type OrgState = State<Arc<Mutex<Org>>>;

/// How the org answers the faults it injects at their rates.
const REFUSALS: crate::chaos::Refusals = crate::chaos::Refusals {
    throttled: || {
        let mut refused = sf_error(
            StatusCode::TOO_MANY_REQUESTS,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded",
            0,
        );
        refused
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(1u32));
        refused
    },
    unavailable: || {
        sf_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVER_UNAVAILABLE",
            "Server unavailable",
            0,
        )
    },
    lost: || {
        sf_error(
            StatusCode::GATEWAY_TIMEOUT,
            "GATEWAY_TIMEOUT",
            "the answer was lost",
            0,
        )
    },
};

/// The API calls' faults at their rates: sessions expired, then throttling, unavailability,
/// slowness and lost answers.
async fn chaos(
    State(org): OrgState,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let plan = {
        let mut org = lock(&org);
        let rates = org.rates;
        if crate::chaos::chance(rates.expired_session) {
            org.tokens.clear();
            org.fault_counts.expired_sessions += 1;
        }
        let plan = crate::chaos::Plan::draw(&rates);
        plan.count(&mut org.fault_counts);
        plan
    };
    plan.run(&REFUSALS, request, next).await
}

/// `POST /__emulator/fault-rates`: faults at these rates from now on.
async fn set_rates(State(org): OrgState, Json(rates): Json<crate::chaos::FaultRates>) -> Response {
    lock(&org).rates = rates;
    StatusCode::NO_CONTENT.into_response()
}

fn lock(org: &Arc<Mutex<Org>>) -> std::sync::MutexGuard<'_, Org> {
    org.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
