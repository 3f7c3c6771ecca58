//! Webhook function behind a Function URL: accepts signed Gainsight change events (`/gainsight`)
//! and Salesforce Outbound Messages (`/salesforce`), checks them, and queues one change per record
//! on `changes` before answering. Nothing is queued for a request that fails any check.

pub mod keeper;
pub mod outbound;

use std::sync::Arc;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::adapters::AwsClients;
use shared::config::{self, AwsResources, ConfigError};
use shared::domain::change::{is_gainsight_id, is_salesforce_id};
use shared::domain::{
    ChangeEvent, Fields, Jobs, Operation, RunFunction, Runs, SourceRecord, System,
};
use shared::enqueue::{enqueue_recorded, Delivery, EnqueueError, Enqueued, Packing};
use shared::lambda::store_runs;
use shared::ports::{DedupStore, Queue, RunStore, Secrets, SecretsError};
use shared::secret::{names, Secret};
use shared::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// A request carrying more than 50,000 records is refused, as Gainsight's connector refuses one.
pub const MAX_RECORDS: usize = 50_000;

/// The largest body accepted when `WEBHOOK_MAX_BODY_BYTES` does not say: a Function URL's
/// request payload limit (6 MB), which a 50,000-record event of short records fits in.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6_000_000;

#[derive(Clone, Debug)]
pub struct Config {
    pub aws: AwsResources,
    /// Largest body accepted, in bytes (Function URLs cap payloads at 6 MB anyway).
    pub max_body_bytes: usize,
    /// How far a signed timestamp may be from now, in seconds.
    pub tolerance_s: i64,
    /// The Salesforce org whose Outbound Messages are accepted; none accepted when unset.
    pub salesforce_org_id: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsResources::from_env()?,
            max_body_bytes: config::parsed("WEBHOOK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?,
            tolerance_s: config::parsed("WEBHOOK_TOLERANCE_SECONDS", 300)?,
            salesforce_org_id: config::optional("SALESFORCE_ORG_ID"),
        })
    }
}

pub struct Webhook {
    dedup: Arc<dyn DedupStore>,
    runs: Arc<dyn RunStore>,
    changes: Arc<dyn Queue>,
    /// The Gainsight signing secret's versions.
    secret: keeper::Keeper,
    jobs: Jobs,
    max_body_bytes: usize,
    tolerance_s: i64,
    salesforce_org_id: Option<String>,
    /// The Outbound Message token's versions.
    tokens: keeper::Keeper,
}

/// A Gainsight change event, as a Rules Engine "Call External API" action or a Journey
/// Orchestrator "Call API" step posts it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GainsightEvent {
    event_id: String,
    event_type: Operation,
    object_name: String,
    /// Epoch milliseconds.
    occurred_at: i64,
    #[serde(default)]
    changed_fields: Option<Vec<String>>,
    records: Vec<Fields>,
}

/// The answer to an accepted Gainsight event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub event_id: String,
    /// The event was queued before: nothing was queued again.
    pub duplicate: bool,
    /// Changes queued, one per record.
    pub queued: usize,
}

/// The answer to a refused request.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

/// A refusal: status and a message that names what is wrong.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

/// The answer to a request the webhook could not take for a cause of its own: nothing of it was
/// kept, and the sender (Gainsight's rule, Salesforce's Outbound Message queue) sends it again.
/// The cause is logged, never told to the caller.
const UNAVAILABLE: &str = "temporarily unavailable: nothing was kept; send the request again";

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

impl Webhook {
    pub fn new(
        dedup: Arc<dyn DedupStore>,
        runs: Arc<dyn RunStore>,
        changes: Arc<dyn Queue>,
        secret: Secret,
        jobs: Jobs,
        config: &Config,
    ) -> Self {
        Self {
            dedup,
            runs,
            changes,
            secret: keeper::Keeper::fixed(Some(&secret)),
            jobs,
            max_body_bytes: config.max_body_bytes,
            tolerance_s: config.tolerance_s,
            salesforce_org_id: config.salesforce_org_id.clone(),
            tokens: keeper::Keeper::fixed(None),
        }
    }

    /// Outbound Messages are accepted only with a token `secrets` holds
    /// (`names::SALESFORCE_OUTBOUND_TOKEN`); without this, none is.
    pub fn with_outbound_tokens(mut self, secrets: Arc<dyn Secrets>) -> Self {
        self.tokens = keeper::Keeper::stored(secrets, names::SALESFORCE_OUTBOUND_TOKEN);
        self
    }

    /// The Gainsight signing secret is read from `secrets` (`names::WEBHOOK_SECRET`) and read
    /// again as `keeper` says, so that a rotation needs no redeploy; it is read once now, so that
    /// a missing one fails the cold start.
    pub async fn with_stored_secret(
        mut self,
        secrets: Arc<dyn Secrets>,
        now_ms: i64,
    ) -> Result<Self, SecretsError> {
        self.secret = keeper::Keeper::stored(secrets, names::WEBHOOK_SECRET);
        self.secret.prime(now_ms).await?;
        Ok(self)
    }

    /// Builds the function's ports on AWS.
    pub async fn from_aws(
        config: &Config,
        clients: &AwsClients,
        jobs: Jobs,
    ) -> Result<Self, SecretsError> {
        let secrets: Arc<dyn Secrets> = Arc::new(clients.secrets(&config.aws));
        let store = Arc::new(clients.state_store(&config.aws));
        let webhook = Self::new(
            store.clone(),
            store,
            Arc::new(clients.queue(&config.aws.changes_queue_url)),
            Secret::new(""),
            jobs,
            config,
        );
        let webhook = webhook.with_stored_secret(secrets.clone(), shared::time::now_ms());
        Ok(webhook.await?.with_outbound_tokens(secrets))
    }

    pub async fn handle(&self, request: LambdaFunctionUrlRequest) -> LambdaFunctionUrlResponse {
        self.handle_at(request, shared::time::now_ms()).await
    }

    /// Handles one request as of `now_ms`. An authenticated delivery leaves a run; a request
    /// refused before it proved where it came from does not (it would let anyone write runs).
    pub async fn handle_at(
        &self,
        request: LambdaFunctionUrlRequest,
        now_ms: i64,
    ) -> LambdaFunctionUrlResponse {
        let path = request.raw_path.clone().unwrap_or_default();
        let route = path.trim_end_matches('/');
        let seed = request
            .request_context
            .request_id
            .clone()
            .unwrap_or_default();
        let event = match route {
            "/salesforce" => "salesforce outbound message",
            _ => "gainsight webhook",
        };
        let mut runs = Runs::new(RunFunction::Webhook, event, now_ms, &seed);
        let answer = self.route(&request, route, now_ms, &mut runs).await;
        store_runs(self.runs.as_ref(), runs).await;
        answer
    }

    async fn route(
        &self,
        request: &LambdaFunctionUrlRequest,
        path: &str,
        now_ms: i64,
        runs: &mut Runs,
    ) -> LambdaFunctionUrlResponse {
        let outcome = match (request.request_context.http.method.as_deref(), path) {
            (Some("POST"), "/gainsight") => self.gainsight(request, now_ms, runs).await,
            (Some("POST"), "/salesforce") => {
                return match self.salesforce(request, now_ms, runs).await {
                    Ok(queued) => {
                        tracing::info!(queued, "outbound message acknowledged");
                        xml_response(200, outbound::ack())
                    }
                    Err(refusal) => {
                        tracing::warn!(status = refusal.status, reason = %refusal.message, "outbound message refused");
                        xml_response(refusal.status, outbound::fault(refusal.status < 500, &refusal.message))
                    }
                };
            }
            (Some(_), "/gainsight" | "/salesforce") => Err(refuse(405, "use POST")),
            _ => Err(refuse(
                404,
                format!("no such endpoint {path}; post Gainsight events to /gainsight and Salesforce Outbound Messages to /salesforce"),
            )),
        };
        match outcome {
            Ok(accepted) => response(200, &accepted),
            Err(refusal) => {
                tracing::warn!(status = refusal.status, reason = %refusal.message, path = %path, "webhook request refused");
                let body = ErrorBody {
                    error: &refusal.message,
                };
                response(refusal.status, &body)
            }
        }
    }

    /// The request body, decoded, within the size limit.
    fn body(&self, request: &LambdaFunctionUrlRequest) -> Result<Vec<u8>, Refusal> {
        let body = body_bytes(request)?;
        if body.len() > self.max_body_bytes {
            return Err(refuse(
                413,
                format!(
                    "body is {} bytes; at most {} are accepted",
                    body.len(),
                    self.max_body_bytes
                ),
            ));
        }
        Ok(body)
    }

    async fn gainsight(
        &self,
        request: &LambdaFunctionUrlRequest,
        now_ms: i64,
        runs: &mut Runs,
    ) -> Result<Accepted, Refusal> {
        let body = self.body(request)?;
        self.check_signature(request, &body, now_ms).await?;

        let event: GainsightEvent = serde_json::from_slice(&body)
            .map_err(|e| refuse(400, format!("invalid event JSON: {e}")))
            .inspect_err(|r| runs.fail(None, &r.message))?;
        let event_id = event.event_id.clone();
        runs.objects(None, &event.object_name, None);
        // The whole event is one delivery: a redelivery of it queues nothing.
        let delivery = Delivery {
            key: event_id.clone(),
            changes: self
                .changes_of(event, now_ms)
                .inspect_err(|r| runs.fail(None, &r.message))?,
        };
        let enqueued = (self.enqueue((vec![delivery], Packing::Each), now_ms, runs)).await?;
        tracing::info!(event_id = %event_id, queued = enqueued.queued, "changes queued");
        Ok(Accepted {
            event_id,
            duplicate: enqueued.duplicates > 0,
            queued: enqueued.queued,
        })
    }

    /// Queues `deliveries` packed as `packing` says, the run stored with the dedup confirmations
    /// (one write for both); a failure is a 503 the sender retries, unless the queue refused a
    /// change as it is (a 413 saying why: sending it again cannot help).
    async fn enqueue(
        &self,
        (deliveries, packing): (Vec<Delivery>, Packing),
        now_ms: i64,
        runs: &mut Runs,
    ) -> Result<Enqueued, Refusal> {
        let (dedup, changes) = (self.dedup.as_ref(), self.changes.as_ref());
        let deliveries = (deliveries.as_slice(), packing);
        enqueue_recorded(dedup, changes, deliveries, now_ms, (runs, None))
            .await
            .map_err(|e| match e {
                EnqueueError::Refused { .. } => refuse(413, e.to_string()),
                // Names the sender's own notification ids, nothing internal.
                EnqueueError::InFlight { .. } => refuse(503, e.to_string()),
                e => {
                    // What failed inside AWS is for the logs and the run, not for the caller.
                    tracing::error!(error = %e, "changes not queued; the sender is told to retry");
                    refuse(503, UNAVAILABLE)
                }
            })
    }

    /// An Outbound Message: its URL's token and org checked, deduplicated per notification, and
    /// acknowledged only once its new notifications are queued, together in one message, as
    /// hints whose records are read from Salesforce before they are mapped (the message's values
    /// are never written).
    async fn salesforce(
        &self,
        request: &LambdaFunctionUrlRequest,
        now_ms: i64,
        runs: &mut Runs,
    ) -> Result<usize, Refusal> {
        self.check_token(request, now_ms).await?;
        let body = self.body(request)?;
        let message = self.outbound_message(&body)?;
        if let Some(first) = message.notifications.first() {
            runs.objects(None, &first.object, None);
        }
        let deliveries = message
            .notifications
            .into_iter()
            .map(|n| self.notification_change(n, now_ms).map(Delivery::single))
            .collect::<Result<Vec<_>, _>>()
            .inspect_err(|r| runs.fail(None, &r.message))?;
        let packed = (deliveries, Packing::Together);
        Ok(self.enqueue(packed, now_ms, runs).await?.queued)
    }

    /// The body is signed with the current signing secret, or the previous one within its
    /// overlap after a rotation, at a time close enough to now.
    async fn check_signature(
        &self,
        request: &LambdaFunctionUrlRequest,
        body: &[u8],
        now_ms: i64,
    ) -> Result<(), Refusal> {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        let (timestamp, signature) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));
        let signed =
            signature::Signed::parse(timestamp, signature, now_ms / 1000, self.tolerance_s)
                .map_err(|e| refuse(401, e.to_string()))?;
        let signed_with = |versions: &shared::secret::Versions| {
            versions
                .accepted(now_ms)
                .any(|secret| signed.matches(secret.as_bytes(), body))
        };
        self.secret
            .check(now_ms, signed_with)
            .await
            .map_err(|e| match e {
                keeper::KeeperRefusal::Unavailable(why) => {
                    tracing::error!(error = %why, "the webhook secret could not be read");
                    refuse(503, UNAVAILABLE)
                }
                keeper::KeeperRefusal::NotConfigured | keeper::KeeperRefusal::Mismatch => {
                    refuse(401, signature::SignatureError::Mismatch.to_string())
                }
            })
    }

    /// The request's URL carries an accepted token (`?token=`).
    async fn check_token(
        &self,
        request: &LambdaFunctionUrlRequest,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        let token = request
            .query_string_parameters
            .get("token")
            .map(String::as_str);
        let accepted = |versions: &shared::secret::Versions| {
            token.is_some_and(|t| versions.accepts(t, now_ms))
        };
        self.tokens.check(now_ms, accepted).await.map_err(|e| match e {
            keeper::KeeperRefusal::NotConfigured => refuse(
                403,
                "Outbound Messages are not accepted: no token is stored; put one with `syncctl secrets put salesforce-outbound-token` and end the endpoint URL with ?token=<it>",
            ),
            keeper::KeeperRefusal::Mismatch => refuse(
                403,
                "the endpoint URL's token is missing or not the stored salesforce-outbound-token",
            ),
            keeper::KeeperRefusal::Unavailable(why) => {
                tracing::error!(error = %why, "the Outbound Message token could not be read");
                refuse(503, UNAVAILABLE)
            }
        })
    }

    /// The parsed message, if it comes from the configured org.
    fn outbound_message(&self, body: &[u8]) -> Result<outbound::Notifications, Refusal> {
        let Some(expected_org) = &self.salesforce_org_id else {
            return Err(refuse(
                403,
                "Outbound Messages are not accepted: SALESFORCE_ORG_ID is not configured",
            ));
        };
        let text = std::str::from_utf8(body).map_err(|_| refuse(400, "body is not UTF-8 XML"))?;
        let message = outbound::parse(text).map_err(|e| refuse(400, e))?;
        if &message.organization_id != expected_org {
            return Err(refuse(
                403,
                format!(
                    "OrganizationId {} is not the configured org",
                    message.organization_id
                ),
            ));
        }
        Ok(message)
    }

    /// One notification as a hint under its notification id: which record changed, no more.
    fn notification_change(
        &self,
        n: outbound::Notification,
        now_ms: i64,
    ) -> Result<ChangeEvent, Refusal> {
        if self
            .jobs
            .for_source(System::Salesforce, &n.object)
            .next()
            .is_none()
        {
            return Err(refuse(
                400,
                format!(
                    "sObject {}: no sync job reads this Salesforce object",
                    n.object
                ),
            ));
        }
        let record_id = match n.fields.get("Id") {
            Some(Value::String(id)) if is_salesforce_id(id) => id.clone(),
            _ => {
                return Err(refuse(
                    400,
                    format!(
                        "Notification {}: sObject Id is not a Salesforce record id (15 or 18 letters and digits)",
                        n.id
                    ),
                ))
            }
        };
        let event_id = format!("sfdc-notification/{}", n.id);
        Ok(ChangeEvent::salesforce_hint(
            &n.object, &record_id, event_id, now_ms,
        ))
    }

    fn changes_of(&self, event: GainsightEvent, now_ms: i64) -> Result<Vec<ChangeEvent>, Refusal> {
        check_event_size(&event)?;
        let job = self
            .jobs
            .for_source(System::Gainsight, &event.object_name)
            .next()
            .ok_or_else(|| {
                refuse(
                    400,
                    format!(
                        "objectName {}: no sync job reads this Gainsight object",
                        event.object_name
                    ),
                )
            })?;
        let id_field = &job.gainsight.id_field;
        let mut changes = Vec::with_capacity(event.records.len());
        for (i, fields) in event.records.into_iter().enumerate() {
            let record_id = match fields.get(id_field) {
                Some(Value::String(id)) if is_gainsight_id(id) => id.clone(),
                Some(Value::String(id)) => {
                    return Err(refuse(
                        400,
                        format!("records[{i}].{id_field} {id:?} is not a Gainsight id (letters and digits only)"),
                    ))
                }
                _ => {
                    return Err(refuse(
                        400,
                        format!("records[{i}].{id_field} is missing or not a string"),
                    ))
                }
            };
            let record = SourceRecord {
                source: System::Gainsight,
                object: event.object_name.clone(),
                id: record_id.clone(),
                fields,
            };
            let event_id = format!("{}/{record_id}", event.event_id);
            let mut change = ChangeEvent::pushed(
                record,
                event_id,
                event.event_type,
                event.occurred_at,
                now_ms,
            );
            change.changed_fields = event.changed_fields.clone();
            check_change_size(i, &change)?;
            changes.push(change);
        }
        Ok(changes)
    }
}

/// An event must name itself and carry between 1 and `MAX_RECORDS` records.
fn check_event_size(event: &GainsightEvent) -> Result<(), Refusal> {
    if event.event_id.trim().is_empty() {
        return Err(refuse(400, "eventId must not be empty"));
    }
    if event.records.is_empty() {
        return Err(refuse(400, "records must hold at least one record"));
    }
    if event.records.len() > MAX_RECORDS {
        return Err(refuse(
            413,
            format!(
                "{} records in one request; at most {MAX_RECORDS} are accepted",
                event.records.len()
            ),
        ));
    }
    Ok(())
}

/// A record whose change would not fit in one queue message is refused before anything of its
/// event is queued, naming it.
fn check_change_size(i: usize, change: &ChangeEvent) -> Result<(), Refusal> {
    let bytes = serde_json::to_string(change).map_or(0, |b| b.len());
    if bytes > shared::adapters::sqs::MAX_MESSAGE_BYTES {
        return Err(refuse(
            413,
            format!(
                "records[{i}] ({}) is {bytes} bytes as a change, over the queue's limit of {} bytes; shorten its longest fields or leave them out of the rule's payload",
                change.record_id,
                shared::adapters::sqs::MAX_MESSAGE_BYTES
            ),
        ));
    }
    Ok(())
}

fn body_bytes(request: &LambdaFunctionUrlRequest) -> Result<Vec<u8>, Refusal> {
    let body = request.body.as_deref().unwrap_or_default();
    if body.is_empty() {
        return Err(refuse(400, "empty body"));
    }
    if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| {
                refuse(
                    400,
                    format!("body is marked base64 but does not decode: {e}"),
                )
            })
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

fn xml_response(status: u16, body: String) -> LambdaFunctionUrlResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(body);
    response
}

fn response(status: u16, body: &impl Serialize) -> LambdaFunctionUrlResponse {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    // Plain structs of strings and numbers: serialising cannot fail.
    response.body = Some(serde_json::to_string(body).unwrap_or_default());
    response
}

#[cfg(test)]
mod tests;
