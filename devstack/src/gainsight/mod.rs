//! Gainsight NXT emulator, written from the public data API contract: `Accesskey` header auth,
//! `POST /v1/data/objects/query/{object}` (select / where conditions + expression / orderBy /
//! limit / offset), insert (`POST /v1/data/objects/{object}`) and update
//! (`PUT /v1/data/objects/{object}?keys=...`) of up to 50 records, the `result` / `errorCode` /
//! `errorDesc` / `requestId` / `data` envelope, dates as epoch milliseconds, and fault switches.
//! Like a Rules Engine "Call External API" action, it can post a signed change event to a webhook
//! whenever a record changes, retrying until the webhook answers 2xx.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::ServerHandle;

mod control;
mod limit;
mod lookup;
mod query;
mod schema;
mod write;

use control::*;
pub use limit::RateLimit;
use query::*;
use schema::*;
pub use schema::{GsField, GsType};
use write::*;

pub type Record = Map<String, Value>;

/// Records per insert / update call.
pub const WRITE_LIMIT: usize = 50;
/// Records per read call.
pub const READ_LIMIT: usize = 5000;

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer `status` with an error envelope, `times` times.
    Status { status: u16, times: u32 },
    /// Wait `ms` before answering the next `times` calls.
    Delay { ms: u64, times: u32 },
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub api_calls: u64,
    pub query_calls: u64,
    pub write_calls: u64,
    /// Calls refused by the rate limit (counted in `api_calls` too).
    pub rate_limited_calls: u64,
    pub webhook_deliveries: u64,
    pub webhook_failures: u64,
}

/// A rule that posts a signed change event for every change of `object` to `url`.
#[derive(Clone, Debug, Deserialize)]
pub struct Rule {
    pub object: String,
    pub url: String,
    pub secret: String,
    /// The rule's condition `Modified By <> <integration user>`: changes made with the
    /// integration user's access key post no event (their echo never leaves the tenant).
    #[serde(default)]
    pub skip_integration_user: bool,
}

/// Who called: the integration user (the tenant's access key) or a person (`person_key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    IntegrationUser,
    Person,
}

struct Tenant {
    access_key: String,
    /// The access key of a person using the tenant, for tests that act as one.
    person_key: String,
    objects: BTreeMap<&'static str, (Vec<GsField>, Vec<Record>)>,
    stats: Stats,
    faults: VecDeque<Fault>,
    rules: Vec<Rule>,
    seq: u64,
    /// Files attached to activities, by attachment id.
    files: std::collections::HashMap<String, Vec<u8>>,
    /// The API rate limit's current window, when the tenant is limited.
    window: Option<limit::Window>,
    /// Faults at chosen rates (soak tests), and how many were injected.
    rates: crate::chaos::FaultRates,
    fault_counts: crate::chaos::FaultCounts,
    /// Per object, its records' positions by the keys of the last update call, kept between
    /// calls (records are only ever appended or updated in place, and an update never changes
    /// the values it is matched by), so an update call at volume costs no scan of the object.
    key_indexes: std::collections::HashMap<&'static str, write::KeyIndex>,
    /// Per object and field, its records' positions by value, for queries' lookups.
    lookups: std::collections::HashMap<(&'static str, String), lookup::FieldIndex>,
    /// Per object, the position of each record an update call changed in place, in order
    /// (what the lookup indexes key again).
    updated: std::collections::HashMap<&'static str, Vec<usize>>,
}

#[derive(Clone)]
pub struct GainsightEmulator {
    tenant: Arc<Mutex<Tenant>>,
    server: Arc<ServerHandle>,
}

type TenantState = State<Arc<Mutex<Tenant>>>;

fn lock(t: &Arc<Mutex<Tenant>>) -> std::sync::MutexGuard<'_, Tenant> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

impl GainsightEmulator {
    pub async fn start(access_key: impl Into<String>) -> std::io::Result<Self> {
        let access_key_text: String = access_key.into();
        let tenant = Arc::new(Mutex::new(Tenant {
            person_key: format!("{}-person", access_key_text),
            access_key: access_key_text,
            objects: objects()
                .into_iter()
                .map(|(n, f)| (n, (f, vec![])))
                .collect(),
            stats: Stats::default(),
            faults: VecDeque::new(),
            rules: vec![],
            seq: 0,
            files: std::collections::HashMap::new(),
            window: None,
            rates: Default::default(),
            fault_counts: Default::default(),
            key_indexes: Default::default(),
            lookups: Default::default(),
            updated: Default::default(),
        }));
        let router = axum::Router::new()
            .route("/v1/data/objects/query/{object}", post(query))
            .route("/v1/data/objects/{object}", post(insert).put(update))
            .route("/v1/meta/services/objects/{object}/describe", get(describe))
            .route("/v1/ant/attachments/{id}", get(control::download))
            .route_layer(axum::middleware::from_fn_with_state(
                tenant.clone(),
                limit::enforce,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                tenant.clone(),
                control::chaos,
            ))
            .route("/__emulator/fault-rates", post(control::set_rates))
            .route("/__emulator/records/{object}", get(dump))
            .route("/__emulator/rate_limit", post(limit::set))
            .route("/__emulator/stats", get(stats))
            .route("/__emulator/faults", post(add_fault))
            .route("/__emulator/rules", post(add_rule))
            .with_state(tenant.clone());
        Ok(Self {
            tenant,
            server: Arc::new(crate::serve(router).await?),
        })
    }

    /// An access key that acts as a person using the tenant (not the integration user).
    pub fn person_key(&self) -> String {
        lock(&self.tenant).person_key.clone()
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn records(&self, object: &str) -> Vec<Record> {
        lock(&self.tenant)
            .objects
            .get(object)
            .map(|o| o.1.clone())
            .unwrap_or_default()
    }

    /// How many records `object` holds, without copying them.
    pub fn count(&self, object: &str) -> usize {
        lock(&self.tenant)
            .objects
            .get(object)
            .map_or(0, |o| o.1.len())
    }

    /// Inserts records as data that was there before the sync: each gets a GSID and its dates,
    /// and no rule fires. Their GSIDs, in order.
    pub fn seed_quietly(&self, object: &str, records: Vec<Record>) -> Vec<String> {
        let mut guard = lock(&self.tenant);
        let tenant = &mut *guard;
        let Some(stored) = tenant.objects.get_mut(object) else {
            return Vec::new();
        };
        let now = now_ms();
        let mut ids = Vec::with_capacity(records.len());
        for mut r in records {
            tenant.seq += 1;
            let gsid = format!("1P0{:02}{:016X}", object.len(), tenant.seq);
            r.insert("Gsid".into(), Value::String(gsid.clone()));
            r.insert("CreatedDate".into(), json!(now));
            r.insert("ModifiedDate".into(), json!(now));
            stored.1.push(r);
            ids.push(gsid);
        }
        ids
    }

    pub fn stats(&self) -> Stats {
        lock(&self.tenant).stats.clone()
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.tenant).faults.push_back(fault);
    }

    /// Injects faults at these rates into every API call from now on.
    pub fn set_fault_rates(&self, rates: crate::chaos::FaultRates) {
        lock(&self.tenant).rates = rates;
    }

    /// The faults injected at their rates so far.
    pub fn fault_counts(&self) -> crate::chaos::FaultCounts {
        lock(&self.tenant).fault_counts
    }

    /// Limits the tenant's API calls from now on, as Gainsight's gateway does.
    pub fn set_rate_limit(&self, limit: RateLimit) {
        lock(&self.tenant).window = Some(limit::Window::new(limit));
    }

    /// Stores a file as a person would attach it to an activity; the attachment entry to put in
    /// the activity's `Attachments` (`Id`, `Name`, `Size`, `ContentType`, `CreatedDate`).
    pub fn attach(&self, name: &str, content_type: &str, bytes: Vec<u8>) -> Value {
        let mut t = lock(&self.tenant);
        t.seq += 1;
        let id = format!("att-{:06}", t.seq);
        let entry = json!({
            "Id": id, "Name": name, "Size": bytes.len(), "ContentType": content_type,
            "CreatedDate": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default(),
        });
        t.files.insert(id, bytes);
        entry
    }

    /// Gives the integration user a new access key (an admin regenerated it): the old one is
    /// refused from now on.
    pub fn set_access_key(&self, key: &str) {
        lock(&self.tenant).access_key = key.to_string();
    }

    pub fn add_rule(&self, rule: Rule) {
        lock(&self.tenant).rules.push(rule);
    }
}

fn envelope_error(status: StatusCode, code: &str, desc: &str) -> Response {
    (
        status,
        Json(json!({
            "result": false,
            "errorCode": code,
            "errorDesc": desc,
            "requestId": uuid::Uuid::new_v4().to_string(),
            "data": null,
            "message": null,
        })),
    )
        .into_response()
}

fn envelope_ok(data: Value) -> Response {
    Json(json!({
        "result": true,
        "errorCode": null,
        "errorDesc": null,
        "requestId": uuid::Uuid::new_v4().to_string(),
        "data": data,
        "message": null,
    }))
    .into_response()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Authenticates and applies faults; `Ok(Some(ms))` asks the caller to delay.
#[allow(clippy::result_large_err)] // an axum Response is the natural early answer of a handler
fn begin(
    tenant: &Arc<Mutex<Tenant>>,
    headers: &HeaderMap,
) -> Result<(Caller, Option<u64>), Response> {
    let mut t = lock(tenant);
    t.stats.api_calls += 1;
    let key = headers
        .get("accesskey")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let caller = match key {
        "" => None,
        k if k == t.access_key => Some(Caller::IntegrationUser),
        k if k == t.person_key => Some(Caller::Person),
        _ => None,
    };
    let Some(caller) = caller else {
        return Err(envelope_error(
            StatusCode::UNAUTHORIZED,
            "GS_APIG_2401",
            "Access key is missing or invalid",
        ));
    };
    Ok((caller, take_fault(&mut t)?))
}

/// The first pending fault, counted down: an error answer, or a delay (ms) for the caller.
#[allow(clippy::result_large_err)] // an axum Response is the natural early answer of a handler
fn take_fault(t: &mut Tenant) -> Result<Option<u64>, Response> {
    let Some(front) = t.faults.front_mut() else {
        return Ok(None);
    };
    let fault = front.clone();
    let times = match front {
        Fault::Status { times, .. } | Fault::Delay { times, .. } => {
            *times = times.saturating_sub(1);
            *times
        }
    };
    if times == 0 {
        t.faults.pop_front();
    }
    match fault {
        Fault::Status { status, .. } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let desc = if status == StatusCode::TOO_MANY_REQUESTS {
                "Rate limit exceeded"
            } else {
                "Service temporarily unavailable"
            };
            let mut answer = envelope_error(status, "GS_INJECTED_FAULT", desc);
            if status == StatusCode::TOO_MANY_REQUESTS {
                // A passing refusal that says when to come back; the window's own limit and
                // what is left of it come from the rate limiter (`limit.rs`) when one is set.
                let headers = answer.headers_mut();
                headers.insert("retry-after", axum::http::HeaderValue::from_static("1"));
            }
            Err(answer)
        }
        Fault::Delay { ms, .. } => Ok(Some(ms)),
    }
}

/// Authenticates, applies faults (delays included) and parses the JSON body.
async fn accept<T: serde::de::DeserializeOwned>(
    tenant: &Arc<Mutex<Tenant>>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Caller, T), Response> {
    let (caller, delay) = begin(tenant, headers)?;
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    serde_json::from_slice(body)
        .map(|b| (caller, b))
        .map_err(|e| {
            envelope_error(
                StatusCode::BAD_REQUEST,
                "GS_BAD_REQUEST",
                &format!("Invalid request payload: {e}"),
            )
        })
}

#[cfg(test)]
mod tests;
