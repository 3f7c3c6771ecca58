//! Credentials that fail for good deactivate the job instead of burning through retries: an admin
//! rotates the connected app's secret in Salesforce, the pusher is refused, the job is stored as
//! deactivated, its writes wait in the queue (no record marked error), `syncctl status` says the
//! job is deactivated and why; storing the new secret with `syncctl secrets put` reactivates it
//! and the writes go out. An operator pauses and resumes a job the same way.

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;
use sync_tests::{Options, Stack};

mod common;
use common::*;

const WAIT: Duration = Duration::from_secs(60);

/// What `syncctl status` prints once company_account is stopped (`PAUSED`, `DEACTIVATED`).
async fn stopped_status(stack: &Stack, state: &str) -> Result<String> {
    stack
        .eventually(WAIT, "syncctl status saying the job is stopped", || async {
            let out = syncctl(stack, &["status", "--job", "company_account"]).await;
            let text = stdout(&out);
            Ok(text.contains(state).then_some(text))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_secret_deactivates_the_job_and_the_new_one_reactivates_it() -> Result<()> {
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
    let status = stopped_status(&stack, "DEACTIVATED").await?;
    ensure!(
        status.contains("job company_account DEACTIVATED since")
            && status.contains("by pusher")
            && status.contains("invalid_client")
            && status.contains("syncctl secrets put salesforce-client-secret")
            && status.contains("syncctl jobs reactivate company_account"),
        "{status}"
    );
    let json = json_of(
        &stack,
        &["status", "--job", "company_account", "--format", "json"],
    )
    .await?;
    ensure!(
        json["stopped"][0]["job"] == json!("company_account")
            && json["stopped"][0]["state"] == json!("deactivated"),
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
    ensure!(
        stdout(&put).contains("job company_account reactivated"),
        "{}",
        stdout(&put)
    );
    stack
        .eventually(WAIT, "the waiting Account, with the new secret", || async {
            Ok(stack.accounts_for(&waiting).pop())
        })
        .await?;
    stack
        .eventually(WAIT, "the job no longer paused", || async {
            let out = syncctl(&stack, &["status", "--job", "company_account"]).await;
            Ok((!stdout(&out).contains("DEACTIVATED")).then_some(()))
        })
        .await?;
    ensure!(stack.aws.queue_depth("WritesDeadLetterQueue").await? == 0);
    stack.stop().await;
    Ok(())
}

/// The same on the Gainsight side: a regenerated access key pauses the job's writes to Gainsight
/// until the new key is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_regenerated_gainsight_key_deactivates_the_job_until_it_is_stored() -> Result<()> {
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
    let status = stopped_status(&stack, "DEACTIVATED").await?;
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

/// A signed Gainsight event updating `gsid`'s Arr, posted to the webhook; its status.
async fn post_signed(stack: &Stack, secret: &str, gsid: &str, arr: i64) -> Result<u16> {
    let now_s = shared::time::now_ms() / 1000;
    let event = json!({
        "eventId": format!("evt-rotation-{arr}"), "eventType": "updated", "objectName": "Company",
        "occurredAt": now_s * 1000,
        "records": [{"Gsid": gsid, "Name": "Rotation Co", "Arr": arr}]
    })
    .to_string();
    let url = format!("{}/gainsight", stack.webhook_url());
    let resp = sync_tests::signed_post(&reqwest::Client::new(), &url, secret, event)
        .send()
        .await?;
    Ok(resp.status().as_u16())
}

/// `syncctl secrets rotate webhook-secret` on a running stack: the warm webhook accepts events
/// signed with the new secret without a restart, and the ones Gainsight still signs with the old
/// secret during the overlap; a guess is refused all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_webhook_secret_is_taken_without_a_restart_and_the_old_one_kept_for_the_overlap(
) -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let gsid = stack
        .create_companies(vec![json!({"Name": "Rotation Co", "Arr": 1})])
        .await?
        .remove(0);
    let rotate = |args: &'static [&'static str], value: &'static str| {
        let stack = &stack;
        async move {
            let mut all = vec!["secrets", "rotate"];
            all.extend_from_slice(args);
            syncctl_in(stack, &all, value).await
        }
    };
    let new_secret = "whsec-rotated-by-syncctl-0001";
    let out = rotate(
        &["webhook-secret", "--overlap", "2h"],
        "whsec-rotated-by-syncctl-0001\n",
    )
    .await;
    ensure!(out.status.success(), "{}", stderr(&out));
    ensure!(
        stdout(&out).contains("the previous value is accepted until")
            && !stdout(&out).contains(new_secret),
        "{}",
        stdout(&out)
    );
    // Accepted within the webhook's re-read time (ten seconds), with no restart.
    stack
        .eventually(
            WAIT,
            "an event signed with the new secret accepted",
            || async {
                Ok((post_signed(&stack, new_secret, &gsid, 2).await? == 200).then_some(()))
            },
        )
        .await?;
    ensure!(post_signed(&stack, "whsec-a-guess", &gsid, 3).await? == 401);
    // The emulator's rule still signs with the old secret: within the overlap it syncs.
    stack
        .update_companies(vec![json!({"Gsid": gsid, "Arr": 4})])
        .await?;
    stack
        .eventually(WAIT, "the change signed with the old secret", || async {
            let accounts = stack.accounts_for(&gsid);
            Ok(accounts
                .first()
                .filter(|a| a["AnnualRevenue"] == json!(4))
                .cloned())
        })
        .await?;

    let nothing = rotate(&["salesforce-jwt-key"], "pem\n").await;
    ensure!(nothing.status.code() == Some(2), "{}", stderr(&nothing));
    ensure!(stderr(&nothing).contains("syncctl secrets put salesforce-jwt-key"));
    let bad = rotate(&["webhook-secret", "--overlap", "soon"], "x\n").await;
    ensure!(bad.status.code() == Some(2) && stderr(&bad).contains("--overlap"));
    stack.stop().await;
    Ok(())
}

/// An operator pauses a job: a change made meanwhile waits (nothing written, nothing
/// dead-lettered, a resync refused), `syncctl status` says who paused it and why; resumed, the
/// change flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_job_holds_its_changes_until_it_is_resumed() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let pause = syncctl(
        &stack,
        &[
            "jobs",
            "pause",
            "company_account",
            "--why",
            "org upgrade tonight",
        ],
    )
    .await;
    ensure!(pause.status.success(), "{}", stderr(&pause));
    ensure!(
        stdout(&pause).contains("job company_account paused by"),
        "{}",
        stdout(&pause)
    );
    let again = syncctl(&stack, &["jobs", "resume", "person_contact"]).await;
    ensure!(
        again.status.code() == Some(2),
        "resuming a running job: {}",
        stderr(&again)
    );
    let unknown = syncctl(&stack, &["jobs", "pause", "no_such_job"]).await;
    ensure!(unknown.status.code() == Some(3), "{}", stderr(&unknown));

    // Past the functions' 10 s cache of the job states.
    tokio::time::sleep(Duration::from_millis(
        shared::ports::JOB_STATES_TTL_MS as u64 + 500,
    ))
    .await;
    let gsid = stack
        .create_companies(vec![json!({"Name": "Made While Paused", "Arr": 7})])
        .await?
        .remove(0);
    let status = stopped_status(&stack, "PAUSED").await?;
    ensure!(
        status.contains("org upgrade tonight")
            && status.contains("syncctl jobs resume company_account"),
        "{status}"
    );
    let story = stack
        .eventually(WAIT, "the mapper's run saying the change waits", || async {
            let story = stack.story("company_account", &gsid).await;
            Ok(story
                .contains("waiting: job company_account is paused")
                .then_some(story))
        })
        .await?;
    ensure!(
        stack.accounts_for(&gsid).is_empty(),
        "written while paused: {story}"
    );
    let resync = syncctl(
        &stack,
        &["resync", "--job", "company_account", "--ids", &gsid],
    )
    .await;
    ensure!(
        resync.status.code() == Some(1) && stderr(&resync).contains("is paused"),
        "{}",
        stderr(&resync)
    );

    let resume = syncctl(&stack, &["jobs", "resume", "company_account"]).await;
    ensure!(resume.status.success(), "{}", stderr(&resume));
    stack
        .eventually(WAIT, "the Account once resumed", || async {
            Ok(stack.accounts_for(&gsid).pop())
        })
        .await?;
    ensure!(stack.aws.queue_depth("ChangesDeadLetterQueue").await? == 0);
    ensure!(stack.aws.queue_depth("WritesDeadLetterQueue").await? == 0);
    stack.stop().await;
    Ok(())
}
