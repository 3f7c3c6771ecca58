//! Salesforce emulator, written from the public REST API contract: OAuth 2.0 client-credentials
//! token endpoint, sObject describe, sObject Collections (create, update by Id, upsert on an
//! external ID; 200 records, per-record results, allOrNone), SOQL query with nextRecordsUrl paging,
//! Salesforce's error body (`[{"message","errorCode"}]`), the `Sforce-Limit-Info` header, and
//! switches to inject faults (error statuses, row locks, expired sessions, delays). Like a workflow
//! rule's Outbound Message, it posts a SOAP `notifications` message for every created or edited
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

pub type Record = Map<String, Value>;

/// Daily API request allowance reported in `Sforce-Limit-Info`.
pub const DAILY_LIMIT: u64 = 15_000;
/// Records per sObject Collections request.
pub const COLLECTION_LIMIT: usize = 200;
/// Records per query page.
pub const QUERY_BATCH: usize = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Id,
    String,
    Textarea,
    Picklist,
    Currency,
    Double,
    Int,
    Boolean,
    Date,
    Datetime,
    Email,
    Phone,
    Url,
    Reference,
}

#[derive(Clone, Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub kind: FieldType,
    pub length: usize,
    pub nillable: bool,
    pub createable: bool,
    pub updateable: bool,
    pub calculated: bool,
    pub external_id: bool,
    pub html: bool,
    pub defaulted: bool,
    pub picklist: &'static [&'static str],
    pub restricted: bool,
    pub reference_to: &'static [&'static str],
}

impl FieldDef {
    const fn new(name: &'static str, kind: FieldType) -> Self {
        Self {
            name,
            kind,
            length: 0,
            nillable: true,
            createable: true,
            updateable: true,
            calculated: false,
            external_id: false,
            html: false,
            defaulted: false,
            picklist: &[],
            restricted: false,
            reference_to: &[],
        }
    }
    const fn len(mut self, n: usize) -> Self {
        self.length = n;
        self
    }
    const fn required(mut self) -> Self {
        self.nillable = false;
        self
    }
    const fn system(mut self) -> Self {
        self.createable = false;
        self.updateable = false;
        self.nillable = false;
        self.defaulted = true;
        self
    }
    const fn external(mut self) -> Self {
        self.external_id = true;
        self
    }
    const fn formula(mut self) -> Self {
        self.calculated = true;
        self.createable = false;
        self.updateable = false;
        self
    }
    const fn rich(mut self) -> Self {
        self.html = true;
        self
    }
    const fn picklist(mut self, values: &'static [&'static str], restricted: bool) -> Self {
        self.picklist = values;
        self.restricted = restricted;
        self
    }
    const fn defaulted(mut self) -> Self {
        self.defaulted = true;
        self
    }
    const fn refers(mut self, to: &'static [&'static str]) -> Self {
        self.reference_to = to;
        self
    }

    fn required_on_create(&self) -> bool {
        !self.nillable && self.createable && !self.defaulted && self.kind != FieldType::Boolean
    }
}

use FieldType as T;

const INDUSTRIES: &[&str] = &[
    "Agriculture",
    "Banking",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Finance",
    "Government",
    "Healthcare",
    "Insurance",
    "Manufacturing",
    "Media",
    "Retail",
    "Technology",
    "Transportation",
    "Utilities",
    "Other",
];

fn system_fields() -> Vec<FieldDef> {
    vec![
        FieldDef::new("Id", T::Id).len(18).system(),
        FieldDef::new("CreatedDate", T::Datetime).system(),
        FieldDef::new("LastModifiedDate", T::Datetime).system(),
        FieldDef::new("SystemModstamp", T::Datetime).system(),
        FieldDef::new("IsDeleted", T::Boolean).system(),
    ]
}

/// The standard objects the emulator serves, with the fields a sync touches.
fn standard_objects() -> Vec<(&'static str, &'static str, Vec<FieldDef>)> {
    let mut account = system_fields();
    account.extend([
        FieldDef::new("Name", T::String).len(255).required(),
        FieldDef::new("AnnualRevenue", T::Currency),
        FieldDef::new("Industry", T::Picklist)
            .len(255)
            .picklist(INDUSTRIES, true),
        FieldDef::new("NumberOfEmployees", T::Int),
        FieldDef::new("Website", T::Url).len(255),
        FieldDef::new("Phone", T::Phone).len(40),
        FieldDef::new("Description", T::Textarea).len(32_000),
        FieldDef::new("Rich_Notes__c", T::Textarea)
            .len(32_768)
            .rich(),
        FieldDef::new("Health_Score__c", T::Double).formula(),
        FieldDef::new("Gainsight_Company_Id__c", T::String)
            .len(40)
            .external(),
    ]);
    let mut contact = system_fields();
    contact.extend([
        FieldDef::new("FirstName", T::String).len(40),
        FieldDef::new("LastName", T::String).len(80).required(),
        FieldDef::new("Email", T::Email).len(80),
        FieldDef::new("Title", T::String).len(128),
        FieldDef::new("Phone", T::Phone).len(40),
        FieldDef::new("AccountId", T::Reference)
            .len(18)
            .refers(&["Account"]),
        FieldDef::new("Gainsight_Person_Id__c", T::String)
            .len(40)
            .external(),
    ]);
    let mut case = system_fields();
    case.extend([
        FieldDef::new("CaseNumber", T::String).len(30).system(),
        FieldDef::new("Subject", T::String).len(255),
        FieldDef::new("Description", T::Textarea).len(32_000),
        FieldDef::new("Status", T::Picklist)
            .len(40)
            .required()
            .defaulted()
            .picklist(&["New", "Working", "Escalated", "Closed"], true),
        FieldDef::new("Priority", T::Picklist)
            .len(40)
            .picklist(&["High", "Medium", "Low"], true),
        FieldDef::new("Origin", T::Picklist)
            .len(40)
            .picklist(&["Phone", "Email", "Web"], false),
        FieldDef::new("AccountId", T::Reference)
            .len(18)
            .refers(&["Account"]),
        FieldDef::new("ContactId", T::Reference)
            .len(18)
            .refers(&["Contact"]),
        FieldDef::new("Gainsight_Case_Id__c", T::String)
            .len(40)
            .external(),
    ]);
    vec![
        ("Account", "001", account),
        ("Contact", "003", contact),
        ("Case", "500", case),
    ]
}

/// A fault to inject into the next API calls (token requests are not affected unless said).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer `status` with Salesforce's error body, `times` times.
    Status {
        status: u16,
        error_code: String,
        message: String,
        times: u32,
    },
    /// Fail every record of the next `times` collection calls with UNABLE_TO_LOCK_ROW.
    LockRows { times: u32 },
    /// Wait `ms` before answering the next `times` calls (client timeouts).
    Delay { ms: u64, times: u32 },
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub token_requests: u64,
    /// Every API request under /services/data, whatever its outcome.
    pub api_calls: u64,
    pub upsert_calls: u64,
    pub query_calls: u64,
    pub describe_calls: u64,
    pub records_created: u64,
    pub records_updated: u64,
    pub create_calls: u64,
    pub update_calls: u64,
    /// Outbound messages acknowledged, and delivery attempts that were not.
    pub outbound_acked: u64,
    pub outbound_failures: u64,
}

/// An Outbound Message action: which object's changes go where, with which fields.
#[derive(Clone, Debug, Deserialize)]
pub struct OutboundMessage {
    pub object: String,
    pub url: String,
    /// Fields sent in each notification's sObject (`Id` is always sent).
    pub fields: Vec<String>,
}

/// The Organization Id the emulated org puts in every Outbound Message.
pub const ORGANIZATION_ID: &str = "00D5g00000EMUL8AAA";

struct SObject {
    prefix: &'static str,
    fields: Vec<FieldDef>,
    records: Vec<Record>,
}

impl SObject {
    fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

struct Org {
    client_id: String,
    client_secret: String,
    instance_url: String,
    objects: BTreeMap<&'static str, SObject>,
    tokens: Vec<String>,
    seq: u64,
    stats: Stats,
    faults: VecDeque<Fault>,
    cursors: HashMap<String, (Vec<Record>, String)>,
    clock_ms: Option<i64>,
    outbound: Vec<OutboundMessage>,
}

/// Options of an emulated org.
#[derive(Clone, Debug)]
pub struct Options {
    pub client_id: String,
    pub client_secret: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            client_id: "3MVG9emulator.consumer.key".into(),
            client_secret: "emulator-consumer-secret".into(),
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
                        },
                    )
                })
                .collect(),
            tokens: vec![],
            seq: 0,
            stats: Stats::default(),
            faults: VecDeque::new(),
            cursors: HashMap::new(),
            clock_ms: None,
            outbound: Vec::new(),
        }));
        let router = axum::Router::new()
            .route("/services/oauth2/token", post(token))
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
            .route("/services/data/{ver}/query", get(query))
            .route("/services/data/{ver}/query/{locator}", get(query_more))
            .route("/__emulator/records/{object}", get(dump).post(seed))
            .route("/__emulator/records/{object}/{id}", patch(user_edit))
            .route("/__emulator/outbound", post(add_outbound))
            .route("/__emulator/stats", get(stats))
            .route("/__emulator/faults", post(add_fault))
            .route("/__emulator/expire-tokens", post(expire))
            .with_state(org.clone());
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

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
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
        seed_records(&self.org, object, records)
    }

    /// Edits a record as a Salesforce user would (fires Outbound Messages); false if absent.
    pub fn edit(&self, object: &str, id: &str, fields: Record) -> bool {
        edit_record(&self.org, object, id, fields)
    }

    /// Sends an Outbound Message for every later create or edit of `message.object`.
    pub fn add_outbound(&self, message: OutboundMessage) {
        self.lock().outbound.push(message);
    }
}

fn seed_records(org_arc: &Arc<Mutex<Org>>, object: &str, records: Vec<Record>) -> Vec<String> {
    let mut org = lock(org_arc);
    let now = org.now();
    let mut ids = vec![];
    let mut created = vec![];
    for mut r in records {
        let id = org.next_id(object);
        stamp(&mut r, &id, now, true);
        created.push(r.clone());
        if let Some(o) = org.objects.get_mut(object) {
            o.records.push(r);
        }
        ids.push(id);
    }
    let sends = org.outbound_for(object, &created);
    drop(org);
    spawn_outbound(org_arc, sends);
    ids
}

fn edit_record(org_arc: &Arc<Mutex<Org>>, object: &str, id: &str, fields: Record) -> bool {
    let mut org = lock(org_arc);
    let now = org.now();
    let Some(record) = org.objects.get_mut(object).and_then(|o| {
        o.records
            .iter_mut()
            .find(|r| r.get("Id").and_then(Value::as_str) == Some(id))
    }) else {
        return false;
    };
    record.extend(fields);
    stamp(record, id, now, false);
    let edited = vec![record.clone()];
    let sends = org.outbound_for(object, &edited);
    drop(org);
    spawn_outbound(org_arc, sends);
    true
}

/// One SOAP message to send: the action and up to 100 notifications.
struct OutboundSend {
    url: String,
    body: String,
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl Org {
    /// The Outbound Messages due for `records` of `object`, 100 notifications a message.
    fn outbound_for(&mut self, object: &str, records: &[Record]) -> Vec<OutboundSend> {
        let configs: Vec<OutboundMessage> = self
            .outbound
            .iter()
            .filter(|m| m.object == object)
            .cloned()
            .collect();
        let mut sends = Vec::new();
        for config in configs {
            for chunk in records.chunks(100) {
                let mut notifications = String::new();
                for record in chunk {
                    self.seq += 1;
                    let notification_id = format!("04l5g00{:011}", self.seq);
                    let mut fields = String::new();
                    let mut names = vec!["Id".to_string()];
                    names.extend(config.fields.iter().filter(|f| f.as_str() != "Id").cloned());
                    for name in names {
                        match record.get(&name) {
                            None | Some(Value::Null) => {
                                fields.push_str(&format!("<sf:{name} xsi:nil=\"true\"/>"))
                            }
                            Some(Value::String(v)) => fields
                                .push_str(&format!("<sf:{name}>{}</sf:{name}>", xml_escape(v))),
                            Some(other) => {
                                fields.push_str(&format!("<sf:{name}>{other}</sf:{name}>"))
                            }
                        }
                    }
                    notifications.push_str(&format!(
                        "<Notification><Id>{notification_id}</Id><sObject xsi:type=\"sf:{object}\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">{fields}</sObject></Notification>"
                    ));
                }
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
<soapenv:Body><notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\
<OrganizationId>{ORGANIZATION_ID}</OrganizationId><ActionId>04k5g0000000EMUAAA</ActionId>\
<SessionId xsi:nil=\"true\"/><EnterpriseUrl>{url}/services/Soap/c/62.0/{ORGANIZATION_ID}</EnterpriseUrl>\
<PartnerUrl>{url}/services/Soap/u/62.0/{ORGANIZATION_ID}</PartnerUrl>{notifications}</notifications></soapenv:Body></soapenv:Envelope>",
                    url = self.instance_url
                );
                sends.push(OutboundSend {
                    url: config.url.clone(),
                    body,
                });
            }
        }
        sends
    }
}

fn spawn_outbound(org: &Arc<Mutex<Org>>, sends: Vec<OutboundSend>) {
    for send in sends {
        tokio::spawn(deliver_outbound(org.clone(), send));
    }
}

/// Posts one Outbound Message until the listener acknowledges it, backing off as Salesforce does
/// (here from 100 ms, doubling to 5 s, for at most 40 attempts).
async fn deliver_outbound(org: Arc<Mutex<Org>>, send: OutboundSend) {
    let http = reqwest::Client::new();
    let mut wait = Duration::from_millis(100);
    for _ in 0..40 {
        let answer = http
            .post(&send.url)
            .header("content-type", "text/xml; charset=utf-8")
            .header("soapaction", "\"\"")
            .body(send.body.clone())
            .send()
            .await;
        let acked = match answer {
            Ok(r) if r.status().is_success() => r
                .text()
                .await
                .map(|t| t.replace(' ', "").contains("Ack>true</"))
                .unwrap_or(false),
            _ => false,
        };
        if acked {
            lock(&org).stats.outbound_acked += 1;
            return;
        }
        lock(&org).stats.outbound_failures += 1;
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

impl Org {
    fn now(&self) -> i64 {
        self.clock_ms.unwrap_or_else(now_ms)
    }

    fn next_id(&mut self, object: &str) -> String {
        self.seq += 1;
        let prefix = self.objects.get(object).map(|o| o.prefix).unwrap_or("a00");
        let id15 = format!("{prefix}5g00{:08}", self.seq);
        format!("{id15}{}", id_suffix(&id15))
    }

    /// Counts the call and applies the first pending fault, if any.
    #[allow(clippy::result_large_err)] // an axum Response is the natural early answer of a handler
    fn begin_call(&mut self, headers: &HeaderMap) -> Result<Option<Fault>, Response> {
        self.stats.api_calls += 1;
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !self.tokens.iter().any(|t| t == token) {
            return Err(sf_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
                self.stats.api_calls,
            ));
        }
        let Some(front) = self.faults.front_mut() else {
            return Ok(None);
        };
        let fault = front.clone();
        let exhausted = match front {
            Fault::Status { times, .. } | Fault::Delay { times, .. } => {
                *times = times.saturating_sub(1);
                *times == 0
            }
            // Row locks apply to collection calls only; the upsert handler consumes them.
            Fault::LockRows { .. } => return Ok(None),
        };
        if exhausted {
            self.faults.pop_front();
        }
        if let Fault::Status {
            status,
            error_code,
            message,
            ..
        } = &fault
        {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Err(sf_error(status, error_code, message, self.stats.api_calls));
        }
        Ok(Some(fault))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The 3-character case-safety suffix of an 18-character Salesforce Id.
pub fn id_suffix(id15: &str) -> String {
    const MAP: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk.iter().enumerate().fold(0usize, |acc, (i, c)| {
                if c.is_ascii_uppercase() {
                    acc | (1 << i)
                } else {
                    acc
                }
            });
            MAP[bits] as char
        })
        .collect()
}

fn stamp(record: &mut Record, id: &str, now: i64, created: bool) {
    let ts = Value::String(sf_datetime(now));
    record.insert("Id".into(), Value::String(id.into()));
    if created {
        record.insert("CreatedDate".into(), ts.clone());
        record.insert("IsDeleted".into(), Value::Bool(false));
    }
    record.insert("LastModifiedDate".into(), ts.clone());
    record.insert("SystemModstamp".into(), ts);
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
    let mut resp = (StatusCode::OK, Json(body)).into_response();
    let (k, v) = limit_header(used);
    resp.headers_mut().insert(k, v);
    resp
}

type OrgState = State<Arc<Mutex<Org>>>;

fn lock(org: &Arc<Mutex<Org>>) -> std::sync::MutexGuard<'_, Org> {
    org.lock().unwrap_or_else(|e| e.into_inner())
}

async fn token(State(org): OrgState, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut org = lock(&org);
    org.stats.token_requests += 1;
    let oauth_error = |error: &str, description: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": error, "error_description": description })),
        )
            .into_response()
    };
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(_) => return oauth_error("unsupported_grant_type", "grant type not supported"),
        None => return oauth_error("invalid_request", "grant_type is required"),
    }
    if form.get("client_id") != Some(&org.client_id)
        || form.get("client_secret") != Some(&org.client_secret)
    {
        return oauth_error("invalid_client", "invalid client credentials");
    }
    org.seq += 1;
    let token = format!(
        "00D5g000000emul!AQ{}{}",
        org.seq,
        uuid::Uuid::new_v4().simple()
    );
    org.tokens.push(token.clone());
    let now = org.now();
    (
        StatusCode::OK,
        Json(json!({
            "access_token": token,
            "signature": "emulator",
            "scope": "api",
            "instance_url": org.instance_url,
            "id": format!("{}/id/00D5g000000emulAAA/0055g000000emulAAA", org.instance_url),
            "token_type": "Bearer",
            "issued_at": now.to_string(),
        })),
    )
        .into_response()
}

async fn describe(
    State(org): OrgState,
    headers: HeaderMap,
    Path((_ver, object)): Path<(String, String)>,
) -> Response {
    let mut org = lock(&org);
    if let Err(resp) = org.begin_call(&headers) {
        return resp;
    }
    org.stats.describe_calls += 1;
    let used = org.stats.api_calls;
    let Some(sobject) = org.objects.get(object.as_str()) else {
        return sf_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            used,
        );
    };
    let fields: Vec<Value> = sobject
        .fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "label": f.name.trim_end_matches("__c").replace('_', " "),
                "type": f.kind,
                "length": f.length,
                "nillable": f.nillable,
                "createable": f.createable,
                "updateable": f.updateable,
                "calculated": f.calculated,
                "externalId": f.external_id,
                "unique": f.external_id,
                "idLookup": f.external_id || f.name == "Id",
                "htmlFormatted": f.html,
                "defaultedOnCreate": f.defaulted,
                "custom": f.name.ends_with("__c"),
                "restrictedPicklist": f.restricted,
                "referenceTo": f.reference_to,
                "picklistValues": f.picklist.iter().map(|v| json!({"value": v, "label": v, "active": true, "defaultValue": false})).collect::<Vec<_>>(),
            })
        })
        .collect();
    ok_json(
        json!({
            "name": object,
            "label": object,
            "custom": false,
            "keyPrefix": sobject.prefix,
            "createable": true,
            "updateable": true,
            "queryable": true,
            "fields": fields,
        }),
        used,
    )
}

/// Which sObject Collections call a request is.
enum Op {
    Upsert { object: String, ext_field: String },
    Create,
    Update,
}

async fn upsert(
    State(org): OrgState,
    headers: HeaderMap,
    Path((_ver, object, ext_field)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    collection(org, headers, Op::Upsert { object, ext_field }, body).await
}

async fn create(
    State(org): OrgState,
    headers: HeaderMap,
    Path(_ver): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    collection(org, headers, Op::Create, body).await
}

async fn update(
    State(org): OrgState,
    headers: HeaderMap,
    Path(_ver): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    collection(org, headers, Op::Update, body).await
}

async fn collection(
    org_arc: Arc<Mutex<Org>>,
    headers: HeaderMap,
    op: Op,
    body: axum::body::Bytes,
) -> Response {
    let delay = {
        let mut org = lock(&org_arc);
        match org.begin_call(&headers) {
            Err(resp) => return resp,
            Ok(Some(Fault::Delay { ms, .. })) => Some(ms),
            Ok(_) => None,
        }
    };
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut org = lock(&org_arc);
    match op {
        Op::Upsert { .. } => org.stats.upsert_calls += 1,
        Op::Create => org.stats.create_calls += 1,
        Op::Update => org.stats.update_calls += 1,
    }
    let used = org.stats.api_calls;
    let lock_rows = matches!(org.faults.front(), Some(Fault::LockRows { .. })) && {
        if let Some(Fault::LockRows { times }) = org.faults.front_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                org.faults.pop_front();
            }
        }
        true
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return sf_error(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                &format!("Unexpected character: {e}"),
                used,
            )
        }
    };
    let Some(records) = request.get("records").and_then(Value::as_array) else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            "Unrecognized field \"records\" missing",
            used,
        );
    };
    let all_or_none = request
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if records.len() > COLLECTION_LIMIT {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
            used,
        );
    }
    let object = match &op {
        Op::Upsert { object, .. } => object.clone(),
        // Create and update name the type in each record; this org takes one type per call.
        _ => records
            .first()
            .and_then(|r| r.get("attributes"))
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    let Some(sobject) = org.objects.get(object.as_str()) else {
        return sf_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            used,
        );
    };
    if let Op::Upsert { ext_field, .. } = &op {
        match sobject.field(ext_field) {
            Some(f) if f.external_id || f.kind == FieldType::Id => {}
            _ => {
                return sf_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    &format!("Field name provided, {ext_field} is not an External ID or indexed field for {object}"),
                    used,
                )
            }
        }
    }

    let now = org.now();
    let mut staged: Vec<Record> = org.objects[object.as_str()].records.clone();
    let mut results: Vec<Value> = Vec::with_capacity(records.len());
    let mut any_failed = false;
    let mut seen_keys: Vec<String> = vec![];
    let mut created = 0;
    let mut updated = 0;
    let mut touched = vec![];
    for raw in records {
        let outcome = match &op {
            Op::Upsert { ext_field, .. } => upsert_one(
                &org.objects[object.as_str()],
                &object,
                ext_field,
                raw,
                &mut staged,
                &mut seen_keys,
                lock_rows,
            ),
            Op::Create => create_one(
                &org.objects[object.as_str()],
                &object,
                raw,
                &mut staged,
                lock_rows,
            ),
            Op::Update => update_one(
                &org.objects[object.as_str()],
                &object,
                raw,
                &mut staged,
                &mut seen_keys,
                lock_rows,
            ),
        };
        match outcome {
            Ok((index, is_new)) => {
                let id = if is_new {
                    let id = org.next_id(&object);
                    stamp(&mut staged[index], &id, now, true);
                    created += 1;
                    id
                } else {
                    let id = staged[index]
                        .get("Id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    stamp(&mut staged[index], &id, now, false);
                    updated += 1;
                    id
                };
                touched.push(index);
                results.push(json!({ "id": id, "success": true, "errors": [], "created": is_new }));
            }
            Err(error) => {
                any_failed = true;
                results.push(json!({ "success": false, "errors": [error] }));
            }
        }
    }
    if all_or_none && any_failed {
        for r in &mut results {
            if r["success"] == json!(true) {
                *r = json!({ "id": r["id"], "success": false, "errors": [{
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                    "fields": []
                }]});
            }
        }
        return ok_json(Value::Array(results), used);
    }
    let written: Vec<Record> = touched.iter().map(|i| staged[*i].clone()).collect();
    if let Some(o) = org.objects.get_mut(object.as_str()) {
        o.records = staged;
    }
    org.stats.records_created += created;
    org.stats.records_updated += updated;
    let sends = org.outbound_for(&object, &written);
    drop(org);
    spawn_outbound(&org_arc, sends);
    ok_json(Value::Array(results), used)
}

fn save_error(code: &str, message: String, fields: Vec<&str>) -> Value {
    json!({ "statusCode": code, "message": message, "fields": fields })
}

fn declared_type(record: &Record) -> Option<&str> {
    record
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
}

/// Validates and applies one new record; refuses a duplicate external-ID value.
fn create_one(
    sobject: &SObject,
    object: &str,
    raw: &Value,
    staged: &mut Vec<Record>,
    lock_rows: bool,
) -> Result<(usize, bool), Value> {
    let Some(record) = raw.as_object().filter(|r| declared_type(r) == Some(object)) else {
        return Err(save_error(
            "INVALID_TYPE",
            format!("attributes.type must be {object} (one sObject type per call)"),
            vec![],
        ));
    };
    if record.contains_key("Id") {
        return Err(save_error(
            "INVALID_FIELD",
            "cannot specify Id in an insert call".into(),
            vec!["Id"],
        ));
    }
    if lock_rows {
        return Err(save_error(
            "UNABLE_TO_LOCK_ROW",
            "unable to obtain exclusive access to this record or 1 records".into(),
            vec![],
        ));
    }
    for def in sobject.fields.iter().filter(|f| f.external_id) {
        if let Some(Value::String(v)) = record.get(def.name) {
            if let Some(other) = staged
                .iter()
                .find(|r| r.get(def.name).and_then(Value::as_str) == Some(v.as_str()))
            {
                let id = other.get("Id").and_then(Value::as_str).unwrap_or_default();
                return Err(save_error(
                    "DUPLICATE_VALUE",
                    format!(
                        "duplicate value found: {} duplicates value on record with id: {id}",
                        def.name
                    ),
                    vec![def.name],
                ));
            }
        }
    }
    let fields = check_fields(sobject, object, record, true)?;
    staged.push(fields);
    Ok((staged.len() - 1, true))
}

/// Validates and applies one update by Id.
fn update_one(
    sobject: &SObject,
    object: &str,
    raw: &Value,
    staged: &mut [Record],
    seen: &mut Vec<String>,
    lock_rows: bool,
) -> Result<(usize, bool), Value> {
    let Some(record) = raw.as_object().filter(|r| declared_type(r) == Some(object)) else {
        return Err(save_error(
            "INVALID_TYPE",
            format!("attributes.type must be {object} (one sObject type per call)"),
            vec![],
        ));
    };
    let Some(id) = record.get("Id").and_then(Value::as_str).map(str::to_string) else {
        return Err(save_error(
            "MISSING_ARGUMENT",
            "Id not specified in an update call".into(),
            vec!["Id"],
        ));
    };
    if seen.contains(&id) {
        return Err(save_error(
            "DUPLICATE_ID",
            format!("duplicate id in list: {id}"),
            vec!["Id"],
        ));
    }
    seen.push(id.clone());
    if lock_rows {
        return Err(save_error(
            "UNABLE_TO_LOCK_ROW",
            "unable to obtain exclusive access to this record or 1 records".into(),
            vec![],
        ));
    }
    let Some(index) = staged
        .iter()
        .position(|r| r.get("Id").and_then(Value::as_str) == Some(id.as_str()))
    else {
        return Err(save_error(
            "INVALID_CROSS_REFERENCE_KEY",
            format!("invalid cross reference id: {id}"),
            vec!["Id"],
        ));
    };
    let fields = check_fields(sobject, object, record, false)?;
    staged[index].extend(fields);
    Ok((index, false))
}

/// Field-level checks of one record: known, writable, typed, required on create, not nulled when
/// required. Returns the fields to store (without `attributes`).
fn check_fields(
    sobject: &SObject,
    object: &str,
    record: &Record,
    is_new: bool,
) -> Result<Record, Value> {
    for (name, value) in record.iter().filter(|(k, _)| k.as_str() != "attributes") {
        let Some(def) = sobject.field(name) else {
            return Err(save_error(
                "INVALID_FIELD",
                format!("No such column '{name}' on sobject of type {object}"),
                vec![],
            ));
        };
        if (is_new && !def.createable) || (!is_new && !def.updateable && def.kind != FieldType::Id)
        {
            return Err(save_error(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!("Unable to create/update fields: {name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."),
                vec![def.name],
            ));
        }
        check_value(def, value)
            .map_err(|(code, message)| save_error(code, message, vec![def.name]))?;
    }
    if is_new {
        let missing: Vec<&str> = sobject
            .fields
            .iter()
            .filter(|f| f.required_on_create() && record.get(f.name).is_none_or(Value::is_null))
            .map(|f| f.name)
            .collect();
        if !missing.is_empty() {
            return Err(save_error(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                missing,
            ));
        }
    } else if let Some(def) = sobject
        .fields
        .iter()
        .find(|f| !f.nillable && f.updateable && record.get(f.name) == Some(&Value::Null))
    {
        return Err(save_error(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", def.name),
            vec![def.name],
        ));
    }
    let mut fields: Record = record
        .iter()
        .filter(|(k, _)| k.as_str() != "attributes")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if is_new {
        for f in sobject
            .fields
            .iter()
            .filter(|f| f.defaulted && f.kind == FieldType::Picklist)
        {
            fields.entry(f.name.to_string()).or_insert_with(|| {
                Value::String(f.picklist.first().copied().unwrap_or_default().into())
            });
        }
    }
    Ok(fields)
}

/// Validates and applies one record to `staged`; returns its index and whether it was created.
fn upsert_one(
    sobject: &SObject,
    object: &str,
    ext_field: &str,
    raw: &Value,
    staged: &mut Vec<Record>,
    seen_keys: &mut Vec<String>,
    lock_rows: bool,
) -> Result<(usize, bool), Value> {
    let err = |code: &str, message: String, fields: Vec<&str>| save_error(code, message, fields);
    let Some(record) = raw.as_object() else {
        return Err(err(
            "INVALID_TYPE",
            "record must be a JSON object".into(),
            vec![],
        ));
    };
    if declared_type(record) != Some(object) {
        return Err(err(
            "INVALID_TYPE",
            format!("attributes.type must be {object}"),
            vec![],
        ));
    }
    let key = match record.get(ext_field) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(err(
                "MISSING_ARGUMENT",
                format!("{ext_field} not specified"),
                vec![ext_field],
            ))
        }
    };
    if seen_keys.contains(&key) {
        return Err(err(
            "DUPLICATE_EXTERNAL_ID",
            format!("Duplicate external id specified: {key}"),
            vec![ext_field],
        ));
    }
    seen_keys.push(key.clone());
    if lock_rows {
        return Err(err(
            "UNABLE_TO_LOCK_ROW",
            "unable to obtain exclusive access to this record or 1 records".into(),
            vec![],
        ));
    }
    let matches: Vec<usize> = staged
        .iter()
        .enumerate()
        .filter(|(_, r)| r.get(ext_field).and_then(Value::as_str) == Some(key.as_str()))
        .map(|(i, _)| i)
        .collect();
    if matches.len() > 1 {
        return Err(err(
            "DUPLICATE_EXTERNAL_ID",
            format!("{ext_field}: more than one record found for external id field: {key}"),
            vec![ext_field],
        ));
    }
    let is_new = matches.is_empty();
    let fields = check_fields(sobject, object, record, is_new)?;
    if is_new {
        staged.push(fields);
        Ok((staged.len() - 1, true))
    } else {
        let index = matches[0];
        staged[index].extend(fields);
        Ok((index, false))
    }
}

fn check_value(def: &FieldDef, value: &Value) -> Result<(), (&'static str, String)> {
    if value.is_null() {
        return Ok(());
    }
    let bad_type = || {
        (
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            format!("{}: value not of required type: {value}", def.name),
        )
    };
    match def.kind {
        T::Id
        | T::String
        | T::Textarea
        | T::Picklist
        | T::Email
        | T::Phone
        | T::Url
        | T::Reference => {
            let Some(s) = value.as_str() else {
                return Err(bad_type());
            };
            if def.length > 0 && s.chars().count() > def.length {
                return Err((
                    "STRING_TOO_LONG",
                    format!(
                        "{}: data value too large: {s} (max length={})",
                        def.name, def.length
                    ),
                ));
            }
            if def.kind == T::Picklist && def.restricted && !def.picklist.contains(&s) {
                return Err((
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("{}: bad value for restricted picklist field: {s}", def.name),
                ));
            }
            if def.kind == T::Email && !s.contains('@') {
                return Err((
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {s}", def.name),
                ));
            }
            Ok(())
        }
        T::Currency | T::Double => value.as_f64().map(|_| ()).ok_or_else(bad_type),
        T::Int => value.as_i64().map(|_| ()).ok_or_else(bad_type),
        T::Boolean => value.as_bool().map(|_| ()).ok_or_else(bad_type),
        T::Date => value
            .as_str()
            .filter(|s| parse_date_ms(s).is_some() && s.len() == 10)
            .map(|_| ())
            .ok_or_else(bad_type),
        T::Datetime => value
            .as_str()
            .and_then(parse_datetime_ms)
            .map(|_| ())
            .ok_or_else(bad_type),
    }
}

/// `2026-11-23T23:01:11.000+0000`, the format Salesforce returns datetimes in.
pub fn sf_datetime(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+0000",
        rem / 3_600_000,
        (rem / 60_000) % 60,
        (rem / 1000) % 60,
        rem % 1000
    )
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_date_ms(s: &str) -> Option<i64> {
    let b = s.get(0..10)?;
    let (y, m, d) = (
        b.get(0..4)?.parse().ok()?,
        b.get(5..7)?.parse().ok()?,
        b.get(8..10)?.parse().ok()?,
    );
    if &b[4..5] != "-" || &b[7..8] != "-" || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400_000)
}

/// Parses `YYYY-MM-DDThh:mm:ss[.sss](Z|+hhmm|+hh:mm)` to epoch ms.
pub fn parse_datetime_ms(s: &str) -> Option<i64> {
    let day = parse_date_ms(s)?;
    if s.get(10..11)? != "T" {
        return None;
    }
    let (h, mi, se): (i64, i64, i64) = (
        s.get(11..13)?.parse().ok()?,
        s.get(14..16)?.parse().ok()?,
        s.get(17..19)?.parse().ok()?,
    );
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        ms = format!("{digits:0<3}")[..3].parse().ok()?;
        rest = &frac[digits.len()..];
    }
    let offset_min = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.get(0..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let digits = rest[1..].replace(':', "");
            let (oh, om): (i64, i64) = (
                digits.get(0..2)?.parse().ok()?,
                digits.get(2..4)?.parse().ok()?,
            );
            sign * (oh * 60 + om)
        }
    };
    Some(day + ((h * 60 + mi - offset_min) * 60 + se) * 1000 + ms)
}

#[derive(Deserialize)]
struct QueryParams {
    q: Option<String>,
}

async fn query(
    State(org): OrgState,
    headers: HeaderMap,
    Path(ver): Path<String>,
    Query(params): Query<QueryParams>,
) -> Response {
    let mut org = lock(&org);
    if let Err(resp) = org.begin_call(&headers) {
        return resp;
    }
    org.stats.query_calls += 1;
    let used = org.stats.api_calls;
    let Some(q) = params.q else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "q is required",
            used,
        );
    };
    let parsed = match soql::parse(&q) {
        Ok(p) => p,
        Err(message) => {
            return sf_error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &message, used)
        }
    };
    let Some(sobject) = org.objects.get(parsed.from.as_str()) else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            &format!("sObject type '{}' is not supported.", parsed.from),
            used,
        );
    };
    let rows = match soql::run(&parsed, &sobject.records, |f| {
        sobject.field(f).map(|d| d.kind)
    }) {
        Ok(rows) => rows,
        Err(message) => return sf_error(StatusCode::BAD_REQUEST, "INVALID_FIELD", &message, used),
    };
    let object = parsed.from.clone();
    page(&mut org, rows, object, &ver, used)
}

async fn query_more(
    State(org): OrgState,
    headers: HeaderMap,
    Path((ver, locator)): Path<(String, String)>,
) -> Response {
    let mut org = lock(&org);
    if let Err(resp) = org.begin_call(&headers) {
        return resp;
    }
    org.stats.query_calls += 1;
    let used = org.stats.api_calls;
    let Some((rows, object)) = org.cursors.remove(&locator) else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
            used,
        );
    };
    page(&mut org, rows, object, &ver, used)
}

fn page(org: &mut Org, mut rows: Vec<Record>, object: String, ver: &str, used: u64) -> Response {
    let total = rows.len();
    let rest = if rows.len() > QUERY_BATCH {
        rows.split_off(QUERY_BATCH)
    } else {
        vec![]
    };
    let records: Vec<Value> = rows
        .into_iter()
        .map(|mut r| {
            let id = r.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
            let mut out = Record::new();
            out.insert("attributes".into(), json!({"type": object, "url": format!("/services/data/{ver}/sobjects/{object}/{id}")}));
            out.append(&mut r);
            Value::Object(out)
        })
        .collect();
    let mut body = json!({ "totalSize": total, "done": rest.is_empty(), "records": records });
    if !rest.is_empty() {
        org.seq += 1;
        let locator = format!("01g5g{:010}-{QUERY_BATCH}", org.seq);
        body["nextRecordsUrl"] = json!(format!("/services/data/{ver}/query/{locator}"));
        org.cursors.insert(locator, (rest, object));
    }
    ok_json(body, used)
}

async fn dump(State(org): OrgState, Path(object): Path<String>) -> Response {
    let org = lock(&org);
    Json(
        org.objects
            .get(object.as_str())
            .map(|o| o.records.clone())
            .unwrap_or_default(),
    )
    .into_response()
}

async fn seed(
    State(org): OrgState,
    Path(object): Path<String>,
    Json(records): Json<Vec<Record>>,
) -> Response {
    Json(seed_records(&org, &object, records)).into_response()
}

async fn user_edit(
    State(org): OrgState,
    Path((object, id)): Path<(String, String)>,
    Json(fields): Json<Record>,
) -> Response {
    if edit_record(&org, &object, &id, fields) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn add_outbound(State(org): OrgState, Json(message): Json<OutboundMessage>) -> Response {
    lock(&org).outbound.push(message);
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(org): OrgState) -> Response {
    Json(lock(&org).stats.clone()).into_response()
}

async fn add_fault(State(org): OrgState, Json(fault): Json<Fault>) -> Response {
    lock(&org).faults.push_back(fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn expire(State(org): OrgState) -> Response {
    lock(&org).tokens.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// A small SOQL subset: `SELECT f, ... FROM Obj [WHERE c (AND|OR) c ...] [ORDER BY f [ASC|DESC], ...] [LIMIT n]`,
/// conditions `field op literal` with =, !=, <, <=, >, >=, LIKE, IN (...), NOT IN (...).
pub mod soql {
    use super::{parse_date_ms, parse_datetime_ms, FieldType, Record};
    use serde_json::Value;
    use std::cmp::Ordering;

    #[derive(Debug, Clone, PartialEq)]
    pub enum Literal {
        Str(String),
        Num(f64),
        Bool(bool),
        Null,
        /// Unquoted date or datetime literal, as epoch ms.
        Instant(i64),
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct Condition {
        pub field: String,
        pub op: String,
        pub values: Vec<Literal>,
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct Select {
        pub fields: Vec<String>,
        pub from: String,
        pub conditions: Vec<Condition>,
        /// Joiners between conditions: "AND" or "OR" (evaluated left to right, AND binding tighter).
        pub joiners: Vec<String>,
        pub order_by: Vec<(String, bool)>,
        pub limit: Option<usize>,
    }

    fn tokens(q: &str) -> Result<Vec<String>, String> {
        let mut out = vec![];
        let chars: Vec<char> = q.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                i += 1;
            } else if c == '\'' {
                let mut s = String::from("'");
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string literal".into()),
                        Some('\\') => {
                            let next = chars.get(i + 1).copied().ok_or("dangling escape")?;
                            s.push(match next {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(s);
            } else if "(),".contains(c) {
                out.push(c.to_string());
                i += 1;
            } else if "=!<>".contains(c) {
                let mut op = c.to_string();
                if chars.get(i + 1) == Some(&'=') || (c == '<' && chars.get(i + 1) == Some(&'>')) {
                    op.push(chars[i + 1]);
                    i += 1;
                }
                out.push(op);
                i += 1;
            } else {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"(),=!<>'".contains(chars[i])
                {
                    i += 1;
                }
                out.push(chars[start..i].iter().collect());
            }
        }
        Ok(out)
    }

    fn literal(tok: &str) -> Result<Literal, String> {
        if let Some(s) = tok.strip_prefix('\'') {
            return Ok(Literal::Str(s.to_string()));
        }
        match tok.to_ascii_lowercase().as_str() {
            "true" => return Ok(Literal::Bool(true)),
            "false" => return Ok(Literal::Bool(false)),
            "null" => return Ok(Literal::Null),
            _ => {}
        }
        if let Some(ms) = parse_datetime_ms(tok) {
            return Ok(Literal::Instant(ms));
        }
        if tok.len() == 10 {
            if let Some(ms) = parse_date_ms(tok) {
                return Ok(Literal::Instant(ms));
            }
        }
        tok.parse::<f64>()
            .map(Literal::Num)
            .map_err(|_| format!("unexpected token: {tok}"))
    }

    pub fn parse(q: &str) -> Result<Select, String> {
        let t = tokens(q)?;
        let kw = |i: usize, word: &str| t.get(i).is_some_and(|x| x.eq_ignore_ascii_case(word));
        if !kw(0, "SELECT") {
            return Err("unexpected token: expected SELECT".into());
        }
        let mut i = 1;
        let mut fields = vec![];
        while i < t.len() && !kw(i, "FROM") {
            if t[i] != "," {
                fields.push(t[i].clone());
            }
            i += 1;
        }
        if fields.is_empty() {
            return Err("unexpected token: FROM; no fields selected".into());
        }
        let from = t
            .get(i + 1)
            .cloned()
            .ok_or("expected an object after FROM")?;
        i += 2;
        let mut conditions = vec![];
        let mut joiners = vec![];
        if kw(i, "WHERE") {
            i += 1;
            loop {
                let field = t.get(i).cloned().ok_or("expected a condition")?;
                let mut op = t
                    .get(i + 1)
                    .cloned()
                    .ok_or("expected an operator")?
                    .to_ascii_uppercase();
                i += 2;
                if op == "NOT" && kw(i, "IN") {
                    op = "NOT IN".into();
                    i += 1;
                }
                let values = if op == "IN" || op == "NOT IN" {
                    if t.get(i).map(String::as_str) != Some("(") {
                        return Err(format!("expected ( after {op}"));
                    }
                    i += 1;
                    let mut vals = vec![];
                    while t.get(i).map(String::as_str) != Some(")") {
                        let tok = t.get(i).ok_or("unterminated IN list")?;
                        if tok != "," {
                            vals.push(literal(tok)?);
                        }
                        i += 1;
                    }
                    i += 1;
                    vals
                } else {
                    if !["=", "!=", "<>", "<", "<=", ">", ">=", "LIKE"].contains(&op.as_str()) {
                        return Err(format!("unexpected token: {op}"));
                    }
                    let v = literal(t.get(i).ok_or("expected a value")?)?;
                    i += 1;
                    vec![v]
                };
                conditions.push(Condition { field, op, values });
                if kw(i, "AND") || kw(i, "OR") {
                    joiners.push(t[i].to_ascii_uppercase());
                    i += 1;
                } else {
                    break;
                }
            }
        }
        let mut order_by = vec![];
        if kw(i, "ORDER") && kw(i + 1, "BY") {
            i += 2;
            loop {
                let field = t.get(i).cloned().ok_or("expected a field after ORDER BY")?;
                i += 1;
                let mut asc = true;
                if kw(i, "ASC") {
                    i += 1;
                } else if kw(i, "DESC") {
                    asc = false;
                    i += 1;
                }
                order_by.push((field, asc));
                if t.get(i).map(String::as_str) == Some(",") {
                    i += 1;
                } else {
                    break;
                }
            }
        }
        let mut limit = None;
        if kw(i, "LIMIT") {
            limit = Some(
                t.get(i + 1)
                    .and_then(|n| n.parse().ok())
                    .ok_or("LIMIT takes a number")?,
            );
            i += 2;
        }
        if let Some(extra) = t.get(i) {
            return Err(format!("unexpected token: {extra}"));
        }
        Ok(Select {
            fields,
            from,
            conditions,
            joiners,
            order_by,
            limit,
        })
    }

    fn as_key(value: Option<&Value>, kind: Option<FieldType>) -> Literal {
        match value {
            None | Some(Value::Null) => Literal::Null,
            Some(Value::Bool(b)) => Literal::Bool(*b),
            Some(Value::Number(n)) => Literal::Num(n.as_f64().unwrap_or_default()),
            Some(Value::String(s)) => match kind {
                Some(FieldType::Datetime) => parse_datetime_ms(s)
                    .map(Literal::Instant)
                    .unwrap_or(Literal::Str(s.clone())),
                Some(FieldType::Date) => parse_date_ms(s)
                    .map(Literal::Instant)
                    .unwrap_or(Literal::Str(s.clone())),
                _ => Literal::Str(s.clone()),
            },
            Some(other) => Literal::Str(other.to_string()),
        }
    }

    fn compare(a: &Literal, b: &Literal) -> Option<Ordering> {
        match (a, b) {
            (Literal::Str(x), Literal::Str(y)) => Some(x.cmp(y)),
            (Literal::Num(x), Literal::Num(y)) => x.partial_cmp(y),
            (Literal::Instant(x), Literal::Instant(y)) => Some(x.cmp(y)),
            (Literal::Bool(x), Literal::Bool(y)) => Some(x.cmp(y)),
            (Literal::Null, Literal::Null) => Some(Ordering::Equal),
            _ => None,
        }
    }

    fn like(value: &Literal, pattern: &Literal) -> bool {
        let (Literal::Str(v), Literal::Str(p)) = (value, pattern) else {
            return false;
        };
        let v = v.to_lowercase();
        let parts: Vec<String> = p.to_lowercase().split('%').map(str::to_string).collect();
        let mut pos = 0;
        for (i, part) in parts.iter().enumerate() {
            if i == 0 {
                if !v.starts_with(part.as_str()) {
                    return false;
                }
                pos = part.len();
            } else if i == parts.len() - 1 {
                return v[pos..].ends_with(part.as_str());
            } else if let Some(found) = v[pos..].find(part.as_str()) {
                pos += found + part.len();
            } else {
                return false;
            }
        }
        parts.len() == 1 && v == parts[0] || parts.len() > 1
    }

    fn holds(c: &Condition, record: &Record, kind: Option<FieldType>) -> bool {
        let value = as_key(record.get(&c.field), kind);
        let eq = |l: &Literal| compare(&value, l) == Some(Ordering::Equal);
        match c.op.as_str() {
            "=" => eq(&c.values[0]),
            "!=" | "<>" => !eq(&c.values[0]),
            "<" => compare(&value, &c.values[0]) == Some(Ordering::Less),
            "<=" => matches!(
                compare(&value, &c.values[0]),
                Some(Ordering::Less | Ordering::Equal)
            ),
            ">" => compare(&value, &c.values[0]) == Some(Ordering::Greater),
            ">=" => matches!(
                compare(&value, &c.values[0]),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            "LIKE" => like(&value, &c.values[0]),
            "IN" => c.values.iter().any(eq),
            "NOT IN" => !c.values.iter().any(eq),
            _ => false,
        }
    }

    /// Runs `select` over `records`; `kind` tells a field's type (None: no such field).
    pub fn run(
        select: &Select,
        records: &[Record],
        kind: impl Fn(&str) -> Option<FieldType>,
    ) -> Result<Vec<Record>, String> {
        for f in select
            .fields
            .iter()
            .chain(select.conditions.iter().map(|c| &c.field))
            .chain(select.order_by.iter().map(|o| &o.0))
        {
            if kind(f).is_none() {
                return Err(format!("No such column '{f}' on entity '{}'", select.from));
            }
        }
        let mut rows: Vec<&Record> = records
            .iter()
            .filter(|r| {
                if select.conditions.is_empty() {
                    return true;
                }
                // OR of AND-groups: AND binds tighter, as in SOQL.
                let mut any = false;
                let mut group = holds(&select.conditions[0], r, kind(&select.conditions[0].field));
                for (c, j) in select.conditions[1..].iter().zip(&select.joiners) {
                    let h = holds(c, r, kind(&c.field));
                    if j == "AND" {
                        group = group && h;
                    } else {
                        any = any || group;
                        group = h;
                    }
                }
                any || group
            })
            .collect();
        rows.sort_by(|a, b| {
            for (f, asc) in &select.order_by {
                let (x, y) = (as_key(a.get(f), kind(f)), as_key(b.get(f), kind(f)));
                // SOQL sorts nulls first ascending.
                let o = match (&x, &y) {
                    (Literal::Null, Literal::Null) => Ordering::Equal,
                    (Literal::Null, _) => Ordering::Less,
                    (_, Literal::Null) => Ordering::Greater,
                    _ => compare(&x, &y).unwrap_or(Ordering::Equal),
                };
                let o = if *asc { o } else { o.reverse() };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        let limit = select.limit.unwrap_or(usize::MAX);
        Ok(rows
            .into_iter()
            .take(limit)
            .map(|r| {
                select
                    .fields
                    .iter()
                    .map(|f| {
                        let key = r
                            .keys()
                            .find(|k| k.eq_ignore_ascii_case(f))
                            .cloned()
                            .unwrap_or_else(|| f.clone());
                        (key.clone(), r.get(&key).cloned().unwrap_or(Value::Null))
                    })
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_case_safe_suffix() {
        // Chunks "001A0" (bit 3 -> I), "00000" (none -> A), "Zx7Zt" (bits 0 and 3 -> J).
        assert_eq!(id_suffix("001A000000Zx7Zt"), "IAJ");
        assert_eq!(id_suffix("00000000000000a"), "AAA");
        assert_eq!(id_suffix("0015g00000ABCDE").len(), 3);
    }

    #[test]
    fn datetimes_round_trip() {
        let ms = 1_700_000_000_123;
        assert_eq!(sf_datetime(ms), "2023-11-14T22:13:20.123+0000");
        assert_eq!(parse_datetime_ms(&sf_datetime(ms)), Some(ms));
        assert_eq!(
            parse_datetime_ms("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_datetime_ms("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000_000)
        );
    }

    #[test]
    fn soql_subset_filters_orders_and_limits() {
        let q = soql::parse("SELECT Id, Name FROM Account WHERE Name LIKE 'ac%' AND AnnualRevenue >= 10 OR Name = 'O\\'Brien' ORDER BY Name DESC LIMIT 5").unwrap();
        let recs: Vec<Record> = vec![
            json!({"Id": "1", "Name": "Acme", "AnnualRevenue": 20}),
            json!({"Id": "2", "Name": "Acorn", "AnnualRevenue": 5}),
            json!({"Id": "3", "Name": "O'Brien", "AnnualRevenue": 1}),
        ]
        .into_iter()
        .map(|v| v.as_object().cloned().unwrap())
        .collect();
        let kinds = |f: &str| match f {
            "Id" => Some(FieldType::Id),
            "Name" => Some(FieldType::String),
            "AnnualRevenue" => Some(FieldType::Currency),
            _ => None,
        };
        let rows = soql::run(&q, &recs, kinds).unwrap();
        let names: Vec<_> = rows.iter().map(|r| r["Name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["O'Brien", "Acme"]);
        assert!(soql::parse("SELECT FROM Account").is_err());
        assert!(soql::run(
            &soql::parse("SELECT Nope FROM Account").unwrap(),
            &recs,
            kinds
        )
        .is_err());
    }
}
