//! End to end on the local stack: a Gainsight Company change travels through the signed webhook,
//! `changes`, the mapper, `writes` and the pusher to a Salesforce Account, and the ledger in
//! DynamoDB says so. Bad input is refused with nothing queued; a record Salesforce rejects is
//! marked error without failing its batch; injected faults end synced, never duplicated; an
//! Account deleted in Salesforce is created again under a job with `on_missing: create`; the
//! mapper and pusher binaries do the same as their handlers.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use sync_tests::{sign, Options, Stack, WEBHOOK_SECRET};

const WAIT: Duration = Duration::from_secs(30);

/// Creates `company` in Gainsight as a person would and waits for its Account and for its ledger
/// record to say synced with that Account's Id: the GSID, the Account and the ledger record.
async fn created_and_synced(
    stack: &Stack,
    company: Value,
) -> Result<(
    String,
    serde_json::Map<String, Value>,
    shared::domain::LedgerRecord,
)> {
    let gsid = stack.create_companies(vec![company]).await?.remove(0);
    let account = stack
        .eventually(WAIT, "the Account to be created", || async {
            Ok(stack.accounts_for(&gsid).pop())
        })
        .await?;
    let ledger = stack
        .eventually(WAIT, "the ledger to say synced", || async {
            Ok(stack.ledger(&gsid).await?.filter(|l| l.synced))
        })
        .await?;
    assert_eq!(ledger.salesforce_id.as_deref(), account["Id"].as_str());
    Ok((gsid, account, ledger))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gainsight_company_change_reaches_its_salesforce_account() -> Result<()> {
    // Without the rules' integration-user criteria every write echoes back: the mapper's
    // per-field hashes must recognise each echo.
    let stack = Stack::start(Options {
        echo_criteria: false,
        ..Options::default()
    })
    .await?;
    let company =
        json!({"Name": "Acme Corp", "Arr": 120000, "Industry": "Manufacturing", "Employees": 420});
    let (gsid, account, ledger) = created_and_synced(&stack, company).await?;
    assert_eq!(account["Name"], json!("Acme Corp"));
    assert_eq!(account["AnnualRevenue"], json!(120000));
    assert_eq!(account["Industry"], json!("Manufacturing"));
    assert_eq!(account["NumberOfEmployees"], json!(420));
    assert!(!ledger.error);
    assert!(ledger.last_sync_at_ms.is_some());

    // A second update of the same Company updates the same Account.
    stack
        .update_companies(vec![
            json!({"Gsid": gsid, "Arr": 250000, "Name": "Acme Corporation"}),
        ])
        .await?;
    stack
        .eventually(WAIT, "the ARR update", || async {
            Ok(stack
                .accounts_for(&gsid)
                .pop()
                .filter(|a| a["AnnualRevenue"] == json!(250000)))
        })
        .await?;
    stack.drained(WAIT).await?;
    let accounts = stack.accounts_for(&gsid);
    assert_eq!(accounts.len(), 1, "no duplicate Account");
    assert_eq!(accounts[0]["Name"], json!("Acme Corporation"));
    assert_eq!(accounts[0]["Id"], account["Id"]);
    // Each write to Salesforce comes back as an Outbound Message, and the Company's learning its
    // Account Id comes back from Gainsight's rule: five outcomes in all, and nothing ping-pongs.
    // An echo is ignored, except the write back's when it is mapped while the second update is
    // on its way: it is then queued behind that update with nothing to write, and settled
    // without a call (so that an older change never lands last), or, when the pusher gets both
    // in one batch, folded into the update's write with an entry of its own saying so (without
    // that entry the record was one outcome short and this test timed out now and then).
    let outcomes = stack
        .eventually(WAIT, "an outcome for each of the five changes", || async {
            Ok(stack.ledger(&gsid).await?.filter(|l| l.version >= 5))
        })
        .await;
    // When they are not there, the record's history says what became of each change.
    let ledger = match outcomes {
        Ok(ledger) => ledger,
        Err(e) => anyhow::bail!("{e}; ledger now: {:#?}", stack.ledger(&gsid).await?),
    };
    stack.drained(WAIT).await?;
    let ledger = stack.ledger(&gsid).await?.unwrap_or(ledger);
    let synced = ledger
        .history
        .iter()
        .filter(|h| h.outcome == shared::domain::Outcome::Synced)
        .count();
    assert_eq!(ledger.version, 5, "nothing ping-pongs: {ledger:#?}");
    assert!(ledger.ignored_count >= 2, "{ledger:#?}");
    assert_eq!(
        (synced as u64) + ledger.ignored_count,
        5,
        "two syncs, three echoes: {ledger:#?}"
    );
    let (records, failed, _) = stack.counts().await?;
    assert_eq!((records, failed), (1, 0));
    let company = stack.gainsight_record("Company", &gsid).expect("company");
    assert_eq!(company["Name"], json!("Acme Corporation"));
    assert_eq!(
        company["SfdcAccountId"], account["Id"],
        "the Company learned its Account Id"
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhook_requests_are_refused_and_nothing_is_queued() -> Result<()> {
    let stack = Stack::start(Options {
        consumers: false,
        ..Options::default()
    })
    .await?;
    let http = reqwest::Client::new();
    let url = format!("{}/gainsight", stack.webhook_url());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let good = json!({
        "eventId": "evt-bad-input", "eventType": "updated", "objectName": "Company", "occurredAt": now * 1000,
        "records": [{"Gsid": "1P0GS", "Name": "X"}]
    })
    .to_string();
    let post = |body: String, ts: Option<i64>, signature: Option<String>| {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(ts) = ts {
            req = req.header("x-gs-timestamp", ts.to_string());
        }
        if let Some(sig) = signature {
            req = req.header("x-gs-signature", sig);
        }
        req.send()
    };
    let malformed = "{\"eventId\": \"e\", ".to_string();
    let missing = good.replace("\"objectName\":\"Company\",", "");
    assert_ne!(missing, good);
    let big = format!(
        "{{\"pad\":\"{}\"}}",
        "x".repeat(webhook::DEFAULT_MAX_BODY_BYTES + 1)
    );
    // (case, body, timestamp header, signature header, expected status, expected message part)
    type Case<'a> = (&'a str, String, Option<i64>, Option<String>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "missing signature",
            good.clone(),
            Some(now),
            None,
            401,
            "missing x-gs-signature",
        ),
        (
            "bad signature",
            good.clone(),
            Some(now),
            Some(sign("not-the-secret", now, &good)),
            401,
            "does not match",
        ),
        (
            "stale timestamp",
            good.clone(),
            Some(now - 3600),
            Some(sign(WEBHOOK_SECRET, now - 3600, &good)),
            401,
            "away from now",
        ),
        (
            "malformed JSON",
            malformed.clone(),
            Some(now),
            Some(sign(WEBHOOK_SECRET, now, &malformed)),
            400,
            "invalid event JSON",
        ),
        (
            "missing field",
            missing.clone(),
            Some(now),
            Some(sign(WEBHOOK_SECRET, now, &missing)),
            400,
            "missing field `objectName`",
        ),
        (
            "oversize body",
            big.clone(),
            Some(now),
            Some(sign(WEBHOOK_SECRET, now, &big)),
            413,
            "at most 6000000",
        ),
    ];
    for (name, body, ts, sig, want, text) in cases {
        let resp = post(body, ts, sig).await?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await?;
        assert_eq!(status, want, "{name}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(text),
            "{name}: {body} should mention {text:?}"
        );
    }
    assert_eq!(
        stack.aws.queue_depth("ChangesQueue").await?,
        0,
        "refused requests queue nothing"
    );

    // The control: the same event, signed, is queued exactly once even when delivered twice.
    for _ in 0..2 {
        let resp = post(
            good.clone(),
            Some(now),
            Some(sign(WEBHOOK_SECRET, now, &good)),
        )
        .await?;
        assert_eq!(resp.status().as_u16(), 200);
    }
    assert_eq!(stack.aws.queue_depth("ChangesQueue").await?, 1);
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_failing_validation_is_marked_error_and_its_batch_still_syncs() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let ids = stack
        .create_companies(vec![
            json!({"Name": "Good One", "Arr": 1, "Industry": "Banking"}),
            json!({"Name": "Bad One", "Arr": 2, "Industry": "Underwater Basket Weaving"}),
            json!({"Name": "Good Two", "Arr": 3}),
        ])
        .await?;
    let bad = stack
        .eventually(WAIT, "the rejected record in the ledger", || async {
            Ok(stack.ledger(&ids[1]).await?.filter(|l| l.error))
        })
        .await?;
    // Caught against the cached describe before any Salesforce call, with the field named.
    let message = bad.last_error.unwrap_or_default();
    assert!(
        message.contains("Account.Industry: \"Underwater Basket Weaving\" is not a value of the restricted picklist"),
        "{message}"
    );
    assert!(!bad.synced && bad.salesforce_id.is_none());
    for good in [&ids[0], &ids[2]] {
        stack
            .eventually(WAIT, "the good records to sync", || async {
                Ok(stack.ledger(good).await?.filter(|l| l.synced))
            })
            .await?;
    }
    stack.drained(WAIT).await?;
    assert_eq!(
        stack.aws.queue_depth("WritesDeadLetterQueue").await?,
        0,
        "a rejected record is not retried into the DLQ"
    );
    // The rules skip the integration user's changes: neither the Accounts written nor the
    // Companies learning their Account Ids come back as changes.
    assert_eq!(stack.counts().await?, (2, 1, 0));
    assert_eq!(
        stack.salesforce.stats().outbound_acked,
        0,
        "no Outbound Message echo"
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_end_synced_without_duplicates() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let first = stack
        .create_companies(vec![json!({"Name": "Warm-up Co"})])
        .await?
        .remove(0);
    stack
        .eventually(WAIT, "the warm-up record", || async {
            Ok(stack.ledger(&first).await?.filter(|l| l.synced))
        })
        .await?;
    // One token for the mapper's client (describes, lookups), one for the pusher's.
    assert_eq!(stack.salesforce.stats().token_requests, 2);

    // The session expires, every Salesforce call then fails for a while (more than the client's
    // own retries), then rows are locked: messages go back to the queue until they succeed.
    stack.salesforce.expire_tokens();
    stack.salesforce.inject(devstack::salesforce::Fault::status(
        503,
        "SERVER_UNAVAILABLE",
        "Server unavailable",
        6,
    ));
    stack
        .salesforce
        .inject(devstack::salesforce::Fault::LockRows { times: 1 });
    let records: Vec<Value> = (0..30)
        .map(|i| json!({"Name": format!("Fault Co {i}"), "Arr": i}))
        .collect();
    let ids = stack.create_companies(records).await?;
    stack
        .eventually(Duration::from_secs(60), "all 31 records synced", || async {
            let (synced, _, _) = stack.counts().await?;
            Ok((synced == 31).then_some(()))
        })
        .await?;
    stack.drained(WAIT).await?;
    assert_eq!(
        stack.salesforce.pending_faults(),
        0,
        "every injected fault was hit"
    );
    assert_eq!(
        stack.salesforce.stats().token_requests,
        3,
        "the pusher's expired session was renewed once"
    );
    for gsid in &ids {
        assert_eq!(
            stack.accounts_for(gsid).len(),
            1,
            "exactly one Account for {gsid}"
        );
    }
    assert_eq!(stack.salesforce.records("Account").len(), 31);
    assert_eq!(
        stack.aws.queue_depth("WritesDeadLetterQueue").await?
            + stack.aws.queue_depth("ChangesDeadLetterQueue").await?,
        0
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_fails_alone_and_is_redriven_to_the_dlq() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    stack
        .clients
        .sqs
        .send_message()
        .queue_url(&stack.resources.changes_queue_url)
        .message_body("not a change")
        .send()
        .await?;
    let gsid = stack
        .create_companies(vec![json!({"Name": "Healthy Co"})])
        .await?
        .remove(0);
    stack
        .eventually(WAIT, "the healthy record to sync", || async {
            Ok(stack.ledger(&gsid).await?.filter(|l| l.synced))
        })
        .await?;
    // maxReceiveCount is 5 in the template: after five failed deliveries SQS moves it to the DLQ.
    stack
        .eventually(
            Duration::from_secs(45),
            "the poison message in the DLQ",
            || async {
                Ok((stack.aws.queue_depth("ChangesDeadLetterQueue").await? == 1).then_some(()))
            },
        )
        .await?;
    stack.drained(WAIT).await?;
    let dlq = stack.aws.queue_url("ChangesDeadLetterQueue").await?;
    let moved = stack
        .clients
        .sqs
        .receive_message()
        .queue_url(dlq)
        .send()
        .await?;
    assert_eq!(moved.messages()[0].body(), Some("not a change"));
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixing_a_refused_value_at_the_source_creates_the_record() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let gsid = stack
        .create_companies(vec![
            json!({"Name": "Fix Me", "Arr": 1, "Industry": "Underwater Basket Weaving"}),
        ])
        .await?
        .remove(0);
    stack
        .eventually(WAIT, "the refusal in the ledger", || async {
            Ok(stack.ledger(&gsid).await?.filter(|l| l.error))
        })
        .await?;
    assert!(stack.accounts_for(&gsid).is_empty(), "nothing created yet");
    // The user corrects the value in Gainsight: an update, which the job would only apply to an
    // existing Account; the ledger says the create never succeeded, so it creates.
    stack
        .gainsight_update(
            "Company",
            vec![json!({"Gsid": gsid, "Industry": "Banking"})],
        )
        .await?;
    let account = stack
        .eventually(WAIT, "the Account created by the fix", || async {
            Ok(stack.accounts_for(&gsid).pop())
        })
        .await?;
    assert_eq!(account["Industry"], json!("Banking"));
    assert_eq!(account["Name"], json!("Fix Me"));
    let ledger = stack
        .eventually(WAIT, "the pair synced", || async {
            Ok(stack.ledger(&gsid).await?.filter(|l| l.synced))
        })
        .await?;
    assert!(!ledger.error, "the last attempt succeeded");
    stack.stop().await;
    Ok(())
}

/// A Company whose Account a Salesforce user deleted, under a job with `on_missing: create`: its
/// next change creates a new Account with every value (not only the one changed), and the pair
/// and the Company learn the new Id; the history names the Account that was gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_is_created_again_where_the_job_says_so() -> Result<()> {
    use shared::domain::{Job, Jobs, OnMissing};
    let jobs: Vec<Job> = (Jobs::builtin().iter().cloned())
        .map(|mut j| {
            if j.name == "company_account" {
                j.on_missing = OnMissing::Create;
            }
            j
        })
        .collect();
    let stack = Stack::start(Options {
        jobs: Some(Jobs::new(jobs)?),
        ..Options::default()
    })
    .await?;
    let gsid = stack
        .create_companies(vec![json!({"Name": "Gone Co", "Arr": 1})])
        .await?
        .remove(0);
    let first = stack
        .eventually(WAIT, "the first Account", || async {
            let ledger = stack.ledger(&gsid).await?.filter(|l| l.synced);
            Ok(ledger.and_then(|l| l.salesforce_id))
        })
        .await?;
    assert!(stack.salesforce.delete("Account", &first));
    stack
        .update_companies(vec![json!({"Gsid": gsid, "Arr": 2})])
        .await?;
    let second = stack
        .eventually(WAIT, "a new Account", || async {
            let ledger = stack.ledger(&gsid).await?;
            Ok(ledger
                .and_then(|l| l.salesforce_id)
                .filter(|id| *id != first))
        })
        .await?;
    let accounts = stack.accounts_for(&gsid);
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0]["Id"], json!(second));
    assert_eq!(accounts[0]["AnnualRevenue"], json!(2));
    assert_eq!(
        accounts[0]["Name"],
        json!("Gone Co"),
        "the unchanged values too"
    );
    stack
        .eventually(WAIT, "the Company to learn its new Account", || async {
            let company = stack.gainsight_record("Company", &gsid);
            Ok(company.filter(|c| c["SfdcAccountId"] == json!(second)))
        })
        .await?;
    let ledger = stack.ledger(&gsid).await?.expect("ledger");
    let gone = format!("{first} of this pair no longer exists");
    assert!(
        (ledger.history.iter()).any(|h| h.message.as_deref().is_some_and(|m| m.contains(&gone))),
        "{ledger:#?}"
    );
    assert!(ledger.synced && !ledger.error, "{ledger:#?}");
    stack.drained(WAIT).await?;
    stack.stop().await;
    Ok(())
}

/// Where `cargo test --workspace` built the function binaries: beside this test's own
/// directory (`target/debug/deps/..`).
fn built_binaries() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = (exe.parent().and_then(|deps| deps.parent()))
        .ok_or_else(|| anyhow::anyhow!("the test binary has no target directory"))?;
    sync_tests::function_binaries_in(dir)
}

/// The mapper and the pusher as their own binaries under the Lambda Runtime API, as deployed
/// (their `main`s: configuration from the environment, secrets read at cold start, the runtime
/// loop), not their handlers in the test's process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_goes_through_the_mapper_and_pusher_binaries() -> Result<()> {
    let stack = Stack::start(Options {
        function_binaries: Some(built_binaries()?),
        ..Options::default()
    })
    .await?;
    let company = json!({"Name": "Binary Co", "Arr": 77000});
    let (_, account, _) = created_and_synced(&stack, company).await?;
    assert_eq!(account["Name"], json!("Binary Co"));
    assert_eq!(account["AnnualRevenue"], json!(77000));
    // Both functions ran as processes of their own, which the stack can measure.
    let rss = stack.function_peak_rss_mb();
    let names: Vec<&str> = rss.iter().map(|(f, _)| *f).collect();
    assert_eq!(names, ["MapperFunction", "PusherFunction"]);
    assert!(rss.iter().all(|(_, mb)| *mb > 1.0), "{rss:?}");
    stack.stop().await;
    Ok(())
}
