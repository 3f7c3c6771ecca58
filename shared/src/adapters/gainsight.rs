//! Gainsight NXT data API adapter: `Accesskey` header, the `/v1/data/objects` query, insert and
//! update endpoints (50 records a write call), and Gainsight's `result`/`errorCode` envelope.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{
    client, retry_after_ms, status_error, transport, with_create_retries, with_retries,
};
use crate::config::GainsightSettings;
use crate::domain::budget::{ApiUsage, WindowUsage};
use crate::domain::{FieldKind, FieldSchema, Fields, ObjectSchema, System};
use crate::ports::{ApiError, GainsightApi, GsCondition, GsQuery, RecordResult};
use crate::secret::Secret;

const SYSTEM: &str = "Gainsight";
/// Company / Person / custom object writes take at most 50 records a call.
pub const WRITE_LIMIT: usize = 50;
/// Reads return at most 5000 records a call.
pub const READ_LIMIT: usize = 5000;

pub struct GainsightClient {
    http: reqwest::Client,
    base_url: String,
    access_key: std::sync::RwLock<Secret>,
    /// Where the access key is read again after Gainsight refuses it, when it came from there.
    source: Option<std::sync::Arc<dyn crate::ports::Secrets>>,
    /// The rate-limit window's usage the last answer reported, and when it came.
    window: std::sync::Mutex<Option<(ApiUsage, std::time::Instant)>>,
}

/// Gainsight's response envelope.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    result: bool,
    error_code: Option<String>,
    error_desc: Option<String>,
    request_id: Option<String>,
    data: Option<Value>,
}

impl GainsightClient {
    pub fn new(settings: GainsightSettings, access_key: Secret) -> Self {
        Self {
            http: client(),
            base_url: settings.base_url.trim_end_matches('/').to_string(),
            access_key: std::sync::RwLock::new(access_key),
            source: None,
            window: std::sync::Mutex::new(None),
        }
    }

    /// Keeps the window's usage an answer reports (`x-ratelimit-limit`, `x-ratelimit-remaining`).
    fn note_window(&self, headers: &reqwest::header::HeaderMap) {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let usage = header("x-ratelimit-limit")
            .zip(header("x-ratelimit-remaining"))
            .and_then(|(limit, remaining)| WindowUsage::parse(limit, remaining));
        if let (Some(usage), Ok(mut slot)) = (usage, self.window.lock()) {
            *slot = Some((usage, std::time::Instant::now()));
        }
    }

    /// A client whose access key is read from `secrets` now, and again whenever Gainsight refuses
    /// it, so a key an operator replaced is picked up without a restart.
    pub async fn from_secrets(
        settings: GainsightSettings,
        secrets: std::sync::Arc<dyn crate::ports::Secrets>,
    ) -> Result<Self, crate::ports::SecretsError> {
        let key = secrets
            .get(crate::secret::names::GAINSIGHT_ACCESS_KEY)
            .await?;
        let mut client = Self::new(settings, key);
        client.source = Some(secrets);
        Ok(client)
    }

    fn key(&self) -> Secret {
        match self.access_key.read() {
            Ok(key) => key.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// One request; refused for authentication, once more with the key read again if it changed.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let key = self.key();
        let first = self.call_with(&key, method.clone(), path, body).await;
        let (Err(ApiError::Auth { .. }), Some(source)) = (&first, &self.source) else {
            return first;
        };
        let reloaded = match source.get(crate::secret::names::GAINSIGHT_ACCESS_KEY).await {
            Ok(k) if k != key => k,
            _ => return first,
        };
        tracing::info!("Gainsight access key replaced since it was read; using the new one");
        if let Ok(mut slot) = self.access_key.write() {
            *slot = reloaded.clone();
        }
        self.call_with(&reloaded, method, path, body).await
    }

    async fn call_with(
        &self,
        key: &Secret,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base_url, path))
            .header("Accesskey", access_key(key)?);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport(SYSTEM, e))?;
        let status = response.status().as_u16();
        let wait = retry_after_ms(response.headers());
        self.note_window(response.headers());
        let bytes = response.bytes().await.map_err(|e| transport(SYSTEM, e))?;
        self.answer(status, &bytes)
            .map_err(|e| e.with_retry_after(wait))
    }

    /// The data of a Gainsight envelope, or the error its status and code say.
    fn answer(&self, status: u16, bytes: &[u8]) -> Result<Value, ApiError> {
        let envelope: Option<Envelope> = serde_json::from_slice(bytes).ok();
        match envelope {
            Some(env) if (200..300).contains(&status) && env.result => {
                Ok(env.data.unwrap_or(Value::Null))
            }
            Some(env) => {
                let code = env.error_code.unwrap_or_default();
                let message = format!(
                    "{} (requestId {})",
                    env.error_desc.unwrap_or_else(|| "no description".into()),
                    env.request_id.unwrap_or_else(|| "-".into())
                );
                Err(match status {
                    200..=299 | 400 => ApiError::Rejected {
                        system: SYSTEM,
                        status,
                        code,
                        message,
                    },
                    401 | 403 => ApiError::Auth {
                        system: SYSTEM,
                        message: format!("{code}: {message}"),
                    },
                    _ => status_error(SYSTEM, status, code, message),
                })
            }
            None => Err(match status {
                200..=299 => ApiError::Protocol {
                    system: SYSTEM,
                    message: "response is not a Gainsight envelope".into(),
                },
                _ => status_error(
                    SYSTEM,
                    status,
                    String::new(),
                    super::http::body_excerpt(bytes),
                ),
            }),
        }
    }

    async fn write(
        &self,
        method: reqwest::Method,
        path: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        let mut results = Vec::with_capacity(records.len());
        for chunk in records.chunks(WRITE_LIMIT) {
            let body = json!({ "records": chunk });
            let send = || self.call(method.clone(), path, Some(&body));
            let outcome = if method == reqwest::Method::POST {
                with_create_retries(send).await
            } else {
                with_retries(send).await
            };
            match outcome {
                Ok(data) => {
                    let created = method == reqwest::Method::POST;
                    results.extend(record_results(&data, chunk.len(), created));
                }
                // Gainsight validates the whole call and refuses it if any record is invalid. So
                // that one bad record does not fail its 49 neighbours, the call is split and each
                // record sent alone; only the refused ones carry the error.
                Err(ApiError::Rejected { .. }) if chunk.len() > 1 => {
                    for record in chunk {
                        results.extend(
                            Box::pin(self.write(
                                method.clone(),
                                path,
                                std::slice::from_ref(record),
                            ))
                            .await?,
                        );
                    }
                }
                Err(ApiError::Rejected { code, message, .. }) => {
                    // An update whose keys match no record: the record is not there (any more).
                    let gone =
                        method == reqwest::Method::PUT && message.contains(NO_RECORD_MATCHES);
                    for _ in chunk {
                        results.push(RecordResult {
                            id: None,
                            success: false,
                            created: false,
                            errors: vec![format!("{code}: {message}")],
                            retryable: false,
                            gone,
                        });
                    }
                }
                Err(other) => return Err(other),
            }
        }
        Ok(results)
    }
}

/// Where an attachment is downloaded from: its id is one path segment, encoded, whatever it
/// holds (a `/`, `?` or `..` cannot reach another path).
fn attachment_url(base: &str, id: &str) -> Result<url::Url, ApiError> {
    let bad = |e: String| ApiError::Protocol {
        system: SYSTEM,
        message: format!("attachment {id:?}: {e}"),
    };
    let mut url = url::Url::parse(&format!(
        "{}/v1/ant/attachments",
        base.trim_end_matches('/')
    ))
    .map_err(|e| bad(e.to_string()))?;
    (url.path_segments_mut())
        .map_err(|_| bad("the Gainsight base URL cannot have a path".into()))?
        .push(id);
    Ok(url)
}

/// The `Accesskey` header's value, marked sensitive so that no HTTP library's logging prints it,
/// whatever the log level.
fn access_key(key: &Secret) -> Result<reqwest::header::HeaderValue, ApiError> {
    let mut value = reqwest::header::HeaderValue::from_str(key.expose()).map_err(|_| {
        ApiError::Auth {
            system: SYSTEM,
            message: "the stored gainsight-access-key is not a valid header value; put it again with `syncctl secrets put gainsight-access-key`".into(),
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// One result per record of a write call that Gainsight answered 2xx: a record named in
/// `data.errors` (or `data.failures`) by its index failed with that message; the written
/// `data.records` are matched by position, over the records that did not fail; an inserted
/// record with no GSID in the answer is not taken as created: it fails for now, and the next
/// delivery looks it up by its key before writing it again. An update without a failure named
/// succeeded, unless the answer counts fewer records than were sent, when every update of the
/// call is tried again (updates are safe to repeat).
fn record_results(data: &Value, sent: usize, created: bool) -> Vec<RecordResult> {
    let failures = failures(data);
    let written: Vec<&Value> = (data.get("records").and_then(Value::as_array))
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    // The written records stand for every record sent, or for those that did not fail.
    let ok_positions: Vec<usize> = (0..sent).filter(|i| !failures.contains_key(i)).collect();
    let by_position = |i: usize| -> Option<&Value> {
        if written.len() == sent {
            written.get(i).copied()
        } else if written.len() == ok_positions.len() {
            let at = ok_positions.iter().position(|p| *p == i)?;
            written.get(at).copied()
        } else {
            None
        }
    };
    let counted = ["count", "updatedCount"]
        .iter()
        .find_map(|k| data.get(*k).and_then(Value::as_u64));
    let short = counted.is_some_and(|n| (n as usize) < ok_positions.len()) && !created;
    (0..sent)
        .map(|i| {
            if let Some(message) = failures.get(&i) {
                return RecordResult::failed(message.clone(), false);
            }
            let gsid = by_position(i)
                .and_then(|r| r.get("Gsid"))
                .and_then(Value::as_str)
                .map(str::to_string);
            match (created, gsid) {
                (true, None) => RecordResult::failed(
                    format!("GS_NO_RESULT: Gainsight's answer named no GSID for record {i} of the call; it is looked up by its key before it is written again"),
                    true,
                ),
                (false, _) if short => RecordResult::failed(
                    format!("GS_NO_RESULT: Gainsight counted {} of {sent} records updated and named no failure; the call's updates are tried again", counted.unwrap_or_default()),
                    true,
                ),
                (created, id) => RecordResult {
                    id,
                    success: true,
                    created,
                    errors: vec![],
                    retryable: false,
                    gone: false,
                },
            }
        })
        .collect()
}

/// The per-record failures of a 2xx write answer, by the index of the record in the call.
fn failures(data: &Value) -> std::collections::HashMap<usize, String> {
    let listed = ["errors", "failures"]
        .iter()
        .filter_map(|k| data.get(*k).and_then(Value::as_array))
        .flatten();
    let mut by_index = std::collections::HashMap::new();
    for f in listed {
        let index = ["index", "recordIndex"]
            .iter()
            .find_map(|k| f.get(*k).and_then(Value::as_u64));
        let text = |k: &str| f.get(k).and_then(Value::as_str);
        let message = text("errorMessage")
            .or_else(|| text("message"))
            .or_else(|| text("errorDesc"))
            .unwrap_or("refused without a message");
        let code = text("errorCode").unwrap_or("GS_RECORD_FAILED");
        if let Some(i) = index {
            by_index.insert(i as usize, format!("{code}: {message}"));
        }
    }
    by_index
}

/// The `where` of a query: every condition with an alias (`C0`, `C1`, ...), and the expression
/// over them: the plain conditions ANDed, then the `any_of` groups ORed, each group ANDed.
fn where_clause(query: &GsQuery) -> (Vec<Value>, String) {
    let mut conditions = Vec::new();
    let mut alias = |c: &GsCondition| {
        let name = format!("C{}", conditions.len());
        conditions.push(json!({"name": c.field, "alias": name, "value": c.values, "operator": c.operator.as_str()}));
        name
    };
    let mut parts: Vec<String> = query.conditions.iter().map(&mut alias).collect();
    let groups: Vec<String> = query
        .any_of
        .iter()
        .map(|group| {
            let all: Vec<String> = group.iter().map(&mut alias).collect();
            format!("({})", all.join(" AND "))
        })
        .collect();
    if !groups.is_empty() {
        parts.push(format!("({})", groups.join(" OR ")));
    }
    (conditions, parts.join(" AND "))
}

/// What a refused update says when its keys match no record (an assumption: Gainsight's
/// documentation shows no example of it; this is how the project's emulator words it).
const NO_RECORD_MATCHES: &str = "0 records match the keys";

/// The error code Gainsight answers a query that matched nothing with ("No entity matches the
/// given criteria", HTTP 400).
pub const NO_MATCH: &str = "GSOBJ_1011";

/// The rows of a query's `data`: a list of rows (Company and custom objects on some pages) or
/// `{"records": [...]}` (others, and Timeline). Any other shape is an error that names it, never
/// zero rows.
pub fn query_rows(object: &str, data: Value) -> Result<Vec<Fields>, ApiError> {
    let shape = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object without `records`",
    };
    let rows = match data {
        Value::Array(rows) => rows,
        Value::Object(mut fields) => match fields.remove("records") {
            Some(Value::Array(rows)) => rows,
            other => {
                let found = other
                    .as_ref()
                    .map(shape)
                    .unwrap_or("an object without `records`");
                return Err(unexpected(object, found));
            }
        },
        other => return Err(unexpected(object, shape(&other))),
    };
    rows.into_iter()
        .map(|row| match row {
            Value::Object(fields) => Ok(fields),
            other => Err(unexpected(
                object,
                &format!("a row that is {}", shape(&other)),
            )),
        })
        .collect()
}

fn unexpected(object: &str, found: &str) -> ApiError {
    ApiError::Protocol {
        system: SYSTEM,
        message: format!(
            "query of {object}: `data` is neither a list of rows nor {{\"records\": [...]}} but {found}"
        ),
    }
}

/// Gainsight's object describe: `data[0].fields[]`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GsDescribeField {
    field_name: String,
    data_type: String,
    #[serde(default)]
    length: Option<usize>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    formula: bool,
    #[serde(default)]
    rich_text: bool,
    #[serde(default)]
    picklist_values: Vec<String>,
}

impl From<GsDescribeField> for FieldSchema {
    fn from(f: GsDescribeField) -> Self {
        let kind = match f.data_type.to_ascii_uppercase().as_str() {
            "GSID" if f.field_name == "Gsid" => FieldKind::Id,
            "GSID" => FieldKind::Reference,
            "STRING" | "RICHTEXTAREA" | "URL" | "PHONE" => FieldKind::Text,
            "EMAIL" => FieldKind::Email,
            "DROPDOWNLIST" | "PICKLIST" => FieldKind::Picklist,
            "NUMBER" => FieldKind::Number,
            "CURRENCY" => FieldKind::Currency,
            "BOOLEAN" => FieldKind::Boolean,
            "DATE" => FieldKind::Date,
            "DATETIME" => FieldKind::DateTime,
            _ => FieldKind::Other,
        };
        FieldSchema {
            restricted: !f.picklist_values.is_empty(),
            picklist: f.picklist_values,
            name: f.field_name,
            kind,
            length: f.length,
            createable: !f.read_only,
            updateable: !f.read_only,
            calculated: f.formula,
            rich_text: f.rich_text || f.data_type.eq_ignore_ascii_case("RICHTEXTAREA"),
            required: f.required && !f.read_only,
            external_id: false,
        }
    }
}

/// An attachment's bytes from `GET /v1/ant/attachments/{id}` (the local tenant's path: no public
/// Gainsight attachment endpoint is documented; see the README's notes).
#[async_trait]
impl crate::ports::ActivityFiles for GainsightClient {
    async fn download(
        &self,
        attachment: &crate::domain::timeline::Attachment,
    ) -> Result<Vec<u8>, ApiError> {
        let url = attachment_url(&self.base_url, &attachment.id)?;
        let fetch = || async {
            let mut response = self
                .http
                .get(url.clone())
                .header("Accesskey", access_key(&self.key())?)
                .send()
                .await
                .map_err(|e| transport(SYSTEM, e))?;
            let status = response.status().as_u16();
            // Read a chunk at a time and never past the most Salesforce takes, whatever size
            // the activity claimed.
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| transport(SYSTEM, e))? {
                bytes.extend_from_slice(&chunk);
                if bytes.len() as u64 > crate::domain::timeline::MAX_ATTACHMENT_BYTES {
                    return Err(ApiError::Rejected {
                        system: SYSTEM,
                        status,
                        code: "TOO_LARGE".into(),
                        message: format!(
                            "attachment {} is larger than the 25 MB Salesforce takes; not downloaded further",
                            attachment.id
                        ),
                    });
                }
            }
            if (200..300).contains(&status) {
                return Ok(bytes);
            }
            Err(self
                .answer(status, &bytes)
                .err()
                .unwrap_or(ApiError::Protocol {
                    system: SYSTEM,
                    message: format!("attachment {}: HTTP {status}", attachment.id),
                }))
        };
        with_retries(fetch).await
    }
}

#[async_trait]
impl GainsightApi for GainsightClient {
    fn window_usage(&self) -> Option<WindowUsage> {
        let seen = *self.window.lock().ok()?;
        seen.map(|(usage, at)| WindowUsage {
            usage,
            age: at.elapsed(),
        })
    }

    async fn describe(&self, object: &str) -> Result<ObjectSchema, ApiError> {
        let path = format!("/v1/meta/services/objects/{object}/describe?idd=true");
        let data = with_retries(|| self.call(reqwest::Method::GET, &path, None)).await?;
        let fields = data
            .get(0)
            .and_then(|o| o.get("fields"))
            .cloned()
            .ok_or_else(|| ApiError::Protocol {
                system: SYSTEM,
                message: format!("describe of {object}: no data[0].fields"),
            })?;
        let fields: Vec<GsDescribeField> =
            serde_json::from_value(fields).map_err(|e| ApiError::Protocol {
                system: SYSTEM,
                message: format!("describe of {object}: {e}"),
            })?;
        Ok(ObjectSchema::new(
            System::Gainsight,
            object,
            fields.into_iter().map(FieldSchema::from).collect(),
        ))
    }

    async fn query(&self, object: &str, query: &GsQuery) -> Result<Vec<Fields>, ApiError> {
        let (conditions, expression) = where_clause(query);
        let page_size = if query.limit == 0 {
            READ_LIMIT
        } else {
            query.limit.min(READ_LIMIT)
        };
        let mut order_by = serde_json::Map::new();
        for (field, ascending) in &query.order_by {
            order_by.insert(
                field.clone(),
                json!(if *ascending { "asc" } else { "desc" }),
            );
        }
        let mut records = Vec::new();
        let mut offset = query.offset;
        loop {
            let mut body = json!({ "select": query.select, "limit": page_size, "offset": offset });
            if !conditions.is_empty() {
                body["where"] = json!({ "conditions": conditions, "expression": expression });
            }
            if !order_by.is_empty() {
                body["orderBy"] = Value::Object(order_by.clone());
            }
            let path = format!("/v1/data/objects/query/{object}");
            let answer =
                with_retries(|| self.call(reqwest::Method::POST, &path, Some(&body))).await;
            let page = match answer {
                Ok(data) => query_rows(object, data)?,
                // Gainsight reports a query that matched nothing as an error; it is zero rows.
                Err(ApiError::Rejected { code, .. }) if code == NO_MATCH => Vec::new(),
                Err(e) => return Err(e),
            };
            let n = page.len();
            records.extend(page);
            if n < page_size || (query.limit != 0 && records.len() >= query.limit) {
                return Ok(records);
            }
            offset += n;
        }
    }

    async fn insert(
        &self,
        object: &str,
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        self.write(
            reqwest::Method::POST,
            &format!("/v1/data/objects/{object}"),
            records,
        )
        .await
    }

    async fn update(
        &self,
        object: &str,
        keys: &[String],
        records: &[Fields],
    ) -> Result<Vec<RecordResult>, ApiError> {
        self.write(
            reqwest::Method::PUT,
            &format!("/v1/data/objects/{object}?keys={}", keys.join(",")),
            records,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attachment_id_is_one_encoded_path_segment() {
        let url = attachment_url("https://t.gainsightcloud.com/", "a/../b?c d").unwrap();
        assert_eq!(
            url.as_str(),
            "https://t.gainsightcloud.com/v1/ant/attachments/a%2F..%2Fb%3Fc%20d"
        );
    }

    #[test]
    fn the_access_key_header_is_sensitive_and_a_bad_key_says_how_to_fix_it() {
        let value = access_key(&Secret::new("ak-123".to_string())).unwrap();
        assert!(value.is_sensitive(), "debug output of the header hides it");
        assert_eq!(format!("{value:?}"), "Sensitive");
        let refused = access_key(&Secret::new("bad\nkey".to_string())).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("syncctl secrets put gainsight-access-key"),
            "{refused}"
        );
    }

    #[test]
    fn alternatives_become_an_or_of_ands_after_the_plain_conditions() {
        use crate::ports::GsOperator;
        let query = GsQuery {
            conditions: vec![GsCondition::new(
                "Status",
                GsOperator::Eq,
                vec![json!("Active")],
            )],
            any_of: vec![
                vec![GsCondition::new(
                    "ModifiedDate",
                    GsOperator::Gt,
                    vec![json!(5)],
                )],
                vec![
                    GsCondition::new("ModifiedDate", GsOperator::Eq, vec![json!(5)]),
                    GsCondition::new("Gsid", GsOperator::Gt, vec![json!("G2")]),
                ],
            ],
            ..GsQuery::default()
        };
        let (conditions, expression) = where_clause(&query);
        assert_eq!(expression, "C0 AND ((C1) OR (C2 AND C3))");
        assert_eq!(conditions[3]["name"], json!("Gsid"));
        assert_eq!(conditions[3]["operator"], json!("GT"));
        let plain = GsQuery {
            conditions: query.conditions.clone(),
            ..GsQuery::default()
        };
        assert_eq!(where_clause(&plain).1, "C0");
    }

    #[test]
    fn a_write_answer_gives_each_record_its_own_result() {
        let result = |r: &RecordResult| (r.success, r.id.clone(), r.retryable);
        // All inserted: each GSID by position.
        let all = record_results(
            &json!({"records": [{"Gsid": "G1"}, {"Gsid": "G2"}]}),
            2,
            true,
        );
        let all: Vec<_> = all.iter().map(result).collect();
        assert_eq!(
            all,
            [
                (true, Some("G1".into()), false),
                (true, Some("G2".into()), false)
            ]
        );
        // The second failed: the written list stands for the others, in order.
        let data = json!({"records": [{"Gsid": "G1"}, {"Gsid": "G3"}],
            "errors": [{"index": 1, "errorCode": "GS_2001", "errorMessage": "Name is required"}]});
        let partly = record_results(&data, 3, true);
        assert_eq!(result(&partly[0]), (true, Some("G1".into()), false));
        assert_eq!(result(&partly[1]), (false, None, false));
        assert_eq!(partly[1].errors, ["GS_2001: Name is required"]);
        assert_eq!(result(&partly[2]), (true, Some("G3".into()), false));
        // A short list that cannot be matched: no record is taken as created without its GSID.
        let short = record_results(&json!({"records": [{"Gsid": "G1"}]}), 2, true);
        assert!(short.iter().all(|r| !r.success && r.retryable), "{short:?}");
        assert!(short[0].errors[0].contains("looked up by its key"));
        // Updates: fine without a list, tried again when counted short.
        let updated = record_results(&json!({"count": 2}), 2, false);
        assert!(updated.iter().all(|r| r.success));
        let short = record_results(&json!({"count": 1}), 2, false);
        assert!(short.iter().all(|r| !r.success && r.retryable));
    }

    #[test]
    fn query_rows_come_as_a_list_or_as_records() {
        let list = query_rows("Company", json!([{"Gsid": "G1"}, {"Gsid": "G2"}])).unwrap();
        assert_eq!(list.len(), 2);
        let records = query_rows("Person", json!({"records": [{"Gsid": "P1"}]})).unwrap();
        assert_eq!(records[0]["Gsid"], json!("P1"));
        assert!(query_rows("Company", json!([])).unwrap().is_empty());
    }

    #[test]
    fn an_unknown_shape_is_an_error_naming_it_never_zero_rows() {
        for (data, found) in [
            (json!({"rows": []}), "an object without `records`"),
            (json!(null), "null"),
            (json!({"records": {"a": 1}}), "an object without `records`"),
            (json!([1]), "a row that is a number"),
        ] {
            let err = query_rows("Company", data).unwrap_err().to_string();
            assert!(
                err.contains("query of Company") && err.contains(found),
                "{err}"
            );
        }
    }
}
