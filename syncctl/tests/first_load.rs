//! A first load on the local stack, through the real `syncctl` binary and the resync function:
//! the dry run's counts are what the load then does, ambiguous records are left alone and listed,
//! and a load stopped half way goes on from its checkpoint with nothing written twice.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use sync_tests::{Options, Stack};

mod common;
use common::*;

const WAIT: Duration = Duration::from_secs(90);
const JOB: &str = "company_account";

fn text_of<'a>(record: &'a serde_json::Map<String, Value>, field: &str) -> Option<&'a str> {
    record.get(field).and_then(Value::as_str)
}

/// Records of `object` whose `field` is `value`.
fn holding(stack: &Stack, object: &str, (field, value): (&str, &str)) -> usize {
    let records = match object {
        "Account" => stack.salesforce.records(object),
        _ => stack.gainsight.records(object),
    };
    (records.iter())
        .filter(|r| text_of(r, field) == Some(value))
        .count()
}

/// Ledger records of the job that pair a GSID with a Salesforce id.
async fn pairs(stack: &Stack) -> Result<Vec<(String, String)>> {
    let mut pairs: Vec<(String, String)> = (stack.ledger_records().await?.into_iter())
        .filter_map(|r| Some((r.key.gainsight_id()?.to_string(), r.salesforce_id?)))
        .collect();
    pairs.sort();
    Ok(pairs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_load_does_what_its_dry_run_planned_and_leaves_ambiguous_records_alone() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let org = seed_org(&stack).await?;
    // Gainsight takes any text for Industry; the Account's Industry is a restricted picklist
    // without this value, so creating its Account would be refused.
    let rocket = stack
        .gainsight_insert_quietly(
            "Company",
            vec![json!({"Name": "Rocket Co", "Industry": "Aerospace"})],
        )
        .await?;
    let dry = ["load", "--job", JOB, "--dry-run", "--format", "json"];
    let plan = json_of(&stack, &dry).await?;
    let counts = plan["counts"].clone();
    assert_eq!(
        counts,
        json!({"alreadyLinked": 1, "linkByIdentifier": 2, "linkByMatchKey": 0,
            "createInSalesforce": 1, "createInGainsight": 1, "toUpdate": 2,
            "refusedByValidation": 1, "ambiguous": 3, "leftAlone": 0}),
        "{plan}"
    );
    let refused = (plan["rows"].as_array().into_iter().flatten())
        .find(|r| r["gainsightId"] == json!(rocket[0]))
        .cloned()
        .unwrap_or_default();
    assert_eq!(refused["action"], json!("refused by validation"), "{plan}");
    let why = refused["detail"].as_str().unwrap_or_default();
    assert!(
        why.contains("Account.Industry") && why.contains("Aerospace"),
        "the row names the field and the value: {why}"
    );
    let (accounts_before, companies_before) = (
        stack.salesforce.records("Account").len(),
        stack.gainsight.records("Company").len(),
    );

    let load = json_of(&stack, &["load", "--job", JOB, "--format", "json"]).await?;
    assert_eq!(load["load"]["state"], json!("done"), "{load}");
    assert_eq!(load["load"]["counts"]["toUpdate"], counts["toUpdate"]);
    assert_eq!(load["load"]["counts"]["ambiguous"], counts["ambiguous"]);
    assert_eq!(load["load"]["counts"]["refused"], json!(1));
    // Both creations done, each once (the Salesforce one staged and written when the load is
    // quiet), and the pair's Name difference settled. The Account the Company was created from
    // learns its GSID when the load is quiet too (the write back staged with the load).
    let only_gs = &org.companies[4];
    let only_sf = &org.accounts[3];
    let written_back = || {
        let made = (stack.gainsight.records("Company").into_iter())
            .find(|c| text_of(c, "SfdcAccountId") == Some(only_sf.as_str()))
            .and_then(|c| text_of(&c, "Gsid").map(str::to_string));
        let account = (stack.salesforce.records("Account").into_iter())
            .find(|a| text_of(a, "Id") == Some(only_sf.as_str()));
        let learnt = account
            .as_ref()
            .and_then(|a| text_of(a, "Gainsight_Company_Id__c"));
        made.is_some() && learnt == made.as_deref()
    };
    stack
        .eventually(WAIT, "the load's creations", || async {
            let made = holding(&stack, "Account", ("Gainsight_Company_Id__c", only_gs)) == 1
                && holding(&stack, "Company", ("SfdcAccountId", only_sf)) == 1
                && written_back();
            Ok(made.then_some(()))
        })
        .await?;
    stack.drained(WAIT).await?;
    assert_eq!(
        stack.salesforce.records("Account").len(),
        accounts_before + 1,
        "one Account created, as planned"
    );
    assert_eq!(
        stack.gainsight.records("Company").len(),
        companies_before + 1,
        "one Company created, as planned: {:#?}",
        stack.gainsight.records("Company")
    );
    let linked = pairs(&stack).await?;
    assert_eq!(
        linked.len(),
        5,
        "1 already + 2 linked + 2 created: {linked:?}"
    );
    // The two claims on one Account are left alone: no pair, nothing written to them.
    for claim in &org.companies[2..4] {
        assert!(
            !linked.iter().any(|(g, _)| g == claim),
            "{claim} left alone"
        );
    }
    assert!(!linked.iter().any(|(_, s)| s == &org.accounts[2]));
    assert_eq!(
        holding(&stack, "Account", ("Gainsight_Company_Id__c", &rocket[0])),
        0,
        "the refused creation is not tried"
    );
    let logs = syncctl(
        &stack,
        &["logs", load["load"]["run"].as_str().unwrap_or("")],
    )
    .await;
    let listed = stdout(&logs);
    assert!(
        listed.matches("ambiguous, left alone").count() >= 3,
        "every ambiguous record is listed in the load's run: {listed}"
    );
    assert!(
        listed.contains(&rocket[0]) && listed.contains("refused by validation"),
        "the refused record is listed in the load's run: {listed}"
    );

    // Planned again, the load finds everything linked and nothing left to write.
    let again = json_of(&stack, &dry).await?;
    assert_eq!(
        again["counts"],
        json!({"alreadyLinked": 5, "linkByIdentifier": 0, "linkByMatchKey": 0,
            "createInSalesforce": 0, "createInGainsight": 0, "toUpdate": 0,
            "refusedByValidation": 1, "ambiguous": 3, "leftAlone": 0}),
        "{again}"
    );
    stack.stop().await;
    Ok(())
}

/// Pairs of the interrupted load, linked by the GSID their Accounts carry: more links than one
/// chunk holds.
const CARRIED: usize = 2_050;
/// Companies alone in Gainsight: as many Accounts to create, at least the shipped bulk
/// threshold (2,000), so the load's writes reach Salesforce through one Bulk API job.
const ALONE: usize = 2_050;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_stopped_after_a_chunk_goes_on_from_its_checkpoint_writing_nothing_twice(
) -> Result<()> {
    // Quiet for long enough that the load's writes, staged over several invocations, are
    // written together (a minute deployed).
    let options = Options {
        load_quiet: Duration::from_secs(10),
        ..Options::default()
    };
    let stack = Stack::start(options).await?;
    let rec = |v: Value| v.as_object().cloned().unwrap_or_default();
    let names = (0..CARRIED).map(|i| rec(json!({"Name": format!("Co {i}")})));
    let gsids = stack.gainsight.seed_quietly("Company", names.collect());
    let carrying = (gsids.iter().enumerate())
        .map(|(i, g)| rec(json!({"Name": format!("Co {i}"), "Gainsight_Company_Id__c": g})));
    stack.salesforce.seed_quietly("Account", carrying.collect());
    let alone = (0..ALONE).map(|i| rec(json!({"Name": format!("Alone {i}")})));
    let alone = stack.gainsight.seed_quietly("Company", alone.collect());
    let bulk_jobs = stack.salesforce.stats().bulk_jobs;

    // The operator's syncctl is killed after the plan and the first chunk.
    let ask = json!({"job": JOB, "load": "run"});
    let planned = stack.invoke_resync(ask.clone()).await?;
    assert_eq!(planned["load"]["chunks"], json!(3), "{planned}");
    let first = stack.invoke_resync(ask).await?;
    assert_eq!(first["load"]["done"], json!(1), "{first}");
    assert_eq!(pairs(&stack).await?.len(), 2_000, "the first chunk's links");

    // Run again, the load goes on from its checkpoint.
    let load = json_of(&stack, &["load", "--job", JOB, "--format", "json"]).await?;
    assert_eq!(load["load"]["run"], planned["load"]["run"], "the same load");
    assert_eq!(
        (
            &load["load"]["state"],
            &load["load"]["done"],
            &load["queued"]
        ),
        (&json!("done"), &json!(3), &json!(CARRIED - 2_000 + ALONE)),
        "the other chunks only: 50 links and every write; {load}"
    );
    // Generous on a loaded machine; a change message left undeleted would come back only after
    // the changes queue's 180 s visibility timeout, past this.
    let wait = Duration::from_secs(150);
    stack
        .eventually(wait, "the lone Companies' Accounts", || async {
            let accounts = stack.salesforce.records("Account").len();
            anyhow::ensure!(
                accounts <= CARRIED + ALONE,
                "{accounts} Accounts: some twice"
            );
            Ok((accounts == CARRIED + ALONE).then_some(()))
        })
        .await?;
    stack.drained(wait).await?;
    for gsid in &alone {
        assert_eq!(
            holding(&stack, "Account", ("Gainsight_Company_Id__c", gsid)),
            1
        );
    }
    assert_eq!(pairs(&stack).await?.len(), CARRIED + ALONE);
    assert_eq!(stack.gainsight.records("Company").len(), CARRIED + ALONE);
    assert_eq!(
        stack.salesforce.stats().bulk_jobs - bulk_jobs,
        1,
        "the load's 2,050 creations in one Bulk API job at the shipped threshold"
    );
    stack.stop().await;
    Ok(())
}
