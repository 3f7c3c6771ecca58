//! EventBridge event buses, served locally: `PutEvents` and `PutPartnerEvents` (the AWS JSON 1.1
//! protocol the SDKs and the AWS CLI speak) put events on the template's buses; each rule whose
//! event pattern matches sends the whole event, in EventBridge's envelope, to its SQS targets,
//! retrying, then to the target's dead-letter queue. moto's own EventBridge would deliver to its
//! queues, not to the SQS the local stack uses.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::ServerHandle;

/// The account EventBridge names in the envelope of local events.
pub const ACCOUNT: &str = "000000000000";

/// One rule of the template routing a bus's events, as `deploy.py` reports it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct EventRuleSpec {
    pub rule: String,
    /// The event bus's name.
    pub bus: String,
    pub pattern: Value,
    pub targets: Vec<TargetSpec>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct TargetSpec {
    /// The target queue's name.
    pub queue: String,
    pub dead_letter_queue: Option<String>,
}

/// Counts of what the buses did, for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BusStats {
    pub put: u64,
    pub matched: u64,
    pub delivered: u64,
    pub dead_lettered: u64,
}

struct Bus {
    rules: Vec<EventRuleSpec>,
    sqs: aws_sdk_sqs::Client,
    region: String,
    /// Queue URLs by name, resolved once.
    urls: tokio::sync::Mutex<HashMap<String, String>>,
    stats: std::sync::Mutex<BusStats>,
}

/// The local event buses; they stop when dropped.
pub struct EventBuses {
    bus: Arc<Bus>,
    server: ServerHandle,
}

impl EventBuses {
    /// Serves `rules`, sending to SQS with `sqs` (whose credentials name EventBridge as the caller).
    pub async fn start(
        rules: Vec<EventRuleSpec>,
        sqs: aws_sdk_sqs::Client,
        region: &str,
    ) -> std::io::Result<Self> {
        let bus = Arc::new(Bus {
            rules,
            sqs,
            region: region.to_string(),
            urls: tokio::sync::Mutex::new(HashMap::new()),
            stats: std::sync::Mutex::new(BusStats::default()),
        });
        let router = axum::Router::new()
            .route("/", axum::routing::post(put_events))
            .with_state(Arc::clone(&bus));
        let server = crate::serve(router).await?;
        Ok(Self { bus, server })
    }

    /// The endpoint (`AWS_ENDPOINT_URL_EVENTS`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn stats(&self) -> BusStats {
        self.bus.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether any rule routes events of bus `name`.
    pub fn serves(&self, name: &str) -> bool {
        self.bus.rules.iter().any(|r| r.bus == name)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsRequest {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    source: Option<String>,
    detail_type: Option<String>,
    detail: Option<String>,
    event_bus_name: Option<String>,
}

async fn put_events(State(bus): State<Arc<Bus>>, headers: HeaderMap, body: String) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !matches!(target, "AWSEvents.PutEvents" | "AWSEvents.PutPartnerEvents") {
        return error(
            "UnknownOperationException",
            &format!("{target} is not served here"),
        );
    }
    let request: PutEventsRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => return error("ValidationException", &e.to_string()),
    };
    let mut answers = Vec::new();
    let mut failed = 0;
    for entry in request.entries {
        match bus.put(entry).await {
            Ok(id) => answers.push(json!({ "EventId": id })),
            Err(why) => {
                failed += 1;
                answers.push(json!({ "ErrorCode": "MalformedDetail", "ErrorMessage": why }));
            }
        }
    }
    Json(json!({ "FailedEntryCount": failed, "Entries": answers })).into_response()
}

fn error(code: &str, message: &str) -> Response {
    let body = json!({ "__type": code, "message": message });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

impl Bus {
    /// Puts one entry on its bus: the event id, or why it was refused.
    async fn put(&self, entry: Entry) -> Result<String, String> {
        let (Some(source), Some(detail_type), Some(detail)) =
            (entry.source, entry.detail_type, entry.detail)
        else {
            return Err("Source, DetailType and Detail are required".into());
        };
        let detail: Value = serde_json::from_str(&detail).map_err(|e| e.to_string())?;
        let id = uuid::Uuid::new_v4().to_string();
        let event = json!({
            "version": "0",
            "id": id,
            "detail-type": detail_type,
            "source": source,
            "account": ACCOUNT,
            "time": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "region": self.region,
            "resources": [],
            "detail": detail,
        });
        let bus_name = entry.event_bus_name.unwrap_or_else(|| "default".into());
        if let Ok(mut s) = self.stats.lock() {
            s.put += 1;
        }
        let body = event.to_string();
        for rule in self.rules.iter().filter(|r| r.bus == bus_name) {
            if !matches(&rule.pattern, &event) {
                continue;
            }
            if let Ok(mut s) = self.stats.lock() {
                s.matched += 1;
            }
            for target in &rule.targets {
                self.deliver(target, &body).await;
            }
        }
        Ok(id)
    }

    /// Sends `body` to the target's queue, a few times; then to its dead-letter queue.
    async fn deliver(&self, target: &TargetSpec, body: &str) {
        for attempt in 0..3u64 {
            if self.send(&target.queue, body).await.is_ok() {
                if let Ok(mut s) = self.stats.lock() {
                    s.delivered += 1;
                }
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100 * (attempt + 1))).await;
        }
        tracing::warn!(queue = %target.queue, "event not delivered; sent to the dead-letter queue");
        if let Some(dlq) = &target.dead_letter_queue {
            if self.send(dlq, body).await.is_ok() {
                if let Ok(mut s) = self.stats.lock() {
                    s.dead_lettered += 1;
                }
            }
        }
    }

    async fn send(&self, queue: &str, body: &str) -> anyhow::Result<()> {
        let url = self.url_of(queue).await?;
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await?;
        Ok(())
    }

    async fn url_of(&self, queue: &str) -> anyhow::Result<String> {
        let mut urls = self.urls.lock().await;
        if let Some(url) = urls.get(queue) {
            return Ok(url.clone());
        }
        let got = self.sqs.get_queue_url().queue_name(queue).send().await?;
        let url = got.queue_url().unwrap_or_default().to_string();
        urls.insert(queue.to_string(), url.clone());
        Ok(url)
    }
}

/// Whether `event` matches the EventBridge event `pattern`: every field the pattern names
/// matches; a list of values matches any of them (an array in the event, any of its elements);
/// `{"anything-but": [..]}`, `{"prefix": ".."}` and `{"exists": bool}` as EventBridge reads them.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        return false;
    };
    fields.iter().all(|(name, wanted)| {
        let got = event.get(name);
        match wanted {
            Value::Object(_) => got.is_some_and(|g| matches(wanted, g)),
            Value::Array(options) => options.iter().any(|o| field_matches(o, got)),
            _ => false,
        }
    })
}

fn field_matches(option: &Value, got: Option<&Value>) -> bool {
    if let Some(Value::Array(items)) = got {
        return items.iter().any(|i| field_matches(option, Some(i)));
    }
    match option {
        Value::Object(rule) => {
            if let Some(exists) = rule.get("exists").and_then(Value::as_bool) {
                return got.is_some() == exists;
            }
            let Some(got) = got else { return false };
            if let Some(prefix) = rule.get("prefix").and_then(Value::as_str) {
                return got.as_str().is_some_and(|s| s.starts_with(prefix));
            }
            match rule.get("anything-but") {
                Some(Value::Array(excluded)) => !excluded.contains(got),
                Some(excluded) => excluded != got,
                None => false,
            }
        }
        value => got == Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_eventbridge_reads_them() {
        let pattern = json!({
            "detail-type": ["AccountChangeEvent", "CaseChangeEvent"],
            "detail": {"payload": {"ChangeEventHeader": {"commitUser": [{"anything-but": ["005INT"]}]}}}
        });
        let event = |kind: &str, user: &str| json!({"detail-type": kind, "detail": {"payload": {"ChangeEventHeader": {"commitUser": user, "recordIds": ["001A"]}}}});
        assert!(matches(&pattern, &event("AccountChangeEvent", "005PERSON")));
        assert!(!matches(&pattern, &event("AccountChangeEvent", "005INT")));
        assert!(!matches(
            &pattern,
            &event("OpportunityChangeEvent", "005PERSON")
        ));
        assert!(!matches(
            &pattern,
            &json!({"detail-type": "AccountChangeEvent"})
        ));
        let ids = json!({"detail": {"ids": [{"prefix": "001"}], "gone": [{"exists": false}]}});
        assert!(matches(&ids, &json!({"detail": {"ids": ["500X", "001Y"]}})));
        assert!(!matches(
            &ids,
            &json!({"detail": {"ids": ["001Y"], "gone": 1}})
        ));
    }
}
