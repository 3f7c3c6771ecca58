//! `syncctl --stack NAME` on the local stack: the table, key, queues and functions come from the
//! deployed CloudFormation stack's outputs, none from the environment.

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::{json, Value};
use sync_tests::{Options, Stack};

mod common;
use common::*;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn syncctl_reads_a_deployed_stacks_names_from_its_outputs() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let gsid = stack
        .create_companies(vec![json!({"Name": "Stack Named Co", "Arr": 1})])
        .await?
        .remove(0);
    stack
        .eventually(WAIT, "the Account", || async {
            Ok(stack.accounts_for(&gsid).pop())
        })
        .await?;

    let env = syncctl_by_stack(&stack, &["env", "--stack", "gs-sf-sync"]).await;
    ensure!(env.status.success(), "{}", stderr(&env));
    let table = format!("export TABLE_NAME='{}'", stack.resources.table_name);
    ensure!(stdout(&env).contains(&table), "{}", stdout(&env));

    let status = syncctl_by_stack(
        &stack,
        &["--stack", "gs-sf-sync", "status", "--format", "json"],
    )
    .await;
    ensure!(status.status.success(), "{}", stderr(&status));
    let status: Value = serde_json::from_slice(&status.stdout)?;
    let records = status["records"].as_array().cloned().unwrap_or_default();
    ensure!(
        records
            .iter()
            .any(|r| r["key"].as_str().is_some_and(|k| k.contains(&gsid))),
        "{status}"
    );
    // The resync function under its deployed name.
    let resync = syncctl_by_stack(
        &stack,
        &[
            "--stack",
            "gs-sf-sync",
            "resync",
            "--job",
            "company_account",
            "--ids",
            &gsid,
            "--format",
            "json",
        ],
    )
    .await;
    ensure!(resync.status.success(), "{}", stderr(&resync));
    let without = syncctl_by_stack(&stack, &["status"]).await;
    ensure!(without.status.code() == Some(1) && stderr(&without).contains("TABLE_NAME"));
    let missing = syncctl_by_stack(&stack, &["--stack", "no-such-stack", "status"]).await;
    ensure!(missing.status.code() == Some(3), "{}", stderr(&missing));
    stack.stop().await;
    Ok(())
}
