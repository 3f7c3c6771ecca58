//! Salesforce REST adapter: OAuth 2.0 client-credentials token, sObject Collections upsert on an
//! external ID (200 records a call, allOrNone false) and SOQL queries that follow nextRecordsUrl.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::RwLock;

use super::http::{
    client, retry_after_ms, status_error, transport, with_create_retries, with_retries,
};
use super::oauth::{request_token, CredentialSource, Credentials};
use super::soql::urlencode;
pub use super::soql::{soql, soql_quote};
use crate::config::SalesforceSettings;
use crate::domain::budget::ApiUsage;
use crate::domain::{FieldKind, FieldSchema, Fields, ObjectSchema, System};
use crate::ports::{ApiError, RecordResult, SalesforceApi, SfSelect};
use crate::secret::Secret;

const SYSTEM: &str = "Salesforce";
/// sObject Collections take at most 200 records a request.
pub const COLLECTION_LIMIT: usize = 200;

#[derive(Clone)]
struct Token {
    access_token: Secret,
    instance_url: String,
}

pub struct SalesforceClient {
    http: reqwest::Client,
    settings: SalesforceSettings,
    credentials: RwLock<Credentials>,
    /// Where the credentials are read again after a refusal, when they came from the store.
    source: Option<CredentialSource>,
    token: RwLock<Option<Token>>,
    /// The daily API usage the org's last answer reported (`Sforce-Limit-Info`).
    usage: std::sync::Mutex<Option<ApiUsage>>,
    /// Where submitted ingest jobs are remembered, and how long one call waits for a job.
    pub(super) ingest: super::bulk::IngestJobs,
}

#[derive(Deserialize)]
struct ApiErrorBody {
    message: String,
    #[serde(rename = "errorCode")]
    error_code: String,
}

#[derive(Deserialize)]
struct SaveResult {
    id: Option<String>,
    success: bool,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    errors: Vec<SaveError>,
}

#[derive(Deserialize)]
struct SaveError {
    #[serde(rename = "statusCode")]
    status_code: String,
    message: String,
    #[serde(default)]
    fields: Vec<String>,
}

#[derive(Deserialize)]
struct QueryPage {
    done: bool,
    #[serde(rename = "nextRecordsUrl")]
    next_records_url: Option<String>,
    records: Vec<Fields>,
}

/// Per-record status codes that clear on their own: another transaction held the row.
const TRANSIENT_RECORD_CODES: &[&str] = &["UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG"];

/// Whether a save error says the record addressed is not there: deleted (in the recycle bin),
/// or an Id that names no record (a cross-reference error on the Id itself, not on a lookup).
fn names_a_missing_record(e: &SaveError) -> bool {
    match e.status_code.as_str() {
        "ENTITY_IS_DELETED" => true,
        "INVALID_CROSS_REFERENCE_KEY" => e.fields.is_empty() || e.fields == ["Id"],
        _ => false,
    }
}

impl From<SaveResult> for RecordResult {
    fn from(r: SaveResult) -> Self {
        let gone = !r.success && r.errors.iter().any(names_a_missing_record);
        let retryable = !r.success
            && !r.errors.is_empty()
            && r.errors
                .iter()
                .all(|e| TRANSIENT_RECORD_CODES.contains(&e.status_code.as_str()));
        RecordResult {
            retryable,
            gone,
            id: r.id,
            success: r.success,
            created: r.created,
            errors: r
                .errors
                .into_iter()
                .map(|e| {
                    if e.fields.is_empty() {
                        format!("{}: {}", e.status_code, e.message)
                    } else {
                        format!(
                            "{}: {} (fields: {})",
                            e.status_code,
                            e.message,
                            e.fields.join(", ")
                        )
                    }
                })
                .collect(),
        }
    }
}

/// A request body: JSON, or CSV for Bulk API uploads.
pub(super) enum Body<'a> {
    Json(&'a Value),
    Csv(&'a str),
}

impl SalesforceClient {
    /// A client of a Connected App using the client credentials flow.
    pub fn new(settings: SalesforceSettings, client_secret: Secret) -> Self {
        Self::with_credentials(settings, Credentials::ClientCredentials { client_secret })
    }

    /// A client of a Connected App using `credentials`' flow.
    pub fn with_credentials(settings: SalesforceSettings, credentials: Credentials) -> Self {
        Self {
            http: client(),
            settings,
            credentials: RwLock::new(credentials),
            source: None,
            token: RwLock::new(None),
            usage: std::sync::Mutex::new(None),
            ingest: Default::default(),
        }
    }

    /// A client whose credentials are read from `source` now, and again whenever Salesforce
    /// refuses them.
    pub async fn from_source(
        settings: SalesforceSettings,
        source: CredentialSource,
    ) -> Result<Self, crate::ports::SecretsError> {
        let mut client = Self::with_credentials(settings, source.load().await?);
        client.source = Some(source);
        Ok(client)
    }

    /// The client with requests that give up after `timeout` instead of the default 20 s.
    pub fn with_request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.http = super::http::client_with_timeout(timeout);
        self
    }

    /// The client with its ingest jobs remembered in `jobs`, each call waiting at most `wait`
    /// for its job: a job still running then is `ApiError::StillRunning`, and the same records
    /// written again collect its results instead of being submitted again.
    pub fn with_bulk_jobs(
        mut self,
        jobs: std::sync::Arc<dyn crate::ports::BulkJobs>,
        wait: std::time::Duration,
    ) -> Self {
        self.ingest = super::bulk::IngestJobs {
            jobs: Some(jobs),
            wait,
        };
        self
    }

    fn note_usage(&self, headers: &reqwest::header::HeaderMap) {
        let usage = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(ApiUsage::parse);
        if let (Some(usage), Ok(mut slot)) = (usage, self.usage.lock()) {
            *slot = Some(usage);
        }
    }

    /// The session, asked for when there is none. A grant refused for good is tried once more
    /// with the secrets read again, so a secret an operator replaced is picked up without a
    /// restart.
    async fn token(&self) -> Result<Token, ApiError> {
        if let Some(token) = self.token.read().await.clone() {
            return Ok(token);
        }
        let mut slot = self.token.write().await;
        if let Some(token) = slot.clone() {
            return Ok(token);
        }
        let login = self.settings.login_url.trim_end_matches('/');
        let client_id = &self.settings.client_id;
        let first = {
            let credentials = self.credentials.read().await;
            request_token(&self.http, login, client_id, &credentials).await
        };
        let granted = match (first, &self.source) {
            (Err(refused @ ApiError::Auth { .. }), Some(source)) => {
                let reloaded = source.load().await.map_err(|e| ApiError::Auth {
                    system: SYSTEM,
                    message: format!("{refused}; reading the secret again failed: {e}"),
                })?;
                let mut credentials = self.credentials.write().await;
                if reloaded == *credentials {
                    return Err(refused);
                }
                tracing::info!("Salesforce credentials replaced since they were read; signing in with the new ones");
                *credentials = reloaded;
                request_token(&self.http, login, client_id, &credentials).await?
            }
            (result, _) => result?,
        };
        let token = Token {
            access_token: Secret::new(granted.access_token),
            instance_url: granted.instance_url,
        };
        *slot = Some(token.clone());
        Ok(token)
    }

    /// Sends one API request; on 401 (expired session) fetches a new token and tries once more.
    async fn call(
        &self,
        method: reqwest::Method,
        path_or_url: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let body = body.map(Body::Json);
        let bytes = self.send(method, path_or_url, body).await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Protocol {
            system: SYSTEM,
            message: format!("response body: {e}"),
        })
    }

    /// Sends one request and returns the body of a success (empty for 204); on 401 (expired
    /// session) fetches a new token and tries once more.
    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        path_or_url: &str,
        body: Option<Body<'_>>,
    ) -> Result<Vec<u8>, ApiError> {
        Ok(self.send_answer(method, path_or_url, body).await?.1)
    }

    /// `send`, with the answer's headers.
    pub(super) async fn send_answer(
        &self,
        method: reqwest::Method,
        path_or_url: &str,
        body: Option<Body<'_>>,
    ) -> Result<(reqwest::header::HeaderMap, Vec<u8>), ApiError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let url = if path_or_url.starts_with('/') {
                format!(
                    "{}{}",
                    token.instance_url.trim_end_matches('/'),
                    path_or_url
                )
            } else {
                format!(
                    "{}/services/data/v{}/{}",
                    token.instance_url.trim_end_matches('/'),
                    self.settings.api_version,
                    path_or_url
                )
            };
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token.access_token.expose());
            request = match &body {
                Some(Body::Json(v)) => request.json(v),
                Some(Body::Csv(text)) => request
                    .header("content-type", "text/csv")
                    .body(text.to_string()),
                None => request,
            };
            let response = request.send().await.map_err(|e| transport(SYSTEM, e))?;
            let status = response.status().as_u16();
            self.note_usage(response.headers());
            let wait = retry_after_ms(response.headers());
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(|e| transport(SYSTEM, e))?;
            if (200..300).contains(&status) {
                return Ok((headers, bytes.to_vec()));
            }
            let (code, message) = serde_json::from_slice::<Vec<ApiErrorBody>>(&bytes)
                .ok()
                .and_then(|v| v.into_iter().next())
                .map(|e| (e.error_code, e.message))
                .unwrap_or_else(|| (String::new(), super::http::body_excerpt(&bytes)));
            if status == 401 && attempt == 0 {
                // Forget the expired session only if no concurrent call has renewed it already:
                // one renewal per expiry, however many calls saw the 401.
                let mut slot = self.token.write().await;
                if slot
                    .as_ref()
                    .is_some_and(|t| t.access_token.expose() == token.access_token.expose())
                {
                    *slot = None;
                }
                continue;
            }
            return Err(refusal(status, code, message, wait));
        }
        unreachable!("the loop returns on its second pass")
    }
}

/// The error of an answer that is no success, once a 401 was met with a new session: a 401
/// again is a passing fault of the org's (the token endpoint just granted that session, so the
/// credentials stand; a refusal for good comes from the token endpoint), and
/// `REQUEST_LIMIT_EXCEEDED` (a 403) clears with time, so it is a rate limit.
fn refusal(status: u16, code: String, message: String, wait: Option<u64>) -> ApiError {
    if status == 401 {
        return ApiError::Unavailable {
            system: SYSTEM,
            status,
            message: format!("the session expired again right after it was renewed: {message}"),
            retry_after_ms: wait,
        };
    }
    if code == "REQUEST_LIMIT_EXCEEDED" {
        return ApiError::RateLimited {
            system: SYSTEM,
            status,
            message,
            retry_after_ms: wait,
        };
    }
    status_error(SYSTEM, status, code, message).with_retry_after(wait)
}

impl SalesforceClient {
    /// One sObject Collections request per 200 records, `allOrNone` false; results in order.
    async fn collection(
        &self,
        method: reqwest::Method,
        path: &str,
        object: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        let mut results = Vec::with_capacity(records.len());
        for chunk in records.chunks(COLLECTION_LIMIT) {
            let body = json!({
                "allOrNone": false,
                "records": chunk.iter().map(|fields| {
                    let mut record = Fields::new();
                    record.insert("attributes".into(), json!({ "type": object }));
                    record.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                    Value::Object(record)
                }).collect::<Vec<_>>(),
            });
            let send = || self.call(method.clone(), path, Some(&body));
            // Creating is not idempotent (no external id): see `with_create_retries`.
            let response = if method == reqwest::Method::POST {
                with_create_retries(send).await?
            } else {
                with_retries(send).await?
            };
            let saved: Vec<SaveResult> =
                serde_json::from_value(response).map_err(|e| ApiError::Protocol {
                    system: SYSTEM,
                    message: format!("collection results: {e}"),
                })?;
            if saved.len() != chunk.len() {
                return Err(ApiError::Protocol {
                    system: SYSTEM,
                    message: format!("{} results for {} records", saved.len(), chunk.len()),
                });
            }
            results.extend(saved.into_iter().map(RecordResult::from));
        }
        Ok(results)
    }
}

#[derive(Deserialize)]
struct DescribeResult {
    name: String,
    fields: Vec<DescribeField>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeField {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    length: usize,
    #[serde(default)]
    nillable: bool,
    #[serde(default)]
    createable: bool,
    #[serde(default)]
    updateable: bool,
    #[serde(default)]
    calculated: bool,
    #[serde(default)]
    external_id: bool,
    #[serde(default)]
    html_formatted: bool,
    #[serde(default)]
    defaulted_on_create: bool,
    #[serde(default)]
    restricted_picklist: bool,
    #[serde(default)]
    picklist_values: Vec<PicklistValue>,
}

#[derive(Deserialize)]
struct PicklistValue {
    value: String,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

impl From<DescribeField> for FieldSchema {
    fn from(f: DescribeField) -> Self {
        let kind = match f.kind.as_str() {
            "id" => FieldKind::Id,
            "reference" => FieldKind::Reference,
            "string" | "textarea" | "phone" | "url" | "combobox" | "encryptedstring" => {
                FieldKind::Text
            }
            "email" => FieldKind::Email,
            "picklist" | "multipicklist" => FieldKind::Picklist,
            "int" => FieldKind::Integer,
            "double" | "percent" => FieldKind::Number,
            "currency" => FieldKind::Currency,
            "boolean" => FieldKind::Boolean,
            "date" => FieldKind::Date,
            "datetime" => FieldKind::DateTime,
            _ => FieldKind::Other,
        };
        FieldSchema {
            required: !f.nillable
                && f.createable
                && !f.defaulted_on_create
                && kind != FieldKind::Boolean,
            name: f.name,
            kind,
            length: (f.length > 0).then_some(f.length),
            picklist: f
                .picklist_values
                .into_iter()
                .filter(|v| v.active)
                .map(|v| v.value)
                .collect(),
            restricted: f.restricted_picklist,
            createable: f.createable,
            updateable: f.updateable,
            calculated: f.calculated,
            rich_text: f.html_formatted,
            external_id: f.external_id,
        }
    }
}

/// Files go up as a ContentVersion with base64 `VersionData` in JSON (Salesforce takes up to
/// 37.5 MB of base64 that way; activity files are at most 25 MB), published to the record.
#[async_trait]
impl crate::ports::FileUploads for SalesforceClient {
    async fn upload(
        &self,
        file: &crate::domain::timeline::Attachment,
        bytes: &[u8],
        link_to: &str,
    ) -> Result<String, ApiError> {
        use base64::Engine as _;
        let body = json!({
            "Title": file.name,
            "PathOnClient": file.name,
            "Description": crate::domain::timeline::upload_marker(&file.id),
            "VersionData": base64::engine::general_purpose::STANDARD.encode(bytes),
            "FirstPublishLocationId": link_to,
        });
        let path = "sobjects/ContentVersion";
        let created =
            with_create_retries(|| self.call(reqwest::Method::POST, path, Some(&body))).await?;
        created["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ApiError::Protocol {
                system: SYSTEM,
                message: "ContentVersion created without an id".into(),
            })
    }

    async fn published(
        &self,
        records: &[String],
    ) -> Result<Vec<(String, String, String)>, ApiError> {
        let mut found = Vec::new();
        for chunk in records.chunks(200) {
            let query = SfSelect {
                object: "ContentVersion".into(),
                fields: vec![
                    "Id".into(),
                    "FirstPublishLocationId".into(),
                    "Description".into(),
                ],
                conditions: vec![("FirstPublishLocationId".into(), chunk.to_vec())],
                ..SfSelect::default()
            };
            for row in self.select(&query).await? {
                let text = |f: &str| row.get(f).and_then(|v| v.as_str()).map(str::to_string);
                let marked = text("Description").and_then(|d| {
                    crate::domain::timeline::marked_attachment(&d).map(str::to_string)
                });
                if let (Some(record), Some(attachment), Some(id)) =
                    (text("FirstPublishLocationId"), marked, text("Id"))
                {
                    found.push((record, attachment, id));
                }
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl SalesforceApi for SalesforceClient {
    async fn upsert(
        &self,
        object: &str,
        external_id_field: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        let path = format!("composite/sobjects/{object}/{external_id_field}");
        self.collection(reqwest::Method::PATCH, &path, object, records)
            .await
    }

    async fn create(
        &self,
        object: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        self.collection(reqwest::Method::POST, "composite/sobjects", object, records)
            .await
    }

    async fn update(
        &self,
        object: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        self.collection(
            reqwest::Method::PATCH,
            "composite/sobjects",
            object,
            records,
        )
        .await
    }

    async fn describe(&self, object: &str) -> Result<ObjectSchema, ApiError> {
        let path = format!("sobjects/{object}/describe");
        let body = with_retries(|| self.call(reqwest::Method::GET, &path, None)).await?;
        let described: DescribeResult =
            serde_json::from_value(body).map_err(|e| ApiError::Protocol {
                system: SYSTEM,
                message: format!("describe of {object}: {e}"),
            })?;
        Ok(ObjectSchema::new(
            System::Salesforce,
            described.name,
            described
                .fields
                .into_iter()
                .map(FieldSchema::from)
                .collect(),
        ))
    }

    async fn select(&self, query: &SfSelect) -> Result<Vec<Fields>, ApiError> {
        let endpoint = if query.include_deleted {
            "queryAll"
        } else {
            "query"
        };
        self.query(endpoint, &soql(query)).await
    }

    async fn bulk_upsert(
        &self,
        object: &str,
        external_id_field: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        self.bulk_upsert_job(object, external_id_field, records)
            .await
    }

    async fn bulk_update(
        &self,
        object: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        (self.ingest_job(object, super::bulk::Ingest::Update, records)).await
    }

    fn api_usage(&self) -> Option<ApiUsage> {
        self.usage.lock().ok().and_then(|u| *u)
    }

    async fn refresh_api_usage(&self) -> Result<Option<ApiUsage>, ApiError> {
        let limits = with_retries(|| self.call(reqwest::Method::GET, "limits", None)).await?;
        let daily = &limits["DailyApiRequests"];
        if let (Some(max), Some(remaining)) = (daily["Max"].as_u64(), daily["Remaining"].as_u64()) {
            let usage = ApiUsage {
                used: max.saturating_sub(remaining),
                max,
            };
            if let Ok(mut slot) = self.usage.lock() {
                *slot = Some(usage);
            }
        }
        Ok(self.api_usage())
    }
}

impl SalesforceClient {
    /// Runs a SOQL query and follows `nextRecordsUrl` to the end.
    /// Every row of `soql` through `endpoint` (`query`, or `queryAll` to see deleted records),
    /// following `nextRecordsUrl`.
    async fn query(&self, endpoint: &str, soql: &str) -> Result<Vec<Fields>, ApiError> {
        let first = format!("{endpoint}?q={}", urlencode(soql));
        let mut next = Some(first);
        let mut records = Vec::new();
        while let Some(path) = next.take() {
            let page = with_retries(|| self.call(reqwest::Method::GET, &path, None)).await?;
            let page: QueryPage = serde_json::from_value(page).map_err(|e| ApiError::Protocol {
                system: SYSTEM,
                message: format!("query page: {e}"),
            })?;
            records.extend(page.records.into_iter().map(|mut r| {
                r.remove("attributes");
                r
            }));
            if !page.done {
                next = page.next_records_url;
            }
        }
        Ok(records)
    }
}
