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
    assert_eq!(jobs.len(), 5, "one schedule per job: {jobs:?}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_sharing_a_timestamp_across_a_page_boundary_all_sync_once() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    // One insert call: the three Companies share one ModifiedDate.
    let ids = stack
        .gainsight_insert_quietly(
            "Company",
            vec![
                json!({"Name": "Same Time A", "Arr": 1}),
                json!({"Name": "Same Time B", "Arr": 2}),
                json!({"Name": "Same Time C", "Arr": 3}),
            ],
        )
        .await?;
    let stamps: Vec<_> = ids
        .iter()
        .filter_map(|id| stack.gainsight_record("Company", id))
        .map(|r| r["ModifiedDate"].clone())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] == w[1]), "{stamps:?}");
    // Two records a page: the boundary falls between records with the same timestamp.
    let poller = stack.poller(2).await?;
    let request = poller::PollRequest {
        job: "company_account".into(),
        since_ms: None,
        only: None,
    };
    let calls = stack.gainsight.stats().api_calls;
    let first = poller.handle(request.clone()).await?;
    assert_eq!(first.queued, 3);
    assert_eq!(
        stack.gainsight.stats().api_calls - calls,
        2,
        "a full page of 2, then the rest"
    );
    for id in &ids {
        stack
            .eventually(WAIT, "each Account", || async {
                Ok(stack.accounts_for(id).pop())
            })
            .await?;
    }
    // Each Company then learnt its Account's Id (a writeback by the integration user): a new
    // version the next poll reads, which changes nothing downstream. After that the window,
    // which overlaps the last one, re-reads all three and queues none again.
    stack.drained(WAIT).await?;
    let writebacks = poller.handle(request.clone()).await?;
    let gainsight = &writebacks.streams[0];
    assert_eq!(gainsight.source, shared::domain::System::Gainsight);
    assert_eq!(gainsight.queued, 3, "the writeback versions");
    let salesforce = &writebacks.streams[1];
    assert_eq!(
        salesforce.queued, 3,
        "the Accounts written, read back (echoes the mapper ignores)"
    );
    stack.drained(WAIT).await?;
    let again = poller.handle(request).await?;
    assert_eq!(
        again.queued, 0,
        "nothing new: the overlap queues nothing twice"
    );
    stack.drained(WAIT).await?;
    assert_eq!(stack.salesforce.records("Account").len(), 3, "no duplicate");
    stack.stop().await;
    Ok(())
}

/// Fields that flow from Salesforce reach Gainsight by the schedule alone (SOQL on
/// SystemModstamp): an Account a person loaded with workflow bypassed (so no Outbound Message
/// announced it) becomes a Company, and a later such edit of its Phone follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn salesforce_changes_reach_gainsight_by_the_schedule() -> Result<()> {
    let options = Options {
        schedule_speedup: Some(600),
        ..Options::default()
    };
    let stack = Stack::start(options).await?;
    let account = json!({"Name": "Polled Account", "Phone": "+1 555 0100"});
    let id = stack
        .salesforce
        .load_without_workflow(
            "Account",
            vec![account.as_object().cloned().unwrap_or_default()],
        )
        .remove(0);
    let company = stack
        .eventually(WAIT, "the Company, by the schedule alone", || async {
            Ok(stack.gainsight_where("Company", "SfdcAccountId", &id).pop())
        })
        .await?;
    assert_eq!(company["Name"], json!("Polled Account"));
    assert_eq!(company["Phone"], json!("+1 555 0100"));

    let phone = json!({"Phone": "+1 555 0199"});
    let edited = stack.salesforce.edit_without_workflow(
        "Account",
        &id,
        phone.as_object().cloned().unwrap_or_default(),
    );
    assert!(edited);
    stack
        .eventually(WAIT, "the new Phone in Gainsight", || async {
            let company = stack.gainsight_where("Company", "SfdcAccountId", &id).pop();
            Ok(company.filter(|c| c["Phone"] == json!("+1 555 0199")))
        })
        .await?;
    assert_eq!(
        stack.salesforce.stats().outbound_acked,
        0,
        "no Outbound Message"
    );
    assert_eq!(
        stack.gainsight_where("Company", "SfdcAccountId", &id).len(),
        1,
        "no duplicate Company"
    );
    stack.stop().await;
    Ok(())
}
