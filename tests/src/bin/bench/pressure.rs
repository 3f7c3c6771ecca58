//! What the public endpoint and the table cost under pressure: a flood of forged events at a
//! webhook with a reserved concurrency, and DynamoDB write capacity units per change.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use sync_tests::{Options, Stack};

use super::{by_gsid, load_companies, report, report_freshness, synced_after_sent};

/// The webhook at a reserved concurrency of 10 (so 100 requests started a second) flooded by
/// 200 attackers posting forged events back to back, while genuine changes arrive at 20 a second
/// for 10 s (each sent again after a throttle, up to 5 tries; the job's poll, every 10 s here,
/// reads those given up): what the flood got, and how fresh the genuine changes stayed.
pub async fn flood_figures() -> Result<()> {
    let (reserved, attackers, rate, seconds) = (10, 200, 20, 10);
    let options = Options {
        parameters: vec![("WebhookConcurrency", "10")],
        schedule_speedup: Some(60),
        ..Options::default()
    };
    let stack = Stack::start(options).await?;
    let gsids = load_companies(&stack, (rate * seconds) as usize, false).await?;
    let flood = sync_tests::flood::flood(&stack, &gsids, rate, attackers).await?;
    let per_s = flood.forged as f64 * 1000.0 / flood.flood_ms.max(1) as f64;
    eprintln!(
        "flood: {attackers} attackers against a reserved concurrency of {reserved}: {} forged requests in {} ms ({} throttled 429, {} refused 401, {} other); {} genuine changes, {} of their attempts throttled, {} given up after 5 tries (left to the poll)",
        flood.forged, flood.flood_ms, flood.forged_throttled, flood.forged_refused, flood.forged_other, flood.genuine, flood.genuine_throttled, flood.genuine_given_up
    );
    report(
        "flood_genuine_deliveries_given_up",
        flood.genuine_given_up,
        "changes",
    );
    report(
        "flood_forged_requests_per_s",
        format!("{per_s:.0}"),
        "requests/s",
    );
    let share = flood.forged_throttled as f64 * 100.0 / flood.forged.max(1) as f64;
    report("flood_forged_throttled_share", format!("{share:.1}"), "%");
    report("flood_forged_written", flood.forged_other, "requests");
    report(
        "flood_genuine_attempts_throttled",
        flood.genuine_throttled,
        "attempts",
    );
    let samples = synced_after_sent(&stack, &flood.sent_at, by_gsid).await?;
    report_freshness(rate, "_under_flood", samples);
    stack.stop().await;
    Ok(())
}

/// DynamoDB write capacity units per change, metered by the local AWS from the items each write
/// changed (DynamoDB's rules: devstack/capacity.py): 100 Companies created in Gainsight at once
/// and synced (each a new pair), then each changed once more, one change every half second (an
/// edit of a synced pair arriving alone: the common change at 100,000 a day).
pub async fn dynamodb_write_units_per_change() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let total = 100;
    stack.aws.moto.meter_capacity().await?;
    stack.aws.reset_requests().await?;
    let records: Vec<Value> = (0..total)
        .map(|i| json!({"Name": format!("Metered Co {i:03}"), "Arr": i}))
        .collect();
    let gsids = stack.create_companies(records).await?;
    let synced = |n: usize| {
        let stack = &stack;
        async move {
            stack
                .eventually(Duration::from_secs(300), "every record synced", || async {
                    Ok((stack.counts().await?.0 == n).then_some(()))
                })
                .await?;
            stack.drained(Duration::from_secs(60)).await
        }
    };
    synced(total).await?;
    let created = write_units_by(&stack, "new pair").await?;
    stack.aws.reset_requests().await?;
    // One at a time, two a second: at 100,000 changes a day (about one a second) each change
    // travels alone, as here.
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    for (i, gsid) in gsids.iter().enumerate() {
        ticker.tick().await;
        stack
            .update_companies(vec![json!({"Gsid": gsid, "Arr": 1_000 + i})])
            .await?;
    }
    stack
        .eventually(Duration::from_secs(300), "every edit written", || async {
            let written = stack.salesforce.records("Account");
            let edited = written
                .iter()
                .filter(|a| a["AnnualRevenue"].as_i64().unwrap_or(0) >= 1_000);
            Ok((edited.count() == total).then_some(()))
        })
        .await?;
    stack.drained(Duration::from_secs(60)).await?;
    let edited = write_units_by(&stack, "edit").await?;
    report(
        "dynamodb_write_units_per_change",
        format!("{:.2}", edited as f64 / total as f64),
        "units",
    );
    report(
        "dynamodb_write_units_per_new_pair",
        format!("{:.2}", created as f64 / total as f64),
        "units",
    );
    stack.stop().await;
    Ok(())
}

/// The write units metered since the last reset, printed per caller and action; their sum.
async fn write_units_by(stack: &Stack, what: &str) -> Result<u64> {
    let units = stack.aws.moto.write_units().await?;
    let mut sum = 0;
    for (caller, actions) in &units {
        for (action, n) in actions {
            eprintln!("write units ({what}): {caller} {action} {n}");
            // "<action> (indexes)" is the part of "<action>" spent on index entries.
            if !action.ends_with("(indexes)") {
                sum += n;
            }
        }
    }
    Ok(sum)
}
