//! Handler tests: the Function URL fixture, signed or tampered, through `handle_at` on fakes.

use super::*;
use serde_json::json;
use shared::fakes::{MemoryQueue, MemorySecrets, MemoryStore};
use shared::secret::Versions;

const NOW_MS: i64 = 1_700_000_000_000;
const SECRET: &str = "whsec-test";
const TOKEN: &str = "om-token-0123456789abcdef0123456789";

fn config() -> Config {
    Config {
        aws: AwsResources {
            table_name: "t".into(),
            kms_key_id: "k".into(),
            changes_queue_url: "q".into(),
            writes_queue_url: "w".into(),
            run_ttl_days: shared::config::DEFAULT_RUN_TTL_DAYS,
        },
        max_body_bytes: 64 * 1024,
        tolerance_s: 300,
        salesforce_org_id: Some("00D5g00000EMUL8AAA".into()),
    }
}

struct Rig {
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    secrets: Arc<MemorySecrets>,
    webhook: Webhook,
}

fn rig() -> Rig {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let secrets = Arc::new(MemorySecrets::default());
    secrets
        .values
        .lock()
        .unwrap()
        .insert(names::SALESFORCE_OUTBOUND_TOKEN.into(), Secret::new(TOKEN));
    let webhook = Webhook::new(
        store.clone(),
        store.clone(),
        queue.clone(),
        Secret::new(SECRET),
        Jobs::builtin(),
        &config(),
    )
    .with_outbound_tokens(secrets.clone());
    Rig {
        store,
        queue,
        secrets,
        webhook,
    }
}

impl Rig {
    /// A webhook on the rig's ports that takes bodies of up to `max_body_bytes`.
    fn webhook_taking(&self, max_body_bytes: usize) -> Webhook {
        let mut config = config();
        config.max_body_bytes = max_body_bytes;
        Webhook::new(
            self.store.clone(),
            self.store.clone(),
            self.queue.clone(),
            Secret::new(SECRET),
            Jobs::builtin(),
            &config,
        )
    }
}

fn request(body: &str, signed_at_s: Option<i64>, key: &str) -> LambdaFunctionUrlRequest {
    let mut req: LambdaFunctionUrlRequest =
        serde_json::from_str(include_str!("../fixtures/function_url_request.json"))
            .expect("fixture parses");
    req.body = Some(body.to_string());
    if let Some(ts) = signed_at_s {
        let sig = signature::sign(key.as_bytes(), ts, body.as_bytes());
        req.headers
            .insert(TIMESTAMP_HEADER, ts.to_string().parse().unwrap());
        req.headers.insert(SIGNATURE_HEADER, sig.parse().unwrap());
    }
    req
}

fn event() -> String {
    include_str!("../fixtures/gainsight_company_updated.json").to_string()
}

fn status_and_body(resp: &LambdaFunctionUrlResponse) -> (i64, Value) {
    (
        resp.status_code,
        serde_json::from_str(resp.body.as_deref().unwrap_or("null")).unwrap(),
    )
}

#[tokio::test]
async fn queues_one_change_per_record_of_a_signed_event() {
    let rig = rig();
    let resp = rig
        .webhook
        .handle_at(request(&event(), Some(NOW_MS / 1000), SECRET), NOW_MS)
        .await;
    let (status, body) = status_and_body(&resp);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["queued"], 1);
    let sent = rig.queue.bodies();
    assert_eq!(sent.len(), 1);
    let change: ChangeEvent = serde_json::from_str(&sent[0]).unwrap();
    assert_eq!(change.record_id, "1P02ABCDEF0000000001");
    assert_eq!(change.source, System::Gainsight);
    assert_eq!(change.operation, Operation::Updated);
    assert_eq!(change.fields["Arr"], json!(125000.0));
    assert_eq!(change.received_at_ms, NOW_MS);
    assert_eq!(
        change.changed_fields.as_deref(),
        Some(&["Arr".to_string()][..])
    );
}

#[tokio::test]
async fn a_redelivered_event_is_queued_once() {
    let rig = rig();
    for _ in 0..3 {
        let resp = rig
            .webhook
            .handle_at(request(&event(), Some(NOW_MS / 1000), SECRET), NOW_MS)
            .await;
        assert_eq!(resp.status_code, 200);
    }
    assert_eq!(rig.queue.bodies().len(), 1);
    // Each delivery is a run: the first queued the record, the others saw a duplicate.
    let runs = rig.store.runs.lock().unwrap().clone();
    let outcomes: Vec<_> = runs.iter().map(|r| (r.succeeded, r.ignored)).collect();
    assert_eq!(outcomes, [(1, 0), (0, 1), (0, 1)]);
    assert_eq!(runs[0].source_object.as_deref(), Some("Company"));
    assert_eq!(
        runs[1].log[0].outcome,
        shared::domain::LineOutcome::Duplicate
    );
}

#[tokio::test]
async fn an_unauthenticated_request_leaves_no_run() {
    let rig = rig();
    let resp = rig
        .webhook
        .handle_at(request(&event(), None, SECRET), NOW_MS)
        .await;
    assert_eq!(resp.status_code, 401);
    assert_eq!(*rig.store.run_writes.lock().unwrap(), 0);
}

#[tokio::test]
async fn bad_requests_are_refused_and_queue_nothing() {
    let rig = rig();
    let stale = NOW_MS / 1000 - 301;
    let mut tampered = request(&event(), Some(NOW_MS / 1000), SECRET);
    tampered.body = Some(event().replace("125000.0", "999999.0"));
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    let cases: Vec<(&str, LambdaFunctionUrlRequest, i64, &str)> = vec![
        (
            "unsigned",
            request(&event(), None, SECRET),
            401,
            "missing x-gs-timestamp",
        ),
        (
            "wrong key",
            request(&event(), Some(NOW_MS / 1000), "other"),
            401,
            "does not match",
        ),
        ("tampered body", tampered, 401, "does not match"),
        (
            "stale",
            request(&event(), Some(stale), SECRET),
            401,
            "301 s away",
        ),
        (
            "malformed",
            request("{\"eventId\": ", Some(NOW_MS / 1000), SECRET),
            400,
            "invalid event JSON",
        ),
        (
            "missing field",
            request(
                &event().replace("\"objectName\": \"Company\",", ""),
                Some(NOW_MS / 1000),
                SECRET,
            ),
            400,
            "missing field `objectName`",
        ),
        (
            "no id",
            request(
                &event().replace("\"Gsid\": \"1P02ABCDEF0000000001\", ", ""),
                Some(NOW_MS / 1000),
                SECRET,
            ),
            400,
            "records[0].Gsid is missing",
        ),
        (
            "a GSID that would read as a Salesforce-only key",
            request(
                &event().replace("1P02ABCDEF0000000001", "sf:001000000000001AAA"),
                Some(NOW_MS / 1000),
                SECRET,
            ),
            400,
            "records[0].Gsid \"sf:001000000000001AAA\" is not a Gainsight id",
        ),
        (
            "a GSID with whitespace",
            request(
                &event().replace("1P02ABCDEF0000000001", " 1P02ABCDEF0000000001"),
                Some(NOW_MS / 1000),
                SECRET,
            ),
            400,
            "is not a Gainsight id",
        ),
        (
            "unknown object",
            request(
                &event().replace("\"Company\"", "\"Widget\""),
                Some(NOW_MS / 1000),
                SECRET,
            ),
            400,
            "objectName Widget",
        ),
        (
            "oversize",
            request(&big, Some(NOW_MS / 1000), SECRET),
            413,
            "at most 65536",
        ),
    ];
    for (name, req, want_status, want_text) in cases {
        let resp = rig.webhook.handle_at(req, NOW_MS).await;
        let (status, body) = status_and_body(&resp);
        assert_eq!(status, want_status, "{name}: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(want_text),
            "{name}: {message:?} should contain {want_text:?}"
        );
    }
    assert!(
        rig.queue.bodies().is_empty(),
        "nothing may be queued for refused requests"
    );
    assert!(
        rig.store.events.lock().unwrap().is_empty(),
        "no dedup key may be claimed for refused requests"
    );
}

#[tokio::test]
async fn refuses_more_than_50000_records() {
    let rig = rig();
    let records: Vec<Value> = (0..=MAX_RECORDS)
        .map(|i| json!({"Gsid": format!("g{i}")}))
        .collect();
    let body = json!({"eventId": "big", "eventType": "updated", "objectName": "Company", "occurredAt": NOW_MS, "records": records}).to_string();
    let webhook = rig.webhook_taking(10 * 1024 * 1024);
    let resp = webhook
        .handle_at(request(&body, Some(NOW_MS / 1000), SECRET), NOW_MS)
        .await;
    let (status, body) = status_and_body(&resp);
    assert_eq!(status, 413);
    assert!(
        body["error"].as_str().unwrap().contains("50001 records"),
        "{body}"
    );
    assert!(rig.queue.bodies().is_empty());
}

/// A record whose change cannot fit in one queue message is refused, naming it, before any
/// record of its event is queued: the sender is told what to fix instead of retrying forever.
#[tokio::test]
async fn a_record_too_large_for_the_queue_is_refused_and_nothing_is_queued() {
    let rig = rig();
    let records = vec![
        json!({"Gsid": "g1", "Name": "fine"}),
        json!({"Gsid": "g2", "Name": "x".repeat(300 * 1024)}),
    ];
    let body = json!({"eventId": "fat", "eventType": "updated", "objectName": "Company", "occurredAt": NOW_MS, "records": records}).to_string();
    let webhook = rig.webhook_taking(1024 * 1024);
    let resp = webhook
        .handle_at(request(&body, Some(NOW_MS / 1000), SECRET), NOW_MS)
        .await;
    let (status, body) = status_and_body(&resp);
    assert_eq!(status, 413, "{body}");
    let said = body["error"].as_str().unwrap_or_default();
    assert!(said.starts_with("records[1] (g2) is "), "{said}");
    assert!(rig.queue.bodies().is_empty());
    assert!(
        rig.store.events.lock().unwrap().is_empty(),
        "nothing claimed"
    );
}

/// A change the queue refuses as it is (a sender fault) is answered 413 with the queue's
/// reason, not 503: sending the same event again cannot help.
#[tokio::test]
async fn a_change_the_queue_refuses_is_not_answered_as_a_retry() {
    let rig = rig();
    *rig.queue.reject_containing.lock().unwrap() = Some("1P02ABCDEF0000000001".into());
    let resp = rig
        .webhook
        .handle_at(request(&event(), Some(NOW_MS / 1000), SECRET), NOW_MS)
        .await;
    let (status, body) = status_and_body(&resp);
    assert_eq!(status, 413, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap_or_default()
        .contains("refused by the queue"));
}

#[tokio::test]
async fn a_queue_failure_answers_503_and_releases_the_claim_for_the_retry() {
    let rig = rig();
    *rig.queue.fail_containing.lock().unwrap() = Some("1P02ABCDEF0000000001".into());
    let resp = rig
        .webhook
        .handle_at(request(&event(), Some(NOW_MS / 1000), SECRET), NOW_MS)
        .await;
    assert_eq!(resp.status_code, 503);
    let body = resp.body.clone().unwrap_or_default();
    assert!(body.contains("send the request again"), "{body}");
    assert!(
        !body.contains("injected"),
        "no internal cause told to the caller: {body}"
    );
    *rig.queue.fail_containing.lock().unwrap() = None;
    let resp = rig
        .webhook
        .handle_at(request(&event(), Some(NOW_MS / 1000), SECRET), NOW_MS)
        .await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(
        rig.queue.bodies().len(),
        1,
        "the retry must be queued, not dropped as a duplicate"
    );
}

#[tokio::test]
async fn base64_bodies_are_decoded_before_the_signature_check() {
    let rig = rig();
    let mut req = request(&event(), Some(NOW_MS / 1000), SECRET);
    req.body = Some(base64::engine::general_purpose::STANDARD.encode(event()));
    req.is_base64_encoded = true;
    assert_eq!(rig.webhook.handle_at(req, NOW_MS).await.status_code, 200);
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let rig = rig();
    let mut req = request(&event(), Some(NOW_MS / 1000), SECRET);
    req.raw_path = Some("/nope".into());
    assert_eq!(rig.webhook.handle_at(req, NOW_MS).await.status_code, 404);
    let mut req = request(&event(), Some(NOW_MS / 1000), SECRET);
    req.request_context.http.method = Some("GET".into());
    assert_eq!(rig.webhook.handle_at(req, NOW_MS).await.status_code, 405);
}

fn outbound_request(body: &str) -> LambdaFunctionUrlRequest {
    outbound_request_with(body, Some(TOKEN))
}

/// An Outbound Message posted to the endpoint URL with `?token=` `token`.
fn outbound_request_with(body: &str, token: Option<&str>) -> LambdaFunctionUrlRequest {
    let mut req = request(body, None, SECRET);
    req.raw_path = Some("/salesforce".into());
    if let Some(token) = token {
        req.raw_query_string = Some(format!("token={token}"));
        req.query_string_parameters
            .insert("token".into(), token.into());
    }
    req
}

const OUTBOUND: &str = include_str!("../fixtures/outbound_message.xml");

/// A message that lists one notification twice (found by the fuzzer: it was answered 503 for
/// ever, the second claim waiting on the first) is acknowledged, the notification queued once,
/// as last listed.
#[tokio::test]
async fn a_notification_listed_twice_in_one_message_is_queued_once() {
    let rig = rig();
    let second = OUTBOUND
        .split("<Notification>")
        .nth(2)
        .and_then(|n| n.split("</Notification>").next())
        .expect("the fixture's second notification");
    let doubled = OUTBOUND.replacen(
        "</notifications>",
        &format!("<Notification>{second}</Notification></notifications>"),
        1,
    );
    let resp = rig
        .webhook
        .handle_at(outbound_request(&doubled), NOW_MS)
        .await;
    assert_eq!(resp.status_code, 200, "{:?}", resp.body);
    assert!(resp
        .body
        .as_deref()
        .unwrap_or_default()
        .contains("<Ack>true</Ack>"));
    assert_eq!(rig.queue.bodies().len(), 1, "one queue message");
    assert_eq!(
        queued_hints(&rig).len(),
        2,
        "two notifications, the doubled one once"
    );
}

/// The changes queued, each queue message being a list of hints (an Outbound Message's
/// notifications travel together).
fn queued_hints(rig: &Rig) -> Vec<ChangeEvent> {
    (rig.queue.bodies().iter())
        .flat_map(|b| serde_json::from_str::<Vec<ChangeEvent>>(b).expect("a list of changes"))
        .collect()
}

#[tokio::test]
async fn outbound_message_is_acked_after_queueing_and_deduplicated_per_notification() {
    let rig = rig();
    let resp = rig
        .webhook
        .handle_at(outbound_request(OUTBOUND), NOW_MS)
        .await;
    assert_eq!(resp.status_code, 200);
    assert!(resp.body.as_deref().unwrap().contains("<Ack>true</Ack>"));
    assert_eq!(
        rig.queue.bodies().len(),
        1,
        "one queue message for the Outbound Message"
    );
    let sent = queued_hints(&rig);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].record_id, "001000000000002AAA");
    let first = &sent[0];
    assert_eq!(
        (first.source, first.object.as_str()),
        (System::Salesforce, "Account")
    );
    assert_eq!(first.record_id, "001000000000001AAA");
    // A hint: the record is read from Salesforce before it is mapped; none of the message's
    // values (nothing signs them) is queued, and its time is its arrival.
    assert_eq!(first.read, shared::domain::change::Reading::Due);
    assert_eq!(first.fields.keys().collect::<Vec<_>>(), ["Id"]);
    assert_eq!(first.occurred_at_ms, NOW_MS);

    // Salesforce redelivers (no Ack seen): acknowledged again, nothing queued twice.
    let again = rig
        .webhook
        .handle_at(outbound_request(OUTBOUND), NOW_MS)
        .await;
    assert_eq!(again.status_code, 200);
    assert_eq!(queued_hints(&rig).len(), 2);
}

/// A notification another request claimed and has not queued yet (still in flight, or crashed
/// before queueing it) is not acknowledged: Salesforce would stop retrying, and the change would be
/// lost if that request never queues it.
#[tokio::test]
async fn a_notification_another_request_holds_is_not_acknowledged() {
    use shared::ports::DedupStore;
    let rig = rig();
    let held = "sfdc-notification/04l5g000000001AAA";
    rig.store
        .claim_event(held, NOW_MS, 60_000, 3600)
        .await
        .unwrap();
    let resp = rig
        .webhook
        .handle_at(outbound_request(OUTBOUND), NOW_MS + 1_000)
        .await;
    assert_eq!(resp.status_code, 503);
    let body = resp.body.as_deref().unwrap();
    assert!(!body.contains("<Ack>true</Ack>"), "{body}");
    assert!(body.contains(held) && body.contains("retry"), "{body}");
    assert_eq!(
        queued_hints(&rig).len(),
        1,
        "the other notification is queued"
    );
    // Once the holder's claim is handed out again, Salesforce's retry queues it.
    let again = rig
        .webhook
        .handle_at(outbound_request(OUTBOUND), NOW_MS + 61_001)
        .await;
    assert!(again.body.as_deref().unwrap().contains("<Ack>true</Ack>"));
    assert_eq!(queued_hints(&rig).len(), 2);
}

/// Each bad message gets a SOAP fault (or 4xx) and queues nothing.
#[tokio::test]
async fn outbound_refusals_table() {
    let cases: Vec<(String, i64, &str)> = vec![
        (
            OUTBOUND.replace(
                "00D5g00000EMUL8AAA</OrganizationId>",
                "00DOTHER000000AAAA</OrganizationId>",
            ),
            403,
            "is not the configured org",
        ),
        ("<notifications".into(), 400, "not well-formed XML"),
        (
            OUTBOUND.replace(":Account\"", ":Opportunity\""),
            400,
            "sObject Opportunity: no sync job",
        ),
        ("x".repeat(70 * 1024), 413, "at most 65536"),
    ];
    for (body, status, expected) in cases {
        let rig = rig();
        let resp = rig.webhook.handle_at(outbound_request(&body), NOW_MS).await;
        let text = resp.body.clone().unwrap_or_default();
        assert_eq!(resp.status_code, status, "{text}");
        assert!(
            text.contains("<soapenv:Fault>") && text.contains(expected),
            "{text}"
        );
        assert!(text.contains("soapenv:Client"), "{text}");
        assert!(rig.queue.bodies().is_empty());
    }

    // A token-less or wrong token is refused before the body is read.
    for token in [None, Some("om-token-guess"), Some("")] {
        let rig = rig();
        let resp = rig
            .webhook
            .handle_at(outbound_request_with(OUTBOUND, token), NOW_MS)
            .await;
        let text = resp.body.clone().unwrap_or_default();
        assert_eq!(resp.status_code, 403, "{token:?}: {text}");
        assert!(text.contains("token"), "{text}");
        assert!(rig.queue.bodies().is_empty());
        assert!(
            rig.store.runs.lock().unwrap().is_empty(),
            "no run for a forger"
        );
    }

    // Not configured: every message is refused.
    let mut unconfigured = config();
    unconfigured.salesforce_org_id = None;
    let queue = Arc::new(MemoryQueue::default());
    let store = Arc::new(MemoryStore::default());
    let webhook = Webhook::new(
        store.clone(),
        store,
        queue.clone(),
        Secret::new(SECRET),
        Jobs::builtin(),
        &unconfigured,
    );
    let resp = webhook.handle_at(outbound_request(OUTBOUND), NOW_MS).await;
    assert_eq!(resp.status_code, 403);
    assert!(queue.bodies().is_empty());
}

#[tokio::test]
async fn outbound_queue_failure_is_a_server_fault_and_the_retry_queues_it() {
    let rig = rig();
    *rig.queue.fail_containing.lock().unwrap() = Some("001000000000002AAA".into());
    let resp = rig
        .webhook
        .handle_at(outbound_request(OUTBOUND), NOW_MS)
        .await;
    assert_eq!(resp.status_code, 503);
    assert!(resp.body.unwrap().contains("soapenv:Server"));
    *rig.queue.fail_containing.lock().unwrap() = None;
    let resp = rig
        .webhook
        .handle_at(outbound_request(OUTBOUND), NOW_MS)
        .await;
    assert_eq!(resp.status_code, 200);
    // The message held both notifications: both claims were released, and the retry queues both.
    let ids: Vec<String> = queued_hints(&rig)
        .into_iter()
        .map(|c| c.record_id)
        .collect();
    assert_eq!(ids, ["001000000000001AAA", "001000000000002AAA"]);
}

/// A token rotated while the function is warm is read again on its first use; the previous one
/// is accepted until its overlap ends.
#[tokio::test]
async fn a_rotated_token_is_accepted_at_once_and_the_previous_one_for_its_overlap() {
    let rig = rig();
    let ok = |resp: &LambdaFunctionUrlResponse| resp.status_code == 200;
    assert!(ok(&rig
        .webhook
        .handle_at(outbound_request(OUTBOUND), NOW_MS)
        .await));
    let next = "om-token-next-0123456789abcdef01234";
    let old = Versions::from_secret(&Secret::new(TOKEN));
    let rotated = Versions::rotated(Some(&old), next, NOW_MS, 3_600_000);
    rig.secrets
        .values
        .lock()
        .unwrap()
        .insert(names::SALESFORCE_OUTBOUND_TOKEN.into(), rotated.to_secret());
    let with = |token, at| {
        rig.webhook
            .handle_at(outbound_request_with(OUTBOUND, Some(token)), at)
    };
    assert!(ok(&with(next, NOW_MS + 61_000).await), "the new token");
    assert!(
        ok(&with(TOKEN, NOW_MS + 3_599_000).await),
        "the old, in its overlap"
    );
    assert_eq!(with(TOKEN, NOW_MS + 3_601_000).await.status_code, 403);
}

/// The Gainsight signing secret rotated while the function is warm: events signed with the new
/// secret are accepted within ten seconds, those signed with the old one until the overlap ends.
#[tokio::test]
async fn a_rotated_signing_secret_is_accepted_within_ten_seconds_and_the_previous_one_for_its_overlap(
) {
    let rig = rig();
    let put = |secret: Secret| {
        rig.secrets
            .values
            .lock()
            .unwrap()
            .insert(names::WEBHOOK_SECRET.into(), secret)
    };
    put(Secret::new(SECRET));
    let webhook = rig.webhook_taking(64 * 1024);
    let webhook = webhook.with_stored_secret(rig.secrets.clone(), NOW_MS);
    let webhook = webhook.await.expect("the secret is stored");
    let next = "whsec-next";
    let old = Versions::from_secret(&Secret::new(SECRET));
    put(Versions::rotated(Some(&old), next, NOW_MS, 3_600_000).to_secret());
    let status = |key: &'static str, at: i64| {
        let webhook = &webhook;
        async move {
            let signed = request(&event(), Some(at / 1000), key);
            webhook.handle_at(signed, at).await.status_code
        }
    };
    assert_eq!(status(next, NOW_MS + 10_000).await, 200, "the new secret");
    assert_eq!(
        status(SECRET, NOW_MS + 3_599_000).await,
        200,
        "the old, in its overlap"
    );
    assert_eq!(
        status(SECRET, NOW_MS + 3_601_000).await,
        401,
        "the old, after it"
    );
    assert_eq!(status("guess", NOW_MS + 3_602_000).await, 401);
}

#[tokio::test]
async fn a_missing_signing_secret_fails_the_cold_start() {
    let rig = rig();
    let webhook = rig.webhook_taking(64 * 1024);
    let started = webhook
        .with_stored_secret(rig.secrets.clone(), NOW_MS)
        .await;
    assert!(matches!(started, Err(SecretsError::NotFound(_))));
}
