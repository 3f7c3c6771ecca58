//! `make bench`: measures the product's speed and size targets (recorded in BENCHMARKS.md) and
//! prints each figure as `bench: <name> = <value> <unit>`. Wall-clock figures depend on the
//! machine; counts are exact.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use serde_json::{json, Value};
use shared::domain::Jobs;
use shared::fakes::{MemoryQueue, MemoryStore};
use shared::ports::Secrets;
use shared::secret::{names, Secret};
use sync_tests::relay::SalesforceEvents;
use sync_tests::{sign, Options, Stack, WEBHOOK_SECRET};

#[path = "bench/cdc.rs"]
mod cdc;
#[path = "bench/first_load.rs"]
mod first_load;
#[path = "bench/pressure.rs"]
mod pressure;
#[path = "bench/webhook.rs"]
mod webhook_figures;

fn report(name: &str, value: impl std::fmt::Display, unit: &str) {
    println!("bench: {name} = {value} {unit}");
}

/// The p50 and p99 of `samples` (ms) as `freshness_p<N>_at_<rate>_changes_per_s<suffix>`.
fn report_freshness(rate: u64, suffix: &str, mut samples: Vec<f64>) {
    samples.sort_by(|a, b| a.total_cmp(b));
    for p in [50, 99] {
        report(
            &format!("freshness_p{p}_at_{rate}_changes_per_s{suffix}"),
            format!("{:.0}", percentile(&samples, f64::from(p))),
            "ms",
        );
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn now_s() -> i64 {
    shared::time::now_ms() / 1000
}

fn event_body(event_id: &str, gsid: &str) -> String {
    json!({
        "eventId": event_id, "eventType": "created", "objectName": "Company",
        "occurredAt": shared::time::now_ms(), "changedFields": ["Arr"],
        "records": [{"Gsid": gsid, "Name": format!("Bench {gsid}"), "Arr": 1000, "Industry": "Technology", "Employees": 10}]
    })
    .to_string()
}

/// The pusher given 1000 write commands in one batch (the template's batch size) through the real
/// Salesforce client against the emulator: exact API calls per 1000 records on the REST path.
async fn pusher_calls_per_1000() -> Result<()> {
    let emulator = devstack::salesforce::SalesforceEmulator::start(Default::default()).await?;
    let client = sync_tests::salesforce_client(&emulator);
    let store = Arc::new(MemoryStore::default());
    let pusher = pusher::Pusher::new(
        (store.clone(), store.clone(), store.clone()),
        Arc::new(client),
        Arc::new(shared::fakes::MemoryGainsight::default()),
        shared::domain::Jobs::builtin(),
    );
    let mut messages = Vec::with_capacity(1000);
    for i in 0..1000 {
        let fields: shared::domain::Fields =
            json!({"Gainsight_Company_Id__c": format!("P{i:04}"), "Name": format!("Pushed {i}"), "AnnualRevenue": i})
                .as_object()
                .cloned()
                .unwrap_or_default();
        let command = shared::domain::WriteCommand {
            job: "company_account".into(),
            target: shared::domain::System::Salesforce,
            object: "Account".into(),
            key: shared::domain::RecordKey::ExternalId {
                field: "Gainsight_Company_Id__c".into(),
                value: format!("P{i:04}"),
            },
            mode: shared::domain::WriteMode::Upsert,
            fields,
            ledger_key: shared::domain::LedgerKey::Gainsight(format!("P{i:04}")),
            salesforce_id: None,
            field_states: Default::default(),
            writeback: None,
            source: shared::domain::System::Gainsight,
            conflicts: Default::default(),
            event_id: format!("e{i}"),
            source_changed_at_ms: 1,
            received_at_ms: 1,
            attachments: Vec::new(),
            skipped: Vec::new(),
            unchanged: Default::default(),
            load: None,
        };
        messages.push((format!("m{i}"), serde_json::to_string(&command)?));
    }
    let event = shared::fakes::sqs_event(
        include_str!("../../../functions/pusher/fixtures/sqs_event.json"),
        messages,
    );
    let (response, summary) = pusher.handle_at(event, shared::time::now_ms()).await;
    anyhow::ensure!(
        response.batch_item_failures.is_empty() && summary.synced == 1000,
        "{summary:?}"
    );
    report(
        "salesforce_calls_per_1000_records",
        emulator.stats().api_calls,
        "calls",
    );
    Ok(())
}

/// A 20,000-record backfill through the product on the local stack (`resync all` of Companies
/// that were in Gainsight before the sync): Salesforce calls per 10,000 records, the Bulk job's
/// state polls counted apart, and how long it took.
async fn bulk_calls_per_10000() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let done = sync_tests::backfill::backfill_companies(
        &stack,
        20_000,
        std::time::Duration::from_secs(900),
    )
    .await?;
    anyhow::ensure!(done.bulk_jobs == 1, "not one Bulk job: {done:?}");
    report(
        "salesforce_bulk_calls_per_10000_records",
        done.salesforce_calls as f64 / 2.0,
        "calls",
    );
    report(
        "salesforce_bulk_state_polls_per_20000_records",
        done.state_polls,
        "polls",
    );
    report(
        "backfill_20000_records_seconds",
        done.elapsed.as_secs_f64(),
        "s",
    );
    stack.stop().await;
    Ok(())
}

/// One scheduled poll of 1,000 new Timeline activities through the poller, mapper and pusher and
/// the real clients against the emulators: exact API calls by system.
async fn timeline_calls_per_1000() -> Result<()> {
    let calls = sync_tests::activity_window::sync_window(1_000).await?;
    anyhow::ensure!(calls.tasks == 1_000, "{calls:?}");
    report(
        "gainsight_calls_per_1000_activities",
        calls.gainsight_reads,
        "calls",
    );
    report(
        "salesforce_calls_per_1000_tasks",
        calls.salesforce_writes + calls.salesforce_reads,
        "calls",
    );
    report(
        "gainsight_writeback_calls_per_1000_activities",
        calls.gainsight_writebacks,
        "calls",
    );
    Ok(())
}

/// 1000 Companies created in Gainsight (20 insert calls) reach Salesforce through the whole local
/// stack; count the API calls.
async fn salesforce_calls_per_1000() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let before = stack.salesforce.stats();
    let records: Vec<Value> = (0..1000)
        .map(|i| json!({"Name": format!("Load Co {i:04}"), "Arr": i}))
        .collect();
    stack.create_companies(records).await?;
    let last = std::sync::Mutex::new(Instant::now());
    let last = &last;
    stack
        .eventually(Duration::from_secs(900), "1000 records synced", || async {
            let counts = stack.counts().await?;
            let due = last.lock().map(|mut l| {
                let due = l.elapsed() > Duration::from_secs(5);
                if due {
                    *l = Instant::now();
                }
                due
            });
            if due.unwrap_or(false) {
                eprintln!(
                    "progress: ledger {counts:?}, changes {} writes {}, gainsight {:?}, salesforce {:?}",
                    stack.aws.queue_depth("ChangesQueue").await?,
                    stack.aws.queue_depth("WritesQueue").await?,
                    stack.gainsight.stats(),
                    stack.salesforce.stats()
                );
            }
            Ok((counts.0 == 1000).then_some(()))
        })
        .await?;
    let after = stack.salesforce.stats();
    report(
        "salesforce_api_calls_per_1000_records_local_stack",
        after.api_calls - before.api_calls,
        "calls",
    );
    report(
        "salesforce_token_requests_per_1000_records_local_stack",
        after.token_requests - before.token_requests,
        "requests",
    );
    stack.stop().await;
    Ok(())
}

/// The AWS requests production pays for: those of the functions and of Lambda's event source
/// mappings, told apart from the harness's own (`drained`, `counts`) by who signed them; with
/// `show`, each caller's requests are printed.
async fn product_requests(stack: &Stack, show: bool) -> Result<u64> {
    let mut sum = 0;
    for (caller, actions) in &stack.aws.callers().await? {
        let total: u64 = actions.values().sum();
        let product = sync_tests::PRODUCT_CALLERS.contains(&caller.as_str());
        if product {
            sum += total;
        }
        if show {
            let list: Vec<String> = actions.iter().map(|(a, n)| format!("{a} {n}")).collect();
            let whose = if product {
                "product"
            } else {
                "harness, not counted"
            };
            eprintln!("  {caller} ({whose}): {}", list.join(", "));
        }
    }
    Ok(sum)
}

/// AWS requests per change, end to end (webhook, queues, mapper, pusher, ledger, the event
/// source's receives and deletes), counted by the local AWS's request log: 100 Companies created
/// by a person in Gainsight until every one is synced to Salesforce.
async fn aws_requests_per_change() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let total = 100;
    stack.aws.reset_requests().await?;
    let records: Vec<Value> = (0..total)
        .map(|i| json!({"Name": format!("Counted Co {i:03}"), "Arr": i}))
        .collect();
    stack.create_companies(records).await?;
    stack
        .eventually(Duration::from_secs(300), "every record synced", || async {
            Ok((stack.counts().await?.0 == total).then_some(()))
        })
        .await?;
    stack.drained(Duration::from_secs(60)).await?;
    eprintln!("aws requests for {total} changes:");
    let sum = product_requests(&stack, true).await?;
    report(
        "aws_requests_per_change",
        format!("{:.2}", sum as f64 / total as f64),
        "requests",
    );
    stack.stop().await;
    Ok(())
}

/// `total` Accounts created at once in Salesforce (as a data loader would; Outbound Messages of
/// 100 notifications) until the last one is a Company in Gainsight: seconds, and the API calls
/// and AWS requests it took.
async fn burst(total: usize) -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    stack.aws.reset_requests().await?;
    let (sf_before, gs_before) = (stack.salesforce.stats(), stack.gainsight.stats());
    let records = (0..total)
        .map(|i| {
            let fields = json!({"Name": format!("Burst {i:05}"), "Industry": "Technology"});
            fields.as_object().cloned().unwrap_or_default()
        })
        .collect();
    let started = Instant::now();
    stack.salesforce.seed("Account", records);
    let progress = Progress::new("burst", total);
    stack
        .eventually(
            Duration::from_secs(900),
            "every Account in Gainsight",
            || async {
                let companies = stack.gainsight.records("Company").len();
                progress.every_5_s(&stack, companies).await?;
                Ok((companies >= total).then_some(()))
            },
        )
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let (sf, gs) = (stack.salesforce.stats(), stack.gainsight.stats());
    eprintln!(
        "burst: Salesforce calls by kind: {} queries, {} upserts, {} creates, {} updates, {} describes, {} /limits",
        sf.query_calls - sf_before.query_calls,
        sf.upsert_calls - sf_before.upsert_calls,
        sf.create_calls - sf_before.create_calls,
        sf.update_calls - sf_before.update_calls,
        sf.describe_calls - sf_before.describe_calls,
        sf.limits_calls - sf_before.limits_calls,
    );
    let requests = product_requests(&stack, false).await?;
    report(
        &format!("burst_{total}_drain_seconds"),
        format!("{seconds:.1}"),
        "s",
    );
    report(
        &format!("burst_{total}_salesforce_api_calls"),
        sf.api_calls - sf_before.api_calls,
        "calls",
    );
    report(
        &format!("burst_{total}_gainsight_api_calls"),
        gs.api_calls - gs_before.api_calls,
        "calls",
    );
    report(&format!("burst_{total}_aws_requests"), requests, "requests");
    stack.stop().await;
    Ok(())
}

/// The profile of a long figure over time: records done, and what waits on each queue, every 5 s.
struct Progress {
    name: &'static str,
    total: usize,
    started: Instant,
    last: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new(name: &'static str, total: usize) -> Self {
        let now = Instant::now();
        let last = std::sync::Mutex::new(now);
        Progress {
            name,
            total,
            started: now,
            last,
        }
    }

    async fn every_5_s(&self, stack: &Stack, done: usize) -> Result<()> {
        let due = self.last.lock().map(|mut at| {
            let due = at.elapsed() >= Duration::from_secs(5);
            if due {
                *at = Instant::now();
            }
            due
        });
        if due.unwrap_or(false) {
            eprintln!(
                "{}: {:.0} s: {done} of {}; queued: changes {}, writes {}",
                self.name,
                self.started.elapsed().as_secs_f64(),
                self.total,
                stack.aws.queue_depth("ChangesQueue").await?,
                stack.aws.queue_depth("WritesQueue").await?,
            );
        }
        Ok(())
    }
}

/// Signed webhook events at `rate` changes/s for `seconds`; freshness = ledger sync time - send
/// time, per record.
async fn freshness(rate: u64, seconds: u64, echoes: bool) -> Result<()> {
    freshness_with(rate, seconds, echoes, SalesforceEvents::Outbound).await
}

/// Gainsight changes at `rate` a second for `seconds`, Salesforce reporting its changes through
/// `events` (with `echoes`, the sync's own writes too: they come back as Outbound Messages or
/// change events).
async fn freshness_with(
    rate: u64,
    seconds: u64,
    echoes: bool,
    events: SalesforceEvents,
) -> Result<()> {
    // With `echoes` through Outbound Messages, the sources report the integration user's own
    // writes back (no criteria). Change Data Capture always publishes them: the product's rule,
    // as deployed with the integration user's Id, is what drops them.
    let cdc = events == SalesforceEvents::ChangeDataCapture;
    let echo_criteria = !echoes || cdc;
    let options = Options {
        echo_criteria,
        salesforce_events: events,
        ..Options::default()
    };
    let stack = Stack::start(options).await?;
    let suffix = match (echoes, events) {
        (true, SalesforceEvents::ChangeDataCapture) => "_cdc_with_echoes",
        (true, _) => "_with_echoes",
        (false, _) => "",
    };
    let total = (rate * seconds) as usize;
    // The load posts rule events only where nothing drops the sync's own.
    let gsids = load_companies(&stack, total, !echo_criteria).await?;
    let sent_at = send_changes(&stack, gsids, rate).await?;
    let samples = synced_after_sent(&stack, &sent_at, by_gsid).await?;
    report_freshness(rate, suffix, samples);
    if let (true, Some(buses)) = (echoes, &stack.buses) {
        let bus = buses.stats();
        eprintln!(
            "freshness{suffix}: change events put on the bus {}, matched by the rule {} (the rest were the sync's own writes)",
            bus.put, bus.matched
        );
    }
    report(
        &format!("salesforce_api_calls_for_{total}_changes_at_{rate}_per_s{suffix}"),
        stack.salesforce.stats().api_calls,
        "calls",
    );
    stack.stop().await;
    Ok(())
}

/// The `total` Companies the events change, as they exist in Gainsight: loaded before, by
/// another integration (no rule event), so every write back to them lands. With `echoes` the
/// load itself posts rule events (no integration-user criterion): it is left to sync and settle
/// first, so the changes measured are edits of synced pairs.
async fn load_companies(stack: &Stack, total: usize, echoes: bool) -> Result<Vec<String>> {
    let mut gsids = Vec::with_capacity(total);
    for chunk in (0..total).collect::<Vec<_>>().chunks(50) {
        let records = chunk
            .iter()
            .map(|i| json!({"Name": format!("Fresh {i:05}")}))
            .collect();
        gsids.extend(stack.gainsight_insert_quietly("Company", records).await?);
    }
    if echoes {
        let what = format!("the {total} Companies loaded synced and their echoes settled");
        eprintln!("freshness: waiting for {what}");
        stack
            .eventually(Duration::from_secs(900), &what, || async {
                Ok((stack.counts().await?.0 == total).then_some(()))
            })
            .await?;
        stack.drained(Duration::from_secs(300)).await?;
    }
    Ok(gsids)
}

/// One signed change event per Company at `rate` a second: when each was sent, by GSID.
async fn send_changes(
    stack: &Stack,
    gsids: Vec<String>,
    rate: u64,
) -> Result<HashMap<String, i64>> {
    let url = format!("{}/gainsight", stack.webhook_url());
    let http = reqwest::Client::new();
    let total = gsids.len();
    let mut sent_at: HashMap<String, i64> = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut tasks = Vec::with_capacity(total);
    for (i, gsid) in gsids.into_iter().enumerate() {
        ticker.tick().await;
        let body = event_body(&format!("fresh-{i}"), &gsid);
        let ts = now_s();
        sent_at.insert(gsid, shared::time::now_ms());
        let req = http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-gs-timestamp", ts.to_string())
            .header("x-gs-signature", sign(WEBHOOK_SECRET, ts, &body))
            .body(body);
        tasks.push(tokio::spawn(async move {
            req.send().await.map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        let status = t.await??;
        anyhow::ensure!(status == 200, "webhook answered {status}");
    }
    anyhow::ensure!(
        sent_at.len() == total,
        "{} Companies for {total} changes",
        sent_at.len()
    );
    Ok(sent_at)
}

/// The id a freshness sample is keyed by: the record the change was made to.
type SampleKey = fn(&shared::domain::LedgerRecord) -> Option<&str>;

/// A pair by its Company's GSID.
fn by_gsid(r: &shared::domain::LedgerRecord) -> Option<&str> {
    r.key.gainsight_id()
}

/// Each changed record's freshness (its pair's last sync after its change was sent, ms), the
/// records found by `key` in `sent_at`, once every one has synced after its change.
async fn synced_after_sent(
    stack: &Stack,
    sent_at: &HashMap<String, i64>,
    key: SampleKey,
) -> Result<Vec<f64>> {
    let total = sent_at.len();
    let sample = |r: &shared::domain::LedgerRecord| {
        Some((r.last_sync_at_ms? - sent_at.get(key(r)?)?) as f64)
    };
    let what = format!("all {total} pairs' ledger records synced after their change was sent");
    let records = stack
        .eventually(Duration::from_secs(900), &what, || async {
            let records = stack.ledger_records().await?;
            let fresh = records
                .iter()
                .filter(|r| sample(r).is_some_and(|s| s >= 0.0));
            Ok((fresh.count() == total).then_some(records))
        })
        .await?;
    // A record synced before its change was sent says the figure measures something else.
    if let Some(early) = records.iter().find(|r| sample(r).is_some_and(|s| s < 0.0)) {
        eprintln!(
            "freshness: {} synced {:?} ms before its change was sent: {:?}",
            early.key,
            sample(early).map(|s| -s),
            early.history
        );
    }
    let samples: Vec<f64> = records.iter().filter_map(sample).collect();
    anyhow::ensure!(
        samples.len() == total,
        "{} of {total} samples",
        samples.len()
    );
    Ok(samples)
}

/// The webhook binary under the Runtime API against moto: init time (cold start, including the
/// KMS decrypt) and peak RSS after 500 invocations.
async fn cold_start_and_rss() -> Result<()> {
    let bin = std::env::var("WEBHOOK_BIN")
        .context("WEBHOOK_BIN: path of the built webhook binary (make bench sets it)")?;
    let aws = devstack::moto::LocalAws::start().await?;
    let resources = shared::config::AwsResources {
        table_name: aws.table_name()?.to_string(),
        kms_key_id: aws.kms_key_id()?.to_string(),
        changes_queue_url: aws.queue_url("ChangesQueue").await?,
        writes_queue_url: aws.queue_url("WritesQueue").await?,
        run_ttl_days: shared::config::DEFAULT_RUN_TTL_DAYS,
    };
    shared::adapters::AwsClients::new(&aws.sdk)
        .with_sqs(&aws.sqs_sdk)
        .secrets(&resources)
        .put(names::WEBHOOK_SECRET, &Secret::new(WEBHOOK_SECRET))
        .await?;
    let runtime =
        devstack::runtime_api::RuntimeApi::start(aws.deployment.timeout("WebhookFunction")?)
            .await?;
    let spawned = Instant::now();
    let mut child = runtime
        .command(&bin, "webhook")
        .envs(aws.env())
        .envs(resources.env())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let mut event: Value = serde_json::from_str(include_str!(
        "../../../functions/webhook/fixtures/function_url_request.json"
    ))?;
    for i in 0..500 {
        let body = event_body(&format!("rss-{i}"), &format!("R{i}"));
        let ts = now_s();
        event["body"] = json!(body);
        event["headers"]["x-gs-timestamp"] = json!(ts.to_string());
        event["headers"]["x-gs-signature"] = json!(sign(WEBHOOK_SECRET, ts, &body));
        let answer = runtime
            .invoke(event.clone(), Duration::from_secs(30))
            .await?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(answer["statusCode"] == json!(200), "{answer}");
        if i == 0 {
            let ready = runtime
                .ready_at()
                .context("the function never polled for work")?;
            report(
                "webhook_cold_start_init",
                format!("{:.1}", (ready - spawned).as_secs_f64() * 1000.0),
                "ms",
            );
        }
    }
    let pid = child.id().context("no pid")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .context("VmHWM not found")?;
    report("webhook_peak_rss", format!("{:.1}", hwm_kb / 1024.0), "MB");
    child.kill().await?;
    Ok(())
}

/// The first-load figures asked for, each at `FIRST_LOAD_N` records a side (or its default).
async fn first_load_figures(
    wanted: &dyn Fn(&[&str]) -> bool,
    run: &mut dyn FnMut(&str, Result<()>),
) {
    // Records a side of the first-load figures (FIRST_LOAD_N).
    let first_load_n = |default: usize| {
        (std::env::var("FIRST_LOAD_N").ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    if wanted(&["first-load"]) {
        let n = first_load_n(10_000);
        run("first load dry run", first_load::dry_run(n).await);
    }
    if wanted(&["first-load-plan"]) {
        let n = first_load_n(100_000);
        run("first load plan", first_load::plan_figures(n).await);
    }
    if wanted(&["first-load-run"]) {
        let n = first_load_n(100_000);
        run("first load", first_load::figures(n).await);
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    // The functions' logs, for a profile: RUST_LOG=mapper=info,pusher=info (none by default).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let all = which == "all";
    let wanted = |names: &[&str]| all || names.contains(&which.as_str());
    // Each figure is measured and reported on its own: one that fails is said, and the others
    // still run; the exit code is 1 when any failed.
    let mut failed: Vec<String> = Vec::new();
    let mut run = |name: &str, outcome: Result<()>| {
        if let Err(e) = outcome {
            println!("bench: {name} failed: {e:#}");
            failed.push(name.to_string());
        }
    };
    if wanted(&["webhook"]) {
        run("webhook", webhook_figures::webhook_handler().await);
    }
    if wanted(&["webhook-50000"]) {
        run("webhook-50000", webhook_figures::webhook_50000().await);
    }
    if wanted(&["runtime"]) {
        run("runtime", cold_start_and_rss().await);
    }
    if wanted(&["calls", "bulk"]) {
        run("bulk", bulk_calls_per_10000().await);
    }
    if wanted(&["calls", "timeline"]) {
        run("timeline", timeline_calls_per_1000().await);
    }
    if wanted(&["calls"]) {
        run("pusher calls", pusher_calls_per_1000().await);
        run("salesforce calls", salesforce_calls_per_1000().await);
    }
    if wanted(&["requests"]) {
        run("requests", aws_requests_per_change().await);
    }
    if wanted(&["write-units"]) {
        run(
            "write units",
            pressure::dynamodb_write_units_per_change().await,
        );
    }
    if wanted(&["burst"]) {
        let total = std::env::var("BURST").ok().and_then(|n| n.parse().ok());
        run("burst", burst(total.unwrap_or(10_000)).await);
    }
    if wanted(&["freshness"]) {
        run("freshness at 20/s", freshness(20, 20, false).await);
        run("freshness at 100/s", freshness(100, 10, false).await);
    }
    if wanted(&["flood"]) {
        run("flood", pressure::flood_figures().await);
    }
    if wanted(&["freshness-echoes"]) {
        run("freshness with echoes", freshness(100, 10, true).await);
    }
    cdc::figures(&wanted, &mut run).await;
    first_load_figures(&wanted, &mut run).await;
    anyhow::ensure!(
        failed.is_empty(),
        "{} failed: {}",
        failed.len(),
        failed.join(", ")
    );
    Ok(())
}
