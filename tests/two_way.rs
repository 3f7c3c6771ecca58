//! End to end on the local stack, both directions: a Salesforce change reaches Gainsight through an
//! Outbound Message; a bi-directional field changed on one side is written once to the other and
//! its echo ignored; a derived AccountId is filled on a Contact; a lookup with no match and one with
//! two matches show in the ledger with their messages; an invalid job is refused naming the field.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use shared::domain::Jobs;
use sync_tests::{Options, Stack};

const WAIT: Duration = Duration::from_secs(30);

fn record(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salesforce_change_reaches_gainsight_and_the_pair_links_up() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    // A sales rep creates an Account in Salesforce.
    let account_id = stack
        .salesforce
        .seed(
            "Account",
            vec![record(
                json!({"Name": "Initech", "Phone": "+1 555 0100", "Industry": "Technology"}),
            )],
        )
        .remove(0);

    let company = stack
        .eventually(WAIT, "the Company created in Gainsight", || async {
            Ok(stack
                .gainsight_where("Company", "SfdcAccountId", &account_id)
                .pop())
        })
        .await?;
    assert_eq!(company["Name"], json!("Initech"));
    assert_eq!(company["Phone"], json!("+1 555 0100"));
    assert_eq!(company["Industry"], json!("Technology"));
    let gsid = company["Gsid"].as_str().unwrap_or_default().to_string();

    // The Account learns its GSID; the ledger keys the pair by it, placeholder gone.
    stack
        .eventually(WAIT, "the GSID written back to the Account", || async {
            Ok(stack
                .salesforce_where("Account", "Gainsight_Company_Id__c", &gsid)
                .pop())
        })
        .await?;
    let ledger = stack
        .eventually(WAIT, "the ledger under the GSID", || async {
            Ok(stack
                .ledger_of("company_account", &gsid)
                .await?
                .filter(|l| l.synced))
        })
        .await?;
    assert_eq!(ledger.salesforce_id.as_deref(), Some(account_id.as_str()));
    assert!(stack
        .ledger_of("company_account", &format!("sf:{account_id}"))
        .await?
        .is_none());

    // The rep edits the Account: the same Company changes, none is added.
    assert!(stack.salesforce.edit(
        "Account",
        &account_id,
        record(json!({"Phone": "+1 555 0199"}))
    ));
    stack
        .eventually(WAIT, "the phone change in Gainsight", || async {
            Ok(stack
                .gainsight_record("Company", &gsid)
                .filter(|c| c["Phone"] == json!("+1 555 0199")))
        })
        .await?;
    stack.drained(WAIT).await?;
    assert_eq!(
        stack
            .gainsight_where("Company", "SfdcAccountId", &account_id)
            .len(),
        1
    );
    assert_eq!(stack.salesforce.records("Account").len(), 1);
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bidirectional_change_writes_once_and_its_echo_is_ignored() -> Result<()> {
    // Echoes on purpose (no integration-user criteria), to show the mapper recognises them.
    let stack = Stack::start(Options {
        echo_criteria: false,
        ..Options::default()
    })
    .await?;
    let gsid = stack
        .create_companies(vec![json!({"Name": "Hooli", "Industry": "Technology"})])
        .await?
        .remove(0);
    let account = stack
        .eventually(WAIT, "the Account", || async {
            Ok(stack.accounts_for(&gsid).pop())
        })
        .await?;
    let account_id = account["Id"].as_str().unwrap_or_default().to_string();
    // Settle: the creation's Outbound Message echo and the Company's learning its Account Id
    // (reported back by Gainsight's rule) are both ignored first.
    stack
        .eventually(WAIT, "the creation's echoes ignored", || async {
            Ok(stack
                .ledger_of("company_account", &gsid)
                .await?
                .filter(|l| l.ignored_count == 2))
        })
        .await?;
    stack.drained(WAIT).await?;
    let sf_before = stack.salesforce.stats();
    let gs_before = stack.gainsight.stats();
    let ignored_before = stack
        .ledger_of("company_account", &gsid)
        .await?
        .map(|l| l.ignored_count)
        .unwrap_or(0);

    // Name is bi-directional: changed in Salesforce, it is written to Gainsight exactly once.
    assert!(stack
        .salesforce
        .edit("Account", &account_id, record(json!({"Name": "Hooli XYZ"}))));
    stack
        .eventually(WAIT, "the name in Gainsight", || async {
            Ok(stack
                .gainsight_record("Company", &gsid)
                .filter(|c| c["Name"] == json!("Hooli XYZ")))
        })
        .await?;
    // Gainsight's rule reports our write back: that echo is ignored, nothing goes to Salesforce.
    let ledger = stack
        .eventually(WAIT, "the echo from Gainsight ignored", || async {
            Ok(stack
                .ledger_of("company_account", &gsid)
                .await?
                .filter(|l| l.ignored_count == ignored_before + 1))
        })
        .await?;
    assert!(ledger
        .last_ignored_reason
        .unwrap_or_default()
        .contains("echo"));
    stack.drained(WAIT).await?;
    let sf_after = stack.salesforce.stats();
    let gs_after = stack.gainsight.stats();
    assert_eq!(
        gs_after.write_calls - gs_before.write_calls,
        1,
        "one write to Gainsight"
    );
    assert_eq!(
        (sf_after.upsert_calls + sf_after.update_calls + sf_after.create_calls)
            - (sf_before.upsert_calls + sf_before.update_calls + sf_before.create_calls),
        0,
        "nothing written back to Salesforce"
    );
    assert_eq!(
        stack.salesforce.records("Account")[0]["Name"],
        json!("Hooli XYZ")
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_account_id_is_filled_and_lookup_failures_are_in_the_ledger() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let company = stack
        .create_companies(vec![json!({"Name": "Umbrella"})])
        .await?
        .remove(0);
    let account = stack
        .eventually(WAIT, "the Account", || async {
            Ok(stack.accounts_for(&company).pop())
        })
        .await?;

    // A Person of that Company: the Contact's AccountId is looked up through the Account's GSID.
    let people = stack
        .gainsight_insert(
            "Person",
            vec![
                json!({"FirstName": "Alice", "LastName": "Wesker", "Email": "alice@umbrella.test", "CompanyId": company}),
                json!({"FirstName": "Nobody", "LastName": "Known", "Email": "nobody@nowhere.test", "CompanyId": "1P0NOSUCHCOMPANY"}),
            ],
        )
        .await?;
    let contact = stack
        .eventually(WAIT, "the Contact", || async {
            Ok(stack
                .salesforce_where("Contact", "Gainsight_Person_Id__c", &people[0])
                .pop())
        })
        .await?;
    assert_eq!(contact["AccountId"], account["Id"]);
    assert_eq!(contact["Email"], json!("alice@umbrella.test"));

    // No Account carries that GSID: the Person waits for it (its Account may be on its way),
    // acknowledged, and the ledger names the Account it waits for.
    let none = stack
        .eventually(WAIT, "the wait in the ledger", || async {
            Ok(stack
                .ledger_of("person_contact", &people[1])
                .await?
                .filter(|l| l.waiting.is_some()))
        })
        .await?;
    let message = none.waiting.clone().unwrap_or_default();
    assert!(
        message.contains("waiting for company_account the Salesforce Account where Gainsight_Company_Id__c = 1P0NOSUCHCOMPANY"),
        "{message}"
    );
    assert!(!none.error, "waiting is not an error: {none:?}");

    // Two Companies claim the same Salesforce Account: a Contact of it cannot be linked.
    let twins = stack
        .create_companies(vec![
            json!({"Name": "Twin A", "SfdcAccountId": "001TWINACCOUNT0AAA"}),
            json!({"Name": "Twin B", "SfdcAccountId": "001TWINACCOUNT0AAA"}),
        ])
        .await?;
    assert_eq!(twins.len(), 2);
    let contact_id = stack
        .salesforce
        .seed("Contact", vec![record(json!({"LastName": "Ambiguous", "Email": "amb@twins.test", "AccountId": "001TWINACCOUNT0AAA"}))])
        .remove(0);
    let many = stack
        .eventually(WAIT, "the multi-match in the ledger", || async {
            Ok(stack
                .ledger_of("person_contact", &format!("sf:{contact_id}"))
                .await?
                .filter(|l| l.error))
        })
        .await?;
    let message = many.last_error.unwrap_or_default();
    assert!(
        message.contains(
            "lookup CompanyId (Company.SfdcAccountId = AccountId) found 2 Company records"
        ),
        "{message}"
    );
    assert!(stack
        .gainsight_where("Person", "Email", "amb@twins.test")
        .is_empty());
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_job_file_is_refused_naming_the_field() -> Result<()> {
    // Statically: a typo in a data flow.
    let dir = std::env::temp_dir().join(format!("jobs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let valid = include_str!("../infra/jobs/company_account.yaml");
    std::fs::write(
        dir.join("company_account.yaml"),
        valid.replace(
            "flow: salesforce_to_gainsight",
            "flow: salesforce_to_gainsite",
        ),
    )?;
    let err = Jobs::load_dir(&dir).unwrap_err().to_string();
    assert!(
        err.contains("company_account.yaml")
            && err.contains("fields[4].flow: unknown variant `salesforce_to_gainsite`"),
        "{err}"
    );

    // Against the live describe: a field the Account does not have, at the mapper's cold start.
    std::fs::write(
        dir.join("company_account.yaml"),
        valid.replace("salesforce: AnnualRevenue", "salesforce: AnnualRevenu__c"),
    )?;
    let jobs = Jobs::load_dir(&dir)?;
    let stack = Stack::start(Options {
        consumers: false,
        ..Options::default()
    })
    .await?;
    let config = mapper::Config {
        aws: stack.resources.clone(),
        salesforce: shared::config::SalesforceSettings {
            login_url: stack.salesforce.url(),
            client_id: stack.salesforce.client_id(),
            api_version: "62.0".into(),
            auth: Default::default(),
        },
        gainsight: shared::config::GainsightSettings {
            base_url: stack.gainsight.url(),
        },
    };
    let err = match mapper::MapperFn::from_aws(&config, &stack.clients, jobs).await {
        Ok(_) => anyhow::bail!("the mapper started with an invalid job"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("company_account.yaml")
            && err.contains("fields[2].salesforce: Account.AnnualRevenu__c does not exist"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir)?;
    stack.stop().await;
    Ok(())
}
