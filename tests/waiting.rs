//! Children before their parent, end to end on the local stack: a Gainsight Case and Person made
//! on a Company whose Account does not exist yet wait for it (acknowledged, the ledger saying
//! what they wait for, no delivery used up) and sync as soon as the Company's Account does: here
//! an Account a sales rep creates in Salesforce with the Company's GSID.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use sync_tests::{Options, Stack};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_and_a_person_made_before_their_account_sync_when_it_does() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    // A Company loaded by another integration: no rule event, so no Account yet.
    let company = stack
        .gainsight_insert_quietly("Company", vec![json!({"Name": "Late Parent Inc"})])
        .await?
        .remove(0);
    let case = stack
        .gainsight_insert(
            "Case",
            vec![json!({"Subject": "Printer on fire", "Priority": "High", "CompanyId": company})],
        )
        .await?
        .remove(0);
    let person = stack
        .gainsight_insert(
            "Person",
            vec![json!({"Email": "early@late.example", "LastName": "Early", "CompanyId": company})],
        )
        .await?
        .remove(0);
    let waiting = stack
        .eventually(WAIT, "the Case to wait for its Account", || async {
            Ok(stack
                .ledger_of("case_case", &case)
                .await?
                .filter(|l| l.waiting.is_some()))
        })
        .await?;
    let said = waiting.waiting.unwrap_or_default();
    assert!(
        said.contains(&format!(
            "waiting for company_account the Salesforce Account where Gainsight_Company_Id__c = {company}"
        )),
        "{said}"
    );
    assert!(!waiting.error, "waiting is not an error");
    stack
        .eventually(WAIT, "the Person to wait too", || async {
            Ok(stack
                .ledger_of("person_contact", &person)
                .await?
                .filter(|l| l.waiting.is_some()))
        })
        .await?;
    stack.drained(WAIT).await?;
    assert!(stack
        .salesforce_where("Case", "Gainsight_Case_Id__c", &case)
        .is_empty());

    // A sales rep creates its Account in Salesforce, carrying the Company's GSID: the pair syncs
    // for the first time, and both children follow.
    let account_id = stack
        .salesforce
        .seed(
            "Account",
            vec![
                json!({"Name": "Late Parent Inc", "Gainsight_Company_Id__c": company})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ],
        )
        .remove(0);
    let account = stack
        .eventually(WAIT, "the pair synced", || async {
            Ok(stack
                .ledger_of("company_account", &company)
                .await?
                .filter(|l| l.synced)
                .and(stack.accounts_for(&company).pop()))
        })
        .await?;
    assert_eq!(account["Id"], json!(account_id));
    let sf_case = stack
        .eventually(WAIT, "the Case replayed and synced", || async {
            Ok(stack
                .salesforce_where("Case", "Gainsight_Case_Id__c", &case)
                .pop())
        })
        .await?;
    assert_eq!(sf_case["AccountId"], account["Id"]);
    let contact = stack
        .eventually(WAIT, "the Contact replayed and synced", || async {
            Ok(stack
                .salesforce_where("Contact", "Gainsight_Person_Id__c", &person)
                .pop())
        })
        .await?;
    assert_eq!(contact["AccountId"], account["Id"]);
    // The twin is written before the ledger says so: once the queues are quiet, it does.
    stack.drained(WAIT).await?;
    let ledger = stack.ledger_of("case_case", &case).await?.expect("ledger");
    assert!(
        ledger.synced && ledger.waiting.is_none() && !ledger.error,
        "{ledger:#?}"
    );
    stack.stop().await;
    Ok(())
}
