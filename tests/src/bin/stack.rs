//! `stack demo`: a real sync end to end on the local stack, printed step by step.
//! `stack up`: the local stack with the functions running, until Ctrl-C, for exploring by hand.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};
use sync_tests::{Options, Stack, GAINSIGHT_ACCESS_KEY, WEBHOOK_SECRET};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match std::env::args().nth(1).as_deref() {
        Some("demo") => demo().await,
        Some("up") => up().await,
        _ => bail!("usage: stack demo | stack up"),
    }
}

async fn up() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    println!("local stack is up (Ctrl-C to stop)");
    println!("  AWS_ENDPOINT_URL={}", stack.aws.moto.endpoint);
    println!("  AWS_REGION={}", devstack::moto::REGION);
    println!("  table:              {}", stack.resources.table_name);
    println!(
        "  changes queue:      {}",
        stack.resources.changes_queue_url
    );
    println!("  writes queue:       {}", stack.resources.writes_queue_url);
    println!(
        "  webhook (Function URL): {}/gainsight   secret: {WEBHOOK_SECRET}",
        stack.webhook_url()
    );
    println!(
        "  Gainsight emulator: {}   Accesskey: {GAINSIGHT_ACCESS_KEY}",
        stack.gainsight.url()
    );
    println!(
        "  Salesforce emulator: {}   client id: {}",
        stack.salesforce.url(),
        stack.salesforce.client_id()
    );
    println!("  try: curl -s -X POST {}/v1/data/objects/Company -H 'Accesskey: {GAINSIGHT_ACCESS_KEY}' \\", stack.gainsight.url());
    println!("         -H 'content-type: application/json' -d '{{\"records\":[{{\"Name\":\"Hand Made Co\",\"Arr\":1}}]}}'");
    println!(
        "       curl -s {}/__emulator/records/Account",
        stack.salesforce.url()
    );
    // `make down` sends SIGTERM: stop cleanly so moto, a child process, goes with us.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    println!("local stack stopping");
    stack.stop().await;
    Ok(())
}

async fn demo() -> Result<()> {
    let started = Instant::now();
    println!("demo: starting moto, deploying infra/template.yaml into it, starting the Gainsight and Salesforce emulators");
    let stack = Stack::start(Options::default()).await?;
    println!(
        "demo: stack up in {:.1} s: table {}, queues changes + writes (each with a DLQ), KMS key {}",
        started.elapsed().as_secs_f64(),
        stack.resources.table_name,
        stack.resources.kms_key_id
    );
    println!(
        "demo: the Gainsight rule posts signed change events to the webhook at {}/gainsight",
        stack.webhook_url()
    );

    let companies = vec![
        json!({"Name": "Acme Corp", "Arr": 120000, "Industry": "Manufacturing", "Employees": 420}),
        json!({"Name": "Globex", "Arr": 87000, "Industry": "Technology", "Employees": 95}),
        json!({"Name": "Initech", "Arr": 43000, "Industry": "Finance", "Employees": 60}),
    ];
    let ids = stack.create_companies(companies).await?;
    println!(
        "demo: created {} Companies in Gainsight: {}",
        ids.len(),
        ids.join(", ")
    );
    for gsid in &ids {
        let t = Instant::now();
        let account = stack
            .eventually(WAIT, "an Account", || async {
                Ok(stack.accounts_for(gsid).pop())
            })
            .await?;
        println!(
            "demo:   Company {gsid} -> Account {} \"{}\" AnnualRevenue={} (seen after {} ms)",
            account["Id"].as_str().unwrap_or("?"),
            account["Name"].as_str().unwrap_or("?"),
            account["AnnualRevenue"],
            t.elapsed().as_millis()
        );
    }

    let updates: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, g)| json!({"Gsid": g, "Arr": 150000 + i * 1000}))
        .collect();
    stack.update_companies(updates).await?;
    println!("demo: updated the ARR of every Company in Gainsight");
    for (i, gsid) in ids.iter().enumerate() {
        let want = json!(150000 + i * 1000);
        let account = stack
            .eventually(WAIT, "the ARR update", || async {
                Ok(stack
                    .accounts_for(gsid)
                    .pop()
                    .filter(|a| a["AnnualRevenue"] == want))
            })
            .await?;
        let count = stack.accounts_for(gsid).len();
        println!(
            "demo:   Account {} now AnnualRevenue={} ({} Account for this Company: updated, not duplicated)",
            account["Id"].as_str().unwrap_or("?"),
            account["AnnualRevenue"],
            count
        );
    }
    stack.drained(WAIT).await?;
    let sf = stack.salesforce.stats();
    let gs = stack.gainsight.stats();
    println!(
        "demo: Salesforce saw {} token request(s), {} API calls ({} upserts); Gainsight delivered {} webhook events",
        sf.token_requests, sf.api_calls, sf.upsert_calls, gs.webhook_deliveries
    );
    println!("demo: ledger (DynamoDB):");
    for r in stack.ledger_records().await? {
        let status = match (r.synced, r.error) {
            (true, true) => "synced,error",
            (true, false) => "synced",
            (false, true) => "error",
            (false, false) => "-",
        };
        println!(
            "demo:   {} {} -> {}  status={status} last_sync={} version={}{}",
            r.job,
            r.gainsight_id,
            r.salesforce_id.as_deref().unwrap_or("-"),
            r.last_sync_at_ms
                .map(shared::time::rfc3339)
                .unwrap_or_else(|| "-".into()),
            r.version,
            r.last_error
                .map(|e| format!(" last_error={e}"))
                .unwrap_or_default()
        );
    }
    let (synced, failed, ignored) = stack.counts().await?;
    stack.stop().await;
    println!("demo: {synced} synced, {failed} failed, {ignored} ignored");
    Ok(())
}
