//! Credentials that fail for good pause the job instead of burning through retries: an admin
//! rotates the connected app's secret in Salesforce, the pusher is refused, its writes wait in
//! the queue (no record marked error), `syncctl status` says the job is paused and why; once the
//! new secret is stored with `syncctl secrets put`, the writes go out by themselves.

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;
use sync_tests::{Options, Stack};

mod common;
use common::*;

const WAIT: Duration = Duration::from_secs(60);

/// What `syncctl status` prints once company_account is paused.
async fn paused_status(stack: &Stack) -> Result<String> {
    stack
        .eventually(WAIT, "syncctl status saying the job is paused", || async {
            let out = syncctl(stack, &["status", "--job", "company_account"]).await;
            let text = stdout(&out);
            Ok(text.contains("PAUSED").then_some(text))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_secret_pauses_the_job_and_the_new_one_resumes_it() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let warm = stack
        .create_companies(vec![json!({"Name": "Before Rotation", "Arr": 1})])
        .await?
        .remove(0);
    stack
        .eventually(WAIT, "the first Account", || async {
            Ok(stack.accounts_for(&warm).pop())
        })
        .await?;

    stack
        .salesforce
        .set_client_secret("rotated-consumer-secret");
    stack.salesforce.expire_tokens();
    let waiting = stack
        .create_companies(vec![json!({"Name": "While Paused", "Arr": 2})])
        .await?
        .remove(0);
    let status = paused_status(&stack).await?;
    ensure!(
        status.contains("job company_account PAUSED since")
            && status.contains("invalid_client")
            && status.contains("syncctl secrets put salesforce-client-secret"),
        "{status}"
    );
    let json = json_of(
        &stack,
        &["status", "--job", "company_account", "--format", "json"],
    )
    .await?;
    ensure!(
        json["paused"][0]["job"] == json!("company_account"),
        "{json}"
    );
    ensure!(
        stack.accounts_for(&waiting).is_empty(),
        "nothing written while paused"
    );
    let record = stack.ledger(&waiting).await?;
    ensure!(
        record.as_ref().is_none_or(|r| !r.error),
        "not marked error: {record:?}"
    );

    let put = syncctl_in(
        &stack,
        &["secrets", "put", "salesforce-client-secret"],
        "rotated-consumer-secret\n",
    )
    .await;
    ensure!(put.status.success(), "{}", stderr(&put));
    stack
        .eventually(WAIT, "the waiting Account, with the new secret", || async {
            Ok(stack.accounts_for(&waiting).pop())
        })
        .await?;
    stack
        .eventually(WAIT, "the job no longer paused", || async {
            let out = syncctl(&stack, &["status", "--job", "company_account"]).await;
            Ok((!stdout(&out).contains("PAUSED")).then_some(()))
        })
        .await?;
    ensure!(stack.aws.queue_depth("WritesDeadLetterQueue").await? == 0);
    stack.stop().await;
    Ok(())
}

/// The same on the Gainsight side: a regenerated access key pauses the job's writes to Gainsight
/// until the new key is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_regenerated_gainsight_key_pauses_the_job_until_it_is_stored() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    stack.gainsight.set_access_key("gs-regenerated-key");
    let account = json!({"Name": "Salesforce First", "Phone": "+1 555 0142"});
    let id = stack
        .salesforce
        .seed(
            "Account",
            vec![account.as_object().cloned().unwrap_or_default()],
        )
        .remove(0);
    let status = paused_status(&stack).await?;
    ensure!(
        status.contains("Gainsight refused the access key")
            && status.contains("GS_APIG_2401")
            && status.contains("syncctl secrets put gainsight-access-key"),
        "{status}"
    );
    ensure!(stack
        .gainsight_where("Company", "SfdcAccountId", &id)
        .is_empty());

    let put = syncctl_in(
        &stack,
        &["secrets", "put", "gainsight-access-key"],
        "gs-regenerated-key\n",
    )
    .await;
    ensure!(put.status.success(), "{}", stderr(&put));
    stack
        .eventually(WAIT, "the Company, with the new key", || async {
            Ok(stack.gainsight_where("Company", "SfdcAccountId", &id).pop())
        })
        .await?;
    stack.stop().await;
    Ok(())
}
