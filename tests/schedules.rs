//! The template's EventBridge schedules fire the poller on the local stack (sped up): a Company
//! no webhook announced (created by the integration user, whom the rule skips) reaches Salesforce
//! by the schedule alone, and each poll is a run.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use shared::domain::RunFunction;
use shared::ports::RunStore;
use sync_tests::{Options, Stack};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_schedule_fires_the_poller_and_a_quiet_change_syncs() -> Result<()> {
    // rate(10 minutes) / 600: every second.
    let options = Options {
        schedule_speedup: Some(600),
        ..Options::default()
    };
    let stack = Stack::start(options).await?;
    let jobs: Vec<String> = stack
        .aws
        .deployment
        .schedules
        .iter()
        .map(|s| s.input.clone())
        .collect();
    assert_eq!(jobs.len(), 3, "one schedule per job: {jobs:?}");
    let gsid = stack
        .gainsight_insert_quietly("Company", vec![json!({"Name": "Scheduled Co", "Arr": 4})])
        .await?
        .remove(0);
    let account = stack
        .eventually(WAIT, "the Account, by the schedule alone", || async {
            Ok(stack.accounts_for(&gsid).pop())
        })
        .await?;
    assert_eq!(account["Name"], json!("Scheduled Co"));
    assert_eq!(stack.gainsight.stats().webhook_deliveries, 0, "no webhook");
    let now = shared::time::now_ms();
    let runs = stack.store.runs(now - 120_000, now).await?;
    let polls: Vec<_> = runs
        .iter()
        .filter(|r| r.id.function == RunFunction::Poller)
        .collect();
    assert!(
        polls
            .iter()
            .any(|r| r.event == "schedule" && r.succeeded >= 1),
        "a scheduled poll queued the Company: {polls:?}"
    );
    stack.stop().await;
    Ok(())
}
