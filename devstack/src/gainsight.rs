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

pub type Record = Map<String, Value>;

/// Records per insert / update call.
pub const WRITE_LIMIT: usize = 50;
/// Records per read call.
pub const READ_LIMIT: usize = 5000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GsType {
    Gsid,
    String,
    Number,
    Currency,
    Boolean,
    Date,
    Datetime,
    Email,
}

#[derive(Clone, Debug)]
pub struct GsField {
    pub name: &'static str,
    pub kind: GsType,
    pub required: bool,
    pub system: bool,
}

const fn field(name: &'static str, kind: GsType) -> GsField {
    GsField {
        name,
        kind,
        required: false,
        system: false,
    }
}

fn objects() -> Vec<(&'static str, Vec<GsField>)> {
    let system = || {
        vec![
            GsField {
                name: "Gsid",
                kind: GsType::Gsid,
                required: false,
                system: true,
            },
            GsField {
                name: "CreatedDate",
                kind: GsType::Datetime,
                required: false,
                system: true,
            },
            GsField {
                name: "ModifiedDate",
                kind: GsType::Datetime,
                required: false,
                system: true,
            },
        ]
    };
    let mut company = system();
    company.extend([
        GsField {
            required: true,
            ..field("Name", GsType::String)
        },
        field("Arr", GsType::Currency),
        field("Mrr", GsType::Currency),
        field("Industry", GsType::String),
        field("Employees", GsType::Number),
        field("Stage", GsType::String),
        field("Status", GsType::String),
        field("RenewalDate", GsType::Date),
        field("Phone", GsType::String),
        field("SfdcAccountId", GsType::String),
        GsField {
            system: true,
            ..field("HealthScore", GsType::Number)
        },
    ]);
    let mut person = system();
    person.extend([
        field("FirstName", GsType::String),
        GsField {
            required: true,
            ..field("LastName", GsType::String)
        },
        GsField {
            required: true,
            ..field("Email", GsType::Email)
        },
        field("Title", GsType::String),
        field("CompanyId", GsType::Gsid),
        field("SfdcContactId", GsType::String),
    ]);
    let mut case = system();
    case.extend([
        GsField {
            required: true,
            ..field("Subject", GsType::String)
        },
        field("Description", GsType::String),
        field("Status", GsType::String),
        field("Priority", GsType::String),
        field("CompanyId", GsType::Gsid),
        field("SfdcCaseId", GsType::String),
    ]);
    vec![("Company", company), ("Person", person), ("Case", case)]
}

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
    pub webhook_deliveries: u64,
    pub webhook_failures: u64,
}

/// A rule that posts a signed change event for every change of `object` to `url`.
#[derive(Clone, Debug, Deserialize)]
pub struct Rule {
    pub object: String,
    pub url: String,
    pub secret: String,
}

struct Tenant {
    access_key: String,
    objects: BTreeMap<&'static str, (Vec<GsField>, Vec<Record>)>,
    stats: Stats,
    faults: VecDeque<Fault>,
    rules: Vec<Rule>,
    seq: u64,
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
        let tenant = Arc::new(Mutex::new(Tenant {
            access_key: access_key.into(),
            objects: objects()
                .into_iter()
                .map(|(n, f)| (n, (f, vec![])))
                .collect(),
            stats: Stats::default(),
            faults: VecDeque::new(),
            rules: vec![],
            seq: 0,
        }));
        let router = axum::Router::new()
            .route("/v1/data/objects/query/{object}", post(query))
            .route("/v1/data/objects/{object}", post(insert).put(update))
            .route("/v1/meta/services/objects/{object}/describe", get(describe))
            .route("/__emulator/records/{object}", get(dump))
            .route("/__emulator/stats", get(stats))
            .route("/__emulator/faults", post(add_fault))
            .route("/__emulator/rules", post(add_rule))
            .with_state(tenant.clone());
        Ok(Self {
            tenant,
            server: Arc::new(crate::serve(router).await?),
        })
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

    pub fn stats(&self) -> Stats {
        lock(&self.tenant).stats.clone()
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.tenant).faults.push_back(fault);
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
fn begin(tenant: &Arc<Mutex<Tenant>>, headers: &HeaderMap) -> Result<Option<u64>, Response> {
    let mut t = lock(tenant);
    t.stats.api_calls += 1;
    let key = headers
        .get("accesskey")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if key.is_empty() || key != t.access_key {
        return Err(envelope_error(
            StatusCode::UNAUTHORIZED,
            "GS_AUTH_FAILED",
            "Access key is missing or invalid",
        ));
    }
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
            Err(envelope_error(status, "GS_INJECTED_FAULT", desc))
        }
        Fault::Delay { ms, .. } => Ok(Some(ms)),
    }
}

/// Authenticates, applies faults (delays included) and parses the JSON body.
async fn accept<T: serde::de::DeserializeOwned>(
    tenant: &Arc<Mutex<Tenant>>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Response> {
    if let Some(ms) = begin(tenant, headers)? {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    serde_json::from_slice(body).map_err(|e| {
        envelope_error(
            StatusCode::BAD_REQUEST,
            "GS_BAD_REQUEST",
            &format!("Invalid request payload: {e}"),
        )
    })
}

#[derive(Deserialize)]
struct QueryBody {
    select: Vec<String>,
    #[serde(default, rename = "where")]
    filter: Option<Where>,
    #[serde(default, rename = "orderBy")]
    order_by: Option<Map<String, Value>>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
}

#[derive(Deserialize)]
struct Where {
    conditions: Vec<Condition>,
    #[serde(default)]
    expression: Option<String>,
}

#[derive(Deserialize)]
struct Condition {
    name: String,
    alias: String,
    #[serde(default)]
    value: Vec<Value>,
    operator: String,
}

fn cmp_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        // Gainsight compares text case-insensitively (emails above all).
        (Value::String(x), Value::String(y)) if x.eq_ignore_ascii_case(y) => {
            Some(std::cmp::Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

fn holds(c: &Condition, r: &Record) -> Result<bool, String> {
    use std::cmp::Ordering::*;
    let v = r.get(&c.name).unwrap_or(&Value::Null);
    let first = c.value.first();
    let need = || first.ok_or_else(|| format!("condition {} needs a value", c.alias));
    Ok(match c.operator.as_str() {
        "EQ" => cmp_values(v, need()?) == Some(Equal),
        "NE" => cmp_values(v, need()?) != Some(Equal),
        "GT" => cmp_values(v, need()?) == Some(Greater),
        "GTE" => matches!(cmp_values(v, need()?), Some(Greater | Equal)),
        "LT" => cmp_values(v, need()?) == Some(Less),
        "LTE" => matches!(cmp_values(v, need()?), Some(Less | Equal)),
        "IN" => c.value.iter().any(|x| cmp_values(v, x) == Some(Equal)),
        "NOT_IN" => !c.value.iter().any(|x| cmp_values(v, x) == Some(Equal)),
        "CONTAINS" => match (v, need()?) {
            (Value::String(s), Value::String(p)) => s.to_lowercase().contains(&p.to_lowercase()),
            _ => false,
        },
        "IS_NULL" => v.is_null(),
        "IS_NOT_NULL" => !v.is_null(),
        other => return Err(format!("Unsupported operator {other}")),
    })
}

/// Evaluates an expression such as `(A AND B) OR C` over condition results by alias.
fn evaluate(expr: &str, truth: &BTreeMap<String, bool>) -> Result<bool, String> {
    let spaced = expr.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    fn or(t: &[&str], i: &mut usize, truth: &BTreeMap<String, bool>) -> Result<bool, String> {
        let mut v = and(t, i, truth)?;
        while t.get(*i).is_some_and(|x| x.eq_ignore_ascii_case("OR")) {
            *i += 1;
            let r = and(t, i, truth)?;
            v = v || r;
        }
        Ok(v)
    }
    fn and(t: &[&str], i: &mut usize, truth: &BTreeMap<String, bool>) -> Result<bool, String> {
        let mut v = atom(t, i, truth)?;
        while t.get(*i).is_some_and(|x| x.eq_ignore_ascii_case("AND")) {
            *i += 1;
            let r = atom(t, i, truth)?;
            v = v && r;
        }
        Ok(v)
    }
    fn atom(t: &[&str], i: &mut usize, truth: &BTreeMap<String, bool>) -> Result<bool, String> {
        let tok = *t.get(*i).ok_or("expression ends early")?;
        *i += 1;
        if tok == "(" {
            let v = or(t, i, truth)?;
            if t.get(*i) != Some(&")") {
                return Err("unbalanced parentheses in expression".into());
            }
            *i += 1;
            return Ok(v);
        }
        truth
            .get(tok)
            .copied()
            .ok_or_else(|| format!("expression uses unknown alias {tok}"))
    }
    let mut i = 0;
    let v = or(&tokens, &mut i, truth)?;
    if i != tokens.len() {
        return Err(format!("unexpected {} in expression", tokens[i]));
    }
    Ok(v)
}

async fn query(
    State(tenant): TenantState,
    headers: HeaderMap,
    Path(object): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let body: QueryBody = match accept(&tenant, &headers, &body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut t = lock(&tenant);
    t.stats.query_calls += 1;
    let Some((fields, records)) = t.objects.get(object.as_str()) else {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "GS_BAD_REQUEST",
            &format!("Object {object} does not exist"),
        );
    };
    let known = |name: &str| fields.iter().any(|f| f.name == name);
    if let Some(bad) = body.select.iter().find(|f| !known(f)) {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "GS_BAD_REQUEST",
            &format!("Invalid field {bad} in select"),
        );
    }
    let limit = body.limit.unwrap_or(100);
    if limit > READ_LIMIT {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "GS_BAD_REQUEST",
            &format!("limit can be at most {READ_LIMIT}"),
        );
    }
    let mut rows: Vec<&Record> = vec![];
    for r in records {
        let keep = match &body.filter {
            None => true,
            Some(w) => {
                let mut truth = BTreeMap::new();
                for c in &w.conditions {
                    if !known(&c.name) {
                        return envelope_error(
                            StatusCode::BAD_REQUEST,
                            "GS_BAD_REQUEST",
                            &format!("Invalid field {} in where", c.name),
                        );
                    }
                    match holds(c, r) {
                        Ok(v) => truth.insert(c.alias.clone(), v),
                        Err(e) => {
                            return envelope_error(StatusCode::BAD_REQUEST, "GS_BAD_REQUEST", &e)
                        }
                    };
                }
                let default_expr = w
                    .conditions
                    .iter()
                    .map(|c| c.alias.clone())
                    .collect::<Vec<_>>()
                    .join(" AND ");
                match evaluate(w.expression.as_deref().unwrap_or(&default_expr), &truth) {
                    Ok(v) => v,
                    Err(e) => return envelope_error(StatusCode::BAD_REQUEST, "GS_BAD_REQUEST", &e),
                }
            }
        };
        if keep {
            rows.push(r);
        }
    }
    if let Some(order) = &body.order_by {
        rows.sort_by(|a, b| {
            for (f, dir) in order {
                let o = cmp_values(
                    a.get(f).unwrap_or(&Value::Null),
                    b.get(f).unwrap_or(&Value::Null),
                )
                .unwrap_or(std::cmp::Ordering::Equal);
                let o = if dir.as_str().is_some_and(|d| d.eq_ignore_ascii_case("desc")) {
                    o.reverse()
                } else {
                    o
                };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let page: Vec<Value> = rows
        .into_iter()
        .skip(body.offset.unwrap_or(0))
        .take(limit)
        .map(|r| {
            Value::Object(
                body.select
                    .iter()
                    .map(|f| (f.clone(), r.get(f).cloned().unwrap_or(Value::Null)))
                    .collect(),
            )
        })
        .collect();
    envelope_ok(json!({ "records": page }))
}

fn validate(fields: &[GsField], record: &Record, creating: bool) -> Result<(), String> {
    for (name, value) in record {
        let Some(f) = fields.iter().find(|f| f.name == name) else {
            return Err(format!("Invalid field {name}"));
        };
        // The GSID is read-only except as the key of an update.
        if f.system && (creating || f.kind != GsType::Gsid) {
            return Err(format!("Field {name} is read only"));
        }
        let ok = match (f.kind, value) {
            (_, Value::Null) => !f.required,
            (GsType::String | GsType::Gsid, Value::String(_)) => true,
            (GsType::Email, Value::String(s)) => s.contains('@'),
            (GsType::Number | GsType::Currency, Value::Number(_)) => true,
            (GsType::Boolean, Value::Bool(_)) => true,
            (GsType::Date | GsType::Datetime, Value::Number(n)) => n.is_i64(),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "Invalid value {value} for field {name} of type {:?}",
                f.kind
            ));
        }
    }
    if creating {
        if let Some(f) = fields
            .iter()
            .find(|f| f.required && record.get(f.name).is_none_or(Value::is_null))
        {
            return Err(format!("Mandatory field {} is missing", f.name));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct WriteBody {
    records: Vec<Record>,
}

async fn insert(
    State(tenant): TenantState,
    headers: HeaderMap,
    Path(object): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    write(tenant, headers, object, None, body).await
}

#[derive(Deserialize)]
struct Keys {
    keys: Option<String>,
}

async fn update(
    State(tenant): TenantState,
    headers: HeaderMap,
    Path(object): Path<String>,
    Query(keys): Query<Keys>,
    body: axum::body::Bytes,
) -> Response {
    let Some(keys) = keys.keys.filter(|k| !k.is_empty()) else {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "GS_BAD_REQUEST",
            "keys query parameter is required for update",
        );
    };
    write(
        tenant,
        headers,
        object,
        Some(keys.split(',').map(str::to_string).collect()),
        body,
    )
    .await
}

async fn write(
    tenant: Arc<Mutex<Tenant>>,
    headers: HeaderMap,
    object: String,
    keys: Option<Vec<String>>,
    body: axum::body::Bytes,
) -> Response {
    let body: WriteBody = match accept(&tenant, &headers, &body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (changes, response) = {
        let mut t = lock(&tenant);
        t.stats.write_calls += 1;
        if body.records.is_empty() || body.records.len() > WRITE_LIMIT {
            return envelope_error(
                StatusCode::BAD_REQUEST,
                "GS_BAD_REQUEST",
                &format!("Between 1 and {WRITE_LIMIT} records are allowed per call"),
            );
        }
        let now = now_ms();
        let seq_start = t.seq;
        let Some((fields, records)) = t.objects.get(object.as_str()).cloned() else {
            return envelope_error(
                StatusCode::BAD_REQUEST,
                "GS_BAD_REQUEST",
                &format!("Object {object} does not exist"),
            );
        };
        // Validate everything first: one invalid record fails the whole call, as documented.
        let mut staged = records.clone();
        let mut written = vec![];
        let mut changes = vec![];
        let mut seq = seq_start;
        for (i, record) in body.records.iter().enumerate() {
            if let Err(e) = validate(&fields, record, keys.is_none()) {
                return envelope_error(
                    StatusCode::BAD_REQUEST,
                    "GS_VALIDATION_FAILED",
                    &format!("records[{i}]: {e}"),
                );
            }
            match &keys {
                None => {
                    seq += 1;
                    let mut r = record.clone();
                    r.insert(
                        "Gsid".into(),
                        Value::String(format!("1P0{:02}{:016X}", object.len(), seq)),
                    );
                    r.insert("CreatedDate".into(), json!(now));
                    r.insert("ModifiedDate".into(), json!(now));
                    changes.push(("created", r.keys().cloned().collect::<Vec<_>>(), r.clone()));
                    written.push(r.clone());
                    staged.push(r);
                }
                Some(keys) => {
                    if let Some(k) = keys
                        .iter()
                        .find(|k| record.get(k.as_str()).is_none_or(Value::is_null))
                    {
                        return envelope_error(
                            StatusCode::BAD_REQUEST,
                            "GS_VALIDATION_FAILED",
                            &format!("records[{i}]: key field {k} has no value"),
                        );
                    }
                    let found: Vec<usize> = staged
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| keys.iter().all(|k| r.get(k) == record.get(k)))
                        .map(|(i, _)| i)
                        .collect();
                    let [index] = found[..] else {
                        return envelope_error(
                            StatusCode::BAD_REQUEST,
                            "GS_VALIDATION_FAILED",
                            &format!(
                                "records[{i}]: {} records match the keys {}",
                                found.len(),
                                keys.join(",")
                            ),
                        );
                    };
                    let changed: Vec<String> = record
                        .iter()
                        .filter(|(k, v)| staged[index].get(*k) != Some(*v))
                        .map(|(k, _)| k.clone())
                        .collect();
                    staged[index].extend(record.clone());
                    staged[index].insert("ModifiedDate".into(), json!(now));
                    if !changed.is_empty() {
                        changes.push(("updated", changed, staged[index].clone()));
                    }
                    written.push(staged[index].clone());
                }
            }
        }
        t.seq = seq;
        if let Some(o) = t.objects.get_mut(object.as_str()) {
            o.1 = staged;
        }
        let rules: Vec<Rule> = t
            .rules
            .iter()
            .filter(|r| r.object == object)
            .cloned()
            .collect();
        let response =
            envelope_ok(json!({ "count": written.len(), "errors": null, "records": written }));
        (
            changes
                .into_iter()
                .flat_map(|c| rules.iter().map(move |r| (r.clone(), c.clone())))
                .collect::<Vec<_>>(),
            response,
        )
    };
    for (rule, (event_type, changed, record)) in changes {
        tokio::spawn(deliver(
            tenant.clone(),
            rule,
            object.clone(),
            event_type,
            changed,
            record,
        ));
    }
    response
}

/// Posts one signed change event, retrying with backoff until a 2xx (at most 6 tries).
async fn deliver(
    tenant: Arc<Mutex<Tenant>>,
    rule: Rule,
    object: String,
    event_type: &'static str,
    changed: Vec<String>,
    record: Record,
) {
    let occurred = record
        .get("ModifiedDate")
        .and_then(Value::as_i64)
        .unwrap_or_else(now_ms);
    let body = json!({
        "eventId": uuid::Uuid::new_v4().to_string(),
        "eventType": event_type,
        "objectName": object,
        "occurredAt": occurred,
        "changedFields": changed,
        "records": [record],
    })
    .to_string();
    let http = reqwest::Client::new();
    let mut wait = Duration::from_millis(100);
    for _ in 0..6 {
        let ts = now_ms() / 1000;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(rule.secret.as_bytes()).expect("any key length");
        mac.update(format!("{ts}.").as_bytes());
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let sent = http
            .post(&rule.url)
            .header("content-type", "application/json")
            .header("x-gs-timestamp", ts.to_string())
            .header("x-gs-signature", signature)
            .body(body.clone())
            .send()
            .await;
        if matches!(&sent, Ok(r) if r.status().is_success()) {
            lock(&tenant).stats.webhook_deliveries += 1;
            return;
        }
        lock(&tenant).stats.webhook_failures += 1;
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

/// The Data Management describe of one object: its fields with type, requiredness and whether
/// they can be written.
async fn describe(
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

async fn dump(State(tenant): TenantState, Path(object): Path<String>) -> Response {
    Json(
        lock(&tenant)
            .objects
            .get(object.as_str())
            .map(|o| o.1.clone())
            .unwrap_or_default(),
    )
    .into_response()
}

async fn stats(State(tenant): TenantState) -> Response {
    Json(lock(&tenant).stats.clone()).into_response()
}

async fn add_fault(State(tenant): TenantState, Json(fault): Json<Fault>) -> Response {
    lock(&tenant).faults.push_back(fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn add_rule(State(tenant): TenantState, Json(rule): Json<Rule>) -> Response {
    lock(&tenant).rules.push(rule);
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_follow_and_over_or_and_parentheses() {
        let truth: BTreeMap<String, bool> = [
            ("A".to_string(), true),
            ("B".to_string(), false),
            ("C".to_string(), true),
        ]
        .into();
        assert!(evaluate("A AND B OR C", &truth).unwrap());
        assert!(evaluate("A AND (B OR NOT_THERE)", &truth).is_err());
        assert!(!evaluate("A AND (B OR B)", &truth).unwrap());
        assert!(evaluate("(A", &truth).is_err());
    }
}
