//! The Salesforce API budget on the local stack: at 80% of the org's daily allowance the pusher
//! stops writing, sends the writes back to its queue with a delay and says so in its runs; once
//! usage falls the deferred writes go out by themselves, nothing lost.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use shared::domain::RunFunction;
use shared::ports::RunStore;
use sync_tests::{Options, Stack};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_stop_at_the_budget_and_resume_when_usage_falls() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    // Other integrations have used 85% of the org's 15,000 daily calls.
    stack.salesforce.set_api_usage(12_750);
    // The pusher learns the usage from the answer to its first write.
    let first = stack
        .create_companies(vec![json!({"Name": "Before The Limit", "Arr": 1})])
        .await?
        .remove(0);
    stack
        .eventually(WAIT, "the first Account", || async {
            Ok(stack.accounts_for(&first).pop())
        })
        .await?;
    let writes_before = stack.salesforce.stats().upsert_calls;

    let second = stack
        .create_companies(vec![json!({"Name": "Over The Budget", "Arr": 2})])
        .await?
        .remove(0);
    let now = shared::time::now_ms();
    let deferred = stack
        .eventually(
            WAIT,
            "a pusher run saying the writes are deferred",
            || async {
                let runs = stack
                    .store
                    .runs(now - 60_000, shared::time::now_ms())
                    .await?;
                Ok(runs
                    .into_iter()
                    .filter(|r| r.id.function == RunFunction::Pusher)
                    .find_map(|r| r.error.filter(|e| e.starts_with("deferred: "))))
            },
        )
        .await?;
    assert!(
        deferred.contains("(85%), at or over the 80% this deployment may use"),
        "{deferred}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        stack.accounts_for(&second).is_empty(),
        "nothing written over the budget"
    );
    assert_eq!(
        stack.salesforce.stats().upsert_calls,
        writes_before,
        "no write call"
    );

    // The day rolls on: usage falls, and the deferred write goes out by itself.
    stack.salesforce.set_api_usage(0);
    stack
        .eventually(WAIT, "the deferred Account", || async {
            Ok(stack.accounts_for(&second).pop())
        })
        .await?;
    stack.drained(WAIT).await?;
    let ledger = stack.ledger(&second).await?.expect("ledger record");
    assert!(ledger.synced && !ledger.error, "{ledger:?}");
    assert_eq!(stack.aws.queue_depth("WritesDeadLetterQueue").await?, 0);
    stack.stop().await;
    Ok(())
}
