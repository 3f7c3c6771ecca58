//! The webhook's figures: its handler in process, and one event of 50,000 records on the local
//! stack.

use super::*;

/// The webhook handler in-process (signature, parsing, dedup, queueing on in-memory ports).
pub async fn webhook_handler() -> Result<()> {
    let config = webhook::Config {
        aws: shared::config::AwsResources {
            table_name: "t".into(),
            kms_key_id: "k".into(),
            changes_queue_url: "q".into(),
            writes_queue_url: "w".into(),
            run_ttl_days: shared::config::DEFAULT_RUN_TTL_DAYS,
        },
        max_body_bytes: 1 << 20,
        tolerance_s: 300,
        salesforce_org_id: None,
    };
    let store = Arc::new(MemoryStore::default());
    let hook = webhook::Webhook::new(
        store.clone(),
        store,
        Arc::new(MemoryQueue::default()),
        Secret::new(WEBHOOK_SECRET),
        Jobs::builtin(),
        &config,
    );
    let template: LambdaFunctionUrlRequest = serde_json::from_str(include_str!(
        "../../../../functions/webhook/fixtures/function_url_request.json"
    ))?;
    let n = 20_000;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let body = event_body(&format!("bench-{i}"), &format!("G{i}"));
        let ts = now_s();
        let mut req = template.clone();
        req.headers
            .insert("x-gs-timestamp", ts.to_string().parse()?);
        req.headers
            .insert("x-gs-signature", sign(WEBHOOK_SECRET, ts, &body).parse()?);
        req.body = Some(body);
        let start = Instant::now();
        let resp = hook.handle(req).await;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(
            resp.status_code == 200,
            "webhook answered {}",
            resp.status_code
        );
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    report(
        "webhook_handler_p50",
        format!("{:.1}", percentile(&samples, 50.0)),
        "us",
    );
    report(
        "webhook_handler_p99",
        format!("{:.1}", percentile(&samples, 99.0)),
        "us",
    );
    Ok(())
}

/// One Gainsight event of 50,000 records (the most the webhook accepts) posted to the webhook of
/// the local stack: seconds until it answers, and the AWS requests the webhook made for it (the
/// rest of the stack works meanwhile, as it would).
pub async fn webhook_50000() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let n = webhook::MAX_RECORDS;
    let records: Vec<Value> = (0..n)
        .map(|i| json!({"Gsid": format!("1P02BIG{i:013}"), "Name": format!("Big {i}")}))
        .collect();
    let body = json!({
        "eventId": "bench-50000", "eventType": "updated", "objectName": "Company",
        "occurredAt": shared::time::now_ms(), "records": records,
    })
    .to_string();
    eprintln!("one event of {n} records, {} bytes", body.len());
    stack.aws.reset_requests().await?;
    let ts = now_s();
    let started = Instant::now();
    let answer = reqwest::Client::new()
        .post(format!("{}/gainsight", stack.webhook_url()))
        .header("content-type", "application/json")
        .header("x-gs-timestamp", ts.to_string())
        .header("x-gs-signature", sign(WEBHOOK_SECRET, ts, &body))
        .body(body)
        .send()
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    let callers = stack.aws.callers().await?;
    let webhook: u64 = callers
        .get("WebhookFunction")
        .map(|actions| actions.values().sum())
        .unwrap_or_default();
    eprintln!(
        "webhook answered {status} after {seconds:.2} s: {}",
        text.chars().take(200).collect::<String>()
    );
    report(
        "webhook_50000_records_seconds",
        format!("{seconds:.2}"),
        "s",
    );
    report("webhook_50000_records_aws_requests", webhook, "requests");
    stack.stop().await;
    anyhow::ensure!(status.is_success(), "the webhook answered {status}: {text}");
    Ok(())
}
