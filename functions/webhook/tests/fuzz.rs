//! Fuzzing the webhook's two doors with malformed and tampered requests, through `handle_at` on
//! fakes: Gainsight's signed JSON events and Salesforce's SOAP Outbound Messages. Whatever
//! arrives, the answer is a refusal (4xx with a body saying why) or an acceptance, never a panic
//! or a server fault; a refusal queues nothing, and whatever is queued is a whole change event.
//! `FUZZ_SECONDS` sets each target's time (1 s in `make test`; `make fuzz` runs longer).

use std::sync::Arc;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use proptest::prelude::*;
use shared::config::AwsResources;
use shared::domain::Jobs;
use shared::fakes::{MemoryQueue, MemorySecrets, MemoryStore};
use shared::fuzz;
use shared::secret::Secret;
use shared::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use webhook::{Config, Webhook};

const NOW_MS: i64 = 1_700_000_000_000;
const SECRET: &str = "whsec-fuzz";
const TOKEN: &str = "om-token-fuzz-0123456789abcdef01234";

fn webhook(queue: Arc<MemoryQueue>) -> Webhook {
    let store = Arc::new(MemoryStore::default());
    let config = Config {
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
    };
    let secrets = Arc::new(MemorySecrets::default());
    secrets.values.lock().unwrap().insert(
        shared::secret::names::SALESFORCE_OUTBOUND_TOKEN.into(),
        Secret::new(TOKEN),
    );
    Webhook::new(
        store.clone(),
        store,
        queue,
        Secret::new(SECRET),
        Jobs::builtin(),
        &config,
    )
    .with_outbound_tokens(secrets)
}

fn request(path: &str, body: &str, headers: &[(&'static str, String)]) -> LambdaFunctionUrlRequest {
    let mut req: LambdaFunctionUrlRequest =
        serde_json::from_str(include_str!("../fixtures/function_url_request.json"))
            .expect("fixture parses");
    req.raw_path = Some(path.into());
    req.body = Some(body.to_string());
    for (name, value) in headers {
        if let Ok(value) = value.parse() {
            req.headers.insert(*name, value);
        }
    }
    req
}

/// What every answer must be, and what a refusal must leave: nothing queued.
fn judge(resp: &LambdaFunctionUrlResponse, queue: &MemoryQueue) -> Result<(), String> {
    let status = resp.status_code;
    let body = resp.body.as_deref().unwrap_or_default();
    if !(200..500).contains(&status) {
        return Err(format!("answered {status}: {body}"));
    }
    let queued = queue.bodies();
    if status >= 400 {
        if body.trim().is_empty() {
            return Err(format!("refused ({status}) without saying why"));
        }
        if !queued.is_empty() {
            return Err(format!("refused ({status}) but queued {}", queued.len()));
        }
    }
    for text in &queued {
        shared::enqueue::unpack(text)
            .map_err(|e| format!("queued something that is not a change event ({e}): {text}"))?;
    }
    Ok(())
}

/// How a fuzzed Gainsight request is signed: correctly (so the body's parsing is reached), or
/// with headers of its own.
#[derive(Clone, Debug)]
enum Signing {
    Valid,
    Headers {
        timestamp: String,
        signature: String,
    },
    None,
}

fn signing() -> impl Strategy<Value = Signing> {
    prop_oneof![
        6 => Just(Signing::Valid),
        3 => ("\\PC{0,24}", "(sha256=)?[0-9a-fA-F]{0,70}|\\PC{0,40}")
            .prop_map(|(timestamp, signature)| Signing::Headers { timestamp, signature }),
        1 => Just(Signing::None),
    ]
}

#[test]
fn gainsight_events_malformed_or_tampered_are_refused_cleanly() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let seeds = vec![
        include_str!("../fixtures/gainsight_company_updated.json").to_string(),
        r#"{"eventId":"e1","object":"Company","operation":"updated","records":[{"Gsid":"1P01","Name":"A"}]}"#.to_string(),
    ];
    let accepted = std::sync::atomic::AtomicU64::new(0);
    let cases = fuzz::run(
        "webhook_gainsight",
        (fuzz::mutated(seeds), signing()),
        |(body, signing)| {
            let headers = match signing {
                Signing::Valid => {
                    let ts = NOW_MS / 1000;
                    let sig = signature::sign(SECRET.as_bytes(), ts, body.as_bytes());
                    vec![(TIMESTAMP_HEADER, ts.to_string()), (SIGNATURE_HEADER, sig)]
                }
                Signing::Headers {
                    timestamp,
                    signature,
                } => vec![
                    (TIMESTAMP_HEADER, timestamp.clone()),
                    (SIGNATURE_HEADER, signature.clone()),
                ],
                Signing::None => Vec::new(),
            };
            let queue = Arc::new(MemoryQueue::default());
            let hook = webhook(queue.clone());
            let resp =
                runtime.block_on(hook.handle_at(request("/gainsight", body, &headers), NOW_MS));
            if resp.status_code < 300 {
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            judge(&resp, &queue)
        },
    );
    let accepted = accepted.into_inner();
    println!("fuzz: webhook_gainsight accepted {accepted} of {cases}");
    assert!(
        accepted > 0,
        "no case got past the checks: the inputs are too broken to test parsing"
    );
}

#[test]
fn outbound_messages_malformed_are_refused_cleanly() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let seeds = vec![include_str!("../fixtures/outbound_message.xml").to_string()];
    let accepted = std::sync::atomic::AtomicU64::new(0);
    let cases = fuzz::run("webhook_outbound_message", fuzz::mutated(seeds), |body| {
        let queue = Arc::new(MemoryQueue::default());
        let hook = webhook(queue.clone());
        let mut req = request("/salesforce", body, &[]);
        req.query_string_parameters
            .insert("token".into(), TOKEN.into());
        let resp = runtime.block_on(hook.handle_at(req, NOW_MS));
        judge(&resp, &queue)?;
        let text = resp.body.as_deref().unwrap_or_default();
        if resp.status_code == 200 {
            if !text.contains("<Ack>true</Ack>") {
                return Err(format!("200 without an Ack: {text}"));
            }
            accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    });
    let accepted = accepted.into_inner();
    println!("fuzz: webhook_outbound_message accepted {accepted} of {cases}");
    assert!(
        accepted > 0,
        "no case got past the checks: the inputs are too broken to test parsing"
    );
}
