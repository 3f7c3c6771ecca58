//! The operator's day on the local stack, through the real `syncctl` binary: records that did not
//! sync yet are shown with why, and follow their parent once it is fixed; runs and their logs; import, export and diff;
//! the resync and poller functions invoked through the Lambda API; secrets.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use sync_tests::{Options, Stack};

const WAIT: Duration = Duration::from_secs(60);

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_contact_waiting_for_its_account_is_shown_waiting_and_syncs_when_it_comes() -> Result<()>
{
    let stack = Stack::start(Options::default()).await?;
    // A Company Salesforce refuses (a value outside the picklist), and a Person of it: the
    // Person's AccountId lookup finds no Account, so the Person waits for it.
    let company = stack
        .create_companies(vec![
            json!({"Name": "Late Co", "Arr": 3, "Industry": "Basket Weaving"}),
        ])
        .await?
        .remove(0);
    let person = stack
        .gainsight_insert(
            "Person",
            vec![json!({"FirstName": "Ada", "LastName": "Late", "Email": "ada@late.test", "CompanyId": company})],
        )
        .await?
        .remove(0);
    stack
        .eventually(WAIT, "the Person waiting in the ledger", || async {
            Ok(stack
                .ledger_of("person_contact", &person)
                .await?
                .filter(|l| l.waiting.is_some()))
        })
        .await?;
    let shown = syncctl(&stack, &["show", &person]).await;
    let text = stdout(&shown);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(
        text.contains("NOT SYNCED YET: waiting for company_account the Salesforce Account where")
            && text.contains(&company),
        "{text}"
    );
    // Waiting is not an error: the job's errors do not list it.
    let errors = json_of(
        &stack,
        &[
            "status",
            "--job",
            "person_contact",
            "--status",
            "error",
            "--format",
            "json",
        ],
    )
    .await?;
    assert_eq!(errors["records"], json!([]), "{errors}");

    // The Company is fixed in Gainsight: its Account is created, and the Person follows by
    // itself (no resync).
    stack
        .gainsight_update(
            "Company",
            vec![json!({"Gsid": company, "Industry": "Banking"})],
        )
        .await?;
    let contact = stack
        .eventually(WAIT, "the Contact", || async {
            Ok(stack
                .salesforce_where("Contact", "Gainsight_Person_Id__c", &person)
                .pop())
        })
        .await?;
    let account = stack.accounts_for(&company).pop().expect("the Account");
    assert_eq!(contact["AccountId"], account["Id"]);
    stack
        .eventually(WAIT, "the Person synced", || async {
            Ok(stack
                .ledger_of("person_contact", &person)
                .await?
                .filter(|l| l.synced && !l.error && l.waiting.is_none()))
        })
        .await?;
    let synced = json_of(
        &stack,
        &[
            "status",
            "--job",
            "person_contact",
            "--status",
            "synced",
            "--format",
            "json",
        ],
    )
    .await?;
    assert_eq!(synced["records"][0]["key"], json!(person));
    // `show` by the Contact's Salesforce Id: synced now, the wait still in its history.
    let contact_id = contact["Id"].as_str().unwrap_or_default();
    let shown = syncctl(&stack, &["show", contact_id]).await;
    let text = stdout(&shown);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(text.contains("synced, last at"), "{text}");
    assert!(text.contains("waiting"), "{text}");

    // The runs: the mapper's run that parked the Person, its log downloadable.
    let runs = json_of(
        &stack,
        &["runs", "--job", "person_contact", "--format", "json"],
    )
    .await?;
    let listed = runs.as_array().cloned().unwrap_or_default();
    let mut waited = None;
    for run in listed
        .iter()
        .filter(|r| r["id"].as_str().is_some_and(|id| id.contains("-mapper-")))
    {
        let log = syncctl(&stack, &["logs", run["id"].as_str().unwrap_or_default()]).await;
        let lines: Vec<Value> = stdout(&log)
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        if lines.iter().any(|l| l["outcome"] == json!("waiting")) {
            waited = Some(lines);
        }
    }
    let lines = waited.expect("a mapper run with the Person's waiting line");
    assert_eq!(lines[0]["record"], json!(person));
    assert!(lines[0]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("waiting for company_account"));
    let not_found = syncctl(&stack, &["show", "1P0NOSUCHRECORD"]).await;
    assert_eq!(not_found.status.code(), Some(3), "{}", stderr(&not_found));
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_that_failed_for_a_technical_reason_has_the_error_on_its_last_log_line() -> Result<()>
{
    let stack = Stack::start(Options::default()).await?;
    // Salesforce answers 503 long enough for the pusher's retries to give up once.
    stack.salesforce.inject(devstack::salesforce::Fault::status(
        503,
        "SERVER_UNAVAILABLE",
        "down for maintenance",
        6,
    ));
    let gsid = stack
        .create_companies(vec![json!({"Name": "Patient Co", "Arr": 1})])
        .await?
        .remove(0);
    // The message goes back to the queue and syncs once Salesforce is back.
    stack
        .eventually(WAIT, "the Account", || async {
            Ok(stack.accounts_for(&gsid).pop())
        })
        .await?;
    let runs = json_of(&stack, &["runs", "--status", "failed", "--format", "json"]).await?;
    let run = runs
        .as_array()
        .and_then(|r| r.iter().find(|r| r["error"].is_string()).cloned())
        .expect("a run with a technical error");
    let log = syncctl(&stack, &["logs", run["id"].as_str().unwrap_or_default()]).await;
    let last: Value = serde_json::from_str(stdout(&log).lines().last().unwrap_or_default())?;
    let error = last["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("503") && error.contains("down for maintenance"),
        "{last}"
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_import_links_existing_records_and_a_bad_row_imports_nothing() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    // Both records existed before the sync: neither system announced them.
    let gsid = stack
        .gainsight_insert_quietly("Company", vec![json!({"Name": "Old Co", "Arr": 7})])
        .await?
        .remove(0);
    let account = stack
        .salesforce_create_quietly("Account", vec![json!({"Name": "Old Co"})])
        .await?
        .remove(0);
    let dir = std::env::temp_dir().join(format!("syncctl-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        format!("gainsight_id,salesforce_id\n{gsid},{account}\nG2,not-an-id\n"),
    )?;
    let refused = syncctl(
        &stack,
        &[
            "import",
            bad.to_str().unwrap_or_default(),
            "--job",
            "company_account",
        ],
    )
    .await;
    assert_eq!(refused.status.code(), Some(2));
    let err = stderr(&refused);
    assert!(
        err.contains("nothing imported")
            && err.contains("line 3: \"not-an-id\" is not a Salesforce id"),
        "{err}"
    );
    assert!(
        stack.ledger(&gsid).await?.is_none(),
        "the good row was not written either"
    );

    let good = dir.join("good.csv");
    std::fs::write(
        &good,
        format!("gainsight_id,salesforce_id\n{gsid},{account}\n"),
    )?;
    let imported = syncctl(
        &stack,
        &[
            "import",
            good.to_str().unwrap_or_default(),
            "--job",
            "company_account",
        ],
    )
    .await;
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert!(
        stdout(&imported).contains("imported 1 links"),
        "{}",
        stdout(&imported)
    );
    // The import resyncs the link at once: the existing Account learns its GSID, updated by Id.
    stack
        .eventually(WAIT, "the Account learnt its GSID", || async {
            Ok(stack
                .salesforce_where("Account", "Gainsight_Company_Id__c", &gsid)
                .pop())
        })
        .await?;
    // A user edits the Company: the existing Account is updated by its Id, none is created.
    stack
        .gainsight_update(
            "Company",
            vec![json!({"Gsid": gsid, "Name": "Old Co Renamed"})],
        )
        .await?;
    stack
        .eventually(WAIT, "the Account renamed", || async {
            Ok(stack
                .salesforce_where("Account", "Name", "Old Co Renamed")
                .pop())
        })
        .await?;
    let accounts = stack.salesforce.records("Account");
    assert_eq!(accounts.len(), 1, "no duplicate: {accounts:?}");
    assert_eq!(accounts[0]["Id"], json!(account));
    assert_eq!(
        accounts[0]["Gainsight_Company_Id__c"],
        json!(gsid),
        "the Account learnt its GSID"
    );
    // The export carries the link, in the columns import reads.
    let export = syncctl(
        &stack,
        &["export", "--job", "company_account", "--format", "csv"],
    )
    .await;
    let csv = stdout(&export);
    assert!(csv.starts_with("gainsight_id,salesforce_id,"), "{csv}");
    assert!(
        csv.contains(&format!("{gsid},{account},company_account,synced")),
        "{csv}"
    );
    stack.stop().await;
    Ok(())
}

/// A row that would replace a link already in the ledger (a Company linked to another Account,
/// or an Account linked to another Company) is refused with every such row listed, and nothing
/// is imported; with `--relink` the links are replaced and the Company that lost its Account is
/// unlinked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_import_replaces_links_only_when_told_to() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let dir = std::env::temp_dir().join(format!("syncctl-relink-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let import = |name: &str, rows: &str, relink: bool| {
        let path = dir.join(name);
        let written = std::fs::write(&path, format!("gainsight_id,salesforce_id\n{rows}"));
        let stack = &stack;
        async move {
            written?;
            let file = path.to_str().unwrap_or_default().to_string();
            let mut args = vec!["import", &file, "--job", "company_account", "--no-resync"];
            if relink {
                args.push("--relink");
            }
            anyhow::Ok(syncctl(stack, &args).await)
        }
    };
    let (one, two, three) = (
        "001000000000001AAA",
        "001000000000002AAA",
        "001000000000003AAA",
    );
    let first = import("links.csv", &format!("GA,{one}\nGB,{two}\n"), false).await?;
    assert!(first.status.success(), "{}", stderr(&first));

    let moved = format!("GA,{three}\nGC,{two}\n");
    let refused = import("moved.csv", &moved, false).await?;
    assert_eq!(refused.status.code(), Some(2));
    let err = stderr(&refused);
    assert!(
        err.contains("nothing imported; 2 rows would replace a link"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "line 2: GA is linked to {one}; this file links it to {three}"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "line 3: {two} is linked to GB; this file links it to GC"
        )),
        "{err}"
    );
    assert!(err.contains("--relink"), "{err}");
    let salesforce_id = |gsid: &'static str| {
        let stack = &stack;
        async move { anyhow::Ok(stack.ledger(gsid).await?.and_then(|r| r.salesforce_id)) }
    };
    assert_eq!(
        salesforce_id("GA").await?.as_deref(),
        Some(one),
        "unchanged"
    );
    assert_eq!(salesforce_id("GC").await?, None, "not imported");

    let relinked = import("moved.csv", &moved, true).await?;
    assert!(relinked.status.success(), "{}", stderr(&relinked));
    assert!(
        stdout(&relinked).contains("imported 2 links into company_account (2 replacing a link)"),
        "{}",
        stdout(&relinked)
    );
    assert_eq!(salesforce_id("GA").await?.as_deref(), Some(three));
    assert_eq!(salesforce_id("GC").await?.as_deref(), Some(two));
    let unlinked = stack.ledger("GB").await?.expect("GB's record");
    assert_eq!(unlinked.salesforce_id, None);
    let said = unlinked
        .history
        .last()
        .and_then(|h| h.message.clone())
        .unwrap_or_default();
    assert!(
        said.starts_with(&format!("unlinked from {two}, which the import of")),
        "{said}"
    );
    stack.stop().await;
    Ok(())
}

/// A first load's dry run over records both systems held before the sync: what it links (by
/// the ledger, by the GSID an Account carries, by the Account Id a Company carries), creates,
/// updates and leaves alone as ambiguous; counted, every row in the CSV, and nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_load_dry_run_plans_and_writes_nothing() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let org = seed_org(&stack).await?;
    let dir = &org.dir;
    let (sf_before, ledger_before) = (
        stack.salesforce.stats(),
        stack.ledger_records().await?.len(),
    );
    let gs_before = stack.gainsight.records("Company").len();

    let plan_csv = dir.join("plan.csv");
    let args = [
        "load",
        "--job",
        "company_account",
        "--dry-run",
        "--format",
        "json",
        "--csv",
        plan_csv.to_str().unwrap_or_default(),
    ];
    let plan = json_of(&stack, &args).await?;
    assert_eq!(
        plan["read"],
        json!({"gainsight": 6, "salesforce": 5}),
        "{plan}"
    );
    assert_eq!(
        plan["counts"],
        json!({"alreadyLinked": 1, "linkByIdentifier": 2, "linkByMatchKey": 0,
            "createInSalesforce": 1, "createInGainsight": 1, "toUpdate": 2,
            "refusedByValidation": 0, "ambiguous": 3, "leftAlone": 0}),
        "{plan}"
    );
    let rows = plan["rows"].as_array().cloned().unwrap_or_default();
    let carried_row = rows
        .iter()
        .find(|r| r["salesforceId"] == json!(org.carried))
        .expect("the carried pair");
    assert_eq!(
        carried_row["detail"],
        json!("by identifier Gsid = Gainsight_Company_Id__c")
    );
    assert!(
        carried_row["updates"]
            .as_str()
            .unwrap_or_default()
            .contains("Name"),
        "{carried_row}"
    );
    let text = std::fs::read_to_string(&plan_csv)?;
    assert_eq!(text.lines().count(), 1 + rows.len(), "{text}");
    assert!(text.contains("ambiguous"), "{text}");

    // Written only from Gainsight: the lone Account is left alone, and the two pairs' updates
    // (both take Salesforce's value: Phone flows from it, and the carried Account's Name is the
    // newer) are not written.
    let from_gs = [
        "load",
        "--job",
        "company_account",
        "--dry-run",
        "--from",
        "gainsight",
    ];
    let from_gs = json_of(&stack, &[&from_gs[..], &["--format", "json"]].concat()).await?;
    assert_eq!(
        from_gs["counts"],
        json!({"alreadyLinked": 1, "linkByIdentifier": 2, "linkByMatchKey": 0,
            "createInSalesforce": 1, "createInGainsight": 0, "toUpdate": 0,
            "refusedByValidation": 0, "ambiguous": 3, "leftAlone": 1}),
        "{from_gs}"
    );

    // `jobs plan` of the job with Phone turned around (Gainsight to Salesforce): the linked
    // pair, whose Account has a Phone and whose Company has none, would have its Account's
    // Phone written (emptied).
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/jobs/company_account.yaml");
    let turned = std::fs::read_to_string(shipped)?.replace(
        "{ gainsight: Phone, salesforce: Phone, flow: salesforce_to_gainsight }",
        "{ gainsight: Phone, salesforce: Phone, flow: gainsight_to_salesforce }",
    );
    let turned_file = dir.join("company_account.yaml");
    std::fs::write(&turned_file, turned)?;
    let file = turned_file.to_str().unwrap_or_default();
    let jobs_plan = json_of(&stack, &["jobs", "plan", file, "--format", "json"]).await?;
    assert_eq!(
        jobs_plan,
        json!({"job": "company_account", "linkedPairs": 1, "pairsWritten": 1,
            "pairsRefused": 0,
            "fields": [{"target": "salesforce", "field": "Phone", "records": 1}]}),
        "{jobs_plan}"
    );

    // Nothing was written anywhere.
    let sf_after = stack.salesforce.stats();
    assert_eq!(
        (sf_after.records_created, sf_after.records_updated),
        (sf_before.records_created, sf_before.records_updated)
    );
    assert_eq!(stack.gainsight.records("Company").len(), gs_before);
    assert_eq!(stack.ledger_records().await?.len(), ledger_before);
    assert_eq!(
        sf_after.bulk_query_jobs - sf_before.bulk_query_jobs,
        3,
        "one bulk read for each plan"
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn diff_finds_drift_and_fix_repairs_it_and_the_poller_runs_on_the_stack() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let gsid = stack
        .create_companies(vec![json!({"Name": "Drift Co", "Arr": 10})])
        .await?
        .remove(0);
    let account = stack
        .eventually(WAIT, "the Account", || async {
            Ok(stack.accounts_for(&gsid).pop())
        })
        .await?;
    stack.drained(WAIT).await?;
    let clean = syncctl(&stack, &["diff", "--job", "company_account"]).await;
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    // Someone edits a Gainsight-owned field in Salesforce: nothing syncs it back.
    let id = account["Id"].as_str().unwrap_or_default();
    assert!(stack.salesforce.edit(
        "Account",
        id,
        json!({"AnnualRevenue": 999})
            .as_object()
            .cloned()
            .unwrap_or_default()
    ));
    stack.drained(WAIT).await?;
    let drift = syncctl(
        &stack,
        &["diff", "--job", "company_account", "--format", "json"],
    )
    .await;
    assert_eq!(drift.status.code(), Some(4), "{}", stderr(&drift));
    let found: Value = serde_json::from_slice(&drift.stdout)?;
    assert_eq!(found[0]["kind"], json!("values differ"));
    assert!(found[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("Account.AnnualRevenue = 999"));
    let fixed = syncctl(&stack, &["diff", "--job", "company_account", "--fix"]).await;
    assert!(fixed.status.success(), "{}", stderr(&fixed));
    stack
        .eventually(WAIT, "AnnualRevenue restored", || async {
            Ok(stack
                .accounts_for(&gsid)
                .pop()
                .filter(|a| a["AnnualRevenue"] == json!(10)))
        })
        .await?;

    // A Salesforce-owned field (Phone flows from Salesforce) edited in Gainsight: the fix takes
    // Salesforce's value back to Gainsight, not Gainsight's to Salesforce.
    let phone = |v: &str| {
        json!({ "Phone": v })
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    assert!(stack.salesforce.edit("Account", id, phone("555-0100")));
    let company_phone = |want: &'static str| {
        let (stack, gsid) = (&stack, gsid.clone());
        async move {
            let company = stack.gainsight_record("Company", &gsid);
            anyhow::Ok(
                company
                    .filter(|c| c.get("Phone") == Some(&json!(want)))
                    .map(|_| ()),
            )
        }
    };
    stack
        .eventually(WAIT, "the Phone synced to Gainsight", || {
            company_phone("555-0100")
        })
        .await?;
    stack
        .gainsight_update("Company", vec![json!({"Gsid": gsid, "Phone": "555-9999"})])
        .await?;
    stack.drained(WAIT).await?;
    let drift = syncctl(
        &stack,
        &["diff", "--job", "company_account", "--format", "json"],
    )
    .await;
    assert_eq!(drift.status.code(), Some(4), "{}", stderr(&drift));
    let found: Value = serde_json::from_slice(&drift.stdout)?;
    assert_eq!(found[0]["fixFrom"], json!("salesforce"), "{found}");
    let fixed = syncctl(&stack, &["diff", "--job", "company_account", "--fix"]).await;
    assert!(
        stdout(&fixed).contains("queued for resync from Salesforce"),
        "{}",
        stdout(&fixed)
    );
    stack
        .eventually(WAIT, "the Phone restored in Gainsight", || {
            company_phone("555-0100")
        })
        .await?;
    let account_now = stack.accounts_for(&gsid).pop().unwrap_or_default();
    assert_eq!(
        account_now["Phone"],
        json!("555-0100"),
        "Salesforce kept its value"
    );

    // The poller, invoked through the Lambda API as its schedule would: a Company created
    // without a webhook event (the rule skips the integration user) is polled and synced.
    let quiet = stack
        .gainsight_insert_quietly("Company", vec![json!({"Name": "Polled Co", "Arr": 2})])
        .await?
        .remove(0);
    let answer = json_of(
        &stack,
        &["poll", "--job", "company_account", "--format", "json"],
    )
    .await?;
    assert!(answer["queued"].as_u64().unwrap_or(0) >= 1, "{answer}");
    stack
        .eventually(WAIT, "the polled Company's Account", || async {
            Ok(stack.accounts_for(&quiet).pop())
        })
        .await?;
    let runs = json_of(
        &stack,
        &["runs", "--job", "company_account", "--format", "json"],
    )
    .await?;
    let events: Vec<&str> = runs
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["event"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        events.contains(&"schedule") && events.contains(&"resync"),
        "{events:?}"
    );

    // A secret put through syncctl is stored encrypted and never printed.
    let put = syncctl_in(
        &stack,
        &["secrets", "put", "webhook-secret"],
        "s3cr3t-value\n",
    )
    .await;
    assert!(put.status.success(), "{}", stderr(&put));
    assert!(!stdout(&put).contains("s3cr3t-value") && !stderr(&put).contains("s3cr3t-value"));
    let unknown = syncctl_in(&stack, &["secrets", "put", "nope"], "x").await;
    assert_eq!(unknown.status.code(), Some(2));
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resync_since_a_time_creates_what_the_other_side_lacks() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let before = shared::time::rfc3339(shared::time::now_ms() - 60_000);
    // Created by the integration user: no webhook event, so nothing reached Salesforce.
    let ids = stack
        .gainsight_insert_quietly(
            "Company",
            vec![
                json!({"Name": "Missed A", "Arr": 1}),
                json!({"Name": "Missed B", "Arr": 2}),
            ],
        )
        .await?;
    let out = syncctl(
        &stack,
        &[
            "resync",
            "--job",
            "company_account",
            "--since",
            &before,
            "--format",
            "json",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let reports: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(reports[0]["queued"], json!(2), "{reports}");
    for id in &ids {
        stack
            .eventually(WAIT, "the missed Account", || async {
                Ok(stack.accounts_for(id).pop())
            })
            .await?;
    }
    // A time in the future selects nothing; a malformed one is refused as bad input (the
    // function's own check, run by syncctl before invoking it).
    let later = shared::time::rfc3339(shared::time::now_ms() + 3_600_000);
    let none = json_of(
        &stack,
        &[
            "resync",
            "--job",
            "company_account",
            "--since",
            &later,
            "--format",
            "json",
        ],
    )
    .await?;
    assert_eq!(none[0]["queued"], json!(0));
    let bad = syncctl(
        &stack,
        &["resync", "--job", "company_account", "--since", "yesterday"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("RFC 3339"), "{}", stderr(&bad));
    stack.stop().await;
    Ok(())
}
