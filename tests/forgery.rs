//! An attacker at the public endpoint, on the local stack: an Outbound Message without the URL's
//! token is refused with nothing queued and no run; one with the token but false values is
//! mapped with the values Salesforce holds; a source time in the future is not believed, so the
//! record is not frozen against the genuine changes after it.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use shared::domain::RunFunction;
use shared::ports::RunStore;
use sync_tests::{outbound_url, sign, Options, Stack, WEBHOOK_SECRET};

const WAIT: Duration = Duration::from_secs(30);

fn record(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// An Outbound Message about Account `id` saying it is called `name`, last modified in 2100.
fn forged_message(id: &str, gsid: &str, name: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04k5g0000000EMUAAA</ActionId>
   <Notification>
    <Id>04l5g0000000F0RGED</Id>
    <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{id}</sf:Id>
     <sf:Name>{name}</sf:Name>
     <sf:Gainsight_Company_Id__c>{gsid}</sf:Gainsight_Company_Id__c>
     <sf:CreatedDate>2026-01-01T00:00:00.000Z</sf:CreatedDate>
     <sf:LastModifiedDate>2100-01-01T00:00:00.000Z</sf:LastModifiedDate>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#,
        org = devstack::salesforce::ORGANIZATION_ID
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_message_is_a_hint_and_only_with_its_token() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let gsid = stack
        .create_companies(vec![json!({"Name": "Real Co", "Arr": 5})])
        .await?
        .remove(0);
    let account = stack
        .eventually(WAIT, "the Account", || async {
            let ledger = stack.ledger(&gsid).await?.filter(|l| l.synced);
            Ok(ledger.and_then(|l| l.salesforce_id))
        })
        .await?;
    stack.drained(WAIT).await?;
    let since = shared::time::now_ms();
    let webhook_runs = || async {
        let runs = stack.store.runs(since, shared::time::now_ms()).await?;
        let hook = runs
            .into_iter()
            .filter(|r| r.id.function == RunFunction::Webhook);
        anyhow::Ok(hook.count())
    };
    let http = reqwest::Client::new();
    let post = |url: String, body: String| {
        http.post(url)
            .header("content-type", "text/xml; charset=utf-8")
            .header("SOAPAction", "\"\"")
            .body(body)
            .send()
    };
    let webhook = stack.webhook_url();

    // Without the token, or with a wrong one: refused, nothing queued, no run written.
    let forged = forged_message(&account, &gsid, "Forger Inc");
    for url in [
        format!("{webhook}/salesforce"),
        format!("{webhook}/salesforce?token=guess"),
    ] {
        let resp = post(url.clone(), forged.clone()).await?;
        let (status, text) = (resp.status().as_u16(), resp.text().await?);
        assert_eq!(status, 403, "{url}: {text}");
        assert!(
            text.contains("token") && !text.contains("<Ack>true"),
            "{text}"
        );
    }
    assert_eq!(stack.aws.queue_depth("ChangesQueue").await?, 0);
    assert_eq!(webhook_runs().await?, 0, "no run for a forger");

    // With the token, false values: acknowledged, but the Account is read from Salesforce and
    // nothing of the message is written; its time (2100) is not believed.
    let resp = post(outbound_url(&webhook), forged).await?;
    let text = resp.text().await?;
    assert!(text.contains("<Ack>true</Ack>"), "{text}");
    stack.drained(WAIT).await?;
    let company = stack
        .gainsight_record("Company", &gsid)
        .expect("the Company");
    assert_eq!(company["Name"], json!("Real Co"), "{company:?}");
    assert_eq!(company["SfdcAccountId"], json!(account));
    let ledger = stack.ledger(&gsid).await?.expect("ledger");
    let now = shared::time::now_ms();
    assert!(
        ledger.salesforce_changed_at_ms.unwrap_or(0) <= now,
        "{ledger:#?}"
    );

    // A genuine change in Salesforce after it still syncs.
    assert!(stack.salesforce.edit(
        "Account",
        &account,
        record(json!({"Name": "Real Co Renamed"}))
    ));
    stack
        .eventually(WAIT, "the genuine rename", || async {
            let company = stack.gainsight_record("Company", &gsid);
            Ok(company.filter(|c| c["Name"] == json!("Real Co Renamed")))
        })
        .await?;
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_time_in_the_future_is_clamped_to_the_arrival() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let gsid = stack
        .create_companies(vec![json!({"Name": "Clock Co", "Arr": 1})])
        .await?
        .remove(0);
    stack
        .eventually(WAIT, "the Account", || async {
            Ok(stack.ledger(&gsid).await?.filter(|l| l.synced))
        })
        .await?;
    // A signed event whose record time is in 2100 (a clock far ahead).
    let now_s = shared::time::now_ms() / 1000;
    let event = json!({
        "eventId": "evt-from-the-future", "eventType": "updated", "objectName": "Company",
        "occurredAt": 4_102_444_800_000_i64,
        "records": [{"Gsid": gsid, "Name": "Clock Co", "Arr": 2}]
    })
    .to_string();
    let resp = reqwest::Client::new()
        .post(format!("{}/gainsight", stack.webhook_url()))
        .header("content-type", "application/json")
        .header("x-gs-timestamp", now_s.to_string())
        .header("x-gs-signature", sign(WEBHOOK_SECRET, now_s, &event))
        .body(event)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    stack
        .eventually(WAIT, "the change written", || async {
            let accounts = stack.accounts_for(&gsid);
            Ok(accounts
                .first()
                .filter(|a| a["AnnualRevenue"] == json!(2))
                .cloned())
        })
        .await?;
    let ledger = stack.ledger(&gsid).await?.expect("ledger");
    let at = ledger.gainsight_changed_at_ms.expect("a Gainsight time");
    assert!(at <= shared::time::now_ms(), "stored {at}, in the future");
    // A genuine change made after it is not stale.
    stack
        .update_companies(vec![json!({"Gsid": gsid, "Arr": 3})])
        .await?;
    stack
        .eventually(WAIT, "the genuine change", || async {
            let accounts = stack.accounts_for(&gsid);
            Ok(accounts
                .first()
                .filter(|a| a["AnnualRevenue"] == json!(3))
                .cloned())
        })
        .await?;
    stack.stop().await;
    Ok(())
}
