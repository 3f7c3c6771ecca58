//! Runs the built `webhook` binary the way Lambda does, through the Runtime API, against moto:
//! proves `main.rs` (config from the environment, KMS decrypt at cold start, SDK clients, the
//! runtime loop), not only the handler.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;
use devstack::moto::LocalAws;
use devstack::runtime_api::RuntimeApi;
use serde_json::{json, Value};
use shared::adapters::AwsClients;
use shared::config::AwsResources;
use shared::ports::Secrets;
use shared::secret::{names, Secret};
use shared::signature;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_binary_serves_function_url_events_through_the_runtime_api() -> Result<()> {
    let aws = LocalAws::start().await?;
    let resources = AwsResources {
        table_name: aws.table_name()?.to_string(),
        kms_key_id: aws.kms_key_id()?.to_string(),
        changes_queue_url: aws.queue_url("ChangesQueue").await?,
        writes_queue_url: aws.queue_url("WritesQueue").await?,
        run_ttl_days: shared::config::DEFAULT_RUN_TTL_DAYS,
    };
    AwsClients::new(&aws.sdk)
        .with_sqs(&aws.sqs_sdk)
        .secrets(&resources)
        .put(names::WEBHOOK_SECRET, &Secret::new("runtime-secret"))
        .await?;

    let runtime = RuntimeApi::start(aws.deployment.timeout("WebhookFunction")?).await?;
    let mut child = runtime
        .command(env!("CARGO_BIN_EXE_webhook"), "webhook")
        .envs(aws.env())
        .envs(resources.env())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let body = json!({
        "eventId": "rt-1", "eventType": "updated", "objectName": "Company", "occurredAt": now * 1000,
        "records": [{"Gsid": "1P0RUNTIME", "Name": "Runtime Co", "Arr": 5}]
    })
    .to_string();
    let mut event: Value =
        serde_json::from_str(include_str!("../fixtures/function_url_request.json"))?;
    event["body"] = json!(body);
    event["headers"]["x-gs-timestamp"] = json!(now.to_string());
    event["headers"]["x-gs-signature"] =
        json!(signature::sign(b"runtime-secret", now, body.as_bytes()));

    let answer = runtime
        .invoke(event.clone(), Duration::from_secs(60))
        .await?
        .map_err(|e| anyhow::anyhow!("function error: {e}"))?;
    assert_eq!(answer["statusCode"], json!(200), "{answer}");
    assert_eq!(aws.queue_depth("ChangesQueue").await?, 1);

    // Same process, second invocation: a wrong signature is refused and queues nothing.
    event["headers"]["x-gs-signature"] = json!(signature::sign(b"wrong", now, body.as_bytes()));
    event["headers"]["x-gs-timestamp"] = json!(now.to_string());
    let answer = runtime
        .invoke(event, Duration::from_secs(30))
        .await?
        .map_err(|e| anyhow::anyhow!("function error: {e}"))?;
    assert_eq!(answer["statusCode"], json!(401), "{answer}");
    assert_eq!(aws.queue_depth("ChangesQueue").await?, 1);
    assert!(
        child.try_wait()?.is_none(),
        "the function process keeps serving"
    );
    child.kill().await?;
    Ok(())
}

#[tokio::test]
async fn the_webhook_binary_fails_fast_naming_a_missing_variable() {
    shared::fakes::assert_fails_fast_naming(env!("CARGO_BIN_EXE_webhook"), "TABLE_NAME").await;
}
