//! A write that fails on every delivery is not lost and says why: on its last delivery (the
//! writes queue's maxReceiveCount) the ledger records that it was given up and where it waits,
//! and SQS moves it to the writes dead-letter queue.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use sync_tests::{Options, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_failing_on_every_delivery_is_recorded_and_kept_in_the_dlq() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    stack.salesforce.inject(devstack::salesforce::Fault::status(
        503,
        "SERVER_UNAVAILABLE",
        "Server unavailable",
        10_000,
    ));
    let gsid = stack
        .create_companies(vec![json!({"Name": "Never Written", "Arr": 1})])
        .await?
        .remove(0);
    let record = stack
        .eventually(
            Duration::from_secs(120),
            "the ledger saying the write was given up",
            || async { Ok(stack.ledger(&gsid).await?.filter(|r| r.error)) },
        )
        .await?;
    let message = record.last_error.unwrap_or_default();
    assert!(
        message.starts_with("gave up after 5 deliveries: Salesforce unavailable (HTTP 503)")
            && message.contains("writes dead-letter queue"),
        "{message}"
    );
    stack
        .eventually(
            Duration::from_secs(60),
            "the write in the dead-letter queue",
            || async {
                let depth = stack.aws.queue_depth("WritesDeadLetterQueue").await?;
                Ok((depth == 1).then_some(()))
            },
        )
        .await?;
    assert!(stack.accounts_for(&gsid).is_empty());
    stack.stop().await;
    Ok(())
}
