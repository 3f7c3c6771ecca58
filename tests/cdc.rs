//! Change Data Capture end to end on the local stack: the Salesforce emulator publishes a change
//! event for every create, update, delete and undelete, Event Relay style, onto the local
//! EventBridge bus; the template's rule puts the change events (not the sync's own) on `changes`;
//! the mapper reads them. Every change type, gaps (of a create, an update, a delete and a
//! restore) and overflows, a bulk edit of many records in one event, a re-sent event, events out of order, echoes that cost no request, merges, and a
//! Gainsight delete recorded like a Salesforce one.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use shared::domain::{PresenceState, System};
use sync_tests::relay::{event_source, SalesforceEvents, EVENTBRIDGE_CALLER};
use sync_tests::{Options, Stack};

const WAIT: Duration = Duration::from_secs(30);

fn record(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

async fn cdc_stack() -> Result<Stack> {
    Stack::start(Options {
        salesforce_events: SalesforceEvents::ChangeDataCapture,
        ..Options::default()
    })
    .await
}

/// A Company made in Gainsight, synced to its Account: (GSID, Account Id).
async fn synced_company(stack: &Stack, name: &str) -> Result<(String, String)> {
    let gsid = stack
        .create_companies(vec![json!({"Name": name, "Arr": 1})])
        .await?
        .remove(0);
    let account = stack
        .eventually(WAIT, "the Account", || async {
            let ledger = stack.ledger(&gsid).await?.filter(|l| l.synced);
            Ok(ledger.and_then(|l| l.salesforce_id))
        })
        .await?;
    Ok((gsid, account))
}

async fn company_named(stack: &Stack, gsid: &str, name: &str) -> Result<()> {
    stack
        .eventually(WAIT, &format!("the Company named {name}"), || async {
            let company = stack.gainsight_record("Company", gsid);
            Ok(company.filter(|c| c["Name"] == json!(name)))
        })
        .await?;
    Ok(())
}

/// Puts a hand-made Account change event on the bus, as Event Relay would.
async fn put_event(stack: &Stack, header: Value, fields: Value) -> Result<()> {
    let mut payload = fields;
    payload["ChangeEventHeader"] = header;
    let detail = json!({"payload": payload, "schemaId": "s", "id": uuid(), "replayId": "1"});
    let bus = stack.buses.as_ref().expect("the stack has an event bus");
    let entry = json!({"Entries": [{
        "Source": event_source(), "DetailType": "AccountChangeEvent",
        "Detail": detail.to_string(), "EventBusName": event_source(),
    }]});
    let resp = reqwest::Client::new()
        .post(bus.url())
        .header("x-amz-target", "AWSEvents.PutPartnerEvents")
        .header("content-type", "application/x-amz-json-1.1")
        .body(entry.to_string())
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "{}", resp.text().await?);
    Ok(())
}

fn bus_stats(stack: &Stack) -> devstack::event_bus::BusStats {
    stack.buses.as_ref().map(|b| b.stats()).unwrap_or_default()
}

/// Waits until `put` events in all have been put on the bus and each one matched is delivered.
async fn relayed(stack: &Stack, put: u64) -> Result<()> {
    stack
        .eventually(WAIT, "the events relayed", || async {
            let s = bus_stats(stack);
            Ok((s.put >= put && s.delivered + s.dead_lettered == s.matched).then_some(()))
        })
        .await
}

fn uuid() -> String {
    format!("hand-{}", shared::time::now_ms())
}

fn update_header(account: &str, at_ms: i64, changed: &[&str]) -> Value {
    json!({
        "entityName": "Account", "recordIds": [account], "changeType": "UPDATE",
        "commitTimestamp": at_ms, "commitNumber": at_ms, "commitUser": devstack::salesforce::PERSON_USER_ID,
        "transactionKey": uuid(), "sequenceNumber": 1,
        "changedFields": changed, "nulledFields": [], "diffFields": [],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_creates_and_bulk_edits_sync_and_echoes_cost_nothing() -> Result<()> {
    let stack = cdc_stack().await?;
    let (gsid, account) = synced_company(&stack, "Relay Co").await?;
    stack.drained(WAIT).await?;
    // The sync's own writes were published, and dropped by the rule: not one SQS request.
    let bus = stack.buses.as_ref().expect("a bus");
    let before = bus.stats();
    assert!(before.put >= 1, "{before:?}");
    assert_eq!(before.delivered, 0, "echoes reach no queue: {before:?}");
    let callers = stack.aws.callers().await?;
    assert!(!callers.contains_key(EVENTBRIDGE_CALLER), "{callers:?}");

    // A person's edit: only the changed field travels, the Company gets it.
    assert!(stack.salesforce.edit(
        "Account",
        &account,
        record(json!({"Name": "Relay Co Renamed"}))
    ));
    company_named(&stack, &gsid, "Relay Co Renamed").await?;
    let company = stack
        .gainsight_record("Company", &gsid)
        .expect("the Company");
    assert_eq!(company["Arr"], json!(1), "a field the event omits is kept");

    // A record created in Salesforce is created in Gainsight.
    let made = stack
        .salesforce
        .seed(
            "Account",
            vec![record(json!({"Name": "Born In Salesforce"}))],
        )
        .remove(0);
    stack
        .eventually(WAIT, "the Salesforce-born Company", || async {
            Ok(stack
                .gainsight_where("Company", "SfdcAccountId", &made)
                .pop())
        })
        .await?;

    // A data load of 5 Accounts in one transaction: one event naming all 5, each synced.
    let mut pairs = Vec::new();
    for i in 0..5 {
        pairs.push(synced_company(&stack, &format!("Bulk {i}")).await?);
    }
    stack.drained(WAIT).await?;
    let delivered = bus.stats().delivered;
    let ids: Vec<String> = pairs.iter().map(|(_, a)| a.clone()).collect();
    let loaded = stack
        .salesforce
        .edit_all("Account", &ids, record(json!({"Industry": "Energy"})));
    assert_eq!(loaded, 5);
    for (gsid, _) in &pairs {
        stack
            .eventually(WAIT, "the bulk edit", || async {
                let company = stack.gainsight_record("Company", gsid);
                Ok(company.filter(|c| c.get("Industry") == Some(&json!("Energy"))))
            })
            .await?;
    }
    assert_eq!(
        bus.stats().delivered,
        delivered + 1,
        "one event for the 5 records"
    );
    stack.drained(WAIT).await?;
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resent_and_out_of_order_events_change_nothing() -> Result<()> {
    let stack = cdc_stack().await?;
    let (gsid, account) = synced_company(&stack, "Order Co").await?;
    assert!(stack
        .salesforce
        .edit("Account", &account, record(json!({"Name": "Order Co 2"}))));
    company_named(&stack, &gsid, "Order Co 2").await?;
    stack.drained(WAIT).await?;
    let updates = stack.gainsight.stats().write_calls;
    let before = bus_stats(&stack);

    // The relay resumed with ReplayRecovery EARLIEST: the last events come again.
    let resent = stack.salesforce.resend_last(3) as u64;
    assert!(resent >= 1);
    relayed(&stack, before.put + resent).await?;
    stack.drained(WAIT).await?;
    let story = stack.story("company_account", &gsid).await;
    assert_eq!(
        stack.gainsight.stats().write_calls,
        updates,
        "nothing written again: {story}"
    );
    let company = stack
        .gainsight_record("Company", &gsid)
        .expect("the Company");
    assert_eq!(company["Name"], json!("Order Co 2"));

    // Two edits delivered newest first: the older one is stale.
    let now = shared::time::now_ms();
    let newer = update_header(&account, now - 1_000, &["Name"]);
    put_event(&stack, newer, json!({"Name": "Newest Name"})).await?;
    company_named(&stack, &gsid, "Newest Name").await?;
    stack
        .eventually(WAIT, "the newest change recorded", || async {
            let ledger = stack.ledger(&gsid).await?;
            let at = ledger.and_then(|l| l.salesforce_changed_at_ms);
            Ok(at.filter(|at| *at >= now - 1_000))
        })
        .await?;
    let older = update_header(&account, now - 5_000, &["Name"]);
    put_event(&stack, older, json!({"Name": "Older Name"})).await?;
    stack.drained(WAIT).await?;
    let company = stack
        .gainsight_record("Company", &gsid)
        .expect("the Company");
    assert_eq!(company["Name"], json!("Newest Name"));
    // The older one is dropped as stale where it is met (mapping, or the write), and says so.
    let story = stack.story("company_account", &gsid).await;
    assert!(story.contains("stale: "), "{story}");
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_overflows_deletes_and_undeletes() -> Result<()> {
    let stack = cdc_stack().await?;
    let (gsid, account) = synced_company(&stack, "Gap Co").await?;
    stack.drained(WAIT).await?;

    // A gap: the event says only which record; it is read back from Salesforce.
    stack.salesforce.gap_next(1);
    assert!(stack.salesforce.edit(
        "Account",
        &account,
        record(json!({"Name": "Gap Co Read Back"}))
    ));
    company_named(&stack, &gsid, "Gap Co Read Back").await?;

    // An overflow: the poller reads the Accounts changed since the commit.
    stack.salesforce.overflow_next(1);
    assert!(stack.salesforce.edit(
        "Account",
        &account,
        record(json!({"Name": "Gap Co Polled"}))
    ));
    company_named(&stack, &gsid, "Gap Co Polled").await?;

    // A delete is recorded on the pair's Salesforce side, not propagated; so is a restore.
    assert!(stack.salesforce.delete("Account", &account));
    let sf_presence = |state: PresenceState| {
        let (stack, gsid) = (&stack, &gsid);
        async move {
            let ledger = stack.ledger(gsid).await?.expect("ledger");
            let kept = ledger.presence.get(&System::Salesforce).cloned();
            Ok(kept.filter(|p| p.state == state))
        }
    };
    let deleted = stack
        .eventually(WAIT, "the delete recorded", || {
            sf_presence(PresenceState::Deleted)
        })
        .await?;
    assert!(deleted.by.is_some(), "who deleted it: {deleted:?}");
    assert!(
        stack.gainsight_record("Company", &gsid).is_some(),
        "not deleted in Gainsight"
    );
    assert!(stack.salesforce.undelete("Account", &account));
    let restored = stack
        .eventually(WAIT, "the restore recorded", || {
            sf_presence(PresenceState::Restored)
        })
        .await?;
    assert!(
        restored.at_ms >= deleted.at_ms,
        "{restored:?} after {deleted:?}"
    );

    // The gaps of a delete and of a restore: read back, and recorded as the events would be.
    for state in [PresenceState::Deleted, PresenceState::Restored] {
        stack.salesforce.gap_next(1);
        let done = match state {
            PresenceState::Deleted => stack.salesforce.delete("Account", &account),
            _ => stack.salesforce.undelete("Account", &account),
        };
        assert!(done, "{state:?}");
        let what = format!("the gap's {state:?} recorded");
        stack
            .eventually(WAIT, &what, || sf_presence(state.clone()))
            .await?;
    }

    // The gap of a creation: read back, and created in Gainsight.
    stack.salesforce.gap_next(1);
    let born = record(json!({"Name": "Gap Born"}));
    let [_] = stack.salesforce.seed("Account", vec![born])[..] else {
        anyhow::bail!("one Account seeded");
    };
    stack
        .eventually(
            WAIT,
            "the Company of an Account created in a gap",
            || async {
                let companies = stack.gainsight.records("Company");
                Ok((companies.iter())
                    .find(|c| c.get("Name") == Some(&json!("Gap Born")))
                    .cloned())
            },
        )
        .await?;
    stack.drained(WAIT).await?;
    let story = stack.story("company_account", &gsid).await;
    assert!(story.contains("deleted in Salesforce"), "{story}");
    assert!(story.contains("restored in Salesforce"), "{story}");
    // Recorded on the pair, not on a record of its own keyed by the Salesforce Id.
    let stray = stack
        .ledger_of("company_account", &format!("sf:{account}"))
        .await?;
    assert!(stray.is_none(), "{stray:#?}");
    stack.stop().await;
    Ok(())
}

/// A merge deletes the losing Accounts with `MasterRecordId` set: the delete is recorded as a
/// merge; a losing Account's Company moves to a master that had none (the Company takes the
/// master's Id, the master the Company's GSID, and the master's later edits reach it); when
/// both were paired the losing pair is marked for an operator, naming both Companies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_move_a_pair_to_its_master_or_wait_for_an_operator() -> Result<()> {
    let stack = cdc_stack().await?;
    let (moving, loser) = synced_company(&stack, "Merge Loser").await?;
    let master = stack
        .salesforce
        .load_without_workflow("Account", vec![record(json!({"Name": "Merge Master"}))])
        .remove(0);
    let (both_loser_gsid, both_loser) = synced_company(&stack, "Both Loser").await?;
    let (both_master_gsid, both_master) = synced_company(&stack, "Both Master").await?;
    stack.drained(WAIT).await?;

    stack
        .salesforce
        .merge("Account", &master, std::slice::from_ref(&loser));
    stack
        .salesforce
        .merge("Account", &both_master, std::slice::from_ref(&both_loser));
    stack
        .eventually(WAIT, "the Company re-pointed to the master", || async {
            let company = stack.gainsight_record("Company", &moving);
            Ok(company.filter(|c| c["SfdcAccountId"] == json!(master)))
        })
        .await?;
    stack
        .eventually(WAIT, "the master given the Company's GSID", || async {
            let accounts = stack.salesforce.records("Account");
            let found = accounts.into_iter().find(|a| a["Id"] == json!(master));
            Ok(found.filter(|a| a["Gainsight_Company_Id__c"] == json!(moving)))
        })
        .await?;
    let attention = stack
        .eventually(WAIT, "the pair marked for an operator", || async {
            let ledger = stack.ledger(&both_loser_gsid).await?.filter(|l| l.error);
            Ok(ledger.and_then(|l| l.last_error))
        })
        .await?;
    assert!(
        attention.contains(&format!("{both_loser_gsid} paired with {both_loser}")),
        "{attention}"
    );
    assert!(
        attention.contains(&format!("{both_master_gsid} with {both_master}")),
        "{attention}"
    );
    stack.drained(WAIT).await?;
    let ledger = stack.ledger(&moving).await?.expect("the pair's ledger");
    assert_eq!(ledger.salesforce_id.as_deref(), Some(master.as_str()));
    let story = stack.story("company_account", &moving).await;
    assert!(
        story.contains(&format!("{loser} was merged into {master}")),
        "{story}"
    );

    // The master's own edits now reach the Company it took over.
    assert!(stack.salesforce.edit(
        "Account",
        &master,
        record(json!({"Name": "Merged And Edited"}))
    ));
    company_named(&stack, &moving, "Merged And Edited").await?;
    stack.stop().await;
    Ok(())
}

/// A Company deleted in Gainsight, as its rule posts the event to the webhook: recorded on its
/// pair, like a Salesforce delete, and not propagated to the Account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gainsight_delete_by_webhook_is_recorded_on_its_pair() -> Result<()> {
    let stack = cdc_stack().await?;
    let (gsid, account) = synced_company(&stack, "Deleted In Gainsight").await?;
    stack.drained(WAIT).await?;
    let now_s = shared::time::now_ms() / 1000;
    let body = json!({
        "eventId": format!("evt-delete-{gsid}"), "eventType": "deleted", "objectName": "Company",
        "occurredAt": now_s * 1000, "records": [{"Gsid": gsid}]
    })
    .to_string();
    let resp = reqwest::Client::new()
        .post(format!("{}/gainsight", stack.webhook_url()))
        .header("content-type", "application/json")
        .header("x-gs-timestamp", now_s.to_string())
        .header(
            "x-gs-signature",
            sync_tests::sign(sync_tests::WEBHOOK_SECRET, now_s, &body),
        )
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "{}", resp.text().await?);
    let said = stack
        .eventually(WAIT, "the delete recorded", || async {
            let ledger = stack.ledger(&gsid).await?.expect("ledger");
            let gone = (ledger.presence.get(&System::Gainsight))
                .is_some_and(|p| p.state == PresenceState::Deleted);
            let said = ledger.last_ignored_reason.unwrap_or_default();
            Ok((gone && said.contains("deleted in Gainsight")).then_some(said))
        })
        .await?;
    assert!(
        said.contains("deletes are recorded, not propagated"),
        "{said}"
    );
    let accounts = stack.salesforce.records("Account");
    assert!(
        accounts.iter().any(|a| a["Id"] == json!(account)),
        "the Account is not deleted"
    );
    stack.stop().await;
    Ok(())
}
