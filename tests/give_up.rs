//! A write, or a change, that fails on every delivery is not lost and says why: on its last
//! delivery (its queue's maxReceiveCount) the ledger records that it was given up and where it
//! waits, and SQS moves it to the dead-letter queue.

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

/// A Person whose Account lookup cannot run on any delivery (Salesforce unavailable): the mapper
/// records it given up on the fifth, and the change waits in the changes dead-letter queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_failing_on_every_delivery_is_recorded_and_kept_in_the_dlq() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let company = stack
        .gainsight_insert_quietly("Company", vec![json!({"Name": "Unreachable Parent"})])
        .await?
        .remove(0);
    stack.salesforce.inject(devstack::salesforce::Fault::status(
        503,
        "SERVER_UNAVAILABLE",
        "Server unavailable",
        10_000,
    ));
    let person = stack
        .gainsight_insert(
            "Person",
            vec![
                json!({"Email": "lost@nowhere.example", "LastName": "Lost", "CompanyId": company}),
            ],
        )
        .await?
        .remove(0);
    let record = stack
        .eventually(
            Duration::from_secs(120),
            "the ledger saying the change was given up",
            || async {
                Ok(stack
                    .ledger_of("person_contact", &person)
                    .await?
                    .filter(|r| r.error))
            },
        )
        .await?;
    let message = record.last_error.unwrap_or_default();
    assert!(
        message.starts_with("gave up after 5 deliveries: lookup AccountId")
            && message.contains("Salesforce unavailable (HTTP 503)")
            && message.contains("changes dead-letter queue"),
        "{message}"
    );
    assert!(
        record.waiting.is_none(),
        "not parked: its parent was never looked for"
    );
    stack
        .eventually(
            Duration::from_secs(60),
            "the change in the dead-letter queue",
            || async {
                let depth = stack.aws.queue_depth("ChangesDeadLetterQueue").await?;
                Ok((depth == 1).then_some(()))
            },
        )
        .await?;
    stack.stop().await;
    Ok(())
}
