//! The Change Data Capture figures: freshness of Salesforce edits and the AWS requests each
//! costs, relayed as change events and sent as Outbound Messages; the AWS requests a
//! Salesforce-born record costs both ways; and a data loader's bulk edit of 10,000 Accounts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};
use sync_tests::relay::SalesforceEvents;
use sync_tests::{Options, Stack};

use super::{product_requests, report, report_freshness};

const LONG: Duration = Duration::from_secs(900);

fn record(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn stack_options(events: SalesforceEvents) -> Options {
    Options {
        salesforce_events: events,
        ..Options::default()
    }
}

/// How the mapper takes the changes queue: the template's `ChangesBatching`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batching {
    /// What one poll finds, at once (the default).
    Fresh,
    /// Up to 100 messages within a second.
    Batched,
}

impl Batching {
    fn parameter(self) -> &'static str {
        match self {
            Batching::Fresh => "fresh",
            Batching::Batched => "batched",
        }
    }
}

/// The stack with Salesforce's changes coming as `events`, the mapper taking the changes queue
/// as `batching` says.
fn batched_options(events: SalesforceEvents, batching: Batching) -> Options {
    Options {
        parameters: vec![("ChangesBatching", batching.parameter())],
        ..stack_options(events)
    }
}

/// How a figure names the path measured: `cdc`, `outbound`, with a batching other than the
/// default after it.
fn path_of(events: SalesforceEvents, batching: Batching) -> String {
    let path = match events {
        SalesforceEvents::ChangeDataCapture => "cdc",
        _ => "outbound",
    };
    match batching {
        Batching::Fresh => path.to_string(),
        other => format!("{path}_{}", other.parameter()),
    }
}

/// `total` Accounts a person creates in Salesforce, synced to Gainsight (their Companies made,
/// their GSIDs written back) and settled: their Ids.
async fn synced_accounts(stack: &Stack, total: usize) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(total);
    for chunk in (0..total).collect::<Vec<_>>().chunks(200) {
        let records = chunk
            .iter()
            .map(|i| record(json!({"Name": format!("Relayed {i:05}")})))
            .collect();
        ids.extend(stack.salesforce.seed("Account", records));
    }
    let what = format!("the {total} Accounts synced");
    stack
        .eventually(LONG, &what, || async {
            Ok((stack.counts().await?.0 >= total).then_some(()))
        })
        .await?;
    stack.drained(LONG).await?;
    Ok(ids)
}

/// Salesforce edits at `rate` a second of synced Accounts, reported through change events or
/// through Outbound Messages (`events`), the mapper taking the changes queue as `batching` says:
/// each Account's time from its edit to its pair's sync, and the AWS requests per edit.
pub async fn freshness(
    rate: u64,
    seconds: u64,
    events: SalesforceEvents,
    batching: Batching,
) -> Result<()> {
    let stack = Stack::start(batched_options(events, batching)).await?;
    let total = (rate * seconds) as usize;
    let ids = synced_accounts(&stack, total).await?;
    stack.aws.reset_requests().await?;
    let mut edited_at: HashMap<String, i64> = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    for (i, id) in ids.iter().enumerate() {
        ticker.tick().await;
        edited_at.insert(id.clone(), shared::time::now_ms());
        stack.salesforce.edit(
            "Account",
            id,
            record(json!({"Name": format!("Edited {i:05}")})),
        );
    }
    let by_account: super::SampleKey = |r| r.salesforce_id.as_deref();
    let samples = super::synced_after_sent(&stack, &edited_at, by_account).await?;
    let suffix = format!("_{}", path_of(events, batching));
    report_freshness(rate, &suffix, samples);
    stack.drained(LONG).await?;
    eprintln!("aws requests for {total} Salesforce edits at {rate} a second{suffix}:");
    let requests = product_requests(&stack, true).await?;
    report(
        &format!("aws_requests_per_edit_at_{rate}_per_s{suffix}"),
        format!("{:.2}", requests as f64 / total as f64),
        "requests",
    );
    stack.stop().await;
    Ok(())
}

/// AWS requests per Salesforce-born record, created by a person until its Company exists and its
/// GSID is written back: through change events, or through Outbound Messages; with the mapper
/// taking the changes queue as `batching` says (the template's `ChangesBatching`).
pub async fn requests_per_change(events: SalesforceEvents, batching: Batching) -> Result<()> {
    let stack = Stack::start(batched_options(events, batching)).await?;
    let total = 100;
    stack.aws.reset_requests().await?;
    synced_accounts(&stack, total).await?;
    let name = format!("aws_requests_per_change_{}", path_of(events, batching));
    eprintln!("{name}: aws requests for {total} Salesforce-born records:");
    let sum = product_requests(&stack, true).await?;
    report(
        &name,
        format!("{:.2}", sum as f64 / total as f64),
        "requests",
    );
    stack.stop().await;
    Ok(())
}

/// A data loader setting one field on 10,000 synced Accounts in one job: change events naming
/// 200 records each; seconds until every Company has the value, and the Salesforce calls made.
pub async fn bulk_edit(total: usize) -> Result<()> {
    let stack = Stack::start(stack_options(SalesforceEvents::ChangeDataCapture)).await?;
    let ids = synced_accounts(&stack, total).await?;
    let calls_before = stack.salesforce.stats().api_calls;
    let gainsight_before = stack.gainsight.stats().api_calls;
    stack.aws.reset_requests().await?;
    let started = Instant::now();
    let edited = stack
        .salesforce
        .edit_all("Account", &ids, record(json!({"Industry": "Energy"})));
    anyhow::ensure!(edited == total, "{edited} of {total} Accounts edited");
    let what = format!("all {total} Companies with the new Industry");
    let progress = super::Progress::new("bulk edit", total);
    stack
        .eventually(LONG, &what, || async {
            let companies = stack.gainsight.records("Company");
            let done = (companies.iter())
                .filter(|c| c.get("Industry") == Some(&json!("Energy")))
                .count();
            progress.every_5_s(&stack, done).await?;
            Ok((done == total).then_some(()))
        })
        .await?;
    let elapsed = started.elapsed();
    stack.drained(LONG).await?;
    let gainsight_calls = stack.gainsight.stats().api_calls - gainsight_before;
    eprintln!("bulk edit: {gainsight_calls} Gainsight calls; aws requests for {total} Accounts:");
    let requests = product_requests(&stack, true).await?;
    report(
        &format!("bulk_edit_{total}_cdc_aws_requests"),
        requests,
        "requests",
    );
    report(
        &format!("bulk_edit_{total}_cdc_seconds"),
        format!("{:.1}", elapsed.as_secs_f64()),
        "s",
    );
    report(
        &format!("salesforce_calls_per_{total}_bulk_edit_cdc"),
        stack.salesforce.stats().api_calls - calls_before,
        "calls",
    );
    stack.stop().await;
    Ok(())
}

/// The figures of this module `wanted` asks for (`cdc` all of them), each reported by `run`.
pub async fn figures(wanted: &dyn Fn(&[&str]) -> bool, run: &mut dyn FnMut(&str, Result<()>)) {
    use SalesforceEvents::{ChangeDataCapture as Cdc, Outbound};
    if wanted(&["cdc", "cdc-freshness"]) {
        run(
            "freshness cdc",
            freshness(100, 10, Cdc, Batching::Fresh).await,
        );
        let outbound = freshness(100, 10, Outbound, Batching::Fresh).await;
        run("freshness outbound (Salesforce edits)", outbound);
        let echoed = super::freshness_with(100, 10, true, Cdc).await;
        run("freshness cdc with echoes", echoed);
    }
    if wanted(&["cdc", "cdc-requests"]) {
        run(
            "requests cdc",
            requests_per_change(Cdc, Batching::Fresh).await,
        );
        let batched = requests_per_change(Cdc, Batching::Batched).await;
        run("requests cdc batched", batched);
        let outbound = requests_per_change(Outbound, Batching::Fresh).await;
        run("requests outbound", outbound);
    }
    if wanted(&["cdc", "cdc-freshness-batched"]) {
        let batched = freshness(100, 10, Cdc, Batching::Batched).await;
        run("freshness cdc batched", batched);
    }
    if wanted(&["cdc", "cdc-bulk"]) {
        run("bulk edit cdc", bulk_edit(10_000).await);
    }
}
